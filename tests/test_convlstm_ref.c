/* convlstm against an independent PyTorch implementation written from
 * docs/convlstm.md (bench/convlstm_torch.py fixture): the per-sequence
 * cross-entropy, loom_model_grad's loss (mean per predicted pixel) and every
 * parameter gradient, with both convolution back-ends' model (the default). */
#include "testutil.h"
#include "models/model.h"

int main(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/convlstm_ref.safetensors", FIXTURE_DIR);
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, path, &err);
    CHECK("convlstm fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) CHECK_DONE();
    loom_config cfg = {.model = "convlstm", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .kernel = test_meta_size(f, "kernel"), .patch = test_meta_size(f, "patch"),
                       .frames_in = test_meta_size(f, "frames_in"), .frames_out = test_meta_size(f, "frames_out")};
    const size_t B = test_meta_size(f, "batch");
    loom_model *m;
    st = loom_model_create(&m, &cfg, 1, &err);
    CHECK("convlstm: model from the fixture config", st == LOOM_OK, "%s", err.msg);
    if (st) CHECK_DONE();
    int all = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        if (loom_st_read_f32(f, pp->name, m->w + pp->offset, pp->ndim, pp->shape, &err)) printf("# %s\n", err.msg), all = 0;
    }
    CHECK("convlstm: every parameter is in the fixture with loom's shape", all, "see above");
    const loom_tensor *ts = loom_st_find(f, "seqs");
    const int seqs_ok = ts && ts->dtype == LOOM_U8 && ts->ndim == 4 && ts->shape[0] == B &&
                        ts->shape[1] == loom_frames(&cfg);
    CHECK("convlstm: fixture sequences", seqs_ok, "missing or wrong shape");
    if (!seqs_ok || !all) CHECK_DONE();
    double *nll = malloc(B * sizeof *nll), loss;
    float *nref = malloc(B * sizeof *nref), lref;
    size_t one = 1;
    loom_st_read_f32(f, "nll", nref, 1, &B, &err);
    loom_st_read_f32(f, "loss", &lref, 1, &one, &err);
    loom_model_nll(m, nll, ts->data, NULL, B, B, &err);
    double worst = 0;
    for (size_t b = 0; b < B; b++) worst = fmax(worst, fabs(nll[b] - nref[b]) / fabs(nref[b]));
    CHECK("convlstm: per-sequence cross-entropy matches PyTorch", worst < 1e-5, "relative error %.3g", worst);
    loom_model_grad(m, &loss, ts->data, NULL, B, &err);
    const double l64 = strtod(loom_st_meta(f, "loss_f64"), NULL);
    CHECK("convlstm: loss matches PyTorch", fabs(loss - l64) < 1e-6 * fabs(l64), "%.9g vs %.9g", loss, l64);
    test_ref_grads(f, m, "", "convlstm: ", 1e-4);
    free(nll), free(nref);
    loom_model_free(m);
    loom_safetensors_close(f);
    CHECK_DONE();
}
