#!/usr/bin/python3
"""Reference output and parameter gradients of the LLaVA vision side (torch autograd, float64):
vision tower → feature selection → multi_modal_projector, reusing vit_ref.py's tower / select /
projector with every weight a leaf tensor that requires grad.

usage: vit_train_ref.py DIR --pixels FILE --dout FILE --out GRADS.safetensors

  --pixels  raw little-endian float32 (n, channels, S, S)
  --dout    raw little-endian float32 (n, tokens, text_hidden): the upstream gradient dL/d(out)
Writes one safetensors (F32) with "out" (n, tokens, text_hidden) and "grad.NAME" for every tower and
projector parameter, NAME without the checkpoint prefix ("embeddings.patch_embedding.weight",
"encoder.layers.0.mlp.fc1.weight", "multi_modal_projector.linear_1.weight", ...); loss = sum(out * dout).
Parameters that do not reach the output (layers past the selected one) get zero gradients;
post_layernorm is left out.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import vit_ref  # noqa: E402


class LeafWeights(vit_ref.Weights):
    """Weights whose tensors are cached float64 leaves with requires_grad."""

    def __init__(self, d):
        super().__init__(d)
        self.leaves = {}

    def __call__(self, name):
        if name not in self.leaves:
            t = torch.from_numpy(np.array(self.ck.get(name), dtype=np.float64))
            self.leaves[name] = t.requires_grad_(True)
        return self.leaves[name]


def canonical(name):
    for p in vit_ref.PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    if name.startswith("model.multi_modal_projector."):
        return name[len("model."):]
    if name.startswith("multi_modal_projector."):
        return name
    return None


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--pixels", required=True)
    ap.add_argument("--dout", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    vc, siglip, layer, strategy = vit_ref.vision_config(cfg)
    ch, S = vc["num_channels"], vc["image_size"]
    px = np.fromfile(a.pixels, dtype="<f4").astype(np.float64)
    pixels = torch.from_numpy(px).view(-1, ch, S, S)
    W = LeafWeights(a.dir)
    for name in W.ck.keys():  # every parameter a leaf, even those the output never reads
        if canonical(name) and "post_layernorm" not in name:
            W(name)
    hs, _, _ = vit_ref.tower(W, vc, siglip, pixels)
    out = vit_ref.projector(W, cfg, vit_ref.select(hs, layer, strategy))
    dout = torch.from_numpy(np.fromfile(a.dout, dtype="<f4").astype(np.float64)).view(out.shape)
    (out * dout).sum().backward()
    res = {"out": ("F32", out.detach().numpy().astype(np.float32))}
    for name, t in W.leaves.items():
        c = canonical(name)
        if c is None or "post_layernorm" in name:
            continue
        gr = t.grad if t.grad is not None else torch.zeros_like(t)
        res["grad." + c] = ("F32", gr.numpy().astype(np.float32))
    st.save(a.out, dict(sorted(res.items())))


if __name__ == "__main__":
    main()
