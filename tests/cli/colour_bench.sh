# loom bench --channels 3 (colour rowlstm / diagbilstm) and its errors.
. tests/cli/lib.sh
for model in rowlstm diagbilstm; do
    $LOOM bench --model $model --channels 3 --layers 1 --hidden 3 --batch 2 --steps 1 --height 4 --width 5 \
        --threads 1 --json >"$T/b.json" 2>"$T/err"
    if grep -q '"channels": 3' "$T/b.json" && grep -q '"sample_to_forward": [0-9]' "$T/b.json"; then
        pass "$model bench --channels 3 --json"
    else fail "$model bench --channels 3 --json" "$(cat "$T/b.json" "$T/err")"; fi
    rejects "$model --channels 3 --hidden 4" 2 "multiple of 3" $LOOM bench --model $model --channels 3 --hidden 4
    rejects "$model --channels 2" 2 "1 (gray) or 3 (RGB)" $LOOM bench --model $model --channels 2 --hidden 3
done
rejects "grupixel --channels 3" 2 "grayscale images only" $LOOM bench --model grupixel --channels 3
rejects "bench --channels 4" 2 "channels" $LOOM bench --channels 4
