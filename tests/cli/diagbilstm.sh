#!/bin/sh
# End to end with --model diagbilstm on a tiny Fashion-MNIST subset: conditional
# training, resume bit-identity, eval, sample --label, complete, bad flags.
. "$(dirname "$0")/lib.sh"
[ -e "$FMNIST/train-images-idx3-ubyte.gz" ] || { fail "diagbilstm cli" "$FMNIST missing"; exit 0; }
D="$T/data"
idx_subset "$D" 40 8
common="--model diagbilstm --layers 1 --hidden 4 --data $D --batch 8 --valid 8 --eval-every 0 --threads 1 --quiet"
ok "diagbilstm: train 4 steps, conditional" $LOOM train $common --conditional --steps 4 --out "$T/a"
ok "diagbilstm: train 2 steps" $LOOM train $common --conditional --steps 2 --out "$T/b"
ok "diagbilstm: resume to 4 steps" $LOOM train --resume "$T/b" --steps 4 --threads 1 --quiet
same "diagbilstm: 4 steps == 2 + resume 2 (identical checkpoints)" "$T/a/checkpoint.safetensors" \
    "$T/b/checkpoint.safetensors"
"$LOOM" eval "$T/a" --json --threads 1 >"$T/ea" 2>/dev/null
bpd=$(json_get bits_per_dim <"$T/ea")
case "$bpd" in [0-9]*) pass "diagbilstm: eval reports bits/dim ($bpd)" ;; *) fail "diagbilstm: eval" "no bits_per_dim in $(cat "$T/ea")" ;; esac
ok "diagbilstm: sample --label 3" $LOOM sample "$T/a" --n 4 --label 3 --threads 1 --out "$T/s3.png"
ok "diagbilstm: sample --label all" $LOOM sample "$T/a" --n 2 --label all --threads 1 --out "$T/sall.png"
ok "diagbilstm: complete" $LOOM complete "$T/a" --rows 14 --n 2 --samples 2 --threads 1 --out "$T/c.png"
rejects "diagbilstm: --label 12 on a 10-class model" 2 "label" $LOOM sample "$T/a" --label 12 --out "$T/x.png"
rejects "diagbilstm: --layers 0" 2 "layers" $LOOM train $common --layers 0 --steps 1 --out "$T/z"
