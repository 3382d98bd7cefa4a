#!/usr/bin/python3
"""Independent reference for SVF (svf/): singular values, recomposition and the z-gradient.

usage: svf_ref.py MODEL_DIR SVF_FILE INPUTS OUT

INPUTS (safetensors, written by tests/test_svf.c): metadata "cases" = comma-separated case names;
per case C: metadata "C.matrix" (the weight's name) and "C.param" (official | scale), tensors
"C.z" (k), "C.X" (rows, in), "C.dY" (rows, out).
OUT (safetensors) per case:
  "C.S_np"  (k)        singular values of the stored weight, numpy float64 SVD (independent of LAPACKE's f32)
  "C.W"     (out, in)  W' = U diag(sigma'(z)) V^T in float64 from the decomposition's U, S, V
  "C.dz"    (k)        torch autograd (float64) of L = sum((X W'^T) * dY) with respect to z

sigma'(z): official m = sigmoid(z), sigma' = S*m * sum(S) / sum(S*m); scale sigma' = S*z
(SakanaAI/self-adaptive-llms and the paper's equation; docs/svf.md).
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def sigma_prime(S, z, param):
    if param == "scale":
        return S * z
    m = torch.sigmoid(z)
    s = S * m
    return s * (S.sum() / s.sum())


def main():
    model_dir, svf_path, inputs, out = sys.argv[1:5]
    ck = st.Checkpoint(model_dir)
    svf = st.SafeFile(svf_path)
    inp = st.SafeFile(inputs)
    res = {}
    for c in inp.metadata["cases"].split(","):
        name, param = inp.metadata[c + ".matrix"], inp.metadata[c + ".param"]
        W = ck.get(name).astype(np.float64)
        res[c + ".S_np"] = np.linalg.svd(W, compute_uv=False).astype(np.float32)
        U = torch.tensor(svf.get(name + ".U"), dtype=torch.float64)
        S = torch.tensor(svf.get(name + ".S"), dtype=torch.float64)
        V = torch.tensor(svf.get(name + ".V"), dtype=torch.float64)
        z = torch.tensor(inp.get(c + ".z"), dtype=torch.float64, requires_grad=True)
        X = torch.tensor(inp.get(c + ".X"), dtype=torch.float64)
        dY = torch.tensor(inp.get(c + ".dY"), dtype=torch.float64)
        Wp = U @ torch.diag(sigma_prime(S, z, param)) @ V.T
        L = ((X @ Wp.T) * dY).sum()
        L.backward()
        res[c + ".W"] = Wp.detach().numpy().astype(np.float32)
        res[c + ".dz"] = z.grad.numpy().astype(np.float32)
    st.save(out, res, metadata={"format": "t2-svf-ref"})


if __name__ == "__main__":
    main()
