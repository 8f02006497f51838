#!/usr/bin/python3
"""Writes qwen35-value-length-lt-key-length.gguf: a tiny Qwen 3.5 hybrid (layer 0 Gated DeltaNet,
layer 1 gated full attention) whose attention.value_length (8) is smaller than key_length (16),
and qwen35moe-value-length-lt-key-length.gguf, the same for the MoE hybrid (4 experts, top 2,
plus the shared expert), which shares the attention code and the hparam reader.

Every tensor that depends on the value head size is shaped for value_length, so the file is
self-consistent and passes the loader's shape checks:
  blk.1.attn_v.weight       (n_head_kv * 8, n_embd)   instead of (n_head_kv * 16, n_embd)
  blk.1.attn_output.weight  (n_embd, n_head * 8)      instead of (n_embd, n_head * 16)
The query projection keeps [query | gate] rows of key_length per head, as llama.cpp's converter
writes them. An engine that sizes the attention output gate by value_length but fills it by
key_length writes past the end of that buffer on the first full batch.

usage: /usr/bin/python3 make_qwen35_value_length.py [OUT_DIR]
(default: the folder of this script). Needs numpy and ../shared/oracle/mkmodel.py (its
build() and write_gguf()); the same inputs always give byte-identical output.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "oracle"))
import mkmodel  # noqa: E402

KEY_LEN, VALUE_LEN = 16, 8
HPARAMS = {"n_embd": 32, "n_ff": 32, "n_layer": 2, "n_head": 2, "n_head_kv": 1,
           "head_dim": KEY_LEN, "rope_dim": 8, "rope_sections": [2, 1, 1, 0],
           "full_attention_interval": 2, "ssm_state_size": 16, "ssm_group_count": 1,
           "ssm_time_step_rank": 2}
MOE = {"n_expert": 4, "n_expert_used": 2, "n_ff_exp": 16, "n_ff_shexp": 16}


def write(arch, out):
    spec = {"name": "regression-%s-value-length" % arch, "architecture": arch, "seed": 3,
            "dtype": "F16", "hparams": dict(HPARAMS, **(MOE if arch == "qwen35moe" else {})),
            "tokenizer": {"source": "synthetic", "n_merges": 10}}
    kvs, tensors, hp, _ = mkmodel.build(spec)
    kvs = [(k, mkmodel.u32(VALUE_LEN) if k == arch + ".attention.value_length" else v)
           for k, v in kvs]
    E, H, HKV = hp["n_embd"], hp["n_head"], hp["n_head_kv"]
    rng = np.random.default_rng(7)
    reshaped = {"attn_v.weight": (HKV * VALUE_LEN, E), "attn_output.weight": (E, H * VALUE_LEN)}
    fixed = []
    for name, a, dt in tensors:
        suffix = name.split(".", 2)[-1]
        if name.startswith("blk.") and suffix in reshaped:
            a = (rng.standard_normal(reshaped[suffix]) * 0.05).astype(np.float32)
        fixed.append((name, a, dt))
    mkmodel.write_gguf(out, kvs, fixed)
    print(out, os.path.getsize(out), "bytes")


def main(argv):
    out_dir = argv[0] if argv else HERE
    for arch in ("qwen35", "qwen35moe"):
        write(arch, os.path.join(out_dir, "%s-value-length-lt-key-length.gguf" % arch))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
