/* DRAW's Gaussian filterbank attention: definitions in attention.h. */
#include "attention.h"

#include "fastmath.h"

#include "../core/gemm.h"
#include <math.h>
#include <string.h>

#define ZMIN 1e-8f /* floor of a filter's normaliser: a grid far off the image reads zeros */

loom_attn_geom loom_attn_geometry(const float *p, size_t H, size_t W, size_t N) {
    const float span = (float)(H > W ? H : W) - 1.0f;
    loom_attn_geom g;
    g.gx = 0.5f * (float)(W + 1) * (p[0] + 1.0f);
    g.gy = 0.5f * (float)(H + 1) * (p[1] + 1.0f);
    g.s2 = expf(p[2]);
    g.d = (N > 1 ? span / (float)(N - 1) : 1.0f) * expf(p[3]);
    g.gm = expf(p[4]);
    return g;
}

/* offset of filter i from the grid centre, in strides */
static float grid_offset(size_t i, size_t N) { return (float)i + 0.5f - 0.5f * (float)N; }

/* F (N, L): normalised Gaussians along one axis of length L centred on g */
static void bank(float *F, float g, float d, float s2, size_t N, size_t L) {
    for (size_t i = 0; i < N; i++) {
        const float m = g + grid_offset(i, N) * d;
        float *f = F + i * L, z = 0.0f;
        for (size_t a = 0; a < L; a++) {
            const float u = (float)(a + 1) - m;
            f[a] = loom_expf(-u * u / (2.0f * s2)); /* vectorised; libm's expf underflows slowly here */
            z += f[a];
        }
        const float inv = 1.0f / (z > ZMIN ? z : ZMIN);
        for (size_t a = 0; a < L; a++) f[a] *= inv;
    }
}

void loom_filterbank_forward(float *Fx, float *Fy, float *gm, const float *p, loom_attn_dims d) {
    for (size_t b = 0; b < d.n; b++) {
        const loom_attn_geom g = loom_attn_geometry(p + 5 * b, d.H, d.W, d.N);
        bank(Fx + b * d.N * d.W, g.gx, g.d, g.s2, d.N, d.W);
        bank(Fy + b * d.N * d.H, g.gy, g.d, g.s2, d.N, d.H);
        gm[b] = g.gm;
    }
}

/* Reverses bank(): from dF (N, L) accumulate d(centre), d(stride), d(s2). */
static void bank_backward(float *dg, float *dd, float *ds2, const float *dF, const float *F, float g,
                          float d, float s2, size_t N, size_t L) {
    for (size_t i = 0; i < N; i++) {
        const float m = g + grid_offset(i, N) * d;
        const float *f = F + i * L, *df = dF + i * L;
        float z = 0.0f, dot = 0.0f;
        for (size_t a = 0; a < L; a++) {
            const float u = (float)(a + 1) - m;
            z += loom_expf(-u * u / (2.0f * s2));
            dot += df[a] * f[a];
        }
        /* f = e / z: de = (df - sum(df f)) / z; with z floored, z is a constant */
        const int floored = !(z > ZMIN);
        const float inv = 1.0f / (floored ? ZMIN : z);
        float dm = 0.0f, dv = 0.0f;
        for (size_t a = 0; a < L; a++) {
            const float u = (float)(a + 1) - m;
            const float e = loom_expf(-u * u / (2.0f * s2));
            const float de = (df[a] - (floored ? 0.0f : dot)) * inv;
            /* e = exp(-u^2 / (2 s2)), u = a - m */
            dm += de * e * u / s2;
            dv += de * e * u * u / (2.0f * s2 * s2);
        }
        /* m = g + offset_i * d */
        *dg += dm;
        *dd += dm * grid_offset(i, N);
        *ds2 += dv;
    }
}

void loom_filterbank_backward(float *dp, const float *dFx, const float *dFy, const float *dgm,
                              const float *p, const float *Fx, const float *Fy, loom_attn_dims d) {
    for (size_t b = 0; b < d.n; b++) {
        const float *pb = p + 5 * b;
        const loom_attn_geom g = loom_attn_geometry(pb, d.H, d.W, d.N);
        float dgx = 0.0f, dgy = 0.0f, dd = 0.0f, ds2 = 0.0f;
        if (dFx)
            bank_backward(&dgx, &dd, &ds2, dFx + b * d.N * d.W, Fx + b * d.N * d.W, g.gx, g.d, g.s2,
                          d.N, d.W);
        if (dFy)
            bank_backward(&dgy, &dd, &ds2, dFy + b * d.N * d.H, Fy + b * d.N * d.H, g.gy, g.d, g.s2,
                          d.N, d.H);
        float *o = dp + 5 * b;
        o[0] += dgx * 0.5f * (float)(d.W + 1); /* gx = (W+1)/2 (p0+1) */
        o[1] += dgy * 0.5f * (float)(d.H + 1);
        o[2] += ds2 * g.s2;                    /* s2 = exp(p2) */
        o[3] += dd * g.d;                      /* d = c exp(p3) */
        if (dgm) o[4] += dgm[b] * g.gm;        /* gm = exp(p4) */
    }
}

/* C (m, n) = alpha op(A) op(B) + beta C, row-major, tight leading dimensions */
static void mm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *A,
               const float *B, float beta, float *C) {
    loom_gemm(ta, tb, m, n, k, alpha, A, ta ? m : k, B, tb ? k : n, beta, C, n);
}

void loom_attn_read_forward(float *r, float *tmp, const float *x, const float *Fx, const float *Fy,
                            const float *gm, loom_attn_dims d) {
    const size_t H = d.H, W = d.W, N = d.N;
    for (size_t b = 0; b < d.n; b++) {
        float *t = tmp + b * H * N;
        mm(0, 1, H, N, W, 1.0f, x + b * H * W, Fx + b * N * W, 0.0f, t);     /* t = x Fx^T */
        mm(0, 0, N, N, H, gm[b], Fy + b * N * H, t, 0.0f, r + b * N * N);    /* r = gm Fy t */
    }
}

void loom_attn_read_backward(float *dx, float *dFx, float *dFy, float *dgm, float *dtmp,
                             const float *dr, const float *r, const float *tmp, const float *x,
                             const float *Fx, const float *Fy, const float *gm, loom_attn_dims d) {
    const size_t H = d.H, W = d.W, N = d.N;
    for (size_t b = 0; b < d.n; b++) {
        const float *drb = dr + b * N * N, *t = tmp + b * H * N, *fx = Fx + b * N * W;
        /* r = gm Fy t */
        if (dgm) {
            float s = 0.0f;
            for (size_t k = 0; k < N * N; k++) s += drb[k] * r[b * N * N + k];
            dgm[b] += s / gm[b];
        }
        if (dFy) mm(0, 1, N, H, N, gm[b], drb, t, 1.0f, dFy + b * N * H);
        if (!dx && !dFx) continue;
        mm(1, 0, H, N, N, gm[b], Fy + b * N * H, drb, 0.0f, dtmp);
        /* t = x Fx^T */
        if (dx) mm(0, 0, H, W, N, 1.0f, dtmp, fx, 1.0f, dx + b * H * W);
        if (dFx) mm(1, 0, N, W, H, 1.0f, dtmp, x + b * H * W, 1.0f, dFx + b * N * W);
    }
}

void loom_attn_write_forward(float *o, float *tmp, const float *w, const float *Fx,
                             const float *Fy, const float *gm, loom_attn_dims d) {
    const size_t H = d.H, W = d.W, N = d.N;
    for (size_t b = 0; b < d.n; b++) {
        float *t = tmp + b * N * W;
        mm(0, 0, N, W, N, 1.0f, w + b * N * N, Fx + b * N * W, 0.0f, t);          /* t = w Fx */
        mm(1, 0, H, W, N, 1.0f / gm[b], Fy + b * N * H, t, 0.0f, o + b * H * W);   /* o = Fy^T t / gm */
    }
}

void loom_attn_write_backward(float *dw, float *dFx, float *dFy, float *dgm, float *dtmp,
                              const float *dout, const float *o, const float *tmp, const float *w,
                              const float *Fx, const float *Fy, const float *gm, loom_attn_dims d) {
    const size_t H = d.H, W = d.W, N = d.N;
    for (size_t b = 0; b < d.n; b++) {
        const float *dob = dout + b * H * W, *t = tmp + b * N * W, *fx = Fx + b * N * W;
        const float ig = 1.0f / gm[b];
        /* o = Fy^T t / gm */
        if (dgm) {
            float s = 0.0f;
            for (size_t k = 0; k < H * W; k++) s += dob[k] * o[b * H * W + k];
            dgm[b] -= s * ig;
        }
        if (dFy) mm(0, 1, N, H, W, ig, t, dob, 1.0f, dFy + b * N * H);
        if (!dw && !dFx) continue;
        mm(0, 0, N, W, H, ig, Fy + b * N * H, dob, 0.0f, dtmp);
        /* t = w Fx */
        if (dw) mm(0, 1, N, N, W, 1.0f, dtmp, fx, 1.0f, dw + b * N * N);
        if (dFx) mm(1, 0, N, W, N, 1.0f, w + b * N * N, dtmp, 1.0f, dFx + b * N * W);
    }
}
