#!/bin/sh
# The scores table of docs/scores.md: every generator trained briefly (TRAIN_S seconds of
# wall time each, 1 thread, configurations like make demo's), then scored with loom score
# at the same N against the Fashion-MNIST test set, SEEDS times with different sample and
# detector seeds (the score's own spread); the real-data reference is the training split
# scored the same way. One JSON line per score in $OUT.
# Usage: bench/scores.sh build/loom; CLASSIFIER=ckpt (default: the shipped one), N (300),
# TRAIN_S (240), SEEDS ("1 2"), RUNS (runs/scores).
LOOM=${1:-build/loom}
N=${N:-300}
TRAIN_S=${TRAIN_S:-240}
SEEDS=${SEEDS:-"1 2"}
RUNS=${RUNS:-runs/scores}
OUT=${OUT:-$RUNS/scores.jsonl}
CLASSIFIER=${CLASSIFIER:-models/fmnist_renet.safetensors}
mkdir -p "$RUNS"
: >"$OUT"
train() {
    name=$1; shift
    [ -f "$RUNS/$name/checkpoint.safetensors" ] && return
    echo "== training $name for $TRAIN_S s: $*"
    "$LOOM" train "$@" --threads 1 --steps 1000000 --time-limit "$TRAIN_S" --eval-every 0 \
        --valid 200 --quiet --out "$RUNS/$name" 2>&1 | tail -n 1
}
# two at a time (each 1 thread)
{
    train rowlstm --model rowlstm --layers 4 --hidden 32 --batch 32
    train diagbilstm --model diagbilstm --layers 7 --hidden 16 --batch 16
    train grupixel --model grupixel --cell gru --layers 1 --hidden 128 --batch 64
    # the adversarial generator, its defaults (docs/gran.md)
    train gran --model gran
} &
{
    train draw --model draw --hidden 256 --zdim 100 --steps-draw 16 --batch 64
    train rae --model rae --variational --hidden 256 --zdim 32 --batch 64
    # the same with a discriminator on its reconstructions (docs/rae.md, "Adversarial loss";
    # the table's row of 2026-12-04 judged reconstructions only, as then the term did)
    train rae_adv --model rae --variational --hidden 256 --zdim 32 --batch 64 --adversarial 2 --adversarial-on recon
    # the segmenter of docs/renet.md, on its default data (fashion-mnist-scenes)
    train reseg --model reseg --layers 2 --hidden 32 --patch 4 --batch 16
    # the PyTorch GRAN peer, the same networks and defaults, the same wall time and thread:
    # 1000 samples as PNGs, scored below like a run (issue 12: "both scored after the same
    # wall time"); skipped without PyTorch
    if [ ! -d "$RUNS/gran_torch" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        echo "== training the PyTorch GRAN peer for $TRAIN_S s"
        OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/gran_torch.py bench --threads 1 --warmup 0 \
            --seconds "$TRAIN_S" --samples 1000 --out-dir "$RUNS/gran_torch" | tee "$RUNS/gran_torch.json"
    fi
} &
wait
"$LOOM" eval "$RUNS/reseg" --threads 1 --json | tee "$RUNS/reseg_eval.json"
"$LOOM" segment "$RUNS/reseg" --n 8 --out "$RUNS/reseg_masks.png"
for s in $SEEDS; do
    echo "== real data (train against test), seed $s"
    "$LOOM" score fashion-mnist:train --n "$N" --seed "$s" --classifier "$CLASSIFIER" --json | tee -a "$OUT"
    for name in rowlstm diagbilstm grupixel draw rae rae_adv gran; do
        echo "== $name, seed $s"
        "$LOOM" score "$RUNS/$name" --n "$N" --seed "$s" --classifier "$CLASSIFIER" --json | tee -a "$OUT"
    done
    if [ -d "$RUNS/gran_torch" ]; then
        echo "== the PyTorch GRAN peer's samples, seed $s"
        "$LOOM" score "$RUNS/gran_torch" --reference fashion-mnist:test --n "$N" --seed "$s" \
            --classifier "$CLASSIFIER" --json | tee -a "$OUT"
    fi
done
