#!/bin/sh
# Runs every test binary given as an argument and every tests/cli/*.sh script,
# counts PASS/FAIL lines, and ends with "N passed, N failed" (then ", N skipped"
# when some checks printed SKIP: what this machine cannot test, e.g. bf16 on a
# CPU without AVX512_BF16; a skip is neither a pass nor a failure).
# A binary that crashes or exits non-zero without printing a FAIL counts as one failure.
: "${LOOM:=build/loom}"
export LOOM
# The test binaries call the internal model functions, which leave OpenBLAS's
# thread count to the program (the CLI sets 1): single-threaded BLAS inside the
# batch shards here too, unless the caller chose otherwise.
: "${OPENBLAS_NUM_THREADS:=1}"
export OPENBLAS_NUM_THREADS
log=$(mktemp); pass=0; fail=0; skip=0
for t in "$@" tests/cli/*.sh; do
    [ -e "$t" ] || continue
    case "$t" in */lib.sh) continue ;; esac
    case "$t" in *.sh) cmd="sh $t" ;; *) cmd="$t" ;; esac
    start=$(date +%s)
    $cmd >"$log" 2>&1; rc=$?
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
    grep '^FAIL ' "$log"
    k=$(grep -c '^SKIP ' "$log")
    grep '^SKIP ' "$log"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $t: exited with status $rc"; tail -5 "$log"; f=1
    fi
    sk=; [ "$k" -gt 0 ] && sk=", $k skipped"
    echo "  $t: $p passed, $f failed$sk ($(( $(date +%s) - start ))s)"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
done
rm -f "$log"
# the closing line stays "N passed, N failed" (README); skips, each saying why above, before it
[ "$skip" -gt 0 ] && echo "$skip checks skipped: this machine cannot run them (the SKIP lines say why)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
