#!/usr/bin/python3
"""Reference loss and parameter gradients of HF Llama / Qwen2 checkpoints (torch autograd, float64).

usage: lm_train_ref.py DIR --tokens 1,2,... --targets 5,-1,... --B 2 --T 7 --out GRADS.safetensors
                      [--embeds EMBEDS.f32 --is-embed 0,1,...]

TOKENS and TARGETS are B*T ids, row-major; target -1 is ignored. Loss = mean over the non-ignored
targets of the cross-entropy of next-token logits; each batch row is an independent sequence at
positions 0..T-1 with causal attention. Writes one safetensors (F32) with "loss" (1,), "logits"
(B*T, V) and the gradient of every parameter under its canonical name without prefix
("embed_tokens.weight", "layers.0.self_attn.q_proj.weight", ..., "lm_head.weight" when untied).
With --embeds (raw little-endian f32, B*T*hidden, row-major) and --is-embed (B*T flags), positions
flagged 1 take the embeds row as their input instead of the token embedding (as t2_lm_forward's
embeds / is_embed); the output then also has "grad.embeds" (B*T, hidden): d(loss)/d(input rows) at
every position.

The model is written here from the transformers semantics (modeling_llama / modeling_qwen2), as in
lm_ref.py whose config / checkpoint / rope-frequency helpers it reuses; the backward is autograd.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_ref  # noqa: E402
import st  # noqa: E402


def lm_params(d):
    """Every language-model parameter of checkpoint D as a float64 leaf, by canonical name."""
    import torch
    tc = lm_ref.load_config(d)
    ck = st.Checkpoint(d)
    pre = lm_ref.find_prefix(ck)
    P = {}
    for name in ck.keys():
        if name.startswith(pre):
            canon = name[len(pre):]
        elif name in ("lm_head.weight", "language_model.lm_head.weight"):
            canon = "lm_head.weight"
        else:
            continue
        P[canon] = torch.tensor(np.asarray(ck.get(name), dtype=np.float64), dtype=torch.float64, requires_grad=True)
    tied = tc["tie_word_embeddings"] or "lm_head.weight" not in P
    if tc["tie_word_embeddings"]:
        P.pop("lm_head.weight", None)
    elif "lm_head.weight" not in P:   # untied config without the tensor: a trainable copy of embed
        P["lm_head.weight"] = P["embed_tokens.weight"].detach().clone().requires_grad_(True)
        tied = False
    return P, tc, tied


def lm_loss(P, tc, tied, toks, tgts, E=None, m=None):
    """Mean next-token cross-entropy over targets >= 0 of TOKS (B, T); positions where M (B, T) is
    set take E (B, T, C) as input rows. Returns (loss, logits (B*T, V), the input rows (retain_grad)
    or None)."""
    import torch
    B, T = toks.shape
    dt = torch.float64
    nh, kv, hd, eps = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"], tc["rms_norm_eps"]
    rep = nh // kv
    inv = lm_ref.inv_freq_for(tc).to(dt)
    # C computes inv_freq in double and rounds it to f32, as lm.c does; match that rounding.
    inv = inv.float().double()
    ang = torch.arange(T, dtype=dt)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)

    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def lin(x, base):
        y = x @ P[base + ".weight"].T
        b = P.get(base + ".bias")
        return y + b if b is not None else y

    def rope(x):  # B x heads x T x hd
        half = hd // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    h = P["embed_tokens.weight"][toks]  # B x T x C
    h0 = None
    if E is not None:
        h = torch.where(m.view(B, T, 1), E, h)
        h.retain_grad()
        h0 = h
    for l in range(tc["num_hidden_layers"]):
        p = "layers.%d." % l
        x = norm(h, P[p + "input_layernorm.weight"])
        q = lin(x, p + "self_attn.q_proj").view(B, T, nh, hd).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj").view(B, T, kv, hd).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj").view(B, T, kv, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, nh * hd)
        h = h + lin(o, p + "self_attn.o_proj")
        x = norm(h, P[p + "post_attention_layernorm.weight"])
        h = h + lin(torch.nn.functional.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"),
                    p + "mlp.down_proj")
    hn = norm(h, P["norm.weight"])
    W = P["embed_tokens.weight"] if tied else P["lm_head.weight"]
    logits = (hn @ W.T).view(B * T, -1)
    tv = tgts.reshape(-1)
    valid = tv >= 0
    if valid.any():
        loss = torch.nn.functional.cross_entropy(logits[valid], tv[valid], reduction="mean")
    else:
        loss = logits.sum() * 0
    return loss, logits, h0


def main(argv=None):
    import torch
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--B", type=int, required=True)
    ap.add_argument("--T", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--embeds")
    ap.add_argument("--is-embed")
    a = ap.parse_args(argv)
    B, T = a.B, a.T
    toks = torch.tensor(lm_ref.parse_tokens(a.tokens)).view(B, T)
    tgts = torch.tensor([int(x) for x in a.targets.split(",")]).view(B, T)

    P, tc, tied = lm_params(a.dir)
    E = m = None
    if a.embeds:
        C = P["embed_tokens.weight"].shape[1]
        E = torch.tensor(np.fromfile(a.embeds, dtype="<f4").astype(np.float64), dtype=torch.float64).view(B, T, C)
        m = torch.tensor([int(x) != 0 for x in a.is_embed.split(",")]).view(B, T)
    loss, logits, h0 = lm_loss(P, tc, tied, toks, tgts, E, m)
    valid = tgts.reshape(-1) >= 0
    loss.backward()
    out = {"loss": ("F32", np.array([loss.item()], dtype=np.float32)),
           "logits": ("F32", logits.detach().numpy().astype(np.float32))}
    for n, t in P.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        out["grad." + n] = ("F32", g.numpy().astype(np.float32))
    if h0 is not None:
        out["grad.embeds"] = ("F32", h0.grad.reshape(B * T, -1).numpy().astype(np.float32))
    st.save(a.out, out)
    print("loss %.8f over %d targets, %d gradients" % (loss.item(), int(valid.sum()), len(P)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
