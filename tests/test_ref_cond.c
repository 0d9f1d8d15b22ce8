/* The class-conditional paths against the independent PyTorch
 * implementations: the Row LSTM (bench/rowlstm_torch.py fixture --conditional,
 * docs/rowlstm.md) and grupixel for each cell (bench/grupixel_torch.py fixture
 * --conditional, docs/grupixel.md). Logits, loss and every gradient, the class
 * tables rnn.<l>.cls.weight included; two of the three images share a label,
 * so a table row's gradient is a sum over images. */
#include "testutil.h"
#include "models/grupixel.h"
#include "models/model.h"

#include <string.h>

/* a model of cfg with every parameter "<key_prefix><name>" from f; NULL on failure */
static loom_model *load_model(const loom_st_file *f, const loom_config *cfg, const char *key_prefix,
                              const char *tag) {
    loom_model *m;
    loom_error err;
    char name[160], key[128];
    loom_status st = loom_model_create(&m, cfg, 1, &err);
    snprintf(name, sizeof name, "%s: model from the fixture config", tag);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return NULL;
    int all_read = 1, tables = 0;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        snprintf(key, sizeof key, "%s%s", key_prefix, pp->name);
        tables += strstr(pp->name, ".cls.weight") != NULL;
        if (loom_st_read_f32(f, key, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
            printf("# %s\n", err.msg);
            all_read = 0;
        }
    }
    snprintf(name, sizeof name, "%s: every parameter is in the fixture with loom's shape", tag);
    CHECK(name, all_read, "see above");
    snprintf(name, sizeof name, "%s: one class table per layer", tag);
    CHECK(name, tables == (int)cfg->layers, "%d tables for %zu layers", tables, cfg->layers);
    if (!all_read) {
        loom_model_free(m);
        return NULL;
    }
    return m;
}

/* images (B, H, W) u8 and labels (B) i32 from f, or NULL */
static const uint8_t *fixture_batch(const loom_st_file *f, size_t B, size_t HW, int32_t *labels,
                                    size_t K, const char *tag) {
    const loom_tensor *ti = loom_st_find(f, "images"), *tl = loom_st_find(f, "labels");
    int ok = ti && ti->dtype == LOOM_U8 && ti->shape[0] == B && ti->shape[1] * ti->shape[2] == HW &&
             tl && tl->dtype == LOOM_I32 && tl->ndim == 1 && tl->shape[0] == B;
    if (ok) {
        memcpy(labels, tl->data, B * sizeof *labels);
        for (size_t b = 0; b < B; b++) ok &= labels[b] >= 0 && (size_t)labels[b] < K;
    }
    char name[160];
    snprintf(name, sizeof name, "%s: fixture images and labels", tag);
    CHECK(name, ok, "missing or wrong");
    return ok ? ti->data : NULL;
}

static void test_rowlstm(void) {
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/rowlstm_cond_ref.safetensors", &err);
    CHECK("rowlstm conditional fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) return;
    loom_config cfg = {.model = "rowlstm", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .nclasses = (int)test_meta_size(f, "classes")};
    const size_t B = test_meta_size(f, "batch"), H = cfg.height, W = cfg.width;
    const char *tag = "rowlstm conditional";
    int32_t labels[16];
    loom_model *m = B <= 16 ? load_model(f, &cfg, "", tag) : NULL;
    const uint8_t *imgs = m ? fixture_batch(f, B, H * W, labels, (size_t)cfg.nclasses, tag) : NULL;
    if (imgs) {
        const size_t nz = B * H * W * 256;
        float *z = malloc(nz * sizeof *z), *zref = malloc(nz * sizeof *zref);
        size_t zshape[4] = {B, H, W, 256};
        st = loom_st_read_f32(f, "logits", zref, 4, zshape, &err);
        loom_model_logits(m, z, imgs, labels, B, &err);
        double e = st ? 1e9 : test_rel_err(z, zref, nz);
        CHECK("rowlstm conditional: logits match PyTorch", e < 1e-5, "max error %.3g of the logits' scale", e);
        double loss = 0.0;
        st = loom_model_grad(m, &loss, imgs, labels, B, &err);
        const char *lv = loom_st_meta(f, "loss_f64");
        const double lref = lv ? strtod(lv, NULL) : 1e300;
        CHECK("rowlstm conditional: loss matches PyTorch", !st && fabs(loss - lref) < 1e-5 * lref,
              "loom %.9f torch %.9f", loss, lref);
        test_ref_grads(f, m, "", "rowlstm conditional: ", 1e-5);
        /* without the labels the class rows are not used: the logits must change */
        float *zu = malloc(nz * sizeof *zu);
        loom_model_logits(m, zu, imgs, NULL, B, &err);
        CHECK("rowlstm conditional: the labels change the logits", test_rel_err(zu, zref, nz) > 1e-3,
              "the class tables have no effect");
        free(z), free(zref), free(zu);
    }
    loom_model_free(m);
    loom_safetensors_close(f);
}

static void test_grupixel(const loom_st_file *f, const char *cell) {
    loom_config cfg = {.model = "grupixel", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .zdim = test_meta_size(f, "zdim"), .nclasses = (int)test_meta_size(f, "classes")};
    snprintf(cfg.cell, sizeof cfg.cell, "%s", cell);
    const size_t B = test_meta_size(f, "batch"), HW = cfg.height * cfg.width;
    char tag[64], name[160], key[64];
    snprintf(tag, sizeof tag, "grupixel %s conditional", cell);
    snprintf(key, sizeof key, "%s.", cell);
    int32_t labels[16];
    loom_model *m = B <= 16 ? load_model(f, &cfg, key, tag) : NULL;
    const uint8_t *imgs = m ? fixture_batch(f, B, HW, labels, (size_t)cfg.nclasses, tag) : NULL;
    loom_error err;
    float *z = malloc(B * cfg.zdim * sizeof *z);
    size_t zshape[2] = {B, cfg.zdim}, one = 1;
    if (imgs && loom_st_read_f32(f, "z", z, 2, zshape, &err)) {
        snprintf(name, sizeof name, "%s: fixture z", tag);
        CHECK(name, 0, "%s", err.msg);
        imgs = NULL;
    }
    if (imgs) {
        const size_t nz = B * HW * 256;
        float *lg = malloc(nz * sizeof *lg), *lref = malloc(nz * sizeof *lref), loss_ref = 0;
        size_t lshape[4] = {B, cfg.height, cfg.width, 256};
        snprintf(key, sizeof key, "%s.logits", cell);
        loom_status st = loom_st_read_f32(f, key, lref, 4, lshape, &err);
        snprintf(key, sizeof key, "%s.loss", cell);
        if (!st) st = loom_st_read_f32(f, key, &loss_ref, 1, &one, &err);
        void *ws = malloc(m->ops->train_ws_bytes(&m->cfg, B));
        double *nll = malloc(B * sizeof *nll), loss = 0;
        memset(m->g, 0, m->nfloats * sizeof *m->g);
        /* loom_model_grad's scaling: the mean NLL per pixel */
        loom_grupixel_run(m, ws, m->g, nll, lg, imgs, labels, z, B, 1.0f / (float)(B * HW));
        for (size_t b = 0; b < B; b++) loss += nll[b];
        loss /= (double)(B * HW);
        double e = st ? 1e9 : test_rel_err(lg, lref, nz);
        snprintf(name, sizeof name, "%s: logits match PyTorch", tag);
        CHECK(name, e < 1e-5, "max error %.3g of the logits' scale", e);
        snprintf(name, sizeof name, "%s: loss matches PyTorch", tag);
        CHECK(name, fabs(loss - loss_ref) < 1e-5 * loss_ref, "loom %.9f torch %.9f", loss, (double)loss_ref);
        char key_prefix[16], name_prefix[80];
        snprintf(key_prefix, sizeof key_prefix, "%s.", cell);
        snprintf(name_prefix, sizeof name_prefix, "%s: ", tag);
        test_ref_grads(f, m, key_prefix, name_prefix, 1e-5);
        free(lg), free(lref), free(ws), free(nll);
    }
    free(z);
    loom_model_free(m);
}

int main(void) {
    test_rowlstm();
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/grupixel_cond_ref.safetensors", &err);
    CHECK("grupixel conditional fixture loads", st == LOOM_OK, "%s", err.msg);
    if (!st) {
        static const char *const cells[] = {"gru", "lstm", "rnn"};
        for (int c = 0; c < 3; c++) test_grupixel(f, cells[c]);
        loom_safetensors_close(f);
    }
    CHECK_DONE();
}
