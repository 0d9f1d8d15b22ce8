/* The importance-weighted bound shared by the latent-variable models
 * (src/models/latent.c) and the models' iw_nll ops (draw, rae, grupixel):
 * loom_iw_accumulate / loom_iw_nll against direct double computations,
 * including log weights where a naive exp underflows; through the models,
 * K = 1 against the single-sample bound at the same noise, K = 4 against
 * -log (1/K sum_k exp(lw_k)) of the K per-sample log weights, and the bound
 * tightening in expectation as K grows. */
#include "testutil.h"
#include "models/grupixel.h"
#include "models/latent.h"

#include <string.h>

/* nll_img of the log weights lw (n images, K samples each, lw[k * n + b]),
 * through loom_iw_accumulate / loom_iw_nll with bce = -lw, lqp = 0 */
static void iw_of(double *nll, const double *lw, size_t n, size_t K) {
    double m[8], s[8], bce[8], lq[8] = {0};
    for (size_t k = 0; k < K; k++) {
        for (size_t b = 0; b < n; b++) bce[b] = -lw[k * n + b];
        loom_iw_accumulate(m, s, bce, lq, n, k);
    }
    loom_iw_nll(nll, m, s, n, K);
}

/* -log (1/K sum_k exp(lw_k)) the direct way (no underflow for lw > -700) */
static double direct(const double *lw, size_t K) {
    double s = 0.0;
    for (size_t k = 0; k < K; k++) s += exp(lw[k]);
    return -log(s / (double)K);
}

static void test_accumulate(void) {
    /* two images at once: log weights -1000, -1001 in both orders; exp()
     * underflows to 0 there, so only a rescaled sum gets the answer
     * 1000 - log((1 + e^-1) / 2) */
    const double lw[4] = {-1000.0, -1001.0, -1001.0, -1000.0};
    double nll[2];
    iw_of(nll, lw, 2, 2);
    const double want = 1000.0 - log1p(exp(-1.0)) + log(2.0);
    CHECK("iw: log weights -1000 and -1001 (a naive exp underflows), both orders",
          fabs(nll[0] - want) < 1e-9 && fabs(nll[1] - want) < 1e-9, "%.12g %.12g want %.12g", nll[0], nll[1], want);
    /* K equal weights: the mean is the weight, -log K cancels exactly */
    const double eq[3] = {-1e4, -1e4, -1e4};
    iw_of(nll, eq, 1, 3);
    CHECK("iw: K = 3 equal log weights -1e4 give 1e4 (the -log K term)", fabs(nll[0] - 1e4) < 1e-9, "%.12g", nll[0]);
    /* a spread no double exp survives: -5 and -800 -> 5 + log 2 - log1p(e^-795) */
    const double sp[2] = {-800.0, -5.0};
    iw_of(nll, sp, 1, 2);
    CHECK("iw: log weights -800 and -5 give 5 + log 2", fabs(nll[0] - (5.0 + log(2.0))) < 1e-9, "%.12g", nll[0]);
    /* K = 1 is -lw = bce + lqp, with the sign of each term */
    double m[2], s[2];
    const double bce[2] = {5.25, 5.0}, lq1[2] = {2.0, -1.5};
    loom_iw_accumulate(m, s, bce, lq1, 2, 0);
    loom_iw_nll(nll, m, s, 2, 1);
    CHECK("iw: K = 1 is bce + lqp per image", fabs(nll[0] - 7.25) < 1e-12 && fabs(nll[1] - 3.5) < 1e-12,
          "%.12g %.12g", nll[0], nll[1]);
    /* K = 5 of mixed magnitudes and orders (both branches of the update),
     * 3 images, against the direct sum in double */
    loom_rng r;
    loom_rng_seed(&r, 41);
    double lw5[15], worst = 0.0;
    for (size_t i = 0; i < 15; i++) lw5[i] = -60.0 * loom_rng_uniform(&r);
    double nll5[3];
    iw_of(nll5, lw5, 3, 5);
    for (size_t b = 0; b < 3; b++) {
        double col[5];
        for (size_t k = 0; k < 5; k++) col[k] = lw5[k * 3 + b];
        worst = fmax(worst, fabs(nll5[b] - direct(col, 5)));
    }
    CHECK("iw: K = 5 mixed log weights, 3 images, equal the direct double computation", worst < 1e-10,
          "worst difference %.3g", worst);
}

/* ------------------------------------------------------------ through the models */

/* noise_seed s with loom_noise_rng(img, s, 0) == loom_noise_rng(img, 0, k):
 * for binary images (whose binarization ignores the seed) the single-sample
 * bound at s is sample k of the importance-weighted bound at seed 0.
 * loom_noise_rng keys by h(img) ^ s A ^ (k + 1) B; A is odd, so invertible. */
static uint64_t stream_seed(uint64_t k) {
    const uint64_t A = 0xbf58476d1ce4e5b9ULL, B = 0x94d049bb133111ebULL;
    uint64_t inv = A;
    for (int i = 0; i < 6; i++) inv *= 2 - A * inv;
    return (((k + 1) * B) ^ B) * inv;
}

/* binary images (0 / 255) */
static void binary_images(uint8_t *imgs, size_t n, uint64_t seed) {
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) imgs[i] = loom_rng_uniform(&r) < 0.4f ? 255 : 0;
}

static void test_stream_seed(void) {
    uint8_t img[12];
    binary_images(img, 12, 3);
    int same = 1;
    for (uint64_t k = 0; k < 5; k++) {
        loom_rng a, b;
        loom_noise_rng(&a, img, 12, 0, k);
        loom_noise_rng(&b, img, 12, stream_seed(k), 0);
        for (int i = 0; i < 4; i++) same &= loom_rng_u64(&a) == loom_rng_u64(&b);
    }
    float x0[12], x1[12];
    loom_binarize(x0, img, 12, 0);
    loom_binarize(x1, img, 12, stream_seed(3));
    CHECK("test harness: noise_seed stream_seed(k) gives importance sample k's noise, binary images ignore it",
          same && memcmp(x0, x1, sizeof x0) == 0, "loom_noise_rng or loom_binarize keys changed");
}

static loom_model *make_draw(size_t H, size_t W, size_t z, size_t T, int threads, uint64_t seed) {
    loom_config cfg = {.model = "draw", .height = H, .width = W, .layers = 1, .hidden = 5, .zdim = z,
                       .steps_draw = T, .read_n = 2, .write_n = 2, .attention = 1};
    return test_model(&cfg, threads, seed, 0.3f);
}
static loom_model *make_rae(size_t H, size_t W, size_t z, int threads, uint64_t seed) {
    loom_config cfg = {.model = "rae", .height = H, .width = W, .layers = 1, .hidden = 5, .zdim = z,
                       .variational = 1};
    return test_model(&cfg, threads, seed, 0.3f);
}

/* K = 1 against the single-sample bound at the same noise. shard reports
 * bce + KL (closed form) and iw(K = 1) bce + log q(z|x) - log p(z) at the
 * sampled z: with the posterior's weight zeroed, q = N(mu, sigma) from its
 * bias, known to the test, so iw1 = shard - T KL(mu, ls) + the log ratio the
 * test computes in double from the eps drawn like the model draws them
 * (loom_noise_rng of the image, T blocks of loom_normals). */
static void test_k1(const char *model) {
    const int draw = !strcmp(model, "draw");
    const size_t H = 4, W = 5, HW = H * W, z = 3, T = draw ? 3 : 1, n = 6;
    loom_model *m = draw ? make_draw(H, W, z, T, 1, 5) : make_rae(H, W, z, 1, 5);
    const loom_param *qw = loom_model_param(m, draw ? "q.weight" : "enc.fc.weight");
    const loom_param *qb = loom_model_param(m, draw ? "q.bias" : "enc.fc.bias");
    memset(m->w + qw->offset, 0, qw->size * sizeof(float));
    const float mu[3] = {0.4f, -0.8f, 0.1f}, ls[3] = {-0.3f, 0.2f, -1.0f};
    memcpy(m->w + qb->offset, mu, sizeof mu);
    memcpy(m->w + qb->offset + z, ls, sizeof ls);
    uint8_t imgs[6 * 20];
    test_random_images_seed(imgs, sizeof imgs, 12);
    double elbo[6], iw1[6], worst = 0.0, spread = 0.0;
    loom_model_nll(m, elbo, imgs, NULL, n, n, NULL);
    loom_model_iw_nll(m, iw1, imgs, NULL, n, 1, n, NULL);
    double kl = 0.0;
    for (size_t j = 0; j < z; j++) kl += 0.5 * ((double)mu[j] * mu[j] + exp(2.0 * ls[j]) - 1.0) - ls[j];
    for (size_t b = 0; b < n; b++) {
        loom_rng r;
        loom_noise_rng(&r, imgs + b * HW, HW, 0, 0);
        double lqp = 0.0;
        for (size_t t = 0; t < T; t++) {
            float eps[3];
            loom_normals(eps, z, &r);
            for (size_t j = 0; j < z; j++) {
                const double zz = mu[j] + exp((double)ls[j]) * eps[j];
                lqp += 0.5 * (zz * zz - (double)eps[j] * eps[j]) - ls[j];
            }
        }
        const double want = elbo[b] - (double)T * kl + lqp;
        worst = fmax(worst, fabs(iw1[b] - want));
        spread = fmax(spread, fabs(lqp - (double)T * kl));
    }
    char name[160];
    snprintf(name, sizeof name, "%s iw K = 1 == shard - KL + (log q - log p) at the same eps (hand posterior)", model);
    CHECK(name, worst < 1e-4 && spread > 1e-2, "worst difference %.3g (log-ratio minus KL up to %.3g)", worst, spread);
    loom_model_free(m);
}

/* K = 4 at seed 0 against -log (1/4 sum_k exp(lw_k)) in double, where
 * -lw_k = the K = 1 bound of importance sample k (noise_seed stream_seed(k));
 * and 1 and 2 threads, in other chunks, give the same numbers */
static void test_k4(const char *model) {
    const int draw = !strcmp(model, "draw");
    const size_t H = 5, W = 4, z = 3, n = 5, K = 4;
    loom_model *m = draw ? make_draw(H, W, z, 2, 1, 9) : make_rae(H, W, z, 1, 9);
    loom_model *m2 = draw ? make_draw(H, W, z, 2, 2, 9) : make_rae(H, W, z, 2, 9);
    uint8_t imgs[5 * 20];
    binary_images(imgs, sizeof imgs, 21);
    double iw4[5], iw4b[5], lw[4][5], worst = 0.0, spread = 0.0;
    loom_model_iw_nll(m, iw4, imgs, NULL, n, K, n, NULL);
    for (size_t k = 0; k < K; k++) {
        m->noise_seed = stream_seed(k);
        loom_model_iw_nll(m, lw[k], imgs, NULL, n, 1, n, NULL);
        for (size_t b = 0; b < n; b++) lw[k][b] = -lw[k][b];
    }
    m->noise_seed = 0;
    for (size_t b = 0; b < n; b++) {
        double col[4], lo = 1e300, hi = -1e300;
        for (size_t k = 0; k < K; k++) col[k] = lw[k][b], lo = fmin(lo, col[k]), hi = fmax(hi, col[k]);
        worst = fmax(worst, fabs(iw4[b] - direct(col, K)));
        spread = fmax(spread, hi - lo);
    }
    char name[160];
    snprintf(name, sizeof name, "%s iw K = 4 == -log mean_k exp(lw_k) of the 4 per-sample bounds (double)", model);
    CHECK(name, worst < 1e-4 && spread > 0.1, "worst difference %.3g (log weights spread %.3g)", worst, spread);
    loom_model_iw_nll(m2, iw4b, imgs, NULL, n, K, 2, NULL);
    /* not bit-identical for rae: its convolutions' GEMMs round differently
     * for other shard sizes (3e-8 here) */
    double d = 0.0;
    for (size_t b = 0; b < n; b++) d = fmax(d, fabs(iw4[b] - iw4b[b]) / fabs(iw4[b]));
    snprintf(name, sizeof name, "%s iw K = 4: 2 threads in chunks of 2 give the 1-thread numbers (1e-6)", model);
    CHECK(name, d < 1e-6, "relative difference %.3g", d);
    loom_model_free(m), loom_model_free(m2);
}

/* ------------------------------------------------------------ grupixel */

static loom_model *make_gp(int K, int threads) {
    loom_config cfg = {.model = "grupixel", .height = 3, .width = 4, .layers = 2, .hidden = 4,
                       .nclasses = K, .zdim = 3, .cell = "gru"};
    loom_model *m = test_model(&cfg, threads, 23, 0.4f);
    /* a strong init map, so that p(x | z) depends on z noticeably */
    const loom_param *iw = loom_model_param(m, "init.weight");
    for (size_t i = 0; i < iw->size; i++) m->w[iw->offset + i] *= 4.0f;
    return m;
}

/* E[iw_K] is non-increasing in K: the mean over 200 images of K = 1, 4, 32 */
static void test_tightens(const char *model) {
    const int draw = !strcmp(model, "draw"), gp = !strcmp(model, "grupixel");
    const size_t H = gp ? 3 : 4, W = 4, n = 200;
    loom_model *m = gp ? make_gp(0, 2) : draw ? make_draw(H, W, 3, 2, 2, 13) : make_rae(H, W, 3, 2, 13);
    uint8_t *imgs = malloc(n * H * W);
    test_random_images_seed(imgs, n * H * W, 31);
    double *nll = malloc(n * sizeof *nll), mean[3];
    const size_t Ks[3] = {1, 4, 32};
    for (int i = 0; i < 3; i++) {
        loom_model_iw_nll(m, nll, imgs, NULL, n, Ks[i], 50, NULL);
        mean[i] = 0.0;
        for (size_t b = 0; b < n; b++) mean[i] += nll[b] / (double)n;
    }
    char name[160];
    snprintf(name, sizeof name, "%s iw: the mean bound falls from K = 1 to 4 to 32", model);
    CHECK(name, mean[0] > mean[1] && mean[1] > mean[2], "K=1 %.4f K=4 %.4f K=32 %.4f", mean[0], mean[1], mean[2]);
    free(imgs), free(nll);
    loom_model_free(m);
}

/* z_k of image img as grupixel's iw_nll draws it; then -log p(x | z_k) of
 * the n images through loom_grupixel_run with those z */
static void gp_nll_at(double *nll, loom_model *m, const uint8_t *imgs, const int32_t *labels, size_t n,
                      uint64_t k) {
    const size_t HW = m->cfg.height * m->cfg.width, Z = m->cfg.zdim;
    float *z = malloc(n * Z * sizeof *z);
    for (size_t b = 0; b < n; b++) {
        loom_rng r;
        loom_noise_rng(&r, imgs + b * HW, HW, 0, k);
        loom_normals(z + b * Z, Z, &r);
    }
    void *ws = malloc(m->ops->train_ws_bytes(&m->cfg, n));
    loom_grupixel_run(m, ws, NULL, nll, NULL, imgs, labels, z, n, 0.0f);
    free(ws), free(z);
}

static void test_grupixel(int K) {
    const size_t n = 5;
    loom_model *m = make_gp(K, 1), *m2 = make_gp(K, 2);
    uint8_t imgs[5 * 12];
    test_random_images_seed(imgs, sizeof imgs, 51);
    const int32_t labels[5] = {0, 1, 2, 1, 0}, *lab = K ? labels : NULL;
    const char *tag = K ? " (conditional)" : "";
    char name[160];
    double iw1[5], iw4[5], iw4b[5], nk[4][5], worst1 = 0.0, worst4 = 0.0, spread = 0.0;
    loom_error err;
    loom_status st = loom_model_iw_nll(m, iw1, imgs, lab, n, 1, n, &err);
    snprintf(name, sizeof name, "grupixel%s: loom_model_iw_nll accepts grupixel", tag);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    loom_model_iw_nll(m, iw4, imgs, lab, n, 4, n, NULL);
    for (size_t k = 0; k < 4; k++) gp_nll_at(nk[k], m, imgs, lab, n, k);
    for (size_t b = 0; b < n; b++) {
        double lw[4], lo = 1e300, hi = -1e300;
        for (size_t k = 0; k < 4; k++) lw[k] = -nk[k][b], lo = fmin(lo, lw[k]), hi = fmax(hi, lw[k]);
        worst1 = fmax(worst1, fabs(iw1[b] - nk[0][b]));
        worst4 = fmax(worst4, fabs(iw4[b] - direct(lw, 4)));
        spread = fmax(spread, hi - lo);
    }
    snprintf(name, sizeof name, "grupixel%s iw K = 1 == -log p(x | z_0) at the image's own z_0", tag);
    CHECK(name, worst1 < 1e-9, "worst difference %.3g", worst1);
    snprintf(name, sizeof name, "grupixel%s iw K = 4 == -log mean_k p(x | z_k) in double", tag);
    CHECK(name, worst4 < 1e-9 && spread > 0.05, "worst difference %.3g (log weights spread %.3g)", worst4, spread);
    loom_model_iw_nll(m2, iw4b, imgs, lab, n, 4, 2, NULL);
    snprintf(name, sizeof name, "grupixel%s iw K = 4: 2 threads in chunks of 2 give the 1-thread numbers", tag);
    double d = 0.0;
    for (size_t b = 0; b < n; b++) d = fmax(d, fabs(iw4[b] - iw4b[b]) / fabs(iw4[b]));
    CHECK(name, d < 1e-6, "relative difference %.3g", d);
    loom_model_free(m), loom_model_free(m2);
}

int main(void) {
    test_accumulate();
    test_stream_seed();
    test_k1("draw");
    test_k1("rae");
    test_k4("draw");
    test_k4("rae");
    test_tightens("draw");
    test_tightens("rae");
    test_grupixel(0);
    test_grupixel(3);
    test_tightens("grupixel");
    CHECK_DONE();
}
