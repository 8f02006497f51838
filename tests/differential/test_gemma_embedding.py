"""gemma-embedding (EmbeddingGemma) against llama.cpp.

Models: tools/embed/mkgemmaemb.py writes a small random-weight EmbeddingGemma the way llama.cpp's
converter lays out google/embeddinggemma-300m with its sentence-transformers Dense modules: 6
Gemma 3 layers (n_embd 256, 4 query heads sharing one KV head of 64; llama.cpp's default
pattern makes layers 0-4 sliding and 5 global), sliding window 16 (llama.cpp's symmetric window
for non-causal attention: 8 positions either side), mean pooling, dense_2 (256 -> 1024) and
dense_3 (1024 -> 256), and the real Gemma 3 vocabulary (262k tokens, BOS and EOS added). Once
in F16 and once in Q8_0 (the same weights quantized as the converter's --outtype q8_0 does).

Per text (4 to 262 tokens with BOS and EOS; all but the shortest cross the window):
  - tokens: `hearth tokenize` equals llama.cpp's tokenizer plus the EOS its embedding context
    appends ([BOS] pieces [EOS], what node-llama-cpp's LlamaEmbeddingContext evaluates);
  - `hearth embed -m MODEL --tokens IDS` (the raw pooled vector after the Dense heads) against
    `llama-oracle embed MODEL --text TEXT` (llama_get_embeddings_seq, raw as well): cosine
    >= 0.9999 at F16, >= 0.999 at Q8_0, and the same width.
Through the server (F16 model): /api/embed with every text in one call gives L2-normalized
vectors in llama.cpp's directions (cosine >= 0.9999), the same as one call per text; /api/show
lists only the `embedding` capability; generate and chat are refused with a 400.

Measured (Zen 4 EPYC, AVX-512): cosine 1 - 6e-7 at worst at F16, 1 - 2.3e-4 at Q8_0. The Q8_0
gap is rounding: hearth's bidirectional attention rounds a little differently from both of
llama.cpp's attention paths, and quantizing activations to Q8_0 amplifies such differences
(llama.cpp's own flash vs non-flash attention differ by as much on these files).

How much the checks can tell (llama.cpp alone, same weights): the same file with a window large
enough to never bind gives cosine 0.93 on the 11-token text and 0.69 on the 29-token one, so a
missing window, or one of another extent, fails; llama.cpp's own F16 vs Q8_0 vectors are at
cosine 0.9996-0.9997.

Fails (not skips) while `hearth embed` or the architecture is missing."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from harness import HEARTH, ORACLE, Checker, oracle_embed_many, run_json
from serve_util import Server, put_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MKGEMB = os.path.join(ROOT, "tools", "embed", "mkgemmaemb.py")
COS_MIN = {"F16": 0.9999, "Q8_0": 0.999}
EOS = 1  # <eos>: EmbeddingGemma's tokenizer ends every input with it
TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings turn text into vectors; similar texts land close together, and a search engine "
    "ranks documents by how near they are to the query.",
    "Café déjà vu – 東京タワーは高い 🚀 naïve résumé",
    "In the beginning the river ran slowly past the old mill, where children played on the "
    "stone bridge and watched the water wheel turn. Years later the mill was quiet, the wheel "
    "was still, and only the river remembered the songs they had sung on long summer evenings.",
    " ".join(["search_document: lanterns, meadows and granite bridges over quiet rivers"] * 20),
]


def oracle(*args):
    return run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), *args])


def hearth_json(*args):
    cmd = [HEARTH, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cosine(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    return float(a @ b) / n if n > 0 else 0.0


def main():
    c = Checker("gemma-embedding")
    if not (os.path.isfile(HEARTH) and os.access(HEARTH, os.X_OK)):
        c.check(False, f"HEARTH_BIN {HEARTH!r} is not an executable file (build hearth, or set "
                       "HEARTH_BIN)")
        c.finish()
    tmp = tempfile.mkdtemp(prefix="hearth-gemb-")
    try:
        run(c, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # ~370 MB of models and store
    c.finish()


def run(c, tmp):
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS, f)
    models = {}
    for dtype in ("F16", "Q8_0"):
        models[dtype] = os.path.join(tmp, f"gemma-embedding-{dtype}.gguf")
        subprocess.run(["/usr/bin/python3", MKGEMB, models[dtype], "--dtype", dtype, "--seed", "3"],
                       check=True, stdout=subprocess.DEVNULL)
    refs = {}
    hearth_ok = True
    for dtype, model in models.items():
        toks = oracle("tokenize", model, "--texts-file", texts_file, "--no-special")["results"]
        for text, r, ref in zip(TEXTS, toks, oracle_embed_many(model, texts_file)):
            label = f"{dtype} {text[:28]!r}"
            ids = r["tokens"] + [EOS]
            refs[(dtype, text)] = ref
            if not hearth_ok:
                continue
            try:
                ours_ids = hearth_json("tokenize", "-m", model, "--text", text)["tokens"]
                out = hearth_json("embed", "-m", model, "--tokens", ",".join(map(str, ids)))
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                c.check(False, f"{label}: hearth failed - the gemma-embedding architecture or "
                               f"the embed command is missing or broken:\n{e}")
                hearth_ok = False  # one message, not one per text; the oracle side still runs
                continue
            c.check(ours_ids == ids, f"{label}: hearth tokens {ours_ids} != llama.cpp's {ids}")
            ours = np.array(out.get("embedding", []), dtype=np.float64)
            c.check(out.get("n_embd") == len(ref) and ours.shape == ref.shape,
                    f"{label}: n_embd {out.get('n_embd')} / {ours.shape} vs llama.cpp {ref.shape}")
            if ours.shape != ref.shape:
                continue
            c.check(bool(np.all(np.isfinite(ours))), f"{label}: non-finite values")
            cos = cosine(ours, ref)
            d = float(np.max(np.abs(ours - ref)))
            c.check(cos >= COS_MIN[dtype], f"{label}: cosine {cos:.7f} < {COS_MIN[dtype]}")
            print(f"{dtype:5s} n={len(ids):4d} cos-1 {cos - 1:+.1e} max|diff| {d:.2e} "
                  f"(|ref| {np.linalg.norm(ref):.2f})", flush=True)

    # Through the server: normalized, in llama.cpp's directions, batched = one at a time; an
    # embedding model embeds and does nothing else.
    if hearth_ok:
        s = Server(models=os.path.join(tmp, "store"), env={"HEARTH_NUM_PARALLEL": "1"})
        try:
            put_model(s.models, "gemb:latest", models["F16"])
            st, r = s.json("POST", "/api/embed", {"model": "gemb", "input": TEXTS})
            c.check(st == 200 and len(r.get("embeddings", [])) == len(TEXTS), f"/api/embed: {st} {r}")
            if st == 200:
                for text, v in zip(TEXTS, r["embeddings"]):
                    nrm = math.sqrt(sum(x * x for x in v))
                    c.check(abs(nrm - 1) < 1e-5, f"/api/embed {text[:20]!r}: norm {nrm}")
                    cos = cosine(v, refs[("F16", text)])
                    c.check(cos >= COS_MIN["F16"],
                            f"/api/embed {text[:20]!r}: cosine vs llama.cpp {cos:.7f}")
                for text, v in zip(TEXTS[:3], r["embeddings"]):
                    st1, one = s.json("POST", "/api/embed", {"model": "gemb", "input": text})
                    ok = st1 == 200
                    d = max(abs(x - y) for x, y in zip(v, one["embeddings"][0])) if ok else 1
                    c.check(ok and d <= 1e-5, f"/api/embed {text[:20]!r}: alone vs batched {d}")
            st, r = s.json("POST", "/api/show", {"model": "gemb"})
            c.check(st == 200 and r.get("capabilities") == ["embedding"],
                    f"/api/show capabilities: {st} {r.get('capabilities')}")
            st, r = s.json("POST", "/api/generate", {"model": "gemb", "prompt": "hi",
                                                     "stream": False})
            c.check(st == 400 and "does not support generate" in r.get("error", ""),
                    f"generate: {st} {r}")
            st, r = s.json("POST", "/api/chat", {"model": "gemb", "stream": False,
                                                 "messages": [{"role": "user", "content": "hi"}]})
            c.check(st == 400 and "does not support chat" in r.get("error", ""), f"chat: {st} {r}")
        finally:
            s.stop()


if __name__ == "__main__":
    main()
