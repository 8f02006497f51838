"""Every fixture of ARCHS in ../shared/fixtures against llama.cpp run live on this machine:
last-position logits within tolerance, argmax per position where the gap allows, greedy
continuation equal up to the first near-tie. The stored *.ref.json give the prompt and the file's
sha256; their logits are not used as the reference because llama.cpp's F16 matmuls depend on
the CPU (F32 activations where its AMX backend takes them, F16 elsewhere), and hearth follows
llama.cpp on the machine it runs on."""
import glob
import hashlib
import os

import numpy as np

from harness import (FIXTURES, MOE_TIE_SHARE, Checker, hearth_greedy, hearth_logits, load_ref,
                     moe_confident, oracle_greedy, oracle_logits, tolerance)

ARCHS = ("llama", "qwen2", "qwen3", "qwen3moe", "gemma3", "llama4", "gemma4", "qwen35", "qwen35moe")


# hearth's default attention is tiled with an online softmax (ops/attention.cpp), which sums in
# another order than llama.cpp's non-flash path (the oracle's). The comparisons above the line run
# HEARTH_ATTN=exact (llama.cpp's order for an F16 cache), so they stay as strict as before and a
# kernel regression shows as it did (llama-Q8_0 and gemma3-Q8_0 are bit-identical to llama.cpp
# that way). The default tiled path is then checked on the last position with the other-order
# tolerance: on quantized files the attention's float-order noise flips 8-bit activation roundings
# (the mechanism harness.ORDER_TOLERANCE describes). Measured, last position, tiled vs the oracle
# and llama.cpp's own flash attention vs its non-flash path on the same file: llama-Q8_0 5.2e-2
# and 5.8e-2; gemma4-Q4_K_M (sharp attention) 0.17 and 0.21; qwen3moe-Q4_K_M 0.43 and 0.40 (no
# router near-tie at the last position: 4-bit activation flips carried through the experts).
# So 0.1 for Q8_0, 0.3 / 0.6 for quantized Gemma 4 / Qwen3-MoE, the dtype's tolerance otherwise
# (F16: at most 4.1e-3 last, llama4-F16). Kernel errors still show in the strict pass above.
TILED_TOLERANCE = {"Q8_0": 0.1}
TILED_TOLERANCE_ARCH = {"gemma4": 0.3, "qwen3moe": 0.6}  # quantized files of these


def main():
    c = Checker("fixtures")
    os.environ["HEARTH_ATTN"] = "exact"
    refs = sorted(glob.glob(os.path.join(FIXTURES, "*.ref.json")))
    done = 0
    for rp in refs:
        ref = load_ref(rp)
        if ref["architecture"] not in ARCHS:
            continue
        model = os.path.join(FIXTURES, ref["model"])
        with open(model, "rb") as f:
            c.check(hashlib.sha256(f.read()).hexdigest() == ref["model_sha256"],
                    f"{ref['model']}: sha256 differs from the reference's")
        tol = tolerance(ref["dtype"], ref["architecture"])
        prompt = ref["prompt_tokens"]
        live = oracle_logits(model, prompt, all_positions=True)
        rows, info = hearth_logits(model, prompt, all_positions=True, info=True)
        keep = moe_confident(info, len(prompt))  # MoE router near-ties (none seen so far)
        c.check(int((~keep).sum()) <= MOE_TIE_SHARE * len(prompt) + 1,
                f"{ref['model']}: {int((~keep).sum())} router near-ties")
        # The last position against the tolerance (the engine-core issue's measure); every
        # position is reported (Q8_0 rounding flips reach ~5.4e-2 at some earlier ones).
        d = 0.0
        if keep[-1]:
            d = c.compare_rows(ref["model"] + " last", rows[-1:], live[-1:], tol)
        d_all = float(np.abs(rows[keep] - live[keep]).max())
        # argmax per position, where our own top-2 gap is wide enough that a tolerance-sized
        # error could not flip it.
        am = [int(np.argmax(r)) for r in live]
        flips = 0
        for p in range(len(prompt)):
            s = np.sort(rows[p])
            if s[-1] - s[-2] > 2 * tol and keep[p]:
                flips += int(np.argmax(rows[p]) != am[p])
        c.check(flips == 0, f"{ref['model']}: argmax differs at {flips} confident positions")
        # Greedy: teacher-force the reference continuation through the oracle to get its gaps.
        g = oracle_greedy(model, prompt, len(ref["greedy"]["tokens"]))
        teacher = oracle_logits(model, prompt + g[:-1], all_positions=True)[len(prompt) - 1:]
        ours = hearth_greedy(model, prompt, len(g))
        limit = c.compare_greedy(ref["model"], ours, g, teacher, tol)
        # The other kernel levels (each checked against the scalar references in the unit
        # tests) must agree end to end with the default level within the same tolerance (the
        # hybrids' Q8_0 files excepted, see harness.ORDER_TOLERANCE). They are not compared with
        # llama.cpp's default build directly: the generic level sums Q8_0 dots in another order,
        # so a flipped Q8_0 rounding could cross 5e-2 without any kernel being wrong. (scripts/test
        # runs this whole test again at HEARTH_ISA=avx2 against llama.cpp's AVX2 backend.)
        tol_levels = tolerance(ref["dtype"], ref["architecture"], other_order=True)
        for isa in ("generic", "avx2", "avxvnni"):
            alt = hearth_logits(model, prompt, extra=("--isa", isa))
            da = c.compare_rows(f"{ref['model']} last ({isa} vs default)", alt, rows[-1:],
                                tol_levels)
            print(f"{'':24s} --isa {isa:7s} max|diff| vs default {da:.2e}", flush=True)
        del os.environ["HEARTH_ATTN"]
        tol_tiled = max(tol, TILED_TOLERANCE.get(ref["dtype"], tol))
        if ref["dtype"] not in ("F16", "BF16", "F32"):
            tol_tiled = max(tol_tiled, TILED_TOLERANCE_ARCH.get(ref["architecture"], tol_tiled))
        tiled = hearth_logits(model, prompt)
        dt = c.compare_rows(f"{ref['model']} last (tiled attention)", tiled, live[-1:], tol_tiled)
        os.environ["HEARTH_ATTN"] = "exact"
        print(f"{'':24s} tiled attention max|diff| last {dt:.2e} (tol {tol_tiled})", flush=True)
        print(f"{ref['model']:24s} max|diff| last {d:.2e} (tol {tol}), all positions "
              f"{d_all:.2e}; greedy equal {limit}/{len(g)}", flush=True)
        done += 1
    c.check(done >= 27, f"expected at least 21 fixtures of {ARCHS}, found {done}")
    c.finish()


if __name__ == "__main__":
    main()
