#!/bin/sh
# make demo: train a small Row LSTM on Fashion-MNIST for a few minutes, write
# samples and completions, print the test NLL. Usage: bench/demo.sh build/loom
set -e
LOOM=${1:-build/loom}
RUN=${DEMO_RUN:-runs/demo}
STEPS=${DEMO_STEPS:-1500}
rm -rf "$RUN"
mkdir -p "$(dirname "$RUN")"
echo "== training a 4-layer Row LSTM (hidden 32) on Fashion-MNIST for $STEPS steps of 32 images"
"$LOOM" train --model rowlstm --layers 4 --hidden 32 --batch 32 --steps "$STEPS" \
    --eval-every 500 --checkpoint-every 500 --out "$RUN"
echo "== samples"
"$LOOM" sample "$RUN" --n 64 --seed 1 --out "$RUN/samples.png"
echo "== completions of the bottom half of test images"
"$LOOM" complete "$RUN" --rows 14 --n 8 --samples 4 --out "$RUN/completions.png"
echo "== exact test-set NLL (10000 images)"
"$LOOM" eval "$RUN"
echo "demo done: $RUN/samples.png, $RUN/completions.png, $RUN/metrics.csv, $RUN/train.log"
