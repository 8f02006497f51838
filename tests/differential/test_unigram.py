"""Unigram (tokenizer.ggml.model = "t5", XLM-RoBERTa's vocabulary) parity with Hugging Face and
llama.cpp, and the bert architecture running with it.

tests/tools/mkunigram.py builds an XLM-R-style Unigram vocabulary from the tokenizer corpus into a
temp dir, twice: with an nmt_nfkc-like precompiled charsmap (as XLM-R has) and without one. Each
is a Hugging Face tokenizer.json (Precompiled + Strip + Replace normalizer, Metaspace, Unigram,
<s> $A </s>, Metaspace decoder) and the vocab-only GGUF llama.cpp's converter writes. For every
string of tests/data/tokenizer_corpus.json plus XLM-R cases (whitespace runs, leading/trailing
whitespace, U+2581 in the text, NFKC cases, unknown characters, CJK, emoji, special-token text,
empty text):
  * hearth's ids equal Hugging Face's (hf-tokenizer batch --add-special), except where the
    reference is known to differ from the charsmap semantics hearth implements
    (tokenizer/unigram.h); those strings are counted and printed with their cause, and there
    hearth must equal llama.cpp:
      - the JavaScript port (@lenml/tokenizers) ignores the charsmap and runs NFKC with
        SentencePiece's nmt rules, which composes sequences no charsmap rule covers
        (e.g. "ẛ" + U+0323 -> "ṩ"; the charsmap, SentencePiece and llama.cpp give "ṡ" + U+0323);
      - its Strip uses JavaScript's trimEnd (U+FEFF stripped, U+0085 kept; Rust's is_whitespace,
        which hearth follows, the other way round) — only without a charsmap;
      - "<mask>": llama.cpp's converter does not put <mask> in the GGUF (that id holds an unused
        "[PAD<n-2>]"), so the text is text to hearth and llama.cpp;
  * hearth's ids equal llama.cpp's (llama-oracle tokenize --no-bos, then <s> ... </s>) wherever
    llama.cpp agrees with Hugging Face; every string where llama.cpp deviates must have a known
    cause (tokenizer/unigram.h), counted and printed;
  * decode: `hearth detokenize` of hearth's ids equals Hugging Face's decode of the same ids,
    with and without special tokens (tests/differential/hf_decode.mjs);
  * embeddings: a tiny random F16 bert with the charsmap vocabulary (tools/embed/mkbert.py
    --vocab-from), mean and cls pooling: hearth's pieces for each text equal llama.cpp's, and
    `hearth embed` of what node-llama-cpp's embedding context evaluates for that text (for a UGM
    vocabulary: the pieces and </s>, no <s>) has cosine >= 0.9999 with `llama-oracle embed --text`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from harness import HEARTH, ORACLE, Checker, oracle_embed_many
from serve_util import Server, put_model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import mkunigram  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.json")
HF_DECODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_decode.mjs")
MKBERT = os.path.join(ROOT, "tools", "embed", "mkbert.py")
SP = "\u2581"

EXTRA = [
    "",
    " ",
    "   ",
    "\t\n\r ",
    "  leading spaces",
    "trailing spaces   ",
    "  both  ",
    "inner     runs   of\tspace",
    "tab\tand\nnewline\r\nmixed \t \n runs",
    "trailing newline\n",
    "trailing tab\t",
    "a\u3000ideographic\u00a0nbsp\u2003em\u2009thin space",
    SP + "starts with the marker",
    " " + SP + " marker after a space",
    "word" + SP + "marker" + SP + SP + "inside",
    SP,
    "ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ １２３ ｶﾀｶﾅ ｶﾞｷﾞｸﾞ",
    "ﬁﬂ ½ ① Ⅻ ㎏ ℌ 𝕳𝖊𝖑𝖑𝖔 ²³ ǅ ſ",
    "cafe\u0301 e\u0301\u0301 a\u030a\u0301 \u00e5\u0301 \u0301alone",
    "\u1e9b\u0323 long s",
    "\u1100\u1161\u11a8 conjoining jamo, \uac00\u11a8 partly",
    "我爱北京天安门",
    "東京タワーと人、「日本」。",
    "한국어 텍스트",
    "emoji 😀🎉 👍🏽 family 👨‍👩‍👧",
    "unknown \U0002b820 \ue000 \U000f0000 \u0378",
    "ctrl\x00nul\x01soh\x7fdel\u200bzwsp\ufeffbom\u00adshy\ufffdrepl",
    "\u0085nel\u2028ls\u2029ps",
    "<s>hello</s> <pad> <unk> </s>",
    "x</s>y<s>z",
    "<s",
    "＜s＞ fullwidth brackets",
    "～ fullwidth tilde ~",
    "a" * 300,
    "supercalifragilisticexpialidocious " * 3,
    "Hello, world! ... what?!",
    "don't won't y'all",
    "İstanbul ΣΟΦΟΣ σοφός",
    "12345.678 3,14 1e-9",
    "end with nel\u0085",
    "end with bom\ufeff",
]

EMBED_TEXTS = [
    "Hello world",
    "a",
    "The quick brown fox jumps over the lazy dog!",
    "  Hello,   world  \n",
    "我爱北京天安门 and 東京",
    "unknown \U0002b820 emoji 😀 ｶﾞ",
    " ".join(["tokenizers are embedding the world"] * 10),
]


# Rust's char::is_whitespace (Hugging Face's Strip normalizer).
RUST_WHITESPACE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)}


def run_json(cmd):
    """The command's JSON output (one document; str.splitlines would split it at U+2028 too)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def spm_words(s):
    return "".join(SP + w for w in s.split(" ") if w)


def charsmapped(text, rules):
    return mkunigram.apply_rules(rules, text) if rules else text


def js_port_cause(text, rules):
    """Why the JavaScript port of Hugging Face may differ from hearth on `text` (None: no known
    reason)."""
    if "<mask>" in text:
        return "<mask> is not in the converted vocabulary (the converter writes [PAD<n-2>])"
    if rules and any(t in mkunigram.nmt_nfkc(text) and t not in text
                     for t in mkunigram.SPECIALS + [mkunigram.MASK]):
        return "the text normalizes to control-token text, which its Unigram model holds"
    if rules and spm_words(mkunigram.nmt_nfkc(text)) != spm_words(charsmapped(text, rules)):
        return "the JS port runs NFKC, not the charsmap"
    if charsmapped(text, rules).rstrip(" ").endswith(("\u0085", "\ufeff")):
        return "the JS port's trimEnd (U+FEFF stripped, U+0085 kept; Rust the other way round)"
    return None


def llama_cause(text, rules):
    """Why llama.cpp's UGM tokenizer may differ from hearth on `text` (None: no known reason).
    tokenizer/unigram.h lists the differences."""
    t = charsmapped(text, rules).rstrip(" ")
    if t and t[-1] in RUST_WHITESPACE:
        return "trailing whitespace other than ' ' (Hugging Face's Strip; llama.cpp keeps it)"
    if not rules and text.startswith(SP):
        return "text starting with U+2581 (llama.cpp adds a second one)"
    return None


def main():
    c = Checker("unigram")
    corpus = json.load(open(CORPUS, encoding="utf-8"))
    texts = corpus + EXTRA
    c.check(len(texts) >= 590, f"{len(texts)} strings, want >= 590")
    tmp = tempfile.mkdtemp(prefix="hearth-ugm-")
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    for variant in ("nmt", "none"):
        d = os.path.join(tmp, variant)
        vocab, rules, blob = mkunigram.make(d, charsmap=variant)
        gguf = os.path.join(d, "vocab.gguf")
        ours = run_json([HEARTH, "tokenize", "-m", gguf, "--texts-file", texts_file])["results"]
        hf = run_json(["node", os.path.join(ORACLE, "hf-tokenizer.mjs"), "batch", "--tokenizer", d,
                       "--texts-file", texts_file, "--add-special"])["results"]
        ll = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", gguf,
                       "--texts-file", texts_file, "--no-bos"])["results"]
        hf_eq = ll_eq = hf_corpus = 0
        hf_causes, ll_causes = {}, {}
        for i, text in enumerate(texts):
            o, h = ours[i]["tokens"], hf[i]["tokens"]
            l = [0] + ll[i]["tokens"] + [2]  # add_bos/add_eos: <s> ... </s>
            c.check(ours[i]["text"] == text, f"{variant}: string {i} did not round-trip JSON")
            # Against Hugging Face: equal, or the reference is known to differ here.
            if o == h:
                hf_eq += 1
                hf_corpus += i < len(corpus)
            else:
                cause = js_port_cause(text, rules)
                c.check(cause is not None, f"{variant}: {text[:60]!r}: hearth {o[:20]} != HF "
                                           f"{h[:20]} with no known cause")
                hf_causes.setdefault(cause, []).append(text)
            # Against llama.cpp: equal, or llama.cpp is known to differ from hearth here.
            if o == l:
                ll_eq += 1
            else:
                cause = llama_cause(text, rules)
                c.check(cause is not None, f"{variant}: {text[:60]!r}: hearth {o[:20]} != "
                                           f"llama.cpp {l[:20]} with no known cause")
                ll_causes.setdefault(cause, []).append(text)
        print(f"{variant} charsmap ({len(vocab)} pieces, {len(rules)} rules, {len(blob)} bytes): "
              f"{hf_eq}/{len(texts)} equal to Hugging Face ({hf_corpus}/{len(corpus)} of the corpus), "
              f"{ll_eq} equal to llama.cpp",
              flush=True)
        for what, causes in (("Hugging Face (JS port)", hf_causes), ("llama.cpp", ll_causes)):
            for cause, ts in sorted(causes.items(), key=lambda kv: str(kv[0])):
                print(f"  {what} deviates ({cause}): {len(ts)}, e.g. {ts[0][:50]!r}", flush=True)
        # Decode hearth's ids both ways.
        ids_file = os.path.join(d, "ids.json")
        with open(ids_file, "w") as f:
            json.dump([r["tokens"] for r in ours], f)
        for special in (True, False):
            flag = [] if special else ["--no-special"]
            ours_d = run_json([HEARTH, "detokenize", "-m", gguf, "--tokens-file", ids_file] + flag)
            hf_d = run_json(["node", HF_DECODE, d, ids_file] + ([] if special else ["--skip-special"]))
            eq = 0
            for i, text in enumerate(texts):
                a, b = ours_d["results"][i]["text"], hf_d["results"][i]["text"]
                c.check(a == b, f"{variant} decode{'' if special else ' (no special)'}: "
                                f"{text[:60]!r}: hearth {a[:80]!r} != HF {b[:80]!r}")
                eq += a == b
            print(f"{variant} decode{'' if special else ' --no-special'}: {eq}/{len(texts)} equal "
                  "to Hugging Face", flush=True)
        if variant == "nmt":
            embed_check(c, tmp, gguf, d)
    shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


def embed_check(c, tmp, vocab_gguf, hf_dir):
    texts_file = os.path.join(tmp, "embed-texts.json")
    with open(texts_file, "w", encoding="utf-8") as f:
        json.dump(EMBED_TEXTS, f, ensure_ascii=False)
    worst = 1.0
    models = {}
    for seed, pooling in ((11, "mean"), (12, "cls")):
        model = os.path.join(tmp, f"bert-ugm-{pooling}.gguf")
        subprocess.run([sys.executable, MKBERT, model, "--vocab-from", vocab_gguf, "--dtype", "F16",
                        "--pooling", pooling, "--seed", str(seed)], check=True, capture_output=True)
        models[pooling] = model
        # node-llama-cpp's embedding context: the text without special-token parsing, no <s> for a
        # UGM vocabulary, </s> appended (LlamaEmbeddingContext, resolveEndTokenToAppend).
        ll = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", model,
                       "--texts-file", texts_file, "--no-bos", "--no-special"])["results"]
        ours = run_json([HEARTH, "tokenize", "-m", model, "--texts-file", texts_file, "--no-bos",
                         "--no-special"])["results"]
        refs = oracle_embed_many(model, texts_file)
        for text, l, o, ref in zip(EMBED_TEXTS, ll, ours, refs):
            label = f"embed {pooling} {text[:24]!r}"
            c.check(o["tokens"] == l["tokens"], f"{label}: hearth pieces {o['tokens'][:16]} != "
                                                f"llama.cpp {l['tokens'][:16]}")
            ids = l["tokens"] + [2]
            got = run_json([HEARTH, "embed", "-m", model, "--tokens", ",".join(map(str, ids))])
            v = np.array(got.get("embedding", []), dtype=np.float64)
            if v.shape != ref.shape:
                c.check(False, f"{label}: {v.shape} vs llama.cpp {ref.shape}")
                continue
            cos = float(v @ ref) / (float(np.linalg.norm(v)) * float(np.linalg.norm(ref)) or 1.0)
            worst = min(worst, cos)
            c.check(cos >= 0.9999, f"{label}: cosine {cos:.6f} < 0.9999 "
                                   f"(max |diff| {float(np.max(np.abs(v - ref))):.3g})")
    print(f"embeddings ({len(EMBED_TEXTS)} texts x mean/cls, F16): worst cosine {worst:.7f} "
          "against llama.cpp", flush=True)

    # Through the server: /api/embed tokenizes as Hugging Face does (<s> ... </s>, the ids of
    # sentence-transformers' tokenizer); each vector is `hearth embed` of those ids, normalized.
    hf = run_json(["node", os.path.join(ORACLE, "hf-tokenizer.mjs"), "batch", "--tokenizer", hf_dir,
                   "--texts-file", texts_file, "--add-special"])["results"]
    s = Server(env={"HEARTH_NUM_PARALLEL": "1"})
    try:
        put_model(s.models, "ugm-mean:latest", models["mean"])
        st, r = s.json("POST", "/api/embed", {"model": "ugm-mean", "input": EMBED_TEXTS})
        c.check(st == 200, f"/api/embed on the Unigram bert: {st} {r}")
        if st == 200:
            c.check(r["prompt_eval_count"] == sum(len(h["tokens"]) for h in hf),
                    f"/api/embed prompt_eval_count {r['prompt_eval_count']} != Hugging Face's "
                    f"{sum(len(h['tokens']) for h in hf)} tokens")
            low = 1.0
            for text, h, v in zip(EMBED_TEXTS, hf, r["embeddings"]):
                got = run_json([HEARTH, "embed", "-m", models["mean"], "--tokens",
                                ",".join(map(str, h["tokens"]))])
                ref = np.array(got["embedding"], dtype=np.float64)
                v = np.array(v, dtype=np.float64)
                cos = float(v @ ref) / (float(np.linalg.norm(v)) * float(np.linalg.norm(ref)))
                low = min(low, cos)
                c.check(cos >= 0.99999 and abs(float(np.linalg.norm(v)) - 1) < 1e-5,
                        f"/api/embed {text[:24]!r}: cosine {cos:.7f} against hearth embed of "
                        "Hugging Face's ids")
            print(f"/api/embed: {len(EMBED_TEXTS)} texts, {r['prompt_eval_count']} tokens (= Hugging "
                  f"Face's <s> ... </s>), worst cosine {low:.7f} against `hearth embed` of them",
                  flush=True)
    finally:
        s.stop()


if __name__ == "__main__":
    main()
