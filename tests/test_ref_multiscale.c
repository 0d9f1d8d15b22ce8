/* The multi-scale Row LSTM against the independent PyTorch implementation
 * (bench/multiscale_torch.py, written from docs/rowlstm.md "Multi-scale"):
 * the full model's logits, the loss (small model + full model on the other
 * pixels) and every parameter gradient, the conditioning path's included, on
 * a tiny 4x6 config with S = 2 (tests/fixtures/multiscale_ref.safetensors). */
#include "testutil.h"
#include "models/model.h"

#include <string.h>

int main(void) {
    const char *path = FIXTURE_DIR "/multiscale_ref.safetensors";
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, path, &err);
    CHECK("multiscale fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) CHECK_DONE();
    loom_config cfg = {.model = "rowlstm", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .multiscale = test_meta_size(f, "multiscale")};
    const size_t B = test_meta_size(f, "batch"), H = cfg.height, W = cfg.width;
    loom_model *m;
    st = loom_model_create(&m, &cfg, 1, &err);
    CHECK("multiscale model from fixture config", st == LOOM_OK, "%s", err.msg);
    if (st) CHECK_DONE();
    int all_read = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        if (loom_st_read_f32(f, pp->name, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
            printf("# %s\n", err.msg);
            all_read = 0;
        }
    }
    CHECK("multiscale: every parameter is in the fixture with loom's shape", all_read, "see above");
    const loom_tensor *ti = loom_st_find(f, "images");
    CHECK("multiscale fixture images", ti && ti->dtype == LOOM_U8 && ti->shape[0] == B, "missing or wrong");
    uint8_t *imgs = malloc(B * H * W);
    memcpy(imgs, ti->data, B * H * W);
    size_t nz = B * H * W * 256;
    float *z = malloc(nz * sizeof *z), *zref = malloc(nz * sizeof *zref);
    size_t zshape[4] = {B, H, W, 256};
    loom_st_read_f32(f, "logits", zref, 4, zshape, &err);
    loom_model_logits(m, z, imgs, NULL, B, &err);
    double e = test_rel_err(z, zref, nz);
    CHECK("multiscale: the full model's logits match PyTorch", e < 1e-4, "max error %.3g of the logits' scale", e);
    double loss;
    loom_model_grad(m, &loss, imgs, NULL, B, &err);
    double lref = strtod(loom_st_meta(f, "loss_f64"), NULL);
    CHECK("multiscale: loss matches PyTorch", fabs(loss - lref) < 1e-5 * lref, "loom %.9f torch %.9f", loss, lref);
    test_ref_grads(f, m, "", "multiscale ", 1e-4);
    free(z), free(zref), free(imgs);
    loom_model_free(m);
    loom_safetensors_close(f);
    CHECK_DONE();
}
