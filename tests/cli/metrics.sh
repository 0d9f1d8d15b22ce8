# metrics.csv holds bits/dim (not nats): its training and validation columns
# against loom eval of the same images with the same weights.
. tests/cli/lib.sh
D="$T/data"; idx_subset "$D" 48 8
# the test split := all 48 training images (the training column is checked on a
# run without a validation split, which then trains on all of them)
for k in images labels; do
    if [ $k = images ]; then hdr='\000\000\010\003'; skip=17; per=784
    else hdr='\000\000\010\001'; skip=9; per=1; fi
    { printf "$hdr"; be32 48; [ $k = images ] && { be32 28; be32 28; }
      tail -c +$skip "$D/train-$k-idx"*"-ubyte" | head -c $((48 * per)); } >"$T/t10k-$k"
done
mv "$T/t10k-images" "$D/t10k-images-idx3-ubyte"; mv "$T/t10k-labels" "$D/t10k-labels-idx1-ubyte"
# lr 1e-12: the weights stay put (to ~1e-12), so every step's training loss
# is the NLL of all the training images (one batch) at the final weights
ok "metrics: tiny run with a validation split" $LOOM train --model rowlstm --layers 1 --hidden 4 \
    --data "$D" --valid 8 --batch 40 --steps 2 --lr 1e-12 --log-every 1 --eval-every 0 --threads 1 --quiet \
    --out "$T/run"
ok "metrics: tiny run, one batch = the whole training set" $LOOM train --model rowlstm --layers 1 --hidden 4 \
    --data "$D" --valid 0 --batch 48 --steps 2 --lr 1e-12 --log-every 1 --eval-every 0 --threads 1 --quiet \
    --out "$T/all"
last=$(tail -n 1 "$T/run/metrics.csv")
vb=$(echo "$last" | cut -d, -f3)
tb=$(tail -n 1 "$T/all/metrics.csv" | cut -d, -f2)
$LOOM eval "$T/run" --split valid --json --threads 1 >"$T/v.json" 2>"$T/err"
$LOOM eval "$T/all" --split test --json --threads 1 >"$T/t.json" 2>>"$T/err"
vj=$(json_get bits_per_dim <"$T/v.json"); vn=$(json_get nats_per_image <"$T/v.json")
tj=$(json_get bits_per_dim <"$T/t.json"); tn=$(json_get nats_per_image <"$T/t.json")
# agree to 1e-5 bits/dim; nats would be ln 2 = 0.69 times the bits (> 5 bits/dim here)
if awk -v a="$vb" -v b="$vj" -v x="$vn" 'BEGIN {exit !(a > 1 && (a - b) ^ 2 < 1e-10 && (a - x / (log(2) * 784)) ^ 2 < 1e-10)}'; then
    pass "metrics.csv valid_bits_per_dim == eval --split valid bits_per_dim == nats_per_image / (784 ln 2)"
else fail "metrics.csv valid_bits_per_dim == eval --split valid bits_per_dim == nats_per_image / (784 ln 2)" \
    "csv '$last', eval $(cat "$T/v.json" "$T/err")"; fi
if awk -v a="$tb" -v b="$tj" -v x="$tn" 'BEGIN {exit !(a > 1 && (a - b) ^ 2 < 1e-10 && (a - x / (log(2) * 784)) ^ 2 < 1e-10)}'; then
    pass "metrics.csv train_bits_per_dim == eval of the training images in bits/dim"
else fail "metrics.csv train_bits_per_dim == eval of the training images in bits/dim" \
    "csv '$last', eval $(cat "$T/t.json" "$T/err")"; fi
# train.log states the same validation number
if grep -q "valid $(printf '%.4f' "$vb") bits/dim" "$T/run/train.log"; then pass "train.log's valid bits/dim is metrics.csv's"
else fail "train.log's valid bits/dim is metrics.csv's" "$(cat "$T/run/train.log")"; fi
