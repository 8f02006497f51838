#!/usr/bin/python3
"""mkbert.py - a tiny random-weight BERT-family embedding model as GGUF (arch "bert", "nomic-bert"
or "nomic-bert-moe"; WordPiece vocab), plus an independent numpy reference of llama.cpp's forward
pass and pooling for them.

Write a model (keys, tensor names, shapes and types as llama.cpp's converter writes them):
  /usr/bin/python3 tools/embed/mkbert.py OUT.gguf [--arch bert|nomic-bert|nomic-bert-moe]
        [--pooling mean|cls|last|rank|none] [--dtype F32|F16|Q8_0] [--seed N] [--n-embd 64]
        [--n-layer 2] [--n-head 4] [--n-ff 128] [--n-ctx N] [--eps E] [--fused-qkv]
        [--no-token-types] [--head roberta|bert|none] [--labels N] [--rope-base B]
        [--n-expert 8] [--n-expert-used 2] [--moe-every 2] [--vocab-from VOCAB.gguf]
  nomic-embed-text v1.5's shape: --arch nomic-bert --n-embd 768 --n-layer 12 --n-head 12
        --n-ff 3072 (--n-ctx defaults to its 2048); v2-moe's: --arch nomic-bert-moe, the same
        sizes, --n-expert 8 --n-expert-used 2 --moe-every 2 (512 positions).
--vocab-from takes the vocabulary (every tokenizer.* key, e.g. of the Unigram/XLM-R vocab-only
GGUF tests/tools/mkunigram.py writes) from another file instead of the built-in WordPiece one;
n_vocab and the rows of token_types.weight (tokenizer.ggml.token_type_count) follow it.
A reranker (bge-reranker class): --pooling rank writes `bert.pooling_type = 4`, the classifier
head and `bert.classifier.output_labels` (N labels, default 1) as llama.cpp's converter writes
them: --head roberta (the default with rank; XLMRobertaForSequenceClassification: classifier.dense
-> cls.weight/bias, classifier.out_proj -> cls.output.weight/bias) or --head bert
(BertForSequenceClassification: the pooler is dropped, classifier -> cls.output.weight/bias
only). --pooling none --head ... writes a head without a pooling type.
As a stand-in for `hearth embed` (same output format; validates tests/differential/test_bert.py):
  HEARTH_BIN=tools/embed/mkbert.py /usr/bin/python3 tests/differential/test_bert.py
  (tools/embed/mkbert.py embed -m MODEL --tokens IDS [--emulate])
Reference embedding of an existing file made by this script (or any F32/F16 "bert" GGUF):
  /usr/bin/python3 tools/embed/mkbert.py --reference "hello world" MODEL.gguf
  /usr/bin/python3 tools/embed/mkbert.py --reference-tokens 2,20,31,3 MODEL.gguf
      prints {"embedding": [...], "n_embd": N, "pooling": "...", "tokens": [...]}: the pooled,
      NOT normalized vector.  --reference TEXT tokenizes like llama.cpp's WPM tokenizer and wraps
      the pieces in [CLS] ... [SEP] (what llama.cpp/node-llama-cpp's embedding context evaluates);
      --reference-tokens uses exactly the given ids.
      --emulate also reproduces llama.cpp's CPU roundings (GELU through the fp16 table, K/V cast to
      F16 for flash attention, activations rounded to F16 before F16 matmuls); without it the
      reference is plain float64 math with tanh-GELU.

The bert forward pass (see docs/bert-llama-cpp.md, from llama.cpp src/models/bert.cpp; nomic-bert:
no position_embd, NEOX RoPE on q and k, SwiGLU FFN; nomic-bert-moe: softmax-routed GELU experts
on layers i % moe_every == 1; Q8_0 weights are dequantized, activations not quantized):
  x = tok_embd[t] + token_types[0] + position_embd[pos];  x = LN(x) (token_embd_norm)
  per layer: a = Wo·MHA(Wq x+bq, Wk x+bk, Wv x+bv; scale 1/sqrt(d), no mask) + bo
             h = LN(a + x) (attn_output_norm);  f = Wdown·gelu_tanh(Wup h + bup) + bdown
             x = LN(f + h) (layer_output_norm)
  pooling over the sequence: mean of all rows / row 0 (cls) / last row; no normalization.
  rank: row 0 -> [tanh(cls.weight x + cls.bias)] -> [cls.output.weight h + cls.output.bias]
  (each step when its tensor exists, llama.cpp's build_pooling): N raw scores, no sigmoid.

Only python3 + numpy. The GGUF writer is ../shared/oracle/mkmodel.py's (imported, not copied).
The same arguments always give a byte-identical file.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_SHARED = os.environ.get("HEARTH_SHARED") or os.path.join(_HERE, "..", "..", "..", "shared")
for _cand in (os.path.join(_SHARED, "oracle"), "/work/shared/oracle"):
    if os.path.isfile(os.path.join(_cand, "mkmodel.py")):
        sys.path.insert(0, os.path.abspath(_cand))
        break
# the GGUF writer and KV helpers of ../shared/oracle/mkmodel.py
import mkmodel  # noqa: E402
from mkmodel import KV, T_ARR, T_I32, T_STR, arr, boolean, f32, string, u32, write_gguf  # noqa: E402

ARCHS = ("bert", "nomic-bert", "nomic-bert-moe")
# general.file_type as llama.cpp's converter writes it (LlamaFileType: ALL_F32, MOSTLY_F16,
# MOSTLY_Q8_0)
FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7}
GGML_Q8_0 = 8
QK8_0 = 32


def quantize_q8_0(a):
    """float32 array (rows of a multiple of 32) -> Q8_0 bytes, bit for bit what llama.cpp's
    converter writes (gguf-py quants.py Q8_0.quantize_blocks: d = amax/127 in float32, q =
    round-half-away(x * (1/d)), d stored as F16)."""
    blocks = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, QK8_0)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    v = blocks * inv
    av = np.abs(v)
    fl = np.floor(av)
    q = np.sign(v) * (fl + np.floor(2 * (av - fl)))
    out = np.concatenate([d.astype("<f2").view(np.uint8), q.astype(np.int8).view(np.uint8)], axis=1)
    return out.tobytes()


def dequantize_q8_0(raw, n):
    b = np.frombuffer(raw, np.uint8, (n // QK8_0) * 34).reshape(-1, 34)
    d = b[:, :2].copy().view("<f2").astype(np.float32)
    return (b[:, 2:].copy().view(np.int8).astype(np.float32) * d).reshape(-1)


_encode_tensor = mkmodel.encode_tensor


def _encode_tensor_q8(a, dtype):
    if dtype == "Q8_0":
        return GGML_Q8_0, quantize_q8_0(a)
    return _encode_tensor(a, dtype)


# mkmodel's writer takes the tensor shape from the float array and its bytes from encode_tensor:
# Q8_0 added here (the converter's own quantizer, above), everything else left to mkmodel.
mkmodel.encode_tensor = _encode_tensor_q8

POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3, "rank": 4}
POOLING_NAME = {v: k for k, v in POOLING.items()}

# ----------------------------------------------------------------------------- vocabulary

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4
WORDS = ("the a an and or of to in on is are was be it this that with for as at by from not "
         "hello world good morning day night cat dog house tree water fire play run walk talk "
         "quick brown fox jump over lazy test token model embed sentence vector "
         "un re").split()
CONTINUATIONS = ("s es ed ing er est ly tion ness ful able ment ers ings".split())
PUNCT = list(".,!?;:'\"()-/")
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
DIGITS = [str(d) for d in range(10)]
TT_NORMAL, TT_CONTROL = 1, 3
PHANTOM = "\u2581"


def build_vocab():
    """HF-style WordPiece vocab -> GGUF form the way llama.cpp's converter writes it
    (conversion/bert.py set_vocab.phantom): control tokens verbatim, "##x" -> "x",
    any other piece "x" -> "\u2581x"."""
    hf = list(SPECIALS)
    hf += LETTERS + DIGITS + PUNCT                      # word-initial single characters
    hf += ["##" + c for c in LETTERS + DIGITS]          # continuation single characters
    hf += WORDS
    hf += ["##" + c for c in CONTINUATIONS]
    seen, uniq = set(), []
    for t in hf:
        if t not in seen:
            seen.add(t)
            uniq.append(t)
    tokens, types = [], []
    for t in uniq:
        if t in SPECIALS:
            tokens.append(t)
            types.append(TT_CONTROL)
        elif t.startswith("##"):
            tokens.append(t[2:])
            types.append(TT_NORMAL)
        else:
            tokens.append(PHANTOM + t)
            types.append(TT_NORMAL)
    return tokens, types


# ----------------------------------------------------------------------------- model


def wordpiece_kvs(tokens, types, n_types):
    sp = {t: i for i, t in enumerate(tokens)}
    return [
        ("tokenizer.ggml.model", string("bert")),
        ("tokenizer.ggml.pre", string("default")),
        ("tokenizer.ggml.tokens", arr(T_STR, tokens)),
        ("tokenizer.ggml.token_type", arr(T_I32, types)),
        ("tokenizer.ggml.token_type_count", u32(n_types)),  # llama.cpp requires > 0
        ("tokenizer.ggml.bos_token_id", u32(sp["[CLS]"])),
        ("tokenizer.ggml.cls_token_id", u32(sp["[CLS]"])),
        ("tokenizer.ggml.seperator_token_id", u32(sp["[SEP]"])),
        ("tokenizer.ggml.unknown_token_id", u32(sp["[UNK]"])),
        ("tokenizer.ggml.padding_token_id", u32(sp["[PAD]"])),
        ("tokenizer.ggml.mask_token_id", u32(sp["[MASK]"])),
        ("tokenizer.ggml.add_bos_token", boolean(True)),
        ("tokenizer.ggml.add_sep_token", boolean(True)),
        ("tokenizer.ggml.add_eos_token", boolean(False)),
    ]


def read_typed_kvs(path, prefix):
    """The metadata of a GGUF whose keys start with `prefix`, as (key, mkmodel KV) with their
    types, to be written again."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def rstr():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 8
    take("<Q")
    n_kv = take("<Q")
    out = []
    for _ in range(n_kv):
        key, typ = rstr(), take("<I")
        if typ == T_ARR:
            et, n = take("<I"), take("<Q")
            val = [rstr() if et == T_STR else take(_SCALAR[et]) for _ in range(n)]
            kv = KV(T_ARR, val, et)
        else:
            kv = KV(typ, rstr() if typ == T_STR else take(_SCALAR[typ]))
        if key.startswith(prefix):
            out.append((key, kv))
    return out


def arch_defaults(arch):
    """What the real models of each architecture have where the options leave it open:
    (context length, LayerNorm eps, token types, RoPE base).  bert: BERT/MiniLM/bge;
    nomic-bert: nomic-embed-text v1.5 (the converter writes 2048 positions, eps 1e-12, 2 token
    types, rotary_emb_base 1000); nomic-bert-moe: nomic-embed-text-v2-moe (512 positions, eps 1e-5,
    1 token type, base 10000)."""
    return {"bert": (512, 1e-12, 2, None),
            "nomic-bert": (2048, 1e-12, 2, 1000.0),
            "nomic-bert-moe": (512, 1e-5, 1, 10000.0)}[arch]


def weight_type(dtype, name, a):
    """The converter's type for one tensor (conversion/base.py prepare_tensors): 1-D tensors,
    norms, token_types, position_embd and the MoE router (ffn_gate_inp) stay F32; the rest take
    the file type; Q8_0 needs rows of a multiple of 32 and falls back to F16 otherwise."""
    keep_f32 = ("token_types.weight", "position_embd.weight", "ffn_gate_inp.weight")
    if a.ndim <= 1 or name.endswith("_norm.weight") or name.endswith(keep_f32) \
            or not name.endswith(".weight"):
        return "F32"
    if dtype == "Q8_0" and a.shape[-1] % QK8_0:
        return "F16"
    return dtype


def build_model(args):
    rng = np.random.default_rng(args.seed)
    tokens, types = build_vocab()
    A = args.arch
    E, L, H, F = args.n_embd, args.n_layer, args.n_head, args.n_ff
    d_ctx, d_eps, d_types, d_base = arch_defaults(A)
    vocab_kvs = read_typed_kvs(args.vocab_from, "tokenizer.") if args.vocab_from else None
    if vocab_kvs:
        tokens = dict(vocab_kvs)["tokenizer.ggml.tokens"].val
        d_types = dict(vocab_kvs).get("tokenizer.ggml.token_type_count", KV(0, d_types)).val
    n_vocab = len(tokens)
    C = args.n_ctx or d_ctx
    eps = args.eps if args.eps is not None else d_eps
    n_types = 0 if args.no_token_types else d_types
    base = args.rope_base if args.rope_base is not None else d_base
    moe = A == "nomic-bert-moe"
    assert E % H == 0
    # metadata as llama.cpp's converter writes it (BertModel / NomicBertModel.set_gguf_parameters)
    kvs = [
        ("general.architecture", string(A)),
        ("general.name", string(A + "-tiny-random")),
        ("general.file_type", u32(FILE_TYPE[args.dtype])),
        (A + ".block_count", u32(L)),
        (A + ".context_length", u32(C)),
        (A + ".embedding_length", u32(E)),
        (A + ".feed_forward_length", u32(F)),
        (A + ".attention.head_count", u32(H)),
    ]
    if base is not None:
        kvs.append((A + ".rope.freq_base", f32(base)))
    kvs.append((A + ".attention.layer_norm_epsilon", f32(eps)))
    if moe:
        kvs.append((A + ".expert_count", u32(args.n_expert)))
    kvs.append((A + ".attention.causal", boolean(False)))
    if args.pooling != "none":
        kvs.append((A + ".pooling_type", u32(POOLING[args.pooling])))
    head = args.head or ("roberta" if args.pooling == "rank" else "none")
    if head != "none":
        kvs.append((A + ".classifier.output_labels",
                    arr(T_STR, ["LABEL_%d" % i for i in range(args.labels)])))
    if moe:
        kvs += [(A + ".moe_every_n_layers", u32(args.moe_every)),
                (A + ".expert_used_count", u32(args.n_expert_used))]
    kvs += vocab_kvs if vocab_kvs else wordpiece_kvs(tokens, types, d_types)

    std = 0.1

    def mat(*shape):
        return rng.normal(0.0, std, size=shape).astype(np.float32)

    def vec(n, center=0.0, s=0.05):
        return (center + rng.normal(0.0, s, size=(n,))).astype(np.float32)

    t = [("token_embd.weight", mat(n_vocab, E))]
    # token_types and position_embd stay F32 in every dtype, as llama.cpp's converter keeps them
    # (conversion/base.py: POS_EMBD, TOKEN_TYPES always F32); llama.cpp's CPU ggml_add cannot add an
    # F16 token_types row to the F32 embeddings (binary_op: unsupported types).
    if n_types:
        t.append(("token_types.weight", mat(n_types, E)))
    if A == "bert":  # the nomic encoders rotate q and k instead
        t.append(("position_embd.weight", mat(C, E)))
    t += [("token_embd_norm.weight", vec(E, 1.0)),
          ("token_embd_norm.bias", vec(E))]
    # bert: biases everywhere; nomic-bert (v1.5): none; nomic-bert-moe: attention and dense FFN
    # biases (the converter drops the experts' bias, llama.cpp has no place for it)
    biases = A != "nomic-bert"
    for i in range(L):
        p = "blk.%d." % i
        wq, wk, wv = mat(E, E), mat(E, E), mat(E, E)
        bq, bk, bv = vec(E), vec(E), vec(E)
        if args.fused_qkv or A != "bert":
            t.append((p + "attn_qkv.weight", np.concatenate([wq, wk, wv], 0)))
            if biases:
                t.append((p + "attn_qkv.bias", np.concatenate([bq, bk, bv])))
        else:
            t += [(p + "attn_q.weight", wq), (p + "attn_q.bias", bq),
                  (p + "attn_k.weight", wk), (p + "attn_k.bias", bk),
                  (p + "attn_v.weight", wv), (p + "attn_v.bias", bv)]
        t.append((p + "attn_output.weight", mat(E, E)))
        if biases:
            t.append((p + "attn_output.bias", vec(E)))
        t += [(p + "attn_output_norm.weight", vec(E, 1.0)),
              (p + "attn_output_norm.bias", vec(E))]
        if A == "nomic-bert":
            t += [(p + "ffn_up.weight", mat(F, E)), (p + "ffn_gate.weight", mat(F, E)),
                  (p + "ffn_down.weight", mat(E, F))]
        elif moe and args.moe_every > 0 and i % args.moe_every == 1:
            X = args.n_expert
            t += [(p + "ffn_gate_inp.weight", mat(X, E)),
                  (p + "ffn_up_exps.weight", mat(X, F, E)),
                  (p + "ffn_down_exps.weight", mat(X, E, F))]
        else:
            t += [(p + "ffn_up.weight", mat(F, E)), (p + "ffn_up.bias", vec(F)),
                  (p + "ffn_down.weight", mat(E, F)), (p + "ffn_down.bias", vec(E))]
        t += [(p + "layer_output_norm.weight", vec(E, 1.0)),
              (p + "layer_output_norm.bias", vec(E))]
    if head == "roberta":
        t += [("cls.weight", mat(E, E)), ("cls.bias", vec(E))]
    if head != "none":
        # larger than the other weights so the scores spread (random rows of 0.1 give |score| ~0.1)
        t += [("cls.output.weight", (mat(args.labels, E) * 5).astype(np.float32)),
              ("cls.output.bias", vec(args.labels))]
    return kvs, [(n, a, weight_type(args.dtype, n, a)) for n, a in t]


# ----------------------------------------------------------------------------- GGUF reader

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}


def read_gguf(path):
    """Minimal GGUF v3 reader: (metadata dict, {name: float32 numpy array, outermost-first})."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def rstr():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def rval(typ):
        if typ == 8:
            return rstr()
        if typ == 9:
            et, n = take("<I"), take("<Q")
            return [rval(et) for _ in range(n)]
        return take(_SCALAR[typ])

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    take("<I")  # version
    n_t, n_kv = take("<Q"), take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = rstr()
        meta[k] = rval(take("<I"))
    infos = []
    for _ in range(n_t):
        name = rstr()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        typ, off = take("<I"), take("<Q")
        infos.append((name, ne, typ, off))
    align = meta.get("general.alignment", 32)
    base = pos + (-pos) % align
    tensors = {}
    for name, ne, typ, off in infos:
        n = int(np.prod(ne))
        shape = tuple(reversed(ne))
        if typ == 0:
            a = np.frombuffer(buf, "<f4", n, base + off)
        elif typ == 1:
            a = np.frombuffer(buf, "<f2", n, base + off).astype(np.float32)
        elif typ == GGML_Q8_0:
            a = dequantize_q8_0(buf[base + off:], n)
        else:
            raise SystemExit(f"{name}: ggml type {typ} not supported by the reference "
                             "(F32/F16/Q8_0 only)")
        tensors[name] = (a.reshape(shape), typ)
    return meta, tensors


# ----------------------------------------------------------------------------- tokenizer


def _is_punct(ch):
    import unicodedata
    cp = ord(ch)
    cat = unicodedata.category(ch)
    return cat.startswith("P") or (cp < 0x7F and cat.startswith("S"))


def wpm_tokenize(meta, text):
    """llama.cpp's WPM tokenizer (llm_tokenizer_wpm_session) for lowercase-ASCII-ish text:
    lowercase + strip accents, split on whitespace, punctuation/ASCII symbols are one-char words,
    each word greedy-longest-match on "\u2581"+word; a word with an unmatched position -> [UNK].
    Returns the pieces only (no [CLS]/[SEP])."""
    import unicodedata
    tokens = meta["tokenizer.ggml.tokens"]
    t2i = {t: i for i, t in enumerate(tokens)}
    unk = meta.get("tokenizer.ggml.unknown_token_id", 100)
    maxlen = max(len(t.encode("utf-8")) for t in tokens)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for ch in text:
        if ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
            continue
        if ord(ch) == 0 or ord(ch) == 0xFFFD or unicodedata.category(ch) == "Cc":
            continue
        ch = ch.lower()
        if _is_punct(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    out = []
    for w in words:
        b = (PHANTOM + w).encode("utf-8")
        n, i, pieces = len(b), 0, []
        ok = True
        while i < n:
            for j in range(min(n, i + maxlen + 1), i, -1):
                try:
                    s = b[i:j].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if s in t2i:
                    pieces.append(t2i[s])
                    i = j
                    break
            else:
                ok = False
                break
        out += pieces if ok and pieces else [unk]
    return out


# ----------------------------------------------------------------------------- reference forward


def _f16(x):
    return x.astype(np.float16).astype(np.float64)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * x * (1.0 + 0.044715 * x * x)))


def _gelu_ggml_cpu(x):
    """ggml-cpu's ggml_vec_gelu_f32 with GGML_GELU_FP16: fp16 table of tanh-GELU."""
    xf = x.astype(np.float32)
    t = _gelu_tanh(xf.astype(np.float16).astype(np.float32).astype(np.float64))
    y = t.astype(np.float32).astype(np.float16).astype(np.float64)
    y = np.where(xf <= -10.0, 0.0, y)
    y = np.where(xf >= 10.0, xf.astype(np.float64), y)
    return y


# ggml-cpu flash attention (ops.cpp ggml_compute_forward_flash_attn_ext_f16): fewer than
# GGML_FA_TILE_Q (64) query rows take the one-chunk path (Q rounded to F16, V accumulated in F16);
# 64 or more take the tiled path (Q F32, K/V F16 widened to F32, F32 accumulation).
FA_TILE_Q = 64


def _expf(x):
    """expf as glibc computes it (correctly rounded): exp in double, rounded to float."""
    return np.float32(np.exp(np.float64(np.float32(x))))


def _flash_attn_ggml_cpu(q, k, v, mask, scale):
    """ggml-cpu flash_attn_ext, one-chunk path (fewer than 64 query rows): Q, K, V in F16,
    KQ dot accumulated in F32, online softmax in F32, the V accumulator kept in F16
    (ggml_vec_scale_f16 / ggml_vec_mad_f16 round after every step), divided by the sum at the end."""
    q16, k16, v16 = q.astype(np.float16), k.astype(np.float16), v.astype(np.float16)
    out = np.zeros((q.shape[0], v.shape[1]))
    sc32 = np.float32(scale)
    for i in range(q.shape[0]):
        S, M = np.float32(0.0), np.float32(-np.inf)
        acc = np.zeros(v.shape[1], dtype=np.float16)
        for j in range(k.shape[0]):
            if mask[i, j] == -np.inf:
                continue
            # head dims below 32 take ggml_vec_dot_f16's scalar tail: f16 products summed in double
            sv = np.float32(np.dot(q16[i].astype(np.float64), k16[j].astype(np.float64)))
            sv = np.float32(sv * sc32) + np.float32(mask[i, j])
            ms, vs = np.float32(1.0), np.float32(1.0)
            if sv > M:
                Mold, M = M, sv
                ms = _expf(Mold - M)
                acc = (acc.astype(np.float32) * ms).astype(np.float16)
            else:
                vs = _expf(sv - M)
            acc = acc.astype(np.float64) + v16[j].astype(np.float64) * float(vs)  # fused mul-add
            acc = acc.astype(np.float32).astype(np.float16)
            S = np.float32(S * ms + vs)
        out[i] = acc.astype(np.float64) / float(S)
    return out


def _layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def reference_forward(meta, tensors, ids, emulate=False, pooling=None):
    """emulate: False/None (plain float64), True (all of llama.cpp's CPU roundings), or a set of
    {'gelu', 'fa', 'f16act'} (GELU fp16 table, flash-attention F16 K/V, F16 activations before
    F16 matmuls)."""
    if emulate is True:
        emulate = {"gelu", "fa", "f16act"}
    emulate = set(emulate or ())
    A = meta["general.architecture"]
    if A not in ARCHS:
        raise SystemExit(f"reference supports {', '.join(ARCHS)} only (got {A})")
    E = meta[A + ".embedding_length"]
    L = meta[A + ".block_count"]
    H = meta[A + ".attention.head_count"]
    eps = meta[A + ".attention.layer_norm_epsilon"]
    if pooling is None:
        pooling = meta.get(A + ".pooling_type", 4 if "cls.output.weight" in tensors or
                           "cls.weight" in tensors else 0)
    # bert.attention.causal is ignored: llama.cpp runs BERT through llama_encode, which always uses
    # a non-causal mask (llama-context.cpp encode(): cparams.causal_attn = false)
    causal = False
    d = E // H
    n = len(ids)

    def T(name):
        return tensors[name][0].astype(np.float64)

    def has(name):
        return name in tensors

    def mm(wname, x):
        w, typ = tensors[wname]
        if "f16act" in emulate and typ == 1:  # F16 weights: llama.cpp converts the activations to F16
            x = _f16(x)
        return x @ w.astype(np.float64).T

    x = T("token_embd.weight")[ids]
    if has("token_types.weight"):
        x = x + T("token_types.weight")[0]
    if A == "bert":
        x = x + T("position_embd.weight")[np.arange(n)]
    x = _layernorm(x, T("token_embd_norm.weight"), T("token_embd_norm.bias"), eps)
    mask = np.zeros((n, n))
    if causal:
        mask = np.where(np.arange(n)[None, :] > np.arange(n)[:, None], -np.inf, 0.0)
    for il in range(L):
        p = "blk.%d." % il
        if has(p + "attn_qkv.weight"):
            qkv = mm(p + "attn_qkv.weight", x)
            if has(p + "attn_qkv.bias"):
                qkv = qkv + T(p + "attn_qkv.bias")
            q, k, v = qkv[:, :E], qkv[:, E:2 * E], qkv[:, 2 * E:]
        else:
            q, k, v = mm(p + "attn_q.weight", x), mm(p + "attn_k.weight", x), mm(p + "attn_v.weight", x)
            if has(p + "attn_q.bias"):
                q = q + T(p + "attn_q.bias")
            if has(p + "attn_k.bias"):
                k = k + T(p + "attn_k.bias")
            if has(p + "attn_v.bias"):
                v = v + T(p + "attn_v.bias")
        if A != "bert":  # NEOX RoPE over the whole head: dims i and i + d/2 rotate together
            base = meta.get(A + ".rope.freq_base", 10000.0)
            ang = np.arange(n)[:, None] * base ** (-np.arange(d // 2) * 2.0 / d)[None, :]
            cs, sn = np.cos(ang), np.sin(ang)
            for m in (q, k):
                for h in range(H):
                    a0, a1 = m[:, h * d:h * d + d // 2].copy(), m[:, h * d + d // 2:(h + 1) * d].copy()
                    m[:, h * d:h * d + d // 2] = a0 * cs - a1 * sn
                    m[:, h * d + d // 2:(h + 1) * d] = a0 * sn + a1 * cs
        o = np.zeros((n, E))
        for h in range(H):
            s = slice(h * d, (h + 1) * d)
            qh, kh, vh = q[:, s], k[:, s], v[:, s]
            if "fa" in emulate and n < FA_TILE_Q:
                o[:, s] = _flash_attn_ggml_cpu(qh, kh, vh, mask, 1.0 / np.sqrt(d))
                continue
            if "fa" in emulate:  # tiled path: K and V cast to F16, the rest in F32
                kh, vh = _f16(kh), _f16(vh)
            sc = qh @ kh.T / np.sqrt(d) + mask
            sc = sc - sc.max(-1, keepdims=True)
            pr = np.exp(sc)
            pr /= pr.sum(-1, keepdims=True)
            o[:, s] = pr @ vh
        a = mm(p + "attn_output.weight", o)
        if has(p + "attn_output.bias"):
            a = a + T(p + "attn_output.bias")
        h1 = _layernorm(a + x, T(p + "attn_output_norm.weight"), T(p + "attn_output_norm.bias"), eps)
        gelu = _gelu_ggml_cpu if "gelu" in emulate else _gelu_tanh
        if has(p + "ffn_up_exps.weight"):  # nomic-bert-moe: softmax router, top k, GELU experts
            k_used = meta[A + ".expert_used_count"]
            lg = h1 @ T(p + "ffn_gate_inp.weight").T
            pr = np.exp(lg - lg.max(-1, keepdims=True))
            pr /= pr.sum(-1, keepdims=True)
            up, down = tensors[p + "ffn_up_exps.weight"], tensors[p + "ffn_down_exps.weight"]
            f = np.zeros_like(h1)
            for ti in range(n):
                for e in np.argsort(-pr[ti], kind="stable")[:k_used]:  # not renormalized
                    xe = _f16(h1[ti]) if "f16act" in emulate and up[1] == 1 else h1[ti]
                    u = gelu(up[0][e].astype(np.float64) @ xe)
                    u = _f16(u) if "f16act" in emulate and down[1] == 1 else u
                    f[ti] += pr[ti, e] * (down[0][e].astype(np.float64) @ u)
        elif A == "nomic-bert":  # SwiGLU, no biases (llama.cpp ignores any)
            g = mm(p + "ffn_gate.weight", h1)
            f = mm(p + "ffn_down.weight", g / (1.0 + np.exp(-g)) * mm(p + "ffn_up.weight", h1))
        else:
            u = mm(p + "ffn_up.weight", h1)
            if has(p + "ffn_up.bias"):
                u = u + T(p + "ffn_up.bias")
            u = gelu(u)
            f = mm(p + "ffn_down.weight", u)
            if has(p + "ffn_down.bias"):
                f = f + T(p + "ffn_down.bias")
        x = _layernorm(f + h1, T(p + "layer_output_norm.weight"), T(p + "layer_output_norm.bias"), eps)
    if pooling == 1:
        return x.mean(0)
    if pooling == 2:
        return x[0]
    if pooling == 4:  # the classifier head on the [CLS] row: raw scores
        h = x[:1]
        if has("cls.weight"):
            h = mm("cls.weight", h)
            if has("cls.bias"):
                h = h + T("cls.bias")
            h = np.tanh(h)
        if has("cls.output.weight"):
            h = mm("cls.output.weight", h)
            if has("cls.output.bias"):
                h = h + T("cls.output.bias")
        n_out = len(meta.get(A + ".classifier.output_labels", [0]))
        return h[0][:n_out]
    return x[-1]  # last (3), and none (0): node-llama-cpp returns the last token's hidden state


# ----------------------------------------------------------------------------- main


def hearth_compatible_embed(argv):
    """`mkbert.py embed -m MODEL --tokens IDS [--emulate[=LIST]]`: the reference in the output
    format of `hearth embed`, so HEARTH_BIN=tools/embed/mkbert.py checks the differential test
    itself (tests/differential/test_bert.py must pass with it)."""
    ap = argparse.ArgumentParser(prog="mkbert.py embed")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--emulate", nargs="?", const="gelu,fa,f16act", default="")
    a = ap.parse_args(argv)
    meta, tensors = read_gguf(a.model)
    ids = [int(x) for x in a.tokens.replace(",", " ").split()]
    e = reference_forward(meta, tensors, ids, emulate={x for x in a.emulate.split(",") if x})
    print(json.dumps({"embedding": [float(v) for v in e], "n_embd": len(e)}))


def main(argv):
    if argv[:1] == ["embed"]:
        return hearth_compatible_embed(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="output GGUF (generate) or model (with --reference*)")
    ap.add_argument("--arch", choices=ARCHS, default="bert")
    ap.add_argument("--pooling", choices=list(POOLING), default="mean")
    ap.add_argument("--dtype", choices=list(FILE_TYPE), default="F32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-ff", type=int, default=128)
    ap.add_argument("--n-ctx", type=int, default=0,
                    help="positions (default: bert 512, nomic-bert 2048, nomic-bert-moe 512)")
    ap.add_argument("--eps", type=float, default=None,
                    help="LayerNorm eps (default: 1e-12, nomic-bert-moe 1e-5)")
    ap.add_argument("--rope-base", type=float, default=None,
                    help="nomic-*: rope.freq_base (default: nomic-bert 1000, nomic-bert-moe 10000)")
    ap.add_argument("--n-expert", type=int, default=8, help="nomic-bert-moe: experts per MoE layer")
    ap.add_argument("--n-expert-used", type=int, default=2, help="nomic-bert-moe: chosen per token")
    ap.add_argument("--moe-every", type=int, default=2,
                    help="nomic-bert-moe: moe_every_n_layers (layers i %% N == 1 are MoE)")
    ap.add_argument("--fused-qkv", action="store_true",
                    help="bert: write blk.N.attn_qkv instead of q/k/v (the nomic archs always do)")
    ap.add_argument("--no-token-types", action="store_true", help="omit token_types.weight")
    ap.add_argument("--vocab-from", metavar="GGUF",
                    help="take the vocabulary (tokenizer.* keys) from this file")
    ap.add_argument("--head", choices=["roberta", "bert", "none"], default=None,
                    help="classifier head (default: roberta with --pooling rank, else none)")
    ap.add_argument("--labels", type=int, default=1, help="classifier outputs (default 1)")
    ap.add_argument("--reference", metavar="TEXT", help="print the reference pooled embedding of TEXT")
    ap.add_argument("--reference-tokens", metavar="IDS", help="... of exactly these token ids")
    ap.add_argument("--emulate", nargs="?", const="gelu,fa,f16act", default="",
                    help="reproduce llama.cpp's CPU roundings: comma list of gelu,fa,f16act "
                         "(no value: all three)")
    args = ap.parse_args(argv)

    if args.reference is not None or args.reference_tokens is not None:
        meta, tensors = read_gguf(args.path)
        if args.reference_tokens is not None:
            ids = [int(s) for s in args.reference_tokens.replace(",", " ").split()]
        else:
            cls = meta.get("tokenizer.ggml.bos_token_id", 101)
            sep = meta.get("tokenizer.ggml.seperator_token_id", 102)
            if meta.get("tokenizer.ggml.model") != "bert":
                raise SystemExit("--reference TEXT tokenizes WordPiece vocabularies only; "
                                 "give the ids with --reference-tokens")
            ids = [cls] + wpm_tokenize(meta, args.reference) + [sep]
        em = {x for x in args.emulate.split(",") if x}
        bad = em - {"gelu", "fa", "f16act"}
        if bad:
            raise SystemExit("--emulate: unknown %s" % ",".join(sorted(bad)))
        e = reference_forward(meta, tensors, ids, emulate=em)
        pooling = meta.get(meta["general.architecture"] + ".pooling_type",
                           4 if "cls.output.weight" in tensors or "cls.weight" in tensors else 0)
        print(json.dumps({"embedding": [float(v) for v in e], "n_embd": len(e),
                          "pooling": POOLING_NAME.get(pooling, str(pooling)), "tokens": ids}))
        return
    kvs, tensors = build_model(args)
    write_gguf(args.path, kvs, tensors)
    print(json.dumps({"path": args.path, "arch": args.arch,
                      "n_vocab": len(dict(kvs)["tokenizer.ggml.tokens"].val),
                      "pooling": args.pooling, "dtype": args.dtype, "seed": args.seed}))


if __name__ == "__main__":
    main(sys.argv[1:])
