#!/bin/sh
# The matrix-product modes side by side (docs/performance.md): for each model's
# reference configuration, loom's training images/s with OpenBLAS fp32, oneDNN
# fp32 and oneDNN bf16, and the PyTorch peer in fp32 and under
# torch.autocast("cpu", dtype=torch.bfloat16), each peer mode with OpenMP's
# default wait policy and with OMP_WAIT_POLICY=PASSIVE (the faster kept).
# Interleaved, REPS times (3), medians; the ratio is loom's best mode over the
# peer's best. Usage: bench/modes.sh build/loom; ONLY=text as in bench.sh.
# Raw lines: bench/modes.jsonl (OUT=file to write elsewhere).
# On a CPU without AVX512_BF16 loom's bf16 mode is skipped (loom refuses it),
# and so is the peer's autocast, which PyTorch then emulates (measured on a
# Zen 3: grupixel > 9 min for 3 steps; AUTOCAST=1 runs it anyway).
LOOM=${1:-build/loom}
. "$(dirname "$0")/blas_core.sh"
[ -n "$OPENBLAS_CORETYPE" ] && echo "OpenBLAS core (loom and the peers): $OPENBLAS_CORETYPE"
REPS=${REPS:-3}
ONLY=${ONLY:-}
BASE=${BASE:-} # another loom binary to time beside LOOM (an A/B of a change): not in the ratio
# a loaded machine's shortcut: only some of loom's fp32 modes, only some OpenMP policies
LMODES=${LMODES:-"openblas onednn"}
POLICIES=${POLICIES:-"default PASSIVE"}
PY=/usr/bin/python3
OUT=${OUT:-bench/modes.jsonl}
if grep -q avx512_bf16 /proc/cpuinfo; then BF16=1; else BF16=0; fi
AUTOCAST=${AUTOCAST:-$BF16}
: >"$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
get() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }

# one NAME TAG CMD...: run CMD once, its JSON line tagged, appended to $TMP/TAG
one() {
    name=$1 tag=$2
    shift 2
    "$@" 2>/dev/null | sed "s/^{/{\"config\": \"$name\", \"mode\": \"$tag\", /" | tee -a "$OUT" >>"$TMP/$tag"
}

modes() {
    name=$1 largs=$2 peer=$3 acs=${4:-"_ --autocast"}
    case "$name" in *"$ONLY"*) ;; *) return ;; esac
    [ "$AUTOCAST" = 1 ] || acs=_
    rm -f "$TMP"/*
    i=0
    while [ $i -lt "$REPS" ]; do
        for g in $LMODES; do one "$name" ${g}_fp32 $LOOM bench $largs --gemm $g --json; done
        if [ -n "$BASE" ]; then
            one "$name" base_openblas_fp32 $BASE bench $largs --gemm openblas --json
            one "$name" base_onednn_fp32 $BASE bench $largs --gemm onednn --json
        fi
        [ $BF16 = 1 ] && one "$name" onednn_bf16 $LOOM bench $largs --gemm onednn --precision bf16 --json
        [ "$peer" = - ] && acs= # no peer to time
        for ac in $acs; do
            [ "$ac" = _ ] && ac=
            for pol in $POLICIES; do
                tag=torch${ac:+_autocast}_$pol
                if [ $pol = default ]; then one "$name" $tag env -u OMP_WAIT_POLICY $peer $ac
                else one "$name" $tag env OMP_WAIT_POLICY=PASSIVE $peer $ac; fi
            done
        done
        i=$((i + 1))
    done
    echo "== $name ($(date -u '+%H:%M'), load $(cut -d' ' -f1-3 /proc/loadavg)), medians of $REPS"
    [ $BF16 = 1 ] || echo "  onednn_bf16: skipped, this CPU has no AVX512_BF16 (loom refuses --precision bf16)"
    [ "$AUTOCAST" = 1 ] || case "$4" in _) ;; *) echo "  torch_autocast: skipped, this CPU has no AVX512_BF16 (PyTorch would emulate bf16; AUTOCAST=1 runs it)" ;; esac
    best_l=0 best_p=0
    for tag in openblas_fp32 onednn_fp32 onednn_bf16 base_openblas_fp32 base_onednn_fp32 torch_default torch_PASSIVE torch_autocast_default torch_autocast_PASSIVE; do
        [ -s "$TMP/$tag" ] || continue
        t=$(get train_images_per_s <"$TMP/$tag" | median)
        s=$(get sample_ms_per_image <"$TMP/$tag" | median)
        echo "  $tag: train $t images/s, sample ${s:-n/a} ms/image"
        case $tag in
            base*) ;;
            torch*) best_p=$(awk -v a="$best_p" -v b="$t" 'BEGIN {print (b > a) ? b : a}') ;;
            *) best_l=$(awk -v a="$best_l" -v b="$t" 'BEGIN {print (b > a) ? b : a}') ;;
        esac
    done
    awk -v a="$best_l" -v b="$best_p" -v n="$name" 'BEGIN {if (b > 0) printf "  %s ratio: loom best / torch best = %.2fx\n", n, a / b}'
}

modes "grupixel gru 1x256 batch 64" "--model grupixel --cell gru --layers 1 --hidden 256 --batch 64 --steps 10" \
    "$PY bench/grupixel_torch.py bench --cell gru --hidden 256 --batch 64 --threads 2 --seconds 15 --min-steps 3 --sample-seconds 5"
modes "draw h256 z100 T16 batch 64" "--model draw --hidden 256 --zdim 100 --steps-draw 16 --batch 64 --steps 10" \
    "$PY bench/draw_torch.py bench --threads 2 --batch 64 --hidden 256 --zdim 100 --steps-draw 16 --steps 10"
# the PixelRNN peers under autocast run their convolutions in bf16 far slower than in
# fp32 (measured: rowlstm 0.8 images/s, diagbilstm 167 s per step): fp32 only here
modes "rowlstm 4x32 batch 32" "--model rowlstm --layers 4 --hidden 32 --batch 32 --steps 10" \
    "$PY bench/rowlstm_torch.py bench --threads 2 --batch 32 --layers 4 --hidden 32 --steps 10 --sample-pixels 112" _
modes "diagbilstm 7x16 batch 16" "--model diagbilstm --layers 7 --hidden 16 --batch 16 --steps 5" \
    "$PY bench/diagbilstm_torch.py bench --threads 2 --batch 16 --layers 7 --hidden 16 --steps 3 --forward-reps 2 --sample-pixels 1" _
# the recurrent classifier: its peer has no --autocast
modes "renet lstm 2x64 patch 2 batch 64" "--model renet --layers 2 --hidden 64 --patch 2 --batch 64 --steps 10" \
    "$PY bench/renet_torch.py bench --threads 2 --batch 64 --layers 2 --hidden 64 --patch 2 --steps 10" _
modes "convlstm 2x64 k5 p4 10+10 batch 16" "--model convlstm --layers 2 --hidden 64 --height 64 --width 64 --batch 16 --steps 3" \
    "$PY bench/convlstm_torch.py bench --threads 2 --batch 16 --steps 3"
# rae: bench/rae_torch.py makes the reference fixture only, no peer to time: loom's modes alone
modes "rae h256 z32 variational batch 64" "--model rae --hidden 256 --zdim 32 --variational --batch 64 --steps 10" -
echo "raw results: $OUT"
