#!/usr/bin/python3
"""Independent PyTorch reference of loom's rae model (docs/rae.md), written from the spec
the way a PyTorch user would: two nn.Conv2d(3x3, stride 2, padding 1) with ReLU, an
nn.Linear to the code (or to [mu, log sigma]), and an nn.LSTM over the image rows whose
input at row i is [row i-1 of the image, the code] (the code's share of weight_ih is
loom's dec.code.weight), then nn.Linear(h, W) row logits and a Bernoulli loss.

  fixture -- tests/fixtures/rae_ref.safetensors: two tiny configs (plain, "plain."; with
             --variational, "var."): parameters in loom's names and layout, images, the
             binarized images x and (variational) the noise eps from bench/loom_noise.py
             (a Python transcription of docs/draw.md's random numbers), per-image bounds,
             the loss (mean per pixel, as loom_model_grad) and every gradient, float64
             from float32 values; read by tests/test_ref_latent.c.

    /usr/bin/python3 bench/rae_torch.py fixture
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loom_noise  # noqa: E402
from rowlstm_torch import read_safetensors, write_safetensors  # noqa: E402

C1, C2 = 16, 32


class RAE(nn.Module):
    def __init__(self, H, W, hidden, zdim, variational):
        super().__init__()
        self.H, self.W, self.z, self.variational = H, W, zdim, variational
        H2, W2 = (H + 3) // 4, (W + 3) // 4  # ceil(ceil(H / 2) / 2)
        self.conv1 = nn.Conv2d(1, C1, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(C1, C2, 3, stride=2, padding=1)
        self.fc = nn.Linear(H2 * W2 * C2, 2 * zdim if variational else zdim)
        self.dec = nn.LSTM(W + zdim, hidden)  # input [previous row, code]
        self.out = nn.Linear(hidden, W)

    def forward(self, x, eps=None):
        """x (B, H, W) in {0, 1}, eps (B, z) (variational); -> the bound per image (B,)"""
        B, H, W = x.shape
        y = F.relu(self.conv2(F.relu(self.conv1(x[:, None]))))  # (B, C2, H2, W2)
        q = self.fc(y.permute(0, 2, 3, 1).reshape(B, -1))  # flattened (row, column, channel)
        kl = x.new_zeros(B)
        if self.variational:
            mu, ls = q.chunk(2, 1)
            code = mu + torch.exp(ls) * eps
            kl = (0.5 * (mu ** 2 + torch.exp(2 * ls) - 1) - ls).sum(1)
        else:
            code = q
        prev = torch.cat([x.new_zeros(B, 1, W), x[:, :-1]], 1)  # row i sees row i-1
        inp = torch.cat([prev, code[:, None].expand(B, H, self.z)], 2)  # (B, H, W + z)
        hs, _ = self.dec(inp.transpose(0, 1))  # (H, B, h), zero initial state
        logits = self.out(hs).transpose(0, 1)  # (B, H, W)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2))
        return bce + kl


def loom_views(model):
    """loom name -> (torch tensor view getter, setter) pairs in loom's layout (y = x @ w)."""
    W = model.W
    lstm = model.dec

    def conv(c):
        cout, cin = c.weight.shape[:2]
        # loom row (ky * 3 + kx) * cin + channel, taps dy, dx = ky - 1, kx - 1 in raster order
        return (lambda t: t.permute(2, 3, 1, 0).reshape(9 * cin, cout),
                lambda m: m.reshape(3, 3, cin, cout).permute(3, 2, 0, 1))

    ident = (lambda t: t, lambda m: m)
    tr = (lambda t: t.t(), lambda m: m.t())
    v = {
        "enc.conv1.weight": (model.conv1.weight, conv(model.conv1)),
        "enc.conv1.bias": (model.conv1.bias, ident),
        "enc.conv2.weight": (model.conv2.weight, conv(model.conv2)),
        "enc.conv2.bias": (model.conv2.bias, ident),
        "enc.fc.weight": (model.fc.weight, tr),
        "enc.fc.bias": (model.fc.bias, ident),
        # weight_ih_l0 (4h, W + z) = [dec.w_ih ; dec.code.weight]^T
        "dec.w_ih": (lstm.weight_ih_l0, (lambda t: t[:, :W].t(), None)),
        "dec.w_hh": (lstm.weight_hh_l0, tr),
        "dec.b_ih": (lstm.bias_ih_l0, ident),
        "dec.b_hh": (lstm.bias_hh_l0, ident),
        "dec.code.weight": (lstm.weight_ih_l0, (lambda t: t[:, W:].t(), None)),
        "out.weight": (model.out.weight, tr),
        "out.bias": (model.out.bias, ident),
    }
    return v


FIXTURE_CASES = [
    dict(prefix="plain.", H=5, W=6, hidden=3, zdim=3, variational=0, batch=2,
         # cli/cmd_train.c's key of step 4 of a run with --seed 2
         noise_seed=((3 * 0x9E3779B97F4A7C15) ^ (4 * 0xBF58476D1CE4E5B9) ^ 1) & ((1 << 64) - 1)),
    dict(prefix="var.", H=6, W=5, hidden=3, zdim=3, variational=1, batch=2, noise_seed=0),
]


def cmd_fixture(args):
    loom_noise.self_check()
    rng = np.random.default_rng(20261202)
    tensors, meta, summary = [], {}, {}
    for cs in FIXTURE_CASES:
        pre, H, W, B, z = cs["prefix"], cs["H"], cs["W"], cs["batch"], cs["zdim"]
        model = RAE(H, W, cs["hidden"], z, bool(cs["variational"])).double()
        images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)
        images[B - 1, H - 1, W - 1] = 255
        x = np.stack([loom_noise.binarize(images[b], cs["noise_seed"]) for b in range(B)])
        eps = np.stack([loom_noise.normals(loom_noise.noise_stream(images[b], cs["noise_seed"], 0), z)
                        for b in range(B)])[None]  # (1, B, z): one code per image
        views = loom_views(model)
        # weights ~ N(0, 1/fan_in) so the encoder's activations stay of order 1; biases N(0, 0.3^2)
        params = {}
        for name, (p, (to, _)) in views.items():
            shape = tuple(to(p.detach()).shape)
            sd = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 else 0.3
            params[name] = (rng.standard_normal(shape) * sd).astype(np.float32)
            tensors.append((pre + name, params[name]))
        with torch.no_grad():
            for name, (p, (_, frm)) in views.items():
                if frm is not None:
                    p.copy_(frm(torch.from_numpy(params[name].astype(np.float64))))
            lstm = model.dec
            lstm.weight_ih_l0.copy_(torch.from_numpy(
                np.concatenate([params["dec.w_ih"], params["dec.code.weight"]], 0).T.astype(np.float64)))
        for name, (p, (to, _)) in views.items():
            assert np.array_equal(to(p.detach()).numpy().astype(np.float32), params[name]), name
        xt = torch.from_numpy(x.reshape(B, H, W).astype(np.float64))
        nll = model(xt, torch.from_numpy(eps[0].astype(np.float64)) if cs["variational"] else None)
        loss = nll.sum() / (B * H * W)  # loom_model_grad: mean per pixel
        model.zero_grad()
        loss.backward()
        tensors += [(pre + "images", images), (pre + "x", x)]
        if cs["variational"]:
            tensors.append((pre + "eps", eps))
        tensors += [(pre + "nll", nll.detach().numpy().astype(np.float32)),
                    (pre + "loss", np.array([loss.item()], dtype=np.float32))]
        for name, (p, (to, _)) in views.items():
            tensors.append((pre + "grad." + name, to(p.grad.detach()).contiguous().numpy().astype(np.float32)))
        for k, key in (("H", "height"), ("W", "width"), ("hidden", "hidden"), ("zdim", "zdim"),
                       ("variational", "variational"), ("batch", "batch"), ("noise_seed", "noise_seed")):
            meta[pre + key] = cs[k]
        meta[pre + "loss_f64"] = repr(loss.item())
        summary[pre[:-1]] = loss.item()
    meta["generator"] = "bench/rae_torch.py fixture (torch %s, float64 from float32 values)" % torch.__version__
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "tensors": len(tensors), "bytes": os.path.getsize(args.out),
                      "loss": summary}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--out", default="tests/fixtures/rae_ref.safetensors")
    args = ap.parse_args()
    return {"fixture": cmd_fixture}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
