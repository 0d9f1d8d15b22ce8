#!/usr/bin/python3
"""PyTorch peer and reference of loom's DRAW model (docs/draw.md).

Written from the spec the way a PyTorch user would: two nn.LSTMCell, nn.Linear
heads, a batched Gaussian filterbank with torch ops (torch.bmm), autograd, Adam.
Same equations as loom: x_hat = x - sigmoid(c_{t-1}); r = read(x, x_hat, h_dec);
h_enc = LSTM_enc([r, h_dec]); z = mu + exp(log sigma) eps; h_dec = LSTM_dec(z);
c_t = c_{t-1} + write(h_dec); loss = BCE(sigmoid(c_T), x) + sum_t KL, nats/image.

  fixture -- tests/fixtures/draw_ref.safetensors: two tiny configs (attention on, "attn.";
             off, "noattn."): parameters in loom's names and layout, images, the binarized
             images x and the noise eps (both from bench/loom_noise.py, a Python
             transcription of docs/draw.md's random numbers), per-image negative ELBOs, the
             loss (mean per pixel, as loom_model_grad) and its gradient for every tensor,
             in float64 from float32 values; read by tests/test_ref_latent.c.
  bench   -- the speed peer: one JSON line with train_images_per_s and peak_rss_mb.

    /usr/bin/python3 bench/draw_torch.py fixture
    /usr/bin/python3 bench/draw_torch.py bench --hidden 256 --zdim 100 --steps-draw 16 --batch 64
"""

import argparse
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def fashion(split):
    name = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(FASHION_DIR, "%s-images-idx3-ubyte.gz" % name), "rb") as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)


class DRAW(nn.Module):
    def __init__(self, H, W, hidden, zdim, T, read_n, write_n, attention):
        super().__init__()
        self.H, self.W, self.h, self.z, self.T = H, W, hidden, zdim, T
        self.Nr, self.Nw, self.attention = read_n, write_n, attention
        R = 2 * read_n * read_n if attention else 2 * H * W
        P = write_n * write_n if attention else H * W
        self.enc = nn.LSTMCell(R + hidden, hidden)
        self.dec = nn.LSTMCell(zdim, hidden)
        self.q = nn.Linear(hidden, 2 * zdim)
        self.write = nn.Linear(hidden, P)
        if attention:
            self.read_attn = nn.Linear(hidden, 5)
            self.write_attn = nn.Linear(hidden, 5)

    def filterbank(self, p, N):
        """p (B, 5) -> Fx (B, N, W), Fy (B, N, H), gamma (B, 1, 1)."""
        H, W = self.H, self.W
        gx = (W + 1) / 2 * (p[:, 0] + 1)
        gy = (H + 1) / 2 * (p[:, 1] + 1)
        s2 = torch.exp(p[:, 2])
        d = ((max(H, W) - 1) / (N - 1) if N > 1 else 1.0) * torch.exp(p[:, 3])
        gm = torch.exp(p[:, 4])
        off = torch.arange(N, dtype=p.dtype) + 0.5 - N / 2
        mx = gx[:, None] + off[None] * d[:, None]
        my = gy[:, None] + off[None] * d[:, None]
        a = torch.arange(1, W + 1, dtype=p.dtype)
        b = torch.arange(1, H + 1, dtype=p.dtype)
        Fx = torch.exp(-(a[None, None] - mx[:, :, None]) ** 2 / (2 * s2[:, None, None]))
        Fy = torch.exp(-(b[None, None] - my[:, :, None]) ** 2 / (2 * s2[:, None, None]))
        Fx = Fx / Fx.sum(2, keepdim=True).clamp(min=1e-8)
        Fy = Fy / Fy.sum(2, keepdim=True).clamp(min=1e-8)
        return Fx, Fy, gm[:, None, None]

    def forward(self, x, eps=None):
        """x (B, H*W) binary, eps (T, B, z) or None (drawn); returns the negative ELBO per
        image (B,)."""
        B, H, W, h = x.shape[0], self.H, self.W, self.h
        c = x.new_zeros(B, H * W)
        he, ce = x.new_zeros(B, h), x.new_zeros(B, h)
        hd, cd = x.new_zeros(B, h), x.new_zeros(B, h)
        kl = x.new_zeros(B)
        ximg = x.view(B, H, W)
        for t in range(self.T):
            xh = x - torch.sigmoid(c)
            if self.attention:
                Fx, Fy, gm = self.filterbank(self.read_attn(hd), self.Nr)
                FxT = Fx.transpose(1, 2)
                rx = gm * torch.bmm(torch.bmm(Fy, ximg), FxT)
                rxh = gm * torch.bmm(torch.bmm(Fy, xh.view(B, H, W)), FxT)
                r = torch.cat([rx.view(B, -1), rxh.view(B, -1)], 1)
            else:
                r = torch.cat([x, xh], 1)
            he, ce = self.enc(torch.cat([r, hd], 1), (he, ce))
            mu, ls = self.q(he).chunk(2, 1)
            z = mu + torch.exp(ls) * (torch.randn_like(mu) if eps is None else eps[t])
            kl = kl + (0.5 * (mu ** 2 + torch.exp(2 * ls) - 1) - ls).sum(1)
            hd, cd = self.dec(z, (hd, cd))
            w = self.write(hd)
            if self.attention:
                Fx, Fy, gm = self.filterbank(self.write_attn(hd), self.Nw)
                N = self.Nw
                o = torch.bmm(torch.bmm(Fy.transpose(1, 2), w.view(B, N, N)), Fx) / gm
                c = c + o.view(B, H * W)
            else:
                c = c + w
        bce = F.binary_cross_entropy_with_logits(c, x, reduction="none").sum(1)
        return bce + kl


# ------------------------------------------------------------- loom layout, fixture


def loom_views(model):
    """loom name -> (torch parameter, transposed): loom keeps y = x @ w with w (fan_in, fan_out),
    the transpose of every torch weight matrix; LSTM gates in torch's order i f g o as loom's."""
    v = {}
    for name, cell in (("enc", model.enc), ("dec", model.dec)):
        v[name + ".w_ih"] = (cell.weight_ih, True)
        v[name + ".w_hh"] = (cell.weight_hh, True)
        v[name + ".b_ih"] = (cell.bias_ih, False)
        v[name + ".b_hh"] = (cell.bias_hh, False)
    lins = [("q", model.q), ("write", model.write)]
    if model.attention:
        lins += [("read_attn", model.read_attn), ("write_attn", model.write_attn)]
    for name, lin in lins:
        v[name + ".weight"] = (lin.weight, True)
        v[name + ".bias"] = (lin.bias, False)
    return v


# the two fixture configs: attention on with an odd zdim (the Box-Muller pair of the last
# normal is cut), the static (evaluation) key; attention off with a training noise_seed
FIXTURE_CASES = [
    dict(prefix="attn.", H=5, W=6, hidden=3, zdim=3, T=3, read_n=2, write_n=3, attention=1, batch=2,
         noise_seed=0),
    dict(prefix="noattn.", H=4, W=5, hidden=3, zdim=2, T=2, read_n=2, write_n=2, attention=0, batch=2,
         # cli/cmd_train.c's key of step 7 of a run with --seed 1
         noise_seed=((2 * 0x9E3779B97F4A7C15) ^ (7 * 0xBF58476D1CE4E5B9) ^ 1) & ((1 << 64) - 1)),
]


def cmd_fixture(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import loom_noise
    from rowlstm_torch import read_safetensors, write_safetensors

    loom_noise.self_check()
    rng = np.random.default_rng(20261201)
    tensors, meta, summary = [], {}, {}
    for cs in FIXTURE_CASES:
        pre, H, W, B, T, z = cs["prefix"], cs["H"], cs["W"], cs["batch"], cs["T"], cs["zdim"]
        HW = H * W
        model = DRAW(H, W, cs["hidden"], z, T, cs["read_n"], cs["write_n"], bool(cs["attention"])).double()
        images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)  # both ends of the binarization
        images[B - 1, H - 1, W - 1] = 255
        x = np.stack([loom_noise.binarize(images[b], cs["noise_seed"]) for b in range(B)])
        # eps (T, B, z): per image one stream, T calls of z normals each
        eps = np.zeros((T, B, z), dtype=np.float32)
        for b in range(B):
            r = loom_noise.noise_stream(images[b], cs["noise_seed"], 0)
            for t in range(T):
                eps[t, b] = loom_noise.normals(r, z)
        views = loom_views(model)
        with torch.no_grad():
            for name, (p, tr) in views.items():
                shape = tuple(p.shape[::-1]) if tr else tuple(p.shape)
                w = (rng.standard_normal(shape) * 0.5).astype(np.float32)
                tensors.append((pre + name, w))
                t64 = torch.from_numpy(w.astype(np.float64))
                p.copy_(t64.t() if tr else t64)
        nll = model(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(eps.astype(np.float64)))
        loss = nll.sum() / (B * HW)  # loom_model_grad: the mean negative ELBO per pixel
        model.zero_grad()
        loss.backward()
        tensors += [(pre + "images", images), (pre + "x", x), (pre + "eps", eps),
                    (pre + "nll", nll.detach().numpy().astype(np.float32)),
                    (pre + "loss", np.array([loss.item()], dtype=np.float32))]
        for name, (p, tr) in views.items():
            g = p.grad.detach()
            tensors.append((pre + "grad." + name, (g.t() if tr else g).numpy().astype(np.float32)))
        for k in ("H", "W"):
            meta[pre + {"H": "height", "W": "width"}[k]] = cs[k]
        for k in ("hidden", "zdim", "read_n", "write_n", "attention", "batch", "noise_seed"):
            meta[pre + k] = cs[k]
        meta[pre + "steps_draw"] = T
        meta[pre + "loss_f64"] = repr(loss.item())
        summary[pre[:-1]] = loss.item()
    meta["generator"] = "bench/draw_torch.py fixture (torch %s, float64 from float32 values)" % torch.__version__
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, _ = read_safetensors(args.out)
    for n, a in tensors:
        assert np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "tensors": len(tensors), "bytes": os.path.getsize(args.out),
                      "loss": summary}))


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load = os.getloadavg()[0]
    train = fashion("train")
    H, W = train.shape[1:]
    model = DRAW(H, W, args.hidden, args.zdim, args.steps_draw, args.read_n, args.write_n,
                 args.attention == "on")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(args.seed)

    def step():
        idx = rng.integers(0, train.shape[0], args.batch)
        u = torch.from_numpy(train[idx].reshape(args.batch, -1).astype(np.float32) / 255.0)
        x = torch.bernoulli(u)  # dynamic binarization
        # --autocast: the forward's matrix products in bf16 (fp32 weights, as loom --precision bf16)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
            nll = model(x)
        loss = nll.float().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    cpu0 = time.process_time()  # CPU seconds of all threads, as loom bench's train_images_per_cpu_s
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu0
    med = float(np.median(times))
    print(json.dumps({
        "train_images_per_s": round(args.batch / med, 2), "autocast_bf16": args.autocast,
        "train_images_per_cpu_s": round(args.batch * args.steps / cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "batch": args.batch, "hidden": args.hidden, "zdim": args.zdim, "steps_draw": args.steps_draw,
        "read_n": args.read_n, "write_n": args.write_n, "attention": args.attention,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "loadavg_start": round(load, 2), "loadavg_end": round(os.getloadavg()[0], 2),
        "timed_steps": args.steps, "statistic": "median step time",
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--out", default="tests/fixtures/draw_ref.safetensors")
    b = sub.add_parser("bench", help="training throughput (images/s) and peak RSS")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--hidden", type=int, default=256)
    b.add_argument("--zdim", type=int, default=100)
    b.add_argument("--steps-draw", type=int, default=16)
    b.add_argument("--read-n", type=int, default=2)
    b.add_argument("--write-n", type=int, default=5)
    b.add_argument("--attention", choices=["on", "off"], default="on")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()
    {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
