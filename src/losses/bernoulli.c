/* Bernoulli likelihood on logits: losses.h. */
#include "losses.h"

#include "fastmath.h"

#include <math.h>

double loom_bernoulli_nll_acc(double acc, const float *logits, const float *x, size_t count) {
    /* softplus(l) = max(l, 0) + log1p(exp(-|l|)): no overflow for any l */
    for (size_t i = 0; i < count; i++) {
        const double l = logits[i];
        acc += (double)LOOM_MAX(logits[i], 0.0f) + log1p(exp(-fabs(l))) - (double)x[i] * logits[i];
    }
    return acc;
}

void loom_bernoulli_backward(float *dl, const float *logits, const float *x, size_t count,
                             float scale) {
    /* d/dl (softplus(l) - x l) = sigmoid(l) - x */
    for (size_t i = 0; i < count; i++) dl[i] = scale * (loom_sigmoidf(logits[i]) - x[i]);
}
