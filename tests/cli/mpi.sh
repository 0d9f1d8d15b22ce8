# Data-parallel training over MPI (docs/distributed.md): 2 and 3 ranks on
# loopback, 1 thread each, give the checkpoint of one process on 1 and 2
# threads, byte for byte; a run resumes on another rank count; a rank that
# dies stops the job with a non-zero exit and leaves the last checkpoint,
# from which the run resumes to the uninterrupted bytes; bad rank counts and
# launchers are refused. Skipped (one SKIP line) without MPI.
. tests/cli/lib.sh

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI's own allocations are not loom's leaks (make test SANITIZE=1)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
D=$T/data
idx_subset "$D" 300 20

if ! ldd "$LOOM" 2>/dev/null | grep -q libmpi; then
    # a loom without MPI started as one of several ranks must not train (each
    # copy would write the same run directory)
    rejects "mpi: a loom built without MPI refuses to run as one of 2 ranks" 2 "built without MPI" \
        env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 $LOOM train --layers 1 --hidden 4 --data "$D" \
        --steps 1 --batch 4 --quiet --out "$T/nompi"
    echo "SKIP mpi: $LOOM is built without MPI (apt-get install openmpi-bin libopenmpi-dev; make MPI=1)"
    exit 0
fi
if ! command -v mpirun >/dev/null; then
    echo "SKIP mpi: no mpirun (apt-get install openmpi-bin)"
    exit 0
fi
HOOKED=${LOOM_HOOKED:-$(dirname "$LOOM")/test/loom}
MPIRUN="mpirun --allow-run-as-root --oversubscribe"

# Batches that are not a power of two of micro-shards, so that rank ranges
# cross the tree's nodes: rowlstm 44 = 6 micro-shards of 8 (2 ranks: 3 + 3,
# covered by 2 nodes each; 3 ranks: 2 + 2 + 2), draw 72 = 3 of 32 (1 + 2).
# --valid 100 is 3 evaluation chunks of 44, split over the ranks too.
ROW="--model rowlstm --layers 1 --hidden 4 --batch 44 --valid 100 --eval-every 3 --quiet --data $D"
DRAW="--model draw --hidden 8 --zdim 3 --steps-draw 3 --read-n 2 --write-n 2 --batch 72 --valid 20 --eval-every 0 --quiet --data $D"

# metrics RUN: step, train and valid bits/dim of every LOG (not the speeds)
metrics() { cut -d, -f1-3 "$1/metrics.csv"; }

for net in ROW DRAW; do
    eval "args=\$$net"
    ok "mpi $net: 6 steps, 1 process, 1 thread" $LOOM train $args --steps 6 --threads 1 --out "$T/${net}1"
    ok "mpi $net: 6 steps, 1 process, 2 threads" $LOOM train $args --steps 6 --threads 2 --out "$T/${net}t2"
    same "mpi $net: 2 threads give the 1-thread checkpoint" "$T/${net}1/checkpoint.safetensors" \
        "$T/${net}t2/checkpoint.safetensors"
    ok "mpi $net: 6 steps on 2 ranks x 1 thread" $MPIRUN -np 2 $LOOM train $args --steps 6 --threads 1 --out "$T/${net}r2"
    same "mpi $net: 2 ranks give the 1-process checkpoint (1 thread)" "$T/${net}1/checkpoint.safetensors" \
        "$T/${net}r2/checkpoint.safetensors"
    same "mpi $net: 2 ranks give the 1-process checkpoint (2 threads)" "$T/${net}t2/checkpoint.safetensors" \
        "$T/${net}r2/checkpoint.safetensors"
    metrics "$T/${net}1" >"$T/m1"
    metrics "$T/${net}r2" >"$T/m2"
    same "mpi $net: 2 ranks log the 1-process losses and validation" "$T/m1" "$T/m2"
    n=$(grep -c '^new run' "$T/${net}r2/train.log")
    [ "$n" = 1 ] && pass "mpi $net: only rank 0 writes the log" || fail "mpi $net: only rank 0 writes the log" "$n 'new run' lines"
    grep -q "^data parallel: 2 ranks" "$T/${net}r2/train.log" && pass "mpi $net: the log names the ranks" ||
        fail "mpi $net: the log names the ranks" "$(head -3 "$T/${net}r2/train.log")"
    # resume across rank counts: 3 steps on 2 ranks, then to 6 on one process
    ok "mpi $net: 3 steps on 2 ranks" $MPIRUN -np 2 $LOOM train $args --steps 3 --threads 1 --out "$T/${net}x"
    ok "mpi $net: resumed on 1 process to 6" $LOOM train --resume "$T/${net}x" --steps 6 --threads 1 --quiet
    same "mpi $net: 3 steps (2 ranks) + resume (1 process) to 6 == 6 steps" "$T/${net}1/checkpoint.safetensors" \
        "$T/${net}x/checkpoint.safetensors"
done

ok "mpi ROW: 6 steps on 3 ranks x 1 thread" $MPIRUN -np 3 $LOOM train $ROW --steps 6 --threads 1 --out "$T/ROWr3"
same "mpi ROW: 3 ranks give the 1-process checkpoint" "$T/ROW1/checkpoint.safetensors" "$T/ROWr3/checkpoint.safetensors"
ok "mpi ROW: 6 steps on 2 ranks x 2 threads" $MPIRUN -np 2 $LOOM train $ROW --steps 6 --threads 2 --out "$T/ROWr2t2"
same "mpi ROW: 2 ranks x 2 threads give the 1-process checkpoint" "$T/ROW1/checkpoint.safetensors" \
    "$T/ROWr2t2/checkpoint.safetensors"
ok "mpi ROW: 3 steps on 1 process" $LOOM train $ROW --steps 3 --threads 2 --out "$T/ROWy"
ok "mpi ROW: resumed on 3 ranks to 6" $MPIRUN -np 3 $LOOM train --resume "$T/ROWy" --steps 6 --threads 1 --quiet
same "mpi ROW: 3 steps (1 process) + resume (3 ranks) to 6 == 6 steps" "$T/ROW1/checkpoint.safetensors" \
    "$T/ROWy/checkpoint.safetensors"

# ------------------------------------------------------------ a rank dies
# LOOM_FAULT_KILL_RANK=R:K (test build only): rank R SIGKILLs itself after step K.
ok "mpi kill: 8 steps on 1 process" $LOOM train $ROW --steps 8 --threads 1 --checkpoint-every 2 --out "$T/K1"
for victim in 1 0; do
    LOOM_FAULT_KILL_RANK=$victim:5 $MPIRUN -np 2 "$HOOKED" train $ROW --steps 8 --threads 1 --checkpoint-every 2 \
        --out "$T/K$victim.r" >"$T/out" 2>"$T/err"; rc=$?
    [ "$rc" -ne 0 ] && pass "mpi kill: rank $victim killed at step 5 stops the job (exit $rc)" ||
        fail "mpi kill: rank $victim killed at step 5 stops the job" "exit 0"
    step=$("$LOOM" info "$T/K$victim.r" 2>/dev/null | sed -n 's/^step *\([0-9]*\) of.*/\1/p')
    [ "$step" = 4 ] && pass "mpi kill: rank $victim killed: the step-4 checkpoint loads" ||
        fail "mpi kill: rank $victim killed: the step-4 checkpoint loads" "step '$step'"
    ok "mpi kill: rank $victim killed: the run resumes on 2 ranks" \
        $MPIRUN -np 2 $LOOM train --resume "$T/K$victim.r" --threads 1 --quiet
    same "mpi kill: rank $victim killed: resumed to step 8 == 8 uninterrupted steps" \
        "$T/K1/checkpoint.safetensors" "$T/K$victim.r/checkpoint.safetensors"
done

# ------------------------------------------------------------ stops decided together
# --time-limit: the ranks' clocks differ, the stop must not (a rank that went on
# alone would wait for the others forever)
ok "mpi: --time-limit 1 on 2 ranks stops and saves" \
    $MPIRUN -np 2 $LOOM train $ROW --steps 100000 --time-limit 1 --threads 1 --out "$T/TL"
grep -q "^time limit: stopped at step" "$T/TL/train.log" && pass "mpi: --time-limit: the log says where it stopped" ||
    fail "mpi: --time-limit: the log says where it stopped" "$(tail -2 "$T/TL/train.log")"
# SIGTERM to one rank (Slurm's scancel signals every task, not at the same moment)
$MPIRUN -np 2 $LOOM train $ROW --steps 100000 --threads 1 --log-every 1 --out "$T/SG" >/dev/null 2>&1 &
mp=$!
i=0
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
while [ $i -lt 300 ] && [ "$(lines "$T/SG/metrics.csv")" -lt 3 ]; do sleep 0.1; i=$((i + 1)); done
victim=$(pgrep -P $mp | tail -n 1)
[ -n "$victim" ] && kill -TERM "$victim"
wait $mp; rc=$?
[ "$rc" = 0 ] && grep -q "^stopped by \(a \)\{0,1\}signal" "$T/SG/train.log" &&
    pass "mpi: SIGTERM to one rank stops both at the same step, saved, exit 0" ||
    fail "mpi: SIGTERM to one rank stops both at the same step, saved, exit 0" "exit $rc: $(tail -1 "$T/SG/train.log")"
ok "mpi: the signalled run resumes on 1 process" $LOOM train --resume "$T/SG" --steps 30 --threads 1 --quiet

# ------------------------------------------------------------ refused
# mpirun_rejects NAME CODE PATTERN CMD...: exit CODE, and among mpirun's own
# banners exactly one "loom:" line (not one per rank) that matches PATTERN
mpirun_rejects() {
    name=$1 code=$2 pat=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    n=$(grep -c '^loom' "$T/err")
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, wanted $code: $(grep '^loom' "$T/err" | head -c 300)"
    elif [ "$n" -ne 1 ]; then fail "$name" "$n loom lines: $(grep '^loom' "$T/err" | head -c 300)"
    elif ! grep '^loom' "$T/err" | grep -q -- "$pat"; then fail "$name" "does not match '$pat': $(grep '^loom' "$T/err")"
    else pass "$name"; fi
}
mpirun_rejects "mpi: 4 ranks for 3 micro-shards (--batch 20) are refused" 2 "batch 20 is 3 micro-shards of 8.*fewer than the 4 ranks.*--batch 25" \
    $MPIRUN -np 4 $LOOM train --layers 1 --hidden 4 --batch 20 --valid 20 --quiet --data "$D" --steps 2 --threads 1 --out "$T/bad4"
[ ! -e "$T/bad4/checkpoint.safetensors" ] && pass "mpi: the refused run wrote no checkpoint" ||
    fail "mpi: the refused run wrote no checkpoint" "it did"
mpirun_rejects "mpi: resuming on more ranks than micro-shards is refused" 2 "fewer than the 4 ranks" \
    $MPIRUN -np 4 $LOOM train --resume "$T/DRAWx" --steps 9 --threads 1
mpirun_rejects "mpi: a bad flag is one error line, not one per rank" 2 "unknown flag\|--bogus" \
    $MPIRUN -np 2 $LOOM train $ROW --bogus --out "$T/bad"
mpirun_rejects "mpi: an existing run directory is refused" 2 "already holds a run" \
    $MPIRUN -np 2 $LOOM train $ROW --steps 2 --threads 1 --out "$T/ROW1"
# ranks started with different flags (here the seed) would train different
# models: refused before anything is written
mpirun_rejects "mpi: ranks with different flags are refused" 2 "rank 1 of 2 does not train the run rank 0 trains" \
    $MPIRUN -np 1 $LOOM train $ROW --steps 2 --threads 1 --seed 1 --out "$T/mpmd" : \
    -np 1 $LOOM train $ROW --steps 2 --threads 1 --seed 2 --out "$T/mpmd"
[ ! -e "$T/mpmd/checkpoint.safetensors" ] && pass "mpi: ranks with different flags wrote no checkpoint" ||
    fail "mpi: ranks with different flags wrote no checkpoint" "it did"
# srun without an MPI plug-in starts N singletons: each would train alone
rejects "mpi: a launcher's N tasks that MPI sees as 1 are refused" 2 "started 2 processes but MPI sees 1" \
    env SLURM_STEP_NUM_TASKS=2 $LOOM train $ROW --steps 1 --threads 1 --out "$T/single"
