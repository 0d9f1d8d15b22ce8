/* Convolutional LSTM over a sequence (convlstm.h). */
#include "convlstm.h"

#include "fastmath.h"

#include <string.h>

static loom_conv2d_dims conv_dims(loom_convlstm_dims d, size_t n) {
    return (loom_conv2d_dims){.n = n, .h = d.h, .w = d.w, .cin = d.cin + d.hid, .cout = 4 * d.hid, .k = d.k};
}

size_t loom_convlstm_cache_floats(loom_convlstm_dims d) {
    const size_t N = d.T * d.B * d.h * d.w;
    return N * (d.cin + d.hid) + N * 4 * d.hid + N * d.hid;
}

const float *loom_convlstm_cell(const float *cache, loom_convlstm_dims d, size_t t) {
    const size_t P = d.B * d.h * d.w;
    return cache + d.T * P * (d.cin + 5 * d.hid) + t * P * d.hid;
}

/* one position, in place: a (4H) pre-activations -> i f g o; has_prev is a
 * literal at each call, so that gcc vectorises both versions (as in lstm.c) */
static inline void gates(float *restrict a, float *restrict c, float *restrict h, const float *restrict bias,
                         const float *restrict cp, size_t H, int has_prev) {
    float *ai = a, *af = a + H, *ag = a + 2 * H, *ao = a + 3 * H;
    for (size_t k = 0; k < H; k++) {
        const float i = loom_sigmoidf(ai[k] + bias[k]);
        const float f = loom_sigmoidf(af[k] + bias[H + k]);
        const float g = loom_tanhf(ag[k] + bias[2 * H + k]);
        const float o = loom_sigmoidf(ao[k] + bias[3 * H + k]);
        const float cv = has_prev ? f * cp[k] + i * g : i * g;
        ai[k] = i, af[k] = f, ag[k] = g, ao[k] = o;
        c[k] = cv, h[k] = o * loom_tanhf(cv);
    }
}

/* gates() with peepholes: pw (3 H) = w_ci, w_cf, w_co of this position */
static inline void gates_peep(float *restrict a, float *restrict c, float *restrict h, const float *restrict bias,
                              const float *restrict cp, const float *restrict pw, size_t H, int has_prev) {
    float *ai = a, *af = a + H, *ag = a + 2 * H, *ao = a + 3 * H;
    for (size_t k = 0; k < H; k++) {
        const float cpk = has_prev ? cp[k] : 0.0f;
        const float i = loom_sigmoidf(ai[k] + bias[k] + pw[k] * cpk);
        const float f = loom_sigmoidf(af[k] + bias[H + k] + pw[H + k] * cpk);
        const float g = loom_tanhf(ag[k] + bias[2 * H + k]);
        const float cv = f * cpk + i * g;
        const float o = loom_sigmoidf(ao[k] + bias[3 * H + k] + pw[2 * H + k] * cv);
        ai[k] = i, af[k] = f, ag[k] = g, ao[k] = o;
        c[k] = cv, h[k] = o * loom_tanhf(cv);
    }
}

void loom_convlstm_forward_step(float *hs, float *cache, const float *xt, const float *h0, const float *c0,
                                const float *wt, const float *bias, const float *peep, loom_convlstm_dims d,
                                size_t t, loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid, G = 4 * H, X = d.cin + H, N = d.T * P, S = d.h * d.w;
    float *xh = cache;          /* (T, P, X) */
    float *act = xh + N * X;    /* (T, P, 4H) */
    float *c = act + N * G;     /* (T, P, H) */
    const float *hp = t ? hs + (t - 1) * P * H : h0;
    const float *cp = t ? c + (t - 1) * P * H : c0;
    float *x = xh + t * P * X, *a = act + t * P * G;
    for (size_t q = 0; q < P; q++) {
        if (d.cin) memcpy(x + q * X, xt + q * d.cin, d.cin * sizeof *x);
        if (hp) memcpy(x + q * X + d.cin, hp + q * H, H * sizeof *x);
        else memset(x + q * X + d.cin, 0, H * sizeof *x);
    }
    loom_conv2d_forward(a, x, wt, conv_dims(d, d.B), cc, scratch);
    for (size_t q = 0; q < P; q++) {
        float *cq = c + (t * P + q) * H, *hq = hs + (t * P + q) * H;
        const float *pw = peep ? peep + (q % S) * 3 * H : NULL;
        if (pw && cp) gates_peep(a + q * G, cq, hq, bias, cp + q * H, pw, H, 1);
        else if (pw) gates_peep(a + q * G, cq, hq, bias, NULL, pw, H, 0);
        else if (cp) gates(a + q * G, cq, hq, bias, cp + q * H, H, 1);
        else gates(a + q * G, cq, hq, bias, NULL, H, 0);
    }
}

void loom_convlstm_forward(float *hs, float *cache, const float *x, const float *h0,
                           const float *c0, const float *wt, const float *bias, const float *peep,
                           loom_convlstm_dims d, loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w;
    for (size_t t = 0; t < d.T; t++)
        loom_convlstm_forward_step(hs, cache, d.cin ? x + t * P * d.cin : NULL, h0, c0, wt, bias, peep, d, t, cc,
                                   scratch);
}

size_t loom_convlstm_bstate_floats(loom_convlstm_dims d) {
    const size_t P = d.B * d.h * d.w;
    return d.T * P * 4 * d.hid + 2 * P * d.hid; /* dgates (T P, 4 hid), dh, dc (P, hid) */
}

size_t loom_convlstm_step_scratch_floats(loom_convlstm_dims d) {
    const size_t P = d.B * d.h * d.w; /* dxh (P, cin + hid), the convolutions' scratch */
    return P * (d.cin + d.hid) + loom_conv2d_scratch_floats(conv_dims(d, d.T * d.B));
}

size_t loom_convlstm_scratch_floats(loom_convlstm_dims d) {
    return loom_convlstm_bstate_floats(d) + loom_convlstm_step_scratch_floats(d);
}

void loom_convlstm_backward_begin(float *bs, const float *dhT, const float *dcT, loom_convlstm_dims d) {
    const size_t P = d.B * d.h * d.w, H = d.hid;
    float *dh = bs + d.T * P * 4 * H, *dc = dh + P * H;
    if (dhT) memcpy(dh, dhT, P * H * sizeof *dh);
    else memset(dh, 0, P * H * sizeof *dh);
    if (dcT) memcpy(dc, dcT, P * H * sizeof *dc);
    else memset(dc, 0, P * H * sizeof *dc);
}

void loom_convlstm_backward_step(float *dxt, float *bs, float *dpeep, const float *dht, const float *cache,
                                 const float *c0, const float *wt, const float *peep, loom_convlstm_dims d,
                                 size_t t, loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid, G = 4 * H, X = d.cin + H, N = d.T * P, S = d.h * d.w;
    const float *xh = cache, *act = xh + N * X, *c = act + N * G;
    float *g = bs + t * P * G;    /* this step's (P, 4H) of dgates */
    float *dh = bs + N * G;       /* (P, H) dL/dh_t through the recurrence */
    float *dc = dh + P * H;       /* (P, H) dL/dc_t */
    float *dxh = scratch;         /* (P, X) */
    float *im = dxh + P * X;
    const float *cp = t ? c + (t - 1) * P * H : c0;
    for (size_t q = 0; q < P; q++) {
        const float *a = act + (t * P + q) * G, *ct = c + (t * P + q) * H;
        const float *cq = cp ? cp + q * H : NULL;
        float *dhq = dh + q * H, *dcq = dc + q * H, *gq = g + q * G;
        const float *dext = dht + q * H;
        if (peep) {
            const float *pw = peep + (q % S) * 3 * H;
            float *dpw = dpeep + (q % S) * 3 * H;
            for (size_t k = 0; k < H; k++) {
                const float i = a[k], f = a[H + k], gg = a[2 * H + k], o = a[3 * H + k];
                const float tc = loom_tanhf(ct[k]), cpk = cq ? cq[k] : 0.0f;
                const float dhk = dext[k] + dhq[k];
                /* h_t = o * tanh(c_t), o = sigm(a_o + w_co c_t) */
                const float dao = dhk * tc * o * (1.0f - o);
                const float dct = dcq[k] + dhk * o * (1.0f - tc * tc) + dao * pw[2 * H + k];
                /* c_t = f * c_{t-1} + i * g, i = sigm(a_i + w_ci c_{t-1}), f likewise */
                const float dai = dct * gg * i * (1.0f - i), daf = dct * cpk * f * (1.0f - f);
                dcq[k] = dct * f + dai * pw[k] + daf * pw[H + k]; /* dL/dc_{t-1} */
                dpw[k] += dai * cpk, dpw[H + k] += daf * cpk, dpw[2 * H + k] += dao * ct[k];
                gq[k] = dai, gq[H + k] = daf;
                gq[2 * H + k] = dct * i * (1.0f - gg * gg);
                gq[3 * H + k] = dao;
            }
            continue;
        }
        for (size_t k = 0; k < H; k++) {
            const float i = a[k], f = a[H + k], gg = a[2 * H + k], o = a[3 * H + k];
            const float tc = loom_tanhf(ct[k]);
            const float dhk = dext[k] + dhq[k];
            /* h_t = o * tanh(c_t) */
            const float dct = dcq[k] + dhk * o * (1.0f - tc * tc);
            const float dov = dhk * tc;
            /* c_t = f * c_{t-1} + i * g */
            const float div = dct * gg, dgv = dct * i;
            const float dfv = cq ? dct * cq[k] : 0.0f;
            dcq[k] = dct * f; /* dL/dc_{t-1} */
            gq[k] = div * i * (1.0f - i);
            gq[H + k] = dfv * f * (1.0f - f);
            gq[2 * H + k] = dgv * (1.0f - gg * gg);
            gq[3 * H + k] = dov * o * (1.0f - o);
        }
    }
    /* pre = conv(xh_t, wt): dxh_t = its transpose applied to the gate gradient */
    loom_conv2d_backward_data(dxh, g, wt, conv_dims(d, d.B), cc, im);
    for (size_t q = 0; q < P; q++) {
        if (dxt && d.cin) memcpy(dxt + q * d.cin, dxh + q * X, d.cin * sizeof *dxt);
        memcpy(dh + q * H, dxh + q * X + d.cin, H * sizeof *dh);
    }
}

void loom_convlstm_backward_end(float *dh0, float *dc0, float *dwt, float *dbias, const float *bs,
                                const float *cache, loom_convlstm_dims d, loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid, G = 4 * H, N = d.T * P;
    const float *dg = bs, *dh = bs + N * G, *dc = dh + P * H;
    if (dh0) memcpy(dh0, dh, P * H * sizeof *dh0);
    if (dc0) memcpy(dc0, dc, P * H * sizeof *dc0);
    /* the weights' gradient of every step in one convolution over T B images */
    loom_conv2d_backward_weights(dwt, cache, dg, conv_dims(d, d.T * d.B), cc, scratch + P * (d.cin + H));
    for (size_t r = 0; r < N; r++)
        for (size_t k = 0; k < G; k++) dbias[k] += dg[r * G + k];
}

void loom_convlstm_backward(float *dx, float *dh0, float *dc0, float *dwt, float *dbias, float *dpeep,
                            const float *dhs, const float *dhT, const float *dcT, const float *cache,
                            const float *c0, const float *wt, const float *peep, loom_convlstm_dims d,
                            loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid;
    float *bs = scratch, *step = scratch + loom_convlstm_bstate_floats(d);
    loom_convlstm_backward_begin(bs, dhT, dcT, d);
    for (size_t t = d.T; t-- > 0;)
        loom_convlstm_backward_step(dx && d.cin ? dx + t * P * d.cin : NULL, bs, dpeep, dhs + t * P * H, cache, c0,
                                    wt, peep, d, t, cc, step);
    loom_convlstm_backward_end(dh0, dc0, dwt, dbias, bs, cache, d, cc, step);
}
