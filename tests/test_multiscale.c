/* Multi-scale PixelRNN (docs/rowlstm.md, "Multi-scale"; src/models/pixelrnn.c):
 * for the Row LSTM and the Diagonal BiLSTM, gray and RGB: every gradient
 * (the conditioning path and the small model's included) against central
 * differences; the NLL is the small model's on the subsampled image plus the
 * full model's on the other pixels; the full model is causal given the small
 * image and sees all of it; the incremental sampler (small image, then the
 * rest, with the conditioning) agrees with the forward passes; configuration
 * errors. */
#include "testutil.h"
#include "models/pixelrnn.h"

static const char *const models[2] = {"rowlstm", "diagbilstm"};

static loom_model *make_k(int which, size_t H, size_t W, size_t C, size_t S, size_t L, size_t h, int K,
                          int threads, uint64_t seed) {
    loom_config cfg = {.height = H, .width = W, .channels = C, .layers = L, .hidden = h, .multiscale = S,
                       .nclasses = K};
    snprintf(cfg.model, sizeof cfg.model, "%s", models[which]);
    loom_model *m = test_model(&cfg, threads, seed, 0.4f);
    for (size_t p = 0; p < m->nparams; p++) /* the jitter moved the masked weights */
        for (size_t k = 0; k < m->params[p].size; k++)
            if (m->ops->masked(m, p, k)) m->w[m->params[p].offset + k] = 0.0f;
    return m;
}
static loom_model *make(int which, size_t H, size_t W, size_t C, size_t S, size_t L, size_t h, int threads,
                        uint64_t seed) {
    return make_k(which, H, W, C, S, L, h, 0, threads, seed);
}

static double loss_per_dim(void *p) {
    const test_model_ctx *c = p;
    return test_nll_sum(c) / (double)(c->n * c->m->cfg.height * c->m->cfg.width * loom_channels(&c->m->cfg));
}

static void test_gradients(int which, size_t C, int K) {
    const size_t n = 2, H = 4, W = 6;
    loom_model *m = make_k(which, H, W, C, 2, 2, 3, K, 1, 7);
    uint8_t imgs[2 * 3 * 4 * 6];
    test_random_images_seed(imgs, n * C * H * W, 3);
    int32_t labels[2] = {1, 2};
    test_model_ctx c = {m, imgs, K ? labels : NULL, n};
    double loss;
    loom_model_grad(m, &loss, imgs, c.labels, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    const char *col = C == 3 ? "RGB" : K ? "gray conditional" : "gray";
    char name[200];
    snprintf(name, sizeof name, "%s multiscale %s: loss == nll per dimension", models[which], col);
    CHECK(name, fabs(loss - loss_per_dim(&c)) < 1e-9, "grad loss %.9g vs nll %.9g", loss, loss_per_dim(&c));
    int seen_cond = 0, seen_small = 0;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        float *x = m->w + pp->offset;
        const float *gp = g + pp->offset;
        const size_t stride = pp->size > 64 ? 7 : 1;
        double worst = 0.0;
        size_t probed = 0, masked_nonzero = 0;
        for (size_t e = 0; e < pp->size; e++) {
            if (m->ops->masked(m, p, e)) {
                masked_nonzero += gp[e] != 0.0f;
                continue;
            }
            if (e % stride) continue;
            double r = gc_ratio(loss_per_dim, &c, x, e, gp[e], 1e-3);
            if (r > 1.0) r = fmin(r, gc_ratio(loss_per_dim, &c, x, e, gp[e], 1e-4));
            worst = fmax(worst, r);
            probed++;
        }
        seen_cond += strncmp(pp->name, "cond.", 5) == 0;
        seen_small += strncmp(pp->name, "small.", 6) == 0;
        snprintf(name, sizeof name, "%s multiscale %s gradient %s", models[which], col, pp->name);
        CHECK(name, worst <= 1.0 && probed > 0 && masked_nonzero == 0,
              "worst error ratio %.3g over %zu entries, %zu masked entries nonzero", worst, probed, masked_nonzero);
    }
    snprintf(name, sizeof name, "%s multiscale %s: the conditioning and the small model's tensors exist",
             models[which], col);
    CHECK(name, seen_cond == 2 + 2 * 2 && seen_small > 4, "cond %d small %d", seen_cond, seen_small);
    free(g);
    loom_model_free(m);
}

/* -log p(x) = the small model's NLL of the subsampled image (a model of the
 * small config with the small.* weights) + the full model's logits' NLL of
 * the pixels outside the small image */
static void test_decomposition(int which, size_t C) {
    const size_t H = 4, W = 6, S = 2, f = 2, Ws = 3, n = 2, P = H * W;
    loom_model *m = make(which, H, W, C, S, 2, 3, 1, 9);
    loom_config sc = m->cfg;
    sc.height = S, sc.width = Ws, sc.multiscale = 0;
    loom_model *s = test_model(&sc, 1, 1, 0.0f);
    /* the small.* tensors, by name */
    int named = 1;
    for (size_t p = 0; p < s->nparams; p++) {
        char nm[LOOM_NAMELEN + 8];
        snprintf(nm, sizeof nm, "small.%s", s->params[p].name);
        const loom_param *q = loom_model_param(m, nm);
        if (!q || q->size != s->params[p].size) { named = 0; continue; }
        memcpy(s->w + s->params[p].offset, m->w + q->offset, q->size * sizeof *s->w);
    }
    uint8_t imgs[2 * 3 * 24], small[2 * 3 * 6];
    test_random_images_seed(imgs, n * C * P, 12);
    for (size_t b = 0; b < n * C; b++)
        for (size_t i = 0; i < S; i++)
            for (size_t j = 0; j < Ws; j++) small[(b * S + i) * Ws + j] = imgs[(b * H + f * i) * W + f * j];
    double nll[2], nll_s[2];
    loom_model_nll(m, nll, imgs, NULL, n, n, NULL);
    loom_model_nll(s, nll_s, small, NULL, n, n, NULL);
    float *z = malloc(n * P * C * 256 * sizeof *z);
    loom_model_logits(m, z, imgs, NULL, n, NULL);
    double worst = 0.0;
    for (size_t b = 0; b < n; b++) {
        double full = 0.0;
        for (size_t p = 0; p < P; p++) {
            if ((p / W) % f == 0 && (p % W) % f == 0) continue;
            for (size_t ch = 0; ch < C; ch++)
                full -= loom_pixelrnn_logp(z + ((b * P + p) * C + ch) * 256, imgs[(b * C + ch) * P + p]);
        }
        worst = fmax(worst, fabs(nll[b] - (nll_s[b] + full)) / nll[b]);
    }
    char name[200];
    snprintf(name, sizeof name, "%s multiscale %s: NLL = small model's NLL + full model's on the other pixels",
             models[which], C == 3 ? "RGB" : "gray");
    CHECK(name, named && worst < 1e-6, "named %d worst relative difference %.3g", named, worst);
    free(z);
    loom_model_free(m), loom_model_free(s);
}

/* The full model given the small image: changing a pixel that is not in the
 * small image changes no logit at or before it; changing the small-image
 * pixel (1, 1), which comes after pixel 0, changes pixel 0's logits (the
 * small image is known before the full one is drawn) */
static void test_causality(int which, size_t C) {
    const size_t H = 6, W = 6, P = H * W;
    loom_model *m = make(which, H, W, C, 3, 2, 3, 1, 13);
    uint8_t img[3 * 36], img2[3 * 36];
    test_random_images_seed(img, C * P, 5);
    const size_t Z = P * C * 256;
    float *z0 = malloc(Z * sizeof *z0), *z1 = malloc(Z * sizeof *z1);
    loom_model_logits(m, z0, img, NULL, 1, NULL);
    int leaks = 0;
    for (size_t k = 0; k < P; k++) {
        if ((k / W) % 2 == 0 && (k % W) % 2 == 0) continue; /* a small-image pixel */
        for (size_t ch = 0; ch < C; ch++) {
            memcpy(img2, img, C * P);
            img2[ch * P + k] ^= 0x80;
            loom_model_logits(m, z1, img2, NULL, 1, NULL);
            /* logits up to and including pixel k's channel ch */
            const size_t upto = (k * C + ch + 1) * 256;
            for (size_t q = 0; q < upto; q++)
                if (z0[q] != z1[q]) { leaks++; break; }
        }
    }
    memcpy(img2, img, C * P);
    img2[2 * W + 2] ^= 0x80; /* small pixel (1, 1): after pixel 0 in raster order, in its block's 3x3 */
    loom_model_logits(m, z1, img2, NULL, 1, NULL);
    int sees = 0;
    for (size_t q = 0; q < C * 256; q++) sees |= z0[q] != z1[q];
    char name[200];
    snprintf(name, sizeof name, "%s multiscale %s causality: a pixel outside the small image changes no logit at or "
             "before it", models[which], C == 3 ? "RGB" : "gray");
    CHECK(name, leaks == 0, "%d leaks", leaks);
    snprintf(name, sizeof name, "%s multiscale %s: the first pixel's logits see a later small-image pixel",
             models[which], C == 3 ? "RGB" : "gray");
    CHECK(name, sees, "unchanged");
    free(z0), free(z1);
    loom_model_free(m);
}

/* the incremental sampler against the forward passes: sample_given's
 * log-weights = the small model's and the full model's teacher-forced log p
 * of the given pixels; the given pixels untouched; 2 threads, same bits */
static void test_sampler(int which, size_t C) {
    const size_t H = 4, W = 6, S = 2, f = 2, Ws = 3, P = H * W, EX = C * P, n = 5;
    loom_model *m = make(which, H, W, C, S, 2, 3, 1, 17), *m2 = make(which, H, W, C, S, 2, 3, 2, 17);
    loom_config sc = m->cfg;
    sc.height = S, sc.width = Ws, sc.multiscale = 0;
    loom_model *s = test_model(&sc, 1, 1, 0.0f);
    for (size_t p = 0; p < s->nparams; p++) {
        char nm[LOOM_NAMELEN + 8];
        snprintf(nm, sizeof nm, "small.%s", s->params[p].name);
        const loom_param *q = loom_model_param(m, nm);
        memcpy(s->w + s->params[p].offset, m->w + q->offset, q->size * sizeof *s->w);
    }
    uint8_t img[3 * 24], given[24];
    test_random_images_seed(img, EX, 31);
    /* hidden: (1, 1) (outside the small image), (2, 2) and (2, 4) (in it), (3, 5) */
    for (size_t p = 0; p < P; p++) given[p] = !(p == 7 || p == 14 || p == 16 || p == 23);
    uint8_t *cand = malloc(n * EX), *cand2 = malloc(n * EX);
    double logw[5], logw2[5];
    for (size_t k = 0; k < n; k++) memcpy(cand + k * EX, img, EX), memcpy(cand2 + k * EX, img, EX);
    loom_error err;
    loom_status st = loom_model_sample_given(m, cand, logw, given, NULL, n, 3, &err);
    loom_model_sample_given(m2, cand2, logw2, given, NULL, n, 3, NULL);
    float *z = malloc(EX * 256 * sizeof *z), *zs = malloc(C * S * Ws * 256 * sizeof *zs);
    double worst = 0.0;
    int kept = 1;
    for (size_t k = 0; k < n; k++) {
        const uint8_t *x = cand + k * EX;
        for (size_t q = 0; q < EX; q++) kept &= !given[q % P] || x[q] == img[q];
        uint8_t small[3 * 6];
        for (size_t ch = 0; ch < C; ch++)
            for (size_t i = 0; i < S; i++)
                for (size_t j = 0; j < Ws; j++) small[(ch * S + i) * Ws + j] = x[(ch * H + f * i) * W + f * j];
        loom_model_logits(m, z, x, NULL, 1, NULL);
        loom_model_logits(s, zs, small, NULL, 1, NULL);
        double lp = 0.0;
        for (size_t p = 0; p < P; p++) {
            if (!given[p]) continue;
            const size_t i = p / W, j = p % W;
            const int in_small = i % f == 0 && j % f == 0;
            for (size_t ch = 0; ch < C; ch++)
                lp += in_small ? loom_pixelrnn_logp(zs + (((i / f) * Ws + j / f) * C + ch) * 256, x[ch * P + p])
                               : loom_pixelrnn_logp(z + (p * C + ch) * 256, x[ch * P + p]);
        }
        worst = fmax(worst, fabs(lp - logw[k]) / fabs(lp));
    }
    const char *col = C == 3 ? "RGB" : "gray";
    char name[200];
    snprintf(name, sizeof name, "%s multiscale %s sampler: log-weights = both models' teacher-forced log p of the "
             "given pixels", models[which], col);
    CHECK(name, st == LOOM_OK && worst < 1e-6, "%s worst relative difference %.3g", st ? err.msg : "", worst);
    snprintf(name, sizeof name, "%s multiscale %s sampler: given pixels untouched, 2 threads give the same bits",
             models[which], col);
    CHECK(name, kept && memcmp(cand, cand2, n * EX) == 0 && memcmp(logw, logw2, sizeof logw) == 0, "kept %d", kept);
    /* greedy samples: each drawn pixel is the argmax of its model's logits */
    uint8_t *g = malloc(n * EX);
    st = loom_model_sample(m, g, NULL, n, 0, 1e-6f, 4, &err);
    int bad = 0;
    for (size_t k = 0; k < n && !st; k++) {
        const uint8_t *x = g + k * EX;
        uint8_t small[3 * 6];
        for (size_t ch = 0; ch < C; ch++)
            for (size_t i = 0; i < S; i++)
                for (size_t j = 0; j < Ws; j++) small[(ch * S + i) * Ws + j] = x[(ch * H + f * i) * W + f * j];
        loom_model_logits(m, z, x, NULL, 1, NULL);
        loom_model_logits(s, zs, small, NULL, 1, NULL);
        for (size_t p = 0; p < P; p++) {
            const size_t i = p / W, j = p % W;
            const int in_small = i % f == 0 && j % f == 0;
            for (size_t ch = 0; ch < C; ch++) {
                const float *zz = in_small ? zs + (((i / f) * Ws + j / f) * C + ch) * 256 : z + (p * C + ch) * 256;
                int best = 0;
                for (int v = 1; v < 256; v++) best = zz[v] > zz[best] ? v : best;
                bad += zz[best] - zz[x[ch * P + p]] > 1e-5f;
            }
        }
    }
    snprintf(name, sizeof name, "%s multiscale %s greedy sample: every pixel the argmax of its model's logits",
             models[which], col);
    CHECK(name, st == LOOM_OK && bad == 0, "%d pixels are not", bad);
    free(cand), free(cand2), free(z), free(zs), free(g);
    loom_model_free(m), loom_model_free(m2), loom_model_free(s);
}

static void test_config(void) {
    const size_t bad[][3] = {{8, 8, 3}, {8, 8, 8}, {8, 6, 2}}; /* H, W, S: S must divide H below it, W / (H/S) whole */
    for (size_t k = 0; k < 3; k++) {
        loom_config cfg = {.model = "rowlstm", .height = bad[k][0], .width = bad[k][1], .layers = 1, .hidden = 3,
                           .multiscale = bad[k][2]};
        loom_error err;
        loom_status st = loom_config_check(&cfg, &err);
        char name[120];
        snprintf(name, sizeof name, "multiscale: %zux%zu with S = %zu is refused", bad[k][1], bad[k][0], bad[k][2]);
        CHECK(name, st == LOOM_EINVAL && strstr(err.msg, "--multiscale"), "%d %s", st, err.msg);
    }
    loom_config ok = {.model = "diagbilstm", .height = 8, .width = 12, .layers = 1, .hidden = 3, .multiscale = 4};
    CHECK("multiscale: 12x8 with S = 4 (a 4x6 small image) is accepted", loom_config_check(&ok, NULL) == LOOM_OK, "refused");
    loom_model *m = make(0, 4, 6, 1, 2, 1, 3, 1, 1);
    CHECK("multiscale: no raster-order conditionals capability (complete refuses it)",
          !(loom_model_caps(m) & LOOM_CAP_CONDITIONALS) && (loom_model_caps(m) & LOOM_CAP_EXACT_NLL) &&
              loom_model_out_floats(m) == 0,
          "caps %u", loom_model_caps(m));
    loom_model_free(m);
}

int main(void) {
    for (int which = 0; which < 2; which++)
        for (size_t C = 1; C <= 3; C += 2) {
            test_gradients(which, C, 0);
            test_decomposition(which, C);
            test_causality(which, C);
            test_sampler(which, C);
        }
    test_gradients(0, 1, 3); /* class tables in both models */
    test_config();
    CHECK_DONE();
}
