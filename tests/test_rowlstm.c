/* The Row LSTM model: gradients of the whole model, causality, the
 * incremental sampler against the full forward pass, reproducibility,
 * overfitting one small batch. (The PyTorch reference comparison is in
 * test_reference.c.) */
#include "gradcheck.h"
#include "testutil.h"
#include "models/model.h"
#include "optim/optim.h"

#include <string.h>

static loom_model *make(size_t H, size_t W, size_t L, size_t h, int K, int threads, uint64_t seed) {
    loom_config cfg = {.model = "rowlstm", .height = H, .width = W, .layers = L, .hidden = h,
                       .nclasses = K};
    return test_model(&cfg, threads, seed, 0.2f);
}

static void test_gradients(int K) {
    const size_t n = 2, H = 4, W = 5;
    loom_model *m = make(H, W, 2, 3, K, 1, 7);
    uint8_t imgs[2 * 4 * 5];
    loom_rng r;
    loom_rng_seed(&r, 3);
    test_random_images(imgs, sizeof imgs, &r);
    int32_t labels[2] = {1, 2};
    test_model_ctx c = {m, imgs, K ? labels : NULL, n};
    test_model_grads(&c, K ? "model loss == nll (conditional)" : "model loss == nll", "model gradient ",
                     K ? " (conditional)" : "", 7);
    loom_model_free(m);
}

/* Perturbing pixel k must leave the logits of pixels 0..k unchanged (raster
 * order) and change some logits after k. */
static void test_causality(void) {
    const size_t H = 5, W = 6, HW = H * W;
    loom_model *m = make(H, W, 3, 4, 0, 1, 11);
    uint8_t img[5 * 6], img2[5 * 6];
    loom_rng r;
    loom_rng_seed(&r, 5);
    test_random_images(img, HW, &r);
    float *z0 = malloc(HW * 256 * sizeof *z0), *z1 = malloc(HW * 256 * sizeof *z1);
    loom_model_logits(m, z0, img, NULL, 1, NULL);
    int leaks = 0, blind = 0;
    for (size_t k = 0; k < HW; k++) {
        const size_t first_change = test_first_change(z1, img2, m, z0, img, HW, k);
        if (first_change <= k) leaks++;
        /* the next pixel in the same row sees pixel k (mask-A tap (0,-1)); across a
         * row end it need not: the Row LSTM's receptive field is a triangle */
        if ((k + 1) % W != 0 && first_change != k + 1) blind++;
    }
    CHECK("causality: pixel k never changes logits at pixels <= k", leaks == 0,
          "%d pixels leaked into their own or earlier logits", leaks);
    CHECK("causality: pixel k changes the logits of its right neighbour", blind == 0,
          "%d pixels were invisible to their successor", blind);
    free(z0), free(z1);
    loom_model_free(m);
}

/* At a tiny temperature the sampler is greedy, so every sampled pixel must be
 * the argmax of the full forward pass's logits on the final image (up to
 * float-rounding ties: the two paths multiply in different GEMM shapes). */
static void test_sampler_matches_forward(int threads) {
    const size_t H = 6, W = 7, HW = H * W, n = 3;
    loom_model *m = make(H, W, 2, 4, 3, threads, 13);
    uint8_t imgs[3 * 6 * 7];
    int32_t labels[3] = {0, 2, 1};
    loom_error err;
    loom_status st = loom_model_sample(m, imgs, labels, n, 0, 1e-6f, 99, &err);
    CHECK("greedy sample runs", st == LOOM_OK, "%s", err.msg);
    float *z = malloc(n * HW * 256 * sizeof *z);
    loom_model_logits(m, z, imgs, labels, n, NULL);
    const int bad = test_not_argmax(z, imgs, n * HW);
    char name[96];
    snprintf(name, sizeof name, "incremental sampler == full forward (greedy, %d threads)", threads);
    CHECK(name, bad == 0, "%d of %zu pixels differ from the forward argmax", bad, n * HW);
    free(z);
    loom_model_free(m);
}

static void test_sample_reproducible(void) {
    const size_t H = 6, W = 6, HW = H * W, n = 4;
    loom_model *m1 = make(H, W, 2, 4, 0, 1, 17), *m2 = make(H, W, 2, 4, 0, 2, 17);
    uint8_t a[4 * 36], b[4 * 36], c[4 * 36];
    test_sampling_seeds(m1, m2, a, b, c, n, HW, 1, "");
    CHECK("completion keeps the top rows", test_completion_kept(m1, c, a, n, HW, 2 * W),
          "a kept pixel changed");
    loom_model_free(m1), loom_model_free(m2);
}

static void test_overfit(void) {
    const size_t H = 8, W = 8, n = 4;
    loom_model *m = make(H, W, 2, 8, 0, 2, 21);
    uint8_t imgs[4 * 64];
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < 64; i++) imgs[b * 64 + i] = (uint8_t)((i / 8 + b) % 3 * 120);
    double first = 0, loss = 0;
    test_train(m, imgs, NULL, n, 300, 1e-2f, 0, &first, &loss);
    CHECK("overfit 4 images: loss falls from ln 256 to < 0.05 nats/pixel", first > 5.0 && loss < 0.05,
          "first %.3f last %.4f", first, loss);
    loom_model_free(m);
}

int main(void) {
    test_gradients(0);
    test_gradients(3);
    test_causality();
    test_sampler_matches_forward(1);
    test_sampler_matches_forward(2);
    test_sample_reproducible();
    test_overfit();
    CHECK_DONE();
}
