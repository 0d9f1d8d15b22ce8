# The thread count changes nothing (README "Speed"): training, resuming on
# another thread count, evaluation and sampling give the same bytes on 1, 2 and
# 3 threads. Batches are not multiples of the micro-shard (rowlstm 8, draw 32).
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 200 20
ROW="--model rowlstm --layers 1 --hidden 4 --batch 20 --valid 20 --eval-every 4 --quiet --data $D"
DRAW="--model draw --hidden 8 --zdim 3 --steps-draw 3 --read-n 2 --write-n 2 --batch 36 --valid 20 --eval-every 0 --quiet --data $D"

for net in ROW DRAW; do
    eval "args=\$$net"
    for t in 1 2 3; do
        ok "$net: 6 steps on $t threads" $LOOM train $args --steps 6 --threads $t --out "$T/$net$t"
    done
    same "$net: 2 threads give the 1-thread checkpoint" "$T/${net}1/checkpoint.safetensors" "$T/${net}2/checkpoint.safetensors"
    same "$net: 3 threads give the 1-thread checkpoint" "$T/${net}1/checkpoint.safetensors" "$T/${net}3/checkpoint.safetensors"
    # 3 steps on 2 threads, resumed on 1 thread to 6 == 6 steps on 1 thread
    ok "$net: 3 steps on 2 threads" $LOOM train $args --steps 3 --threads 2 --out "$T/${net}r"
    ok "$net: resume on 1 thread to 6" $LOOM train --resume "$T/${net}r" --steps 6 --threads 1 --quiet
    same "$net: 3 steps (2 threads) + resume (1 thread) to 6 == 6 steps" \
        "$T/${net}1/checkpoint.safetensors" "$T/${net}r/checkpoint.safetensors"
    $LOOM eval "$T/${net}1" --json --threads 1 >"$T/e1.json" 2>/dev/null
    $LOOM eval "$T/${net}1" --json --threads 2 >"$T/e2.json" 2>/dev/null
    $LOOM eval "$T/${net}1" --json --threads 3 --batch 13 >"$T/e3.json" 2>/dev/null
    [ -s "$T/e1.json" ] && pass "$net: eval --json" || fail "$net: eval --json" "no output"
    same "$net: eval on 2 threads gives the 1-thread NLL" "$T/e1.json" "$T/e2.json"
    same "$net: eval on 3 threads in chunks of 13 gives the 1-thread NLL" "$T/e1.json" "$T/e3.json"
    for t in 1 2 3; do
        $LOOM sample "$T/${net}1" --n 37 --seed 4 --threads $t --out "$T/s$t.png" 2>/dev/null
    done
    [ -s "$T/s1.png" ] && pass "$net: sample 37 images" || fail "$net: sample 37 images" "no PNG"
    same "$net: sample on 2 threads gives the 1-thread PNG" "$T/s1.png" "$T/s2.png"
    same "$net: sample on 3 threads gives the 1-thread PNG" "$T/s1.png" "$T/s3.png"
done
