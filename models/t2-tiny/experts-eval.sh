#!/bin/sh
# experts-eval.sh — the cross table of docs/svf.md: every expert of MODEL/experts on every expert
# family's test set (500 items, `t2 eval --adapt expert:NAME`; the base row is `--adapt none`).
# Usage: models/t2-tiny/experts-eval.sh T2_BINARY MODEL_DIR EVAL_DIR OUT_DIR [EXPERT ...]
#   EVAL_DIR: a models/t2-tiny/eval.sh output directory (its data/ holds the checked test sets).
#   Default experts: textvqa math code reasoning. Prints the markdown table.
set -e
t2=$1; model=$2; ev=$3; out=$4
[ -n "$t2" ] && [ -n "$model" ] && [ -n "$ev" ] && [ -n "$out" ] || {
    echo "usage: $0 T2_BINARY MODEL_DIR EVAL_DIR OUT_DIR [EXPERT ...]" >&2; exit 2; }
shift 4
names=${*:-textvqa math code reasoning}
. "$(dirname "$0")/results.sh"
mkdir -p "$out"
printf '| weights \\ family |'; for f in $names; do printf ' %s |' "$f"; done; echo
printf '|---|'; for f in $names; do printf -- '---|'; done; echo
for x in none $names; do
    [ "$x" = none ] && printf '| base |' || printf '| %s expert |' "$x"
    for f in $names; do
        [ "$x" = none ] && a=none || a=expert:$x
        "$t2" eval --model "$model" --bench jsonl --data "$ev/data/$f-test.jsonl" --images "$ev/data" --adapt "$a" \
            --out "$out/$x-$f" --quiet > /dev/null
        printf ' %.1f |' "$(overall score "$out/$x-$f")"
    done
    echo
done
