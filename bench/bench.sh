#!/bin/sh
# make bench: loom bench in the reference configurations, and the PyTorch peer
# side by side (alternating, REPS times each, medians) when Debian's
# python3-torch is installed. Every peer runs at its strongest OpenMP setting:
# each repetition runs it with OpenMP's default wait policy and with
# OMP_WAIT_POLICY=PASSIVE, and the policy with the higher median training
# throughput is the one compared (the report says which, and both medians).
# Usage: bench/bench.sh build/loom; REPS=n repetitions (3); ONLY=text runs only
# the configurations whose name contains text.
# Results go to stdout and to bench/last.jsonl (one JSON line per run; peer
# lines carry "omp_wait_policy").
LOOM=${1:-build/loom}
. "$(dirname "$0")/blas_core.sh" # OPENBLAS_CORETYPE for loom and the peers
REPS=${REPS:-3}
ONLY=${ONLY:-}
PY=/usr/bin/python3
OUT=bench/last.jsonl
: >"$OUT"
have_torch=0
"$PY" -c 'import torch' 2>/dev/null && have_torch=1
[ "$have_torch" = 1 ] || echo "(python3-torch not installed: loom only; apt-get install python3-torch python3-numpy)"

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
get() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }

# run_peer POLICY COMMAND: one run of the peer with OMP_WAIT_POLICY=POLICY ("default":
# unset, OpenMP's own default), its JSON line tagged with the policy
run_peer() {
    pol=$1
    shift
    if [ "$pol" = default ]; then env -u OMP_WAIT_POLICY "$@"; else env OMP_WAIT_POLICY="$pol" "$@"; fi |
        sed "s/^{/{\"omp_wait_policy\": \"$pol\", /" | tee -a "$OUT" >>/tmp/loom_bench_$pol.$$
}

# pair NAME "LOOM ARGS" "PEER COMMAND": alternate loom and both peer policies REPS
# times, print medians (the peer's of its faster policy)
pair() {
    name=$1 largs=$2 peer=$3
    case "$name" in *"$ONLY"*) ;; *) return ;; esac
    : >/tmp/loom_bench_a.$$; : >/tmp/loom_bench_default.$$; : >/tmp/loom_bench_PASSIVE.$$
    i=0
    while [ $i -lt "$REPS" ]; do
        $LOOM bench $largs --json | tee -a "$OUT" >>/tmp/loom_bench_a.$$
        if [ "$have_torch" = 1 ] && [ -n "$peer" ]; then
            # which policy goes first alternates, so neither always gets the cooler machine
            if [ $((i % 2)) = 0 ]; then run_peer default $peer; run_peer PASSIVE $peer
            else run_peer PASSIVE $peer; run_peer default $peer; fi
        fi
        i=$((i + 1))
    done
    lt=$(get train_images_per_s </tmp/loom_bench_a.$$ | median)
    ls=$(get sample_ms_per_image </tmp/loom_bench_a.$$ | median)
    lf=$(get forward_ms_per_image </tmp/loom_bench_a.$$ | median)
    lm=$(get peak_rss_mb </tmp/loom_bench_a.$$ | median)
    echo "$name  loom:  train $lt images/s, forward $lf ms/image, sample $ls ms/image, peak RSS $lm MB"
    if [ -s /tmp/loom_bench_default.$$ ] || [ -s /tmp/loom_bench_PASSIVE.$$ ]; then
        td=$(get train_images_per_s </tmp/loom_bench_default.$$ | median)
        tp=$(get train_images_per_s </tmp/loom_bench_PASSIVE.$$ | median)
        # the faster policy; a policy whose runs all failed has no median and loses
        pol=$(awk -v d="${td:-0}" -v p="${tp:-0}" 'BEGIN {print (p + 0 > d + 0) ? "PASSIVE" : "default"}')
        b=/tmp/loom_bench_$pol.$$
        pt=$(get train_images_per_s <"$b" | median)
        pm=$(get peak_rss_mb <"$b" | median)
        ps=$(get sample_ms_per_image <"$b" | median)
        [ -n "$ps" ] || ps=$(get sample_s_per_image <"$b" | median | awk '{print $1 * 1000}')
        echo "$name  torch: train $pt images/s, sample $ps ms/image, peak RSS $pm MB" \
            "(OMP_WAIT_POLICY $pol, the faster: train default ${td:-n/a}, PASSIVE ${tp:-n/a} images/s)"
        awk -v a="$lt" -v b="$pt" -v c="$ps" -v d="$ls" -v n="$name" -v r="$REPS" 'BEGIN {
            s = (c > 0 && d > 0) ? sprintf("%.1fx", c / d) : "n/a (the peer does not time sampling)"
            printf "%s  ratio: training %.2fx, sampling %s (loom / torch, medians of %d)\n", n, a / b, s, r}'
    fi
    rm -f /tmp/loom_bench_a.$$ /tmp/loom_bench_default.$$ /tmp/loom_bench_PASSIVE.$$
}

echo "== $(date -u '+%Y-%m-%d %H:%M') $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
pair "rowlstm 4x32 batch 32" "--model rowlstm --layers 4 --hidden 32 --batch 32 --steps 10" \
    "$PY bench/rowlstm_torch.py bench --threads 2 --batch 32 --layers 4 --hidden 32 --steps 10 --sample-pixels 112"
pair "diagbilstm 7x16 batch 16" "--model diagbilstm --layers 7 --hidden 16 --batch 16 --steps 5" \
    "$PY bench/diagbilstm_torch.py bench --threads 2 --batch 16 --layers 7 --hidden 16 --steps 3 --forward-reps 2 --sample-pixels 1"
pair "grupixel gru 1x256 batch 64" "--model grupixel --cell gru --layers 1 --hidden 256 --batch 64 --steps 10" \
    "$PY bench/grupixel_torch.py bench --cell gru --hidden 256 --batch 64 --threads 2 --seconds 30 --min-steps 3 --sample-seconds 10"
# draw's peer runs ~3000 small ops per step: with the default (spinning) OpenMP wait policy
# PyTorch's 2 threads collapse to ~10 images/s on a loaded machine (docs/draw.md)
pair "draw h256 z100 T16 batch 64" "--model draw --hidden 256 --zdim 100 --steps-draw 16 --batch 64 --steps 10" \
    "$PY bench/draw_torch.py bench --threads 2 --batch 64 --hidden 256 --zdim 100 --steps-draw 16 --steps 10"
# convlstm: "images" are sequences of 10 + 10 frames of 64x64 (docs/convlstm.md)
pair "convlstm 2x64 k5 p4 10+10 batch 16" "--model convlstm --layers 2 --hidden 64 --height 64 --width 64 --batch 16 --steps 3" \
    "$PY bench/convlstm_torch.py bench --threads 2 --batch 16 --steps 3"
# the recurrent classifier (docs/renet.md): 2 layers of 64 per direction, 2x2 patches, LSTM
pair "renet lstm 2x64 patch 2 batch 64" "--model renet --layers 2 --hidden 64 --patch 2 --batch 64 --steps 10" \
    "$PY bench/renet_torch.py bench --threads 2 --batch 64 --layers 2 --hidden 64 --patch 2 --steps 10"
echo "raw results: $OUT"
