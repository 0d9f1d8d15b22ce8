/* K-way class cross-entropy: losses.h. */
#include "losses.h"

#include <math.h>

double loom_class_xent(float *dlogits, double *nll, const float *logits, const int32_t *labels,
                       size_t n, size_t K, float scale) {
    double total = 0.0;
    for (size_t b = 0; b < n; b++) {
        const float *z = logits + b * K;
        float mx = z[0];
        for (size_t k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < K; k++) s += exp((double)z[k] - mx);
        const size_t y = (size_t)labels[b];
        /* -log softmax(z)[y] = log sum exp(z - mx) - (z_y - mx) */
        const double l = log(s) - ((double)z[y] - mx);
        total += l;
        if (nll) nll[b] = l;
        if (dlogits) {
            float *d = dlogits + b * K;
            for (size_t k = 0; k < K; k++) d[k] = scale * (float)(exp((double)z[k] - mx) / s);
            d[y] -= scale;
        }
    }
    return total;
}
