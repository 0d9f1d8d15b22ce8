#include "nn.h"

#include "fastmath.h"

#include <math.h>

/* Reductions over the 256 logits use 16 explicit lanes: gcc will not
 * reassociate a float sum without -ffast-math, but it vectorises the lanes,
 * and the fixed lane order keeps results bit-reproducible. */
#define LANES 16

static inline float max256(const float *z) {
    float m[LANES];
    for (int l = 0; l < LANES; l++) m[l] = z[l];
    for (int k = LANES; k < 256; k += LANES)
        for (int l = 0; l < LANES; l++) m[l] = z[k + l] > m[l] ? z[k + l] : m[l];
    float mx = m[0];
    for (int l = 1; l < LANES; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* e[k] = exp((z[k] - mx) * inv_t) (e may be z); returns sum e */
static inline float exp256(float *e, const float *z, float mx, float inv_t) {
    float s[LANES] = {0};
    for (int k = 0; k < 256; k += LANES)
        for (int l = 0; l < LANES; l++) {
            float v = loom_expf((z[k + l] - mx) * inv_t);
            e[k + l] = v;
            s[l] += v;
        }
    float tot = 0.0f;
    for (int l = 0; l < LANES; l++) tot += s[l];
    return tot;
}

float loom_softmax256(float *e, const float *z, float temperature) {
    return exp256(e, z, max256(z) , 1.0f / temperature);
}

double loom_softmax256_xent(float *logits, double *nll, const uint8_t *target, size_t n,
                            float scale, int grad) {
    double total = 0.0;
    float tmp[256];
    for (size_t p = 0; p < n; p++) {
        float *z = logits + p * 256;
        float mx = max256(z);
        float zt = z[target[p]];
        float s = exp256(grad ? z : tmp, z, mx, 1.0f);
        /* -log softmax(z)[t] = log sum exp(z - mx) - (z_t - mx) */
        double l = (double)logf(s) - (double)(zt - mx);
        total += l;
        if (nll) nll[p] = l;
        if (grad) {
            float inv = scale / s;
            for (int k = 0; k < 256; k++) z[k] *= inv;
            z[target[p]] -= scale;
        }
    }
    return total;
}
