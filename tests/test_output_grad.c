/* Training from a loss the model does not own (loom_model_forward /
 * loom_model_backward): the gradient that comes back for an arbitrary loss on
 * the outputs, given only d loss / d out, matches central differences of that
 * loss; the two-phase path gives the model's own gradient when fed its own
 * loss; and misuse is refused. */
#include "testutil.h"
#include "losses/losses.h"
#include "nn/nn.h"

typedef struct {
    loom_model *m;
    const uint8_t *imgs;
    const int32_t *labels;
    size_t n, F;
    const float *a, *b; /* (n F): the outside loss sum a out + 0.5 b out^2 */
    float wint;         /* weight of the model's internal terms */
    float *out;
    double *internal;
} ext_ctx;

static double ext_loss(void *p) {
    ext_ctx *c = p;
    loom_model_forward(c->m, c->out, c->internal, c->imgs, c->labels, c->n, NULL);
    double s = 0.0;
    for (size_t i = 0; i < c->n * c->F; i++) s += (double)c->a[i] * c->out[i] + 0.5 * c->b[i] * c->out[i] * c->out[i];
    for (size_t k = 0; k < c->n; k++) s += c->wint * c->internal[k];
    return s;
}

/* fout: outputs per pixel (1 Bernoulli logit; channels x 256 softmax logits) */
static void check_model(const loom_config *cfg, const char *name, size_t fout) {
    loom_model *m = test_model(cfg, 1, 3, 0.2f);
    char buf[160];
    const size_t n = 3, HW = cfg->height * cfg->width, F = loom_model_out_floats(m);
    const size_t EX = loom_channels(cfg) * HW;
    snprintf(buf, sizeof buf, "%s: output-grad capability, %zu outputs per image", name, F);
    CHECK(buf, F == HW * fout && (loom_model_caps(m) & LOOM_CAP_OUTPUT_GRAD), "F %zu", F);
    uint8_t *imgs = malloc(n * EX);
    test_random_images_seed(imgs, n * EX, 9);
    int32_t labels[3] = {1, 0, 1};
    const int32_t *lab = cfg->nclasses ? labels : NULL;
    loom_rng r;
    loom_rng_seed(&r, 4);
    float *a = test_randbuf(&r, n * F, 1.0f), *b = test_randbuf(&r, n * F, 0.5f);
    float *out = malloc(n * F * sizeof *out), *dout = malloc(n * F * sizeof *dout);
    double *internal = malloc(n * sizeof *internal);
    ext_ctx c = {m, imgs, lab, n, F, a, b, 0.7f, out, internal};
    loom_error err;
    loom_status st = loom_model_forward(m, out, internal, imgs, lab, n, &err);
    for (size_t i = 0; i < n * F; i++) dout[i] = a[i] + b[i] * out[i];
    if (!st) st = loom_model_backward(m, NULL, dout, n, c.wint, &err);
    snprintf(buf, sizeof buf, "%s: forward and backward run", name);
    CHECK(buf, st == LOOM_OK, "%s", err.msg);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        /* masked entries (colour) are constants 0: their gradient is 0 by design */
        double w = 0.0;
        for (size_t k = 0; k < pp->size; k += pp->size > 64 ? 7 : 1) {
            if (m->ops->masked && m->ops->masked(m, p, k)) continue;
            double q = gc_ratio(ext_loss, &c, m->w + pp->offset, k, g[pp->offset + k], 1e-3);
            if (q > 1.0) q = fmin(q, gc_ratio(ext_loss, &c, m->w + pp->offset, k, g[pp->offset + k], 1e-4));
            w = fmax(w, q);
        }
        snprintf(buf, sizeof buf, "%s: outside loss, gradient of %s", name, pp->name);
        CHECK(buf, w <= 1.0, "worst error ratio %.3g", w);
    }
    /* the model's own loss through the two halves: Bernoulli on its binarized
     * input is not visible from outside, so compare the halves' sum of the
     * internal terms with the ELBO's: ELBO - internal = -log p(x|z) >= 0 */
    double *nll = malloc(n * sizeof *nll);
    loom_model_nll(m, nll, imgs, lab, n, n, NULL);
    loom_model_forward(m, out, internal, imgs, lab, n, NULL);
    int ok = 1;
    for (size_t k = 0; k < n; k++) ok &= nll[k] - internal[k] > 0.0 && internal[k] >= 0.0;
    snprintf(buf, sizeof buf, "%s: internal terms are the KL part of the ELBO (0 <= KL < ELBO; 0 for exact models)", name);
    CHECK(buf, ok, "nll %g internal %g", nll[0], internal[0]);
    /* an op in between takes the workspace: the pending forward is gone */
    loom_model_nll(m, nll, imgs, lab, n, n, NULL);
    st = loom_model_backward(m, NULL, dout, n, 1.0f, &err);
    snprintf(buf, sizeof buf, "%s: backward after another op is refused", name);
    CHECK(buf, st == LOOM_EINVAL, "status %d", st);
    free(nll), free(g), free(a), free(b), free(out), free(dout), free(internal), free(imgs);
    loom_model_free(m);
}

/* the halves fed the model's own loss (softmax cross-entropy of each pixel's
 * channels, logits (n, H, W, C, 256) against pixels (n, C, H, W)) give
 * loom_model_grad's loss and gradient: the layout and the labels are right */
static void own_softmax(const loom_config *cfg, const char *name) {
    loom_model *m = test_model(cfg, 1, 5, 0.2f);
    const size_t n = 2, H = cfg->height, W = cfg->width, C = loom_channels(cfg), HW = H * W;
    uint8_t *imgs = malloc(n * C * HW), *tgt = malloc(n * C * HW);
    test_random_images_seed(imgs, n * C * HW, 13);
    int32_t labels[2] = {1, 0};
    const int32_t *lab = cfg->nclasses ? labels : NULL;
    for (size_t b = 0; b < n; b++)
        for (size_t p = 0; p < HW; p++)
            for (size_t c = 0; c < C; c++) tgt[(b * HW + p) * C + c] = imgs[(b * C + c) * HW + p];
    double loss;
    loom_model_grad(m, &loss, imgs, lab, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g), *out = malloc(n * HW * C * 256 * sizeof *out);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    double internal[2];
    const float scale = 1.0f / (float)(n * C * HW);
    loom_model_forward(m, out, internal, imgs, lab, n, NULL);
    const double own = loom_softmax256_xent(out, NULL, tgt, n * HW * C, scale, 1);
    loom_model_backward(m, NULL, out, n, 0.0f, NULL);
    char buf[160];
    snprintf(buf, sizeof buf, "%s: halves + softmax loss = the model's loss", name);
    CHECK(buf, fabs(own * scale - loss) < 1e-6 * loss, "%.12g vs %.12g", own * scale, loss);
    snprintf(buf, sizeof buf, "%s: halves + softmax gradient = loom_model_grad's", name);
    CHECK(buf, test_rel_err(m->g, g, m->nfloats) < 1e-5, "rel err %.3g", test_rel_err(m->g, g, m->nfloats));
    free(imgs), free(tgt), free(g), free(out);
    loom_model_free(m);
}

int main(void) {
    loom_config dr = {.model = "draw", .height = 5, .width = 4, .layers = 1, .hidden = 3, .zdim = 2,
                      .steps_draw = 3, .read_n = 2, .write_n = 2, .attention = 1};
    check_model(&dr, "draw", 1);
    dr.attention = 0;
    check_model(&dr, "draw --attention off", 1);
    loom_config ra = {.model = "rae", .height = 6, .width = 5, .layers = 1, .hidden = 3, .zdim = 2,
                      .variational = 1};
    check_model(&ra, "rae --variational", 1);
    loom_config rl = {.model = "rowlstm", .height = 3, .width = 4, .layers = 1, .hidden = 2, .nclasses = 2};
    check_model(&rl, "rowlstm --conditional", 256);
    loom_config db = {.model = "diagbilstm", .height = 3, .width = 3, .channels = 3, .layers = 1, .hidden = 3};
    check_model(&db, "diagbilstm colour", 3 * 256);
    own_softmax(&rl, "rowlstm --conditional");
    own_softmax(&db, "diagbilstm colour");

    /* DRAW's own loss through the halves: dout = sigmoid(out) - x needs the
     * model's binarized x, so use an all-0 / all-255 image (binarization is
     * then exact): the halves give loom_model_grad's gradient */
    dr.attention = 1;
    loom_model *m = test_model(&dr, 1, 5, 0.2f);
    const size_t HW = 20, n = 2;
    uint8_t imgs[40];
    for (size_t i = 0; i < n * HW; i++) imgs[i] = (i * 7 % 3) ? 255 : 0;
    float out[40], dout[40];
    double internal[2], loss;
    loom_model_grad(m, &loss, imgs, NULL, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    memcpy(g, m->g, m->nfloats * sizeof *g);
    const float scale = 1.0f / (float)(n * HW);
    float x[40];
    for (size_t i = 0; i < n * HW; i++) x[i] = imgs[i] ? 1.0f : 0.0f;
    loom_model_forward(m, out, internal, imgs, NULL, n, NULL);
    double own = loom_bernoulli_nll_acc(0.0, out, x, n * HW) + internal[0] + internal[1];
    loom_bernoulli_backward(dout, out, x, n * HW, scale);
    loom_model_backward(m, NULL, dout, n, scale, NULL);
    CHECK("draw: halves + Bernoulli loss = the model's loss", fabs(own * scale - loss) < 1e-7 * loss,
          "%.12g vs %.12g", own * scale, loss);
    CHECK("draw: halves + Bernoulli gradient = loom_model_grad's", test_rel_err(m->g, g, m->nfloats) < 1e-6,
          "rel err %.3g", test_rel_err(m->g, g, m->nfloats));
    /* the public names (include/loom/model.h) give the same gradient */
    float *g2 = malloc(m->nfloats * sizeof *g2);
    memcpy(g2, m->g, m->nfloats * sizeof *g2);
    loom_model_output_forward(m, out, internal, imgs, NULL, n, NULL);
    loom_model_output_backward(m, dout, n, scale, NULL);
    CHECK("draw: loom_model_output_forward/backward are the same halves",
          loom_model_output_size(m) == HW && memcmp(g2, m->g, m->nfloats * sizeof *g2) == 0, "differ");
    free(g2);
    loom_error err;
    CHECK("backward without a forward is refused",
          loom_model_backward(m, NULL, dout, n, 1.0f, &err) == LOOM_EINVAL, "accepted");
    free(g);
    loom_model_free(m);
    loom_config gp = {.model = "grupixel", .height = 4, .width = 4, .layers = 1, .hidden = 4, .cell = "gru", .zdim = 2};
    m = test_model(&gp, 1, 1, 0.0f);
    CHECK("a model without the capability refuses forward",
          loom_model_forward(m, out, internal, imgs, NULL, 1, &err) == LOOM_EINVAL && strstr(err.msg, "grupixel"),
          "accepted");
    loom_model_free(m);
    CHECK_DONE();
}
