#include "nn.h"

#include "fastmath.h"

#include <math.h>

double loom_softmax256_xent(float *logits, double *nll, const uint8_t *target, size_t n,
                            float scale, int grad) {
    double total = 0.0;
    for (size_t p = 0; p < n; p++) {
        float *z = logits + p * 256;
        float mx = z[0];
        for (int k = 1; k < 256; k++) mx = z[k] > mx ? z[k] : mx;
        float zt = z[target[p]];
        float s = 0.0f;
        if (grad) {
            for (int k = 0; k < 256; k++) {
                z[k] = loom_expf(z[k] - mx);
                s += z[k];
            }
        } else {
            for (int k = 0; k < 256; k++) s += loom_expf(z[k] - mx);
        }
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
