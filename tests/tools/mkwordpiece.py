#!/usr/bin/python3
"""mkwordpiece.py - a BERT WordPiece vocabulary built from a text corpus, written both as a
Hugging Face tokenizer folder (tokenizer.json: BertNormalizer, BertPreTokenizer, WordPiece,
TemplateProcessing [CLS] $A [SEP], WordPiece decoder; tokenizer_config.json) and as a vocab-only
GGUF the way llama.cpp's converter writes a BERT vocabulary (tokenizer.ggml.model "bert",
"##x" -> "x", other pieces "x" -> "\u2581x", control tokens verbatim, cls/sep/unknown/padding/mask
ids, add_bos/add_sep).

  /usr/bin/python3 tests/tools/mkwordpiece.py OUT_DIR [--cased] [--corpus tests/data/tokenizer_corpus.json]

Deterministic: the same corpus gives the same files. The vocabulary (a few thousand pieces):
[PAD] [UNK] [CLS] [SEP] [MASK] first, then every character of the (normalized) corpus as a
word-initial piece and most as "##" continuations (some left out on purpose, so that words with
them become [UNK]), the frequent words whole, and prefixes/"##" suffixes of the other words so
that words split into several pieces. --cased keeps case and accents (strip_accents/lowercase
off) and so also holds capitalized words.
"""
import argparse
import collections
import json
import os
import re
import sys
import unicodedata

_HERE = os.path.dirname(os.path.abspath(__file__))
_SHARED = os.environ.get("HEARTH_SHARED") or os.path.join(_HERE, "..", "..", "..", "shared")
for _cand in (os.path.join(_SHARED, "oracle"), "/work/shared/oracle"):
    if os.path.isfile(os.path.join(_cand, "mkmodel.py")):
        sys.path.insert(0, os.path.abspath(_cand))
        break
from mkmodel import T_I32, T_STR, arr, boolean, string, u32, write_gguf  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PHANTOM = "\u2581"
CORPUS = os.path.join(_HERE, "..", "data", "tokenizer_corpus.json")
SUFFIXES = "s es ed ing er ers est ly tion ions ness ful able ment ments ity ive al ic".split()


def rough_words(text, cased):
    """Words of `text` roughly as BERT's normalizer + pre-tokenizer make them (only to choose
    vocabulary entries; the tokenizers under test do the real work)."""
    if not cased:
        text = "".join(c for c in unicodedata.normalize("NFD", text.lower())
                       if unicodedata.category(c) != "Mn")
    return re.findall(r"[^\W_]+", text)


def build_vocab(texts, cased):
    words = collections.Counter()
    chars = set()
    for t in texts:
        for w in rough_words(t, cased):
            words[w] += 1
            chars.update(w)
    ascii_chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    if cased:
        ascii_chars += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    chars.update(ascii_chars)
    punct = [chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum()]
    punct += list("…—–«»¿¡、。「」・")
    cjk = list("中文日本語我爱北京天安门東京人大学生")
    chars.update(cjk)
    # Left out as continuations (code point % 5 == 3: 'x', 'n'?, ...) or altogether
    # (% 11 == 7): words holding them become [UNK], as with real vocabularies.
    def keep_start(c):
        return c in ascii_chars or c in punct or ord(c) % 11 != 7

    def keep_cont(c):
        return c in "aeiou" or ord(c) % 5 != 3
    vocab = list(SPECIALS)
    seen = set(vocab)

    def add(tok):
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    for c in sorted(chars) + punct:
        if keep_start(c):
            add(c)
    for c in sorted(chars):
        if unicodedata.category(c)[0] in "LN" and keep_cont(c):
            add("##" + c)
    for s in SUFFIXES:
        add("##" + s)
    ranked = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
    for i, (w, n) in enumerate(ranked):
        if len(w) == 1:
            continue
        if i < 600 or n >= 3:
            add(w)  # frequent words whole
        elif len(w) >= 4:
            add(w[: len(w) // 2])  # the rest: a prefix and a "##" suffix piece
            add("##" + w[len(w) // 2:])
            if len(w) >= 6:
                add("##" + w[len(w) // 2: len(w) // 2 + 2])
    for w in ("hello", "world", "token", "##izer", "embed", "##ding", "##s", "un", "##believ",
              "##able", "super", "##cal", "##i", "##fragil", "##istic", "don", "won", "t", "cafe",
              "caf", "##e", "resume", "naive", "ecole", "angstrom", "istanbul", "οδος", "σ", "ς"):
        add(w)
    if cased:
        for w in ("Hello", "World", "The", "HELLO", "Caf", "##é", "é", "É", "Ångström", "İ"):
            add(w)
    return vocab


def tokenizer_json(vocab, cased):
    ids = {t: i for i, t in enumerate(vocab)}
    added = [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in SPECIALS]
    cls, sep = ids["[CLS]"], ids["[SEP]"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": not cased},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }


def gguf_kvs(vocab, cased):
    """tokenizer.ggml.* as llama.cpp's converter (BertModel.set_vocab + SpecialVocab) writes them."""
    ids = {t: i for i, t in enumerate(vocab)}
    tokens, types = [], []
    for t in vocab:
        if t in SPECIALS:
            tokens.append(t)
            types.append(3)  # control
        elif t.startswith("##"):
            tokens.append(t[2:])
            types.append(1)
        else:
            tokens.append(PHANTOM + t)
            types.append(1)
    assert len(set(tokens)) == len(tokens), "phantom-space form has duplicate tokens"
    return [
        ("general.architecture", string("bert")),
        ("general.name", string("wordpiece-%s" % ("cased" if cased else "uncased"))),
        ("tokenizer.ggml.model", string("bert")),
        ("tokenizer.ggml.pre", string("default")),
        ("tokenizer.ggml.tokens", arr(T_STR, tokens)),
        ("tokenizer.ggml.token_type", arr(T_I32, types)),
        ("tokenizer.ggml.token_type_count", u32(2)),
        ("tokenizer.ggml.bos_token_id", u32(ids["[CLS]"])),
        ("tokenizer.ggml.cls_token_id", u32(ids["[CLS]"])),
        ("tokenizer.ggml.seperator_token_id", u32(ids["[SEP]"])),
        ("tokenizer.ggml.unknown_token_id", u32(ids["[UNK]"])),
        ("tokenizer.ggml.padding_token_id", u32(ids["[PAD]"])),
        ("tokenizer.ggml.mask_token_id", u32(ids["[MASK]"])),
        ("tokenizer.ggml.add_bos_token", boolean(True)),
        ("tokenizer.ggml.add_sep_token", boolean(True)),
        ("tokenizer.ggml.add_eos_token", boolean(False)),
    ]


def make(out_dir, cased=False, corpus=CORPUS):
    """Writes OUT_DIR/tokenizer.json, tokenizer_config.json, vocab.gguf; returns the vocabulary."""
    texts = json.load(open(corpus, encoding="utf-8"))
    vocab = build_vocab(texts, cased)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, cased), f, ensure_ascii=False)
    cfg = {"tokenizer_class": "BertTokenizer", "do_lower_case": not cased,
           "clean_up_tokenization_spaces": True, "model_max_length": 512,
           "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
           "mask_token": "[MASK]"}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False)
    write_gguf(os.path.join(out_dir, "vocab.gguf"), gguf_kvs(vocab, cased), [])
    return vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--cased", action="store_true")
    ap.add_argument("--corpus", default=CORPUS)
    a = ap.parse_args()
    vocab = make(a.out_dir, a.cased, a.corpus)
    print(json.dumps({"dir": a.out_dir, "n_vocab": len(vocab), "cased": a.cased}))


if __name__ == "__main__":
    main()
