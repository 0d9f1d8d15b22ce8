/* The public API (include/loom/model.h): contexts and their BLAS scoping,
 * models made from JSON or loaded, NLLs, sampling, training steps,
 * checkpoints, and the argument checks of each. */
#include "check.h"
#include "context.h"
#include "io/checkpoint.h"
#include "loom.h"
#include "models/model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWLSTM "{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 6, \"layers\": 1, " \
                "\"hidden\": 4, \"classes\": 0}}"
#define COND "{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 6, \"layers\": 1, " \
             "\"hidden\": 4, \"classes\": 3}}"
#define DRAW "{\"model\": {\"name\": \"draw\", \"height\": 8, \"width\": 8, \"layers\": 1, " \
             "\"hidden\": 8, \"classes\": 0, \"zdim\": 3, \"steps_draw\": 3, \"read_n\": 2, " \
             "\"write_n\": 2, \"attention\": true}}"

static void images(uint8_t *x, size_t n, uint64_t seed) {
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(loom_rng_below(&r, 4) * 80);
}

static void test_context(void) {
    loom_context *c = NULL;
    loom_error e = {{0}};
    CHECK("context: -1 threads rejected", loom_context_create(&c, -1, &e) == LOOM_EINVAL && !c &&
          strstr(e.msg, "thread"), "%s", e.msg);
    CHECK("context: 0 threads = every CPU", loom_context_create(&c, 0, &e) == LOOM_OK &&
          loom_context_threads(c) == (int)sysconf(_SC_NPROCESSORS_ONLN), "%d", loom_context_threads(c));
    CHECK("context: 1 BLAS thread by default", loom_context_blas_threads(c) == 1, "%d",
          loom_context_blas_threads(c));
    CHECK("context: BLAS threads -1 rejected",
          loom_context_set_blas_threads(c, -1, &e) == LOOM_EINVAL && loom_context_blas_threads(c) == 1, "%s", e.msg);

    /* enter applies the policy, leave restores the caller's count */
    openblas_set_num_threads(2);
    int saved = loom_blas_enter(c);
    int inside = openblas_get_num_threads();
    loom_blas_leave(c, saved);
    CHECK("blas scope: 1 thread inside a call, the caller's 2 after",
          inside == 1 && saved == 2 && openblas_get_num_threads() == 2, "inside %d saved %d after %d",
          inside, saved, openblas_get_num_threads());
    loom_context_set_blas_threads(c, LOOM_BLAS_KEEP, &e);
    saved = loom_blas_enter(c);
    inside = openblas_get_num_threads();
    loom_blas_leave(c, saved);
    CHECK("blas scope: LOOM_BLAS_KEEP leaves the caller's count inside and after",
          inside == 2 && openblas_get_num_threads() == 2, "inside %d after %d", inside,
          openblas_get_num_threads());
    loom_context_free(c);
    openblas_set_num_threads(1);
}

static void test_create(loom_context *ctx) {
    loom_model *m = NULL;
    loom_error e = {{0}};
    CHECK("create_json: not JSON", loom_model_create_json(&m, ctx, "{", 1, &e) == LOOM_EFORMAT && !m,
          "%s", e.msg);
    CHECK("create_json: unknown key named",
          loom_model_create_json(&m, ctx, "{\"model\": {\"name\": \"rowlstm\", \"colour\": 1}}", 1, &e) ==
              LOOM_EFORMAT && strstr(e.msg, "colour"), "%s", e.msg);
    CHECK("create_json: unknown model", loom_model_create_json(&m, ctx,
          "{\"model\": {\"name\": \"nope\", \"height\": 8, \"width\": 6, \"layers\": 1, \"hidden\": 4, "
          "\"classes\": 0}}", 1, &e) != LOOM_OK && strstr(e.msg, "nope"), "%s", e.msg);
    CHECK("create_json: NULL context", loom_model_create_json(&m, NULL, ROWLSTM, 1, &e) == LOOM_EINVAL,
          "%s", e.msg);
    CHECK("create_json: tiny rowlstm", loom_model_create_json(&m, ctx, ROWLSTM, 1, &e) == LOOM_OK && m,
          "%s", e.msg);
    if (!m) return;
    CHECK("accessors: name, size, classes", strcmp(loom_model_name(m), "rowlstm") == 0 &&
          loom_model_height(m) == 8 && loom_model_width(m) == 6 && loom_model_num_classes(m) == 0 &&
          loom_model_nll_bound(m) == NULL && loom_model_num_frames(m) == 0, "%s", loom_model_name(m));
    size_t np, nf;
    loom_param tab[LOOM_MAX_PARAMS];
    loom_model_layout(&m->cfg, tab, &np, &nf, NULL);
    CHECK("accessors: parameter count is the layout's", loom_model_num_params(m) == nf && nf > 0,
          "%zu vs %zu", loom_model_num_params(m), nf);
    /* the same seed initialises the same weights; the config JSON recreates the model */
    char *json = loom_model_config_json(m);
    loom_model *m2 = NULL;
    loom_status st = json ? loom_model_create_json(&m2, ctx, json, 1, &e) : LOOM_ENOMEM;
    CHECK("config_json: recreates the model, same seed same weights",
          st == LOOM_OK && loom_model_num_params(m2) == nf && memcmp(m->w, m2->w, nf * sizeof *m->w) == 0,
          "%s", e.msg);
    loom_model_free(m2);
    loom_model_create_json(&m2, ctx, ROWLSTM, 2, &e);
    CHECK("create_json: another seed, other weights", memcmp(m->w, m2->w, nf * sizeof *m->w) != 0, "same");
    free(json);
    loom_model_free(m2);
    loom_model_free(m);
    CHECK("version: loom_version() is LOOM_VERSION", strcmp(loom_version(), LOOM_VERSION) == 0, "%s",
          loom_version());
}

static void test_eval_sample(loom_context *ctx, loom_context *ctx1) {
    loom_model *m, *m1;
    loom_error e = {{0}};
    loom_model_create_json(&m, ctx, ROWLSTM, 3, &e);
    loom_model_create_json(&m1, ctx1, ROWLSTM, 3, &e);
    const size_t n = 5, HW = 48;
    uint8_t x[5 * 48];
    images(x, n * HW, 9);
    double nll[5], nll1[5], bpd;
    CHECK("eval_nll: runs", loom_model_eval_nll(m, nll, x, NULL, n, &e) == LOOM_OK, "%s", e.msg);
    loom_model_eval_nll(m1, nll1, x, NULL, n, &e);
    double s = 0, d = 0;
    for (size_t i = 0; i < n; i++) s += nll[i], d = fmax(d, fabs(nll[i] - nll1[i]));
    CHECK("eval_nll: 1 thread and all threads agree", d < 1e-6 * s, "max diff %g", d);
    CHECK("eval_bpd: the mean NLL in bits per pixel",
          loom_model_eval_bpd(m, &bpd, x, NULL, n, &e) == LOOM_OK && fabs(bpd - s / n / log(2.0) / HW) < 1e-12,
          "%g vs %g", bpd, s / n / log(2.0) / HW);
    CHECK("eval_bpd: an untrained model is near 8 bits", bpd > 7 && bpd < 9, "%g", bpd);
    openblas_set_num_threads(2);
    loom_status st2 = loom_model_eval_nll(m, nll1, x, NULL, n, &e);
    int after_eval = openblas_get_num_threads();
    uint8_t tmp[2 * 48];
    st2 = st2 ? st2 : loom_model_generate(m, tmp, NULL, 2, 1.0f, 7, &e);
    int after_gen = openblas_get_num_threads();
    st2 = st2 ? st2 : loom_model_gradient(m, &bpd, x, NULL, n, &e);
    CHECK("blas scope: eval, generate and gradient leave the caller's BLAS threads as they were",
          st2 == LOOM_OK && after_eval == 2 && after_gen == 2 && openblas_get_num_threads() == 2,
          "%d %d %d", after_eval, after_gen, openblas_get_num_threads());
    openblas_set_num_threads(1);
    CHECK("eval: n = 0 rejected", loom_model_eval_nll(m, nll, x, NULL, 0, &e) == LOOM_EINVAL, "%s", e.msg);
    CHECK("eval: NULL images rejected", loom_model_eval_bpd(m, &bpd, NULL, NULL, 1, &e) == LOOM_EINVAL,
          "%s", e.msg);

    uint8_t a[5 * 48], b[5 * 48], c[3 * 48];
    CHECK("generate: runs", loom_model_generate(m, a, NULL, n, 1.0f, 7, &e) == LOOM_OK, "%s", e.msg);
    loom_model_generate(m1, b, NULL, n, 1.0f, 7, &e);
    CHECK("generate: same seed, same images on 1 thread", memcmp(a, b, sizeof a) == 0, "differ");
    loom_model_generate(m, c, NULL, 3, 1.0f, 7, &e);
    CHECK("generate: image k does not depend on n", memcmp(a, c, sizeof c) == 0, "differ");
    loom_model_generate(m, b, NULL, n, 1.0f, 8, &e);
    CHECK("generate: another seed, other images", memcmp(a, b, sizeof a) != 0, "same");
    CHECK("generate: temperature 0 rejected", loom_model_generate(m, a, NULL, n, 0.0f, 7, &e) == LOOM_EINVAL &&
          strstr(e.msg, "temperature"), "%s", e.msg);
    CHECK("generate_frames: not a staged model",
          loom_model_generate_frames(m, a, b, NULL, 1, 1.0f, 1, &e) == LOOM_EINVAL && strstr(e.msg, "stages"),
          "%s", e.msg);

    /* labels: required by a conditional model, range-checked, ignored otherwise */
    int32_t lab[5] = {0, 1, 2, 0, 1}, bad[5] = {0, 1, 3, 0, 1};
    CHECK("labels: ignored by an unconditional model",
          loom_model_eval_nll(m, nll1, x, bad, n, &e) == LOOM_OK && memcmp(nll, nll1, sizeof nll) == 0, "%s", e.msg);
    loom_model *mc;
    loom_model_create_json(&mc, ctx, COND, 1, &e);
    CHECK("labels: a conditional model needs them",
          loom_model_generate(mc, a, NULL, n, 1.0f, 1, &e) == LOOM_EINVAL && strstr(e.msg, "labels"), "%s", e.msg);
    CHECK("labels: out of range rejected", loom_model_eval_nll(mc, nll, x, bad, n, &e) == LOOM_EINVAL, "%s", e.msg);
    CHECK("labels: a conditional model samples with them",
          loom_model_generate(mc, a, lab, n, 1.0f, 1, &e) == LOOM_OK, "%s", e.msg);
    loom_model_free(mc);
    loom_model_free(m1);
    loom_model_free(m);

    /* a staged model: DRAW's canvas, frame by frame */
    loom_model *dm;
    CHECK("draw: create", loom_model_create_json(&dm, ctx, DRAW, 1, &e) == LOOM_OK, "%s", e.msg);
    if (dm) {
        size_t T = loom_model_num_frames(dm);
        uint8_t img[2 * 64], img2[2 * 64], *fr = malloc(2 * T * 64);
        CHECK("draw: frames = glimpses, NLL labelled a bound", T == 3 && loom_model_nll_bound(dm) != NULL, "%zu", T);
        CHECK("draw: generate_frames", loom_model_generate_frames(dm, img, fr, NULL, 2, 1.0f, 4, &e) == LOOM_OK,
              "%s", e.msg);
        loom_model_generate(dm, img2, NULL, 2, 1.0f, 4, &e);
        CHECK("draw: generate_frames draws what generate draws", memcmp(img, img2, sizeof img) == 0, "differ");
        CHECK("draw: frames NULL rejected", loom_model_generate_frames(dm, img, NULL, NULL, 2, 1.0f, 4, &e) == LOOM_EINVAL,
              "%s", e.msg);
        free(fr);
        loom_model_free(dm);
    }
}

static void test_train_save(loom_context *ctx) {
    loom_model *m, *other;
    loom_error e = {{0}};
    loom_model_create_json(&m, ctx, ROWLSTM, 5, &e);
    loom_model_create_json(&other, ctx, ROWLSTM, 5, &e);
    const size_t n = 4, HW = 48;
    uint8_t x[4 * 48];
    images(x, n * HW, 11);
    loom_adam_opts o;
    loom_adam_opts_default(&o);
    CHECK("adam opts: the defaults of loom train", o.lr == 1e-3 && o.beta1 == 0.9 && o.beta2 == 0.999 &&
          o.eps == 1e-8 && o.clip == 1.0, "lr %g", o.lr);
    loom_optimizer *opt = NULL;
    o.lr = -1;
    CHECK("optimizer: lr -1 rejected", loom_optimizer_create(&opt, m, &o, &e) == LOOM_EINVAL && !opt, "%s", e.msg);
    o.lr = 3e-2;
    o.clip = 1e-3; /* below any gradient norm here, so clipping always acts (Adam is scale-free) */
    CHECK("optimizer: create", loom_optimizer_create(&opt, m, &o, &e) == LOOM_OK && opt, "%s", e.msg);
    double loss0 = 0, loss = 0, gnorm = 0;
    CHECK("gradient: finite loss", loom_model_gradient(m, &loss0, x, NULL, n, &e) == LOOM_OK && isfinite(loss0),
          "%s", e.msg);
    float w0 = m->w[0];
    /* the clip bounds the gradient the update sees; the norm reported is before clipping */
    CHECK("optimizer_step: applies an update", loom_optimizer_step(opt, m, &gnorm, &e) == LOOM_OK &&
          m->w[0] != w0 && gnorm > 0 && loom_optimizer_steps(opt) == 1, "%s", e.msg);
    double g2 = 0;
    for (size_t i = 0; i < m->nfloats; i++) g2 += (double)m->g[i] * m->g[i];
    CHECK("optimizer_step: the gradient is clipped to the clip norm",
          gnorm > 1e-2 && fabs(sqrt(g2) - 1e-3) < 1e-7, "norm %g after, %g before", sqrt(g2), gnorm);
    CHECK("optimizer_step: another model's optimizer rejected",
          loom_optimizer_step(opt, other, NULL, &e) == LOOM_EINVAL && loom_train_step(other, opt, &loss, x, NULL, n, &e) == LOOM_EINVAL,
          "%s", e.msg);
    m->g[3] = NAN;
    float w3 = m->w[3];
    CHECK("optimizer_step: a NaN gradient skips the update",
          loom_optimizer_step(opt, m, NULL, &e) == LOOM_ENAN && m->w[3] == w3 && loom_optimizer_steps(opt) == 1,
          "%s", e.msg);
    for (int s = 0; s < 30; s++) loom_train_step(m, opt, &loss, x, NULL, n, &e);
    double after;
    loom_model_gradient(m, &after, x, NULL, n, &e);
    CHECK("train_step: 30 steps on one batch lower its loss", after < loss0 - 0.5 && loom_optimizer_steps(opt) == 31,
          "%g -> %g after %ld", loss0, after, loom_optimizer_steps(opt));

    /* save: a loom checkpoint, loaded back bit for bit */
    char dir[] = "/tmp/loom_api_XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[128], miss[128];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    snprintf(miss, sizeof miss, "%s/missing", dir);
    CHECK("save: writes", loom_model_save(m, opt, path, &e) == LOOM_OK, "%s", e.msg);
    CHECK("save: another model's optimizer rejected", loom_model_save(other, opt, path, &e) == LOOM_EINVAL, "%s", e.msg);
    loom_model *r = NULL;
    double n1[4], n2[4];
    CHECK("load: the run directory", loom_model_load(&r, ctx, dir, &e) == LOOM_OK && r, "%s", e.msg);
    if (r) {
        loom_model_eval_nll(m, n1, x, NULL, n, &e);
        loom_model_eval_nll(r, n2, x, NULL, n, &e);
        CHECK("load: same weights, same NLL", memcmp(m->w, r->w, m->nfloats * sizeof *m->w) == 0 &&
              memcmp(n1, n2, sizeof n1) == 0, "differ");
        loom_model_free(r);
    }
    loom_model *c;
    float *am = NULL, *av = NULL;
    loom_train_state ts;
    loom_train_opts to;
    loom_status st = loom_checkpoint_load(path, 1, &c, &am, &av, &ts, &to, &e);
    int nonzero = 0;
    for (size_t i = 0; !st && i < c->nfloats; i++) nonzero += am[i] != 0 && av[i] > 0;
    CHECK("save: step, lr and Adam moments in the checkpoint",
          st == LOOM_OK && ts.step == 31 && ts.adam_t == 31 && to.lr == 3e-2 && nonzero > 0, "%s step %ld", e.msg, ts.step);
    if (!st) loom_model_free(c);
    free(am), free(av);
    CHECK("load: a missing path named", loom_model_load(&r, ctx, miss, &e) != LOOM_OK && !r && strstr(e.msg, "missing"),
          "%s", e.msg);
    CHECK("load: NULL context", loom_model_load(&r, NULL, dir, &e) == LOOM_EINVAL, "%s", e.msg);
    remove(path);
    rmdir(dir);
    loom_optimizer_free(opt);
    loom_model_free(other);
    loom_model_free(m);
}

#define CONVLSTM "{\"model\": {\"name\": \"convlstm\", \"height\": 8, \"width\": 8, \"layers\": 1, " \
                 "\"hidden\": 3, \"classes\": 0, \"frames_in\": 3, \"frames_out\": 2, \"kernel\": 3, " \
                 "\"patch\": 2}}"
#define RENET "{\"model\": {\"name\": \"renet\", \"height\": 8, \"width\": 8, \"channels\": 1, " \
              "\"layers\": 1, \"hidden\": 3, \"classes\": 4, \"cell\": \"lstm\", \"patch\": 2}}"

/* the sequence model through the public API: the internal predictions,
 * the same bits on 1 and 2 threads, and the argument checks */
static void test_forecast(loom_context *ctx, loom_context *ctx1) {
    loom_error e = {{0}};
    loom_model *m = NULL, *m1 = NULL, *still = NULL;
    CHECK("forecast: a convlstm from JSON", loom_model_create_json(&m, ctx, CONVLSTM, 3, &e) == LOOM_OK &&
          loom_model_create_json(&m1, ctx1, CONVLSTM, 3, &e) == LOOM_OK, "%s", e.msg);
    if (!m || !m1) return;
    CHECK("forecast: frames in and out", loom_model_frames_in(m) == 3 && loom_model_frames_out(m) == 2,
          "%zu %zu", loom_model_frames_in(m), loom_model_frames_out(m));
    enum { N = 3, FR = 64, EX = 5 * FR, F = 5 };
    uint8_t seqs[N * EX], a[N * F * FR], b[N * F * FR], want[N * F * FR];
    float p[N * 2 * FR], q[N * 2 * FR];
    images(seqs, sizeof seqs, 11);
    CHECK("forecast: 5 frames past a horizon of 2", loom_model_forecast(m, a, seqs, N, F, &e) == LOOM_OK, "%s", e.msg);
    CHECK("forecast: 1 thread", loom_model_forecast(m1, b, seqs, N, F, &e) == LOOM_OK, "%s", e.msg);
    loom_model_predict_frames(m, want, seqs, N, F, LOOM_POINT_MEAN, &e);
    CHECK("forecast: the model's own predict_frames", memcmp(a, want, sizeof a) == 0, "differ");
    CHECK("forecast: the same bits on 1 and 2 threads", memcmp(a, b, sizeof a) == 0, "differ");
    CHECK("forecast_probs", loom_model_forecast_probs(m, p, seqs, N, &e) == LOOM_OK, "%s", e.msg);
    loom_model_predict(m, q, seqs, N, N, LOOM_POINT_MEAN, &e);
    int same = memcmp(p, q, sizeof p) == 0, rounded = 1;
    for (size_t k = 0; k < N; k++)
        for (size_t i = 0; i < 2 * FR; i++)
            rounded &= a[k * F * FR + i] == (uint8_t)lrintf(255.0f * p[k * 2 * FR + i]);
    CHECK("forecast_probs: the model's own predict", same, "differ");
    CHECK("forecast: its first frames_out frames are round(255 p)", rounded, "differ");
    CHECK("forecast: F = 0 rejected", loom_model_forecast(m, a, seqs, N, 0, &e) == LOOM_EINVAL &&
          strstr(e.msg, "F = 0"), "%s", e.msg);
    CHECK("forecast: NULL output rejected", loom_model_forecast(m, NULL, seqs, N, F, &e) == LOOM_EINVAL, "%s", e.msg);
    CHECK("forecast_probs: n = 0 rejected", loom_model_forecast_probs(m, p, seqs, 0, &e) == LOOM_EINVAL, "%s", e.msg);
    loom_model_create_json(&still, ctx, ROWLSTM, 1, &e);
    CHECK("forecast: a still-image model refused, named",
          loom_model_forecast(still, a, seqs, 1, 1, &e) == LOOM_EINVAL && strstr(e.msg, "rowlstm") &&
          loom_model_frames_out(still) == 0, "%s", e.msg);
    CHECK("class_logits: a model that does not classify refused",
          loom_model_num_logits(m) == 0 && loom_model_class_logits(m, p, NULL, seqs, 1, &e) == LOOM_EINVAL &&
          strstr(e.msg, "does not classify"), "%s", e.msg);
    loom_model_free(still);
    loom_model_free(m1);
    loom_model_free(m);
}

/* the classifier through the public API: the internal logits and features */
static void test_classifier(loom_context *ctx) {
    loom_error e = {{0}};
    loom_model *m = NULL;
    CHECK("classifier: a renet from JSON", loom_model_create_json(&m, ctx, RENET, 5, &e) == LOOM_OK, "%s", e.msg);
    if (!m) return;
    const size_t P = loom_model_num_logits(m), D = loom_model_feature_size(m);
    CHECK("classifier: 4 logits, some features", P == 4 && D > 0, "%zu %zu", P, D);
    enum { N = 5 };
    uint8_t x[N * 64];
    images(x, sizeof x, 12);
    float *l = malloc(N * P * sizeof *l), *f = malloc(N * D * sizeof *f);
    float *l2 = malloc(N * P * sizeof *l2), *f2 = malloc(N * D * sizeof *f2);
    CHECK("class_logits", loom_model_class_logits(m, l, f, x, N, &e) == LOOM_OK, "%s", e.msg);
    loom_model_classify(m, l2, f2, x, N, N, &e);
    CHECK("class_logits: the model's own logits and features",
          memcmp(l, l2, N * P * sizeof *l) == 0 && memcmp(f, f2, N * D * sizeof *f) == 0, "differ");
    int varies = 0;
    for (size_t i = 1; i < N * P; i++) varies |= l[i] != l[0];
    CHECK("class_logits: not all equal", varies, "constant");
    CHECK("class_logits: logits only", loom_model_class_logits(m, l2, NULL, x, N, &e) == LOOM_OK &&
          memcmp(l, l2, N * P * sizeof *l) == 0, "%s", e.msg);
    CHECK("class_logits: both outputs NULL rejected",
          loom_model_class_logits(m, NULL, NULL, x, N, &e) == LOOM_EINVAL, "%s", e.msg);
    free(l), free(f), free(l2), free(f2);
    loom_model_free(m);
}

int main(void) {
    test_context();
    loom_context *ctx, *ctx1;
    loom_context_create(&ctx, 2, NULL);
    loom_context_create(&ctx1, 1, NULL);
    test_create(ctx);
    test_eval_sample(ctx, ctx1);
    test_train_save(ctx);
    test_forecast(ctx, ctx1);
    test_classifier(ctx);
    loom_context_free(ctx1);
    loom_context_free(ctx);
    CHECK_DONE();
}
