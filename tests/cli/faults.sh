# Faults survived (issue 5, docs/robustness.md): SIGKILL at random moments of
# training and checkpoint writes, SIGINT/SIGTERM, a full disk (file size limit),
# a NaN gradient, and absurd numbers in flags. Tiny data, tiny model: seconds.
. tests/cli/lib.sh

D=$T/data
idx_subset "$D" 120 20
DATA="--data $D --valid 20 --eval-every 0 --quiet"
TINY="$DATA --layers 1 --hidden 4 --batch 4 --threads 1"
# the thread count is not part of a run's config (any gives the same bits: threads.sh)
RES="--threads 1 --quiet"
# the LOOM_FAULT_* hooks exist only in the test build (make builds it next to $LOOM)
HOOKED=${LOOM_HOOKED:-$(dirname "$LOOM")/test/loom}
[ -x "$HOOKED" ] && pass "test hooks: the test build $HOOKED exists" ||
    fail "test hooks: the test build exists" "$HOOKED missing: make $(basename "$(dirname "$LOOM")")/test/loom"
# the libraries when built (make test builds libloom.a, make all libloom.so too)
for f in "$LOOM" "$(dirname "$LOOM")/libloom.a" "$(dirname "$LOOM")/libloom.so"; do
    [ "$f" = "$LOOM" ] || [ -e "$f" ] || continue
    if [ -e "$f" ] && ! grep -q LOOM_FAULT "$f"; then pass "test hooks: $(basename "$f") has no LOOM_FAULT_* hook"
    else fail "test hooks: $(basename "$f") has no LOOM_FAULT_* hook" "missing or has one"; fi
done
LOOM_FAULT_KILL_WRITE=5 LOOM_FAULT_NAN_STEP=1 "$LOOM" train $TINY --steps 2 --checkpoint-every 1 \
    --out "$T/nohook" >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && ! grep -q "non-finite" "$T/err" && [ ! -e "$T/nohook/checkpoint.safetensors.tmp" ] &&
    "$LOOM" info "$T/nohook" >/dev/null 2>&1; then
    pass "test hooks: $(basename "$LOOM") ignores LOOM_FAULT_KILL_WRITE and LOOM_FAULT_NAN_STEP"
else fail "test hooks: $(basename "$LOOM") ignores LOOM_FAULT_KILL_WRITE and LOOM_FAULT_NAN_STEP" "exit $rc: $(cat "$T/err")"; fi

# le64 N: N as 8 little-endian bytes
le64() {
    n=$1 i=0 s=""
    while [ $i -lt 8 ]; do s="$s$(printf '\\%03o' $((n & 255)))"; n=$((n >> 8)); i=$((i + 1)); done
    printf "$s"
}
# patch_meta IN OUT SED_EXPR: IN with its safetensors header (one line of JSON)
# rewritten by sed, re-padded and its length field fixed; the data copied as is
patch_meta() {
    hlen=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    head -c $((8 + hlen)) "$1" | tail -c "$hlen" | sed "$3" >"$2.hdr"
    n=$(wc -c <"$2.hdr")
    while [ $((n % 8)) -ne 0 ]; do printf ' ' >>"$2.hdr"; n=$((n + 1)); done
    { le64 "$n"; cat "$2.hdr"; tail -c +$((9 + hlen)) "$1"; } >"$2"
    rm -f "$2.hdr"
}

# step_of RUN: the step `loom info` reports ("step N of M"), empty when it cannot load
step_of() { "$LOOM" info "$1" 2>/dev/null | sed -n 's/^step *\([0-9]*\) of.*/\1/p'; }

# ---------------------------------------------------------------- SIGKILL
# Reference: 40 uninterrupted steps, a checkpoint after every one.
ok "kill: reference run" "$LOOM" train $TINY --steps 40 --checkpoint-every 1 --out "$T/ref"

# The same run killed at random moments (printed, and reproducible with
# FAULTS_SEED), resumed after each kill. Checkpoints are written after every
# step, so most kills land in or near a checkpoint write.
seed=${FAULTS_SEED:-$(date +%s)}
delays=$(awk -v s="$seed" 'BEGIN { srand(s); for (i = 0; i < 8; i++) printf "%.2f ", 0.02 + rand() * 0.6 }')
echo "kill: seed $seed, delays $delays"
R=$T/killed
last=0 bad="" midwrite=0
for d in $delays; do
    rm -f "$R/checkpoint.safetensors.tmp" # so that the count below is exact
    if [ -e "$R/checkpoint.safetensors" ]; then
        "$LOOM" train --resume "$R" --steps 40 $RES 2>>"$T/kill.err" &
    else
        "$LOOM" train $TINY --steps 40 --checkpoint-every 1 --out "$R" 2>>"$T/kill.err" &
    fi
    pid=$!
    sleep "$d"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # a temp file left behind: this kill landed in the middle of a checkpoint write
    [ -e "$R/checkpoint.safetensors.tmp" ] && midwrite=$((midwrite + 1))
    [ -e "$R/checkpoint.safetensors" ] || continue  # killed before the run existed
    s=$(step_of "$R")
    if [ -z "$s" ]; then bad="$bad; after a kill at ${d}s the checkpoint does not load: $("$LOOM" info "$R" 2>&1 | head -1)"
    elif [ "$s" -lt "$last" ]; then bad="$bad; step went back from $last to $s"
    else last=$s; fi
done
echo "kill: $midwrite of 8 kills landed during a checkpoint write"
if [ -z "$bad" ]; then pass "kill: after each of 8 SIGKILLs the checkpoint loads and no step is lost (last at step $last)"
else fail "kill: checkpoint after SIGKILL" "$bad"; fi
if [ -e "$R/checkpoint.safetensors" ]; then
    ok "kill: resume to the end" "$LOOM" train --resume "$R" --steps 40 $RES
else
    ok "kill: start again (every kill came before the first checkpoint)" \
        "$LOOM" train $TINY --steps 40 --checkpoint-every 1 --out "$R"
fi
# bit-identical resume: the killed-and-resumed run ends with the same weights,
# Adam moments, RNG and data position as the uninterrupted one
same "kill: killed and resumed run == uninterrupted run (byte-identical checkpoint)" \
    "$R/checkpoint.safetensors" "$T/ref/checkpoint.safetensors"

# Deterministic crashes inside checkpoint writes: LOOM_FAULT_KILL_WRITE=N makes
# the writer SIGKILL its own process after N bytes of the temp file (header,
# first tensor, middle, last byte); each time the old checkpoint must load.
R=$T/torn
"$LOOM" train $TINY --steps 6 --checkpoint-every 1 --out "$R" 2>/dev/null
size=$(wc -c <"$R/checkpoint.safetensors")
bad=""
for n in 5 300 $((size / 2)) $((size - 1)); do
    before=$(step_of "$R")
    LOOM_FAULT_KILL_WRITE=$n "$HOOKED" train --resume "$R" --steps 40 $RES 2>/dev/null; rc=$?
    after=$(step_of "$R")
    if [ "$rc" -ne 137 ]; then bad="$bad; N=$n: exit $rc, not killed"
    elif [ ! -e "$R/checkpoint.safetensors.tmp" ]; then bad="$bad; N=$n: no torn temp file"
    elif [ -z "$after" ] || [ "$after" != "$before" ]; then bad="$bad; N=$n: step '$before' -> '$after'"
    fi
done
[ -z "$bad" ] && pass "torn write: killed at 4 points of a checkpoint write, the previous checkpoint loads" ||
    fail "torn write: the previous checkpoint loads" "$bad"
ok "torn write: resume to the end" "$LOOM" train --resume "$R" --steps 40 $RES
same "torn write: resumed run == uninterrupted run" "$R/checkpoint.safetensors" "$T/ref/checkpoint.safetensors"

# ---------------------------------------------------------------- SIGINT / SIGTERM
# wait_started RUN: until the run has logged its first line (signal handlers are in place)
wait_started() {
    i=0
    while [ ! -s "$1/train.log" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.3
}
for sig in INT TERM; do
    R=$T/sig$sig
    "$LOOM" train $TINY --steps 100000 --checkpoint-every 0 --out "$R" 2>"$T/sig.err" &
    pid=$!
    wait_started "$R"
    kill -$sig "$pid"
    wait "$pid"; rc=$?
    s=$(step_of "$R")
    if [ "$rc" -eq 0 ] && [ -n "$s" ] && [ "$s" -gt 0 ] && [ "$s" -lt 100000 ] &&
        grep -q "stopped by signal" "$T/sig.err"; then
        pass "SIG$sig: checkpoint saved at step $s, exit 0"
    else
        fail "SIG$sig: checkpoint saved and exit 0" "exit $rc, step '$s': $(tail -2 "$T/sig.err" | tr '\n' ' ')"
    fi
    ok "SIG$sig: the run resumes" "$LOOM" train --resume "$R" --steps $((s + 2)) $RES
done

# ---------------------------------------------------------------- full disk
# A file size limit (RLIMIT_FSIZE) smaller than the checkpoint: writing it fails
# with EFBIG like on a full disk. loom ignores SIGXFSZ, so it gets the error.
R=$T/full
"$LOOM" train $TINY --steps 4 --out "$R" 2>/dev/null
cp "$R/checkpoint.safetensors" "$T/full.before"
sh -c "ulimit -f 20; exec \"$LOOM\" train --resume \"$R\" --steps 8 $RES" >"$T/out" 2>"$T/err"; rc=$?
# (the final validation line comes before it: --quiet keeps evaluation lines)
if [ "$rc" -eq 1 ] && [ "$(grep -c '^loom' "$T/err")" -eq 1 ] &&
    tail -n 1 "$T/err" | grep -q "^loom: .*File too large.*previous one is kept"; then
    pass "full disk: one clear line, exit 1"
else
    fail "full disk: one clear line, exit 1" "exit $rc: $(cat "$T/err")"
fi
same "full disk: the previous checkpoint is kept, byte for byte" "$R/checkpoint.safetensors" "$T/full.before"
if [ -e "$R/checkpoint.safetensors.tmp" ]; then fail "full disk: no temp file left" "$R/checkpoint.safetensors.tmp"
else pass "full disk: no temp file left"; fi
ok "full disk: the run resumes once there is room" "$LOOM" train --resume "$R" --steps 8 $RES

# ---------------------------------------------------------------- NaN
R=$T/nan
LOOM_FAULT_NAN_STEP=3 "$HOOKED" train $TINY --steps 6 --checkpoint-every 1 --out "$R" >"$T/out" 2>"$T/err"; rc=$?
if [ "$rc" -eq 0 ] && grep -q "step 3: non-finite gradient.*update skipped" "$T/err"; then
    pass "nan: a NaN gradient at step 3 is reported and the step skipped"
else
    fail "nan: a NaN gradient at step 3 is reported and the step skipped" "exit $rc: $(cat "$T/err")"
fi
# the loader rejects non-finite parameters, so loading proves none was written
ok "nan: the checkpoint loads (it holds no NaN)" "$LOOM" info "$R"
grep -q "update skipped" "$R/train.log" && pass "nan: the skip is in train.log" ||
    fail "nan: the skip is in train.log" "$(cat "$R/train.log")"

# ---------------------------------------------------------------- crafted resume state
# The resume state in a checkpoint's metadata is input too. A data position near
# 2^64 used to wrap around and crash `train --resume` (segmentation fault).
G=$T/crafted
mkdir -p "$G"
cp "$T/nan/config.json" "$G/"
for kv in 'index:18446744073709551614' 'index:104' 'step:-1' 'adam_t:99999999999999999999' 'epoch:1e3'; do
    k=${kv%%:*} v=${kv#*:}
    patch_meta "$T/nan/checkpoint.safetensors" "$G/checkpoint.safetensors" "s/\"$k\":\"[^\"]*\"/\"$k\":\"$v\"/"
    if [ "$k" = index ] && [ "$v" = 104 ]; then pat="beyond the 100 training images"; else pat="metadata \"$k\""; fi
    rejects "crafted state: $k = $v is refused on resume" 2 "$pat" "$LOOM" train --resume "$G" --steps 50 $RES
done

# ---------------------------------------------------------------- labels beyond the model's classes
# A conditional model trained on one class, then asked to complete test images
# of ten classes: the class table used to be read out of range, silently.
C1=$T/oneclass
mkdir -p "$C1"
cp "$D"/*-images-idx3-ubyte "$C1/"
{ printf '\000\000\010\001'; be32 120; head -c 120 /dev/zero; } >"$C1/train-labels-idx1-ubyte"
{ printf '\000\000\010\001'; be32 20; head -c 20 /dev/zero; } >"$C1/t10k-labels-idx1-ubyte"
ok "labels: train a conditional model on one class" \
    "$LOOM" train --data "$C1" --valid 20 --eval-every 0 --quiet --layers 1 --hidden 4 --batch 4 \
    --threads 1 --steps 2 --conditional --out "$T/cond"
rejects "labels: complete with ten-class data is refused" 2 "label 9 .* outside the model's 1 classes" \
    "$LOOM" complete "$T/cond" --data "$D" --out "$T/c.png"
rejects "labels: eval with ten-class data is refused" 2 "labels below 1" \
    "$LOOM" eval "$T/cond" --data "$D"

# ---------------------------------------------------------------- bad numbers in flags
rejects "flags: --batch 0" 2 "batch 0 is out of range" "$LOOM" train $DATA --batch 0 --out "$T/x"
rejects "flags: --lr -1" 2 "lr -1 is out of range" "$LOOM" train $TINY --lr -1 --out "$T/x"
rejects "flags: --lr nan" 2 "is not a number" "$LOOM" train $TINY --lr nan --out "$T/x"
rejects "flags: --lr 1e999" 2 "is not a number" "$LOOM" train $TINY --lr 1e999 --out "$T/x"
rejects "flags: --threads 100000" 2 "threads 100000 is out of range" "$LOOM" train $DATA --threads 100000 --out "$T/x"
rejects "flags: --layers 10000" 2 "layers 10000 is out of range" "$LOOM" train $DATA --layers 10000 --out "$T/x"
rejects "flags: --steps 2^70" 2 "too large" "$LOOM" train $TINY --steps 1180591620717411303424 --out "$T/x"
rejects "flags: --seed -1" 2 "not a non-negative integer" "$LOOM" train $TINY --seed -1 --out "$T/x"
rejects "flags: a newline in a flag stays one line" 2 "unknown flag" "$LOOM" train "$(printf -- '--a\nb')"
# sizes whose product is absurd: refused from the estimate, before allocating, and
# under a 1 GB address-space limit, so a large allocation would have failed instead
vlimit="ulimit -v 1000000;"
# ASan reserves terabytes of address space: a sanitized binary cannot start under the limit
sh -c "$vlimit exec \"$LOOM\" --help" >/dev/null 2>&1 || vlimit=""
for sizes in "--hidden 4096 --layers 64" "--hidden 2048 --layers 32" "--hidden 1024 --layers 64 --threads 256"; do
    rejects "flags: $sizes refused before allocating" 2 "needs about .* of memory" \
        sh -c "$vlimit exec \"$LOOM\" train $DATA --out \"$T/x\" $sizes"
done
# activations count too: 100 images of 28x28 at hidden 256 need more than 64 MB
rejects "flags: activations over LOOM_MEM_LIMIT_MB" 2 "needs about .* of memory" \
    env LOOM_MEM_LIMIT_MB=64 "$LOOM" train $DATA --hidden 256 --batch 100 --out "$T/x"
rejects "flags: sample --n 30000 over LOOM_MEM_LIMIT_MB" 2 "a batch this large .* needs about" \
    env LOOM_MEM_LIMIT_MB=16 "$LOOM" sample "$T/nan" --n 30000 --out "$T/s.png"
# fewer timed steps than bench's 3 forward repetitions (a heap overflow under ASan)
ok "flags: bench --steps 1" "$LOOM" bench --layers 1 --hidden 2 --batch 2 --steps 1 --height 4 --width 4 --threads 1
rejects "flags: bench with the largest sizes" 2 "needs about .* of memory" \
    "$LOOM" bench --height 4096 --width 4096 --hidden 4096 --layers 64 --batch 65536 --threads 256
[ -e "$T/x" ] && fail "flags: no run directory for a refused run" "$T/x exists" ||
    pass "flags: no run directory for a refused run"
