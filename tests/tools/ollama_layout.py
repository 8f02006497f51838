#!/usr/bin/python3
"""Rewrite a llama.cpp-layout GGUF into the layout Ollama's legacy converter wrote (the layout of
Ollama's library blobs for gemma3, gemma4, qwen35/qwen35moe, llama4, Llama 3 and EmbeddingGemma),
weights unchanged byte for byte.

  ollama_layout.py IN.gguf OUT.gguf [--seed N]

What changes (facts from Ollama's converter and writer, see docs/architecture.md):
  * all files: general.* cut to architecture, file_type (u32) and quantization_version (u32 2);
    KVs sorted by key; tensors sorted by block index, then name; no add_space_prefix; a BPE
    vocabulary gets scores = float(id) and a pre-tokenizer name only if Ollama's hash table knows
    it (else "default"); no tokenizer.chat_template (Ollama keeps the template outside the GGUF);
  * gemma3: no layer_norm_rms_epsilon / rope.freq_base when they hold Ollama's defaults (1e-6,
    1e6), rope.freq_base_swa written as rope.local.freq_base, the sliding pattern as a per-layer
    bool array, final_logit_softcapping 30 (its converter's default), add_padding/unknown_token,
    EOS <eos> plus eos_token_ids, two added tokens past the embedding rows, embedded vision tower
    (v.*, mm.*, gemma3.vision.*, gemma3.mm.tokens_per_image);
  * gemma-embedding (EmbeddingGemma): written as gemma3 with gemma3.pooling_type (what Ollama's
    runtime loads as gemma3_embed), keys under gemma3.*, Dense layers dense_2/dense_3 as
    dense.0/dense.1 without dense_*_feat_in/out keys, the sliding pattern as a per-layer array;
    gemma3's key and tokenizer conventions otherwise, without soft-cap or vision tower;
  * gemma4: tokenizer model "llama" (with merges, when the vocabulary is BPE; byte tokens typed
    NORMAL, special added tokens CONTROL), add_bos_token false, vision and audio towers (v.*,
    a.*, mm.*, gemma4.vision.*, gemma4.audio.*);
  * qwen35/qwen35moe: head_count_kv as a per-layer u32 array (0 = recurrent layer, no
    full_attention_interval), three-entry rope sections under three names, mrope_interleaved,
    ssm.v_head_reordered, ssm_dt without .bias, MTP tensors (mtp.*), vision tower (v.*, vision
    keys, image token ids); qwen35moe: feed_forward_length 0 and norm_top_k_prob;
  * llama4: vision tower (v.*, mm.*, llama4.vision.*), use_qk_norm, attention.chunk_size;
  * llama (Llama 3 vocabulary): no tokenizer.ggml.pre, EOS <|end_of_text|>, eos_token_ids.
The pre-tokenizer name of the input is kept when Ollama's table has it (qwen35's converter
forces "qwen35", which is what a llama.cpp qwen35 file says anyway)."""
import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_io as G  # noqa: E402

KNOWN_PRE = {"llama-bpe", "deepseek-llm", "deepseek-coder", "qwen2", "qwen35", "laguna"}
MULTIMODAL = {"gemma3", "gemma4", "qwen35", "qwen35moe", "llama4"}


def _rand(rng, ne, typ=G.GGML_F16):
    a = rng.standard_normal(int(np.prod(ne))).astype(np.float32) * 0.02
    data = a.astype("<f2").tobytes() if typ == G.GGML_F16 else a.astype("<f4").tobytes()
    return G.Tensor("", ne, typ, data)


def add_tensor(g, rng, name, ne, typ=G.GGML_F16):
    t = _rand(rng, ne, typ)
    t.name = name
    g.tensors.append(t)


def token_ids(g):
    return {s: i for i, s in reversed(list(enumerate(g.get("tokenizer.ggml.tokens", []))))}


def common(g):
    arch = g.get("general.architecture")
    ft = int(g.get("general.file_type", 1))
    g.kvs = [kv for kv in g.kvs if not kv.key.startswith("general.")]
    g.set("general.architecture", G.STR, arch)
    g.set("general.file_type", G.U32, ft)
    g.set("general.quantization_version", G.U32, 2)
    g.alignment = 32
    g.remove("tokenizer.ggml.add_space_prefix")
    g.remove("tokenizer.chat_template")
    model = g.get("tokenizer.ggml.model")
    if model == "gpt2" or (model == "gemma4"):
        n = len(g.get("tokenizer.ggml.tokens"))
        g.set("tokenizer.ggml.scores", G.ARR, np.arange(n, dtype=np.float32), G.F32)
        if g.get("tokenizer.ggml.pre") not in KNOWN_PRE:
            g.set("tokenizer.ggml.pre", G.STR, "default")
    elif model == "llama":
        g.remove("tokenizer.ggml.pre")
    return arch


def gemma3(g, rng, embedding=False):
    p = "gemma3."
    if abs(g.get(p + "attention.layer_norm_rms_epsilon", 1e-6) - 1e-6) < 1e-12:
        g.remove(p + "attention.layer_norm_rms_epsilon")
    if g.get(p + "rope.freq_base", 1e6) == 1e6:
        g.remove(p + "rope.freq_base")
    else:
        g.rename(p + "rope.freq_base", p + "rope.global.freq_base")
    g.rename(p + "rope.freq_base_swa", p + "rope.local.freq_base")
    period = g.get(p + "attention.sliding_window_pattern")
    n_layer = int(g.get(p + "block_count"))
    if period is None and embedding:  # Ollama wrote config.json's layer_types (llama.cpp: 6)
        period = 6
    if period is not None and not isinstance(period, np.ndarray):
        pat = [il % int(period) < int(period) - 1 for il in range(n_layer)]
        g.set(p + "attention.sliding_window_pattern", G.ARR, np.array(pat, dtype=np.uint8), G.BOOL)
    if not embedding:
        g.set(p + "final_logit_softcapping", G.F32, 30.0)
    g.set("tokenizer.ggml.add_padding_token", G.BOOL, False)
    g.set("tokenizer.ggml.add_unknown_token", G.BOOL, False)
    ids = token_ids(g)
    eos = [ids[t] for t in ("<eos>", "<end_of_turn>") if t in ids]
    if eos:
        g.set("tokenizer.ggml.eos_token_id", G.U32, eos[0])
        g.set("tokenizer.ggml.eos_token_ids", G.ARR, np.array(eos, dtype=np.int32), G.I32)
    # added_tokens.json entries past the embedding rows (the 1B/270M blobs)
    toks = list(g.get("tokenizer.ggml.tokens"))
    extra = ["<image_soft_token>", "<ollama_added_token>"]
    g.set("tokenizer.ggml.tokens", G.ARR, toks + extra, G.STR)
    g.set("tokenizer.ggml.scores", G.ARR,
          np.concatenate([g.get("tokenizer.ggml.scores"), np.full(2, -1000, np.float32)]), G.F32)
    g.set("tokenizer.ggml.token_type", G.ARR,
          np.concatenate([g.get("tokenizer.ggml.token_type"), np.full(2, 4, np.int32)]), G.I32)
    if not embedding:
        vision(g, rng, "gemma3", n_embd=int(g.get(p + "embedding_length")))
        g.set(p + "mm.tokens_per_image", G.U32, 256)


def gemma_embedding(g, rng):
    """EmbeddingGemma as Ollama's runtime loads it (gemma3_embed): architecture gemma3, its keys
    under gemma3.* (pooling_type included), the Dense layers as dense.0 / dense.1 with no
    feature-count keys; then gemma3's conventions, less the generative parts (no soft-cap, no
    vision tower)."""
    a = "gemma-embedding."
    g.set("general.architecture", G.STR, "gemma3")
    feat = re.compile(re.escape(a) + r"dense_\d_feat_(in|out)")
    g.kvs = [kv for kv in g.kvs if not feat.fullmatch(kv.key)]
    for kv in g.kvs:
        if kv.key.startswith(a):
            kv.key = "gemma3." + kv.key[len(a):]
    for old, new in (("dense_2.weight", "dense.0.weight"), ("dense_3.weight", "dense.1.weight")):
        t = g.tensor(old)
        if t is not None:
            t.name = new
    gemma3(g, rng, embedding=True)


def vision(g, rng, arch, n_embd, blocks=2, width=64, style="gemma3"):
    """A small random vision tower with Ollama's names (not read by any text model)."""
    p = arch + ".vision."
    for k, v in (("block_count", blocks), ("embedding_length", width),
                 ("feed_forward_length", 4 * width), ("attention.head_count", 2),
                 ("image_size", 32), ("patch_size", 16), ("num_channels", 3)):
        g.set(p + k, G.U32, v)
    g.set(p + "attention.layer_norm_epsilon", G.F32, 1e-6)
    if style == "gemma3":
        add_tensor(g, rng, "v.patch_embedding.weight", [16, 16, 3, width])
        add_tensor(g, rng, "v.patch_embedding.bias", [width], G.GGML_F32)
        add_tensor(g, rng, "v.position_embedding.weight", [width, 4])
        add_tensor(g, rng, "v.post_layernorm.weight", [width], G.GGML_F32)
        for b in range(blocks):
            for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
                add_tensor(g, rng, f"v.blk.{b}.{n}.weight", [width, width])
            add_tensor(g, rng, f"v.blk.{b}.layer_norm1.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.layer_norm2.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.mlp.fc1.weight", [width, 4 * width])
            add_tensor(g, rng, f"v.blk.{b}.mlp.fc2.weight", [4 * width, width])
        add_tensor(g, rng, "mm.mm_input_projection.weight", [n_embd, width])
        add_tensor(g, rng, "mm.mm_soft_emb_norm.weight", [width], G.GGML_F32)
    elif style == "gemma4":
        add_tensor(g, rng, "v.patch_embd.weight", [16, 16, 3, width])
        add_tensor(g, rng, "v.position_embd.weight", [width, 64, 2], G.GGML_F32)
        for b in range(blocks):
            for n in ("attn_q", "attn_k", "attn_v", "attn_out", "ffn_gate", "ffn_up"):
                add_tensor(g, rng, f"v.blk.{b}.{n}.weight", [width, width])
            add_tensor(g, rng, f"v.blk.{b}.ffn_down.weight", [width, width])
            for n in ("ln1", "ln2", "attn_post_norm", "ffn_post_norm"):
                add_tensor(g, rng, f"v.blk.{b}.{n}.weight", [width], G.GGML_F32)
        add_tensor(g, rng, "v.clamp_data", [(blocks * 7 + 1) * 4], G.GGML_F32)
        add_tensor(g, rng, "mm.input_projection.weight", [width, n_embd])
        a = arch + ".audio."
        for k, v in (("block_count", 1), ("embedding_length", width),
                     ("feed_forward_length", 4 * width), ("attention.head_count", 2),
                     ("conv_kernel_size", 5)):
            g.set(a + k, G.U32, v)
        add_tensor(g, rng, "a.blk.0.attn_q.weight", [width, width])
        add_tensor(g, rng, "a.pre_encode.out.weight", [width, width])
        add_tensor(g, rng, "mm.a.fc.weight", [width, n_embd])
    elif style == "qwen35":
        add_tensor(g, rng, "v.patch_embed.weight", [16, 16, 2, 3 * width])
        add_tensor(g, rng, "v.patch_embed.bias", [width], G.GGML_F32)
        add_tensor(g, rng, "v.pos_embed.weight", [width, 16])
        for b in range(blocks):
            for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
                add_tensor(g, rng, f"v.blk.{b}.{n}.weight", [width, width])
                add_tensor(g, rng, f"v.blk.{b}.{n}.bias", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.norm1.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.norm2.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.mlp.linear_fc1.weight", [width, 4 * width])
            add_tensor(g, rng, f"v.blk.{b}.mlp.linear_fc2.weight", [4 * width, width])
        add_tensor(g, rng, "v.merger.norm.weight", [width], G.GGML_F32)
        add_tensor(g, rng, "v.merger.linear_fc1.weight", [4 * width, 4 * width])
        add_tensor(g, rng, "v.merger.linear_fc2.weight", [4 * width, n_embd])
    elif style == "llama4":
        g.set(p + "rope.freq_base", G.F32, 10000.0)
        g.set(p + "pixel_shuffle_ratio", G.F32, 0.5)
        add_tensor(g, rng, "v.patch_embedding.weight", [768, width])
        add_tensor(g, rng, "v.class_embedding", [width])
        add_tensor(g, rng, "v.positional_embedding_vlm", [width, 5], G.GGML_F32)
        add_tensor(g, rng, "v.layernorm_pre.weight", [width], G.GGML_F32)
        add_tensor(g, rng, "v.layernorm_post.weight", [width], G.GGML_F32)
        for b in range(blocks):
            for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
                add_tensor(g, rng, f"v.blk.{b}.{n}.weight", [width, width])
            add_tensor(g, rng, f"v.blk.{b}.attn_norm.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.ffn_norm.weight", [width], G.GGML_F32)
            add_tensor(g, rng, f"v.blk.{b}.mlp.fc1.weight", [width, 4 * width])
            add_tensor(g, rng, f"v.blk.{b}.mlp.fc2.weight", [4 * width, width])
        add_tensor(g, rng, "v.vision_adapter.mlp.fc1.weight", [4 * width, width])
        add_tensor(g, rng, "v.vision_adapter.mlp.fc2.weight", [width, width])
        add_tensor(g, rng, "mm.linear_1.weight", [width, n_embd])


def gemma4(g, rng):
    if g.get("tokenizer.ggml.merges") is not None:  # a Gemma 4 BPE vocabulary
        g.set("tokenizer.ggml.model", G.STR, "llama")
        g.set("tokenizer.ggml.pre", G.STR, "gemma4")
        toks = g.get("tokenizer.ggml.tokens")
        types = np.array(g.get("tokenizer.ggml.token_type"), dtype=np.int32)
        forced = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>",
                  "<tool_response|>", '<|"|>'}
        for i, t in enumerate(toks):
            if types[i] == 6:  # no BYTE type: byte tokens are plain tokens
                types[i] = 1
            elif t in forced:  # special added tokens: CONTROL
                types[i] = 3
        g.set("tokenizer.ggml.token_type", G.ARR, types, G.I32)
    g.set("tokenizer.ggml.add_bos_token", G.BOOL, False)
    ids = token_ids(g)
    eos = [ids[t] for t in ("<eos>", "<end_of_turn>", "<turn|>") if t in ids]
    if eos:
        g.set("tokenizer.ggml.eos_token_ids", G.ARR, np.array(eos, dtype=np.int32), G.I32)
    if g.get("gemma4.embedding_length") is not None:
        vision(g, rng, "gemma4", int(g.get("gemma4.embedding_length")), style="gemma4")
        g.set("gemma4.vision.projector.scale_factor", G.U32, 3)


def qwen35(g, rng, arch):
    p = arch + "."
    n_layer = int(g.get(p + "block_count"))
    every = int(g.get(p + "full_attention_interval", 4))
    n_kv = int(g.get(p + "attention.head_count_kv"))
    kv = [n_kv if (il + 1) % every == 0 else 0 for il in range(n_layer)]
    g.set(p + "attention.head_count_kv", G.ARR, np.array(kv, dtype=np.uint32), G.U32)
    g.remove(p + "full_attention_interval")
    sec = [int(x) for x in g.get(p + "rope.dimension_sections")][:3]
    for k in ("rope.dimension_sections", "rope.mrope_section", "mrope_sections"):
        g.set(p + k, G.ARR, np.array(sec, dtype=np.int32), G.I32)
    g.set(p + "rope.mrope_interleaved", G.BOOL, True)
    g.set(p + "ssm.v_head_reordered", G.BOOL, True)
    for t in g.tensors:
        if re.fullmatch(r"blk\.\d+\.ssm_dt\.bias", t.name):
            t.name = t.name[:-len(".bias")]
    n_embd = int(g.get(p + "embedding_length"))
    if arch == "qwen35moe":
        g.set(p + "feed_forward_length", G.U32, 0)
        g.set(p + "norm_top_k_prob", G.BOOL, True)
    # MTP head as Ollama's converter passed it through
    add_tensor(g, rng, "mtp.fc.weight", [2 * n_embd, n_embd])
    for n in ("pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"):
        add_tensor(g, rng, f"mtp.{n}.weight", [n_embd], G.GGML_F32)
    for n in ("attn_norm", "post_attention_norm"):
        add_tensor(g, rng, f"mtp.layers.0.{n}.weight", [n_embd], G.GGML_F32)
    add_tensor(g, rng, "mtp.layers.0.attn_q.weight", [n_embd, n_embd])
    vision(g, rng, arch, n_embd, style="qwen35")
    g.set(p + "vision.spatial_merge_size", G.U32, 2)
    g.set(p + "vision.deepstack_visual_indexes", G.ARR, np.array([], dtype=np.int32), G.I32)
    ids = token_ids(g)
    for k, t in (("image_token_id", "<|image_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
                 ("vision_end_token_id", "<|vision_end|>")):
        g.set(p + k, G.U32, ids.get(t, 0))


def llama4(g, rng):
    g.set("llama4.use_qk_norm", G.BOOL, True)
    g.set("llama4.attention.chunk_size", G.U32, 8192)
    vision(g, rng, "llama4", int(g.get("llama4.embedding_length")), style="llama4")


def llama(g, rng):
    ids = token_ids(g)
    if "<|eot_id|>" not in ids or "<|end_of_text|>" not in ids:
        return
    g.remove("tokenizer.ggml.pre")
    g.set("tokenizer.ggml.eos_token_id", G.U32, ids["<|end_of_text|>"])
    eos = [ids[t] for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>") if t in ids]
    g.set("tokenizer.ggml.eos_token_ids", G.ARR, np.array(eos, dtype=np.int32), G.I32)


def block_key(name):
    m = re.match(r"blk\.(\d+)\.", name)
    return (int(m.group(1)) if m else -1, name)


def convert(src, dst, seed=0):
    g = G.read(src)
    rng = np.random.default_rng(seed)
    arch = common(g)
    if arch == "gemma3":
        gemma3(g, rng)
    elif arch == "gemma-embedding":
        gemma_embedding(g, rng)
    elif arch == "gemma4":
        gemma4(g, rng)
    elif arch in ("qwen35", "qwen35moe"):
        qwen35(g, rng, arch)
    elif arch == "llama4":
        llama4(g, rng)
    elif arch == "llama":
        llama(g, rng)
    else:
        raise SystemExit(f"{src}: no Ollama layout known for architecture {arch!r}")
    g.kvs.sort(key=lambda kv: kv.key)
    g.tensors.sort(key=lambda t: block_key(t.name))
    G.write(dst, g)
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    g = convert(a.src, a.dst, a.seed)
    print(f"{a.dst}: {len(g.kvs)} keys, {len(g.tensors)} tensors")


if __name__ == "__main__":
    main()
