#!/usr/bin/python3
"""mkgemmaemb.py - a small random-weight EmbeddingGemma as GGUF (arch "gemma-embedding"), laid
out as llama.cpp's converter writes google/embeddinggemma-300m with
--sentence-transformers-dense-modules, with the real Gemma 3 tokenizer.

  /usr/bin/python3 tools/embed/mkgemmaemb.py OUT.gguf [--dtype F16|F32|Q8_0] [--seed N]
        [--n-embd 256] [--n-layer 6] [--n-head 4] [--n-head-kv 1] [--head-dim 64] [--n-ff 512]
        [--window 16] [--dense-ff 1024 | --no-dense] [--pooling mean|cls|last|none]
        [--vocab ../shared/fixtures/vocab-gemma3.gguf]

What llama.cpp's converter (conversion/gemma.py EmbeddingGemma, from Gemma3Model) writes, and
what this file writes the same way:
  gemma-embedding.{context_length, embedding_length, block_count, feed_forward_length,
  attention.head_count, attention.head_count_kv, attention.key_length, attention.value_length,
  attention.layer_norm_rms_epsilon, rope.freq_base (global layers), rope.freq_base_swa (sliding
  layers), attention.sliding_window (config.json's, not the one transformers adjusts),
  pooling_type (sentence-transformers' Pooling module: mean), dense_2_feat_in/out and
  dense_3_feat_in/out (the 2_Dense and 3_Dense modules)}. No attention.causal (llama.cpp forces
  non-causal) and no sliding_window_pattern (llama.cpp's default 6: layer il slides iff
  il % 6 < 5).
  Tensors: token_embd, output_norm, per layer attn_norm, attn_q/k/v/output, attn_q_norm,
  attn_k_norm, post_attention_norm, ffn_norm, ffn_gate/up/down, post_ffw_norm; dense_2.weight
  (ggml ne {n_embd, dense_ff}) and dense_3.weight (ne {dense_ff, n_embd}). Norm weights are
  stored with Gemma's +1 already added (here: 1 + noise). 1-D tensors F32; matrices in --dtype
  (Q8_0 as the converter's --outtype q8_0 writes it: gguf-py's Q8_0, d = max|x| / 127 as F16,
  q = round-half-away(x / d)).
  Tokenizer: the Gemma 3 SentencePiece vocabulary (tokenizer.ggml.* of the vocab GGUF, the full
  262k tokens), with EmbeddingGemma's special-token settings: BOS <bos> (2) and EOS <eos> (1)
  both added (its tokenizer wraps every input as <bos> ... <eos>); no chat template.

The same arguments always give a byte-identical file. Only python3 + numpy; the GGUF writer is
tests/tools/gguf_io.py.
"""
import argparse
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, "..", "..")
sys.path.insert(0, os.path.join(_ROOT, "tests", "tools"))
import gguf_io as g  # noqa: E402

_SHARED = os.environ.get("HEARTH_SHARED") or os.path.join(_ROOT, "..", "shared")
DEFAULT_VOCAB = os.path.join(_SHARED, "fixtures", "vocab-gemma3.gguf")
if not os.path.isfile(DEFAULT_VOCAB):
    DEFAULT_VOCAB = "/work/shared/fixtures/vocab-gemma3.gguf"

A = "gemma-embedding"
POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3}
GGML_Q8_0 = 8
FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7}


def round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def q8_0(a):
    """float32 rows -> Q8_0 blocks (fp16 scale + 32 int8), as gguf-py quantizes."""
    blocks = a.reshape(-1, 32).astype(np.float32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    qs = round_half_away(blocks * inv).astype(np.int8)
    out = np.concatenate([d.astype("<f2").view(np.uint8), qs.view(np.uint8)], axis=1)
    return out.tobytes()


def encode(a, dtype):
    """numpy float32 array (outermost first) -> (ggml type, bytes)."""
    if dtype == "F32" or a.ndim == 1:
        return g.GGML_F32, np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return g.GGML_F16, np.ascontiguousarray(a, dtype="<f2").tobytes()
    if dtype == "Q8_0":
        if a.shape[-1] % 32:  # the converter falls back to F16 for such rows
            return g.GGML_F16, np.ascontiguousarray(a, dtype="<f2").tobytes()
        return GGML_Q8_0, q8_0(a)
    raise ValueError(dtype)


def tokenizer_kvs(vocab_path):
    """tokenizer.ggml.* of the Gemma 3 vocab GGUF, with EmbeddingGemma's special tokens."""
    src = g.read(vocab_path)
    kvs = [kv for kv in src.kvs
           if kv.key.startswith("tokenizer.") and kv.key != "tokenizer.chat_template"]
    tokens = src.get("tokenizer.ggml.tokens")
    out = g.Gguf(kvs)
    out.set("tokenizer.ggml.eos_token_id", g.U32, tokens.index("<eos>"))
    out.set("tokenizer.ggml.bos_token_id", g.U32, tokens.index("<bos>"))
    out.set("tokenizer.ggml.add_bos_token", g.BOOL, True)
    out.set("tokenizer.ggml.add_eos_token", g.BOOL, True)
    return out.kvs, len(tokens)


def build(args):
    rng = np.random.default_rng(args.seed)
    E, L, H, HKV, D, F = (args.n_embd, args.n_layer, args.n_head, args.n_head_kv, args.head_dim,
                          args.n_ff)
    tok_kvs, n_vocab = tokenizer_kvs(args.vocab)
    kv = g.Gguf()
    kv.set("general.architecture", g.STR, A)
    kv.set("general.name", g.STR, "hearth-embeddinggemma-tiny")
    kv.set("general.file_type", g.U32, FILE_TYPE[args.dtype])
    for key, typ, val in [
            ("context_length", g.U32, args.n_ctx),
            ("embedding_length", g.U32, E),
            ("block_count", g.U32, L),
            ("feed_forward_length", g.U32, F),
            ("attention.head_count", g.U32, H),
            ("attention.head_count_kv", g.U32, HKV),
            ("attention.key_length", g.U32, D),
            ("attention.value_length", g.U32, D),
            ("attention.layer_norm_rms_epsilon", g.F32, 1e-6),
            ("rope.freq_base", g.F32, 1000000.0),
            ("rope.freq_base_swa", g.F32, 10000.0),
            ("attention.sliding_window", g.U32, args.window)]:
        kv.set(f"{A}.{key}", typ, val)
    if args.pooling != "none":
        kv.set(f"{A}.pooling_type", g.U32, POOLING[args.pooling])
    if args.dense_ff:
        kv.set(f"{A}.dense_2_feat_in", g.U32, E)
        kv.set(f"{A}.dense_2_feat_out", g.U32, args.dense_ff)
        kv.set(f"{A}.dense_3_feat_in", g.U32, args.dense_ff)
        kv.set(f"{A}.dense_3_feat_out", g.U32, E)
    kvs = kv.kvs + tok_kvs

    tensors = []

    def add(name, a):
        typ, data = encode(a.astype(np.float32), args.dtype)
        tensors.append(g.Tensor(name, list(reversed(a.shape)), typ, data))

    def w(name, shape, std=0.05):
        add(name, rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def norm(name, n):
        add(name, 1.0 + rng.standard_normal(n, dtype=np.float32) * np.float32(0.05))

    w("token_embd.weight", (n_vocab, E), std=0.02)
    for i in range(L):
        b = f"blk.{i}."
        norm(b + "attn_norm.weight", E)
        w(b + "attn_q.weight", (H * D, E))
        w(b + "attn_k.weight", (HKV * D, E))
        w(b + "attn_v.weight", (HKV * D, E))
        w(b + "attn_output.weight", (E, H * D))
        norm(b + "attn_q_norm.weight", D)
        norm(b + "attn_k_norm.weight", D)
        norm(b + "post_attention_norm.weight", E)
        norm(b + "ffn_norm.weight", E)
        w(b + "ffn_gate.weight", (F, E))
        w(b + "ffn_up.weight", (F, E))
        w(b + "ffn_down.weight", (E, F))
        norm(b + "post_ffw_norm.weight", E)
    norm("output_norm.weight", E)
    if args.dense_ff:  # generate_extra_tensors: after the model's own tensors
        w("dense_2.weight", (args.dense_ff, E))
        w("dense_3.weight", (E, args.dense_ff))
    return g.Gguf(kvs, tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=list(FILE_TYPE), default="F16")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-layer", type=int, default=6)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--n-ff", type=int, default=512)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--window", type=int, default=16,
                    help="attention.sliding_window (llama.cpp: window / 2 on either side)")
    ap.add_argument("--dense-ff", type=int, default=1024,
                    help="2_Dense output / 3_Dense input width (EmbeddingGemma: 4 x n_embd)")
    ap.add_argument("--no-dense", dest="dense_ff", action="store_const", const=0)
    ap.add_argument("--pooling", choices=list(POOLING), default="mean")
    ap.add_argument("--vocab", default=DEFAULT_VOCAB, help="a GGUF with the Gemma 3 tokenizer")
    args = ap.parse_args()
    g.write(args.out, build(args))


if __name__ == "__main__":
    main()
