#include "nn.h"

#include <cblas.h>
#include <string.h>

void loom_linear_forward(float *y, const float *x, const float *w, const float *b, size_t n,
                         size_t k, size_t m) {
    /* y (n, m) = x (n, k) @ w (k, m) + b (m) */
    if (b) {
        for (size_t r = 0; r < n; r++) memcpy(y + r * m, b, m * sizeof *y);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)m, (int)k, 1.0f, x,
                (int)k, w, (int)m, b ? 1.0f : 0.0f, y, (int)m);
}

void loom_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, size_t n, size_t k, size_t m) {
    /* forward: y = x @ w + b */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)k, (int)m, 1.0f, dy,
                    (int)m, w, (int)m, 1.0f, dx, (int)k);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)m, (int)n, 1.0f, x,
                    (int)k, dy, (int)m, 1.0f, dw, (int)m);
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
