/* Thread-count independence (src/models/model.c): for every model, gradients,
 * losses, NLLs, importance-weighted bounds, samples, reconstructions, codes
 * and decodings are the same bytes on 1, 2 and 3 threads, on batches that are
 * not a multiple of the micro-shard; the gradient is exactly the documented
 * pairwise tree over the micro-shards' gradients (what a multi-process run
 * will rebuild); and an image's outputs do not depend on which other images
 * share its micro-shard. */
#include "testutil.h"

#include <string.h>

typedef struct {
    const char *name;
    loom_config cfg;
    /* an image's NLL is the same whichever images share its micro-shard. Not
     * true of rae: its convolutions' matrix products round an image's rows
     * differently with other row counts beside them (OpenBLAS, SkylakeX: equal
     * when the counts agree mod 4), which is why the micro-shards, and not the
     * per-thread split, fix every op's composition. With OpenBLAS's Haswell
     * and Zen kernels no model is (test_rows_free): a difference is then a
     * skip, not a failure */
    int composition_free;
} spec;

static const spec specs[] = {
    {"rowlstm", {.model = "rowlstm", .height = 5, .width = 4, .layers = 2, .hidden = 3}, 1},
    {"rowlstm conditional",
     {.model = "rowlstm", .height = 4, .width = 3, .layers = 1, .hidden = 3, .nclasses = 3}, 1},
    {"diagbilstm", {.model = "diagbilstm", .height = 4, .width = 5, .layers = 2, .hidden = 3}, 1},
    {"grupixel", {.model = "grupixel", .height = 4, .width = 3, .layers = 1, .hidden = 5,
                  .cell = "gru", .zdim = 3}, 1},
    {"draw", {.model = "draw", .height = 6, .width = 5, .layers = 1, .hidden = 5, .zdim = 3,
              .steps_draw = 3, .read_n = 2, .write_n = 2, .attention = 1}, 1},
    {"rae", {.model = "rae", .height = 6, .width = 5, .layers = 1, .hidden = 5, .zdim = 3,
             .variational = 1}, 0},
    {"rae deterministic", {.model = "rae", .height = 4, .width = 4, .layers = 1, .hidden = 4,
                           .zdim = 3}, 0},
};
#define NSPEC (sizeof specs / sizeof specs[0])
#define NT 3 /* models on 1, 2 and 3 threads */

/* sum of leaves [lo, hi) of g (K, nf) in the order model.c documents:
 * sum(lo, hi) = sum(lo, lo + p) + sum(lo + p, hi), p the largest power of two
 * below hi - lo; written independently of model.c's wave-and-stack code */
static void tree_sum(float *out, const float *g, size_t nf, size_t lo, size_t hi) {
    if (hi - lo == 1) {
        memcpy(out, g + lo * nf, nf * sizeof *out);
        return;
    }
    size_t p = 1;
    while (2 * p < hi - lo) p *= 2;
    float *right = malloc(nf * sizeof *right);
    tree_sum(out, g, nf, lo, lo + p);
    tree_sum(right, g, nf, lo + p, hi);
    for (size_t k = 0; k < nf; k++) out[k] += right[k];
    free(right);
}

static int same_bytes(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* name = "<model>, n=<n>: <what>" */
static const char *nm(char *buf, const spec *s, size_t n, const char *what) {
    snprintf(buf, 200, "%s, n=%zu: %s", s->name, n, what);
    return buf;
}

static int rows_free; /* test_rows_free(), asked once */

/* a composition check: a failure where this CPU's products make it expected
 * (testutil.h) is reported as a skip, saying why */
static void composition(const char *name, int same) {
    if (same || rows_free) CHECK(name, same, "differ");
    else printf("SKIP %s: differs, as this CPU's matrix products round a row by the product's row count\n", name);
}

static void test_spec(const spec *s, size_t n) {
    char name[200];
    loom_model *m[NT];
    for (int t = 0; t < NT; t++) m[t] = test_model(&s->cfg, t + 1, 11, 0.3f);
    const loom_config *c = &m[0]->cfg;
    const size_t HW = c->height * c->width, nf = m[0]->nfloats;
    uint8_t *imgs = malloc(n * HW);
    int32_t *labels = c->nclasses ? malloc(n * sizeof *labels) : NULL;
    loom_rng r;
    loom_rng_seed(&r, 5 + n);
    test_random_images(imgs, n * HW, &r);
    for (size_t b = 0; labels && b < n; b++) labels[b] = (int32_t)loom_rng_below(&r, (uint64_t)c->nclasses);

    /* ---- training step: gradient and loss */
    double loss[NT];
    int ok = 1;
    for (int t = 0; t < NT; t++) {
        m[t]->noise_seed = 77; /* fresh training noise, as loom train sets it */
        ok &= loom_model_grad(m[t], &loss[t], imgs, labels, n, NULL) == LOOM_OK;
        m[t]->noise_seed = 0;
    }
    CHECK(nm(name, s, n, "grad succeeds on 1, 2, 3 threads"), ok, "failed");
    CHECK(nm(name, s, n, "grad: 2 and 3 threads give the 1-thread gradient, byte for byte"),
          same_bytes(m[0]->g, m[1]->g, nf * sizeof(float)) && same_bytes(m[0]->g, m[2]->g, nf * sizeof(float)),
          "differ");
    CHECK(nm(name, s, n, "grad: 2 and 3 threads give the 1-thread loss, bit for bit"),
          same_bytes(&loss[0], &loss[1], sizeof(double)) && same_bytes(&loss[0], &loss[2], sizeof(double)),
          "%.17g %.17g %.17g", loss[0], loss[1], loss[2]);
    double loss2;
    float *g1 = malloc(nf * sizeof *g1);
    memcpy(g1, m[1]->g, nf * sizeof *g1);
    m[1]->noise_seed = 77;
    loom_model_grad(m[1], &loss2, imgs, labels, n, NULL);
    m[1]->noise_seed = 0;
    CHECK(nm(name, s, n, "grad: a second call (reused buffers) gives the same bytes"),
          same_bytes(g1, m[1]->g, nf * sizeof *g1) && loss2 == loss[1], "differ");
    free(g1);

    /* the documented order: micro-shard j's gradient via the model's shard op,
     * then the pairwise tree over j */
    const size_t u = loom_micro_shard(c, n), K = (n + u - 1) / u;
    float *leaves = calloc(K * nf, sizeof *leaves), *want = malloc(nf * sizeof *want);
    double *nll = malloc(n * sizeof *nll), s_nll = 0.0;
    void *ws = malloc(m[0]->ops->train_ws_bytes(c, u));
    m[0]->noise_seed = 77;
    for (size_t j = 0; j < K; j++) {
        const size_t b0 = j * u, nb = LOOM_MIN(u, n - b0);
        m[0]->ops->shard(m[0], ws, leaves + j * nf, nll + b0, imgs + b0 * HW, labels ? labels + b0 : NULL,
                         nb, 1.0f / (float)(n * HW));
    }
    m[0]->noise_seed = 0;
    tree_sum(want, leaves, nf, 0, K);
    for (size_t b = 0; b < n; b++) s_nll += nll[b];
    snprintf(name, sizeof name, "%s, n=%zu: grad is the pairwise tree over its %zu micro-shards of %zu",
             s->name, n, K, u);
    CHECK(name, same_bytes(want, m[0]->g, nf * sizeof *want), "differ");
    CHECK(nm(name, s, n, "grad: loss is the image-order mean of the micro-shards' NLLs"),
          s_nll / (double)(n * HW) == loss[0], "%.17g vs %.17g", s_nll / (double)(n * HW), loss[0]);
    free(leaves), free(want), free(ws);

    /* ---- evaluation */
    double *nt = malloc(n * sizeof *nt), *one = malloc(n * sizeof *one);
    loom_model_nll(m[0], nll, imgs, labels, n, n, NULL);
    ok = 1;
    for (int t = 1; t < NT; t++) {
        loom_model_nll(m[t], nt, imgs, labels, n, n, NULL);
        ok &= same_bytes(nll, nt, n * sizeof *nt);
    }
    CHECK(nm(name, s, n, "nll: the same per image on 1, 2, 3 threads"), ok, "differ");
    /* composition: each image alone (chunk 1) and in chunks of 3 */
    if (s->composition_free) {
        loom_model_nll(m[1], one, imgs, labels, n, 1, NULL);
        loom_model_nll(m[2], nt, imgs, labels, n, 3, NULL);
        composition(nm(name, s, n, "nll: an image's NLL does not depend on the images beside it"),
                    same_bytes(nll, one, n * sizeof *one) && same_bytes(nll, nt, n * sizeof *nt));
    }
    if (m[0]->ops->iw_nll && !(m[0]->ops->cannot_sample && m[0]->ops->cannot_sample(c))) {
        loom_model_iw_nll(m[0], nll, imgs, labels, n, 3, n, NULL);
        ok = 1;
        for (int t = 1; t < NT; t++) {
            loom_model_iw_nll(m[t], nt, imgs, labels, n, 3, n, NULL);
            ok &= same_bytes(nll, nt, n * sizeof *nt);
        }
        CHECK(nm(name, s, n, "iw_nll: the same per image on 1, 2, 3 threads"), ok, "differ");
        if (s->composition_free) {
            loom_model_iw_nll(m[1], one, imgs, labels, n, 3, 1, NULL);
            composition(nm(name, s, n, "iw_nll: an image's bound does not depend on the images beside it"),
                        same_bytes(nll, one, n * sizeof *one));
        }
    }
    free(nt), free(one), free(nll);

    /* ---- sampling (and DRAW's frames) */
    if (!(m[0]->ops->cannot_sample && m[0]->ops->cannot_sample(c))) {
        uint8_t *a = malloc(n * HW), *b = malloc(n * HW);
        loom_model_sample(m[0], a, labels, n, 0, 1.0f, 9, NULL);
        ok = 1;
        for (int t = 1; t < NT; t++) {
            loom_model_sample(m[t], b, labels, n, 0, 1.0f, 9, NULL);
            ok &= same_bytes(a, b, n * HW);
        }
        CHECK(nm(name, s, n, "sample: the same images on 1, 2, 3 threads"), ok, "differ");
        if (loom_model_nframes(m[0])) {
            const size_t F = loom_model_nframes(m[0]);
            uint8_t *fa = malloc(n * F * HW), *fb = malloc(n * F * HW);
            loom_model_sample_frames(m[0], b, fa, labels, n, 1.0f, 9, NULL);
            ok = same_bytes(a, b, n * HW);
            for (int t = 1; t < NT; t++) {
                loom_model_sample_frames(m[t], b, fb, labels, n, 1.0f, 9, NULL);
                ok &= same_bytes(a, b, n * HW) && same_bytes(fa, fb, n * F * HW);
            }
            CHECK(nm(name, s, n, "sample_frames: the same images and frames on 1, 2, 3 threads"), ok, "differ");
            free(fa), free(fb);
        }
        if (m[0]->ops->logits) { /* completion: the first rows kept */
            const size_t keep = HW / 2;
            memcpy(a, imgs, n * HW);
            loom_model_sample(m[0], a, labels, n, keep, 1.0f, 4, NULL);
            ok = 1;
            for (int t = 1; t < NT; t++) {
                memcpy(b, imgs, n * HW);
                loom_model_sample(m[t], b, labels, n, keep, 1.0f, 4, NULL);
                ok &= same_bytes(a, b, n * HW);
            }
            CHECK(nm(name, s, n, "complete: the same images on 1, 2, 3 threads"), ok, "differ");
        }
        free(a), free(b);
    }

    /* ---- autoencoders */
    if (m[0]->ops->reconstruct) {
        uint8_t *a = malloc(2 * n * HW), *b = malloc(2 * n * HW);
        loom_model_reconstruct(m[0], a, imgs, labels, n, NULL);
        ok = 1;
        for (int t = 1; t < NT; t++) {
            loom_model_reconstruct(m[t], b, imgs, labels, n, NULL);
            ok &= same_bytes(a, b, 2 * n * HW);
        }
        CHECK(nm(name, s, n, "reconstruct: the same on 1, 2, 3 threads"), ok, "differ");
        free(a), free(b);
    }
    const size_t Z = loom_model_code_dim(m[0]);
    if (Z) {
        float *ca = malloc(n * Z * sizeof *ca), *cb = malloc(n * Z * sizeof *cb);
        uint8_t *a = malloc(n * HW), *b = malloc(n * HW);
        loom_model_encode(m[0], ca, imgs, n, NULL);
        loom_model_decode(m[0], a, ca, n, NULL);
        ok = 1;
        int okd = 1;
        for (int t = 1; t < NT; t++) {
            loom_model_encode(m[t], cb, imgs, n, NULL);
            ok &= same_bytes(ca, cb, n * Z * sizeof *ca);
            loom_model_decode(m[t], b, ca, n, NULL);
            okd &= same_bytes(a, b, n * HW);
        }
        CHECK(nm(name, s, n, "encode: the same codes on 1, 2, 3 threads"), ok, "differ");
        CHECK(nm(name, s, n, "decode: the same images on 1, 2, 3 threads"), okd, "differ");
        free(ca), free(cb), free(a), free(b);
    }
    free(imgs), free(labels);
    for (int t = 0; t < NT; t++) loom_model_free(m[t]);
}

/* The memory estimate is what loom_model_grad allocates: its gradient buffers
 * grow with log2 of the micro-shard count, not with the batch. */
static void test_train_bytes(void) {
    const loom_config cfg = {.model = "rowlstm", .height = 28, .width = 28, .layers = 4, .hidden = 32};
    size_t small, big, one;
    loom_model_train_bytes(&cfg, 2, 32, &small, NULL);
    loom_model_train_bytes(&cfg, 2, 4096, &big, NULL);
    loom_model_train_bytes(&cfg, 1, 32, &one, NULL);
    loom_model *m = test_model(&cfg, 2, 1, 0.0f);
    const size_t per_image = cfg.height * cfg.width, grad = m->nfloats * sizeof(float);
    /* 4096 images: 4064 more images in the batch and 512 micro-shards instead
     * of 4: still 2 leaves per wave, and up to 7 pending tree nodes (j = 510) */
    CHECK("train_bytes: a 128x larger batch adds the images and a few tree levels only",
          big - small == 4064 * per_image + 7 * grad, "%zu vs %zu", big - small, 4064 * per_image + 7 * grad);
    CHECK("train_bytes: 1 thread needs less than 2 (one workspace, smaller waves)", one < small, "%zu vs %zu",
          one, small);
    double loss;
    uint8_t *imgs = calloc(32, per_image);
    loom_model_grad(m, &loss, imgs, NULL, 32, NULL);
    const size_t u = loom_micro_shard(&cfg, 32);
    const size_t have = m->ngbuf * grad + m->nthreads * m->ws_bytes + 4 * grad + 32 * per_image;
    CHECK("train_bytes: equals what a step allocated (gradient buffers, workspaces, w, g, Adam, batch)",
          have == small, "%zu allocated vs %zu estimated (micro-shard %zu)", have, small, u);
    free(imgs);
    loom_model_free(m);
}

int main(void) {
    rows_free = test_rows_free();
    for (size_t i = 0; i < NSPEC; i++) {
        const size_t u = loom_micro_shard(&specs[i].cfg, SIZE_MAX);
        test_spec(&specs[i], 4 * u + 3); /* 5 micro-shards: a tree of 4 and 1 */
        test_spec(&specs[i], 2 * u + 1); /* 3 micro-shards, the last of one image */
    }
    test_train_bytes();
    CHECK_DONE();
}
