#!/usr/bin/python3
"""llava_ref.py DIR IMAGE --tokens IDS --out LOGITS [--rows-out ROWS] — a whole LLaVA forward, independently of t2.

IMAGE is decoded by PIL (convert("RGB")), preprocessed by preprocess_ref.py (PIL + numpy, the HF
processors' steps), encoded by vit_ref.py (torch f64 CLIP / SigLIP tower, feature selection,
projector), packed as transformers' LLaVA-NeXT / OneVision pack_image_features does (written here
from modeling_llava_next.py / modeling_llava_onevision.py: grid view + permute, unpad_image,
anyres_max_N bilinear downsampling with torch's interpolate, image_newline per row, base tile first),
and spliced at the one image-token id in IDS; lm_ref.py's torch f64 language model gives the logits.
Writes LOGITS (T, vocab) and ROWS (n_rows, hidden) as raw little-endian f32.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_ref  # noqa: E402
import preprocess_ref  # noqa: E402
import vit_ref  # noqa: E402


def unpad_image(t, original_size):
    oh, ow = original_size
    ch, cw = t.shape[1:]
    if ow / oh > cw / ch:
        new_h = int(round(oh * (cw / ow), 7))
        pad = (ch - new_h) // 2
        return t[:, pad:ch - pad, :]
    new_w = int(round(ow * (ch / oh), 7))
    pad = (cw - new_w) // 2
    return t[:, :, pad:cw - pad]


def pack(cfg, W, feats, grid, orig, onevision):
    """feats (n_tiles, T, H) projected → (rows, H) as HF's pack_image_features."""
    nl_name = next((n for n in ("image_newline", "model.image_newline") if W.has(n)), None)
    newline = W(nl_name) if nl_name else None
    if feats.shape[0] == 1:
        f = feats[0]
        return torch.cat([f, newline[None]], 0) if newline is not None and cfg["model_type"] != "llava" else f
    side = cfg["vision_config"]["image_size"] // cfg["vision_config"]["patch_size"]
    base, f = feats[0], feats[1:]
    rows, cols = grid
    f = f.view(rows, cols, side, side, -1).permute(4, 0, 2, 1, 3).contiguous()
    f = f.flatten(1, 2).flatten(2, 3)
    f = unpad_image(f, orig)
    if onevision:
        max_n = int(cfg.get("vision_aspect_ratio", "anyres_max_9").replace("anyres_max_", ""))
        c, h, w = f.shape
        ratio = math.sqrt(h * w / (max_n * side ** 2))
        if ratio > 1.1:
            f = torch.nn.functional.interpolate(f[None], [int(h // ratio), int(w // ratio)], mode="bilinear")[0]
    if newline is not None:
        f = torch.cat((f, newline[:, None, None].expand(*f.shape[:-1], 1)), dim=-1)
    f = f.flatten(1, 2).transpose(0, 1)
    return torch.cat((base, f), 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("image")
    ap.add_argument("--tokens", help="ids with one image-token id")
    ap.add_argument("--chat", nargs=2, metavar=("TEMPLATE", "QUESTION"),
                    help="render '<image>\\nQUESTION' as a user message through a Jinja template and encode it "
                         "with tok_ref, each text segment around '<image>' on its own")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows-out")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    pre = json.load(open(os.path.join(a.dir, "preprocessor_config.json")))
    img = np.asarray(Image.open(a.image).convert("RGB"))
    _, pixels, meta = preprocess_ref.run_processor(pre, cfg, img)
    W = vit_ref.Weights(a.dir)
    vc, siglip, layer, strategy = vit_ref.vision_config(cfg)
    with torch.no_grad():
        hs, _, _ = vit_ref.tower(W, vc, siglip, torch.from_numpy(pixels.astype(np.float64)))
        feats = vit_ref.projector(W, cfg, vit_ref.select(hs, layer, strategy))
        rows = pack(cfg, W, feats, meta["grid"], img.shape[:2], cfg["model_type"] == "llava_onevision")
    img_tok = cfg.get("image_token_index", cfg.get("image_token_id"))
    if a.chat:
        import jinja2
        import tok_ref
        tok = tok_ref.Ref(a.dir)
        tcfg = json.load(open(os.path.join(a.dir, "tokenizer_config.json")))
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        text = env.from_string(open(a.chat[0]).read()).render(
            messages=[{"role": "user", "content": "<image>\n" + a.chat[1]}], add_generation_prompt=True,
            bos_token=tcfg["bos_token"], eos_token=tcfg["eos_token"])
        before, after = text.split("<image>")
        tokens = tok.encode(before, False, True) + [img_tok] + tok.encode(after, False, True)
    else:
        tokens = [int(t) for t in a.tokens.split(",")]
    k = tokens.index(img_tok)
    seq = tokens[:k] + [img_tok] * rows.shape[0] + tokens[k + 1:]
    embeds = {k + i: rows[i].numpy() for i in range(rows.shape[0])}
    lg, _ = lm_ref.Model(a.dir).forward(seq, embeds)
    lg.detach().double().numpy().astype("<f4").tofile(a.out)
    if a.rows_out:
        rows.detach().double().numpy().astype("<f4").tofile(a.rows_out)
    print(json.dumps({"positions": len(seq), "rows": int(rows.shape[0]), "grid": meta["grid"]}))


if __name__ == "__main__":
    main()
