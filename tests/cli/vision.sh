#!/bin/sh
# The commands that look at images: a renet classifier trained and evaluated
# (accuracy in eval --json), loom detect and loom score end to end (their JSON
# keys and exit codes), and bad input: sets of other sizes or channels, a
# classifier of the wrong size, a classifier as a sample source, unlabelled data.
. "$(dirname "$0")/lib.sh"

D=$T/fm
idx_subset "$D" 300 200

# a tiny classifier (also the feature extractor of the score checks below)
ok "renet: trains on labelled IDX data" $LOOM train --model renet --layers 1 --hidden 8 --patch 7 --steps 20 \
    --batch 16 --threads 1 --quiet --eval-every 0 --valid 20 --log-every 10 --data "$D" --out "$T/cls"
# its log speaks of the labels' cross-entropy, not of bits per pixel
grep -q "^step 10/20 cross-entropy train [0-9.]* nats/image" "$T/cls/train.log" && ! grep -q "bits/dim" "$T/cls/train.log" &&
    pass "renet: train.log reports the cross-entropy in nats/image" ||
    fail "renet: train.log reports the cross-entropy in nats/image" "$(tail -n 2 "$T/cls/train.log")"
# and that number is metrics.csv's bits/dim of step 10 in nats per 28x28 image
ce=$(sed -n 's/^step 10\/20 cross-entropy train \([0-9.]*\) nats.*/\1/p' "$T/cls/train.log")
bpd=$(awk -F, '$1 == 10 {print $2}' "$T/cls/metrics.csv")
awk -v c="$ce" -v b="$bpd" 'BEGIN {d = c - b * log(2) * 784; exit !(c > 0 && d < 1e-3 && d > -1e-3)}' &&
    pass "renet: the logged cross-entropy is metrics.csv's bits/dim in nats per image" ||
    fail "renet: the logged cross-entropy is metrics.csv's bits/dim in nats per image" "log $ce, csv $bpd"
$LOOM eval "$T/cls" --json --threads 1 >"$T/eval.json" 2>"$T/err"
acc=$(json_get accuracy <"$T/eval.json")
if grep -q '"kind": "accuracy"' "$T/eval.json" && grep -q '"model": "renet"' "$T/eval.json" &&
    grep -q '"step": 20' "$T/eval.json" && grep -q '"checkpoint": ' "$T/eval.json" &&
    awk -v a="$acc" 'BEGIN {exit !(a >= 0 && a <= 1)}'; then pass "renet: eval --json reports accuracy (kind accuracy, model, step, checkpoint)"
else fail "renet: eval --json reports accuracy (kind accuracy, model, step, checkpoint)" "$(cat "$T/eval.json" "$T/err")"; fi
# the shipped feature extractor of loom score (docs/renet.md: 0.9006 on the whole test set,
# 0.910 on these 500)
$LOOM eval models/fmnist_renet.safetensors --limit 500 --threads 1 --json >"$T/ship.json" 2>"$T/err"
sa=$(json_get accuracy <"$T/ship.json")
awk -v a="$sa" 'BEGIN {exit !(a > 0.89 && a < 0.93)}' && pass "renet: the shipped classifier's accuracy on 500 test images in (0.89, 0.93)" ||
    fail "renet: the shipped classifier's accuracy on 500 test images in (0.89, 0.93)" "accuracy '$sa' $(cat "$T/err")"
ok "renet: loom info reads the run" $LOOM info "$T/cls"
grep -q "renet" "$T/out" && pass "renet: info names the model" || fail "renet: info names the model" "$(cat "$T/out")"
rejects "renet: --patch with another model" 2 "only --model convlstm, renet" \
    $LOOM train --model rowlstm --patch 2 --steps 1 --data "$D" --out "$T/x1"
rejects "renet: --conditional refused (a classifier)" 2 "classifier" \
    $LOOM train --model renet --conditional --steps 1 --data "$D" --out "$T/x2"
mkdir -p "$T/nolabels"
cp "$D/train-images-idx3-ubyte" "$D/t10k-images-idx3-ubyte" "$T/nolabels/"
rejects "renet: unlabelled data refused" 2 "needs labels" \
    $LOOM train --model renet --steps 1 --data "$T/nolabels" --out "$T/x3"
rejects "renet: cannot sample" 2 "classifier" $LOOM sample "$T/cls" --out "$T/s.png"

# loom detect
$LOOM detect "$D:train" "$D:test" --n 120 --steps 30 --json >"$T/det.json" 2>"$T/err"
rc=$?
missing=""
for k in model step checkpoint kind auc auc_low auc_high accuracy n; do grep -q "\"$k\": " "$T/det.json" || missing="$missing $k"; done
if [ "$rc" = 0 ] && [ -z "$missing" ] && [ "$(wc -l <"$T/det.json")" = 1 ]; then pass "detect --json: one line with auc, auc_low, auc_high, accuracy, n"
else fail "detect --json: one line with auc, auc_low, auc_high, accuracy, n" "exit $rc, missing:$missing $(cat "$T/err")"; fi
lo=$(json_get auc_low <"$T/det.json"); hi=$(json_get auc_high <"$T/det.json"); a=$(json_get auc <"$T/det.json")
awk -v l="$lo" -v h="$hi" -v a="$a" 'BEGIN {exit !(l <= a && a <= h && l >= 0 && h <= 1)}' &&
    pass "detect: auc_low <= auc <= auc_high in [0, 1]" || fail "detect: auc_low <= auc <= auc_high in [0, 1]" "$lo $a $hi"
$LOOM detect "$D:train" "$D:test" --n 120 --steps 30 --json >"$T/det2.json" 2>/dev/null
same "detect: the same seed gives the same result" "$T/det.json" "$T/det2.json"
$LOOM detect "$D:train" "$D:test" --n 120 --steps 30 --threads 2 --json >"$T/det3.json" 2>/dev/null
same "detect: 2 threads give the 1-thread result" "$T/det.json" "$T/det3.json"
ok "detect: text output" $LOOM detect "$D:train" "$D:test" --n 40 --steps 5
grep -q "ROC AUC" "$T/out" && pass "detect: text names the ROC AUC" || fail "detect: text names the ROC AUC" "$(cat "$T/out")"

# another image size: a 14x14 IDX set (the first 14*14 bytes of each image would do; any bytes are pixels)
S=$T/small
mkdir -p "$S"
{ printf '\000\000\010\003'; be32 50; be32 14; be32 14; head -c $((50 * 196)) "$D/train-images-idx3-ubyte"; } >"$S/train-images-idx3-ubyte"
rejects "detect: sets of different image sizes: exit 2, both named" 2 "28x28.*14x14" $LOOM detect "$D:train" "$S" --n 40
rejects "detect: a classifier run as a set: exit 2" 2 "cannot draw samples" $LOOM detect "$T/cls" "$D" --n 40
rejects "detect: one set only" 2 "two image sets" $LOOM detect "$D"
rejects "detect: a missing set: exit 2, named" 2 "nowhere: No such file" $LOOM detect "$T/nowhere" "$D"

# loom score: a tiny generator scored with the tiny classifier
ok "score: a generator trains" $LOOM train --model rowlstm --layers 1 --hidden 4 --steps 3 --threads 1 --quiet \
    --eval-every 0 --valid 20 --data "$D" --out "$T/gen"
$LOOM score "$T/gen" --n 40 --classifier "$T/cls" --detect-steps 20 --json >"$T/score.json" 2>"$T/err"
rc=$?
missing=""
for k in model step checkpoint kind fid is detector_auc nll n; do grep -q "\"$k\": " "$T/score.json" || missing="$missing $k"; done
if [ "$rc" = 0 ] && [ -z "$missing" ] && grep -q '"model": "rowlstm"' "$T/score.json" && grep -q '"nll_kind": "exact"' "$T/score.json"
then pass "score --json: fid, is, detector_auc, nll (exact) of a rowlstm run"
else fail "score --json: fid, is, detector_auc, nll (exact) of a rowlstm run" "exit $rc, missing:$missing $(cat "$T/score.json" "$T/err")"; fi
f=$(json_get fid <"$T/score.json"); i=$(json_get is <"$T/score.json"); auc=$(json_get detector_auc <"$T/score.json")
awk -v f="$f" -v i="$i" -v a="$auc" 'BEGIN {exit !(f > 0 && i >= 1 && i <= 10 && a > 0.9)}' &&
    pass "score: a 3-step generator: fid > 0, 1 <= is <= 10, detector_auc > 0.9" ||
    fail "score: a 3-step generator: fid > 0, 1 <= is <= 10, detector_auc > 0.9" "fid $f is $i auc $auc"
$LOOM score "$D:train" --reference "$D:test" --n 60 --classifier "$T/cls" --no-detect --json >"$T/ref.json" 2>"$T/err"
grep -q '"nll": null' "$T/ref.json" && grep -q '"detector_auc": null' "$T/ref.json" && grep -q '"model": "data"' "$T/ref.json" &&
    pass "score of real images (train against test): no nll, --no-detect" ||
    fail "score of real images (train against test): no nll, --no-detect" "$(cat "$T/ref.json" "$T/err")"
rf=$(json_get fid <"$T/ref.json")
awk -v r="$rf" -v f="$f" 'BEGIN {exit !(r < f)}' && pass "score: real images score a lower fid than the 3-step generator's samples" ||
    fail "score: real images score a lower fid than the 3-step generator's samples" "real $rf generator $f"
ok "score: small images train" $LOOM train --model rowlstm --layers 1 --hidden 4 --steps 1 --threads 1 --quiet \
    --eval-every 0 --valid 5 --data "$S" --out "$T/gsmall"
rejects "score: a classifier of another image size: exit 2" 2 "reads 28x28x1" \
    $LOOM score "$T/gsmall" --n 8 --classifier "$T/cls" --reference "$S" --no-detect
LOOM_CLASSIFIER="$T/cls/checkpoint.safetensors" $LOOM score "$T/gsmall" --n 8 --reference "$S" --no-detect --json >"$T/s2.json" 2>"$T/err"
grep -q '"fid": null' "$T/s2.json" && grep -q 'fid_note": "the shipped classifier reads 28x28' "$T/s2.json" &&
    pass "score: other data with the default classifier: fid and is null, saying why" ||
    fail "score: other data with the default classifier: fid and is null, saying why" "$(cat "$T/s2.json" "$T/err")"
rejects "score: --classifier that is not a classifier" 2 "not a classifier" \
    $LOOM score "$T/gen" --n 8 --classifier "$T/gen" --no-detect

# the segmenter on its default data (fashion-mnist-scenes)
ok "reseg: trains on fashion-mnist-scenes by default" $LOOM train --model reseg --layers 1 --hidden 4 --steps 2 \
    --batch 4 --threads 1 --quiet --eval-every 0 --valid 8 --out "$T/seg"
grep -q 'fashion-mnist-scenes' "$T/seg/config.json" && pass "reseg: the run records its data" ||
    fail "reseg: the run records its data" "$(cat "$T/seg/config.json")"
$LOOM eval "$T/seg" --limit 20 --json >"$T/seg.json" 2>"$T/err"
grep -q '"kind": "pixel_accuracy"' "$T/seg.json" && grep -q '"mean_iou": ' "$T/seg.json" && grep -q '"model": "reseg"' "$T/seg.json" &&
    pass "reseg: eval --json reports pixel accuracy and mean IoU" ||
    fail "reseg: eval --json reports pixel accuracy and mean IoU" "$(cat "$T/seg.json" "$T/err")"
ok "segment: writes masks.png" $LOOM segment "$T/seg" --n 3 --out "$T/masks.png"
# 3 columns (scene, prediction, truth) of 64 pixels with 1-pixel gaps, 3 rows
sig=$(od -An -tx1 -N24 "$T/masks.png" | tr -d ' \n')
case "$sig" in 89504e47*) pass "segment: the output is a PNG" ;; *) fail "segment: the output is a PNG" "$sig" ;; esac
rejects "segment: a classifier is not a segmenter" 2 "not a segmenter" $LOOM segment "$T/cls" --out "$T/m2.png"
rejects "segment: --out is required" 2 "needs --out" $LOOM segment "$T/seg"
rejects "reseg: fashion-mnist (not scenes) refused" 2 "scene above its label map" \
    $LOOM train --model reseg --steps 1 --data "$D" --out "$T/x4"
