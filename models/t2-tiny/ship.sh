#!/usr/bin/env bash
# models/t2-tiny/ship.sh [RUN_DIR | MODEL_DIR] — copy the model exported by `t2 train` (RUN_DIR/model,
# default runs/t2-tiny/model; or a copy of such a model directory) into models/t2-tiny/:
# model.safetensors (F16), config.json,
# preprocessor_config.json. The tokenizer files here are the recipe's own and stay as they are; the
# exported copies must be identical to them (checked).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=${1:-$here/../../runs/t2-tiny}
src=$run/model
[ -f "$run/model.safetensors" ] && src=$run
for f in tokenizer.json tokenizer_config.json special_tokens_map.json; do
  cmp -s "$src/$f" "$here/$f" || { echo "ship.sh: $src/$f differs from $here/$f: not this recipe's run" >&2; exit 1; }
done
cp "$src/model.safetensors" "$src/config.json" "$src/preprocessor_config.json" "$here/"
echo "shipped $src → $here"
