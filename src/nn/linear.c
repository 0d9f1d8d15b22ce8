#include "nn.h"

#include "../core/gemm.h"
#include <string.h>

void loom_linear_forward(float *y, const float *x, const float *w, const float *b, size_t n,
                         size_t k, size_t m) {
    /* y (n, m) = x (n, k) @ w (k, m) + b (m) */
    if (b) {
        for (size_t r = 0; r < n; r++) memcpy(y + r * m, b, m * sizeof *y);
    }
    loom_gemm(false, false, n, m, k, 1.0f, x, k, w, m, b ? 1.0f : 0.0f, y, m);
}

void loom_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, size_t n, size_t k, size_t m) {
    /* forward: y = x @ w + b */
    if (dx)
        loom_gemm(false, true, n, k, m, 1.0f, dy, m, w, m, 1.0f, dx, k);
    if (dw)
        loom_gemm(true, false, k, m, n, 1.0f, x, k, dy, m, 1.0f, dw, m);
    if (db) {
        for (size_t r = 0; r < n; r++) {
            const float *row = dy + r * m;
            for (size_t j = 0; j < m; j++) db[j] += row[j];
        }
    }
}

void loom_relu_forward(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void loom_relu_backward(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
