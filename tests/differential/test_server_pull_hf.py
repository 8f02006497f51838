"""Pulling from Hugging Face (issue #16): `hearth serve` with HF_ENDPOINT pointed at the fake Hub
of fake_hf.py (a tree API, resolve/main/<path> redirecting to a "CDN" on another port) pulls
`hf.co/<org>/<repo>[:<quant>]` through /api/pull and the CLI.

Checked: the quant matched case-insensitively (`:q8_0` picks tiny-Q8_0.gguf), no tag picks
Q4_K_M, mmproj files never chosen; progress lines shaped as registry pulls'; each blob named by
the file's lfs.oid and its bytes' sha256 equal to it; the manifest (model layers in order and a
config) under manifests/hf.co/<org>/<repo>/<tag>; HF_TOKEN sent to the Hub and never to the CDN;
the tree listing followed over Link pages; a split model's parts gathered in order and the model
giving the same logits and the same generated tokens as the unsplit file (also opened by
`hearth logits -m <first part>` and created FROM a first-part path); a missing quant an error
listing the available ones; a split part missing from the repository refused; an unknown
repository a 404; a file corrupted in transit once recovered, corrupted every time refused with
nothing of it in the store."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from fake_hf import FakeHF, split_gguf
from harness import FIXTURES, HEARTH, Checker, hearth_logits
from serve_util import Server, put_model

ENV = {
    "HEARTH_PULL_PART_MB": "1",  # several ranged parts per file
    "HEARTH_PULL_BACKOFF_MS": "50",
    "HEARTH_PULL_STALL_SECONDS": "5",
    "HEARTH_PULL_STREAMS": "4",
    "HF_TOKEN": "hf_secret",
}
GREEDY = {"temperature": 0, "top_k": 1, "seed": 1}


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def store_problems(models):
    bad = []
    blobs = os.path.join(models, "blobs")
    names = set(os.listdir(blobs)) if os.path.isdir(blobs) else set()
    for n in names:
        if n.startswith("sha256-") and len(n) == 7 + 64 and sha_file(os.path.join(blobs, n)) != n[7:]:
            bad.append("blob " + n + " does not match its name")
    for root, _, files in os.walk(os.path.join(models, "manifests")):
        for f in files:
            m = json.load(open(os.path.join(root, f)))
            for l in m["layers"] + [m["config"]]:
                if "sha256-" + l["digest"][7:] not in names:
                    bad.append(f"manifest {root}/{f} names missing blob {l['digest']}")
    return bad


def main():
    c = Checker("server-pull-hf")
    tmp = tempfile.mkdtemp(prefix="hearth-hf-")
    hf = FakeHF()
    hf.require_token = "hf_secret"
    q4 = open(os.path.join(FIXTURES, "llama-Q4_K_M.gguf"), "rb").read()
    q8 = open(os.path.join(FIXTURES, "llama-Q8_0.gguf"), "rb").read()
    f16_path = os.path.join(FIXTURES, "llama-F16.gguf")
    parts = split_gguf(f16_path, tmp, "tiny-F16", 3)
    part_bytes = [open(p, "rb").read() for p in parts]
    org, repo = "org", "tiny-GGUF"
    hf.add_file(org, repo, "README.md", b"# tiny\n")
    hf.add_file(org, repo, "tiny-Q4_K_M.gguf", q4)
    hf.add_file(org, repo, "tiny-q8_0.gguf", q8)
    hf.add_file(org, repo, "mmproj-tiny-Q4_K_M.gguf", b"GGUF not really a projector")
    for p, data in zip(parts, part_bytes):
        hf.add_file(org, repo, "F16/" + os.path.basename(p), data)
    # A repository whose split model lacks a part.
    hf.add_file(org, "gap-GGUF", "m-Q8_0-00001-of-00002.gguf", part_bytes[0])
    srv = Server(env=dict(ENV, HF_ENDPOINT=hf.url))
    models = srv.models

    def pull(name, stream=True):
        return srv.ndjson("/api/pull", {"model": name, "stream": stream}, timeout=300)

    def manifest(tag, r=repo):
        p = os.path.join(models, "manifests", "hf.co", org, r, tag)
        return json.load(open(p)) if os.path.exists(p) else None

    def blob_path(hexd):
        return os.path.join(models, "blobs", "sha256-" + hexd)

    try:
        # `:q8_0`: the quant matched case-insensitively (the file says q8_0, so would Q8_0).
        hf.page_size = 3  # the file list comes in pages chained by Link headers
        st, _, lines = pull(f"hf.co/{org}/{repo}:Q8_0")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"pull :Q8_0: {st} {lines[-3:]}")
        statuses = [l.get("status") for l in lines]
        c.check(statuses[0] == "pulling manifest", f"first status {statuses[:2]}")
        q8_hex = hashlib.sha256(q8).hexdigest()
        blob_lines = [l for l in lines if l.get("digest") == "sha256:" + q8_hex]
        c.check(blob_lines and all(l["status"] == "pulling " + q8_hex[:12] and l["total"] == len(q8)
                                   for l in blob_lines), f"blob progress lines {blob_lines[:2]}")
        c.check(blob_lines and blob_lines[-1].get("completed") == len(q8),
                f"last progress line of the blob: {blob_lines[-1:]}")
        for s in ("verifying sha256 digest", "writing manifest"):
            c.check(s in statuses, f"status '{s}' missing: {statuses}")
        m = manifest("Q8_0")
        c.check(m is not None and [l["digest"] for l in m["layers"]] == ["sha256:" + q8_hex]
                and m["layers"][0]["mediaType"] == "application/vnd.ollama.image.model"
                and m["layers"][0]["size"] == len(q8), f"manifest of :Q8_0: {m}")
        c.check(os.path.exists(blob_path(q8_hex)) and sha_file(blob_path(q8_hex)) == q8_hex,
                "the Q8_0 blob's sha256 is not the file's lfs.oid")
        if m:
            cfg = json.load(open(blob_path(m["config"]["digest"][7:])))
            c.check(cfg.get("model_format") == "gguf" and cfg.get("file_type") == "Q8_0"
                    and cfg.get("model_family") == "llama", f"config {cfg}")
        trees = hf.entries(server="hub", method="GET", path=f"/api/models/{org}/{repo}/tree/main")
        c.check(len(trees) >= 3 and all(e["status"] == 200 for e in trees),
                f"tree pages fetched: {[(e['query'], e['status']) for e in trees]}")
        hub = hf.entries(server="hub")
        cdn = hf.entries(server="cdn")
        c.check(hub and all(e["auth"] == "Bearer hf_secret" for e in hub),
                "HF_TOKEN not sent with every Hub request")
        c.check(cdn and all(e["auth"] is None for e in cdn),
                f"a token went to the CDN: {[e['auth'] for e in cdn if e['auth']][:1]}")
        c.check(len([e for e in cdn if e["status"] == 206]) >= 4,
                f"{len(cdn)} CDN requests for a 4 MiB file at 1 MiB parts")
        c.check(sum(e["bytes"] for e in cdn) == len(q8),
                f"CDN served {sum(e['bytes'] for e in cdn)} bytes of a {len(q8)}-byte file")
        hf.page_size = None

        # Lower case works the same: names compare case-insensitively (as Ollama's), so the
        # pull lands on the model already there, spelled as stored, with the same file.
        hf.clear()
        before = manifest("Q8_0")
        st, _, lines = pull(f"hf.co/{org}/{repo}:q8_0")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"pull :q8_0: {lines[-2:]}")
        up = manifest("Q8_0")
        names = os.listdir(os.path.join(models, "manifests", "hf.co", org, repo))
        c.check(before and up and before["layers"] == up["layers"] and "q8_0" not in names,
                f"':q8_0' did not land on ':Q8_0' with the same file: {names}")
        c.check(sum(e["bytes"] for e in hf.entries(server="cdn")) == 0,
                "a blob already in the store was fetched again")

        # No tag: Q4_K_M (never the mmproj that also says Q4_K_M).
        st, _, lines = pull(f"hf.co/{org}/{repo}")
        q4_hex = hashlib.sha256(q4).hexdigest()
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"pull default: {lines[-2:]}")
        m = manifest("latest")
        c.check(m is not None and [l["digest"] for l in m["layers"]] == ["sha256:" + q4_hex],
                f"default tag did not pick Q4_K_M: {m and m['layers']}")
        st, tags = srv.json("GET", "/api/tags")
        names = [t["name"] for t in tags["models"]]
        c.check(f"hf.co/{org}/{repo}:latest" in names and f"hf.co/{org}/{repo}:Q8_0" in names,
                f"pulled models missing from /api/tags: {names}")

        # A split model: parts gathered in order, same answers as the unsplit file.
        st, _, lines = pull(f"hf.co/{org}/{repo}:f16")
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"pull split: {lines[-2:]}")
        m = manifest("f16")
        want = ["sha256:" + hashlib.sha256(d).hexdigest() for d in part_bytes]
        c.check(m is not None and [l["digest"] for l in m["layers"]] == want
                and all(l["mediaType"] == "application/vnd.ollama.image.model" for l in m["layers"]),
                f"split manifest layers: {m and m['layers']}")
        for d in want:
            c.check(os.path.exists(blob_path(d[7:])) and sha_file(blob_path(d[7:])) == d[7:],
                    f"split part blob {d[:19]} missing or wrong")
        put_model(models, "unsplit:latest", f16_path)
        gen = {"prompt": "The quick brown fox", "stream": False,
               "options": dict(GREEDY, num_predict=16)}
        st1, a = srv.json("POST", "/api/generate", dict(gen, model=f"hf.co/{org}/{repo}:f16"))
        st2, b = srv.json("POST", "/api/generate", dict(gen, model="unsplit"))
        c.check(st1 == 200 and st2 == 200 and a.get("context") and a["context"] == b["context"]
                and a["response"] and a["response"] == b["response"] and a["eval_count"] == 16,
                f"split model generates differently: {st1} {str(a)[:300]} / {st2} {str(b)[:300]}")
        st, show = srv.json("POST", "/api/show", {"model": f"hf.co/{org}/{repo}:f16"})
        c.check(st == 200 and show.get("details", {}).get("quantization_level") == "F16"
                and show.get("model_info", {}).get("general.architecture") == "llama",
                f"show of the split model: {st} {str(show)[:300]}")

        # The CLI's engine commands open a split model by its first part's path.
        tokens = [1, 50, 200, 7, 99, 3000]
        split_rows = hearth_logits(parts[0], tokens, all_positions=True)
        whole_rows = hearth_logits(f16_path, tokens, all_positions=True)
        c.check(split_rows.shape == whole_rows.shape and np.array_equal(split_rows, whole_rows),
                "logits of the split file differ from the unsplit file's")
        moved = os.path.join(tmp, "lonely-00001-of-00003.gguf")
        shutil.copyfile(parts[0], moved)
        p = subprocess.run([HEARTH, "logits", "-m", moved, "--tokens", "1,2"], capture_output=True,
                           text=True)
        c.check(p.returncode != 0 and "part 2 of 3 is missing" in p.stderr,
                f"a split model with missing parts: {p.returncode} {p.stderr[-300:]}")

        # Created FROM a split model's first part: every part a layer, same answers.
        st, _, lines = srv.ndjson("/api/create", {"model": "fromsplit", "from": parts[0]})
        c.check(st == 200 and lines[-1] == {"status": "success"}, f"create from split: {lines[-2:]}")
        mp = os.path.join(models, "manifests", "registry.ollama.ai", "library", "fromsplit", "latest")
        mm = json.load(open(mp)) if os.path.exists(mp) else {"layers": []}
        c.check([l["digest"] for l in mm["layers"] if l["mediaType"].endswith(".model")] == want,
                f"create from a split path: layers {mm['layers']}")
        st3, d = srv.json("POST", "/api/generate", dict(gen, model="fromsplit"))
        c.check(st3 == 200 and d.get("context") == b.get("context"),
                f"model created from split parts generates differently: {str(d)[:300]}")
        # `hearth create` with a Modelfile FROM the first part: the CLI uploads every part.
        mf = os.path.join(tmp, "Modelfile")
        with open(mf, "w") as f:
            f.write(f"FROM {parts[0]}\n")
        p = subprocess.run([HEARTH, "create", "fromcli", "-f", mf], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, HEARTH_HOST=f"127.0.0.1:{srv.port}"))
        mp = os.path.join(models, "manifests", "registry.ollama.ai", "library", "fromcli", "latest")
        mm = json.load(open(mp)) if os.path.exists(mp) else {"layers": []}
        c.check(p.returncode == 0 and [l["digest"] for l in mm["layers"]
                                       if l["mediaType"].endswith(".model")] == want,
                f"hearth create FROM a split path: {p.returncode} {p.stderr[-300:]} {mm['layers']}")
        st4, e = srv.json("POST", "/api/generate", dict(gen, model="fromcli"))
        c.check(st4 == 200 and e.get("context") == b.get("context"),
                f"model created by the CLI from split parts generates differently: {str(e)[:300]}")
        # And FROM that model: the copy keeps every part.
        st, _, lines = srv.ndjson("/api/create", {"model": "fromsplit2", "from": "fromsplit",
                                                  "system": "be brief"})
        mp = os.path.join(models, "manifests", "registry.ollama.ai", "library", "fromsplit2",
                          "latest")
        mm = json.load(open(mp)) if os.path.exists(mp) else {"layers": []}
        c.check(st == 200 and [l["digest"] for l in mm["layers"]
                               if l["mediaType"].endswith(".model")] == want,
                f"create from a split model: {lines[-1:]} {mm['layers']}")

        # A quant the repository lacks: an error listing what it has.
        st, _, lines = pull(f"hf.co/{org}/{repo}:Q3_K_S")
        err = lines[-1].get("error", "") if st == 200 else ""
        c.check("Q3_K_S" in err and "available: F16, Q4_K_M, Q8_0" in err,
                f"missing quant: {st} {lines[-1:] if st == 200 else lines}")
        c.check(manifest("Q3_K_S") is None, "a manifest was written for a missing quant")
        st, body = srv.json("POST", "/api/pull", {"model": f"hf.co/{org}/{repo}:Q3_K_S",
                                                  "stream": False})
        c.check(st == 404 and "available" in body.get("error", ""), f"not streaming: {st} {body}")

        # A split part missing from the repository; an unknown repository.
        st, _, lines = pull(f"hf.co/{org}/gap-GGUF:Q8_0")
        err = lines[-1].get("error", "") if st == 200 else ""
        c.check("part 2 of 2" in err, f"split part missing from the repository: {lines[-1:]}")
        st, body = srv.json("POST", "/api/pull", {"model": f"hf.co/{org}/nope:Q8_0",
                                                  "stream": False})
        c.check(st == 404 and "not found" in body.get("error", ""), f"unknown repo: {st} {body}")

        # Without the token the Hub says 401: an error saying so.
        srv2 = Server(env=dict(ENV, HF_ENDPOINT=hf.url, HF_TOKEN=""))
        try:
            st, body = srv2.json("POST", "/api/pull", {"model": f"hf.co/{org}/{repo}:Q8_0",
                                                       "stream": False})
            c.check(st in (401, 403) and "HF_TOKEN" in body.get("error", ""),
                    f"pull without a token: {st} {body}")
        finally:
            srv2.stop()

        # Corrupted in transit once: fetched again, verified. Every time: refused, nothing kept.
        bad = bytes(q4[:-1]) + bytes([q4[-1] ^ 1])  # another file: nothing of it in the store
        bad_hex = hf.add_file(org, "bad-GGUF", "bad-Q4_K_M.gguf", bad)
        hf.fault(bad_hex, "corrupt", times=1, at=len(bad) // 2)
        st, _, lines = pull(f"hf.co/{org}/bad-GGUF:Q4_K_M")
        c.check(st == 200 and lines[-1] == {"status": "success"},
                f"corrupted once: {lines[-1:]}")
        c.check(os.path.exists(blob_path(bad_hex)) and sha_file(blob_path(bad_hex)) == bad_hex,
                "the blob fetched again after a corruption does not match its oid")
        srv.json("DELETE", "/api/delete", {"model": f"hf.co/{org}/bad-GGUF:Q4_K_M"})
        c.check(not os.path.exists(blob_path(bad_hex)), "delete left the blob")
        hf.fault(bad_hex, "corrupt", times=100, at=12345)
        st, _, lines = pull(f"hf.co/{org}/bad-GGUF:Q4_K_M")
        err = lines[-1].get("error", "") if st == 200 else ""
        c.check("digest mismatch" in err, f"corrupted every time: {lines[-1:]}")
        c.check(not os.path.exists(blob_path(bad_hex)), "a corrupt blob entered the store")
        c.check(manifest("Q4_K_M", "bad-GGUF") is None, "a manifest names a corrupt blob")

        # The CLI: `hearth pull hf.co/...` against the same server.
        p = subprocess.run([HEARTH, "pull", f"hf.co/{org}/{repo}:Q4_K_M"], capture_output=True,
                           text=True, timeout=300,
                           env=dict(os.environ, HEARTH_HOST=f"127.0.0.1:{srv.port}"))
        c.check(p.returncode == 0 and manifest("Q4_K_M") is not None,
                f"hearth pull (CLI): {p.returncode} {p.stderr[-300:]}")

        c.check(store_problems(models) == [], f"store problems: {store_problems(models)}")
        c.check(hf.errors == [], f"fake Hub handler errors: {hf.errors[:1]}")
    finally:
        srv.stop()
        hf.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
