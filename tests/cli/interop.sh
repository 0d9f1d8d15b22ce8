# Python interop (issue 15): the numpy reader of docs/cli.md, run as written,
# and tools/loom2torch.py checked against loom's own NLL (rowlstm, diagbilstm from their logits;
# draw and rae with loom's noise reproduced by bench/loom_noise.py).
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
# draw and rae: their bound depends on loom's noise (each image's binarization and posterior
# eps); loom2torch's --eval reproduces loom's evaluation draws with bench/loom_noise.py, so the
# converted model's bound is loom eval's, within 1e-5 relative. 40 steps at lr 0.01 train them
# far enough that other noise moves the bound by about 1 nat (0.3%), 300 times the tolerance;
# 4 test images (Python draws the noise slowly).
$LOOM train --model draw --hidden 8 --zdim 3 --steps-draw 3 --valid 8 --batch 8 --data "$D" --steps 40 --lr 0.01 \
    --threads 1 --quiet --out "$T/dr" 2>/dev/null
$LOOM train --model draw --attention off --hidden 8 --zdim 3 --steps-draw 2 --valid 8 --batch 8 --data "$D" --steps 40 \
    --lr 0.01 --threads 1 --quiet --out "$T/dn" 2>/dev/null
$LOOM train --model rae --variational --hidden 8 --zdim 2 --valid 8 --batch 8 --data "$D" --steps 40 --lr 0.01 --ema 0.5 \
    --threads 1 --quiet --out "$T/va" 2>/dev/null
$LOOM train --model rae --hidden 8 --zdim 2 --valid 8 --batch 8 --data "$D" --steps 40 --lr 0.01 --threads 1 --quiet \
    --out "$T/pl" 2>/dev/null
for run in dr dn va pl; do
    case $run in dr) what="draw" ;; dn) what="draw --attention off" ;; va) what="rae --variational --ema" ;; pl) what="plain rae" ;; esac
    $PY tools/loom2torch.py "$T/$run" "$T/$run.pt" --eval "$D/t10k-images-idx3-ubyte" --limit 4 >"$T/$run.json" 2>"$T/err"
    $LOOM eval "$T/$run" --json --limit 4 --threads 1 >"$T/$run.loom.json"
    a=$(json_get nats_per_image <"$T/$run.json"); b=$(json_get nats_per_image <"$T/$run.loom.json")
    ka=$(sed -n 's/.*"kind": *"\([a-z]*\)".*/\1/p' "$T/$run.json"); kb=$(sed -n 's/.*"kind": *"\([a-z]*\)".*/\1/p' "$T/$run.loom.json")
    [ -n "$a" ] && close "$a" "$b" && [ "$ka" = "$kb" ] && pass "interop: loom2torch $what gives loom's test bound ($a vs $b nats/image, $ka)" ||
        fail "interop: loom2torch $what gives loom's test bound" "torch '$a' $ka loom '$b' $kb $(cat "$T/err")"
done
$PY tools/loom2torch.py "$T/va" "$T/vt.pt" --trained --eval "$D/t10k-images-idx3-ubyte" --limit 4 >"$T/vt.json" 2>"$T/err"
a=$(json_get nats_per_image <"$T/vt.json"); b=$(json_get nats_per_image <"$T/va.json")
[ -n "$a" ] && ! close "$a" "$b" && pass "interop: loom2torch --trained on a rae with --ema: the trained weights' bound" ||
    fail "interop: loom2torch --trained on rae" "$a $b $(cat "$T/err")"
# the state_dicts load strictly into the reference classes
$PY - "$T/dr.pt" "$T/va.pt" <<'PY' && pass "interop: the draw and rae state_dicts load strictly into bench's DRAW and RAE" || fail "interop: draw and rae state_dicts load" "$?"
import importlib.util, sys, torch
def mod(n):
    spec = importlib.util.spec_from_file_location(n, "bench/%s_torch.py" % n); m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m); return m
mod("draw").DRAW(28, 28, 8, 3, 3, 2, 5, True).load_state_dict(torch.load(sys.argv[1]), strict=True)
mod("rae").RAE(28, 28, 8, 2, True).load_state_dict(torch.load(sys.argv[2]), strict=True)
PY
