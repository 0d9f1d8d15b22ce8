#!/bin/sh
# 2 ranks x 1 thread (mpirun) against 1 process x 2 threads, alternating, REPS
# times per configuration (docs/distributed.md). Training images/s from each
# run's metrics.csv (the LOG rows after the first, i.e. without start-up and the
# first steps' warm-up), wall seconds of the whole command, and what rank 0
# logged about the exchange. Usage: bench/mpi_bench.sh build/loom [DATA_DIR];
# REPS=n rounds (3), GRUPIXEL=1 adds grupixel (slow).
LOOM=${1:-build/loom}
DATA=${2:-fashion-mnist}
REPS=${REPS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
unset OPENBLAS_CORETYPE
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
ips() { tail -n +3 "$1/metrics.csv" | cut -d, -f4 | awk '{s += $1; n++} END {if (n) printf "%.1f", s / n}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bench() {
    name=$1 args=$2
    : >"$W/ratios"; : >"$W/a"; : >"$W/b"
    i=0
    while [ $i -lt "$REPS" ]; do
        rm -rf "$W/a.run" "$W/b.run"
        t0=$(date +%s.%N)
        $LOOM train $args --threads 2 --out "$W/a.run" 2>/dev/null
        t1=$(date +%s.%N)
        mpirun --allow-run-as-root --oversubscribe -np 2 $LOOM train $args --threads 1 --out "$W/b.run" 2>/dev/null
        t2=$(date +%s.%N)
        a=$(ips "$W/a.run") b=$(ips "$W/b.run")
        cmp -s "$W/a.run/checkpoint.safetensors" "$W/b.run/checkpoint.safetensors" && same=same || same=DIFFERENT
        x=$(grep '^data parallel: rank 0 sent' "$W/b.run/train.log" | sed 's/data parallel: rank 0 //')
        echo "$name rep $i: 1x2 threads $a images/s ($(echo "$t1 - $t0" | bc) s), 2 ranks x 1 $b images/s ($(echo "$t2 - $t1" | bc) s), ratio $(echo "scale=3; $b / $a" | bc), checkpoints $same; $x; load $(cut -d' ' -f1 /proc/loadavg)"
        echo "$a" >>"$W/a"; echo "$b" >>"$W/b"; echo "scale=4; $b / $a" | bc >>"$W/ratios"
        i=$((i + 1))
    done
    echo "$name MEDIAN: 1 process x 2 threads $(median <"$W/a") images/s, 2 ranks x 1 thread $(median <"$W/b") images/s, ratio (2 ranks / 2 threads) median $(median <"$W/ratios")"
}
echo "== $(date -u '+%Y-%m-%d %H:%M') $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
COMMON="--data $DATA --valid 0 --eval-every 0 --checkpoint-every 0 --quiet"
bench "rowlstm 4x32 batch 32" "--model rowlstm --layers 4 --hidden 32 --batch 32 --steps 16 --log-every 4 $COMMON"
bench "draw h256 z100 T16 batch 64" "--model draw --hidden 256 --zdim 100 --steps-draw 16 --batch 64 --steps 32 --log-every 8 $COMMON"
[ -n "$GRUPIXEL" ] && bench "grupixel gru 1x256 batch 64" "--model grupixel --cell gru --layers 1 --hidden 256 --batch 64 --steps 8 --log-every 2 $COMMON"
echo "== done $(date -u '+%H:%M'), load $(cut -d' ' -f1-3 /proc/loadavg)"
