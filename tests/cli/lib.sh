# Sourced by tests/cli/*.sh. Each check prints "PASS name" or "FAIL name: why";
# tests/run.sh counts those lines. $LOOM is the binary under test.
: "${LOOM:=build/loom}"
case "$LOOM" in /*) ;; *) LOOM="$PWD/$LOOM" ;; esac
FMNIST=/usr/share/datasets/fashion-mnist
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset OPENBLAS_CORETYPE

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# skip NAME WHY: a check this machine cannot make (tests/run.sh counts it as skipped)
skip() { echo "SKIP $1: $2"; }

# ok NAME CMD...: the command exits 0
ok() {
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then pass "$name"
    else fail "$name" "exit $? from '$*': $(tail -n 3 "$T/err" | tr '\n' ' ')"; fi
}

# rejects NAME CODE PATTERN CMD...: the command exits with CODE and prints exactly
# one stderr line that starts with "loom" and matches the grep pattern PATTERN
rejects() {
    name=$1 code=$2 pat=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    lines=$(wc -l <"$T/err")
    if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, wanted $code; stderr: $(head -c 300 "$T/err")"
    elif [ "$lines" -ne 1 ]; then fail "$name" "$lines stderr lines: $(head -c 300 "$T/err")"
    elif ! grep -q '^loom' "$T/err" || ! grep -q -- "$pat" "$T/err"; then
        fail "$name" "stderr does not match '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

# same NAME FILE_A FILE_B: byte-identical files
same() {
    if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi
}

# be32 N: N as 4 big-endian bytes on stdout
be32() {
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
        $(($1 >> 8 & 255)) $(($1 & 255)))"
}

# idx_subset DIR NTRAIN NTEST: a small IDX data directory (raw, not gzip) made of
# the first images and labels of the Debian Fashion-MNIST files
idx_subset() {
    mkdir -p "$1"
    for s in "train $2" "t10k $3"; do
        set -- "$1" $s
        { printf '\000\000\010\003'; be32 "$3"; be32 28; be32 28
          gzip -dc "$FMNIST/$2-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($3 * 784)); } \
            >"$1/$2-images-idx3-ubyte"
        { printf '\000\000\010\001'; be32 "$3"
          gzip -dc "$FMNIST/$2-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$3"; } \
            >"$1/$2-labels-idx1-ubyte"
    done
}

# json_get KEY: the numeric value of "KEY" in the one-line JSON object on stdin
json_get() {
    sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"
}
