# End to end: --multiscale S (docs/rowlstm.md "Multi-scale") on the 8x8 PNG fixtures.
. tests/cli/lib.sh
P=tests/fixtures/png8
NET="--layers 1 --hidden 3 --valid 4 --batch 8 --quiet"
ok "multiscale: train a gray rowlstm, S = 4" $LOOM train --model rowlstm --multiscale 4 $NET --steps 6 --threads 1 \
    --data $P/gray --out "$T/g"
grep -Eq '"multiscale":[[:space:]]*4' "$T/g/config.json" && pass "multiscale: config.json keeps the key" ||
    fail "multiscale: config.json keeps the key" "$(cat "$T/g/config.json")"
$LOOM info "$T/g" >"$T/i" 2>&1
grep -q '^multiscale  a 4x4 model' "$T/i" && pass "multiscale: info says so" || fail "multiscale: info says so" "$(cat "$T/i")"
ok "multiscale: train an RGB diagbilstm, S = 2" $LOOM train --model diagbilstm --multiscale 2 $NET --steps 4 --threads 1 \
    --data $P/colour --out "$T/c"

# resume: 6 steps in one go == 3 + resume to 6, bit for bit (and on 2 threads)
ok "multiscale: 3 steps" $LOOM train --model rowlstm --multiscale 4 $NET --steps 3 --threads 2 --data $P/gray --out "$T/r"
ok "multiscale: resume to 6" $LOOM train --resume "$T/r" --steps 6 --threads 1 --quiet
same "multiscale: resume gives the bit-identical checkpoint" "$T/g/checkpoint.safetensors" "$T/r/checkpoint.safetensors"

# eval, sample, inpaint
$LOOM eval "$T/g" --json >"$T/e" 2>"$T/err"
awk -v b="$(json_get bits_per_dim <"$T/e")" 'BEGIN {exit !(b > 1 && b < 8.1)}' && pass "multiscale: eval gives bits/dim" ||
    fail "multiscale: eval gives bits/dim" "$(cat "$T/e" "$T/err")"
ok "multiscale: sample" $LOOM sample "$T/g" --n 4 --seed 3 --out "$T/s1.png"
ok "multiscale: sample, 1 thread" $LOOM sample "$T/g" --n 4 --seed 3 --threads 1 --out "$T/s2.png"
same "multiscale: same seed, same samples on any thread count" "$T/s1.png" "$T/s2.png"
ok "multiscale: RGB sample" $LOOM sample "$T/c" --n 2 --out "$T/s3.png"
$LOOM inpaint "$T/g" --image $P/gray/test/00.png --mask tests/fixtures/inpaint/hole.png --n 2 --candidates 8 \
    --out "$T/o.png" --json >"$T/j" 2>"$T/err"
grep -q '"kind": "estimated"' "$T/j" && grep -q '"ess": ' "$T/j" && pass "multiscale: inpaint" ||
    fail "multiscale: inpaint" "$(cat "$T/j" "$T/err")"
rejects "multiscale: complete refuses it" 2 "loom inpaint fills any mask" $LOOM complete "$T/g" --data $P/gray --out "$T/x.png"

# bad values
rejects "multiscale: S that does not divide the height" 2 "--multiscale 3" \
    $LOOM train --model rowlstm --multiscale 3 $NET --steps 1 --data $P/gray --out "$T/bad1"
rejects "multiscale: S = the height" 2 "--multiscale 8" \
    $LOOM train --model rowlstm --multiscale 8 $NET --steps 1 --data $P/gray --out "$T/bad2"
rejects "multiscale: not for grupixel" 2 "only --model rowlstm or diagbilstm" \
    $LOOM train --model grupixel --multiscale 4 --steps 1 --data $P/gray --out "$T/bad3"
rejects "multiscale: cannot change on resume" 2 "cannot be changed on --resume" \
    $LOOM train --resume "$T/g" --multiscale 2
