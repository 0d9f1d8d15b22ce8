#!/usr/bin/python3
"""Independent PyTorch reference and peer for loom's GRAN (docs/gran.md).

Written from the spec in docs/gran.md (Im et al. 2016's generator: T canvas
updates, each decoded by transposed convolutions from [z, h_c,t], h_c,t the
encoding of the previous update; image = sigmoid(sum of updates); a
convolutional discriminator; the non-saturating GAN loss).

  fixture -- tests/fixtures/gran_ref.safetensors: a tiny generator and
             discriminator (loom's tensor names and layouts), real images and
             z, the generated images, the discriminator's logits, L_D and its
             gradient for every discriminator tensor (stage 0), L_G and its
             gradient for every generator tensor through the discriminator
             (stage 1), in float64. With --batchnorm --mbstd 2 --out
             tests/fixtures/gran_bn_ref.safetensors: the same with the
             generator's batchnorm (per micro-shard of 8) and the
             discriminator's minibatch standard deviation.
  bench   -- the peer: float32 training steps (one D update, one G update) of
             the same networks at loom's defaults, on Fashion-MNIST; with
             --seconds, trains that long and writes --samples N samples as
             PNGs into --out-dir (for loom score DIR).

Run with Debian's interpreter:  /usr/bin/python3 bench/gran_torch.py fixture
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rowlstm_torch import fashion, write_safetensors  # noqa: E402

LEAK = 0.2


def conv_w(w):
    """loom (cout, k, k, cin) -> torch Conv2d / ConvTranspose2d (cout_or_in, cin_or_out, k, k)"""
    return w.permute(0, 3, 1, 2)


def flat(a):
    """(n, c, h, w) -> loom's channels-last rows (n, h w c)"""
    return a.permute(0, 2, 3, 1).reshape(a.shape[0], -1)


def unflat(v, c, h, w):
    return v.reshape(v.shape[0], h, w, c).permute(0, 3, 1, 2)


def gen_names(bn=False):
    return [k for k in gen_shapes(8, 8, 1, 1, bn)]


def disc_names(mbstd=0):
    return ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"] + \
        (["mbstd.weight"] if mbstd else [])


def gen_shapes(H, W, C, Z, bn=False):
    """bn: no per-channel biases before the batchnorms (loom's layout: they would cancel)"""
    E = (H // 4) * (W // 4) * 2 * C
    s = {"enc.conv1.weight": (C, 4, 4, 1), "enc.conv1.bias": (C,), "enc.conv2.weight": (2 * C, 4, 4, C),
         "enc.conv2.bias": (2 * C,), "enc.fc.weight": (E, Z), "enc.fc.bias": (Z,), "dec.fc.weight": (2 * Z, E),
         "dec.fc.bias": (E,), "dec.deconv1.weight": (2 * C, 4, 4, C), "dec.deconv1.bias": (C,),
         "dec.deconv2.weight": (C, 4, 4, 1), "dec.deconv2.bias": (1,)}
    if bn:
        for k in ("enc.conv1.bias", "enc.conv2.bias", "dec.deconv1.bias"):
            del s[k]
    return s


def disc_shapes(H, W, C, mbstd=0):
    E = (H // 4) * (W // 4) * 2 * C
    s = {"conv1.weight": (C, 4, 4, 1), "conv1.bias": (C,), "conv2.weight": (2 * C, 4, 4, C),
         "conv2.bias": (2 * C,), "fc.weight": (E, 1), "fc.bias": (1,)}
    if mbstd:
        s["mbstd.weight"] = (1,)
    return s


def bnorm(a, on, group=8):
    """loom's batchnorm (no scale or shift): per channel over the images of each
    micro-shard of `group` consecutive images and their pixels, biased variance;
    group 0: over the whole batch (the peer's, PyTorch's own batch_norm)"""
    if not on:
        return a
    if group == 0:
        return F.batch_norm(a, None, None, training=True, eps=1e-5)
    out = []
    for g in a.split(group, 0):
        m = g.mean((0, 2, 3), keepdim=True)
        v = ((g - m) ** 2).mean((0, 2, 3), keepdim=True)
        out.append((g - m) / torch.sqrt(v + 1e-5))
    return torch.cat(out, 0)


def generator(p, z, H, W, C, T, bn=False, group=8):
    """p: loom-named tensors; z (n, Z) -> images (n, 1, H, W) in (0, 1);
    bn: batch-normalise the four hidden layers before their ReLUs (bnorm)"""
    n = z.shape[0]
    S = torch.zeros(n, 1, H, W, dtype=z.dtype)
    prev = torch.zeros(n, 1, H, W, dtype=z.dtype)
    for _ in range(T):
        a1 = F.relu(bnorm(F.conv2d(prev, conv_w(p["enc.conv1.weight"]), p.get("enc.conv1.bias"), stride=2,
                                   padding=1), bn, group))
        a2 = F.relu(bnorm(F.conv2d(a1, conv_w(p["enc.conv2.weight"]), p.get("enc.conv2.bias"), stride=2, padding=1), bn,
                          group))
        hc = torch.tanh(flat(a2) @ p["enc.fc.weight"] + p["enc.fc.bias"])
        g0 = unflat(torch.cat([z, hc], 1) @ p["dec.fc.weight"] + p["dec.fc.bias"], 2 * C, H // 4, W // 4)
        g0 = F.relu(bnorm(g0, bn, group))
        g1 = F.relu(bnorm(F.conv_transpose2d(g0, conv_w(p["dec.deconv1.weight"]), p.get("dec.deconv1.bias"), stride=2,
                                             padding=1), bn, group))
        dc = F.conv_transpose2d(g1, conv_w(p["dec.deconv2.weight"]), p["dec.deconv2.bias"], stride=2, padding=1)
        S = S + dc
        prev = dc
    return torch.sigmoid(S)


def discriminator(p, x, mbstd=0):
    """x (n, 1, H, W) in [0, 1] -> logits (n,); mbstd G: + w_s times the mean
    over the features of their standard deviation over each group of G images"""
    h1 = F.leaky_relu(F.conv2d(x, conv_w(p["conv1.weight"]), p["conv1.bias"], stride=2, padding=1), LEAK)
    h2 = flat(F.leaky_relu(F.conv2d(h1, conv_w(p["conv2.weight"]), p["conv2.bias"], stride=2, padding=1), LEAK))
    out = (h2 @ p["fc.weight"] + p["fc.bias"]).reshape(-1)
    if mbstd:
        if h2.shape[0] % mbstd == 0:  # the peer's batches: one reshape
            g = h2.reshape(-1, mbstd, h2.shape[1])
            sig = torch.sqrt(((g - g.mean(1, keepdim=True)) ** 2).mean(1) + 1e-8).mean(1).repeat_interleave(mbstd)
        else:
            sig = torch.cat([torch.sqrt(((g - g.mean(0)) ** 2).mean(0) + 1e-8).mean().expand(g.shape[0])
                             for g in h2.split(mbstd, 0)])
        out = out + p["mbstd.weight"] * sig
    return out


def cmd_fixture(args):
    H, W, C, Z, T, B = 8, 8, 2, 3, 2, 10
    rng = np.random.default_rng(20261202)
    tensors, gp, dp = [], {}, {}
    for name, shape in gen_shapes(H, W, C, Z, args.batchnorm).items():
        w = (rng.standard_normal(shape) * 0.4).astype(np.float32)
        tensors.append(("gen." + name, w))
        gp[name] = torch.tensor(w.astype(np.float64), requires_grad=True)
    for name, shape in disc_shapes(H, W, C, args.mbstd).items():
        w = (rng.standard_normal(shape) * 0.4).astype(np.float32)
        tensors.append(("disc." + name, w))
        dp[name] = torch.tensor(w.astype(np.float64), requires_grad=True)
    images = rng.integers(0, 256, size=(B, H, W), dtype=np.uint8)
    z = rng.standard_normal((B, Z)).astype(np.float32)
    tensors += [("images", images), ("z", z)]
    real = torch.from_numpy(images.astype(np.float64) / 255.0).reshape(B, 1, H, W)
    fake = generator(gp, torch.from_numpy(z.astype(np.float64)), H, W, C, T, args.batchnorm)
    # stage 0: L_D = mean softplus(-D(real)) + softplus(D(fake)), the fakes held fixed
    lr, lf = discriminator(dp, real, args.mbstd), discriminator(dp, fake.detach(), args.mbstd)
    loss_d = (F.softplus(-lr) + F.softplus(lf)).mean()
    loss_d.backward()
    for name in disc_names(args.mbstd):
        tensors.append(("disc.grad." + name, dp[name].grad.numpy().astype(np.float32)))
        dp[name].grad = None
    # stage 1: L_G = mean softplus(-D(G(z))) with the same (not updated) discriminator
    loss_g = F.softplus(-discriminator(dp, fake, args.mbstd)).mean()
    loss_g.backward()
    for name in gen_names(args.batchnorm):
        tensors.append(("gen.grad." + name, gp[name].grad.numpy().astype(np.float32)))
    tensors += [("fake", fake.detach().numpy().reshape(B, H, W).astype(np.float32)),
                ("logits_real", lr.detach().numpy().astype(np.float32)),
                ("logits_fake", lf.detach().numpy().astype(np.float32)),
                ("loss_d", np.array([loss_d.item()], dtype=np.float32)),
                ("loss_g", np.array([loss_g.item()], dtype=np.float32))]
    meta = {"height": H, "width": W, "hidden": C, "zdim": Z, "steps_draw": T, "batch": B}
    if args.batchnorm or args.mbstd:
        meta.update({"batchnorm": int(args.batchnorm), "mbstd": args.mbstd})
    write_safetensors(args.out, tensors, meta)
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "loss_d": loss_d.item(),
                      "loss_g": loss_g.item()}))


def init_params(shapes, rng):
    """loom's initialisation: weights uniform in +-1/sqrt(fan-in), biases 0"""
    fan = {"enc.conv1.weight": 16, "conv1.weight": 16}
    p = {}
    for name, shape in shapes.items():
        if name.endswith("bias") or name == "mbstd.weight":
            p[name] = torch.zeros(shape, requires_grad=True)
            continue
        if name in fan:
            f = fan[name]
        elif name.endswith("conv2.weight"):
            f = 16 * shape[3]
        elif name == "dec.deconv1.weight":
            f = 4 * shape[0]
        elif name == "dec.deconv2.weight":
            f = 4 * shape[0]
        else:
            f = shape[0]
        b = 1.0 / np.sqrt(f)
        p[name] = torch.tensor(rng.uniform(-b, b, size=shape).astype(np.float32), requires_grad=True)
    return p


def write_pngs(imgs, out_dir):
    """imgs (n, H, W) uint8 -> out_dir/000000.png ... (8-bit gray, zlib)"""
    import struct
    import zlib
    os.makedirs(out_dir, exist_ok=True)
    for i, im in enumerate(imgs):
        h, w = im.shape
        raw = b"".join(b"\x00" + im[r].tobytes() for r in range(h))

        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
        png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + \
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
        with open(os.path.join(out_dir, "%06d.png" % i), "wb") as f:
            f.write(png)


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    H = W = 28
    C, Z, T, B = args.hidden, args.zdim, args.steps_draw, args.batch
    x_all = fashion("train")
    rng = np.random.default_rng(1)
    bn, G = args.batchnorm == "on", args.mbstd
    gp, dp = init_params(gen_shapes(H, W, C, Z, bn), rng), init_params(disc_shapes(H, W, C, G), rng)
    opt_g = torch.optim.Adam(gp.values(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(dp.values(), lr=args.lr_d if args.lr_d > 0 else 4 * args.lr, betas=(0.5, 0.999))

    def step():
        idx = rng.integers(0, len(x_all), size=B)
        real = torch.from_numpy(x_all[idx].astype(np.float32) / 255.0).reshape(B, 1, H, W)
        z = torch.randn(B, Z)
        fake = generator(gp, z, H, W, C, T, bn, 0)
        opt_d.zero_grad(set_to_none=True)
        loss_d = (F.softplus(-discriminator(dp, real, G)) + F.softplus(discriminator(dp, fake.detach(), G))).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-discriminator(dp, fake, G)).mean()
        loss_g.backward()
        opt_g.step()
        return loss_g.item(), loss_d.item()

    for _ in range(args.warmup):
        step()
    times, cpu, t0, steps, last = [], [], time.perf_counter(), 0, (0, 0)
    while True:
        t, c = time.perf_counter(), time.process_time()
        last = step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        steps += 1
        if args.seconds > 0:
            if time.perf_counter() - t0 >= args.seconds:
                break
        elif steps >= args.steps:
            break
    med = float(np.median(times))
    # CPU seconds of the process per step (all threads): less sensitive to a loaded machine than wall time
    out = {"train_steps_per_s": round(1.0 / med, 4), "train_images_per_s": round(B / med, 2),
           "cpu_s_per_step": round(float(np.median(cpu)), 4),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": B, "hidden": C, "zdim": Z,
           "steps_draw": T, "batchnorm": bn, "mbstd": G, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
           "loadavg_1m": os.getloadavg()[0], "timed_steps": steps, "loss_g": last[0], "loss_d": last[1]}
    if args.out_dir:
        with torch.no_grad():
            imgs = generator(gp, torch.randn(args.samples, Z), H, W, C, T, bn, 0)
        write_pngs((imgs.numpy().reshape(-1, H, W) * 255 + 0.5).astype(np.uint8), args.out_dir)
        out["samples"] = args.out_dir
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--out", default="tests/fixtures/gran_ref.safetensors")
    f.add_argument("--batchnorm", action="store_true", help="the generator's batchnorm (gran_bn_ref)")
    f.add_argument("--mbstd", type=int, default=0, help="the discriminator's minibatch groups (gran_bn_ref: 2)")
    b = sub.add_parser("bench")
    b.add_argument("--hidden", type=int, default=32)
    b.add_argument("--zdim", type=int, default=100)
    b.add_argument("--steps-draw", type=int, default=3)
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--lr", type=float, default=1e-4, help="the generator's Adam lr (loom's default)")
    b.add_argument("--lr-d", type=float, default=0, help="the discriminator's (default 4 --lr, as loom)")
    b.add_argument("--batchnorm", choices=["on", "off"], default="on",
                   help="the generator's batchnorm (loom's default on; here over the whole batch)")
    b.add_argument("--mbstd", type=int, default=0, help="the discriminator's minibatch groups (loom's default: 0, off)")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--seconds", type=float, default=0, help="train this long instead of --steps")
    b.add_argument("--samples", type=int, default=1000)
    b.add_argument("--out-dir", default="", help="write --samples PNG samples here after training")
    args = ap.parse_args()
    {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
