/* Tap convolutions: a (masked) convolution is the list of taps it has. */
#include "nn.h"

#include <string.h>

const loom_tap loom_mask_a7[LOOM_MASK_A7_TAPS] = {
    {-3, -3}, {-3, -2}, {-3, -1}, {-3, 0}, {-3, 1}, {-3, 2}, {-3, 3},
    {-2, -3}, {-2, -2}, {-2, -1}, {-2, 0}, {-2, 1}, {-2, 2}, {-2, 3},
    {-1, -3}, {-1, -2}, {-1, -1}, {-1, 0}, {-1, 1}, {-1, 2}, {-1, 3},
    {0, -3},  {0, -2},  {0, -1},
};

void loom_conv_im2col(float *col, const float *x, const loom_tap *taps, loom_conv_dims d) {
    /* col (H, B, W, ntaps*cin); x (H, B, W, cin) */
    const size_t kc = d.ntaps * d.cin;
    for (size_t i = 0; i < d.H; i++)
        for (size_t b = 0; b < d.B; b++)
            for (size_t j = 0; j < d.W; j++) {
                float *dst = col + ((i * d.B + b) * d.W + j) * kc;
                for (size_t t = 0; t < d.ntaps; t++, dst += d.cin) {
                    long y = (long)i + taps[t].dy, xx = (long)j + taps[t].dx;
                    if (y < 0 || y >= (long)d.H || xx < 0 || xx >= (long)d.W) {
                        memset(dst, 0, d.cin * sizeof *dst);
                    } else {
                        memcpy(dst, x + (((size_t)y * d.B + b) * d.W + (size_t)xx) * d.cin,
                               d.cin * sizeof *dst);
                    }
                }
            }
}

void loom_conv_forward(float *y, float *col, const float *x, const loom_tap *taps, const float *w,
                       const float *b, loom_conv_dims d) {
    loom_conv_im2col(col, x, taps, d);
    loom_linear_forward(y, col, w, b, d.H * d.B * d.W, d.ntaps * d.cin, d.cout);
}

void loom_conv_backward(float *dx, float *dw, float *db, float *col, const float *dy,
                        const float *x, const loom_tap *taps, const float *w, loom_conv_dims d) {
    const size_t n = d.H * d.B * d.W, kc = d.ntaps * d.cin;
    /* forward: y = im2col(x) @ w + b */
    loom_conv_im2col(col, x, taps, d);
    loom_linear_backward(NULL, dw, db, dy, col, w, n, kc, d.cout);
    if (!dx) return;
    /* dcol = dy @ w^T, then scatter each tap back to the pixel it read */
    memset(col, 0, n * kc * sizeof *col);
    loom_linear_backward(col, NULL, NULL, dy, NULL, w, n, kc, d.cout);
    for (size_t i = 0; i < d.H; i++)
        for (size_t bb = 0; bb < d.B; bb++)
            for (size_t j = 0; j < d.W; j++) {
                const float *src = col + ((i * d.B + bb) * d.W + j) * kc;
                for (size_t t = 0; t < d.ntaps; t++, src += d.cin) {
                    long yy = (long)i + taps[t].dy, xx = (long)j + taps[t].dx;
                    if (yy < 0 || yy >= (long)d.H || xx < 0 || xx >= (long)d.W) continue;
                    float *dst = dx + (((size_t)yy * d.B + bb) * d.W + (size_t)xx) * d.cin;
                    for (size_t c = 0; c < d.cin; c++) dst[c] += src[c];
                }
            }
}
