#!/bin/sh
# loom's GRAN against the PyTorch peer (bench/gran_torch.py), interleaved, at
# the defaults (hidden 32, zdim 100, T 3, batch 64): training images/s, the
# median of REPS rounds; the peer with OMP_WAIT_POLICY unset and PASSIVE.
# usage: sh bench/gran_bench.sh [build/loom]   (THREADS=2 REPS=3 STEPS=20)
LOOM=${1:-build/loom}
. "$(dirname "$0")/blas_core.sh" # OPENBLAS_CORETYPE for loom and the peers
THREADS=${THREADS:-2} REPS=${REPS:-3} STEPS=${STEPS:-20}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset OPENBLAS_CORETYPE
for r in $(seq "$REPS"); do
    echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$T/run"
    "$LOOM" train --model gran --steps "$STEPS" --log-every 5 --threads "$THREADS" --quiet --no-report --out "$T/run"
    # the median of the logged intervals after the first (warm-up)
    l=$(tail -n +3 "$T/run/metrics.csv" | cut -d, -f4 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    p=$(/usr/bin/python3 bench/gran_torch.py bench --threads "$THREADS" --steps "$STEPS" | sed 's/.*"train_images_per_s": \([0-9.]*\).*/\1/')
    q=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/gran_torch.py bench --threads "$THREADS" --steps "$STEPS" | sed 's/.*"train_images_per_s": \([0-9.]*\).*/\1/')
    echo "round $r: loom $l images/s, torch $p (default), $q (PASSIVE)"
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
