#!/usr/bin/env python3
"""Writes ~4 MB of mixed text for the tokenizer throughput benchmark (deterministic): English-like
prose from a generated vocabulary of ~20k distinct words (Zipf-distributed, so words repeat as in
real text), the kept corpus strings (languages, CJK, emoji, special-token text), code with
indentation, and numbers.   usage: make_tokenizer_text.py OUT [MEGABYTES]"""
import json, os, random, sys

rng = random.Random(7)
out_path = sys.argv[1]
target = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 4_000_000
corpus = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data",
                                     "tokenizer_corpus.json"), encoding="utf-8"))
syll = ["ka", "lo", "mi", "ten", "ra", "vo", "sun", "de", "pri", "st", "an", "el", "or", "qu", "ix",
        "ber", "gal", "ton", "ing", "ed", "tion", "ly", "ou", "th", "sh", "ch", "ea", "ai"]
words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(20000)]
weights = [1.0 / (i + 1) for i in range(len(words))]
code = ["def {0}(x, y):\n    return x.{0} + y * {1}\n", "for (int i = 0; i < {1}; ++i) {{\n\t{0}[i] = i;\n}}\n",
        "{{\"{0}\": {1}, \"list\": [1, 2, 3]}}\n", "    if {0} != {1}:\n        raise ValueError('{0}')\n"]
parts, size = [], 0
while size < target:
    k = rng.random()
    if k < 0.6:
        n = rng.randint(5, 40)
        s = " ".join(rng.choices(words, weights, k=n))
        s = s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";"]) + rng.choice([" ", "\n", "\n\n"])
    elif k < 0.8:
        s = rng.choice(corpus) + "\n"
    elif k < 0.95:
        s = rng.choice(code).format(rng.choice(words), rng.randint(0, 10**rng.randint(1, 9)))
    else:
        s = " ".join(str(rng.randint(0, 10**rng.randint(1, 12))) for _ in range(rng.randint(1, 8))) + "\n"
    parts.append(s)
    size += len(s.encode("utf-8"))
open(out_path, "w", encoding="utf-8").write("".join(parts))
print(f"{size} bytes -> {out_path}")
