"""BERT embeddings against llama.cpp: for each pooling type (mean, cls, last) and weight type
(F32, F16), make a tiny random BERT with tools/embed/mkbert.py, tokenize a few texts with the
oracle, run `hearth embed -m MODEL --tokens IDS` on [CLS] + pieces + [SEP] (exactly what
node-llama-cpp's embedding context evaluates) and compare the pooled vector with
`llama-oracle embed`.

Neither side is normalized: llama.cpp returns the raw pooled vector (llama_get_embeddings_seq;
node-llama-cpp copies it unchanged) and `hearth embed` prints the raw pooled vector.

Tolerances (max |hearth - llama.cpp| over the n_embd values; the values are LayerNorm outputs,
|x| up to ~3). llama.cpp is not exact float math here. On the CPU its flash attention (on by
default: "auto") casts K and V to F16, and below 64 tokens also rounds Q to F16 and keeps the
V sum in F16; its GELU goes through an fp16 lookup table; F16 matmuls round the activations to
F16. tools/embed/mkbert.py's numpy reference reproduces these roundings (--emulate) and then
agrees with llama.cpp to ~3e-7 on most vectors; on the others one F16 rounding falls on the other
side (an f32-level difference flips one fp16 ulp), worth up to 1.4e-3. Plain float64 math with
tanh-GELU, what a straightforward F32 engine computes, differs by up to 1.7e-3 (F32 weights) and
1.5e-3 (F16); cosine >= 1 - 2.4e-7 (measured on ~200 vectors: 10 random models, 3 poolings x
2 types, 6 texts of 3 to 74 tokens). So a 1e-4 (F32) / 1e-3 (F16) tolerance would reject a correct
engine; hearth's own `embed` (main at b041fba) measured up to 1.9e-3. The tolerance is 5e-3 for
both (~2.5x the worst measured, ~1.7e-3 of the values' range), and the cosine must be
>= 1 - 1e-5. Checked against mkbert's reference with deliberate bugs: a missing token_types row
(max |diff| >= 1.3), a causal mask (>= 0.08), a dropped attn_output bias (>= 0.1) and an
L2-normalized output (>= 1.3) all fail; GELU erf instead of tanh and eps 1e-5 instead of 1e-12
stay below llama.cpp's own rounding noise and cannot be caught here (docs/bert-llama-cpp.md).

Fails (not skips) while `hearth embed` or the bert architecture is missing."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from harness import HEARTH, ORACLE, Checker, oracle_embed_many, run_json

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MKBERT = os.path.join(ROOT, "tools", "embed", "mkbert.py")
sys.path.insert(0, os.path.dirname(MKBERT))
import mkbert  # noqa: E402  (read_gguf, wpm_tokenize: GGUF metadata and the tokenizer cross-check)

TOL = {"F32": 5e-3, "F16": 5e-3}
# (weight type, pooling, extra mkbert options): every pooling in both types with separate
# attn_q/k/v + biases and a token_types table, plus the optional-tensor variants (fused attn_qkv,
# no token_types.weight).
CASES = [(dt, pool, ()) for dt in ("F32", "F16") for pool in ("mean", "cls", "last")]
CASES.append(("F16", "mean", ("--fused-qkv", "--no-token-types")))
COS_MIN = 1 - 1e-5
TEXTS = [
    "hello world",
    "a",
    "The quick brown fox jumps over the lazy dog!",
    "cats and dogs playing, walking; talking.",  # continuation pieces, punctuation
    "unplayable xyz\u20ac tokens",  # a word with no full match -> [UNK]
    " ".join(["good morning world the house is not water"] * 9),  # 74 tokens: FA tiled path
]


def oracle(*args):
    return run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), *args])


def hearth_embed(model, ids):
    cmd = [HEARTH, "embed", "-m", model, "--tokens", ",".join(map(str, ids))]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    c = Checker("bert")
    if not (os.path.isfile(HEARTH) and os.access(HEARTH, os.X_OK)):
        c.check(False, f"HEARTH_BIN {HEARTH!r} is not an executable file (build hearth, or set "
                       "HEARTH_BIN)")
        c.finish()
    tmp = tempfile.mkdtemp(prefix="hearth-bert-")
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS, f)
    hearth_ok = True
    for seed, (dtype, pooling, extra) in enumerate(CASES, 1):
        name = f"{pooling}/{dtype}" + "".join(" " + e.lstrip("-") for e in extra)
        model = os.path.join(tmp, f"bert-{seed}.gguf")
        subprocess.run([sys.executable, MKBERT, model, "--pooling", pooling, "--dtype", dtype,
                        "--seed", str(seed), *extra], check=True, capture_output=True)
        meta, _ = mkbert.read_gguf(model)
        cls_id = meta["tokenizer.ggml.bos_token_id"]
        sep_id = meta["tokenizer.ggml.seperator_token_id"]
        # The embedding context tokenizes without special-token parsing and without BOS, then
        # puts [CLS] first and [SEP] last (node-llama-cpp LlamaEmbeddingContext._prepareInput).
        toks = oracle("tokenize", model, "--texts-file", texts_file, "--no-bos",
                      "--no-special")["results"]
        refs = oracle_embed_many(model, texts_file)
        for text, r, ref in zip(TEXTS, toks, refs):
            label = f"{name} {text[:24]!r}"
            pieces = r["tokens"]
            c.check(pieces == mkbert.wpm_tokenize(meta, text),
                    f"{label}: llama.cpp pieces {pieces} differ from mkbert.wpm_tokenize "
                    "(generator/tokenizer facts out of date, not a hearth bug)")
            ids = [cls_id] + pieces + [sep_id]
            if not hearth_ok:
                continue
            try:
                out = hearth_embed(model, ids)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                c.check(False, f"{label}: `hearth embed` failed - the bert architecture or the "
                               f"embed command is missing or broken:\n{e}")
                hearth_ok = False  # one message, not 36; the oracle side still runs
                continue
            ours = np.array(out.get("embedding", []), dtype=np.float64)
            c.check(out.get("n_embd") == len(ref) and ours.shape == ref.shape,
                    f"{label}: n_embd {out.get('n_embd')} / {ours.shape} vs llama.cpp {ref.shape}")
            if ours.shape != ref.shape:
                continue
            c.check(bool(np.all(np.isfinite(ours))), f"{label}: non-finite values")
            d = float(np.max(np.abs(ours - ref)))
            nrm = float(np.linalg.norm(ours)) * float(np.linalg.norm(ref))
            cos = float(ours @ ref) / nrm if nrm > 0 else 0.0
            hint = ""
            if abs(np.linalg.norm(ours) - 1) < 1e-3 and abs(np.linalg.norm(ref) - 1) > 1e-2:
                hint = " (hearth's vector has norm 1: it must not be normalized)"
            c.check(d <= TOL[dtype], f"{label}: max |diff| {d:.3g} > tol {TOL[dtype]}{hint}")
            c.check(cos >= COS_MIN, f"{label}: cosine {cos:.8f} < {COS_MIN}{hint}")
            print(f"{name:28s} n={len(ids):3d} max|diff| {d:.2e} cos-1 {cos - 1:.1e}",
                  flush=True)
    c.finish()


if __name__ == "__main__":
    main()
