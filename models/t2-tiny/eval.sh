#!/bin/sh
# eval.sh — score a t2-tiny model (or any model that speaks the world's prompts) on the world's
# test sets with `t2 eval`, and print the markdown table of docs/t2-tiny.md.
# Usage: models/t2-tiny/eval.sh T2_BINARY MODEL_DIR OUT_DIR [FAMILY ...] [-- EXTRA t2 eval FLAGS]
#   (run from the repository root; default families: the six trained ones)
# The test sets (500 items each, image size 96, difficulty 1) are generated into OUT_DIR/data by
# `t2 world gen` and checked against world/benchmarks/*.sha256 first, so the numbers are on exactly
# the checked-in benchmarks. Majority-answer baselines and chance are those of docs/world.md.
set -e
t2=$1; model=$2; out=$3
[ -n "$t2" ] && [ -n "$model" ] && [ -n "$out" ] || { echo "usage: $0 T2_BINARY MODEL_DIR OUT_DIR [FAMILY ...] [-- FLAGS]" >&2; exit 2; }
shift 3
fams=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do fams="$fams $1"; shift; done
[ "$1" = "--" ] && shift
[ -n "$fams" ] || fams="textvqa scene math code reasoning dispatch"
here=$(dirname "$0")
. "$here/results.sh"
bench=$here/../../world/benchmarks
mkdir -p "$out/data"
for fam in $fams; do
    if [ ! -f "$out/data/$fam-test.jsonl" ]; then
        "$t2" world gen --family "$fam" --split test --n 500 --out "$out/data" --quiet
    fi
    sum=$(sh "$bench/checksum.sh" "$out/data" "$fam" test)
    [ "$sum" = "$(cat "$bench/$fam-test.sha256")" ] || { echo "$fam: test set differs from world/benchmarks/$fam-test.sha256" >&2; exit 1; }
done
for fam in $fams; do
    "$t2" eval --model "$model" --bench jsonl --data "$out/data/$fam-test.jsonl" --images "$out/data" \
        --out "$out/$fam" --quiet "$@" > /dev/null
done
# baseline and chance per family (docs/world.md, test split)
row() {
    case $1 in
    textvqa) b="0.8"; c="< 1";; scene) b="8.2"; c="≈ 10";; math) b="4.8"; c="< 5";;
    code) b="4.5"; c="< 5";; reasoning) b="26.2"; c="25";; dispatch) b="20.6"; c="20";;
    signsum) b="2.4"; c="≈ 1";; math_hard) b="5.0"; c="< 5";; code_hard) b="6.6"; c="< 5";;
    know) b="35.7"; c="≈ 30";; *) b="?"; c="?";;
    esac
    s=$(overall score "$out/$1"); n=$(overall n "$out/$1")
    printf '| %s | %s | %.1f | %s | %s |\n' "$1" "$n" "$s" "$b" "$c"
}
echo "| family | n | score | majority baseline | chance |"
echo "|---|---|---|---|---|"
for fam in $fams; do row "$fam"; done
