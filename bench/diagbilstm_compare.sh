#!/bin/sh
# loom vs the PyTorch peer for the Diagonal BiLSTM, run alternately ROUNDS times
# (default 3) so that both see the same machine load; prints every JSON line and
# the medians. Usage: sh bench/diagbilstm_compare.sh [build/loom] [ROUNDS]
LOOM=${1:-build/loom}
ROUNDS=${2:-3}
CFG="--layers 7 --hidden 16 --batch 16"
out=$(mktemp)
r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "# round $r, $(uptime | sed 's/.*load/load/')"
    env -u OPENBLAS_CORETYPE "$LOOM" bench --model diagbilstm $CFG --json | sed 's/^/loom /' | tee -a "$out"
    env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/diagbilstm_torch.py bench $CFG --threads 2 --steps 3 --forward-reps 2 \
        --sample-pixels 1 2>/dev/null | sed 's/^/torch /' | tee -a "$out"
    r=$((r + 1))
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
runs = {"loom": [], "torch": []}
for line in open(sys.argv[1]):
    who, js = line.split(" ", 1)
    runs[who].append(json.loads(js))
med = lambda who, k: statistics.median(r[k] for r in runs[who])
lt, tt = med("loom", "train_images_per_s"), med("torch", "train_images_per_s")
lf, tf = med("loom", "forward_ms_per_image"), med("torch", "forward_ms_per_image")
print(json.dumps({"rounds": len(runs["loom"]), "loom_train_images_per_s": lt,
                  "torch_train_images_per_s": tt, "train_ratio": round(lt / tt, 2),
                  "loom_forward_ms_per_image": lf, "torch_forward_ms_per_image": tf,
                  "forward_ratio": round(tf / lf, 2),
                  "loom_sample_to_forward": med("loom", "sample_to_forward")}))
PY
rm -f "$out"
