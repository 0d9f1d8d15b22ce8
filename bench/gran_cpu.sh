#!/bin/sh
# CPU seconds per training step on 1 thread, loom against the PyTorch peer,
# interleaved (REPS rounds): on a loaded machine CPU time per step is a steadier
# measure than wall time (both still share caches with the other jobs).
# loom: (user+sys of a 5+STEPS-step run - that of a 5-step run) / STEPS.
LOOM=${1:-build/loom}
. "$(dirname "$0")/blas_core.sh" # OPENBLAS_CORETYPE for loom and the peers
REPS=${REPS:-3} STEPS=${STEPS:-20}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset OPENBLAS_CORETYPE
cpu() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
for r in $(seq "$REPS"); do
    rm -rf "$T/a" "$T/b"
    a=$(cpu "$LOOM" train --model gran --steps 5 --threads 1 --quiet --no-report --out "$T/a")
    b=$(cpu "$LOOM" train --model gran --steps $((5 + STEPS)) --threads 1 --quiet --no-report --out "$T/b")
    l=$(echo "$a $b" | awk -v n="$STEPS" '{printf "%.4f", ($2 - $1) / n}')
    p=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/gran_torch.py bench --threads 1 --steps "$STEPS" |
        sed 's/.*"cpu_s_per_step": \([0-9.]*\).*/\1/')
    echo "round $r: loom $l CPU s/step, torch $p CPU s/step (1 thread, PASSIVE), load $(cut -d' ' -f1 /proc/loadavg)"
done
