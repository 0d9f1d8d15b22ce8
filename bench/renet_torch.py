#!/usr/bin/python3
"""Independent PyTorch implementation of loom's renet classifier (docs/renet.md),
written the way a PyTorch user would: patches by view/permute, one bidirectional
nn.LSTM/nn.GRU/nn.RNN per sweep (rows, then columns, per layer), a mean over the
grid, a ReLU layer and a linear head.

  fixture -- tests/fixtures/renet_ref.safetensors: for each cell (lstm, gru)
             parameters in loom's names and layout, images, labels, logits,
             features, loss and every gradient, computed in float64
             (float32-rounded inputs); read by tests/test_renet.c.
  disc-fixture -- tests/fixtures/renet_d_ref.safetensors: the same network as
             renet_d, the recurrent discriminator (one logit, float images in
             [0, 1]): parameters, images, logits, and the gradients of
             sum_b r_b logit_b of every parameter and of the images; read by
             tests/test_gran.c.
  bench   -- the speed peer of `loom bench --model renet`: one JSON line with
             train_images_per_s and train_images_per_cpu_s (Adam steps on
             Fashion-MNIST with its labels; per CPU second of all its threads).

    /usr/bin/python3 bench/renet_torch.py fixture
    /usr/bin/python3 bench/renet_torch.py disc-fixture
    /usr/bin/python3 bench/renet_torch.py bench --hidden 64 --layers 2 --batch 64 --threads 2
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rowlstm_torch import fashion, write_safetensors, FASHION_DIR  # noqa: E402

CELLS = {"lstm": (nn.LSTM, 4), "gru": (nn.GRU, 3), "rnn": (nn.RNN, 1)}


class ReNet(nn.Module):
    def __init__(self, cell, channels, patch, hidden, layers, nclasses):
        super().__init__()
        rnn = CELLS[cell][0]
        self.patch, self.hidden = patch, hidden
        D = 2 * hidden
        self.rows = nn.ModuleList([rnn(patch * patch * channels if l == 0 else D, hidden, bidirectional=True)
                                   for l in range(layers)])
        self.cols = nn.ModuleList([rnn(D, hidden, bidirectional=True) for _ in range(layers)])
        self.fc = nn.Linear(D, D)
        self.head = nn.Linear(D, nclasses)

    def forward(self, x):
        """x (B, C, H, W) uint8, or floats in [0, 1] -> logits (B, K), features (B, 2h)"""
        B, C, H, W = x.shape
        p = self.patch
        I, J = -(-H // p), -(-W // p)
        xf = x.to(self.fc.weight.dtype) if x.is_floating_point() else x.to(self.fc.weight.dtype) / 255.0
        xf = F.pad(xf, (0, J * p - W, 0, I * p - H))
        g = xf.view(B, C, I, p, J, p).permute(0, 2, 4, 1, 3, 5).reshape(B, I, J, C * p * p)
        for rows, cols in zip(self.rows, self.cols):
            y, _ = rows(g.permute(2, 0, 1, 3).reshape(J, B * I, -1))  # time j, every (image, row)
            g = y.reshape(J, B, I, -1).permute(1, 2, 0, 3)
            y, _ = cols(g.permute(1, 0, 2, 3).reshape(I, B * J, -1))  # time i, every (image, column)
            g = y.reshape(I, B, J, -1).permute(1, 0, 2, 3)
        hid = F.relu(self.fc(g.mean((1, 2))))
        return self.head(hid), hid


def loom_views(model):
    """loom name -> (torch parameter, transposed): loom keeps y = x @ w"""
    v = {}
    for l in range(len(model.rows)):
        for axis, mod in (("row", model.rows[l]), ("col", model.cols[l])):
            for d, suf in (("f", ""), ("b", "_reverse")):
                for kind in ("ih", "hh"):
                    v["sweep.%d.%s_%s.weight_%s" % (l, axis, d, kind)] = (getattr(mod, "weight_%s_l0%s" % (kind, suf)), True)
                    v["sweep.%d.%s_%s.bias_%s" % (l, axis, d, kind)] = (getattr(mod, "bias_%s_l0%s" % (kind, suf)), False)
    v["fc.weight"], v["fc.bias"] = (model.fc.weight, True), (model.fc.bias, False)
    v["head.weight"], v["head.bias"] = (model.head.weight, True), (model.head.bias, False)
    return v


def cmd_fixture(args):
    """5x6 images (a padded column and row of patches), patch 2, 2 layers of 3, 4 classes, batch 3"""
    C, H, W, patch, hidden, layers, K, B = 1, 5, 6, 2, 3, 2, 4, 3
    rng = np.random.default_rng(20261202)
    images = rng.integers(0, 256, size=(B, C, H, W), dtype=np.uint8)
    labels = np.array([2, 0, 3], dtype=np.int32)
    tensors = [("images", images.reshape(B, H, W)), ("labels", labels)]
    summary = {}
    for cell in ("lstm", "gru"):
        model = ReNet(cell, C, patch, hidden, layers, K).double()
        views = loom_views(model)
        with torch.no_grad():
            for name, (p, tr) in views.items():
                shape = tuple(reversed(p.shape)) if tr else tuple(p.shape)
                w = (rng.standard_normal(shape) * 0.5).astype(np.float32)
                tensors.append(("%s.%s" % (cell, name), w))
                t = torch.from_numpy(w.astype(np.float64))
                p.copy_(t.t() if tr else t)
        logits, hid = model(torch.from_numpy(images))
        # loom's training loss: mean cross-entropy per image, over the H*W pixels
        loss = F.cross_entropy(logits, torch.from_numpy(labels).long(), reduction="sum") / (B * H * W)
        loss.backward()
        tensors.append(("%s.logits" % cell, logits.detach().numpy().astype(np.float32)))
        tensors.append(("%s.features" % cell, hid.detach().numpy().astype(np.float32)))
        tensors.append(("%s.loss" % cell, np.array([loss.item()], dtype=np.float32)))
        for name, (p, tr) in views.items():
            gr = p.grad.t() if tr else p.grad
            tensors.append(("%s.grad.%s" % (cell, name), gr.numpy().astype(np.float32)))
        summary[cell] = loss.item()
    meta = {"height": H, "width": W, "channels": C, "patch": patch, "hidden": hidden, "layers": layers,
            "classes": K, "batch": B}
    write_safetensors(args.out, tensors, meta)
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "loss": summary}))


def cmd_disc_fixture(args):
    """renet_d: 7x5 float images (a padded row and column of patches), patch 2, 2 layers of 3 (LSTM), batch 3"""
    C, H, W, patch, hidden, layers, B = 1, 7, 5, 2, 3, 2, 3
    rng = np.random.default_rng(20261204)
    x32 = rng.uniform(0, 1, size=(B, C, H, W)).astype(np.float32)
    r32 = rng.standard_normal(B).astype(np.float32)
    model = ReNet("lstm", C, patch, hidden, layers, 1).double()
    views = loom_views(model)
    tensors = [("images", x32.reshape(B, H, W)), ("r", r32)]
    with torch.no_grad():
        for name, (p, tr) in views.items():
            shape = tuple(reversed(p.shape)) if tr else tuple(p.shape)
            w = (rng.standard_normal(shape) * 0.5).astype(np.float32)
            tensors.append((name, w))
            t = torch.from_numpy(w.astype(np.float64))
            p.copy_(t.t() if tr else t)
    x = torch.from_numpy(x32.astype(np.float64)).requires_grad_(True)
    logits, _ = model(x)
    loss = (logits[:, 0] * torch.from_numpy(r32.astype(np.float64))).sum()
    loss.backward()
    tensors.append(("logits", logits.detach().numpy()[:, 0].astype(np.float32)))
    tensors.append(("grad.images", x.grad.numpy().reshape(B, H, W).astype(np.float32)))
    for name, (p, tr) in views.items():
        gr = p.grad.t() if tr else p.grad
        tensors.append(("grad.%s" % name, gr.numpy().astype(np.float32)))
    meta = {"height": H, "width": W, "channels": C, "patch": patch, "hidden": hidden, "layers": layers, "batch": B}
    write_safetensors(args.out, tensors, meta)
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "loss": loss.item()}))


def load_labels(split):
    name = {"train": "train-labels-idx1-ubyte.gz", "test": "t10k-labels-idx1-ubyte.gz"}[split]
    with gzip.open(os.path.join(FASHION_DIR, name), "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    x_all, y_all = fashion("train"), load_labels("train")
    model = ReNet(args.cell, 1, args.patch, args.hidden, args.layers, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)

    def step():
        idx = rng.integers(0, len(x_all), size=args.batch)
        x = torch.from_numpy(x_all[idx][:, None])
        y = torch.from_numpy(y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x)[0], y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times, cpu = [], []
    for _ in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)  # all threads of the process
    med = float(np.median(times))
    # CPU-time throughput, like loom bench's: less sensitive to a loaded machine
    print(json.dumps({"train_images_per_s": round(args.batch / med, 3),
                      "train_images_per_cpu_s": round(args.batch / float(np.median(cpu)), 3),
                      "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": args.batch, "layers": args.layers,
                      "hidden": args.hidden, "patch": args.patch, "cell": args.cell,
                      "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                      "loadavg_1m": os.getloadavg()[0], "timed_steps": args.steps}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--out", default="tests/fixtures/renet_ref.safetensors")
    fd = sub.add_parser("disc-fixture")
    fd.add_argument("--out", default="tests/fixtures/renet_d_ref.safetensors")
    b = sub.add_parser("bench")
    b.add_argument("--cell", default="lstm", choices=sorted(CELLS))
    b.add_argument("--hidden", type=int, default=64)
    b.add_argument("--layers", type=int, default=2)
    b.add_argument("--patch", type=int, default=2)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    {"fixture": cmd_fixture, "disc-fixture": cmd_disc_fixture, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
