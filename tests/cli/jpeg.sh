# JPEG folders and --resize HxW (issue 15): JPEG files load like PNG ones; with
# --resize a folder of mixed sizes is centre-cropped and resampled on load, and
# the run remembers the size for eval, sample and resume.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 8
$LOOM train --model rowlstm --layers 1 --hidden 4 --valid 8 --batch 8 --data "$D" --steps 1 --threads 1 --quiet --out "$T/r" 2>/dev/null
# JPEG images of two sizes (sample grids: 1 image = 30x30, 2 in a row = 59x30), in train/ and test/
mkdir -p "$T/j/train" "$T/j/test"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    n=$((1 + i % 2)); $LOOM sample "$T/r" --n $n --cols $n --seed $i --threads 1 --out "$T/j/train/im$i.jpg" 2>/dev/null
done
for i in 1 2 3 4; do $LOOM sample "$T/r" --n 1 --seed $((20 + i)) --threads 1 --out "$T/j/test/t$i.jpeg" 2>/dev/null; done
rejects "jpeg: a folder of two sizes needs --resize" 2 "but the first image.*--resize" \
    $LOOM train --model rowlstm --layers 1 --hidden 4 --valid 2 --batch 2 --data "$T/j" --steps 1 --out "$T/x"
ok "jpeg: train on a JPEG folder with --resize 16x16" $LOOM train --model rowlstm --layers 1 --hidden 4 --valid 2 --batch 2 \
    --data "$T/j" --resize 16x16 --steps 2 --threads 1 --quiet --out "$T/jr"
grep -q '"resize":[[:space:]]*\[[[:space:]]*16,[[:space:]]*16[[:space:]]*\]' "$T/jr/config.json" && $LOOM info "$T/jr" | grep -q "16x16" &&
    pass "jpeg: the run is 16x16 and config.json records resize" || fail "jpeg: the run is 16x16" "$(grep -A3 resize "$T/jr/config.json")"
$LOOM eval "$T/jr" --json --threads 1 >"$T/e.json" 2>"$T/err"
[ "$(json_get images <"$T/e.json")" = 4 ] && pass "jpeg: eval resizes the test JPEGs the same way" || fail "jpeg: eval resizes the test JPEGs" "$(cat "$T/e.json" "$T/err")"
ok "jpeg: resume keeps the size" $LOOM train --resume "$T/jr" --steps 3 --quiet
rejects "jpeg: --resize cannot change on resume" 2 "cannot be changed on --resume" $LOOM train --resume "$T/jr" --steps 4 --resize 8x8
rejects "jpeg: --resize needs HxW" 2 "give HEIGHTxWIDTH" $LOOM train --data "$T/j" --resize 16 --out "$T/y"
# IDX data is resampled too (28x28 -> 14x14)
ok "jpeg: --resize on IDX data" $LOOM train --model rowlstm --layers 1 --hidden 4 --valid 8 --batch 8 --data "$D" --resize 14x14 \
    --steps 1 --threads 1 --quiet --out "$T/i14"
$LOOM info "$T/i14" | grep -q "rowlstm 14x14" && pass "jpeg: an IDX run resized to 14x14" || fail "jpeg: an IDX run resized to 14x14" "$($LOOM info "$T/i14" | head -2)"
# a broken JPEG is named
printf '\377\330\377\340 broken' >"$T/j/train/zz.jpg"
rejects "jpeg: a broken JPEG file is named" 2 "zz.jpg: bad JPEG" $LOOM train --data "$T/j" --resize 16x16 --valid 2 --batch 2 --out "$T/z"
