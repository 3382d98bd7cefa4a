#!/usr/bin/env python3
"""kernels_f16.py WORK — numpy's verdict on t2's scalar half-precision conversions (test_kernels.c).

Reads, from WORK:
  f16_all.f32  65536 float32: t2_f16_to_f32(h) for h = 0..65535
  probe.f32    float32 inputs;  probe.f16  t2_f32_to_f16 of each (uint16)
Compares bit for bit with numpy (float16 <-> float32, round to nearest even); NaNs must stay NaN.
Exits 1 with the first mismatches on any difference. Not for: bf16 (numpy has no bfloat16).
"""
import sys
import numpy as np

work = sys.argv[1]
fail = 0

got = np.fromfile(f"{work}/f16_all.f32", dtype=np.float32)
ref = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
nan = np.isnan(ref)
bad = np.nonzero((got.view(np.uint32) != ref.view(np.uint32)) & ~nan | (np.isnan(got) != nan))[0]
if bad.size:
    fail = 1
    for i in bad[:10]:
        print(f"f16->f32 h=0x{i:04x}: t2 {got[i]!r} numpy {ref[i]!r}")
print(f"f16->f32: {bad.size} of 65536 differ from numpy")

x = np.fromfile(f"{work}/probe.f32", dtype=np.float32)
got16 = np.fromfile(f"{work}/probe.f16", dtype=np.uint16)
with np.errstate(over="ignore"):
    ref16 = x.astype(np.float16).view(np.uint16)
xnan = np.isnan(x)
got_nan = ((got16 & 0x7C00) == 0x7C00) & ((got16 & 0x03FF) != 0)
bad = np.nonzero((got16 != ref16) & ~xnan | (xnan & ~got_nan))[0]
if bad.size:
    fail = 1
    for i in bad[:10]:
        print(f"f32->f16 x={x[i]!r} (0x{x[i:i+1].view(np.uint32)[0]:08x}): t2 0x{got16[i]:04x} numpy 0x{ref16[i]:04x}")
print(f"f32->f16: {bad.size} of {x.size} differ from numpy")
sys.exit(fail)
