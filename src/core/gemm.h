/* The library's one matrix product. Every layer multiplies through here, so
 * that a back-end (OpenBLAS today) can be swapped or tuned in one place. */
#ifndef LOOM_GEMM_H
#define LOOM_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* C (m, n) = alpha op(A) op(B) + beta C, all row-major; op(A) is (m, k) and
 * op(B) (k, n); ta / tb say that A / B are stored transposed. lda, ldb, ldc
 * are the row strides of A, B, C as stored. beta 0 overwrites C (NaNs in C
 * do not propagate). */
void loom_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb,
               float beta, float *c, size_t ldc);

#endif
