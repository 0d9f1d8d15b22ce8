# Loss terms in metrics.csv (issue 15): a model with a KL term (draw, rae
# --variational) gets the validation's KL and reconstruction in their own
# columns, which add up to its validation NLL; other models do not.
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 64 16
ok "terms: a tiny draw run" $LOOM train --model draw --hidden 8 --zdim 2 --steps-draw 2 --valid 16 --batch 8 --data "$D" \
    --steps 4 --eval-every 2 --eval-limit 8 --log-every 1 --threads 1 --quiet --out "$T/d"
head -n 1 "$T/d/metrics.csv" | grep -q ',event,valid_kl_nats_per_image,valid_recon_nats_per_image$' &&
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
[ "$(awk -F, '{print NF}' "$T/d/metrics.csv" | sort -u)" = 11 ] && pass "terms: every row has the 11 columns after the resume" ||
    fail "terms: rows after the resume" "$(cat "$T/d/metrics.csv")"
grep -q 'class="pt valid_kl_nats_per_image"' "$T/d/report.html" && pass "terms: the report draws the KL" ||
    fail "terms: the report draws the KL" "no points"
