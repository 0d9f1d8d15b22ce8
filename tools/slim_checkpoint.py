#!/usr/bin/python3
"""Copy a loom checkpoint without its optimiser state (the "optim.*" tensors:
Adam's moments), keeping the metadata as it is, so that the weights alone can
be shipped (models/fmnist_renet.safetensors, the feature extractor of loom
score: docs/scores.md). A run with --ema keeps a moving average "ema.NAME" of
every weight, which loom uses for inference in place of NAME: the copy holds
the average under the weight's own name and not the raw weights.

    /usr/bin/python3 tools/slim_checkpoint.py runs/fmnist_renet/checkpoint.safetensors models/fmnist_renet.safetensors
"""
import json
import os
import struct
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: slim_checkpoint.py IN.safetensors OUT.safetensors")
    with open(sys.argv[1], "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out_header, blobs, off = {}, [], 0
    if "__metadata__" in header:
        out_header["__metadata__"] = header.pop("__metadata__")
    averaged = {n[4:] for n in header if n.startswith("ema.")}
    for name, d in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if name.startswith("optim.") or name in averaged:
            continue
        if name.startswith("ema."):
            name = name[4:]
        b, e = d["data_offsets"]
        blobs.append(data[b:e])
        out_header[name] = {"dtype": d["dtype"], "shape": d["shape"], "data_offsets": [off, off + e - b]}
        off += e - b
    h = json.dumps(out_header, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8)
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, sys.argv[2])
    print(json.dumps({"out": sys.argv[2], "bytes": os.path.getsize(sys.argv[2]),
                      "tensors": len(out_header) - ("__metadata__" in out_header)}))


if __name__ == "__main__":
    main()
