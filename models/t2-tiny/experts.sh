#!/bin/sh
# experts.sh — train t2-tiny's SVF experts (docs/svf.md, docs/adaptation.md) from the world's train
# split and write MODEL/experts/ (expert files + registry.json).
# Usage: models/t2-tiny/experts.sh T2_BINARY MODEL_DIR WORK_DIR [EXPERT ...]
#   (run from the repository root; default experts: textvqa math code reasoning dispatch)
# Environment: ITERS (default 300), BATCH (32), LR (2e-3, the official rate), TEMP (1: sampled rollouts), TRAIN_N
# (train items per family, 4000), VALID_N (validation items, 200), THREADS (all cores). Per family (docs/svf.md,
# measured on the stage-15 base): code runs CODE_ITERS (500) iterations; textvqa TEXTVQA_ITERS (300) at
# TEXTVQA_LR (5e-3). Validation every 20 iterations keeps the best. Each expert resumes after a kill
# (`t2 svf train --resume`); a finished one is kept unless its file is removed.
set -e
t2=$1; model=$2; work=$3
[ -n "$t2" ] && [ -n "$model" ] && [ -n "$work" ] || { echo "usage: $0 T2_BINARY MODEL_DIR WORK_DIR [EXPERT ...]" >&2; exit 2; }
shift 3
names=${*:-textvqa math code reasoning dispatch}
iters=${ITERS:-300}; batch=${BATCH:-32}; lr=${LR:-2e-3}; temp=${TEMP:-1}; ntrain=${TRAIN_N:-4000}; nvalid=${VALID_N:-200}
thr=${THREADS:+--threads $THREADS}
mkdir -p "$work/data" "$model/experts"
"$t2" svf decompose --model "$model" --quiet
for x in $names; do
    [ -f "$work/data/$x-train.jsonl" ] || "$t2" world gen --family "$x" --split train --n "$ntrain" --out "$work/data" --quiet
    [ -f "$work/data/$x-valid.jsonl" ] || "$t2" world gen --family "$x" --split valid --n "$nvalid" --out "$work/data" --quiet
    out=$model/experts/$x.safetensors
    if [ -f "$out" ] && [ ! -d "$out.run" ]; then echo "$x: $out exists, kept"; continue; fi
    resume=""; [ -f "$out.run/checkpoint.safetensors" ] && resume=--resume
    it=$iters; r=$lr
    [ "$x" = code ] && it=${CODE_ITERS:-500}
    [ "$x" = textvqa ] && it=${TEXTVQA_ITERS:-300} r=${TEXTVQA_LR:-5e-3}
    "$t2" svf train --model "$model" --task "$x" --train "$work/data/$x-train.jsonl" --valid "$work/data/$x-valid.jsonl" \
        --out "$out" --iters "$it" --batch "$batch" --valid-every 20 --lr "$r" --temp "$temp" $thr $resume
    # the run directory (log, curve, checkpoint) goes beside the work, not into the shipped model
    rm -rf "$work/$x.run" && mv "$out.run" "$work/$x.run"
done
cat > "$model/experts/registry.json.tmp" <<'EOF'
{"format": "t2-experts", "version": 1,
 "svf": "svf-mlp.safetensors",
 "classifier": "dispatch",
 "experts": [
  {"name": "textvqa",   "file": "textvqa.safetensors",   "modality": "vision", "dispatch": {"label": "textvqa",   "description": "read text in the image"}},
  {"name": "math",      "file": "math.safetensors",      "modality": "text",   "dispatch": {"label": "math",      "description": "word problem"}},
  {"name": "code",      "file": "code.safetensors",      "modality": "text",   "dispatch": {"label": "code",      "description": "program output"}},
  {"name": "reasoning", "file": "reasoning.safetensors", "modality": "text",   "dispatch": {"label": "reasoning", "description": "multiple choice facts"}},
  {"name": "dispatch",  "file": "dispatch.safetensors",  "modality": "text"}
 ]}
EOF
mv "$model/experts/registry.json.tmp" "$model/experts/registry.json"
"$t2" experts list --model "$model"
