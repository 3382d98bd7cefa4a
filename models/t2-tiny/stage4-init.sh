#!/bin/sh
# stage4-init.sh T2_BINARY — stage 4's starting point, runs/t2-tiny-stage4-init/: stage 3's language
# model (runs/t2-tiny-stage3/model) with the vision side back at its random initialisation — the one
# train.json's seed gives, exported F16 after one step with the vision side frozen (so untouched).
# Run from the repository root after stage 3.
set -e
t2=$1; here=$(dirname "$0")
[ -n "$t2" ] || { echo "usage: $0 T2_BINARY" >&2; exit 2; }
rand=runs/t2-tiny-stage4-rand; out=runs/t2-tiny-stage4-init
rm -rf "$rand"
"$t2" train --config "$here/train.json" --out "$rand" --max-steps 1 --quiet
mkdir -p "$out"
for f in config.json preprocessor_config.json special_tokens_map.json tokenizer.json tokenizer_config.json; do
    cp runs/t2-tiny-stage3/model/$f "$out/"
done
/usr/bin/python3 "$here/merge_vision.py" runs/t2-tiny-stage3/model/model.safetensors "$rand/model/model.safetensors" \
    "$out/model.safetensors"
