# One --json convention for every command (docs/cli.md): one line, one JSON
# object, numbers as numbers, and always "model", "step", "checkpoint", "kind".
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 8
NET="--layers 1 --hidden 4 --valid 8 --batch 8 --data $D --threads 1 --quiet"
$LOOM train --model rowlstm $NET --steps 2 --out "$T/r" --json >"$T/train.json" 2>"$T/err"
$LOOM train --model rae --variational --hidden 8 --zdim 2 --valid 8 --batch 8 --data $D --threads 1 --quiet \
    --steps 2 --out "$T/v" >/dev/null 2>&1

# check NAME FILE KIND KEY...: FILE is one line holding one JSON object with the four
# keys (step an integer, model and kind strings, kind == KIND), each KEY a number
check() {
    name=$1 file=$2 kind=$3; shift 3
    if [ "$(wc -l <"$file")" -ne 1 ]; then fail "json: $name" "$(wc -l <"$file") lines: $(head -c 300 "$file")"; return; fi
    if out=$(/usr/bin/python3 - "$file" "$kind" "$@" 2>&1 <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert isinstance(o, dict), 'not an object'
for k in ('model', 'step', 'checkpoint', 'kind'): assert k in o, 'no key ' + k
assert isinstance(o['model'], str) and isinstance(o['kind'], str), 'model/kind not strings'
assert isinstance(o['step'], int) and not isinstance(o['step'], bool), 'step not an integer'
assert o['checkpoint'] is None or isinstance(o['checkpoint'], str), 'checkpoint not a string or null'
assert o['kind'] == sys.argv[2], 'kind %r, wanted %r' % (o['kind'], sys.argv[2])
for k in sys.argv[3:]:
    assert isinstance(o.get(k), (int, float)) and not isinstance(o.get(k), bool), k + ' is not a number: %r' % o.get(k)
PY
    ); then pass "json: $name"; else fail "json: $name" "$out: $(head -c 300 "$file")"; fi
}
check "train" "$T/train.json" exact train_bits_per_dim valid_bits_per_dim steps
$LOOM eval "$T/r" --json --threads 1 >"$T/eval.json" 2>"$T/err"; check "eval" "$T/eval.json" exact bits_per_dim nats_per_image images
$LOOM eval "$T/v" --json --threads 1 >"$T/elbo.json" 2>"$T/err"; check "eval (rae --variational)" "$T/elbo.json" elbo bits_per_dim
$LOOM eval "$T/v" --json --iw 2 --threads 1 >"$T/iw.json" 2>"$T/err"; check "eval --iw" "$T/iw.json" iw bits_per_dim iw_samples
$LOOM sample "$T/r" --n 2 --json --threads 1 --out "$T/s.png" >"$T/sample.json" 2>"$T/err"; check "sample" "$T/sample.json" samples n seed temperature
$LOOM complete "$T/r" --n 2 --samples 1 --json --threads 1 --out "$T/c.png" >"$T/complete.json" 2>"$T/err"
check "complete (stdout holds only the JSON)" "$T/complete.json" exact hidden_bits_per_dim hidden_nats_per_image images
$LOOM reconstruct "$T/v" --n 2 --json --threads 1 --out "$T/rc.png" >"$T/rec.json" 2>"$T/err"; check "reconstruct" "$T/rec.json" reconstruction images
$LOOM interpolate "$T/v" 0 1 --steps 3 --json --threads 1 --out "$T/i.png" >"$T/interp.json" 2>"$T/err"; check "interpolate" "$T/interp.json" codes a b steps
$LOOM info "$T/r" --json >"$T/info.json" 2>"$T/err"; check "info" "$T/info.json" info parameters tensors
$LOOM bench --layers 1 --hidden 4 --batch 2 --steps 1 --height 4 --width 4 --threads 1 --json >"$T/bench.json" 2>"$T/err"
check "bench (no checkpoint: null)" "$T/bench.json" speed train_images_per_s parameters
$LOOM report "$T/r" --json >"$T/report.json" 2>"$T/err"; check "report" "$T/report.json" report
$LOOM export "$T/r" --weights-only --out "$T/w.safetensors" --json >"$T/export.json" 2>"$T/err"; check "export" "$T/export.json" weights parameters
# the same things under the same keys: the checkpoint eval read, and its step
grep -q "\"checkpoint\": \"$T/r/checkpoint.safetensors\"" "$T/eval.json" && [ "$(json_get step <"$T/eval.json")" = 2 ] &&
    [ "$(json_get step <"$T/info.json")" = 2 ] && pass "json: eval and info name the checkpoint and its step" ||
    fail "json: eval and info name the checkpoint and its step" "$(cat "$T/eval.json")"
