"""WordPiece (tokenizer.ggml.model = "bert") parity with Hugging Face and llama.cpp.

tests/tools/mkwordpiece.py builds a WordPiece vocabulary from the tokenizer corpus (an uncased and
a cased one) into a temp dir, as a Hugging Face tokenizer.json (BertNormalizer, BertPreTokenizer,
WordPiece, [CLS] $A [SEP], WordPiece decoder) and as the vocab-only GGUF llama.cpp's converter
would write. For every string of tests/data/tokenizer_corpus.json plus BERT-specific cases (accents,
case, punctuation runs, CJK, words over 100 characters, emoji, control characters, empty text):
  * hearth's ids equal Hugging Face's (hf-tokenizer batch --add-special) — always. The reference
    is the JavaScript port (@lenml/tokenizers); where it differs from the Rust crate that
    transformers runs (and hearth follows: tokenizer/wordpiece.h), the port's input is adjusted
    to what the Rust normalizer does first: unassigned code points (Cn) removed, CJK ideographs
    outside the BMP spaced, and (uncased) capital sigma given as σ (the port's toLowerCase
    would make a word-final ς). Those strings are counted;
  * hearth's ids equal llama.cpp's (llama-oracle tokenize, plus the [SEP] it does not append)
    wherever llama.cpp agrees with Hugging Face; every string where llama.cpp deviates must
    have one of the known causes (tokenizer/wordpiece.h), which are counted and printed;
  * decode: `hearth detokenize` of hearth's ids equals Hugging Face's decode of the same ids,
    with and without special tokens (tests/differential/hf_decode.mjs).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata

from harness import HEARTH, ORACLE, Checker

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import mkwordpiece  # noqa: E402

CORPUS = os.path.join(ROOT, "tests", "data", "tokenizer_corpus.json")
HF_DECODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_decode.mjs")

EXTRA = [
    "",
    " ",
    "\t\n\r ",
    "Café résumé naïve façade",
    "ÉCOLE Ångström Øresund",
    "cafe\u0301 and e\u0301",                # combining accents
    "İstanbul İ",
    "ΟΔΟΣ ΣΟΦΟΣ σοφός",
    "HELLO World hello WORLD",
    "Hello, world!!! ...??? ---",
    "don't stop—won't (really) [maybe] {ok} <tag> a/b\\c @x #y $z %w ^v &u *t +s =r |q ~p `o",
    "«quoted» ¿qué? ¡sí! 「日本」、。",
    "我爱北京天安门",
    "東京タワーと人",
    "한국어 텍스트",
    "\U00020000\U00020001 ext-B \U0002B820\U0002B920 gap",
    "a" * 100,
    "a" * 101,
    "supercalifragilisticexpialidocious" * 4,
    "é" * 101,
    "unbelievable tokenizers embedding",
    "emoji 😀🎉 👍🏽 family 👨‍👩‍👧",
    "ctrl\x00nul\x01soh\x7fdel\u200bzwsp\ufeffbom\u00adshy\ufffdrepl",
    "\u0085nel\u00a0nbsp\u2003em\u3000ideo\u2028ls",
    "[CLS] hello [SEP] [MASK] [UNK] [PAD]",
    "[cls] [Sep] [MASK",
    "x[MASK]y",
    "12345.678 3,14 1e-9",
    "\ufb01ligature \u2126ohm \u212bangstrom",
    "Hawaiʻi ʻōlelo",
    "e\u0301\u0301\u0301 \u0301alone",
    "\U000f0000 private \ue000 use \U0010ffff",
]


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def rust_cjk(c):
    cp = ord(c)
    return any(a <= cp <= b for a, b in ((0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
                                         (0x2B920, 0x2CEAF), (0x2F800, 0x2FA1F)))


def for_js_port(text, cased):
    """`text` with what the Rust normalizer does and the JS port does not already applied."""
    out = []
    for c in text:
        if unicodedata.category(c) == "Cn":
            continue
        if rust_cjk(c):
            out.append(" " + c + " ")
        elif c == "\u03a3" and not cased:
            out.append("\u03c3")
        else:
            out.append(c)
    return "".join(out)


def words_over_100(text):
    run = 0
    for c in text:
        if c.isspace() or unicodedata.category(c).startswith("P") or (ord(c) < 128 and not c.isalnum()):
            run = 0
        else:
            run += 1
            if run > 100:
                return True
    return False


def llama_deviation_cause(text, cased):
    """Why llama.cpp's WPM tokenizer may differ from Hugging Face on `text` (None: no known
    reason). tokenizer/wordpiece.h lists the differences."""
    if cased and any(c.lower() != c or unicodedata.normalize("NFD", c) != c for c in text):
        return "cased vocabulary (llama.cpp lowercases and applies NFD)"
    if words_over_100(text):
        return "word over 100 characters (HF: [UNK])"
    if "\u0130" in text:
        return "U+0130 lowercase"
    if any(unicodedata.normalize("NFD", c) != c or unicodedata.category(c).startswith("M")
           for c in text):
        return "accents, combining marks (llama.cpp drops spacing marks, Mc, too)"
    if "\x85" in text:
        return "U+0085 (HF: a control character, removed; llama.cpp: whitespace)"
    if any(unicodedata.category(c) in ("Cn", "Co", "Cf") for c in text):
        return "format/unassigned/private-use characters"
    return None


def main():
    c = Checker("wordpiece")
    texts = json.load(open(CORPUS, encoding="utf-8")) + EXTRA
    c.check(len(texts) >= 550, f"{len(texts)} strings, want >= 550")
    tmp = tempfile.mkdtemp(prefix="hearth-wp-")
    texts_file = os.path.join(tmp, "texts.json")
    with open(texts_file, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    for cased in (False, True):
        name = "cased" if cased else "uncased"
        d = os.path.join(tmp, name)
        vocab = mkwordpiece.make(d, cased=cased)
        sep = vocab.index("[SEP]")
        gguf = os.path.join(d, "vocab.gguf")
        hf_file = os.path.join(d, "texts-hf.json")
        adjusted = [for_js_port(t, cased) for t in texts]
        with open(hf_file, "w", encoding="utf-8") as f:
            json.dump(adjusted, f, ensure_ascii=False)
        ours = run_json([HEARTH, "tokenize", "-m", gguf, "--texts-file", texts_file])["results"]
        hf = run_json(["node", os.path.join(ORACLE, "hf-tokenizer.mjs"), "batch", "--tokenizer", d,
                       "--texts-file", hf_file, "--add-special"])["results"]
        ll = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", gguf,
                       "--texts-file", texts_file])["results"]
        hf_eq = ll_eq = n_adj = 0
        causes = {}
        for i, text in enumerate(texts):
            o, h = ours[i]["tokens"], hf[i]["tokens"]
            l = ll[i]["tokens"] + [sep]  # the oracle tokenizes without add_special, then adds BOS
            c.check(ours[i]["text"] == text, f"{name}: string {i} did not round-trip JSON")
            n_adj += adjusted[i] != text
            c.check(o == h, f"{name}: {text!r}: hearth {o[:20]} != HF {h[:20]}")
            hf_eq += o == h
            if l == h:
                c.check(o == l, f"{name}: {text!r}: hearth {o[:20]} != llama.cpp {l[:20]}")
                ll_eq += o == l
            else:
                cause = llama_deviation_cause(text, cased)
                c.check(cause is not None, f"{name}: {text!r}: llama.cpp {l[:20]} != HF {h[:20]} "
                                           "with no known cause")
                causes.setdefault(cause, []).append(text)
        print(f"{name} ({len(vocab)} pieces): {hf_eq}/{len(texts)} equal to Hugging Face "
              f"({n_adj} with the JS port's input adjusted); {ll_eq} equal to llama.cpp", flush=True)
        for cause, ts in sorted(causes.items(), key=lambda kv: str(kv[0])):
            print(f"  llama.cpp deviates ({cause}): {len(ts)}, e.g. {ts[0][:60]!r}", flush=True)
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
                c.check(a == b, f"{name} decode{'' if special else ' (no special)'}: {text!r}: "
                                f"hearth {a!r} != HF {b!r}")
                eq += a == b
            print(f"{name} decode{'' if special else ' --no-special'}: {eq}/{len(texts)} equal to "
                  "Hugging Face", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    c.finish()


if __name__ == "__main__":
    main()
