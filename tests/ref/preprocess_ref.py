#!/usr/bin/python3
"""preprocess_ref.py OUT — independent reference for vision/preprocess.c (used by tests/test_preprocess.c).

Re-implements, with PIL (for the resampling itself) and numpy (for padding, cropping, tiling and
normalisation), the steps of transformers' slow image processors as their sources spell them:
  image_transforms.py      resize (numpy → PIL.Image.resize → numpy), get_resize_output_image_size
                           (shortest edge: long side int(size * long / short)), center_crop (floor
                           offsets; zero padding when the crop is larger), rescale (f64 multiply, then
                           f32), normalize (f32 (x - mean) / std)
  image_processing_clip    resize → center_crop → rescale → normalize
  image_processing_llava   do_pad: pad_to_square with int(mean * 255), centred (floor), then CLIP's steps
  image_processing_siglip  resize to exactly (height, width) → rescale → normalize
  image_processing_llava_next / _llava_onevision
                           select_best_resolution (max effective resolution, then least waste),
                           get_patch_output_size (math.ceil on the short side), zero pad centred
                           (divmod), divide_to_patches, the base image resized to a square, then the
                           class's _preprocess on every tile
No code is shared with t2. Writes into OUT:
  cases.json      {"pre": [...], "resize": [...], "pinpoints": [...], "bad": [...]}
  img_<W>x<H>.rgb raw (H, W, 3) uint8 inputs
  <case>/         preprocessor_config.json (+ config.json) for t2_preproc_load
  <case>.u8       (n, 3, h, w) uint8 tiles before rescale;  <case>.f32  (n, 3, h, w) float32 output
  rs_<i>.rgb      expected PIL resizes (H, W, 3)
Usage: preprocess_ref.py OUT
"""
import json
import math
import os
import sys

import numpy as np
from PIL import Image

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
NEXT_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
OV_PINPOINTS = [[h, w] for h in range(384, 2305, 384) for w in range(384, 2305, 384)]


# ---- inputs -------------------------------------------------------------------------------------

def make_image(w, h, seed):
    """Gradients + a sawtooth + a checkerboard block + one-pixel lines + saturated corners + noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.int64)
    img[..., 0] = x * 255 // max(w - 1, 1)
    img[..., 1] = y * 255 // max(h - 1, 1)
    img[..., 2] = ((x + 2 * y) % 64) * 4
    cb = (((x // 7) + (y // 5)) % 2) * 255
    m = (x > w // 4) & (x < w // 2) & (y > h // 4) & (y < h // 2)
    img[m] = cb[m][:, None]
    img[:, w // 3] = [255, 0, 0]
    img[h // 3, :] = [0, 0, 255]
    img[: max(h // 8, 1), : max(w // 8, 1)] = 255
    img[-max(h // 8, 1):, -max(w // 8, 1):] = 0
    img = img + rng.integers(-24, 25, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- transformers' image_transforms, restated -----------------------------------------------------

def pil_resize(arr, h, w, resample):
    return np.array(Image.fromarray(arr, "RGB").resize((w, h), resample=resample))


def shortest_edge_size(h, w, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def center_crop(arr, ch, cw):
    oh, ow = arr.shape[:2]
    top, left = (oh - ch) // 2, (ow - cw) // 2
    if top >= 0 and left >= 0 and top + ch <= oh and left + cw <= ow:
        return arr[top:top + ch, left:left + cw]
    nh, nw = max(ch, oh), max(cw, ow)
    canvas = np.zeros((nh, nw, 3), arr.dtype)
    tp, lp = math.ceil((nh - oh) / 2), math.ceil((nw - ow) / 2)
    canvas[tp:tp + oh, lp:lp + ow] = arr
    top, left = top + tp, left + lp
    return canvas[max(0, top):min(nh, top + ch), max(0, left):min(nw, left + cw)]


def rescale(arr, scale):
    return (arr.astype(np.float64) * scale).astype(np.float32)


def normalize(arr, mean, std):
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return (arr - np.array(mean, arr.dtype)) / np.array(std, arr.dtype)


def pad_to_square(arr, color):
    h, w = arr.shape[:2]
    if h == w:
        return arr
    m = max(h, w)
    out = np.zeros((m, m, 3), arr.dtype)
    out[:, :] = color
    if w > h:
        s = (m - h) // 2
        out[s:s + h] = arr
    else:
        s = (m - w) // 2
        out[:, s:s + w] = arr
    return out


def select_best_resolution(original_size, possible_resolutions):
    oh, ow = original_size
    best_fit, max_eff, min_waste = None, 0, float("inf")
    for height, width in possible_resolutions:
        scale = min(width / ow, height / oh)
        dw, dh = int(ow * scale), int(oh * scale)
        eff = min(dw * dh, ow * oh)
        waste = width * height - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            max_eff, min_waste, best_fit = eff, waste, (height, width)
    return best_fit


def get_patch_output_size(oh, ow, th, tw):
    sw, sh = tw / ow, th / oh
    if sw < sh:
        return min(math.ceil(oh * sw), th), tw
    return th, min(math.ceil(ow * sh), tw)


# ---- the processors, as their preprocess() methods run them ---------------------------------------

def size_dict(v, default_to_square):
    if isinstance(v, dict):
        return v
    if isinstance(v, int):
        return {"height": v, "width": v} if default_to_square else {"shortest_edge": v}
    return {"height": v[0], "width": v[1]}


def tile_steps(arr, c, do_crop):
    """The per-image tail shared by CLIP / LLaVA / NeXT's _preprocess (resize, crop) → uint8 tile."""
    size = size_dict(c["size"], False)
    if c.get("do_resize", True):
        if "shortest_edge" in size:
            h, w = shortest_edge_size(arr.shape[0], arr.shape[1], size["shortest_edge"])
        else:
            h, w = size["height"], size["width"]
        arr = pil_resize(arr, h, w, c.get("resample", 3))
    if do_crop and c.get("do_center_crop", True):
        crop = size_dict(c["crop_size"], True)
        arr = center_crop(arr, crop["height"], crop["width"])
    return arr


def finish(tiles_u8, c, default_mean, default_std):
    out = []
    for t in tiles_u8:
        x = t
        if c.get("do_rescale", True):
            x = rescale(x, c.get("rescale_factor", 1 / 255))
        if c.get("do_normalize", True):
            x = normalize(x, c.get("image_mean", default_mean), c.get("image_std", default_std))
        out.append(np.asarray(x, np.float32).transpose(2, 0, 1))
    u8 = np.stack([t.transpose(2, 0, 1) for t in tiles_u8]).astype(np.uint8)
    return u8, np.stack(out).astype(np.float32)


def run_processor(c, model, img):
    kind = c.get("image_processor_type", c.get("feature_extractor_type"))
    meta = {"grid": [0, 0], "best": [0, 0]}
    aspect = (model or {}).get("image_aspect_ratio", "")
    if kind in ("CLIPImageProcessor", "CLIPFeatureExtractor", "LlavaImageProcessor") and aspect != "anyres":
        arr = img
        pad = (kind == "LlavaImageProcessor" and c.get("do_pad", False)) or aspect == "pad"
        if pad:
            arr = pad_to_square(arr, tuple(int(x * 255) for x in c.get("image_mean", CLIP_MEAN)))
        u8, f = finish([tile_steps(arr, c, True)], c, CLIP_MEAN, CLIP_STD)
        return u8, f, meta
    if kind == "SiglipImageProcessor":
        size = c["size"]
        arr = img
        if aspect == "pad":
            arr = pad_to_square(arr, tuple(int(x * 255) for x in c.get("image_mean", [0.5] * 3)))
        if c.get("do_resize", True):
            arr = pil_resize(arr, size["height"], size["width"], c.get("resample", 3))
        u8, f = finish([arr], c, [0.5] * 3, [0.5] * 3)
        return u8, f, meta
    if kind in ("LlavaNextImageProcessor", "CLIPImageProcessor"):   # CLIP + anyres = original LLaVA-NeXT
        size = size_dict(c["size"], False)
        crop = size_dict(c["crop_size"], True)
        pins = c.get("image_grid_pinpoints") or (model or {}).get("image_grid_pinpoints") or NEXT_PINPOINTS
        base = (size["shortest_edge"],) * 2 if "shortest_edge" in size else (min(size["height"], size["width"]),) * 2
        patch = crop["height"]
        tiles = anyres_tiles(img, pins, base, patch, c.get("resample", 3), meta)
        u8, f = finish([tile_steps(t, c, True) for t in tiles], c, CLIP_MEAN, CLIP_STD)
        return u8, f, meta
    if kind == "LlavaOnevisionImageProcessor":
        size = c["size"]
        st = (size["height"], size["width"]) if "height" in size else (size["shortest_edge"],) * 2
        pins = c.get("image_grid_pinpoints") or OV_PINPOINTS
        tiles = anyres_tiles(img, pins, st, st[0], c.get("resample", 3), meta)
        if c.get("do_resize", True):
            tiles = [pil_resize(t, st[0], st[1], c.get("resample", 3)) for t in tiles]
        u8, f = finish(tiles, c, CLIP_MEAN, CLIP_STD)
        return u8, f, meta
    raise SystemExit(f"reference has no processor {kind}")


def anyres_tiles(img, pins, base, patch, resample, meta):
    oh, ow = img.shape[:2]
    bh, bw = select_best_resolution((oh, ow), pins)
    nh, nw = get_patch_output_size(oh, ow, bh, bw)
    resized = pil_resize(img, nh, nw, resample)
    py, ry = divmod(bh - nh, 2)
    px, rx = divmod(bw - nw, 2)
    padded = np.pad(resized, ((py, py + ry), (px, px + rx), (0, 0)), mode="constant", constant_values=0)
    patches = [padded[i:i + patch, j:j + patch] for i in range(0, bh, patch) for j in range(0, bw, patch)]
    meta["grid"] = [bh // patch, bw // patch]
    meta["best"] = [bh, bw]
    return [pil_resize(img, base[0], base[1], resample)] + patches


# ---- the cases -----------------------------------------------------------------------------------

def clip_cfg(**kw):
    c = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 336},
         "resample": 3, "do_center_crop": True, "crop_size": {"height": 336, "width": 336},
         "do_rescale": True, "rescale_factor": 0.00392156862745098, "do_normalize": True,
         "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "do_convert_rgb": True}
    c.update(kw)
    return c


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sizes = [(640, 480), (333, 500), (1024, 768), (97, 61), (1000, 50), (50, 700), (336, 336)]
    images = {}
    for i, (w, h) in enumerate(sizes):
        images[(w, h)] = make_image(w, h, 1000 + i)
        images[(w, h)].tofile(os.path.join(out, f"img_{w}x{h}.rgb"))

    siglip = {"image_processor_type": "SiglipImageProcessor", "do_resize": True,
              "size": {"height": 384, "width": 384}, "resample": 3, "do_rescale": True,
              "rescale_factor": 0.00392156862745098, "do_normalize": True,
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    nxt = clip_cfg(image_processor_type="LlavaNextImageProcessor", image_grid_pinpoints=NEXT_PINPOINTS,
                   do_pad=True)
    ov = {"image_processor_type": "LlavaOnevisionImageProcessor", "do_resize": True,
          "size": {"height": 384, "width": 384}, "resample": 3, "do_rescale": True,
          "rescale_factor": 0.00392156862745098, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
          "image_std": [0.5, 0.5, 0.5], "do_pad": True, "do_convert_rgb": True,
          "image_grid_pinpoints": OV_PINPOINTS}
    ov_model = {"model_type": "llava_onevision", "vision_aspect_ratio": "anyres_max_9",
                "image_grid_pinpoints": OV_PINPOINTS, "vision_config": {"image_size": 384, "patch_size": 14}}
    all5 = [(640, 480), (333, 500), (1024, 768), (97, 61), (1000, 50)]
    specs = [  # (name, preprocessor_config, model config or None, images)
        ("clip", clip_cfg(), None, all5 + [(50, 700)]),
        ("clip_bilinear", clip_cfg(resample=2), None, [(640, 480), (97, 61)]),
        ("clip_nearest", clip_cfg(resample=0), None, [(640, 480), (97, 61), (333, 500)]),
        ("clip_lanczos", clip_cfg(resample=1), None, [(640, 480)]),
        ("clip_box", clip_cfg(resample=4), None, [(333, 500)]),
        ("clip_hamming", clip_cfg(resample=5), None, [(1024, 768)]),
        ("clip_legacy_int", {"feature_extractor_type": "CLIPFeatureExtractor", "size": 224, "crop_size": 224,
                             "resample": 3, "do_center_crop": True, "do_resize": True,
                             "image_mean": CLIP_MEAN, "image_std": CLIP_STD}, None, [(333, 500)]),
        ("crop_big_noresize", clip_cfg(do_resize=False), None, [(97, 61), (1000, 50)]),
        ("crop_odd", clip_cfg(do_resize=False, crop_size={"height": 223, "width": 150}), None,
         [(333, 500), (640, 480), (97, 61)]),
        ("clip_exact", clip_cfg(size={"height": 300, "width": 200}, crop_size={"height": 224, "width": 224}),
         None, [(640, 480)]),
        ("clip_no_norm", clip_cfg(do_normalize=False), None, [(97, 61)]),
        ("clip_no_rescale", clip_cfg(do_rescale=False), None, [(97, 61)]),
        ("llava_pad", clip_cfg(image_processor_type="LlavaImageProcessor", do_pad=True), None,
         [(640, 480), (333, 500), (1000, 50), (336, 336)]),
        ("orig_llava_pad", clip_cfg(), {"image_aspect_ratio": "pad"}, [(333, 500)]),
        ("siglip", siglip, None, all5),
        ("next", nxt, {"model_type": "llava_next", "image_grid_pinpoints": NEXT_PINPOINTS,
                       "vision_config": {"image_size": 336, "patch_size": 14}}, all5 + [(50, 700), (336, 336)]),
        ("orig_next", clip_cfg(), {"image_aspect_ratio": "anyres", "image_grid_pinpoints": NEXT_PINPOINTS},
         [(640, 480)]),
        ("onevision", ov, ov_model, all5 + [(50, 700)]),
    ]
    pre = []
    for name, cfg, model, imgs in specs:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        json.dump(cfg, open(os.path.join(d, "preprocessor_config.json"), "w"), indent=1)
        if model is not None:
            json.dump(model, open(os.path.join(d, "config.json"), "w"), indent=1)
        for (w, h) in imgs:
            u8, f, meta = run_processor(cfg, model, images[(w, h)])
            tag = f"{name}_{w}x{h}"
            u8.tofile(os.path.join(out, tag + ".u8"))
            f.tofile(os.path.join(out, tag + ".f32"))
            std = cfg.get("image_std", [0.5] * 3 if "Siglip" in cfg.get("image_processor_type", "") else CLIP_STD)
            pre.append({"name": tag, "dir": name, "image": f"img_{w}x{h}.rgb", "w": w, "h": h,
                        "n": int(u8.shape[0]), "th": int(u8.shape[2]), "tw": int(u8.shape[3]),
                        "grid": meta["grid"], "best": meta["best"], "min_std": float(min(std)),
                        "rescale": float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
                        "norm": bool(cfg.get("do_normalize", True))})

    resize = []
    rs_specs = [((640, 480), (336, 252)), ((97, 61), (336, 211)), ((1000, 50), (333, 17)),
                ((333, 500), (500, 333)), ((1024, 768), (1024, 300)), ((50, 700), (7, 700)),
                ((336, 336), (1, 1)), ((97, 61), (2304, 1728))]
    for i, ((w, h), (ow, oh)) in enumerate(rs_specs):
        for r in (0, 1, 2, 3, 4, 5):
            if (ow, oh) == (2304, 1728) and r != 3:
                continue
            res = pil_resize(images[(w, h)], oh, ow, r)
            fn = f"rs_{len(resize)}.rgb"
            res.tofile(os.path.join(out, fn))
            resize.append({"image": f"img_{w}x{h}.rgb", "w": w, "h": h, "ow": ow, "oh": oh, "resample": r,
                           "file": fn})

    rng = np.random.default_rng(7)
    dims = [(1, 1), (1, 5000), (5000, 1), (336, 336), (336, 672), (672, 336), (1008, 336), (383, 1151),
            (768, 1024), (1024, 768), (2304, 2304), (4000, 3000), (61, 97), (50, 1000), (500, 500),
            (385, 385), (337, 673), (767, 1153), (100, 1000), (1000, 100), (1, 2), (3, 7)]
    for _ in range(400):
        ar = math.exp(rng.uniform(-3, 3))
        area = math.exp(rng.uniform(math.log(100), math.log(1.6e7)))
        h = max(1, int(math.sqrt(area / ar)))
        w = max(1, int(math.sqrt(area * ar)))
        dims.append((h, w))
    pin = []
    for set_name, pins in (("next", NEXT_PINPOINTS), ("onevision", OV_PINPOINTS)):
        for (h, w) in dims:
            bh, bw = select_best_resolution((h, w), pins)
            fh, fw = get_patch_output_size(h, w, bh, bw)
            pin.append({"set": set_name, "h": h, "w": w, "best": [bh, bw], "fit": [fh, fw]})

    bad = []

    def bad_case(name, cfg, want, model=None, write_pp=True):
        d = os.path.join(out, "bad_" + name)
        os.makedirs(d, exist_ok=True)
        if write_pp:
            with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
                f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        if model is not None:
            json.dump(model, open(os.path.join(d, "config.json"), "w"))
        bad.append({"dir": "bad_" + name, "want": want})

    no_size = clip_cfg()
    del no_size["size"]
    bad_case("no_size", no_size, "size")
    bad_case("zero_crop", clip_cfg(crop_size={"height": 0, "width": 0}), "crop_size")
    no_crop = clip_cfg()
    del no_crop["crop_size"]
    bad_case("no_crop", no_crop, "crop_size")
    bad_case("resample_7", clip_cfg(resample=7), "resample")
    bad_case("resample_str", clip_cfg(resample="bicubic"), "resample")
    bad_case("unknown_type", clip_cfg(image_processor_type="Qwen2VLImageProcessor"), "image_processor_type")
    bad_case("zero_std", clip_cfg(image_std=[0.2, 0.0, 0.2]), "image_std")
    bad_case("mean_len", clip_cfg(image_mean=[0.5, 0.5]), "image_mean")
    bad_case("neg_size", clip_cfg(size={"shortest_edge": -3}), "size")
    bad_case("size_keys", clip_cfg(size={"longest_edge": 336}), "size")
    bad_case("pin_multiple", dict(nxt, image_grid_pinpoints=[[336, 600]]), "image_grid_pinpoints")
    bad_case("pin_string", dict(nxt, image_grid_pinpoints="(1x1),...,(6x6)"), "image_grid_pinpoints")
    bad_case("pin_empty", dict(nxt, image_grid_pinpoints=[]), "image_grid_pinpoints")
    bad_case("pin_disagree", nxt, "image_grid_pinpoints", model={"image_grid_pinpoints": [[336, 336]]})
    bad_case("tile_vs_vit", nxt, "image_size", model={"vision_config": {"image_size": 224}})
    bad_case("aspect", clip_cfg(), "image_aspect_ratio", model={"image_aspect_ratio": "stretch"})
    bad_case("siglip_short", dict(siglip, size={"shortest_edge": 384}), "size")
    bad_case("syntax", "{\"size\": ", "preprocessor_config.json")
    bad_case("missing", None, "preprocessor_config.json", write_pp=False)

    json.dump({"pre": pre, "resize": resize, "pinpoints": pin, "bad": bad},
              open(os.path.join(out, "cases.json"), "w"), indent=0)
    print(f"preprocess_ref: {len(pre)} processor cases, {len(resize)} resizes, {len(pin)} pinpoint cases, "
          f"{len(bad)} bad configs")


if __name__ == "__main__":
    main()
