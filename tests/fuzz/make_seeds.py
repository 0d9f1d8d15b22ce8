#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/ (committed; rerun only to
regenerate them). Standard library only, plus the loom binary for a real
tiny checkpoint: python3 tests/fuzz/make_seeds.py build/loom"""
import gzip, json, os, shutil, struct, subprocess, sys, tempfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
loom = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/loom")


def put(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def framed(first, second):
    """fuzz_idx / fuzz_png input: flag byte, split point, two files."""
    n = len(first)
    return bytes([1, n & 255, n >> 8]) + first + second


def png(w, h, color_type, depth, rows, extra=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ---- IDX: images only, images + labels, gzip, 1x1
imgs = idx([2, 3, 4], bytes(range(24)))
labs = idx([2], bytes([0, 3]))
put("idx", "images_raw", bytes([0, 0, 0]) + imgs)
put("idx", "images_labels", framed(imgs, labs))
put("idx", "images_gzip", bytes([0, 0, 0]) + gzip.compress(imgs, mtime=0))
put("idx", "images_labels_gzip", framed(gzip.compress(imgs, mtime=0), gzip.compress(labs, mtime=0)))
put("idx", "one_pixel", bytes([0, 0, 0]) + idx([1, 1, 1], b"\x7f"))

# ---- PNG: gray 8/16/1 bit, RGB, RGBA, gray+alpha, palette, gAMA; one and two files
g8 = png(4, 3, 0, 8, [bytes([0, 80, 160, 255])] * 3)
put("png", "gray8", bytes([0, 0, 0]) + g8)
put("png", "gray16", bytes([0, 0, 0]) + png(2, 2, 0, 16, [b"\x00\x00\xff\xff"] * 2))
put("png", "gray1", bytes([0, 0, 0]) + png(8, 2, 0, 1, [b"\xa5", b"\x5a"]))
put("png", "rgb", bytes([0, 0, 0]) + png(2, 2, 2, 8, [bytes([255, 0, 0, 0, 255, 0])] * 2))
put("png", "rgba", bytes([0, 0, 0]) + png(2, 1, 6, 8, [bytes([10, 20, 30, 128, 200, 100, 50, 255])]))
put("png", "gray_alpha", bytes([0, 0, 0]) + png(2, 1, 4, 8, [bytes([200, 128, 50, 255])]))
plte = struct.pack(">I", 6) + b"PLTE" + bytes([0, 0, 0, 255, 255, 255])
plte += struct.pack(">I", zlib.crc32(b"PLTE" + bytes([0, 0, 0, 255, 255, 255])))
put("png", "palette", bytes([0, 0, 0]) + png(4, 1, 3, 8, [bytes([0, 1, 0, 1])], plte))
gama = struct.pack(">I", 4) + b"gAMA" + struct.pack(">I", 100000)
gama += struct.pack(">I", zlib.crc32(b"gAMA" + struct.pack(">I", 100000)))
put("png", "gamma", bytes([0, 0, 0]) + png(2, 1, 0, 8, [bytes([64, 192])], gama))
put("png", "two_same", framed(g8, g8))
put("png", "two_classes", bytes([3, len(g8) & 255, len(g8) >> 8]) + g8 + g8)
put("png", "two_mixed_sizes", framed(g8, png(3, 3, 0, 8, [bytes([1, 2, 3])] * 3)))
# flag bit 4: the colour-keeping reader; a gray then a colour file (promotion to RGB),
# RGBA (alpha dropped), 16-bit RGB
rgb2 = png(4, 3, 2, 8, [bytes(range(12))] * 3)
put("png", "colour_gray_then_rgb", bytes([5, len(g8) & 255, len(g8) >> 8]) + g8 + rgb2)
put("png", "colour_rgba", bytes([4, 0, 0]) + png(2, 1, 6, 8, [bytes([10, 20, 30, 128, 200, 100, 50, 255])]))
put("png", "colour_rgb16", bytes([4, 0, 0]) + png(1, 1, 2, 16, [bytes([255, 255, 0, 0, 128, 0])]))


# ---- safetensors: a hand-made file with every dtype, and a real tiny loom checkpoint
def safetensors(tensors, meta=None):
    header, data = {}, b""
    if meta:
        header["__metadata__"] = meta
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "dtypes", safetensors([
    ("a", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)),
    ("b", "U8", [3], b"\1\2\3"),
    ("c", "I32", [1], struct.pack("<i", -5)),
    ("d", "I64", [], struct.pack("<q", 7)),
    ("e", "F64", [1, 1, 1, 1], struct.pack("<d", 0.5)),
    ("empty", "F32", [0, 3], b""),
], {"format": "pt"}))
put("safetensors", "empty_header", struct.pack("<Q", 2) + b"{}")

tmp = tempfile.mkdtemp()
try:
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    with open(os.path.join(data, "train-images-idx3-ubyte"), "wb") as f:
        f.write(idx([4, 4, 4], bytes((i * 37) & 255 for i in range(64))))
    with open(os.path.join(data, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(idx([4], bytes([0, 1, 0, 1])))
    # one tiny checkpoint per model, so the loader of every model is fuzzed
    for name, extra in (("ckpt_tiny", []), ("ckpt_conditional", ["--conditional"]),
                        ("ckpt_diagbilstm", ["--model", "diagbilstm"]),
                        ("ckpt_grupixel", ["--model", "grupixel", "--cell", "gru", "--zdim", "1"]),
                        ("ckpt_draw", ["--model", "draw", "--zdim", "1", "--steps-draw", "2",
                                       "--read-n", "1", "--write-n", "1"]),
                        ("ckpt_rae", ["--model", "rae", "--zdim", "1", "--variational"])):
        run = os.path.join(tmp, name)
        layers = [] if "draw" in name or "rae" in name else ["--layers", "1"]
        subprocess.run([loom, "train", "--data", data] + layers + ["--hidden", "1", "--steps", "1",
                        "--batch", "2", "--valid", "0", "--threads", "1", "--quiet", "--out", run] + extra,
                       check=True, stderr=subprocess.DEVNULL)
        with open(os.path.join(run, "checkpoint.safetensors"), "rb") as f:
            put("safetensors", name, f.read())
        with open(os.path.join(run, "config.json"), "rb") as f:
            put("safetensors", "config_" + name[5:], f.read())
finally:
    shutil.rmtree(tmp)

# ---- args: NUL-separated argv
for i, argv in enumerate([
    ["--layers", "4", "--batch", "32", "--lr", "1e-3", "--out", "run"],
    ["--steps=100", "--seed", "18446744073709551615", "--quiet", "pos1"],
    ["--clip", "0.5", "--data", "/tmp/x", "a", "b"],
    ["--help"],
    ["--lr", "-1"],
    ["--batch", "0"],
]):
    put("args", "argv%d" % i, b"\0".join(a.encode() for a in argv))
