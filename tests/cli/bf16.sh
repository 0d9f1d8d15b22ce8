# --gemm and --precision (docs/performance.md): bf16 training gives the same
# bytes on 1, 2 and 3 threads, the checkpoint records the precision and resume
# keeps it; the oneDNN back-end's fp32 training too; bad values and a CPU
# without AVX512_BF16 are clear errors (exit 2).
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 120 20
GP="--model grupixel --hidden 8 --zdim 3 --batch 40 --valid 20 --eval-every 0 --quiet --data $D"
TL=${LOOM%/loom}/test/loom

rejects "--gemm bogus: exit 2" 2 "gemm" $LOOM train $GP --steps 1 --gemm bogus --out "$T/x"
[ -e "$T/x" ] && fail "--gemm bogus: no run directory" "$T/x was made" || pass "--gemm bogus: no run directory"
rejects "--precision fp16: exit 2" 2 "precision" $LOOM train $GP --steps 1 --precision fp16 --out "$T/x"
if $LOOM bench --model grupixel --hidden 4 --zdim 2 --batch 2 --steps 1 --gemm onednn --json >/dev/null 2>&1; then
    have_dnnl=1
else
    have_dnnl=0
    rejects "--gemm onednn without oneDNN: exit 2" 2 "without oneDNN" $LOOM train $GP --steps 1 --gemm onednn --out "$T/x"
fi
if [ -x "$TL" ]; then
    LOOM_FAULT_NO_BF16=1 rejects "--precision bf16 on a CPU without AVX512_BF16: exit 2" 2 "AVX512_BF16" \
        $TL train $GP --steps 1 --precision bf16 --out "$T/x"
fi
# oneDNN fp32 on any CPU; bf16 needs AVX512_BF16 (else each of its checks is a SKIP)
modes=
if [ "$have_dnnl" = 1 ]; then
    rejects "--gemm openblas --precision bf16: exit 2" 2 "onednn" \
        $LOOM train $GP --steps 1 --gemm openblas --precision bf16 --out "$T/x"
    modes="onednn-fp32"
    if grep -q avx512_bf16 /proc/cpuinfo; then
        modes="$modes onednn-bf16"
    else
        rejects "--precision bf16 on this CPU (no AVX512_BF16): exit 2" 2 "AVX512_BF16" \
            $LOOM train $GP --steps 1 --precision bf16 --out "$T/x"
    fi
fi
for mode in $modes; do
    set -- $(echo $mode | tr - ' ')
    tag=$1$2
    for t in 1 2 3; do
        ok "$tag: 4 steps on $t threads" $LOOM train $GP --steps 4 --threads $t --gemm $1 --precision $2 --out "$T/$tag$t"
    done
    same "$tag: 2 threads give the 1-thread checkpoint" "$T/${tag}1/checkpoint.safetensors" "$T/${tag}2/checkpoint.safetensors"
    same "$tag: 3 threads give the 1-thread checkpoint" "$T/${tag}1/checkpoint.safetensors" "$T/${tag}3/checkpoint.safetensors"
done
if [ "$have_dnnl" = 1 ] && ! grep -q avx512_bf16 /proc/cpuinfo; then
    for c in "onednnbf16: 4 steps on 1, 2, 3 threads" "onednnbf16: 2 and 3 threads give the 1-thread checkpoint" \
        "bf16: the run records its precision" "bf16: 2 steps + resume to 4 == 4 steps (resume keeps bf16)" \
        "bf16: --precision cannot change on resume" "bf16 and fp32 training give different weights" \
        "bf16 training tracks fp32 within 0.01 bits/dim after 4 steps" \
        "eval: fp32 by default, --precision bf16 within 0.01 bits/dim of it" \
        "eval --precision bf16: 2 threads give the 1-thread NLL" "sample --precision bf16: 2 threads give the 1-thread PNG" \
        "bf16, repacked weights: 2 threads give the 1-thread checkpoint" "bf16, repacked weights: the copies are made"; do
        skip "$c" "this CPU has no AVX512_BF16"
    done
fi
if [ "$have_dnnl" = 1 ] && grep -q avx512_bf16 /proc/cpuinfo; then
    if grep -q '"precision":[[:space:]]*"bf16"' "$T/onednnbf161/config.json" &&
        head -c 4096 "$T/onednnbf161/checkpoint.safetensors" | grep -q 'precision\\":\\t\\"bf16'; then
        pass "bf16: the run records its precision"
    else fail "bf16: the run records its precision" "no \"precision\": \"bf16\" in config.json and the checkpoint"; fi
    # 2 steps on 2 threads, resumed (without --precision) on 1 thread to 4 == 4 steps
    ok "bf16: 2 steps on 2 threads" $LOOM train $GP --steps 2 --threads 2 --precision bf16 --out "$T/r"
    ok "bf16: resume on 1 thread to 4" $LOOM train --resume "$T/r" --steps 4 --threads 1 --quiet
    same "bf16: 2 steps + resume to 4 == 4 steps (resume keeps bf16)" \
        "$T/onednnbf161/checkpoint.safetensors" "$T/r/checkpoint.safetensors"
    rejects "bf16: --precision cannot change on resume" 2 "precision" $LOOM train --resume "$T/r" --steps 5 --precision fp32
    # the weights differ (not only the config): the two runs' fp32 NLLs are not equal
    n1=$($LOOM eval "$T/onednnfp321" --json --threads 1 --limit 10 2>/dev/null | json_get bits_per_dim)
    n2=$($LOOM eval "$T/onednnbf161" --json --threads 1 --limit 10 2>/dev/null | json_get bits_per_dim)
    if [ -n "$n1" ] && [ -n "$n2" ] && [ "$n1" != "$n2" ]; then pass "bf16 and fp32 training give different weights ($n1 vs $n2 bits/dim)"
    else fail "bf16 and fp32 training give different weights" "'$n1' vs '$n2': bf16 did not reach the products"; fi
    # ... and bf16 training tracks fp32: after 4 steps the runs' NLLs agree within 0.01 bits/dim
    awk -v a="$n1" -v b="$n2" 'BEGIN {exit !(a > 0 && b > 0 && a - b < 0.01 && b - a < 0.01)}' &&
        pass "bf16 training tracks fp32 within 0.01 bits/dim after 4 steps ($n1 vs $n2)" ||
        fail "bf16 training tracks fp32 within 0.01 bits/dim after 4 steps" "$n1 vs $n2"
    # evaluation is fp32 unless asked: the bf16 run's NLL on the default and on openblas agree
    e1=$($LOOM eval "$T/onednnbf161" --json --threads 1 --gemm onednn 2>/dev/null | json_get bits_per_dim)
    e2=$($LOOM eval "$T/onednnbf161" --json --threads 1 --gemm onednn --precision bf16 2>/dev/null | json_get bits_per_dim)
    e3=$($LOOM eval "$T/onednnbf161" --json --threads 2 --gemm onednn --precision bf16 2>/dev/null | json_get bits_per_dim)
    awk -v a="$e1" -v b="$e2" 'BEGIN {exit !(a > 0 && b > 0 && a != b && (a - b < 0.01 && b - a < 0.01))}' &&
        pass "eval: fp32 by default, --precision bf16 within 0.01 bits/dim of it ($e1 vs $e2)" ||
        fail "eval: fp32 by default, --precision bf16 within 0.01 bits/dim of it" "$e1 vs $e2"
    [ -n "$e2" ] && [ "$e2" = "$e3" ] && pass "eval --precision bf16: 2 threads give the 1-thread NLL" ||
        fail "eval --precision bf16: 2 threads give the 1-thread NLL" "$e2 vs $e3"
    for t in 1 2; do
        $LOOM sample "$T/onednnbf161" --n 5 --seed 3 --threads $t --precision bf16 --out "$T/s$t.png" 2>/dev/null
    done
    [ -s "$T/s1.png" ] && same "sample --precision bf16: 2 threads give the 1-thread PNG" "$T/s1.png" "$T/s2.png" ||
        fail "sample --precision bf16: 2 threads give the 1-thread PNG" "no PNG"
    # the weights read through oneDNN's repacked copies (gemm_dnnl.c): LOOM_GEMM_SMALL=0 sends
    # this tiny model's products there too; same bits on 1 and 2 threads
    for t in 1 2; do
        LOOM_GEMM_SMALL=0 $LOOM train $GP --steps 3 --threads $t --precision bf16 --out "$T/pk$t" 2>/dev/null
    done
    same "bf16, repacked weights: 2 threads give the 1-thread checkpoint" "$T/pk1/checkpoint.safetensors" "$T/pk2/checkpoint.safetensors"
fi
# ... and the copies are read (bench counts the reorders on its one thread), in fp32 too,
# unless LOOM_GEMM_PACK=0
if [ "$have_dnnl" = 1 ]; then
    BP="--model grupixel --hidden 32 --zdim 3 --batch 8 --steps 2 --threads 1 --gemm onednn --json"
    precs=fp32
    grep -q avx512_bf16 /proc/cpuinfo && precs="fp32 bf16"
    for p in $precs; do
        r1=$(LOOM_GEMM_SMALL=0 $LOOM bench $BP --precision $p 2>/dev/null | json_get onednn_repacks)
        r0=$(LOOM_GEMM_SMALL=0 LOOM_GEMM_PACK=0 $LOOM bench $BP --precision $p 2>/dev/null | json_get onednn_repacks)
        [ -n "$r1" ] && [ "$r1" -gt 0 ] && [ "$r0" = 0 ] &&
            pass "$p, repacked weights: the copies are made ($r1 reorders; none with LOOM_GEMM_PACK=0)" ||
            fail "$p, repacked weights: the copies are made" "'$r1' reorders, '$r0' with LOOM_GEMM_PACK=0"
    done
    for t in 1 2; do
        LOOM_GEMM_SMALL=0 $LOOM train $GP --steps 3 --threads $t --gemm onednn --out "$T/pf$t" 2>/dev/null
    done
    same "fp32, repacked weights: 2 threads give the 1-thread checkpoint" "$T/pf1/checkpoint.safetensors" "$T/pf2/checkpoint.safetensors"
fi

# ---- bench --peak: the per-core limit in each mode this machine has, and why not the others
rejects "bench --peak 10: exit 2" 2 "peak" $LOOM bench --peak 10
$LOOM bench --peak 128 --json >"$T/peak.json" 2>"$T/err"
ob=$(json_get openblas_fp32_gflops <"$T/peak.json")
if [ "$(wc -l <"$T/peak.json")" -eq 1 ] && grep -q '"kind": "peak"' "$T/peak.json" &&
    awk -v g="$ob" 'BEGIN {exit !(g > 0)}'; then pass "bench --peak --json: one line, openblas fp32 GFLOP/s > 0 ($ob)"
else fail "bench --peak --json: one line, openblas fp32 GFLOP/s > 0" "$(cat "$T/peak.json" "$T/err")"; fi
for mode in onednn_fp32 onednn_bf16; do
    g=$(json_get ${mode}_gflops <"$T/peak.json")
    if [ -n "$g" ] && ! grep -q "${mode}_unavailable" "$T/peak.json" && awk -v g="$g" 'BEGIN {exit !(g > 0)}'; then
        pass "bench --peak: $mode measured ($g GFLOP/s)"
    elif [ -z "$g" ] && grep -q "\"${mode}_unavailable\": \"[a-z]" "$T/peak.json"; then
        pass "bench --peak: $mode not measured, and the line says why"
    else fail "bench --peak: $mode measured or its absence explained" "$(cat "$T/peak.json")"; fi
done
if [ "$have_dnnl" = 1 ]; then
    grep -q onednn_fp32_gflops "$T/peak.json" && pass "bench --peak: oneDNN fp32 measured where oneDNN is built in" ||
        fail "bench --peak: oneDNN fp32 measured where oneDNN is built in" "$(cat "$T/peak.json")"
fi
if grep -q avx512_bf16 /proc/cpuinfo; then
    grep -q onednn_bf16_gflops "$T/peak.json" && pass "bench --peak: bf16 measured on an AVX512_BF16 CPU" ||
        fail "bench --peak: bf16 measured on an AVX512_BF16 CPU" "$(cat "$T/peak.json")"
else
    grep -q '"onednn_bf16_unavailable": "[^"]*AVX512_BF16' "$T/peak.json" && pass "bench --peak: no bf16 here, said so" ||
        fail "bench --peak: no bf16 here, said so" "$(cat "$T/peak.json")"
fi

# ---- OpenBLAS's core (cli/main.c): where OpenBLAS takes an AVX2 or AVX-512 CPU for a
# generic one (Debian's 0.3.21 on Intel family 6 model 207: Prescott, 4-5x slower),
# loom runs itself again with the right core; a core the user named is kept
core_of() { sed -n 's/.*"blas_core": *"\([A-Za-z0-9_]*\)".*/\1/p'; }
want=
if grep -q -w avx512bw /proc/cpuinfo && grep -q -w avx512vl /proc/cpuinfo && grep -q -w avx512dq /proc/cpuinfo; then want=SkylakeX
elif grep -q -w avx2 /proc/cpuinfo && grep -q -w fma /proc/cpuinfo; then want=Haswell; fi
c=$(env -u OPENBLAS_CORETYPE $LOOM bench --peak 64 --json 2>/dev/null | core_of)
case "$want:$c" in
    :?*) pass "OpenBLAS core: $c (this CPU has no AVX2, nothing to correct)" ;;
    *:Prescott | *:Core2 | *:Penryn | *:Nehalem | *:Sandybridge | *:Barcelona | *:Opteron* | *:Bulldozer | *:Atom | *:)
        fail "OpenBLAS core: not a generic fallback on a CPU with AVX2 (want $want)" "'$c'" ;;
    *) pass "OpenBLAS core: $c, not a generic fallback on a CPU with AVX2" ;;
esac
if [ -n "$want" ]; then
    c=$(OPENBLAS_CORETYPE=Haswell $LOOM bench --peak 64 --json 2>/dev/null | core_of)
    [ "$c" = Haswell ] && pass "OpenBLAS core: OPENBLAS_CORETYPE=Haswell is kept" ||
        fail "OpenBLAS core: OPENBLAS_CORETYPE=Haswell is kept" "'$c'"
    if [ -x "$TL" ]; then
        # the test build's hook pretends OpenBLAS fell back: the re-run names the core
        c=$(env -u OPENBLAS_CORETYPE LOOM_FAULT_BLAS_GENERIC=1 $TL bench --peak 64 --json 2>/dev/null | core_of)
        [ "$c" = "$want" ] && pass "OpenBLAS core: a generic pick is replaced by $want" ||
            fail "OpenBLAS core: a generic pick is replaced by $want" "'$c'"
    fi
fi
