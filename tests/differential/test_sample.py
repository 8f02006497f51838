"""`hearth sample` end to end: a seed reproduces a run exactly, another seed changes it, and
temperature 0 without penalties equals `hearth greedy`."""
import os

from harness import FIXTURES, HEARTH, Checker, hearth_greedy, run_json


def sample(model, tokens, *flags):
    return run_json([HEARTH, "sample", "-m", model, "--tokens", ",".join(map(str, tokens)),
                     "--n", "24", *flags])["tokens"]


def main():
    c = Checker("sample")
    for name in ("llama-Q4_K_M.gguf", "qwen3-Q8_0.gguf"):
        m = os.path.join(FIXTURES, name)
        prompt = [1, 17, 300, 42]
        a = sample(m, prompt, "--seed", "11", "--temp", "1.0")
        b = sample(m, prompt, "--seed", "11", "--temp", "1.0")
        d = sample(m, prompt, "--seed", "12", "--temp", "1.0")
        c.check(a == b, f"{name}: same seed gave different tokens")
        c.check(a != d, f"{name}: different seeds gave identical tokens")
        g = sample(m, prompt, "--temp", "0", "--repeat-penalty", "1")
        c.check(g == hearth_greedy(m, prompt, 24), f"{name}: temperature 0 differs from greedy")
    c.finish()


if __name__ == "__main__":
    main()
