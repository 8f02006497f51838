#!/usr/bin/python3
"""mklsa.py - a small embedding model with real (if modest) semantics and no training run:
latent semantic analysis of a corpus, written as a BERT-architecture GGUF that hearth and
llama.cpp run like any other embedding model.

Each word's vector is its row of a truncated SVD of the corpus's word co-occurrence matrix
(positive PMI, context-distribution smoothing 0.75), so words used in the same contexts point the
same way ("ark" near "flood", "shepherd" near "sheep"). The encoder has one layer whose attention
and feed-forward outputs are zero, so it passes LayerNorm(word vector) through and mean pooling
averages the words of a text: an averaged-word-vector embedding, a classic baseline. The most
frequent words (stop words) and the single-letter fallback pieces get zero vectors, so they do not
count. Deterministic for a given corpus and options.

  /usr/bin/python3 tools/embed/mklsa.py OUT.gguf --corpus TEXT [--dim 256] [--vocab 12000]
        [--window 5] [--uniform] [--stop 120] [--dtype F16|F32]

Used by tools/rag/eval_retrieval.mjs (the retrieval-quality set, over the King James Bible from
Debian's bible-kjv) and usable as a demo embedding model for the web chat's documents.
"""
import argparse
import collections
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mkbert  # noqa: E402  (vocabulary form, tensor types, and mkmodel's GGUF writer)
from mkbert import (LETTERS, DIGITS, PUNCT, PHANTOM, SPECIALS, TT_CONTROL, TT_NORMAL,  # noqa: E402
                    boolean, f32, string, u32, write_gguf)


def words_of(text):
    return re.findall(r"[a-z]+", text.lower())


def cooccurrence(ids, V, window, harmonic):
    """Symmetric counts of word pairs within `window` positions (weighted 1/distance if
    `harmonic`, else all alike: topical rather than syntactic neighbours)."""
    C = np.zeros((V, V), dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    for d in range(1, window + 1):
        a, b = ids[:-d], ids[d:]
        keep = (a >= 0) & (b >= 0)
        flat = a[keep] * V + b[keep]
        cnt = np.bincount(flat, minlength=V * V).astype(np.float32).reshape(V, V)
        C += cnt / d if harmonic else cnt
    return C + C.T


def ppmi(C, alpha=0.75):
    total = C.sum()
    row = C.sum(1, keepdims=True)
    col = C.sum(0) ** alpha
    col = col / col.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log((C / total) / ((row / total) * col[None, :]))
    pmi[~np.isfinite(pmi)] = 0
    return np.maximum(pmi, 0).astype(np.float32)


def randomized_svd(M, k, seed=7, oversample=16, power=3):
    rng = np.random.default_rng(seed)
    Y = M @ rng.standard_normal((M.shape[1], k + oversample)).astype(np.float32)
    for _ in range(power):
        Y, _ = np.linalg.qr(Y)
        Y = M @ (M.T @ Y)
    Q, _ = np.linalg.qr(Y)
    Ub, S, _ = np.linalg.svd(Q.T @ M, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--corpus", required=True, help="UTF-8 text")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=12000, help="most frequent words kept")
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--uniform", action="store_true",
                    help="count pairs alike at any distance (default: weight by 1/distance)")
    ap.add_argument("--stop", type=int, default=120, help="most frequent words given zero vectors")
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--dtype", choices=["F16", "F32"], default="F16")
    args = ap.parse_args(argv)

    text = open(args.corpus, encoding="utf-8").read()
    words = words_of(text)
    freq = collections.Counter(words)
    kept = [w for w, c in freq.most_common(args.vocab) if c >= args.min_count and len(w) > 1]
    index = {w: i for i, w in enumerate(kept)}
    V = len(kept)
    ids = [index.get(w, -1) for w in words]
    C = cooccurrence(ids, V, args.window, not args.uniform)
    U, S = randomized_svd(ppmi(C), args.dim)
    vecs = (U * np.sqrt(S)[None, :]).astype(np.float32)
    vecs[: args.stop] = 0  # kept[] is in frequency order: the first are the stop words

    # WordPiece vocabulary in the GGUF form llama.cpp's converter writes (see mkbert.build_vocab):
    # specials, single characters (word-initial and ##continuation, so any word tokenizes), words.
    hf = list(SPECIALS) + LETTERS + DIGITS + PUNCT + ["##" + c for c in LETTERS + DIGITS]
    hf_set = set(hf)
    hf += [w for w in kept if w not in hf_set]
    tokens, types = [], []
    for t in hf:
        if t in SPECIALS:
            tokens.append(t)
            types.append(TT_CONTROL)
        elif t.startswith("##"):
            tokens.append(t[2:])
            types.append(TT_NORMAL)
        else:
            tokens.append(PHANTOM + t)
            types.append(TT_NORMAL)
    E, N = args.dim, len(tokens)
    emb = np.zeros((N, E), dtype=np.float32)
    for j, t in enumerate(hf):
        if t in index:
            emb[j] = vecs[index[t]]

    A = "bert"
    kvs = [
        ("general.architecture", string(A)),
        ("general.name", string("lsa-%d" % E)),
        ("general.file_type", u32(mkbert.FILE_TYPE[args.dtype])),
        (A + ".block_count", u32(1)),
        (A + ".context_length", u32(args.n_ctx)),
        (A + ".embedding_length", u32(E)),
        (A + ".feed_forward_length", u32(E)),
        (A + ".attention.head_count", u32(4)),
        (A + ".attention.layer_norm_epsilon", f32(1e-12)),
        (A + ".attention.causal", boolean(False)),
        (A + ".pooling_type", u32(mkbert.POOLING["mean"])),
    ] + mkbert.wordpiece_kvs(tokens, types, 2)
    z = lambda *s: np.zeros(s, dtype=np.float32)  # noqa: E731
    one = np.ones(E, dtype=np.float32)
    p = "blk.0."
    t = [("token_embd.weight", emb), ("token_types.weight", z(2, E)),
         ("position_embd.weight", z(args.n_ctx, E)),
         ("token_embd_norm.weight", one), ("token_embd_norm.bias", z(E)),
         (p + "attn_q.weight", z(E, E)), (p + "attn_q.bias", z(E)),
         (p + "attn_k.weight", z(E, E)), (p + "attn_k.bias", z(E)),
         (p + "attn_v.weight", z(E, E)), (p + "attn_v.bias", z(E)),
         (p + "attn_output.weight", z(E, E)), (p + "attn_output.bias", z(E)),
         (p + "attn_output_norm.weight", one), (p + "attn_output_norm.bias", z(E)),
         (p + "ffn_up.weight", z(E, E)), (p + "ffn_up.bias", z(E)),
         (p + "ffn_down.weight", z(E, E)), (p + "ffn_down.bias", z(E)),
         (p + "layer_output_norm.weight", one), (p + "layer_output_norm.bias", z(E))]
    write_gguf(args.path, kvs, [(n, a, mkbert.weight_type(args.dtype, n, a)) for n, a in t])
    print(json.dumps({"path": args.path, "n_vocab": N, "words": V, "dim": E,
                      "corpus_words": len(words)}))


if __name__ == "__main__":
    main(sys.argv[1:])
