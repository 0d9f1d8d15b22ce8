# End to end: every command of the CLI on a tiny Fashion-MNIST subset with a tiny Row LSTM.
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 240 40
NET="--model rowlstm --layers 1 --hidden 4 --valid 40 --quiet"
TINY="$NET --batch 8 --data $D"

# ---- train: the run directory
ok "train: tiny run" $LOOM train $TINY --steps 12 --eval-every 6 --sample-every 6 --out "$T/run"
for f in config.json checkpoint.safetensors metrics.csv train.log samples.png samples_000006.png; do
    if [ -s "$T/run/$f" ]; then pass "train: run dir has $f"; else fail "train: run dir has $f" "missing"; fi
done
# (issue 15 added columns after the first five: tests/cli/logs.sh checks them)
if [ "$(head -n 1 "$T/run/metrics.csv" | cut -d, -f1-5)" = "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s" ] &&
   [ "$(tail -n +2 "$T/run/metrics.csv" | wc -l)" -ge 2 ] &&
   tail -n 1 "$T/run/metrics.csv" | cut -d, -f1-5 | grep -Eq '^12,[0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+$'; then
    pass "train: metrics.csv has a header and rows with validation bits/dim"
else fail "train: metrics.csv has a header and rows with validation bits/dim" "$(cat "$T/run/metrics.csv")"; fi
grep -q '"model"' "$T/run/config.json" && grep -q '"rowlstm"' "$T/run/config.json" &&
    pass "train: config.json names the model" || fail "train: config.json names the model" "$(cat "$T/run/config.json")"
rejects "train: refuses to overwrite a run" 2 "already holds a run" $LOOM train $TINY --steps 2 --out "$T/run"

# ---- eval
$LOOM eval "$T/run" --json >"$T/e.json" 2>"$T/err"
bpd=$(json_get bits_per_dim <"$T/e.json"); nats=$(json_get nats_per_image <"$T/e.json"); n=$(json_get images <"$T/e.json")
if [ "$n" = 40 ] && awk -v b="$bpd" -v x="$nats" 'BEGIN {exit !(b > 0.5 && b < 8.1 && (x / (784 * log(2)) - b) ^ 2 < 1e-6)}'; then
    pass "eval --json: bits_per_dim, nats_per_image, images agree"
else fail "eval --json: bits_per_dim, nats_per_image, images agree" "$(cat "$T/e.json") $(cat "$T/err")"; fi
$LOOM eval "$T/run" --json --split valid --limit 10 >"$T/v.json" 2>"$T/err"
[ "$(json_get images <"$T/v.json")" = 10 ] && grep -q '"split": "valid"' "$T/v.json" &&
    pass "eval --split valid --limit 10" || fail "eval --split valid --limit 10" "$(cat "$T/v.json") $(cat "$T/err")"
$LOOM eval "$T/run/checkpoint.safetensors" --json --threads 1 >"$T/e1.json" 2>"$T/err"
same "eval: a checkpoint path and 1 thread give the same NLL as the run dir" "$T/e.json" "$T/e1.json"

# ---- sample: reproducible, seed-dependent, PNG of the right size
ok "sample: 4 images" $LOOM sample "$T/run" --n 4 --seed 7 --out "$T/s1.png"
ok "sample: again, 1 thread" $LOOM sample "$T/run" --n 4 --seed 7 --threads 1 --out "$T/s2.png"
$LOOM sample "$T/run" --n 4 --seed 8 --out "$T/s3.png" 2>/dev/null
same "sample: same seed, same PNG (any thread count)" "$T/s1.png" "$T/s2.png"
if cmp -s "$T/s1.png" "$T/s3.png"; then fail "sample: another seed, another PNG" "identical"; else pass "sample: another seed, another PNG"; fi
# 2x2 grid of 28x28 with 1 px padding: 59x59; PNG IHDR width/height at bytes 17..24
wh=$(od -A n -t u1 -j 16 -N 8 "$T/s1.png" | tr -s ' ' | sed 's/^ //')
# 2 x 2 images of 28 with 1 px pads, 59 x 59, enlarged 9 times (the least that makes it 512 px wide)
[ "$wh" = "0 0 2 19 0 0 2 19" ] && pass "sample: grid PNG is 59x59 x 9" || fail "sample: grid PNG is 59x59 x 9" "IHDR $wh"
rejects "sample: --label on an unconditional model" 2 "not class-conditional" $LOOM sample "$T/run" --label 3 --out "$T/x.png"
rejects "sample: needs --out" 2 "needs --out" $LOOM sample "$T/run"
rejects "sample: --temperature 0" 2 "temperature" $LOOM sample "$T/run" --temperature 0 --out "$T/x.png"

# ---- complete
$LOOM complete "$T/run" --rows 20 --n 3 --samples 2 --out "$T/c.png" >"$T/c.txt" 2>"$T/err"
if grep -Eq '^hidden part \(rows 20\.\.27\): [0-9.]+ nats/image, [0-9.]+ bits/dim over 3 test images' "$T/c.txt" && [ -s "$T/c.png" ]; then
    pass "complete: grid written and hidden-part NLL reported"
else fail "complete: grid written and hidden-part NLL reported" "$(cat "$T/c.txt" "$T/err")"; fi
wh=$(od -A n -t u1 -j 16 -N 8 "$T/c.png" | tr -s ' ' | sed 's/^ //')
# 117 x 88 enlarged 5 times
[ "$wh" = "0 0 2 73 0 0 1 184" ] && pass "complete: 3 rows of original|masked|2 completions" || fail "complete: 3 rows of original|masked|2 completions" "IHDR $wh"
rejects "complete: --rows past the image" 2 "below the image height" $LOOM complete "$T/run" --rows 28 --out "$T/x.png"

# ---- info
$LOOM info "$T/run" >"$T/i.txt" 2>&1
grep -q '^model *rowlstm 28x28, 1 layer, hidden 4' "$T/i.txt" && grep -q '^step *12 of 12' "$T/i.txt" &&
    pass "info: model, config and step" || fail "info: model, config and step" "$(cat "$T/i.txt")"
$LOOM info "$T/run" --json >"$T/i.json" 2>&1
[ "$(json_get step <"$T/i.json")" = 12 ] && [ "$(json_get parameters <"$T/i.json")" -gt 0 ] &&
    pass "info --json: step and parameters" || fail "info --json: step and parameters" "$(cat "$T/i.json")"

# ---- resume: 6 steps + resume to 12 == 12 steps (1 thread), bit for bit
ok "resume: 12 steps in one go" $LOOM train $TINY --steps 12 --threads 1 --out "$T/a"
ok "resume: 6 steps" $LOOM train $TINY --steps 6 --threads 1 --out "$T/b"
ok "resume: on to 12" $LOOM train --resume "$T/b" --steps 12 --threads 1 --quiet
same "resume: bit-identical checkpoint" "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"
rejects "resume: cannot change the model" 2 "cannot be changed on --resume" $LOOM train --resume "$T/b" --hidden 8
rejects "resume: missing run" 2 "" $LOOM train --resume "$T/nope"

# ---- PNG folders of another size (30x30: single-image sample grids) train too
mkdir -p "$T/png/train" "$T/png/test"
for s in 1 2 3 4 5 6 7 8 9 10 11 12; do
    $LOOM sample "$T/run" --n 1 --seed $s --scale 1 --out "$T/png/train/$s.png" 2>/dev/null
done
cp "$T/png/train/1.png" "$T/png/train/2.png" "$T/png/test/"
ok "train: a PNG folder of 30x30 images" $LOOM train --model rowlstm --layers 1 --hidden 4 --batch 4 --valid 4 \
    --data "$T/png" --steps 3 --quiet --out "$T/prun"
$LOOM eval "$T/prun" --json >"$T/p.json" 2>"$T/err"
[ "$(json_get images <"$T/p.json")" = 2 ] && pass "eval: the 30x30 PNG test split" || fail "eval: the 30x30 PNG test split" "$(cat "$T/p.json" "$T/err")"
rejects "eval: images of another size than the model's" 2 "30x30" $LOOM eval "$T/prun" --data "$D"

# ---- bench
$LOOM bench --layers 1 --hidden 4 --batch 4 --steps 2 --height 8 --width 8 --json >"$T/b.json" 2>"$T/err"
for k in train_images_per_s forward_ms_per_image sample_ms_per_image peak_rss_mb; do
    v=$(json_get $k <"$T/b.json")
    if [ -n "$v" ] && awk -v v="$v" 'BEGIN {exit !(v > 0)}'; then pass "bench --json: $k"; else fail "bench --json: $k" "$(cat "$T/b.json" "$T/err")"; fi
done

# ---- bad flags and bad files: one line, exit 2
rejects "unknown command" 2 "unknown command" $LOOM frobnicate
rejects "unknown flag" 2 "unknown flag --frob" $LOOM train --frob 1
rejects "unknown model" 2 "unknown model 'nope'" $LOOM train --model nope --out "$T/x"
rejects "--batch 0" 2 "out of range" $LOOM train $NET --data $D --batch 0 --out "$T/x"
rejects "--lr -1" 2 "lr" $LOOM train $TINY --lr -1 --out "$T/x"
rejects "--steps abc" 2 "not a non-negative integer" $LOOM train $TINY --steps abc --out "$T/x"
rejects "--layers 0" 2 "out of range" $LOOM bench --layers 0
rejects "eval --split foo" 2 "split" $LOOM eval "$T/run" --split foo
rejects "eval: no such run" 2 "$T/nope" $LOOM eval "$T/nope"
head -c 1000 "$T/run/checkpoint.safetensors" >"$T/trunc.safetensors"
rejects "eval: truncated checkpoint" 2 "trunc.safetensors" $LOOM eval "$T/trunc.safetensors"
mkdir -p "$T/bad"; cp "$D"/* "$T/bad/"; head -c 5000 "$D/train-images-idx3-ubyte" >"$T/bad/train-images-idx3-ubyte"
rejects "train: truncated IDX file" 2 "train-images-idx3-ubyte" $LOOM train $NET --batch 8 --data "$T/bad" --out "$T/x"
rejects "train: data directory without images" 2 "$T/empty" sh -c "mkdir -p $T/empty && exec $LOOM train --model rowlstm --data $T/empty --out $T/x"
