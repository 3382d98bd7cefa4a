#!/bin/sh
# adaptation evidence on t2-tiny: base / prompt / classifier / few-shot (10 shots, scored on the other 490) on
# the four held-out families and the four trained ones that have experts
. "$(dirname "$0")/results.sh"
cd "$(dirname "$0")/../.."   # the repository root; run models/t2-tiny/eval.sh ... runs/t2-tiny-eval first (test sets, base scores)
D=runs/t2-tiny-eval/data; O=runs/t2-tiny-adapt
mkdir -p $O
for f in signsum math_hard code_hard know textvqa math code reasoning; do
  for s in prompt classifier; do
    build/t2 eval --model models/t2-tiny --bench jsonl --data $D/$f-test.jsonl --images $D --adapt $s --out $O/$s-$f --quiet >/dev/null 2>&1
    echo "$s $f $(overall score $O/$s-$f)"
  done
done
for f in signsum math_hard code_hard know textvqa math code reasoning; do
  head -10 $D/$f-test.jsonl > $D/$f-shots.jsonl; tail -n +11 $D/$f-test.jsonl > $D/$f-rest.jsonl
  build/t2 adapt fewshot --model models/t2-tiny --examples $D/$f-shots.jsonl --out $O/few-$f.safetensors --generations 20 --patience 6 --quiet > $O/few-$f.log 2>&1
  build/t2 eval --model models/t2-tiny --bench jsonl --data $D/$f-rest.jsonl --images $D --adapt expert:$O/few-$f.safetensors --out $O/fewshot-$f --quiet >/dev/null 2>&1
  build/t2 eval --model models/t2-tiny --bench jsonl --data $D/$f-rest.jsonl --images $D --out $O/base-rest-$f --quiet >/dev/null 2>&1
  echo "fewshot $f $(overall score $O/fewshot-$f) base-rest $(overall score $O/base-rest-$f)"
done
