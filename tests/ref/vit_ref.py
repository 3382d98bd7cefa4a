#!/usr/bin/python3
"""Independent reference for the LLaVA vision towers (torch, float64, CPU): CLIP ViT and SigLIP image
features as LLaVA selects them, and the projector on top.

usage: vit_ref.py DIR --pixels FILE --out FILE [--layer-all] [--proj-out FILE] [--last-out FILE]
                  [--pooled-out FILE]

  DIR          a LLaVA checkpoint directory (config.json + safetensors; vision tower under
               vision_tower.vision_model.* or model.vision_tower.vision_model.*)
  --pixels     raw little-endian float32 (n, channels, image_size, image_size), normalised; n is
               taken from the file size
  --out        the selected image features (n, tokens, feat) as raw float32 — HF's
               get_image_features before the projector: hidden_states[vision_feature_layer] (a list
               concatenates along the feature axis, in list order), token 0 dropped for strategy
               "default"
  --layer-all  write every hidden state instead, (n_layers + 1, n, positions, hidden)
  --proj-out   the projector output (n, tokens, text_hidden): linear_2(act(linear_1(features))),
               act = projector_hidden_act ("gelu": exact erf)
  --last-out   last_hidden_state (n, positions, hidden): SigLIP post_layernorm(encoder output), CLIP
               the raw encoder output
  --pooled-out CLIP only: post_layernorm(last_hidden_state[:, 0]) (n, hidden)

Written from transformers' modeling_clip.py / modeling_siglip.py semantics:
  CLIP   embeddings = cat(class_embedding, conv2d(pixels, W, stride=P)) + position_embedding
         hidden_states[0] = pre_layrnorm(embeddings)
  SigLIP embeddings = conv2d(pixels, W, b, stride=P) + position_embedding = hidden_states[0]
  layer  h = h + out_proj(softmax(q k^T * D^-0.5) v) with q,k,v = proj(layer_norm1(h)) per head
         h = h + fc2(act(fc1(layer_norm2(h))))
  act    quick_gelu x*sigmoid(1.702x) | gelu (erf) | gelu_pytorch_tanh / gelu_new / gelu_fast (tanh)
         | relu | silu
Config defaults for absent keys: CLIPVisionConfig (hidden 768, 12 layers, 12 heads, image 224, patch 32,
quick_gelu, eps 1e-5), SiglipVisionConfig (patch 16, gelu_pytorch_tanh, eps 1e-6); a missing
vision_config is LlavaConfig's CLIP-L/336 (SigLIP for llava_onevision); vision_feature_layer -2 and
strategy "default" (llava, llava_next) or -1 and "full" (llava_onevision).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

DT = torch.float64
PREFIXES = ("vision_tower.vision_model.", "model.vision_tower.vision_model.")
PROJ_PREFIXES = ("multi_modal_projector.", "model.multi_modal_projector.")


def vision_config(cfg):
    top = cfg.get("model_type", "llava")
    ov = top == "llava_onevision"
    vc = cfg.get("vision_config")
    if vc is None:
        vc = dict(model_type="siglip_vision_model" if ov else "clip_vision_model", intermediate_size=4096,
                  hidden_size=1024, patch_size=14, image_size=336, num_hidden_layers=24, num_attention_heads=16)
    vc = dict(vc)
    vc.setdefault("model_type", "siglip_vision_model" if ov else "clip_vision_model")
    siglip = vc["model_type"] == "siglip_vision_model"
    defaults = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                    num_channels=3, image_size=224, patch_size=16 if siglip else 32,
                    hidden_act="gelu_pytorch_tanh" if siglip else "quick_gelu",
                    layer_norm_eps=1e-6 if siglip else 1e-5)
    for k, v in defaults.items():
        if vc.get(k) is None:
            vc[k] = v
    layer = cfg.get("vision_feature_layer", -1 if ov else -2)
    strategy = cfg.get("vision_feature_select_strategy", "full" if ov else "default")
    return vc, siglip, layer, strategy


def act(name, x):
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu(x)
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    if name == "silu":
        return F.silu(x)
    raise ValueError("unsupported activation %r" % name)


class Weights:
    def __init__(self, d):
        self.ck = st.Checkpoint(d)

    def has(self, name):
        return name in self.ck

    def __call__(self, name):
        return torch.from_numpy(np.array(self.ck.get(name), dtype=np.float64))


def tower(W, vc, siglip, pixels):
    """All hidden states (list of (n, T, C)) and last_hidden_state / pooled as HF returns them."""
    prefix = next((p for p in PREFIXES if W.has(p + "embeddings.patch_embedding.weight")), None)
    if prefix is None:
        raise SystemExit("no vision tower in the checkpoint")
    g = lambda name: W(prefix + name)  # noqa: E731
    C, Hn, eps = vc["hidden_size"], vc["num_attention_heads"], vc["layer_norm_eps"]
    D = C // Hn
    P = vc["patch_size"]
    x = F.conv2d(pixels, g("embeddings.patch_embedding.weight"),
                 g("embeddings.patch_embedding.bias") if siglip else None, stride=P)
    x = x.flatten(2).transpose(1, 2)  # (n, patches, C)
    n = x.shape[0]
    if not siglip:
        cls = g("embeddings.class_embedding").expand(n, 1, C)
        x = torch.cat([cls, x], dim=1)
    x = x + g("embeddings.position_embedding.weight")[None]
    if not siglip:
        x = F.layer_norm(x, (C,), g("pre_layrnorm.weight"), g("pre_layrnorm.bias"), eps)
    hs = [x]
    T = x.shape[1]
    for l in range(vc["num_hidden_layers"]):
        p = "encoder.layers.%d." % l
        lin = lambda h, m: h @ g(p + m + ".weight").T + g(p + m + ".bias")  # noqa: E731
        r = x
        h = F.layer_norm(x, (C,), g(p + "layer_norm1.weight"), g(p + "layer_norm1.bias"), eps)
        q, k, v = (lin(h, "self_attn.%s_proj" % m).view(n, T, Hn, D).transpose(1, 2) for m in "qkv")
        a = torch.softmax((q @ k.transpose(-1, -2)) * D ** -0.5, dim=-1) @ v
        a = a.transpose(1, 2).reshape(n, T, C)
        x = r + lin(a, "self_attn.out_proj")
        r = x
        h = F.layer_norm(x, (C,), g(p + "layer_norm2.weight"), g(p + "layer_norm2.bias"), eps)
        x = r + lin(act(vc["hidden_act"], lin(h, "mlp.fc1")), "mlp.fc2")
        hs.append(x)
    last, pooled = x, None
    if W.has(prefix + "post_layernorm.weight"):
        post = lambda t: F.layer_norm(t, (C,), g("post_layernorm.weight"), g("post_layernorm.bias"), eps)  # noqa: E731
        if siglip:
            last = post(x)
        else:
            pooled = post(x[:, 0])
    return hs, last, pooled


def select(hs, layer, strategy):
    layers = layer if isinstance(layer, list) else [layer]
    feats = [hs[i] for i in layers]  # python indexing: negative counts from the end, as HF's tuple
    if strategy == "default":
        feats = [f[:, 1:] for f in feats]
    return torch.cat(feats, dim=-1)


def projector(W, cfg, feats):
    prefix = next((p for p in PROJ_PREFIXES if W.has(p + "linear_1.weight")), None)
    if prefix is None:
        raise SystemExit("no multi_modal_projector in the checkpoint")
    bias = cfg.get("multimodal_projector_bias", True)
    h = feats @ W(prefix + "linear_1.weight").T
    if bias:
        h = h + W(prefix + "linear_1.bias")
    h = act(cfg.get("projector_hidden_act", "gelu"), h)
    h = h @ W(prefix + "linear_2.weight").T
    if bias:
        h = h + W(prefix + "linear_2.bias")
    return h


def write(path, t):
    t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--pixels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layer-all", action="store_true")
    ap.add_argument("--proj-out")
    ap.add_argument("--last-out")
    ap.add_argument("--pooled-out")
    a = ap.parse_args(argv)
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    vc, siglip, layer, strategy = vision_config(cfg)
    ch, S = vc["num_channels"], vc["image_size"]
    px = np.fromfile(a.pixels, dtype="<f4")
    if px.size == 0 or px.size % (ch * S * S):
        raise SystemExit("%s: %d floats is not a whole number of (%d, %d, %d) images" % (a.pixels, px.size, ch, S, S))
    pixels = torch.from_numpy(px.astype(np.float64)).view(-1, ch, S, S)
    W = Weights(a.dir)
    with torch.no_grad():
        hs, last, pooled = tower(W, vc, siglip, pixels)
        feats = select(hs, layer, strategy)
        write(a.out, torch.stack(hs) if a.layer_all else feats)
        if a.proj_out:
            write(a.proj_out, projector(W, cfg, feats))
        if a.last_out:
            write(a.last_out, last)
        if a.pooled_out:
            if pooled is None:
                raise SystemExit("--pooled-out: CLIP with post_layernorm only")
            write(a.pooled_out, pooled)


if __name__ == "__main__":
    main()
