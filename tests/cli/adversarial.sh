# End to end: an autoencoder with an adversarial term (--adversarial W, docs/rae.md):
# rae and draw with a discriminator on their reconstructions and samples; config.json,
# metrics.csv's bits/dim beside loss_g and loss_d, resume and threads
# (bit-identical), eval and sample of the run as of any rae, bad flags.
. tests/cli/lib.sh
D="$T/data"
idx_subset "$D" 200 40
TINY="--model rae --variational --data $D --hidden 8 --zdim 4 --batch 12 --valid 24 --quiet --no-report"

ok "adversarial rae: 6 steps, 1 thread" $LOOM train $TINY --adversarial 5 --lr-d 2e-3 --steps 6 --threads 1 --out "$T/a"
grep -q '"adversarial":[[:space:]]*5' "$T/a/config.json" && grep -q '"disc":' "$T/a/config.json" &&
    grep -q '"adversarial_on":[[:space:]]*"both"' "$T/a/config.json" &&
    grep -q '"name":[[:space:]]*"gran_d"' "$T/a/config.json" && grep -q '"model_lr":[[:space:]]*\[0, 0.002\]' "$T/a/config.json" &&
    pass "adversarial rae: config.json holds the weight, the discriminator and its lr" ||
    fail "adversarial rae: config.json holds the weight, the discriminator and its lr" "$(cat "$T/a/config.json")"
head -1 "$T/a/metrics.csv" | grep -q '^step,train_bits_per_dim,.*,loss_g,loss_d$' &&
    tail -1 "$T/a/metrics.csv" | grep -q '^6,[0-9.]*,[0-9.]*,.*,[0-9.]*,[0-9.]*$' &&
    pass "adversarial rae metrics.csv: train and valid bits/dim, then loss_g and loss_d" ||
    fail "adversarial rae metrics.csv: train and valid bits/dim, then loss_g and loss_d" "$(cat "$T/a/metrics.csv")"
ok "adversarial rae resume: 3 steps" $LOOM train $TINY --adversarial 5 --lr-d 2e-3 --steps 3 --threads 1 --out "$T/b"
ok "adversarial rae resume: on to 6" $LOOM train --resume "$T/b" --steps 6 --threads 1 --quiet --no-report
same "adversarial rae resume: bit-identical checkpoint (both models, both Adam states)" \
    "$T/a/checkpoint.safetensors" "$T/b/checkpoint.safetensors"
ok "adversarial rae threads: 6 steps on 2 threads" $LOOM train $TINY --adversarial 5 --lr-d 2e-3 --steps 6 --threads 2 --out "$T/c"
same "adversarial rae threads: 1 and 2 threads, same checkpoint" "$T/a/checkpoint.safetensors" "$T/c/checkpoint.safetensors"
ok "plain rae: 6 steps" $LOOM train $TINY --steps 6 --threads 1 --out "$T/p"
cmp -s "$T/a/checkpoint.safetensors" "$T/p/checkpoint.safetensors" &&
    fail "adversarial rae: the term changes the training" "the same checkpoint as without it" ||
    pass "adversarial rae: the term changes the training"

$LOOM eval "$T/a" --json >"$T/e.json" 2>"$T/err"
grep -q '"kind": "elbo"' "$T/e.json" && grep -q '"bits_per_dim": [0-9]' "$T/e.json" &&
    pass "adversarial rae eval: the autoencoder's bound, as of any rae" ||
    fail "adversarial rae eval: the autoencoder's bound, as of any rae" "$(cat "$T/e.json" "$T/err")"
ok "adversarial rae sample" $LOOM sample "$T/a" --n 4 --out "$T/s.png"
$LOOM info "$T/a" >"$T/i.txt" 2>&1
grep -q '^adversarial weight 5, a discriminator on the reconstructions and samples (lr 0.002)$' "$T/i.txt" &&
    pass "adversarial rae info: the weight and the discriminator's lr" ||
    fail "adversarial rae info: the weight and the discriminator's lr" "$(cat "$T/i.txt")"
ok "adversarial draw: 3 steps" $LOOM train --model draw --data "$D" --hidden 8 --zdim 4 --steps-draw 3 --batch 8 \
    --valid 16 --quiet --no-report --adversarial 2 --steps 3 --out "$T/d"
grep -q '"adversarial":[[:space:]]*2' "$T/d/config.json" && pass "adversarial draw: config.json holds the weight" ||
    fail "adversarial draw: config.json holds the weight" "$(cat "$T/d/config.json")"
ok "adversarial draw threads: 3 steps on 2 threads, --mbstd 2" $LOOM train --model draw --data "$D" --hidden 8 --zdim 4 \
    --steps-draw 3 --batch 8 --valid 16 --quiet --no-report --adversarial 2 --mbstd 2 --steps 3 --threads 2 --out "$T/d2"
ok "adversarial draw threads: the same on 1 thread" $LOOM train --model draw --data "$D" --hidden 8 --zdim 4 \
    --steps-draw 3 --batch 8 --valid 16 --quiet --no-report --adversarial 2 --mbstd 2 --steps 3 --threads 1 --out "$T/d1"
same "adversarial draw threads: 1 and 2 threads, same checkpoint (samples and reconstructions judged)" \
    "$T/d1/checkpoint.safetensors" "$T/d2/checkpoint.safetensors"
ok "adversarial draw --disc renet_d: 2 steps" $LOOM train --model draw --data "$D" --hidden 8 --zdim 4 --steps-draw 3 \
    --batch 8 --valid 16 --quiet --no-report --adversarial 2 --disc renet_d --steps 2 --out "$T/dr"
grep -q '"name":[[:space:]]*"renet_d"' "$T/dr/config.json" && pass "adversarial draw --disc renet_d: in config.json" ||
    fail "adversarial draw --disc renet_d: in config.json" "$(cat "$T/dr/config.json")"
grep -q '"mbstd":[[:space:]]*2' "$T/d1/config.json" && pass "adversarial draw --mbstd 2: the discriminator's config holds it" ||
    fail "adversarial draw --mbstd 2: the discriminator's config holds it" "$(cat "$T/d1/config.json")"

# battle: any run of a generator and its discriminator; a plain rae has no samples
$LOOM battle "$T/a" "$T/d" --n 16 --json >"$T/bt.json" 2>"$T/err"
grep -q '"r_test": [0-9.]*' "$T/bt.json" && grep -q '"r_sample": ' "$T/bt.json" &&
    pass "adversarial battle: rae against draw, each judged by the other's discriminator" ||
    fail "adversarial battle: rae against draw, each judged by the other's discriminator" "$(cat "$T/bt.json" "$T/err")"
ok "adversarial rae --adversarial-on recon: 6 steps" $LOOM train $TINY --adversarial 5 --lr-d 2e-3 --adversarial-on recon \
    --steps 6 --threads 1 --out "$T/r"
grep -q '"adversarial_on":[[:space:]]*"recon"' "$T/r/config.json" &&
    $LOOM info "$T/r" 2>&1 | grep -q '^adversarial weight 5, a discriminator on the reconstructions (lr' &&
    ! cmp -s "$T/a/checkpoint.safetensors" "$T/r/checkpoint.safetensors" &&
    pass "adversarial rae --adversarial-on recon: config.json and info say so, and it trains otherwise than both" ||
    fail "adversarial rae --adversarial-on recon: config.json and info say so, and it trains otherwise than both" \
    "$(cat "$T/r/config.json")"
ok "adversarial plain rae: 2 steps" $LOOM train --model rae --data "$D" --hidden 8 --zdim 4 --batch 12 --valid 24 \
    --quiet --no-report --adversarial 1 --steps 2 --out "$T/q"
$LOOM info "$T/q" 2>&1 | grep -q '^adversarial weight 1, a discriminator on the reconstructions (lr' &&
    pass "adversarial plain rae info: reconstructions only (no prior, no samples)" ||
    fail "adversarial plain rae info: reconstructions only (no prior, no samples)" "$($LOOM info "$T/q" 2>&1)"
rejects "adversarial battle: a plain rae has no samples" 2 "not an adversarial run" $LOOM battle "$T/q" "$T/a"

rejects "adversarial: not for rowlstm" 2 "only rae and draw" $LOOM train --model rowlstm --adversarial 1 --out "$T/x"
rejects "adversarial: not for gran" 2 "only rae and draw" $LOOM train --model gran --adversarial 1 --out "$T/x"
rejects "adversarial: weight 0" 2 "adversarial" $LOOM train $TINY --adversarial 0 --out "$T/x"
rejects "adversarial: --d-steps is gran's" 2 "only --model gran" $LOOM train $TINY --adversarial 1 --d-steps 2 --out "$T/x"
rejects "adversarial: --mbstd 5 does not divide the micro-shards" 2 "mbstd groups" $LOOM train $TINY --adversarial 1 --mbstd 5 --out "$T/x"
rejects "adversarial: --adversarial-on without it" 2 "only with --adversarial" $LOOM train $TINY --adversarial-on recon --out "$T/x"
rejects "adversarial: --adversarial-on nonsense" 2 "recon, samples or both" $LOOM train $TINY --adversarial 1 --adversarial-on all --out "$T/x"
rejects "adversarial: samples of a plain rae" 2 "no prior" $LOOM train --model rae --data "$D" --adversarial 1 --adversarial-on both --out "$T/x"
rejects "adversarial: --mbstd without it" 2 "only --model gran or --adversarial" $LOOM train $TINY --mbstd 2 --out "$T/x"
rejects "adversarial: --lr-d without it" 2 "only --model gran or --adversarial" $LOOM train $TINY --lr-d 1e-3 --out "$T/x"
rejects "adversarial: --precision bf16" 2 "fp32 only" $LOOM train $TINY --adversarial 1 --precision bf16 --out "$T/x"
rejects "adversarial: on --resume" 2 "cannot be changed on --resume" $LOOM train --resume "$T/p" --adversarial 1
rejects "adversarial: images not a multiple of 4 for the discriminator" 2 "multiples of 4" \
    $LOOM train $TINY --adversarial 1 --resize 30x30 --out "$T/x"
