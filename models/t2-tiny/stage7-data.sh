#!/bin/sh
# stage7-data.sh T2_BINARY — the data of stage 7 (docs/t2-tiny.md, runs 34–45): textvqa train items
# 0..19999 at difficulty 0 (t2 world gen, deterministic), of which the 4069 that ask for a door number
# → runs/world-doors/doors.jsonl (image paths relative to that folder). Run from the repository root.
set -e
t2=$1
[ -n "$t2" ] || { echo "usage: $0 T2_BINARY" >&2; exit 2; }
out=runs/world-doors
"$t2" world gen --family textvqa --split train --n 20000 --difficulty 0 --out "$out" 2>/dev/null
grep -e '"question":"What number is on the door?"' -e '"question":"What is the door number?"' \
    "$out/textvqa-train.jsonl" > "$out/doors.jsonl.tmp"
mv "$out/doors.jsonl.tmp" "$out/doors.jsonl"
echo "$(wc -l < "$out/doors.jsonl") door items → $out/doors.jsonl"
