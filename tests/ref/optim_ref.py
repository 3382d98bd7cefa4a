#!/usr/bin/python3
"""optim_ref.py — the independent reference for tests/test_optim.c (core/optim.c).

  optim_ref.py WORK

Runs torch.optim.AdamW for STEPS steps on a random parameter vector of N floats cut into three
tensors — [0, 600) and [700, 1000) in a group with weight decay 0.1, [600, 700) in one with 0 —
with a fixed sequence of random gradients, clipping with torch.nn.utils.clip_grad_norm_ (max norm
1.0) each step and the learning rate of a linear-warmup + cosine schedule written here in plain
Python. Writes WORK/optim_ref.safetensors:

  p0 F32 (N)              the initial parameters
  grads F32 (STEPS, N)    the raw gradients of each step (before clipping)
  params F32 (STEPS, N)   the parameters after each step
  lr F64 (STEPS)          the rate used at each step
  clip_norm F32 (STEPS)   clip_grad_norm_'s return value (the pre-clip total norm) at each step
  sched F64 (S, 6)        rows (step, warmup, total, lr_max, lr_min, lr) of the schedule formula
__metadata__: n, steps, warmup, total, lr_max, lr_min, wd, max_norm.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

N, STEPS = 1000, 10
WARMUP, TOTAL, LR_MAX, LR_MIN = 3, 10, 1e-2, 1e-3
WD, MAX_NORM = 0.1, 1.0
CUTS = [(0, 600, True), (600, 700, False), (700, 1000, True)]


def lr_at(step, warmup, total, lr_max, lr_min):
    """Linear warmup to lr_max over `warmup` steps, then half a cosine down to lr_min at `total`."""
    if step < warmup:
        return lr_max * (step + 1) / warmup
    if step >= total:
        return lr_min
    ratio = (step - warmup) / (total - warmup)
    return lr_min + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr_max - lr_min)


def main():
    work = sys.argv[1]
    torch.manual_seed(0)
    rng = np.random.default_rng(1234)
    p0 = rng.standard_normal(N).astype(np.float32)
    # Gradients of varying size so that some steps clip (norm > 1) and some do not.
    scales = [0.1, 0.01, 0.2, 0.02, 0.1, 0.005, 0.3, 0.1, 0.01, 0.05]
    grads = np.stack([rng.standard_normal(N).astype(np.float32) * np.float32(s) for s in scales])

    ts = [torch.nn.Parameter(torch.from_numpy(p0[a:b].copy())) for a, b, _ in CUTS]
    decay = [t for t, c in zip(ts, CUTS) if c[2]]
    nodecay = [t for t, c in zip(ts, CUTS) if not c[2]]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=LR_MAX, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    params, lrs, norms = [], [], []
    for s in range(STEPS):
        for t, (a, b, _) in zip(ts, CUTS):
            t.grad = torch.from_numpy(grads[s, a:b].copy())
        norms.append(float(torch.nn.utils.clip_grad_norm_(ts, MAX_NORM)))
        lr = lr_at(s, WARMUP, TOTAL, LR_MAX, LR_MIN)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        lrs.append(lr)
        params.append(torch.cat([t.detach() for t in ts]).numpy().copy())

    sched = []
    for (w, tot, hi, lo) in [(10, 100, 3e-4, 3e-5), (0, 50, 1e-3, 0.0), (5, 5, 2e-3, 1e-4),
                             (1, 1000, 6e-4, 6e-5)]:
        for s in list(range(0, min(tot + 5, 40))) + [tot // 2, tot - 1, tot, tot + 100]:
            sched.append((s, w, tot, hi, lo, lr_at(s, w, tot, hi, lo)))

    meta = {"n": str(N), "steps": str(STEPS), "warmup": str(WARMUP), "total": str(TOTAL),
            "lr_max": repr(LR_MAX), "lr_min": repr(LR_MIN), "wd": repr(WD), "max_norm": repr(MAX_NORM)}
    st.save(os.path.join(work, "optim_ref.safetensors"),
            {"p0": p0, "grads": grads, "params": np.stack(params),
             "lr": np.array(lrs, dtype=np.float64), "clip_norm": np.array(norms, dtype=np.float32),
             "sched": np.array(sched, dtype=np.float64)}, metadata=meta)


if __name__ == "__main__":
    main()
