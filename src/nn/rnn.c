/* Elman RNN over a sequence (seq.h): h_t = tanh(x_t @ w_ih + b_ih + h_{t-1} @ w_hh + b_hh) */
#include "seq.h"

#include "fastmath.h"

#include <string.h>

static void rnn_gates(float *restrict a, float *restrict h, const float *restrict R, size_t n) {
    for (size_t k = 0; k < n; k++) {
        float v = loom_tanhf(a[k] + R[k]);
        a[k] = v, h[k] = v;
    }
}

void loom_rnn_forward(float *y, float *hT, float *cache, const float *x, const float *h0,
                      loom_seq_params p, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, N = d.T * B;
    float *act = cache;    /* (T, B, H) */
    float *R = act + N * H; /* (B, H) */
    if (x) loom_seq_inproj(act, x, p, N, B, d.In, H);
    for (size_t t = 0; t < d.T; t++) {
        loom_seq_hh_forward(R, t ? y + (t - 1) * B * H : h0, p, B, H, H);
        rnn_gates(act + t * B * H, y + t * B * H, R, B * H);
    }
    if (hT) {
        if (d.T) memcpy(hT, y + (d.T - 1) * B * H, B * H * sizeof *hT);
        else if (h0) memcpy(hT, h0, B * H * sizeof *hT);
        else memset(hT, 0, B * H * sizeof *hT);
    }
}

void loom_rnn_backward(float *dx, float *dh0, loom_seq_grads g, float *scratch, const float *dy,
                       const float *dhT, const float *x, const float *h0, loom_seq_params p,
                       const float *cache, const float *y, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, N = d.T * B;
    const float *act = cache;
    float *dA = scratch;    /* (T, B, H); also the gradient of h_{t-1} @ w_hh + b_hh */
    float *dh = dA + N * H; /* (B, H) */
    if (dhT) memcpy(dh, dhT, B * H * sizeof *dh);
    else memset(dh, 0, B * H * sizeof *dh);
    for (size_t t = d.T; t-- > 0;) {
        float *dAt = dA + t * B * H;
        const float *ht = act + t * B * H, *dyt = dy ? dy + t * B * H : NULL;
        /* h = tanh(a + r) */
        if (dyt)
            for (size_t k = 0; k < B * H; k++) {
                dAt[k] = (dh[k] + dyt[k]) * (1.0f - ht[k] * ht[k]);
                dh[k] = 0.0f;
            }
        else
            for (size_t k = 0; k < B * H; k++) {
                dAt[k] = dh[k] * (1.0f - ht[k] * ht[k]);
                dh[k] = 0.0f;
            }
        if (t > 0 || dh0) loom_seq_hh_dh(dh, dAt, p.w_hh, B, H, H);
    }
    if (dh0)
        for (size_t k = 0; k < B * H; k++) dh0[k] += dh[k];
    loom_seq_hh_backward(g, dA, h0, y, d, H);
    if (x) loom_seq_inproj_backward(dx, g, dA, x, p, N, B, d.In, H);
}

void loom_rnn_step(float *h_out, float *scratch, const float *x, const float *h,
                   loom_seq_params p, size_t B, size_t In, size_t H) {
    float *a = scratch, *R = a + B * H;
    if (x) loom_seq_inproj(a, x, p, B, B, In, H);
    loom_seq_hh_forward(R, h, p, B, H, H);
    rnn_gates(a, h_out, R, B * H);
}
