#!/usr/bin/python3
"""loom checkpoint -> PyTorch state_dict, for the models with a PyTorch reference in bench/.

    /usr/bin/python3 tools/loom2torch.py RUN_DIR|CHECKPOINT OUT.pt [--trained] [--eval IDX [--limit N]]

The weights are the ones loom uses for inference: the moving average (ema.*) when
the run has one, else the trained ones (--trained: always the trained ones). The
model classes are bench/<model>_torch.py's (rowlstm, diagbilstm: load OUT.pt
with torch.load into that class built from the checkpoint's config; grupixel:
bench/grupixel_torch.py's GruPixel). --eval IDX: the mean NLL in nats per
image of the first --limit images of an IDX image file (raw or .gz) under the
converted model, printed as JSON: the same number as `loom eval --json`
(nats_per_image) for the exact-likelihood models (rowlstm, diagbilstm).
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
        with torch.no_grad():
            for k, (p, transpose) in mod.loom_views(model).items():
                v = params[k].t() if transpose else params[k]
                assert v.shape == p.shape, (k, v.shape, p.shape)
                p.copy_(v)
        return model, mod
    sys.exit("loom2torch: model %s%s has no PyTorch mapping here (rowlstm, diagbilstm, grupixel)"
             % (name, " (conditional)" if K else ""))


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
        x = torch.from_numpy(idx_images(a.eval, a.limit).astype(np.int64))
        with torch.no_grad():
            logits = model(x)  # (B, 256, H, W)
            nll = torch.nn.functional.cross_entropy(logits, x, reduction="none").sum(dim=(1, 2))
        res.update(kind="exact", nats_per_image=float(nll.mean()), images=int(x.shape[0]))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
