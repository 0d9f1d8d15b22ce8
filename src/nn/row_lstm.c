/* Row LSTM layer, docs/rowlstm.md. Shapes with N = H*B*W pixels, G = 4h gates:
 *   x, y (H, B, W, C); gates (H, B, W, G) in the order i f o g; c, tc, hs (H, B, W, h). */
#include "nn.h"

#include "fastmath.h"

#include "../core/gemm.h"
#include <string.h>

size_t loom_rowlstm_scratch_floats(loom_rowlstm_dims d) {
    size_t n = d.H * d.B * d.W, row = d.B * d.W, g = 4 * d.h;
    size_t colw = 2 * d.C > 3 * d.h ? 2 * d.C : 3 * d.h;
    /* col (N, colw) + row buffer (B*W, G) + dG (N, G) + dH (N, h) + dcarry (B*W, h) */
    return n * colw + row * g + n * g + n * d.h + row * d.h;
}

/* col (N, 2C) = [x at j-1 (zero at j = 0), x at j] */
static void is_im2col(float *col, const float *x, size_t npix, size_t W, size_t C) {
    for (size_t p = 0; p < npix; p++) {
        float *dst = col + p * 2 * C;
        if (p % W == 0) memset(dst, 0, C * sizeof *dst);
        else memcpy(dst, x + (p - 1) * C, C * sizeof *dst);
        memcpy(dst + C, x + p * C, C * sizeof *dst);
    }
}

/* col (n*W, 3h) = [h at j-1, j, j+1] of one row, zero-padded at the row ends */
static void ss_im2col(float *col, const float *hrow, size_t n, size_t W, size_t h) {
    for (size_t b = 0; b < n; b++)
        for (size_t j = 0; j < W; j++) {
            float *dst = col + (b * W + j) * 3 * h;
            const float *src = hrow + (b * W + j) * h;
            if (j == 0) memset(dst, 0, h * sizeof *dst);
            else memcpy(dst, src - h, h * sizeof *dst);
            memcpy(dst + h, src, h * sizeof *dst);
            if (j + 1 == W) memset(dst + 2 * h, 0, h * sizeof *dst);
            else memcpy(dst + 2 * h, src + h, h * sizeof *dst);
        }
}

void loom_rowlstm_row_ss(float *r, float *col, const float *h_prev, const float *w_ss, size_t n,
                         size_t W, size_t h) {
    ss_im2col(col, h_prev, n, W, h);
    loom_gemm(false, false, n * W, 4 * h, 3 * h, 1.0f, col, 3 * h, w_ss, 4 * h, 0.0f, r, 4 * h);
}

/* The LSTM update for npix pixels: a (npix, G) pre-activations in, activations
 * out (in place); c = f * cprev + i * g (cprev NULL means zero); h = o * tanh(c).
 * The two branches keep a conditional load out of the loop so gcc vectorises it. */
static inline void lstm_gates(float *restrict ai, float *restrict af, float *restrict ao,
                              float *restrict ag, float *restrict cp, float *restrict tp,
                              float *restrict hp, const float *restrict cprevp, size_t h,
                              int first) {
    for (size_t k = 0; k < h; k++) {
        float ig = loom_sigmoidf(ai[k]);
        float fg = loom_sigmoidf(af[k]);
        float og = loom_sigmoidf(ao[k]);
        float gg = loom_tanhf(ag[k]);
        float cv = first ? ig * gg : ig * gg + fg * cprevp[k];
        float t = loom_tanhf(cv);
        ai[k] = ig, af[k] = fg, ao[k] = og, ag[k] = gg;
        cp[k] = cv, tp[k] = t, hp[k] = og * t;
    }
}

static void lstm_cell(float *a, float *c, float *tc, float *hs, const float *cprev, size_t npix,
                      size_t h) {
    for (size_t p = 0; p < npix; p++) {
        float *ap = a + p * 4 * h;
        lstm_gates(ap, ap + h, ap + 2 * h, ap + 3 * h, c + p * h, tc + p * h, hs + p * h,
                   cprev ? cprev + p * h : NULL, h, cprev == NULL);
    }
}

/* y = x + hs @ w_out + b_out */
static void out_forward(float *y, const float *x, const float *hs, const float *w_out,
                        const float *b_out, size_t npix, size_t C, size_t h) {
    for (size_t p = 0; p < npix; p++)
        for (size_t k = 0; k < C; k++) y[p * C + k] = x[p * C + k] + b_out[k];
    loom_gemm(false, false, npix, C, h, 1.0f, hs, h, w_out, C, 1.0f, y, C);
}

static void add_cls(float *a, const float *cls, size_t rows, size_t B, size_t W, size_t g) {
    /* a (rows, B, W, g) += cls (B, g) */
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < B; b++) {
            const float *cb = cls + b * g;
            for (size_t j = 0; j < W; j++) {
                float *ap = a + ((r * B + b) * W + j) * g;
                for (size_t k = 0; k < g; k++) ap[k] += cb[k];
            }
        }
}

void loom_rowlstm_forward(float *y, loom_rowlstm_cache cache, float *scratch, const float *x,
                          loom_rowlstm_params p, loom_rowlstm_dims d) {
    const size_t row = d.B * d.W, n = d.H * row, g = 4 * d.h;
    float *col = scratch;
    size_t colw = 2 * d.C > 3 * d.h ? 2 * d.C : 3 * d.h;
    float *r = col + n * colw; /* (B*W, G) */

    /* input-to-state for the whole image: gates = [x_{j-1}, x_j] @ w_is + b_is */
    is_im2col(col, x, n, d.W, d.C);
    loom_linear_forward(cache.gates, col, p.w_is, p.b_is, n, 2 * d.C, g);
    if (p.cls) add_cls(cache.gates, p.cls, d.H, d.B, d.W, g);

    for (size_t i = 0; i < d.H; i++) {
        float *a = cache.gates + i * row * g;
        const float *cprev = NULL;
        if (i > 0) {
            loom_rowlstm_row_ss(r, col, cache.hs + (i - 1) * row * d.h, p.w_ss, d.B, d.W, d.h);
            for (size_t q = 0; q < row * g; q++) a[q] += r[q];
            cprev = cache.c + (i - 1) * row * d.h;
        }
        lstm_cell(a, cache.c + i * row * d.h, cache.tc + i * row * d.h,
                  cache.hs + i * row * d.h, cprev, row, d.h);
    }
    out_forward(y, x, cache.hs, p.w_out, p.b_out, n, d.C, d.h);
}

void loom_rowlstm_backward(float *dx, loom_rowlstm_grads gr, float *scratch, const float *dy,
                           const float *x, loom_rowlstm_params p, loom_rowlstm_cache cache,
                           loom_rowlstm_dims d) {
    const size_t row = d.B * d.W, n = d.H * row, h = d.h, g = 4 * h, C = d.C;
    size_t colw = 2 * C > 3 * h ? 2 * C : 3 * h;
    float *col = scratch;          /* (N, colw) */
    float *rbuf = col + n * colw;  /* (B*W, G) */
    float *dG = rbuf + row * g;    /* (N, G) */
    float *dH = dG + n * g;        /* (N, h) */
    float *dcarry = dH + n * h;    /* (B*W, h) */

    /* y = x + hs @ w_out + b_out */
    if (dx)
        for (size_t q = 0; q < n * C; q++) dx[q] += dy[q];
    memset(dH, 0, n * h * sizeof *dH);
    loom_linear_backward(dH, gr.w_out, gr.b_out, dy, cache.hs, p.w_out, n, h, C);

    memset(dcarry, 0, row * h * sizeof *dcarry);
    for (size_t ii = d.H; ii-- > 0;) {
        const size_t base = ii * row;
        for (size_t q = 0; q < row; q++) {
            const size_t pix = base + q;
            const float *ga = cache.gates + pix * g;
            const float *tc = cache.tc + pix * h;
            const float *cprev = ii > 0 ? cache.c + (pix - row) * h : NULL;
            const float *dh = dH + pix * h;
            float *dc_carry = dcarry + q * h;
            float *dga = dG + pix * g;
            for (size_t k = 0; k < h; k++) {
                float ig = ga[k], fg = ga[h + k], og = ga[2 * h + k], gg = ga[3 * h + k];
                float t = tc[k];
                /* h = o * tanh(c);  c = f * cprev + i * g */
                float dc = dc_carry[k] + dh[k] * og * (1.0f - t * t);
                float cp = cprev ? cprev[k] : 0.0f;
                dga[k] = dc * gg * ig * (1.0f - ig);
                dga[h + k] = dc * cp * fg * (1.0f - fg);
                dga[2 * h + k] = dh[k] * t * og * (1.0f - og);
                dga[3 * h + k] = dc * ig * (1.0f - gg * gg);
                dc_carry[k] = dc * fg;
            }
        }
        if (ii == 0) break;
        /* a_i += im2col3(h_{i-1}) @ w_ss: send the gradient to the row above */
        float *dcol = rbuf; /* (B*W, 3h) */
        loom_gemm(false, true, row, 3 * h, g, 1.0f, dG + base * g, g, p.w_ss, g, 0.0f, dcol, 3 * h);
        float *dhp = dH + (base - row) * h;
        for (size_t b = 0; b < d.B; b++)
            for (size_t j = 0; j < d.W; j++) {
                const float *src = dcol + (b * d.W + j) * 3 * h;
                float *dst = dhp + (b * d.W + j) * h;
                if (j > 0)
                    for (size_t k = 0; k < h; k++) dst[k - h] += src[k];
                for (size_t k = 0; k < h; k++) dst[k] += src[h + k];
                if (j + 1 < d.W)
                    for (size_t k = 0; k < h; k++) dst[h + k] += src[2 * h + k];
            }
    }

    /* w_ss saw im2col3 of rows 0..H-2 while producing rows 1..H-1: one GEMM */
    if (d.H > 1) {
        for (size_t ii = 1; ii < d.H; ii++)
            ss_im2col(col + (ii - 1) * row * 3 * h, cache.hs + (ii - 1) * row * h, d.B, d.W, h);
        loom_gemm(true, false, 3 * h, g, n - row, 1.0f, col, 3 * h, dG + row * g, g, 1.0f, gr.w_ss,
                  g);
    }
    if (gr.cls) {
        for (size_t ii = 0; ii < d.H; ii++)
            for (size_t b = 0; b < d.B; b++)
                for (size_t j = 0; j < d.W; j++) {
                    const float *src = dG + ((ii * d.B + b) * d.W + j) * g;
                    for (size_t k = 0; k < g; k++) gr.cls[b * g + k] += src[k];
                }
    }

    /* gates = [x_{j-1}, x_j] @ w_is + b_is */
    is_im2col(col, x, n, d.W, C);
    loom_linear_backward(NULL, gr.w_is, gr.b_is, dG, col, p.w_is, n, 2 * C, g);
    if (!dx) return;
    loom_gemm(false, true, n, 2 * C, g, 1.0f, dG, g, p.w_is, g, 0.0f, col, 2 * C);
    for (size_t q = 0; q < n; q++) {
        const float *src = col + q * 2 * C;
        if (q % d.W != 0)
            for (size_t k = 0; k < C; k++) dx[(q - 1) * C + k] += src[k];
        for (size_t k = 0; k < C; k++) dx[q * C + k] += src[C + k];
    }
}

void loom_rowlstm_step(float *y, float *h_out, float *c_out, float *scratch, const float *x_prev,
                       const float *x_cur, const float *gates_ss, const float *c_prev,
                       loom_rowlstm_params p, size_t n, size_t C, size_t h) {
    const size_t g = 4 * h;
    float *col = scratch;        /* (n, 2C) */
    float *a = col + n * 2 * C;  /* (n, G) */
    float *tc = a + n * g;       /* (n, h) */
    for (size_t b = 0; b < n; b++) {
        memcpy(col + b * 2 * C, x_prev + b * C, C * sizeof *col);
        memcpy(col + b * 2 * C + C, x_cur + b * C, C * sizeof *col);
    }
    loom_linear_forward(a, col, p.w_is, p.b_is, n, 2 * C, g);
    for (size_t q = 0; q < n * g; q++) a[q] += gates_ss[q];
    if (p.cls)
        for (size_t q = 0; q < n * g; q++) a[q] += p.cls[q];
    lstm_cell(a, c_out, tc, h_out, c_prev, n, h);
    out_forward(y, x_cur, h_out, p.w_out, p.b_out, n, C, h);
}
