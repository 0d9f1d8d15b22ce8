# Logs and checkpoints (issue 15): metrics.csv's columns, resume rows and
# cumulative wall time, best.safetensors, loom export --weights-only, --ema.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 120 16
NET="--model rowlstm --layers 1 --hidden 4 --valid 16 --batch 8 --data $D --threads 1 --quiet"

ok "logs: a run with periodic subset and final full validation" $LOOM train $NET --steps 6 --log-every 1 \
    --eval-every 2 --eval-limit 8 --checkpoint-every 3 --out "$T/a"
ok "logs: resumed to 9" $LOOM train --resume "$T/a" --steps 9 --log-every 1 --quiet
C=$T/a/metrics.csv
[ "$(head -n 1 "$C")" = "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s,valid_subset_bits_per_dim,lr,grad_norm,event" ] &&
    pass "logs: metrics.csv header" || fail "logs: metrics.csv header" "$(head -n 1 "$C")"
# periodic validation (8 of 16 images) in valid_subset_bits_per_dim, the final (all 16) in valid_bits_per_dim
awk -F, 'NR > 1 && $9 != "resume" {
    if ($1 == 2 || $1 == 4 || $1 == 8) { if ($6 == "" || $3 != "") bad = bad " step " $1 }
    else if ($1 == 6 || $1 == 9) { if ($3 == "" || $6 != "") bad = bad " final " $1 }
    else if ($3 != "" || $6 != "") bad = bad " none " $1 }
    END { if (bad != "") { print bad; exit 1 } }' "$C" >"$T/bad" &&
    pass "logs: subset and full validation in their own columns" || fail "logs: subset and full validation in their own columns" "$(cat "$T/bad") $(cat "$C")"
# lr and grad_norm on every logged row: lr 1e-3, a positive finite norm
awk -F, 'NR > 1 && $9 != "resume" && !($7 == 0.001 && $8 > 0 && $8 < 1e6) {bad = 1} END {exit bad}' "$C" &&
    pass "logs: lr and grad_norm columns" || fail "logs: lr and grad_norm columns" "$(cat "$C")"
# one resume row, at step 6, with the wall time so far; the wall time never goes back
[ "$(grep -c ',resume$' "$C")" -eq 1 ] && grep -q '^6,,,,[0-9.]*,,,,resume$' "$C" &&
    pass "logs: a row marks the resume" || fail "logs: a row marks the resume" "$(cat "$C")"
awk -F, 'NR > 1 { if ($5 + 0 < last) bad = 1; last = $5 + 0 } END {exit bad}' "$C" &&
    pass "logs: wall_s is cumulative across the resume" || fail "logs: wall_s is cumulative across the resume" "$(cut -d, -f1,5 "$C" | tr '\n' ' ')"
w6=$(awk -F, '$1 == 6 && $9 != "resume" {print $5}' "$C"); wr=$(awk -F, '$9 == "resume" {print $5}' "$C")
[ -n "$w6" ] && [ "$w6" = "$wr" ] && pass "logs: the resume row carries the wall time of step 6 ($w6 s)" ||
    fail "logs: the resume row carries the wall time of step 6" "'$w6' '$wr'"

# ---- best.safetensors: the step of the lowest validation so far, marked in the event column
ok "logs: best.safetensors loads" $LOOM info "$T/a/best.safetensors"
bstep=$(awk -F, '$9 == "best" {s = $1} END {print s}' "$C")
min=$(awk -F, 'NR > 1 && $9 != "resume" { v = $3 != "" ? $3 : $6; if (v != "" && (m == "" || v < m)) { m = v; s = $1 } } END {print s}' "$C")
ist=$($LOOM info "$T/a/best.safetensors" --json | json_get step)
[ -n "$bstep" ] && [ "$bstep" = "$min" ] && [ "$ist" = "$bstep" ] &&
    pass "logs: best.safetensors is the step of the lowest validation ($bstep)" ||
    fail "logs: best.safetensors is the step of the lowest validation" "event $bstep, lowest $min, file $ist"

# ---- export --weights-only: no optimiser state, same NLL, smaller file
ok "export: --weights-only" $LOOM export "$T/a" --weights-only --out "$T/w.safetensors"
if python3 - "$T/w.safetensors" "$T/a/checkpoint.safetensors" <<'PY'
import json, struct, sys
def names(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    return [k for k in json.loads(b[8:8 + n]) if k != '__metadata__']
w, c = names(sys.argv[1]), names(sys.argv[2])
sys.exit(not (w and not any(k.startswith('optim.') for k in w) and set(w) < set(c)))
PY
then pass "export: only the parameters (no optim.* tensors)"; else fail "export: only the parameters" "$?"; fi
$LOOM eval "$T/a" --json --threads 1 | sed 's/"checkpoint": "[^"]*", //' >"$T/e1"
$LOOM eval "$T/w.safetensors" --json --threads 1 | sed 's/"checkpoint": "[^"]*", //' >"$T/e2"
same "export: the exported weights give the run's test NLL" "$T/e1" "$T/e2"
rejects "export: needs --weights-only" 2 "weights-only" $LOOM export "$T/a" --out "$T/x.safetensors"
rejects "export: will not overwrite the checkpoint it reads" 2 "being read" \
    $LOOM export "$T/a/checkpoint.safetensors" --weights-only --out "$T/a/checkpoint.safetensors"

# ---- --ema: the average in the checkpoint, used by eval; resume bit-identical
ok "ema: 6 steps" $LOOM train $NET --steps 6 --ema 0.9 --eval-every 0 --out "$T/e6"
ok "ema: 3 steps" $LOOM train $NET --steps 3 --ema 0.9 --eval-every 0 --out "$T/e3"
ok "ema: resumed to 6" $LOOM train --resume "$T/e3" --steps 6 --quiet
same "ema: 3 + resume + 3 == 6 steps (byte-identical checkpoint with the average)" "$T/e6/checkpoint.safetensors" "$T/e3/checkpoint.safetensors"
grep -q '"ema":[[:space:]]*0.9' "$T/e6/config.json" && pass "ema: config.json records the decay" ||
    fail "ema: config.json records the decay" "$(cat "$T/e6/config.json")"
ok "ema: the same run without the average" $LOOM train $NET --steps 6 --eval-every 0 --out "$T/n6"
# the trained weights are the same with and without --ema; the average differs from them,
# and eval, sample and export use the average
if python3 - "$T/e6/checkpoint.safetensors" "$T/n6/checkpoint.safetensors" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
e, p = load(sys.argv[1]), load(sys.argv[2])
ema = [k for k in e if k.startswith('ema.')]
ok = ema and all(e[k] == p[k] for k in p) and len(ema) == len([k for k in p if not k.startswith('optim.')])
ok = ok and any(e[k] != e[k[4:]] for k in ema)
sys.exit(not ok)
PY
then pass "ema: ema.* tensors beside unchanged trained weights"; else fail "ema: ema.* tensors beside unchanged trained weights" "$?"; fi
$LOOM eval "$T/e6" --json --threads 1 >"$T/ee"; $LOOM eval "$T/n6" --json --threads 1 >"$T/en"
a=$(json_get bits_per_dim <"$T/ee"); b=$(json_get bits_per_dim <"$T/en")
[ -n "$a" ] && [ "$a" != "$b" ] && pass "ema: eval uses the average ($a vs $b bits/dim)" || fail "ema: eval uses the average" "$a $b"
ok "ema: export of the average" $LOOM export "$T/e6" --weights-only --out "$T/ew.safetensors"
$LOOM eval "$T/ew.safetensors" --json --threads 1 >"$T/ew"
[ "$(json_get bits_per_dim <"$T/ew")" = "$a" ] && pass "ema: the export holds the average" ||
    fail "ema: the export holds the average" "$(cat "$T/ew")"
rejects "ema: cannot change on resume" 2 "cannot be changed on --resume" $LOOM train --resume "$T/e6" --steps 8 --ema 0.5
rejects "ema: decay 1 is out of range" 2 "ema" $LOOM train $NET --steps 2 --ema 1 --out "$T/bad"
