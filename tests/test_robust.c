/* Robustness (issue 5, docs/robustness.md): memory estimates with overflow
 * checks, a checkpoint whose config describes a huge model, and the NaN
 * guard of the checkpoint writer (weights and Adam moments). */
#include "check.h"
#include "testutil.h"
#include "io/checkpoint.h"
#include "loom.h"
#include "models/model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static bool same_file(const char *path, const uint8_t *bytes, size_t n) {
    size_t m = 0;
    uint8_t *now = test_read_file(path, &m);
    bool same = now && m == n && memcmp(now, bytes, n) == 0;
    free(now);
    return same;
}

static void test_memory_estimate(void) {
    loom_config small = {.model = "rowlstm", .height = 28, .width = 28, .layers = 4, .hidden = 32};
    size_t b = 0;
    loom_error err;
    CHECK("memory: estimate the bench config",
          loom_model_train_bytes(&small, 2, 32, &b, &err) == LOOM_OK, "%s", err.msg);
    CHECK("memory: the bench config needs between 10 MB and 2 GB", b > (10u << 20) && b < (2u << 30),
          "%zu bytes", b);
    CHECK("memory: the bench config fits", loom_memory_check(b, "x", &err) == LOOM_OK, "%s", err.msg);

    loom_config huge = small;
    huge.hidden = 4096, huge.layers = 40;
    size_t hb = 0;
    loom_model_train_bytes(&huge, 2, 32, &hb, &err);
    CHECK("memory: --hidden 4096 --layers 40 needs more than 50 GB", hb > (size_t)50 << 30,
          "%zu bytes", hb);
    loom_status st = loom_memory_check(hb, "--hidden 4096 --layers 40", &err);
    CHECK("memory: ... and is refused with a clear message",
          st == LOOM_EINVAL && strstr(err.msg, "needs about") && strstr(err.msg, "GB"), "%d %s",
          (int)st, err.msg);

    /* the largest sizes the flags allow: the estimate saturates instead of wrapping */
    loom_config most = {.model = "rowlstm", .height = 4096, .width = 4096, .layers = 50,
                        .hidden = 4096};
    size_t mb = 0;
    loom_model_train_bytes(&most, 256, 65536, &mb, &err);
    CHECK("memory: the largest flag values give a huge estimate, not a wrapped small one",
          mb > ((size_t)1 << 50), "%zu bytes", mb);
    CHECK("memory: an overflowing size is refused",
          loom_memory_check(SIZE_MAX, "x", &err) == LOOM_EINVAL && strstr(err.msg, "overflows"),
          "%s", err.msg);
    loom_config bad = small;
    bad.layers = 0;
    CHECK("memory: an invalid config is an error",
          loom_model_train_bytes(&bad, 1, 1, &mb, &err) == LOOM_EINVAL && mb == SIZE_MAX, "%s",
          err.msg);

    setenv("LOOM_MEM_LIMIT_MB", "1", 1);
    CHECK("memory: LOOM_MEM_LIMIT_MB lowers the limit",
          loom_memory_check(b, "x", &err) == LOOM_EINVAL, "%s", err.msg);
    unsetenv("LOOM_MEM_LIMIT_MB");
}

/* A tiny model's tensors under a config that claims a 100+ GB model: the
 * loader must reject it from the tensor table, before allocating anything. */
static void test_huge_config(void) {
    loom_config tiny = {.model = "rowlstm", .height = 4, .width = 4, .layers = 1, .hidden = 1};
    loom_model *m;
    loom_error err;
    if (loom_model_create(&m, &tiny, 1, &err)) {
        CHECK("huge config: create the tiny model", 0, "%s", err.msg);
        return;
    }
    loom_train_opts o;
    loom_train_opts_default(&o);
    loom_config huge = tiny;
    huge.height = huge.width = 4096, huge.layers = 64, huge.hidden = 4096;
    char *cfg = loom_config_json(&huge, &o);
    loom_tensor *t = calloc(m->nparams, sizeof *t);
    for (size_t k = 0; k < m->nparams; k++) {
        const loom_param *p = &m->params[k];
        t[k] = (loom_tensor){p->name, LOOM_F32, p->ndim, {p->shape[0], p->shape[1]}, m->w + p->offset};
    }
    loom_kv meta[] = {{"format", "loom-checkpoint-1"}, {"config", cfg}, {"step", "0"},
                      {"rng", "0000000000000000000000000000000000000000000000000000000000000000"},
                      {"epoch", "0"}, {"index", "0"}, {"adam_t", "0"}};
    char path[128];
    snprintf(path, sizeof path, "%s/huge.safetensors", dir);
    loom_status st = loom_safetensors_write(path, t, m->nparams, meta, 7, &err);
    CHECK("huge config: write the file", st == LOOM_OK, "%s", err.msg);
    loom_model *got = NULL;
    float *am = NULL, *av = NULL;
    st = loom_checkpoint_load(path, 256, &got, &am, &av, NULL, NULL, &err);
    CHECK("huge config: rejected as a bad file, naming a tensor",
          st == LOOM_EFORMAT && strstr(err.msg, path) && strstr(err.msg, "tensor"), "%d %s",
          (int)st, err.msg);
    CHECK("huge config: nothing returned", !got && !am && !av, "%s", "");
    free(t), free(cfg);
    loom_model_free(m);
}

static void test_nan_guard(void) {
    loom_config tiny = {.model = "rowlstm", .height = 4, .width = 4, .layers = 1, .hidden = 2};
    loom_model *m;
    loom_error err;
    if (loom_model_create(&m, &tiny, 1, &err)) {
        CHECK("nan guard: create the model", 0, "%s", err.msg);
        return;
    }
    loom_rng r;
    loom_rng_seed(&r, 3);
    loom_model_init(m, &r);
    float *am = calloc(m->nfloats, sizeof *am), *av = calloc(m->nfloats, sizeof *av);
    loom_train_state ts = {.step = 5};
    loom_train_opts o;
    loom_train_opts_default(&o);
    char path[128];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    loom_status st = loom_checkpoint_save(path, m, am, av, &ts, &o, &err);
    CHECK("nan guard: a finite checkpoint is written", st == LOOM_OK, "%s", err.msg);
    size_t n = 0;
    uint8_t *good = test_read_file(path, &n);

    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int which = 0; which < 3; which++) {
        float *buf = which == 0 ? m->w : which == 1 ? am : av;
        size_t at = m->nfloats / 2;
        float keep = buf[at];
        buf[at] = bad[which];
        ts.step = 6;
        st = loom_checkpoint_save(path, m, am, av, &ts, &o, &err);
        char name[96];
        snprintf(name, sizeof name, "nan guard: %s %s is refused, the previous file is kept",
                 bad[which] != bad[which] ? "NaN" : "Inf",
                 which == 0 ? "weight" : which == 1 ? "Adam m" : "Adam v");
        CHECK(name, st == LOOM_ENAN && strstr(err.msg, "not written") && same_file(path, good, n),
              "%d %s", (int)st, err.msg);
        buf[at] = keep;
    }
    char tmp[140];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK("nan guard: no temp file left", access(tmp, F_OK) != 0, "%s", "");
    loom_model *back = NULL;
    st = loom_checkpoint_load(path, 1, &back, NULL, NULL, &ts, NULL, &err);
    CHECK("nan guard: the kept checkpoint loads at its step", st == LOOM_OK && ts.step == 5, "%s",
          err.msg);
    loom_model_free(back);
    free(good), free(am), free(av);
    loom_model_free(m);
}

/* A 69-byte PNG whose header declares 46000x46000 pixels (found by fuzz_png):
 * rejected from its size, before the 6 GB of buffers it asks for. */
static void test_png_bomb(void) {
    static const uint8_t png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
        0x44, 0x52, 0x00, 0x00, 0xb3, 0xb0, 0x00, 0x00, 0xb3, 0xb0, 0x08, 0x00, 0x00, 0x00,
        0x00, 0x5d, 0x28, 0xf6, 0x3d, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
        0x9c, 0x63, 0x60, 0xa0, 0x3d, 0x00, 0x00, 0x00, 0x64, 0x00, 0x01, 0x86, 0x64, 0x3c,
        0x35, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    char sub[96], path[128];
    snprintf(sub, sizeof sub, "%s/pngs", dir);
    snprintf(path, sizeof path, "%s/a.png", sub);
    FILE *f = (mkdir(sub, 0700) == 0) ? fopen(path, "wb") : NULL;
    bool wrote = f && fwrite(png, 1, sizeof png, f) == sizeof png;
    if (f) fclose(f);
    loom_images im;
    loom_error err;
    loom_status st = wrote ? loom_png_folder_load(&im, sub, &err) : LOOM_EIO;
    CHECK("png bomb: a tiny file declaring 46000x46000 pixels is rejected from its size",
          st == LOOM_EFORMAT && strstr(err.msg, "46000x46000") && strstr(err.msg, "69 bytes"),
          "%d %s", (int)st, wrote ? err.msg : "could not write the file");
}

/* Labels outside a conditional model's classes are refused by every entry point. */
static void test_label_range(void) {
    loom_config c = {.model = "rowlstm", .height = 3, .width = 3, .layers = 1, .hidden = 2,
                     .nclasses = 2};
    loom_model *m;
    loom_error err;
    if (loom_model_create(&m, &c, 1, &err)) {
        CHECK("labels: create the model", 0, "%s", err.msg);
        return;
    }
    uint8_t imgs[2 * 9] = {0};
    int32_t ok_labels[2] = {0, 1}, bad_labels[2] = {1, 2}, neg[2] = {-1, 0};
    double loss, nll[2];
    float logits[2 * 9 * 256];
    CHECK("labels: in range is fine", loom_model_grad(m, &loss, imgs, ok_labels, 2, &err) == LOOM_OK,
          "%s", err.msg);
    CHECK("labels: grad refuses label 2 of 2 classes",
          loom_model_grad(m, &loss, imgs, bad_labels, 2, &err) == LOOM_EINVAL &&
              strstr(err.msg, "label 2"), "%s", err.msg);
    CHECK("labels: nll refuses -1", loom_model_nll(m, nll, imgs, neg, 2, 2, &err) == LOOM_EINVAL,
          "%s", err.msg);
    CHECK("labels: logits refuses label 2",
          loom_model_logits(m, logits, imgs, bad_labels, 2, &err) == LOOM_EINVAL, "%s", err.msg);
    CHECK("labels: sample refuses label 2",
          loom_model_sample(m, imgs, bad_labels, 2, 0, 1.0f, 1, &err) == LOOM_EINVAL, "%s", err.msg);
    loom_model_free(m);
}


/* "channels" and "gray" in the config JSON: written only when not the default,
 * optional on reading, validated. */
static void test_config_channels(void) {
    loom_config c = {.model = "rowlstm", .height = 8, .width = 8, .layers = 1, .hidden = 4}, back;
    loom_train_opts o, ob;
    loom_train_opts_default(&o);
    loom_error err = {{0}};
    char *js = loom_config_json(&c, &o);
    loom_status st = loom_config_parse(&back, &ob, js, "cfg", &err);
    CHECK("config: gray run with 1 channel writes neither key",
          js && !strstr(js, "\"channels\"") && !strstr(js, "\"gray\"") && st == LOOM_OK &&
              loom_channels(&back) == 1 && !ob.gray,
          "status %d %s: %s", st, err.msg, js ? js : "(null)");
    free(js);
    o.gray = true;
    c.channels = 1;
    js = loom_config_json(&c, &o);
    st = loom_config_parse(&back, &ob, js, "cfg", &err);
    CHECK("config: gray = true round trips, channels 1 still omitted",
          js && strstr(js, "\"gray\"") && !strstr(js, "\"channels\"") && st == LOOM_OK && ob.gray,
          "status %d %s", st, err.msg);
    free(js);
    c.channels = 3, c.hidden = 3; /* colour: hidden splits into R, G, B groups */
    js = loom_config_json(&c, &o);
    bool has3 = js && strstr(js, "\"channels\":\t3");
    st = loom_config_parse(&back, &ob, js, "cfg", &err);
    CHECK("config: channels 3 written and read back", has3 && st == LOOM_OK && back.channels == 3,
          "status %d %s: %s", st, err.msg, js ? js : "(null)");
    c.hidden = 4;
    free(js);
    static const char *const bad[][2] = {
        {"{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 8, \"channels\": 2, "
         "\"layers\": 1, \"hidden\": 4, \"classes\": 0}}", "channels"},
        {"{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 8, \"channels\": 0, "
         "\"layers\": 1, \"hidden\": 4, \"classes\": 0}}", "channels"},
        {"{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 8, \"layers\": 1, "
         "\"hidden\": 4, \"classes\": 0}, \"train\": {\"data\": \"x\", \"gray\": 1, \"seed\": \"1\"}}",
         "gray"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = loom_config_parse(&back, &ob, bad[i][0], "cfg", &err);
        char name[64];
        snprintf(name, sizeof name, "config: bad %s value %zu rejected", bad[i][1], i);
        CHECK(name, st == LOOM_EFORMAT && strstr(err.msg, bad[i][1]), "status %d %s", st, err.msg);
    }
    c.channels = 2;
    st = loom_config_check(&c, &err);
    CHECK("config check: 2 channels rejected", st == LOOM_EINVAL && strstr(err.msg, "2 channels per image: images have 1 (gray) or 3 (RGB)"),
          "status %d %s", st, err.msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/loom-robust-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_memory_estimate();
    test_huge_config();
    test_nan_guard();
    test_png_bomb();
    test_label_range();
    test_config_channels();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    CHECK_DONE();
}
