/* renet (src/models/renet.c) and its bidirectional sweeps (src/nn/sweep.c):
 * finite-difference gradients of the sweep layer (input and every weight,
 * each cell) and of the whole classifier (every tensor, padded patches, 1
 * and 3 channels), the grid transpose, forward and every gradient against
 * PyTorch (fixture from bench/renet_torch.py), predictions against the
 * training loss, the same bits on 1 and 2 threads, and overfitting a batch. */
#include "gradcheck.h"
#include "testutil.h"
#include "loom.h"
#include "losses/losses.h"
#include "data/scenes.h"
#include "io/checkpoint.h"
#include "nn/sweep.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- sweep layer */

typedef struct {
    loom_cell cell;
    loom_seq_dims d;
    float *x, *w[8]; /* w_ih, w_hh, b_ih, b_hh of the forward, then the backward layer */
    float *y, *cache, *dy;
} sweep_case;

static loom_bisweep_params sp(const sweep_case *s) {
    return (loom_bisweep_params){{s->w[0], s->w[1], s->w[2], s->w[3], NULL},
                                 {s->w[4], s->w[5], s->w[6], s->w[7], NULL}};
}

static double sweep_probe(void *p) {
    sweep_case *s = p;
    loom_bisweep_forward(s->y, s->cache, s->x, sp(s), s->cell, s->d);
    return gc_dot(s->y, s->dy, s->d.T * s->d.B * 2 * s->d.H);
}

static void test_sweep_grads(loom_cell cell) {
    loom_rng r;
    loom_rng_seed(&r, 77 + (uint64_t)cell);
    sweep_case s = {.cell = cell, .d = {4, 3, 2, 3}};
    const size_t N = s.d.T * s.d.B, G = loom_cell_gates(cell) * s.d.H;
    const size_t sizes[4] = {s.d.In * G, s.d.H * G, G, G};
    s.x = test_randbuf(&r, N * s.d.In, 1.0f);
    for (int k = 0; k < 8; k++) s.w[k] = test_randbuf(&r, sizes[k % 4], 0.6f);
    s.y = test_zeros(N * 2 * s.d.H), s.dy = test_randbuf(&r, N * 2 * s.d.H, 1.0f);
    s.cache = test_zeros(loom_bisweep_cache_floats(cell, s.d));
    float *scratch = test_zeros(loom_bisweep_scratch_floats(cell, s.d)), *dx = test_zeros(N * s.d.In), *g[8];
    for (int k = 0; k < 8; k++) g[k] = test_zeros(sizes[k % 4]);
    loom_bisweep_grads gr = {{g[0], g[1], g[2], g[3], NULL}, {g[4], g[5], g[6], g[7], NULL}};
    sweep_probe(&s);
    loom_bisweep_backward(dx, gr, scratch, s.dy, s.x, sp(&s), s.cache, cell, s.d);
    static const char *const names[8] = {"forward w_ih", "forward w_hh", "forward b_ih", "forward b_hh",
                                         "backward w_ih", "backward w_hh", "backward b_ih", "backward b_hh"};
    char name[128];
    snprintf(name, sizeof name, "bisweep %s: gradient of x", loom_cell_name(cell));
    GRADCHECK(name, sweep_probe, &s, s.x, dx, N * s.d.In);
    for (int k = 0; k < 8; k++) {
        snprintf(name, sizeof name, "bisweep %s: gradient of %s", loom_cell_name(cell), names[k]);
        GRADCHECK(name, sweep_probe, &s, s.w[k], g[k], sizes[k % 4]);
    }
    /* y_0's backward half has read the whole sequence: changing the last
     * input changes it, and leaves the forward half of y_0 alone */
    float *y0 = malloc(N * 2 * s.d.H * sizeof *y0);
    memcpy(y0, s.y, N * 2 * s.d.H * sizeof *y0);
    s.x[(s.d.T - 1) * s.d.B * s.d.In] += 0.5f;
    sweep_probe(&s);
    int fwd_same = memcmp(y0, s.y, s.d.H * sizeof *y0) == 0;
    int bwd_diff = memcmp(y0 + s.d.H, s.y + s.d.H, s.d.H * sizeof *y0) != 0;
    snprintf(name, sizeof name, "bisweep %s: y_0 = [state after x_0 | state after x_T-1 .. x_0]", loom_cell_name(cell));
    CHECK(name, fwd_same && bwd_diff, "forward half unchanged %d, backward half changed %d", fwd_same, bwd_diff);
    free(y0), free(s.x), free(s.y), free(s.dy), free(s.cache), free(scratch), free(dx);
    for (int k = 0; k < 8; k++) free(s.w[k]), free(g[k]);
}

static void test_transpose(void) {
    const size_t A = 3, n = 2, Bd = 4, F = 5, N = A * n * Bd * F;
    float *src = malloc(N * sizeof *src), *t = calloc(N, sizeof *t), *back = calloc(N, sizeof *back);
    for (size_t k = 0; k < N; k++) src[k] = (float)k;
    loom_grid_transpose(t, src, A, n, Bd, F, 0);
    /* element (a, b, j, f) of src is (j, b, a, f) of t */
    const size_t a = 2, b = 1, j = 3, f = 4;
    int at = t[((j * n + b) * A + a) * F + f] == src[((a * n + b) * Bd + j) * F + f];
    loom_grid_transpose(back, t, Bd, n, A, F, 0);
    loom_grid_transpose(back, t, Bd, n, A, F, 1);
    int twice = 1;
    for (size_t k = 0; k < N; k++) twice &= back[k] == 2.0f * src[k];
    CHECK("grid transpose: (A, n, B, F) -> (B, n, A, F), its inverse, accumulate", at && twice, "at %d twice %d", at, twice);
    free(src), free(t), free(back);
}

/* ---------------------------------------------------------------- the model */

static loom_config tiny(const char *cell, size_t C, size_t H, size_t W, size_t patch) {
    loom_config c = {.model = "renet", .height = H, .width = W, .channels = C, .layers = 2, .hidden = 3,
                     .nclasses = 4, .patch = patch};
    snprintf(c.cell, sizeof c.cell, "%s", cell);
    return c;
}

/* nats per dimension (pixel and channel): the loss loom_model_grad differentiates */
static double loss_per_dim(void *p) {
    const test_model_ctx *c = p;
    return test_nll_sum(c) / (double)(c->n * loom_channels(&c->m->cfg) * c->m->cfg.height * c->m->cfg.width);
}

static void test_model_gradients(const char *cell, size_t C, size_t patch) {
    loom_config cfg = tiny(cell, C, 5, 6, patch);
    loom_model *m = test_model(&cfg, 1, 11, 0.4f);
    const size_t B = 3, HW = C * cfg.height * cfg.width;
    uint8_t *imgs = malloc(B * HW);
    test_random_images_seed(imgs, B * HW, 5);
    int32_t labels[3] = {1, 3, 0};
    test_model_ctx c = {m, imgs, labels, B};
    char pre[64];
    snprintf(pre, sizeof pre, "renet %s C=%zu patch %zu: gradient ", cell, C, patch);
    char lname[96];
    snprintf(lname, sizeof lname, "renet %s C=%zu patch %zu: grad loss = forward loss", cell, C, patch);
    double loss;
    loom_model_grad(m, &loss, imgs, labels, B, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    CHECK(lname, fabs(loss - loss_per_dim(&c)) < 1e-9, "grad loss %.9g vs nll %.9g", loss, loss_per_dim(&c));
    test_param_grads(loss_per_dim, &c, g, pre, "", 64, 7, 1e-3, 1e-4);
    free(g);
    free(imgs);
    loom_model_free(m);
}

static void test_reference(const loom_st_file *f, const char *cell) {
    loom_config cfg = tiny(cell, test_meta_size(f, "channels"), test_meta_size(f, "height"),
                           test_meta_size(f, "width"), test_meta_size(f, "patch"));
    cfg.layers = test_meta_size(f, "layers"), cfg.hidden = test_meta_size(f, "hidden");
    cfg.nclasses = (int)test_meta_size(f, "classes");
    const size_t B = test_meta_size(f, "batch"), K = (size_t)cfg.nclasses;
    loom_model *m;
    loom_error err;
    char name[160], tn[96];
    loom_status st = loom_model_create(&m, &cfg, 1, &err);
    snprintf(name, sizeof name, "renet %s: model from the fixture config", cell);
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
    snprintf(name, sizeof name, "renet %s: every parameter is in the fixture with loom's shape", cell);
    CHECK(name, all_read, "see above");
    const loom_tensor *ti = loom_st_find(f, "images"), *tl = loom_st_find(f, "labels");
    if (!all_read || !ti || !tl) {
        CHECK("renet fixture has images and labels", 0, "missing");
        loom_model_free(m);
        return;
    }
    const uint8_t *imgs = ti->data;
    int32_t labels[16] = {0}; /* the file's int32 data need not be 4-byte aligned */
    memcpy(labels, tl->data, LOOM_MIN(B, (size_t)16) * sizeof *labels);
    const size_t D = 2 * cfg.hidden;
    float *lg = malloc(B * K * sizeof *lg), *lref = malloc(B * K * sizeof *lref), loss_ref = 0;
    float *ft = malloc(B * D * sizeof *ft), *fref = malloc(B * D * sizeof *fref);
    size_t lshape[2] = {B, K}, fshape[2] = {B, D}, one = 1;
    snprintf(tn, sizeof tn, "%s.logits", cell);
    st = loom_st_read_f32(f, tn, lref, 2, lshape, &err);
    snprintf(tn, sizeof tn, "%s.features", cell);
    if (!st) st = loom_st_read_f32(f, tn, fref, 2, fshape, &err);
    snprintf(tn, sizeof tn, "%s.loss", cell);
    if (!st) st = loom_st_read_f32(f, tn, &loss_ref, 1, &one, &err);
    double loss = 0;
    loom_status s2 = loom_model_classify(m, lg, ft, imgs, B, B, &err);
    loom_model_grad(m, &loss, imgs, labels, B, &err);
    double e = st || s2 ? 1e9 : test_rel_err(lg, lref, B * K);
    snprintf(name, sizeof name, "renet %s: logits match PyTorch", cell);
    CHECK(name, e < 1e-5, "max error %.3g of the logits' scale", e);
    e = st || s2 ? 1e9 : test_rel_err(ft, fref, B * D);
    snprintf(name, sizeof name, "renet %s: features (the penultimate layer) match PyTorch", cell);
    CHECK(name, e < 1e-5, "max error %.3g of the features' scale", e);
    snprintf(name, sizeof name, "renet %s: loss matches PyTorch", cell);
    CHECK(name, fabs(loss - loss_ref) < 1e-5 * loss_ref, "loom %.9f torch %.9f", loss, (double)loss_ref);
    char key_prefix[16], name_prefix[32];
    snprintf(key_prefix, sizeof key_prefix, "%s.", cell);
    snprintf(name_prefix, sizeof name_prefix, "renet %s: ", cell);
    test_ref_grads(f, m, key_prefix, name_prefix, 1e-5);
    free(lg), free(lref), free(ft), free(fref);
    loom_model_free(m);
}

/* the logits predict returns give the NLL the training shard reports */
static void test_predict_matches_nll(void) {
    loom_config cfg = tiny("lstm", 1, 8, 8, 2);
    loom_model *m = test_model(&cfg, 2, 3, 0.2f);
    const size_t B = 21, HW = 64, K = 4;
    uint8_t *imgs = malloc(B * HW);
    int32_t labels[21];
    test_random_images_seed(imgs, B * HW, 9);
    for (size_t b = 0; b < B; b++) labels[b] = (int32_t)(b % K);
    float *lg = malloc(B * K * sizeof *lg);
    double nll[21], ref[21];
    loom_model_classify(m, lg, NULL, imgs, B, 8, NULL);
    loom_model_nll(m, nll, imgs, labels, B, 5, NULL);
    loom_class_xent(NULL, ref, lg, labels, B, K, 0.0f);
    double worst = 0;
    for (size_t b = 0; b < B; b++) worst = fmax(worst, fabs(nll[b] - ref[b]));
    CHECK("renet: cross-entropy of predict's logits = the NLL eval reports", worst < 1e-6, "worst %.3g", worst);
    free(imgs), free(lg);
    loom_model_free(m);
}

static void test_threads(void) {
    loom_config cfg = tiny("gru", 1, 6, 6, 2);
    loom_model *m1 = test_model(&cfg, 1, 4, 0.2f), *m2 = test_model(&cfg, 2, 4, 0.2f);
    const size_t B = 40, HW = 36;
    uint8_t *imgs = malloc(B * HW);
    int32_t labels[40];
    test_random_images_seed(imgs, B * HW, 10);
    for (size_t b = 0; b < B; b++) labels[b] = (int32_t)(b % 3);
    double l1, l2;
    loom_model_grad(m1, &l1, imgs, labels, B, NULL);
    loom_model_grad(m2, &l2, imgs, labels, B, NULL);
    CHECK("renet: loss and gradient bit-identical on 1 and 2 threads",
          l1 == l2 && memcmp(m1->g, m2->g, m1->nfloats * sizeof(float)) == 0, "loss %.17g vs %.17g", l1, l2);
    free(imgs);
    loom_model_free(m1), loom_model_free(m2);
}

/* 24 random images with 4 random labels cannot be told apart by their
 * content: only memorising them fits; the model must get to 100% */
static void test_overfit(void) {
    loom_config cfg = tiny("lstm", 1, 8, 8, 2);
    cfg.hidden = 8;
    loom_model *m = test_model(&cfg, 2, 6, 0.0f);
    const size_t B = 24, HW = 64, K = 4;
    uint8_t *imgs = malloc(B * HW);
    int32_t labels[24];
    test_random_images_seed(imgs, B * HW, 12);
    loom_rng r;
    loom_rng_seed(&r, 13);
    for (size_t b = 0; b < B; b++) labels[b] = (int32_t)loom_rng_below(&r, K);
    double first = NAN, last = NAN; /* set by test_train */
    test_train(m, imgs, labels, B, 300, 1e-2f, 0, &first, &last);
    float *lg = malloc(B * K * sizeof *lg);
    loom_model_classify(m, lg, NULL, imgs, B, B, NULL);
    size_t right = 0;
    for (size_t b = 0; b < B; b++) {
        size_t best = 0;
        for (size_t k = 1; k < K; k++) best = lg[b * K + k] > lg[b * K + best] ? k : best;
        right += (int32_t)best == labels[b];
    }
    const double per_img = last * HW; /* nats per image */
    CHECK("renet: overfits 24 randomly labelled images (100% right, cross-entropy < 0.05 nats)",
          right == B && per_img < 0.05, "%zu of %zu right, cross-entropy %.4f -> %.4f nats", right, B,
          first * HW, per_img);
    free(imgs), free(lg);
    loom_model_free(m);
}

static void test_config(void) {
    loom_config c = tiny("lstm", 1, 28, 28, 2);
    loom_error err;
    CHECK("renet config: valid", loom_config_check(&c, &err) == LOOM_OK, "%s", err.msg);
    c.nclasses = 0;
    CHECK("renet config: no classes refused", loom_config_check(&c, &err) != LOOM_OK && strstr(err.msg, "labelled"),
          "%s", err.msg);
    c = tiny("conv", 1, 28, 28, 2);
    CHECK("renet config: unknown cell refused", loom_config_check(&c, &err) != LOOM_OK && strstr(err.msg, "cell"),
          "%s", err.msg);
    c = tiny("lstm", 1, 28, 28, 0);
    CHECK("renet config: patch 0 refused", loom_config_check(&c, &err) != LOOM_OK && strstr(err.msg, "--patch"),
          "%s", err.msg);
    /* a config round trip through JSON keeps the patch and the cell */
    c = tiny("gru", 3, 12, 10, 3);
    loom_train_opts o;
    loom_train_opts_default(&o);
    char *js = loom_config_json(&c, &o);
    loom_config back;
    loom_status st = loom_config_parse(&back, NULL, js, "test", &err);
    loom_config sg = {.model = "reseg", .height = 28, .width = 28, .layers = 1, .hidden = 4, .patch = 2, .cell = "lstm"};
    CHECK("reseg config: a plain image (not scene over label map) refused",
          loom_config_check(&sg, &err) != LOOM_OK && strstr(err.msg, "label map"), "%s", err.msg);
    CHECK("renet config: JSON round trip (patch, cell, channels)",
          !st && back.patch == 3 && strcmp(back.cell, "gru") == 0 && back.channels == 3 && back.nclasses == 4,
          "%s", st ? err.msg : "fields differ");
    free(js);
}

/* ---------------------------------------------------------------- the segmenter */

/* examples (n, 2 Hs, W): random scenes above random label maps 0 .. 10 */
static void seg_examples(uint8_t *ex, size_t n, size_t Hs, size_t W, uint64_t seed) {
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t b = 0; b < n; b++)
        for (size_t q = 0; q < 2 * Hs * W; q++)
            ex[b * 2 * Hs * W + q] = (uint8_t)(q < Hs * W ? loom_rng_below(&r, 256) : loom_rng_below(&r, LOOM_SCENE_CLASSES));
}

static void test_seg_gradients(const char *cell) {
    loom_config cfg = {.model = "reseg", .height = 10, .width = 5, .layers = 2, .hidden = 3, .patch = 2};
    snprintf(cfg.cell, sizeof cfg.cell, "%s", cell);
    loom_model *m = test_model(&cfg, 1, 17, 0.4f);
    const size_t B = 2;
    uint8_t ex[2 * 10 * 5];
    seg_examples(ex, B, 5, 5, 3);
    test_model_ctx c = {m, ex, NULL, B};
    char pre[64], lname[96];
    snprintf(pre, sizeof pre, "reseg %s (5x5 scenes, padded patches): gradient ", cell);
    snprintf(lname, sizeof lname, "reseg %s: grad loss = forward loss", cell);
    double loss;
    loom_model_grad(m, &loss, ex, NULL, B, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    CHECK(lname, fabs(loss - loss_per_dim(&c)) < 1e-9, "grad loss %.9g vs nll %.9g", loss, loss_per_dim(&c));
    test_param_grads(loss_per_dim, &c, g, pre, "", 64, 5, 1e-3, 1e-4);
    /* the NLL is the per-pixel cross-entropy of predict's logits against the lower half */
    const size_t P = 25, K = LOOM_SCENE_CLASSES;
    float *lg = malloc(B * P * K * sizeof *lg);
    double nll[2], want = 0, got = 0;
    loom_model_classify(m, lg, NULL, ex, B, B, NULL);
    loom_model_nll(m, nll, ex, NULL, B, B, NULL);
    int32_t lab[50];
    for (size_t b = 0; b < B; b++)
        for (size_t q = 0; q < P; q++) lab[b * P + q] = ex[b * 50 + 25 + q];
    want = loom_class_xent(NULL, NULL, lg, lab, B * P, K, 0.0f);
    got = nll[0] + nll[1];
    snprintf(lname, sizeof lname, "reseg %s: NLL = cross-entropy of predict's logits with the label maps", cell);
    CHECK(lname, fabs(got - want) < 1e-5 * want, "%.9g vs %.9g", got, want);
    free(g), free(lg);
    loom_model_free(m);
}

static void test_seg_threads(void) {
    loom_config cfg = {.model = "reseg", .height = 16, .width = 8, .layers = 1, .hidden = 4, .patch = 4, .cell = "gru"};
    loom_model *m1 = test_model(&cfg, 1, 4, 0.2f), *m2 = test_model(&cfg, 2, 4, 0.2f);
    const size_t B = 20;
    uint8_t *ex = malloc(B * 128);
    seg_examples(ex, B, 8, 8, 11);
    double l1, l2;
    loom_model_grad(m1, &l1, ex, NULL, B, NULL);
    loom_model_grad(m2, &l2, ex, NULL, B, NULL);
    CHECK("reseg: loss and gradient bit-identical on 1 and 2 threads",
          l1 == l2 && memcmp(m1->g, m2->g, m1->nfloats * sizeof(float)) == 0, "loss %.17g vs %.17g", l1, l2);
    free(ex);
    loom_model_free(m1), loom_model_free(m2);
}

/* every pixel of a scene: the class + 1 and the value of the last item placed
 * that covers it (value >= the threshold), else background 0 and pixel 0 */
static void test_scenes(void) {
    /* 6 items: item k is a 28x28 pattern of value (k * 40 + 10 + y + x) % 256 with holes */
    loom_images src = {.n = 6, .h = 28, .w = 28, .c = 1, .t = 1, .nclasses = 10};
    src.pixels = malloc(6 * 784), src.labels = malloc(6 * sizeof *src.labels);
    for (size_t k = 0; k < 6; k++) {
        src.labels[k] = (int32_t)(9 - k);
        for (size_t q = 0; q < 784; q++) src.pixels[k * 784 + q] = (uint8_t)((q * 7 + k * 31) % 3 ? (k * 40 + 10 + q) % 256 : 5);
    }
    const size_t n = 50, S = LOOM_SCENE_SIZE;
    loom_images sc, again;
    loom_scene_item items[50 * LOOM_SCENE_MAX_ITEMS];
    size_t nitems[50];
    loom_error err;
    loom_status st = loom_scenes_make(&sc, items, nitems, &src, n, 5, &err);
    CHECK("scenes: made", st == LOOM_OK && sc.h == 2 * S && sc.w == S && sc.n == n, "%s", st ? err.msg : "shape");
    if (st) return;
    size_t bad = 0, badcount = 0, labelled = 0, background = 0;
    for (size_t b = 0; b < n; b++) {
        badcount += nitems[b] < 2 || nitems[b] > 4;
        for (size_t y = 0; y < S; y++)
            for (size_t x = 0; x < S; x++) {
                int want_lab = 0, want_px = 0;
                for (size_t q = 0; q < nitems[b]; q++) {
                    const loom_scene_item *it = &items[b * LOOM_SCENE_MAX_ITEMS + q];
                    if (y < it->y || x < it->x || y >= it->y + 28 || x >= it->x + 28) continue;
                    const uint8_t v = src.pixels[it->src * 784 + (y - it->y) * 28 + (x - it->x)];
                    if (v >= LOOM_SCENE_THRESHOLD) want_lab = 1 + it->cls, want_px = v;
                }
                const uint8_t *e = sc.pixels + b * 2 * S * S;
                bad += e[y * S + x] != want_px || e[S * S + y * S + x] != want_lab;
                labelled += want_lab != 0, background += want_lab == 0;
            }
    }
    CHECK("scenes: 2 to 4 items each", badcount == 0, "%zu scenes outside", badcount);
    CHECK("scenes: each pixel labelled with the class of the item on top (background 0), its value that item's",
          bad == 0 && labelled > 0 && background > 0, "%zu wrong pixels (%zu labelled, %zu background)", bad, labelled,
          background);
    loom_images badsrc = src;
    badsrc.h = 14;
    st = loom_scenes_make(&again, NULL, NULL, &badsrc, n, 5, &err);
    CHECK("scenes: items that are not 28x28 refused", st == LOOM_EINVAL && strstr(err.msg, "28x28"), "%s",
          st ? err.msg : "accepted");
    badsrc = src;
    badsrc.labels = NULL;
    st = loom_scenes_make(&again, NULL, NULL, &badsrc, n, 5, &err);
    CHECK("scenes: unlabelled items refused", st == LOOM_EINVAL && strstr(err.msg, "labelled"), "%s",
          st ? err.msg : "accepted");
    loom_scenes_make(&again, NULL, NULL, &src, n, 5, &err);
    CHECK("scenes: the same seed, the same scenes", memcmp(again.pixels, sc.pixels, n * 2 * S * S) == 0, "differ");
    loom_images_free(&again);
    loom_images_free(&sc);
    loom_images_free(&src);
    loom_images t1, t2;
    st = loom_images_load(&t1, "fashion-mnist-scenes", "test", &err);
    if (!st) st = loom_images_load(&t2, "fashion-mnist-scenes", "test", &err);
    CHECK("fashion-mnist-scenes: a fixed test set of 1000 scenes (two loads equal)",
          !st && t1.n == LOOM_SCENES_TEST && t1.h == 128 && memcmp(t1.pixels, t2.pixels, t1.n * 128 * 64) == 0,
          "%s", st ? err.msg : "differ");
    if (!st) loom_images_free(&t1), loom_images_free(&t2);
}

int main(void) {
    test_config();
    for (int c = 0; c < 3; c++) test_sweep_grads((loom_cell)c);
    test_transpose();
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/renet_ref.safetensors", &err);
    CHECK("renet fixture loads", st == LOOM_OK, "%s", err.msg);
    if (!st) {
        test_reference(f, "lstm");
        test_reference(f, "gru");
        loom_safetensors_close(f);
    }
    test_model_gradients("lstm", 1, 2);
    test_model_gradients("gru", 3, 2);
    test_model_gradients("rnn", 1, 3);
    test_predict_matches_nll();
    test_threads();
    test_overfit();
    test_scenes();
    test_seg_gradients("lstm");
    test_seg_gradients("gru");
    test_seg_threads();
    CHECK_DONE();
}
