#!/usr/bin/python3
"""PyTorch reference for loom's sequence layers (src/nn/seq.h): torch.nn.RNN (tanh),
torch.nn.LSTM and torch.nn.GRU, one layer each, in float64 from float32-rounded values.

Writes tests/fixtures/seq_ref.safetensors, read by tests/test_seq.c. For each cell
<c> in rnn, lstm, gru the fixture holds, in loom's layout (time-major (T, B, F);
weights transposed to y = x @ w, gate columns in PyTorch's order):
  <c>.x (T,B,I)  <c>.h0 (B,H)  [<c>.c0]        inputs and initial state
  <c>.w_ih (I,G) <c>.w_hh (H,G) <c>.b_ih <c>.b_hh   parameters
  <c>.dy (T,B,H) <c>.dhT (B,H) [<c>.dcT]       the probe: L = sum(y*dy) + sum(hT*dhT) (+ sum(cT*dcT))
  <c>.y <c>.hT [<c>.cT]                         forward results
  <c>.grad.{x,h0,c0,w_ih,w_hh,b_ih,b_hh}        dL/d of each input and parameter

    /usr/bin/python3 bench/seq_torch.py --out tests/fixtures/seq_ref.safetensors
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rowlstm_torch import read_safetensors, write_safetensors  # noqa: E402

T, B, I, H = 5, 2, 3, 4
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def f32(a):
    """float32-rounded values, returned as float64 (what the C test will hold exactly)."""
    return a.astype(np.float32).astype(np.float64)


def case(cell, rng):
    G = GATES[cell] * H
    mod = {"rnn": lambda: torch.nn.RNN(I, H, nonlinearity="tanh"),
           "lstm": lambda: torch.nn.LSTM(I, H),
           "gru": lambda: torch.nn.GRU(I, H)}[cell]().double()
    v = {"x": f32(rng.standard_normal((T, B, I))),
         "h0": f32(rng.standard_normal((B, H)) * 0.5),
         "w_ih": f32(rng.standard_normal((I, G)) * 0.6),
         "w_hh": f32(rng.standard_normal((H, G)) * 0.6),
         "b_ih": f32(rng.standard_normal(G) * 0.3),
         "b_hh": f32(rng.standard_normal(G) * 0.3),
         "dy": f32(rng.standard_normal((T, B, H))),
         "dhT": f32(rng.standard_normal((B, H)))}
    if cell == "lstm":
        v["c0"] = f32(rng.standard_normal((B, H)) * 0.5)
        v["dcT"] = f32(rng.standard_normal((B, H)))
    with torch.no_grad():  # torch keeps (G, I): loom's transpose
        mod.weight_ih_l0.copy_(torch.from_numpy(v["w_ih"].T.copy()))
        mod.weight_hh_l0.copy_(torch.from_numpy(v["w_hh"].T.copy()))
        mod.bias_ih_l0.copy_(torch.from_numpy(v["b_ih"]))
        mod.bias_hh_l0.copy_(torch.from_numpy(v["b_hh"]))
    x = torch.from_numpy(v["x"]).requires_grad_()
    h0 = torch.from_numpy(v["h0"]).requires_grad_()
    if cell == "lstm":
        c0 = torch.from_numpy(v["c0"]).requires_grad_()
        y, (hT, cT) = mod(x, (h0[None], c0[None]))
    else:
        y, hT = mod(x, h0[None])
    loss = (y * torch.from_numpy(v["dy"])).sum() + (hT[0] * torch.from_numpy(v["dhT"])).sum()
    if cell == "lstm":
        loss = loss + (cT[0] * torch.from_numpy(v["dcT"])).sum()
    loss.backward()
    out = dict(v)
    out["y"], out["hT"] = y.detach().numpy(), hT[0].detach().numpy()
    if cell == "lstm":
        out["cT"] = cT[0].detach().numpy()
        out["grad.c0"] = c0.grad.numpy()
    out["grad.x"], out["grad.h0"] = x.grad.numpy(), h0.grad.numpy()
    out["grad.w_ih"] = mod.weight_ih_l0.grad.numpy().T
    out["grad.w_hh"] = mod.weight_hh_l0.grad.numpy().T
    out["grad.b_ih"], out["grad.b_hh"] = mod.bias_ih_l0.grad.numpy(), mod.bias_hh_l0.grad.numpy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/seq_ref.safetensors")
    args = ap.parse_args()
    rng = np.random.default_rng(20261123)
    tensors = []
    for cell in ("rnn", "lstm", "gru"):
        for name, a in case(cell, rng).items():
            tensors.append(("%s.%s" % (cell, name), np.ascontiguousarray(a, dtype=np.float32)))
    meta = {"T": T, "B": B, "I": I, "H": H,
            "generator": "bench/seq_torch.py (torch %s, float64)" % torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "tensors": len(tensors), "bytes": os.path.getsize(args.out)}))


if __name__ == "__main__":
    main()
