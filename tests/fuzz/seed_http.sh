#!/usr/bin/env bash
# Seeds for fuzz_http besides tests/fuzz/corpus/http/ (made by mk_http_corpus.py): a create from
# a GGUF path on this machine (the fixture's absolute path differs between checkouts) and the
# inputs that once failed (tests/fuzz/regressions/http/, see the README there).
set -euo pipefail
out="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
fixture="$(cd "$root/../shared/fixtures" && pwd)/qwen2-Q4_K_M.gguf"
mkdir -p "$out"
body="{\"model\":\"frompath\",\"from\":\"$fixture\",\"system\":\"hi\"}"
printf 'POST /api/create HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s' \
  "${#body}" "$body" >"$out/create-from-path"
body2='{"model":"frompath","prompt":"hi","options":{"num_predict":2}}'
printf 'POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s' \
  "${#body2}" "$body2" >>"$out/create-from-path"
for f in "$root"/tests/fuzz/regressions/http/*; do
  [ -f "$f" ] || continue
  case "$(basename "$f")" in README.md | *.py) continue ;; esac
  cp "$f" "$out/regression-$(basename "$f")"
done
