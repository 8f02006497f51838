"""Bad input to the engine commands gives a clear message and a non-zero exit, never a crash:
truncated and garbage files, a missing file, a non-model GGUF, bad token ids, bad options."""
import os
import subprocess
import tempfile

from harness import FIXTURES, HEARTH, Checker


def run(*args):
    return subprocess.run([HEARTH, *args], capture_output=True, text=True, timeout=60)


def main():
    c = Checker("cli-errors")
    tmp = tempfile.mkdtemp(prefix="hearth-cli-")
    src = os.path.join(FIXTURES, "llama-Q4_K_M.gguf")
    data = open(src, "rb").read()
    truncated = os.path.join(tmp, "truncated.gguf")
    open(truncated, "wb").write(data[: len(data) // 2])
    garbage = os.path.join(tmp, "garbage.gguf")
    open(garbage, "wb").write(b"not a gguf file at all" * 100)
    vocab_only = os.path.join(FIXTURES, "vocab-qwen3.gguf")
    cases = [
        (("logits", "-m", truncated, "--tokens", "1,2"), "past the end"),
        (("logits", "-m", garbage, "--tokens", "1,2"), "magic"),
        (("logits", "-m", os.path.join(tmp, "missing.gguf"), "--tokens", "1"), "cannot open"),
        (("logits", "-m", vocab_only, "--tokens", "1"), "missing metadata key"),
        (("logits", "-m", src, "--tokens", "1,abc"), "not a token id"),
        (("logits", "-m", src, "--tokens", "999999"), "out of range"),
        (("greedy", "-m", src, "--tokens", "1", "--isa", "sse9"), "--isa"),
        (("greedy", "-m", src, "--tokens", "1", "--kv-type", "q2_k"), "--kv-type"),
        (("quantize", src, os.path.join(tmp, "o.gguf"), "q9_z"), "unknown quantization type"),
        (("quantize", src, os.path.join(tmp, "o.gguf"), "q8_0"), "requantizing"),
    ]
    for args, expect in cases:
        p = run(*args)
        label = " ".join(a if len(a) < 40 else os.path.basename(a) for a in args)
        c.check(p.returncode not in (0, -6, -11) and p.returncode > 0,
                f"{label}: exit code {p.returncode}")
        c.check(expect in p.stderr, f"{label}: stderr lacks {expect!r}: {p.stderr.strip()!r}")
    # A failed quantize leaves no output and no temporary behind.
    c.check(not any(f.startswith("o.gguf") for f in os.listdir(tmp)),
            f"quantize left files behind: {os.listdir(tmp)}")
    c.finish()


if __name__ == "__main__":
    main()
