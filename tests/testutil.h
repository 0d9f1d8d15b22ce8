/* Helpers shared by the test programs: random buffers and images, model
 * creation, the whole-model loss closures for gradient checks, and the
 * comparison with PyTorch reference fixtures. */
#ifndef LOOM_TESTUTIL_H
#define LOOM_TESTUTIL_H

#include "check.h"
#include "gradcheck.h"
#include "loom.h"
#include "gemm.h"
#include "models/model.h"
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

/* The whole file at path (malloc'ed, *n bytes), or NULL when it cannot be opened. */
/* 1 when this CPU's matrix products (loom_gemm in the thread's current mode)
 * give a row the same bits whatever the product's row count: true of
 * OpenBLAS's SkylakeX and Sandybridge kernels, not of its Haswell and Zen
 * kernels (an AMD Zen 3 here: row 0 of a 4 x 128 x 96 product differs from
 * row 0 of the 12 x 128 x 96 one). Which images share an image's
 * micro-shard then changes its results in the last bits; the thread count
 * still does not, since the micro-shards are fixed. Tests of composition
 * freedom ask this first and say so when they cannot hold. */
static inline int test_rows_free(void) {
    static const size_t shapes[][2] = {{128, 96}, {20, 15}, {12, 9}}; /* n, k */
    enum { MAXM = 24 };
    int free_ = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && free_; s++) {
        const size_t n = shapes[s][0], k = shapes[s][1];
        float *a = malloc(MAXM * k * sizeof *a), *b = malloc(k * n * sizeof *b);
        float *c = malloc(MAXM * n * sizeof *c), *r = malloc(n * sizeof *r);
        for (size_t i = 0; i < MAXM * k; i++) a[i] = (float)((i * 7919) % 1009) / 1009.0f - 0.5f;
        for (size_t i = 0; i < k * n; i++) b[i] = (float)((i * 104729) % 997) / 997.0f - 0.5f;
        for (size_t m = 1; m <= MAXM && free_; m++) {
            loom_gemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            if (m == 1) memcpy(r, c, n * sizeof *r);
            else free_ = memcmp(r, c, n * sizeof *r) == 0;
        }
        free(a), free(b), free(c), free(r);
    }
    return free_;
}

static inline uint8_t *test_read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, fp);
    fclose(fp);
    return b;
}

/* (n) uniform in [-scale, scale] */
static inline float *test_randbuf(loom_rng *r, size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * (2.0f * loom_rng_uniform(r) - 1.0f);
    return p;
}
static inline float *test_zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* (n) uniform pixel values 0..255 */
static inline void test_random_images(uint8_t *imgs, size_t n, loom_rng *r) {
    for (size_t i = 0; i < n; i++) imgs[i] = (uint8_t)loom_rng_below(r, 256);
}
static inline void test_random_images_seed(uint8_t *imgs, size_t n, uint64_t seed) {
    loom_rng r;
    loom_rng_seed(&r, seed);
    test_random_images(imgs, n, &r);
}

/* A model of cfg initialised from seed, then every weight moved by up to
 * +-jitter/2: zero-initialised biases and class tables would hide gradients
 * that only differ from zero away from the initial point. Exits on failure. */
static inline loom_model *test_model(const loom_config *cfg, int threads, uint64_t seed,
                                     float jitter) {
    loom_model *m;
    loom_error err;
    if (loom_model_create(&m, cfg, threads, &err)) {
        printf("FAIL create: %s\n", err.msg);
        exit(1);
    }
    loom_rng r;
    loom_rng_seed(&r, seed);
    loom_model_init(m, &r);
    for (size_t i = 0; i < m->nfloats; i++) m->w[i] += jitter * (loom_rng_uniform(&r) - 0.5f);
    return m;
}

/* the whole-model loss for gc_* gradient checks */
typedef struct {
    loom_model *m;
    const uint8_t *imgs;
    const int32_t *labels; /* or NULL */
    size_t n;
} test_model_ctx;

static inline double test_nll_sum(const test_model_ctx *c) {
    double *nll = malloc(c->n * sizeof *nll), s = 0;
    loom_model_nll(c->m, nll, c->imgs, c->labels, c->n, c->n, NULL);
    for (size_t b = 0; b < c->n; b++) s += nll[b];
    free(nll);
    return s;
}
/* nats per pixel */
static inline double test_loss_per_pixel(void *p) {
    const test_model_ctx *c = p;
    return test_nll_sum(c) / (double)(c->n * c->m->cfg.height * c->m->cfg.width);
}
/* nats per batch: gradients of order 1, so the absolute tolerance bites */
static inline double test_loss_per_batch(void *p) { return test_nll_sum(p); }

/* Every parameter tensor's gradient g (nfloats) against central differences
 * of loss at c (gc_compare2 with eps, eps2), one check each named
 * "<prefix><tensor name><suffix>"; tensors of more than `big` floats are
 * probed every `stride` elements. Beside each, from the same probes, a check
 * scaled to the tensor (gc_compare_scaled: every probe within 10% of the
 * tensor's largest difference quotient) named "<prefix><tensor name><suffix>
 * (to 10% of its scale)": gc_compare2's absolute floor lets a gradient of
 * order 1e-4, like a state-to-state convolution's in a per-pixel loss, be zero. */
static inline void test_param_grads(gc_loss_fn loss, test_model_ctx *c, const float *g,
                                    const char *prefix, const char *suffix, size_t big,
                                    size_t stride, double eps, double eps2) {
    loom_model *m = c->m;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, pp->name, suffix);
        const size_t st = pp->size > big ? stride : 1;
        double *num = malloc((pp->size / st + 1) * sizeof *num), S;
        double w = gc_compare2_keep(loss, c, m->w + pp->offset, g + pp->offset, pp->size, st, eps, eps2, num);
        CHECK(name, w <= 1.0, "worst error ratio %.3g", w);
        double sc = gc_compare_scaled(loss, c, m->w + pp->offset, g + pp->offset, pp->size, st, eps, num, 0.1, &S);
        snprintf(name, sizeof name, "%s%s%s (to 10%% of its scale)", prefix, pp->name, suffix);
        CHECK(name, sc <= 1.0 && S > 0.0, "worst error %.3g times 10%% of the largest difference quotient %.3g",
              sc, S);
        free(num);
    }
}

/* The per-pixel model loss at c: loom_model_grad's loss must equal the
 * forward pass's NLL (check loss_name), and every tensor's gradient must match
 * central differences (test_param_grads, tensors of more than 64 floats
 * probed every `stride` elements). */
static inline void test_model_grads(test_model_ctx *c, const char *loss_name, const char *prefix,
                                    const char *suffix, size_t stride) {
    loom_model *m = c->m;
    double loss;
    loom_model_grad(m, &loss, c->imgs, c->labels, c->n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    CHECK(loss_name, fabs(loss - test_loss_per_pixel(c)) < 1e-9, "grad loss %.9g vs nll %.9g", loss,
          test_loss_per_pixel(c));
    test_param_grads(test_loss_per_pixel, c, g, prefix, suffix, 64, stride, 1e-3, 1e-4);
    free(g);
}

/* `steps` steps of Adam (lr, betas 0.9 / 0.999) with the gradient clipped to
 * norm 1 on one batch; fresh_noise: step s uses noise_seed s + 1 (new latent
 * noise every step, as loom train does), reset to 0 after the gradient.
 * *first, *last (either may be NULL): the loss of the first and last step. */
static inline void test_train(loom_model *m, const uint8_t *imgs, const int32_t *labels, size_t n,
                              int steps, float lr, int fresh_noise, double *first, double *last) {
    float *mm = calloc(m->nfloats, sizeof *mm), *vv = calloc(m->nfloats, sizeof *vv);
    loom_adam adam = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .m = mm, .v = vv,
                      .n = m->nfloats};
    double loss = 0;
    for (int s = 0; s < steps; s++) {
        if (fresh_noise) m->noise_seed = (uint64_t)s + 1;
        loom_model_grad(m, &loss, imgs, labels, n, NULL);
        if (fresh_noise) m->noise_seed = 0;
        if (s == 0 && first) *first = loss;
        loom_clip_grad_norm(m->g, m->nfloats, 1.0);
        loom_adam_step(&adam, m->w, m->g, adam.lr);
    }
    if (last) *last = loss;
    free(mm), free(vv);
}

/* Sampling reproducibility on n images of HW pixels with m1 (1 thread) and m2
 * (2 threads, same weights): a = seed 5, c = seed 6; the same seed gives the
 * same images, another seed others, (distinct) the images differ from each
 * other, and 2 threads give the 1-thread images. Checks named "<prefix>sampling: ...";
 * b is scratch. */
static inline void test_sampling_seeds(loom_model *m1, loom_model *m2, uint8_t *a, uint8_t *b,
                                       uint8_t *c, size_t n, size_t HW, int distinct,
                                       const char *prefix) {
    char name[160];
    loom_model_sample(m1, a, NULL, n, 0, 1.0f, 5, NULL);
    loom_model_sample(m1, b, NULL, n, 0, 1.0f, 5, NULL);
    loom_model_sample(m1, c, NULL, n, 0, 1.0f, 6, NULL);
    snprintf(name, sizeof name, "%ssampling: same seed, same images", prefix);
    CHECK(name, memcmp(a, b, n * HW) == 0, "differ");
    snprintf(name, sizeof name, "%ssampling: another seed, other images", prefix);
    CHECK(name, memcmp(a, c, n * HW) != 0, "identical");
    if (distinct) {
        snprintf(name, sizeof name, "%ssampling: images differ from each other", prefix);
        CHECK(name, memcmp(a, a + HW, HW) != 0, "identical");
    }
    loom_model_sample(m2, b, NULL, n, 0, 1.0f, 5, NULL);
    snprintf(name, sizeof name, "%ssampling: 2 threads give the 1-thread images", prefix);
    CHECK(name, memcmp(a, b, n * HW) == 0, "differ");
}

/* completion: c = a, then resampled (seed 8) after the first `keep` pixels;
 * 1 when every image kept them */
static inline int test_completion_kept(loom_model *m, uint8_t *c, const uint8_t *a, size_t n,
                                       size_t HW, size_t keep) {
    memcpy(c, a, n * HW);
    loom_model_sample(m, c, NULL, n, keep, 1.0f, 8, NULL);
    int kept = 1;
    for (size_t k = 0; k < n; k++) kept &= memcmp(c + k * HW, a + k * HW, keep) == 0;
    return kept;
}

/* Causality probes: img2 = img (HW) with pixel k flipped, z1 (HW, 256) its
 * logits; returns the first pixel whose logits differ from z0 (HW if none). */
static inline size_t test_first_change(float *z1, uint8_t *img2, loom_model *m, const float *z0,
                                       const uint8_t *img, size_t HW, size_t k) {
    memcpy(img2, img, HW);
    img2[k] = (uint8_t)(img[k] ^ 0x80);
    loom_model_logits(m, z1, img2, NULL, 1, NULL);
    size_t first_change = HW;
    for (size_t p = 0; p < HW && first_change == HW; p++)
        if (memcmp(z0 + p * 256, z1 + p * 256, 256 * sizeof *z0) != 0) first_change = p;
    return first_change;
}

/* how many of the npix pixels of imgs are not (up to 1e-5, for float-rounding
 * ties) the argmax of their logits z (npix, 256): a greedy sampler's misses */
static inline int test_not_argmax(const float *z, const uint8_t *imgs, size_t npix) {
    int bad = 0;
    for (size_t q = 0; q < npix; q++) {
        int best = 0;
        for (int k = 1; k < 256; k++) best = z[q * 256 + k] > z[q * 256 + best] ? k : best;
        bad += z[q * 256 + best] - z[q * 256 + imgs[q]] > 1e-5f;
    }
    return bad;
}

/* a size from a reference fixture's metadata (0 when absent) */
static inline size_t test_meta_size(const loom_st_file *f, const char *key) {
    const char *v = loom_st_meta(f, key);
    return v ? (size_t)strtoul(v, NULL, 10) : 0;
}

/* max |a - b| / (1e-6 + max |b|): relative to the tensor's scale */
static inline double test_rel_err(const float *a, const float *b, size_t n) {
    double worst = 0.0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst / scale;
}

/* every parameter's gradient m->g against the fixture's tensor
 * "<key_prefix>grad.<name>", relative error below tol; checks named
 * "<name_prefix>gradient <name> matches PyTorch" */
static inline void test_ref_grads(const loom_st_file *f, const loom_model *m,
                                  const char *key_prefix, const char *name_prefix, double tol) {
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        char name[160], key[128];
        loom_error err;
        snprintf(key, sizeof key, "%sgrad.%s", key_prefix, pp->name);
        float *g = malloc(pp->size * sizeof *g);
        loom_status st = loom_st_read_f32(f, key, g, pp->ndim, pp->shape, &err);
        double ge = st ? 1e9 : test_rel_err(m->g + pp->offset, g, pp->size);
        snprintf(name, sizeof name, "%sgradient %s matches PyTorch", name_prefix, pp->name);
        CHECK(name, ge < tol, "max error %.3g of the gradient's scale", ge);
        free(g);
    }
}

/* One LSTM step in double with PyTorch's gate order i f g o, for tests that
 * recompute a model from its tensors: h, c (H) in place (zeros for the first
 * step) from x (In); w_ih (In, 4H), w_hh (H, 4H), b_ih, b_hh, extra (4H; extra
 * may be NULL, e.g. a per-image gate bias). */
static inline void test_lstm_step(double *h, double *c, const double *x, size_t In, const float *w_ih,
                                  const float *w_hh, const float *b_ih, const float *b_hh,
                                  const float *extra, size_t H) {
    const size_t G = 4 * H;
    double *a = malloc(G * sizeof *a);
    for (size_t k = 0; k < G; k++) {
        double v = (double)b_ih[k] + b_hh[k] + (extra ? extra[k] : 0.0f);
        for (size_t j = 0; j < In; j++) v += x[j] * w_ih[j * G + k];
        for (size_t j = 0; j < H; j++) v += h[j] * w_hh[j * G + k];
        a[k] = v;
    }
    for (size_t k = 0; k < H; k++) {
        const double i = 1.0 / (1.0 + exp(-a[k])), f = 1.0 / (1.0 + exp(-a[H + k]));
        const double g = tanh(a[2 * H + k]), o = 1.0 / (1.0 + exp(-a[3 * H + k]));
        c[k] = f * c[k] + i * g;
        h[k] = o * tanh(c[k]);
    }
    free(a);
}

#endif
