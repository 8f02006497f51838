"""The KV cache types against llama.cpp on every position of the F16 fixtures.

1. --kv-type q8_0 and f32 against the oracle (an F16 cache, no flash attention). An F32 cache
   must stay within the F16 tolerance (1e-2). A Q8_0 cache rounds every K and V element to 8 bits
   (per 32), an error the reference does not make, so its budget is 0.1 (measured: 4-6e-2).
2. --kv-type q8_0 and q4_0 against llama.cpp running the same cache type (kv_oracle.mjs: flash
   attention, which llama.cpp needs for a quantized V cache). The two cannot be compared row
   against row: the engines' F16 noise (~4e-3 on these logits) moves K and V values across
   8-bit / 4-bit rounding boundaries in later layers, so each engine's quantized run carries its
   own rounding noise (measured on llama-F16: hearth q8_0 and llama.cpp q8_0 are 3.9e-2 and
   4.0e-2 from the F16 oracle but 5.8e-2 from each other; q4_0: 0.55, 0.59 and 0.96). What is
   checked is that hearth's cache of each type costs no more accuracy than llama.cpp's: max and
   RMS |logits - F16 oracle| within 1.5x of llama.cpp's own with that cache type. A broken cache
   (wrong nibble order, scale or row) moves logits by whole units, far beyond that.
"""
import os
import subprocess
import tempfile

import numpy as np

from harness import FIXTURES, Checker, hearth_logits, load_ref, oracle_logits

HERE = os.path.dirname(os.path.abspath(__file__))


def oracle_kv_logits(model, tokens, kv):
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        out = f.name
    try:
        p = subprocess.run(["node", os.path.join(HERE, "kv_oracle.mjs"), model, "--tokens",
                            ",".join(map(str, tokens)), "--kv", kv, "--out", out],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"kv_oracle.mjs failed ({p.returncode}):\n{p.stderr}")
        rows = np.fromfile(out, dtype="<f4")
        return rows.reshape(len(tokens), -1)
    finally:
        os.unlink(out)


def main():
    c = Checker("kv-types")
    for name in ("llama-F16", "qwen2-F16", "qwen3-F16"):
        model = os.path.join(FIXTURES, name + ".gguf")
        prompt = load_ref(os.path.join(FIXTURES, name + ".ref.json"))["prompt_tokens"]
        ref = oracle_logits(model, prompt, all_positions=True)
        for kv, tol in (("q8_0", 0.1), ("f32", 1e-2)):
            ours = hearth_logits(model, prompt, all_positions=True, extra=("--kv-type", kv))
            d = c.compare_rows(f"{name} kv {kv}", ours, ref, tol)
            print(f"{name:10s} --kv-type {kv:5s} max|diff| {d:.2e} (tol {tol})", flush=True)
        for kv in ("q8_0", "q4_0"):
            theirs = oracle_kv_logits(model, prompt, kv)
            ours = hearth_logits(model, prompt, all_positions=True, extra=("--kv-type", kv))
            d_ours, d_theirs = np.abs(ours - ref), np.abs(theirs - ref)
            rms_ours, rms_theirs = np.sqrt(np.mean(d_ours**2)), np.sqrt(np.mean(d_theirs**2))
            c.check(np.isfinite(ours).all() and d_ours.max() <= 1.5 * d_theirs.max()
                    and rms_ours <= 1.5 * rms_theirs,
                    f"{name} kv {kv}: hearth max {d_ours.max():.2e} rms {rms_ours:.2e}, llama.cpp "
                    f"max {d_theirs.max():.2e} rms {rms_theirs:.2e} from the F16 oracle")
            print(f"{name:10s} --kv-type {kv:5s} from the F16 oracle: hearth max {d_ours.max():.2e}"
                  f" rms {rms_ours:.2e}; llama.cpp {kv} (flash) max {d_theirs.max():.2e} rms "
                  f"{rms_theirs:.2e}; hearth vs llama.cpp {kv} max "
                  f"{np.abs(ours - theirs).max():.2e}", flush=True)
    c.finish()


if __name__ == "__main__":
    main()
