/* What the latent-variable models (draw, rae) share: the diagonal-Gaussian
 * terms and the per-image noise (docs/draw.md, "Data: binarization").
 * q = N(mu, sigma^2) with sigma = exp(ls), prior p = N(0, I), over z dims. */
#ifndef LOOM_LATENT_H
#define LOOM_LATENT_H

#include "common.h"

/* KL(q || p) in closed form: sum_j 0.5 (mu^2 + sigma^2 - 1) - ls */
double loom_gauss_kl(const float *mu, const float *ls, size_t z);
/* log q(zs) - log p(zs) at zs = mu + sigma eps: sum_j 0.5 (zs^2 - eps^2) - ls
 * (the 2 pi terms cancel); writes zs (z) */
double loom_gauss_log_ratio(float *zs, const float *mu, const float *ls, const float *eps, size_t z);

/* key of the static binarization of evaluation images (noise_seed == 0) */
#define LOOM_STATIC_BIN_SEED 0x5eedb1a7c0de2015ULL

/* x (HW) in {0, 1}: pixel v ~ Bernoulli(v / 255) from an RNG keyed by the
 * image's content and noise_seed (0: the fixed static key) */
void loom_binarize(float *x, const uint8_t *img, size_t HW, uint64_t noise_seed);
/* the RNG of an image's latent noise for importance sample k */
void loom_noise_rng(loom_rng *r, const uint8_t *img, size_t HW, uint64_t noise_seed, uint64_t k);
/* the RNG of the noise of generated image `index` of a batch drawn with
 * noise_seed (the adversarial stages' samples: gran, draw, rae) */
void loom_index_rng(loom_rng *r, uint64_t noise_seed, size_t index);
/* k standard normals (Box-Muller keeping both values of each pair) */
void loom_normals(float *out, size_t k, loom_rng *r);

/* The importance-weighted bound over K samples, as a running log-sum-exp of
 * the log weights lw = -(bce + lqp): sample k (0..K-1) updates lse_m, lse_s
 * (n) with bce, lqp (n) of that sample; then nll_img (n) = -log (1/K sum_k
 * exp(lw_k)). */
void loom_iw_accumulate(double *lse_m, double *lse_s, const double *bce, const double *lqp,
                        size_t n, size_t k);
void loom_iw_nll(double *nll_img, const double *lse_m, const double *lse_s, size_t n, size_t K);

/* the 8-bit pixel of a Bernoulli logit: 255 sigmoid(l), rounded */
uint8_t loom_latent_pixel(float l);

#endif
