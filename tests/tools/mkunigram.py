#!/usr/bin/python3
"""mkunigram.py - an XLM-RoBERTa-style Unigram (SentencePiece) vocabulary built from a text corpus,
written both as a Hugging Face tokenizer folder and as the GGUF llama.cpp's converter writes for
an XLM-R-based embedding model (bge-m3, snowflake-arctic-embed2: general.architecture "bert",
tokenizer.ggml.model "t5").

  /usr/bin/python3 tests/tools/mkunigram.py OUT_DIR [--charsmap nmt|small|none]
        [--pieces 6000] [--corpus tests/data/tokenizer_corpus.json]

Writes OUT_DIR/tokenizer.json, tokenizer_config.json and vocab.gguf (vocab-only). Deterministic:
the same corpus and options give byte-identical files.

The normalization rules (--charsmap):
  nmt    NFKC plus SentencePiece's "nmt" rules (control characters removed, other whitespace to
         ' ', U+FF5E left alone), built the way SentencePiece's normalizer builder builds
         nmt_nfkc: one rule per code point that NFKC changes, plus rules for decomposed sequences
         that compose (the canonical decomposition of every precomposed character, also with
         halfwidth/fullwidth forms in its place, e.g. "ｶﾞ" -> "ガ", and partly composed, e.g.
         "å" + U+0301 -> "ǻ"), redundant rules dropped. NFKC is Python's unicodedata (Unicode 14
         with Debian 12's Python; characters added later have no rules).
         This is what the Hugging Face JavaScript port (the test reference) hard-codes for any
         Precompiled normalizer, so the two agree wherever the rules can express NFKC.
  small  a handful of rules (fullwidth A-C, "ﬁ", U+3000, tab, a removed control character):
         a small file for fuzzing seeds.
  none   no charsmap (the Hugging Face normalizer then has no Precompiled step).
The rules are compiled into SentencePiece's precompiled_charsmap blob: a little-endian u32 size
of the trie, the trie as a darts-clone double array (32-bit units: label in bits 0-7, has-leaf in
bit 8, offset in bits 10-30 (<< 8 when bit 9 is set), value units with bit 31), then the
replacement strings, each NUL-terminated, which the trie's values index.

The vocabulary (several thousand pieces; --pieces sets how many multi-character ones): XLM-R's
specials <s> <pad> </s> <unk> at ids 0-3, then pieces by score (log relative frequency of the piece among the substrings of the normalized
corpus words, "\u2581" only at a piece's start, a small per-piece offset so no two scores tie),
<mask> last. Every character of the normalized corpus is a piece, except some left out on purpose
(non-ASCII code points % 11 == 7) so that unknown characters occur.

The GGUF is what convert_hf_to_gguf.py (XLMRobertaModel, sentencepiece.bpe.model path) writes:
the fairseq realignment (<s> <pad> </s> <unk> control/control/control/unknown with score 0, the
pieces after), the last id a "[PAD<n-2>]" unused token with score -10000 where Hugging Face has
<mask> (the converter does not add <mask>), scores as float32, token types,
add_space_prefix/remove_extra_whitespaces true, the charsmap as a UINT8 array, and the special ids
and add_bos/add_eos of gguf-py's SpecialVocab for "<s> $A </s>".
"""
import argparse
import base64
import collections
import json
import math
import os
import re
import struct
import sys
import unicodedata

_HERE = os.path.dirname(os.path.abspath(__file__))
_SHARED = os.environ.get("HEARTH_SHARED") or os.path.join(_HERE, "..", "..", "..", "shared")
for _cand in (os.path.join(_SHARED, "oracle"), "/work/shared/oracle"):
    if os.path.isfile(os.path.join(_cand, "mkmodel.py")):
        sys.path.insert(0, os.path.abspath(_cand))
        break
from mkmodel import T_F32, T_I32, T_STR, T_U8, arr, boolean, string, u32, write_gguf  # noqa: E402

CORPUS = os.path.join(_HERE, "..", "data", "tokenizer_corpus.json")
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
MASK = "<mask>"
SPACE = "\u2581"
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_UNUSED = 1, 2, 3, 5

# ----------------------------------------------------------------------------- normalization rules

_REMOVED = re.compile("[\u0001-\u0008\u000b\u000e-\u001f\u007f\u008f\u009f]")
_TO_SPACE = re.compile("[\t\n\u000c\r\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u2581"
                       "\u3000\ufeff\ufffd]")


def nmt_nfkc(s):
    """SentencePiece's nmt_nfkc on a whole string, as the JS port of Hugging Face applies it."""
    s = _TO_SPACE.sub(" ", _REMOVED.sub("", s))
    return "\uff5e".join(unicodedata.normalize("NFKC", p) for p in s.split("\uff5e"))


def _assigned(c):
    return unicodedata.category(c) not in ("Cn", "Cs")


def apply_rules(rules, s, max_len=None):
    """Longest-match rewriting of `s` with `rules` (key -> value, code point strings), as
    SentencePiece's normalizer (and llama.cpp's UGM tokenizer) applies a charsmap."""
    longest = max((len(k) for k in rules), default=1) if max_len is None else max_len
    out, i = [], 0
    while i < len(s):
        for n in range(min(longest, len(s) - i), 0, -1):
            v = rules.get(s[i:i + n])
            if v is not None:
                out.append(v)
                i += n
                break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def nmt_rules():
    rules = {}
    for cp in range(1, 0x110000):
        c = chr(cp)
        if not _assigned(c):
            continue
        v = nmt_nfkc(c)
        if v != c:
            rules[c] = v
    # Sequences that compose: every precomposed character's canonical decomposition, also with a
    # halfwidth/fullwidth form (U+FF00..FFEF) of any element in its place.
    wide = collections.defaultdict(list)
    for cp in range(0xFF00, 0xFFF0):
        c = chr(cp)
        if _assigned(c):
            d = unicodedata.normalize("NFKD", c)
            if len(d) == 1 and d != c:
                wide[d].append(c)
    for cp in range(0xA0, 0x110000):
        c = chr(cp)
        if not _assigned(c):
            continue
        d = unicodedata.normalize("NFD", c)
        if len(d) < 2:
            continue
        seqs = [""]
        for x in d:  # (Hangul syllables: only their own decomposition)
            alt = [] if 0xAC00 <= cp <= 0xD7A3 else wide.get(x, [])
            seqs = [s + y for s in seqs for y in [x] + alt]
        # and partly composed: the first j elements as one character, then the rest
        for j in range(2, len(d)):
            head = unicodedata.normalize("NFC", d[:j])
            if len(head) == 1:
                seqs.append(head + d[j:])
        for s in seqs:
            v = nmt_nfkc(s)
            if v != s:
                rules[s] = v
    return remove_redundant(rules)


def remove_redundant(rules):
    """Drops each rule that the shorter rules already give (SentencePiece's RemoveRedundantMap)."""
    kept = {k: v for k, v in rules.items() if len(k) == 1}
    for n in range(2, max(len(k) for k in rules) + 1):
        for k, v in sorted(rules.items()):
            if len(k) == n and apply_rules(kept, k, n - 1) != v:
                kept[k] = v
    return kept


def small_rules():
    return {"\uff21": "A", "\uff22": "B", "\uff23": "C", "\ufb01": "fi", "\u3000": " ", "\t": " ",
            "\u0001": "", "e\u0301": "\u00e9"}


# ----------------------------------------------------------------------------- double array


def _offset_bits(o):
    if o < (1 << 21):
        return o << 10
    if o & 0xFF == 0 and (o >> 8) < (1 << 21):
        return ((o >> 8) << 10) | (1 << 9)
    raise ValueError("double array too large")


def build_double_array(keys_values):
    """darts-clone double array over UTF-8 keys: list of (key bytes, value int) -> u32 units."""
    trie = [{}]  # node: {byte: child node}; terminal values separately
    value = {}
    for k, v in sorted(keys_values):
        n = 0
        for b in k:
            nxt = trie[n].get(b)
            if nxt is None:
                nxt = len(trie)
                trie[n][b] = nxt
                trie.append({})
            n = nxt
        value[n] = v
    # The free slots of the last 16 blocks of 256 units form a doubly linked list (nxt/prv), so a
    # search visits only free slots; older blocks are closed (as in darts-clone), and a search
    # that finds nothing opens a new block.
    units, used, nxt, prv = [], bytearray(), [], []
    used_base = set()
    head, tail = [-1], [-1]  # first and last free slot
    open_blocks = collections.deque()

    def unlink(i):
        a, b = prv[i], nxt[i]
        if a >= 0:
            nxt[a] = b
        else:
            head[0] = b
        if b >= 0:
            prv[b] = a
        else:
            tail[0] = a

    def grow():
        start = len(units)
        units.extend([0] * 256)
        used.extend(bytes(256))
        nxt.extend(range(start + 1, start + 257))
        prv.extend(range(start - 1, start + 255))
        nxt[-1] = -1
        prv[start] = tail[0]
        if tail[0] < 0:
            head[0] = start
        else:
            nxt[tail[0]] = start
        tail[0] = len(units) - 1
        open_blocks.append(start)
        if len(open_blocks) > 16:
            old = open_blocks.popleft()
            for i in range(old, old + 256):
                if not used[i]:
                    used[i] = 2  # closed: stays empty
                    unlink(i)

    def take(i):
        used[i] = 1
        unlink(i)

    grow()
    take(0)  # the root

    def place(labels):
        p, tries = head[0], 0
        while p >= 0 and tries < 32:
            b = p ^ labels[0]
            if b not in used_base and all(not used[b ^ x] for x in labels[1:]):
                return b
            tries += 1
            p = nxt[p]
        grow()  # a fresh block always fits
        return (len(units) - 256) ^ labels[0]

    queue = collections.deque([(0, 0)])  # (trie node, unit index)
    while queue:
        n, idx = queue.popleft()
        kids = trie[n]
        labels = sorted(kids)
        if n in value:
            labels = [0] + labels
        if not labels:
            continue
        b = place(labels)
        used_base.add(b)
        for x in labels:
            take(b ^ x)
        units[idx] |= _offset_bits(idx ^ b) | ((1 << 8) if n in value else 0)
        if n in value:
            units[b] = (1 << 31) | value[n]
        for x in labels:
            if x:
                units[b ^ x] = x
                queue.append((kids[x], b ^ x))
    return units


def compile_charsmap(rules):
    """SentencePiece's precompiled_charsmap blob for `rules` (key -> value strings)."""
    if not rules:
        return b""
    blob, where = bytearray(), {}
    for v in sorted(set(rules.values())):
        where[v] = len(blob)
        blob += v.encode("utf-8") + b"\0"
    units = build_double_array([(k.encode("utf-8"), where[v]) for k, v in rules.items()])
    trie = struct.pack("<%dI" % len(units), *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def charsmap_lookup(blob, data, pos):
    """Longest match of the compiled charsmap at data[pos:] (bytes): (length, replacement bytes)
    or (0, None). Reads the blob as llama.cpp's UGM tokenizer does (a check of the format)."""
    n = struct.unpack_from("<I", blob, 0)[0] // 4
    units = struct.unpack_from("<%dI" % n, blob, 4)
    strings = blob[4 + 4 * n:]

    def offset(u):
        return (u >> 10) << ((u & (1 << 9)) >> 6)
    node = offset(units[0])
    best = (0, None)
    for i in range(pos, len(data)):
        c = data[i]
        if c == 0:
            break
        node ^= c
        u = units[node]
        if u & ((1 << 31) | 0xFF) != c:
            break
        leaf = (u >> 8) & 1
        node ^= offset(u)
        if leaf:
            v = units[node] & ((1 << 31) - 1)
            best = (i - pos + 1, strings[v:strings.index(b"\0", v)])
    return best


# ----------------------------------------------------------------------------- SentencePiece text


def spm_normalize(text, rules):
    """The text the Unigram model sees: charsmap, whitespace runs collapsed and trimmed,
    spaces escaped as U+2581 with one in front (add_dummy_prefix, remove_extra_whitespaces)."""
    s = apply_rules(rules, text) if rules else text
    words = [w for w in s.split(" ") if w]
    return "".join(SPACE + w for w in words)


def build_vocab(texts, rules, n_pieces=6000):
    """Pieces with scores from the substrings of the normalized corpus words."""
    counts = collections.Counter()
    chars = collections.Counter()
    for t in texts:
        for w in spm_normalize(t, rules).split(SPACE):
            if not w:
                continue
            chars.update(w)
            word = SPACE + w
            for i in range(len(word)):
                for j in range(i + 1, min(len(word), i + 8) + 1):
                    counts[word[i:j]] += 1
    # Always there: the ASCII letters and digits, "▁", the ASCII punctuation.
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "".join(
            chr(c) for c in range(0x21, 0x7F)):
        chars[c] += 1
        counts[c] += 1
    counts[SPACE] += sum(chars.values()) // 8

    def keep(c):
        return ord(c) < 0x80 or ord(c) % 11 != 7
    pieces = {c: counts[c] for c in chars if keep(c)}
    ranked = sorted(((p, n) for p, n in counts.items() if len(p) > 1 and n >= 2
                     and all(keep(c) for c in p)), key=lambda kv: (-kv[1], kv[0]))
    for p, n in ranked[:n_pieces]:
        pieces[p] = n
    pieces[SPACE] = counts[SPACE]
    total = float(sum(pieces.values()))
    order = sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0]))
    scored = []
    for i, (p, n) in enumerate(order):
        # log relative frequency, made distinct by a small offset per rank; exactly float32
        s = math.log(n / total) - 1e-4 * i
        scored.append((p, struct.unpack("<f", struct.pack("<f", s))[0]))
    return scored


# ----------------------------------------------------------------------------- writers


def tokenizer_json(vocab, charsmap):
    ids = {p: i for i, (p, _) in enumerate(vocab)}
    added = [{"id": ids[t], "content": t, "single_word": False, "lstrip": t == MASK,
              "rstrip": False, "normalized": False, "special": True} for t in SPECIALS + [MASK]]
    # transformers' SpmConverter (XLMRobertaConverter) normalizer and Metaspace; the Metaspace
    # also carries the legacy add_prefix_space, which the JavaScript port reads.
    norm = [{"type": "Strip", "strip_left": False, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": SPACE}]
    if charsmap:
        norm.insert(0, {"type": "Precompiled",
                        "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")})
    meta = {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "always", "split": True,
            "add_prefix_space": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": norm},
        "pre_tokenizer": meta,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}},
        },
        "decoder": dict(meta),
        "model": {"type": "Unigram", "unk_id": 3, "vocab": [[p, s] for p, s in vocab],
                  "byte_fallback": False},
    }


def gguf_kvs(vocab, charsmap, name):
    n = len(vocab)
    tokens = [p for p, _ in vocab]
    scores = [s for _, s in vocab]
    types = [TT_CONTROL, TT_CONTROL, TT_CONTROL, TT_UNKNOWN] + [TT_NORMAL] * (n - 4)
    # convert_hf_to_gguf fills n ids with "[PAD<i>]" (unused, -10000), puts the SentencePiece
    # model's n - 2 pieces in and realigns them by one; the last id keeps a filler.
    tokens[-1], scores[-1], types[-1] = "[PAD%d]" % (n - 2), -10000.0, TT_UNUSED
    kvs = [
        ("general.architecture", string("bert")),
        ("general.name", string(name)),
        ("tokenizer.ggml.model", string("t5")),
        ("tokenizer.ggml.pre", string("default")),
        ("tokenizer.ggml.tokens", arr(T_STR, tokens)),
        ("tokenizer.ggml.scores", arr(T_F32, scores)),
        ("tokenizer.ggml.token_type", arr(T_I32, types)),
        ("tokenizer.ggml.add_space_prefix", boolean(True)),
        ("tokenizer.ggml.token_type_count", u32(1)),
        ("tokenizer.ggml.remove_extra_whitespaces", boolean(True)),
    ]
    if charsmap:
        kvs.append(("tokenizer.ggml.precompiled_charsmap", arr(T_U8, list(charsmap))))
    kvs += [
        ("tokenizer.ggml.bos_token_id", u32(0)),
        ("tokenizer.ggml.eos_token_id", u32(2)),
        ("tokenizer.ggml.unknown_token_id", u32(3)),
        ("tokenizer.ggml.seperator_token_id", u32(2)),
        ("tokenizer.ggml.padding_token_id", u32(1)),
        ("tokenizer.ggml.cls_token_id", u32(0)),
        ("tokenizer.ggml.mask_token_id", u32(n - 1)),
        ("tokenizer.ggml.add_bos_token", boolean(True)),
        ("tokenizer.ggml.add_eos_token", boolean(True)),
    ]
    return kvs


_RULES = {}


def rules_for(kind):
    if kind not in _RULES:
        _RULES[kind] = {"nmt": nmt_rules, "small": small_rules, "none": dict}[kind]()
    return _RULES[kind]


def make(out_dir, charsmap="nmt", corpus=CORPUS, n_pieces=6000):
    """Writes OUT_DIR/tokenizer.json, tokenizer_config.json, vocab.gguf; returns (vocab, rules,
    charsmap blob). vocab is Hugging Face's: [(piece, score)] with <mask> last."""
    texts = json.load(open(corpus, encoding="utf-8"))
    rules = rules_for(charsmap)
    blob = compile_charsmap(rules)
    pieces = [p for p in build_vocab(texts, rules, n_pieces) if p[0] not in SPECIALS + [MASK]]
    vocab = [(t, 0.0) for t in SPECIALS] + pieces + [(MASK, 0.0)]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, blob), f, ensure_ascii=False)
    cfg = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 8192,
           "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
           "cls_token": "<s>", "pad_token": "<pad>", "mask_token": MASK,
           "clean_up_tokenization_spaces": False}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False)
    write_gguf(os.path.join(out_dir, "vocab.gguf"),
               gguf_kvs(vocab, blob, "unigram-xlmr-" + charsmap), [])
    return vocab, rules, blob


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--charsmap", choices=["nmt", "small", "none"], default="nmt")
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--pieces", type=int, default=6000,
                    help="multi-character pieces (the most frequent substrings; default 6000)")
    a = ap.parse_args()
    vocab, rules, blob = make(a.out_dir, a.charsmap, a.corpus, a.pieces)
    print(json.dumps({"dir": a.out_dir, "n_vocab": len(vocab), "rules": len(rules),
                      "charsmap_bytes": len(blob)}))


if __name__ == "__main__":
    main()
