# Every gradient check and PyTorch reference fixture on the oneDNN back-end
# too (fp32): the test programs that hold them run again with LOOM_GEMM=onednn
# (which sets the back-end a thread and a model start with, src/core/gemm.h)
# and LOOM_GEMM_SMALL=0 LOOM_GEMM_LARGE=0 (so that the tests' small products, and
# any large one, reach oneDNN's matmul rather than go to OpenBLAS); their PASS/FAIL lines are passed on with an
# "onednn: " prefix.
. tests/cli/lib.sh
BIN=${LOOM%/loom}/tests
if ! $LOOM bench --model rowlstm --layers 1 --hidden 2 --batch 1 --steps 1 --gemm onednn --json >/dev/null 2>&1; then
    echo "(built without oneDNN: one back-end only)"
    exit 0
fi
for t in gemm layers seq attention reference ref_cond ref_latent output_grad rowlstm diagbilstm grupixel draw rae; do
    if [ ! -x "$BIN/test_$t" ]; then fail "onednn: test_$t" "$BIN/test_$t not built"; continue; fi
    LOOM_GEMM=onednn LOOM_GEMM_SMALL=0 LOOM_GEMM_LARGE=0 "$BIN/test_$t" >"$T/log" 2>&1
    rc=$?
    sed -n 's/^\(PASS\|FAIL\|SKIP\) /\1 onednn: /p' "$T/log"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL' "$T/log"; then fail "onednn: test_$t" "exit $rc: $(tail -3 "$T/log" | tr '\n' ' ')"; fi
    [ -s "$T/log" ] || fail "onednn: test_$t" "no output"
done
# Training on oneDNN reads the weights through repacked copies, a new generation per batch op:
# a run with them (LOOM_GEMM_PACK on, the default) ends where a run without them does. Stale
# copies (an op that kept the last op's generation) would train on the first step's weights.
D=$T/fm
idx_subset "$D" 64 16
for p in 1 0; do
    LOOM_GEMM_PACK=$p LOOM_GEMM_SMALL=0 LOOM_GEMM_LARGE=0 $LOOM train --model rowlstm --layers 1 --hidden 4 \
        --batch 16 --steps 12 --lr 1e-2 --gemm onednn --threads 1 --eval-every 0 --valid 16 --log-every 12 \
        --quiet --no-report --data "$D" --out "$T/pack$p" 2>"$T/err$p"
done
a=$(awk -F, '$1 == 12 {print $2}' "$T/pack1/metrics.csv" 2>/dev/null)
b=$(awk -F, '$1 == 12 {print $2}' "$T/pack0/metrics.csv" 2>/dev/null)
awk -v a="$a" -v b="$b" 'BEGIN {d = a - b; exit !(a > 0 && b > 0 && d < 1e-4 * b && d > -1e-4 * b)}' &&
    pass "onednn: training with repacked weights ends where plain reads do (12 steps)" ||
    fail "onednn: training with repacked weights ends where plain reads do (12 steps)" "bits/dim '$a' against '$b' $(cat "$T/err1" "$T/err0")"
