#!/usr/bin/env bash
# Seeds for fuzz_gguf: a tiny complete model of every architecture (so mutations reach every
# loader's checks and, for files that still load, the forward pass), the first 64 KiB of every
# fixture (headers and metadata, truncated mid-array — both are interesting inputs) and the
# regression inputs in tests/fuzz/regressions/. Every tiny model stays under fuzz -max_len
# (128 KiB), or libFuzzer would truncate it.
set -euo pipefail
out="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
shared="$root/../shared"
mkdir -p "$out"
for f in "$shared"/fixtures/*.gguf; do
  head -c 65536 "$f" > "$out/$(basename "$f" .gguf).head"
done
tok='"tokenizer":{"source":"synthetic","n_merges":10}'
tiny() {  # tiny NAME ARCH HPARAMS-JSON
  echo "{\"name\":\"fuzz\",\"architecture\":\"$2\",\"seed\":3,\"dtype\":\"F16\",\"hparams\":$3,$tok}" \
    | /usr/bin/python3 "$shared/oracle/mkmodel.py" /dev/stdin "$out/tiny-$1.gguf" >/dev/null
}
dense='"n_embd":32,"n_ff":64,"n_layer":1,"n_head":2,"n_head_kv":1,"head_dim":16'
tiny llama llama "{$dense}"
tiny qwen2 qwen2 "{$dense}"
tiny qwen3 qwen3 '{"n_embd":32,"n_ff":64,"n_layer":1,"n_head":2,"n_head_kv":1,"head_dim":32}'
tiny qwen3moe qwen3moe "{$dense,\"n_expert\":4,\"n_expert_used\":2,\"n_ff_exp\":16}"
tiny gemma3 gemma3 '{"n_embd":32,"n_ff":64,"n_layer":2,"n_head":2,"n_head_kv":1,"head_dim":16,"sliding_window":4,"sliding_window_pattern":2}'
tiny llama4 llama4 '{"n_embd":32,"n_ff":32,"n_layer":4,"n_head":2,"n_head_kv":1,"head_dim":16,"n_expert":4,"n_expert_used":1,"n_ff_exp":16,"interleave_moe_layer_step":2}'
# Hybrids: layer 0 Gated DeltaNet, layer 1 gated attention.
hybrid='"n_embd":32,"n_ff":32,"n_layer":2,"n_head":2,"n_head_kv":1,"head_dim":16,"rope_dim":8,"rope_sections":[2,1,1,0],"full_attention_interval":2,"ssm_state_size":16,"ssm_group_count":1,"ssm_time_step_rank":2'
tiny qwen35 qwen35 "{$hybrid}"
tiny qwen35moe qwen35moe "{$hybrid,\"n_expert\":4,\"n_expert_used\":2,\"n_ff_exp\":16,\"n_ff_shexp\":16}"
gemma4='"n_embd":32,"n_ff":32,"n_layer":2,"n_head":2,"n_head_kv":1,"head_dim":32,"head_dim_swa":16,"sliding_window":4'
tiny gemma4 gemma4 "{$gemma4}"
tiny gemma4moe gemma4 "{$gemma4,\"n_expert\":4,\"n_expert_used\":2,\"n_ff_exp\":16}"
# E2B-shaped: per-layer embeddings, shared KV layers, V from K, per-layer FFN sizes.
/usr/bin/python3 "$root/tests/fuzz/mk_tiny_gemma4_e2b.py" "$out/tiny-gemma4-e2b.gguf"
# A tiny BERT encoder (no logits: the target runs its hidden and pooled outputs).
/usr/bin/python3 "$root/tools/embed/mkbert.py" "$out/tiny-bert.gguf" --n-embd 32 --n-layer 1 \
  --n-head 2 --n-ff 64 --n-ctx 32 --dtype F16 >/dev/null
# The same with an XLM-R Unigram vocabulary (tokenizer.ggml.model t5) and a small precompiled
# charsmap, so mutations reach the charsmap parser and lookups.
ugm="$(mktemp -d)"
/usr/bin/python3 "$root/tests/tools/mkunigram.py" "$ugm" --charsmap small --pieces 40 >/dev/null
/usr/bin/python3 "$root/tools/embed/mkbert.py" "$out/tiny-bert-ugm.gguf" --n-embd 32 --n-layer 1 \
  --n-head 2 --n-ff 64 --n-ctx 32 --dtype F16 --vocab-from "$ugm/vocab.gguf" >/dev/null
rm -rf "$ugm"
# nomic-bert (RoPE, SwiGLU) and nomic-bert-moe (layer 1 of 2: GELU experts), Q8_0.
/usr/bin/python3 "$root/tools/embed/mkbert.py" "$out/tiny-nomic-bert.gguf" --arch nomic-bert \
  --n-embd 32 --n-layer 1 --n-head 2 --n-ff 64 --n-ctx 32 --dtype Q8_0 >/dev/null
/usr/bin/python3 "$root/tools/embed/mkbert.py" "$out/tiny-nomic-bert-moe.gguf" \
  --arch nomic-bert-moe --n-embd 32 --n-layer 2 --n-head 2 --n-ff 32 --n-ctx 32 --n-expert 4 \
  --dtype Q8_0 >/dev/null
# Inputs that once crashed (see tests/fuzz/regressions/README.md).
for f in "$root"/tests/fuzz/regressions/*; do
  [ -f "$f" ] || continue  # http/: fuzz_http's inputs
  case "$(basename "$f")" in README.md | expect.json | *.py) continue ;; esac
  cp "$f" "$out/regression-$(basename "$f")"
done
