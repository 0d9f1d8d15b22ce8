# Messages that were found wrong (issue 15), each checked once.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 8
NET="--valid 8 --batch 8 --data $D --threads 1"

# grupixel's z note only for grupixel
$LOOM train --model rae --hidden 8 --zdim 2 $NET --steps 2 --out "$T/rae" >"$T/out" 2>"$T/err"
$LOOM train --model grupixel --hidden 4 $NET --steps 1 --out "$T/gp" >/dev/null 2>"$T/gerr"
! grep -q "zdim" "$T/err" && grep -q "zdim 32: z ~ N(0, I)" "$T/gerr" &&
    pass "messages: the z note is grupixel's, not rae's" || fail "messages: the z note is grupixel's" "$(cat "$T/err")"
# a plain rae cannot sample: no samples.png, and none announced
[ ! -e "$T/rae/samples.png" ] && grep -q "^done: step 2, checkpoint [^,]*$" "$T/err" &&
    pass "messages: a plain rae announces no samples.png" || fail "messages: a plain rae announces no samples.png" "$(tail -1 "$T/err"); $(ls "$T/rae")"
# eval --iw on a model without latent variables says so, naming it
$LOOM train --model rowlstm --layers 1 --hidden 4 $NET --steps 1 --quiet --out "$T/r" 2>/dev/null
rejects "messages: eval --iw on rowlstm: no latent variables" 2 "model rowlstm has no latent variables; its eval is the exact NLL" \
    $LOOM eval "$T/r" --iw 2
# "(subset)" only when the periodic validation used fewer images than the split
$LOOM train --model rowlstm --hidden 4 $NET --steps 4 --eval-every 2 --eval-limit 8 --log-every 2 --out "$T/full" >/dev/null 2>&1
$LOOM train --model rowlstm --hidden 4 $NET --steps 4 --eval-every 2 --eval-limit 4 --log-every 2 --out "$T/sub" >/dev/null 2>&1
! grep -q "subset" "$T/full/train.log" && grep -q "^step 2/4 .*valid [0-9.]* bits/dim (subset)" "$T/sub/train.log" &&
    pass "messages: (subset) only for a validation on part of the split" ||
    fail "messages: (subset) only for a validation on part of the split" "$(grep valid "$T/full/train.log" "$T/sub/train.log")"
# a file that is not a checkpoint
printf 'hello, this is text and not a checkpoint at all\n' >"$T/text.safetensors"
rejects "messages: a text file is 'not a safetensors file'" 2 "not a safetensors file" $LOOM info "$T/text.safetensors"
# write errors name the file asked for, not the temporary one
rejects "messages: write errors name the file, not PATH.tmp" 1 "$T/nodir/x.png: No such file" \
    $LOOM sample "$T/r" --n 1 --threads 1 --out "$T/nodir/x.png"
if grep -q '\.tmp' "$T/err"; then fail "messages: no .tmp in the write error" "$(cat "$T/err")"; else pass "messages: no .tmp in the write error"; fi
# one thread, one layer
grep -q ", 1 thread, products " "$T/r/train.log" && pass "messages: '1 thread'" || fail "messages: '1 thread'" "$(head -1 "$T/r/train.log")"
$LOOM info "$T/r" | grep -q "1 layer, hidden 4, 0 classes" && pass "messages: '1 layer'" || fail "messages: '1 layer'" "$($LOOM info "$T/r" | head -2)"
# --quiet: nothing on stderr for a run that needs no attention (train.log has it all)
$LOOM train --model rowlstm --hidden 4 $NET --steps 3 --log-every 1 --quiet --out "$T/q" >"$T/out" 2>"$T/err"
[ ! -s "$T/err" ] && [ ! -s "$T/out" ] && [ "$(grep -c '^step' "$T/q/train.log")" -eq 3 ] &&
    pass "messages: --quiet prints nothing, train.log has every line" || fail "messages: --quiet prints nothing" "$(cat "$T/err")"
# eval at a terminal shows its progress (script(1) gives it one); not when stderr is a file
script -qec "$LOOM eval $T/r --threads 1 --batch 2" /dev/null >"$T/tty" 2>&1 </dev/null
grep -q "eval: 8/8 images" "$T/tty" && pass "messages: eval shows progress at a terminal" ||
    fail "messages: eval shows progress at a terminal" "$(cat -v "$T/tty" | head -3)"
$LOOM eval "$T/r" --threads 1 --batch 2 >/dev/null 2>"$T/err"
[ ! -s "$T/err" ] && pass "messages: no progress when stderr is not a terminal" || fail "messages: no progress when stderr is not a terminal" "$(cat -v "$T/err")"
# flag typos
rejects "messages: a flag typo gets a suggestion" 2 "unknown flag --stpes; did you mean --steps?" $LOOM train --stpes 3 --out "$T/x"
rejects "messages: a prefix gets a suggestion" 2 "did you mean --temperature?" $LOOM sample "$T/r" --temp 2 --out "$T/x.png"
rejects "messages: no suggestion for something unlike any flag" 2 "unknown flag --zzzzzzzz (see" $LOOM eval "$T/r" --zzzzzzzz
# --out x.jpg is a JPEG, x.gif is refused
ok "messages: sample --out x.jpg" $LOOM sample "$T/r" --n 4 --threads 1 --out "$T/s.jpg"
[ "$(od -An -tx1 -N3 "$T/s.jpg" | tr -d ' ')" = ffd8ff ] && pass "messages: --out x.jpg writes JPEG bytes" ||
    fail "messages: --out x.jpg writes JPEG bytes" "$(od -An -tx1 -N8 "$T/s.jpg")"
rejects "messages: --out x.gif points to --gif" 2 "use --gif\|animations with --gif" $LOOM sample "$T/r" --n 1 --out "$T/s.gif"
