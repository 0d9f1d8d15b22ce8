#!/usr/bin/python3
"""Independent PyTorch reference for loom's multi-scale Row LSTM (docs/rowlstm.md,
"Multi-scale"), written from the doc on top of bench/rowlstm_torch.py's Row LSTM.

  fixture -- tests/fixtures/multiscale_ref.safetensors: parameters, images, the
             full model's logits, the loss and every gradient (float64 from
             float32 parameters) of a tiny gray multi-scale Row LSTM.

    /usr/bin/python3 bench/multiscale_torch.py fixture

The model: the small image s = x[f*si, f*sj] (f = H / S) is modelled by a plain
Row LSTM (tensors small.*); the full Row LSTM's layer l computes
layer(x + cond_l) - cond_l, cond_l = F @ cond.l.weight + cond.l.bias,
F = relu(P @ cond.up.weight + cond.up.bias), P per pixel = the 3x3
neighbourhood of its block in s (values / 255, 0 outside; taps in raster
order, channels inner) and the one-hot place (i % f, j % f) of the pixel in its
block. The loss is (NLL of s under the small model + NLL of the pixels not in
s under the full model) / (B H W): nats per dimension.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rowlstm_torch as R  # noqa: E402


def features(s_u8, H, W, f):
    """(B, S, Ws) uint8 small images -> P (B, H, W, K), K = 9 + f*f"""
    B, S, Ws = s_u8.shape
    u = s_u8.to(torch.float64) / 255.0
    up = F.pad(u, (1, 1, 1, 1))  # zero outside
    P = torch.zeros(B, H, W, 9 + f * f, dtype=torch.float64)
    for i in range(H):
        for j in range(W):
            bi, bj = i // f, j // f
            t = 0
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    P[:, i, j, t] = up[:, bi + di + 1, bj + dj + 1]
                    t += 1
            P[:, i, j, 9 + (i % f) * f + j % f] = 1.0
    return P


class MultiScale(torch.nn.Module):
    def __init__(self, hidden, layers, H, W, S):
        super().__init__()
        self.f = H // S
        self.H, self.W, self.S, self.Ws = H, W, S, W // self.f
        C = 2 * hidden
        self.full = R.RowLSTM(hidden, layers)
        self.small = R.RowLSTM(hidden, layers)
        K = 9 + self.f * self.f
        self.up_w = torch.nn.Parameter(torch.zeros(K, C, dtype=torch.float64))
        self.up_b = torch.nn.Parameter(torch.zeros(C, dtype=torch.float64))
        self.cw = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(C, C, dtype=torch.float64))
                                          for _ in range(layers)])
        self.cb = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(C, dtype=torch.float64))
                                          for _ in range(layers)])

    def forward(self, x_u8):
        """x_u8 (B, H, W) -> (full logits (B, 256, H, W), small logits, small images)"""
        f = self.f
        s = x_u8[:, ::f, ::f]
        Fm = F.relu(features(s, self.H, self.W, f) @ self.up_w + self.up_b)  # (B, H, W, C)
        m = self.full
        u = x_u8.to(torch.float64) / 255.0
        x = m.inp(u.unsqueeze(1))
        for l, layer in enumerate(m.rnn):
            c = (Fm @ self.cw[l] + self.cb[l]).permute(0, 3, 1, 2)  # (B, C, H, W)
            x = layer(x + c) - c
        z = m.head2(F.relu(m.head1(F.relu(x))))
        return z, self.small(s), s

    def loss(self, x_u8):
        z, zs, s = self(x_u8)
        B, H, W = x_u8.shape
        nll = F.cross_entropy(z, x_u8.long(), reduction="none")  # (B, H, W)
        keep = torch.ones(H, W, dtype=torch.float64)
        keep[::self.f, ::self.f] = 0.0  # the small image's pixels are the small model's
        total = (nll * keep).sum() + F.cross_entropy(zs, s.long(), reduction="sum")
        return total / (B * H * W), z


def specs(hidden, layers, H, W, S):
    f = H // S
    C = 2 * hidden
    out = R.loom_param_specs(hidden, layers)
    out += [("cond.up.weight", (9 + f * f, C)), ("cond.up.bias", (C,))]
    for l in range(layers):
        out += [("cond.%d.weight" % l, (C, C)), ("cond.%d.bias" % l, (C,))]
    out += [("small." + n, s) for n, s in R.loom_param_specs(hidden, layers)]
    return out


def views(model):
    v = {n: t for n, t in R._torch_views(model.full).items()}
    v.update({"small." + n: t for n, t in R._torch_views(model.small).items()})
    ident = (lambda t: t, lambda t: t)
    v["cond.up.weight"] = (model.up_w,) + ident
    v["cond.up.bias"] = (model.up_b,) + ident
    for l in range(len(model.cw)):
        v["cond.%d.weight" % l] = (model.cw[l],) + ident
        v["cond.%d.bias" % l] = (model.cb[l],) + ident
    return v


def cmd_fixture(args):
    H, W, S, hidden, layers, B, seed = 4, 6, 2, 3, 2, 2, 20261202
    rng = np.random.default_rng(seed)
    sp = specs(hidden, layers, H, W, S)
    p32 = {n: (rng.standard_normal(s) * 0.5).astype(np.float32) for n, s in sp}
    images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
    images[0, 0, 0], images[B - 1, H - 1, W - 1] = 0, 255
    model = MultiScale(hidden, layers, H, W, S).double()
    vw = views(model)
    assert set(vw) == set(p32), sorted(set(vw) ^ set(p32))
    with torch.no_grad():
        for n, (p, _, from_loom) in vw.items():
            v = from_loom(torch.from_numpy(p32[n].astype(np.float64)))
            assert v.shape == p.shape, (n, v.shape, p.shape)
            p.copy_(v)
    x = torch.from_numpy(images.astype(np.int64))
    loss, z = model.loss(x)
    model.zero_grad()
    loss.backward()
    tensors = [(n, p32[n]) for n, _ in sp]
    tensors.append(("images", images))
    tensors.append(("logits", z.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)))
    tensors += [("grad." + n, to(p.grad.detach()).numpy().astype(np.float32)) for n, (p, to, _) in
                ((n, vw[n]) for n, _ in sp)]
    meta = {"layers": layers, "hidden": hidden, "height": H, "width": W, "multiscale": S, "batch": B,
            "loss_f64": repr(loss.item()), "seed": seed,
            "generator": "bench/multiscale_torch.py fixture (torch %s, float64 from float32 params)"
                         % torch.__version__}
    out = args.out or "tests/fixtures/multiscale_ref.safetensors"
    R.write_safetensors(out, tensors, meta)
    back, _ = R.read_safetensors(out)
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    print(json.dumps({"out": out, "bytes": os.path.getsize(out), "loss_f64": loss.item(),
                      "tensors": len(tensors)}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    fx = sub.add_parser("fixture")
    fx.add_argument("--out")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    return cmd_fixture(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
