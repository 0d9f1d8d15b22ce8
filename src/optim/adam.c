#include "optim.h"

#include <math.h>

void loom_adam_step(loom_adam *a, float *w, const float *g, float lr) {
    a->t++;
    const float b1 = a->beta1, b2 = a->beta2;
    const float c1 = 1.0f - powf(b1, (float)a->t), c2 = 1.0f - powf(b2, (float)a->t);
    const float step = lr / c1, vscale = 1.0f / c2;
    for (size_t i = 0; i < a->n; i++) {
        a->m[i] = b1 * a->m[i] + (1.0f - b1) * g[i];
        a->v[i] = b2 * a->v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= step * a->m[i] / (sqrtf(a->v[i] * vscale) + a->eps);
    }
}

double loom_clip_grad_norm(float *g, size_t n, double max_norm) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    double norm = sqrt(s);
    if (max_norm > 0.0 && norm > max_norm && isfinite(norm)) {
        float k = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) g[i] *= k;
    }
    return norm;
}
