#!/usr/bin/env bash
# Seeds for fuzz_gguf: a tiny valid model made by mkmodel, and the first 64 KiB of every
# fixture (headers and metadata, truncated mid-array — both are interesting inputs).
set -euo pipefail
out="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
shared="$root/../shared"
mkdir -p "$out"
for f in "$shared"/fixtures/*.gguf; do
  head -c 65536 "$f" > "$out/$(basename "$f" .gguf).head"
done
echo '{"name":"fuzz","architecture":"llama","seed":3,"dtype":"F16","hparams":{"n_embd":32,"n_ff":64,"n_layer":1,"n_head":2,"n_head_kv":1,"head_dim":16},"tokenizer":{"source":"synthetic","n_merges":10}}' \
  | /usr/bin/python3 "$shared/oracle/mkmodel.py" /dev/stdin "$out/tiny-llama.gguf" >/dev/null
# Complete tiny hybrids, so mutations reach the Qwen 3.5 and Gemma 4 loaders' checks.
echo '{"name":"fuzz","architecture":"qwen35moe","seed":3,"dtype":"F16","hparams":{"n_embd":32,"n_ff":32,"n_layer":2,"n_head":2,"n_head_kv":1,"head_dim":16,"rope_dim":8,"rope_sections":[2,1,1,0],"full_attention_interval":2,"ssm_state_size":16,"ssm_group_count":1,"ssm_time_step_rank":2,"n_expert":4,"n_expert_used":2,"n_ff_exp":16,"n_ff_shexp":16},"tokenizer":{"source":"synthetic","n_merges":10}}' \
  | /usr/bin/python3 "$shared/oracle/mkmodel.py" /dev/stdin "$out/tiny-qwen35moe.gguf" >/dev/null
echo '{"name":"fuzz","architecture":"gemma4","seed":3,"dtype":"F16","hparams":{"n_embd":32,"n_ff":32,"n_layer":2,"n_head":2,"n_head_kv":1,"head_dim":32,"head_dim_swa":16,"sliding_window":4,"n_expert":4,"n_expert_used":2,"n_ff_exp":16},"tokenizer":{"source":"synthetic","n_merges":10}}' \
  | /usr/bin/python3 "$shared/oracle/mkmodel.py" /dev/stdin "$out/tiny-gemma4moe.gguf" >/dev/null
