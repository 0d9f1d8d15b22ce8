/* What the three sequence layers share (seq.h): the input projection of all
 * time steps as one GEMM, its backward, and the recurrent weight gradient as
 * one GEMM over all steps. */
#include "seq.h"

#include "nn.h"

#include "../core/gemm.h"
#include <string.h>

#define LOOM_SEQ_MIN(a, b) ((a) < (b) ? (a) : (b))

int loom_cell_parse(const char *name, loom_cell *out) {
    static const char *const names[] = {"rnn", "lstm", "gru"};
    for (int k = 0; k < 3; k++)
        if (strcmp(name, names[k]) == 0) {
            *out = (loom_cell)k;
            return 0;
        }
    return -1;
}

const char *loom_cell_name(loom_cell c) {
    return c == LOOM_CELL_RNN ? "rnn" : c == LOOM_CELL_LSTM ? "lstm" : "gru";
}

size_t loom_cell_gates(loom_cell c) { return c == LOOM_CELL_RNN ? 1 : c == LOOM_CELL_LSTM ? 4 : 3; }

size_t loom_seq_cache_floats(loom_cell c, loom_seq_dims d) {
    const size_t N = d.T * d.B, G = loom_cell_gates(c) * d.H;
    size_t extra = c == LOOM_CELL_LSTM ? 2 * N * d.H : c == LOOM_CELL_GRU ? N * d.H : 0;
    return N * G + extra + d.B * G;
}

size_t loom_seq_scratch_floats(loom_cell c, loom_seq_dims d) {
    const size_t N = d.T * d.B, G = loom_cell_gates(c) * d.H;
    /* dA, and for the GRU dR (which differs from dA in the n block) */
    return N * G * (c == LOOM_CELL_GRU ? 2 : 1) + 4 * d.B * d.H;
}

size_t loom_seq_step_floats(loom_cell c, size_t B, size_t H) {
    return 2 * B * loom_cell_gates(c) * H + B * H;
}

void loom_seq_inproj(float *a, const float *x, loom_seq_params p, size_t N, size_t B, size_t In,
                     size_t G) {
    loom_linear_forward(a, x, p.w_ih, p.b_ih, N, In, G);
    if (p.bias)
        for (size_t r = 0; r < N; r++) {
            const float *bb = p.bias + (r % B) * G;
            float *ar = a + r * G;
            for (size_t k = 0; k < G; k++) ar[k] += bb[k];
        }
}

void loom_seq_inproj_backward(float *dx, loom_seq_grads g, const float *dA, const float *x,
                              loom_seq_params p, size_t N, size_t B, size_t In, size_t G) {
    /* a = x @ w_ih + b_ih + bias[b] */
    loom_linear_backward(dx, g.w_ih, g.b_ih, dA, x, p.w_ih, N, In, G);
    if (g.bias)
        for (size_t r = 0; r < N; r++) {
            float *gb = g.bias + (r % B) * G;
            const float *dr = dA + r * G;
            for (size_t k = 0; k < G; k++) gb[k] += dr[k];
        }
}

void loom_seq_hh_backward(loom_seq_grads g, const float *dR, const float *h0, const float *y,
                          loom_seq_dims d, size_t G) {
    /* r_t = h_{t-1} @ w_hh + b_hh, h_{-1} = h0 */
    const size_t B = d.B, H = d.H;
    if (g.w_hh) {
        if (d.T > 1)
            loom_gemm(true, false, H, G, (d.T - 1) * B, 1.0f, y, H, dR + B * G, G, 1.0f, g.w_hh, G);
        if (h0)
            loom_gemm(true, false, H, G, B, 1.0f, h0, H, dR, G, 1.0f, g.w_hh, G);
    }
    if (g.b_hh)
        for (size_t r = 0; r < d.T * B; r++) {
            const float *dr = dR + r * G;
            for (size_t k = 0; k < G; k++) g.b_hh[k] += dr[k];
        }
}

void loom_gemm_thin(float *c, const float *a, const float *w, size_t M, size_t N, size_t K,
                    float beta) {
    /* c (M, N) = a (M, K) @ w (K, N) + beta * c. For few rows, OpenBLAS
     * spends as long packing w as multiplying; below its small-matrix limit
     * (M*N*K around 1e6 on AVX-512) it multiplies unpacked. Measured on the
     * GRU's 32 x 768 x 256 step: 1.2x; on the 32 x 256 x 256 head: 2x.
     * Without AVX-512 its Zen/Haswell kernels have no such path, and the
     * blocks only pack the rows of a again for each block (measured on Zen 3:
     * 0.8-0.9x of one call at 32 x 1024 x 256): one call there. */
    const size_t blk = 64;
    /* oneDNN has no packing cost to amortise: one call */
    if (M * N * K <= 1000000 || M > 64 || N <= blk || !loom_cpu_has_avx512() ||
        loom_gemm_mode_get().backend == LOOM_GEMM_ONEDNN) {
        loom_gemm(false, false, M, N, K, 1.0f, a, K, w, N, beta, c, N);
        return;
    }
    for (size_t j = 0; j < N; j += blk)
        loom_gemm(false, false, M, LOOM_SEQ_MIN(blk, N - j), K, 1.0f, a, K, w + j, N, beta, c + j,
                  N);
}

void loom_seq_hh_forward(float *R, const float *h, loom_seq_params p, size_t B, size_t H,
                         size_t G) {
    /* R (B, G) = h @ w_hh + b_hh; h == NULL is the zero state */
    for (size_t b = 0; b < B; b++) memcpy(R + b * G, p.b_hh, G * sizeof *R);
    if (h) loom_gemm_thin(R, h, p.w_hh, B, G, H, 1.0f);
}

void loom_seq_hh_dh(float *dh, const float *dR, const float *w_hh, size_t B, size_t H, size_t G) {
    /* r = h @ w_hh: dh (B, H) += dR (B, G) @ w_hh^T, in blocks of 64 columns
     * of dh (rows of w_hh) for the same reason as loom_gemm_thin */
    const size_t blk = B * H * G <= 1000000 || B > 64 || !loom_cpu_has_avx512() ||
                               loom_gemm_mode_get().backend == LOOM_GEMM_ONEDNN
                           ? H
                           : 64;
    for (size_t j = 0; j < H; j += blk)
        loom_gemm(false, true, B, LOOM_SEQ_MIN(blk, H - j), G, 1.0f, dR, G, w_hh + j * G, G, 1.0f,
                  dh + j, H);
}
