#!/usr/bin/python3
"""Independent PyTorch reference for loom's Diagonal BiLSTM (docs/diagbilstm.md).

Written from the definition the way a PyTorch user writes PixelRNN: the map is
skewed by padding/indexing (row i shifted right by i), the input-to-state
convolution is an nn.Conv2d 1x1 on the skewed map, the state-to-state 2x1 column
convolution an nn.Conv1d over each column, a Python loop walks the columns, and
the reverse direction runs on the mirrored map (torch.flip) with its output
shifted down one row.  It shares nothing with the C code but the definition.

  fixture -- tests/fixtures/diagbilstm_ref.safetensors: parameters, images, labels,
             logits, loss and all gradients of a tiny conditional config, float64;
  bench   -- the speed peer (float32, Adam, torch threads), one JSON line;
  check   -- self-checks: causality of this implementation, and that moving the
             shift to the wrong side breaks it.

    /usr/bin/python3 bench/diagbilstm_torch.py fixture
    /usr/bin/python3 bench/diagbilstm_torch.py bench --layers 7 --hidden 16 --batch 16 --threads 2
"""

import argparse
import json
import math
import os
import resource
import sys
import time

# Torch runs thousands of tiny parallel regions per step; with OpenMP's default
# spinning, one other busy process on a 2-core machine made a 2-thread step take
# 45 s instead of 3.5 s. The wait policy is the caller's choice (OMP_WAIT_POLICY):
# bench/bench.sh runs the peer with the default and with PASSIVE and keeps the faster.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# shared, model-independent pieces: the mask-A input conv, safetensors I/O, data
from rowlstm_torch import (Batches, MaskedConv2d, _system_busy_s, fashion,  # noqa: E402
                           mask_a_7x7, read_safetensors, write_safetensors,
                           apply_masks, gate_group, group, loom_logits, mask_a_rgb, mask_b)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# --------------------------------------------------------------------------- model


def skew(x):
    """(B, C, H, W) -> (B, C, H, W+H-1): row i shifted right by i, zeros elsewhere."""
    B, C, H, W = x.shape
    out = x.new_zeros(B, C, H, W + H - 1)
    for i in range(H):
        out[:, :, i, i:i + W] = x[:, :, i]
    return out


def unskew(s, W):
    """(B, C, H, W+H-1) -> (B, C, H, W)."""
    return torch.stack([s[:, :, i, i:i + W] for i in range(s.shape[2])], dim=2)


class DiagonalLSTM(nn.Module):
    """One direction over the skewed map, column by column."""

    def __init__(self, C, hidden, channels=1):
        super().__init__()
        self.hidden = hidden
        # mask B on a 1x1 conv with one colour group: every connection is allowed
        if channels == 1:
            self.i2s = nn.Conv2d(C, 4 * hidden, 1)
        else:  # three groups: gate group a reads feature groups <= a
            mb = mask_b([gate_group(q, hidden) for q in range(4 * hidden)], [group(k, C) for k in range(C)])
            self.i2s = MaskedConv2d(C, 4 * hidden, 1, mask=mb.view(4 * hidden, C, 1, 1))
        # 2x1 column conv: output[i] = w[..., 0] h[i-1] + w[..., 1] h[i] (previous column)
        self.s2s = nn.Conv1d(hidden, 4 * hidden, 2, padding=1, bias=False)

    def forward(self, x, cls=None):  # x (B, C, H, W); cls (B, 4h) or None
        B, _, H, W = x.shape
        Wp = W + H - 1
        S = self.i2s(skew(x))  # (B, 4h, H, Wp)
        if cls is not None:
            S = S + cls[:, :, None, None]
        # states on the skew padding are zero: the zero initial states of the image border
        k = torch.arange(Wp)[None, :] - torch.arange(H)[:, None]
        valid = ((k >= 0) & (k < W)).to(x.dtype).unbind(1)  # Wp x (H,)
        h = x.new_zeros(B, self.hidden, H)
        c = x.new_zeros(B, self.hidden, H)
        cols = []
        for s_col, m in zip(S.unbind(3), valid):  # unbind: one cheap backward, not Wp selects
            a = s_col + self.s2s(h)[:, :, :H]
            ig, fg, og, gg = a.chunk(4, dim=1)
            c = torch.sigmoid(fg) * c + torch.sigmoid(ig) * torch.tanh(gg)
            h = torch.sigmoid(og) * torch.tanh(c)
            c, h = c * m, h * m
            cols.append(h)
        return unskew(torch.stack(cols, dim=3), W)  # (B, h, H, W)


class DiagonalBiLSTMLayer(nn.Module):
    def __init__(self, hidden, shift="reverse", channels=1):
        super().__init__()
        C = 2 * hidden
        self.hidden, self.shift = hidden, shift
        self.fwd = DiagonalLSTM(C, hidden, channels)
        self.rev = DiagonalLSTM(C, hidden, channels)
        if channels == 1:
            self.out = nn.Conv2d(hidden, C, 1)
        else:
            mo = mask_b([group(k, C) for k in range(C)], [group(r, hidden) for r in range(hidden)])
            self.out = MaskedConv2d(hidden, C, 1, mask=mo.view(C, hidden, 1, 1))

    def forward(self, x, cls=None):  # cls (B, 8h): forward gates | reverse gates
        g = 4 * self.hidden
        hf = self.fwd(x, None if cls is None else cls[:, :g])
        hr = self.rev(x.flip(3), None if cls is None else cls[:, g:]).flip(3)
        down = lambda t: F.pad(t, (0, 0, 1, 0))[:, :, :-1]  # noqa: E731  row i <- row i-1
        if self.shift == "reverse":
            hs = hf + down(hr)
        elif self.shift == "forward":  # the wrong side: for the self-check only
            hs = down(hf) + hr
        else:
            hs = hf + hr
        return x + self.out(hs)


class DiagonalBiLSTM(nn.Module):
    def __init__(self, hidden, layers, nclasses=0, shift="reverse", channels=1):
        super().__init__()
        C = 2 * hidden
        self.hidden, self.layers_n, self.nclasses, self.channels = hidden, layers, nclasses, channels
        if channels == 1:
            self.inp = MaskedConv2d(1, C, 7, padding=3, mask=mask_a_7x7())
        else:  # colour: docs/rowlstm.md "Colour", docs/diagbilstm.md
            assert channels == 3 and hidden % 3 == 0
            self.inp = MaskedConv2d(3, C, 7, padding=3, mask=mask_a_rgb(C))
        self.rnn = nn.ModuleList([DiagonalBiLSTMLayer(hidden, shift, channels) for _ in range(layers)])
        self.cls = nn.ModuleList([nn.Embedding(nclasses, 8 * hidden) for _ in range(layers)]) \
            if nclasses else None
        if channels == 1:
            self.head1 = nn.Conv2d(C, C, 1)
            self.head2 = nn.Conv2d(C, 256, 1)
        else:
            gc = [group(k, C) for k in range(C)]
            self.head1 = MaskedConv2d(C, C, 1, mask=mask_b(gc, gc).view(C, C, 1, 1))
            m2 = mask_b([k // 256 for k in range(3 * 256)], gc)
            self.head2 = MaskedConv2d(C, 3 * 256, 1, mask=m2.view(3 * 256, C, 1, 1))

    def forward(self, x_u8, labels=None):
        """(B, H, W) -> (B, 256, H, W); colour (B, 3, H, W) -> (B, 256, 3, H, W)"""
        u = x_u8.to(self.head2.weight.dtype) / 255.0
        x = self.inp(u.unsqueeze(1) if self.channels == 1 else u)
        for l, layer in enumerate(self.rnn):
            x = layer(x, self.cls[l](labels) if self.cls is not None else None)
        out = self.head2(F.relu(self.head1(F.relu(x))))
        if self.channels == 1:
            return out
        B, _, H, W = out.shape
        return out.view(B, 3, 256, H, W).transpose(1, 2)


def nll_loss(logits, x_u8, reduction="mean"):
    return F.cross_entropy(logits, x_u8.long(), reduction=reduction)


# ------------------------------------------------- loom (fan_in, fan_out) mapping


def loom_param_specs(hidden, layers, nclasses, channels=1):
    h, C, K = hidden, 2 * hidden, 256 * channels
    specs = [("in.weight", (24 if channels == 1 else 75, C)), ("in.bias", (C,))]
    for l in range(layers):
        p = "rnn.%d." % l
        specs += [(p + "is.weight", (C, 8 * h)), (p + "is.bias", (8 * h,)),
                  (p + "ssf.weight", (2 * h, 4 * h)), (p + "ssr.weight", (2 * h, 4 * h)),
                  (p + "out.weight", (h, C)), (p + "out.bias", (C,))]
        if nclasses:
            specs.append((p + "cls.weight", (nclasses, 8 * h)))
    specs += [("head1.weight", (C, C)), ("head1.bias", (C,)),
              ("head2.weight", (C, K)), ("head2.bias", (K,))]
    return specs


def _views(model):
    """name -> (list of torch tensors, to_loom(list)->tensor, from_loom(tensor)->list)."""
    C, h = 2 * model.hidden, model.hidden
    ident = (lambda ts: ts[0], lambda t: [t])
    pw = (lambda ts: ts[0][:, :, 0, 0].t(), lambda m: [m.t()[:, :, None, None]])
    v = {"in.weight": ([model.inp.weight],
                       lambda ts: ts[0].reshape(C, 49)[:, :24].t(),
                       lambda m: [torch.cat([m.t(), m.new_zeros(C, 25)], 1).view(C, 1, 7, 7)]),
         "in.bias": ([model.inp.bias],) + ident}
    if model.channels == 3:  # (C, 3, 7, 7) <-> (75, C): row 3t + c, taps 0..24 (24: the centre)
        v["in.weight"] = ([model.inp.weight],
                          lambda ts: ts[0].reshape(C, 3, 49)[:, :, :25].permute(2, 1, 0).reshape(75, C),
                          lambda m: [torch.cat([m.reshape(25, 3, C).permute(2, 1, 0),
                                                m.new_zeros(C, 3, 24)], 2).reshape(C, 3, 7, 7)])
    ss = (lambda ts: torch.cat([ts[0][:, :, 0].t(), ts[0][:, :, 1].t()], 0),
          lambda m: [torch.stack([m[:h].t(), m[h:].t()], 2)])
    for l, layer in enumerate(model.rnn):
        p = "rnn.%d." % l
        v[p + "is.weight"] = ([layer.fwd.i2s.weight, layer.rev.i2s.weight],
                              lambda ts: torch.cat([t[:, :, 0, 0].t() for t in ts], 1),
                              lambda m: [m[:, :4 * h].t()[:, :, None, None],
                                         m[:, 4 * h:].t()[:, :, None, None]])
        v[p + "is.bias"] = ([layer.fwd.i2s.bias, layer.rev.i2s.bias],
                            lambda ts: torch.cat(ts, 0), lambda m: [m[:4 * h], m[4 * h:]])
        v[p + "ssf.weight"] = ([layer.fwd.s2s.weight],) + ss
        v[p + "ssr.weight"] = ([layer.rev.s2s.weight],) + ss
        v[p + "out.weight"] = ([layer.out.weight],) + pw
        v[p + "out.bias"] = ([layer.out.bias],) + ident
        if model.cls is not None:
            v[p + "cls.weight"] = ([model.cls[l].weight],) + ident
    for name, conv in (("head1", model.head1), ("head2", model.head2)):
        v[name + ".weight"] = ([conv.weight],) + pw
        v[name + ".bias"] = ([conv.bias],) + ident
    return v


def load_loom_params(model, params):
    views = _views(model)
    assert set(views) == set(params), sorted(set(views) ^ set(params))
    with torch.no_grad():
        for name, (ts, _, from_loom) in views.items():
            for t, val in zip(ts, from_loom(params[name].to(ts[0].dtype))):
                assert t.shape == val.shape, (name, t.shape, val.shape)
                t.copy_(val)


def loom_tensors(model, grad=False):
    return {n: to([t.grad if grad else t for t in ts]).detach().contiguous()
            for n, (ts, to, _) in _views(model).items()}


# --------------------------------------------------------------------- fixture


def cmd_fixture_rgb(args):
    """Colour, conditional: masked entries 0, images (B, 3, H, W)."""
    seed, H, W, hidden, layers, batch, K = 20261202, 4, 5, 3, 2, 2, 3
    rng = np.random.default_rng(seed)
    specs = loom_param_specs(hidden, layers, K, 3)
    p = {n: torch.from_numpy((rng.standard_normal(s) * 0.5).astype(np.float32).astype(np.float64))
         for n, s in specs}
    model = DiagonalBiLSTM(hidden, layers, K, channels=3).double()
    load_loom_params(model, p)
    apply_masks(model)
    p32 = {n: v.numpy().astype(np.float32) for n, v in loom_tensors(model).items()}
    images = rng.integers(0, 256, size=(batch, 3, H, W), dtype=np.uint8)
    images[0, :, 0, 0], images[batch - 1, :, H - 1, W - 1] = 0, 255
    labels = np.array([2, 0], dtype=np.int32)
    x = torch.from_numpy(images.astype(np.int64))
    logits = model(x, torch.from_numpy(labels.astype(np.int64)))
    loss = nll_loss(logits, x)
    model.zero_grad()
    loss.backward()
    grads = loom_tensors(model, grad=True)
    z = loom_logits(logits).detach().numpy().astype(np.float32)
    tensors = [(n, p32[n]) for n, _ in specs]
    tensors += [("images", images), ("labels", labels),
                ("logits", z.reshape(batch, H, W, 3 * 256))]  # (B, H, W, 3, 256) in 4 dims
    tensors += [("grad." + n, grads[n].numpy().astype(np.float32)) for n, _ in specs]
    meta = {"layers": layers, "hidden": hidden, "height": H, "width": W, "channels": 3,
            "batch": batch, "nclasses": K, "loss_f64": repr(loss.item()), "seed": seed,
            "generator": "bench/diagbilstm_torch.py fixture --rgb (torch %s, float64 from float32 params)"
                         % torch.__version__}
    out = args.out if args.out != "tests/fixtures/diagbilstm_ref.safetensors" \
        else "tests/fixtures/diagbilstm_rgb_ref.safetensors"
    write_safetensors(out, tensors, meta)
    back, _ = read_safetensors(out)
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    print(json.dumps({"out": out, "bytes": os.path.getsize(out), "loss_f64": loss.item(),
                      "tensors": len(tensors)}))


def cmd_fixture(args):
    if args.rgb:
        return cmd_fixture_rgb(args)
    seed, H, W, hidden, layers, batch, K = 20251123, 5, 6, 3, 2, 2, 3
    rng = np.random.default_rng(seed)
    specs = loom_param_specs(hidden, layers, K)
    p32 = {n: (rng.standard_normal(s) * 0.5).astype(np.float32) for n, s in specs}
    images = rng.integers(0, 256, size=(batch, H, W), dtype=np.uint8)
    images[0, 0, 0], images[batch - 1, H - 1, W - 1] = 0, 255
    labels = np.array([2, 0], dtype=np.int32)
    model = DiagonalBiLSTM(hidden, layers, K).double()
    load_loom_params(model, {n: torch.from_numpy(v.astype(np.float64)) for n, v in p32.items()})
    for n, v in loom_tensors(model).items():  # the mapping round-trips exactly
        assert np.array_equal(v.numpy().astype(np.float32), p32[n]), n
    x = torch.from_numpy(images.astype(np.int64))
    logits = model(x, torch.from_numpy(labels.astype(np.int64)))
    loss = nll_loss(logits, x)
    model.zero_grad()
    loss.backward()
    grads = loom_tensors(model, grad=True)
    tensors = [(n, p32[n]) for n, _ in specs]
    tensors += [("images", images), ("labels", labels),
                ("logits", logits.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)),
                ("loss", np.array([loss.item()], dtype=np.float32))]
    tensors += [("grad." + n, grads[n].numpy().astype(np.float32)) for n, _ in specs]
    meta = {"layers": layers, "hidden": hidden, "height": H, "width": W, "batch": batch,
            "nclasses": K, "loss_f64": repr(loss.item()), "seed": seed,
            "generator": "bench/diagbilstm_torch.py fixture (torch %s, float64 from float32 params)"
                         % torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)
    back, bmeta = read_safetensors(args.out)
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "loss_f64": loss.item(),
                      "tensors": len(tensors),
                      "max_abs_grad": max(float(g.abs().max()) for g in grads.values())}))


# ----------------------------------------------------------------- self checks


def cmd_check(args):
    """Causality of this implementation over every pixel of a 5x6 image, and the
    same test on the wrong-side shift (must leak)."""
    torch.manual_seed(0)
    H, W = 5, 6
    img = torch.randint(0, 256, (1, H, W))
    res = {}
    for shift in ("reverse", "forward", "none"):
        model = DiagonalBiLSTM(3, 2, shift=shift).double()
        with torch.no_grad():
            z0 = model(img)[0].reshape(256, -1)
            leaks = 0
            for k in range(H * W):
                x = img.clone()
                x.view(-1)[k] ^= 0x80
                changed = (model(x)[0].reshape(256, -1) != z0).any(0).nonzero()
                leaks += bool(len(changed)) and int(changed[0]) <= k
        res[shift] = leaks
    ok = res["reverse"] == 0 and res["forward"] > 0 and res["none"] > 0
    print(json.dumps({"leaking_pixels_by_shift": res, "ok": ok}))
    return 0 if ok else 1


# ------------------------------------------------------------------------ bench


def train_steps(model, opt, batches, steps):
    losses = []
    for _ in range(steps):
        x = batches.next()
        opt.zero_grad(set_to_none=True)
        # bench --autocast: the forward's products in bf16 (fp32 weights, as loom --precision bf16)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=AUTOCAST):
            logits = model(x)
        loss = nll_loss(logits.float(), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def sample_naive(model, n_images, H, W, pixels, gen):
    """One full forward pass of the whole image per pixel (no cached state)."""
    x = torch.zeros(n_images, H, W, dtype=torch.int64)
    for k in range(pixels):
        i, j = divmod(k, W)
        logits = model(x)[:, :, i, j]
        x[:, i, j] = torch.multinomial(F.softmax(logits, dim=1), 1, generator=gen)[:, 0]
    return x


AUTOCAST = False  # bench --autocast


def cmd_bench(args):
    global AUTOCAST
    AUTOCAST = args.autocast
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load_start = os.getloadavg()[0]
    busy0, own0, wall0 = _system_busy_s(), os.times(), time.perf_counter()
    train = fashion("train")
    H, W = train.shape[1:]
    model = DiagonalBiLSTM(args.hidden, args.layers)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = Batches(train, args.batch, args.seed)
    train_steps(model, opt, batches, args.warmup)
    times, losses = [], []
    for s in range(args.steps):
        t = time.perf_counter()
        losses += train_steps(model, opt, batches, 1)
        times.append(time.perf_counter() - t)
        print("step %d: %.3f s" % (s + 1, times[-1]), file=sys.stderr, flush=True)
    model.eval()
    x = batches.next()
    with torch.no_grad():
        model(x)
        reps = []
        for _ in range(args.forward_reps):
            t = time.perf_counter()
            model(x)
            reps.append(time.perf_counter() - t)
    gen = torch.Generator().manual_seed(args.seed)
    npix = min(args.sample_pixels, H * W)
    t = time.perf_counter()
    sample_naive(model, args.sample_batch, H, W, npix, gen)
    sample_s = (time.perf_counter() - t) * (H * W / npix) / args.sample_batch
    busy1, own1, wall = _system_busy_s(), os.times(), time.perf_counter() - wall0
    other = None
    if busy0 is not None and busy1 is not None:
        own = (own1.user + own1.system) - (own0.user + own0.system)
        other = max(0.0, (busy1 - busy0 - own) / wall)
    print(json.dumps({
        "model": "diagbilstm (PyTorch)", "layers": args.layers, "hidden": args.hidden,
        "batch": args.batch, "threads": torch.get_num_threads(),
        "train_images_per_s": round(args.batch / float(np.median(times)), 3),
        "timed_steps": args.steps, "warmup_steps": args.warmup,
        "forward_ms_per_image": round(1000.0 * float(np.median(reps)) / x.shape[0], 4),
        "sample_ms_per_image": round(1000.0 * sample_s, 2),
        "sample_method": "naive: one full forward per pixel, batch %d, %d of %d pixels timed%s"
                         % (args.sample_batch, npix, H * W,
                            ", linearly extrapolated" if npix < H * W else ""),
        "last_train_loss_nats": round(losses[-1], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__, "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "other_procs_cpu_cores": round(other, 3) if other is not None else None,
    }))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--out", default="tests/fixtures/diagbilstm_ref.safetensors")
    f.add_argument("--rgb", action="store_true", help="the colour model (conditional): diagbilstm_rgb_ref")
    sub.add_parser("check", help="causality self-check, and that a wrong-side shift leaks")
    b = sub.add_parser("bench", help="speed peer (one JSON line)")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--layers", type=int, default=7)
    b.add_argument("--hidden", type=int, default=16)
    b.add_argument("--steps", type=int, default=5, help="timed training steps (median reported)")
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16) in training")
    b.add_argument("--forward-reps", type=int, default=3)
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--sample-batch", type=int, default=1)
    b.add_argument("--sample-pixels", type=int, default=2,
                   help="pixels of naive sampling to time (extrapolated to the full image)")
    args = ap.parse_args(argv)
    return {"fixture": cmd_fixture, "check": cmd_check, "bench": cmd_bench}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
