"""Tokenizer parity on the real vocabularies (vocab-only fixtures: Qwen3, Llama 3.1, Gemma 3).

For every string of tests/data/tokenizer_corpus.json (560 strings: languages, CJK, emoji/ZWJ,
code and whitespace runs, digits, special-token text, unusual Unicode; made by
tools/make_tokenizer_corpus.py):
  * hearth's ids equal the Hugging Face reference tokenizer's (hf-tokenizer, add_special) — always;
  * hearth's ids equal llama.cpp's (llama-oracle tokenize) wherever llama.cpp agrees with Hugging
    Face; where llama.cpp deviates (it skips Qwen's NFC normalization, for one) Hugging Face is
    right and the deviations are counted and printed;
  * with special-token parsing off, hearth equals llama.cpp except for the listed strings (user-
    defined tokens that llama.cpp leaves unmatched in that mode; Hugging Face has no such mode).
Round trips are checked in the unit tests (tokenizer_test.cpp)."""
import json
import os

import subprocess

from harness import FIXTURES, HEARTH, ORACLE, Checker


def run_json(cmd):
    # The whole of stdout is one JSON document; it may contain U+2028 and U+0085, which Python's
    # splitlines() would treat as line breaks, so it is not split.
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)

CORPUS = os.path.join(os.path.dirname(__file__), "..", "data", "tokenizer_corpus.json")
VOCABS = ["qwen3", "llama3_1", "gemma3"]
# parse_special=false: strings where llama.cpp does not match a user-defined token that hearth
# (following its own rule: user-defined tokens are always matched, as in Hugging Face) does.
NO_SPECIAL_KNOWN = {
    "qwen3": {"<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"},
    "llama3_1": set(),
    "gemma3": {"<s></s>"},
}


def main():
    c = Checker("tokenizer")
    texts = json.load(open(CORPUS, encoding="utf-8"))
    c.check(len(texts) >= 500, f"corpus has {len(texts)} strings, want >= 500")
    for name in VOCABS:
        v = os.path.join(FIXTURES, f"vocab-{name}.gguf")
        ours = run_json([HEARTH, "tokenize", "-m", v, "--texts-file", CORPUS])["results"]
        hf = run_json(["node", os.path.join(ORACLE, "hf-tokenizer.mjs"), "batch", "--tokenizer",
                       name, "--texts-file", CORPUS, "--add-special"])["results"]
        ll = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", v,
                       "--texts-file", CORPUS])["results"]
        ours_ns = run_json([HEARTH, "tokenize", "-m", v, "--texts-file", CORPUS,
                            "--no-special"])["results"]
        ll_ns = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize", v,
                          "--texts-file", CORPUS, "--no-special"])["results"]
        hf_eq = ll_eq = ll_dev = ns_eq = 0
        for i, text in enumerate(texts):
            o, h, l = ours[i]["tokens"], hf[i]["tokens"], ll[i]["tokens"]
            c.check(ours[i]["text"] == text, f"{name}: corpus string {i} did not round-trip JSON")
            c.check(o == h, f"{name}: {text!r}: hearth {o[:16]} != HF {h[:16]}")
            hf_eq += o == h
            if l == h:
                c.check(o == l, f"{name}: {text!r}: hearth {o[:16]} != llama.cpp {l[:16]}")
                ll_eq += o == l
            else:
                ll_dev += 1
            if text in NO_SPECIAL_KNOWN[name]:
                continue
            if l == h:  # no-special mode is only comparable where the two agree at all
                c.check(ours_ns[i]["tokens"] == ll_ns[i]["tokens"],
                        f"{name} --no-special: {text!r}: hearth {ours_ns[i]['tokens'][:16]} != "
                        f"llama.cpp {ll_ns[i]['tokens'][:16]}")
                ns_eq += ours_ns[i]["tokens"] == ll_ns[i]["tokens"]
        print(f"{name}: {hf_eq}/{len(texts)} equal to Hugging Face; {ll_eq} equal to llama.cpp, "
              f"{ll_dev} where llama.cpp deviates from Hugging Face; no-special mode {ns_eq} equal "
              f"to llama.cpp", flush=True)
    c.finish()


if __name__ == "__main__":
    main()
