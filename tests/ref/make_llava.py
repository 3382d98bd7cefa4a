#!/usr/bin/python3
"""Write a random tiny LLaVA-family checkpoint (deterministic per seed): vision tower + projector +
language model, config.json and preprocessor_config.json, as the Hugging Face hub lays them out.

usage: make_llava.py OUTDIR --kind llava15|onevision|next [--dtype F32|F16|BF16] [--seed S]
                     [--layout legacy|new] [--feature-layer=-2 | --feature-layer=-2,-1]
                     [--strategy default|full] [--hidden-act NAME] [--no-post-layernorm] [--shards N]
(write --feature-layer=LIST with '=': argparse reads a bare '-2,-1' as an option)

Kinds (every size tiny; --feature-layer / --strategy / --layout override the kind's choice):
  llava15   LlavaForConditionalGeneration: CLIP ViT (image 56, patch 14 -> 4x4 patches + class token,
            hidden 32, 2 layers, 4 heads, intermediate 64; hidden_act and layer_norm_eps left out of
            config.json so the CLIP defaults quick_gelu / 1e-5 apply) + Llama; legacy names
            (language_model.model.*, language_model.lm_head.weight, vision_tower.vision_model.*,
            multi_modal_projector.linear_{1,2}.*); vision_feature_layer -2, strategy "default";
            CLIPImageProcessor (shortest_edge / crop 56, CLIP mean and std).
  onevision LlavaOnevisionForConditionalGeneration: SigLIP (image 42, patch 14 -> 3x3 patches, no class
            token, conv bias, hidden 32, 3 layers, 4 heads, intermediate 80, gelu_pytorch_tanh, eps 1e-6)
            + Qwen2 (q/k/v biases, lm_head stored); new names (model.language_model.*, lm_head.weight,
            model.vision_tower.vision_model.*, model.multi_modal_projector.*, model.image_newline);
            vision_feature_layer -1, strategy "full", image_grid_pinpoints, anyres_max_9;
            LlavaOnevisionImageProcessor (42x42, mean = std = 0.5, do_pad).
  next      LlavaNextForConditionalGeneration: the llava15 CLIP + Llama with image_grid_pinpoints
            [[56,112],[112,56],[112,112]] and image_newline; legacy names unless --layout new;
            LlavaNextImageProcessor.
Projector: linear_1 (text_hidden, vision_hidden * number of feature layers) and linear_2
(text_hidden, text_hidden), both with biases (multimodal_projector_bias), projector_hidden_act "gelu".

The language-model tensors are those of make_lm.py for the same seed and sizes (drawn from the same
stream); the vision tower, projector and image_newline come from a second stream, so they do not
depend on the text model. --dtype rounds every tensor.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_lm  # noqa: E402
import st  # noqa: E402

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

KINDS = {
    "llava15": dict(arch="llama", layout="legacy", model_type="llava",
                    architecture="LlavaForConditionalGeneration",
                    vision=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=4, image_size=56, patch_size=14,
                                projection_dim=32),
                    feature_layer=-2, strategy="default"),
    "onevision": dict(arch="qwen2", layout="new", model_type="llava_onevision",
                      architecture="LlavaOnevisionForConditionalGeneration",
                      vision=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=80,
                                  num_hidden_layers=3, num_attention_heads=4, image_size=42, patch_size=14,
                                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False),
                      feature_layer=-1, strategy="full"),
    "next": dict(arch="llama", layout="legacy", model_type="llava_next",
                 architecture="LlavaNextForConditionalGeneration",
                 vision=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, image_size=56, patch_size=14,
                             projection_dim=32),
                 feature_layer=-2, strategy="default"),
}


def vision_specs(vc):
    """(canonical name under vision_model., shape, kind) in drawing order."""
    C, I = vc["hidden_size"], vc["intermediate_size"]
    P, ch = vc["patch_size"], vc.get("num_channels", 3)
    clip = vc["model_type"] == "clip_vision_model"
    n_pos = (vc["image_size"] // P) ** 2 + (1 if clip else 0)
    out = []
    if clip:
        out.append(("embeddings.class_embedding", (C,), "class"))
    out.append(("embeddings.patch_embedding.weight", (C, ch, P, P), ("patch", ch * P * P)))
    if not clip:
        out.append(("embeddings.patch_embedding.bias", (C,), "bias"))
    out.append(("embeddings.position_embedding.weight", (n_pos, C), "pos"))
    if clip:
        out += [("pre_layrnorm.weight", (C,), "ln_w"), ("pre_layrnorm.bias", (C,), "bias")]
    for l in range(vc["num_hidden_layers"]):
        p = "encoder.layers.%d." % l
        out += [(p + "layer_norm1.weight", (C,), "ln_w"), (p + "layer_norm1.bias", (C,), "bias")]
        for m in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(p + "self_attn.%s.weight" % m, (C, C), ("lin", C)), (p + "self_attn.%s.bias" % m, (C,), "bias")]
        out += [(p + "layer_norm2.weight", (C,), "ln_w"), (p + "layer_norm2.bias", (C,), "bias"),
                (p + "mlp.fc1.weight", (I, C), ("lin", C)), (p + "mlp.fc1.bias", (I,), "bias"),
                (p + "mlp.fc2.weight", (C, I), ("lin", I)), (p + "mlp.fc2.bias", (C,), "bias")]
    out += [("post_layernorm.weight", (C,), "ln_w"), ("post_layernorm.bias", (C,), "bias")]
    return out


def draw(rng, shape, kind):
    if kind == "ln_w":
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "bias":
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "class":
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "pos":
        return (0.3 * rng.standard_normal(shape)).astype(np.float32)
    name, fan_in = kind  # ("patch" | "lin", fan_in): unit-variance outputs for unit-variance inputs
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def names(layout):
    if layout == "legacy":
        return "vision_tower.vision_model.", "multi_modal_projector.", "image_newline"
    return "model.vision_tower.vision_model.", "model.multi_modal_projector.", "model.image_newline"


def parse_layers(s):
    s = str(s).strip()
    if "," in s or s.startswith("["):
        return [int(x) for x in s.strip("[]").split(",") if x.strip()]
    return int(s)


def make(outdir, kind="llava15", dtype="F32", seed=0, layout=None, feature_layer=None, strategy=None,
         hidden_act=None, post_layernorm=True, shards=1, vocab=None):
    k = KINDS[kind]
    layout = layout or k["layout"]
    feature_layer = k["feature_layer"] if feature_layer is None else feature_layer
    strategy = strategy or k["strategy"]
    vc = dict(k["vision"])
    if hidden_act:
        vc["hidden_act"] = hidden_act
    tie = False  # lm_head stored in every kind (onevision lists it among its tensors)
    tc = make_lm.text_config(k["arch"], tie=tie, dtype=dtype, **({"vocab": vocab} if vocab else {}))
    H, V = tc["hidden_size"], tc["vocab_size"]

    tensors = {}
    rng = np.random.default_rng(seed)  # the text stream: identical to make_lm.py's
    for canon, shape, kd in make_lm.canonical_specs(tc, with_lm_head=True):
        tensors[make_lm.full_name(canon, layout)] = (dtype, make_lm.draw(rng, shape, kd))

    vrng = np.random.default_rng([seed, 1])  # vision tower, projector, image_newline
    vprefix, pprefix, newline = names(layout)
    for canon, shape, kd in vision_specs(vc):
        a = draw(vrng, shape, kd)
        if canon.startswith("post_layernorm") and not post_layernorm:
            continue
        tensors[vprefix + canon] = (dtype, a)
    n_feat = len(feature_layer) if isinstance(feature_layer, list) else 1
    F = vc["hidden_size"] * n_feat
    tensors[pprefix + "linear_1.weight"] = (dtype, draw(vrng, (H, F), ("lin", F)))
    tensors[pprefix + "linear_1.bias"] = (dtype, draw(vrng, (H,), "bias"))
    tensors[pprefix + "linear_2.weight"] = (dtype, draw(vrng, (H, H), ("lin", H)))
    tensors[pprefix + "linear_2.bias"] = (dtype, draw(vrng, (H,), "bias"))
    if kind in ("onevision", "next"):
        tensors[newline] = (dtype, draw(vrng, (H,), "bias"))
    tensors = dict(sorted(tensors.items()))
    os.makedirs(outdir, exist_ok=True)
    st.save_sharded(outdir, tensors, n_shards=shards, metadata={"format": "pt"})

    S = vc["image_size"]
    clip = vc["model_type"] == "clip_vision_model"
    n_tokens = (S // vc["patch_size"]) ** 2 + (1 if clip else 0) - (1 if strategy == "default" else 0)
    cfg = {
        "architectures": [k["architecture"]],
        "ignore_index": -100,
        "image_token_index": V - 1,
        "model_type": k["model_type"],
        "multimodal_projector_bias": True,
        "pad_token_id": 0,
        "projector_hidden_act": "gelu",
        "text_config": tc,
        "tie_word_embeddings": tie,
        "torch_dtype": make_lm.TORCH_DTYPE[dtype],
        "transformers_version": "4.45.0",
        "vision_config": vc,
        "vision_feature_layer": feature_layer,
        "vision_feature_select_strategy": strategy,
    }
    rescale = 1.0 / 255.0
    if kind == "llava15":
        cfg["image_seq_length"] = n_tokens
        pre = {"crop_size": {"height": S, "width": S}, "do_center_crop": True, "do_convert_rgb": True,
               "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
               "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD,
               "processor_class": "LlavaProcessor", "resample": 3, "rescale_factor": rescale,
               "size": {"shortest_edge": S}}
    elif kind == "next":
        pins = [[S, 2 * S], [2 * S, S], [2 * S, 2 * S]]
        cfg.update({"image_grid_pinpoints": pins, "image_seq_length": n_tokens,
                    "use_image_newline_parameter": True})
        pre = {"crop_size": {"height": S, "width": S}, "do_center_crop": True, "do_convert_rgb": True,
               "do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True,
               "image_grid_pinpoints": pins, "image_mean": CLIP_MEAN,
               "image_processor_type": "LlavaNextImageProcessor", "image_std": CLIP_STD,
               "processor_class": "LlavaNextProcessor", "resample": 3, "rescale_factor": rescale,
               "size": {"shortest_edge": S}}
    else:
        pins = [[a * S, b * S] for a in range(1, 4) for b in range(1, 4)]
        cfg.update({"image_grid_pinpoints": pins, "video_token_index": V - 2,
                    "vision_aspect_ratio": "anyres_max_9", "use_image_newline_parameter": True})
        pre = {"do_convert_rgb": True, "do_normalize": True, "do_pad": True, "do_rescale": True,
               "do_resize": True, "image_grid_pinpoints": pins, "image_mean": [0.5, 0.5, 0.5],
               "image_processor_type": "LlavaOnevisionImageProcessor", "image_std": [0.5, 0.5, 0.5],
               "processor_class": "LlavaOnevisionProcessor", "resample": 3, "rescale_factor": rescale,
               "size": {"height": S, "width": S}}
    for name, obj in (("config.json", dict(sorted(cfg.items()))), ("preprocessor_config.json", pre)):
        with open(os.path.join(outdir, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--kind", required=True, choices=sorted(KINDS))
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=["legacy", "new"], default=None)
    ap.add_argument("--feature-layer", default=None, help="vision_feature_layer: an int or a list like -2,-1")
    ap.add_argument("--strategy", choices=["default", "full"], default=None)
    ap.add_argument("--hidden-act", default=None, help="vision_config.hidden_act to write")
    ap.add_argument("--no-post-layernorm", action="store_true", help="leave post_layernorm.* out")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--vocab", type=int, default=None, help="text vocab_size (image token = vocab - 1)")
    a = ap.parse_args(argv)
    make(a.outdir, a.kind, a.dtype, a.seed, a.layout,
         None if a.feature_layer is None else parse_layers(a.feature_layer), a.strategy, a.hidden_act,
         not a.no_post_layernorm, a.shards, a.vocab)


if __name__ == "__main__":
    main()
