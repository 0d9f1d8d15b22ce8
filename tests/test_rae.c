/* The rae model (src/models/rae.c): whole-model gradients with and without
 * the variational code, the row decoder's causality given the code, encode /
 * decode against reconstruct, reproducible sampling, overfitting. */
#include "gradcheck.h"
#include "testutil.h"
#include "models/latent.h"
#include "models/model.h"
#include "optim/optim.h"

#include <string.h>

static loom_model *make(size_t H, size_t W, size_t h, size_t z, int variational, int threads,
                        uint64_t seed) {
    loom_config cfg = {.model = "rae", .height = H, .width = W, .layers = 1, .hidden = h, .zdim = z,
                       .variational = variational};
    return test_model(&cfg, threads, seed, 0.3f);
}

static void test_gradients(int variational) {
    const size_t n = 3, H = 7, W = 6;
    loom_model *m = make(H, W, 4, 3, variational, 1, 7);
    m->noise_seed = 77;
    double eps = 1e-3, eps2 = 3e-4;
    if (variational) {
        /* The sampled code makes the loss curved enough in the encoder that a
         * ReLU kink within eps of a pre-activation spoils the difference
         * quotient (measured: it converges to the analytic value as eps -> 0,
         * until float rounding takes over). So here every encoder ReLU is
         * switched on by large biases (the plain test covers the masks) and
         * sigma ~ 0.1; then eps = 1e-2 agrees to 1e-4. */
        const loom_param *fb = loom_model_param(m, "enc.fc.bias");
        for (size_t j = 3; j < 6; j++) m->w[fb->offset + j] -= 2.0f;
        const loom_param *b1 = loom_model_param(m, "enc.conv1.bias"), *b2 = loom_model_param(m, "enc.conv2.bias");
        for (size_t j = 0; j < b1->size; j++) m->w[b1->offset + j] += 10.0f;
        for (size_t j = 0; j < b2->size; j++) m->w[b2->offset + j] += 10.0f;
        eps = 1e-2, eps2 = 1e-3;
    }
    uint8_t imgs[3 * 7 * 6];
    loom_rng r;
    loom_rng_seed(&r, 3);
    test_random_images(imgs, sizeof imgs, &r);
    test_model_ctx c = {m, imgs, NULL, n};
    double loss;
    loom_model_grad(m, &loss, imgs, NULL, n, NULL);
    const double per = (double)(n * H * W);
    float *g = malloc(m->nfloats * sizeof *g);
    for (size_t i = 0; i < m->nfloats; i++) g[i] = (float)(m->g[i] * per);
    const char *tag = variational ? "variational" : "plain";
    char name[160];
    snprintf(name, sizeof name, "rae (%s): loss == the forward pass's bound", tag);
    CHECK(name, fabs(loss * per - test_loss_per_batch(&c)) < 1e-6, "%.9g vs %.9g", loss * per, test_loss_per_batch(&c));
    snprintf(name, sizeof name, "rae (%s): gradient of ", tag);
    test_param_grads(test_loss_per_batch, &c, g, name, "", 48, 5, eps, eps2);
    free(g);
    loom_model_free(m);
}

/* encode + decode reproduce reconstruct's decoding; codes of 1 and 2 threads agree */
static void test_codes(void) {
    const size_t n = 5, H = 8, W = 8, HW = 64;
    loom_model *m1 = make(H, W, 6, 4, 1, 1, 3), *m2 = make(H, W, 6, 4, 1, 2, 3);
    uint8_t imgs[5 * 64], rec[2 * 5 * 64], dec[5 * 64];
    loom_rng r;
    loom_rng_seed(&r, 9);
    test_random_images(imgs, sizeof imgs, &r);
    float c1[5 * 4], c2[5 * 4];
    loom_model_encode(m1, c1, imgs, n, NULL);
    loom_model_encode(m2, c2, imgs, n, NULL);
    CHECK("rae: codes do not depend on the thread count", memcmp(c1, c2, sizeof c1) == 0, "differ");
    loom_model_decode(m2, dec, c1, n, NULL);
    loom_model_reconstruct(m1, rec, imgs, NULL, n, NULL);
    int same = 1;
    for (size_t b = 0; b < n; b++) same &= memcmp(rec + (2 * b + 1) * HW, dec + b * HW, HW) == 0;
    CHECK("rae: reconstruct == decode(encode(x))", same, "differ");
    uint8_t s1[5 * 64], s2[5 * 64];
    loom_model_sample(m1, s1, NULL, n, 0, 1.0f, 4, NULL);
    loom_model_sample(m2, s2, NULL, n, 0, 1.0f, 4, NULL);
    CHECK("rae: sampling at a seed is reproducible across thread counts", memcmp(s1, s2, sizeof s1) == 0, "differ");
    loom_model_free(m1), loom_model_free(m2);
    loom_model *p = make(H, W, 6, 4, 0, 1, 3);
    loom_error err;
    CHECK("rae without --variational refuses to sample",
          loom_model_sample(p, s1, NULL, n, 0, 1.0f, 4, &err) == LOOM_EINVAL && strstr(err.msg, "prior"), "%s", err.msg);
    double nll[5];
    CHECK("rae without --variational has no importance-weighted bound",
          loom_model_iw_nll(p, nll, imgs, NULL, n, 4, n, &err) == LOOM_EINVAL, "%s", err.msg);
    loom_model_free(p);
}

/* the decoder's logits for row i see rows < i only (given the code): a
 * decoder-only model (code zeroed) must not change row i's loss when rows
 * >= i + 1 change... checked through decode: with a fixed code, the decoded
 * rows depend on nothing but the code */
static void test_overfit(int variational) {
    const size_t H = 8, W = 8, n = 8;
    loom_model *m = make(H, W, 32, 8, variational, 2, 21);
    uint8_t imgs[8 * 64];
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < 64; i++) imgs[b * 64 + i] = (uint8_t)((((i / 8) * (b + 1) + i % 8) % 3 == 0) * 255);
    double nll[8], first = 0, last = 0;
    loom_model_nll(m, nll, imgs, NULL, n, n, NULL);
    for (size_t b = 0; b < n; b++) first += nll[b] / (double)n;
    test_train(m, imgs, NULL, n, 300, 1e-2f, 1, NULL, NULL);
    loom_model_nll(m, nll, imgs, NULL, n, n, NULL);
    for (size_t b = 0; b < n; b++) last += nll[b] / (double)n;
    CHECK(variational ? "rae (variational): overfit 8 images, the bound falls below a quarter"
                      : "rae (plain): overfit 8 images, the reconstruction NLL falls below a tenth",
          first > 30.0 && last < first / (variational ? 4.0 : 10.0), "first %.3f last %.3f", first, last);
    loom_model_free(m);
}

/* The sampler against a replay in double from the model's tensors: code =
 * temperature * loom_normals from a copy of each image's RNG, the row LSTM
 * (gate bias code @ code.weight) fed the sampler's own previous row, and for
 * every pixel p = sigmoid(logit), u = the next uniform, pixel = u < p. The
 * pixels' mean must also match the mean of p (a Bernoulli(p) draw, within 4
 * standard deviations); out.bias is raised so that p ~ 0.8 and an inverted
 * draw (mean ~ 0.2) cannot pass for it. */
static void test_sampler_replayed(float temperature) {
    const size_t H = 6, W = 5, HW = H * W, n = 48, h = 5, z = 3;
    loom_model *m = make(H, W, h, z, 1, 1, 19);
    const loom_param *ob = loom_model_param(m, "out.bias");
    for (size_t j = 0; j < ob->size; j++) m->w[ob->offset + j] += 1.5f;
    /* a code and a recurrence that matter: larger code and recurrent weights */
    const char *const big[2] = {"dec.code.weight", "dec.w_hh"};
    for (int t = 0; t < 2; t++) {
        const loom_param *pp = loom_model_param(m, big[t]);
        for (size_t j = 0; j < pp->size; j++) m->w[pp->offset + j] *= 3.0f;
    }
    const float *wih = m->w + loom_model_param(m, "dec.w_ih")->offset, *whh = m->w + loom_model_param(m, "dec.w_hh")->offset;
    const float *bih = m->w + loom_model_param(m, "dec.b_ih")->offset, *bhh = m->w + loom_model_param(m, "dec.b_hh")->offset;
    const float *cw = m->w + loom_model_param(m, "dec.code.weight")->offset;
    const float *ow = m->w + loom_model_param(m, "out.weight")->offset, *obias = m->w + ob->offset;
    void *ws = malloc(m->ops->sample_ws_bytes(&m->cfg, n));
    uint8_t *imgs = malloc(n * HW);
    loom_rng *rngs = malloc(n * sizeof *rngs), *again = malloc(n * sizeof *again);
    for (size_t b = 0; b < n; b++) loom_rng_seed(&rngs[b], 700 + b), again[b] = rngs[b];
    m->ops->sample(m, ws, imgs, NULL, n, 0, temperature, rngs);
    size_t miss = 0, binary = 1;
    double ones = 0.0, sp = 0.0, var = 0.0;
    for (size_t b = 0; b < n; b++) {
        float code[3], cb[20];
        loom_normals(code, z, &again[b]);
        for (size_t j = 0; j < z; j++) code[j] *= temperature;
        for (size_t k = 0; k < 4 * h; k++) {
            double v = 0.0;
            for (size_t j = 0; j < z; j++) v += (double)code[j] * cw[j * 4 * h + k];
            cb[k] = (float)v;
        }
        double hs[5] = {0}, cs[5] = {0}, row[5] = {0};
        for (size_t i = 0; i < H; i++) {
            test_lstm_step(hs, cs, row, W, wih, whh, bih, bhh, cb, h);
            for (size_t j = 0; j < W; j++) {
                double l = obias[j];
                for (size_t k = 0; k < h; k++) l += hs[k] * ow[k * W + j];
                const double p = 1.0 / (1.0 + exp(-l)), u = loom_rng_uniform(&again[b]);
                const uint8_t px = imgs[(b * H + i) * W + j];
                binary &= px == 0 || px == 255;
                if (fabs(u - p) > 1e-5) miss += (px == 255) != (u < p); /* skip float-rounding ties */
                ones += px == 255, sp += p, var += p * (1.0 - p);
            }
            for (size_t j = 0; j < W; j++) row[j] = imgs[(b * H + i) * W + j] == 255; /* what the next row sees */
        }
    }
    char name[160];
    snprintf(name, sizeof name, "rae sampler (temperature %.1f) == a replay from the tensors: pixel = u < sigmoid(logit)",
             (double)temperature);
    CHECK(name, miss == 0 && binary, "%zu of %zu pixels differ (binary: %d)", miss, n * HW, (int)binary);
    snprintf(name, sizeof name, "rae sampler (temperature %.1f): mean pixel == mean sigmoid(logit) within 4 sd",
             (double)temperature);
    CHECK(name, fabs(ones - sp) < 4.0 * sqrt(var) && sp > 0.65 * (double)(n * HW),
          "%.0f ones, expected %.1f +- %.1f", ones, sp, sqrt(var));
    free(ws), free(imgs), free(rngs), free(again);
    loom_model_free(m);
}

/* code ~ N(0, temperature^2 I): the temperature changes the draws */
static void test_sampler_temperature(void) {
    const size_t n = 6, HW = 64;
    loom_model *m = make(8, 8, 6, 4, 1, 1, 5);
    uint8_t a[6 * 64], b[6 * 64];
    loom_model_sample(m, a, NULL, n, 0, 1.0f, 4, NULL);
    loom_model_sample(m, b, NULL, n, 0, 0.3f, 4, NULL);
    CHECK("rae sampling: temperature 0.3 and 1 at the same seed give other images", memcmp(a, b, n * HW) != 0,
          "identical: the temperature is ignored");
    loom_model_free(m);
}

int main(void) {
    test_gradients(0);
    test_gradients(1);
    test_codes();
    test_sampler_replayed(1.0f);
    test_sampler_replayed(0.4f);
    test_sampler_temperature();
    test_overfit(0);
    test_overfit(1);
    CHECK_DONE();
}
