/* Optimisers over one flat parameter buffer. */
#ifndef LOOM_OPTIM_H
#define LOOM_OPTIM_H

#include <stddef.h>

typedef struct loom_adam {
    float lr, beta1, beta2, eps;
    float *m, *v; /* (n) first and second moments, owned by the caller */
    size_t n;
    long t;       /* steps taken, for bias correction */
} loom_adam;

/* w -= lr_t * mhat / (sqrt(vhat) + eps), with the bias-corrected moments of g */
void loom_adam_step(loom_adam *a, float *w, const float *g, float lr);
/* Scales g so that its L2 norm is at most max_norm (when max_norm > 0).
 * Returns the norm before clipping (a NaN/Inf here means a bad gradient). */
double loom_clip_grad_norm(float *g, size_t n, double max_norm);

#endif
