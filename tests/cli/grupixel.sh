# grupixel end to end on a tiny IDX subset: train, resume bit-identity,
# eval (bound noted), sample (seeds differ), complete, conditional, bad flags.
. tests/cli/lib.sh
D="$T/data"; idx_subset "$D" 40 8
common="--model grupixel --hidden 8 --layers 1 --zdim 4 --data $D --valid 8 --batch 8 --threads 1 --quiet --eval-every 0"
ok "grupixel train 6 steps" $LOOM train $common --steps 6 --out "$T/a"
ok "grupixel train 3 steps" $LOOM train $common --steps 3 --out "$T/b"
ok "grupixel resume to 6 steps" $LOOM train --resume "$T/b" --steps 6 --threads 1 --quiet
# checkpoints hold metadata that names the run dir nowhere: the weights must match byte for byte
same "grupixel resume is bit-identical" "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"
if $LOOM eval "$T/a" --limit 8 >"$T/ev" 2>&1 && grep -q "upper bound" "$T/ev"; then pass "grupixel eval reports an upper bound"
else fail "grupixel eval reports an upper bound" "$(cat "$T/ev")"; fi
# --iw K: -log mean_k p(x|z_k) with fresh z per image and k; the same on 1 and 2 threads
$LOOM eval "$T/a" --limit 8 --iw 4 --json --threads 1 >"$T/iw1.json" 2>"$T/err"
$LOOM eval "$T/a" --limit 8 --iw 4 --json --threads 2 --batch 3 >"$T/iw2.json" 2>>"$T/err"
if grep -q '"kind": "iw".*"what": "importance-weighted estimate.*in expectation' "$T/iw1.json"; then pass "grupixel eval --iw 4 --json says what it bounds"
else fail "grupixel eval --iw 4 --json says what it bounds" "$(cat "$T/iw1.json" "$T/err")"; fi
same "grupixel eval --iw 4: 2 threads in batches of 3 give the 1-thread numbers" "$T/iw1.json" "$T/iw2.json"
$LOOM eval "$T/a" --limit 8 --json >"$T/e0.json" 2>"$T/err"
$LOOM eval "$T/a" --limit 8 --iw 32 --json >"$T/iw32.json" 2>>"$T/err"
if awk -v a="$(json_get nats_per_image <"$T/e0.json")" -v b="$(json_get nats_per_image <"$T/iw32.json")" \
    'BEGIN {exit !(b > 0 && b < a)}'; then pass "grupixel eval --iw 32 is below the one-z number"
else fail "grupixel eval --iw 32 is below the one-z number" "$(cat "$T/e0.json" "$T/iw32.json" "$T/err")"; fi
ok "grupixel sample seed 1" $LOOM sample "$T/a" --n 4 --seed 1 --out "$T/s1.png"
ok "grupixel sample seed 2" $LOOM sample "$T/a" --n 4 --seed 2 --out "$T/s2.png"
if cmp -s "$T/s1.png" "$T/s2.png"; then fail "grupixel samples differ by seed" "identical PNGs"
else pass "grupixel samples differ by seed"; fi
ok "grupixel complete" $LOOM complete "$T/a" --n 2 --samples 2 --out "$T/c.png"
ok "grupixel lstm conditional train" $LOOM train $common --cell lstm --conditional --steps 2 --out "$T/cond"
ok "grupixel conditional eval --iw 2" $LOOM eval "$T/cond" --limit 4 --iw 2
ok "grupixel conditional sample --label 3" $LOOM sample "$T/cond" --n 2 --label 3 --out "$T/l3.png"
rejects "grupixel --cell foo" 2 "unknown cell" $LOOM train $common --cell foo --steps 1 --out "$T/x"
rejects "rowlstm rejects --cell" 2 "grupixel" $LOOM train --model rowlstm --cell gru --data "$D" --out "$T/y"
rejects "rowlstm rejects --zdim" 2 "grupixel" $LOOM bench --model rowlstm --zdim 3
rejects "bench --cell foo" 2 "unknown cell" $LOOM bench --model grupixel --cell foo
# a checkpoint whose config names an unknown cell is a format error (exit 2)
sed 's/cell\\":\\t\\"gru/cell\\":\\t\\"xyz/' "$T/a/checkpoint.safetensors" >"$T/bad.safetensors"
if cmp -s "$T/a/checkpoint.safetensors" "$T/bad.safetensors"; then fail "unknown cell in checkpoint" "could not edit the config"
else rejects "unknown cell in checkpoint is a format error" 2 "cell" $LOOM info "$T/bad.safetensors"; fi
