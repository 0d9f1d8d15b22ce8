/* LSTM over a sequence, PyTorch's gate order i f g o (seq.h):
 *   i, f, g, o = sigm(.), sigm(.), tanh(.), sigm(.) of a + h_{t-1} @ w_hh + b_hh
 *   c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t) */
#include "seq.h"

#include "fastmath.h"

#include <string.h>

/* one sequence, in place: a (4H) pre-activations -> i f g o. has_prev is a
 * literal at each call (vectorisation, as in gru.c). */
static inline void lstm_gates(float *restrict a, float *restrict c, float *restrict tc,
                              float *restrict h, const float *restrict R,
                              const float *restrict cp, size_t H, int has_prev) {
    float *ai = a, *af = a + H, *ag = a + 2 * H, *ao = a + 3 * H;
    const float *Ri = R, *Rf = R + H, *Rg = R + 2 * H, *Ro = R + 3 * H;
    for (size_t k = 0; k < H; k++) {
        float i = loom_sigmoidf(ai[k] + Ri[k]);
        float f = loom_sigmoidf(af[k] + Rf[k]);
        float g = loom_tanhf(ag[k] + Rg[k]);
        float o = loom_sigmoidf(ao[k] + Ro[k]);
        float cv = has_prev ? f * cp[k] + i * g : i * g;
        float t = loom_tanhf(cv);
        ai[k] = i, af[k] = f, ag[k] = g, ao[k] = o;
        c[k] = cv, tc[k] = t, h[k] = o * t;
    }
}

static void gates_all(float *a, float *c, float *tc, float *h, const float *R, const float *cp,
                      size_t B, size_t H) {
    const size_t G = 4 * H;
    for (size_t b = 0; b < B; b++) {
        if (cp) lstm_gates(a + b * G, c + b * H, tc + b * H, h + b * H, R + b * G, cp + b * H, H, 1);
        else lstm_gates(a + b * G, c + b * H, tc + b * H, h + b * H, R + b * G, NULL, H, 0);
    }
}

/* step t of the forward, its input pre-activations already in the cache */
static void forward_t(float *y, float *cache, const float *h0, const float *c0, loom_seq_params p, loom_seq_dims d,
                      size_t t) {
    const size_t B = d.B, H = d.H, G = 4 * H, N = d.T * B;
    float *act = cache;      /* (T, B, 4H) */
    float *c = act + N * G;  /* (T, B, H) */
    float *tc = c + N * H;   /* (T, B, H) */
    float *R = tc + N * H;   /* (B, 4H) */
    const float *hp = t ? y + (t - 1) * B * H : h0;
    const float *cp = t ? c + (t - 1) * B * H : c0;
    loom_seq_hh_forward(R, hp, p, B, H, G);
    gates_all(act + t * B * G, c + t * B * H, tc + t * B * H, y + t * B * H, R, cp, B, H);
}

void loom_lstm_forward_step(float *y, float *cache, const float *xt, const float *h0, const float *c0,
                            loom_seq_params p, loom_seq_dims d, size_t t) {
    const size_t G = 4 * d.H;
    loom_seq_inproj(cache + t * d.B * G, xt, p, d.B, d.B, d.In, G);
    forward_t(y, cache, h0, c0, p, d, t);
}

void loom_lstm_forward(float *y, float *hT, float *cT, float *cache, const float *x,
                       const float *h0, const float *c0, loom_seq_params p, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, G = 4 * H, N = d.T * B;
    const float *c = cache + N * G; /* (T, B, H) */
    if (x) loom_seq_inproj(cache, x, p, N, B, d.In, G);
    for (size_t t = 0; t < d.T; t++) forward_t(y, cache, h0, c0, p, d, t);
    const size_t bytes = B * H * sizeof(float);
    if (hT) {
        if (d.T) memcpy(hT, y + (d.T - 1) * B * H, bytes);
        else if (h0) memcpy(hT, h0, bytes);
        else memset(hT, 0, bytes);
    }
    if (cT) {
        if (d.T) memcpy(cT, c + (d.T - 1) * B * H, bytes);
        else if (c0) memcpy(cT, c0, bytes);
        else memset(cT, 0, bytes);
    }
}

/* one sequence at one step. dh (H): in dL/dh_t less the output term, out
 * zeroed (the recurrent GEMM refills it); dc (H): in dL/dc_t from step t+1,
 * out dL/dc_{t-1}. dA (4H) written. */
static inline void lstm_grad(float *restrict dA, float *restrict dh, float *restrict dc,
                             const float *restrict act, const float *restrict tc,
                             const float *restrict dy, const float *restrict cp, size_t H,
                             int has_dy, int has_prev) {
    const float *ai = act, *af = act + H, *ag = act + 2 * H, *ao = act + 3 * H;
    for (size_t k = 0; k < H; k++) {
        float i = ai[k], f = af[k], g = ag[k], o = ao[k], t = tc[k];
        float gh = dh[k] + (has_dy ? dy[k] : 0.0f);
        float prev = has_prev ? cp[k] : 0.0f;
        /* h = o * tanh(c);  c = f * c_{t-1} + i * g */
        float gc = dc[k] + gh * o * (1.0f - t * t);
        dA[k] = gc * g * i * (1.0f - i);
        dA[H + k] = gc * prev * f * (1.0f - f);
        dA[2 * H + k] = gc * i * (1.0f - g * g);
        dA[3 * H + k] = gh * t * o * (1.0f - o);
        dc[k] = gc * f;
        dh[k] = 0.0f;
    }
}

void loom_lstm_backward(float *dx, float *dh0, float *dc0, loom_seq_grads g, float *scratch,
                        const float *dy, const float *dhT, const float *dcT, const float *x,
                        const float *h0, const float *c0, loom_seq_params p, const float *cache,
                        const float *y, loom_seq_dims d) {
    const size_t B = d.B, H = d.H, G = 4 * H, N = d.T * B;
    const float *act = cache, *c = act + N * G, *tc = c + N * H;
    float *dA = scratch;    /* (T, B, 4H); also the gradient of h_{t-1} @ w_hh + b_hh */
    float *dh = dA + N * G; /* (B, H) */
    float *dc = dh + B * H; /* (B, H) */
    const size_t bytes = B * H * sizeof(float);
    if (dhT) memcpy(dh, dhT, bytes);
    else memset(dh, 0, bytes);
    if (dcT) memcpy(dc, dcT, bytes);
    else memset(dc, 0, bytes);
    for (size_t t = d.T; t-- > 0;) {
        const float *cp = t ? c + (t - 1) * B * H : c0;
        for (size_t b = 0; b < B; b++) {
            const size_t q = t * B + b;
            float *dAq = dA + q * G, *dhb = dh + b * H, *dcb = dc + b * H;
            const float *aq = act + q * G, *tq = tc + q * H;
            const float *dyq = dy ? dy + q * H : NULL, *cq = cp ? cp + b * H : NULL;
            if (dyq && cq) lstm_grad(dAq, dhb, dcb, aq, tq, dyq, cq, H, 1, 1);
            else if (dyq) lstm_grad(dAq, dhb, dcb, aq, tq, dyq, NULL, H, 1, 0);
            else if (cq) lstm_grad(dAq, dhb, dcb, aq, tq, NULL, cq, H, 0, 1);
            else lstm_grad(dAq, dhb, dcb, aq, tq, NULL, NULL, H, 0, 0);
        }
        if (t > 0 || dh0) loom_seq_hh_dh(dh, dA + t * B * G, p.w_hh, B, H, G);
    }
    if (dh0)
        for (size_t k = 0; k < B * H; k++) dh0[k] += dh[k];
    if (dc0)
        for (size_t k = 0; k < B * H; k++) dc0[k] += dc[k];
    loom_seq_hh_backward(g, dA, h0, y, d, G);
    if (x) loom_seq_inproj_backward(dx, g, dA, x, p, N, B, d.In, G);
}

void loom_lstm_step(float *h_out, float *c_out, float *scratch, const float *x, const float *h,
                    const float *c, loom_seq_params p, size_t B, size_t In, size_t H) {
    const size_t G = 4 * H;
    float *a = scratch, *R = a + B * G, *tc = R + B * G;
    if (x) loom_seq_inproj(a, x, p, B, B, In, G);
    loom_seq_hh_forward(R, h, p, B, H, G);
    gates_all(a, c_out, tc, h_out, R, c, B, H);
}
