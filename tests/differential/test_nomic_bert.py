"""nomic-bert and nomic-bert-moe embeddings against llama.cpp (issue #17).

For each case, tools/embed/mkbert.py writes a tiny random model the way llama.cpp's converter
writes nomic-embed-text v1.5 (`nomic-bert`: fused attn_qkv without biases, NEOX RoPE with
rope.freq_base 1000, SwiGLU FFN, 2048 positions) or nomic-embed-text-v2-moe (`nomic-bert-moe`:
attention and FFN biases, every second layer (il % moe_every_n_layers == 1) a mixture of
softmax-routed GELU experts, ffn_gate_inp kept F32), at F16 and at Q8_0 (the converter's own
Q8_0 quantizer). Vocabularies as the real models ship them: WordPiece (mkbert's small one) for
nomic-bert, an XLM-R-style Unigram one (tests/tools/mkunigram.py, tokenizer.ggml.model t5, the
nmt charsmap) for nomic-bert-moe. The oracle tokenizes each text (hearth's pieces must be the
same), `hearth embed -m MODEL --tokens IDS` runs what node-llama-cpp's embedding context
evaluates — [CLS] + pieces + [SEP] for WordPiece, pieces + </s> for Unigram — and the pooled,
un-normalized vector is compared with `llama-oracle embed`.

Per input: cosine >= 0.9999 at F16 and >= 0.999 at Q8_0 (issue #17), and max |diff| <= 5e-3 at
F16, <= 0.08 at Q8_0. The values are LayerNorm outputs (|x| up to ~3.5). Measured on a Zen 4 EPYC
(AVX-512) over these 12 cases x 7 texts with four sets of seeds (168 inputs per type and arch):
F16 max |diff| 1.9e-3 (nomic-bert) / 2.8e-3 (nomic-bert-moe), cosine >= 1 - 5.8e-7; Q8_0
3.6e-2 / 3.7e-2, cosine >= 1 - 1.1e-4; the bounds are ~2x those. The max |diff| bound is what
catches a wrong RoPE base (1000 vs 10000 moves F16 vectors by ~3e-2 at cosine 0.99994).
At F16 what remains is llama.cpp's own rounding — flash attention's F16 K/V (and F16 Q and V sum
below 64 tokens), the F16 GELU table, F16 activations before F16 matmuls — which hearth
reproduces but not bit for bit: mkbert.py's numpy reference with them emulated (--emulate) agrees
with llama.cpp to 2e-7 on most inputs, and one F16 rounding falling on the other side moves a
value by up to ~1e-3 after the later layers. At Q8_0 both sides quantize the activations to 8 bits
before each matmul (hearth as llama.cpp's x86 code does), but the F32 values before that differ in
the last bits, so now and then one activation rounds to the neighbouring step: a change of 1/127
of its block's largest value (an F16 flip is ~1/2048 of the value itself), carried through the
later layers (BERT Q8_0 files
show the same 1e-2..2e-2 against llama.cpp).

MoE routing: hearth reports the smallest margin between a token's last chosen expert and the best
unchosen one, over the input's tokens and MoE layers (`router_margin`). Where that is below
ROUTER_TIE, float noise may legitimately send a token to another expert, which changes the vector
well beyond the bounds; such an input is excused (counted and printed; at most MAX_TIES). None
is with these seeds (nor in the other three sets). Earlier, with the WordPiece vocabulary in the
MoE cases too, 2 of 336 Q8_0 inputs were: e.g. "a" (margin 1.8e-4, cosine 1 - 1.7e-3), where
mkbert's independent reference agreed with hearth to 1.5e-2 and differed from llama.cpp by 0.14
like hearth — llama.cpp took the other expert. Near-ties within the bounds are compared.

Fails (not skips) while the architectures are missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from harness import HEARTH, ORACLE, Checker, oracle_embed_many, run_json

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MKBERT = os.path.join(ROOT, "tools", "embed", "mkbert.py")
MKUNIGRAM = os.path.join(ROOT, "tests", "tools", "mkunigram.py")
sys.path.insert(0, os.path.dirname(MKBERT))
import mkbert  # noqa: E402  (read_gguf, wpm_tokenize)

COS_MIN = {"F16": 1 - 1e-4, "Q8_0": 1 - 1e-3}  # the thresholds
MAX_DIFF = {"F16": 5e-3, "Q8_0": 0.08}
ROUTER_TIE = {"F16": 1e-3, "Q8_0": 1e-2}
MAX_TIES = 2

# (arch, dtype, pooling, extra mkbert options)
CASES = []
for dt in ("F16", "Q8_0"):
    CASES += [
        ("nomic-bert", dt, "mean", ()),
        ("nomic-bert", dt, "cls", ("--n-layer", "3")),
        # 32-wide heads, 2 heads (RoPE over more dimensions), other base, no token_types
        ("nomic-bert", dt, "last", ("--n-embd", "64", "--n-head", "2", "--rope-base", "10000",
                                    "--no-token-types")),
        ("nomic-bert-moe", dt, "mean", ("--n-layer", "4")),  # layers 1 and 3 are MoE
        ("nomic-bert-moe", dt, "cls", ("--n-layer", "4", "--n-expert", "4", "--n-expert-used",
                                       "1")),
        ("nomic-bert-moe", dt, "mean", ("--n-layer", "3", "--n-embd", "128", "--n-ff", "256",
                                        "--moe-every", "3")),  # only layer 1
    ]
TEXTS = [
    "hello world",
    "a",
    "The quick brown fox jumps over the lazy dog!",
    "cats and dogs playing, walking; talking.",
    "unplayable xyz\u20ac tokens",
    " ".join(["good morning world the house is not water"] * 9),  # 74 tokens: FA tiled path
    # RoPE further out: ~220 WordPiece, ~440 Unigram pieces (v2-moe holds 512 positions)
    " ".join(["the dog walks over a brown tree in the night"] * 20),
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
    c = Checker("nomic-bert")
    if not (os.path.isfile(HEARTH) and os.access(HEARTH, os.X_OK)):
        c.check(False, f"HEARTH_BIN {HEARTH!r} is not an executable file (build hearth, or set "
                       "HEARTH_BIN)")
        c.finish()
    tmp = tempfile.mkdtemp(prefix="hearth-nomic-")
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS, f)
    ugm = os.path.join(tmp, "ugm")  # nomic-embed-text-v2-moe's kind of vocabulary
    subprocess.run([sys.executable, MKUNIGRAM, ugm, "--charsmap", "nmt"], check=True,
                   capture_output=True)
    worst = {}  # (arch, dtype) -> (max diff, min cosine)
    ties = 0
    for seed, (arch, dtype, pooling, extra) in enumerate(CASES, 1):
        name = f"{arch} {dtype} {pooling}" + "".join(" " + e.lstrip("-") for e in extra)
        model = os.path.join(tmp, f"m-{seed}.gguf")
        vocab = ["--vocab-from", os.path.join(ugm, "vocab.gguf")] if arch.endswith("moe") else []
        subprocess.run([sys.executable, MKBERT, model, "--arch", arch, "--pooling", pooling,
                        "--dtype", dtype, "--seed", str(seed), *extra, *vocab], check=True,
                       capture_output=True)
        meta, _ = mkbert.read_gguf(model)
        toks = oracle("tokenize", model, "--texts-file", texts_file, "--no-bos",
                      "--no-special")["results"]
        ours = run_json([HEARTH, "tokenize", "-m", model, "--texts-file", texts_file, "--no-bos",
                         "--no-special"])["results"]
        refs = oracle_embed_many(model, texts_file)
        for text, r, o, ref in zip(TEXTS, toks, ours, refs):
            label = f"{name} {text[:24]!r}"
            c.check(o["tokens"] == r["tokens"], f"{label}: hearth's pieces {o['tokens'][:12]} "
                                                f"!= llama.cpp's {r['tokens'][:12]}")
            if meta["tokenizer.ggml.model"] == "t5":  # Unigram: no <s>, </s> appended
                ids = r["tokens"] + [meta["tokenizer.ggml.eos_token_id"]]
            else:
                ids = ([meta["tokenizer.ggml.bos_token_id"]] + r["tokens"] +
                       [meta["tokenizer.ggml.seperator_token_id"]])
            try:
                out = hearth_embed(model, ids)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                c.check(False, f"{label}: `hearth embed` failed:\n{e}")
                continue
            ours = np.array(out.get("embedding", []), dtype=np.float64)
            c.check(ours.shape == ref.shape, f"{label}: {ours.shape} vs llama.cpp {ref.shape}")
            if ours.shape != ref.shape:
                continue
            c.check(bool(np.all(np.isfinite(ours))), f"{label}: non-finite values")
            d = float(np.max(np.abs(ours - ref)))
            nrm = float(np.linalg.norm(ours)) * float(np.linalg.norm(ref))
            cos = float(ours @ ref) / nrm if nrm > 0 else 0.0
            margin = out.get("router_margin")
            c.check((margin is not None) == (arch == "nomic-bert-moe"),
                    f"{label}: router_margin {margin} (MoE models report one)")
            note = ""
            close = cos >= COS_MIN[dtype] and d <= MAX_DIFF[dtype]
            if not close and margin is not None and margin < ROUTER_TIE[dtype]:
                ties += 1  # a token may have taken another expert: legitimately different
                note = f"  router near-tie {margin:.1e}: excused"
            else:
                c.check(cos >= COS_MIN[dtype], f"{label}: cosine {cos:.8f} < {COS_MIN[dtype]}")
                c.check(d <= MAX_DIFF[dtype], f"{label}: max |diff| {d:.3g} > {MAX_DIFF[dtype]}")
                w = worst.get((arch, dtype), (0.0, 1.0))
                worst[(arch, dtype)] = (max(w[0], d), min(w[1], cos))
            print(f"{name:58s} n={len(ids):3d} max|diff| {d:.2e} cos-1 {cos - 1:.1e}"
                  + (f" margin {margin:.1e}" if margin is not None else "") + note, flush=True)
    for (arch, dtype), (d, cos) in sorted(worst.items()):
        print(f"worst {arch} {dtype}: max|diff| {d:.2e}, cosine {cos:.8f}")
    print(f"inputs excused for a router near-tie: {ties}")
    c.check(ties <= MAX_TIES, f"{ties} inputs excused for router near-ties (at most {MAX_TIES})")
    shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
