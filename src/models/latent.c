/* Shared pieces of the latent-variable models: latent.h. */
#include "latent.h"

#include "fastmath.h"

#include <math.h>

double loom_gauss_kl(const float *mu, const float *ls, size_t z) {
    double kl = 0.0;
    for (size_t j = 0; j < z; j++) {
        const double sg = exp((double)ls[j]);
        kl += 0.5 * ((double)mu[j] * mu[j] + sg * sg - 1.0) - ls[j];
    }
    return kl;
}

double loom_gauss_log_ratio(float *zs, const float *mu, const float *ls, const float *eps, size_t z) {
    double r = 0.0;
    for (size_t j = 0; j < z; j++) {
        zs[j] = mu[j] + expf(ls[j]) * eps[j];
        r += 0.5 * ((double)zs[j] * zs[j] - (double)eps[j] * eps[j]) - ls[j];
    }
    return r;
}

static uint64_t image_hash(const uint8_t *p, size_t len) {
    uint64_t x = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) x = (x ^ p[i]) * 0x100000001b3ULL;
    return x;
}

void loom_binarize(float *x, const uint8_t *img, size_t HW, uint64_t noise_seed) {
    const uint64_t key = noise_seed ? noise_seed : LOOM_STATIC_BIN_SEED;
    loom_rng r;
    loom_rng_seed(&r, image_hash(img, HW) ^ (key * 0x9e3779b97f4a7c15ULL));
    for (size_t i = 0; i < HW; i++) x[i] = loom_rng_uniform(&r) * 255.0f < (float)img[i] ? 1.0f : 0.0f;
}

void loom_noise_rng(loom_rng *r, const uint8_t *img, size_t HW, uint64_t noise_seed, uint64_t k) {
    loom_rng_seed(r, image_hash(img, HW) ^ (noise_seed * 0xbf58476d1ce4e5b9ULL) ^
                         ((k + 1) * 0x94d049bb133111ebULL));
}

void loom_index_rng(loom_rng *r, uint64_t noise_seed, size_t index) {
    loom_rng_seed(r, noise_seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1)));
}

void loom_normals(float *out, size_t k, loom_rng *r) {
    /* half the log/cos calls of loom_rng_normal, which were 4% of a DRAW step */
    for (size_t j = 0; j < k; j += 2) {
        const double u1 = ((double)(loom_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
        const double u2 = (double)(loom_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
        const double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        out[j] = (float)(rad * cos(th));
        if (j + 1 < k) out[j + 1] = (float)(rad * sin(th));
    }
}

void loom_iw_accumulate(double *lse_m, double *lse_s, const double *bce, const double *lqp,
                        size_t n, size_t k) {
    for (size_t b = 0; b < n; b++) {
        const double lw = -(bce[b] + lqp[b]);
        if (k == 0) lse_m[b] = lw, lse_s[b] = 1.0;
        else if (lw <= lse_m[b]) lse_s[b] += exp(lw - lse_m[b]);
        else lse_s[b] = lse_s[b] * exp(lse_m[b] - lw) + 1.0, lse_m[b] = lw;
    }
}

void loom_iw_nll(double *nll_img, const double *lse_m, const double *lse_s, size_t n, size_t K) {
    for (size_t b = 0; b < n; b++) nll_img[b] = -(lse_m[b] + log(lse_s[b]) - log((double)K));
}

uint8_t loom_latent_pixel(float l) { return (uint8_t)lrintf(255.0f * loom_sigmoidf(l)); }
