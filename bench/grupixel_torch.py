#!/usr/bin/python3
"""Independent PyTorch implementation of loom's grupixel model (docs/grupixel.md),
written the way a PyTorch user would: nn.Embedding + nn.GRU/LSTM/RNN over the whole
sequence + nn.Linear, and cached-state sampling one pixel at a time with hx.

  fixture -- tests/fixtures/grupixel_ref.safetensors: for each cell (gru, lstm, rnn)
             parameters in loom's names and layout, images, z, logits, loss and every
             gradient, computed in float64 (float32-rounded inputs); read by
             tests/test_grupixel.c. With --conditional,
             tests/fixtures/grupixel_cond_ref.safetensors: the same for class-conditional
             models (labels, the class tables rnn.l.cls.weight and their gradients); read
             by tests/test_ref_cond.c.
  bench   -- the speed / memory peer of `loom bench --model grupixel`: one JSON line
             with train_images_per_s, sample_ms_per_image, peak_rss_mb.

    /usr/bin/python3 bench/grupixel_torch.py fixture [--conditional]
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


class CondGruPixel(GruPixel):
    """Class-conditional: adding the class's row cls.weight[y] to every step's input
    pre-activation is, for a PyTorch user, a one-hot of y appended to each layer's input
    (the extra columns of weight_ih are the class table), so the stack is one single-layer
    nn.GRU/LSTM/RNN(h + K, h) per layer."""

    def __init__(self, cell, hidden, layers, zdim, nclasses):
        super().__init__(cell, hidden, layers, zdim)
        self.nclasses = nclasses
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[cell]
        del self.rnn
        self.rnns = nn.ModuleList([rnn(hidden + nclasses, hidden) for _ in range(layers)])

    def forward(self, x, z, labels):
        B, H, W = x.shape
        T = H * W
        flat = x.reshape(B, T)
        tok = torch.cat([torch.full((B, 1), START, dtype=flat.dtype), flat[:, :-1]], 1)
        onehot = F.one_hot(labels, self.nclasses).to(self.head.weight.dtype)  # (B, K)
        onehot = onehot[None].expand(T, B, self.nclasses)
        state = self.initial_state(z)
        inp = self.embed(tok.t())  # (T, B, h)
        for l, rnn in enumerate(self.rnns):
            st = (state[0][l:l + 1], state[1][l:l + 1]) if self.cell == "lstm" else state[l:l + 1]
            inp, _ = rnn(torch.cat([inp, onehot], 2), st)
        return self.head(inp).transpose(0, 1).reshape(B, H, W, 256)


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


def cond_fixture(args):
    """conditional models: 3 classes, batch 3, two images share a label"""
    H, W, hidden, layers, zdim, B, K = 3, 4, 3, 2, 2, 3, 3
    rng = np.random.default_rng(20261203)
    images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
    images[0, 0, 0], images[B - 1, H - 1, W - 1] = 0, 255
    z = rng.standard_normal((B, zdim)).astype(np.float32)
    labels = np.array([1, 2, 1], dtype=np.int32)
    tensors = [("images", images), ("z", z), ("labels", labels)]
    summary = {}
    for cell in ("gru", "lstm", "rnn"):
        model = CondGruPixel(cell, hidden, layers, zdim, K).double()
        G = {"gru": 3, "lstm": 4, "rnn": 1}[cell] * hidden
        shapes = [("embed.weight", (257, hidden)), ("init.weight", (zdim, layers * hidden)),
                  ("init.bias", (layers * hidden,))]
        for l in range(layers):
            shapes += [("rnn.%d.weight_ih" % l, (hidden, G)), ("rnn.%d.weight_hh" % l, (hidden, G)),
                       ("rnn.%d.bias_ih" % l, (G,)), ("rnn.%d.bias_hh" % l, (G,)),
                       ("rnn.%d.cls.weight" % l, (K, G))]
        shapes += [("head.weight", (hidden, 256)), ("head.bias", (256,))]
        w = {}
        for name, shape in shapes:
            w[name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
            tensors.append(("%s.%s" % (cell, name), w[name]))
        t = {n: torch.from_numpy(v.astype(np.float64)) for n, v in w.items()}
        with torch.no_grad():
            model.embed.weight.copy_(t["embed.weight"])
            model.init.weight.copy_(t["init.weight"].t())
            model.init.bias.copy_(t["init.bias"])
            for l, rnn in enumerate(model.rnns):
                p = "rnn.%d." % l
                rnn.weight_ih_l0.copy_(torch.cat([t[p + "weight_ih"], t[p + "cls.weight"]], 0).t())
                rnn.weight_hh_l0.copy_(t[p + "weight_hh"].t())
                rnn.bias_ih_l0.copy_(t[p + "bias_ih"])
                rnn.bias_hh_l0.copy_(t[p + "bias_hh"])
            model.head.weight.copy_(t["head.weight"].t())
            model.head.bias.copy_(t["head.bias"])
        x = torch.from_numpy(images.astype(np.int64))
        logits = model(x, torch.from_numpy(z.astype(np.float64)), torch.from_numpy(labels.astype(np.int64)))
        loss = nll_loss(logits, x)
        model.zero_grad()
        loss.backward()
        g = {"embed.weight": model.embed.weight.grad, "init.weight": model.init.weight.grad.t(),
             "init.bias": model.init.bias.grad, "head.weight": model.head.weight.grad.t(),
             "head.bias": model.head.bias.grad}
        for l, rnn in enumerate(model.rnns):
            p = "rnn.%d." % l
            gih = rnn.weight_ih_l0.grad.t()
            g[p + "weight_ih"], g[p + "cls.weight"] = gih[:hidden], gih[hidden:]
            g[p + "weight_hh"] = rnn.weight_hh_l0.grad.t()
            g[p + "bias_ih"], g[p + "bias_hh"] = rnn.bias_ih_l0.grad, rnn.bias_hh_l0.grad
        tensors.append(("%s.logits" % cell, logits.detach().numpy().astype(np.float32)))
        tensors.append(("%s.loss" % cell, np.array([loss.item()], dtype=np.float32)))
        for name, _ in shapes:
            tensors.append(("%s.grad.%s" % (cell, name), g[name].detach().contiguous().numpy().astype(np.float32)))
        summary[cell] = loss.item()
    meta = {"height": H, "width": W, "hidden": hidden, "layers": layers, "zdim": zdim, "batch": B,
            "classes": K, "loss_f64": json.dumps(summary),
            "generator": "bench/grupixel_torch.py fixture --conditional (torch %s, float64)" % torch.__version__}
    return tensors, meta, summary


def cmd_fixture(args):
    if args.conditional:
        tensors, meta, summary = cond_fixture(args)
        return write_fixture(args.out or "tests/fixtures/grupixel_cond_ref.safetensors", tensors, meta, summary)
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
    write_fixture(args.out or "tests/fixtures/grupixel_ref.safetensors", tensors, meta, summary)


def write_fixture(out, tensors, meta, summary):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_safetensors(out, tensors, meta)
    back, _ = read_safetensors(out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": out, "tensors": len(tensors), "bytes": os.path.getsize(out),
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
        # --autocast: the forward's matrix products in bf16 (fp32 weights, as loom --precision bf16)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
            logits = model(x, z)
        loss = nll_loss(logits.float(), x)
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
            model.sample(args.sample_n, H, W, gen)
        reps.append(time.perf_counter() - t)
        creps.append(time.process_time() - c)
    print(json.dumps({
        "model": "grupixel", "autocast_bf16": args.autocast, "cell": args.cell, "hidden": args.hidden, "layers": args.layers,
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
    f.add_argument("--conditional", action="store_true",
                   help="class-conditional models (default --out tests/fixtures/grupixel_cond_ref.safetensors)")
    f.add_argument("--out", default=None, help="default tests/fixtures/grupixel_ref.safetensors")
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
    b.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()
    return {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
