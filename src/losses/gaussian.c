/* Gaussian likelihood with a fixed standard deviation: losses.h. */
#include "losses.h"

#include <math.h>

double loom_gaussian_nll_acc(double acc, const float *mu, const float *x, size_t count, float sd) {
    /* 0.5 log(2 pi) = 0.918938533204672742 */
    const double inv = 1.0 / (double)sd, c = log((double)sd) + 0.918938533204672742;
    for (size_t i = 0; i < count; i++) {
        const double r = ((double)x[i] - mu[i]) * inv;
        acc += 0.5 * r * r + c;
    }
    return acc;
}

void loom_gaussian_backward(float *dmu, const float *mu, const float *x, size_t count, float sd,
                            float scale) {
    /* d/dmu 0.5 ((x - mu) / sd)^2 = (mu - x) / sd^2 */
    const float k = scale / (sd * sd);
    for (size_t i = 0; i < count; i++) dmu[i] = k * (mu[i] - x[i]);
}
