#!/usr/bin/env python3
"""image_ref.py — PIL's side of tests/test_image.c (vision/image.c).

  image_ref.py fixtures DIR        write image fixtures and PIL's decode of each (DIR/NAME.rgb, raw
                                   (h, w, 3) uint8) plus the lists the C test walks:
                                     fixtures.txt  NAME W H TOL   decode must equal NAME.rgb within TOL
                                     corrupt.txt   NAME WANT      load must fail, message naming NAME
                                                                  and containing WANT ('-' = nothing)
                                     fuzz.txt      NAME           small files to mutate at random
  image_ref.py check PNG RGB W H   PIL reads PNG (the C writer's output) as exactly the pixels in RGB

The reference is what HF processors see: PIL's Image.open(...).convert("RGB") — alpha dropped, not
composited — after ImageOps.exif_transpose (transformers' load_image applies it; so does t2).
Two documented departures, where the reference is numpy instead of PIL:
  - 16-bit greyscale PNG: PIL opens mode "I" and convert("RGB") clamps at 255; t2 keeps the high
    byte (v >> 8), as PIL itself does for 16-bit RGB / grey+alpha PNGs (checked here too);
  - JPEG: stb's IDCT / chroma upsampling are not libjpeg's, so a few levels of difference are
    allowed (the C test prints the largest).
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

PNG_SIG = b"\x89PNG\r\n\x1a\n"
JPEG_TOL = 12        # max |stb − libjpeg| per channel allowed; the C test prints the actual gap


def pattern(w, h, seed):
    """A photo-ish RGB test image: gradients, a disc, hard edges, a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.25 * min(w, h)) ** 2
    r[disc], g[disc], b[disc] = 240, 30, 60
    b[: h // 5, : w // 4] = 10                       # a dark corner: orientation is visible
    img = np.stack([r, g, b], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_raw(w, h, depth, ctype, rows):
    """A PNG written by hand (PIL cannot write 16-bit RGB): ROWS are the unfiltered scanlines."""
    raw = b"".join(b"\0" + r for r in rows)
    return (PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Out:
    def __init__(self, d):
        self.d = d
        self.fixtures, self.corrupt, self.fuzz = [], [], []

    def path(self, name):
        return os.path.join(self.d, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def ref(self, name, rgb, tol=0):
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        assert rgb.ndim == 3 and rgb.shape[2] == 3, (name, rgb.shape)
        self.write(name + ".rgb", rgb.tobytes())
        self.fixtures.append(f"{name} {rgb.shape[1]} {rgb.shape[0]} {tol}")

    def pil_ref(self, name, tol=0):
        """Reference = PIL's decode of the file as HF sees it."""
        with Image.open(self.path(name)) as im:
            im = ImageOps.exif_transpose(im)
            self.ref(name, np.asarray(im.convert("RGB")), tol)

    def bad(self, name, data, want="-"):
        self.write(name, data)
        self.corrupt.append(f"{name} {want}")

    def finish(self):
        for fn, lines in (("fixtures.txt", self.fixtures), ("corrupt.txt", self.corrupt), ("fuzz.txt", self.fuzz)):
            with open(self.path(fn), "w") as f:
                f.write("\n".join(lines) + "\n")


def save(im, **kw):
    b = io.BytesIO()
    im.save(b, **kw)
    return b.getvalue()


def exif_pil(o):
    ex = Image.Exif()
    ex[0x010F] = "t2"        # Make, Model before Orientation: the tag is not the first entry
    ex[0x0110] = "test rig"
    ex[0x0112] = o
    return ex


def exif_mm(o):
    """Big-endian ("MM") Exif with only the orientation tag, written by hand."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, o, 0) + struct.pack(">I", 0)
    return b"Exif\0\0" + b"MM\0\x2a" + struct.pack(">I", 8) + ifd


def fixtures(d):
    os.makedirs(d, exist_ok=True)
    o = Out(d)
    a = pattern(67, 45, 1)                       # odd sizes: partial JPEG MCUs, BMP row padding
    rgb = Image.fromarray(a, "RGB")
    rng = np.random.default_rng(7)
    alpha = rng.integers(0, 256, a.shape[:2], dtype=np.uint8)
    alpha[:5] = 0                                # fully transparent rows keep their colour
    grey = rgb.convert("L")

    # ---- PNG: every colour type, alpha dropped -----------------------------------------------------
    o.write("rgb.png", save(rgb, format="PNG"))
    o.pil_ref("rgb.png")
    o.write("grey.png", save(grey, format="PNG"))
    o.pil_ref("grey.png")
    la = Image.merge("LA", (grey, Image.fromarray(alpha)))
    o.write("la.png", save(la, format="PNG"))
    o.pil_ref("la.png")
    rgba = Image.fromarray(np.dstack([a, alpha]), "RGBA")
    o.write("rgba.png", save(rgba, format="PNG"))
    o.pil_ref("rgba.png")
    assert (np.asarray(Image.open(o.path("rgba.png")).convert("RGB")) == a).all()   # dropped, not composited
    pal = rgb.quantize(colors=200)
    o.write("p.png", save(pal, format="PNG"))
    o.pil_ref("p.png")
    o.write("p_trns.png", save(pal, format="PNG", transparency=3))
    o.pil_ref("p_trns.png")
    o.write("p4.png", save(rgb.quantize(colors=16), format="PNG", bits=4))
    o.pil_ref("p4.png")
    o.write("bw.png", save(grey.convert("1"), format="PNG"))
    o.pil_ref("bw.png")
    o.write("orient6.png", save(rgb, format="PNG", exif=exif_pil(6)))   # eXIf chunk
    o.pil_ref("orient6.png")

    # 16-bit: grey via PIL (mode I;16), RGB / RGBA / grey+alpha written by hand
    w16 = (np.arange(45 * 67, dtype=np.uint32).reshape(45, 67) * 29 % 65536).astype(np.uint16)
    o.write("grey16.png", save(Image.fromarray(w16, "I;16"), format="PNG"))
    o.ref("grey16.png", np.repeat((w16 >> 8).astype(np.uint8)[..., None], 3, -1))   # see module doc
    rng16 = np.random.default_rng(16)
    for name, ctype, c in (("rgb16.png", 2, 3), ("rgba16.png", 6, 4), ("la16.png", 4, 2)):
        v = rng16.integers(0, 65536, (45, 67, c), dtype=np.uint16)
        o.write(name, png_raw(67, 45, 16, ctype, [r.astype(">u2").tobytes() for r in v]))
        want = (v >> 8).astype(np.uint8)
        want = want[..., :3] if c >= 3 else np.repeat(want[..., :1], 3, -1)
        pil = np.asarray(Image.open(o.path(name)).convert("RGB"))
        assert (pil == want).all(), f"{name}: PIL does not keep the high byte"
        o.ref(name, want)

    # a tall 16-bit RGBA PNG of noise: its IDAT does not compress, the largest honest case for the
    # allocation budget of image.c (16 bytes a pixel + twice the file)
    v = rng16.integers(0, 65536, (3000, 128, 4), dtype=np.uint16)
    raw = b"".join(b"\0" + r.astype(">u2").tobytes() for r in v)
    o.write("noise16.png", PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 128, 3000, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
    o.ref("noise16.png", (v >> 8).astype(np.uint8)[..., :3])

    # ---- JPEG: baseline 4:2:0 / 4:4:4, grey, progressive; EXIF orientation -------------------------
    o.write("base420.jpg", save(rgb, format="JPEG", quality=90))
    o.pil_ref("base420.jpg", JPEG_TOL)
    o.write("base444.jpg", save(rgb, format="JPEG", quality=95, subsampling=0))
    o.pil_ref("base444.jpg", JPEG_TOL)
    o.write("grey.jpg", save(grey, format="JPEG", quality=90))
    o.pil_ref("grey.jpg", JPEG_TOL)
    o.write("prog.jpg", save(rgb, format="JPEG", quality=85, progressive=True))
    o.pil_ref("prog.jpg", JPEG_TOL)
    o.write("prog_opt.jpg", save(rgb, format="JPEG", quality=75, progressive=True, optimize=True, subsampling=0))
    o.pil_ref("prog_opt.jpg", JPEG_TOL)
    big = Image.fromarray(pattern(203, 131, 3), "RGB")
    o.write("prog_big.jpg", save(big, format="JPEG", quality=80, progressive=True))
    o.pil_ref("prog_big.jpg", JPEG_TOL)
    tall = Image.fromarray(pattern(96, 2000, 4), "RGB")
    o.write("prog_tall.jpg", save(tall, format="JPEG", quality=95, progressive=True, subsampling=0))
    o.pil_ref("prog_tall.jpg", JPEG_TOL)
    for k in range(1, 9):
        o.write(f"exif{k}.jpg", save(rgb, format="JPEG", quality=92, exif=exif_pil(k).tobytes()))
        o.pil_ref(f"exif{k}.jpg", JPEG_TOL)
    for k in (3, 6, 7):
        o.write(f"exif_mm{k}.jpg", save(rgb, format="JPEG", quality=92, exif=exif_mm(k)))
        o.pil_ref(f"exif_mm{k}.jpg", JPEG_TOL)
    o.write("exif_bad9.jpg", save(rgb, format="JPEG", quality=92, exif=exif_mm(9)))   # out of range: ignored
    o.pil_ref("exif_bad9.jpg", JPEG_TOL)
    with Image.open(o.path("exif6.jpg")) as im:
        assert ImageOps.exif_transpose(im).size == (45, 67)

    # ---- BMP, GIF, TGA ------------------------------------------------------------------------------
    o.write("rgb.bmp", save(rgb, format="BMP"))
    o.pil_ref("rgb.bmp")
    o.write("rgba.bmp", save(rgba, format="BMP"))
    o.pil_ref("rgba.bmp")
    o.write("grey.bmp", save(grey, format="BMP"))
    o.pil_ref("grey.bmp")
    o.write("p.bmp", save(pal, format="BMP"))
    o.pil_ref("p.bmp")
    o.write("bw.bmp", save(grey.convert("1"), format="BMP"))
    o.pil_ref("bw.bmp")
    o.write("one.gif", save(rgb, format="GIF"))
    o.pil_ref("one.gif")
    frames = [Image.fromarray(pattern(67, 45, s), "RGB") for s in (11, 12, 13)]
    o.write("anim.gif", save(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0))
    with Image.open(o.path("anim.gif")) as im:
        assert im.n_frames == 3
        o.ref("anim.gif", np.asarray(im.convert("RGB")))        # the first frame
    o.write("rgb.tga", save(rgb, format="TGA"))
    o.pil_ref("rgb.tga")
    o.write("rle.tga", save(rgb, format="TGA", compression="tga_rle"))
    o.pil_ref("rle.tga")
    o.write("rgba.tga", save(rgba, format="TGA"))
    o.pil_ref("rgba.tga")
    o.write("grey.tga", save(grey, format="TGA"))
    o.pil_ref("grey.tga")
    o.write("p.tga", save(pal, format="TGA"))
    o.pil_ref("p.tga")
    o.write("tiny.png", save(Image.new("RGB", (1, 1), (1, 2, 3)), format="PNG"))
    o.pil_ref("tiny.png")

    # ---- files that must be refused ----------------------------------------------------------------
    png = open(o.path("rgb.png"), "rb").read()
    for cut in (4, 20, 33, 60, len(png) // 2, len(png) - 13):
        o.bad(f"cut{cut}.png", png[:cut])
    jpg = open(o.path("base420.jpg"), "rb").read()
    sof = jpg.index(b"\xff\xc0")
    o.bad("cut_header.jpg", jpg[:120])
    o.bad("cut_scan.jpg", jpg[: len(jpg) * 3 // 5], "truncated")
    o.bad("cut_noeoi.jpg", jpg[:-2], "truncated")
    pj = open(o.path("prog.jpg"), "rb").read()
    o.bad("cut_prog.jpg", pj[: len(pj) // 2], "truncated")
    gif = open(o.path("one.gif"), "rb").read()
    o.bad("cut.gif", gif[: len(gif) * 2 // 3], "truncated")
    bmp = open(o.path("rgb.bmp"), "rb").read()
    o.bad("cut.bmp", bmp[: len(bmp) - 100], "truncated")
    tga = open(o.path("rgb.tga"), "rb").read()
    o.bad("cut.tga", tga[: len(tga) - 300], "truncated")
    # JPEGs that stb 2.27 would overrun on (2.28 refuses them; image.c checks the first and last)
    dht = jpg.index(b"\xff\xc4")
    j = bytearray(jpg)
    j[dht + 5: dht + 21] = bytes([0] * 12 + [255, 255, 0, 0])       # 510 codes in one table
    o.bad("dht_overflow.jpg", bytes(j), "Huffman table")
    j = bytearray(jpg)
    ncomp = j[sof + 9]
    assert ncomp == 3 and j[sof + 11] == 0x22                         # 4:2:0: Y samples 2x2
    j[sof + 14] = 0x31                                                # Cb 3x1: 2 is no multiple of 3
    o.bad("sampling.jpg", bytes(j))                                   # stb's own check since the 2022 snapshot
    sos = jpg.index(b"\xff\xda")
    j = bytearray(jpg)
    j[sos + 6] = 0x33                                                 # Y uses DC/AC tables 3, never defined
    o.bad("undef_table.jpg", bytes(j), "never defined")
    # a 16x16 PNG whose IDAT inflates to 8 MB: stb's inflater would grow its buffer to fit it all
    bomb = (PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 8_000_000, 9)) + chunk(b"IEND", b""))
    o.bad("bomb.png", bomb, "bomb")
    o.bad("empty.png", b"", "empty")
    o.bad("text.png", b"this is a text file, not a PNG\n")
    noise = bytearray(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    noise[1] = 0x77        # keep it from passing for a TGA header (the one format without magic)
    o.bad("random.jpg", bytes(noise))
    # headers that claim 100000 × 100000 (PNG) and 65000 × 60000 (JPEG): refused by the pixel cap
    huge = (PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    o.bad("huge.png", huge, "100000x100000")
    hj = bytearray(jpg)
    hj[sof + 5: sof + 9] = struct.pack(">HH", 60000, 65000)     # height, width
    o.bad("huge.jpg", bytes(hj), "65000x60000")

    # ---- seeds for random mutation -----------------------------------------------------------------
    small = Image.fromarray(pattern(19, 13, 9), "RGB")
    for name, data in (("s.png", save(small, format="PNG")),
                       ("s_rgba.png", save(small.convert("RGBA"), format="PNG")),
                       ("s.jpg", save(small, format="JPEG", quality=80, exif=exif_pil(6).tobytes())),
                       ("s_prog.jpg", save(small, format="JPEG", quality=80, progressive=True)),
                       ("s.gif", save(small, format="GIF")),
                       ("s.bmp", save(small, format="BMP")),
                       ("s.tga", save(small, format="TGA", compression="tga_rle"))):
        o.write(name, data)
        o.fuzz.append(name)
    o.finish()
    print(f"image_ref: PIL {Image.__version__}, {len(o.fixtures)} fixtures, {len(o.corrupt)} corrupt files, "
          f"{len(o.fuzz)} fuzz seeds in {d}")


def check(png, raw, w, h):
    with Image.open(png) as im:
        got = np.asarray(im.convert("RGB"))
        mode = im.mode
    want = np.frombuffer(open(raw, "rb").read(), np.uint8).reshape(h, w, 3)
    if got.shape != want.shape:
        print(f"image_ref check: {png}: PIL reads {got.shape}, want {want.shape}")
        return 1
    diff = int(np.abs(got.astype(int) - want).max())
    print(f"image_ref check: {png}: PIL mode {mode} {w}x{h}, max abs diff {diff}")
    return 0 if diff == 0 and mode == "RGB" else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fixtures":
        fixtures(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    else:
        sys.exit(__doc__)
