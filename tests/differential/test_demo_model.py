"""The demo model hearth ships (models/demo/, trained by scripts/train-demo): llama.cpp loads it
and gives hearth's logits and greedy tokens; it is trained (perplexity on its held-back text far
below the uniform model's vocabulary size) and chats in real words (a greedy answer to a chat
prompt is made of words found in the held-back text and the hand-written chat set)."""
import json
import os
import re
import subprocess

import numpy as np

from harness import HEARTH, Checker, hearth_greedy, hearth_logits, oracle_greedy, oracle_logits
from harness import run_json, tolerance

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "models", "demo", "hearth-demo-Q8_0.gguf")
HELDOUT = os.path.join(ROOT, "models", "demo", "heldout.txt")
CHATS = os.path.join(ROOT, "tools", "train", "demo", "chat.jsonl")
DICT = "/usr/share/dict/words"
SYSTEM = "You are hearth's demo model, a small language model trained on this computer."

# The shipped model scores 11.66 on the first 8 chunks (README table); a uniform guess over its
# 4110 tokens scores 4110.
MAX_PERPLEXITY = 15.0
MIN_REAL_WORDS = 0.85


def prompt_tokens(question):
    msgs = json.dumps([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])
    p = subprocess.run([HEARTH, "render", "-m", MODEL, "--messages", msgs], capture_output=True,
                       text=True, check=True)
    return run_json([HEARTH, "tokenize", "-m", MODEL, "--text", p.stdout])["tokens"]


def words(text):
    return re.findall(r"[a-z]+", text.lower())


def main():
    # llama.cpp's attention summation order, as test_fixtures and test_finetune compare with.
    os.environ["HEARTH_ATTN"] = "exact"
    c = Checker("demo_model")
    c.check(os.path.exists(MODEL), f"{MODEL} is missing")
    if not os.path.exists(MODEL):
        c.finish()
    # English words (wamerican, installed by scripts/setup), the held-back text's and the chat set's.
    vocab = set(words(open(DICT, encoding="utf-8", errors="replace").read()))
    vocab |= set(words(open(HELDOUT, encoding="utf-8").read()))
    for line in open(CHATS, encoding="utf-8"):
        for m in json.loads(line)["messages"]:
            vocab |= set(words(m["content"]))

    # llama.cpp agrees with hearth on the shipped file.
    toks = prompt_tokens("Tell me about the sea.")
    ours = hearth_logits(MODEL, toks, all_positions=True)
    ref = oracle_logits(MODEL, toks, all_positions=True)
    d = float(np.abs(ours - ref).max())
    tol = tolerance("Q8_0")
    print(f"logits over {len(toks)} positions: max|hearth - llama.cpp| {d:.2e} (tol {tol})")
    c.check(d <= tol, f"logits differ from llama.cpp: {d} > {tol}")
    g_ours = hearth_greedy(MODEL, toks, 24)
    g_ref = oracle_greedy(MODEL, toks, 24)
    c.check(g_ours == g_ref, f"greedy tokens differ: {g_ours} vs {g_ref}")

    # Trained: perplexity on the held-back documents.
    j = run_json([HEARTH, "perplexity", MODEL, "-f", HELDOUT, "--chunks", "8", "--json"])
    print(f"perplexity on held-back text (8 chunks of 512): {j['ppl']:.3f}")
    c.check(j["ppl"] < MAX_PERPLEXITY, f"perplexity {j['ppl']} >= {MAX_PERPLEXITY}")

    # Real words: greedy answers to chat prompts, up to the end of the turn.
    end = run_json([HEARTH, "tokenize", "-m", MODEL, "--text", "<|im_end|>", "--no-bos"])["tokens"]
    c.check(len(end) == 1, f"<|im_end|> is not one token: {end}")
    for q in ("Hello! Who are you?", "What does Genesis 1:1 say?", "Give me a fortune cookie."):
        out = hearth_greedy(MODEL, prompt_tokens(q), 60)
        if end[0] in out:
            out = out[:out.index(end[0])]
        text = run_json([HEARTH, "detokenize", "-m", MODEL, "--tokens",
                         ",".join(map(str, out)), "--no-special"])["text"]
        ws = words(text)
        real = sum(w in vocab for w in ws) / max(1, len(ws))
        print(f"{q!r} -> {text.strip()[:160]!r} ({len(ws)} words, {100 * real:.0f}% known)")
        c.check(len(ws) >= 3 and real >= MIN_REAL_WORDS,
                f"{q!r}: answer {text!r} is not made of real words ({real:.2f})")
    c.finish()


if __name__ == "__main__":
    main()
