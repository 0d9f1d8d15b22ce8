# Loss terms in metrics.csv (issue 15): a model with a KL term (draw, rae
# --variational) gets the validation's KL and reconstruction in their own
# columns, which add up to its validation NLL, and the training loss's (the
# model's loss_terms op, averaged over the row's steps like the loss), which
# add up to its training loss; other models do not.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 16
ok "terms: a tiny draw run" $LOOM train --model draw --hidden 8 --zdim 2 --steps-draw 2 --valid 16 --batch 8 --data "$D" \
    --steps 4 --eval-every 2 --eval-limit 8 --log-every 1 --threads 1 --quiet --out "$T/d"
head -n 1 "$T/d/metrics.csv" | grep -q ',event,valid_kl_nats_per_image,valid_recon_nats_per_image,train_kl_nats_per_image,train_recon_nats_per_image$' &&
    pass "terms: draw's metrics.csv has KL and reconstruction columns" || fail "terms: draw's columns" "$(head -n 1 "$T/d/metrics.csv")"
# on every validated row: KL > 0 (a fresh posterior is not the prior) and KL + reconstruction = the validation in nats (784 pixels)
awk -F, 'NR > 1 { v = $3 != "" ? $3 : $6; if (v == "") { if ($10 != "" || $11 != "") bad = bad " terms without validation at " $1; next }
    n++; d = $10 + $11 - v * 784 * log(2); if ($10 <= 0 || d > 0.001 || d < -0.001) bad = bad " step " $1 " off by " d }
    END { if (bad != "" || n != 2) { print n " rows:" bad; exit 1 } }' "$T/d/metrics.csv" >"$T/bad" &&
    pass "terms: KL + reconstruction == the validation NLL, on the subset and the full set" ||
    fail "terms: KL + reconstruction == the validation NLL" "$(cat "$T/bad" "$T/d/metrics.csv")"
ok "terms: a tiny rowlstm run" $LOOM train --model rowlstm --layers 1 --hidden 4 --valid 16 --batch 8 --data "$D" --steps 2 \
    --threads 1 --quiet --out "$T/r"
! head -n 1 "$T/r/metrics.csv" | grep -q valid_kl && pass "terms: an exact-likelihood model has no term columns" ||
    fail "terms: rowlstm has no term columns" "$(head -n 1 "$T/r/metrics.csv")"
ok "terms: resume keeps the columns" $LOOM train --resume "$T/d" --steps 6 --log-every 2 --quiet
[ "$(awk -F, '{print NF}' "$T/d/metrics.csv" | sort -u)" = 13 ] && pass "terms: every row has the 13 columns after the resume" ||
    fail "terms: rows after the resume" "$(cat "$T/d/metrics.csv")"
grep -q 'class="pt valid_kl_nats_per_image"' "$T/d/report.html" && pass "terms: the report draws the KL" ||
    fail "terms: the report draws the KL" "no points"

# the training loss's terms: on every row but the resume marker, KL > 0 and KL + reconstruction
# = the training loss in nats per image (784 pixels; bits/dim printed to 6 digits: 0.002 nats);
# 4 rows, then the resume marker, then step 6
awk -F, 'NR > 1 && $9 != "resume" { n++; d = $12 + $13 - $2 * 784 * log(2); if ($12 == "" || $12 <= 0 || d > 0.002 || d < -0.002) bad = bad " step " $1 " off by " d }
    END { if (bad != "" || n != 5) { print n " rows:" bad; exit 1 } }' "$T/d/metrics.csv" >"$T/bad" &&
    pass "terms: train KL + reconstruction == the training loss on every row" ||
    fail "terms: train KL + reconstruction == the training loss" "$(cat "$T/bad" "$T/d/metrics.csv")"
grep -q 'class="pt train_kl_nats_per_image"' "$T/d/report.html" && grep -q 'class="pt train_recon_nats_per_image"' "$T/d/report.html" &&
    pass "terms: the report draws the training KL and reconstruction" || fail "terms: the report draws the training terms" "no points"
# the same terms on 2 threads (each image's terms summed in image order)
ok "terms: the draw run on 2 threads" $LOOM train --model draw --hidden 8 --zdim 2 --steps-draw 2 --valid 16 --batch 8 --data "$D" \
    --steps 4 --eval-every 2 --eval-limit 8 --log-every 1 --threads 2 --quiet --out "$T/d2"
[ "$(head -n 5 "$T/d/metrics.csv" | cut -d, -f2,12,13)" = "$(cut -d, -f2,12,13 "$T/d2/metrics.csv")" ] &&
    pass "terms: the training terms are the same on 1 and 2 threads" ||
    fail "terms: the training terms on 1 and 2 threads" "$(cut -d, -f2,12,13 "$T/d/metrics.csv" "$T/d2/metrics.csv")"
# a VAE has them, a plain autoencoder (its loss is the reconstruction alone) does not
ok "terms: a tiny rae --variational run" $LOOM train --model rae --variational --hidden 8 --zdim 2 --valid 16 --batch 8 --data "$D" \
    --steps 2 --log-every 1 --threads 1 --quiet --out "$T/v"
awk -F, 'NR == 1 { ok = $12 == "train_kl_nats_per_image" && $13 == "train_recon_nats_per_image" } NR > 1 { n++; d = $12 + $13 - $2 * 784 * log(2); if ($12 <= 0 || d > 0.002 || d < -0.002) ok = 0 }
    END { exit !(ok && n == 2) }' "$T/v/metrics.csv" && pass "terms: rae --variational reports its training KL and reconstruction" ||
    fail "terms: rae --variational's training terms" "$(cat "$T/v/metrics.csv")"
ok "terms: a tiny plain rae run" $LOOM train --model rae --hidden 8 --zdim 2 --valid 16 --batch 8 --data "$D" --steps 2 --threads 1 \
    --quiet --out "$T/p"
! head -n 1 "$T/p/metrics.csv" | grep -q train_kl && pass "terms: a plain autoencoder has no training-term columns" ||
    fail "terms: plain rae has no term columns" "$(head -n 1 "$T/p/metrics.csv")"
! head -n 1 "$T/r/metrics.csv" | grep -q train_kl && pass "terms: an exact-likelihood model has no training-term columns" ||
    fail "terms: rowlstm has no training-term columns" "$(head -n 1 "$T/r/metrics.csv")"
