/* Colour PixelRNNs (rowlstm and diagbilstm with channels 3, docs/rowlstm.md
 * "Colour"): configuration errors, the masks' structure, causality per
 * channel, gradients (finite differences on free weights, exact zeros on
 * masked ones), the incremental sampler against the forward pass, completion,
 * conditional samples, overfitting, checkpoints, and the PyTorch reference
 * fixtures (bench/rowlstm_torch.py fixture --rgb, bench/diagbilstm_torch.py
 * fixture --rgb: conditional). */
#include "gradcheck.h"
#include "testutil.h"
#include "io/checkpoint.h"
#include "models/model.h"
#include "optim/optim.h"

#include <string.h>
#include <unistd.h>

static const char *const models[2] = {"rowlstm", "diagbilstm"};

/* zero the masked weights: test_model's jitter moved them too */
static void rezero(loom_model *m) {
    for (size_t p = 0; p < m->nparams; p++)
        for (size_t k = 0; k < m->params[p].size; k++)
            if (m->ops->masked(m, p, k)) m->w[m->params[p].offset + k] = 0.0f;
}

static loom_model *make(const char *model, size_t H, size_t W, size_t L, size_t h, int K, int threads,
                        uint64_t seed, float jitter) {
    loom_config cfg = {.model = "", .height = H, .width = W, .channels = 3, .layers = L, .hidden = h,
                       .nclasses = K};
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    loom_model *m = test_model(&cfg, threads, seed, jitter);
    rezero(m);
    return m;
}

/* index of the logits of channel c at pixel q of image b in (n, H, W, 3, 256) */
static size_t zi(size_t b, size_t q, size_t c, size_t HW) { return ((b * HW + q) * 3 + c) * 256; }

/* ---------------------------------------------------------------- configuration */

static void test_config(void) {
    loom_error err;
    loom_config c = {.model = "rowlstm", .height = 4, .width = 4, .channels = 3, .layers = 1, .hidden = 4};
    loom_status st = loom_config_check(&c, &err);
    CHECK("colour: --hidden not a multiple of 3 is a clear error", st == LOOM_EINVAL && strstr(err.msg, "multiple of 3"),
          "status %d: %s", st, st ? err.msg : "accepted");
    c.hidden = 6, c.channels = 2;
    st = loom_config_check(&c, &err);
    CHECK("colour: 2 channels rejected", st == LOOM_EINVAL && strstr(err.msg, "1 (gray) or 3 (RGB)"), "status %d: %s",
          st, st ? err.msg : "accepted");
    c.channels = 3;
    CHECK("colour: rowlstm accepts 3 channels", loom_config_check(&c, &err) == LOOM_OK, "%s", err.msg);
    snprintf(c.model, sizeof c.model, "diagbilstm");
    CHECK("colour: diagbilstm accepts 3 channels", loom_config_check(&c, &err) == LOOM_OK, "%s", err.msg);
    const char *gray_only[3] = {"grupixel", "draw", "rae"};
    for (int k = 0; k < 3; k++) {
        loom_config g = {.height = 8, .width = 8, .channels = 3, .layers = 1, .hidden = 6, .zdim = 4,
                         .steps_draw = 2, .read_n = 2, .write_n = 2};
        snprintf(g.model, sizeof g.model, "%s", gray_only[k]);
        if (k == 0) snprintf(g.cell, sizeof g.cell, "gru");
        st = loom_config_check(&g, &err);
        char name[96];
        snprintf(name, sizeof name, "colour: %s rejects 3 channels with a clear error", gray_only[k]);
        CHECK(name, st == LOOM_EINVAL && strstr(err.msg, "grayscale images only"), "status %d: %s", st,
              st ? err.msg : "accepted");
        g.channels = 1;
        snprintf(name, sizeof name, "colour: %s with 1 channel still valid", gray_only[k]);
        CHECK(name, loom_config_check(&g, &err) == LOOM_OK, "%s", err.msg);
    }
}

/* ---------------------------------------------------------------- masks */

/* masked entries per tensor, against the counts the docs' definition gives */
static void test_mask_counts(int which) {
    const size_t h = 6, g = 4, u = 2;
    loom_config cfg = {.model = "", .height = 4, .width = 4, .channels = 3, .layers = 2, .hidden = h};
    snprintf(cfg.model, sizeof cfg.model, "%s", models[which]);
    loom_model *m = test_model(&cfg, 1, 3, 0.0f); /* loom_model_init as is */
    size_t bad = 0, nonzero = 0;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        size_t cnt = 0, expect = 0;
        for (size_t k = 0; k < pp->size; k++) {
            int mk = m->ops->masked(m, p, k);
            cnt += mk;
            nonzero += mk && m->w[pp->offset + k] != 0.0f;
        }
        const char *nm = pp->name;
        /* groups of sizes g (features) and u (LSTM units): group a -> group b masked when a > b
         * (mask B: 3 of the 9 group pairs) or a >= b (mask A, channels -> features: 6 of 9) */
        if (strcmp(nm, "in.weight") == 0) expect = g * (3 + 2 + 1);          /* centre tap only */
        else if (strstr(nm, ".is.weight")) expect = (which ? 2 : 1) * 4 * 3 * g * u; /* per gate block */
        else if (strstr(nm, ".out.weight")) expect = 3 * u * g;
        else if (strcmp(nm, "head1.weight") == 0) expect = 3 * g * g;
        else if (strcmp(nm, "head2.weight") == 0) expect = 3 * g * 256;
        if (cnt != expect) {
            printf("# %s: %zu masked entries, expected %zu\n", nm, cnt, expect);
            bad++;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "%s colour: masked entries per tensor as documented", models[which]);
    CHECK(name, bad == 0, "%zu tensors differ", bad);
    snprintf(name, sizeof name, "%s colour: masked entries are 0 after init", models[which]);
    CHECK(name, nonzero == 0, "%zu are not", nonzero);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- causality */

/* Perturbing channel c of pixel k must change no logit at (pixel, channel)
 * <= (k, c) in the order (pixel, channel), must change the logits of the
 * later channels of pixel k (the centre taps of mask A and B), and of every
 * channel of the right neighbour. Every (k, c) of a 4x5 image. */
static void test_causality(int which) {
    const size_t H = 4, W = 5, HW = H * W;
    loom_model *m = make(models[which], H, W, 2, 12, 0, 1, 11, 0.2f);
    /* open the ReLUs (relu(X_L), the head's hidden layer): in a model this small,
     * a colour group whose units are all closed makes that channel's logits
     * constant, which would hide a dependence rather than reveal a leak */
    const char *open[2] = {"in.bias", "head1.bias"};
    for (int t = 0; t < 2; t++) {
        const loom_param *pp = loom_model_param(m, open[t]);
        for (size_t k = 0; k < pp->size; k++) m->w[pp->offset + k] += 1.0f;
    }
    uint8_t img[3 * 4 * 5], img2[3 * 4 * 5];
    test_random_images_seed(img, sizeof img, 5);
    float *z0 = malloc(HW * 3 * 256 * sizeof *z0), *z1 = malloc(HW * 3 * 256 * sizeof *z1);
    loom_model_logits(m, z0, img, NULL, 1, NULL);
    int leaks = 0, centre_blind = 0, next_blind = 0, centre_checked = 0;
    for (size_t k = 0; k < HW; k++)
        for (size_t c = 0; c < 3; c++) {
            memcpy(img2, img, sizeof img);
            img2[c * HW + k] ^= 0x80;
            loom_model_logits(m, z1, img2, NULL, 1, NULL);
            for (size_t q = 0; q < HW; q++)
                for (size_t c2 = 0; c2 < 3; c2++) {
                    int changed = memcmp(z0 + zi(0, q, c2, HW), z1 + zi(0, q, c2, HW), 256 * sizeof *z0) != 0;
                    if (changed && q * 3 + c2 <= k * 3 + c) leaks++;
                    if (q == k && c2 > c) centre_blind += !changed, centre_checked++;
                    if (!changed && ((q == k && c2 > c) || (q == k + 1 && (k + 1) % W != 0))) printf("# blind k %zu c %zu -> q %zu c2 %zu\n", k, c, q, c2);
                    if (q == k + 1 && (k + 1) % W != 0) next_blind += !changed;
                }
        }
    char name[128];
    snprintf(name, sizeof name, "%s colour causality: channel c of pixel k changes no logit at or before (k, c)",
             models[which]);
    CHECK(name, leaks == 0, "%d logits leaked", leaks);
    snprintf(name, sizeof name, "%s colour: channel c of pixel k changes channels > c of pixel k (%d cases)",
             models[which], centre_checked);
    CHECK(name, centre_blind == 0 && centre_checked == (int)HW * 3, "%d blind", centre_blind);
    snprintf(name, sizeof name, "%s colour: every channel of pixel k changes every channel of its right neighbour",
             models[which]);
    CHECK(name, next_blind == 0, "%d blind", next_blind);
    free(z0), free(z1);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- gradients */

static double loss_per_dim(void *p) {
    const test_model_ctx *c = p;
    return test_nll_sum(c) / (double)(c->n * 3 * c->m->cfg.height * c->m->cfg.width);
}

static void test_gradients(int which, int K) {
    const size_t n = 2, H = 3, W = 4;
    loom_model *m = make(models[which], H, W, 2, 3, K, 1, 7, 0.2f);
    uint8_t imgs[2 * 3 * 3 * 4];
    test_random_images_seed(imgs, sizeof imgs, 3);
    int32_t labels[2] = {1, 2};
    test_model_ctx c = {m, imgs, K ? labels : NULL, n};
    double loss;
    loom_model_grad(m, &loss, imgs, c.labels, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    const char *sfx = K ? " (conditional)" : "";
    char name[160];
    snprintf(name, sizeof name, "%s colour: loss == nll per dimension (H x W x 3)%s", models[which], sfx);
    CHECK(name, fabs(loss - loss_per_dim(&c)) < 1e-9, "grad loss %.9g vs nll %.9g", loss, loss_per_dim(&c));
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        float *x = m->w + pp->offset;
        const float *gp = g + pp->offset;
        const size_t stride = pp->size > 64 ? 5 : 1;
        double worst = 0.0;
        size_t masked = 0, nonzero = 0, free_probed = 0;
        for (size_t e = 0; e < pp->size; e++) {
            if (m->ops->masked(m, p, e)) {
                masked++;
                nonzero += gp[e] != 0.0f;
                continue;
            }
            if (e % stride) continue;
            double r = gc_ratio(loss_per_dim, &c, x, e, gp[e], 1e-3);
            if (r > 1.0) r = fmin(r, gc_ratio(loss_per_dim, &c, x, e, gp[e], 1e-4));
            worst = fmax(worst, r);
            free_probed++;
        }
        snprintf(name, sizeof name, "%s colour gradient %s%s", models[which], pp->name, sfx);
        CHECK(name, worst <= 1.0 && free_probed > 0, "worst error ratio %.3g over %zu entries", worst, free_probed);
        if (masked) {
            snprintf(name, sizeof name, "%s colour gradient %s is exactly 0 on its %zu masked entries%s",
                     models[which], pp->name, masked, sfx);
            CHECK(name, nonzero == 0, "%zu are not", nonzero);
        }
    }
    free(g);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- sampling */

/* channels of the n images (n, 3, H, W) that are not the argmax of their
 * forward logits (up to 1e-5 float-rounding ties), for pixels >= keep */
static int not_argmax(loom_model *m, const uint8_t *imgs, const int32_t *labels, size_t n, size_t keep) {
    const size_t HW = m->cfg.height * m->cfg.width;
    float *z = malloc(n * HW * 3 * 256 * sizeof *z);
    loom_model_logits(m, z, imgs, labels, n, NULL);
    int bad = 0;
    for (size_t b = 0; b < n; b++)
        for (size_t q = keep; q < HW; q++)
            for (size_t c = 0; c < 3; c++) {
                const float *zz = z + zi(b, q, c, HW);
                int best = 0;
                for (int k = 1; k < 256; k++) best = zz[k] > zz[best] ? k : best;
                bad += zz[best] - zz[imgs[(b * 3 + c) * HW + q]] > 1e-5f;
            }
    free(z);
    return bad;
}

/* Greedy sampling (a tiny temperature): every drawn channel must be the argmax
 * of the forward pass's logits on the final image; then greedy completion of
 * other images after `keep` pixels: the given pixels stay, the drawn ones are
 * again the forward argmax (so the sampler's state of a given pixel used all
 * three of its channels). */
static void test_sampler(int which, int threads, size_t H, size_t W) {
    const size_t HW = H * W, n = 3, keep = HW > W + 2 ? W + 2 : HW / 2;
    loom_model *m = make(models[which], H, W, 2, 6, 3, threads, 13, 0.2f);
    uint8_t *imgs = malloc(n * 3 * HW), *orig = malloc(n * 3 * HW);
    int32_t labels[3] = {0, 2, 1};
    loom_error err;
    loom_status st = loom_model_sample(m, imgs, labels, n, 0, 1e-6f, 99, &err);
    char name[160];
    snprintf(name, sizeof name, "%s colour: greedy sample runs", models[which]);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    int bad = not_argmax(m, imgs, labels, n, 0);
    snprintf(name, sizeof name, "%s colour: incremental sampler == forward argmax, every channel (greedy, %zux%zu, %d threads)",
             models[which], H, W, threads);
    CHECK(name, bad == 0, "%d of %zu channels differ", bad, n * HW * 3);
    test_random_images_seed(orig, n * 3 * HW, 4);
    memcpy(imgs, orig, n * 3 * HW);
    loom_model_sample(m, imgs, labels, n, keep, 1e-6f, 98, NULL);
    int kept = 1, changed = 0;
    for (size_t b = 0; b < n; b++)
        for (size_t c = 0; c < 3; c++) {
            kept &= memcmp(imgs + (b * 3 + c) * HW, orig + (b * 3 + c) * HW, keep) == 0;
            changed |= memcmp(imgs + (b * 3 + c) * HW + keep, orig + (b * 3 + c) * HW + keep, HW - keep) != 0;
        }
    snprintf(name, sizeof name, "%s colour: completion keeps all 3 channels of the given pixels (%zux%zu, %d threads)",
             models[which], H, W, threads);
    CHECK(name, kept && changed, "kept %d, drew something %d", kept, changed);
    bad = not_argmax(m, imgs, labels, n, keep);
    snprintf(name, sizeof name, "%s colour: greedy completion == forward argmax after the given pixels (%zux%zu, %d threads)",
             models[which], H, W, threads);
    CHECK(name, bad == 0, "%d channels differ", bad);
    free(imgs), free(orig);
    loom_model_free(m);
}

static void test_sample_reproducible(int which) {
    const size_t H = 5, W = 4, n = 4, HW3 = 3 * H * W;
    loom_model *m1 = make(models[which], H, W, 2, 6, 0, 1, 17, 0.2f);
    loom_model *m2 = make(models[which], H, W, 2, 6, 0, 2, 17, 0.2f);
    uint8_t *a = malloc(n * HW3), *b = malloc(n * HW3), *c = malloc(n * HW3);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s colour ", models[which]);
    test_sampling_seeds(m1, m2, a, b, c, n, HW3, 1, prefix);
    free(a), free(b), free(c);
    loom_model_free(m1), loom_model_free(m2);
}

/* ---------------------------------------------------------------- training */

/* 4 images 6x6: each channel a different stripe pattern per image */
static void stripes(uint8_t *imgs, size_t n, size_t H, size_t W) {
    for (size_t b = 0; b < n; b++)
        for (size_t c = 0; c < 3; c++)
            for (size_t q = 0; q < H * W; q++)
                imgs[(b * 3 + c) * H * W + q] = (uint8_t)((q / W + b + c) % 3 * 120);
}

static void test_overfit(int which) {
    const size_t H = 6, W = 6, n = 4;
    loom_model *m = make(models[which], H, W, 2, 9, 0, 2, 21, 0.0f);
    uint8_t imgs[4 * 3 * 36];
    stripes(imgs, n, H, W);
    double first = 0, loss = 0;
    test_train(m, imgs, NULL, n, 300, 1e-2f, 0, &first, &loss);
    char name[128];
    snprintf(name, sizeof name, "%s colour: overfits 4 images, ln 256 -> < 0.05 nats/dim", models[which]);
    CHECK(name, first > 5.0 && loss < 0.05, "first %.3f last %.4f", first, loss);
    loom_error err;
    snprintf(name, sizeof name, "%s colour: masked weights still exactly 0 after 300 Adam steps", models[which]);
    CHECK(name, loom_model_check_masks(m, &err) == LOOM_OK, "%s", err.msg);
    loom_model_free(m);
}

/* Three classes of 6x6 images: class k has channel k bright (200) and the
 * others dark (50), noise +-20. Unconditionally the first pixel's colour
 * picks a class at random, so samples only follow the label when the class
 * embedding is used. A sample's class: its brightest channel on average. */
static double colour_accuracy(loom_model *m, size_t per, uint64_t seed) {
    const size_t HW = 36, n = 3 * per;
    uint8_t *s = malloc(n * 3 * HW);
    int32_t *lab = malloc(n * sizeof *lab);
    for (size_t k = 0; k < n; k++) lab[k] = (int32_t)(k / per);
    loom_model_sample(m, s, lab, n, 0, 1.0f, seed, NULL);
    size_t right = 0;
    for (size_t k = 0; k < n; k++) {
        double mean[3] = {0};
        for (size_t c = 0; c < 3; c++)
            for (size_t q = 0; q < HW; q++) mean[c] += s[(k * 3 + c) * HW + q];
        int best = mean[1] > mean[0] ? 1 : 0;
        best = mean[2] > mean[best] ? 2 : best;
        right += best == lab[k];
    }
    free(s), free(lab);
    return (double)right / (double)n;
}

static void test_conditional(int which) {
    const size_t H = 6, W = 6, HW = 36, n = 48;
    loom_model *m = make(models[which], H, W, 1, 6, 3, 2, 31, 0.0f);
    uint8_t *imgs = malloc(n * 3 * HW);
    int32_t *labels = malloc(n * sizeof *labels);
    loom_rng r;
    loom_rng_seed(&r, 77);
    for (size_t k = 0; k < n; k++) {
        labels[k] = (int32_t)(k % 3);
        for (size_t c = 0; c < 3; c++)
            for (size_t q = 0; q < HW; q++)
                imgs[(k * 3 + c) * HW + q] = (uint8_t)(((int)c == labels[k] ? 200 : 50) + (int)loom_rng_below(&r, 41) - 20);
    }
    double first = 0, last = 0;
    test_train(m, imgs, labels, n, 150, 1e-2f, 0, &first, &last);
    double acc = colour_accuracy(m, 8, 5);
    for (size_t l = 0; l < m->cfg.layers; l++) {
        char nm[LOOM_NAMELEN];
        snprintf(nm, sizeof nm, "rnn.%zu.cls.weight", l);
        const loom_param *pp = loom_model_param(m, nm);
        memset(m->w + pp->offset, 0, pp->size * sizeof *m->w);
    }
    double acc0 = colour_accuracy(m, 8, 5);
    printf("# %s colour conditional: loss %.3f -> %.3f nats/dim, accuracy %.2f, without class tables %.2f\n",
           models[which], first, last, acc, acc0);
    char name[128];
    snprintf(name, sizeof name, "%s colour: conditional samples have their class's colour", models[which]);
    CHECK(name, acc >= 0.8, "accuracy %.2f (loss %.3f -> %.3f)", acc, first, last);
    snprintf(name, sizeof name, "%s colour: control: without the class tables they do not", models[which]);
    CHECK(name, acc0 <= 0.5, "accuracy %.2f", acc0);
    free(imgs), free(labels);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- checkpoints */

static void test_checkpoint(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/loom_colour_%d.safetensors", (int)getpid());
    loom_model *m = make("rowlstm", 4, 4, 1, 3, 0, 1, 5, 0.0f), *back = NULL;
    loom_error err;
    loom_train_opts o;
    loom_train_opts_default(&o);
    char *js = loom_config_json(&m->cfg, &o);
    CHECK("colour config JSON has \"channels\": 3", strstr(js, "\"channels\":\t3") != NULL, "%s", js);
    free(js);
    loom_config gray = m->cfg;
    gray.channels = 1;
    js = loom_config_json(&gray, &o);
    CHECK("gray config JSON has no \"channels\" (files as before)", strstr(js, "channels") == NULL, "%s", js);
    free(js);
    loom_status st = loom_checkpoint_save(path, m, NULL, NULL, NULL, &o, &err);
    if (!st) st = loom_checkpoint_load(path, 1, &back, NULL, NULL, NULL, NULL, &err);
    CHECK("colour checkpoint round trip", st == LOOM_OK && back && back->cfg.channels == 3 &&
          memcmp(back->w, m->w, m->nfloats * sizeof *m->w) == 0, "%s", st ? err.msg : "differs");
    loom_model_free(back);
    back = NULL;
    m->w[m->params[0].offset + 72 * m->params[0].shape[1]] = 0.5f; /* R at the centre -> R group: mask A */
    st = loom_checkpoint_save(path, m, NULL, NULL, NULL, &o, &err);
    if (!st) st = loom_checkpoint_load(path, 1, &back, NULL, NULL, NULL, NULL, &err);
    CHECK("colour checkpoint with a non-zero masked weight is rejected", st != LOOM_OK &&
          strstr(err.msg, "in.weight entry (72, 0)") && strstr(err.msg, path), "%s", st ? err.msg : "accepted");
    loom_model_free(back);
    unlink(path);
    loom_model_free(m);
}

/* ---------------------------------------------------------------- PyTorch reference */

static void test_reference(const char *model, const char *file) {
    char path[256], name[160];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, file);
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, path, &err);
    snprintf(name, sizeof name, "%s colour fixture loads", model);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    loom_config cfg = {.height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .channels = test_meta_size(f, "channels"), .layers = test_meta_size(f, "layers"),
                       .hidden = test_meta_size(f, "hidden"), .nclasses = (int)test_meta_size(f, "nclasses")};
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    const size_t B = test_meta_size(f, "batch"), H = cfg.height, W = cfg.width;
    loom_model *m;
    st = loom_model_create(&m, &cfg, 1, &err);
    snprintf(name, sizeof name, "%s colour model from fixture config", model);
    CHECK(name, st == LOOM_OK && cfg.channels == 3, "%s", st ? err.msg : "not colour");
    if (st) {
        loom_safetensors_close(f);
        return;
    }
    int all_read = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        if (loom_st_read_f32(f, pp->name, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
            printf("# %s\n", err.msg);
            all_read = 0;
        }
    }
    snprintf(name, sizeof name, "%s colour: every parameter in the fixture with loom's shape", model);
    CHECK(name, all_read, "see above");
    snprintf(name, sizeof name, "%s colour: the fixture's masked weights are 0 (the masks agree)", model);
    CHECK(name, loom_model_check_masks(m, &err) == LOOM_OK, "%s", err.msg);
    const loom_tensor *ti = loom_st_find(f, "images"), *tl = loom_st_find(f, "labels");
    int have = ti && ti->dtype == LOOM_U8 && ti->ndim == 4 && ti->shape[0] == B && ti->shape[1] == 3 &&
               (!cfg.nclasses || (tl && tl->dtype == LOOM_I32 && tl->shape[0] == B));
    snprintf(name, sizeof name, "%s colour fixture images (B, 3, H, W)", model);
    CHECK(name, have, "missing or wrong");
    if (have) {
        uint8_t *imgs = malloc(B * 3 * H * W);
        int32_t *labels = cfg.nclasses ? malloc(B * sizeof *labels) : NULL;
        memcpy(imgs, ti->data, B * 3 * H * W);
        if (labels) memcpy(labels, tl->data, B * sizeof *labels);
        /* (B, H, W, 3, 256) stored as (B, H, W, 3*256) */
        size_t nz = B * H * W * 3 * 256, zshape[4] = {B, H, W, 3 * 256};
        float *z = malloc(nz * sizeof *z), *zref = malloc(nz * sizeof *zref);
        int zok = loom_st_read_f32(f, "logits", zref, 4, zshape, &err) == LOOM_OK;
        loom_model_logits(m, z, imgs, labels, B, &err);
        double e = zok ? test_rel_err(z, zref, nz) : 1e9;
        snprintf(name, sizeof name, "%s colour logits (B, H, W, 3, 256) match PyTorch", model);
        CHECK(name, e < 1e-4, "max error %.3g of the logits' scale", e);
        double loss;
        loom_model_grad(m, &loss, imgs, labels, B, &err);
        const char *lmeta = loom_st_meta(f, "loss_f64");
        double lref = lmeta ? strtod(lmeta, NULL) : -1;
        snprintf(name, sizeof name, "%s colour loss (nats/dim over H x W x 3) matches PyTorch", model);
        CHECK(name, fabs(loss - lref) < 1e-5 * fabs(lref), "loom %.9f torch %.9f", loss, lref);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%.10s colour ", model);
        test_ref_grads(f, m, "", prefix, 1e-4);
        free(z), free(zref), free(imgs), free(labels);
    }
    loom_model_free(m);
    loom_safetensors_close(f);
}

int main(void) {
    test_config();
    for (int which = 0; which < 2; which++) {
        test_mask_counts(which);
        test_causality(which);
        test_gradients(which, 0);
        test_gradients(which, 3);
        test_sampler(which, 1, 5, 6);
        test_sampler(which, 2, 5, 6);
        test_sampler(which, 1, 1, 4);
        test_sampler(which, 1, 6, 2);
        test_sample_reproducible(which);
        test_overfit(which);
        test_conditional(which);
    }
    test_checkpoint();
    test_reference("rowlstm", "rowlstm_rgb_ref.safetensors");
    test_reference("diagbilstm", "diagbilstm_rgb_ref.safetensors"); /* conditional */
    CHECK_DONE();
}
