# Sourced by the bench scripts after LOOM is set: the peers' OpenBLAS (PyTorch links
# it) runs the kernels loom runs. Where OpenBLAS takes this CPU for a generic one,
# loom names the right core itself (cli/main.c) and reports it as blas_core; a core
# already in the environment is kept.
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$LOOM" bench --peak 64 --json 2>/dev/null | sed -n 's/.*"blas_core": *"\([A-Za-z0-9_]*\)".*/\1/p')}
[ -n "$OPENBLAS_CORETYPE" ] && export OPENBLAS_CORETYPE
