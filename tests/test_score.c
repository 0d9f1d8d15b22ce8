/* Scores (src/eval/score.c): FID against its closed form (2-D, where
 * tr (S_a S_b)^(1/2) = sqrt(tr(S_a S_b) + 2 sqrt(det S_a det S_b))) and its
 * known values, the Inception score's limits, the AUC and DeLong's variance
 * against pairwise sums, and calibration on Fashion-MNIST with a tiny renet
 * trained here: two sets of the same distribution give an FID near 0 and an
 * AUC interval holding 0.5; noised or blurred images a large FID and an AUC
 * near 1; sets of other sizes or channels are refused. */
#include "check.h"
#include "testutil.h"
#include "eval/score.h"
#include "loom.h"
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void gaussian_set(float *x, size_t n, size_t D, const double *mu, const double *sd, loom_rng *r) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < D; k++) x[i * D + k] = (float)(mu[k] + sd[k] * loom_rng_normal(r));
}

static void test_fid(void) {
    loom_rng r;
    loom_rng_seed(&r, 21);
    const size_t n = 400, D = 2;
    float *a = malloc(n * D * sizeof *a), *b = malloc(n * D * sizeof *b);
    const double mua[2] = {0, 0}, sda[2] = {1, 1}, mub[2] = {0.5, -1}, sdb[2] = {2, 0.5};
    gaussian_set(a, n, D, mua, sda, &r);
    gaussian_set(b, n, D, mub, sdb, &r);
    for (size_t i = 0; i < n; i++) b[i * 2 + 1] += 0.7f * b[i * 2]; /* correlated: S_a S_b do not commute */
    for (size_t i = 0; i < n; i++) a[i * 2] += 0.3f * a[i * 2 + 1];
    /* the closed form on the sample moments */
    double m[2][2] = {{0}}, S[2][2][2] = {{{0}}};
    const float *xs[2] = {a, b};
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 2; k++) m[s][k] += xs[s][i * 2 + k] / (double)n;
        for (size_t i = 0; i < n; i++)
            for (int p = 0; p < 2; p++)
                for (int q = 0; q < 2; q++)
                    S[s][p][q] += (xs[s][i * 2 + p] - m[s][p]) * (xs[s][i * 2 + q] - m[s][q]) / (double)(n - 1);
    }
    double P[2][2];
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 2; q++) P[p][q] = S[0][p][0] * S[1][0][q] + S[0][p][1] * S[1][1][q];
    const double detA = S[0][0][0] * S[0][1][1] - S[0][0][1] * S[0][1][0];
    const double detB = S[1][0][0] * S[1][1][1] - S[1][0][1] * S[1][1][0];
    const double trsqrt = sqrt(P[0][0] + P[1][1] + 2.0 * sqrt(detA * detB));
    const double want = (m[0][0] - m[1][0]) * (m[0][0] - m[1][0]) + (m[0][1] - m[1][1]) * (m[0][1] - m[1][1]) +
                        S[0][0][0] + S[0][1][1] + S[1][0][0] + S[1][1][1] - 2.0 * trsqrt;
    double fid, same;
    loom_fid(&fid, a, n, b, n, D, NULL);
    CHECK("fid: 2-D closed form (non-commuting covariances)", fabs(fid - want) < 1e-6 * fmax(1.0, want),
          "loom %.9g closed form %.9g", fid, want);
    loom_fid(&same, a, n, a, n, D, NULL);
    CHECK("fid: a set against itself is 0", fabs(same) < 1e-6, "%.3g", same);
    free(a), free(b);
    /* 8-D, independent coordinates: sum of (mu_a - mu_b)^2 + (sd_a - sd_b)^2 */
    const size_t n8 = 20000, D8 = 8;
    float *c = malloc(n8 * D8 * sizeof *c), *d = malloc(n8 * D8 * sizeof *d);
    double mu0[8] = {0}, sd0[8], mu1[8], sd1[8], expect = 0.0;
    for (size_t k = 0; k < D8; k++) {
        sd0[k] = 1.0, mu1[k] = 0.1 * (double)k, sd1[k] = 1.0 + 0.25 * (double)k;
        expect += mu1[k] * mu1[k] + (sd1[k] - sd0[k]) * (sd1[k] - sd0[k]);
    }
    gaussian_set(c, n8, D8, mu0, sd0, &r);
    gaussian_set(d, n8, D8, mu1, sd1, &r);
    loom_fid(&fid, c, n8, d, n8, D8, NULL);
    CHECK("fid: 8-D Gaussians, sum of (mu_a - mu_b)^2 + (sd_a - sd_b)^2 (to 3%)", fabs(fid - expect) < 0.03 * expect,
          "loom %.4f expected %.4f", fid, expect);
    loom_error err;
    CHECK("fid: one row refused", loom_fid(&fid, c, 1, d, n8, D8, &err) == LOOM_EINVAL, "accepted");
    c[5] = NAN;
    CHECK("fid: a non-finite feature refused", loom_fid(&fid, c, n8, d, n8, D8, &err) == LOOM_EINVAL, "accepted");
    free(c), free(d);
}

static void test_is(void) {
    const size_t n = 40, K = 5;
    float *z = calloc(n * K, sizeof *z);
    double flat = loom_inception_score(z, n, K);
    for (size_t i = 0; i < n; i++) z[i * K + i % K] = 40.0f;
    double sharp = loom_inception_score(z, n, K);
    for (size_t i = 0; i < n; i++) memset(z + i * K, 0, K * sizeof *z), z[i * K + 2] = 40.0f;
    double one = loom_inception_score(z, n, K);
    CHECK("inception score: 1 for no confident class, K for confident balanced, 1 for one class",
          fabs(flat - 1) < 1e-9 && fabs(sharp - (double)K) < 1e-6 && fabs(one - 1) < 1e-6, "%.6f %.6f %.6f", flat,
          sharp, one);
    free(z);
}

/* AUC and DeLong's variance by their definitions, pairwise */
static void brute_auc(double *auc, double *var, const double *p, size_t np, const double *q, size_t nq) {
    double *v10 = calloc(np, sizeof *v10), *v01 = calloc(nq, sizeof *v01), s = 0;
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < nq; j++) {
            const double psi = p[i] > q[j] ? 1.0 : p[i] == q[j] ? 0.5 : 0.0;
            v10[i] += psi / (double)nq, v01[j] += psi / (double)np, s += psi;
        }
    *auc = s / (double)(np * nq);
    double s10 = 0, s01 = 0;
    for (size_t i = 0; i < np; i++) s10 += (v10[i] - *auc) * (v10[i] - *auc);
    for (size_t j = 0; j < nq; j++) s01 += (v01[j] - *auc) * (v01[j] - *auc);
    *var = s10 / (double)(np - 1) / (double)np + s01 / (double)(nq - 1) / (double)nq;
    free(v10), free(v01);
}

static void test_auc(void) {
    loom_rng r;
    loom_rng_seed(&r, 5);
    const size_t np = 37, nq = 53;
    double p[37], q[53];
    for (size_t i = 0; i < np; i++) p[i] = (double)loom_rng_below(&r, 20) + 3; /* ties on purpose */
    for (size_t j = 0; j < nq; j++) q[j] = (double)loom_rng_below(&r, 20);
    double auc, lo, hi, ba, bv;
    loom_auc(&auc, &lo, &hi, p, np, q, nq);
    brute_auc(&ba, &bv, p, np, q, nq);
    const double bl = fmax(0, ba - 1.959964 * sqrt(bv)), bh = fmin(1, ba + 1.959964 * sqrt(bv));
    CHECK("auc: ties count 1/2, equal to the pairwise definition", fabs(auc - ba) < 1e-12, "%.9f vs %.9f", auc, ba);
    CHECK("auc: DeLong 95% interval equal to its pairwise definition", fabs(lo - bl) < 1e-9 && fabs(hi - bh) < 1e-9,
          "[%.6f, %.6f] vs [%.6f, %.6f]", lo, hi, bl, bh);
    for (size_t i = 0; i < np; i++) p[i] = 100 + (double)i;
    loom_auc(&auc, &lo, &hi, p, np, q, nq);
    CHECK("auc: separated scores give 1", auc == 1.0, "%.6f", auc);
    loom_auc(&auc, &lo, &hi, q, nq, p, np);
    CHECK("auc: reversed roles give 0", auc == 0.0, "%.6f", auc);
}

static void test_seg_scores(void) {
    /* truth 0 0 1 1 2 2, pred 0 1 1 1 2 0: right 4 of 6; IoU 0: 1/3, 1: 2/3, 2: 1/2 */
    const uint8_t truth[6] = {0, 0, 1, 1, 2, 2}, pred[6] = {0, 1, 1, 1, 2, 0};
    double acc, miou;
    loom_seg_scores(&acc, &miou, pred, truth, 6, 11);
    CHECK("segmentation: pixel accuracy and mean IoU over the classes present",
          fabs(acc - 4.0 / 6) < 1e-12 && fabs(miou - (1.0 / 3 + 2.0 / 3 + 0.5) / 3) < 1e-12, "%.6f %.6f", acc, miou);
}

/* SSIM against scikit-image 0.19.3's structural_similarity on the same two
 * 20 x 24 float32 frames (computed in float64, data_range=1): its defaults
 * for the 7 x 7 uniform window, and gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False for the 11 x 11 Gaussian one */
static void test_ssim(void) {
    enum { H = 20, W = 24 };
    static float a[H * W], b[H * W], z[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            a[y * W + x] = (float)(((y * 7 + x * 13) % 17) / 16.0);
            b[y * W + x] = (float)(0.7 * (double)a[y * W + x] + 0.05 * ((x + y) % 5) + 0.05);
        }
    const double u = loom_ssim(a, b, H, W, LOOM_SSIM_UNIFORM7), g = loom_ssim(a, b, H, W, LOOM_SSIM_GAUSS11);
    CHECK("ssim: scikit-image's 7x7 uniform window (0.908863666362009)", fabs(u - 0.908863666362009) < 1e-9,
          "%.15f", u);
    CHECK("ssim: scikit-image's 11x11 Gaussian, sigma 1.5 (0.9102779317121752)", fabs(g - 0.9102779317121752) < 1e-9,
          "%.15f", g);
    const double same = loom_ssim(a, a, H, W, LOOM_SSIM_UNIFORM7), dim = loom_ssim(z, b, H, W, LOOM_SSIM_GAUSS11);
    CHECK("ssim: 1 for equal frames, near 0 against black", fabs(same - 1) < 1e-12 && dim < 0.01, "%.6f %.6f", same,
          dim);
    /* a frame smaller than the window is one window: for 3 x 3 frames a and
     * 2 a, (2 m 2m + C1)(2 2v + C2) / ((m^2 + 4 m^2 + C1)(v + 4 v + C2)) */
    const float s3[9] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.3f, 0.2f, 0.1f, 0}, t3[9] = {0, 0.2f, 0.4f, 0.6f, 0.8f, 0.6f, 0.4f, 0.2f, 0};
    double m = 0, v = 0;
    for (int i = 0; i < 9; i++) m += s3[i] / 9.0;
    for (int i = 0; i < 9; i++) v += (s3[i] - m) * (s3[i] - m) / 9.0;
    const double want = (4 * m * m + 1e-4) * (4 * v + 9e-4) / ((5 * m * m + 1e-4) * (5 * v + 9e-4));
    const double small = loom_ssim(s3, t3, 3, 3, LOOM_SSIM_GAUSS11);
    CHECK("ssim: a 3x3 frame is one uniform window", fabs(small - want) < 1e-6, "%.8f want %.8f", small, want);
}

/* ---------------------------------------------------------------- calibration */

static void noise_images(loom_images *dst, const loom_images *src, double sd, uint64_t seed) {
    *dst = *src;
    const size_t N = src->n * src->h * src->w;
    dst->pixels = malloc(N), dst->labels = NULL, dst->class_names = NULL;
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t i = 0; i < N; i++) {
        double v = src->pixels[i] + sd * loom_rng_normal(&r);
        dst->pixels[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
    }
}

/* a 5x5 box blur */
static void blur_images(loom_images *dst, const loom_images *src) {
    *dst = *src;
    const size_t H = src->h, W = src->w;
    dst->pixels = malloc(src->n * H * W), dst->labels = NULL, dst->class_names = NULL;
    for (size_t b = 0; b < src->n; b++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                unsigned s = 0, c = 0;
                for (int dy = -2; dy <= 2; dy++)
                    for (int dx = -2; dx <= 2; dx++) {
                        const long yy = (long)y + dy, xx = (long)x + dx;
                        if (yy < 0 || xx < 0 || yy >= (long)H || xx >= (long)W) continue;
                        s += src->pixels[(b * H + (size_t)yy) * W + (size_t)xx], c++;
                    }
                dst->pixels[(b * H + y) * W + x] = (uint8_t)((s + c / 2) / c);
            }
}

static void test_calibration(void) {
    loom_images all;
    loom_error err;
    if (loom_images_load(&all, "fashion-mnist", "train", &err)) {
        CHECK("calibration: fashion-mnist loads", 0, "%s", err.msg);
        return;
    }
    /* disjoint sets of 600 random training images: A, B; and 2000 to train a tiny classifier */
    size_t *idx = malloc(all.n * sizeof *idx);
    loom_rng r;
    loom_rng_seed(&r, 7);
    for (size_t k = 0; k < all.n; k++) idx[k] = k;
    for (size_t k = 0; k < 3200; k++) {
        const size_t j = k + loom_rng_below(&r, all.n - k), t = idx[k];
        idx[k] = idx[j], idx[j] = t;
    }
    loom_images A, B, T, Bn, Bb;
    loom_images_gather(&A, &all, idx, 600, NULL);
    loom_images_gather(&B, &all, idx + 600, 600, NULL);
    loom_images_gather(&T, &all, idx + 1200, 2000, NULL);
    noise_images(&Bn, &B, 50.0, 3);
    blur_images(&Bb, &B);
    loom_config cfg = {.model = "renet", .height = 28, .width = 28, .layers = 1, .hidden = 16, .nclasses = 10,
                       .patch = 7, .cell = "lstm"};
    loom_model *m = test_model(&cfg, 2, 1, 0.0f);
    int32_t lab[32];
    uint8_t *batch = malloc(32 * 784);
    float *am = calloc(m->nfloats, sizeof *am), *av = calloc(m->nfloats, sizeof *av);
    loom_adam adam = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .m = am, .v = av, .n = m->nfloats};
    for (size_t s = 0; s < 200; s++) {
        for (size_t q = 0; q < 32; q++) {
            const size_t k = (s * 32 + q) % T.n;
            memcpy(batch + q * 784, T.pixels + k * 784, 784);
            lab[q] = T.labels[k];
        }
        double loss;
        loom_model_grad(m, &loss, batch, lab, 32, NULL);
        loom_adam_step(&adam, m->w, m->g, adam.lr);
    }
    const size_t D = loom_model_feat_dim(m), K = 10, n = 600;
    float *fa = malloc(n * D * sizeof *fa), *fb = malloc(n * D * sizeof *fb), *lg = malloc(n * K * sizeof *lg);
    double fsame, fnoise, fblur, tr = 0;
    loom_model_classify(m, lg, fa, A.pixels, n, 64, NULL);
    size_t right = 0;
    for (size_t b = 0; b < n; b++) {
        size_t best = 0;
        for (size_t k = 1; k < K; k++) best = lg[b * K + k] > lg[b * K + best] ? k : best;
        right += (int32_t)best == A.labels[b];
    }
    CHECK("calibration: the tiny classifier learned (accuracy > 60% on held-out images)", right > 0.6 * n,
          "%zu of %zu", right, n);
    for (size_t k = 0; k < D; k++) { /* total variance of A's features: the scale of an FID */
        double mu = 0, v = 0;
        for (size_t b = 0; b < n; b++) mu += fa[b * D + k] / (double)n;
        for (size_t b = 0; b < n; b++) v += (fa[b * D + k] - mu) * (fa[b * D + k] - mu) / (double)(n - 1);
        tr += v;
    }
    loom_model_classify(m, NULL, fb, B.pixels, n, 64, NULL);
    loom_fid(&fsame, fa, n, fb, n, D, NULL);
    loom_model_classify(m, NULL, fb, Bn.pixels, n, 64, NULL);
    loom_fid(&fnoise, fa, n, fb, n, D, NULL);
    loom_model_classify(m, NULL, fb, Bb.pixels, n, 64, NULL);
    loom_fid(&fblur, fa, n, fb, n, D, NULL);
    printf("# fid/tr(S): same %.4f, noised %.4f, blurred %.4f (tr %.4f)\n", fsame / tr, fnoise / tr, fblur / tr, tr);
    CHECK("calibration: fid of two sets of one distribution near 0 (< 5% of the features' variance)",
          fsame < 0.05 * tr, "fid %.4g, variance %.4g", fsame, tr);
    CHECK("calibration: fid of noised images large (> 10x the same-distribution fid, > 20% of the variance)",
          fnoise > 10 * fsame && fnoise > 0.2 * tr, "fid %.4g vs %.4g, variance %.4g", fnoise, fsame, tr);
    CHECK("calibration: fid of blurred images large (> 10x the same-distribution fid, > 5% of the variance)",
          fblur > 10 * fsame && fblur > 0.05 * tr, "fid %.4g vs %.4g, variance %.4g", fblur, fsame, tr);
    loom_detect_opts o;
    loom_detect_opts_default(&o);
    o.threads = 2, o.steps = 200, o.patch = 7;
    loom_detect_result dr;
    loom_status st = loom_detect(&dr, &A, &B, &o, &err);
    CHECK("calibration: detector on one distribution: the AUC interval holds 0.5",
          !st && dr.auc_low <= 0.5 && dr.auc_high >= 0.5 && dr.auc_high - dr.auc_low < 0.2,
          "auc %.4f [%.4f, %.4f]", dr.auc, dr.auc_low, dr.auc_high);
    st = loom_detect(&dr, &A, &Bn, &o, &err);
    CHECK("calibration: detector on noised images: AUC near 1 (interval above 0.95)", !st && dr.auc_low > 0.95,
          "auc %.4f [%.4f, %.4f]", dr.auc, dr.auc_low, dr.auc_high);
    st = loom_detect(&dr, &A, &Bb, &o, &err);
    CHECK("calibration: detector on blurred images: AUC near 1 (interval above 0.9)", !st && dr.auc_low > 0.9,
          "auc %.4f [%.4f, %.4f]", dr.auc, dr.auc_low, dr.auc_high);
    /* bad input: another size, other channels, too few images */
    loom_images small = A, rgb = A, few = A;
    small.h = 14, small.n = 100;
    st = loom_detect(&dr, &A, &small, &o, &err);
    CHECK("detect: sets of different image sizes refused", st == LOOM_EINVAL && strstr(err.msg, "image sizes"),
          "%s", st ? err.msg : "accepted");
    rgb.c = 3, rgb.n = 100;
    st = loom_detect(&dr, &A, &rgb, &o, &err);
    CHECK("detect: sets of different channel counts refused", st == LOOM_EINVAL && strstr(err.msg, "channel"),
          "%s", st ? err.msg : "accepted");
    few.n = 3;
    st = loom_detect(&dr, &A, &few, &o, &err);
    CHECK("detect: a set of 3 images refused", st == LOOM_EINVAL && strstr(err.msg, "at least 4"), "%s",
          st ? err.msg : "accepted");
    free(fa), free(fb), free(lg), free(batch), free(am), free(av), free(idx);
    loom_model_free(m);
    loom_images_free(&A), loom_images_free(&B), loom_images_free(&T), loom_images_free(&Bn), loom_images_free(&Bb);
    loom_images_free(&all);
}

int main(void) {
    test_fid();
    test_is();
    test_auc();
    test_seg_scores();
    test_ssim();
    test_calibration();
    CHECK_DONE();
}
