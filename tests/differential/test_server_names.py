"""Switching from Ollama keeps the user's models (issue #16 item 7): /api/tags, /api/ps and
/api/show fill `details` (format, family, families, parameter_size, quantization_level) for a
model whose config lacks them, from its GGUF header; a model whose blob is missing or unreadable
still lists (with empty details) instead of failing the listing; names compare
case-insensitively (show, generate, ps, delete, copy, /v1/models/{id}, create replacing a
differently cased model instead of adding a second one)."""
import json
import os
import re

from harness import FIXTURES, Checker
from serve_util import Server, put_model

Q4 = os.path.join(FIXTURES, "llama-Q4_K_M.gguf")
Q8 = os.path.join(FIXTURES, "llama-Q8_0.gguf")
F16 = os.path.join(FIXTURES, "llama-F16.gguf")


def tags(s):
    st, r = s.json("GET", "/api/tags")
    assert st == 200, (st, r)
    return {m["name"]: m for m in r["models"]}


def blob_of(models, name):
    model, _, tag = name.partition(":")
    with open(os.path.join(models, "manifests", "registry.ollama.ai", "library", model,
                           tag or "latest")) as f:
        m = json.load(f)
    d = next(l["digest"] for l in m["layers"] if l["mediaType"].endswith(".model"))
    return os.path.join(models, "blobs", d.replace(":", "-"))


def main():
    c = Checker("server-names")
    s = Server()
    try:
        # Laid out by hand, config {"model_format":"gguf"} only, under a mixed-case name.
        put_model(s.models, "Tiny:latest", Q4)
        put_model(s.models, "gone:latest", Q8)
        os.remove(blob_of(s.models, "gone:latest"))
        put_model(s.models, "junk:latest", F16)
        with open(blob_of(s.models, "junk:latest"), "r+b") as f:
            f.write(b"NOPE")  # no longer a GGUF

        t = tags(s)
        c.check(set(t) == {"Tiny:latest", "gone:latest", "junk:latest"}, f"tags: {sorted(t)}")
        d = t.get("Tiny:latest", {}).get("details", {})
        c.check(d.get("format") == "gguf", f"format: {d}")
        c.check(d.get("family") == "llama", f"family: {d}")
        c.check(d.get("families") == ["llama"], f"families: {d}")
        c.check(d.get("quantization_level") == "Q4_K_M", f"quantization_level: {d}")
        c.check(re.fullmatch(r"\d+(\.\d)?[KMB]", d.get("parameter_size", "")) is not None,
                f"parameter_size: {d}")
        for bad in ("gone:latest", "junk:latest"):
            bd = t.get(bad, {}).get("details", {})
            c.check(bd.get("family") == "" and bd.get("quantization_level") == "" and
                    bd.get("parameter_size") == "", f"{bad}: empty details, got {bd}")
        # A second listing gives the same (from the cache).
        c.check(tags(s).get("Tiny:latest", {}).get("details") == d, "tags again: same details")

        # /api/show: the same details, any case of the name.
        for name in ("tiny", "TINY:LATEST", "Tiny"):
            st, r = s.json("POST", "/api/show", {"model": name})
            c.check(st == 200 and r.get("details") == dict(d, parent_model=""),
                    f"show {name}: {st} {r.get('details') if st == 200 else r}")
        st, r = s.json("POST", "/api/show", {"model": "tiny2"})
        c.check(st == 404, f"show unknown: {st} {r}")

        # /v1/models/{id}: found whatever the case, shown as stored.
        st, r = s.json("GET", "/v1/models/TINY")
        c.check(st == 200 and r.get("id") == "Tiny:latest", f"/v1/models/TINY: {st} {r}")

        # Generate under two spellings: one loaded model, shown by /api/ps as stored, with the
        # details filled.
        for name in ("tINy", "tiny:LATEST"):
            st, r = s.json("POST", "/api/generate", {"model": name, "prompt": "hi",
                                                     "stream": False,
                                                     "options": {"num_predict": 2}})
            c.check(st == 200 and r.get("done") is True, f"generate {name}: {st} {r}")
        st, r = s.json("GET", "/api/ps")
        ps = r.get("models", []) if st == 200 else []
        c.check([m["name"] for m in ps] == ["Tiny:latest"], f"ps names: {ps}")
        if ps:
            c.check(ps[0]["details"] == dict(d, parent_model=""), f"ps details: {ps[0]}")

        # Copy from any case; a destination differing only in case replaces that model.
        st, r = s.json("POST", "/api/copy", {"source": "TINY", "destination": "Copy1"})
        c.check(st == 200, f"copy TINY -> Copy1: {st} {r}")
        st, r = s.json("POST", "/api/copy", {"source": "gone", "destination": "COPY1:Latest"})
        c.check(st == 200, f"copy gone -> COPY1:Latest: {st} {r}")
        t = tags(s)
        copies = [n for n in t if n.lower() == "copy1:latest"]
        c.check(copies == ["Copy1:latest"], f"one copy, spelled as first written: {sorted(t)}")
        c.check(t.get("Copy1:latest", {}).get("digest") == t.get("gone:latest", {}).get("digest"),
                "the second copy replaced the first")

        # Create under another case replaces the stored model (and its details follow).
        st, r = s.json("POST", "/api/create", {"model": "TINY", "from": Q8, "stream": False})
        c.check(st == 200, f"create TINY: {st} {r}")
        t = tags(s)
        tinies = [n for n in t if n.lower() == "tiny:latest"]
        c.check(tinies == ["Tiny:latest"], f"create replaced, not duplicated: {sorted(t)}")
        c.check(t.get("Tiny:latest", {}).get("details", {}).get("quantization_level") == "Q8_0",
                f"replaced model's details: {t.get('Tiny:latest')}")

        # Delete under any case.
        st, _ = s.json("DELETE", "/api/delete", {"model": "tiny:LATEST"})
        c.check(st == 200, f"delete tiny:LATEST: {st}")
        st, _ = s.json("DELETE", "/api/delete", {"model": "copy1"})
        c.check(st == 200, f"delete copy1: {st}")
        t = tags(s)
        c.check(set(t) == {"gone:latest", "junk:latest"}, f"after deletes: {sorted(t)}")
        st, _ = s.json("DELETE", "/api/delete", {"model": "TINY"})
        c.check(st == 404, f"delete again: {st}")
        c.check(s.alive(), "alive")
    finally:
        s.stop()
    c.finish()


if __name__ == "__main__":
    main()
