# loom report: a self-contained HTML page of a run, refreshed by the trainer at
# every checkpoint, loaded in a real browser (headless Chromium).
. tests/cli/lib.sh
D=$T/data; idx_subset "$D" 120 16
NET="--model rowlstm --layers 1 --hidden 4 --valid 16 --batch 8 --data $D --threads 1 --quiet"

ok "report: tiny run (log every step)" $LOOM train $NET --steps 6 --log-every 1 --eval-every 3 --eval-limit 8 \
    --sample-every 3 --checkpoint-every 3 --out "$T/run"
ok "report: resume to 9 steps" $LOOM train --resume "$T/run" --steps 9 --log-every 1 --quiet
H=$T/run/report.html
[ -s "$H" ] && grep -q 'id="step">9 of 9<' "$H" && pass "report: train writes report.html, at the checkpoint's step" ||
    fail "report: train writes report.html, at the checkpoint's step" "$(grep -o 'id="step">[^<]*' "$H" 2>&1)"
# self-contained: no script, nothing fetched (every src/href is a data: URI or a fragment)
if ! grep -qi '<script' "$H" && ! grep -Eoi '(src|href)="[^"#d][^"]*"' "$H" | grep -q . &&
   [ "$(grep -o 'src="data:image/png;base64,' "$H" | wc -l)" -eq 2 ]; then
    pass "report: offline page (no scripts, no URLs), 2 sample grids embedded"
else fail "report: offline page" "$(grep -Eoi '(src|href)="[^"]{0,40}' "$H" | sort | uniq -c)"; fi
grep -q 'class="resume"' "$H" && pass "report: the resume is marked on the curves" ||
    fail "report: the resume is marked on the curves" "no line.resume"
rejects "report: not a run directory" 2 "checkpoint.safetensors" $LOOM report "$T/nothing"
ok "report: loom report --out" $LOOM report "$T/run" --out "$T/r.html"
cmp -s "$H" "$T/r.html" && pass "report: loom report == the trainer's page" || fail "report: loom report == the trainer's page" "differ"

# refreshed at every checkpoint: a run killed (SIGKILL: no end-of-run code runs)
# after its first checkpoints still has a report of one of them
$LOOM train $NET --steps 1000000 --checkpoint-every 2 --eval-every 0 --out "$T/long" &
pid=$!
for i in $(seq 1 600); do  # up to 60 s (a sanitizer build on a loaded machine is slow)
    s=$(sed -n 's/.*id="step">\([0-9]*\) of.*/\1/p' "$T/long/report.html" 2>/dev/null)
    [ -n "$s" ] && [ "$s" -ge 4 ] && break
    sleep 0.1
done
kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
[ -n "$s" ] && [ "$s" -ge 4 ] && [ $((s % 2)) -eq 0 ] && pass "report: refreshed at every checkpoint (step $s of a killed run)" ||
    fail "report: refreshed at every checkpoint" "report step '$s'"
ok "report: --no-report" $LOOM train $NET --steps 2 --no-report --out "$T/nr"
[ ! -e "$T/nr/report.html" ] && pass "report: --no-report writes none" || fail "report: --no-report writes none" "written"

# ---- in a browser. Chromium is installed when absent (make report-deps).
if ! command -v chromium >/dev/null 2>&1; then make -s report-deps >"$T/deps.log" 2>&1; fi
if ! command -v chromium >/dev/null 2>&1; then
    fail "report: chromium" "not installed and 'make report-deps' failed: $(tail -n 2 "$T/deps.log")"
    exit 0
fi
chrome() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --disable-quic --disable-extensions \
        --user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" --enable-logging=stderr --v=0 "$@"
}
chrome --dump-dom "file://$H" >"$T/dom.html" 2>"$T/chrome.err"
if grep -q '</svg>' "$T/dom.html" && ! grep -Eq 'CONSOLE|Uncaught|SyntaxError' "$T/chrome.err"; then
    pass "report: Chromium loads the page with no console errors"
else fail "report: Chromium loads the page with no console errors" "$(grep -E 'CONSOLE|Uncaught' "$T/chrome.err" | head -3)"; fi
# one point per logged step, as the browser parsed the SVG
rows=$(awk -F, 'NR > 1 && $2 != "" {n++} END {print n}' "$T/run/metrics.csv")
pts=$(grep -o '<circle class="pt train_bits_per_dim"' "$T/dom.html" | wc -l)
[ "$rows" -eq 9 ] && [ "$pts" -eq "$rows" ] && pass "report: one SVG point per logged step ($pts)" ||
    fail "report: one SVG point per logged step" "$pts points, $rows logged steps"
chrome --screenshot="$T/shot.png" --window-size=1000,1400 "file://$H" >/dev/null 2>&1
# not blank: many pixels that are not the page's white (decoded with Python's zlib)
nonwhite=$(PYTHONPATH="$(dirname "$0")" /usr/bin/python3 - "$T/shot.png" <<'PY' 2>&1
import sys
from pngrows import read
w, h, bpp, rows = read(sys.argv[1])
dark = sum(1 for line in rows for x in range(0, w * bpp, bpp) if min(line[x:x + 3]) < 200)
print(dark)
PY
)
[ "${nonwhite:-0}" -gt 5000 ] 2>/dev/null && pass "report: the screenshot is not blank ($nonwhite dark pixels)" ||
    fail "report: the screenshot is not blank" "$nonwhite"
