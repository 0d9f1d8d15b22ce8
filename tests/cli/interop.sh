# Python interop (issue 15): the numpy reader of docs/cli.md, run as written,
# and tools/loom2torch.py checked against loom's own NLL (from its logits).
# numpy and torch are optional: without them these checks are skipped (said on stdout).
. tests/cli/lib.sh
PY=/usr/bin/python3
D=$T/data; idx_subset "$D" 64 8
$LOOM train --model rowlstm --layers 2 --hidden 4 --valid 8 --batch 8 --data "$D" --steps 3 --ema 0.5 --threads 1 \
    --quiet --out "$T/r" 2>/dev/null
if ! $PY -c 'import numpy' 2>/dev/null; then echo "# interop: python3-numpy not installed, skipped"; exit 0; fi

# the reader exactly as docs/cli.md shows it (between its two marker lines)
sed -n '/^# numpy-reader: begin/,/^# numpy-reader: end/p' docs/cli.md >"$T/reader.py"
cat >>"$T/reader.py" <<'PY'
import sys
tensors, meta = read_loom(sys.argv[1])
print(meta["step"], len([k for k in tensors if not k.startswith(("optim.", "ema."))]),
      sum(v.size for k, v in tensors.items() if not k.startswith(("optim.", "ema."))),
      len([k for k in tensors if k.startswith("ema.")]), tensors["head2.weight"].shape)
PY
got=$($PY "$T/reader.py" "$T/r/checkpoint.safetensors" 2>&1)
want="3 $($LOOM info "$T/r" --json | json_get tensors) $($LOOM info "$T/r" --json | json_get parameters) $($LOOM info "$T/r" --json | json_get tensors) (8, 256)"
[ -s "$T/reader.py" ] && [ "$got" = "$want" ] && pass "interop: the numpy reader of docs/cli.md reads a checkpoint ($got)" ||
    fail "interop: the numpy reader of docs/cli.md" "got '$got', want '$want'"

if ! $PY -c 'import torch' 2>/dev/null; then echo "# interop: python3-torch not installed, loom2torch skipped"; exit 0; fi
# close NLL ACTUAL WANT: within 1e-5 relative (loom float32, the converted model float64)
close() { awk -v a="$1" -v b="$2" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * b)}'; }
$LOOM train --model diagbilstm --layers 2 --hidden 3 --valid 8 --batch 8 --data "$D" --steps 3 --threads 1 --quiet \
    --out "$T/d" 2>/dev/null
for m in rowlstm diagbilstm; do
    run=$T/r; [ $m = diagbilstm ] && run=$T/d
    $PY tools/loom2torch.py "$run" "$T/$m.pt" --eval "$D/t10k-images-idx3-ubyte" >"$T/$m.json" 2>"$T/err"
    $LOOM eval "$run" --json --threads 1 >"$T/$m.loom.json"
    a=$(json_get nats_per_image <"$T/$m.json"); b=$(json_get nats_per_image <"$T/$m.loom.json")
    [ -n "$a" ] && close "$a" "$b" && pass "interop: loom2torch $m gives loom's test NLL ($a vs $b nats/image)" ||
        fail "interop: loom2torch $m gives loom's test NLL" "torch '$a' loom '$b' $(cat "$T/err")"
done
# the trained weights (--trained) are not the average: another NLL
$PY tools/loom2torch.py "$T/r" "$T/t.pt" --trained --eval "$D/t10k-images-idx3-ubyte" >"$T/t.json" 2>"$T/err"
a=$(json_get nats_per_image <"$T/t.json"); b=$(json_get nats_per_image <"$T/rowlstm.json")
[ -n "$a" ] && ! close "$a" "$b" && pass "interop: loom2torch --trained converts the trained weights, not the average" ||
    fail "interop: loom2torch --trained" "$a $b"
# the state_dict loads strictly into the reference class
$PY - "$T/rowlstm.pt" <<'PY' && pass "interop: the state_dict loads strictly into bench/rowlstm_torch.py's RowLSTM" || fail "interop: state_dict loads" "$?"
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("r", "bench/rowlstm_torch.py"); r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
r.RowLSTM(4, 2).load_state_dict(torch.load(sys.argv[1]), strict=True)
PY
# grupixel converts (every tensor into bench/grupixel_torch.py's GruPixel, shapes checked);
# its NLL is not compared: loom's eval uses its own fixed z
$LOOM train --model grupixel --hidden 4 --zdim 3 --valid 8 --batch 8 --data "$D" --steps 1 --threads 1 --quiet --out "$T/g" 2>/dev/null
$PY tools/loom2torch.py "$T/g" "$T/g.pt" >"$T/g.json" 2>"$T/err" && grep -q '"model": "grupixel"' "$T/g.json" &&
    $PY -c "import sys, torch; sys.exit(len(torch.load('$T/g.pt')) != 9)" &&
    pass "interop: loom2torch converts a grupixel checkpoint (9 tensors)" || fail "interop: loom2torch grupixel" "$(cat "$T/g.json" "$T/err")"
