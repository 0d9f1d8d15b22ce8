/* The convlstm model: every gradient against central differences, causality
 * in time, bit-identical gradients on 1 and 2 threads, overfitting a few
 * sequences; the Moving Fashion-MNIST generator; the .npy and PNG-sequence
 * readers on good and bad files. */
#include "testutil.h"
#include "models/model.h"
#include "train/trainer.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static loom_config tiny(void) {
    loom_config c = {.model = "convlstm", .height = 8, .width = 8, .layers = 2, .hidden = 3,
                     .frames_in = 3, .frames_out = 2, .kernel = 3, .patch = 2};
    return c;
}

static double loss_per_dim(void *p) {
    const test_model_ctx *c = p;
    return test_nll_sum(c) / (double)(c->n * loom_nll_dims(&c->m->cfg));
}

/* tag: "" (Bernoulli, no peepholes), or the variant's name */
static void test_grads(loom_config cfg, const char *tag) {
    char name[160];
    loom_model *m = test_model(&cfg, 1, 3, 0.2f);
    const size_t n = 2, EX = loom_example_size(&cfg);
    uint8_t *seqs = malloc(n * EX);
    test_random_images_seed(seqs, n * EX, 5);
    test_model_ctx c = {.m = m, .imgs = seqs, .n = n};
    double loss;
    loom_model_grad(m, &loss, seqs, NULL, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    snprintf(name, sizeof name, "convlstm%s: grad loss = the NLL per predicted pixel", tag);
    CHECK(name, fabs(loss - loss_per_dim(&c)) < 1e-9,
          "%.9g vs %.9g", loss, loss_per_dim(&c));
    /* against the summed NLL: gradients of order 1, above float rounding */
    const double per = (double)(n * loom_nll_dims(&cfg));
    for (size_t i = 0; i < m->nfloats; i++) g[i] = (float)(g[i] * per);
    snprintf(name, sizeof name, "convlstm%s ", tag);
    /* the softmax's summed NLL is ~5 nats a pixel, so float rounding in the
     * forward pass needs a wider step */
    const double eps = cfg.softmax256 ? 1e-2 : 1e-3;
    test_param_grads(test_loss_per_batch, &c, g, name, "", 64, 7, eps, eps / 10);

    /* causality in time: the target frames are never read; every input frame is */
    const size_t PF = loom_nll_dims(&cfg), FR = cfg.height * cfg.width;
    float *p0 = malloc(n * PF * sizeof *p0), *p1 = malloc(n * PF * sizeof *p1);
    loom_model_predict(m, p0, seqs, n, n, LOOM_POINT_MEAN, NULL);
    uint8_t *s2 = malloc(n * EX);
    memcpy(s2, seqs, n * EX);
    for (size_t b = 0; b < n; b++)
        for (size_t i = cfg.frames_in * FR; i < EX; i++) s2[b * EX + i] ^= 0x5a;
    loom_model_predict(m, p1, s2, n, n, LOOM_POINT_MEAN, NULL);
    snprintf(name, sizeof name, "convlstm%s causal: the frames to predict do not change the prediction", tag);
    CHECK(name, memcmp(p0, p1, n * PF * sizeof *p0) == 0, "predictions changed");
    int all = 1;
    for (size_t t = 0; t < cfg.frames_in; t++) {
        memcpy(s2, seqs, n * EX);
        s2[t * FR + 9] ^= 0xff; /* sequence 0, frame t */
        loom_model_predict(m, p1, s2, n, n, LOOM_POINT_MEAN, NULL);
        all &= memcmp(p0, p1, PF * sizeof *p0) != 0;                  /* sequence 0 changes */
        all &= memcmp(p0 + PF, p1 + PF, PF * sizeof *p0) == 0;        /* sequence 1 does not */
    }
    snprintf(name, sizeof name, "convlstm%s causal: every input frame reaches its own sequence's prediction only", tag);
    CHECK(name, all, "no");

    /* the L1 and squared error losses: of the predicted frames against the true ones, with
     * the outputs made constants in (0, 1) (out.weight 0, out.bias j / (O + 1)), so that
     * no prediction is clamped; the weights put back after */
    if (cfg.frame_loss) {
        double nll[2], worst = 0;
        loom_error err;
        float *keep = malloc(m->nfloats * sizeof *keep);
        memcpy(keep, m->w, m->nfloats * sizeof *keep);
        for (size_t k = 0; k < m->nparams; k++) {
            const loom_param *pp = &m->params[k];
            for (size_t j = 0; j < pp->size; j++)
                if (strcmp(pp->name, "out.weight") == 0) m->w[pp->offset + j] = 0.0f;
                else if (strcmp(pp->name, "out.bias") == 0) m->w[pp->offset + j] = (float)(j + 1) / (float)(pp->size + 1);
        }
        loom_model_predict(m, p0, seqs, n, n, LOOM_POINT_MEAN, NULL);
        loom_model_nll(m, nll, seqs, NULL, n, n, &err);
        for (size_t b = 0; b < n; b++) {
            double want = 0;
            for (size_t i = 0; i < PF; i++) {
                const double e = p0[b * PF + i] - seqs[b * EX + cfg.frames_in * FR + i] / 255.0;
                want += cfg.frame_loss == LOOM_FRAME_L1 ? fabs(e) : e * e;
            }
            worst = fmax(worst, fabs(nll[b] - want) / want);
        }
        snprintf(name, sizeof name, "convlstm%s: the loss is that of the predicted frames", tag);
        CHECK(name, worst < 1e-5, "relative error %.3g", worst);
        memcpy(m->w, keep, m->nfloats * sizeof *keep);
        loom_model_predict(m, p0, seqs, n, n, LOOM_POINT_MEAN, NULL);
        free(keep);
    }

    /* beyond the horizon: F = 2M + 1 frames, M at a time, the second chunk
     * from the window [x_{K-1}, p_K, p_{K+1}] of its own 8-bit output (K = 3, M = 2) */
    const size_t F = 2 * cfg.frames_out + 1, K = cfg.frames_in;
    uint8_t *fr = malloc(n * F * FR), *win = calloc(n, EX);
    loom_model_predict_frames(m, fr, seqs, n, F, LOOM_POINT_MEAN, NULL);
    int first = 1, second = 1;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < cfg.frames_out * FR; i++)
            first &= fr[b * F * FR + i] == (uint8_t)lrintf(255.0f * p0[b * PF + i]);
    for (size_t b = 0; b < n; b++) {
        memcpy(win + b * EX, seqs + b * EX + (K - 1) * FR, FR);
        memcpy(win + b * EX + FR, fr + b * F * FR, 2 * FR);
    }
    loom_model_predict(m, p1, win, n, n, LOOM_POINT_MEAN, NULL);
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < cfg.frames_out * FR; i++)
            second &= fr[(b * F + cfg.frames_out) * FR + i] == (uint8_t)lrintf(255.0f * p1[b * PF + i]);
    snprintf(name, sizeof name, "convlstm%s predict_frames: the first M frames are the prediction, rounded", tag);
    CHECK(name, first, "differ");
    snprintf(name, sizeof name, "convlstm%s predict_frames: beyond the horizon it reads its own last K frames", tag);
    CHECK(name, second, "differ");
    free(fr), free(win);
    free(p0), free(p1), free(s2), free(g), free(seqs);
    loom_model_free(m);
}

static void test_threads_and_overfit(void) {
    loom_config cfg = tiny();
    cfg.hidden = 8;
    loom_model *m1 = test_model(&cfg, 1, 4, 0.0f), *m2 = test_model(&cfg, 2, 4, 0.0f);
    const size_t n = 9, EX = loom_example_size(&cfg);
    uint8_t *seqs = malloc(n * EX);
    test_random_images_seed(seqs, n * EX, 6);
    double l1, l2;
    loom_model_grad(m1, &l1, seqs, NULL, n, NULL);
    loom_model_grad(m2, &l2, seqs, NULL, n, NULL);
    CHECK("convlstm: 1 and 2 threads give the same gradient bits",
          l1 == l2 && memcmp(m1->g, m2->g, m1->nfloats * sizeof(float)) == 0, "loss %.17g vs %.17g", l1, l2);
    /* overfit 2 moving sequences */
    loom_config mc = {.model = "convlstm", .height = 64, .width = 64, .layers = 1, .hidden = 8,
                      .frames_in = 3, .frames_out = 3, .kernel = 3, .patch = 8};
    loom_model *m = test_model(&mc, 2, 5, 0.0f);
    loom_images tr;
    loom_error err;
    loom_status st = loom_sequences_load(&tr, "moving-fashion-mnist", "train", 6, &err);
    CHECK("moving-fashion-mnist loads", st == LOOM_OK, "%s", st ? err.msg : "");
    if (!st) {
        uint8_t *few = malloc(2 * 6 * 4096);
        loom_images_example(&tr, 0, few), loom_images_example(&tr, 1, few + 6 * 4096);
        double first, last;
        test_train(m, few, NULL, 2, 150, 1e-2f, 0, &first, &last);
        CHECK("convlstm overfits 2 sequences (loss at least 35% down)", last < 0.65 * first,
              "loss %.4f -> %.4f", first, last);
        free(few);
        loom_images_free(&tr);
    }
    loom_model_free(m);
    loom_model_free(m1), loom_model_free(m2);
    free(seqs);
}

static void test_generator(void) {
    loom_images tr, te;
    loom_error err;
    if (loom_sequences_load(&tr, "moving-fashion-mnist", "train", 20, &err) ||
        loom_sequences_load(&te, "moving-fashion-mnist", "test", 0, &err)) {
        CHECK("moving-fashion-mnist: both splits load", 0, "%s", err.msg);
        return;
    }
    CHECK("moving-fashion-mnist: 100000 train / 10000 test sequences of 20 64x64 frames",
          tr.n == 100000 && te.n == 10000 && te.t == 20 && tr.t == 20 && tr.h == 64 && tr.w == 64 && !tr.pixels,
          "%zu / %zu, t %zu", tr.n, te.n, te.t);
    const size_t EX = 20 * 4096;
    uint8_t *a = malloc(EX), *b = malloc(EX), *c = malloc(EX);
    loom_images_example(&te, 123, a);
    loom_images_example(&te, 123, b);
    loom_images_example(&te, 124, c);
    CHECK("generator: the same index gives the same sequence", memcmp(a, b, EX) == 0, "differs");
    CHECK("generator: another index another sequence", memcmp(a, c, EX) != 0, "same");
    loom_images_example(&tr, 123, c);
    CHECK("generator: train and test differ", memcmp(a, c, EX) != 0, "same");
    /* a fixed test set: a checksum of sequence 0 pins it across machines and versions */
    uint64_t h = 1469598103934665603ULL;
    loom_images_example(&te, 0, b);
    for (size_t i = 0; i < EX; i++) h = (h ^ b[i]) * 1099511628211ULL;
    CHECK("generator: test sequence 0 is the documented one (FNV-1a c3b4509f8808fa0d)",
          h == 0xc3b4509f8808fa0dULL, "FNV-1a %016llx", (unsigned long long)h);
    /* in range: every frame shows both items whole (the inked area is at
     * least the larger item's), consecutive frames move by 3-5 px per item */
    int ok = 1;
    for (size_t k = 0; k < 50; k++) {
        loom_images_example(&tr, k * 997, a);
        for (size_t t = 0; t < 20; t++) {
            size_t ink = 0, rows = 0;
            for (size_t i = 0; i < 4096; i++) ink += a[t * 4096 + i] > 0;
            for (size_t y = 0; y < 64; y++) {
                size_t r = 0;
                for (size_t x = 0; x < 64; x++) r += a[t * 4096 + y * 64 + x] > 0;
                rows += r > 0;
            }
            ok &= ink > 0 && rows <= 56;
        }
        ok &= memcmp(a, a + 4096, 4096) != 0; /* it moves */
    }
    CHECK("generator: frames hold items inside the canvas and they move", ok, "no");
    /* a gather keeps generating the chosen sequences */
    loom_images g;
    size_t idx[2] = {124, 5};
    loom_images_gather(&g, &te, idx, 2, &err);
    loom_images_example(&g, 0, b);
    loom_images_example(&te, 124, c);
    CHECK("generator: a gathered set makes the same sequences", g.gen && memcmp(b, c, EX) == 0, "differs");
    loom_images_free(&g);
    free(a), free(b), free(c);
    loom_images_free(&tr), loom_images_free(&te);
}

/* a .npy file with header dict `dict` and `data` bytes of payload */
static void write_npy(const char *path, const char *dict, size_t data, int version) {
    FILE *f = fopen(path, "wb");
    char hdr[256];
    size_t pre = version == 1 ? 10 : 12, len = strlen(dict), total = (pre + len + 1 + 63) / 64 * 64;
    snprintf(hdr, sizeof hdr, "%s", dict);
    for (size_t i = len; i < total - pre - 1; i++) hdr[i] = ' ';
    hdr[total - pre - 1] = '\n';
    size_t hl = total - pre;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(version, f), fputc(0, f);
    fputc((int)(hl & 255), f), fputc((int)(hl >> 8), f);
    if (version != 1) fputc(0, f), fputc(0, f);
    fwrite(hdr, 1, hl, f);
    for (size_t i = 0; i < data; i++) fputc((int)(i * 7 % 256), f);
    fclose(f);
}

static void npy_case(const char *name, const char *dict, size_t data, int version, loom_status want,
                     const char *needle) {
    const char *path = "/tmp/loom_test_convlstm.npy";
    write_npy(path, dict, data, version);
    loom_images im;
    loom_error err = {0};
    loom_status st = loom_sequences_load(&im, path, "test", 0, &err);
    CHECK(name, st == want && (!needle || (strstr(err.msg, needle) && strstr(err.msg, path))), "status %d: %s",
          (int)st, err.msg);
    if (!st) loom_images_free(&im);
    unlink(path);
}

static void test_npy(void) {
    const char *good = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 4, 5), }";
    write_npy("/tmp/loom_test_convlstm.npy", good, 120, 1);
    loom_images im;
    loom_error err;
    loom_status st = loom_sequences_load(&im, "/tmp/loom_test_convlstm.npy", "test", 3, &err);
    /* (T, N, H, W) -> (N, T, H, W): sequence 1, frame 2, pixel 3 is file byte ((2 N + 1) H W + 3) */
    CHECK("npy: a good file, transposed to (N, T, H, W)",
          st == LOOM_OK && im.n == 2 && im.t == 3 && im.h == 4 && im.w == 5 &&
              im.pixels[(1 * 3 + 2) * 20 + 3] == (uint8_t)(((2 * 2 + 1) * 20 + 3) * 7 % 256),
          "%s", st ? err.msg : "wrong layout");
    if (!st) loom_images_free(&im);
    npy_case("npy: version 2 header reads", good, 120, 2, LOOM_OK, NULL);
    npy_case("npy: wrong dtype is refused", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 4, 5), }",
             480, 1, LOOM_EINVAL, "dtype");
    npy_case("npy: wrong rank is refused", "{'descr': '|u1', 'fortran_order': False, 'shape': (6, 4, 5), }", 120, 1,
             LOOM_EINVAL, "rank 3");
    npy_case("npy: truncated data is refused", good, 119, 1, LOOM_EINVAL, "truncated");
    npy_case("npy: a header that lies (more data) is refused", good, 121, 1, LOOM_EINVAL, "lies");
    npy_case("npy: fortran order is refused", "{'descr': '|u1', 'fortran_order': True, 'shape': (3, 2, 4, 5), }",
             120, 1, LOOM_EINVAL, "fortran");
    npy_case("npy: no shape is refused", "{'descr': '|u1', 'fortran_order': False}", 120, 1, LOOM_EINVAL, "shape");
    FILE *f = fopen("/tmp/loom_test_convlstm.npy", "wb");
    fputs("garbage that is no npy file", f);
    fclose(f);
    st = loom_sequences_load(&im, "/tmp/loom_test_convlstm.npy", "test", 0, &err);
    CHECK("npy: garbage is refused", st == LOOM_EINVAL && strstr(err.msg, "magic"), "%s", err.msg);
    unlink("/tmp/loom_test_convlstm.npy");
    write_npy("/tmp/loom_test_convlstm.npy", good, 120, 1);
    st = loom_sequences_load(&im, "/tmp/loom_test_convlstm.npy", "test", 20, &err);
    CHECK("npy: frames other than the model's are refused", st == LOOM_EINVAL && strstr(err.msg, "needs 20"), "%s",
          err.msg);
    unlink("/tmp/loom_test_convlstm.npy");
    st = loom_sequences_load(&im, "/tmp/loom_no_such_file.npy", "test", 0, &err);
    CHECK("npy: a missing file is bad input naming it", st == LOOM_EINVAL && strstr(err.msg, "no_such"), "%d %s",
          (int)st, err.msg);
}

static void test_pngseq(void) {
    char dir[] = "/tmp/loom_pngseq_XXXXXX";
    if (mkdtemp(dir) == NULL) return;
    uint8_t img[6 * 4];
    char p[256];
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/seq%d", dir, s);
        mkdir(p, 0777);
        for (int t = 0; t < 3; t++) {
            for (int i = 0; i < 24; i++) img[i] = (uint8_t)(s * 100 + t * 10 + i);
            snprintf(p, sizeof p, "%s/seq%d/%03d.png", dir, s, t);
            loom_png_write_gray(p, img, 4, 6, NULL);
        }
    }
    loom_images im;
    loom_error err;
    loom_status st = loom_sequences_load(&im, dir, "test", 0, &err);
    CHECK("png sequences: 2 folders of 3 frames, in order",
          st == LOOM_OK && im.n == 2 && im.t == 3 && im.h == 4 && im.w == 6 && im.pixels[(1 * 3 + 2) * 24 + 5] == 125,
          "%s", st ? err.msg : "wrong layout");
    if (!st) loom_images_free(&im);
    snprintf(p, sizeof p, "%s/seq1/003.png", dir);
    loom_png_write_gray(p, img, 4, 6, NULL);
    st = loom_sequences_load(&im, dir, "test", 0, &err);
    CHECK("png sequences: sequences of different lengths are refused",
          st == LOOM_EINVAL && strstr(err.msg, dir) && strstr(err.msg, "frames"), "%s", err.msg);
    snprintf(p, sizeof p, "%s/seq1/003.png", dir);
    loom_png_write_gray(p, img, 6, 4, NULL);
    st = loom_sequences_load(&im, dir, "test", 0, &err);
    CHECK("png sequences: frames of mixed sizes are refused", st != LOOM_OK && strstr(err.msg, "seq1/003.png"),
          "%d %s", (int)st, err.msg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK("png sequences: cleanup", system(cmd) == 0, "rm failed");
}

/* the point estimates of a softmax256 output: with out.weight 0 every pixel's
 * distribution is out.bias's, here 0.45 on 0, 0.1 on 10, 0.45 on 200, so the
 * mean is (10 0.1 + 200 0.45) / 255 and the median 10 / 255 (the cumulative
 * 0.45 at 0 is below one half); a Bernoulli output has no median */
static void test_points(void) {
    loom_config cfg = tiny();
    cfg.softmax256 = 1;
    loom_model *m = test_model(&cfg, 1, 3, 0.2f);
    const loom_param *w = loom_model_param(m, "out.weight"), *b = loom_model_param(m, "out.bias");
    memset(m->w + w->offset, 0, w->size * sizeof(float));
    for (size_t j = 0; j < b->size / 256; j++)
        for (size_t v = 0; v < 256; v++)
            m->w[b->offset + 256 * j + v] = v == 0 || v == 200 ? logf(0.45f) : v == 10 ? logf(0.1f) : -40.0f;
    const size_t n = 2, PF = loom_nll_dims(&cfg);
    uint8_t *seqs = malloc(n * loom_example_size(&cfg));
    test_random_images_seed(seqs, n * loom_example_size(&cfg), 9);
    float *pm = malloc(n * PF * sizeof *pm), *pd = malloc(n * PF * sizeof *pd);
    loom_status s1 = loom_model_predict(m, pm, seqs, n, n, LOOM_POINT_MEAN, NULL);
    loom_status s2 = loom_model_predict(m, pd, seqs, n, n, LOOM_POINT_MEDIAN, NULL);
    size_t bad = 0;
    for (size_t i = 0; i < n * PF; i++)
        bad += fabsf(pm[i] - 91.0f / 255.0f) > 1e-5f || pd[i] != 10.0f / 255.0f;
    CHECK("convlstm softmax256: mean and median frames of a known distribution", !s1 && !s2 && bad == 0,
          "status %d %d, %zu of %zu wrong (mean %.6f median %.6f)", s1, s2, bad, n * PF, pm[0], pd[0]);
    loom_model_free(m);
    loom_config c2 = tiny();
    m = test_model(&c2, 1, 3, 0.2f);
    loom_error e;
    const loom_status st = loom_model_predict(m, pd, seqs, n, n, LOOM_POINT_MEDIAN, &e);
    CHECK("convlstm Bernoulli: no median frame (LOOM_EINVAL)", st == LOOM_EINVAL && strstr(e.msg, "softmax256"),
          "status %d", st);
    loom_model_free(m);
    free(seqs), free(pm), free(pd);
}

int main(void) {
    test_points();
    test_grads(tiny(), "");
    loom_config v = tiny();
    v.softmax256 = 1;
    test_grads(v, " (softmax256)");
    v = tiny();
    v.peephole = 1;
    test_grads(v, " (peepholes)");
    v.softmax256 = 1;
    test_grads(v, " (softmax256, peepholes)");
    v = tiny();
    v.feedback = 1;
    test_grads(v, " (feedback)");
    v.peephole = 1, v.layers = 3;
    test_grads(v, " (feedback, peepholes, 3 layers)");
    v = tiny();
    v.frame_loss = LOOM_FRAME_L1, v.feedback = 1;
    test_grads(v, " (L1 loss, feedback)");
    v.frame_loss = LOOM_FRAME_MSE;
    test_grads(v, " (squared error loss, feedback)");
    test_threads_and_overfit();
    test_generator();
    test_npy();
    test_pngseq();
    CHECK_DONE();
}
