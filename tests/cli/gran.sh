# End to end: gran (a recurrent adversarial generator and its discriminator,
# docs/gran.md) on a small Fashion-MNIST subset: train, resume and threads
# (bit-identical), metrics.csv's loss_g/loss_d, sample (PNG, GIF), eval and
# score (no likelihood: said plainly), detect, battle, bad flags; the
# generator's batchnorm (on by default) and the discriminator's mbstd (off).
. tests/cli/lib.sh
D="$T/data"
idx_subset "$D" 200 100
TINY="--model gran --data $D --hidden 4 --zdim 8 --steps-draw 2 --batch 12 --quiet --no-report"

ok "gran train: 6 steps, 1 thread" $LOOM train $TINY --steps 6 --threads 1 --out "$T/a"
grep -q '"name":[[:space:]]*"gran_d"' "$T/a/config.json" && grep -q '"gen":' "$T/a/config.json" &&
    grep -q '"steps_draw":[[:space:]]*2' "$T/a/config.json" &&
    pass "gran train: config.json holds the generator (gen) and the discriminator (disc)" ||
    fail "gran train: config.json holds the generator (gen) and the discriminator (disc)" "$(cat "$T/a/config.json")"
head -1 "$T/a/metrics.csv" | grep -q ',loss_g,loss_d$' && [ "$(tail -1 "$T/a/metrics.csv" | cut -d, -f2)" = "" ] &&
    tail -1 "$T/a/metrics.csv" | grep -q ',[0-9.]*,[0-9.]*$' &&
    pass "gran metrics.csv: loss_g and loss_d columns, no bits/dim" ||
    fail "gran metrics.csv: loss_g and loss_d columns, no bits/dim" "$(cat "$T/a/metrics.csv")"
# the defaults: the generator's batchnorm, no mbstd; --batchnorm off, config.json
# reads like a run from before either existed (neither key); --mbstd 4 is kept
grep -q '"batchnorm":[[:space:]]*true' "$T/a/config.json" && ! grep -q 'mbstd' "$T/a/config.json" &&
    pass "gran train: config.json has the generator's batchnorm and no mbstd by default" ||
    fail "gran train: config.json has the generator's batchnorm and no mbstd by default" "$(cat "$T/a/config.json")"
ok "gran --batchnorm off: 2 steps" $LOOM train $TINY --batchnorm off --steps 2 --out "$T/p"
! grep -q 'batchnorm\|mbstd' "$T/p/config.json" && grep -aq '"gen.enc.conv1.bias"' "$T/p/checkpoint.safetensors" &&
    ! grep -aq '"gen.enc.conv1.bias"' "$T/a/checkpoint.safetensors" &&
    pass "gran --batchnorm off: neither key in config.json, the per-channel biases back" ||
    fail "gran --batchnorm off: neither key in config.json, the per-channel biases back" "$(cat "$T/p/config.json")"
ok "gran --batchnorm off: resumes" $LOOM train --resume "$T/p" --steps 3 --quiet --no-report
$LOOM info "$T/a" >"$T/i1.txt" 2>&1; $LOOM info "$T/p" >"$T/i2.txt" 2>&1
grep -q '^gran        z 8, 2 canvas updates, batchnorm on; the discriminator.s lr 0.0004$' "$T/i1.txt" &&
    grep -q 'batchnorm off' "$T/i2.txt" && ! grep -q '^draw\|^cell' "$T/i1.txt" &&
    pass "gran info: the canvas updates, batchnorm on or off, the discriminator's lr (4 --lr)" ||
    fail "gran info: the canvas updates, batchnorm on or off, the discriminator's lr (4 --lr)" "$(cat "$T/i1.txt" "$T/i2.txt")"
# the recurrent discriminator: LSTM sweeps over 2x2 patches
ok "gran --disc renet_d: 4 steps, 1 thread" $LOOM train $TINY --disc renet_d --steps 4 --threads 1 --out "$T/rd"
grep -q '"name":[[:space:]]*"renet_d"' "$T/rd/config.json" && grep -q '"patch":[[:space:]]*2' "$T/rd/config.json" &&
    grep -aq '"disc.sweep.0.col_b.weight_hh"' "$T/rd/checkpoint.safetensors" &&
    pass "gran --disc renet_d: the discriminator's config and sweeps in the run" ||
    fail "gran --disc renet_d: the discriminator's config and sweeps in the run" "$(cat "$T/rd/config.json")"
$LOOM info "$T/rd" 2>&1 | grep -q "the discriminator.s lr 0.002$" &&
    pass "gran --disc renet_d: its lr defaults to 20 --lr (2e-3)" ||
    fail "gran --disc renet_d: its lr defaults to 20 --lr (2e-3)" "$($LOOM info "$T/rd" 2>&1)"
ok "gran --disc renet_d: 4 steps, 2 threads" $LOOM train $TINY --disc renet_d --steps 4 --threads 2 --out "$T/rd2"
same "gran --disc renet_d: 1 and 2 threads, same checkpoint" "$T/rd/checkpoint.safetensors" "$T/rd2/checkpoint.safetensors"
ok "gran --disc renet_d resume: 2 steps" $LOOM train $TINY --disc renet_d --steps 2 --threads 1 --out "$T/rd3"
ok "gran --disc renet_d resume: on to 4" $LOOM train --resume "$T/rd3" --steps 4 --quiet --no-report
same "gran --disc renet_d resume: bit-identical" "$T/rd/checkpoint.safetensors" "$T/rd3/checkpoint.safetensors"
$LOOM battle "$T/rd" "$T/a" --n 16 --json >"$T/rdb.json" 2>"$T/err"
grep -q '"r_test": ' "$T/rdb.json" && pass "gran battle: a renet_d run against a gran_d run" ||
    fail "gran battle: a renet_d run against a gran_d run" "$(cat "$T/rdb.json" "$T/err")"
rejects "gran --disc: unknown" 2 "gran_d or renet_d" $LOOM train $TINY --disc lstm --out "$T/x"
rejects "gran --disc renet_d --mbstd 2" 2 "only the gran_d discriminator" $LOOM train $TINY --disc renet_d --mbstd 2 --out "$T/x"
rejects "gran --disc: not for a model alone" 2 "only --model gran or --adversarial" \
    $LOOM train --model rowlstm --data "$D" --disc renet_d --out "$T/x"
ok "gran --mbstd 4: 2 steps" $LOOM train $TINY --mbstd 4 --steps 2 --threads 1 --out "$T/m"
ok "gran --mbstd 4: 2 steps, 2 threads" $LOOM train $TINY --mbstd 4 --steps 2 --threads 2 --out "$T/m2"
grep -q '"mbstd":[[:space:]]*4' "$T/m/config.json" && grep -aq '"disc.mbstd.weight"' "$T/m/checkpoint.safetensors" &&
    pass "gran --mbstd 4: kept in config.json, the discriminator's mbstd.weight in the checkpoint" ||
    fail "gran --mbstd 4: kept in config.json, the discriminator's mbstd.weight in the checkpoint" "$(cat "$T/m/config.json")"
same "gran --mbstd 4: 1 and 2 threads, same checkpoint" "$T/m/checkpoint.safetensors" "$T/m2/checkpoint.safetensors"
ok "gran resume: 3 steps" $LOOM train $TINY --steps 3 --threads 1 --out "$T/b"
ok "gran resume: on to 6" $LOOM train --resume "$T/b" --steps 6 --threads 1 --quiet --no-report
same "gran resume: bit-identical checkpoint (both models, both Adam states)" "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"
ok "gran threads: 6 steps on 2 threads" $LOOM train $TINY --steps 6 --threads 2 --out "$T/c"
same "gran threads: 1 and 2 threads, same checkpoint" "$T/a/checkpoint.safetensors" "$T/c/checkpoint.safetensors"
ok "gran --d-steps 2 --lr-d 1e-3" $LOOM train $TINY --steps 4 --d-steps 2 --lr-d 1e-3 --out "$T/d"
grep -q '"d_steps":[[:space:]]*2' "$T/d/config.json" && grep -q '"model_lr":[[:space:]]*\[0, 0.001\]' "$T/d/config.json" &&
    pass "gran --d-steps/--lr-d recorded in config.json" || fail "gran --d-steps/--lr-d recorded in config.json" "$(cat "$T/d/config.json")"
ok "gran --d-steps resume: 2 steps" $LOOM train $TINY --steps 2 --d-steps 2 --lr-d 1e-3 --out "$T/e"
ok "gran --d-steps resume: on to 4" $LOOM train --resume "$T/e" --steps 4 --quiet --no-report
same "gran --d-steps resume: bit-identical" "$T/d/checkpoint.safetensors" "$T/e/checkpoint.safetensors"

ok "gran sample: PNG grid" $LOOM sample "$T/a" --n 9 --out "$T/s.png"
ok "gran sample: again, 1 thread" $LOOM sample "$T/a" --n 9 --threads 1 --out "$T/s1.png"
same "gran sample: reproducible at a seed" "$T/s.png" "$T/s1.png"
ok "gran sample --gif: the canvas after each step" $LOOM sample "$T/a" --n 4 --gif "$T/s.gif" --out "$T/s2.png"
[ "$(head -c 6 "$T/s.gif")" = "GIF89a" ] && pass "gran sample --gif: a GIF file" || fail "gran sample --gif: a GIF file" "$(head -c 6 "$T/s.gif" | od -c)"

rejects "gran eval: no likelihood, said plainly" 2 "gran has no likelihood" $LOOM eval "$T/a"
$LOOM score "$T/a" --n 40 --detect-steps 5 --json >"$T/sc.json" 2>"$T/err"
grep -q '"model": "gran"' "$T/sc.json" && grep -q '"nll": null' "$T/sc.json" && grep -q '"nll_kind": "none"' "$T/sc.json" &&
    grep -q '"nll_note": "an adversarial generator has no likelihood"' "$T/sc.json" && grep -q '"fid": [0-9]' "$T/sc.json" &&
    grep -q '"detector_auc": [0-9]' "$T/sc.json" && [ "$(wc -l <"$T/sc.json")" -eq 1 ] &&
    pass "gran score --json: fid and the detector, nll null with the reason" ||
    fail "gran score --json: fid and the detector, nll null with the reason" "$(cat "$T/sc.json" "$T/err")"
$LOOM detect "$T/a" "$D:test" --n 40 --steps 5 --json >"$T/det.json" 2>"$T/err"
grep -q '"auc": [0-9]' "$T/det.json" && pass "gran detect: a run's samples against test images" ||
    fail "gran detect: a run's samples against test images" "$(cat "$T/det.json" "$T/err")"

rejects "gran: --d-steps on another model" 2 "only --model gran" $LOOM train --model draw --d-steps 2 --out "$T/x"
rejects "gran: --lr-d on another model" 2 "only --model gran" $LOOM train --model rae --lr-d 1e-3 --out "$T/x"
rejects "gran: --d-steps 0" 2 "d-steps" $LOOM train $TINY --d-steps 0 --out "$T/x"
rejects "gran: --lr-d 0" 2 "lr-d" $LOOM train $TINY --lr-d 0 --out "$T/x"
rejects "gran: --layers" 2 "fixed depth" $LOOM train $TINY --layers 2 --out "$T/x"
rejects "gran: --read-n" 2 "gran does not take it" $LOOM train $TINY --read-n 3 --out "$T/x"
rejects "gran: --conditional" 2 "unconditional" $LOOM train $TINY --conditional --out "$T/x"
rejects "gran: --steps-draw 65" 2 "steps-draw" $LOOM train $TINY --steps-draw 65 --out "$T/x"
rejects "gran: --d-steps on --resume" 2 "cannot be changed on --resume" $LOOM train --resume "$T/a" --d-steps 3
rejects "gran: --precision bf16" 2 "precision bf16" $LOOM train $TINY --precision bf16 --out "$T/x"
rejects "gran: --batchnorm maybe" 2 "give on or off" $LOOM train $TINY --batchnorm maybe --out "$T/x"
rejects "gran: --mbstd 3 (batch 12: groups would mix real and generated images)" 2 "mbstd groups of 3" $LOOM train $TINY --mbstd 3 --out "$T/x"
rejects "gran: --mbstd 9" 2 "mbstd" $LOOM train $TINY --mbstd 9 --out "$T/x"
rejects "gran: --mbstd on another model" 2 "only --model gran" $LOOM train --model rae --mbstd 2 --out "$T/x"
rejects "gran: --batchnorm on another model" 2 "only --model gran" $LOOM train --model draw --batchnorm on --out "$T/x"
rejects "gran: --batchnorm on --resume" 2 "cannot be changed on --resume" $LOOM train --resume "$T/a" --batchnorm off

# loom battle: a run against itself ties; swapping the runs inverts both ratios
$LOOM battle "$T/a" "$T/a" --n 30 --json >"$T/b1.json" 2>"$T/err"
grep -q '"kind": "battle"' "$T/b1.json" && grep -q '"r_test": 1,' "$T/b1.json" && grep -q '"r_sample": 1,' "$T/b1.json" &&
    grep -q '"winner": "tie"' "$T/b1.json" && [ "$(wc -l <"$T/b1.json")" -eq 1 ] &&
    pass "gran battle --json: a run against itself is a tie (r_test = r_sample = 1)" ||
    fail "gran battle --json: a run against itself is a tie (r_test = r_sample = 1)" "$(cat "$T/b1.json" "$T/err")"
$LOOM battle "$T/a" "$T/d" --n 30 --json >"$T/b2.json" 2>"$T/err"
$LOOM battle "$T/d" "$T/a" --n 30 --json >"$T/b3.json" 2>>"$T/err"
ea=$(json_get err_test_a <"$T/b2.json") eb=$(json_get err_test_b <"$T/b2.json")
sa=$(json_get err_sample_a <"$T/b2.json") sb=$(json_get err_sample_b <"$T/b2.json")
[ -n "$ea" ] && [ "$ea" = "$(json_get err_test_b <"$T/b3.json")" ] && [ "$eb" = "$(json_get err_test_a <"$T/b3.json")" ] &&
    [ "$sa" = "$(json_get err_sample_b <"$T/b3.json")" ] && [ "$sb" = "$(json_get err_sample_a <"$T/b3.json")" ] &&
    pass "gran battle: A B and B A swap every error rate" || fail "gran battle: A B and B A swap every error rate" "$(cat "$T/b2.json" "$T/b3.json" "$T/err")"
$LOOM battle "$T/a" "$T/d" --n 30 >"$T/b.txt" 2>"$T/err"
grep -q '^winner: ' "$T/b.txt" && grep -q 'r_sample = ' "$T/b.txt" && pass "gran battle: text with r_test, r_sample and the winner" ||
    fail "gran battle: text with r_test, r_sample and the winner" "$(cat "$T/b.txt" "$T/err")"
ok "gran battle: a rowlstm run for the next check" $LOOM train --data "$D" --layers 1 --hidden 4 --steps 1 --batch 8 --quiet --no-report --out "$T/rl"
rejects "gran battle: a run that is not adversarial" 2 "not an adversarial run" $LOOM battle "$T/a" "$T/rl"
rejects "gran battle: one run only" 2 "two run directories" $LOOM battle "$T/a"
rejects "gran battle: unknown flag" 2 "unknown flag" $LOOM battle "$T/a" "$T/a" --nope
