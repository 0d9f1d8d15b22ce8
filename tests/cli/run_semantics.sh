# Run semantics found by using loom as a new user: the validation split, its
# default size, --out parents, --resume targets, --time-limit, config.json,
# class names; and checkpoints written by earlier versions.
. tests/cli/lib.sh
D=$T/data
idx_subset "$D" 120 20
NET0="--layers 1 --hidden 2 --threads 1 --eval-every 0 --quiet"
NET="$NET0 --batch 4"

# ---- B1: the validation split is a seeded shuffle, stratified by class
# labels: 100 images of class 0, then 20 of class 1 (a tail split would be class 1 only)
S=$T/sorted
mkdir -p "$S"
cp "$D"/*-images-idx3-ubyte "$S/"
{ printf '\000\000\010\001'; be32 120; head -c 100 /dev/zero; printf '\001%.0s' $(seq 20); } >"$S/train-labels-idx1-ubyte"
{ printf '\000\000\010\001'; be32 20; head -c 10 /dev/zero; printf '\001%.0s' $(seq 10); } >"$S/t10k-labels-idx1-ubyte"
ok "split: conditional run on sorted labels" $LOOM train --data "$S" --valid 20 $NET --steps 2 --conditional --out "$T/s1"
line=$(grep '^validation:' "$T/s1/train.log")
if echo "$line" | grep -q 'stratified by class; per class: 0=17 1=3$'; then pass "split: stratified (17 of class 0, 3 of class 1 of 20)"
else fail "split: stratified (17 of class 0, 3 of class 1 of 20)" "$line"; fi
ok "split: same run again" $LOOM train --data "$S" --valid 20 $NET --steps 2 --conditional --out "$T/s2"
$LOOM eval "$T/s1" --split valid --json --threads 1 >"$T/v1.json" 2>"$T/err"
$LOOM eval "$T/s2" --split valid --json --threads 1 >"$T/v2.json" 2>>"$T/err"
# (the JSON names the checkpoint read, which differs: compare the rest)
for f in v1 v2; do sed 's/"checkpoint": "[^"]*", //' "$T/$f.json" >"$T/$f.nock"; done
same "split: same seed, same validation images (eval --split valid)" "$T/v1.nock" "$T/v2.nock"
# the trainer's final validation and eval --split valid see the same images
vb=$(tail -n 1 "$T/s1/metrics.csv" | cut -d, -f3)
eb=$(json_get bits_per_dim <"$T/v1.json")
[ -n "$vb" ] && [ "$vb" = "$eb" ] && pass "split: eval --split valid == the run's final validation ($vb)" ||
    fail "split: eval --split valid == the run's final validation" "metrics $vb, eval $eb $(cat "$T/err")"
ok "split: resume" $LOOM train --resume "$T/s1" --steps 4 --threads 1 --quiet
grep '^validation:' "$T/s1/train.log" | sort -u | wc -l | grep -qx 1 &&
    pass "split: the resumed run validates on the same split" || fail "split: the resumed run validates on the same split" "$(grep '^validation:' "$T/s1/train.log")"

# ---- B1: complete picks stratified test images, not the first N
# (test labels: 10 of class 0 then 10 of class 1; the first 4 would all be class 0)
$LOOM complete "$T/s1" --n 4 --rows 20 --samples 1 --out "$T/c.png" >"$T/c.txt" 2>"$T/err"
grep -q '^test images: 4, seeded and stratified by class: 0=2 1=2$' "$T/c.txt" &&
    pass "complete: picks test images of both classes (2 + 2), not the first 4" ||
    fail "complete: picks test images of both classes" "$(cat "$T/c.txt" "$T/err")"

# ---- B2: --valid defaults to 10% (at most 5000): small folders train
ok "valid: a 120-image set trains without --valid" $LOOM train --data "$D" $NET --steps 1 --out "$T/v"
grep -q '108 train / 12 valid images' "$T/v/train.log" && pass "valid: default is 10% (12 of 120)" ||
    fail "valid: default is 10% (12 of 120)" "$(head -1 "$T/v/train.log")"
grep -q '"valid":[[:space:]]*12,' "$T/v/config.json" && pass "valid: config.json holds the resolved number" ||
    fail "valid: config.json holds the resolved number" "$(grep valid "$T/v/config.json")"
ok "valid: explicit --valid 30" $LOOM train --data "$D" $NET --steps 1 --valid 30 --out "$T/v30"
grep -q '90 train / 30 valid images' "$T/v30/train.log" && pass "valid: --valid 30 is kept" ||
    fail "valid: --valid 30 is kept" "$(head -1 "$T/v30/train.log")"

# ---- B3: --out creates its parents
ok "out: parents are created" $LOOM train --data "$D" $NET --steps 1 --out "$T/runs/deep/a"
[ -s "$T/runs/deep/a/checkpoint.safetensors" ] && pass "out: run in runs/deep/a" || fail "out: run in runs/deep/a" "missing"

# ---- B4: resume targets, time limit, config.json, absolute data
R=$T/runs/deep/a
$LOOM train --resume "$R" --quiet >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 0 ] && grep -q "complete at step 1 of 1; nothing to do" "$T/err" &&
    pass "resume: a finished run has nothing to do (exit 0)" || fail "resume: a finished run has nothing to do" "exit $rc: $(cat "$T/err")"
ok "resume: with a new --steps" $LOOM train --resume "$R" --steps 3 --threads 1 --quiet
rejects "resume: --steps below the current step" 2 "steps 2 is below the run's current step 3" \
    $LOOM train --resume "$R" --steps 2 --quiet
grep -q '"steps":[[:space:]]*3,' "$R/config.json" && pass "resume: config.json says the new target" ||
    fail "resume: config.json says the new target" "$(grep steps "$R/config.json")"
$LOOM info "$R" --json >"$T/i.json" 2>&1
tr -d ' \t\n' <"$R/config.json" >"$T/a.txt"
sed '1 s/.*"config": //; $ s/}$//' "$T/i.json" | tr -d ' \t\n' >"$T/b.txt"
same "resume: config.json == the checkpoint's config" "$T/a.txt" "$T/b.txt"
ok "time limit: stops early" $LOOM train --data "$D" --layers 1 --hidden 4 --batch 4 --threads 1 --quiet \
    --eval-every 0 --steps 1000000 --time-limit 0.3 --out "$T/tl"
grep -q '"steps":[[:space:]]*1000000,' "$T/tl/config.json" && $LOOM info "$T/tl" | grep -q '^step .* of 1000000' &&
    pass "time limit: the run's target stays 1000000 (config and checkpoint)" ||
    fail "time limit: the run's target stays" "$(grep steps "$T/tl/config.json") $($LOOM info "$T/tl" | grep step)"
grep -q "time limit: stopped at step" "$T/tl/train.log" && pass "time limit: says so, with the resume command" ||
    fail "time limit: says so" "$(tail -1 "$T/tl/train.log")"
(cd "$T" && $LOOM train --data data $NET --steps 1 --out rel) >/dev/null 2>"$T/err"
grep -q "\"data\":[[:space:]]*\"$T/data\"" "$T/rel/config.json" && pass "data: a relative --data is stored absolute" ||
    fail "data: a relative --data is stored absolute" "$(grep data "$T/rel/config.json") $(cat "$T/err")"

# ---- B5: class names
P=$T/png
mkdir -p "$P/train/cat" "$P/train/dog" "$P/test/cat" "$P/test/fish"
for s in 1 2 3 4 5 6; do
    $LOOM sample tests/fixtures/main_rowlstm_v1.safetensors --n 1 --seed $s --out "$P/train/cat/$s.png" 2>/dev/null
    $LOOM sample tests/fixtures/main_rowlstm_v1.safetensors --n 1 --seed 1$s --out "$P/train/dog/$s.png" 2>/dev/null
done
cp "$P/train/cat/1.png" "$P/test/cat/"; cp "$P/train/dog/1.png" "$P/test/fish/"
ok "classes: conditional run on cat/ and dog/" $LOOM train --data "$P" $NET0 --batch 2 --steps 1 --conditional --out "$T/pets"
tr -d ' \t\n' <"$T/pets/config.json" | grep -q '"class_names":\["cat","dog"\]' &&
    pass "classes: config.json keeps the sub-directory names" || fail "classes: config.json keeps the names" "$(cat "$T/pets/config.json")"
$LOOM info "$T/pets" | grep -q '^classes  *0=cat 1=dog$' && pass "classes: the checkpoint keeps them (info)" ||
    fail "classes: the checkpoint keeps them (info)" "$($LOOM info "$T/pets")"
ok "classes: sample --label dog" $LOOM sample "$T/pets" --label dog --n 2 --seed 3 --out "$T/dog.png"
ok "classes: sample --label 1" $LOOM sample "$T/pets" --label 1 --n 2 --seed 3 --out "$T/one.png"
same "classes: --label dog == --label 1" "$T/dog.png" "$T/one.png"
rejects "classes: an unknown name" 2 "label bird" $LOOM sample "$T/pets" --label bird --out "$T/x.png"
rejects "classes: a test split of other classes is refused, naming both" 2 "(cat, fish) are not the run's training classes (cat, dog)" \
    $LOOM eval "$T/pets"
ok "classes: Fashion-MNIST run" $LOOM train --data fashion-mnist --valid 10 $NET0 --batch 2 --steps 1 --conditional --out "$T/fm"
grep -q '"Ankle boot"' "$T/fm/config.json" && grep -q '"T-shirt/top"' "$T/fm/config.json" &&
    pass "classes: Fashion-MNIST's names" || fail "classes: Fashion-MNIST's names" "$(grep -A3 class_names "$T/fm/config.json")"
ok "classes: sample --label 'Ankle boot'" $LOOM sample "$T/fm" --label "Ankle boot" --n 1 --out "$T/boot.png"

# ---- checkpoints written by the main of before the trainer (tests/fixtures/main_rowlstm_v1*)
O=$T/old
mkdir -p "$O"
cp tests/fixtures/main_rowlstm_v1.safetensors "$O/checkpoint.safetensors"
$LOOM info "$O" >"$T/i.txt" 2>&1
grep -q '^step *2 of 2' "$T/i.txt" && grep -q 'seed 18446744073709551557' "$T/i.txt" &&
    pass "old checkpoint: loads (step, seed beyond 2^53)" || fail "old checkpoint: loads" "$(cat "$T/i.txt")"
ok "old checkpoint: resumes" $LOOM train --resume "$O" --steps 3 --threads 1 --quiet
$LOOM eval "$O" --limit 20 --json --threads 1 >"$T/o1.json" 2>"$T/err"
$LOOM eval tests/fixtures/main_rowlstm_v1_step3.safetensors --limit 20 --json --threads 1 >"$T/o2.json" 2>>"$T/err"
for f in o1 o2; do sed 's/"checkpoint": "[^"]*", //' "$T/$f.json" >"$T/$f.nock"; done
[ -s "$T/o1.json" ] && same "old checkpoint: resumed to step 3 == the old main's step 3 (same test NLL)" "$T/o1.nock" "$T/o2.nock" ||
    fail "old checkpoint: resumed to step 3" "$(cat "$T/err")"
grep -q '"valid_split":[[:space:]]*"tail"' "$O/config.json" && pass "old checkpoint: keeps its tail split" ||
    fail "old checkpoint: keeps its tail split" "$(cat "$O/config.json")"
for m in grupixel draw diagbilstm; do
    $LOOM info tests/fixtures/main_${m}_v1.safetensors >"$T/i.txt" 2>&1
    grep -q "^model *$m 28x28" "$T/i.txt" && grep -q '^step *1 of 1' "$T/i.txt" &&
        pass "old checkpoint: $m from the old main loads" || fail "old checkpoint: $m loads" "$(cat "$T/i.txt")"
done
