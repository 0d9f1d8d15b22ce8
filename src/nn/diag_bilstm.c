/* Diagonal BiLSTM layer, docs/diagbilstm.md. Shapes with N = H*B*W pixels:
 *   x, y (H, B, W, C); gates (H, B, W, 8h): forward i f o g | reverse i f o g;
 *   c, tc, hs (2, H, B, W, h): forward direction, then reverse direction.
 *
 * The paper skews the map (row i shifted right by i, H x (W+H-1)) so that a
 * column of the skewed map is an anti-diagonal i + j = const of the image, and
 * runs the 2x1 state-to-state convolution column by column. Here the skew is
 * implicit: diagonal dg of the forward direction is the pixels (i, dg - i), and
 * the skewed column's taps (row i-1, row i) of the previous column are the
 * image pixels (i-1, j) and (i, j-1). The reverse direction runs on the
 * mirrored map; since the input-to-state convolution is 1x1 it commutes with
 * the mirror, so the mirror is only the index change j -> W-1-j in the
 * recurrence: its diagonal dg is the pixels (i, W-1-(dg-i)) and its taps are
 * (i-1, j) and (i, j+1). Each diagonal is one matrix product over all its
 * pixels and images. */
#include "nn.h"

#include "fastmath.h"

#include "../core/gemm.h"
#include <string.h>

static size_t max_rows(loom_diag_dims d) { return (d.H < d.W ? d.H : d.W) * d.B; }

size_t loom_diag_cache_floats(loom_diag_dims d) { return d.H * d.B * d.W * 14 * d.h; }

loom_diag_cache loom_diag_cache_at(float *base, loom_diag_dims d) {
    const size_t n = d.H * d.B * d.W * d.h;
    return (loom_diag_cache){base, base + 8 * n, base + 10 * n, base + 12 * n};
}

size_t loom_diag_scratch_floats(loom_diag_dims d) {
    const size_t n = d.H * d.B * d.W;
    /* backward: dG 8h + dHsum h + dHdir h + hsum h + col 2h per pixel;
     * per diagonal gbuf 4h + dcol 2h; dcarry (H, B, h). Forward needs less. */
    return n * 13 * d.h + max_rows(d) * 6 * d.h + d.H * d.B * d.h;
}

/* column of the pixel of row i on diagonal dg */
static inline size_t diag_col(size_t dg, size_t i, size_t W, int rev) {
    return rev ? W - 1 - (dg - i) : dg - i;
}

/* rows i0..i1 of the image that diagonal dg crosses */
static inline void diag_rows(size_t dg, size_t H, size_t W, size_t *i0, size_t *i1) {
    *i0 = dg >= W ? dg - W + 1 : 0;
    *i1 = dg < H ? dg : H - 1;
}

/* The LSTM update of one pixel: a (4h) pre-activations in, activations out;
 * c = f * cprev + i * g (cprev NULL: zero), h = o * tanh(c). Two loops so that
 * gcc vectorises both without a conditional load. */
static inline void lstm_point(float *restrict a, float *restrict c, float *restrict tc,
                              float *restrict hs, const float *restrict cprev, size_t h) {
    float *restrict ai = a, *restrict af = a + h, *restrict ao = a + 2 * h, *restrict ag = a + 3 * h;
    if (cprev) {
        for (size_t k = 0; k < h; k++) {
            float ig = loom_sigmoidf(ai[k]), fg = loom_sigmoidf(af[k]);
            float og = loom_sigmoidf(ao[k]), gg = loom_tanhf(ag[k]);
            float cv = ig * gg + fg * cprev[k], t = loom_tanhf(cv);
            ai[k] = ig, af[k] = fg, ao[k] = og, ag[k] = gg;
            c[k] = cv, tc[k] = t, hs[k] = og * t;
        }
    } else {
        for (size_t k = 0; k < h; k++) {
            float ig = loom_sigmoidf(ai[k]), fg = loom_sigmoidf(af[k]);
            float og = loom_sigmoidf(ao[k]), gg = loom_tanhf(ag[k]);
            float cv = ig * gg, t = loom_tanhf(cv);
            ai[k] = ig, af[k] = fg, ao[k] = og, ag[k] = gg;
            c[k] = cv, tc[k] = t, hs[k] = og * t;
        }
    }
}

/* h floats: inline loops, since a libc call per 16-float block cost 12% of a step */
static inline void copy_h(float *restrict dst, const float *restrict src, size_t h) {
    for (size_t k = 0; k < h; k++) dst[k] = src[k];
}
static inline void zero_h(float *dst, size_t h) {
    for (size_t k = 0; k < h; k++) dst[k] = 0.0f;
}

/* col row = [h(i-1, j), h(i, j -+ 1)], zeros outside the image */
static inline void gather_taps(float *dst, const float *hs, size_t pix, size_t i, int side,
                               int rev, size_t row, size_t h) {
    if (i > 0) copy_h(dst, hs + (pix - row) * h, h);
    else zero_h(dst, h);
    if (side) copy_h(dst + h, hs + (rev ? pix + 1 : pix - 1) * h, h);
    else zero_h(dst + h, h);
}

/* One direction along its diagonals. cache.gates holds x @ w_is on entry; the
 * bias, the class row and the state-to-state term are added here, in one pass. */
static void dir_forward(loom_diag_cache cache, float *col, float *r, const float *w_ss,
                        const float *bias, const float *cls, loom_diag_dims d, int rev) {
    const size_t H = d.H, B = d.B, W = d.W, h = d.h, g = 4 * h, G = 8 * h, row = B * W;
    const size_t N = H * row;
    float *gates = cache.gates + (rev ? g : 0);
    float *c = cache.c + (rev ? N * h : 0), *tc = cache.tc + (rev ? N * h : 0);
    float *hs = cache.hs + (rev ? N * h : 0);
    for (size_t dg = 0; dg + 1 < H + W; dg++) {
        size_t i0, i1, rows = 0;
        diag_rows(dg, H, W, &i0, &i1);
        for (size_t i = i0; i <= i1; i++) {
            const size_t j = diag_col(dg, i, W, rev);
            const int side = rev ? j + 1 < W : j > 0;
            for (size_t b = 0; b < B; b++, rows++)
                gather_taps(col + rows * 2 * h, hs, (i * B + b) * W + j, i, side, rev, row, h);
        }
        /* a += [h(i-1,j), h(i,j-+1)] @ w_ss: the skewed map's 2x1 column convolution */
        if (dg > 0)
            loom_gemm(false, false, rows, g, 2 * h, 1.0f, col, 2 * h, w_ss, g, 0.0f, r, g);
        rows = 0;
        for (size_t i = i0; i <= i1; i++) {
            const size_t j = diag_col(dg, i, W, rev);
            const int side = rev ? j + 1 < W : j > 0;
            for (size_t b = 0; b < B; b++, rows++) {
                const size_t pix = (i * B + b) * W + j;
                float *a = gates + pix * G;
                if (dg > 0)
                    for (size_t k = 0; k < g; k++) a[k] += r[rows * g + k] + bias[k];
                else
                    for (size_t k = 0; k < g; k++) a[k] += bias[k];
                if (cls)
                    for (size_t k = 0; k < g; k++) a[k] += cls[b * G + k];
                const float *cprev = side ? c + (rev ? pix + 1 : pix - 1) * h : NULL;
                lstm_point(a, c + pix * h, tc + pix * h, hs + pix * h, cprev, h);
            }
        }
    }
}

/* hsum (H, B, W, h) = down(hf, shift_f) + down(hr, shift_r) */
static void hsum_build(float *hsum, const float *hf, const float *hr, loom_diag_dims d) {
    const size_t row = d.B * d.W * d.h;
    for (size_t i = 0; i < d.H; i++) {
        float *dst = hsum + i * row;
        const float *f = i >= d.shift_f ? hf + (i - d.shift_f) * row : NULL;
        const float *r = i >= d.shift_r ? hr + (i - d.shift_r) * row : NULL;
        for (size_t q = 0; q < row; q++) dst[q] = (f ? f[q] : 0.0f) + (r ? r[q] : 0.0f);
    }
}

void loom_diag_forward(float *y, loom_diag_cache cache, float *scratch, const float *x,
                       loom_diag_params p, loom_diag_dims d) {
    const size_t N = d.H * d.B * d.W, h = d.h, G = 8 * h;
    float *hsum = scratch;                  /* (N, h) */
    float *col = hsum + N * h;              /* (maxrows, 2h) */
    float *r = col + max_rows(d) * 2 * h;   /* (maxrows, 4h) */

    /* input-to-state of both directions, every pixel: gates = x @ w_is (+ b_is + cls
     * in dir_forward) */
    loom_linear_forward(cache.gates, x, p.w_is, NULL, N, d.C, G);
    dir_forward(cache, col, r, p.w_ssf, p.b_is, p.cls, d, 0);
    dir_forward(cache, col, r, p.w_ssr, p.b_is + 4 * h, p.cls ? p.cls + 4 * h : NULL, d, 1);

    /* y = x + hsum @ w_out + b_out */
    hsum_build(hsum, cache.hs, cache.hs + N * h, d);
    for (size_t q = 0; q < N; q++)
        for (size_t k = 0; k < d.C; k++) y[q * d.C + k] = x[q * d.C + k] + p.b_out[k];
    loom_gemm(false, false, N, d.C, h, 1.0f, hsum, h, p.w_out, d.C, 1.0f, y, d.C);
}

/* BPTT of one direction along the diagonals, last first. dH (N, h) holds the
 * gradient reaching each hidden state from the output and is completed with the
 * state-to-state terms as the sweep goes; dG (N, 8h) receives the gradient of
 * the gate pre-activations (this direction's half). */
static void dir_backward(float *dG, float *dH, float *dcarry, float *gbuf, float *dcol,
                         const float *w_ss, loom_diag_cache cache, loom_diag_dims d, int rev) {
    const size_t H = d.H, B = d.B, W = d.W, h = d.h, g = 4 * h, G = 8 * h, row = B * W;
    const size_t N = H * row, off = rev ? g : 0;
    const float *c = cache.c + (rev ? N * h : 0), *tcs = cache.tc + (rev ? N * h : 0);
    memset(dcarry, 0, H * B * h * sizeof *dcarry);
    for (size_t dg = H + W - 1; dg-- > 0;) {
        size_t i0, i1, rows = 0;
        diag_rows(dg, H, W, &i0, &i1);
        for (size_t i = i0; i <= i1; i++) {
            const size_t j = diag_col(dg, i, W, rev);
            const int side = rev ? j + 1 < W : j > 0;
            for (size_t b = 0; b < B; b++, rows++) {
                const size_t pix = (i * B + b) * W + j;
                const float *ga = cache.gates + pix * G + off, *tc = tcs + pix * h;
                const float *cprev = side ? c + (rev ? pix + 1 : pix - 1) * h : NULL;
                const float *dh = dH + pix * h;
                float *dcc = dcarry + (i * B + b) * h;
                float *dga = dG + pix * G + off, *gb = gbuf + rows * g;
                for (size_t k = 0; k < h; k++) {
                    float ig = ga[k], fg = ga[h + k], og = ga[2 * h + k], gg = ga[3 * h + k];
                    float t = tc[k], cp = cprev ? cprev[k] : 0.0f;
                    /* h = o * tanh(c);  c = f * c(i, j-+1) + i * g */
                    float dc = dcc[k] + dh[k] * og * (1.0f - t * t);
                    gb[k] = dga[k] = dc * gg * ig * (1.0f - ig);
                    gb[h + k] = dga[h + k] = dc * cp * fg * (1.0f - fg);
                    gb[2 * h + k] = dga[2 * h + k] = dh[k] * t * og * (1.0f - og);
                    gb[3 * h + k] = dga[3 * h + k] = dc * ig * (1.0f - gg * gg);
                    dcc[k] = dc * fg;
                }
            }
        }
        if (dg == 0) break; /* the first pixel has no taps inside the image */
        /* a += [h(i-1,j), h(i,j-+1)] @ w_ss: send the gradient to the previous diagonal */
        loom_gemm(false, true, rows, 2 * h, g, 1.0f, gbuf, g, w_ss, g, 0.0f, dcol, 2 * h);
        rows = 0;
        for (size_t i = i0; i <= i1; i++) {
            const size_t j = diag_col(dg, i, W, rev);
            const int side = rev ? j + 1 < W : j > 0;
            for (size_t b = 0; b < B; b++, rows++) {
                const size_t pix = (i * B + b) * W + j;
                const float *src = dcol + rows * 2 * h;
                if (i > 0) {
                    float *dst = dH + (pix - row) * h;
                    for (size_t k = 0; k < h; k++) dst[k] += src[k];
                }
                if (side) {
                    float *dst = dH + (rev ? pix + 1 : pix - 1) * h;
                    for (size_t k = 0; k < h; k++) dst[k] += src[h + k];
                }
            }
        }
    }
}

/* dH (N, h) of a direction from dHsum: hsum(i) += h(i - s)  =>  dh(i) = dhsum(i + s) */
static void unshift(float *dH, const float *dHsum, unsigned s, loom_diag_dims d) {
    const size_t row = d.B * d.W * d.h;
    for (size_t i = 0; i < d.H; i++) {
        if (i + s < d.H) memcpy(dH + i * row, dHsum + (i + s) * row, row * sizeof *dH);
        else memset(dH + i * row, 0, row * sizeof *dH);
    }
}

void loom_diag_backward(float *dx, loom_diag_grads gr, float *scratch, const float *dy,
                        const float *x, loom_diag_params p, loom_diag_cache cache,
                        loom_diag_dims d) {
    const size_t H = d.H, B = d.B, W = d.W, h = d.h, g = 4 * h, G = 8 * h, C = d.C;
    const size_t row = B * W, N = H * row, mr = max_rows(d);
    float *dG = scratch;            /* (N, 8h) */
    float *dHsum = dG + N * G;      /* (N, h) */
    float *dHd = dHsum + N * h;     /* (N, h) */
    float *hsum = dHd + N * h;      /* (N, h) */
    float *col = hsum + N * h;      /* (N, 2h) */
    float *gbuf = col + N * 2 * h;  /* (maxrows, 4h) */
    float *dcol = gbuf + mr * g;    /* (maxrows, 2h) */
    float *dcarry = dcol + mr * 2 * h; /* (H, B, h) */

    /* y = x + hsum @ w_out + b_out */
    if (dx)
        for (size_t q = 0; q < N * C; q++) dx[q] += dy[q];
    hsum_build(hsum, cache.hs, cache.hs + N * h, d);
    memset(dHsum, 0, N * h * sizeof *dHsum);
    loom_linear_backward(dHsum, gr.w_out, gr.b_out, dy, hsum, p.w_out, N, h, C);

    /* hsum = down(hf, shift_f) + down(hr, shift_r) */
    for (int rev = 0; rev < 2; rev++) {
        const float *hs = cache.hs + (rev ? N * h : 0), *w_ss = rev ? p.w_ssr : p.w_ssf;
        unshift(dHd, dHsum, rev ? d.shift_r : d.shift_f, d);
        dir_backward(dG, dHd, dcarry, gbuf, dcol, w_ss, cache, d, rev);
        /* w_ss saw [h(i-1,j), h(i,j-+1)] at every pixel: one GEMM over the image */
        for (size_t i = 0; i < H; i++)
            for (size_t b = 0; b < B; b++)
                for (size_t j = 0; j < W; j++) {
                    const size_t pix = (i * B + b) * W + j;
                    const int side = rev ? j + 1 < W : j > 0;
                    gather_taps(col + pix * 2 * h, hs, pix, i, side, rev, row, h);
                }
        loom_gemm(true, false, 2 * h, g, N, 1.0f, col, 2 * h, dG + (rev ? g : 0), G, 1.0f,
                  rev ? gr.w_ssr : gr.w_ssf, g);
    }
    if (gr.cls)
        for (size_t i = 0; i < H; i++)
            for (size_t b = 0; b < B; b++)
                for (size_t j = 0; j < W; j++) {
                    const float *src = dG + ((i * B + b) * W + j) * G;
                    for (size_t k = 0; k < G; k++) gr.cls[b * G + k] += src[k];
                }
    /* gates = x @ w_is + b_is */
    loom_linear_backward(dx, gr.w_is, gr.b_is, dG, x, p.w_is, N, C, G);
}

void loom_diag_step_fwd(float *y, float *h_out, float *c_out, float *scratch, const float *x,
                        const float *h_up, const float *h_left, const float *c_left,
                        const float *hr_up, loom_diag_params p, size_t n, size_t C, size_t h) {
    const size_t g = 4 * h, G = 8 * h;
    float *a = scratch;          /* (n, 4h) */
    float *col = a + n * g;      /* (n, 2h) */
    float *tc = col + n * 2 * h; /* (n, h) */
    float *hsum = tc + n * h;    /* (n, h) */
    for (size_t b = 0; b < n; b++) memcpy(a + b * g, p.b_is, g * sizeof *a);
    /* the forward half of gates = x @ w_is + b_is */
    loom_gemm(false, false, n, g, C, 1.0f, x, C, p.w_is, G, 1.0f, a, g);
    if (h_up || h_left) {
        for (size_t b = 0; b < n; b++) {
            float *dst = col + b * 2 * h;
            if (h_up) memcpy(dst, h_up + b * h, h * sizeof *dst);
            else memset(dst, 0, h * sizeof *dst);
            if (h_left) memcpy(dst + h, h_left + b * h, h * sizeof *dst);
            else memset(dst + h, 0, h * sizeof *dst);
        }
        loom_gemm(false, false, n, g, 2 * h, 1.0f, col, 2 * h, p.w_ssf, g, 1.0f, a, g);
    }
    if (p.cls)
        for (size_t b = 0; b < n; b++)
            for (size_t k = 0; k < g; k++) a[b * g + k] += p.cls[b * G + k];
    for (size_t b = 0; b < n; b++)
        lstm_point(a + b * g, c_out + b * h, tc + b * h, h_out + b * h,
                   c_left ? c_left + b * h : NULL, h);
    for (size_t q = 0; q < n * h; q++) hsum[q] = h_out[q] + (hr_up ? hr_up[q] : 0.0f);
    for (size_t b = 0; b < n; b++)
        for (size_t k = 0; k < C; k++) y[b * C + k] = x[b * C + k] + p.b_out[k];
    loom_gemm(false, false, n, C, h, 1.0f, hsum, h, p.w_out, C, 1.0f, y, C);
}

void loom_diag_row_rev(float *h_row, float *c_row, float *scratch, const float *x_row,
                       const float *h_up, loom_diag_params p, size_t n, size_t W, size_t C,
                       size_t h) {
    const size_t g = 4 * h, G = 8 * h;
    float *a = scratch;          /* (W, n, 4h) */
    float *col = a + W * n * g;  /* (n, 2h) */
    float *r = col + n * 2 * h;  /* (n, 4h) */
    float *tc = r + n * g;       /* (n, h) */
    /* the reverse half of gates = x @ w_is + b_is, the whole row at once */
    for (size_t q = 0; q < W * n; q++) memcpy(a + q * g, p.b_is + g, g * sizeof *a);
    loom_gemm(false, false, W * n, g, C, 1.0f, x_row, C, p.w_is + g, G, 1.0f, a, g);
    if (p.cls)
        for (size_t j = 0; j < W; j++)
            for (size_t b = 0; b < n; b++)
                for (size_t k = 0; k < g; k++) a[(j * n + b) * g + k] += p.cls[b * G + g + k];
    for (size_t j = W; j-- > 0;) {
        float *aj = a + j * n * g;
        const float *right = j + 1 < W ? h_row + (j + 1) * n * h : NULL;
        if (h_up || right) {
            for (size_t b = 0; b < n; b++) {
                float *dst = col + b * 2 * h;
                if (h_up) memcpy(dst, h_up + (j * n + b) * h, h * sizeof *dst);
                else memset(dst, 0, h * sizeof *dst);
                if (right) memcpy(dst + h, right + b * h, h * sizeof *dst);
                else memset(dst + h, 0, h * sizeof *dst);
            }
            loom_gemm(false, false, n, g, 2 * h, 1.0f, col, 2 * h, p.w_ssr, g, 0.0f, r, g);
            for (size_t q = 0; q < n * g; q++) aj[q] += r[q];
        }
        const float *cright = j + 1 < W ? c_row + (j + 1) * n * h : NULL;
        for (size_t b = 0; b < n; b++)
            lstm_point(aj + b * g, c_row + (j * n + b) * h, tc + b * h, h_row + (j * n + b) * h,
                       cright ? cright + b * h : NULL, h);
    }
}
