#!/bin/sh
# checksum.sh — the checksum of one generated world benchmark: sha256 of the manifest that
# `sha256sum` prints for DIR/<family>-<split>.jsonl followed by every DIR/images/<family>-<split>-*.png
# in byte order of their names. Usage: checksum.sh DIR FAMILY [SPLIT]   (SPLIT defaults to test)
set -e
dir=$1; fam=$2; split=${3:-test}
cd "$dir"
{ echo "$fam-$split.jsonl"; find images -name "$fam-$split-*.png" 2>/dev/null | LC_ALL=C sort; } |
    xargs sha256sum | sha256sum | cut -d' ' -f1
