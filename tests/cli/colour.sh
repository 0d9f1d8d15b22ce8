# Colour data end to end on the committed 8x8 PNG folders (tests/fixtures/png8):
# colour without a colour model is refused, --gray trains and is remembered,
# channel mismatches and bad folders are one-line errors.
. tests/cli/lib.sh
FIX=tests/fixtures/png8
C=$FIX/colour G=$FIX/gray
NET="--model rowlstm --layers 1 --hidden 4 --valid 8 --batch 4 --threads 1 --quiet --eval-every 0"

# a gray-only model refuses colour, naming --gray; a colour model trains on it
rejects "colour folder + grupixel: clear error naming --gray" 2 "RGB images.*grayscale images only.*--gray converts" \
    $LOOM train --model grupixel --layers 1 --hidden 4 --zdim 2 --valid 8 --batch 4 --threads 1 --quiet \
    --eval-every 0 --data "$C" --steps 2 --out "$T/c"
[ ! -e "$T/c/checkpoint.safetensors" ] && pass "colour refusal leaves no run" || fail "colour refusal leaves no run" "a checkpoint was written"
ok "colour folder + rowlstm --hidden 3: a colour run" $LOOM train --model rowlstm --layers 1 --hidden 3 --valid 8 \
    --batch 4 --threads 1 --quiet --eval-every 0 --data "$C" --steps 2 --out "$T/rgb"
grep -q '"channels":[[:space:]]*3' "$T/rgb/config.json" && pass "colour run: config.json says channels 3" ||
    fail "colour run: config.json says channels 3" "$(cat "$T/rgb/config.json")"
ok "colour run: sample writes a grid" $LOOM sample "$T/rgb" --n 4 --seed 1 --out "$T/rgb/s.png" --threads 1
ok "colour run: complete writes a grid" $LOOM complete "$T/rgb" --rows 4 --n 2 --out "$T/rgb/c.png" --threads 1
ok "colour run: eval" $LOOM eval "$T/rgb" --json --threads 1

ok "colour folder --gray trains" $LOOM train $NET --data "$C" --gray --steps 2 --out "$T/g"
grep -q -- "--gray: 24 RGB images converted to gray, Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 luma), rounded" "$T/err" &&
    pass "--gray: stderr states the conversion and its rule" || fail "--gray: stderr states the conversion and its rule" "$(cat "$T/err")"
grep -q -- "--gray: 24 RGB images converted" "$T/g/train.log" &&
    pass "--gray: train.log states the conversion" || fail "--gray: train.log states the conversion" "$(cat "$T/g/train.log")"
grep -q '"gray":[[:space:]]*true' "$T/g/config.json" && ! grep -q '"channels"' "$T/g/config.json" &&
    pass "--gray: the run remembers gray, model has 1 channel" || fail "--gray: the run remembers gray, model has 1 channel" "$(cat "$T/g/config.json")"

# eval applies the run's conversion by itself, and says so
if $LOOM eval "$T/g" --threads 1 >"$T/ev" 2>"$T/everr" && grep -q "test: .* bits/dim" "$T/ev" &&
   grep -q -- "--gray: 6 RGB images converted" "$T/everr"; then pass "eval of a --gray run converts its colour test set"
else fail "eval of a --gray run converts its colour test set" "$(cat "$T/ev" "$T/everr")"; fi
ok "resume of a --gray run converts again" $LOOM train --resume "$T/g" --steps 3 --threads 1 --quiet
[ "$(grep -c -- "--gray: 24 RGB images converted" "$T/g/train.log")" -eq 2 ] &&
    pass "resume: train.log states the conversion again" || fail "resume: train.log states the conversion again" "$(cat "$T/g/train.log")"
rejects "resume cannot change --gray" 2 "--gray cannot be changed on --resume" $LOOM train --resume "$T/g" --gray --steps 4

# the same images stored gray give the same data as --gray (the fixture's gray files are BT.601 of its colour ones)
ok "gray folder trains" $LOOM train $NET --data "$G" --steps 2 --out "$T/gray"
ok "eval gray run on its gray test set" $LOOM eval "$T/gray" --threads 1 --json
b1=$(json_get bits_per_dim <"$T/out")
rejects "eval: colour data for a gray model is refused" 2 "images have 3 channels (RGB) but the model takes 1 (gray); --gray converts them" \
    $LOOM eval "$T/gray" --data "$C" --threads 1
ok "eval --gray: colour data converted for a gray model" $LOOM eval "$T/gray" --data "$C" --gray --threads 1 --json
b2=$(json_get bits_per_dim <"$T/out")
[ -n "$b1" ] && [ "$b1" = "$b2" ] && pass "--gray of the colour set equals the stored gray set (same bits/dim)" ||
    fail "--gray of the colour set equals the stored gray set (same bits/dim)" "$b1 vs $b2"
rejects "complete: colour data for a gray model is refused" 2 "images have 3 channels" \
    $LOOM complete "$T/gray" --data "$C" --n 1 --samples 1 --out "$T/x.png"
ok "complete --gray on colour data" $LOOM complete "$T/gray" --data "$C" --gray --n 1 --samples 1 --out "$T/comp.png"

# bad folders: one line, exit 2
mkdir -p "$T/sizes/train" "$T/sizes/test"
cp "$C/train/00.png" "$C/train/01.png" "$T/sizes/train/"; cp "$FIX/odd.png" "$T/sizes/train/02.png"; cp "$C/test/00.png" "$T/sizes/test/"
rejects "colour folder with images of different sizes" 2 "02.png: 6x8 but the first image" \
    $LOOM train $NET --data "$T/sizes" --gray --steps 1 --out "$T/x"
mkdir -p "$T/cut/train" "$T/cut/test"
cp "$C/train/00.png" "$T/cut/train/"; head -c 60 "$C/train/01.png" >"$T/cut/train/01.png"; cp "$C/test/00.png" "$T/cut/test/"
rejects "colour folder with a truncated PNG" 2 "01.png: bad PNG" \
    $LOOM train $NET --data "$T/cut" --gray --steps 1 --out "$T/x"

$LOOM info "$T/g" >"$T/info" 2>&1 && grep -q "channels    1 (gray); colour data converted to gray on load (--gray)" "$T/info" &&
    pass "info states channels and --gray" || fail "info states channels and --gray" "$(cat "$T/info")"

# complete's hidden-part NLL reads the colour logits (H, W, C, 256) right: with
# nothing kept (--rows 0) and every test image, it is eval's nats/image
ok "colour run with non-uniform logits" $LOOM train --model rowlstm --layers 1 --hidden 3 --valid 8 --batch 4 \
    --threads 1 --quiet --eval-every 0 --data "$C" --steps 40 --lr 0.03 --out "$T/rgb40"
hid=$($LOOM complete "$T/rgb40" --rows 0 --n 6 --out "$T/rgb40/c.png" --threads 1 2>/dev/null | sed -n 's/.*: \([0-9.]*\) nats\/image.*/\1/p')
ev=$($LOOM eval "$T/rgb40" --json --threads 1 | json_get nats_per_image)
if awk -v a="$hid" -v b="$ev" 'BEGIN {exit !(a > 0 && (a - b) ^ 2 < 1e-4)}'; then
    pass "colour complete --rows 0: hidden NLL == eval nats/image"
else fail "colour complete --rows 0: hidden NLL == eval nats/image" "complete '$hid' eval '$ev'"; fi
