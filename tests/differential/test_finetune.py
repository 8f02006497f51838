"""`hearth finetune` end to end: a LoRA adapter trained by hearth on a fixture base (llama,
qwen2, qwen3) loads in llama.cpp, and llama.cpp's logits with it equal hearth's inference with it (the adapter moves the
logits far beyond that tolerance, so the comparison is not between two copies of the base); the
training loss falls; a stopped run resumed from its checkpoint writes the same adapter as one
run straight through."""
import os
import re
import subprocess
import tempfile

import numpy as np

from harness import FIXTURES, HEARTH, Checker, hearth_logits, load_ref, tolerance
from harness import ORACLE, run_json

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "train",
                    "chat-small.jsonl")


def oracle_lora_logits(model, tokens, adapter):
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        out = f.name
    try:
        j = run_json(["node", os.path.join(ORACLE, "llama-oracle.mjs"), "logits", model,
                      "--tokens", ",".join(map(str, tokens)), "--all-positions", "--out", out,
                      "--lora", adapter + ":1"])
        return np.fromfile(out, dtype="<f4").reshape(j["shape"])
    finally:
        os.unlink(out)


def finetune(base, out, extra=(), epochs=12):
    p = subprocess.run([HEARTH, "finetune", base, "--data", DATA, "--rank", "4", "--alpha", "8",
                        "--epochs", str(epochs), "--lr", "1e-2", "--ctx", "48", "--accum", "1", "-t", "2",
                        "-o", out, *extra], capture_output=True, text=True, timeout=900)
    return p.returncode, p.stderr


def main():
    os.environ["HEARTH_ATTN"] = "exact"  # llama.cpp's summation order, as test_fixtures
    c = Checker("finetune")
    tmp = tempfile.mkdtemp(prefix="hearth-ft-")
    for name, dtype in (("llama-F16", "F16"), ("llama-Q8_0", "Q8_0"), ("qwen2-F16", "F16"),
                        ("qwen3-F16", "F16"), ("qwen3-Q8_0", "Q8_0")):
        base = os.path.join(FIXTURES, name + ".gguf")
        adapter = os.path.join(tmp, name + "-lora.gguf")
        rc, err = finetune(base, adapter)
        c.check(rc == 0, f"{name}: finetune failed: {err[-2000:]}")
        if rc != 0:
            continue
        losses = [float(x) for x in re.findall(r"loss ([0-9.]+)", err)]
        c.check(len(losses) >= 2 and losses[-1] < 0.5 * losses[0],
                f"{name}: loss {losses[:1]} -> {losses[-1:]}")
        prompt = load_ref(os.path.join(FIXTURES, name + ".ref.json"))["prompt_tokens"]
        ours = hearth_logits(base, prompt, all_positions=True, extra=["--lora", adapter])
        plain = hearth_logits(base, prompt, all_positions=True)
        ref = oracle_lora_logits(base, prompt, adapter)
        tol = tolerance(dtype)
        d = float(np.abs(ours - ref).max())
        moved = float(np.abs(ours - plain).max())
        print(f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}; with the adapter max|hearth - "
              f"llama.cpp| {d:.2e} (tol {tol}), the adapter moved logits by {moved:.2f}")
        c.check(d <= tol, f"{name}: hearth vs llama.cpp with the adapter: {d} > {tol}")
        c.check(moved > 20 * tol, f"{name}: the adapter barely changes the logits ({moved})")

    # Resume: stop after a checkpoint, continue, and get the adapter of an uninterrupted run.
    base = os.path.join(FIXTURES, "llama-Q8_0.gguf")
    straight = os.path.join(tmp, "straight.gguf")
    resumed = os.path.join(tmp, "resumed.gguf")
    ckpt = os.path.join(tmp, "ckpt.gguf")
    rc1, _ = finetune(base, straight, epochs=3)
    rc2, err2 = finetune(base, os.path.join(tmp, "never.gguf"),
                         ["--checkpoint", ckpt, "--stop-at", "4"], epochs=3)
    c.check(rc2 == 0 and "stopped at step 4" in err2 and not os.path.exists(
        os.path.join(tmp, "never.gguf")), f"--stop-at: {err2[-500:]}")
    rc3, err3 = finetune(base, resumed, ["--resume", ckpt], epochs=3)
    c.check(rc1 == 0 and rc3 == 0 and "resumed from" in err3, f"resume failed: {err3[-1000:]}")
    if rc1 == 0 and rc3 == 0:
        with open(straight, "rb") as a, open(resumed, "rb") as b:
            c.check(a.read() == b.read(), "the resumed run's adapter differs from the straight one")
    c.finish()


if __name__ == "__main__":
    main()
