#!/usr/bin/python3
"""Write a random-weight HF checkpoint of a real model shape, fast and with moderate memory.

usage: make_random_model.py OUTDIR --preset qwen2-0.5b|llama-1b|tiny-llama [--dtype F32|F16|BF16]
                            [--tokenizer-from DIR] [--vocab N] [--seed S] [--shards N | --max-shard-size 2GB]

Presets:
  qwen2-0.5b  Qwen2-0.5B shape: hidden 896, 24 layers, 14 heads, 2 kv heads, intermediate 4864,
              vocab 151936, tied, q/k/v bias, rope_theta 1e6, max_pos 32768        (~494M params)
  llama-1b    Llama-3.2-1B shape: hidden 2048, 16 layers, 32 heads, 8 kv heads, intermediate 8192,
              vocab 128256, tied, llama3 rope scaling (factor 32, orig 8192), theta 5e5 (~1.24B)
  tiny-llama  a llama2.c-sized toy: hidden 256, 4 layers, 8 heads, 8 kv heads,
              intermediate 768, vocab 1024, tied, max_pos 2048                      (~3.7M)
Weights ~ N(0, 0.02) (initializer_range), norms 1, biases N(0, 0.02); generated in chunks and streamed
to disk through tests/ref/st.py, so memory stays around one chunk. Prints the parameter count and time.
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import st  # noqa: E402
import make_lm  # noqa: E402

PRESETS = {
    "qwen2-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864,
                       vocab=151936, max_pos=32768, tie=True,
                       extra={"rope_theta": 1000000.0, "bos_token_id": 151643,
                              "eos_token_id": 151643, "sliding_window": 32768,
                              "max_window_layers": 24, "use_sliding_window": False}),
    "llama-1b": dict(arch="llama3", hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192,
                     vocab=128256, max_pos=131072, tie=True,
                     extra={"rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": 128001,
                            "head_dim": 64,
                            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                                             "low_freq_factor": 1.0,
                                             "original_max_position_embeddings": 8192,
                                             "rope_type": "llama3"}}),
    # LLaVA presets: a real vision tower + projector beside a language model ("vision" below).
    "llava-1.5-clip-l336": dict(arch="llama", hidden=4096, layers=1, heads=32, kv_heads=32, intermediate=1024,
                                vocab=32064, max_pos=4096, tie=False, extra={}, vision="clip-l336"),
    "onevision-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864,
                           vocab=152000, max_pos=32768, tie=True,
                           extra={"rope_theta": 1000000.0, "bos_token_id": 151643, "eos_token_id": 151645},
                           vision="siglip-so400m"),
    "tiny-llama": dict(arch="llama", hidden=256, layers=4, heads=8, kv_heads=8, intermediate=768,
                       vocab=1024, max_pos=2048, tie=True, extra={}),
}

# The towers of the LLaVA presets (formats.md): CLIP ViT-L/14-336 (llava-1.5's) and SigLIP-so400m/14-384
# as LLaVA-OneVision stores it (26 layers).
VISION = {
    "clip-l336": dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096,
                      num_hidden_layers=24, num_attention_heads=16, image_size=336, patch_size=14,
                      projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5),
    "siglip-so400m": dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                          num_hidden_layers=26, num_attention_heads=16, image_size=384, patch_size=14,
                          hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False),
}

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
                   "generation_config.json", "chat_template.json", "chat_template.jinja"]

CHUNK = 1 << 23  # elements per generated chunk (32 MiB of f32)


def parse_size(s):
    s = s.strip().upper()
    for suf, m in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3), ("GIB", 2 ** 30), ("MIB", 2 ** 20)):
        if s.endswith(suf):
            return int(float(s[:-len(suf)]) * m)
    return int(s)


def build_config(preset, dtype):
    p = PRESETS[preset]
    tc = make_lm.text_config(p["arch"], p["hidden"], p["layers"], p["heads"], p["kv_heads"],
                             p["intermediate"], p["vocab"], p["max_pos"], p["tie"], dtype)
    tc.update(p["extra"])
    return dict(sorted(tc.items()))


def tokenizer_size(d):
    """Largest token id + 1 declared in tokenizer.json (model vocab + added tokens), or None."""
    path = os.path.join(d, "tokenizer.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    ids = list((tj.get("model") or {}).get("vocab", {}).values()) if isinstance(
        (tj.get("model") or {}).get("vocab"), dict) else []
    ids += [t["id"] for t in tj.get("added_tokens", [])]
    return max(ids) + 1 if ids else None


def llava_config(preset, tc, dtype):
    """config.json and preprocessor_config.json of a LLaVA preset (as the llava-hf checkpoints write them)."""
    vis = PRESETS[preset]["vision"]
    vc = dict(VISION[vis])
    clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    if vis == "clip-l336":
        cfg = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
               "image_token_index": 32000, "projector_hidden_act": "gelu", "vision_feature_layer": -2,
               "vision_feature_select_strategy": "default", "image_seq_length": 576}
        pre = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 336},
               "resample": 3, "do_center_crop": True, "crop_size": {"height": 336, "width": 336},
               "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": clip_mean,
               "image_std": clip_std, "do_convert_rgb": True}
    else:
        pins = [[384 * a, 384 * b] for a in range(1, 7) for b in range(1, 7)]
        cfg = {"architectures": ["LlavaOnevisionForConditionalGeneration"], "model_type": "llava_onevision",
               "image_token_index": 151646, "projector_hidden_act": "gelu", "vision_feature_layer": -1,
               "vision_feature_select_strategy": "full", "vision_aspect_ratio": "anyres_max_9",
               "image_grid_pinpoints": pins, "use_image_newline_parameter": True}
        pre = {"image_processor_type": "LlavaOnevisionImageProcessor", "do_resize": True,
               "size": {"height": 384, "width": 384}, "resample": 3, "do_rescale": True,
               "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
               "do_pad": True, "do_convert_rgb": True, "image_grid_pinpoints": pins}
    cfg.update({"text_config": tc, "vision_config": vc, "torch_dtype": tc["torch_dtype"],
                "tie_word_embeddings": tc["tie_word_embeddings"], "multimodal_projector_bias": True})
    return cfg, pre


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--dtype", default="BF16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--tokenizer-from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=None, help="number of shards (default 1)")
    ap.add_argument("--max-shard-size", default=None, help="e.g. 2GB; overrides --shards")
    ap.add_argument("--vocab", type=int, default=None,
                    help="override the preset's vocab_size (default: the tokenizer's size when "
                         "--tokenizer-from is given and larger than the preset's)")
    a = ap.parse_args(argv)
    if a.vocab is None and a.tokenizer_from:
        n = tokenizer_size(a.tokenizer_from)
        if n and n > PRESETS[a.preset]["vocab"]:
            a.vocab = n
    if a.vocab:
        PRESETS[a.preset] = dict(PRESETS[a.preset], vocab=a.vocab)

    t0 = time.time()
    tc = build_config(a.preset, a.dtype)
    specs = make_lm.canonical_specs(tc, with_lm_head=not tc["tie_word_embeddings"])
    vis = PRESETS[a.preset].get("vision")
    if vis:   # LLaVA layout (new names): the text model under model.language_model., the tower, projector
        import make_llava
        vc = VISION[vis]
        H = tc["hidden_size"]
        specs = [("model.language_model." + n if n != "lm_head.weight" else n, shape, kind)
                 for n, shape, kind in specs]
        specs += [("model.vision_tower.vision_model." + n, shape,
                   "norm" if kind == "ln_w" else "weight") for n, shape, kind in make_llava.vision_specs(vc)]
        specs += [("model.multi_modal_projector.linear_1.weight", (H, vc["hidden_size"]), "weight"),
                  ("model.multi_modal_projector.linear_1.bias", (H,), "weight"),
                  ("model.multi_modal_projector.linear_2.weight", (H, H), "weight"),
                  ("model.multi_modal_projector.linear_2.bias", (H,), "weight")]
        if vis == "siglip-so400m":
            specs.append(("model.image_newline", (H,), "weight"))
        specs = sorted(specs)
    else:
        specs = sorted(("model." + n if n != "lm_head.weight" else n, shape, kind) for n, shape, kind in specs)
    nparams = sum(int(np.prod(s)) for _, s, _ in specs)
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    w = st.ShardedStreamWriter(
        a.outdir, [(n, a.dtype, s) for n, s, _ in specs], n_shards=a.shards,
        max_shard_bytes=parse_size(a.max_shard_size) if a.max_shard_size else None,
        metadata={"format": "pt"})
    std = tc.get("initializer_range", 0.02)
    for name, shape, kind in specs:
        n = int(np.prod(shape))
        done = 0
        while done < n:
            m = min(CHUNK, n - done)
            if kind == "norm":
                x = np.ones(m, np.float32)
            else:
                x = rng.standard_normal(m, dtype=np.float32)
                x *= np.float32(std)
            w.write(x)
            done += m
        if n == 0:
            w.write(np.zeros(0, np.float32))
    w.close()
    cfg = tc
    if vis:
        cfg, pre = llava_config(a.preset, tc, a.dtype)
        with open(os.path.join(a.outdir, "preprocessor_config.json"), "w") as f:
            json.dump(pre, f, indent=2)
            f.write("\n")
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    gen = {"bos_token_id": tc["bos_token_id"], "eos_token_id": tc["eos_token_id"],
           "transformers_version": tc["transformers_version"]}
    with open(os.path.join(a.outdir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    copied = []
    if a.tokenizer_from:
        for fn in TOKENIZER_FILES:
            src = os.path.join(a.tokenizer_from, fn)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(a.outdir, fn))
                copied.append(fn)
        ts = tokenizer_size(a.outdir)
        if ts is not None and ts > tc["vocab_size"]:
            print("warning: tokenizer has ids up to %d but vocab_size is %d" % (ts - 1, tc["vocab_size"]),
                  file=sys.stderr)
    dt = time.time() - t0
    size = sum(os.path.getsize(os.path.join(a.outdir, f)) for f in os.listdir(a.outdir)
               if f.endswith(".safetensors"))
    print("%s: %s, %d parameters (%.1fM), %s, %.2f GB on disk, %.1f s%s"
          % (a.outdir, a.preset, nparams, nparams / 1e6, a.dtype, size / 1e9, dt,
             (", tokenizer files: " + " ".join(copied)) if copied else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
