"""`hearth quantize` output loads in llama.cpp and both engines agree on it: for each
llama/qwen2/qwen3 F16 fixture and each target type, quantize with hearth, evaluate the prompt
with the oracle and with hearth, and compare the logits within that type's tolerance."""
import os
import subprocess
import tempfile

from harness import FIXTURES, HEARTH, Checker, hearth_logits, load_ref, oracle_logits, tolerance

TYPES = ["q8_0", "q6_K", "q5_K_M", "q5_K_S", "q4_K_M", "q4_K_S", "q3_K_M", "q2_K", "q4_0", "q4_1",
         "q5_0", "q5_1", "iq4_xs", "iq4_nl", "f16", "bf16"]


def main():
    # This test is about the files (the engines agree on them), so attention sums in llama.cpp's
    # non-flash order (HEARTH_ATTN=exact, docs/testing.md): the default tiled attention moved the
    # llama q8_0 file from within 0.05 to 0.052, inside llama.cpp's own flash/non-flash spread.
    os.environ["HEARTH_ATTN"] = "exact"
    c = Checker("quantize")
    tmp = tempfile.mkdtemp(prefix="hearth-quant-")
    for arch in ("llama", "qwen2", "qwen3"):
        src = os.path.join(FIXTURES, f"{arch}-F16.gguf")
        prompt = load_ref(os.path.join(FIXTURES, f"{arch}-F16.ref.json"))["prompt_tokens"]
        for t in TYPES:
            out = os.path.join(tmp, f"{arch}-{t}.gguf")
            p = subprocess.run([HEARTH, "quantize", "-q", src, out, t], capture_output=True,
                               text=True)
            c.check(p.returncode == 0, f"{arch} {t}: quantize failed: {p.stderr.strip()}")
            if p.returncode != 0:
                continue
            ref = oracle_logits(out, prompt)  # fails loudly if llama.cpp cannot load the file
            ours = hearth_logits(out, prompt)
            dtype = t.upper() if t in ("q8_0", "f16", "bf16") else "Q4"
            d = c.compare_rows(f"{arch} {t}", ours, ref, tolerance(dtype))
            print(f"{arch:6s} {t:7s} {os.path.getsize(out):>9d} bytes  max|diff| vs llama.cpp "
                  f"{d:.2e}", flush=True)
            os.unlink(out)
    c.finish()


if __name__ == "__main__":
    main()
