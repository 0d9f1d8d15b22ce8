/* GRU over a sequence, PyTorch's convention (seq.h):
 *   r = sigm(a_r + r_r);  z = sigm(a_z + r_z);  n = tanh(a_n + r * r_n);
 *   h_t = (1 - z) * n + z * h_{t-1}
 * with a = x @ w_ih + b_ih and r_* = h_{t-1} @ w_hh + b_hh. */
#include "seq.h"

#include "fastmath.h"

#include "../core/gemm.h"

#include <string.h>

/* one sequence's gates, in place: a (3H) pre-activations -> r z n; rn_out
 * keeps r_n for backward. has_prev is a literal at each call so that gcc
 * drops the load of a zero state and vectorises both versions. */
static inline void gru_gates(float *restrict a, float *restrict rn_out, float *restrict h,
                             const float *restrict R, const float *restrict hp, size_t H,
                             int has_prev) {
    float *ar = a, *az = a + H, *an = a + 2 * H;
    const float *Rr = R, *Rz = R + H, *Rn = R + 2 * H;
    for (size_t k = 0; k < H; k++) {
        float r = loom_sigmoidf(ar[k] + Rr[k]);
        float z = loom_sigmoidf(az[k] + Rz[k]);
        float n = loom_tanhf(an[k] + r * Rn[k]);
        float prev = has_prev ? hp[k] : 0.0f;
        ar[k] = r, az[k] = z, an[k] = n, rn_out[k] = Rn[k];
        h[k] = n + z * (prev - n);
    }
}

static void gates_all(float *a, float *rn, float *h, const float *R, const float *hp, size_t B,
                      size_t H) {
    const size_t G = 3 * H;
    for (size_t b = 0; b < B; b++) {
        if (hp) gru_gates(a + b * G, rn + b * H, h + b * H, R + b * G, hp + b * H, H, 1);
        else gru_gates(a + b * G, rn + b * H, h + b * H, R + b * G, NULL, H, 0);
    }
}

void loom_gru_forward(float *y, float *hT, float *cache, const float *x, const float *h0,
                      loom_seq_params p, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, G = 3 * H, N = d.T * B;
    float *act = cache;     /* (T, B, 3H) */
    float *rn = act + N * G; /* (T, B, H) */
    float *R = rn + N * H;   /* (B, 3H) */
    if (x) loom_seq_inproj(act, x, p, N, B, d.In, G);
    for (size_t t = 0; t < d.T; t++) {
        const float *hp = t ? y + (t - 1) * B * H : h0;
        loom_seq_hh_forward(R, hp, p, B, H, G);
        gates_all(act + t * B * G, rn + t * B * H, y + t * B * H, R, hp, B, H);
    }
    if (hT) {
        if (d.T) memcpy(hT, y + (d.T - 1) * B * H, B * H * sizeof *hT);
        else if (h0) memcpy(hT, h0, B * H * sizeof *hT);
        else memset(hT, 0, B * H * sizeof *hT);
    }
}

/* one sequence at one step: dh (H) in: dL/dh_t without the output term; out:
 * the direct part of dL/dh_{t-1} (z * dh). dA, dR (3H) written. */
static inline void gru_grad(float *restrict dA, float *restrict dR, float *restrict dh,
                            const float *restrict act, const float *restrict rn,
                            const float *restrict dy, const float *restrict hp, size_t H,
                            int has_dy, int has_prev) {
    const float *ar = act, *az = act + H, *an = act + 2 * H;
    for (size_t k = 0; k < H; k++) {
        float r = ar[k], z = az[k], n = an[k];
        float g = dh[k] + (has_dy ? dy[k] : 0.0f);
        float prev = has_prev ? hp[k] : 0.0f;
        /* h = n + z * (prev - n) */
        float dn = g * (1.0f - z);
        float dz = g * (prev - n);
        /* n = tanh(a_n + r * r_n) */
        float dan = dn * (1.0f - n * n);
        float dr = dan * rn[k];
        float dar = dr * r * (1.0f - r), daz = dz * z * (1.0f - z);
        dA[k] = dar, dA[H + k] = daz, dA[2 * H + k] = dan;
        dR[k] = dar, dR[H + k] = daz, dR[2 * H + k] = dan * r;
        dh[k] = g * z;
    }
}

void loom_gru_backward(float *dx, float *dh0, loom_seq_grads g, float *scratch, const float *dy,
                       const float *dhT, const float *x, const float *h0, loom_seq_params p,
                       const float *cache, const float *y, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, G = 3 * H, N = d.T * B;
    const float *act = cache, *rn = act + N * G;
    float *dA = scratch;    /* (T, B, 3H) */
    float *dR = dA + N * G; /* (T, B, 3H) gradient of r_t = h_{t-1} @ w_hh + b_hh */
    float *dh = dR + N * G; /* (B, H) dL/dh_t carried backwards */
    /* bf16 products: dR rounded step by step, once, for both of its products
     * (dh below and dW_hh after the loop) instead of once for each */
    uint16_t *dRbf = loom_gemm_rounds_bf16() ? loom_gemm_bf16_buffer(LOOM_BF16_BUF_LAYER, N * G) : NULL;
    const bool shadowed = dRbf && loom_gemm_shadow_push(dR, dRbf, N * G);
    if (dhT) memcpy(dh, dhT, B * H * sizeof *dh);
    else memset(dh, 0, B * H * sizeof *dh);
    for (size_t t = d.T; t-- > 0;) {
        const float *hp = t ? y + (t - 1) * B * H : h0;
        for (size_t b = 0; b < B; b++) {
            const size_t q = t * B + b;
            float *dAq = dA + q * G, *dRq = dR + q * G, *dhb = dh + b * H;
            const float *aq = act + q * G, *rq = rn + q * H;
            const float *dyq = dy ? dy + q * H : NULL, *hq = hp ? hp + b * H : NULL;
            if (dyq && hq) gru_grad(dAq, dRq, dhb, aq, rq, dyq, hq, H, 1, 1);
            else if (dyq) gru_grad(dAq, dRq, dhb, aq, rq, dyq, NULL, H, 1, 0);
            else if (hq) gru_grad(dAq, dRq, dhb, aq, rq, NULL, hq, H, 0, 1);
            else gru_grad(dAq, dRq, dhb, aq, rq, NULL, NULL, H, 0, 0);
        }
        if (shadowed) loom_bf16_round(dRbf + t * B * G, dR + t * B * G, B * G);
        if (t > 0 || dh0) loom_seq_hh_dh(dh, dR + t * B * G, p.w_hh, B, H, G);
    }
    if (dh0)
        for (size_t k = 0; k < B * H; k++) dh0[k] += dh[k];
    loom_seq_hh_backward(g, dR, h0, y, d, G);
    if (shadowed) loom_gemm_shadow_pop();
    if (x) loom_seq_inproj_backward(dx, g, dA, x, p, N, B, d.In, G);
}

void loom_gru_step(float *h_out, float *scratch, const float *x, const float *h,
                   loom_seq_params p, size_t B, size_t In, size_t H) {
    const size_t G = 3 * H;
    float *a = scratch, *R = a + B * G, *rn = R + B * G;
    if (x) loom_seq_inproj(a, x, p, B, B, In, G);
    loom_seq_hh_forward(R, h, p, B, H, G);
    gates_all(a, rn, h_out, R, h, B, H);
}
