#!/usr/bin/python3
"""Tiny safetensors reader/writer in numpy (independent reference, written from the format spec).

File layout: u64 little-endian N, then N bytes of UTF-8 JSON
  {name: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}}
padded with spaces so that 8 + N is a multiple of 8, then the tensor data: little-endian, C order,
offsets relative to the data start, contiguous without holes.
Sharded checkpoints: model-0000K-of-0000N.safetensors + model.safetensors.index.json
  {"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}.

BF16 has no numpy dtype: it is stored/returned as uint16 bit patterns (raw) or widened to float32.

API
  read_header(path) -> (header_dict_without_metadata, metadata, data_start)
  SafeFile(path): .keys(), .metadata, .dtype(n), .shape(n), .raw(n), .get(n)
  Checkpoint(dir_or_file): same over a directory (index.json, model.safetensors, or *.safetensors)
  load(path) -> {name: array} (BF16 widened to f32)
  save(path, {name: array | (dtype, array)}, metadata=None)
  save_sharded(outdir, tensors, n_shards=1 | max_shard_bytes=..., metadata=None)
  StreamWriter / ShardedStreamWriter: declare (name, dtype, shape) up front, then write data in
  chunks (in declaration order) without holding whole tensors in memory.
  to_storage(dtype, array) / f32_to_bf16_bits / bf16_bits_to_f32
"""
import json
import os
import struct

import numpy as np

# dtype name -> (numpy storage dtype, element size)
DTYPES = {
    "F64": (np.dtype("<f8"), 8),
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),  # raw bit patterns
    "I64": (np.dtype("<i8"), 8),
    "I32": (np.dtype("<i4"), 4),
    "I16": (np.dtype("<i2"), 2),
    "I8": (np.dtype("i1"), 1),
    "U8": (np.dtype("u1"), 1),
    "BOOL": (np.dtype("?"), 1),
}
_NP_TO_ST = {
    np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
    np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}
MAX_HEADER = 100 * 1000 * 1000
INDEX_NAME = "model.safetensors.index.json"


# ----------------------------------------------------------------------------- BF16 helpers
def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bit patterns, round to nearest even; NaN stays NaN (quiet)."""
    a = np.array(a, dtype=np.float32, order="C", copy=False)
    u = a.view(np.uint32)
    lsb = (u >> 16) & np.uint32(1)
    r = ((u + np.uint32(0x7FFF) + lsb) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r[nan] = ((u[nan] >> 16) | np.uint32(0x40)).astype(np.uint16)
    return r


def bf16_bits_to_f32(b):
    b = np.array(b, dtype=np.uint16, order="C", copy=False)
    return (b.astype(np.uint32) << 16).view(np.float32)


def to_storage(dtype, arr):
    """Convert an array to the storage numpy array for safetensors dtype `dtype`."""
    if dtype not in DTYPES:
        raise ValueError("unsupported dtype %r" % dtype)
    arr = np.asarray(arr)
    if dtype == "BF16":
        if arr.dtype == np.uint16:  # already bit patterns
            return np.array(arr, order="C", copy=False)
        return f32_to_bf16_bits(arr.astype(np.float32, copy=False)).reshape(arr.shape)
    return np.array(arr, dtype=DTYPES[dtype][0], order="C", copy=False)


def _norm_item(v):
    """Accept array or (dtype, array); return (dtype, storage array)."""
    if isinstance(v, tuple):
        dt, a = v
        return dt, to_storage(dt, a)
    a = np.asarray(v)
    if a.dtype not in _NP_TO_ST:
        raise ValueError("cannot infer safetensors dtype of numpy %s; pass (dtype, array)" % a.dtype)
    dt = _NP_TO_ST[a.dtype]
    return dt, to_storage(dt, a)


def _nbytes(dtype, shape):
    return int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype][1] if len(shape) else DTYPES[dtype][1]


# ----------------------------------------------------------------------------- header
def _build_header(specs, metadata):
    """specs: list of (name, dtype, shape) in data order -> (header bytes incl. u64 + padding, sizes)."""
    hdr = {}
    if metadata:
        hdr["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    seen = set()
    for name, dt, shape in specs:
        if name in seen:
            raise ValueError("duplicate tensor %r" % name)
        if name == "__metadata__":
            raise ValueError("reserved name")
        seen.add(name)
        n = _nbytes(dt, shape)
        hdr[name] = {"dtype": dt, "shape": [int(s) for s in shape], "data_offsets": [off, off + n]}
        off += n
    js = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    pad = (-(8 + len(js))) % 8
    js += b" " * pad
    return struct.pack("<Q", len(js)) + js, off


def read_header(path, strict=True):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("%s: too short" % path)
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER:
            raise ValueError("%s: header too large (%d)" % (path, n))
        js = f.read(n)
        if len(js) != n:
            raise ValueError("%s: truncated header" % path)
    def hook(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("%s: duplicate keys in header" % path)
        return dict(pairs)

    hdr = json.loads(js.decode("utf-8"), object_pairs_hook=hook)
    meta = hdr.pop("__metadata__", None) or {}
    data_start = 8 + n
    size = os.path.getsize(path)
    ranges = []
    for name, info in hdr.items():
        dt = info["dtype"]
        if dt not in DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        b, e = info["data_offsets"]
        if e - b != _nbytes(dt, info["shape"]):
            raise ValueError("%s: tensor %s size mismatch" % (path, name))
        ranges.append((b, e, name))
    ranges.sort()
    if strict:
        pos = 0
        for b, e, name in ranges:
            if b != pos:
                raise ValueError("%s: hole or overlap before %s" % (path, name))
            pos = e
        if data_start + pos != size:
            raise ValueError("%s: data length %d does not match file (%d)" % (path, pos, size - data_start))
    elif ranges and data_start + ranges[-1][1] > size:
        raise ValueError("%s: truncated data" % path)
    return hdr, meta, data_start


# ----------------------------------------------------------------------------- reading
class SafeFile:
    def __init__(self, path, strict=True):
        self.path = path
        self.header, self.metadata, self.data_start = read_header(path, strict)
        self._mm = None

    def _map(self):
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._mm

    def keys(self):
        return list(self.header.keys())

    def __contains__(self, name):
        return name in self.header

    def dtype(self, name):
        return self.header[name]["dtype"]

    def shape(self, name):
        return tuple(self.header[name]["shape"])

    def raw(self, name):
        """Storage array (BF16 as uint16), a read-only memory-mapped view."""
        info = self.header[name]
        b, e = info["data_offsets"]
        buf = self._map()[self.data_start + b:self.data_start + e]
        return buf.view(DTYPES[info["dtype"]][0]).reshape(info["shape"])

    def get(self, name):
        """Array with BF16 widened to float32, F16 kept as float16; a fresh copy."""
        a = self.raw(name)
        if self.dtype(name) == "BF16":
            return bf16_bits_to_f32(a).reshape(a.shape)
        return np.array(a)


class Checkpoint:
    """All tensors of a model directory (sharded via index.json, single file, or several files)."""

    def __init__(self, path):
        self.files = {}
        self.where = {}
        if os.path.isfile(path):
            names = [path]
            base = os.path.dirname(path)
        else:
            base = path
            idx = os.path.join(path, INDEX_NAME)
            if os.path.exists(idx):
                with open(idx) as f:
                    wm = json.load(f)["weight_map"]
                names = sorted(set(os.path.join(path, v) for v in wm.values()))
            elif os.path.exists(os.path.join(path, "model.safetensors")):
                names = [os.path.join(path, "model.safetensors")]
            else:
                names = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".safetensors"))
            if not names:
                raise FileNotFoundError("no safetensors in %s" % path)
        self.base = base
        self.metadata = {}
        for n in names:
            sf = SafeFile(n)
            self.files[n] = sf
            self.metadata.update(sf.metadata)
            for k in sf.keys():
                if k in self.where:
                    raise ValueError("tensor %s in two files" % k)
                self.where[k] = sf

    def keys(self):
        return list(self.where.keys())

    def __contains__(self, name):
        return name in self.where

    def dtype(self, name):
        return self.where[name].dtype(name)

    def shape(self, name):
        return self.where[name].shape(name)

    def raw(self, name):
        return self.where[name].raw(name)

    def get(self, name):
        return self.where[name].get(name)


def load(path):
    c = Checkpoint(path)
    return {k: c.get(k) for k in c.keys()}


# ----------------------------------------------------------------------------- writing
class StreamWriter:
    """Write one .safetensors file: declare specs, then write() chunks in declaration order."""

    def __init__(self, path, specs, metadata=None):
        self.path = path
        self.specs = [(n, d, tuple(int(x) for x in s)) for n, d, s in specs]
        head, self.total = _build_header(self.specs, metadata)
        self.f = open(path, "wb")
        self.f.write(head)
        self.i = 0
        self.done = 0

    def current(self):
        return self.specs[self.i] if self.i < len(self.specs) else None

    def write(self, chunk):
        """chunk: any array, converted to the current tensor's dtype; must not cross into the next
        tensor. A tensor is finished when all its bytes are written (zero-size: one empty write)."""
        name, dt, shape = self.specs[self.i]
        size = _nbytes(dt, shape)
        data = to_storage(dt, chunk).tobytes()
        if self.done + len(data) > size:
            raise ValueError("too much data for %s" % name)
        self.f.write(data)
        self.done += len(data)
        if self.done == size:
            self.i += 1
            self.done = 0

    def write_tensor(self, name, arr):
        if self.current() is None or self.current()[0] != name:
            raise ValueError("expected %s, got %s" % (self.current(), name))
        self.write(arr)

    def close(self):
        if self.i < len(self.specs):
            raise ValueError("%s: tensor %s not fully written" % (self.path, self.specs[self.i][0]))
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            self.f.close()


def shard_name(k, n):
    return "model-%05d-of-%05d.safetensors" % (k, n)


def plan_shards(specs, n_shards=None, max_shard_bytes=None):
    """Split specs (kept in order) into groups: n_shards of roughly equal bytes, or by max bytes."""
    sizes = [_nbytes(d, s) for _, d, s in specs]
    total = sum(sizes)
    groups = [[]]
    if max_shard_bytes:
        cur = 0
        for sp, sz in zip(specs, sizes):
            if groups[-1] and cur + sz > max_shard_bytes:
                groups.append([])
                cur = 0
            groups[-1].append(sp)
            cur += sz
        return groups
    n = max(1, int(n_shards or 1))
    n = min(n, max(1, len(specs)))
    target = total / n
    cur = 0
    for idx, (sp, sz) in enumerate(zip(specs, sizes)):
        remaining_specs = len(specs) - idx
        need_groups = n - len(groups)
        if groups[-1] and (cur + sz / 2 > target * len(groups) or remaining_specs <= need_groups) \
                and len(groups) < n:
            groups.append([])
        groups[-1].append(sp)
        cur += sz
    return groups


class ShardedStreamWriter:
    """Write a (possibly) sharded checkpoint in outdir, streaming in declaration order.
    One shard -> model.safetensors (no index), like HF; more -> model-0000K-of-0000N + index."""

    def __init__(self, outdir, specs, n_shards=None, max_shard_bytes=None, metadata=None,
                 force_index=False):
        os.makedirs(outdir, exist_ok=True)
        self.outdir = outdir
        self.metadata = dict(metadata or {"format": "pt"})
        self.groups = [g for g in plan_shards(specs, n_shards, max_shard_bytes) if g]
        n = len(self.groups)
        self.sharded = n > 1 or force_index
        self.names = [shard_name(k + 1, n) if self.sharded else "model.safetensors" for k in range(n)]
        self.weight_map = {}
        self.total = 0
        for g, fn in zip(self.groups, self.names):
            for name, d, s in g:
                self.weight_map[name] = fn
                self.total += _nbytes(d, s)
        self.k = -1
        self.w = None
        self._next()

    def _next(self):
        if self.w is not None:
            self.w.close()
        self.k += 1
        self.w = StreamWriter(os.path.join(self.outdir, self.names[self.k]), self.groups[self.k],
                              self.metadata) if self.k < len(self.groups) else None

    def current(self):
        return self.w.current() if self.w else None

    def write(self, chunk):
        self.w.write(chunk)
        if self.w.current() is None:
            self._next()

    def write_tensor(self, name, arr):
        if self.current() is None or self.current()[0] != name:
            raise ValueError("expected %s, got %s" % (self.current(), name))
        self.write(arr)

    def close(self):
        if self.w is not None:
            raise ValueError("not all tensors written (at %s)" % (self.current(),))
        if self.sharded:
            idx = {"metadata": {"total_size": self.total},
                   "weight_map": dict(sorted(self.weight_map.items()))}
            with open(os.path.join(self.outdir, INDEX_NAME), "w") as f:
                json.dump(idx, f, indent=2)
                f.write("\n")

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()


def save(path, tensors, metadata=None):
    items = [(n,) + _norm_item(v) for n, v in tensors.items()]
    with StreamWriter(path, [(n, d, a.shape) for n, d, a in items], metadata) as w:
        for n, d, a in items:
            w.write_tensor(n, a)


def save_sharded(outdir, tensors, n_shards=None, max_shard_bytes=None, metadata=None,
                 force_index=False):
    items = [(n,) + _norm_item(v) for n, v in tensors.items()]
    with ShardedStreamWriter(outdir, [(n, d, a.shape) for n, d, a in items], n_shards,
                             max_shard_bytes, metadata, force_index) as w:
        for n, d, a in items:
            w.write_tensor(n, a)


# ----------------------------------------------------------------------------- self test
def _selftest():
    import tempfile
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(np.float32) * 3
    x[0, 0] = np.nan
    x[0, 1] = np.inf
    x[0, 2] = -0.0
    x[0, 3] = 3.4e38  # rounds to inf in bf16 (and f16)
    x[0, 4] = 1.0 + 2 ** -8  # tie -> even (1.0)
    x[0, 5] = 1.0 + 3 * 2 ** -8  # tie -> even (1 + 2^-6)
    with np.errstate(over="ignore"):
        xh = x.astype(np.float16)
    t = {"a.f32": x, "b.f16": xh, "c.bf16": ("BF16", x),
         "d.i32": np.arange(6, dtype=np.int32).reshape(2, 3), "e.i64": np.array([-1, 2 ** 40]),
         "f.scalar": np.float32(2.5).reshape(()), "g.empty": np.zeros((0, 3), np.float32)}
    try:
        import torch
        tb = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        ours = f32_to_bf16_bits(x)
        ok = np.isnan(bf16_bits_to_f32(ours)) == np.isnan(bf16_bits_to_f32(tb))
        assert ok.all() and (ours[~np.isnan(x)] == tb[~np.isnan(x)]).all(), "bf16 rounding vs torch"
        big = rng.standard_normal(1 << 16).astype(np.float32) * 100
        assert (f32_to_bf16_bits(big) == torch.from_numpy(big).to(torch.bfloat16).view(torch.int16)
                .numpy().view(np.uint16)).all()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.safetensors")
        save(p, t, {"format": "pt"})
        with open(p, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
        assert (8 + n) % 8 == 0
        sf = SafeFile(p)
        assert sf.metadata == {"format": "pt"}
        np.testing.assert_array_equal(sf.get("a.f32"), x)
        np.testing.assert_array_equal(sf.get("b.f16"), xh)
        assert sf.dtype("c.bf16") == "BF16" and sf.raw("c.bf16").dtype == np.uint16
        bb = sf.get("c.bf16")
        fin = np.isfinite(x)
        fin[0, 3] = False
        assert np.all(np.abs(bb[fin] - x[fin]) <= np.abs(x[fin]) * 2 ** -8)
        assert bb[0, 4] == 1.0 and bb[0, 5] == 1.0 + 2 ** -6 and np.isinf(bb[0, 3]) and np.isnan(bb[0, 0])
        np.testing.assert_array_equal(sf.get("e.i64"), [-1, 2 ** 40])
        assert sf.shape("f.scalar") == () and sf.get("f.scalar") == 2.5
        assert sf.shape("g.empty") == (0, 3)
        for k in range(1, 5):
            od = os.path.join(d, "s%d" % k)
            save_sharded(od, t, n_shards=k)
            c = Checkpoint(od)
            assert sorted(c.keys()) == sorted(t.keys())
            np.testing.assert_array_equal(c.get("d.i32"), t["d.i32"])
            files = [f for f in os.listdir(od) if f.endswith(".safetensors")]
            assert len(files) == k, (k, files)
            if k > 1:
                idx = json.load(open(os.path.join(od, INDEX_NAME)))
                assert set(idx["weight_map"]) == set(t)
        # a corrupted header must be rejected
        bad = os.path.join(d, "bad.safetensors")
        data = open(p, "rb").read()
        open(bad, "wb").write(data[:-4])
        try:
            SafeFile(bad)
            raise AssertionError("truncated file accepted")
        except ValueError:
            pass
    print("st.py selftest OK")


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "--selftest":
        _selftest()
    elif len(sys.argv) > 1:
        c = Checkpoint(sys.argv[1])
        for k in sorted(c.keys()):
            print("%-60s %-5s %s" % (k, c.dtype(k), list(c.shape(k))))
    else:
        print(__doc__)
