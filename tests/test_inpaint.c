/* Inpainting (src/models/inpaint.c, docs/inpaint.md): on a 3x3 Row LSTM the
 * exact conditional of a 2-pixel hole is enumerated (all 65536 fills) and the
 * resampled fills must match it; the samplers' weights must be the
 * teacher-forced log probabilities of the given pixels (gray and colour, Row
 * LSTM, Diagonal BiLSTM, grupixel); given pixels are never touched; bad
 * masks are refused; autoencoders fill by iterated reconstruction. */
#include "testutil.h"
#include "models/pixelrnn.h"

enum { S = 3, HW = S * S };

static loom_model *make(const char *name, size_t H, size_t W, size_t C, size_t hidden, int threads,
                        uint64_t seed) {
    loom_config cfg = {.height = H, .width = W, .channels = C, .layers = 1, .hidden = hidden};
    snprintf(cfg.model, sizeof cfg.model, "%s", name);
    if (strcmp(name, "grupixel") == 0) snprintf(cfg.cell, sizeof cfg.cell, "gru"), cfg.zdim = 4;
    if (strcmp(name, "rae") == 0) cfg.zdim = 4, cfg.hidden = 16;
    loom_model *m = test_model(&cfg, threads, seed, 0.3f);
    for (size_t p = 0; m->ops->masked && p < m->nparams; p++) /* the jitter moved the masked weights */
        for (size_t k = 0; k < m->params[p].size; k++)
            if (m->ops->masked(m, p, k)) m->w[m->params[p].offset + k] = 0.0f;
    return m;
}

/* A 3x3 Row LSTM trained on constant images of 40 or 200: its later pixels
 * tell a lot about its first ones, so the weights of a hole at the start
 * matter (unweighted candidates would be half 40s). */
static loom_model *trained(void) {
    loom_model *m = make("rowlstm", S, S, 1, 4, 1, 5);
    uint8_t imgs[16 * HW];
    for (size_t b = 0; b < 16; b++)
        for (size_t p = 0; p < HW; p++) imgs[b * HW + p] = (uint8_t)(b % 2 ? 200 : 40) + (uint8_t)((b * 7 + p * 3) % 5);
    test_train(m, imgs, NULL, 16, 150, 2e-2f, 0, NULL, NULL);
    return m;
}

/* 4 bins per pixel value: 16 cells of two values */
static size_t cell(uint8_t a, uint8_t b) { return (size_t)(a / 64) * 4 + b / 64; }

/* exact cell probabilities of the hole (h0, h1) of img given the rest, and
 * log p(given) = log sum over the 65536 fills of p(x), by enumeration */
static double exact_cells(double *P, loom_model *m, const uint8_t *img, size_t h0, size_t h1) {
    const size_t N = 65536;
    uint8_t *all = malloc(N * HW);
    double *nll = malloc(N * sizeof *nll);
    for (size_t v = 0; v < N; v++) {
        memcpy(all + v * HW, img, HW);
        all[v * HW + h0] = (uint8_t)(v >> 8), all[v * HW + h1] = (uint8_t)(v & 255);
    }
    loom_model_nll(m, nll, all, NULL, N, 4096, NULL);
    double mn = nll[0], s = 0.0;
    for (size_t v = 1; v < N; v++) mn = nll[v] < mn ? nll[v] : mn;
    for (size_t k = 0; k < 16; k++) P[k] = 0.0;
    for (size_t v = 0; v < N; v++) {
        const double p = exp(mn - nll[v]);
        s += p;
        P[cell((uint8_t)(v >> 8), (uint8_t)(v & 255))] += p;
    }
    for (size_t k = 0; k < 16; k++) P[k] /= s;
    free(all), free(nll);
    return log(s) - mn;
}

/* The fills of SIR with M candidates against the enumerated conditional:
 * total variation over the 16 cells below tv_max, and log p(given) within
 * 0.05 nats of the exact value. */
static void test_enumerated(loom_model *m, const char *what, size_t h0, size_t h1, double tv_max) {
    uint8_t img[HW] = {200, 203, 201, 204, 202, 200, 203, 201, 204}, hidden[HW] = {0};
    hidden[h0] = hidden[h1] = 1;
    double P[16], Q[16] = {0};
    const double lg = exact_cells(P, m, img, h0, h1);
    const size_t M = 10000, K = 10000;
    uint8_t *fills = malloc(K * HW);
    loom_inpaint_result res;
    loom_error err;
    loom_status st = loom_model_inpaint(m, fills, &res, img, hidden, NULL, M, K, 0, 11, &err);
    int kept = 1;
    for (size_t k = 0; k < K; k++) {
        Q[cell(fills[k * HW + h0], fills[k * HW + h1])] += 1.0 / (double)K;
        for (size_t p = 0; p < HW; p++) kept &= hidden[p] || fills[k * HW + p] == img[p];
    }
    double tv = 0.0, tvq = 0.0;
    for (size_t k = 0; k < 16; k++) tv += 0.5 * fabs(P[k] - Q[k]);
    /* the proposal alone (no weights), to show the test has something to detect */
    uint8_t *cand = malloc(M * HW);
    double *logw = malloc(M * sizeof *logw), Q0[16] = {0};
    uint8_t given[HW];
    for (size_t p = 0; p < HW; p++) given[p] = !hidden[p];
    for (size_t k = 0; k < M; k++) memcpy(cand + k * HW, img, HW);
    loom_model_sample_given(m, cand, logw, given, NULL, M, 11, NULL);
    for (size_t k = 0; k < M; k++) Q0[cell(cand[k * HW + h0], cand[k * HW + h1])] += 1.0 / (double)M;
    for (size_t k = 0; k < 16; k++) tvq += 0.5 * fabs(P[k] - Q0[k]);
    char name[200];
    snprintf(name, sizeof name, "inpaint %s: %zu resampled fills match the enumerated conditional "
             "(total variation over 16 cells < %.3f)", what, K, tv_max);
    CHECK(name, st == LOOM_OK && tv < tv_max, "%s tv %.4f (unweighted proposal: %.4f), ess %.1f", err.msg, tv,
          tvq, res.ess);
    snprintf(name, sizeof name, "inpaint %s: log p(given) estimate within 0.05 nats of the enumeration", what);
    CHECK(name, st == LOOM_OK && fabs(res.log_given - lg) < 0.05, "estimate %.4f exact %.4f", res.log_given, lg);
    snprintf(name, sizeof name, "inpaint %s: fills keep every given pixel", what);
    CHECK(name, st == LOOM_OK && kept, "a given pixel changed");
    printf("  %s: tv %.4f (proposal alone %.4f), ess %.1f of %zu\n", what, tv, tvq, res.ess, M);
    free(fills), free(cand), free(logw);
}

/* A hole at the end: no given pixel after it, so the weights are equal, the
 * fills are plain draws and log p(given) is the prefix's exact log-likelihood. */
static void test_exact_case(loom_model *m) {
    uint8_t img[HW] = {200, 203, 201, 204, 202, 200, 203, 201, 204}, hidden[HW] = {0};
    hidden[7] = hidden[8] = 1;
    uint8_t fills[4 * HW];
    loom_inpaint_result res;
    loom_status st = loom_model_inpaint(m, fills, &res, img, hidden, NULL, 8, 4, 0, 3, NULL);
    float z[HW * 256];
    loom_model_logits(m, z, img, NULL, 1, NULL);
    double lp = 0.0;
    for (size_t p = 0; p < 7; p++) lp += loom_pixelrnn_logp(z + p * 256, img[p]);
    CHECK("inpaint: a hole at the end is exact (equal weights, ess = candidates, log p(given) of the prefix)",
          st == LOOM_OK && res.exact && fabs(res.ess - 8.0) < 1e-9 && fabs(res.log_given - lp) < 1e-4,
          "exact %d ess %.4f log_given %.6f prefix %.6f", res.exact, res.ess, res.log_given, lp);
    hidden[7] = 0, hidden[4] = 1;
    st = loom_model_inpaint(m, fills, &res, img, hidden, NULL, 8, 4, 0, 3, NULL);
    CHECK("inpaint: a hole before a given pixel is not exact", st == LOOM_OK && !res.exact, "exact %d", res.exact);
}

/* ops->sample_given on n candidates of an image: given pixels untouched, and
 * logw = the sum over given pixels of the teacher-forced log p (the logits
 * op on the finished candidate), for every model with conditionals */
static void test_weights(const char *name, size_t C, int latent) {
    const size_t H = 4, W = 5, P = H * W, EX = C * P, n = 6;
    loom_model *m = make(name, H, W, C, C == 3 ? 6 : 4, 1, 9);
    loom_model *m2 = make(name, H, W, C, C == 3 ? 6 : 4, 2, 9);
    uint8_t img[3 * 20], given[20];
    test_random_images_seed(img, EX, 4);
    for (size_t p = 0; p < P; p++) given[p] = !(p == 6 || p == 7 || p == 12 || p == 17);
    uint8_t *cand = malloc(n * EX), *cand2 = malloc(n * EX);
    double logw[6], logw2[6];
    for (size_t k = 0; k < n; k++) memcpy(cand + k * EX, img, EX), memcpy(cand2 + k * EX, img, EX);
    loom_status st = loom_model_sample_given(m, cand, logw, given, NULL, n, 21, NULL);
    loom_model_sample_given(m2, cand2, logw2, given, NULL, n, 21, NULL);
    int kept = 1, drew = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t q = 0; q < EX; q++) {
            if (given[q % P]) kept &= cand[k * EX + q] == img[q];
            else drew |= cand[k * EX + q] != img[q];
        }
    char t[200];
    snprintf(t, sizeof t, "sample_given %s %s: given pixels untouched, hidden ones drawn", name, C == 3 ? "RGB" : "gray");
    CHECK(t, st == LOOM_OK && kept && drew, "kept %d drew %d", kept, drew);
    snprintf(t, sizeof t, "sample_given %s %s: 2 threads give the 1-thread candidates and weights", name,
             C == 3 ? "RGB" : "gray");
    CHECK(t, memcmp(cand, cand2, n * EX) == 0 && memcmp(logw, logw2, sizeof logw) == 0, "differ");
    if (!latent) { /* grupixel's logits are those of one fixed z, not of the candidate's */
        float *z = malloc(EX * 256 * sizeof *z);
        double worst = 0.0;
        for (size_t k = 0; k < n; k++) {
            loom_model_logits(m, z, cand + k * EX, NULL, 1, NULL);
            double lp = 0.0;
            for (size_t p = 0; p < P; p++)
                for (size_t ch = 0; ch < C && given[p]; ch++)
                    lp += loom_pixelrnn_logp(z + (p * C + ch) * 256, cand[k * EX + ch * P + p]);
            /* float rounding: the incremental sampler and the full forward
             * pass sum in other orders; relative to the total */
            worst = fmax(worst, fabs(lp - logw[k]) / fabs(lp));
        }
        snprintf(t, sizeof t, "sample_given %s %s: log-weights = the teacher-forced log p of the given pixels",
                 name, C == 3 ? "RGB" : "gray");
        CHECK(t, worst < 1e-6, "worst relative difference %.3g", worst);
        printf("  %s %s: worst relative difference %.2g\n", name, C == 3 ? "RGB" : "gray", worst);
        free(z);
    }
    free(cand), free(cand2);
    loom_model_free(m), loom_model_free(m2);
}

static void test_bad_masks(void) {
    loom_model *m = make("rowlstm", S, S, 1, 4, 1, 5);
    uint8_t img[HW] = {0}, none[HW] = {0}, all[HW], fills[HW];
    memset(all, 1, sizeof all);
    loom_inpaint_result res;
    loom_error err;
    loom_status a = loom_model_inpaint(m, fills, &res, img, none, NULL, 4, 1, 0, 1, &err);
    CHECK("inpaint: a mask that hides nothing is refused", a == LOOM_EINVAL && strstr(err.msg, "no pixel"), "%d %s", a, err.msg);
    loom_status b = loom_model_inpaint(m, fills, &res, img, all, NULL, 4, 1, 0, 1, &err);
    CHECK("inpaint: a mask that hides everything is refused", b == LOOM_EINVAL && strstr(err.msg, "every pixel"), "%d %s", b, err.msg);
    loom_model_free(m);
}

/* the grid's masked panel: given pixels as they are, hidden ones never the
 * padding's 128 in any channel, and not one flat value in gray */
static void test_masked_view(void) {
    const size_t H = 4, W = 5, P = 20;
    uint8_t img[3 * 20], hidden[20] = {0}, out[3 * 20];
    memset(img, 128, sizeof img);
    for (size_t p = 6; p < 14; p++) hidden[p] = 1;
    int ok = 1;
    for (size_t C = 1; C <= 3; C += 2) {
        loom_inpaint_masked_view(out, img, hidden, C, H, W);
        for (size_t q = 0; q < C * P; q++) ok &= hidden[q % P] ? out[q] != 128 : out[q] == img[q];
        if (C == 1) ok &= out[6] != out[7];
    }
    CHECK("inpaint: the masked panel shows hidden pixels in no padding colour, given ones as they are", ok,
          "a hidden pixel is 128 or a given one changed");
}

/* draw and rae: iterated reconstruction keeps the given pixels, fills the
 * hole, and gives the same fills for the same seed */
static void test_iterated(const char *name) {
    const size_t H = 8, W = 8, P = H * W, K = 3;
    loom_config cfg = {.height = H, .width = W, .layers = 1};
    snprintf(cfg.model, sizeof cfg.model, "%s", name);
    if (strcmp(name, "draw") == 0)
        cfg.hidden = 16, cfg.zdim = 4, cfg.steps_draw = 3, cfg.read_n = 2, cfg.write_n = 3, cfg.attention = 1;
    else
        cfg.hidden = 16, cfg.zdim = 4;
    loom_model *m = test_model(&cfg, 1, 3, 0.0f);
    uint8_t img[64], hidden[64] = {0}, a[3 * 64], b[3 * 64];
    test_random_images_seed(img, P, 8);
    for (size_t p = 18; p < 22; p++) hidden[p] = hidden[p + 8] = 1;
    loom_inpaint_result res;
    loom_error err;
    loom_status st = loom_model_inpaint(m, a, &res, img, hidden, NULL, 0, K, 5, 7, &err);
    loom_model_inpaint(m, b, &res, img, hidden, NULL, 0, K, 5, 7, NULL);
    int kept = 1;
    for (size_t k = 0; k < K; k++)
        for (size_t p = 0; p < P; p++) kept &= hidden[p] || a[k * P + p] == img[p];
    char t[160];
    snprintf(t, sizeof t, "inpaint %s: iterated reconstruction keeps the given pixels, reproducible, says so", name);
    CHECK(t, st == LOOM_OK && kept && memcmp(a, b, sizeof a) == 0 && strcmp(res.method, "iterated-reconstruction") == 0,
          "%s kept %d", st ? err.msg : "", kept);
    loom_model_free(m);
}

int main(void) {
    loom_model *m = trained();
    test_enumerated(m, "hole at the start (trained 3x3 Row LSTM)", 0, 1, 0.02);
    test_exact_case(m);
    loom_model_free(m);
    loom_model *r = make("rowlstm", S, S, 1, 4, 1, 5);
    test_enumerated(r, "hole {1, 4}, untrained jittered model", 1, 4, 0.04);
    loom_model_free(r);
    test_weights("rowlstm", 1, 0);
    test_weights("rowlstm", 3, 0);
    test_weights("diagbilstm", 1, 0);
    test_weights("diagbilstm", 3, 0);
    test_weights("grupixel", 1, 1);
    test_bad_masks();
    test_masked_view();
    test_iterated("draw");
    test_iterated("rae");
    CHECK_DONE();
}
