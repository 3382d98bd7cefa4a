#!/bin/sh
# tower.sh T2_BINARY — the reading tower of stages 7–8 (docs/t2-tiny.md, runs 34–45), from stage 6's model
# (runs/t2-tiny-stage6/model: the bytes of the shipped stage-6 model.safetensors):
#  1. t2 tower train on per-half-patch characters + pooled pixels (the 12000-step schedule stopped
#     at step 7000: runs/t2-tiny-tower/model);
#  2. its tower frozen, fresh heads trained for 500 steps and exported as the projector
#     (--projector heads: runs/t2-tiny-tower-proj/model, the init of train-stage7.json).
# Both resume after a kill (add --resume). About 25 minutes on one thread. Run from the repository root.
set -e
t2=$1
[ -n "$t2" ] || { echo "usage: $0 T2_BINARY" >&2; exit 2; }
"$t2" tower train --model runs/t2-tiny-stage6/model --out runs/t2-tiny-tower --steps 12000 --max-steps 7000 \
    --batch 32 --lr 2e-3 --char-weight 10 --every 1000 --log-every 100 --valid 128 --threads 1
"$t2" tower train --model runs/t2-tiny-tower/model --out runs/t2-tiny-tower-proj --probe --projector heads \
    --steps 500 --batch 32 --lr 3e-3 --every 500 --log-every 250 --valid 64 --threads 1
