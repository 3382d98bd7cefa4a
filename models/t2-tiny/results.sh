# results.sh — sourced by the scripts beside it: overall FIELD DIR prints the "overall" FIELD
# (score, n) of DIR/results.json as `t2 eval` writes it.
overall() { sed -n "/\"overall\"/,/}/s/.*\"$1\":[[:space:]]*\([0-9.eE+-]*\).*/\1/p" "$2/results.json" | head -1; }
