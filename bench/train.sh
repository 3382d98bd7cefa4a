#!/usr/bin/env bash
# bench/train.sh [BUILD_DIR] [STEPS] — training throughput of `t2 train` on a ~5.7M-parameter LLaVA
# (CLIP tower 192×4 on 96×96 images with 64 image tokens, Llama 256×4, t2-tiny's tokenizer), random
# init, world data: mixed image + text batches of 16 and text-only batches of 16, 2 threads, each
# data-parallel (2 replicas, single-threaded BLAS; the default) and not ("data_parallel": false: one
# forward over the batch, OpenBLAS threaded). Prints the median steps/s, samples/s and tokens/s of
# each (the first 5 steps are warm-up) and the OpenBLAS core in use.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
"$build/t2" info --model models/t2-tiny | grep -i 'back end'
for kind in mixed text; do
 for dp in true false; do
  $py - "$work" "$kind" "$steps" "$PWD" "$dp" <<'PY'
import json, sys
work, kind, steps, root, dp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "true"
V = 1915
tiny = json.load(open(root + "/models/t2-tiny/train.json"))
cfg = tiny["model"]["config"]
cfg["text_config"].update(hidden_size=256, intermediate_size=688, num_attention_heads=4, num_key_value_heads=4, head_dim=64)
cfg["vision_config"].update(hidden_size=192, intermediate_size=768, num_attention_heads=4, projection_dim=192)
src = [{"world": "textvqa", "weight": 2}, {"world": "scene", "weight": 1}, {"world": "math", "weight": 1}]
if kind == "text":
    src = [{"world": "math", "weight": 1}, {"world": "code", "weight": 1}, {"world": "reasoning", "weight": 1}]
r = {"out": work + "/run-" + kind, "seed": 1, "threads": 2, "data_parallel": dp,
     "model": {"config": cfg, "preprocessor": tiny["model"]["preprocessor"], "tokenizer": root + "/models/t2-tiny",
               "chat_template": "vicuna", "init": "random", "export_dtype": "F16"},
     "data": {"max_len": 160, "sources": src},
     "optim": {"steps": steps, "batch": 16, "lr": 1e-3, "warmup": 5}, "checkpoint": {"every": 100000}}
json.dump(r, open(work + "/" + kind + ".json", "w"))
PY
  rm -rf "$work/run-$kind"
  "$build/t2" train -q --config "$work/$kind.json"
  $py - "$work/run-$kind/log.csv" "$kind" "$dp" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))[5:]
dt = [float(b["elapsed_s"]) - float(a["elapsed_s"]) for a, b in zip(rows, rows[1:])]
sps = statistics.median(float(r["samples_per_s"]) for r in rows)
tps = statistics.median(float(r["tokens_per_s"]) for r in rows)
print("%-6s batch 16, %-16s %.2f steps/s, %.1f samples/s, %.0f tokens/s (median of %d steps)" % (
    sys.argv[2], "data-parallel:" if sys.argv[3] == "true" else "BLAS-threaded:", 1 / statistics.median(dt), sps, tps, len(rows)))
PY
 done
done
