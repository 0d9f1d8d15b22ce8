# examples/ built the way a user would: against the headers, libraries and loom.pc that
# `make install PREFIX=$LOOM_PREFIX` installed (make test does it into build/prefix),
# compiled with only pkg-config's flags, once shared and once static, then run.
. tests/cli/lib.sh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${CC:=cc}"
P=${LOOM_PREFIX:-}
if [ -z "$P" ] || [ ! -f "$P/lib/pkgconfig/loom.pc" ]; then
    fail "examples: an installed prefix" "LOOM_PREFIX='$P' has no lib/pkgconfig/loom.pc (run via make test)"
    exit 1
fi
PKG_CONFIG_PATH=$P/lib/pkgconfig
export PKG_CONFIG_PATH
# strict C11 against the installed headers only (no -I into the source tree)
XFLAGS="-std=c11 -Wall -Wextra -Wpedantic -Werror ${LOOM_EXAMPLE_CFLAGS:-}"

# ---- the install: one version everywhere, a versioned shared library with a SONAME
V=$(sed -n 's/^#define LOOM_VERSION "\(.*\)"/\1/p' "$ROOT/include/loom/version.h")
[ -n "$V" ] && [ "$(pkg-config --modversion loom)" = "$V" ] && [ "$($LOOM --version)" = "loom $V" ] &&
    [ "$($LOOM version)" = "loom $V" ] &&
    pass "version: loom.pc, loom --version and LOOM_VERSION agree ($V)" ||
    fail "version: loom.pc, loom --version and LOOM_VERSION agree" "header '$V', pc '$(pkg-config --modversion loom)', cli '$($LOOM --version)'"
rejects "version: takes no arguments" 2 "no arguments" $LOOM --version extra
major=${V%%.*}
[ "$(readlink "$P/lib/libloom.so")" = "libloom.so.$major" ] &&
    [ "$(readlink "$P/lib/libloom.so.$major")" = "libloom.so.$V" ] && [ -f "$P/lib/libloom.so.$V" ] &&
    [ -f "$P/lib/libloom.a" ] && [ -f "$P/include/loom.h" ] && [ -f "$P/include/loom/model.h" ] &&
    pass "install: libloom.so -> libloom.so.$major -> libloom.so.$V, libloom.a, headers" ||
    fail "install: libloom.so -> libloom.so.$major -> libloom.so.$V, libloom.a, headers" "$(ls -l "$P/lib" "$P/include" | tr '\n' ' ')"
readelf -d "$P/lib/libloom.so.$V" | grep -q "SONAME.*\[libloom.so.$major\]" &&
    pass "install: SONAME libloom.so.$major" || fail "install: SONAME libloom.so.$major" "$(readelf -d "$P/lib/libloom.so.$V" | grep SONAME)"
pkg-config --static --libs loom | grep -q -- '-lopenblas' && pkg-config --static --libs loom | grep -q -- '-lcjson' &&
    pkg-config --static --libs loom | grep -q -- '-lpng16' && pkg-config --static --libs loom | grep -q -- '-lgif' &&
    ! pkg-config --libs loom | grep -q -- '-lopenblas' &&
    pass "loom.pc: private link flags only with --static" ||
    fail "loom.pc: private link flags only with --static" "libs '$(pkg-config --libs loom)' static '$(pkg-config --static --libs loom)'"

# DESTDIR: make test-prefix also staged an install of PREFIX=/opt/loom into $P/../destdir
S=$(dirname "$P")/destdir
[ -f "$S/opt/loom/lib/libloom.so.$V" ] && [ -f "$S/opt/loom/include/loom/gif.h" ] && [ -x "$S/opt/loom/bin/loom" ] &&
    grep -qx 'prefix=/opt/loom' "$S/opt/loom/lib/pkgconfig/loom.pc" && ! grep -q "$S" "$S/opt/loom/lib/pkgconfig/loom.pc" &&
    pass "install: DESTDIR stages PREFIX=/opt/loom; loom.pc names /opt/loom" ||
    fail "install: DESTDIR stages PREFIX=/opt/loom; loom.pc names /opt/loom" "$(find "$S" | head -20 | tr '\n' ' ')"

# ---- build: shared with pkg-config's flags; static with --static and the archive
# (Debian ships no libcjson.a, so `cc -static` of a whole program cannot work; the
# archive is named instead of -lloom, which would pick the .so)
for ex in sample_grid train_tiny; do
    if $CC $XFLAGS $(pkg-config --cflags loom) "$ROOT/examples/$ex.c" $(pkg-config --libs loom) \
        -o "$T/$ex" 2>"$T/err"; then pass "examples: $ex builds against the installed libloom.so"
    else fail "examples: $ex builds against the installed libloom.so" "$(head -c 400 "$T/err")"; fi
    if [ -n "${LOOM_EXAMPLE_NO_STATIC:-}" ]; then echo "SKIP $ex static (sanitizer build)"; continue; fi
    if $CC $XFLAGS $(pkg-config --cflags --static loom) "$ROOT/examples/$ex.c" \
        $(pkg-config --libs --static loom | sed 's/-lloom\( \|$\)/-l:libloom.a /') -o "$T/${ex}_static" 2>"$T/err" &&
        ! ldd "$T/${ex}_static" | grep -q libloom; then pass "examples: $ex links statically (no libloom.so needed)"
    else fail "examples: $ex links statically (no libloom.so needed)" "$(head -c 400 "$T/err") $(ldd "$T/${ex}_static" 2>&1 | grep loom)"; fi
done
LD_LIBRARY_PATH=$P/lib ldd "$T/sample_grid" | grep -q "libloom.so.$major => $P/lib/libloom.so.$major" &&
    pass "examples: the shared build loads libloom.so.$major from the prefix" ||
    fail "examples: the shared build loads libloom.so.$major from the prefix" "$(LD_LIBRARY_PATH=$P/lib ldd "$T/sample_grid" | grep loom)"

# ---- run: sample_grid on a run of `loom train` makes the same PNG as `loom sample`
D=$T/data
idx_subset "$D" 64 16
ok "examples: a tiny run to sample from" $LOOM train --model rowlstm --layers 1 --hidden 4 --valid 16 \
    --batch 8 --steps 4 --eval-every 0 --quiet --data "$D" --out "$T/run"
# --scale 1: the example writes the grid of the images as they are (loom sample enlarges it by default)
ok "examples: loom sample" $LOOM sample "$T/run" --n 5 --seed 3 --scale 1 --out "$T/cli.png"
ok "examples: sample_grid (shared)" env LD_LIBRARY_PATH="$P/lib" "$T/sample_grid" "$T/run" "$T/ex.png" 5 3
same "examples: sample_grid's PNG is loom sample's (same seed)" "$T/cli.png" "$T/ex.png"
# the same for a colour model (an RGB grid)
ok "examples: a tiny colour run" $LOOM train --model rowlstm --layers 1 --hidden 3 --valid 8 --batch 4 --steps 2 \
    --eval-every 0 --quiet --data "$(dirname "$0")/../fixtures/png8/colour" --out "$T/rgb"
ok "examples: loom sample (colour)" $LOOM sample "$T/rgb" --n 5 --seed 3 --scale 1 --out "$T/cli_rgb.png"
ok "examples: sample_grid (colour)" env LD_LIBRARY_PATH="$P/lib" "$T/sample_grid" "$T/rgb" "$T/ex_rgb.png" 5 3
same "examples: sample_grid's RGB PNG is loom sample's" "$T/cli_rgb.png" "$T/ex_rgb.png"
if [ -z "${LOOM_EXAMPLE_NO_STATIC:-}" ]; then
    ok "examples: sample_grid (static) on the checkpoint file" "$T/sample_grid_static" "$T/run/checkpoint.safetensors" "$T/exs.png" 5 3
    same "examples: the static build's PNG is the same" "$T/cli.png" "$T/exs.png"
fi
"$T/sample_grid" "$T/run" "$T/x.png" >/dev/null 2>"$T/err" </dev/null
rc=$?
[ "$rc" -ne 0 ] && grep -q "libloom.so.$major" "$T/err" &&
    pass "examples: the shared build needs libloom.so.$major (not linked in)" ||
    fail "examples: the shared build needs libloom.so.$major (not linked in)" "exit $rc: $(cat "$T/err")"
env LD_LIBRARY_PATH="$P/lib" "$T/sample_grid" "$T/nothing" "$T/x.png" >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "nothing" "$T/err" &&
    pass "examples: sample_grid on a missing run: one line naming it, exit 2" ||
    fail "examples: sample_grid on a missing run: one line naming it, exit 2" "exit $rc: $(cat "$T/err")"

# ---- run: train_tiny's loss goes down, and its checkpoint is a loom checkpoint
if env LD_LIBRARY_PATH="$P/lib" "$T/train_tiny" "$D" 12 "$T/tiny.safetensors" >"$T/train.out" 2>"$T/err"; then
    pass "examples: train_tiny runs"
else fail "examples: train_tiny runs" "$(cat "$T/err")"; fi
first=$(sed -n 's/^step 1 loss \([0-9.]*\) .*/\1/p' "$T/train.out")
last=$(sed -n 's/^step 12 loss \([0-9.]*\) .*/\1/p' "$T/train.out")
awk -v a="$first" -v b="$last" 'BEGIN {exit !(a != "" && b != "" && b < a - 0.05)}' &&
    pass "examples: train_tiny's loss goes down ($first -> $last nats/pixel)" ||
    fail "examples: train_tiny's loss goes down" "first '$first' last '$last': $(tail -n 3 "$T/train.out")"
bpd=$(sed -n 's/^bits\/dim on the batch: \([0-9.]*\) before, \([0-9.]*\) after.*/\1 \2/p' "$T/train.out")
awk -v x="$bpd" 'BEGIN {split(x, v, " "); exit !(v[1] > v[2] && v[2] > 0)}' &&
    pass "examples: train_tiny's bits/dim on its batch falls ($bpd)" ||
    fail "examples: train_tiny's bits/dim on its batch falls" "'$bpd'"
$LOOM info "$T/tiny.safetensors" >"$T/info" 2>"$T/err" && grep -q "^model  *rowlstm" "$T/info" && grep -q "^step  *12 of" "$T/info" && grep -q "lr 0.01," "$T/info" &&
    pass "examples: loom info reads train_tiny's checkpoint (rowlstm, step 12)" ||
    fail "examples: loom info reads train_tiny's checkpoint" "$(cat "$T/info" "$T/err")"
ok "examples: loom sample reads train_tiny's checkpoint" $LOOM sample "$T/tiny.safetensors" --n 2 --out "$T/t.png"
env LD_LIBRARY_PATH="$P/lib" "$T/train_tiny" "$T/nothing" 2 >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "nothing" "$T/err" &&
    pass "examples: train_tiny on missing data: one line naming it, exit 2" ||
    fail "examples: train_tiny on missing data: one line naming it, exit 2" "exit $rc: $(cat "$T/err")"
