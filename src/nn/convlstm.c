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

size_t loom_convlstm_scratch_floats(loom_convlstm_dims d) {
    const size_t P = d.B * d.h * d.w; /* positions of one step */
    const size_t im = loom_conv2d_scratch_floats(conv_dims(d, d.T * d.B));
    /* dgates (T P, 4 hid), dxh (P, cin + hid), dh, dc (P, hid) */
    return d.T * P * 4 * d.hid + P * (d.cin + d.hid) + 2 * P * d.hid + im;
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

void loom_convlstm_forward(float *hs, float *cache, const float *x, const float *h0,
                           const float *c0, const float *wt, const float *bias, const float *peep,
                           loom_convlstm_dims d, loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid, G = 4 * H, X = d.cin + H, N = d.T * P, S = d.h * d.w;
    float *xh = cache;          /* (T, P, X) */
    float *act = xh + N * X;    /* (T, P, 4H) */
    float *c = act + N * G;     /* (T, P, H) */
    const loom_conv2d_dims cd = conv_dims(d, d.B);
    for (size_t t = 0; t < d.T; t++) {
        const float *hp = t ? hs + (t - 1) * P * H : h0;
        const float *cp = t ? c + (t - 1) * P * H : c0;
        float *xt = xh + t * P * X, *a = act + t * P * G;
        for (size_t q = 0; q < P; q++) {
            if (d.cin) memcpy(xt + q * X, x + (t * P + q) * d.cin, d.cin * sizeof *xt);
            if (hp) memcpy(xt + q * X + d.cin, hp + q * H, H * sizeof *xt);
            else memset(xt + q * X + d.cin, 0, H * sizeof *xt);
        }
        loom_conv2d_forward(a, xt, wt, cd, cc, scratch);
        for (size_t q = 0; q < P; q++) {
            float *cq = c + (t * P + q) * H, *hq = hs + (t * P + q) * H;
            const float *pw = peep ? peep + (q % S) * 3 * H : NULL;
            if (pw && cp) gates_peep(a + q * G, cq, hq, bias, cp + q * H, pw, H, 1);
            else if (pw) gates_peep(a + q * G, cq, hq, bias, NULL, pw, H, 0);
            else if (cp) gates(a + q * G, cq, hq, bias, cp + q * H, H, 1);
            else gates(a + q * G, cq, hq, bias, NULL, H, 0);
        }
    }
}

void loom_convlstm_backward(float *dx, float *dh0, float *dc0, float *dwt, float *dbias, float *dpeep,
                            const float *dhs, const float *dhT, const float *dcT, const float *cache,
                            const float *c0, const float *wt, const float *peep, loom_convlstm_dims d,
                            loom_conv2d_cache *cc, float *scratch) {
    const size_t P = d.B * d.h * d.w, H = d.hid, G = 4 * H, X = d.cin + H, N = d.T * P, S = d.h * d.w;
    const float *xh = cache, *act = xh + N * X, *c = act + N * G;
    float *dg = scratch;          /* (T, P, 4H) */
    float *dxh = dg + N * G;      /* (P, X) */
    float *dh = dxh + P * X;      /* (P, H) dL/dh_{t} through the recurrence */
    float *dc = dh + P * H;       /* (P, H) dL/dc_t */
    float *im = dc + P * H;
    const loom_conv2d_dims cd = conv_dims(d, d.B);
    if (dhT) memcpy(dh, dhT, P * H * sizeof *dh);
    else memset(dh, 0, P * H * sizeof *dh);
    if (dcT) memcpy(dc, dcT, P * H * sizeof *dc);
    else memset(dc, 0, P * H * sizeof *dc);
    for (size_t t = d.T; t-- > 0;) {
        const float *cp = t ? c + (t - 1) * P * H : c0;
        float *g = dg + t * P * G;
        for (size_t q = 0; q < P; q++) {
            const float *a = act + (t * P + q) * G, *ct = c + (t * P + q) * H;
            const float *cq = cp ? cp + q * H : NULL;
            float *dhq = dh + q * H, *dcq = dc + q * H, *gq = g + q * G;
            const float *dext = dhs + (t * P + q) * H;
            if (peep) {
                const float *pw = peep + (q % S) * 3 * H;
                float *dpw = dpeep + (q % S) * 3 * H;
                for (size_t k = 0; k < H; k++) {
                    const float i = a[k], f = a[H + k], gg = a[2 * H + k], o = a[3 * H + k];
                    const float tc = loom_tanhf(ct[k]), cpk = cq ? cq[k] : 0.0f;
                    const float dht = dext[k] + dhq[k];
                    /* h_t = o * tanh(c_t), o = sigm(a_o + w_co c_t) */
                    const float dao = dht * tc * o * (1.0f - o);
                    const float dct = dcq[k] + dht * o * (1.0f - tc * tc) + dao * pw[2 * H + k];
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
                const float dht = dext[k] + dhq[k];
                /* h_t = o * tanh(c_t) */
                const float dct = dcq[k] + dht * o * (1.0f - tc * tc);
                const float dov = dht * tc;
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
        loom_conv2d_backward_data(dxh, g, wt, cd, cc, im);
        for (size_t q = 0; q < P; q++) {
            if (dx && d.cin) memcpy(dx + (t * P + q) * d.cin, dxh + q * X, d.cin * sizeof *dx);
            memcpy(dh + q * H, dxh + q * X + d.cin, H * sizeof *dh);
        }
    }
    if (dh0) memcpy(dh0, dh, P * H * sizeof *dh0);
    if (dc0) memcpy(dc0, dc, P * H * sizeof *dc0);
    /* the weights' gradient of every step in one convolution over T B images */
    loom_conv2d_backward_weights(dwt, xh, dg, conv_dims(d, d.T * d.B), cc, im);
    for (size_t r = 0; r < N; r++)
        for (size_t k = 0; k < G; k++) dbias[k] += dg[r * G + k];
}
