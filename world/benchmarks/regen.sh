#!/bin/sh
# regen.sh — regenerate the world's test sets (500 items per family, image size 96, difficulty 1)
# into OUT and compare each with the checked-in world/benchmarks/<family>-test.sha256.
# Usage: world/benchmarks/regen.sh T2_BINARY OUT [--update]   (run from the repository root)
set -e
t2=$1; out=$2; here=$(dirname "$0")
"$t2" world gen --family all --split test --n 500 --out "$out" --quiet
fail=0
for fam in textvqa scene math code reasoning dispatch signsum math_hard code_hard know; do
    sum=$(sh "$here/checksum.sh" "$out" "$fam" test)
    if [ "$3" = "--update" ]; then echo "$sum" > "$here/$fam-test.sha256"; echo "$fam $sum (written)"; continue; fi
    want=$(cat "$here/$fam-test.sha256")
    if [ "$sum" = "$want" ]; then echo "$fam ok"; else echo "$fam MISMATCH: got $sum, want $want"; fail=1; fi
done
exit $fail
