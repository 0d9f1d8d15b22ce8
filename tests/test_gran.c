/* gran (src/models/gran.c) and the GAN objective (src/train/gan.c): the
 * strided convolution and its transpose against direct sums and central
 * differences; every generator and discriminator tensor's gradient, the
 * discriminator's input gradient, and the gradient of L_G through the
 * discriminator into the generator's parameters, against central
 * differences; both stages against PyTorch (fixture from
 * bench/gran_torch.py); the same bits on 1 and 2 threads; a discriminator
 * that learns to tell a tiny real set from noise. */
#include "gradcheck.h"
#include "testutil.h"
#include "models/gran.h"
#include "nn/conv2d.h"
#include "optim/optim.h"
#include "train/gan.h"

#include <string.h>

/* ------------------------------------------------ strided conv and deconv */

typedef struct {
    loom_sconv_dims d;
    float *x, *y, *wt, *R, *col;
    int deconv; /* 0: y = conv(x); 1: x-shaped out = deconv(y-shaped in) */
} sc_ctx;

static size_t nx_of(loom_sconv_dims d) { return d.n * d.h * d.w * d.cin; }
static size_t ny_of(loom_sconv_dims d) { return d.n * loom_sconv_ho(d) * loom_sconv_wo(d) * d.cout; }

static double sc_loss(void *p) {
    sc_ctx *c = p;
    if (c->deconv) {
        loom_deconv_forward(c->x, c->y, c->wt, c->d, c->col);
        return gc_dot(c->x, c->R, nx_of(c->d));
    }
    loom_sconv_forward(c->y, c->x, c->wt, c->d, c->col);
    return gc_dot(c->y, c->R, ny_of(c->d));
}

static void test_sconv(loom_rng *r, loom_sconv_dims d, const char *tag) {
    const size_t nx = nx_of(d), ny = ny_of(d), nw = d.cout * d.k * d.k * d.cin;
    const size_t ho = loom_sconv_ho(d), wo = loom_sconv_wo(d);
    sc_ctx c = {.d = d, .x = test_randbuf(r, nx, 1), .y = test_randbuf(r, ny, 1), .wt = test_randbuf(r, nw, 0.5f),
                .col = test_zeros(loom_sconv_col_floats(d))};
    char name[128];
    /* forward against the direct sum at every output */
    loom_sconv_forward(c.y, c.x, c.wt, d, c.col);
    double worst = 0;
    for (size_t o = 0; o < ny; o++) {
        const size_t co = o % d.cout, q = o / d.cout, ox = q % wo, oy = (q / wo) % ho, b = q / (wo * ho);
        double s = 0;
        for (size_t ky = 0; ky < d.k; ky++)
            for (size_t kx = 0; kx < d.k; kx++) {
                const long sy = (long)(oy * d.stride + ky) - (long)d.pad, sx = (long)(ox * d.stride + kx) - (long)d.pad;
                if (sy < 0 || sx < 0 || sy >= (long)d.h || sx >= (long)d.w) continue;
                for (size_t ci = 0; ci < d.cin; ci++)
                    s += (double)c.wt[((co * d.k + ky) * d.k + kx) * d.cin + ci] *
                         c.x[((b * d.h + (size_t)sy) * d.w + (size_t)sx) * d.cin + ci];
            }
        worst = fmax(worst, fabs(s - c.y[o]));
    }
    snprintf(name, sizeof name, "sconv %s: forward = the direct sum", tag);
    CHECK(name, worst < 1e-4, "max |diff| %g", worst);
    /* the transpose is the adjoint: <conv(x), v> = <x, deconv(v)> */
    float *v = test_randbuf(r, ny, 1), *tx = test_zeros(nx);
    loom_deconv_forward(tx, v, c.wt, d, c.col);
    const double lhs = gc_dot(c.y, v, ny), rhs = gc_dot(c.x, tx, nx);
    snprintf(name, sizeof name, "sconv %s: deconv is conv's adjoint", tag);
    CHECK(name, fabs(lhs - rhs) < 1e-4 * (1 + fabs(lhs)), "%.7g vs %.7g", lhs, rhs);
    /* conv: dx, dwt */
    c.R = test_randbuf(r, ny, 1);
    float *dx = test_zeros(nx), *dw = test_zeros(nw);
    loom_sconv_backward_data(dx, c.R, c.wt, d, c.col);
    loom_sconv_backward_weights(dw, c.x, c.R, d, c.col);
    snprintf(name, sizeof name, "sconv %s: gradient x", tag);
    GRADCHECK(name, sc_loss, &c, c.x, dx, nx);
    snprintf(name, sizeof name, "sconv %s: gradient weights", tag);
    GRADCHECK(name, sc_loss, &c, c.wt, dw, nw);
    /* deconv: din, dwt (accumulating onto a nonzero start) */
    free(c.R);
    c.R = test_randbuf(r, nx, 1), c.deconv = 1;
    float *din = test_randbuf(r, ny, 1), *din0 = malloc(ny * sizeof *din0), *dw2 = test_randbuf(r, nw, 1);
    float *dw20 = malloc(nw * sizeof *dw20);
    memcpy(din0, din, ny * sizeof *din), memcpy(dw20, dw2, nw * sizeof *dw2);
    loom_deconv_backward(din, dw2, c.R, c.y, c.wt, d, c.col);
    for (size_t i = 0; i < ny; i++) din[i] -= din0[i];
    for (size_t i = 0; i < nw; i++) dw2[i] -= dw20[i];
    snprintf(name, sizeof name, "deconv %s: gradient input", tag);
    GRADCHECK(name, sc_loss, &c, c.y, din, ny);
    snprintf(name, sizeof name, "deconv %s: gradient weights", tag);
    GRADCHECK(name, sc_loss, &c, c.wt, dw2, nw);
    free(c.x), free(c.y), free(c.wt), free(c.R), free(c.col), free(v), free(tx), free(dx), free(dw);
    free(din), free(din0), free(dw2), free(dw20);
}

/* ------------------------------------------------------------ models */

static loom_config gen_cfg(size_t H, size_t W, size_t C, size_t Z, size_t T) {
    loom_config c = {.model = "gran", .height = H, .width = W, .layers = 1, .hidden = C, .zdim = Z, .steps_draw = T};
    return c;
}
static loom_config disc_cfg(size_t H, size_t W, size_t C) {
    loom_config c = {.model = "gran_d", .height = H, .width = W, .layers = 1, .hidden = C};
    return c;
}

/* the recurrent discriminator: LSTM sweeps of h per direction over 2x2 patches */
static loom_config rdisc_cfg(size_t H, size_t W, size_t h) {
    loom_config c = {.model = "renet_d", .height = H, .width = W, .layers = 1, .hidden = h, .cell = "lstm", .patch = 2};
    return c;
}

/* the loss of a model's ops for gradient checks: generator sum R x, or
 * discriminator sum R logit on the float images x */
typedef struct {
    test_model_ctx base; /* base.m: the model under test */
    void *ws;
    float *x, *z, *R, *out;
    size_t n;
} op_ctx;

static double gen_loss(void *p) {
    op_ctx *c = p;
    loom_gran_generate_z(c->base.m, c->ws, c->out, c->z, c->n);
    return gc_dot(c->out, c->R, c->n * c->base.m->cfg.height * c->base.m->cfg.width);
}

static double disc_loss(void *p) {
    op_ctx *c = p;
    c->base.m->ops->forward_x(c->base.m, c->ws, c->out, c->x, c->n);
    return gc_dot(c->out, c->R, c->n);
}

static void test_op_grads(loom_rng *r) {
    const size_t H = 8, W = 12, C = 2, Z = 3, T = 3, n = 3, HW = H * W;
    loom_config gc = gen_cfg(H, W, C, Z, T), dc = disc_cfg(H, W, C);
    loom_model *g = test_model(&gc, 1, 3, 0.6f), *d = test_model(&dc, 1, 4, 0.3f);
    /* generator: every tensor of sum R x, without and with batchnorm (over
     * the 3 images: each image's gradient reaches the others' statistics) */
    for (int bn = 0; bn <= 1; bn++) {
        gc.batchnorm = bn;
        loom_model *gm = bn ? test_model(&gc, 1, 11, 0.6f) : g;
        op_ctx c = {.base = {.m = gm}, .ws = calloc(1, gm->ops->train_ws_bytes(&gc, n)),
                    .z = test_randbuf(r, n * Z, 2), .R = test_randbuf(r, n * HW, 1), .out = test_zeros(n * HW), .n = n};
        float *grad = test_zeros(gm->nfloats);
        gen_loss(&c);
        gm->ops->backward_out(gm, c.ws, grad, NULL, c.R, NULL, n, 0.0f);
        test_param_grads(gen_loss, &c.base, grad, bn ? "gran generator (batchnorm): gradient " :
                         "gran generator: gradient ", "", 64, 7, 1e-3, 1e-4);
        if (bn) loom_model_free(gm);
        free(c.ws), free(c.R), free(c.out), free(grad), free(c.z);
    }
    /* discriminator: every tensor, and the input; with mbstd 2 over 5
     * images the groups are 2, 2 and 1 (a lone image's sd is sqrt(eps)) */
    for (size_t G = 0; G <= 2; G += 2) {
        dc.mbstd = G;
        loom_model *dm = G ? test_model(&dc, 1, 4, 0.3f) : d;
        const size_t nd = G ? 5 : n;
        if (G) dm->w[loom_model_param(dm, "mbstd.weight")->offset] = 0.7f; /* it starts at 0 */
        op_ctx e = {.base = {.m = dm}, .ws = calloc(1, dm->ops->train_ws_bytes(&dc, nd)),
                    .x = test_randbuf(r, nd * HW, 0.5f), .R = test_randbuf(r, nd, 1), .out = test_zeros(nd), .n = nd};
        for (size_t i = 0; i < nd * HW; i++) e.x[i] += 0.5f;
        float *gd = test_zeros(dm->nfloats), *dx = test_zeros(nd * HW);
        disc_loss(&e);
        dm->ops->backward_out(dm, e.ws, gd, dx, e.R, NULL, nd, 0.0f);
        char tag[96];
        snprintf(tag, sizeof tag, "gran_d discriminator (mbstd %zu): gradient ", G);
        test_param_grads(disc_loss, &e.base, gd, tag, "", 64, 5, 1e-3, 1e-4);
        snprintf(tag, sizeof tag, "gran_d discriminator (mbstd %zu): gradient of its input image", G);
        GRADCHECK(tag, disc_loss, &e, e.x, dx, nd * HW);
        /* with grad NULL only dinput: the same input gradient */
        float *dx2 = test_zeros(nd * HW);
        disc_loss(&e);
        dm->ops->backward_out(dm, e.ws, NULL, dx2, e.R, NULL, nd, 0.0f);
        CHECK("gran_d: backward with grad NULL gives the same input gradient",
              memcmp(dx, dx2, nd * HW * sizeof *dx) == 0, "mbstd %zu: differs", G);
        if (G) { /* two identical images in a group: their logits move by w_s sqrt(eps) only */
            float l0[5], l1[5];
            memcpy(e.x + HW, e.x, HW * sizeof *e.x);
            dm->ops->forward_x(dm, e.ws, l0, e.x, nd);
            dm->w[loom_model_param(dm, "mbstd.weight")->offset] = 0.0f;
            dm->ops->forward_x(dm, e.ws, l1, e.x, nd);
            CHECK("gran_d mbstd: a group of two identical images has sigma ~ 0, the others do not",
                  fabsf(l0[0] - l1[0]) < 1e-4f && fabsf(l0[1] - l1[1]) < 1e-4f && fabsf(l0[2] - l1[2]) > 1e-3f,
                  "logit shifts %g %g %g", l0[0] - l1[0], l0[1] - l1[1], l0[2] - l1[2]);
            loom_model_free(dm);
        }
        free(e.ws), free(e.x), free(e.R), free(e.out), free(gd), free(dx), free(dx2);
    }
    loom_model_free(g), loom_model_free(d);
}

/* renet_d: every tensor and the input of sum R logit, on a 7x5 image (its
 * 2x2 patches padded at the right and bottom), in gray and in colour; with
 * grad NULL the same input gradient */
static void test_renet_d_grads(loom_rng *r) {
    for (size_t C = 1; C <= 3; C += 2) {
        const size_t H = 7, W = 5, n = 3, X = n * C * H * W;
        loom_config dc = rdisc_cfg(H, W, 3);
        dc.channels = C, dc.layers = C == 1 ? 2 : 1;
        loom_model *d = test_model(&dc, 1, 31, 0.5f);
        op_ctx e = {.base = {.m = d}, .ws = calloc(1, d->ops->train_ws_bytes(&dc, n)), .x = test_randbuf(r, X, 0.5f),
                    .R = test_randbuf(r, n, 1), .out = test_zeros(n), .n = n};
        for (size_t i = 0; i < X; i++) e.x[i] += 0.5f;
        float *gd = test_zeros(d->nfloats), *dx = test_zeros(X), *dx2 = test_zeros(X);
        disc_loss(&e);
        d->ops->backward_out(d, e.ws, gd, dx, e.R, NULL, n, 0.0f);
        char tag[96];
        snprintf(tag, sizeof tag, "renet_d discriminator (%zu channel%s, %zu layer%s): gradient ", C, C == 1 ? "" : "s",
                 dc.layers, dc.layers == 1 ? "" : "s");
        test_param_grads(disc_loss, &e.base, gd, tag, "", 64, 5, 1e-3, 1e-4);
        snprintf(tag + strlen(tag), sizeof tag - strlen(tag), "of its input image");
        GRADCHECK(tag, disc_loss, &e, e.x, dx, X);
        disc_loss(&e);
        d->ops->backward_out(d, e.ws, NULL, dx2, e.R, NULL, n, 0.0f);
        CHECK("renet_d: backward with grad NULL gives the same input gradient", memcmp(dx, dx2, X * sizeof *dx) == 0,
              "%zu channels: differs", C);
        /* its logits of bytes (battle, score) are those of the images / 255 */
        uint8_t *img = malloc(X);
        float lb[3], lx[3];
        double internal[3];
        for (size_t i = 0; i < X; i++) img[i] = (uint8_t)(i * 37 % 256), e.x[i] = (float)img[i] / 255.0f;
        d->ops->forward_out(d, e.ws, lb, internal, img, NULL, n);
        d->ops->forward_x(d, e.ws, lx, e.x, n);
        CHECK("renet_d: the logits of bytes are those of bytes / 255", memcmp(lb, lx, sizeof lb) == 0,
              "%g vs %g", lb[0], lx[0]);
        free(img), free(e.ws), free(e.x), free(e.R), free(e.out), free(gd), free(dx), free(dx2);
        loom_model_free(d);
    }
}

/* renet_d against bench/renet_torch.py disc-fixture: logits of float
 * images, every parameter's gradient and the images' of sum r logit */
static void test_renet_d_reference(void) {
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/renet_d_ref.safetensors", &err);
    CHECK("renet_d fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) return;
    const size_t H = test_meta_size(f, "height"), W = test_meta_size(f, "width"), B = test_meta_size(f, "batch");
    loom_config dc = rdisc_cfg(H, W, test_meta_size(f, "hidden"));
    dc.layers = test_meta_size(f, "layers"), dc.patch = test_meta_size(f, "patch");
    loom_model *d = NULL;
    st = loom_model_create(&d, &dc, 1, &err);
    CHECK("renet_d fixture: the model of its config", st == LOOM_OK, "%s", err.msg);
    if (st) {
        loom_safetensors_close(f);
        return;
    }
    bool all = true;
    for (size_t p = 0; p < d->nparams; p++) {
        const loom_param *pp = &d->params[p];
        if (loom_st_read_f32(f, pp->name, d->w + pp->offset, pp->ndim, pp->shape, &err)) printf("# %s\n", err.msg), all = false;
    }
    float *x = malloc(B * H * W * sizeof *x), *dxr = malloc(B * H * W * sizeof *dxr), r[8], lref[8], lg[8];
    size_t xs[3] = {B, H, W};
    all = all && !loom_st_read_f32(f, "images", x, 3, xs, &err) && !loom_st_read_f32(f, "grad.images", dxr, 3, xs, &err) &&
          !loom_st_read_f32(f, "r", r, 1, &B, &err) && !loom_st_read_f32(f, "logits", lref, 1, &B, &err);
    CHECK("renet_d fixture: every tensor with loom's shape, the images, r and the logits", all, "%s", err.msg);
    if (all) {
        void *ws = calloc(1, d->ops->train_ws_bytes(&dc, B));
        float *dx = test_zeros(B * H * W);
        d->ops->forward_x(d, ws, lg, x, B);
        double e = test_rel_err(lg, lref, B);
        CHECK("renet_d: logits of float images match PyTorch", e < 1e-5, "max error %.3g of their scale", e);
        memset(d->g, 0, d->nfloats * sizeof *d->g);
        d->ops->backward_out(d, ws, d->g, dx, r, NULL, B, 0.0f);
        test_ref_grads(f, d, "", "renet_d: ", 1e-5);
        e = test_rel_err(dx, dxr, B * H * W);
        CHECK("renet_d: the gradient of its input images matches PyTorch", e < 1e-5, "max error %.3g of its scale", e);
        free(ws), free(dx);
    }
    free(x), free(dxr);
    loom_model_free(d);
    loom_safetensors_close(f);
}

/* the samples an autoencoder's adversarial term judges: sum R x of generate.
 * A rae sample's rows are Bernoulli draws, held fixed by its gradient: a
 * difference quotient whose step flips one is meaningless, and with noise
 * seed 79 these steps flip none (with 77 or 78 some do). */
static double sample_loss(void *p) {
    op_ctx *c = p;
    c->base.m->ops->generate(c->base.m, c->ws, c->out, NULL, 79, 5, c->n);
    return gc_dot(c->out, c->R, c->n * c->base.m->cfg.height * c->base.m->cfg.width);
}

/* draw (with and without attention) and a variational rae: every tensor of
 * sum R x through generate's decoder; the encoder's tensors get none */
static void test_sample_grads(loom_rng *r) {
    const size_t H = 8, W = 8, n = 3, HW = H * W;
    for (int k = 0; k < 3; k++) {
        loom_config mc = {.height = H, .width = W, .layers = 1, .hidden = 5, .zdim = 3, .variational = 1};
        snprintf(mc.model, sizeof mc.model, "%s", k < 2 ? "draw" : "rae");
        if (k < 2) mc.steps_draw = 3, mc.read_n = 2, mc.write_n = 3, mc.attention = k, mc.variational = 0;
        loom_model *m = test_model(&mc, 1, 21 + (uint64_t)k, 0.6f);
        op_ctx c = {.base = {.m = m}, .ws = calloc(1, m->ops->train_ws_bytes(&mc, n)),
                    .R = test_randbuf(r, n * HW, 1), .out = test_zeros(n * HW), .n = n};
        float *grad = test_zeros(m->nfloats);
        sample_loss(&c);
        bool range = true;
        for (size_t i = 0; i < n * HW; i++) range = range && c.out[i] > 0.0f && c.out[i] < 1.0f;
        m->ops->backward_out(m, c.ws, grad, NULL, c.R, NULL, n, 1.0f);
        char tag[96], name[160];
        snprintf(tag, sizeof tag, "%s%s samples (generate): gradient ", mc.model, k == 1 ? " (attention)" : "");
        snprintf(name, sizeof name, "%s%s samples (generate): images in (0, 1)", mc.model, k == 1 ? " (attention)" : "");
        CHECK(name, range, "an image outside (0, 1)");
        for (size_t p = 0; p < m->nparams; p++) {
            const loom_param *pp = &m->params[p];
            const bool dec = strncmp(pp->name, "dec.", 4) == 0 || strncmp(pp->name, "write", 5) == 0 ||
                             strncmp(pp->name, "out.", 4) == 0;
            snprintf(name, sizeof name, "%s%s%s", tag, pp->name, dec ? "" : " is 0 (not the decoder's)");
            if (dec) GRADCHECK(name, sample_loss, &c, m->w + pp->offset, grad + pp->offset, pp->size);
            bool zero = true;
            for (size_t i = 0; !dec && i < pp->size; i++) zero = zero && grad[pp->offset + i] == 0.0f;
            if (!dec) CHECK(name, zero, "a sample's gradient reached it");
        }
        free(c.ws), free(c.R), free(c.out), free(grad);
        loom_model_free(m);
    }
}

/* ------------------------------------------------ the GAN objective */

typedef struct {
    test_model_ctx base; /* base.m: the model whose tensors are probed */
    loom_model *models[2];
    loom_gan *gan;
    const uint8_t *imgs;
    size_t B;
    size_t stage; /* the loss probed: 0 L_D, 1 L_G */
} gan_ctx;

static double gan_loss(void *p) {
    gan_ctx *c = p;
    double losses[2] = {0};
    unsigned upd;
    loom_gan_stage(c->gan, 0, c->models, 2, c->imgs, c->B, 77, 0, losses, &upd, NULL);
    if (c->stage == 1) loom_gan_stage(c->gan, 1, c->models, 2, c->imgs, c->B, 77, 0, losses, &upd, NULL);
    return (c->stage ? losses[0] : losses[1]) * (double)c->B; /* per batch: gradients of order 1 */
}

static void test_gan_grads(int recurrent) {
    const size_t H = 8, W = 8, C = 2, Z = 3, T = 2, B = 10, HW = H * W;
    loom_config gc = gen_cfg(H, W, C, Z, T), dc = recurrent ? rdisc_cfg(H, W, 3) : disc_cfg(H, W, C);
    loom_model *g = test_model(&gc, 1, 5, 0.3f), *d = test_model(&dc, 1, 6, 0.3f);
    uint8_t *imgs = malloc(B * HW);
    test_random_images_seed(imgs, B * HW, 11);
    gan_ctx c = {.models = {g, d}, .imgs = imgs, .B = B};
    loom_error err;
    loom_status st = loom_gan_create(&c.gan, g, d, B, 1, &err);
    const char *tag = recurrent ? " (renet_d)" : "";
    char what[128];
    snprintf(what, sizeof what, "gan%s: created for gran and %s", tag, dc.model);
    CHECK(what, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    double losses[2];
    unsigned upd = 0;
    loom_gan_stage(c.gan, 0, c.models, 2, imgs, B, 77, 0, losses, &upd, NULL);
    CHECK("gan stage 0 updates the discriminator only", upd == 2u, "mask %u", upd);
    float *gD = malloc(d->nfloats * sizeof *gD), *gG = malloc(g->nfloats * sizeof *gG);
    for (size_t i = 0; i < d->nfloats; i++) gD[i] = d->g[i] * (float)B;
    loom_gan_stage(c.gan, 1, c.models, 2, imgs, B, 77, 0, losses, &upd, NULL);
    CHECK("gan stage 1 (d_steps 1) updates the generator only", upd == 1u, "mask %u", upd);
    for (size_t i = 0; i < g->nfloats; i++) gG[i] = g->g[i] * (float)B;
    c.base.m = d, c.stage = 0;
    snprintf(what, sizeof what, "gan%s L_D: gradient disc.", tag);
    test_param_grads(gan_loss, &c.base, gD, what, "", 64, 5, 1e-3, 1e-4);
    /* L_G = mean softplus(-D(G(z))): through the discriminator's input into
     * every generator tensor */
    c.base.m = g, c.stage = 1;
    snprintf(what, sizeof what, "gan%s L_G through the discriminator: gradient gen.", tag);
    test_param_grads(gan_loss, &c.base, gG, what, "", 64, 7, 1e-3, 1e-4);
    if (recurrent) {
        loom_gan_free(c.gan);
        free(gD), free(gG), free(imgs);
        loom_model_free(g), loom_model_free(d);
        return;
    }
    /* d_steps 2: the generator is left alone every other step */
    loom_gan *g2;
    loom_gan_create(&g2, g, d, B, 2, NULL);
    loom_gan_stage(g2, 1, c.models, 2, imgs, B, 77, 0, losses, &upd, NULL);
    unsigned upd2;
    loom_gan_stage(g2, 1, c.models, 2, imgs, B, 77, 1, losses, &upd2, NULL);
    CHECK("gan d_steps 2: the generator updates at steps 2, 4, ... only", upd == 0u && upd2 == 1u, "masks %u %u", upd,
          upd2);
    loom_gan_free(g2);
    loom_gan_free(c.gan);
    free(gD), free(gG), free(imgs);
    loom_model_free(g), loom_model_free(d);
}

/* ------------------------------------------------ an autoencoder's adversarial term */

typedef struct {
    test_model_ctx base; /* base.m: the model whose tensors are probed */
    loom_model *m, *d;
    const uint8_t *imgs;
    size_t B;
    float w;
    unsigned on; /* the fakes judged: LOOM_ADV_RECON, LOOM_ADV_SAMPLES */
    int stage;   /* 0: L_D, 1: the model's objective */
} adv_ctx;

/* with the fakes judged, nf of them: f_recon = sigmoid(logit_b), the
 * reconstruction, and f_sample = the model's sample b (generate, noise seed 0):
 * stage 1: (sum_b nll_b + w/nf sum_b sum_k softplus(-D(f_k))) / (B HW),
 * stage 0: L_D = mean_b softplus(-D(x_b / 255)) + 1/nf sum_k softplus(D(f_k)),
 * the whole batch in one call of each op */
static double adv_loss(void *p) {
    adv_ctx *c = p;
    const loom_model_ops *mo = c->m->ops;
    const size_t HW = c->m->cfg.height * c->m->cfg.width, B = c->B;
    const bool on_r = c->on & LOOM_ADV_RECON, on_s = c->on & LOOM_ADV_SAMPLES;
    const size_t nf = (size_t)on_r + (size_t)on_s;
    void *wsm = calloc(1, mo->train_ws_bytes(&c->m->cfg, B)), *wss = calloc(1, mo->train_ws_bytes(&c->m->cfg, B));
    void *wsd = calloc(1, c->d->ops->train_ws_bytes(&c->d->cfg, 2 * B));
    float *x = malloc(3 * B * HW * sizeof *x), *l = malloc(B * HW * sizeof *l), lg[96];
    double internal[32], nll[32], J = 0.0;
    for (size_t i = 0; i < B * HW; i++) x[i] = (float)c->imgs[i] / 255.0f;
    mo->forward_out(c->m, wsm, l, internal, c->imgs, NULL, B);
    if (on_r)
        for (size_t i = 0; i < B * HW; i++) x[B * HW + i] = 1.0f / (1.0f + expf(-l[i]));
    if (on_s) mo->generate(c->m, wss, x + nf * B * HW, NULL, 0, 0, B);
    c->d->ops->forward_x(c->d, wsd, lg, x, (1 + nf) * B);
    if (c->stage == 0) {
        for (size_t b = 0; b < B; b++) {
            J += loom_softplus(-(double)lg[b]);
            for (size_t k = 1; k <= nf; k++) J += loom_softplus((double)lg[k * B + b]) / (double)nf;
        }
        J /= (double)B;
    } else {
        mo->shard(c->m, wsm, NULL, nll, c->imgs, NULL, B, 0.0f);
        for (size_t b = 0; b < B; b++) {
            J += nll[b];
            for (size_t k = 1; k <= nf; k++) J += c->w * loom_softplus(-(double)lg[k * B + b]) / (double)nf;
        }
        J /= (double)(B * HW);
    }
    free(wsm), free(wss), free(wsd), free(x), free(l);
    return J;
}

static void test_adv_grads(const char *model, int variational, unsigned on) {
    const size_t H = 8, W = 8, B = 10, HW = H * W;
    loom_config mc = {.height = H, .width = W, .layers = 1, .hidden = 4, .zdim = 3, .variational = variational};
    snprintf(mc.model, sizeof mc.model, "%s", model);
    if (strcmp(model, "draw") == 0) mc.steps_draw = 3, mc.read_n = 2, mc.write_n = 3, mc.attention = 1, mc.variational = 0;
    loom_config dc = disc_cfg(H, W, 2);
    loom_model *m = test_model(&mc, 1, 8, 0.3f), *d = test_model(&dc, 1, 9, 0.3f);
    m->noise_seed = 4242; /* what the trainer sets for the step: the binarization and the code's noise */
    uint8_t *imgs = malloc(B * HW);
    test_random_images_seed(imgs, B * HW, 12);
    loom_adv *a;
    loom_error err;
    char what[200], tag[64];
    snprintf(tag, sizeof tag, "adversarial %s%s, on %s", model, strcmp(model, "rae") || variational ? "" : " (plain)",
             loom_adv_on_name(on));
    loom_status st = loom_adv_create(&a, m, d, B, 200.0, on, &err);
    snprintf(what, sizeof what, "%s: created with gran_d", tag);
    CHECK(what, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    loom_model *ms[2] = {m, d};
    double losses[2];
    unsigned u0 = 0, u1 = 0;
    loom_adv_stage(a, 0, ms, 2, imgs, B, 0, 0, losses, &u0, NULL);
    float *gD = malloc(d->nfloats * sizeof *gD);
    memcpy(gD, d->g, d->nfloats * sizeof *gD);
    loom_adv_stage(a, 1, ms, 2, imgs, B, 0, 0, losses, &u1, NULL);
    snprintf(what, sizeof what, "%s: stage 0 updates the discriminator, stage 1 the model", tag);
    CHECK(what, u0 == 2u && u1 == 1u, "masks %u %u", u0, u1);
    adv_ctx c = {.base = {.m = d}, .m = m, .d = d, .imgs = imgs, .B = B, .w = 200.0f, .on = on, .stage = 0};
    snprintf(what, sizeof what, "%s L_D: gradient disc.", tag);
    test_param_grads(adv_loss, &c.base, gD, what, "", 64, 5, 1e-3, 1e-4);
    c.base.m = m, c.stage = 1;
    snprintf(what, sizeof what, "%s: the model's own loss + 200 %s, through the discriminator: gradient ", tag,
             on == 3 ? "(softplus(-D(recon)) + softplus(-D(sample))) / 2" :
             on == LOOM_ADV_RECON ? "softplus(-D(recon))" : "softplus(-D(sample))");
    test_param_grads(adv_loss, &c.base, m->g, what, "", 64, 7, 1e-3, 1e-4);
    /* losses[0]: the model's own loss in nats per pixel, as the model alone */
    double nll[16], own = 0.0;
    loom_model_nll(m, nll, imgs, NULL, B, B, NULL);
    for (size_t b = 0; b < B; b++) own += nll[b];
    own /= (double)(B * HW);
    snprintf(what, sizeof what, "%s: losses[0] is the model's own loss per pixel", tag);
    CHECK(what, fabs(losses[0] - own) < 1e-5 * own, "%.9g vs %.9g", losses[0], own);
    const double t1 = loom_adv_take(a), t2 = loom_adv_take(a);
    snprintf(what, sizeof what, "%s: loom_adv_take gives the adversarial term once", tag);
    CHECK(what, t1 > 0 && isfinite(t1) && isnan(t2), "%g then %g", t1, t2);
    loom_adv_free(a);
    free(gD), free(imgs);
    loom_model_free(m), loom_model_free(d);
}

/* what cannot take an adversarial term */
static void test_adv_refused(void) {
    const size_t H = 8, W = 8, B = 10;
    loom_config mc = {.model = "rae", .height = H, .width = W, .layers = 1, .hidden = 4, .zdim = 3};
    loom_config gc = gen_cfg(H, W, 2, 3, 2), dc = disc_cfg(H, W, 2);
    loom_model *m = test_model(&mc, 1, 8, 0.3f), *d = test_model(&dc, 1, 9, 0.3f), *g = test_model(&gc, 1, 3, 0.3f);
    loom_adv *a;
    loom_error err;
    CHECK("adversarial: a model without a likelihood is refused, as is weight 0",
          loom_adv_create(&a, g, d, B, 1.0, LOOM_ADV_RECON, &err) == LOOM_EINVAL &&
          loom_adv_create(&a, m, d, B, 0.0, LOOM_ADV_RECON, &err) == LOOM_EINVAL, "accepted");
    const loom_status st = loom_adv_create(&a, m, d, B, 1.0, LOOM_ADV_SAMPLES, &err);
    CHECK("adversarial: samples of a rae without --variational are refused (no prior)",
          st == LOOM_EINVAL && strstr(err.msg, "no prior"), "status %d: %s", (int)st, st ? err.msg : "accepted");
    CHECK("adversarial: judging nothing is refused", loom_adv_create(&a, m, d, B, 1.0, 0, &err) == LOOM_EINVAL,
          "accepted");
    loom_model_free(m), loom_model_free(d), loom_model_free(g);
}

/* the same gradients and losses on 1 and 2 threads */
static void test_threads(void) {
    const size_t H = 12, W = 8, B = 21, HW = H * W;
    loom_config gc = gen_cfg(H, W, 3, 4, 3), dc = disc_cfg(H, W, 3);
    float *g1 = NULL, *d1 = NULL;
    double l1[2] = {0}, l2[2] = {0};
    int same = 1;
    uint8_t *imgs = malloc(B * HW);
    test_random_images_seed(imgs, B * HW, 12);
    for (int threads = 1; threads <= 2; threads++) {
        loom_model *g = test_model(&gc, threads, 7, 0.2f), *d = test_model(&dc, threads, 8, 0.2f);
        loom_model *ms[2] = {g, d};
        loom_gan *gan;
        loom_gan_create(&gan, g, d, B, 1, NULL);
        double *l = threads == 1 ? l1 : l2;
        unsigned upd;
        loom_gan_stage(gan, 0, ms, 2, imgs, B, 99, 0, l, &upd, NULL);
        loom_gan_stage(gan, 1, ms, 2, imgs, B, 99, 0, l, &upd, NULL);
        if (threads == 1) {
            g1 = malloc(g->nfloats * sizeof *g1), d1 = malloc(d->nfloats * sizeof *d1);
            memcpy(g1, g->g, g->nfloats * sizeof *g1), memcpy(d1, d->g, d->nfloats * sizeof *d1);
        } else {
            same = memcmp(g1, g->g, g->nfloats * sizeof *g1) == 0 && memcmp(d1, d->g, d->nfloats * sizeof *d1) == 0;
        }
        loom_gan_free(gan);
        loom_model_free(g), loom_model_free(d);
    }
    CHECK("gan: gradients bit-identical on 1 and 2 threads", same, "differ");
    CHECK("gan: losses bit-identical on 1 and 2 threads", l1[0] == l2[0] && l1[1] == l2[1], "%.17g %.17g / %.17g %.17g",
          l1[0], l1[1], l2[0], l2[1]);
    free(g1), free(d1), free(imgs);
}

/* ------------------------------------------------ PyTorch */

/* file: gran_ref (the plain networks) or gran_bn_ref (the generator's
 * batchnorm, the discriminator's mbstd), tag: how the checks say which */
static void test_reference(const char *file, const char *tag) {
    loom_st_file *f;
    loom_error err;
    char path[256], what[160];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, file);
    loom_status st = loom_safetensors_open(&f, path, &err);
    snprintf(what, sizeof what, "%s fixture loads", tag);
    CHECK(what, st == LOOM_OK, "%s", err.msg);
    if (st) return;
    const size_t H = test_meta_size(f, "height"), W = test_meta_size(f, "width"), C = test_meta_size(f, "hidden");
    const size_t Z = test_meta_size(f, "zdim"), T = test_meta_size(f, "steps_draw"), B = test_meta_size(f, "batch");
    const size_t HW = H * W;
    loom_config gc = gen_cfg(H, W, C, Z, T), dc = disc_cfg(H, W, C);
    gc.batchnorm = (int)test_meta_size(f, "batchnorm"), dc.mbstd = test_meta_size(f, "mbstd");
    loom_model *g, *d;
    loom_model_create(&g, &gc, 1, &err);
    loom_model_create(&d, &dc, 1, &err);
    int all = 1;
    char key[128];
    for (int k = 0; k < 2; k++) {
        loom_model *m = k ? d : g;
        for (size_t p = 0; p < m->nparams; p++) {
            const loom_param *pp = &m->params[p];
            snprintf(key, sizeof key, "%s.%s", k ? "disc" : "gen", pp->name);
            if (loom_st_read_f32(f, key, m->w + pp->offset, pp->ndim, pp->shape, &err)) {
                printf("# %s\n", err.msg);
                all = 0;
            }
        }
    }
    snprintf(what, sizeof what, "%s fixture: every tensor of both models with loom's shape", tag);
    CHECK(what, all, "see above");
    uint8_t *imgs = malloc(B * HW);
    const loom_tensor *ti = loom_st_find(f, "images");
    float *z = malloc(B * Z * sizeof *z), *fake = malloc(B * HW * sizeof *fake), *fref = malloc(B * HW * sizeof *fref);
    float lref[2] = {0};
    size_t zs[2] = {B, Z}, fs[3] = {B, H, W}, one = 1;
    st = ti ? LOOM_OK : LOOM_EFORMAT;
    if (!st) memcpy(imgs, ti->data, B * HW);
    if (!st) st = loom_st_read_f32(f, "z", z, 2, zs, &err);
    if (!st) st = loom_st_read_f32(f, "fake", fref, 3, fs, &err);
    if (!st) st = loom_st_read_f32(f, "loss_d", &lref[1], 1, &one, &err);
    if (!st) st = loom_st_read_f32(f, "loss_g", &lref[0], 1, &one, &err);
    snprintf(what, sizeof what, "%s fixture: images, z, fakes and losses", tag);
    CHECK(what, st == LOOM_OK && all, "%s", st ? err.msg : "");
    if (st || !all) goto done;
    void *ws = calloc(1, g->ops->train_ws_bytes(&gc, B));
    for (size_t b0 = 0; b0 < B; b0 += 8) /* in the trainer's micro-shards: batchnorm's groups */
        loom_gran_generate_z(g, ws, fake + b0 * HW, z + b0 * Z, LOOM_MIN(8, B - b0));
    double e = test_rel_err(fake, fref, B * HW);
    snprintf(what, sizeof what, "%s: generated images match PyTorch", tag);
    CHECK(what, e < 1e-5, "max error %.3g of their scale", e);
    free(ws);
    loom_model *ms[2] = {g, d};
    loom_gan *gan;
    loom_gan_create(&gan, g, d, B, 1, &err);
    loom_gan_set_noise(gan, z);
    double losses[2];
    unsigned upd;
    loom_gan_stage(gan, 0, ms, 2, imgs, B, 1, 0, losses, &upd, NULL);
    snprintf(what, sizeof what, "%s: L_D matches PyTorch", tag);
    CHECK(what, fabs(losses[1] - lref[1]) < 1e-5 * lref[1], "loom %.9f torch %.9f", losses[1], (double)lref[1]);
    snprintf(what, sizeof what, "%s L_D: ", tag);
    test_ref_grads(f, d, "disc.", what, 1e-5);
    loom_gan_stage(gan, 1, ms, 2, imgs, B, 1, 0, losses, &upd, NULL);
    snprintf(what, sizeof what, "%s: L_G matches PyTorch", tag);
    CHECK(what, fabs(losses[0] - lref[0]) < 1e-5 * lref[0], "loom %.9f torch %.9f", losses[0], (double)lref[0]);
    snprintf(what, sizeof what, "%s L_G: ", tag);
    test_ref_grads(f, g, "gen.", what, 1e-5);
    loom_gan_free(gan);
done:
    free(imgs), free(z), free(fake), free(fref);
    loom_model_free(g), loom_model_free(d);
    loom_safetensors_close(f);
}

/* ------------------------------------------------ a discriminator learns */

/* real: a bright disc at a random place on black; noise: uniform pixels */
static void make_set(uint8_t *imgs, size_t n, size_t H, size_t W, int real, loom_rng *r) {
    for (size_t b = 0; b < n; b++) {
        const float cy = 3 + (float)(H - 6) * loom_rng_uniform(r), cx = 3 + (float)(W - 6) * loom_rng_uniform(r);
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                const float d2 = ((float)y - cy) * ((float)y - cy) + ((float)x - cx) * ((float)x - cx);
                imgs[(b * H + y) * W + x] = real ? (d2 < 6.0f ? 230 : 10) : (uint8_t)loom_rng_below(r, 256);
            }
    }
}

static void test_disc_learns(int recurrent) {
    const size_t H = 12, W = 12, HW = H * W, n = 16, nt = 64;
    loom_rng rs, *r = &rs; /* its own, so that other tests' draws do not move its sets */
    loom_rng_seed(r, 2016);
    loom_config dc = recurrent ? rdisc_cfg(H, W, 4) : disc_cfg(H, W, 4);
    loom_model *d = test_model(&dc, 1, 9, 0.0f);
    uint8_t *real = malloc(n * HW), *noise = malloc(n * HW), *both = malloc(2 * n * HW);
    make_set(real, n, H, W, 1, r), make_set(noise, n, H, W, 0, r);
    memcpy(both, real, n * HW), memcpy(both + n * HW, noise, n * HW);
    float *m1 = test_zeros(d->nfloats), *v1 = test_zeros(d->nfloats), out[32], dl[32];
    double internal[32];
    loom_adam adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .m = m1, .v = v1, .n = d->nfloats};
    double loss = 0;
    for (int it = 0; it < (recurrent ? 200 : 60); it++) {
        loom_model_forward(d, out, internal, both, NULL, 2 * n, NULL);
        loss = 0;
        for (size_t b = 0; b < 2 * n; b++) { /* softplus(-l) for real, softplus(l) for noise */
            const double l = out[b];
            loss += b < n ? loom_softplus(-l) : loom_softplus(l);
            dl[b] = (float)((1.0 / (1.0 + exp(-l)) - (b < n ? 1.0 : 0.0)) / (double)(2 * n));
        }
        loom_model_backward(d, NULL, dl, 2 * n, 0.0f, NULL);
        loom_adam_step(&adam, d->w, d->g, adam.lr);
    }
    /* held-out images of both kinds */
    uint8_t *tr = malloc(nt * HW), *tn = malloc(nt * HW);
    make_set(tr, nt, H, W, 1, r), make_set(tn, nt, H, W, 0, r);
    float *lr = malloc(nt * sizeof *lr), *ln = malloc(nt * sizeof *ln);
    loom_disc_logits(d, lr, tr, nt, NULL);
    loom_disc_logits(d, ln, tn, nt, NULL);
    size_t right = 0;
    for (size_t b = 0; b < nt; b++) right += (lr[b] > 0) + (ln[b] < 0);
    char what[128];
    snprintf(what, sizeof what, "%s learns a tiny real set against noise: training loss below 0.1 log 2 per image",
             dc.model);
    CHECK(what, loss / (double)(2 * n) < 0.1 * log(2.0), "loss %.4f", loss / (double)(2 * n));
    snprintf(what, sizeof what, "%s tells held-out real images from noise (>= 95%% right)", dc.model);
    CHECK(what, right >= (size_t)(0.95 * 2 * nt), "%zu of %zu", right, 2 * nt);
    free(real), free(noise), free(both), free(m1), free(v1), free(tr), free(tn), free(lr), free(ln);
    loom_model_free(d);
}

/* ------------------------------------------------ the trainer's stages */

/* one staged step (Adam from zero moments moves every weight with a nonzero
 * gradient by about lr): the discriminator by --lr-d, the generator by lr */
static void test_trainer_lr(void) {
    const size_t H = 8, W = 8, HW = H * W, N = 24;
    loom_train_opts o;
    loom_train_opts_default(&o);
    o.batch = 8, o.valid = 0, o.lr = 1e-4, o.clip = 0, o.steps = 10;
    o.model_lr[1] = 1e-2;
    snprintf(o.data, sizeof o.data, "test");
    loom_train_model_spec specs[2] = {{.role = "gen", .cfg = gen_cfg(H, W, 2, 3, 2)}, {.role = "disc", .cfg = disc_cfg(H, W, 2)}};
    loom_trainer *t;
    loom_error err;
    loom_status st = loom_trainer_create(&t, &o, specs, 2, 1, &err);
    CHECK("trainer: a gran run of two models", st == LOOM_OK, "%s", err.msg);
    if (st) return;
    uint8_t *px = malloc(N * HW);
    test_random_images_seed(px, N * HW, 3);
    loom_images im = {.n = N, .h = H, .w = W, .pixels = px, .t = 1, .c = 1};
    loom_model *g = loom_trainer_model(t, 0), *d = loom_trainer_model(t, 1);
    loom_gan *gan;
    loom_gan_create(&gan, g, d, o.batch, 2, &err);
    loom_trainer_set_stages(t, 2, loom_gan_stage, gan);
    st = loom_trainer_set_data(t, &im, &err);
    float *w0g = malloc(g->nfloats * sizeof *w0g), *w0d = malloc(d->nfloats * sizeof *w0d);
    memcpy(w0g, g->w, g->nfloats * sizeof *w0g), memcpy(w0d, d->w, d->nfloats * sizeof *w0d);
    bool skipped;
    double mg[2] = {0}, md = 0;
    for (int k = 0; k < 2 && !st; k++) {
        st = loom_trainer_step(t, &skipped, NULL, 0, &err);
        for (size_t i = 0; i < g->nfloats; i++) mg[k] = fmax(mg[k], fabs(g->w[i] - w0g[i]));
        if (k == 0)
            for (size_t i = 0; i < d->nfloats; i++) md = fmax(md, fabs(d->w[i] - w0d[i]));
    }
    CHECK("trainer stages: the discriminator's first step moves it by about --lr-d (1e-2)",
          !st && md > 0.9e-2 && md < 1.1e-2, "max |dw| %g (%s)", md, st ? err.msg : "");
    CHECK("trainer stages, d_steps 2: the generator stays at step 1, moves by about lr (1e-4) at step 2",
          !st && mg[0] == 0.0 && mg[1] > 0.9e-4 && mg[1] < 1.1e-4, "max |dw| %g then %g", mg[0], mg[1]);
    loom_trainer_free(t);
    loom_gan_free(gan);
    free(px), free(w0g), free(w0d);
}

/* ------------------------------------------------ battle */

/* a generator whose every image is black (sign < 0) or white */
static loom_model *flat_gen(int sign) {
    loom_config c = gen_cfg(8, 8, 1, 2, 2);
    loom_model *g = test_model(&c, 1, 1, 0.0f);
    memset(g->w, 0, g->nfloats * sizeof *g->w);
    g->w[loom_model_param(g, "dec.deconv2.bias")->offset] = 20.0f * (float)sign;
    return g;
}

/* a discriminator that calls bright images real (sign > 0) or dark ones */
static loom_model *bright_disc(int sign) {
    loom_config c = disc_cfg(8, 8, 1);
    loom_model *d = test_model(&c, 1, 1, 0.0f);
    memset(d->w, 0, d->nfloats * sizeof *d->w);
    const loom_param *c1 = loom_model_param(d, "conv1.weight"), *c2 = loom_model_param(d, "conv2.weight");
    const loom_param *fw = loom_model_param(d, "fc.weight"), *fb = loom_model_param(d, "fc.bias");
    for (size_t i = 0; i < c1->size; i++) d->w[c1->offset + i] = 1.0f / 16;
    for (size_t i = 0; i < c2->size; i++) d->w[c2->offset + i] = 1.0f / 16;
    for (size_t i = 0; i < fw->size; i++) d->w[fw->offset + i] = (float)sign;
    uint8_t white[64];
    memset(white, 255, sizeof white);
    float l;
    loom_disc_logits(d, &l, white, 1, NULL); /* the logit of white without the bias: sign L */
    d->w[fb->offset] = -l / 2;               /* white: sign L / 2, black: -sign L / 2 */
    return d;
}

static void test_battle(void) {
    loom_model *ga = flat_gen(-1), *gb = flat_gen(1), *da = bright_disc(1), *db = bright_disc(-1);
    uint8_t test[4 * 64];
    memset(test, 255, sizeof test); /* the "real" images are white */
    loom_battle_result r;
    loom_error err;
    loom_status st = loom_battle(&r, ga, da, gb, db, test, 4, 6, 1, 0.1, &err);
    CHECK("battle: D_A (bright is real) is right on white test images, D_B (dark is real) wrong",
          !st && r.err_test_a == 0.0 && r.err_test_b == 1.0, "%g %g", r.err_test_a, r.err_test_b);
    CHECK("battle: D_A is fooled by B's white samples, D_B by A's black ones",
          !st && r.err_sample_a == 1.0 && r.err_sample_b == 1.0, "%g %g", r.err_sample_a, r.err_sample_b);
    CHECK("battle: r_test = err(D_A, test) / err(D_B, test) = 0, so undecided",
          r.r_test == 0.0 && r.r_sample == 1.0 && r.winner == LOOM_BATTLE_UNDECIDED, "r_test %g r_sample %g winner %s",
          r.r_test, r.r_sample, loom_battle_winner_name(r.winner));
    /* one judge for both: only B's generator fools it, so B wins */
    st = loom_battle(&r, ga, da, gb, da, test, 4, 6, 1, 0.1, &err);
    CHECK("battle: the same discriminator on both sides: r_test 1, r_sample = 1 / 0, B wins",
          !st && r.r_test == 1.0 && isinf(r.r_sample) && r.winner == LOOM_BATTLE_B, "r_test %g r_sample %g winner %s",
          r.r_test, r.r_sample, loom_battle_winner_name(r.winner));
    st = loom_battle(&r, gb, da, ga, da, test, 4, 6, 1, 0.1, &err);
    CHECK("battle: and swapped, A wins with r_sample 0", !st && r.r_sample == 0.0 && r.winner == LOOM_BATTLE_A,
          "r_sample %g winner %s", r.r_sample, loom_battle_winner_name(r.winner));
    loom_model_free(ga), loom_model_free(gb), loom_model_free(da), loom_model_free(db);
}

/* ------------------------------------------------ configs */

static void test_config(void) {
    loom_error err;
    loom_config c = gen_cfg(28, 28, 8, 10, 3);
    CHECK("gran: 28x28 accepted", loom_config_check(&c, &err) == LOOM_OK, "%s", err.msg);
    c.height = 30;
    CHECK("gran: a height not a multiple of 4 is refused", loom_config_check(&c, &err) == LOOM_EINVAL &&
          strstr(err.msg, "multiples of 4"), "%s", err.msg);
    c = gen_cfg(28, 28, 8, 10, 0);
    CHECK("gran: steps_draw 0 is refused", loom_config_check(&c, &err) == LOOM_EINVAL, "accepted");
    c = gen_cfg(28, 28, 8, 10, 3), c.channels = 3;
    CHECK("gran: colour is refused", loom_config_check(&c, &err) == LOOM_EINVAL, "accepted");
    loom_config d = disc_cfg(28, 28, 8);
    d.zdim = 4;
    CHECK("gran_d: a zdim is refused", loom_config_check(&d, &err) == LOOM_EINVAL, "accepted");
    c = gen_cfg(28, 28, 8, 10, 3);
    loom_model *m = test_model(&c, 1, 1, 0.0f);
    double nll;
    uint8_t img[28 * 28] = {0};
    loom_status st = loom_model_nll(m, &nll, img, NULL, 1, 1, &err);
    CHECK("gran: loom_model_nll says there is no likelihood", st == LOOM_EINVAL && strstr(err.msg, "no likelihood"),
          "%s", err.msg);
    CHECK("gran: no exact-nll capability", !(loom_model_caps(m) & LOOM_CAP_EXACT_NLL), "has it");
    loom_model_free(m);
}

int main(void) {
    loom_rng r;
    loom_rng_seed(&r, 2016);
    test_sconv(&r, (loom_sconv_dims){2, 6, 5, 2, 3, 4, 2, 1}, "k4 s2 p1");
    test_sconv(&r, (loom_sconv_dims){1, 7, 7, 3, 2, 3, 2, 0}, "k3 s2 p0");
    test_sconv(&r, (loom_sconv_dims){2, 5, 4, 2, 2, 3, 1, 1}, "k3 s1 p1");
    test_config();
    test_op_grads(&r);
    test_sample_grads(&r);
    test_renet_d_grads(&r);
    test_renet_d_reference();
    test_gan_grads(0);
    test_gan_grads(1);
    test_adv_grads("rae", 1, LOOM_ADV_RECON | LOOM_ADV_SAMPLES);
    test_adv_grads("rae", 0, LOOM_ADV_RECON); /* no prior: its reconstructions alone */
    test_adv_grads("draw", 0, LOOM_ADV_RECON | LOOM_ADV_SAMPLES);
    test_adv_grads("draw", 0, LOOM_ADV_RECON);
    test_adv_grads("draw", 0, LOOM_ADV_SAMPLES);
    test_adv_refused();
    test_threads();
    test_reference("gran_ref.safetensors", "gran");
    test_reference("gran_bn_ref.safetensors", "gran (batchnorm, mbstd 2)");
    test_disc_learns(0);
    test_disc_learns(1);
    test_trainer_lr();
    test_battle();
    CHECK_DONE();
}
