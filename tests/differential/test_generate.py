"""Text in, text out, against llama.cpp: `hearth greedy` prints the same `text` as the oracle's
greedy for the same tokens, and `hearth generate --temp 0` streams exactly that text for a text
prompt (prompt tokenized as llama.cpp tokenizes it), stopping at stop strings."""
import json
import os
import subprocess

from harness import FIXTURES, HEARTH, ORACLE, Checker


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p.stdout


def main():
    c = Checker("generate")
    prompt = "The capital of France is"
    for name in ["llama-F16", "qwen3-F16", "qwen2-Q8_0"]:
        model = os.path.join(FIXTURES, name + ".gguf")
        toks = json.loads(run(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "tokenize",
                               model, "--text", prompt]))["tokens"]
        ours_toks = json.loads(run([HEARTH, "tokenize", "-m", model, "--text", prompt]))["tokens"]
        c.check(ours_toks == toks, f"{name}: prompt tokens {ours_toks} != llama.cpp {toks}")
        arg = ",".join(map(str, toks))
        ref = json.loads(run(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "greedy", model,
                              "--tokens", arg, "--n", "12"]))
        ours = json.loads(run([HEARTH, "greedy", "-m", model, "--tokens", arg, "--n", "12"]))
        if ours["tokens"] == ref["tokens"]:
            c.check(ours.get("text") == ref["text"],
                    f"{name}: greedy text {ours.get('text')!r} != oracle {ref['text']!r}")
        # generate streams the same continuation (greedy: --temp 0, no penalty) as text; control
        # tokens are not shown, and an end-of-generation token may end it early.
        text = json.loads(run([HEARTH, "detokenize", "-m", model, "--no-special", "--tokens",
                               ",".join(map(str, ours["tokens"]))]))["text"]
        greedy = [HEARTH, "generate", "-m", model, "-p", prompt, "-n", "12", "--temp", "0",
                  "--repeat-penalty", "1"]
        out = run(greedy)
        c.check(out.endswith("\n") and text.startswith(out[:-1]) and len(out) > 1,
                f"{name}: generate printed {out!r}, greedy text is {text!r}")
        text = out[:-1]
        # A stop string taken from the middle of that text cuts the output right before it.
        if len(text) > 8:
            stop = text[4:7]
            cut = run(greedy + ["--stop", stop])
            c.check(cut == text[: text.find(stop)] + "\n",
                    f"{name}: with stop {stop!r} printed {cut!r}")
        print(f"{name}: greedy {len(ours['tokens'])} tokens, text {text!r}", flush=True)
    c.finish()


if __name__ == "__main__":
    main()
