#!/bin/sh
# adapt-ceiling.sh — how far any mixture of t2-tiny's experts can move the held-out families: the
# ceiling that few-shot adaptation (which chooses on 10 shots) cannot exceed except by luck.
#  1. a grid: each expert alone, every pair at α = 1, all four at α = 1 and at α = 0.5, on the 500 test items;
#  2. an oracle CEM (`t2 adapt fewshot`, per-expert α) whose fitness is the test items themselves
#     (code_hard: all 500; know: the first 250), so its best is an in-sample upper bound.
# Needs runs/t2-tiny-eval (models/t2-tiny/eval.sh ... with the held-out families) and the decomposition
# (build/t2 svf decompose --model models/t2-tiny). About 8 minutes on 2 cores.
# Usage: models/t2-tiny/adapt-ceiling.sh [OUT_DIR]   (default runs/t2-tiny-ceiling)
set -e
here=$(cd "$(dirname "$0")" && pwd)
. "$here/results.sh"
cd "$here/../.."
D=runs/t2-tiny-eval/data; O=${1:-runs/t2-tiny-ceiling}
for f in signsum math_hard code_hard know; do
  [ -f $D/$f-test.jsonl ] || { echo "$0: $D/$f-test.jsonl missing: run models/t2-tiny/eval.sh first" >&2; exit 1; }
done
mkdir -p $O
grid() {
  for a in expert:textvqa expert:math expert:code expert:reasoning \
           mix:textvqa=1,math=1 mix:textvqa=1,code=1 mix:textvqa=1,reasoning=1 mix:math=1,code=1 \
           mix:math=1,reasoning=1 mix:code=1,reasoning=1 \
           mix:textvqa=1,math=1,code=1,reasoning=1 mix:textvqa=0.5,math=0.5,code=0.5,reasoning=0.5; do
    o=$O/$1-$(echo $a | tr ':=,' '___')
    build/t2 eval --model models/t2-tiny --bench jsonl --data $D/$1-test.jsonl --images $D --adapt $a --out $o -t 1 --quiet >/dev/null 2>&1
    echo "grid $1 $a $(overall score $o)"
  done
}
{ grid signsum; grid know; } > $O/grid-a.txt & a=$!
{ grid math_hard; grid code_hard; } > $O/grid-b.txt & b=$!
wait $a; wait $b
cat $O/grid-a.txt $O/grid-b.txt
# the oracle: fitness on the test items; the images are found beside the examples file
head -250 $D/know-test.jsonl > $D/know-oracle250.jsonl
build/t2 adapt fewshot --model models/t2-tiny --examples $D/code_hard-test.jsonl --out $O/oracle-code_hard.safetensors \
  --generations 10 -n 8 -t 1 > $O/oracle-code_hard.log 2>&1 & a=$!
build/t2 adapt fewshot --model models/t2-tiny --examples $D/know-oracle250.jsonl --out $O/oracle-know.safetensors \
  --generations 8 -n 8 -t 1 > $O/oracle-know.log 2>&1 & b=$!
wait $a; wait $b
for f in code_hard know; do
  build/t2 eval --model models/t2-tiny --bench jsonl --data $D/$f-test.jsonl --images $D --adapt expert:$O/oracle-$f.safetensors \
    --out $O/oracle-$f --quiet >/dev/null 2>&1
  echo "oracle $f: $(grep -A1 '^few-shot mixture' $O/oracle-$f.log | tr -s ' \n' ' '); on the 500 test items $(overall score $O/oracle-$f)"
done
