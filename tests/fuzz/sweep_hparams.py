#!/usr/bin/python3
"""Structured sweep for fuzz_gguf: random but self-consistent tiny models.

libFuzzer mutates bytes, so it seldom produces a file whose metadata and tensor shapes change
together (e.g. value_length below key_length with attn_v and attn_output reshaped to match),
which is what gets past the loader's shape checks into the forward pass. This script draws
random hparams per architecture (head sizes, head counts, GQA ratios, rotated dims, sliding
windows, expert counts, DeltaNet sizes, M-RoPE sections, F32/F16/BF16, and for ~30% of the
non-Gemma files a value_length different from key_length with V/O tensors shaped for it), writes
each model with mkmodel.py and runs it through a fuzz_gguf binary (ASan + UBSan build), which
loads it and, if it loads, runs a batch and a decode step. Crashes and UBSan reports are kept in
OUT_DIR and grouped by their first src/ frame; passing files are deleted.

usage: /usr/bin/python3 tests/fuzz/sweep_hparams.py FUZZ_GGUF_BINARY [N=500] [SEED=1] [OUT_DIR]
e.g.   /usr/bin/python3 tests/fuzz/sweep_hparams.py build-san/tests/fuzz/fuzz_gguf 1000 3
Exit status 1 if anything crashed.
"""
import os
import random
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "oracle"))
import mkmodel  # noqa: E402

ARCHS = ["llama", "qwen2", "qwen3", "qwen3moe", "gemma3", "llama4", "qwen35", "qwen35moe", "gemma4"]


def draw_hparams(arch):
    hd = random.choice([2, 4, 8, 16, 32])
    nh = random.choice([1, 2, 3, 4])
    nkv = random.choice([d for d in (1, 2, 3, 4) if nh % d == 0])
    E = random.choice([8, 16, 24, 32])
    if arch == "qwen2":  # mkmodel: n_head * head_dim == n_embd
        nh = random.choice([1, 2, 4])
        hd = E // nh
        nkv = random.choice([d for d in (1, 2) if nh % d == 0])
    hp = {"n_embd": E, "n_ff": random.choice([8, 16, 32]), "n_layer": random.choice([1, 2, 3]),
          "n_head": nh, "n_head_kv": nkv, "head_dim": hd,
          "rope_dim": random.choice([2, hd, max(2, hd // 2)])}
    if arch in ("qwen3moe", "llama4", "qwen35moe") or (arch == "gemma4" and random.random() < 0.5):
        ne = random.choice([1, 2, 4])
        hp.update(n_expert=ne, n_expert_used=random.randint(1, ne),
                  n_ff_exp=random.choice([4, 8, 16]), n_ff_shexp=8)
    if arch == "llama4":
        hp.update(n_layer=random.choice([1, 2, 4]), interleave_moe_layer_step=random.choice([1, 2, 3]))
    if arch == "gemma3":
        hp.update(sliding_window=random.choice([1, 2, 3, 4, 16]),
                  sliding_window_pattern=random.choice([1, 2, 3]))
    if arch == "gemma4":
        hp.update(sliding_window=random.choice([1, 2, 4, 16]),
                  head_dim_swa=random.choice([2, 4, 8, 16, 64]), n_layer=random.choice([1, 2, 3]),
                  rope_dim=hd)
        hp["rope_dim_swa"] = random.choice([2, hp["head_dim_swa"]])
    if arch in ("qwen35", "qwen35moe"):
        g = random.choice([1, 2])
        hp.update(full_attention_interval=random.choice([1, 2, 3]),
                  ssm_state_size=random.choice([2, 4, 8, 16]), ssm_group_count=g,
                  ssm_time_step_rank=g * random.choice([1, 2]),
                  ssm_conv_kernel=random.choice([1, 2, 4]),
                  rope_sections=random.choice([[1, 1, 0, 0], [2, 1, 1, 0], [0, 0, 0, 0], [7, 7, 7, 7]]),
                  rope_dim=random.choice([2, 4, hd]) if hd >= 4 else 2)
    return hp


def with_value_length(kvs, tensors, hp, vlen):
    """value_length = vlen, with attn_v / attn_output (and attn_v.bias) shaped for it."""
    H, HKV, E = hp["n_head"], hp["n_head_kv"], hp["n_embd"]
    kvs = [(k, mkmodel.u32(vlen) if k.endswith(".attention.value_length") else v) for k, v in kvs]
    shapes = {"attn_v.weight": (HKV * vlen, E), "attn_output.weight": (E, H * vlen),
              "attn_v.bias": (HKV * vlen,)}
    out = []
    for name, a, dt in tensors:
        suffix = name.split(".", 2)[-1]
        if name.startswith("blk.") and suffix in shapes:
            a = np.full(shapes[suffix], 0.01, np.float32)
        out.append((name, a, dt))
    return kvs, out


def main(argv):
    if not argv:
        sys.exit(__doc__)
    fuzz = argv[0]
    n = int(argv[1]) if len(argv) > 1 else 500
    seed = int(argv[2]) if len(argv) > 2 else 1
    out_dir = argv[3] if len(argv) > 3 else "sweep-out"
    os.makedirs(out_dir, exist_ok=True)
    random.seed(seed)
    found, stages = {}, {}
    for it in range(n):
        arch = random.choice(ARCHS)
        hp = draw_hparams(arch)
        spec = {"name": "sweep", "architecture": arch, "seed": it,
                "dtype": random.choice(["F16", "F32", "BF16"]), "hparams": hp,
                "tokenizer": {"source": "synthetic", "n_merges": 5}}
        try:
            kvs, tensors, hpo, _ = mkmodel.build(spec)
        except BaseException:  # a combination mkmodel cannot build
            continue
        vlen = random.choice([2, 4, 8, 16, 32]) if arch != "gemma4" and random.random() < 0.3 else 0
        if vlen:
            kvs, tensors = with_value_length(kvs, tensors, hpo, vlen)
        path = os.path.join(out_dir, "s%d-%04d-%s%s.gguf" % (seed, it, arch, "-v%d" % vlen if vlen else ""))
        mkmodel.write_gguf(path, kvs, tensors)
        r = subprocess.run([fuzz, path], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, FUZZ_GGUF_VERBOSE="1"))
        if r.returncode != 0 or "runtime error" in r.stderr:
            err = [l for l in r.stderr.splitlines() if "ERROR:" in l or "runtime error" in l]
            src = re.findall(r"(src/[\w/]+\.(?:cpp|h):\d+)", r.stderr)
            key = "%s @ %s" % (re.sub(r"==\d+==|on address.*", "", err[0]).strip() if err else
                               "exit %d" % r.returncode, src[0] if src else "?")
            found.setdefault(key, []).append(path)
            print("CRASH %s (key_length %d, value_length %s): %s" %
                  (path, hp["head_dim"], vlen or "=", key), flush=True)
        else:
            os.remove(path)
            got = [l for l in r.stderr.splitlines() if l.startswith("fuzz_gguf:")]
            stage = "%s: %s" % (arch, got[-1].split(": ", 2)[-1] if got else "did not load")
            stages[stage] = stages.get(stage, 0) + 1
    for s in sorted(stages):
        print("%5d  %s" % (stages[s], s))
    print("%d distinct crash(es)" % len(found))
    for k, v in found.items():
        print("%5d  %s  e.g. %s" % (len(v), k, v[0]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
