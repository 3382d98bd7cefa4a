#!/usr/bin/env python3
"""st_write.py — an independent safetensors writer/reader (numpy + the standard library only) that
tests/test_safetensors.c holds core/safetensors.c against. Not a general tool.

  st_write.py write OUTDIR   writes OUTDIR/single.safetensors, OUTDIR/sharded/ (2 shards + index)
                             and OUTDIR/expect.json = {name: {"dtype", "shape", "values"}} with the
                             values each tensor holds, widened to float64 (for the C side to compare).
  st_write.py read FILE OUT  parses FILE (written by the C writer) and dumps the same kind of JSON.
"""
import json
import os
import struct
import sys

import numpy as np


def to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (as torch)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return r.astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
      "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def encode(dtype, values, shape):
    """(raw little-endian bytes, the values as stored, widened to float64)."""
    if dtype == "BF16":
        bits = to_bf16_bits(np.asarray(values, dtype=np.float32).reshape(shape))
        return bits.astype("<u2").tobytes(), from_bf16_bits(bits).astype(np.float64)
    arr = np.asarray(values).astype(NP[dtype]).reshape(shape)
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes(), arr.astype(np.float64)


def write_file(path, tensors, metadata, order):
    """tensors: name -> (dtype, shape, raw); data laid out in ORDER, header keys in another order."""
    header, blobs, off = {}, [], 0
    for name in order:
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    keys = sorted(header, reverse=True)   # header order unlike both data order and name order
    doc = {}
    if metadata is not None:
        doc["__metadata__"] = metadata
    for k in keys:
        doc[k] = header[k]
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make_tensors(spec):
    out, expect = {}, {}
    for name, dtype, shape, values in spec:
        raw, stored = encode(dtype, values, shape)
        out[name] = (dtype, shape, raw)
        expect[name] = {"dtype": dtype, "shape": list(shape), "values": [float(v) for v in stored.ravel()]}
    return out, expect


def write(outdir):
    rng = np.random.default_rng(1234)
    spec = [
        ("model.embed.weight", "F32", (3, 5), rng.standard_normal(15).astype(np.float32)),
        ("model.layers.0.attn.q.weight", "F16", (4, 3), rng.standard_normal(12) * 3),
        ("model.layers.0.attn.k.weight", "BF16", (2, 3, 2), rng.standard_normal(12) * 100),
        ("model.layers.0.norm.weight", "F64", (4,), rng.standard_normal(4)),
        ("ids", "I32", (7,), [0, 1, -1, 2**31 - 1, -2**31, 12345, -777]),
        ("positions", "I64", (2, 2), [0, -5, 2**40, -2**40]),
        ("bytes", "U8", (5,), [0, 1, 127, 128, 255]),
        ("small", "I8", (3,), [-128, 0, 127]),
        ("halfwords", "I16", (2,), [-32768, 32767]),
        ("mask", "BOOL", (3,), [True, False, True]),
        ("scalar", "F32", (), [2.5]),
        ("empty", "F32", (0, 3), []),
    ]
    tensors, expect = make_tensors(spec)
    os.makedirs(outdir, exist_ok=True)
    order = [s[0] for s in spec]
    order = order[1::2] + order[0::2]     # data order unlike name order and header order
    write_file(os.path.join(outdir, "single.safetensors"), tensors,
               {"format": "pt", "producer": "st_write.py"}, order)

    shard_dir = os.path.join(outdir, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    names = sorted(tensors)
    parts = [names[:5], names[5:]]
    files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for k, (fname, part) in enumerate(zip(files, parts)):
        write_file(os.path.join(shard_dir, fname), {n: tensors[n] for n in part},
                   {"format": "pt", "shard": str(k + 1)}, part)
        for n in part:
            weight_map[n] = fname
    total = sum(len(t[2]) for t in tensors.values())
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(outdir, "expect.json"), "w") as f:
        json.dump(expect, f)


def read(path, out):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0, "header length %d is not a multiple of 8" % n
    text = blob[8:8 + n]
    header = json.loads(text.decode("utf-8"))
    assert text.rstrip(b" ") == text.strip(), "header padding must be trailing spaces"
    data = blob[8 + n:]
    result, spans = {"__metadata__": header.pop("__metadata__", {})}, []
    for name, e in header.items():
        b, en = e["data_offsets"]
        spans.append((b, en))
        raw = data[b:en]
        if e["dtype"] == "BF16":
            vals = from_bf16_bits(np.frombuffer(raw, dtype="<u2"))
        else:
            vals = np.frombuffer(raw, dtype=np.dtype(NP[e["dtype"]]).newbyteorder("<"))
        assert vals.size == int(np.prod(e["shape"])), name
        result[name] = {"dtype": e["dtype"], "shape": e["shape"], "values": [float(v) for v in vals]}
    spans.sort()
    pos = 0
    for b, en in spans:   # the C writer lays tensors out contiguously from 0 to the end of the file
        assert b == pos, "hole or overlap at %d" % b
        pos = en
    assert pos == len(data), "data is %d bytes, tensors cover %d" % (len(data), pos)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
