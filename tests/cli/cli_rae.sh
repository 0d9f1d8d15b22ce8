# End to end: the rae model (CNN encoder, row LSTM decoder) on a tiny Fashion-MNIST subset.
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 240 40
TINY="--model rae --hidden 16 --zdim 4 --valid 40 --quiet --batch 8 --data $D"

ok "rae train: plain autoencoder" $LOOM train $TINY --steps 10 --out "$T/p"
ok "rae train: --variational" $LOOM train $TINY --variational --steps 10 --out "$T/v"
grep -q '"variational":[[:space:]]*true' "$T/v/config.json" &&
    pass "rae train: config.json records variational" || fail "rae train: config.json records variational" "$(cat "$T/v/config.json")"
$LOOM eval "$T/p" >"$T/e.txt" 2>&1
grep -q 'reconstruction NLL -log p(x | code(x)): not a likelihood' "$T/e.txt" &&
    pass "rae eval (plain): labelled a reconstruction NLL, not a likelihood" || fail "rae eval (plain): labelled a reconstruction NLL, not a likelihood" "$(cat "$T/e.txt")"
$LOOM eval "$T/v" --iw 4 --json >"$T/iw.json" 2>"$T/err"
grep -q '"kind": "iw".*"what": "importance-weighted bound (K = 4)' "$T/iw.json" &&
    pass "rae eval --iw (variational)" || fail "rae eval --iw (variational)" "$(cat "$T/iw.json" "$T/err")"
rejects "rae eval --iw (plain): no prior" 2 "no prior" $LOOM eval "$T/p" --iw 4
rejects "rae sample (plain): no prior" 2 "no prior" $LOOM sample "$T/p" --out "$T/x.png"
ok "rae sample (variational)" $LOOM sample "$T/v" --n 4 --seed 3 --out "$T/s1.png"
ok "rae sample again, 1 thread" $LOOM sample "$T/v" --n 4 --seed 3 --threads 1 --out "$T/s2.png"
same "rae sample: same seed, same PNG" "$T/s1.png" "$T/s2.png"
ok "rae interpolate" $LOOM interpolate "$T/p" 0 3 --steps 5 --out "$T/i.png"
# one row of A | 5 codes | B: 7 images of 28x28 with 1 px padding = 204 x 30
wh=$(od -A n -t u1 -j 16 -N 8 "$T/i.png" | tr -s ' ' | sed 's/^ //')
# 204 x 30 enlarged 3 times (the least that makes it 512 px wide)
[ "$wh" = "0 0 2 100 0 0 0 90" ] && pass "rae interpolate: A | 5 decoded codes | B" || fail "rae interpolate: A | 5 decoded codes | B" "IHDR $wh"
ok "rae reconstruct" $LOOM reconstruct "$T/v" --n 2 --out "$T/r.png"

ok "rae resume: 10 steps" $LOOM train $TINY --variational --steps 10 --threads 1 --out "$T/a"
ok "rae resume: 5 steps" $LOOM train $TINY --variational --steps 5 --threads 1 --out "$T/b"
ok "rae resume: on to 10" $LOOM train --resume "$T/b" --steps 10 --threads 1 --quiet
same "rae resume: bit-identical checkpoint" "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"

rejects "rae: --steps-draw is draw's" 2 "only --model draw" $LOOM train $TINY --steps-draw 4 --out "$T/x"
rejects "draw: --variational is rae's" 2 "only --model rae" $LOOM train --model draw --variational --data $D --out "$T/x"
rejects "rae: --zdim 0" 2 "zdim" $LOOM train $TINY --zdim 0 --out "$T/x"
rejects "interpolate: index past the set" 2 "past the 40" $LOOM interpolate "$T/p" 0 40 --out "$T/x.png"
rejects "interpolate: index not a number" 2 "not a non-negative integer" $LOOM interpolate "$T/p" 0 x1 --out "$T/x.png"
rejects "complete: rae is not autoregressive" 2 "not autoregressive" $LOOM complete "$T/p" --out "$T/x.png"
rejects "interpolate: a model without codes" 2 "no codes" sh -c "$LOOM train --model draw --hidden 4 --zdim 2 --steps-draw 2 --valid 40 --batch 8 --steps 1 --quiet --data $D --out $T/d >/dev/null 2>&1; exec $LOOM interpolate $T/d 0 1 --out $T/x.png"
