#!/usr/bin/python3
"""Write a random tiny Hugging Face style Llama / Qwen2 / Mistral checkpoint (deterministic per seed).

usage: make_lm.py OUTDIR [--arch llama|llama3|qwen2|mistral] [--layout plain|legacy|new]
                  [--dtype F32|F16|BF16] [--shards N] [--seed S] [--hidden 64] [--layers 2]
                  [--heads 4] [--kv-heads 2] [--intermediate 96] [--vocab 300] [--max-pos 256]
                  [--tie 0|1] [--head-dim D] [--rope-theta T]

Layouts:
  plain  : model.embed_tokens.weight, model.layers.N.*, model.norm.weight, lm_head.weight
           config.json = the text config (LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM)
  legacy : language_model.model.* + language_model.lm_head.weight, LLaVA config.json
  new    : model.language_model.* + lm_head.weight, LLaVA config.json
No vision weights are written (the LLaVA config still carries a small vision_config).

The weight values depend only on (seed, sizes, arch): the same seed gives identical weights in every
layout / shard count / tie setting (lm_head is drawn last), and --dtype only rounds them.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def text_config(arch, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=96, vocab=300,
                max_pos=256, tie=None, dtype="F32", head_dim=None, rope_theta=None):
    if tie is None:
        tie = arch == "qwen2"
    common = {
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": max_pos,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "tie_word_embeddings": bool(tie),
        "torch_dtype": TORCH_DTYPE[dtype],
        "transformers_version": "4.45.0",
        "use_cache": True,
        "vocab_size": vocab,
    }
    if arch in ("llama", "llama3"):
        c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
             "attention_bias": False, "mlp_bias": False, "pretraining_tp": 1,
             "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
             "rope_theta": 10000.0, "rope_scaling": None}
        if arch == "llama3":
            # original_max 64 with head_dim 16 / theta 5e5 puts one frequency in each regime:
            # wavelen 6.3 (< 16: kept), 32.5 (16..64: smoothed), >= 168 (> 64: divided by 8)
            c["rope_theta"] = 500000.0
            c["rope_scaling"] = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 64, "rope_type": "llama3"}
            c["eos_token_id"] = [2, 3]  # Llama-3.1-Instruct style list
    elif arch == "qwen2":
        c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
             "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2,
             "rope_theta": 10000.0, "sliding_window": max_pos, "use_sliding_window": False,
             "max_window_layers": layers}
    elif arch == "mistral":
        c = {"architectures": ["MistralForCausalLM"], "model_type": "mistral",
             "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
             "rope_theta": 10000.0, "sliding_window": None}
    else:
        raise ValueError("unknown arch %r" % arch)
    c.update(common)
    if head_dim is not None:
        c["head_dim"] = int(head_dim)
    if rope_theta is not None:
        c["rope_theta"] = float(rope_theta)
    return dict(sorted(c.items()))


def llava_config(tc, dtype):
    vocab = tc["vocab_size"]
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "ignore_index": -100,
        "image_seq_length": 4,
        "image_token_index": vocab - 1,
        "model_type": "llava",
        "pad_token_id": 0,
        "projector_hidden_act": "gelu",
        "text_config": tc,
        "tie_word_embeddings": tc["tie_word_embeddings"],
        "torch_dtype": TORCH_DTYPE[dtype],
        "transformers_version": "4.45.0",
        "vision_config": {
            "hidden_size": 32, "image_size": 28, "intermediate_size": 64,
            "model_type": "clip_vision_model", "num_attention_heads": 2, "num_hidden_layers": 1,
            "patch_size": 14, "projection_dim": 32, "vocab_size": 32000},
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
    }


def canonical_specs(tc, with_lm_head):
    """(canonical name without prefix, shape, kind) in drawing order."""
    H = tc["hidden_size"]
    nh = tc["num_attention_heads"]
    kv = tc["num_key_value_heads"]
    hd = tc.get("head_dim") or H // nh
    I = tc["intermediate_size"]
    V = tc["vocab_size"]
    qkv_bias = tc["model_type"] == "qwen2" or tc.get("attention_bias", False)
    out = [("embed_tokens.weight", (V, H), "embed")]
    for l in range(tc["num_hidden_layers"]):
        p = "layers.%d." % l
        out += [(p + "input_layernorm.weight", (H,), "norm"),
                (p + "self_attn.q_proj.weight", (nh * hd, H), "attn"),
                (p + "self_attn.k_proj.weight", (kv * hd, H), "attn"),
                (p + "self_attn.v_proj.weight", (kv * hd, H), "attn"),
                (p + "self_attn.o_proj.weight", (H, nh * hd), "attn_o")]
        if qkv_bias:
            out += [(p + "self_attn.q_proj.bias", (nh * hd,), "bias"),
                    (p + "self_attn.k_proj.bias", (kv * hd,), "bias"),
                    (p + "self_attn.v_proj.bias", (kv * hd,), "bias")]
        if tc.get("attention_bias", False):
            out += [(p + "self_attn.o_proj.bias", (H,), "bias")]
        out += [(p + "post_attention_layernorm.weight", (H,), "norm"),
                (p + "mlp.gate_proj.weight", (I, H), "mlp"),
                (p + "mlp.up_proj.weight", (I, H), "mlp"),
                (p + "mlp.down_proj.weight", (H, I), "mlp_down")]
    out.append(("norm.weight", (H,), "norm"))
    if with_lm_head:
        out.append(("lm_head.weight", (V, H), "lm_head"))
    return out


STD = {"embed": 0.1, "attn": 0.08, "attn_o": 0.06, "bias": 0.1, "mlp": 0.08, "mlp_down": 0.06,
       "lm_head": 0.1}


def draw(rng, shape, kind):
    if kind == "norm":
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    return (STD[kind] * rng.standard_normal(shape)).astype(np.float32)


def full_name(canon, layout):
    if canon == "lm_head.weight":
        return {"plain": "lm_head.weight", "legacy": "language_model.lm_head.weight",
                "new": "lm_head.weight"}[layout]
    return {"plain": "model.", "legacy": "language_model.model.",
            "new": "model.language_model."}[layout] + canon


def make(outdir, arch="llama", layout="plain", dtype="F32", shards=1, seed=0, hidden=64, layers=2,
         heads=4, kv_heads=2, intermediate=96, vocab=300, max_pos=256, tie=None, head_dim=None,
         rope_theta=None):
    if layout not in ("plain", "legacy", "new"):
        raise ValueError("layout %r" % layout)
    tc = text_config(arch, hidden, layers, heads, kv_heads, intermediate, vocab, max_pos, tie,
                     dtype, head_dim, rope_theta)
    if heads % kv_heads:
        raise ValueError("heads must be a multiple of kv heads")
    rng = np.random.default_rng(seed)
    tensors = {}
    for canon, shape, kind in canonical_specs(tc, with_lm_head=True):
        a = draw(rng, shape, kind)
        if canon == "lm_head.weight" and tc["tie_word_embeddings"]:
            continue
        tensors[full_name(canon, layout)] = (dtype, a)
    tensors = dict(sorted(tensors.items()))  # data sorted by name, as safetensors does
    os.makedirs(outdir, exist_ok=True)
    st.save_sharded(outdir, tensors, n_shards=shards, metadata={"format": "pt"})
    cfg = tc if layout == "plain" else llava_config(tc, dtype)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--arch", default="llama", choices=["llama", "llama3", "qwen2", "mistral"])
    ap.add_argument("--layout", default="plain", choices=["plain", "legacy", "new"])
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=96)
    ap.add_argument("--vocab", type=int, default=300)
    ap.add_argument("--max-pos", type=int, default=256)
    ap.add_argument("--tie", type=int, choices=[0, 1], default=None,
                    help="tie lm_head to the embeddings (default: 1 for qwen2, else 0)")
    ap.add_argument("--head-dim", type=int, default=None, help="explicit head_dim in config.json")
    ap.add_argument("--rope-theta", type=float, default=None)
    a = ap.parse_args(argv)
    make(a.outdir, a.arch, a.layout, a.dtype, a.shards, a.seed, a.hidden, a.layers, a.heads,
         a.kv_heads, a.intermediate, a.vocab, a.max_pos, None if a.tie is None else bool(a.tie),
         a.head_dim, a.rope_theta)


if __name__ == "__main__":
    main()
