#!/bin/sh
# stage13-data.sh T2_BINARY — the plate items of stages 13–14 (docs/t2-tiny.md, runs 49–50): textvqa
# train items 0..19999 at difficulty 0 and 0..29999 at difficulty 1 (t2 world gen, deterministic), of
# which those that ask for a number plate (4021 and 5991) → runs/world-plates0/plates.jsonl and
# runs/world-plates1/plates.jsonl (image paths relative to those folders). Run from the repository root.
set -e
t2=$1
[ -n "$t2" ] || { echo "usage: $0 T2_BINARY" >&2; exit 2; }
for d in 0 1; do
    out=runs/world-plates$d
    n=20000; [ $d = 1 ] && n=30000
    "$t2" world gen --family textvqa --split train --n $n --difficulty $d --out "$out" --quiet
    grep -e '"question":"What is on the plate?"' -e '"question":"What does the plate say?"' \
        -e '"question":"What is the number plate?"' "$out/textvqa-train.jsonl" > "$out/plates.jsonl.tmp"
    mv "$out/plates.jsonl.tmp" "$out/plates.jsonl"
    echo "$(wc -l < "$out/plates.jsonl") plate items → $out/plates.jsonl"
done
