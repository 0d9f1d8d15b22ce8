# Pictures and animations (issue 15): --gif for autoregressive models (a frame
# per row), interpolate --gif, --scale, --cols, --n, the completions' padding.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 8
$LOOM train --model rowlstm --layers 1 --hidden 4 --valid 8 --batch 8 --data $D --threads 1 --quiet --steps 1 \
    --conditional --out "$T/r" 2>/dev/null
# wh FILE: a PNG's "width height"
wh() { od -An -tu1 -j16 -N8 "$1" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4, $5 * 16777216 + $6 * 65536 + $7 * 256 + $8}'; }
# gif_frames FILE: image descriptors (0x2c after a graphic control block 21 f9 04 .. .. .. .. 00)
gif_frames() { od -An -v -tx1 "$1" | tr -s ' \n' '  ' | grep -o '21 f9 04 [0-9a-f][0-9a-f] [0-9a-f][0-9a-f] [0-9a-f][0-9a-f] [0-9a-f][0-9a-f] 00 2c' | wc -l; }

ok "pictures: rowlstm sample --gif" $LOOM sample "$T/r" --n 4 --threads 1 --gif "$T/a.gif" --out "$T/a.png"
[ "$(head -c 6 "$T/a.gif")" = GIF89a ] && [ "$(gif_frames "$T/a.gif")" -eq 28 ] &&
    pass "pictures: an autoregressive sample animates in 28 frames, one per row" ||
    fail "pictures: an autoregressive sample animates in 28 frames" "$(head -c 6 "$T/a.gif") $(gif_frames "$T/a.gif") frames"
ok "pictures: --scale 3" $LOOM sample "$T/r" --n 4 --cols 4 --scale 3 --threads 1 --out "$T/s3.png"
[ "$(wh "$T/s3.png")" = "351 90" ] && pass "pictures: --scale 3 --cols 4: 351x90 (117x30 three times)" ||
    fail "pictures: --scale 3 --cols 4" "$(wh "$T/s3.png")"
# the default scale: the least K that makes the grid 512 px wide (117 -> 5 x 117 = 585), the
# same bytes as --scale 5; --scale 1 is the grid of the images as they are; a grid already
# 512 px wide stays as it is (18 columns: 523)
ok "pictures: the default scale" $LOOM sample "$T/r" --n 4 --cols 4 --threads 1 --out "$T/d.png"
$LOOM sample "$T/r" --n 4 --cols 4 --scale 5 --threads 1 --out "$T/d5.png" 2>/dev/null
$LOOM sample "$T/r" --n 4 --cols 4 --scale 1 --threads 1 --out "$T/d1.png" 2>/dev/null
[ "$(wh "$T/d.png")" = "585 150" ] && cmp -s "$T/d.png" "$T/d5.png" && [ "$(wh "$T/d1.png")" = "117 30" ] &&
    pass "pictures: by default a grid is enlarged to 512 px wide (117 x 5), --scale 1 keeps its size" ||
    fail "pictures: the default scale" "$(wh "$T/d.png") $(wh "$T/d1.png")"
$LOOM sample "$T/r" --n 18 --cols 18 --threads 1 --out "$T/w.png" 2>/dev/null
[ "$(wh "$T/w.png")" = "523 30" ] && pass "pictures: a grid 512 px wide already is not enlarged" ||
    fail "pictures: a grid 512 px wide already" "$(wh "$T/w.png")"
ok "pictures: --n 5 --cols 5" $LOOM sample "$T/r" --n 5 --cols 5 --scale 1 --threads 1 --out "$T/n5.png"
[ "$(wh "$T/n5.png")" = "146 30" ] && pass "pictures: --n 5 --cols 5: one row of 5" || fail "pictures: --n 5 --cols 5" "$(wh "$T/n5.png")"
ok "pictures: --label all --n 20" $LOOM sample "$T/r" --label all --n 20 --scale 1 --threads 1 --out "$T/all.png"
# 2 x 10 images, 59 x 291, and a margin of 7 px for the labels "0" .. "9" (this data has no class names)
[ "$(wh "$T/all.png")" = "66 291" ] &&
    pass "pictures: --label all --n 20: 10 rows of 2, labelled" || fail "pictures: --label all --n 20" "$(wh "$T/all.png") $(cat "$T/err")"
ok "pictures: --label all --n 20 --cols 5" $LOOM sample "$T/r" --label all --n 20 --cols 5 --scale 1 --threads 1 --out "$T/c5.png"
# rows that mix classes get no labels
[ "$(wh "$T/c5.png")" = "146 117" ] && pass "pictures: --cols is honoured with --label all" || fail "pictures: --cols with --label all" "$(wh "$T/c5.png")"
# --gif is laid out like the PNG: the labels' margin and the default scale (66 x 291 -> 8 x 66 = 528 wide)
ok "pictures: --label all --gif" $LOOM sample "$T/r" --label all --n 20 --threads 1 --gif "$T/all.gif" --out "$T/allg.png"
gw=$(od -An -tu1 -j6 -N4 "$T/all.gif" | awk '{print $1 + 256 * $2, $3 + 256 * $4}')
[ "$(wh "$T/allg.png")" = "528 2328" ] && [ "$gw" = "528 2328" ] &&
    pass "pictures: --label all --gif: the GIF's screen is the labelled PNG's, 8 x (66 x 291)" ||
    fail "pictures: --label all --gif: the GIF's screen is the PNG's" "png $(wh "$T/allg.png") gif $gw"
rejects "pictures: --label all --n 15 is not one row per class" 2 "not a multiple of the model's 10 classes" \
    $LOOM sample "$T/r" --label all --n 15 --out "$T/x.png"
# completions: the padding (white) is not the masked area's mid gray
ok "pictures: complete" $LOOM complete "$T/r" --n 1 --samples 1 --rows 14 --scale 1 --threads 1 --out "$T/c.png"
if PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T/c.png" <<'PY'
import sys
from pngrows import read
w, h, _, rows = read(sys.argv[1])
# 3 images of 28 in a row with 1 px pads (88 px) after the margin of the row's class label
# (one digit: 7 px, black on the white pad): column 29 is padding; the masked image's bottom half is 128
off = w - 88
pad = {rows[y][off + 29] for y in range(h)} | {rows[0][x] for x in range(w)}
masked = {rows[y][off + 30 + x] for y in range(15, 29) for x in range(28)}
ink = {rows[y][x] for y in range(h) for x in range(off)}
sys.exit(not (pad == {255} and masked == {128} and off == 7 and ink == {0, 255}))
PY
then pass "pictures: completions padded white, the hidden part mid gray, the row's class beside it"; else fail "pictures: completions padded white, the hidden part mid gray" "$?"; fi

# interpolate --gif on a rae: A, 3 codes, B and back: 8 frames
$LOOM train --model rae --variational --hidden 8 --zdim 2 --valid 8 --batch 8 --data $D --threads 1 --quiet --steps 1 \
    --out "$T/v" 2>/dev/null
ok "pictures: interpolate --gif" $LOOM interpolate "$T/v" 0 1 --steps 3 --threads 1 --gif "$T/i.gif" --out "$T/i.png"
[ "$(gif_frames "$T/i.gif")" -eq 8 ] && pass "pictures: interpolate --gif: A, 3 codes, B and back (8 frames)" ||
    fail "pictures: interpolate --gif" "$(gif_frames "$T/i.gif") frames"
rejects "pictures: --gif on a model that neither stages nor rasters" 2 "neither draws in stages nor pixel by pixel" \
    $LOOM sample "$T/v" --n 1 --gif "$T/x.gif" --out "$T/x.png"

# class names from a labelled folder's sub-directories, drawn beside their rows: a folder
# of 30x30 images in bag/ and coat/; the margin is the widest name ("coat", 4 x 6 - 1 = 23 px) + 2
mkdir -p "$T/f/train/bag" "$T/f/train/coat" "$T/f/test/bag"
for k in 1 2 3 4; do
    $LOOM sample "$T/r" --n 1 --seed $k --scale 1 --threads 1 --out "$T/f/train/bag/$k.png" 2>/dev/null
    $LOOM sample "$T/r" --n 1 --seed $((k + 4)) --scale 1 --threads 1 --out "$T/f/train/coat/$k.png" 2>/dev/null
done
cp "$T/f/train/bag/1.png" "$T/f/test/bag/"
$LOOM train --model rowlstm --layers 1 --hidden 4 --valid 2 --batch 2 --data "$T/f" --threads 1 --quiet --steps 1 \
    --conditional --out "$T/fr" 2>/dev/null
ok "pictures: --label all on a folder's classes" $LOOM sample "$T/fr" --label all --n 4 --scale 1 --threads 1 --out "$T/fl.png"
# 2 rows of 2 images of 30: 63 x 63, with the 25 px margin: 88 x 63
[ "$(wh "$T/fl.png")" = "88 63" ] && pass "pictures: the labels' margin fits the folder's class names" ||
    fail "pictures: the labels' margin fits the folder's class names" "$(wh "$T/fl.png")"
if PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T/fl.png" <<'PY'
import sys
from pngrows import read
w, h, _, rows = read(sys.argv[1])
# the margin (x < 25) is mid gray and black only; the ink of row r lies in its 9-row text cell,
# which starts at 1 + r * 31 + (30 - 9) // 2: rows 11..19 ("bag") and 42..50 ("coat")
ink = {(x, y) for y in range(h) for x in range(25) if rows[y][x] == 0}
other = {rows[y][x] for y in range(h) for x in range(25)} - {0, 128}
ys = sorted({y for _, y in ink})
# "bag": b, a, g; "coat": c, o, a, t; g descends to row 19; the widest ink reaches x = 23
ok = not other and ys and ys[0] >= 11 and ys[-1] <= 50 and not [y for y in ys if 19 < y < 42] and \
     max(x for x, y in ink if y >= 42) == 23 and max(x for x, y in ink if y < 42) == 17 and 19 in ys
sys.exit(not ok)
PY
then pass "pictures: the class names are drawn beside their rows, black on the pad"
else fail "pictures: the class names are drawn beside their rows" "$?"; fi
