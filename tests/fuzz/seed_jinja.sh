#!/usr/bin/env bash
# Seeds for fuzz_jinja: the real chat templates in ../shared/templates (test data kept outside
# the repository).
set -euo pipefail
out="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
cp "$root"/../shared/templates/*.jinja "$out"/
