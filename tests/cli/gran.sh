# End to end: gran (a recurrent adversarial generator and its discriminator,
# docs/gran.md) on a small Fashion-MNIST subset: train, resume and threads
# (bit-identical), metrics.csv's loss_g/loss_d, sample (PNG, GIF), eval and
# score (no likelihood: said plainly), detect, battle, bad flags.
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
