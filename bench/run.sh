#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — the figures of bench/README.md: writes the random-weight models of real
# shapes (once, into bench/models/, ~10.6 GB) and runs `t2 bench` on each, 2 threads, 5 repetitions.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
py=/usr/bin/python3
make_model() {   # NAME PRESET DTYPE
  [ -f "bench/models/$1/config.json" ] || $py bench/make_random_model.py "bench/models/$1" --preset "$2" --dtype "$3"
}
make_model qwen2-0.5b-F32 qwen2-0.5b F32
make_model qwen2-0.5b-F16 qwen2-0.5b F16
make_model qwen2-0.5b-BF16 qwen2-0.5b BF16
make_model llama-1b-BF16 llama-1b BF16
make_model tiny-llama-F32 tiny-llama F32
make_model llava-1.5-clip-l336-F16 llava-1.5-clip-l336 F16
make_model onevision-0.5b-F16 onevision-0.5b F16
{
for m in qwen2-0.5b-F32 qwen2-0.5b-F16 qwen2-0.5b-BF16 llama-1b-BF16 tiny-llama-F32; do
  "$build/t2" bench --model "bench/models/$m" -t 2 -r 5 --json
done
# the towers: image encode only (the language model around them is the Qwen2-0.5B shape or a stub)
for m in llava-1.5-clip-l336-F16 onevision-0.5b-F16; do
  "$build/t2" bench --model "bench/models/$m" -t 2 -r 5 -p 0 -n 0 --json
done
} | tee bench/results.jsonl
