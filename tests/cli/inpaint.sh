# End to end: loom inpaint on the 8x8 PNG fixtures with tiny models (docs/inpaint.md).
. tests/cli/lib.sh
P=tests/fixtures/png8
F=tests/fixtures/inpaint
NET="--layers 1 --valid 4 --batch 8 --steps 6 --quiet --threads 1"
ok "inpaint: train a gray rowlstm" $LOOM train --model rowlstm --hidden 4 $NET --data $P/gray --out "$T/g"
ok "inpaint: train an RGB diagbilstm" $LOOM train --model diagbilstm --hidden 3 $NET --data $P/colour --out "$T/c"
ok "inpaint: train a draw" $LOOM train --model draw --hidden 16 --zdim 4 --steps-draw 3 --read-n 2 --write-n 3 \
    --valid 4 --batch 8 --steps 4 --quiet --threads 1 --data $P/gray --out "$T/d"
IMG=$P/gray/test/00.png

# ---- autoregressive: JSON, the grid, --out-dir fills with the given pixels kept
$LOOM inpaint "$T/g" --image $IMG --mask $F/hole.png --n 3 --candidates 16 --out "$T/o.png" --out-dir "$T/fills" \
    --json >"$T/j" 2>"$T/err"
if grep -q '"model": "rowlstm"' "$T/j" && grep -q '"step": 6' "$T/j" && grep -q '"checkpoint": ' "$T/j" &&
   grep -q '"kind": "estimated"' "$T/j" && [ "$(json_get n <"$T/j")" = 3 ] &&
   [ "$(json_get hidden_pixels <"$T/j")" = 6 ] &&
   awk -v e="$(json_get ess <"$T/j")" -v h="$(json_get nll_hidden <"$T/j")" 'BEGIN {exit !(e >= 1 && e <= 16 && h > 0)}'; then
    pass "inpaint --json: model, step, checkpoint, kind, nll_hidden, ess, n"
else fail "inpaint --json: model, step, checkpoint, kind, nll_hidden, ess, n" "$(cat "$T/j" "$T/err")"; fi
# one row of original | masked | 3 fills, 8x8 with 1 px padding: 5*9+1 = 46 wide, 10 high
wh=$(od -A n -t u1 -j 16 -N 8 "$T/o.png" | tr -s ' ' | sed 's/^ //')
# 46 x 10 enlarged 12 times by default (the least that makes it 512 px wide)
[ "$wh" = "0 0 2 40 0 0 0 120" ] && pass "inpaint: grid of original | masked | 3 fills" || fail "inpaint: grid of original | masked | 3 fills" "IHDR $wh"
wh=$(od -A n -t u1 -j 16 -N 8 "$T/fills/fill_002.png" | tr -s ' ' | sed 's/^ //')
[ "$wh" = "0 0 0 8 0 0 0 8" ] && [ -s "$T/fills/fill_000.png" ] && pass "inpaint --out-dir: each fill at the image's size" ||
    fail "inpaint --out-dir: each fill at the image's size" "IHDR $wh"
# the fills keep every pixel outside the mask: refilling a fill (same mask,
# same seed) gives what refilling the image gives, since the sampler sees only
# the given pixels
$LOOM inpaint "$T/g" --image "$T/fills/fill_000.png" --mask $F/hole.png --n 1 --candidates 4 --out "$T/o2.png" \
    --out-dir "$T/fills2" >/dev/null 2>&1
$LOOM inpaint "$T/g" --image "$IMG" --mask $F/hole.png --n 1 --candidates 4 --out "$T/o3.png" --out-dir "$T/fills3" >/dev/null 2>&1
same "inpaint: the given pixels are the image's (a fill refilled equals the image refilled)" "$T/fills2/fill_000.png" "$T/fills3/fill_000.png"
$LOOM inpaint "$T/g" --image $IMG --mask $F/hole.png --n 3 --candidates 16 --threads 2 --out "$T/o4.png" >/dev/null 2>&1
same "inpaint: 2 threads give the 1-thread grid" "$T/o.png" "$T/o4.png"
$LOOM inpaint "$T/g" --image $IMG --mask $F/hole.png --n 3 --candidates 16 --seed 2 --out "$T/o5.png" >/dev/null 2>&1
if cmp -s "$T/o.png" "$T/o5.png"; then fail "inpaint: another seed, other fills" "identical"; else pass "inpaint: another seed, other fills"; fi
$LOOM inpaint "$T/g" --image $IMG --mask $F/hole_rgb.png --n 3 --candidates 16 --out "$T/o6.png" >/dev/null 2>&1
same "inpaint: an RGB mask is read as gray" "$T/o.png" "$T/o6.png"
$LOOM inpaint "$T/g" --image $IMG --mask $F/hole.png --candidates 8 --out "$T/o.png" >"$T/txt" 2>&1
grep -q 'effective sample size' "$T/txt" && grep -q 'estimated' "$T/txt" && pass "inpaint: text report names the ESS and says estimated" ||
    fail "inpaint: text report names the ESS and says estimated" "$(cat "$T/txt")"

# ---- colour
$LOOM inpaint "$T/c" --image $P/colour/test/01.png --mask $F/hole.png --n 2 --candidates 8 --out "$T/oc.png" --json >"$T/jc" 2>"$T/err"
wh=$(od -A n -t u1 -j 16 -N 8 "$T/oc.png" | tr -s ' ' | sed 's/^ //')
# 37 x 10 enlarged 14 times
[ "$wh" = "0 0 2 6 0 0 0 140" ] && grep -q '"model": "diagbilstm"' "$T/jc" && grep -q '"ess": ' "$T/jc" &&
    pass "inpaint: RGB diagbilstm" || fail "inpaint: RGB diagbilstm" "IHDR $wh $(cat "$T/jc" "$T/err")"

# ---- draw: iterated reconstruction, stated as approximate
$LOOM inpaint "$T/d" --image $IMG --mask $F/hole.png --n 2 --iters 3 --out "$T/od.png" --json >"$T/jd" 2>"$T/err"
grep -q '"kind": "mse"' "$T/jd" && grep -q '"approximate": true' "$T/jd" && grep -q '"nll_hidden": null' "$T/jd" &&
    grep -q '"method": "iterated-reconstruction"' "$T/jd" && pass "inpaint draw: iterated reconstruction, approximate" ||
    fail "inpaint draw: iterated reconstruction, approximate" "$(cat "$T/jd" "$T/err")"

# ---- bad input: one line, exit 2
rejects "inpaint: mask of the wrong size" 2 "small.png: 6x8 but the image is 8x8" \
    $LOOM inpaint "$T/g" --image $IMG --mask $F/small.png --out "$T/x.png"
rejects "inpaint: image of the wrong size" 2 "odd.png: 6x8 but the model takes 8x8" \
    $LOOM inpaint "$T/g" --image $P/odd.png --mask $F/hole.png --out "$T/x.png"
rejects "inpaint: mask not a PNG" 2 "notpng.png: not a PNG file" \
    $LOOM inpaint "$T/g" --image $IMG --mask $F/notpng.png --out "$T/x.png"
rejects "inpaint: image not a PNG" 2 "--image .*notpng.png: not a PNG file" \
    $LOOM inpaint "$T/g" --image $F/notpng.png --mask $F/hole.png --out "$T/x.png"
rejects "inpaint: mask hides nothing" 2 "nothing is hidden" \
    $LOOM inpaint "$T/g" --image $IMG --mask $F/none.png --out "$T/x.png"
rejects "inpaint: mask hides everything" 2 "nothing is given" \
    $LOOM inpaint "$T/g" --image $IMG --mask $F/all.png --out "$T/x.png"
rejects "inpaint: missing mask file" 2 "nope.png" \
    $LOOM inpaint "$T/g" --image $IMG --mask "$T/nope.png" --out "$T/x.png"
rejects "inpaint: needs --mask" 2 "needs --mask" $LOOM inpaint "$T/g" --image $IMG --out "$T/x.png"
rejects "inpaint: --iters on an autoregressive model" 2 "importance resampling" \
    $LOOM inpaint "$T/g" --image $IMG --mask $F/hole.png --iters 3 --out "$T/x.png"
rejects "inpaint: --candidates on draw" 2 "not autoregressive" \
    $LOOM inpaint "$T/d" --image $IMG --mask $F/hole.png --candidates 3 --out "$T/x.png"
