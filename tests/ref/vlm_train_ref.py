#!/usr/bin/python3
"""Reference loss, gradients and AdamW trajectory of a whole LLaVA model (torch autograd, float64):
vision tower → feature selection → projector → image rows spliced into the language model's input →
mean next-token cross-entropy, all in one autograd graph.

usage: vlm_train_ref.py DIR --batch BATCH.safetensors --out OUT.safetensors
                        [--steps N --lr-max L --lr-min L --warmup W --total T --wd WD --clip C]

BATCH holds "tokens" I32 (B, T), "targets" I32 (B, T) (-1 ignored), "is_image" U8 (B, T) and, when
the batch has images, "pixels" F32 (n, 3, S, S): the k-th run of image positions (row-major) takes
the k-th image's projected rows (t2_vlm_train_forward's contract).
Without --steps: OUT has "loss" (1,) and "grad.NAME" for every parameter NAME in the llava-hf
layout (language_model.model.*, vision_tower.vision_model.*, multi_modal_projector.*).
With --steps N: N updates of torch.optim.AdamW on the same batch, two parameter groups (weight decay
WD on tensors with >= 2 dims, none on norms / biases / the class embedding), torch's
clip_grad_norm_(C) over all parameters first, the learning rate of step s set to t2's warmup +
cosine schedule; OUT has "losses" (N,) (the loss before each update) and "param.NAME" after the last.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_train_ref  # noqa: E402
import st  # noqa: E402
import vit_ref  # noqa: E402
import vit_train_ref  # noqa: E402


def lr_at(step, warmup, total, lr_max, lr_min):
    if step < warmup:
        return lr_max * (step + 1) / warmup
    if step >= total:
        return lr_min
    return lr_min + 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) * (lr_max - lr_min)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--batch", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--lr-max", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--total", type=int, default=10)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--clip", type=float, default=1.0)
    a = ap.parse_args(argv)

    bt = st.Checkpoint(a.batch)
    toks = torch.from_numpy(np.asarray(bt.get("tokens"), dtype=np.int64))
    tgts = torch.from_numpy(np.asarray(bt.get("targets"), dtype=np.int64))
    isimg = torch.from_numpy(np.asarray(bt.get("is_image")) != 0)
    B, T = toks.shape
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)

    # Language-model leaves (canonical names) and vision leaves (checkpoint names).
    P, tc, tied = lm_train_ref.lm_params(a.dir)
    W = vit_train_ref.LeafWeights(a.dir)
    vc, siglip, layer, strategy = vit_ref.vision_config(cfg)
    for name in W.ck.keys():
        if vit_train_ref.canonical(name) and "post_layernorm" not in name:
            W(name)
    pixels = None
    if "pixels" in bt.keys():
        pixels = torch.from_numpy(np.asarray(bt.get("pixels"), dtype=np.float64))

    def loss_fn():
        E = None
        if pixels is not None:
            hs, _, _ = vit_ref.tower(W, vc, siglip, pixels)
            out = vit_ref.projector(W, cfg, vit_ref.select(hs, layer, strategy))  # (n, R, C)
            C = out.shape[-1]
            flat = out.reshape(-1, C)
            idx = torch.nonzero(isimg.reshape(-1)).reshape(-1)
            assert idx.numel() == flat.shape[0], "image positions != image rows"
            E = torch.zeros(B * T, C, dtype=torch.float64).index_put((idx,), flat).view(B, T, C)
        loss, _, _ = lm_train_ref.lm_loss(P, tc, tied, toks, tgts, E, isimg if E is not None else None)
        return loss

    names = {}
    for n, t in P.items():
        names[("language_model.lm_head.weight" if n == "lm_head.weight" else "language_model.model." + n)] = t
    for n, t in W.leaves.items():
        c = vit_train_ref.canonical(n)
        if c is None or "post_layernorm" in n:
            continue
        names[c if c.startswith("multi_modal_projector.") else "vision_tower.vision_model." + c] = t

    res = {}
    if a.steps == 0:
        loss = loss_fn()
        loss.backward()
        res["loss"] = ("F32", np.array([loss.item()], dtype=np.float32))
        for n, t in names.items():
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            res["grad." + n] = ("F32", g.numpy().astype(np.float32))
    else:
        # Only tensors that reach the loss are trained (t2 holds no tower layers past the selected one).
        used = {n: t for n, t in names.items()}
        decay = [t for t in used.values() if t.dim() >= 2]
        nodecay = [t for t in used.values() if t.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                                lr=a.lr_max, betas=(0.9, 0.999), eps=1e-8)
        losses = []
        for s in range(a.steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_([t for t in used.values() if t.grad is not None], a.clip)
            for g in opt.param_groups:
                g["lr"] = lr_at(s, a.warmup, a.total, a.lr_max, a.lr_min)
            opt.step()
        res["losses"] = ("F32", np.array(losses, dtype=np.float32))
        for n, t in used.items():
            res["param." + n] = ("F32", t.detach().numpy().astype(np.float32))
    st.save(a.out, dict(sorted(res.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
