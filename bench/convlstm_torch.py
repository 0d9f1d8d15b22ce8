#!/usr/bin/python3
"""Independent PyTorch reference and speed peer of loom's convlstm model (docs/convlstm.md),
written from the spec the way a PyTorch user would: frames cut into p x p patches with
F.pixel_unshuffle, ConvLSTM cells whose gates i, f, g, o come from one nn.Conv2d over
[x_t, h_{t-1}] (padding k // 2), an encoder of L cells over the K given frames, a
forecaster of L cells started from the encoder's final (h, c) and run M steps without input
(its first cell's convolution sees h only), and a 1x1 nn.Conv2d from the concatenated
forecaster states to C p p logits per patch position; Bernoulli cross-entropy against the
true frames in [0, 1] (binary_cross_entropy_with_logits, summed). Optionally (--output
softmax256) C p p x 256 logits, channel j 256 + v for value v of channel j, and the
cross-entropy against the 8-bit frames (F.cross_entropy, summed: the exact NLL); and
(--peephole) Shi et al.'s peepholes: per-channel-and-position weights w_ci, w_cf (times
c_{t-1}, added to the i and f pre-activations) and w_co (times c_t, added to o's); and
(--feedback) a forecaster whose first cell reads, at each step, its own previous prediction
(sigmoid of the logits, as C p p patch channels; the last given frame at its first step),
gradients flowing through it; and (--loss l1|mse) the 1x1 convolution's output z taken as the
intensity itself (no sigmoid), trained with |z - x| or (z - x)^2 summed, the forecaster then fed
z clamped to [0, 1].

  fixture -- tests/fixtures/convlstm_ref.safetensors: a tiny config (2 layers, hidden 3,
             kernel 3, patch 2, 3 + 2 frames of 8x8, 2 sequences): parameters in loom's
             names and layout (conv weights (4h, k, k, cin + h)), the sequences, the
             per-sequence cross-entropy, the loss (mean per predicted pixel, as
             loom_model_grad) and every gradient, float64 from float32 values; read by
             tests/test_convlstm_ref.c.
  fixture --output softmax256 --peephole --out tests/fixtures/convlstm_ref_sm_peep.safetensors
          -- the same tiny config with both options.
  fixture --feedback --peephole --out tests/fixtures/convlstm_ref_fb_peep.safetensors
          -- the same tiny config, the forecaster fed its predictions, with peepholes.
  fixture --feedback --loss l1 --out tests/fixtures/convlstm_ref_fb_l1.safetensors
          -- fed its predictions, trained with the absolute error.
  bench   -- training sequences/s at a config (default: the reference, 2 x 64 hidden,
             kernel 5, patch 4, 10 + 10 frames of 64x64, batch 16), random sequences
             (speed only), Adam; prints one JSON line with sequences/s, GFLOP per
             sequence and peak RSS.

    /usr/bin/python3 bench/convlstm_torch.py fixture
    /usr/bin/python3 bench/convlstm_torch.py bench --threads 2 --steps 6
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rowlstm_torch import read_safetensors, write_safetensors  # noqa: E402


class Cell(nn.Module):
    def __init__(self, cin, hid, k, peep_hw=None):
        super().__init__()
        self.cin, self.hid = cin, hid
        self.conv = nn.Conv2d(cin + hid, 4 * hid, k, padding=k // 2)
        # w_ci, w_cf, w_co, each of the state's shape (hid, Hp, Wp)
        self.peep = nn.Parameter(torch.zeros(3, hid, *peep_hw)) if peep_hw else None

    def forward(self, x, h, c):
        xh = h if x is None else torch.cat([x, h], 1)
        i, f, g, o = self.conv(xh).chunk(4, 1)
        if self.peep is not None:
            i, f = i + self.peep[0] * c, f + self.peep[1] * c
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        c = f * c + i * g
        if self.peep is not None:
            o = o + self.peep[2] * c
        return torch.sigmoid(o) * torch.tanh(c), c


class EncoderForecaster(nn.Module):
    def __init__(self, C, layers, hid, k, p, softmax=False, peep_hw=None, feedback=False, loss="xent"):
        super().__init__()
        self.p, self.hid, self.L, self.softmax, self.feedback, self.loss = p, hid, layers, softmax, feedback, loss
        cp = C * p * p
        self.enc = nn.ModuleList([Cell(cp if l == 0 else hid, hid, k, peep_hw) for l in range(layers)])
        self.fore = nn.ModuleList([Cell((cp if feedback else 0) if l == 0 else hid, hid, k, peep_hw) for l in range(layers)])
        self.out = nn.Conv2d(layers * hid, cp * (256 if softmax else 1), 1)

    def forward(self, frames, K, M):
        """frames (N, K + M, C, H, W) in [0, 1] (multiples of 1/255) -> per-sequence NLL (N)"""
        N = frames.shape[0]
        x = torch.stack([F.pixel_unshuffle(frames[:, t], self.p) for t in range(K + M)], 1)
        Hp, Wp = x.shape[-2:]
        hs = [x.new_zeros(N, self.hid, Hp, Wp) for _ in range(self.L)]
        cs = [x.new_zeros(N, self.hid, Hp, Wp) for _ in range(self.L)]
        for t in range(K):
            inp = x[:, t]
            for l, cell in enumerate(self.enc):
                hs[l], cs[l] = cell(inp, hs[l], cs[l])
                inp = hs[l]
        nll = x.new_zeros(N)
        fed = x[:, K - 1]
        for t in range(M):
            inp = fed if self.feedback else None
            for l, cell in enumerate(self.fore):
                hs[l], cs[l] = cell(inp, hs[l], cs[l])
                inp = hs[l]
            logits = self.out(torch.cat(hs, 1))
            fed = torch.sigmoid(logits) if self.loss == "xent" else logits.clamp(0, 1)
            if self.softmax:
                n_, ch, hp, wp = logits.shape
                target = torch.round(x[:, K + t] * 255).long()
                nll = nll + F.cross_entropy(logits.view(n_, ch // 256, 256, hp, wp).transpose(1, 2), target,
                                            reduction="none").sum((1, 2, 3))
            elif self.loss == "l1":
                nll = nll + (logits - x[:, K + t]).abs().sum((1, 2, 3))
            elif self.loss == "mse":
                nll = nll + ((logits - x[:, K + t]) ** 2).sum((1, 2, 3))
            else:
                nll = nll + F.binary_cross_entropy_with_logits(logits, x[:, K + t], reduction="none").sum((1, 2, 3))
        return nll


def loom_views(model):
    """loom name -> (torch parameter, to loom layout, from loom layout)"""
    v = {}
    for f, cells in (("enc", model.enc), ("fore", model.fore)):
        for l, cell in enumerate(cells):
            v["%s.%d.weight" % (f, l)] = (cell.conv.weight, lambda w: w.permute(0, 2, 3, 1),
                                          lambda w: w.permute(0, 3, 1, 2))
            v["%s.%d.bias" % (f, l)] = (cell.conv.bias, lambda b: b, lambda b: b)
            if cell.peep is not None:  # loom's (Hp, Wp, 3, hid); the permutation is its own inverse
                v["%s.%d.peep" % (f, l)] = (cell.peep, lambda w: w.permute(2, 3, 0, 1),
                                            lambda w: w.permute(2, 3, 0, 1))
    v["out.weight"] = (model.out.weight, lambda w: w[:, :, 0, 0], lambda w: w[:, :, None, None])
    v["out.bias"] = (model.out.bias, lambda b: b, lambda b: b)
    return v


def cmd_fixture(args):
    rng = np.random.default_rng(20261203)
    L, hid, k, p, K, M, H, W, B = 2, 3, 3, 2, 3, 2, 8, 8, 2
    model = EncoderForecaster(1, L, hid, k, p, args.output == "softmax256",
                              (H // p, W // p) if args.peephole else None, args.feedback, args.loss).double()
    seqs = rng.integers(0, 256, size=(B, K + M, H, W), dtype=np.uint8)  # (N, T, H, W): 1 channel
    views = loom_views(model)
    tensors, params = [], {}
    for name, (prm, to, _) in views.items():
        shape = tuple(to(prm.detach()).shape)
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else 0
        sd = 1.0 / np.sqrt(fan) if fan else 0.3
        if name.endswith(".peep"):
            sd = 0.5
        params[name] = (rng.standard_normal(shape) * sd).astype(np.float32)
        tensors.append((name, params[name]))
    with torch.no_grad():
        for name, (prm, _, frm) in views.items():
            prm.copy_(frm(torch.from_numpy(params[name].astype(np.float64))))
    nll = model(torch.from_numpy(seqs[:, :, None].astype(np.float64) / 255.0), K, M)
    loss = nll.sum() / (B * M * H * W)
    model.zero_grad()
    loss.backward()
    tensors += [("seqs", seqs), ("nll", nll.detach().numpy().astype(np.float32)),
                ("loss", np.array([loss.item()], dtype=np.float32))]
    for name, (prm, to, _) in views.items():
        tensors.append(("grad." + name, to(prm.grad.detach()).contiguous().numpy().astype(np.float32)))
    meta = {"layers": L, "hidden": hid, "kernel": k, "patch": p, "frames_in": K, "frames_out": M,
            "height": H, "width": W, "batch": B, "loss_f64": repr(loss.item()),
            "output": args.output, "peephole": int(args.peephole), "feedback": int(args.feedback), "loss": args.loss,
            "generator": "bench/convlstm_torch.py fixture (torch %s, float64 from float32 values)" % torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "tensors": len(tensors), "loss": loss.item()}))


def flops_per_sequence(L, hid, k, p, K, M, H, W, C=1):
    """multiply-adds x 2 of the convolutions, forward + backward (x 3)"""
    S, cp = (H // p) * (W // p), C * p * p
    f = 0
    for l in range(L):
        f += K * 2 * S * 4 * hid * k * k * ((cp if l == 0 else hid) + hid)
        f += M * 2 * S * 4 * hid * k * k * ((0 if l == 0 else hid) + hid)
    f += M * 2 * S * cp * L * hid
    return 3 * f


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = EncoderForecaster(1, args.layers, args.hidden, args.kernel, args.patch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    T = args.frames_in + args.frames_out
    x = torch.rand(args.batch, T, 1, args.size, args.size)
    times, cpu = [], 0.0
    for s in range(args.steps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        # --autocast: the convolutions in bf16 (fp32 weights, as loom --precision bf16)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
            per = model(x, args.frames_in, args.frames_out)
        loss = per.float().sum() / (args.batch * args.frames_out * args.size ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s:  # the first step warms up oneDNN's kernels
            times.append(time.perf_counter() - t0)
            cpu += time.process_time() - c0
    med = float(np.median(times))
    gf = flops_per_sequence(args.layers, args.hidden, args.kernel, args.patch, args.frames_in, args.frames_out,
                            args.size, args.size) / 1e9
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": args.threads,
                      "autocast_bf16": args.autocast, "sequences_per_s": args.batch / med, "train_images_per_s": args.batch / med, "gflop_per_sequence": gf,
                      "gflop_per_s": gf * args.batch / med, "step_s_median": med, "steps": args.steps,
                      # CPU time of all threads (a spinning OpenMP wait counts): load-independent
                      "train_images_per_cpu_s": args.batch * args.steps / cpu,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--out", default="tests/fixtures/convlstm_ref.safetensors")
    f.add_argument("--output", choices=("bernoulli", "softmax256"), default="bernoulli")
    f.add_argument("--peephole", action="store_true")
    f.add_argument("--feedback", action="store_true")
    f.add_argument("--loss", choices=("xent", "l1", "mse"), default="xent")
    b = sub.add_parser("bench", help="training speed of the peer")
    for name, d in (("layers", 2), ("hidden", 64), ("kernel", 5), ("patch", 4), ("frames-in", 10),
                    ("frames-out", 10), ("size", 64), ("batch", 16), ("threads", 2), ("steps", 5)):
        b.add_argument("--" + name, type=int, default=d)
    b.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()
    return {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
