#!/usr/bin/python3
"""Writes a tiny Gemma 4 E2B-shaped GGUF (a fuzz seed; mkmodel.py has no E2B options):

* per-layer embeddings (embedding_length_per_layer_input 4): per_layer_token_embd,
  per_layer_model_proj, per_layer_proj_norm, and per layer inp_gate / proj / post_norm;
* attention.shared_kv_layers 2 of 5 layers: layers 3 (sliding) and 4 (global) reuse the KV cache
  of layers 1 and 2 and carry only attn_q, attn_q_norm and attn_output;
* layer 2 (global) has no attn_v: V is its K projection;
* feed_forward_length per layer (an array), and a layer_output_scale per layer.

usage: /usr/bin/python3 mk_tiny_gemma4_e2b.py OUT.gguf
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "oracle"))
import mkmodel  # noqa: E402

SWA = [True, True, False, True, False]
N_FF = [32, 32, 16, 16, 16]
PL, SHARED = 4, 2
SPEC = {"name": "fuzz", "architecture": "gemma4", "seed": 3, "dtype": "F16",
        "hparams": {"n_embd": 32, "n_ff": 32, "n_layer": len(SWA), "n_head": 2, "n_head_kv": 1,
                    "head_dim": 32, "head_dim_swa": 16, "sliding_window": 4, "swa_layers": SWA},
        "tokenizer": {"source": "synthetic", "n_merges": 10}}


def main(out):
    kvs, tensors, hp, _ = mkmodel.build(SPEC)
    E, L, V = hp["n_embd"], hp["n_layer"], tensors[0][1].shape[0]
    rng = np.random.default_rng(11)
    w = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)  # noqa: E731
    norm = lambda n: (1 + rng.standard_normal(n) * 0.05).astype(np.float32)  # noqa: E731
    replace = {"gemma4.embedding_length_per_layer_input": mkmodel.u32(PL),
               "gemma4.feed_forward_length": mkmodel.arr(mkmodel.T_I32, N_FF)}
    kvs = [(k, replace.get(k, v)) for k, v in kvs]
    kvs.append(("gemma4.attention.shared_kv_layers", mkmodel.u32(SHARED)))
    shared = set(range(L - SHARED, L))
    out_t = [tensors[0],
             ("per_layer_token_embd.weight", w(V, L * PL), "F16"),
             ("per_layer_model_proj.weight", w(L * PL, E), "F16"),
             ("per_layer_proj_norm.weight", norm(PL), "F32")]
    for name, a, dt in tensors[1:]:
        if name.startswith("blk."):
            il, suffix = int(name.split(".")[1]), name.split(".", 2)[2]
            if il in shared and suffix in ("attn_k.weight", "attn_v.weight", "attn_k_norm.weight"):
                continue
            if il == 2 and suffix == "attn_v.weight":
                continue
            if suffix in ("ffn_gate.weight", "ffn_up.weight"):
                a = w(N_FF[il], E)
            elif suffix == "ffn_down.weight":
                a = w(E, N_FF[il])
        out_t.append((name, a, dt))
        if name.startswith("blk.") and name.endswith("post_ffw_norm.weight"):
            il = int(name.split(".")[1])
            out_t += [("blk.%d.inp_gate.weight" % il, w(PL, E), "F16"),
                      ("blk.%d.proj.weight" % il, w(E, PL), "F16"),
                      ("blk.%d.post_norm.weight" % il, norm(E), "F32"),
                      ("blk.%d.layer_output_scale.weight" % il, np.array([0.5], np.float32), "F32")]
    mkmodel.write_gguf(out, kvs, out_t)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
