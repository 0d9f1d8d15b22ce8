/* convlstm against an independent PyTorch implementation written from
 * docs/convlstm.md (bench/convlstm_torch.py fixture): the per-sequence
 * NLL, loom_model_grad's loss (mean per predicted pixel) and every
 * parameter gradient, with the default convolution back-end. Two fixtures:
 * the Bernoulli output without peepholes, the 256-way softmax output with
 * peepholes, the forecaster fed its predictions, with peepholes, and fed its
 * predictions trained with the absolute error. */
#include "testutil.h"
#include "models/model.h"

static void check_fixture(const char *file, const char *tag) {
    char path[256], name[160];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, file);
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, path, &err);
    CHECK("convlstm fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) return;
    loom_config cfg = {.model = "convlstm", .height = test_meta_size(f, "height"), .width = test_meta_size(f, "width"),
                       .layers = test_meta_size(f, "layers"), .hidden = test_meta_size(f, "hidden"),
                       .kernel = test_meta_size(f, "kernel"), .patch = test_meta_size(f, "patch"),
                       .frames_in = test_meta_size(f, "frames_in"), .frames_out = test_meta_size(f, "frames_out")};
    const char *out = loom_st_meta(f, "output"), *peep = loom_st_meta(f, "peephole");
    cfg.softmax256 = out && strcmp(out, "softmax256") == 0;
    cfg.peephole = peep && strcmp(peep, "1") == 0;
    const char *fb = loom_st_meta(f, "feedback");
    cfg.feedback = fb && strcmp(fb, "1") == 0;
    const char *lo = loom_st_meta(f, "loss");
    cfg.frame_loss = lo ? loom_frame_loss_parse(lo) : LOOM_FRAME_XENT;
    const size_t B = test_meta_size(f, "batch");
    loom_model *m;
    st = loom_model_create(&m, &cfg, 1, &err);
    snprintf(name, sizeof name, "convlstm%s: model from the fixture config", tag);
    CHECK(name, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    int all = 1;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        if (loom_st_read_f32(f, pp->name, m->w + pp->offset, pp->ndim, pp->shape, &err)) printf("# %s\n", err.msg), all = 0;
    }
    snprintf(name, sizeof name, "convlstm%s: every parameter (%zu tensors) is in the fixture with loom's shape", tag,
             m->nparams);
    CHECK(name, all, "see above");
    const loom_tensor *ts = loom_st_find(f, "seqs");
    const int seqs_ok = ts && ts->dtype == LOOM_U8 && ts->ndim == 4 && ts->shape[0] == B &&
                        ts->shape[1] == loom_frames(&cfg);
    snprintf(name, sizeof name, "convlstm%s: fixture sequences", tag);
    CHECK(name, seqs_ok, "missing or wrong shape");
    if (!seqs_ok || !all) return;
    double *nll = malloc(B * sizeof *nll), loss;
    float *nref = malloc(B * sizeof *nref), lref;
    size_t one = 1;
    loom_st_read_f32(f, "nll", nref, 1, &B, &err);
    loom_st_read_f32(f, "loss", &lref, 1, &one, &err);
    loom_model_nll(m, nll, ts->data, NULL, B, B, &err);
    double worst = 0;
    for (size_t b = 0; b < B; b++) worst = fmax(worst, fabs(nll[b] - nref[b]) / fabs(nref[b]));
    snprintf(name, sizeof name, "convlstm%s: per-sequence NLL matches PyTorch", tag);
    CHECK(name, worst < 1e-5, "relative error %.3g", worst);
    loom_model_grad(m, &loss, ts->data, NULL, B, &err);
    const double l64 = strtod(loom_st_meta(f, "loss_f64"), NULL);
    snprintf(name, sizeof name, "convlstm%s: loss matches PyTorch", tag);
    CHECK(name, fabs(loss - l64) < 1e-6 * fabs(l64), "%.9g vs %.9g", loss, l64);
    char pre[64];
    snprintf(pre, sizeof pre, "convlstm%s: ", tag);
    test_ref_grads(f, m, "", pre, 1e-4);
    free(nll), free(nref);
    loom_model_free(m);
    loom_safetensors_close(f);
}

int main(void) {
    check_fixture("convlstm_ref.safetensors", "");
    check_fixture("convlstm_ref_sm_peep.safetensors", " (softmax256, peepholes)");
    check_fixture("convlstm_ref_fb_peep.safetensors", " (feedback, peepholes)");
    check_fixture("convlstm_ref_fb_l1.safetensors", " (feedback, L1 loss)");
    CHECK_DONE();
}
