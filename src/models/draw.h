/* DRAW's diagonal-Gaussian latent terms (docs/draw.md), exposed for tests.
 * q = N(mu, sigma^2) with sigma = exp(ls), prior p = N(0, I), over z dims. */
#ifndef LOOM_DRAW_H
#define LOOM_DRAW_H

#include <stddef.h>

/* KL(q || p) in closed form: sum_j 0.5 (mu^2 + sigma^2 - 1) - ls */
double loom_gauss_kl(const float *mu, const float *ls, size_t z);
/* log q(zs) - log p(zs) at zs = mu + sigma eps: sum_j 0.5 (zs^2 - eps^2) - ls
 * (the 2 pi terms cancel); writes zs (z) */
double loom_gauss_log_ratio(float *zs, const float *mu, const float *ls, const float *eps, size_t z);

#endif
