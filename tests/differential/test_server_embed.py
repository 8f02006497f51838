"""Embeddings through the server: /api/embed, /api/embeddings and /v1/embeddings.

Models: random BERT encoders (tools/embed/mkbert.py; WordPiece vocabulary; mean and cls pooling;
nomic-bert and nomic-bert-moe),
the qwen3 and gemma3 fixtures with a pooling type added (`<arch>.pooling_type`: last for
qwen3, as Qwen3-Embedding ships, mean for gemma3), and the plain qwen3 chat fixture (no pooling
type: embedded by its last token, as Ollama's runner does).

Checked: each vector's direction against llama.cpp's (the oracle's `embed`, which returns the
raw pooled vector) with cosine >= 0.999 (Q8_0 weights; hearth's and llama.cpp's Q8_0 activation
rounding differ in the last bits); L2 norm 1; a batch of 64 inputs gives the same vectors as one
request per input (max |diff| <= 1e-5: the same kernels on more rows); concurrent requests
packed together give the same vectors too; a causal model's input longer than a batch (fed in
chunks through the KV cache) matches llama.cpp; `dimensions` cuts and renormalizes; truncation
(`truncate: false` -> 400, else the prompt_truncated count); the legacy endpoint's raw vector;
OpenAI's float and base64 encodings, token-array input and usage; empty and invalid inputs.
"""
import base64
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading

from harness import FIXTURES, oracle_embed_many
from serve_util import Server, put_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gguf_io  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
checks = {"passed": 0, "failed": 0}


def check(ok, what):
    checks["passed" if ok else "failed"] += 1
    if not ok:
        print("FAIL:", what)


def cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def norm(a):
    return math.sqrt(sum(x * x for x in a))


def with_pooling(src, dst, arch, pooling):
    g = gguf_io.read(src)
    g.set(f"{arch}.pooling_type", gguf_io.U32, pooling)
    gguf_io.write(dst, g)


TEXTS = ["hello world", "The quick brown fox jumps over the lazy dog.",
         "Embeddings turn text into vectors; similar texts land close together."]
LONG_TEXT = " ".join(["river stone lantern meadow"] * 40)


def oracle_refs(tmp, path, texts):
    """llama.cpp's vectors of texts for one model, from one oracle process."""
    f = os.path.join(tmp, "texts.json")
    with open(f, "w") as fh:
        json.dump(texts, fh)
    return {t: list(v) for t, v in zip(texts, oracle_embed_many(path, f))}


def main():
    tmp = tempfile.mkdtemp(prefix="hearth-embed-")
    qe = os.path.join(tmp, "qwen3-last.gguf")
    ge = os.path.join(tmp, "gemma3-mean.gguf")
    with_pooling(os.path.join(FIXTURES, "qwen3-Q8_0.gguf"), qe, "qwen3", 3)
    with_pooling(os.path.join(FIXTURES, "gemma3-Q8_0.gguf"), ge, "gemma3", 1)
    # Encoders (tools/embed/mkbert.py: random weights, a WordPiece vocabulary): BERT with mean
    # and cls pooling, nomic-bert (F16) and nomic-bert-moe (Q8_0) with mean pooling.
    berts = {}
    for name, args in (("bert-mean", ["--pooling", "mean", "--dtype", "F16"]),
                       ("bert-cls", ["--pooling", "cls", "--dtype", "F16"]),
                       ("nomic", ["--arch", "nomic-bert", "--dtype", "F16"]),
                       ("nomic-moe", ["--arch", "nomic-bert-moe", "--dtype", "Q8_0",
                                      "--n-layer", "4"])):
        path = os.path.join(tmp, f"{name}.gguf")
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "embed", "mkbert.py"), path,
                        *args], check=True, stdout=subprocess.DEVNULL)
        berts[name] = path
    s = Server(env={"HEARTH_NUM_PARALLEL": "1"})
    try:
        for name, path in berts.items():
            put_model(s.models, f"{name}:latest", path)
        put_model(s.models, "qe:latest", qe)
        put_model(s.models, "ge:latest", ge)
        put_model(s.models, "chat:latest", os.path.join(FIXTURES, "qwen3-Q8_0.gguf"))

        def embed(model, inp, **kw):
            return s.json("POST", "/api/embed", dict(model=model, input=inp, **kw))

        # Against llama.cpp, every pooling the fixtures carry (and, for the causal models, the
        # long input below).
        refs = {}
        for model, path in [("qe", qe), ("ge", ge)] + list(berts.items()):
            refs[model] = oracle_refs(tmp, path, TEXTS + ([LONG_TEXT] if model in ("qe", "ge") else []))
            st, r = embed(model, TEXTS)
            check(st == 200 and len(r["embeddings"]) == len(TEXTS), f"{model}: {st} {r}")
            if st != 200:
                continue
            for t, v in zip(TEXTS, r["embeddings"]):
                ref = refs[model][t]
                c = cos(v, ref)
                check(len(v) == len(ref) and c >= 0.999, f"{model} {t!r}: cosine {c:.6f}")
                check(abs(norm(v) - 1) < 1e-5, f"{model}: not normalized ({norm(v)})")
            check(r["prompt_eval_count"] > len(TEXTS) and r["total_duration"] > 0 and
                  "load_duration" in r and r["model"] == f"{model}:latest", f"{model}: fields {r}")

        # A causal model's input longer than a batch is fed in chunks through the KV cache and
        # pooled across them: a server with 64-token batches against llama.cpp (whose embedding
        # context holds 512 tokens) and against this server's one-batch answer.
        long_text = LONG_TEXT
        small = Server(env={"HEARTH_NUM_PARALLEL": "1", "HEARTH_NUM_BATCH": "64"})
        try:
            put_model(small.models, "qe:latest", qe)
            put_model(small.models, "ge:latest", ge)
            for model, path in (("qe", qe), ("ge", ge)):
                st, r = small.json("POST", "/api/embed", {"model": model, "input": long_text})
                ok = st == 200 and 128 < r["prompt_eval_count"] < 512
                check(ok, f"{model}: long input {st} {r if st != 200 else r['prompt_eval_count']}")
                if ok:
                    c = cos(r["embeddings"][0], refs[model][long_text])
                    check(c >= 0.999, f"{model}: chunked input cosine vs llama.cpp {c:.6f}")
                    st2, whole = embed(model, long_text)
                    c = cos(r["embeddings"][0], whole["embeddings"][0])
                    check(c >= 0.9999, f"{model}: chunked vs one batch cosine {c:.6f}")
        finally:
            small.stop()

        # 64 inputs in one call = one call per input.
        inputs = [f"document number {i}: " + " ".join(["alpha", "beta", "gamma"][: 1 + i % 3]) * (1 + i % 5)
                  for i in range(64)]
        st, batch = embed("qe", inputs)
        check(st == 200 and len(batch["embeddings"]) == 64, f"batch of 64: {st}")
        singles = []
        for t in inputs[:16]:
            st1, r1 = embed("qe", t)
            singles.append(r1["embeddings"][0] if st1 == 200 else None)
        worst = max(max(abs(x - y) for x, y in zip(a, b))
                    for a, b in zip(batch["embeddings"], singles) if b)
        check(all(singles) and worst <= 1e-5, f"batched vs single: max diff {worst}")

        # Concurrent calls (packed together by the runner) give the same vectors.
        results = {}

        def worker(k):
            results[k] = embed("qe", inputs[k * 16:(k + 1) * 16])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conc = []
        for k in range(4):
            st, r = results[k]
            check(st == 200, f"concurrent {k}: {st} {r}")
            conc += r["embeddings"] if st == 200 else [None] * 16
        worst = max(max(abs(x - y) for x, y in zip(a, b)) for a, b in zip(batch["embeddings"], conc) if b)
        check(worst <= 1e-5, f"concurrent vs batched: max diff {worst}")

        # dimensions: cut and renormalized.
        st, r = embed("qe", "hello world", dimensions=16)
        full = batch and embed("qe", "hello world")[1]["embeddings"][0]
        ok = st == 200 and len(r["embeddings"][0]) == 16
        check(ok and abs(norm(r["embeddings"][0]) - 1) < 1e-5, f"dimensions: {st} {r}")
        if ok:
            head = full[:16]
            check(cos(head, r["embeddings"][0]) > 0.99999, "dimensions: not the vector's head")
        st, r = embed("qe", "hello", dimensions=0)
        check(st == 400, f"dimensions 0: {st} {r}")

        # Truncation.
        huge = "word " * 5000
        st, r = embed("qe", huge, truncate=False)
        check(st == 400 and "exceeds the context length" in r.get("error", ""), f"truncate false: {st} {r}")
        st, r = embed("qe", huge, options={"num_ctx": 1024})
        check(st == 200 and r["prompt_eval_count"] == 1024 and r.get("prompt_truncated", 0) > 3000,
              f"truncated: {st} {r if st != 200 else (r['prompt_eval_count'], r.get('prompt_truncated'))}")

        # Empty and invalid input.
        st, r = embed("qe", [])
        check(st == 200 and r["embeddings"] == [], f"empty list: {st} {r}")
        st, r = s.json("POST", "/api/embed", {"model": "qe"})
        check(st == 200 and r["embeddings"] == [], f"no input loads: {st} {r}")
        st, r = embed("qe", {"a": 1})
        check(st == 400 and "invalid input type" in r.get("error", ""), f"object input: {st} {r}")
        st, r = embed("nope", "x")
        check(st == 404, f"unknown model: {st} {r}")

        # A chat model without a pooling type: its last token, normalized.
        st, r = embed("chat", "hello world")
        check(st == 200 and abs(norm(r["embeddings"][0]) - 1) < 1e-5, f"chat model: {st} {r}")
        if st == 200:
            st2, q = embed("qe", "hello world")
            check(cos(r["embeddings"][0], q["embeddings"][0]) > 0.99999,
                  "a model without pooling type embeds by its last token")

        # Legacy: the raw pooled vector.
        st, r = s.json("POST", "/api/embeddings", {"model": "qe", "prompt": "hello world"})
        ok = st == 200 and len(r["embedding"]) == len(full)
        check(ok and abs(norm(r["embedding"]) - 1) > 1e-3, f"legacy: {st} {r if st != 200 else norm(r['embedding'])}")
        if ok:
            check(cos(r["embedding"], full) > 0.99999, "legacy: another direction")
        st, r = s.json("POST", "/api/embeddings", {"model": "qe", "prompt": ""})
        check(st == 200 and r["embedding"] == [], f"legacy empty: {st} {r}")

        # OpenAI.
        st, r = s.json("POST", "/v1/embeddings", {"model": "qe", "input": ["hello world", "second"]})
        ok = st == 200 and r["object"] == "list" and [d["index"] for d in r["data"]] == [0, 1]
        check(ok and r["usage"]["prompt_tokens"] == r["usage"]["total_tokens"] > 0 and
              r["model"] == "qe:latest", f"/v1 float: {st} {r}")
        if ok:
            check(cos(r["data"][0]["embedding"], full) > 0.99999, "/v1: another vector")
        st, r = s.json("POST", "/v1/embeddings", {"model": "qe", "input": "hello world",
                                                  "encoding_format": "base64"})
        ok = st == 200 and isinstance(r["data"][0]["embedding"], str)
        check(ok, f"/v1 base64: {st} {r}")
        if ok:
            raw = base64.b64decode(r["data"][0]["embedding"])
            vec = struct.unpack(f"<{len(raw) // 4}f", raw)
            check(max(abs(a - b) for a, b in zip(vec, full)) < 1e-6, "/v1 base64 decodes to the floats")
        ids = json.loads(subprocess.run([os.environ.get("HEARTH_BIN", "build/hearth"), "tokenize",
                                         "-m", qe, "--text", "hello world"], check=True,
                                        capture_output=True, text=True).stdout)["tokens"]
        st, r = s.json("POST", "/v1/embeddings", {"model": "qe", "input": ids})
        check(st == 200 and cos(r["data"][0]["embedding"], full) > 0.99999,
              f"/v1 token ids: {st} {r}")
        st, r = s.json("POST", "/v1/embeddings", {"model": "qe", "input": []})
        check(st == 400, f"/v1 empty: {st} {r}")
        st, r = s.json("POST", "/v1/embeddings", {"model": "qe", "input": "x", "encoding_format": "hex"})
        check(st == 400, f"/v1 bad encoding: {st} {r}")

        # An encoder embeds and does nothing else.
        st, r = s.json("POST", "/api/generate", {"model": "bert-mean", "prompt": "hi", "stream": False})
        check(st == 400 and "does not support generate" in r.get("error", ""), f"bert generate: {st} {r}")
        st, r = s.json("POST", "/api/chat", {"model": "bert-mean", "stream": False,
                                             "messages": [{"role": "user", "content": "hi"}]})
        check(st == 400 and "does not support chat" in r.get("error", ""), f"bert chat: {st} {r}")
        for model in ("bert-mean", "nomic", "nomic-moe"):
            st, r = s.json("POST", "/api/show", {"model": model})
            check(st == 200 and r["capabilities"] == ["embedding"],
                  f"show {model}: {r.get('capabilities')}")

        # /api/show: the capability.
        st, r = s.json("POST", "/api/show", {"model": "qe"})
        check(st == 200 and "embedding" in r["capabilities"], f"show qe: {r.get('capabilities')}")
        st, r = s.json("POST", "/api/show", {"model": "chat"})
        check(st == 200 and "embedding" not in r["capabilities"], f"show chat: {r.get('capabilities')}")
    finally:
        s.stop()
    total = checks["passed"] + checks["failed"]
    print(f"server-embed: {checks['passed']}/{total} checks passed")
    sys.exit(1 if checks["failed"] else 0)


if __name__ == "__main__":
    main()
