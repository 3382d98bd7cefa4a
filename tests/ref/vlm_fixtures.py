#!/usr/bin/python3
"""vlm_fixtures.py — fixtures for tests/test_vlm.c.

  images WORK            wide.png (97x61), tall.png (40x120), big.png (300x170): noise + gradients
                         + edges; corrupt.png (a PNG signature followed by junk)
  edit CONFIG KEY=VALUE  set a top-level string field of a config.json
  chatmodel DIR WORK     a llava15 checkpoint whose vocabulary is the Llama-3-style test tokenizer's,
                         with that tokenizer copied in
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    a = (a + rng.integers(-40, 40, a.shape)).clip(0, 255).astype(np.uint8)
    a[h // 3:h // 2, :, :] = [250, 10, 10]   # a sharp band
    return Image.fromarray(a)


def main():
    cmd = sys.argv[1]
    if cmd == "images":
        work = sys.argv[2]
        image(97, 61, 1).save(os.path.join(work, "wide.png"))
        image(40, 120, 2).save(os.path.join(work, "tall.png"))
        image(300, 170, 3).save(os.path.join(work, "big.png"))
        with open(os.path.join(work, "corrupt.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif cmd == "edit":
        path, kv = sys.argv[2], sys.argv[3]
        k, v = kv.split("=", 1)
        cfg = json.load(open(path))
        cfg[k] = v
        json.dump(cfg, open(path, "w"), indent=2)
    elif cmd == "chatmodel":
        d, work = sys.argv[2], sys.argv[3]
        fx = os.path.join(work, "tok-fixtures")
        subprocess.run([sys.executable, os.path.join(HERE, "tok_fixtures.py"), fx], check=True,
                       stdout=subprocess.DEVNULL)
        tj = json.load(open(os.path.join(fx, "llama3", "tokenizer.json")))
        vocab = max(list(tj["model"]["vocab"].values()) + [t["id"] for t in tj["added_tokens"]]) + 1
        import make_llava
        make_llava.make(d, "llava15", vocab=vocab)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(fx, "llama3", f), d)
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
