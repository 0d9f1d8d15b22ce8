#!/usr/bin/python3
"""Independent PyTorch reference for loom's Row LSTM (docs/rowlstm.md).

Written from the spec only.  Used for:
  fixture  -- tests/fixtures/rowlstm_ref.safetensors: parameters, images, logits,
              loss and gradients (computed in float64) that the C test compares against;
              with --conditional, tests/fixtures/rowlstm_cond_ref.safetensors: the same
              for a class-conditional model (labels, class tables and their gradients);
  bench    -- the speed / memory peer loom is benchmarked against (float32, Adam);
  train    -- a full training run with test-set bits/dim, for the quality comparison;
  check    -- self-checks: causality, masks, parameter mapping vs a plain numpy
              transcription of the spec, gradients vs finite differences.

Run with Debian's interpreter (python3-torch, python3-numpy):
    /usr/bin/python3 bench/rowlstm_torch.py fixture --out tests/fixtures/rowlstm_ref.safetensors
"""

import argparse
import gzip
import json
import math
import os
import resource
import struct
import sys
import time


def _rss_mb():
    """Current resident set size in MB (VmRSS), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


_RSS_BEFORE_IMPORT_MB = _rss_mb()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

_RSS_AFTER_IMPORT_MB = _rss_mb()

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


# --------------------------------------------------------------------------- model


def mask_a_7x7():
    """Mask A: the 24 taps strictly before the centre in raster order."""
    m = torch.zeros(7, 7)
    m[:3, :] = 1.0  # dy = -3..-1, every dx
    m[3, :3] = 1.0  # dy = 0, dx = -3..-1  (centre and right excluded)
    return m


class MaskedConv2d(nn.Conv2d):
    """Conv2d whose weight is multiplied by a fixed 0/1 mask in forward: (kh, kw)
    for every channel pair, or (out, in, kh, kw) (the colour masks)."""

    def __init__(self, *args, mask, **kwargs):
        super().__init__(*args, **kwargs)
        m = mask.to(self.weight.dtype)
        self.register_buffer("mask", m.view(1, 1, *m.shape) if m.dim() == 2 else m)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


# ---- colour (docs/rowlstm.md "Colour"): R, G, B groups of units


def group(k, size):
    """Colour group of unit k of a layer of `size` units: contiguous thirds."""
    return k // (size // 3)


def gate_group(q, h):
    """Group of gate pre-activation q of a (4h or 8h) gate vector: that of its unit q mod h."""
    return group(q % h, h)


def mask_b(out_groups, in_groups):
    """(out, in) 0/1: group a may read group b when b <= a (mask B)."""
    o = torch.tensor(out_groups).view(-1, 1)
    i = torch.tensor(in_groups).view(1, -1)
    return (i <= o).double()


def mask_a_rgb(C):
    """(C, 3, 7, 7) 0/1: mask A's 24 taps for every channel; at the centre, output
    group g reads the channels c < g only (R group none, G group R, B group R and G)."""
    m = mask_a_7x7().double().view(1, 1, 7, 7).repeat(C, 3, 1, 1)
    for o in range(C):
        for c in range(3):
            m[o, c, 3, 3] = 1.0 if c < group(o, C) else 0.0
    return m


class RowLSTMLayer(nn.Module):
    def __init__(self, hidden, channels=1):
        super().__init__()
        h, C = hidden, 2 * hidden
        self.hidden = h
        # input-to-state: 1x3 conv along the row, mask B (the j+1 tap is masked).
        # Cross-correlation: kernel column 0 -> x[j-1], 1 -> x[j], 2 -> x[j+1].
        if channels == 1:
            mask_is = torch.tensor([[1.0, 1.0, 0.0]])
        else:  # the j tap by colour group; j-1 is an earlier pixel: all of it
            mb = mask_b([gate_group(q, h) for q in range(4 * h)], [group(k, C) for k in range(C)])
            mask_is = torch.zeros(4 * h, C, 1, 3, dtype=torch.float64)
            mask_is[:, :, 0, 0] = 1.0
            mask_is[:, :, 0, 1] = mb
        self.i2s = MaskedConv2d(C, 4 * h, (1, 3), padding=(0, 1), mask=mask_is)
        # state-to-state: width-3 conv over the previous row's hidden state, no bias
        # (and no mask in colour: row i-1 is before every pixel of row i).
        self.s2s = nn.Conv1d(h, 4 * h, 3, padding=1, bias=False)
        # output 1x1 conv h -> C (plus residual); mask B in colour.
        if channels == 1:
            self.out = nn.Conv2d(h, C, 1)
        else:
            mo = mask_b([group(k, C) for k in range(C)], [group(r, h) for r in range(h)])
            self.out = MaskedConv2d(h, C, 1, mask=mo.view(C, h, 1, 1))

    def forward(self, x, cls=None):  # x: (B, C, H, W); cls (B, 4h): the class rows, or None
        B, _, H, W = x.shape
        h = self.hidden
        S = self.i2s(x)  # (B, 4h, H, W): gates' input part for the whole image
        if cls is not None:
            S = S + cls[:, :, None, None]  # the label's row, at every pixel
        h_prev = x.new_zeros(B, h, W)
        c_prev = x.new_zeros(B, h, W)
        rows = []
        for i in range(H):
            a = S[:, :, i, :] + self.s2s(h_prev)  # (B, 4h, W)
            ig, fg, og, gg = a.chunk(4, dim=1)
            c_prev = torch.sigmoid(fg) * c_prev + torch.sigmoid(ig) * torch.tanh(gg)
            h_prev = torch.sigmoid(og) * torch.tanh(c_prev)
            rows.append(h_prev)
        hs = torch.stack(rows, dim=2)  # (B, h, H, W)
        return x + self.out(hs)


class RowLSTM(nn.Module):
    def __init__(self, hidden, layers, nclasses=0, channels=1):
        super().__init__()
        C = 2 * hidden
        self.hidden, self.layers_n, self.nclasses, self.channels = hidden, layers, nclasses, channels
        self.rnn = nn.ModuleList([RowLSTMLayer(hidden, channels) for _ in range(layers)])
        # class conditioning: one (K, 4h) table per layer
        self.cls = nn.ModuleList([nn.Embedding(nclasses, 4 * hidden) for _ in range(layers)]) \
            if nclasses else None
        if channels == 1:
            self.inp = MaskedConv2d(1, C, 7, padding=3, mask=mask_a_7x7())
            self.head1 = nn.Conv2d(C, C, 1)
            self.head2 = nn.Conv2d(C, 256, 1)
        else:
            assert channels == 3 and hidden % 3 == 0
            gc = [group(k, C) for k in range(C)]
            self.inp = MaskedConv2d(3, C, 7, padding=3, mask=mask_a_rgb(C))
            self.head1 = MaskedConv2d(C, C, 1, mask=mask_b(gc, gc).view(C, C, 1, 1))
            # logit k is channel k // 256's
            m2 = mask_b([k // 256 for k in range(3 * 256)], gc)
            self.head2 = MaskedConv2d(C, 3 * 256, 1, mask=m2.view(3 * 256, C, 1, 1))

    def forward(self, x_u8, labels=None):
        """x_u8: (B, H, W) integer image in 0..255, labels (B,) int64 (conditional)
        -> logits (B, 256, H, W); colour: (B, 3, H, W) -> (B, 256, 3, H, W)."""
        u = x_u8.to(self.head2.weight.dtype) / 255.0
        x = self.inp(u.unsqueeze(1) if self.channels == 1 else u)
        for l, layer in enumerate(self.rnn):
            x = layer(x, self.cls[l](labels) if self.cls is not None else None)
        z = F.relu(self.head1(F.relu(x)))
        out = self.head2(z)
        if self.channels == 1:
            return out
        B, _, H, W = out.shape
        return out.view(B, 3, 256, H, W).transpose(1, 2)  # (B, 256, 3, H, W)


def nll_loss(logits, x_u8, reduction="mean"):
    """mean over pixels (and channels): nats per dimension"""
    return F.cross_entropy(logits, x_u8.long(), reduction=reduction)


def loom_logits(logits):
    """(B, 256, H, W) -> loom's (B, H, W, 256); colour (B, 256, 3, H, W) -> (B, H, W, 3, 256)"""
    if logits.dim() == 4:
        return logits.permute(0, 2, 3, 1)
    return logits.permute(0, 3, 4, 2, 1)


# ------------------------------------------------- loom (fan_in, fan_out) mapping


def loom_param_specs(hidden, layers, nclasses=0, channels=1):
    """[(name, shape)] in the order docs/rowlstm.md lists them."""
    h, C, K = hidden, 2 * hidden, 256 * channels
    specs = [("in.weight", (24 if channels == 1 else 75, C)), ("in.bias", (C,))]
    for l in range(layers):
        p = "rnn.%d." % l
        specs += [(p + "is.weight", (2 * C, 4 * h)), (p + "is.bias", (4 * h,)),
                  (p + "ss.weight", (3 * h, 4 * h)),
                  (p + "out.weight", (h, C)), (p + "out.bias", (C,))]
        if nclasses:
            specs.append((p + "cls.weight", (nclasses, 4 * h)))
    specs += [("head1.weight", (C, C)), ("head1.bias", (C,)),
              ("head2.weight", (C, K)), ("head2.bias", (K,))]
    return specs


def _torch_views(model):
    """name -> (torch parameter, to_loom(tensor)->tensor, from_loom(tensor)->tensor)."""
    h, C = model.hidden, 2 * model.hidden
    views = {}

    def in_to(w):  # torch (C,1,7,7) -> loom (24, C): raster taps 0..23 of the 7x7
        if model.channels == 3:  # (C,3,7,7) -> (75, C): row 3t + c, taps 0..24 (24: centre)
            return w.reshape(C, 3, 49)[:, :, :25].permute(2, 1, 0).reshape(75, C).contiguous()
        return w.reshape(C, 49)[:, :24].t().contiguous()

    def in_from(m):
        if model.channels == 3:
            w = m.new_zeros(C, 3, 49)
            w[:, :, :25] = m.reshape(25, 3, C).permute(2, 1, 0)
            return w.view(C, 3, 7, 7)
        w = m.new_zeros(C, 49)
        w[:, :24] = m.t()
        return w.view(C, 1, 7, 7)

    def pw_to(w):  # 1x1 conv (out, in, 1, 1) -> (in, out)
        return w[:, :, 0, 0].t().contiguous()

    def pw_from(m):
        return m.t().contiguous()[:, :, None, None]

    views["in.weight"] = (model.inp.weight, in_to, in_from)
    views["in.bias"] = (model.inp.bias, lambda t: t, lambda t: t)
    for l, layer in enumerate(model.rnn):
        p = "rnn.%d." % l

        def is_to(w):  # torch (4h, C, 1, 3) -> loom (2C, 4h): rows tap j-1 then tap j
            return torch.cat([w[:, :, 0, 0].t(), w[:, :, 0, 1].t()], 0).contiguous()

        def is_from(m):
            w = m.new_zeros(4 * h, C, 1, 3)
            w[:, :, 0, 0] = m[0:C].t()
            w[:, :, 0, 1] = m[C:2 * C].t()
            return w

        def ss_to(w):  # torch (4h, h, 3) -> loom (3h, 4h): rows taps j-1, j, j+1
            return torch.cat([w[:, :, k].t() for k in range(3)], 0).contiguous()

        def ss_from(m):
            return torch.stack([m[k * h:(k + 1) * h].t() for k in range(3)], 2)

        views[p + "is.weight"] = (layer.i2s.weight, is_to, is_from)
        views[p + "is.bias"] = (layer.i2s.bias, lambda t: t, lambda t: t)
        views[p + "ss.weight"] = (layer.s2s.weight, ss_to, ss_from)
        views[p + "out.weight"] = (layer.out.weight, pw_to, pw_from)
        views[p + "out.bias"] = (layer.out.bias, lambda t: t, lambda t: t)
        if model.cls is not None:  # nn.Embedding (K, 4h) is loom's layout already
            views[p + "cls.weight"] = (model.cls[l].weight, lambda t: t, lambda t: t)
    for name, conv in (("head1", model.head1), ("head2", model.head2)):
        views[name + ".weight"] = (conv.weight, pw_to, pw_from)
        views[name + ".bias"] = (conv.bias, lambda t: t, lambda t: t)
    return views


def load_loom_params(model, params):
    """params: {loom name: tensor in loom layout}. Masked taps are set to 0."""
    views = _torch_views(model)
    assert set(views) == set(params), sorted(set(views) ^ set(params))
    with torch.no_grad():
        for name, (p, _, from_loom) in views.items():
            v = from_loom(params[name].to(p.dtype))
            assert v.shape == p.shape, (name, v.shape, p.shape)
            p.copy_(v)


def loom_params(model):
    return {n: to(p.detach()) for n, (p, to, _) in _torch_views(model).items()}


def loom_grads(model):
    return {n: to(p.grad.detach()) for n, (p, to, _) in _torch_views(model).items()}


def apply_masks(model):
    """Masked weights to exactly 0 (loom stores them as 0; torch multiplies anyway)."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, MaskedConv2d):
                mod.weight.mul_(mod.mask)


def spec_init(model, seed):
    """docs/rowlstm.md initialisation: U(+-1/sqrt(fan_in)) weights, zero biases, forget bias 1.
    (Same distribution as loom, not the same random stream.)"""
    g = torch.Generator().manual_seed(seed)
    h = model.hidden
    params = {}
    for name, shape in loom_param_specs(model.hidden, model.layers_n, model.nclasses, model.channels):
        if name.endswith(".weight"):
            bound = 1.0 / math.sqrt(shape[0])
            params[name] = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
        else:
            params[name] = torch.zeros(shape, dtype=torch.float64)
            if name.endswith("is.bias"):
                params[name][h:2 * h] = 1.0
    load_loom_params(model, params)
    apply_masks(model)


# ------------------------------------------------------------------ safetensors


_ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("uint8"): "U8",
              np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("float64"): "F64"}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); written contiguously in that order."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, off = [], 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        dt = _ST_DTYPES[arr.dtype]
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-(8 + len(hjson))) % 8)  # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    inv = {v: k for k, v in _ST_DTYPES.items()}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=inv[d["dtype"]].newbyteorder("<")).reshape(d["shape"])
    return out, meta


# ------------------------------------------------------------------------ data


def load_idx_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError("%s: not an idx3 image file (magic %d)" % (path, magic))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def fashion(split):
    name = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}[split]
    path = os.path.join(FASHION_DIR, name)
    if not os.path.exists(path):
        sys.exit("%s missing: apt-get install dataset-fashion-mnist" % path)
    return load_idx_images(path)


class Batches:
    """Epoch-shuffled minibatches of uint8 images."""

    def __init__(self, images, batch, seed):
        self.images, self.batch = images, batch
        self.rng = np.random.default_rng(seed)
        self.perm, self.pos = self.rng.permutation(len(images)), 0

    def next(self):
        if self.pos + self.batch > len(self.perm):
            self.perm, self.pos = self.rng.permutation(len(self.images)), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return torch.from_numpy(self.images[idx].astype(np.int64))


# --------------------------------------------------------------------- fixture


def fixture_case(seed=20240607, H=5, W=6, hidden=3, layers=2, batch=2, nclasses=0):
    """Parameters ~ N(0,1)*0.5 rounded to float32; computation in float64."""
    rng = np.random.default_rng(seed)
    specs = loom_param_specs(hidden, layers, nclasses)
    p32 = {n: (rng.standard_normal(s) * 0.5).astype(np.float32) for n, s in specs}
    images = rng.integers(0, 256, size=(batch, H, W), dtype=np.uint8)
    images[0, 0, 0] = 0  # make sure both extremes occur
    images[batch - 1, H - 1, W - 1] = 255
    images[0, H // 2, W // 2] = 255
    images[batch - 1, 1, 0] = 0
    return specs, p32, images, dict(H=H, W=W, hidden=hidden, layers=layers, batch=batch, seed=seed,
                                    nclasses=nclasses)


def fixture_case_rgb(seed=20261201, H=4, W=5, hidden=3, layers=2, batch=2):
    """Colour: parameters ~ N(0,1)*0.5 rounded to float32, masked entries 0;
    images (B, 3, H, W)."""
    rng = np.random.default_rng(seed)
    specs = loom_param_specs(hidden, layers, channels=3)
    p = {n: torch.from_numpy((rng.standard_normal(s) * 0.5).astype(np.float32).astype(np.float64))
         for n, s in specs}
    model = RowLSTM(hidden, layers, channels=3).double()
    load_loom_params(model, p)
    apply_masks(model)
    p32 = {n: v.numpy().astype(np.float32) for n, v in loom_params(model).items()}
    images = rng.integers(0, 256, size=(batch, 3, H, W), dtype=np.uint8)
    images[0, :, 0, 0] = 0
    images[batch - 1, :, H - 1, W - 1] = 255
    return specs, p32, images, dict(H=H, W=W, hidden=hidden, layers=layers, batch=batch, seed=seed)


def cmd_fixture_rgb(args):
    specs, p32, images, cfg = fixture_case_rgb()
    model = RowLSTM(cfg["hidden"], cfg["layers"], channels=3).double()
    load_loom_params(model, {n: torch.from_numpy(v.astype(np.float64)) for n, v in p32.items()})
    x = torch.from_numpy(images.astype(np.int64))
    logits = model(x)
    loss = nll_loss(logits, x)
    model.zero_grad()
    loss.backward()
    grads = loom_grads(model)
    tensors = [(n, p32[n]) for n, _ in specs]
    tensors.append(("images", images))
    # loom's (B, H, W, 3, 256) stored as (B, H, W, 3*256): safetensors readers take 4 dims
    z = loom_logits(logits).detach().numpy().astype(np.float32)
    tensors.append(("logits", z.reshape(z.shape[0], z.shape[1], z.shape[2], 3 * 256)))
    tensors += [("grad." + n, grads[n].numpy().astype(np.float32)) for n, _ in specs]
    meta = {"layers": cfg["layers"], "hidden": cfg["hidden"], "height": cfg["H"],
            "width": cfg["W"], "channels": 3, "batch": cfg["batch"], "loss_f64": repr(loss.item()),
            "seed": cfg["seed"],
            "generator": "bench/rowlstm_torch.py fixture --rgb (torch %s, float64 from float32 params)"
                         % torch.__version__}
    out = args.out or "tests/fixtures/rowlstm_rgb_ref.safetensors"
    write_safetensors(out, tensors, meta)
    back, _ = read_safetensors(out)
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    print(json.dumps({"out": out, "bytes": os.path.getsize(out), "loss_f64": loss.item(),
                      "tensors": len(tensors)}))


def cmd_check_rgb(args):
    """Colour self-checks (float64): each channel's logits have zero Jacobian
    wrt the channels at or after it at its own pixel and wrt every later pixel,
    and a non-zero one wrt the earlier channels of its pixel and its left neighbour."""
    torch.manual_seed(5)
    model = RowLSTM(6, 2, channels=3).double()
    with torch.no_grad():
        for p_ in model.parameters():
            p_.normal_(0, 0.5)
        # open the ReLUs: a colour group whose units are all closed gives constant
        # logits, which hides dependences (it cannot hide a leak)
        model.inp.bias += 1.0
        model.head1.bias += 1.0
    apply_masks(model)
    H, W = 4, 5
    u = torch.rand(1, 3, H, W, dtype=torch.float64, requires_grad=True)
    bad = blind = 0
    for k in range(H * W):
        i, j = divmod(k, W)
        xx = model.inp(u)
        for layer in model.rnn:
            xx = layer(xx)
        out = model.head2(F.relu(model.head1(F.relu(xx)))).view(1, 3, 256, H, W)
        for c in range(3):
            (gu,) = torch.autograd.grad(out[0, c, :, i, j].sum(), u, retain_graph=True)
            g = gu[0].permute(1, 2, 0).reshape(-1)  # order (pixel, channel)
            bad += int(g[k * 3 + c:].abs().max() > 0)
            need = [k * 3 + c2 for c2 in range(c)] + ([(k - 1) * 3 + c2 for c2 in range(3)] if j else [])
            blind += sum(int(g[q] == 0) for q in need)
    ok = bad == 0 and blind == 0
    print(json.dumps({"check": "rgb_causality_jacobian_4x5", "pass": ok, "illegal": bad, "blind": blind}))
    return 0 if ok else 1


def cmd_fixture(args):
    if args.rgb:
        return cmd_fixture_rgb(args)
    if args.conditional:  # 3 classes, batch 3: two images share a label (its rows' gradients add)
        specs, p32, images, cfg = fixture_case(seed=20261201, H=4, W=5, batch=3, nclasses=3)
        labels = np.array([2, 0, 2], dtype=np.int32)
    else:
        specs, p32, images, cfg = fixture_case()
        labels = None
    if args.out is None:
        args.out = "tests/fixtures/rowlstm_%sref.safetensors" % ("cond_" if args.conditional else "")
    torch.manual_seed(0)
    model = RowLSTM(cfg["hidden"], cfg["layers"], cfg["nclasses"]).double()
    load_loom_params(model, {n: torch.from_numpy(v.astype(np.float64)) for n, v in p32.items()})
    # the model now holds exactly the float32-rounded values
    for n, v in loom_params(model).items():
        assert np.array_equal(v.numpy().astype(np.float32), p32[n]), n
    x = torch.from_numpy(images.astype(np.int64))
    logits = model(x, None if labels is None else torch.from_numpy(labels.astype(np.int64)))
    loss = nll_loss(logits, x)
    model.zero_grad()
    loss.backward()
    grads = loom_grads(model)

    tensors = [(n, p32[n]) for n, _ in specs]
    tensors.append(("images", images))
    if labels is not None:
        tensors.append(("labels", labels))
    tensors.append(("logits", logits.detach().permute(0, 2, 3, 1).numpy().astype(np.float32)))
    tensors.append(("loss", np.array([loss.item()], dtype=np.float32)))
    tensors += [("grad." + n, grads[n].numpy().astype(np.float32)) for n, _ in specs]
    meta = {"layers": cfg["layers"], "hidden": cfg["hidden"], "height": cfg["H"],
            **({"classes": cfg["nclasses"]} if labels is not None else {}),
            "width": cfg["W"], "batch": cfg["batch"], "loss_f64": repr(loss.item()),
            "seed": cfg["seed"],
            "generator": "bench/rowlstm_torch.py fixture (torch %s, float64 from float32 params)"
                         % torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, tensors, meta)

    # read back and verify
    back, bmeta = read_safetensors(args.out)
    for n, a in tensors:
        assert back[n].dtype == a.dtype and np.array_equal(back[n], a), n
    assert bmeta["loss_f64"] == repr(loss.item())
    gmax = max(float(np.abs(g).max()) for g in (grads[n].numpy() for n, _ in specs))
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "loss_f64": loss.item(),
                      "bits_per_dim": loss.item() / math.log(2), "tensors": len(tensors),
                      "max_abs_grad": gmax,
                      "images_min": int(images.min()), "images_max": int(images.max())}))


# ----------------------------------------------------------------- self checks


def numpy_reference(p, images):
    """Plain per-pixel numpy transcription of docs/rowlstm.md in loom layout (float64).
    Independent of the torch module: used to check the parameter mapping."""
    B, H, W = images.shape
    C = p["in.bias"].shape[0]
    h = C // 2
    L = sum(1 for k in p if k.endswith("ss.weight"))
    u = images.astype(np.float64) / 255.0
    taps = [(dy, dx) for dy in range(-3, 0) for dx in range(-3, 4)] + [(0, dx) for dx in range(-3, 0)]
    X = np.zeros((B, H, W, C))
    for b in range(B):
        for i in range(H):
            for j in range(W):
                acc = p["in.bias"].copy()
                for t, (dy, dx) in enumerate(taps):
                    y, xx = i + dy, j + dx
                    if 0 <= y < H and 0 <= xx < W:
                        acc += u[b, y, xx] * p["in.weight"][t]
                X[b, i, j] = acc
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    for l in range(L):
        pre = "rnn.%d." % l
        Wi, bi, Ws = p[pre + "is.weight"], p[pre + "is.bias"], p[pre + "ss.weight"]
        Wo, bo = p[pre + "out.weight"], p[pre + "out.bias"]
        Y = X.copy()
        for b in range(B):
            hp, cp = np.zeros((W, h)), np.zeros((W, h))
            for i in range(H):
                hn, cn = np.zeros((W, h)), np.zeros((W, h))
                for j in range(W):
                    S = bi + X[b, i, j] @ Wi[C:2 * C]
                    if j - 1 >= 0:
                        S = S + X[b, i, j - 1] @ Wi[0:C]
                    R = hp[j] @ Ws[h:2 * h]
                    if j - 1 >= 0:
                        R = R + hp[j - 1] @ Ws[0:h]
                    if j + 1 < W:
                        R = R + hp[j + 1] @ Ws[2 * h:3 * h]
                    a = S + R
                    ig, fg, og, gg = sig(a[0:h]), sig(a[h:2 * h]), sig(a[2 * h:3 * h]), np.tanh(a[3 * h:])
                    cn[j] = fg * cp[j] + ig * gg
                    hn[j] = og * np.tanh(cn[j])
                    Y[b, i, j] = X[b, i, j] + hn[j] @ Wo + bo
                hp, cp = hn, cn
        X = Y
    Z = np.maximum(np.maximum(X, 0) @ p["head1.weight"] + p["head1.bias"], 0)
    logits = Z @ p["head2.weight"] + p["head2.bias"]  # (B,H,W,256)
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(logits, images[..., None].astype(np.int64), -1)[..., 0]
    return logits, float((lse - picked).mean())


def cmd_check(args):
    if args.rgb:
        return cmd_check_rgb(args)
    ok = True

    def report(name, passed, **info):
        nonlocal ok
        ok &= bool(passed)
        print(json.dumps(dict({"check": name, "pass": bool(passed)}, **info)))

    # 1. masks
    ma = mask_a_7x7()
    exp_taps = [(dy, dx) for dy in range(-3, 0) for dx in range(-3, 4)] + [(0, dx) for dx in range(-3, 0)]
    got_taps = [(ky - 3, kx - 3) for ky in range(7) for kx in range(7) if ma[ky, kx] == 1]
    report("mask_a", ma[3, 3] == 0 and got_taps == exp_taps and int(ma.sum()) == 24,
           centre=float(ma[3, 3]), taps=int(ma.sum()), raster_order_matches_spec=got_taps == exp_taps)
    m = RowLSTM(3, 1)
    report("mask_b", m.rnn[0].i2s.mask.flatten().tolist() == [1.0, 1.0, 0.0],
           mask=m.rnn[0].i2s.mask.flatten().tolist())

    # 2. mapping: torch module vs numpy transcription on the fixture case
    specs, p32, images, cfg = fixture_case()
    p64 = {n: v.astype(np.float64) for n, v in p32.items()}
    model = RowLSTM(cfg["hidden"], cfg["layers"]).double()
    load_loom_params(model, {n: torch.from_numpy(v) for n, v in p64.items()})
    x = torch.from_numpy(images.astype(np.int64))
    logits = model(x)
    loss = nll_loss(logits, x)
    ref_logits, ref_loss = numpy_reference(p64, images)
    d = float(np.abs(logits.detach().permute(0, 2, 3, 1).numpy() - ref_logits).max())
    report("torch_vs_numpy_spec", d < 1e-10 and abs(loss.item() - ref_loss) < 1e-12,
           max_abs_logit_diff=d, loss_torch=loss.item(), loss_numpy=ref_loss)
    rt = loom_params(model)
    report("mapping_roundtrip", all(np.array_equal(rt[n].numpy(), p64[n]) for n in p64))

    # 3. gradients (mapped back to loom layout) vs central differences of the numpy reference
    model.zero_grad()
    loss.backward()
    grads = loom_grads(model)
    rng = np.random.default_rng(1)
    worst, eps = 0.0, 1e-6
    for n, shape in specs:
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in shape)
            pp, pm = dict(p64), dict(p64)
            pp[n] = p64[n].copy(); pp[n][idx] += eps
            pm[n] = p64[n].copy(); pm[n][idx] -= eps
            fd = (numpy_reference(pp, images)[1] - numpy_reference(pm, images)[1]) / (2 * eps)
            g = float(grads[n].numpy()[idx])
            worst = max(worst, abs(fd - g) / max(1e-3, abs(fd), abs(g)))
    report("grad_vs_finite_diff", worst < 1e-5, samples=4 * len(specs), worst_rel_err=worst)

    # 4. causality by perturbation: every pixel of the 5x6 fixture case (float64)
    def causality(model, img, ks, dtype):
        H, W = img.shape[1:]
        base = model(img).detach().to(dtype)
        before_max = at_k_max = 0.0
        next_changed = 0
        later_changed = 0
        for k in ks:
            i, j = divmod(k, W)
            pert = img.clone()
            pert[0, i, j] = 255 - pert[0, i, j] if pert[0, i, j] != 128 else 0
            out = model(pert).detach().to(dtype)
            diff = (out - base).abs().amax(dim=(0, 1)).flatten()  # per pixel, raster order
            if k > 0:
                before_max = max(before_max, float(diff[:k].max()))
            at_k_max = max(at_k_max, float(diff[k]))
            # non-vacuous: the right neighbour (or, at a row end, the pixel below) must react.
            # (At a row end, (i+1, 0) does NOT see (i, W-1): the Row LSTM's receptive field is
            # a triangle, not the whole past -- this is the architecture, not a bug.)
            nxt = k + 1 if j + 1 < W else k + W
            if nxt < H * W:
                next_changed += int(diff[nxt] > 0)
                later_changed += 1
        return before_max, at_k_max, next_changed, later_changed

    with torch.no_grad():
        img = x[:1].clone()
        n = img.shape[1] * img.shape[2]
        bm, km, nc, lc = causality(model, img, range(n), torch.float64)
        report("causality_5x6_all_pixels_f64", bm == 0.0 and km == 0.0 and nc == lc,
               pixels=n, max_change_before_k=bm, max_change_at_k=km,
               next_or_below_changed=nc, of=lc)
        torch.manual_seed(3)
        big = RowLSTM(8, 3).double()
        with torch.no_grad():
            for p_ in big.parameters():
                p_.normal_(0, 0.5)
        fm = torch.from_numpy(fashion("test")[:1].astype(np.int64))
        ks = [0, 1, 27, 28, 29, 100, 390, 391, 419, 700, 782, 783]
        bm, km, nc, lc = causality(big, fm, ks, torch.float64)
        report("causality_28x28_f64", bm == 0.0 and km == 0.0 and nc == lc,
               pixels_tested=ks, max_change_before_k=bm, max_change_at_k=km,
               next_or_below_changed=nc, of=lc)

    # 5. causality by gradient: d logits(p) / d u must vanish at p and after it (float64)
    torch.manual_seed(4)
    g_model = RowLSTM(4, 2).double()
    with torch.no_grad():
        for p_ in g_model.parameters():
            p_.normal_(0, 0.5)
    H, W = 7, 9
    u = torch.rand(1, 1, H, W, dtype=torch.float64, requires_grad=True)
    bad, seen_dep = 0, 0
    for k in range(H * W):
        i, j = divmod(k, W)
        xx = g_model.inp(u)
        for layer in g_model.rnn:
            xx = layer(xx)
        out = g_model.head2(F.relu(g_model.head1(F.relu(xx))))
        (gu,) = torch.autograd.grad(out[0, :, i, j].sum(), u)
        gflat = gu.flatten()
        bad += int(gflat[k:].abs().max() > 0)
        seen_dep += int(k > 0 and gflat[:k].abs().max() > 0)
    report("causality_jacobian_7x9", bad == 0, pixels=H * W, pixels_with_illegal_dependency=bad,
           pixels_with_some_dependency=seen_dep)
    print(json.dumps({"all_checks_pass": bool(ok)}))
    return 0 if ok else 1


# ----------------------------------------------------------------- bench/train


def make_model(args):
    torch.manual_seed(args.seed)
    model = RowLSTM(args.hidden, args.layers, channels=3 if getattr(args, "rgb", False) else 1)
    spec_init(model, args.seed)
    return model


def train_steps(model, opt, batches, steps, log_every=0, t0=None):
    losses = []
    for s in range(steps):
        x = batches.next()
        opt.zero_grad(set_to_none=True)
        # bench --autocast: the forward's products in bf16 (fp32 weights, as loom --precision bf16)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=AUTOCAST):
            logits = model(x)
        loss = nll_loss(logits.float(), x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and (s + 1) % log_every == 0:
            print("step %d loss %.4f nats (%.4f bits/dim) %.1fs" %
                  (s + 1, losses[-1], losses[-1] / math.log(2), time.perf_counter() - t0),
                  file=sys.stderr, flush=True)
    return losses


@torch.no_grad()
def sample_naive(model, n_images, H, W, pixels, gen):
    """Naive sampling: one full forward pass of the whole (partial) image per pixel.
    Draws the first `pixels` pixels in raster order of n_images images."""
    if model.channels == 3:  # one forward per channel of each pixel, R then G then B
        x = torch.zeros(n_images, 3, H, W, dtype=torch.int64)
        for k in range(pixels):
            i, j = divmod(k, W)
            for c in range(3):
                logits = model(x)[:, :, c, i, j]  # (n, 256)
                x[:, c, i, j] = torch.multinomial(F.softmax(logits, dim=1), 1, generator=gen)[:, 0]
        return x
    x = torch.zeros(n_images, H, W, dtype=torch.int64)
    for k in range(pixels):
        i, j = divmod(k, W)
        logits = model(x)[:, :, i, j]  # (n, 256)
        x[:, i, j] = torch.multinomial(F.softmax(logits, dim=1), 1, generator=gen)[:, 0]
    return x


def _system_busy_s():
    """CPU seconds spent busy by the whole machine so far (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


AUTOCAST = False  # bench --autocast


def cmd_bench(args):
    global AUTOCAST
    AUTOCAST = args.autocast
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    busy0, own0, wall0 = _system_busy_s(), os.times(), time.perf_counter()
    if args.rgb:  # random 32x32x3 images (speed does not depend on the pixel values)
        train = np.random.default_rng(args.seed).integers(0, 256, size=(512, 3, args.size, args.size),
                                                          dtype=np.uint8)
    else:
        train = fashion("train")
    H, W = train.shape[-2:]
    model = make_model(args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = Batches(train, args.batch, args.seed)

    train_steps(model, opt, batches, args.warmup)
    t = time.perf_counter()
    losses = train_steps(model, opt, batches, args.steps)
    train_s = time.perf_counter() - t

    model.eval()
    x = batches.next()
    with torch.no_grad():
        model(x)  # warm-up
        reps = []
        for _ in range(max(1, args.forward_reps)):
            t = time.perf_counter()
            model(x)
            reps.append(time.perf_counter() - t)
        fwd_s = float(np.median(reps))  # median of the repetitions

    # Naive sampling (no incremental state): 784 full forwards per 28x28 image.
    # We time `sample_pixels` pixels of a batch of `sample_batch` images and extrapolate
    # linearly to H*W pixels (exact when sample_pixels == H*W; each forward costs the same
    # whatever the pixel, so the extrapolation is linear).
    gen = torch.Generator().manual_seed(args.seed)
    npix = min(args.sample_pixels, H * W)
    t = time.perf_counter()
    sample_naive(model, args.sample_batch, H, W, npix, gen)
    samp_s = time.perf_counter() - t
    sample_s_per_image = samp_s * (H * W / npix) / args.sample_batch

    busy1, own1, wall = _system_busy_s(), os.times(), time.perf_counter() - wall0
    other = None
    if busy0 is not None and busy1 is not None:
        own = (own1.user + own1.system) - (own0.user + own0.system)
        other = max(0.0, (busy1 - busy0 - own) / wall)
    print(json.dumps({
        "train_images_per_s": round(args.steps * args.batch / train_s, 3),
        "forward_ms_per_image": round(fwd_s * 1000.0 / x.shape[0], 4),
        "sample_s_per_image": round(sample_s_per_image, 4),
        "sample_method": "naive: one full forward per pixel (per channel in colour), batch %d, %d of %d pixels timed%s"
                         % (args.sample_batch, npix, H * W,
                            ", linearly extrapolated" if npix < H * W else ""),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "import_rss_mb": round(_RSS_AFTER_IMPORT_MB, 1) if _RSS_AFTER_IMPORT_MB else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": args.batch, "layers": args.layers, "hidden": args.hidden,
        "channels": 3 if args.rgb else 1, "height": H, "width": W,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "warmup_steps": args.warmup, "timed_steps": args.steps,
        "last_train_loss_nats": round(losses[-1], 4) if losses else None,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        # other processes competing for the cores make every number above meaningless
        "loadavg_1m_start": round(load_start, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
        # CPU cores' worth used by OTHER processes during the run (should be ~0)
        "other_procs_cpu_cores": round(other, 3) if other is not None else None,
    }))


@torch.no_grad()
def eval_bits_per_dim(model, images, batch):
    model.eval()
    total, n = 0.0, 0
    for s in range(0, len(images), batch):
        x = torch.from_numpy(images[s:s + batch].astype(np.int64))
        total += float(nll_loss(model(x), x, reduction="sum").double())
        n += x.numel()
    model.train()
    return total / n / math.log(2)


def cmd_train(args):
    torch.set_num_threads(args.threads)
    train = fashion("train")
    model = make_model(args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = Batches(train, args.batch, args.seed)
    t0 = time.perf_counter()
    losses = train_steps(model, opt, batches, args.steps, args.log_every, t0)
    train_s = time.perf_counter() - t0
    res = {"steps": args.steps, "batch": args.batch, "layers": args.layers, "hidden": args.hidden,
           "lr": args.lr, "seed": args.seed, "threads": torch.get_num_threads(),
           "train_s": round(train_s, 2),
           "last_train_loss_bits_per_dim": round(float(np.mean(losses[-50:])) / math.log(2), 4)
           if losses else None}
    if args.eval:
        test = fashion("test")[:args.eval_images]
        t = time.perf_counter()
        res["test_bits_per_dim"] = round(eval_bits_per_dim(model, test, args.eval_batch), 5)
        res["test_images"] = len(test)
        res["eval_s"] = round(time.perf_counter() - t, 2)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    res["torch"] = torch.__version__
    print(json.dumps(res))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fixture", help="write the float64 reference fixture")
    f.add_argument("--conditional", action="store_true",
                   help="a class-conditional model (default --out tests/fixtures/rowlstm_cond_ref.safetensors)")
    f.add_argument("--out", default=None,
                   help="default tests/fixtures/rowlstm_ref.safetensors (--rgb: rowlstm_rgb_ref)")
    f.add_argument("--rgb", action="store_true", help="the colour model (docs/rowlstm.md, Colour)")

    c = sub.add_parser("check", help="causality / mask / mapping / gradient self-checks")
    c.add_argument("--rgb", action="store_true", help="colour causality per channel only")

    def common(p, steps):
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--batch", type=int, default=32)
        p.add_argument("--layers", type=int, default=4)
        p.add_argument("--hidden", type=int, default=32)
        p.add_argument("--steps", type=int, default=steps)
        p.add_argument("--lr", type=float, default=1e-3)
        p.add_argument("--seed", type=int, default=1)

    b = sub.add_parser("bench", help="speed / memory peer (one JSON line)")
    common(b, 30)
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--autocast", action="store_true", help="torch.autocast('cpu', dtype=torch.bfloat16) in training")
    b.add_argument("--forward-reps", type=int, default=10)
    b.add_argument("--sample-batch", type=int, default=1)
    b.add_argument("--sample-pixels", type=int, default=784,
                   help="pixels of naive sampling to time (extrapolated to the full image)")
    b.add_argument("--rgb", action="store_true",
                   help="the colour model (docs/rowlstm.md, Colour) on random --size x --size x 3 images")
    b.add_argument("--size", type=int, default=32, help="--rgb: image height and width (default 32)")

    t = sub.add_parser("train", help="train and report test bits/dim")
    common(t, 1500)
    t.add_argument("--eval", action="store_true")
    t.add_argument("--eval-images", type=int, default=10000)
    t.add_argument("--eval-batch", type=int, default=250)
    t.add_argument("--log-every", type=int, default=100)

    args = ap.parse_args(argv)
    return {"fixture": cmd_fixture, "check": cmd_check, "bench": cmd_bench,
            "train": cmd_train}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
