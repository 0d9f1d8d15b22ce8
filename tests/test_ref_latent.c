/* The latent-variable models against independent PyTorch implementations
 * written from their docs: draw (bench/draw_torch.py, docs/draw.md; attention
 * on and off) and rae (bench/rae_torch.py, docs/rae.md; plain and
 * variational). Each fixture case holds the weights, the images, the
 * binarized images x and the posterior noise eps (made by bench/loom_noise.py,
 * a Python transcription of docs/draw.md's random numbers), the per-image
 * bounds, the loss and every parameter gradient. This test checks that loom
 * binarizes and draws exactly that noise, then compares the per-image NLLs,
 * loom_model_grad's loss (mean per pixel) and every gradient. */
#include "testutil.h"
#include "models/latent.h"
#include "models/model.h"

#include <string.h>

static size_t meta(const loom_st_file *f, const char *pre, const char *key) {
    char k[96];
    snprintf(k, sizeof k, "%s%s", pre, key);
    return test_meta_size(f, k);
}

static uint64_t meta_u64(const loom_st_file *f, const char *pre, const char *key) {
    char k[96];
    snprintf(k, sizeof k, "%s%s", pre, key);
    const char *v = loom_st_meta(f, k);
    return v ? (uint64_t)strtoull(v, NULL, 10) : 0;
}

/* case `pre` ("attn.", ...) of the fixture of model `model` ("draw" | "rae") */
static void test_case(const loom_st_file *f, const char *model, const char *pre) {
    loom_config cfg = {.height = meta(f, pre, "height"), .width = meta(f, pre, "width"), .layers = 1,
                       .hidden = meta(f, pre, "hidden"), .zdim = meta(f, pre, "zdim"),
                       .steps_draw = meta(f, pre, "steps_draw"), .read_n = meta(f, pre, "read_n"),
                       .write_n = meta(f, pre, "write_n"), .attention = (int)meta(f, pre, "attention"),
                       .variational = (int)meta(f, pre, "variational")};
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    const size_t B = meta(f, pre, "batch"), HW = cfg.height * cfg.width, z = cfg.zdim;
    /* eps (T, B, z): draw has T = steps_draw noise vectors per image, rae one (variational only) */
    const size_t T = !strcmp(model, "draw") ? cfg.steps_draw : cfg.variational ? 1 : 0;
    char name[192], key[96], tag[64];
    snprintf(tag, sizeof tag, "%s %.*s", model, (int)strlen(pre) - 1, pre);
    loom_model *m;
    loom_error err;
    loom_status st = loom_model_create(&m, &cfg, 1, &err);
    snprintf(name, sizeof name, "%s: model from the fixture config", tag);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    m->noise_seed = meta_u64(f, pre, "noise_seed");
    int all_read = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        snprintf(key, sizeof key, "%s%s", pre, pp->name);
        if (loom_st_read_f32(f, key, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
            printf("# %s\n", err.msg);
            all_read = 0;
        }
    }
    snprintf(name, sizeof name, "%s: every parameter is in the fixture with loom's shape", tag);
    CHECK(name, all_read, "see above");
    snprintf(key, sizeof key, "%simages", pre);
    const loom_tensor *ti = loom_st_find(f, key);
    float *x = malloc(B * HW * sizeof *x), *xl = malloc(HW * sizeof *xl);
    float *eps = malloc((T * B * z + 1) * sizeof *eps), *el = malloc((z + 1) * sizeof *el);
    size_t xshape[2] = {B, HW}, eshape[3] = {T, B, z};
    snprintf(key, sizeof key, "%sx", pre);
    int ok = all_read && ti && ti->dtype == LOOM_U8 && ti->ndim == 3 && ti->shape[0] == B &&
             ti->shape[1] == cfg.height && ti->shape[2] == cfg.width &&
             !loom_st_read_f32(f, key, x, 2, xshape, &err);
    snprintf(key, sizeof key, "%seps", pre);
    if (ok && T) ok = !loom_st_read_f32(f, key, eps, 3, eshape, &err);
    snprintf(name, sizeof name, "%s: fixture images, binarized images and noise", tag);
    CHECK(name, ok, "missing or wrong: %s", err.msg);
    if (!ok) {
        free(x), free(xl), free(eps), free(el);
        loom_model_free(m);
        return;
    }
    const uint8_t *imgs = ti->data;

    /* the randomness, against the Python transcription of docs/draw.md */
    size_t xbad = 0, ebad = 0;
    for (size_t b = 0; b < B; b++) {
        loom_binarize(xl, imgs + b * HW, HW, m->noise_seed);
        for (size_t i = 0; i < HW; i++) xbad += xl[i] != x[b * HW + i];
        loom_rng r;
        loom_noise_rng(&r, imgs + b * HW, HW, m->noise_seed, 0);
        for (size_t t = 0; t < T; t++) {
            loom_normals(el, z, &r);
            for (size_t j = 0; j < z; j++) ebad += el[j] != eps[(t * B + b) * z + j];
        }
    }
    snprintf(name, sizeof name, "%s: binarization == the documented one (bench/loom_noise.py)", tag);
    CHECK(name, xbad == 0, "%zu of %zu pixels differ", xbad, B * HW);
    if (T) {
        snprintf(name, sizeof name, "%s: posterior noise eps == the documented one (bench/loom_noise.py)", tag);
        CHECK(name, ebad == 0, "%zu of %zu values differ", ebad, T * B * z);
    }

    double *nll = malloc(B * sizeof *nll), loss = 0.0;
    float *nref = malloc(B * sizeof *nref), loss_ref = 0.0f;
    size_t one = 1;
    snprintf(key, sizeof key, "%snll", pre);
    st = loom_st_read_f32(f, key, nref, 1, &B, &err);
    snprintf(key, sizeof key, "%sloss", pre);
    if (!st) st = loom_st_read_f32(f, key, &loss_ref, 1, &one, &err);
    loom_model_nll(m, nll, imgs, NULL, B, B, &err);
    double ne = 0.0;
    for (size_t b = 0; b < B; b++) ne = fmax(ne, fabs(nll[b] - nref[b]) / fabs((double)nref[b]));
    snprintf(name, sizeof name, "%s: per-image bound matches PyTorch", tag);
    CHECK(name, !st && ne < 1e-5, "max relative error %.3g", st ? 1e9 : ne);
    st = loom_model_grad(m, &loss, imgs, NULL, B, &err);
    snprintf(key, sizeof key, "%sloss_f64", pre);
    const char *lv = loom_st_meta(f, key);
    const double lref = lv ? strtod(lv, NULL) : 1e300;
    snprintf(name, sizeof name, "%s: loss (mean per pixel) matches PyTorch", tag);
    CHECK(name, !st && fabs(loss - lref) < 1e-5 * fabs(lref), "loom %.9f torch %.9f", loss, lref);
    snprintf(name, sizeof name, "%s: float32 loss tensor agrees with metadata", tag);
    CHECK(name, fabs(loss_ref - lref) < 1e-6 * fabs(lref), "%.9f vs %.9f", (double)loss_ref, lref);
    char name_prefix[80];
    snprintf(name_prefix, sizeof name_prefix, "%s: ", tag);
    test_ref_grads(f, m, pre, name_prefix, 1e-5);
    free(x), free(xl), free(eps), free(el), free(nll), free(nref);
    loom_model_free(m);
}

static void test_fixture(const char *file, const char *model, const char *const *cases, size_t ncases) {
    char path[256], name[160];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, file);
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, path, &err);
    snprintf(name, sizeof name, "%s fixture loads", model);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    for (size_t k = 0; k < ncases; k++) test_case(f, model, cases[k]);
    loom_safetensors_close(f);
}

int main(void) {
    static const char *const draw_cases[] = {"attn.", "noattn."};
    static const char *const rae_cases[] = {"plain.", "var."};
    test_fixture("draw_ref.safetensors", "draw", draw_cases, 2);
    test_fixture("rae_ref.safetensors", "rae", rae_cases, 2);
    CHECK_DONE();
}
