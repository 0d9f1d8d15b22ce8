# End to end: the DRAW model through every command on a tiny Fashion-MNIST subset.
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 240 40
NET="--model draw --hidden 16 --zdim 4 --steps-draw 4 --read-n 2 --write-n 3 --valid 40 --quiet"
TINY="$NET --batch 8 --data $D"

# ---- train, config, eval (ELBO and importance-weighted bound)
ok "draw train: tiny run" $LOOM train $TINY --steps 12 --eval-every 6 --out "$T/run"
grep -q '"steps_draw":[[:space:]]*4' "$T/run/config.json" && grep -q '"attention":[[:space:]]*true' "$T/run/config.json" &&
    pass "draw train: config.json has steps_draw and attention" || fail "draw train: config.json has steps_draw and attention" "$(cat "$T/run/config.json")"
$LOOM eval "$T/run" >"$T/e.txt" 2>&1
grep -q 'negative ELBO: an upper bound on -log p(x)' "$T/e.txt" &&
    pass "draw eval: reports the ELBO, labelled as a bound" || fail "draw eval: reports the ELBO, labelled as a bound" "$(cat "$T/e.txt")"
$LOOM eval "$T/run" --json >"$T/e.json" 2>"$T/err"
$LOOM eval "$T/run" --json --threads 1 --batch 7 >"$T/e1.json" 2>"$T/err"
same "draw eval: static binarization and fixed noise: same bound on 1 thread in other chunks" "$T/e.json" "$T/e1.json"
$LOOM eval "$T/run" --json --iw 8 >"$T/iw.json" 2>"$T/err"
elbo=$(json_get nats_per_image <"$T/e.json"); iw=$(json_get nats_per_image <"$T/iw.json")
if grep -q '"kind": "iw".*"what": "importance-weighted bound (K = 8)' "$T/iw.json" && awk -v e="$elbo" -v i="$iw" 'BEGIN {exit !(i > 0 && i <= e + 0.01)}'; then
    pass "draw eval --iw 8: a bound no looser than the ELBO"
else fail "draw eval --iw 8: a bound no looser than the ELBO" "elbo $elbo iw $iw $(cat "$T/iw.json" "$T/err")"; fi

# ---- sample, steps strip, reconstruct
ok "draw sample --steps-png" $LOOM sample "$T/run" --n 3 --seed 5 --steps-png "$T/steps.png" --out "$T/s1.png"
ok "draw sample again, 1 thread" $LOOM sample "$T/run" --n 3 --seed 5 --threads 1 --out "$T/s2.png"
same "draw sample: same seed, same PNG" "$T/s1.png" "$T/s2.png"
# strip: 3 rows (images) x 4 columns (steps) of 28x28 with 1 px padding: 117 wide, 88 high,
# enlarged 5 times by default (the least that makes it 512 px wide): 585 x 440
wh=$(od -A n -t u1 -j 16 -N 8 "$T/steps.png" | tr -s ' ' | sed 's/^ //')
[ "$wh" = "0 0 2 73 0 0 1 184" ] && pass "draw sample --steps-png: one row per image, one column per step" ||
    fail "draw sample --steps-png: one row per image, one column per step" "IHDR $wh"
# --gif: the sample grid stage by stage, an animated GIF (decoded exactly in test_gif)
ok "draw sample --gif" sh -c "umask 022 && exec $LOOM sample '$T/run' --n 3 --seed 5 --gif '$T/s.gif' --out '$T/g1.png'"
same "draw sample --gif: the PNG is the one without --gif" "$T/s1.png" "$T/g1.png"
hex=$(od -A n -v -t x1 "$T/s.gif" | tr -s ' \n' ' ')
# GIF89a; logical screen 531 x 531 (the 2x2 grid of the PNG, 59 x 59 enlarged 9 times
# like the PNG, little-endian); loop forever;
# one graphic control extension (21 f9 04) per stage: 4
case "$hex" in
    " 47 49 46 38 39 61 13 02 13 02 "*) head_ok=1 ;;
    *) head_ok=0 ;;
esac
gce=$(printf '%s' "$hex" | grep -o '21 f9 04' | wc -l)
[ "$head_ok" = 1 ] && printf '%s' "$hex" | grep -q '4e 45 54 53 43 41 50 45 32 2e 30 03 01 00 00' && [ "$gce" -eq 4 ] &&
    pass "draw sample --gif: GIF89a of the grid's size, loops forever, one frame per stage" ||
    fail "draw sample --gif: GIF89a of the grid's size, loops forever, one frame per stage" "head $(printf '%s' "$hex" | cut -c1-40) frames $gce"
[ "$(stat -c %a "$T/s.gif")" = 644 ] && pass "draw sample --gif: mode 0644 under umask 022" ||
    fail "draw sample --gif: mode 0644 under umask 022" "$(stat -c %a "$T/s.gif")"
ok "draw sample --gif again, 1 thread, with --steps-png" $LOOM sample "$T/run" --n 3 --seed 5 --threads 1 --gif "$T/s2.gif" --steps-png "$T/steps2.png" --out "$T/g2.png"
same "draw sample --gif: same seed, same GIF" "$T/s.gif" "$T/s2.gif"
same "draw sample --gif with --steps-png: the same strip" "$T/steps.png" "$T/steps2.png"
$LOOM sample "$T/run" --n 3 --seed 6 --gif "$T/s3.gif" --out "$T/g3.png" 2>/dev/null
if cmp -s "$T/s.gif" "$T/s3.gif"; then fail "draw sample --gif: another seed, another GIF" "identical"; else pass "draw sample --gif: another seed, another GIF"; fi
rejects "draw sample --gif: an unwritable path is one line naming it" 1 "nodir/x.gif" $LOOM sample "$T/run" --n 2 --gif "$T/nodir/x.gif" --out "$T/g4.png"
ok "draw reconstruct" $LOOM reconstruct "$T/run" --n 2 --out "$T/r.png"
wh=$(od -A n -t u1 -j 16 -N 8 "$T/r.png" | tr -s ' ' | sed 's/^ //')
# 88 x 59 enlarged 6 times (the least that makes it 512 px wide)
[ "$wh" = "0 0 2 16 0 0 1 98" ] && pass "draw reconstruct: rows of input | binarized | reconstruction" ||
    fail "draw reconstruct: rows of input | binarized | reconstruction" "IHDR $wh"

# ---- resume: 6 + 6 steps == 12 steps (1 thread), with and without attention
for att in on off; do
    ok "draw resume ($att): 12 steps" $LOOM train $TINY --attention $att --steps 12 --threads 1 --out "$T/a$att"
    ok "draw resume ($att): 6 steps" $LOOM train $TINY --attention $att --steps 6 --threads 1 --out "$T/b$att"
    ok "draw resume ($att): on to 12" $LOOM train --resume "$T/b$att" --steps 12 --threads 1 --quiet
    same "draw resume ($att): bit-identical checkpoint" "$T/a$att/checkpoint.safetensors" "$T/b$att/checkpoint.safetensors"
done
# ---- bench
$LOOM bench --model draw --hidden 8 --zdim 2 --steps-draw 2 --batch 4 --steps 2 --height 8 --width 8 --json >"$T/b.json" 2>"$T/err"
v=$(json_get train_images_per_s <"$T/b.json")
if [ -n "$v" ] && awk -v v="$v" 'BEGIN {exit !(v > 0)}'; then pass "draw bench --json"; else fail "draw bench --json" "$(cat "$T/b.json" "$T/err")"; fi

# ---- bad flags: one line, exit 2
rejects "draw: --read-n 0" 2 "read-n" $LOOM train $TINY --read-n 0 --out "$T/x"
rejects "draw: --steps-draw 0" 2 "steps-draw" $LOOM train $TINY --steps-draw 0 --out "$T/x"
rejects "draw: --attention maybe" 2 "attention must be 'on' or 'off'" $LOOM train $TINY --attention maybe --out "$T/x"
rejects "draw: --write-n larger than the image" 2 "write-n" $LOOM train $TINY --write-n 29 --out "$T/x"
rejects "draw: --zdim on rowlstm" 2 "only --model grupixel, draw or rae" $LOOM train --model rowlstm --zdim 3 --data $D --out "$T/x"
rejects "draw: --layers" 2 "layers" $LOOM train $TINY --layers 2 --out "$T/x"
rejects "draw: --conditional" 2 "unconditional" $LOOM train $TINY --conditional --out "$T/x"
rejects "draw: complete needs an autoregressive model" 2 "not autoregressive" $LOOM complete "$T/run" --out "$T/x.png"
rejects "draw: --iw 0" 2 "iw" $LOOM eval "$T/run" --iw 0
rejects "rowlstm: --iw has no meaning" 2 "no latent" sh -c "$LOOM train --model rowlstm --layers 1 --hidden 2 --batch 8 --valid 40 --steps 1 --quiet --data $D --out $T/rl >/dev/null 2>&1; exec $LOOM eval $T/rl --iw 4"
rejects "rowlstm: --steps-png needs a staged model" 2 "stages" $LOOM sample "$T/rl" --steps-png "$T/x.png" --out "$T/y.png"
# (issue 15: an autoregressive model's --gif animates its raster order, a frame per row: tests/cli/pictures.sh)
ok "rowlstm: --gif animates the raster order" $LOOM sample "$T/rl" --gif "$T/x.gif" --out "$T/y.png"
rejects "rowlstm: reconstruct needs an autoencoder" 2 "not an autoencoder" $LOOM reconstruct "$T/rl" --out "$T/x.png"
