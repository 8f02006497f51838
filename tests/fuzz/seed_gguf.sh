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
