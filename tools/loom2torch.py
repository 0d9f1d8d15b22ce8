#!/usr/bin/python3
"""loom checkpoint -> PyTorch state_dict, for the models with a PyTorch reference in bench/.

    /usr/bin/python3 tools/loom2torch.py RUN_DIR|CHECKPOINT OUT.pt [--trained] [--eval IDX [--limit N]]

The weights are the ones loom uses for inference: the moving average (ema.*) when
the run has one, else the trained ones (--trained: always the trained ones). The
model classes are bench/<model>_torch.py's (rowlstm, diagbilstm: load OUT.pt
with torch.load into that class built from the checkpoint's config; grupixel:
bench/grupixel_torch.py's GruPixel; draw: bench/draw_torch.py's DRAW; rae:
bench/rae_torch.py's RAE). --eval IDX: the mean NLL in nats per image of the
first --limit images of an IDX image file (raw or .gz) under the converted
model, printed as JSON: the same number as `loom eval --json` (nats_per_image)
for the exact-likelihood models (rowlstm, diagbilstm) and for draw and rae,
whose bound depends on loom's noise: each image's binarization and posterior
noise are loom's evaluation draws (noise seed 0), reproduced in Python by
bench/loom_noise.py from docs/draw.md ("Random numbers, exactly").
Needs python3-torch and python3-numpy (Debian); loom itself does not.
"""
import argparse
import gzip
import importlib.util
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def read_checkpoint(path):
    """The numpy reader of docs/cli.md: {name: array}, metadata."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    types = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1"}
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=types[d["dtype"]]).reshape(d["shape"])
    return out, meta


def bench_module(name):
    spec = importlib.util.spec_from_file_location(name + "_torch", os.path.join(HERE, "..", "bench", name + "_torch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inference_params(tensors, trained):
    params = {k: v for k, v in tensors.items() if not k.startswith(("optim.", "ema."))}
    if not trained:
        for k in params:
            if "ema." + k in tensors:
                params[k] = tensors["ema." + k]
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in params.items()}


def copy_views(model, mod, params):
    """model's tensors from loom's, by the bench reference's loom_views: name -> (tensor, transpose)"""
    with torch.no_grad():
        for k, (p, transpose) in mod.loom_views(model).items():
            v = params[k].t() if transpose else params[k]
            assert v.shape == p.shape, (k, v.shape, p.shape)
            p.copy_(v)


def build(cfg, params):
    m = cfg["model"]
    name, C = m["name"], m.get("channels", 1) or 1
    K = m.get("classes", 0) or 0
    if name in ("rowlstm", "diagbilstm"):
        mod = bench_module(name)
        if name == "rowlstm":
            model = mod.RowLSTM(m["hidden"], m["layers"], K, channels=C)
        else:
            model = mod.DiagonalBiLSTM(m["hidden"], m["layers"], K, channels=C)
        mod.load_loom_params(model, params)
        return model, mod
    if name == "grupixel" and not K:
        mod = bench_module("grupixel")
        model = mod.GruPixel(m["cell"], m["hidden"], m["layers"], m["zdim"])
        copy_views(model, mod, params)
        return model, mod
    if name == "draw" and not K:
        mod = bench_module("draw")
        model = mod.DRAW(m["height"], m["width"], m["hidden"], m["zdim"], m["steps_draw"], m["read_n"],
                         m["write_n"], bool(m["attention"]))
        copy_views(model, mod, params)
        return model, mod
    if name == "rae" and not K:
        mod = bench_module("rae")
        model = mod.RAE(m["height"], m["width"], m["hidden"], m["zdim"], bool(m.get("variational")))
        with torch.no_grad():
            for k, (p, (_, frm)) in mod.loom_views(model).items():
                if frm is not None:
                    v = frm(params[k])
                    assert v.shape == p.shape, (k, v.shape, p.shape)
                    p.copy_(v)
            # weight_ih_l0 (4h, W + z) = [dec.w_ih ; dec.code.weight]^T
            w = torch.cat([params["dec.w_ih"], params["dec.code.weight"]], 0).t()
            assert w.shape == model.dec.weight_ih_l0.shape, (w.shape, model.dec.weight_ih_l0.shape)
            model.dec.weight_ih_l0.copy_(w)
        return model, mod
    sys.exit("loom2torch: model %s%s has no PyTorch mapping here (rowlstm, diagbilstm, grupixel, draw, rae)"
             % (name, " (conditional)" if K else ""))


def latent_nll(model, name, m, images):
    """draw, rae: each image's bound (nats) under loom's evaluation noise (noise seed 0):
    the binarization and the posterior noise eps of bench/loom_noise.py, as loom's eval
    draws them"""
    sys.path.insert(0, os.path.join(HERE, "..", "bench"))
    import loom_noise
    B, z = images.shape[0], m["zdim"]
    x = np.stack([loom_noise.binarize(images[b], 0) for b in range(B)]).astype(np.float64)
    if name == "draw":
        T = m["steps_draw"]
        eps = np.zeros((T, B, z))
        for b in range(B):  # one stream per image, T calls of z normals
            r = loom_noise.noise_stream(images[b], 0, 0)
            for t in range(T):
                eps[t, b] = loom_noise.normals(r, z)
        return model(torch.from_numpy(x), torch.from_numpy(eps))
    eps = None
    if m.get("variational"):
        eps = torch.from_numpy(np.stack([loom_noise.normals(loom_noise.noise_stream(images[b], 0, 0), z)
                                         for b in range(B)]).astype(np.float64))
    return model(torch.from_numpy(x.reshape(images.shape)), eps)


def idx_images(path, limit):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        b = f.read()
    n, h, w = struct.unpack(">III", b[4:16])
    n = min(n, limit) if limit else n
    return np.frombuffer(b[16:16 + n * h * w], dtype=np.uint8).reshape(n, h, w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--trained", action="store_true", help="the trained weights even when the run has a moving average")
    ap.add_argument("--eval", metavar="IDX", help="mean NLL (nats/image) of these images under the converted model")
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    path = a.checkpoint
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.safetensors")
    tensors, meta = read_checkpoint(path)
    if meta.get("format") != "loom-checkpoint-1":
        sys.exit("loom2torch: %s: not a loom checkpoint" % path)
    cfg = json.loads(meta["config"])
    if "models" in cfg:
        sys.exit("loom2torch: %s: a run of several models" % path)
    model, mod = build(cfg, inference_params(tensors, a.trained))
    torch.save(model.state_dict(), a.out)
    res = {"model": cfg["model"]["name"], "step": int(meta["step"]), "checkpoint": path, "kind": "state_dict",
           "out": a.out, "tensors": len(model.state_dict())}
    if a.eval:
        model = model.double().eval()
        name, images = cfg["model"]["name"], idx_images(a.eval, a.limit)
        if name == "grupixel":
            sys.exit("loom2torch: --eval: grupixel's NLL uses loom's fixed z, which is not reproduced here")
        with torch.no_grad():
            if name in ("draw", "rae"):
                nll = latent_nll(model, name, cfg["model"], images)
                kind = "elbo" if name == "draw" or cfg["model"].get("variational") else "reconstruction"
            else:
                x = torch.from_numpy(images.astype(np.int64))
                logits = model(x)  # (B, 256, H, W)
                nll = torch.nn.functional.cross_entropy(logits, x, reduction="none").sum(dim=(1, 2))
                kind = "exact"
        res.update(kind=kind, nats_per_image=float(nll.mean()), images=int(images.shape[0]))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
