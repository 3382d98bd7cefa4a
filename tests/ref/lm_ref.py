#!/usr/bin/python3
"""Independent reference forward pass of HF Llama / Qwen2 / Mistral checkpoints (torch, CPU).

usage: lm_ref.py DIR --tokens 1,2,3 --out LOGITS.f32 [--hidden-out HIDDEN.f32]
                 [--dtype-compute f64|f32] [--print]
       lm_ref.py DIR --tokens-file FILE ...     (whitespace/comma separated ids)
       lm_ref.py --selftest

Writes raw little-endian float32 logits, T x vocab, row-major (and optionally the final-normed
hidden states, T x hidden). Reads config.json (text config or LLaVA config with text_config) and
the safetensors in DIR (plain model.*, LLaVA legacy language_model.model.*, or new
model.language_model.* names; single file or sharded with index.json).

Semantics (transformers modeling_llama / modeling_qwen2 / modeling_mistral):
  h = embed[tokens]
  per layer: x = rmsnorm(h) * w_in; q,k,v = x W^T (+ bias: Qwen2 q/k/v, or when present)
             rotate-half RoPE on q,k at positions 0..T-1, inv_freq = 1/theta^(2i/d)
             (llama3 rope_scaling applied to inv_freq), GQA (query head j uses kv head
             j // (heads/kv_heads)), causal softmax(q k^T / sqrt(head_dim)) v, o_proj
             h += attn; x = rmsnorm(h) * w_post; h += down(silu(gate x) * up x)
  logits = rmsnorm(h) * w_norm @ (lm_head or tied embed)^T
  rmsnorm(x) = x * rsqrt(mean(x^2) + eps), computed in at least float32.
All weights are upcast from their stored dtype to the compute dtype (float64 by default).
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

# transformers' config defaults, for keys absent from config.json (sparse hub text_configs)
DEFAULTS = {
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=None, max_position_embeddings=2048,
                  rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                  tie_word_embeddings=False, attention_bias=False, mlp_bias=False, head_dim=None),
    "mistral": dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096 * 32,
                    rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                    tie_word_embeddings=False, sliding_window=4096, head_dim=None),
    "qwen2": dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=32768,
                  rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                  tie_word_embeddings=False, use_sliding_window=False, sliding_window=4096,
                  max_window_layers=28, head_dim=None),
}


def load_config(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    if "text_config" in cfg:
        tc = dict(cfg["text_config"] or {})
        tc.setdefault("model_type", "llama")
        if "tie_word_embeddings" not in tc and "tie_word_embeddings" in cfg:
            tc["tie_word_embeddings"] = cfg["tie_word_embeddings"]
    else:
        tc = dict(cfg)
    mt = tc.get("model_type", "llama")
    if mt not in DEFAULTS:
        raise ValueError("unsupported model_type %r" % mt)
    for k, v in DEFAULTS[mt].items():
        tc.setdefault(k, v)
    if tc["num_key_value_heads"] is None:
        tc["num_key_value_heads"] = tc["num_attention_heads"]
    if not tc.get("head_dim"):
        tc["head_dim"] = tc["hidden_size"] // tc["num_attention_heads"]
    return tc


def inv_freq_default(head_dim, theta):
    """1 / theta^(2i/d), i = 0..d/2-1, in float64."""
    import torch
    i2 = torch.arange(0, head_dim, 2, dtype=torch.float64)
    return 1.0 / (float(theta) ** (i2 / head_dim))


def inv_freq_for(tc):
    """inv_freq (float64) after rope scaling (only 'llama3' and none/default are supported)."""
    import torch
    inv = inv_freq_default(tc["head_dim"], tc["rope_theta"])
    rs = tc.get("rope_scaling")
    if not rs:
        return inv
    rtype = rs.get("rope_type", rs.get("type", "default"))
    if rtype == "default":
        return inv
    if rtype != "llama3":
        raise ValueError("rope_scaling type %r not supported by the reference" % rtype)
    factor = float(rs["factor"])
    low = float(rs["low_freq_factor"])
    high = float(rs["high_freq_factor"])
    orig = float(rs["original_max_position_embeddings"])
    low_wl = orig / low
    high_wl = orig / high
    wl = 2 * math.pi / inv
    out = torch.empty_like(inv)
    for i in range(inv.numel()):
        w = float(wl[i])
        f = float(inv[i])
        if w < high_wl:
            out[i] = f  # high frequency: unchanged
        elif w > low_wl:
            out[i] = f / factor  # low frequency: interpolated by factor
        else:
            s = (orig / w - low) / (high - low)
            out[i] = (1 - s) * f / factor + s * f
    return out


def find_prefix(ck):
    for p in ("model.", "language_model.model.", "model.language_model."):
        if p + "embed_tokens.weight" in ck:
            return p
    raise KeyError("no embed_tokens.weight under model. / language_model.model. / "
                   "model.language_model.")


class Model:
    def __init__(self, d, compute="f64", ignore_rope_scaling=False):
        import torch
        self.torch = torch
        self.dt = {"f64": torch.float64, "f32": torch.float32}[compute]
        self.tc = load_config(d)
        if ignore_rope_scaling:
            self.tc["rope_scaling"] = None
        self.ck = st.Checkpoint(d)
        self.prefix = find_prefix(self.ck)
        tc = self.tc
        if self.tc["tie_word_embeddings"]:
            self.lm_head_name = self.prefix + "embed_tokens.weight"
        else:
            cands = ["lm_head.weight", "language_model.lm_head.weight"]
            found = [c for c in cands if c in self.ck]
            if not found:
                raise KeyError("lm_head.weight missing and tie_word_embeddings is false")
            self.lm_head_name = found[0]
        self.inv_freq = inv_freq_for(tc)
        self._cache = {}

    def w(self, name, required=True):
        full = self.prefix + name
        if full not in self.ck:
            if required:
                raise KeyError(full)
            return None
        if full not in self._cache:
            self._cache[full] = self.torch.from_numpy(
                np.asarray(self.ck.get(full), dtype=np.float64)).to(self.dt)
        return self._cache[full]

    def rmsnorm(self, x, w):
        torch = self.torch
        nd = torch.float64 if self.dt == torch.float64 else torch.float32
        xx = x.to(nd)
        var = xx.pow(2).mean(-1, keepdim=True)
        return (xx * torch.rsqrt(var + self.tc["rms_norm_eps"])).to(self.dt) * w

    def linear(self, x, base):
        y = x @ self.w(base + ".weight").T
        b = self.w(base + ".bias", required=False)
        return y + b if b is not None else y

    def window(self, layer):
        tc = self.tc
        if tc["model_type"] == "mistral":
            return tc.get("sliding_window")
        if tc["model_type"] == "qwen2" and tc.get("use_sliding_window"):
            return tc["sliding_window"] if layer >= tc.get("max_window_layers", 0) else None
        return None

    def forward(self, tokens, embeds=None):
        """tokens: list of ints -> (logits T x V, final-normed hidden T x H) in compute dtype.
        embeds: optional {position: vector(H)} replacing those positions' input embeddings (images)."""
        torch = self.torch
        tc = self.tc
        T = len(tokens)
        V = tc["vocab_size"]
        if min(tokens) < 0 or max(tokens) >= V:
            raise ValueError("token id out of range [0, %d)" % V)
        nh, kv, hd = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
        rep = nh // kv
        emb = self.ck.get(self.prefix + "embed_tokens.weight")
        h = torch.from_numpy(np.asarray(emb[np.asarray(tokens)], dtype=np.float64)).to(self.dt)
        for i, row in (embeds or {}).items():
            h[i] = torch.as_tensor(np.asarray(row, dtype=np.float64)).to(self.dt)
        pos = torch.arange(T, dtype=torch.float64)
        ang = pos[:, None] * self.inv_freq[None, :]  # T x hd/2
        ang = torch.cat([ang, ang], dim=-1)
        cos, sin = ang.cos().to(self.dt), ang.sin().to(self.dt)

        def rope(x):  # x: heads x T x hd
            half = hd // 2
            rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
            return x * cos + rot * sin

        scale = 1.0 / math.sqrt(hd)
        i_idx = torch.arange(T)[:, None]
        j_idx = torch.arange(T)[None, :]
        for l in range(tc["num_hidden_layers"]):
            p = "layers.%d." % l
            x = self.rmsnorm(h, self.w(p + "input_layernorm.weight"))
            q = self.linear(x, p + "self_attn.q_proj").view(T, nh, hd).transpose(0, 1)
            k = self.linear(x, p + "self_attn.k_proj").view(T, kv, hd).transpose(0, 1)
            v = self.linear(x, p + "self_attn.v_proj").view(T, kv, hd).transpose(0, 1)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(rep, dim=0)
            v = v.repeat_interleave(rep, dim=0)
            s = (q @ k.transpose(1, 2)) * scale  # nh x T x T
            allowed = j_idx <= i_idx
            win = self.window(l)
            if win is not None:
                allowed = allowed & (j_idx > i_idx - win)
            s = s.masked_fill(~allowed, float("-inf"))
            a = torch.softmax(s, dim=-1) @ v  # nh x T x hd
            a = a.transpose(0, 1).reshape(T, nh * hd)
            h = h + self.linear(a, p + "self_attn.o_proj")
            x = self.rmsnorm(h, self.w(p + "post_attention_layernorm.weight"))
            g = self.linear(x, p + "mlp.gate_proj")
            u = self.linear(x, p + "mlp.up_proj")
            h = h + self.linear(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")
        hn = self.rmsnorm(h, self.w("norm.weight"))
        W = self.torch.from_numpy(np.asarray(self.ck.get(self.lm_head_name), dtype=np.float64)).to(self.dt)
        return hn @ W.T, hn


def logits(d, tokens, compute="f64", ignore_rope_scaling=False):
    lg, hn = Model(d, compute, ignore_rope_scaling).forward(list(tokens))
    return lg.double().numpy(), hn.double().numpy()


def parse_tokens(s):
    return [int(t) for t in s.replace(",", " ").split()]


# ----------------------------------------------------------------------------- self test
def naive_numpy_logits(d, tokens):
    """A second, loop-style implementation (numpy f64, token by token with a KV cache, explicit
    pairwise rotation); used only to cross-check Model.forward in the self test."""
    tc = load_config(d)
    ck = st.Checkpoint(d)
    pre = find_prefix(ck)
    g = lambda n: np.asarray(ck.get(pre + n), dtype=np.float64)  # noqa: E731
    has = lambda n: (pre + n) in ck  # noqa: E731
    nh, kv, hd, eps = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"], tc["rms_norm_eps"]
    L = tc["num_hidden_layers"]
    inv = inv_freq_for(tc).numpy()
    if tc["tie_word_embeddings"]:
        W = g("embed_tokens.weight")
    else:
        W = np.asarray(ck.get("lm_head.weight" if "lm_head.weight" in ck else "language_model.lm_head.weight"),
                       dtype=np.float64)
    E = g("embed_tokens.weight")

    def norm(x, w):
        return x / np.sqrt(np.mean(x * x) + eps) * w

    def rot(vec, t):  # vec: hd
        out = np.empty_like(vec)
        half = hd // 2
        for i in range(half):
            c, s = math.cos(t * inv[i]), math.sin(t * inv[i])
            a, b = vec[i], vec[i + half]
            out[i] = a * c - b * s
            out[i + half] = b * c + a * s
        return out

    kc = [[] for _ in range(L)]
    vc = [[] for _ in range(L)]
    rows = []
    for t, tok in enumerate(tokens):
        h = E[tok].copy()
        for l in range(L):
            p = "layers.%d." % l
            x = norm(h, g(p + "input_layernorm.weight"))

            def lin(name, x):
                y = g(p + name + ".weight") @ x
                return y + g(p + name + ".bias") if has(p + name + ".bias") else y
            q = lin("self_attn.q_proj", x).reshape(nh, hd)
            k = lin("self_attn.k_proj", x).reshape(kv, hd)
            v = lin("self_attn.v_proj", x).reshape(kv, hd)
            kc[l].append(np.stack([rot(k[j], t) for j in range(kv)]))
            vc[l].append(v)
            out = np.zeros(nh * hd)
            for head in range(nh):
                qh = rot(q[head], t)
                g_kv = head // (nh // kv)
                sc = np.array([qh @ kc[l][s][g_kv] for s in range(t + 1)]) / math.sqrt(hd)
                pr = np.exp(sc - sc.max())
                pr /= pr.sum()
                out[head * hd:(head + 1) * hd] = sum(pr[s] * vc[l][s][g_kv] for s in range(t + 1))
            h = h + lin("self_attn.o_proj", out)
            x = norm(h, g(p + "post_attention_layernorm.weight"))
            gg = lin("mlp.gate_proj", x)
            u = lin("mlp.up_proj", x)
            h = h + lin("mlp.down_proj", gg / (1 + np.exp(-gg)) * u)
        rows.append(W @ norm(h, g("norm.weight")))
    return np.stack(rows)


def selftest():
    import tempfile
    import make_lm
    st._selftest()
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("PASS " if cond else "FAIL ") + msg)
        ok = ok and bool(cond)

    rng = np.random.default_rng(1)
    toks = [int(t) for t in rng.integers(0, 300, 14)]
    with tempfile.TemporaryDirectory() as tmp:
        def mk(name, **kw):
            d = os.path.join(tmp, name)
            make_lm.make(d, **kw)
            return d

        # rope scaling exercised
        d3 = mk("llama3", arch="llama3", seed=3)
        tc = load_config(d3)
        base = inv_freq_default(tc["head_dim"], tc["rope_theta"]).numpy()
        sc = inv_freq_for(tc).numpy()
        kept = int(np.sum(sc == base))
        div = int(np.sum(np.isclose(sc, base / 8.0, rtol=1e-15)))
        smooth = len(base) - kept - div
        check(kept >= 1 and div >= 1 and smooth >= 1,
              "llama3 inv_freq: %d kept, %d smoothed, %d divided by factor (head_dim %d)"
              % (kept, smooth, div, tc["head_dim"]))
        # the same rule written vectorised (torch.where over the three regimes)
        import torch
        rs = tc["rope_scaling"]
        inv = torch.from_numpy(base)
        wl = 2 * math.pi / inv
        o = rs["original_max_position_embeddings"]
        lo_wl, hi_wl = o / rs["low_freq_factor"], o / rs["high_freq_factor"]
        by_factor = torch.where(wl > lo_wl, inv / rs["factor"], inv)
        sm = (o / wl - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
        mid = (wl >= hi_wl) & (wl <= lo_wl)
        vec = torch.where(mid, (1 - sm) * by_factor / rs["factor"] + sm * by_factor, by_factor).numpy()
        check(np.allclose(vec, sc, rtol=1e-14, atol=0), "llama3 inv_freq: loop == vectorised form")
        a, _ = logits(d3, toks)
        b, _ = logits(d3, toks, ignore_rope_scaling=True)
        check(np.abs(a[0] - b[0]).max() < 1e-12 and np.abs(a[1:] - b[1:]).max() > 1e-4,
              "llama3 scaling changes logits after position 0 (max diff %.3g)" % np.abs(a - b).max())

        for arch in ("llama", "llama3", "qwen2", "mistral"):
            d = mk("c_" + arch, arch=arch, seed=7)
            full, hid = logits(d, toks)
            pre, _ = logits(d, toks[:5])
            check(np.abs(full[:5] - pre).max() < 1e-10,
                  "%s causality: prefix rows equal (max diff %.2g)" % (arch, np.abs(full[:5] - pre).max()))
            nv = naive_numpy_logits(d, toks)
            check(np.abs(full - nv).max() < 1e-9,
                  "%s matches loop/KV-cache numpy implementation (max diff %.2g)"
                  % (arch, np.abs(full - nv).max()))
            f32, _ = logits(d, toks, compute="f32")
            check(np.abs(full - f32).max() < 1e-4,
                  "%s f32 compute close to f64 (max diff %.2g)" % (arch, np.abs(full - f32).max()))
            sd = full.std(axis=1).mean()
            check(sd > 0.2 and len(set(full.argmax(1).tolist())) > 3,
                  "%s logits not degenerate (row std %.2f, %d distinct argmax)"
                  % (arch, sd, len(set(full.argmax(1).tolist()))))
            if arch == "qwen2":
                ck = st.Checkpoint(d)
                check("lm_head.weight" not in ck and "model.layers.0.self_attn.q_proj.bias" in ck,
                      "qwen2: tied (no lm_head) and q/k/v biases present")

        for name, kw in (("mqa", dict(arch="llama", kv_heads=1)), ("mha", dict(arch="qwen2", kv_heads=4)),
                         ("hd32", dict(arch="mistral", head_dim=32, heads=4, kv_heads=2)),
                         ("l3hd8", dict(arch="llama3", hidden=64, heads=8, kv_heads=2))):
            d = mk(name, seed=11, **kw)
            x, _ = logits(d, toks[:9])
            nv = naive_numpy_logits(d, toks[:9])
            check(np.abs(x - nv).max() < 1e-9, "%s %s matches loop implementation (max diff %.2g)"
                  % (name, kw, np.abs(x - nv).max()))

        ref, _ = logits(mk("p", arch="llama", seed=5), toks)
        for lay in ("legacy", "new"):
            for shards in (1, 3):
                d = mk("%s%d" % (lay, shards), arch="llama", seed=5, layout=lay, shards=shards)
                x, _ = logits(d, toks)
                check(np.array_equal(x, ref), "layout %s, %d shard(s): identical logits" % (lay, shards))
        d = mk("sh4", arch="qwen2", seed=5, shards=4)
        check(os.path.exists(os.path.join(d, st.INDEX_NAME)), "4 shards: index.json written")
        x, _ = logits(d, toks)
        y, _ = logits(mk("sh1", arch="qwen2", seed=5), toks)
        check(np.array_equal(x, y), "qwen2 sharded == single file")
        for dt in ("F16", "BF16"):
            d = mk("dt" + dt, arch="llama", seed=5, dtype=dt)
            x, _ = logits(d, toks)
            diff = np.abs(x - ref).max()
            check(0 < diff < 0.1, "%s weights: logits close to F32 but not equal (max diff %.3g)" % (dt, diff))
        d = mk("tie", arch="llama", seed=5, tie=True)
        ck = st.Checkpoint(d)
        check("lm_head.weight" not in ck, "llama --tie 1: no lm_head tensor")

        # CLI round trip
        d = os.path.join(tmp, "p")
        out = os.path.join(tmp, "out.f32")
        hout = os.path.join(tmp, "hid.f32")
        main([d, "--tokens", ",".join(map(str, toks)), "--out", out, "--hidden-out", hout])
        x = np.fromfile(out, dtype="<f4").reshape(len(toks), -1)
        check(x.shape == (len(toks), 300) and np.abs(x - ref).max() < 1e-5, "CLI writes T x vocab f32 logits")
        check(os.path.getsize(hout) == len(toks) * 64 * 4, "CLI writes T x hidden f32 hidden states")
    print("selftest " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="reference logits for HF Llama/Qwen2/Mistral checkpoints")
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--tokens", help="comma separated token ids")
    ap.add_argument("--tokens-file")
    ap.add_argument("--out", help="logits, raw little-endian f32, T x vocab")
    ap.add_argument("--hidden-out", help="final-normed hidden states, raw f32, T x hidden")
    ap.add_argument("--dtype-compute", default="f64", choices=["f64", "f32"])
    ap.add_argument("--print", action="store_true", help="print argmax and top logits per row")
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args(argv)
    if a.selftest:
        return selftest()
    if not a.dir or not (a.tokens or a.tokens_file):
        ap.error("DIR and --tokens/--tokens-file are required")
    toks = parse_tokens(a.tokens) if a.tokens else parse_tokens(open(a.tokens_file).read())
    if not toks:
        ap.error("no tokens")
    lg, hn = logits(a.dir, toks, a.dtype_compute)
    if a.out:
        lg.astype("<f4").tofile(a.out)
    if a.hidden_out:
        hn.astype("<f4").tofile(a.hidden_out)
    if a.print or not a.out:
        for t in range(lg.shape[0]):
            top = np.argsort(-lg[t])[:5]
            print("%4d tok %6d  argmax %6d  top5 %s" % (t, toks[t], top[0],
                  " ".join("%d:%.4f" % (i, lg[t, i]) for i in top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
