#!/usr/bin/python3
"""Independent PyTorch implementation of loom's grupixel model (docs/grupixel.md),
written the way a PyTorch user would: nn.Embedding + nn.GRU/LSTM/RNN over the whole
sequence + nn.Linear, and cached-state sampling one pixel at a time with hx.

  fixture -- tests/fixtures/grupixel_ref.safetensors: for each cell (gru, lstm, rnn)
             parameters in loom's names and layout, images, z, logits, loss and every
             gradient, computed in float64 (float32-rounded inputs); read by
             tests/test_grupixel.c.
  bench   -- the speed / memory peer of `loom bench --model grupixel`: one JSON line
             with train_images_per_s, sample_ms_per_image, peak_rss_mb.

    /usr/bin/python3 bench/grupixel_torch.py fixture
    /usr/bin/python3 bench/grupixel_torch.py bench --cell gru --hidden 256 --batch 64 --threads 2
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rowlstm_torch import fashion, read_safetensors, write_safetensors  # noqa: E402

START = 256  # the start token: the "previous pixel" of the first pixel


class GruPixel(nn.Module):
    def __init__(self, cell, hidden, layers, zdim):
        super().__init__()
        self.cell, self.hidden, self.layers, self.zdim = cell, hidden, layers, zdim
        self.embed = nn.Embedding(257, hidden)
        self.init = nn.Linear(zdim, layers * hidden)  # z -> every layer's h0
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[cell]
        self.rnn = rnn(hidden, hidden, num_layers=layers)  # time-major (T, B, F)
        self.head = nn.Linear(hidden, 256)

    def initial_state(self, z):
        B = z.shape[0]
        h0 = self.init(z).view(B, self.layers, self.hidden).transpose(0, 1).contiguous()
        return (h0, torch.zeros_like(h0)) if self.cell == "lstm" else h0

    def forward(self, x, z):
        """x (B, H, W) int64 pixels, z (B, zdim) -> logits (B, H, W, 256)"""
        B, H, W = x.shape
        flat = x.reshape(B, H * W)
        tok = torch.cat([torch.full((B, 1), START, dtype=flat.dtype), flat[:, :-1]], 1)
        out, _ = self.rnn(self.embed(tok.t()), self.initial_state(z))  # (T, B, h)
        return self.head(out).transpose(0, 1).reshape(B, H, W, 256)

    @torch.no_grad()
    def sample(self, n, H, W, gen, temperature=1.0):
        """Cached state: one step of the cell per pixel, never recomputing the past."""
        z = torch.randn(n, self.zdim, generator=gen, dtype=self.head.weight.dtype)
        state = self.initial_state(z)
        tok = torch.full((1, n), START, dtype=torch.int64)
        out = torch.empty(n, H * W, dtype=torch.int64)
        for t in range(H * W):
            y, state = self.rnn(self.embed(tok), state)
            p = F.softmax(self.head(y[0]) / temperature, dim=1)
            tok = torch.multinomial(p, 1, generator=gen).t()
            out[:, t] = tok[0]
        return out.view(n, H, W)


def nll_loss(logits, x):
    """mean negative log-likelihood per pixel in nats (loom's training loss)"""
    return F.cross_entropy(logits.reshape(-1, 256), x.reshape(-1))


# ----------------------------------------------------------------- loom layout


def loom_views(model):
    """loom name -> torch parameter; loom keeps y = x @ w, i.e. the transpose of
    every torch weight matrix except the embedding."""
    v = {"embed.weight": (model.embed.weight, False),
         "init.weight": (model.init.weight, True), "init.bias": (model.init.bias, False)}
    for l in range(model.layers):
        for kind in ("ih", "hh"):
            v["rnn.%d.weight_%s" % (l, kind)] = (getattr(model.rnn, "weight_%s_l%d" % (kind, l)), True)
            v["rnn.%d.bias_%s" % (l, kind)] = (getattr(model.rnn, "bias_%s_l%d" % (kind, l)), False)
    v["head.weight"] = (model.head.weight, True)
    v["head.bias"] = (model.head.bias, False)
    return v


def cmd_fixture(args):
    H, W, hidden, layers, zdim, B = 3, 4, 3, 2, 2, 2
    rng = np.random.default_rng(20261124)
    images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
    images[0, 0, 0], images[1, H - 1, W - 1] = 0, 255
    z = rng.standard_normal((B, zdim)).astype(np.float32)
    tensors = [("images", images), ("z", z)]
    summary = {}
    for cell in ("gru", "lstm", "rnn"):
        model = GruPixel(cell, hidden, layers, zdim).double()
        views = loom_views(model)
        with torch.no_grad():
            for name, (p, tr) in views.items():
                shape = tuple(p.shape[::-1]) if tr else tuple(p.shape)
                v = (rng.standard_normal(shape) * 0.5).astype(np.float32)
                tensors.append(("%s.%s" % (cell, name), v))
                t = torch.from_numpy(v.astype(np.float64))
                p.copy_(t.t() if tr else t)
        x = torch.from_numpy(images.astype(np.int64))
        logits = model(x, torch.from_numpy(z.astype(np.float64)))
        loss = nll_loss(logits, x)
        model.zero_grad()
        loss.backward()
        tensors.append(("%s.logits" % cell, logits.detach().numpy().astype(np.float32)))
        tensors.append(("%s.loss" % cell, np.array([loss.item()], dtype=np.float32)))
        for name, (p, tr) in views.items():
            g = p.grad.detach()
            tensors.append(("%s.grad.%s" % (cell, name), (g.t() if tr else g).numpy().astype(np.float32)))
        summary[cell] = loss.item()
    meta = {"height": H, "width": W, "hidden": hidden, "layers": layers, "zdim": zdim, "batch": B,
            "loss_f64": json.dumps(summary),
            "generator": "bench/grupixel_torch.py fixture (torch %s, float64)" % torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "tensors": len(tensors), "bytes": os.path.getsize(args.out),
                      "loss": summary}))


# ------------------------------------------------------------------------ bench


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load_start = os.getloadavg()[0]
    try:
        train = fashion("train")
    except SystemExit:
        train = np.random.default_rng(1).integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    H, W = train.shape[1:]
    model = GruPixel(args.cell, args.hidden, args.layers, args.zdim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(args.seed)

    def step():
        x = torch.from_numpy(train[rng.integers(0, len(train), args.batch)].astype(np.int64))
        z = torch.randn(args.batch, args.zdim)  # fresh z per image and step, as loom trains
        opt.zero_grad(set_to_none=True)
        loss = nll_loss(model(x, z), x)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    # process CPU time next to wall time: on a machine shared with other jobs,
    # wall time measures the neighbours too
    times, cpu, t_end = [], 0.0, time.perf_counter() + args.seconds
    while len(times) < args.min_steps or time.perf_counter() < t_end:
        t, c = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - t)
        cpu += time.process_time() - c
    train_ips = args.batch / float(np.median(times))

    gen = torch.Generator().manual_seed(args.seed)
    model.eval()
    reps, creps, t_end = [], [], time.perf_counter() + args.sample_seconds
    while not reps or time.perf_counter() < t_end:
        t, c = time.perf_counter(), time.process_time()
        model.sample(args.sample_n, H, W, gen)
        reps.append(time.perf_counter() - t)
        creps.append(time.process_time() - c)
    print(json.dumps({
        "model": "grupixel", "cell": args.cell, "hidden": args.hidden, "layers": args.layers,
        "batch": args.batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "train_images_per_s": round(train_ips, 2), "timed_steps": len(times),
        "sample_ms_per_image": round(1e3 * float(np.median(reps)) / args.sample_n, 4),
        "sample_n": args.sample_n, "sample_runs": len(reps),
        "train_images_per_cpu_s": round(args.batch * len(times) / cpu, 2),
        "sample_cpu_ms_per_image": round(1e3 * float(np.median(creps)) / args.sample_n, 4),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "sample_method": "cached state: nn.%s with hx, one step per pixel" % {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}[args.cell],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--out", default="tests/fixtures/grupixel_ref.safetensors")
    b = sub.add_parser("bench", help="speed / memory peer (one JSON line)")
    b.add_argument("--cell", default="gru", choices=["gru", "lstm", "rnn"])
    b.add_argument("--hidden", type=int, default=256)
    b.add_argument("--layers", type=int, default=1)
    b.add_argument("--zdim", type=int, default=32)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--min-steps", type=int, default=5)
    b.add_argument("--seconds", type=float, default=40.0, help="time the training steps for this long")
    b.add_argument("--sample-n", type=int, default=64)
    b.add_argument("--sample-seconds", type=float, default=15.0)
    args = ap.parse_args()
    return {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
