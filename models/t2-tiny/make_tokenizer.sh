#!/usr/bin/env bash
# models/t2-tiny/make_tokenizer.sh [BUILD_DIR] — rebuild t2-tiny's tokenizer (tokenizer.json,
# tokenizer_config.json, special_tokens_map.json in this directory) from the world's text: 4000 train
# items of each trained family and 1000 of each held-out one, each rendered twice as the model sees it
# ("USER: question ASSISTANT: answer", with and without t2 eval's suffix), byte-level BPE up to 2048
# tokens (it stops at 1915: no pair is left twice). Deterministic: the same files every run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
t2=$(cd "$root" && realpath "${1:-build}")/t2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$t2" world gen --family textvqa,scene,math,code,reasoning,dispatch --split train --n 4000 --out "$work" 2>/dev/null
"$t2" world gen --family signsum,math_hard,code_hard,know --split train --n 1000 --out "$work" 2>/dev/null
/usr/bin/python3 - "$work" <<'PY'
import glob, json, sys
work = sys.argv[1]
VQA = "\nAnswer the question using a single word or phrase."
MC = "\nAnswer with the option's letter from the given choices directly."
with open(work + "/corpus.jsonl", "w") as out:
    for f in sorted(glob.glob(work + "/*-train.jsonl")):
        for line in open(f):
            it = json.loads(line)
            q = it["question"] + "".join("\n%s. %s" % ("ABCD"[i], c) for i, c in enumerate(it.get("choices") or []))
            suf = MC if it.get("choices") else (VQA if it.get("image") or it["metric"] == "vqa" else "")
            for s in ("", suf):
                out.write(json.dumps({"question": "USER: " + q + s + " ASSISTANT: " + it["answers"][0]}) + "\n")
PY
"$t2" tokenizer train --jsonl --input "$work/corpus.jsonl" --vocab-size 2048 --out "$here" --chat-template vicuna
