# End to end: the convlstm encoder-forecaster on generated Moving Fashion-MNIST and on
# a .npy file: train, resume, threads, eval (video metrics), predict (GIF, PNG), bad input.
. tests/cli/lib.sh
BASE="--model convlstm --layers 1 --hidden 4 --frames-in 2 --frames-out 2 --eval-limit 4 --quiet"
TINY="$BASE --kernel 3 --patch 8 --batch 4 --valid 8"

ok "convlstm train: moving-fashion-mnist" $LOOM train $TINY --steps 3 --out "$T/r"
grep -q '"frames_in":[[:space:]]*2' "$T/r/config.json" && grep -q '"moving-fashion-mnist"' "$T/r/config.json" &&
    pass "convlstm train: config.json records frames and data" || fail "convlstm train: config.json records frames and data" "$(cat "$T/r/config.json")"

ok "convlstm resume: 6 steps" $LOOM train $TINY --steps 6 --threads 1 --out "$T/a"
ok "convlstm resume: 3 steps" $LOOM train $TINY --steps 3 --threads 1 --out "$T/b"
ok "convlstm resume: on to 6" $LOOM train --resume "$T/b" --steps 6 --threads 1 --quiet
same "convlstm resume: bit-identical checkpoint" "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"
ok "convlstm threads: 6 steps on 2 threads" $LOOM train $TINY --steps 6 --threads 2 --out "$T/c"
same "convlstm threads: 1 and 2 threads, same checkpoint" "$T/a/checkpoint.safetensors" "$T/c/checkpoint.safetensors"
# bf16 convolutions (oneDNN's bf16 primitives): still the same bytes on 1 and 2 threads, and
# not the fp32 run's
if grep -q avx512_bf16 /proc/cpuinfo && $LOOM bench --model convlstm --hidden 4 --batch 4 --steps 1 --precision bf16 --json >/dev/null 2>&1; then
    ok "convlstm bf16: 6 steps on 1 thread" $LOOM train $TINY --steps 6 --threads 1 --precision bf16 --out "$T/h1"
    ok "convlstm bf16: 6 steps on 2 threads" $LOOM train $TINY --steps 6 --threads 2 --precision bf16 --out "$T/h2"
    same "convlstm bf16: 1 and 2 threads, same checkpoint" "$T/h1/checkpoint.safetensors" "$T/h2/checkpoint.safetensors"
    cmp -s "$T/a/checkpoint.safetensors" "$T/h1/checkpoint.safetensors" &&
        fail "convlstm bf16: not the fp32 checkpoint" "bf16 and fp32 trained the same bytes" ||
        pass "convlstm bf16: not the fp32 checkpoint"
else
    skip "convlstm bf16" "this CPU has no AVX512_BF16 (or no oneDNN)"
fi

# the log counts sequences, and announces no samples (convlstm cannot sample)
grep -q "valid sequences; batch" "$T/a/train.log" && grep -q " sequences/s eta" "$T/a/train.log" &&
    ! grep -q "images" "$T/a/train.log" && ! grep -q "samples" "$T/a/train.log" &&
    pass "convlstm train.log: sequences, not images, and no samples" ||
    fail "convlstm train.log: sequences, not images, and no samples" "$(cat "$T/a/train.log")"
$LOOM info "$T/a" >"$T/info" 2>&1
grep -q "^sequences   2 given + 2 predicted frames, kernel 3, patch 8, output bernoulli$" "$T/info" &&
    pass "convlstm info: frames, kernel, patch and output" || fail "convlstm info: frames, kernel, patch and output" "$(cat "$T/info")"
$LOOM train --model convlstm --layers 1 --hidden 4 --frames-in 3 --frames-out 1 --kernel 5 --patch 8 --batch 2 --valid 2 \
    --steps 1 --output softmax256 --peephole --quiet --out "$T/i31" >/dev/null 2>&1
$LOOM info "$T/i31" >"$T/info" 2>&1
grep -q "^sequences   3 given + 1 predicted frames, kernel 5, patch 8, output softmax256, peepholes$" "$T/info" &&
    pass "convlstm info: another run's frames, kernel, output and peepholes" ||
    fail "convlstm info: another run's frames, kernel, output and peepholes" "$(cat "$T/info")"
$LOOM eval "$T/a" --limit 8 --json >"$T/e.json" 2>"$T/err"
if grep -q '"model": "convlstm", "step": 6, "checkpoint": ' "$T/e.json" && grep -q '"kind": "mse"' "$T/e.json" &&
   grep -q '"mse_per_frame": [0-9]' "$T/e.json" && grep -q '"ssim": [0-9.-]*, "ssim_8bit": [0-9.-]*,' "$T/e.json" &&
   grep -q '"baseline": {"name": "repeat-last-frame", "mse_per_frame": [0-9]' "$T/e.json" &&
   [ "$(wc -l <"$T/e.json")" -eq 1 ]; then pass "convlstm eval --json: one line, the keys and the baseline"
else fail "convlstm eval --json: one line, the keys and the baseline" "$(cat "$T/e.json" "$T/err")"; fi
$LOOM eval "$T/a" --limit 8 >"$T/e.txt" 2>&1
grep -q '^repeat last frame' "$T/e.txt" && [ "$(grep -c '^  *[34] ' "$T/e.txt")" -eq 2 ] &&
    pass "convlstm eval: text with the baseline and a per-frame curve" || fail "convlstm eval: text with the baseline and a per-frame curve" "$(cat "$T/e.txt")"
# the model's own numbers: the part before the baseline's
own() { sed 's/, "baseline".*//' "$1" | json_get "$2"; }
mse=$(own "$T/e.json" mse_per_frame)
$LOOM eval "$T/a" --limit 8 --json --threads 1 >"$T/e1.json" 2>/dev/null
[ -n "$mse" ] && [ "$mse" = "$(own "$T/e1.json" mse_per_frame)" ] && pass "convlstm eval: same numbers on 1 thread" ||
    fail "convlstm eval: same numbers on 1 thread" "$mse vs $(cat "$T/e1.json")"

ok "convlstm predict: GIF" $LOOM predict "$T/a" --n 2 --out "$T/p.gif"
[ "$(head -c 6 "$T/p.gif")" = "GIF89a" ] && pass "convlstm predict: a GIF file" || fail "convlstm predict: a GIF file" "$(head -c 6 "$T/p.gif" | od -c)"
ok "convlstm predict: PNG strip beyond the horizon (--frames 5 of 2)" $LOOM predict "$T/a" --n 3 --frames 5 --out "$T/p.png"
# 3 sequences x (2 rows of 64 + 2 gap + 4 spacing) = 402 high; 2 + 5 frames of 64 + 2 = 462 wide
wh=$(od -A n -t u1 -j 16 -N 8 "$T/p.png" | tr -s ' ' | sed 's/^ //')
[ "$wh" = "0 0 1 206 0 0 1 146" ] && pass "convlstm predict: strip of 7 frames x 3 sequences" || fail "convlstm predict: strip of 7 frames x 3 sequences" "IHDR $wh"
ok "convlstm predict: again, 1 thread" $LOOM predict "$T/a" --n 3 --frames 5 --threads 1 --out "$T/p1.png"
same "convlstm predict: reproducible" "$T/p.png" "$T/p1.png"
# --json: one line on stdout with the convention's keys (docs/cli.md) and the frame counts
$LOOM predict "$T/a" --n 3 --frames 5 --threads 1 --json --out "$T/pj.png" >"$T/p.json" 2>"$T/err"
if [ "$(wc -l <"$T/p.json")" -eq 1 ] && /usr/bin/python3 - "$T/p.json" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
ok = o["model"] == "convlstm" and o["kind"] == "frames" and isinstance(o["step"], int) and o["checkpoint"].endswith(".safetensors")
sys.exit(not (ok and o["sequences"] == 3 and o["given"] == 2 and o["predicted"] == 5 and o["ms_per_sequence"] >= 0))
PY
then pass "convlstm predict --json: one line, model/step/checkpoint/kind frames, the frame counts"
else fail "convlstm predict --json" "$(cat "$T/p.json" "$T/err")"; fi

# a .npy of shape (4, 3, 64, 64): 4 frames of 3 sequences
npy() { # npy FILE SHAPE DESCR BYTES
    h="{'descr': '$3', 'fortran_order': False, 'shape': $2, }"
    pad=$(( (64 - (10 + ${#h} + 1) % 64) % 64 ))
    { printf '\223NUMPY\001\000'; printf "$(printf '\\%03o\\%03o' $(((${#h} + pad + 1) & 255)) $(((${#h} + pad + 1) >> 8)))"
      printf '%s%*s\n' "$h" "$pad" ''; head -c "$4" /dev/urandom; } >"$1"
}
npy "$T/s.npy" "(4, 3, 64, 64)" "|u1" 49152
$LOOM eval "$T/a" --data "$T/s.npy" --json >"$T/n.json" 2>"$T/err"
grep -q '"sequences": 3' "$T/n.json" && grep -q '"split": "all"' "$T/n.json" &&
    pass "convlstm eval --data FILE.npy: the whole file" || fail "convlstm eval --data FILE.npy: the whole file" "$(cat "$T/n.json" "$T/err")"
ok "convlstm predict --data FILE.npy" $LOOM predict "$T/a" --data "$T/s.npy" --n 2 --out "$T/n.gif"
ok "convlstm train --data FILE.npy" $LOOM train $BASE --kernel 3 --patch 8 --valid 1 --batch 2 --steps 2 --data "$T/s.npy" --out "$T/nt"
npy "$T/t.npy" "(4, 3, 64, 64)" "|u1" 49000
rejects "convlstm: truncated .npy" 2 "t.npy.*truncated" $LOOM eval "$T/a" --data "$T/t.npy"
npy "$T/f.npy" "(4, 3, 64, 64)" "<f4" 196608
rejects "convlstm: float32 .npy" 2 "f.npy.*dtype" $LOOM eval "$T/a" --data "$T/f.npy"
npy "$T/k.npy" "(12, 64, 64)" "|u1" 49152
rejects "convlstm: rank-3 .npy" 2 "k.npy.*rank 3" $LOOM eval "$T/a" --data "$T/k.npy"
npy "$T/l.npy" "(4, 3, 64, 64)" "|u1" 50000
rejects "convlstm: .npy header that lies" 2 "l.npy.*lies" $LOOM eval "$T/a" --data "$T/l.npy"
npy "$T/w.npy" "(5, 3, 64, 64)" "|u1" 61440
rejects "convlstm: .npy of other sequence length" 2 "w.npy.*the model needs 4" $LOOM eval "$T/a" --data "$T/w.npy"
npy "$T/z.npy" "(4, 3, 32, 32)" "|u1" 12288
rejects "convlstm: .npy of other frame size" 2 "z.npy.*32x32" $LOOM eval "$T/a" --data "$T/z.npy"

# the baseline, exactly: frames black, white (the last given), black, black -> it predicts white
# for two black frames: squared and absolute error 4096 per frame, SSIM C1 / (1 + C1) ~ 1e-4
h="{'descr': '|u1', 'fortran_order': False, 'shape': (4, 1, 64, 64), }"
pad=$(( (64 - (10 + ${#h} + 1) % 64) % 64 ))
{ printf '\223NUMPY\001\000'; printf "$(printf '\\%03o\\%03o' $(((${#h} + pad + 1) & 255)) $(((${#h} + pad + 1) >> 8)))"
  printf '%s%*s\n' "$h" "$pad" ''; head -c 4096 /dev/zero; head -c 4096 /dev/zero | tr '\0' '\377'
  head -c 8192 /dev/zero; } >"$T/b.npy"
$LOOM eval "$T/a" --data "$T/b.npy" --json >"$T/b.json" 2>"$T/err"
base=$(sed 's/.*"baseline": {\([^}]*\)}.*/\1/' "$T/b.json") black=$(sed 's/.*"black": {\([^}]*\)}.*/\1/' "$T/b.json")
bm=$(echo "$base" | json_get mse_per_frame) ba=$(echo "$base" | json_get mae_per_frame) bs=$(echo "$base" | json_get ssim)
b8=$(echo "$base" | json_get ssim_8bit)
[ "$bm" = 4096 ] && [ "$ba" = 4096 ] && awk -v s="$bs" -v t="$b8" 'BEGIN {exit !(s > 0 && s < 0.001 && t > 0 && t < 0.001)}' &&
    pass "convlstm eval: the repeat-last-frame baseline, exactly" || fail "convlstm eval: the repeat-last-frame baseline, exactly" "mse $bm mae $ba ssim $bs $b8: $(cat "$T/b.json" "$T/err")"
# black frames against the two black frames to predict: no error, SSIM 1
[ "$(echo "$black" | json_get mse_per_frame)" = 0 ] && [ "$(echo "$black" | json_get ssim)" = 1 ] &&
    [ "$(echo "$black" | json_get ssim_8bit)" = 1 ] && ! grep -q '"median"' "$T/b.json" &&
    pass "convlstm eval: black frames, exactly; a Bernoulli run has no median frames" ||
    fail "convlstm eval: black frames, exactly; a Bernoulli run has no median frames" "$black: $(cat "$T/b.json")"

$LOOM bench --model convlstm --height 16 --width 16 --layers 1 --hidden 4 --frames-in 2 --frames-out 2 --kernel 3 \
    --patch 4 --batch 2 --steps 1 --json >"$T/bench.json" 2>"$T/err"
grep -q '"model": "convlstm".*"train_images_per_s": [0-9]' "$T/bench.json" && grep -q '"sample_ms_per_image": 0\(\.0*\)\?[,}]' "$T/bench.json" &&
    pass "convlstm bench: training sequences/s, no sampling" || fail "convlstm bench: training sequences/s, no sampling" "$(cat "$T/bench.json" "$T/err")"

rejects "convlstm: --kernel 4" 2 "kernel 4 must be odd" $LOOM train $BASE --kernel 4 --out "$T/x"
rejects "convlstm: --patch 3 does not divide 64" 2 "patch 3 does not divide" $LOOM train $BASE --patch 3 --out "$T/x"
rejects "rowlstm: --frames-in is convlstm's" 2 "only --model convlstm" $LOOM train --model rowlstm --frames-in 3 --out "$T/x"
rejects "convlstm predict: --out must be .gif or .png" 2 "gif or .png" $LOOM predict "$T/a" --out "$T/x.jpg"
rejects "convlstm: sample is not for predictors" 2 "loom predict" $LOOM sample "$T/a" --out "$T/x.png"

# the 256-way softmax output and peepholes: recorded in the run, kept on resume, bit-identical
# on 1 and 2 threads and across a resume, and eval reports the exact NLL in bits/dim
SM="$TINY --output softmax256 --peephole"
ok "convlstm softmax256+peephole: 4 steps" $LOOM train $SM --steps 4 --threads 1 --out "$T/s4"
grep -q '"output":[[:space:]]*"softmax256"' "$T/s4/config.json" && grep -q '"peephole":[[:space:]]*true' "$T/s4/config.json" &&
    pass "convlstm softmax256+peephole: config.json records both" || fail "convlstm softmax256+peephole: config.json records both" "$(cat "$T/s4/config.json")"
ok "convlstm softmax256+peephole: 2 steps" $LOOM train $SM --steps 2 --threads 1 --out "$T/s2"
ok "convlstm softmax256+peephole: resume on to 4, 2 threads" $LOOM train --resume "$T/s2" --steps 4 --threads 2 --quiet
same "convlstm softmax256+peephole: resume and threads, same checkpoint" "$T/s4/checkpoint.safetensors" "$T/s2/checkpoint.safetensors"
$LOOM eval "$T/s4" --limit 4 --json >"$T/s.json" 2>"$T/err"
bpd=$(json_get bits_per_dim <"$T/s.json") nll=$(json_get nll_per_sequence <"$T/s.json")
# bits/dim = NLL / (ln 2 x 2 frames x 4096 pixels); an untrained softmax is near 8 bits
grep -q '"output": "softmax256"' "$T/s.json" &&
    awk -v b="$bpd" -v n="$nll" 'BEGIN {d = b - n / (log(2) * 8192); exit !(b > 4 && b < 9 && d < 1e-4 && d > -1e-4)}' &&
    pass "convlstm softmax256 eval: bits/dim of the exact NLL" || fail "convlstm softmax256 eval: bits/dim of the exact NLL" "$(cat "$T/s.json" "$T/err")"
grep -q '"median": {"mse_per_frame": [0-9][0-9.e+-]*, "mae_per_frame": [0-9][0-9.e+-]*, "ssim": [0-9.e+-]*, "ssim_8bit": [0-9.e+-]*}' "$T/s.json" &&
    pass "convlstm softmax256 eval: the median frames' numbers" || fail "convlstm softmax256 eval: the median frames' numbers" "$(cat "$T/s.json")"
ok "convlstm softmax256 predict --point median" $LOOM predict "$T/s4" --point median --n 2 --out "$T/med.png"
rejects "convlstm predict: --point median of a Bernoulli run" 2 "needs a run with --output softmax256" $LOOM predict "$T/a" --point median --out "$T/x.png"
rejects "convlstm predict: --point other" 2 "point must be 'mean' or 'median'" $LOOM predict "$T/a" --point mode --out "$T/x.png"
grep -q '"output": "bernoulli"' "$T/e.json" && ! grep -q '"bits_per_dim"' "$T/e.json" &&
    pass "convlstm eval: a Bernoulli run says so and has no bits/dim" || fail "convlstm eval: a Bernoulli run says so and has no bits/dim" "$(cat "$T/e.json")"
rejects "convlstm: --output other" 2 "output: 'gauss' is not bernoulli or softmax256" $LOOM train $BASE --output gauss --out "$T/x"
rejects "rowlstm: --peephole is convlstm's" 2 "peephole: only --model convlstm" $LOOM train --model rowlstm --peephole --out "$T/x"
rejects "convlstm resume: --output cannot change" 2 "cannot be changed on --resume" $LOOM train --resume "$T/s4" --output bernoulli --steps 5

# the forecaster fed its own predictions: recorded in the run and in info, resumed and
# threaded bit for bit; not with the softmax output
FB="$TINY --feedback"
ok "convlstm feedback: 4 steps" $LOOM train $FB --steps 4 --threads 1 --out "$T/f4"
grep -q '"feedback":[[:space:]]*true' "$T/f4/config.json" && ! grep -q '"feedback"' "$T/a/config.json" &&
    pass "convlstm feedback: config.json records it (and only when on)" ||
    fail "convlstm feedback: config.json records it (and only when on)" "$(cat "$T/f4/config.json")"
ok "convlstm feedback: 2 steps" $LOOM train $FB --steps 2 --threads 1 --out "$T/f2"
ok "convlstm feedback: resume on to 4, 2 threads" $LOOM train --resume "$T/f2" --steps 4 --threads 2 --quiet
same "convlstm feedback: resume and threads, same checkpoint" "$T/f4/checkpoint.safetensors" "$T/f2/checkpoint.safetensors"
$LOOM info "$T/f4" >"$T/info" 2>&1
grep -q "^sequences   2 given + 2 predicted frames, kernel 3, patch 8, output bernoulli, fed its predictions$" "$T/info" &&
    pass "convlstm feedback: info says it" || fail "convlstm feedback: info says it" "$(cat "$T/info")"
$LOOM eval "$T/f4" --limit 4 --json >"$T/f.json" 2>"$T/err" && grep -q '"mse_per_frame": [0-9]' "$T/f.json" &&
    pass "convlstm feedback: eval" || fail "convlstm feedback: eval" "$(cat "$T/f.json" "$T/err")"
ok "convlstm feedback: predict beyond the horizon" $LOOM predict "$T/f4" --n 2 --frames 5 --out "$T/f.png"
rejects "convlstm feedback: not with softmax256" 2 "feedback: the forecaster reads one intensity per pixel" $LOOM train $FB --output softmax256 --out "$T/x"
rejects "rowlstm: --feedback is convlstm's" 2 "feedback: only --model convlstm" $LOOM train --model rowlstm --feedback --out "$T/x"
rejects "convlstm resume: --feedback cannot change" 2 "cannot be changed on --resume" $LOOM train --resume "$T/s4" --feedback --steps 5

# the L1 and squared-error losses of intensities: recorded, logged in their own unit,
# resumed bit for bit; not for the softmax, not for other models, no other names
ok "convlstm --loss l1: 2 steps" $LOOM train $TINY --loss l1 --steps 2 --threads 1 --out "$T/l2"
ok "convlstm --loss l1: resume on to 4" $LOOM train --resume "$T/l2" --steps 4 --threads 2 --quiet
ok "convlstm --loss l1: 4 steps" $LOOM train $TINY --loss l1 --steps 4 --threads 1 --out "$T/l4"
same "convlstm --loss l1: resume and threads, same checkpoint" "$T/l4/checkpoint.safetensors" "$T/l2/checkpoint.safetensors"
$LOOM eval "$T/l4" --limit 4 --json >"$T/l.json" 2>"$T/err"
grep -q '"loss":[[:space:]]*"l1"' "$T/l4/config.json" && grep -q "train 0\.[0-9]* L1 error/pixel valid 0\.[0-9]* L1 error/pixel" "$T/l4/train.log" &&
    grep -q '"output": "intensity", "loss": "l1"' "$T/l.json" &&
    pass "convlstm --loss l1: config.json, the log's unit, eval's output and loss" ||
    fail "convlstm --loss l1: config.json, the log's unit, eval's output and loss" "$(cat "$T/l4/config.json" "$T/l4/train.log" "$T/l.json")"
ok "convlstm --loss mse: 2 steps" $LOOM train $TINY --loss mse --steps 2 --threads 1 --out "$T/m2"
grep -q "train 0\.[0-9]* squared error/pixel" "$T/m2/train.log" && ! cmp -s "$T/m2/checkpoint.safetensors" "$T/l2/checkpoint.safetensors" &&
    pass "convlstm --loss mse: its unit in the log" || fail "convlstm --loss mse: its unit in the log" "$(cat "$T/m2/train.log")"
rejects "convlstm --loss: other names" 2 "loss: 'huber' is not xent, l1 or mse" $LOOM train $TINY --loss huber --out "$T/x"
rejects "convlstm --loss l1: not with softmax256" 2 "loss l1: the softmax256 output is trained with its NLL" $LOOM train $TINY --loss l1 --output softmax256 --out "$T/x"
rejects "rowlstm: --loss is convlstm's" 2 "loss: only --model convlstm" $LOOM train --model rowlstm --loss l1 --out "$T/x"
