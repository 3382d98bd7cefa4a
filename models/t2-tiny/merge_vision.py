#!/usr/bin/env python3
"""merge_vision.py LM.safetensors VISION.safetensors OUT.safetensors — a LLaVA checkpoint with the
language model of the first and the vision side (vision_tower.*, multi_modal_projector.*) of the
second, tensors copied byte for byte (same names, dtypes and shapes required). Standard library only."""
import json
import os
import struct
import sys


def read(path):
    try:
        with open(path, "rb") as f:
            b = f.read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        base = 8 + n
        out = {}
        for k, v in h.items():
            if k == "__metadata__":
                continue
            s, e = v["data_offsets"]
            if not 0 <= s <= e <= len(b) - base:
                raise ValueError(f"tensor {k}: data offsets {s}..{e} outside the file")
            out[k] = (v["dtype"], v["shape"], b[base + s:base + e])
        return out
    except (OSError, struct.error, ValueError, KeyError, TypeError) as err:
        sys.exit(f"merge_vision.py: {path}: not a readable safetensors file ({err})")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    lm, vis = read(sys.argv[1]), read(sys.argv[2])
    out, n_vis = {}, 0
    for k, t in lm.items():
        if k.startswith(("vision_tower.", "multi_modal_projector.")):
            if k not in vis or vis[k][:2] != t[:2]:
                sys.exit(f"merge_vision.py: {sys.argv[2]} lacks {k} as {t[0]} {t[1]}")
            out[k], n_vis = vis[k], n_vis + 1
        else:
            out[k] = t
    hdr, off, blobs = {}, 0, []
    for k in sorted(out):
        d, s, raw = out[k]
        hdr[k] = {"dtype": d, "shape": s, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    hdr["__metadata__"] = {"format": "pt"}
    hb = json.dumps(hdr).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = sys.argv[3] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
    os.replace(tmp, sys.argv[3])
    print(f"{sys.argv[3]}: language model of {sys.argv[1]}, vision side ({n_vis} tensors) of {sys.argv[2]}")


main()
