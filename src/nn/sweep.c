/* Bidirectional sweeps: sweep.h. The backward layer reads a time-reversed
 * copy of x, so both directions are the plain sequence layers of seq.h. */
#include "sweep.h"

#include <string.h>

/* cache: y^f (T, B, H) | y^b in its own (reversed) time (T, B, H) |
 * x reversed (T, B, In) | the forward layer's cache | the backward layer's */
size_t loom_bisweep_cache_floats(loom_cell c, loom_seq_dims d) {
    const size_t N = d.T * d.B;
    return 2 * N * d.H + N * d.In + 2 * loom_seq_cache_floats(c, d);
}

/* scratch: dy^f (T, B, H) | dy^b reversed (T, B, H) | dx reversed (T, B, In) | seq scratch */
size_t loom_bisweep_scratch_floats(loom_cell c, loom_seq_dims d) {
    const size_t N = d.T * d.B;
    return 2 * N * d.H + N * d.In + loom_seq_scratch_floats(c, d);
}

/* dst (T, B, F) = src with time reversed */
static void reverse_time(float *dst, const float *src, size_t T, size_t BF) {
    for (size_t t = 0; t < T; t++) memcpy(dst + t * BF, src + (T - 1 - t) * BF, BF * sizeof *dst);
}

static void seq_forward(loom_cell c, float *y, float *cache, const float *x, loom_seq_params p,
                        loom_seq_dims d) {
    switch (c) {
    case LOOM_CELL_RNN: loom_rnn_forward(y, NULL, cache, x, NULL, p, d); break;
    case LOOM_CELL_LSTM: loom_lstm_forward(y, NULL, NULL, cache, x, NULL, NULL, p, d); break;
    case LOOM_CELL_GRU: loom_gru_forward(y, NULL, cache, x, NULL, p, d); break;
    }
}

static void seq_backward(loom_cell c, float *dx, loom_seq_grads g, float *scratch, const float *dy,
                         const float *x, loom_seq_params p, const float *cache, const float *y,
                         loom_seq_dims d) {
    switch (c) {
    case LOOM_CELL_RNN: loom_rnn_backward(dx, NULL, g, scratch, dy, NULL, x, NULL, p, cache, y, d); break;
    case LOOM_CELL_LSTM:
        loom_lstm_backward(dx, NULL, NULL, g, scratch, dy, NULL, NULL, x, NULL, NULL, p, cache, y, d);
        break;
    case LOOM_CELL_GRU: loom_gru_backward(dx, NULL, g, scratch, dy, NULL, x, NULL, p, cache, y, d); break;
    }
}

void loom_bisweep_forward(float *y, float *cache, const float *x, loom_bisweep_params p,
                          loom_cell c, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, N = d.T * B;
    float *yf = cache, *yb = yf + N * H, *xr = yb + N * H; /* (T, B, H) (T, B, H) (T, B, In) */
    float *cf = xr + N * d.In, *cb = cf + loom_seq_cache_floats(c, d);
    seq_forward(c, yf, cf, x, p.f, d);
    reverse_time(xr, x, d.T, B * d.In);
    seq_forward(c, yb, cb, xr, p.b, d);
    /* y_t = [h^f_t | h^b_{T-1-t} of the reversed sequence] */
    for (size_t t = 0; t < d.T; t++)
        for (size_t s = 0; s < B; s++) {
            float *dst = y + (t * B + s) * 2 * H;
            memcpy(dst, yf + (t * B + s) * H, H * sizeof *dst);
            memcpy(dst + H, yb + ((d.T - 1 - t) * B + s) * H, H * sizeof *dst);
        }
}

void loom_bisweep_backward(float *dx, loom_bisweep_grads g, float *scratch, const float *dy,
                           const float *x, loom_bisweep_params p, const float *cache, loom_cell c,
                           loom_seq_dims d) {
    const size_t B = d.B, H = d.H, N = d.T * B, In = d.In;
    const float *yf = cache, *yb = yf + N * H, *xr = yb + N * H;
    const float *cf = xr + N * In, *cb = cf + loom_seq_cache_floats(c, d);
    float *dyf = scratch, *dyb = dyf + N * H, *dxr = dyb + N * H, *ss = dxr + N * In;
    /* y_t = [h^f_t | h^b_{T-1-t}]: split dy, the second half back into reversed time */
    for (size_t t = 0; t < d.T; t++)
        for (size_t s = 0; s < B; s++) {
            const float *src = dy + (t * B + s) * 2 * H;
            memcpy(dyf + (t * B + s) * H, src, H * sizeof *dyf);
            memcpy(dyb + ((d.T - 1 - t) * B + s) * H, src + H, H * sizeof *dyb);
        }
    seq_backward(c, dx, g.f, ss, dyf, x, p.f, cf, yf, d);
    if (dx) memset(dxr, 0, N * In * sizeof *dxr);
    seq_backward(c, dx ? dxr : NULL, g.b, ss, dyb, xr, p.b, cb, yb, d);
    /* xr_t = x_{T-1-t} */
    if (dx)
        for (size_t t = 0; t < d.T; t++) {
            float *dst = dx + t * B * In;
            const float *src = dxr + (d.T - 1 - t) * B * In;
            for (size_t k = 0; k < B * In; k++) dst[k] += src[k];
        }
}

void loom_grid_transpose(float *dst, const float *src, size_t A, size_t n, size_t Bd, size_t F,
                         int accumulate) {
    for (size_t a = 0; a < A; a++)
        for (size_t b = 0; b < n; b++)
            for (size_t j = 0; j < Bd; j++) {
                const float *s = src + ((a * n + b) * Bd + j) * F;
                float *t = dst + ((j * n + b) * A + a) * F;
                if (accumulate)
                    for (size_t k = 0; k < F; k++) t[k] += s[k];
                else
                    memcpy(t, s, F * sizeof *t);
            }
}
