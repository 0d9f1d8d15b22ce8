#include "common.h"

#include <cblas.h>

void loom_blas_init(void) {
    /* loom parallelises over batch shards; BLAS threads inside them would
     * oversubscribe the cores (measured: 2 BLAS threads give ~1.1x on our
     * GEMM shapes, two shards give ~2x). */
    openblas_set_num_threads(1);
}

const char *loom_blas_core(void) { return openblas_get_corename(); }
