/* The grupixel model (docs/grupixel.md): whole-model gradients for each cell,
 * causality, the cached-state sampler against the full forward pass,
 * sampling reproducibility and the effect of z, overfitting one small batch,
 * and logits / loss / every gradient against the independent PyTorch
 * implementation (bench/grupixel_torch.py -> tests/fixtures/grupixel_ref.safetensors). */
#include "gradcheck.h"
#include "testutil.h"
#include "io/checkpoint.h"
#include "models/grupixel.h"
#include "optim/optim.h"

#include <string.h>

static const char *const cells[] = {"gru", "lstm", "rnn"};

static loom_model *make(const char *cell, size_t H, size_t W, size_t L, size_t h, size_t zdim, int K,
                        int threads, uint64_t seed) {
    loom_config cfg = {.model = "grupixel", .height = H, .width = W, .layers = L, .hidden = h,
                       .nclasses = K, .zdim = zdim};
    snprintf(cfg.cell, sizeof cfg.cell, "%s", cell);
    return test_model(&cfg, threads, seed, 0.4f);
}

static void test_gradients(const char *cell, int K, uint64_t noise) {
    const size_t n = 2, H = 3, W = 4;
    loom_model *m = make(cell, H, W, 2, 3, 2, K, 1, 7);
    m->noise_seed = noise;
    uint8_t imgs[2 * 3 * 4];
    test_random_images_seed(imgs, sizeof imgs, 3);
    int32_t labels[2] = {0, K - 1}; /* two different classes, both in range */
    test_model_ctx c = {m, imgs, K ? labels : NULL, n};
    char what[64], loss_name[160], prefix[160];
    snprintf(what, sizeof what, "%s%s%s", cell, K ? ", conditional" : "", noise ? ", training noise" : "");
    snprintf(loss_name, sizeof loss_name, "grupixel (%s): loss == nll", what);
    snprintf(prefix, sizeof prefix, "grupixel (%s): gradient ", what);
    test_model_grads(&c, loss_name, prefix, "", 5);
    loom_model_free(m);
}

/* Perturbing pixel k must leave the logits of pixels 0..k unchanged and
 * change those of pixel k+1 (its input token). */
static void test_causality(const char *cell) {
    const size_t H = 4, W = 5, HW = H * W;
    loom_model *m = make(cell, H, W, 2, 4, 3, 0, 1, 11);
    uint8_t img[4 * 5], img2[4 * 5];
    test_random_images_seed(img, HW, 5);
    float *z0 = malloc(HW * 256 * sizeof *z0), *z1 = malloc(HW * 256 * sizeof *z1);
    loom_model_logits(m, z0, img, NULL, 1, NULL);
    int leaks = 0, blind = 0;
    for (size_t k = 0; k < HW; k++) {
        const size_t first_change = test_first_change(z1, img2, m, z0, img, HW, k);
        if (first_change <= k) leaks++;
        if (k + 1 < HW && first_change != k + 1) blind++;
    }
    char name[128];
    snprintf(name, sizeof name, "grupixel %s causality: pixel k never changes logits at pixels <= k", cell);
    CHECK(name, leaks == 0, "%d pixels leaked into their own or earlier logits", leaks);
    snprintf(name, sizeof name, "grupixel %s causality: pixel k changes the logits of pixel k+1", cell);
    CHECK(name, blind == 0, "%d pixels were invisible to their successor", blind);
    free(z0), free(z1);
    loom_model_free(m);
}

/* Run the sampler with our own per-image RNGs, so that the z it draws first
 * can be drawn again from copies; then every greedy pixel must be the argmax
 * of the full forward pass's logits at that z (up to float-rounding ties). */
static void test_sampler_matches_forward(const char *cell, int K) {
    const size_t H = 5, W = 6, HW = H * W, n = 3, zdim = 4;
    loom_model *m = make(cell, H, W, 2, 5, zdim, K, 1, 13);
    uint8_t imgs[3 * 5 * 6] = {0};
    int32_t labels[3] = {0, 2, 1};
    loom_rng rngs[3], again[3];
    for (size_t b = 0; b < n; b++) loom_rng_seed(&rngs[b], 100 + b), again[b] = rngs[b];
    void *ws = malloc(LOOM_MAX(m->ops->sample_ws_bytes(&m->cfg, n), m->ops->train_ws_bytes(&m->cfg, n)));
    m->ops->sample(m, ws, imgs, K ? labels : NULL, n, 0, 1e-6f, rngs);
    float z[3 * 4], *lg = malloc(n * HW * 256 * sizeof *lg);
    for (size_t b = 0; b < n; b++) loom_grupixel_draw_z(z + b * zdim, zdim, &again[b]);
    loom_grupixel_run(m, ws, NULL, NULL, lg, imgs, K ? labels : NULL, z, n, 0.0f);
    const int bad = test_not_argmax(lg, imgs, n * HW);
    char name[128];
    snprintf(name, sizeof name, "grupixel %s%s: cached-state sampler == full forward (greedy)", cell,
             K ? " conditional" : "");
    CHECK(name, bad == 0, "%d of %zu pixels differ from the forward argmax", bad, n * HW);
    free(ws), free(lg);
    loom_model_free(m);
}

static void test_sampling(void) {
    const size_t H = 6, W = 6, HW = H * W, n = 4;
    loom_model *m1 = make("gru", H, W, 2, 6, 4, 0, 1, 17), *m2 = make("gru", H, W, 2, 6, 4, 0, 2, 17);
    uint8_t a[4 * 36], b[4 * 36], c[4 * 36];
    test_sampling_seeds(m1, m2, a, b, c, n, HW, 1, "grupixel ");
    /* at temperature ~0 the pixels are argmaxes: only z differs between seeds */
    loom_model_sample(m1, a, NULL, n, 0, 1e-6f, 5, NULL);
    loom_model_sample(m1, b, NULL, n, 0, 1e-6f, 6, NULL);
    CHECK("grupixel sampling: greedy images differ with z alone (other seed)", memcmp(a, b, sizeof a) != 0,
          "identical: z has no effect");
    CHECK("grupixel completion keeps the given pixels", test_completion_kept(m1, c, a, n, HW, 2 * W),
          "a kept pixel changed");
    loom_model_free(m1), loom_model_free(m2);
}

static void test_overfit(void) {
    const size_t H = 8, W = 8, n = 4;
    loom_model *m = make("gru", H, W, 1, 32, 4, 0, 2, 21);
    uint8_t imgs[4 * 64];
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < 64; i++) imgs[b * 64 + i] = (uint8_t)((i / 8 + b) % 3 * 120);
    double first = 0, loss = 0;
    test_train(m, imgs, NULL, n, 300, 1e-2f, 1, &first, &loss); /* fresh z every step */
    CHECK("grupixel overfits 4 images: loss falls from ~ln 256 to < 0.05 nats/pixel", first > 4.5 && loss < 0.05,
          "first %.3f last %.4f", first, loss);
    loom_model_free(m);
}

/* the run config JSON keeps cell and zdim, and rejects what does not fit */
static void test_config(void) {
    loom_config cfg = {.model = "grupixel", .height = 28, .width = 28, .layers = 2, .hidden = 64,
                       .nclasses = 10, .cell = "lstm", .zdim = 17}, back;
    loom_error err;
    char *js = loom_config_json(&cfg, NULL);
    loom_status st = loom_config_parse(&back, NULL, js, "cfg", &err);
    int same = !st && !strcmp(cfg.model, back.model) && !strcmp(cfg.cell, back.cell) && cfg.zdim == back.zdim &&
               cfg.height == back.height && cfg.width == back.width && cfg.layers == back.layers &&
               cfg.hidden == back.hidden && cfg.nclasses == back.nclasses;
    CHECK("grupixel config JSON round trip", same,
          "%s", st ? err.msg : "fields differ");
    free(js);
    static const char *const bad[][2] = {
        {"unknown cell", "{\"model\": {\"name\": \"grupixel\", \"height\": 4, \"width\": 4, \"layers\": 1, "
                         "\"hidden\": 4, \"classes\": 0, \"cell\": \"foo\", \"zdim\": 3}}"},
        {"missing cell", "{\"model\": {\"name\": \"grupixel\", \"height\": 4, \"width\": 4, \"layers\": 1, "
                         "\"hidden\": 4, \"classes\": 0, \"zdim\": 3}}"},
        {"zdim 0", "{\"model\": {\"name\": \"grupixel\", \"height\": 4, \"width\": 4, \"layers\": 1, "
                   "\"hidden\": 4, \"classes\": 0, \"cell\": \"gru\", \"zdim\": 0}}"},
        {"rowlstm with a cell", "{\"model\": {\"name\": \"rowlstm\", \"height\": 4, \"width\": 4, \"layers\": 1, "
                                "\"hidden\": 4, \"classes\": 0, \"cell\": \"gru\"}}"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char name[96];
        snprintf(name, sizeof name, "config rejects %s (format error)", bad[k][0]);
        st = loom_config_parse(&back, NULL, bad[k][1], "cfg", &err);
        CHECK(name, st == LOOM_EFORMAT, "status %d", (int)st);
    }
    const char *rl = "{\"model\": {\"name\": \"rowlstm\", \"height\": 4, \"width\": 4, \"layers\": 1, "
                     "\"hidden\": 4, \"classes\": 0}}";
    st = loom_config_parse(&back, NULL, rl, "cfg", &err);
    CHECK("a rowlstm config without cell/zdim still parses", st == LOOM_OK && !back.cell[0] && !back.zdim,
          "%s", st ? err.msg : "cell/zdim set");
}

/* bf16 training (docs/performance.md) at shapes that reach oneDNN: the
 * rounding shortcuts (each layer's output and the logits' gradient rounded
 * once for all the products that read them, the GRU's dR once for its two)
 * give the bits of rounding at every product; reading the weights through
 * oneDNN's repacked copy changes only the kernel's order (close to the plain
 * reads); and the bf16 gradient tracks fp32's without equalling it. */
static void test_bf16(void) {
    if (!loom_gemm_have_onednn() || !loom_cpu_has_bf16()) {
        printf("SKIP grupixel: bf16 gradients (shortcuts, repacked weights, against fp32): "
               "this CPU has no AVX512_BF16 or this build no oneDNN\n");
        return;
    }
    const size_t n = 16, H = 8, W = 8;
    loom_model *m = make("gru", H, W, 2, 64, 4, 0, 1, 5);
    uint8_t imgs[16 * 8 * 8];
    test_random_images_seed(imgs, sizeof imgs, 9);
    loom_error err;
    double loss;
    float *g[4];
    const char *env[4][2] = {{"0", "0"}, {"1", "0"}, {"1", "1"}, {"1", "1"}}; /* shadows, pack */
    for (int k = 0; k < 4; k++) {
        setenv("LOOM_GEMM_SHADOWS", env[k][0], 1), setenv("LOOM_GEMM_PACK", env[k][1], 1);
        loom_model_set_gemm(m, LOOM_GEMM_ONEDNN, k == 3 ? LOOM_PREC_FP32 : LOOM_PREC_BF16, LOOM_PREC_FP32, &err);
        g[k] = malloc(m->nfloats * sizeof *g[k]);
        loom_model_grad(m, &loss, imgs, NULL, n, &err);
        memcpy(g[k], m->g, m->nfloats * sizeof *g[k]);
    }
    unsetenv("LOOM_GEMM_SHADOWS"), unsetenv("LOOM_GEMM_PACK");
    CHECK("grupixel bf16: rounding each activation once gives the bits of rounding at every product",
          memcmp(g[0], g[1], m->nfloats * sizeof *g[0]) == 0, "the gradients differ");
    const double ep = test_rel_err(g[2], g[1], m->nfloats), ef = test_rel_err(g[2], g[3], m->nfloats);
    CHECK("grupixel bf16: weights read repacked give the plain reads' gradient within 1e-5", ep < 1e-5,
          "max error %.3g of the gradient's scale", ep);
    CHECK("grupixel bf16: the gradient tracks fp32's (within 3% of its scale) and is not it", ef < 0.03 && ef > 0,
          "max error %.3g of the gradient's scale", ef);
    for (int k = 0; k < 4; k++) free(g[k]);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- PyTorch fixture */

static void test_reference(const loom_st_file *f, const char *cell) {
    loom_config cfg = {.model = "grupixel", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .zdim = test_meta_size(f, "zdim")};
    snprintf(cfg.cell, sizeof cfg.cell, "%s", cell);
    const size_t B = test_meta_size(f, "batch"), HW = cfg.height * cfg.width;
    loom_model *m;
    loom_error err;
    char name[160], tn[96];
    loom_status st = loom_model_create(&m, &cfg, 1, &err);
    snprintf(name, sizeof name, "grupixel %s: model from the fixture config", cell);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    int all_read = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        snprintf(tn, sizeof tn, "%s.%s", cell, pp->name);
        if (loom_st_read_f32(f, tn, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
            printf("# %s\n", err.msg);
            all_read = 0;
        }
    }
    snprintf(name, sizeof name, "grupixel %s: every parameter is in the fixture with loom's shape", cell);
    CHECK(name, all_read, "see above");
    const loom_tensor *ti = loom_st_find(f, "images");
    float *z = malloc(B * cfg.zdim * sizeof *z);
    size_t zshape[2] = {B, cfg.zdim};
    int ok = ti && ti->dtype == LOOM_U8 && ti->shape[0] == B && !loom_st_read_f32(f, "z", z, 2, zshape, &err);
    snprintf(name, sizeof name, "grupixel %s: fixture images and z", cell);
    CHECK(name, ok, "missing or wrong");
    if (!all_read || !ok) {
        free(z), loom_model_free(m);
        return;
    }
    const uint8_t *imgs = ti->data;
    const size_t nz = B * HW * 256;
    float *lg = malloc(nz * sizeof *lg), *lref = malloc(nz * sizeof *lref), loss_ref = 0;
    size_t lshape[4] = {B, cfg.height, cfg.width, 256}, one = 1;
    snprintf(tn, sizeof tn, "%s.logits", cell);
    st = loom_st_read_f32(f, tn, lref, 4, lshape, &err);
    snprintf(tn, sizeof tn, "%s.loss", cell);
    if (!st) st = loom_st_read_f32(f, tn, &loss_ref, 1, &one, &err);
    void *ws = malloc(m->ops->train_ws_bytes(&m->cfg, B));
    double *nll = malloc(B * sizeof *nll), loss = 0;
    memset(m->g, 0, m->nfloats * sizeof *m->g);
    loom_grupixel_run(m, ws, m->g, nll, lg, imgs, NULL, z, B, 1.0f / (float)(B * HW));
    for (size_t b = 0; b < B; b++) loss += nll[b];
    loss /= (double)(B * HW);
    double e = st ? 1e9 : test_rel_err(lg, lref, nz);
    snprintf(name, sizeof name, "grupixel %s: logits match PyTorch", cell);
    CHECK(name, e < 1e-5, "max error %.3g of the logits' scale", e);
    snprintf(name, sizeof name, "grupixel %s: loss matches PyTorch", cell);
    CHECK(name, fabs(loss - loss_ref) < 1e-5 * loss_ref, "loom %.9f torch %.9f", loss, (double)loss_ref);
    char key_prefix[16], name_prefix[32];
    snprintf(key_prefix, sizeof key_prefix, "%s.", cell);
    snprintf(name_prefix, sizeof name_prefix, "grupixel %s: ", cell);
    test_ref_grads(f, m, key_prefix, name_prefix, 1e-5);
    free(z), free(lg), free(lref), free(ws), free(nll);
    loom_model_free(m);
}

int main(void) {
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/grupixel_ref.safetensors", &err);
    CHECK("grupixel fixture loads", st == LOOM_OK, "%s", err.msg);
    if (!st) {
        for (int c = 0; c < 3; c++) test_reference(f, cells[c]);
        loom_safetensors_close(f);
    }
    test_config();
    for (int c = 0; c < 3; c++) test_gradients(cells[c], 0, 0);
    test_gradients("gru", 3, 0);
    test_gradients("lstm", 2, 12345);
    for (int c = 0; c < 3; c++) test_causality(cells[c]);
    for (int c = 0; c < 3; c++) test_sampler_matches_forward(cells[c], 0);
    test_sampler_matches_forward("gru", 3);
    test_sampling();
    test_overfit();
    test_bf16();
    CHECK_DONE();
}
