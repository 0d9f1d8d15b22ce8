#!/usr/bin/env python3
"""Cuts a folder of 32x32 RGB PNG patches (DIR/train/, DIR/test/, as loom's PNG
folder loader reads them) out of the photographs of a Debian package.

    python3 tools/colour32.py SRC_DIR OUT_DIR

SRC_DIR holds the source photographs (`make colour-data` uses the 12 JPEGs of
mate-backgrounds, /usr/share/backgrounds/mate/nature). Sources are taken in
name order; source i goes to the test split when i % 4 == 3, else to train, so
no test patch comes from a photograph used for training. From each source,
square crops of side 32 k (k uniform in 2..16, position uniform over the
photograph) are area-downscaled to 32x32 (PIL's BOX filter: each output pixel
is the mean of a k x k block, rounded). Random numbers come from Python's
random.Random(SEED), so the output is the same on every run with the same
sources and Pillow. Patch j of the r-th source of a split is file
j * (sources in the split) + r, so consecutive files come from different
photographs and any tail of a split (loom's --valid) mixes all of them. OUT_DIR is written as OUT_DIR.tmp and renamed at the end.
docs/data.md describes the result."""
import os, random, shutil, sys

from PIL import Image

SEED = 20261201
PER_TRAIN_SOURCE = 3600  # 9 sources: 32400 training patches
PER_TEST_SOURCE = 1000   # 3 sources: 3000 test patches
SIDE = 32


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(src) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    if len(names) < 2:
        sys.exit("%s: fewer than 2 source images" % src)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("train", "test"):
        os.makedirs(os.path.join(tmp, split))
    rng = random.Random(SEED)
    count = {"train": 0, "test": 0}
    splits = ["test" if i % 4 == 3 else "train" for i in range(len(names))]
    nsrc = {sp: splits.count(sp) for sp in count}
    if not nsrc["test"]:
        sys.exit("%s: fewer than 4 source images (every 4th is a test source)" % src)
    for i, name in enumerate(names):
        split = splits[i]
        rank = splits[:i].count(split)
        im = Image.open(os.path.join(src, name)).convert("RGB")
        w, h = im.size
        kmax = min(16, min(w, h) // SIDE)
        n = PER_TEST_SOURCE if split == "test" else PER_TRAIN_SOURCE
        for j in range(n):
            k = rng.randint(2, kmax)
            s = SIDE * k
            x, y = rng.randrange(w - s + 1), rng.randrange(h - s + 1)
            patch = im.resize((SIDE, SIDE), Image.Resampling.BOX, box=(x, y, x + s, y + s))
            patch.save(os.path.join(tmp, split, "%06d.png" % (j * nsrc[split] + rank)))
            count[split] += 1
        print("%s: %dx%d -> %d %s patches" % (name, w, h, n, split), flush=True)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print("%s: %d train, %d test images of %dx%d RGB" % (out, count["train"], count["test"], SIDE, SIDE))


if __name__ == "__main__":
    main()
