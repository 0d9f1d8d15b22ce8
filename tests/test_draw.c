/* The DRAW model (src/models/draw.c): whole-model gradients with and without
 * attention, the KL term against its closed form and a Monte-Carlo estimate,
 * the importance-weighted bound, thread independence, reproducible sampling,
 * and the ELBO improving on a small overfit set. */
#include "gradcheck.h"
#include "testutil.h"
#include "models/latent.h"
#include "models/model.h"
#include "optim/optim.h"

#include <string.h>

static loom_model *make(size_t H, size_t W, size_t h, size_t z, size_t T, size_t Nr, size_t Nw,
                        int attention, int threads, uint64_t seed) {
    loom_config cfg = {.model = "draw", .height = H, .width = W, .layers = 1, .hidden = h,
                       .zdim = z, .steps_draw = T, .read_n = Nr, .write_n = Nw,
                       .attention = attention};
    return test_model(&cfg, threads, seed, 0.3f);
}

static void test_gradients(int attention) {
    const size_t n = 3, H = 5, W = 6;
    loom_model *m = make(H, W, 4, 3, 3, 2, 3, attention, 1, 7);
    m->noise_seed = 99; /* fixed binarization and eps: the loss is a smooth function of w */
    uint8_t imgs[3 * 5 * 6];
    loom_rng r;
    loom_rng_seed(&r, 3);
    test_random_images(imgs, sizeof imgs, &r);
    test_model_ctx c = {m, imgs, NULL, n};
    double loss;
    loom_model_grad(m, &loss, imgs, NULL, n, NULL);
    float *g = malloc(m->nfloats * sizeof *g);
    const double per = (double)(n * H * W); /* loom_model_grad: mean per pixel */
    for (size_t i = 0; i < m->nfloats; i++) g[i] = (float)(m->g[i] * per);
    const char *tag = attention ? "attention" : "no attention";
    char name[160];
    snprintf(name, sizeof name, "draw (%s): loss == negative ELBO from the forward pass", tag);
    CHECK(name, fabs(loss * per - test_loss_per_batch(&c)) < 1e-6, "grad loss %.9g vs nll %.9g", loss * per, test_loss_per_batch(&c));
    snprintf(name, sizeof name, "draw (%s): gradient of ", tag);
    test_param_grads(test_loss_per_batch, &c, g, name, "", 48, 5, 1e-3, 3e-4);
    double gn = 0.0;
    for (size_t p = 0; p < m->nparams; p++)
        gn += gc_dot(g + m->params[p].offset, g + m->params[p].offset, m->params[p].size);
    CHECK(attention ? "draw (attention): gradient is not zero" : "draw (no attention): gradient is not zero",
          gn > 1e-8, "squared norm %g", gn);
    free(g);
    loom_model_free(m);
}

/* closed-form KL against a hand value and a Monte-Carlo estimate of
 * E_q[log q(z) - log p(z)] computed with the function the model uses */
static void test_kl(void) {
    const float mu1[2] = {1.0f, 0.0f}, ls1[2] = {0.0f, 0.0f};
    /* KL(N(1, 1) || N(0, 1)) = 1/2; KL(N(0, 1) || N(0, 1)) = 0 */
    CHECK("KL: N(1,1) and N(0,1) against N(0,1) by hand", fabs(loom_gauss_kl(mu1, ls1, 2) - 0.5) < 1e-9,
          "got %.9g", loom_gauss_kl(mu1, ls1, 2));
    const float mu[3] = {0.3f, -1.2f, 2.0f}, ls[3] = {-0.7f, 0.4f, -2.0f};
    /* sum_j 0.5 (mu^2 + e^{2 ls} - 1) - ls, evaluated by hand in double */
    double hand = 0.0;
    for (int j = 0; j < 3; j++) hand += 0.5 * (mu[j] * (double)mu[j] + exp(2.0 * ls[j]) - 1.0) - ls[j];
    const double kl = loom_gauss_kl(mu, ls, 3);
    loom_rng r;
    loom_rng_seed(&r, 17);
    const size_t S = 200000;
    double s = 0.0, s2 = 0.0;
    float eps[3], zs[3];
    for (size_t k = 0; k < S; k++) {
        for (int j = 0; j < 3; j++) eps[j] = loom_rng_normal(&r);
        double v = loom_gauss_log_ratio(zs, mu, ls, eps, 3);
        s += v, s2 += v * v;
    }
    const double mean = s / (double)S, se = sqrt((s2 / (double)S - mean * mean) / (double)S);
    CHECK("KL: closed form matches the hand formula", fabs(kl - hand) < 1e-6, "%.9g vs %.9g", kl, hand);
    CHECK("KL: closed form within 4 standard errors of the Monte-Carlo estimate",
          fabs(kl - mean) < 4.0 * se && se < 0.01, "closed %.5f MC %.5f +- %.5f", kl, mean, se);
    zs[0] = 0.0f;
    loom_gauss_log_ratio(zs, mu, ls, (const float[3]){0.5f, 0.0f, 0.0f}, 3);
    CHECK("KL: reparameterised z = mu + exp(ls) eps", fabsf(zs[0] - (0.3f + expf(-0.7f) * 0.5f)) < 1e-6f,
          "z0 %g", zs[0]);
}

/* Through the model: with q.weight = 0 every image's posterior is N(mu, sigma)
 * from q.bias, and iw(K=1) - ELBO = (log q - log p) - KL at the same z, whose
 * mean over images is 0. K large must be a tighter bound than the ELBO. */
static void test_bounds(void) {
    const size_t n = 400, H = 4, W = 4, T = 3, z = 4;
    loom_model *m = make(H, W, 6, z, T, 2, 2, 1, 2, 5);
    const loom_param *qw = loom_model_param(m, "q.weight"), *qb = loom_model_param(m, "q.bias");
    memset(m->w + qw->offset, 0, qw->size * sizeof(float));
    const float mu[4] = {0.5f, -1.0f, 0.0f, 2.0f}, ls[4] = {-0.5f, 0.3f, 0.0f, -1.0f};
    memcpy(m->w + qb->offset, mu, sizeof mu);
    memcpy(m->w + qb->offset + z, ls, sizeof ls);
    uint8_t *imgs = malloc(n * H * W);
    loom_rng r;
    loom_rng_seed(&r, 8);
    test_random_images(imgs, n * H * W, &r);
    double *elbo = malloc(n * sizeof *elbo), *iw1 = malloc(n * sizeof *iw1), *iw32 = malloc(n * sizeof *iw32);
    loom_model_nll(m, elbo, imgs, NULL, n, 64, NULL);
    loom_model_iw_nll(m, iw1, imgs, NULL, n, 1, 64, NULL);
    loom_model_iw_nll(m, iw32, imgs, NULL, n, 32, 64, NULL);
    double s = 0, s2 = 0, se = 0, si = 0, si32 = 0;
    for (size_t b = 0; b < n; b++) {
        double dlt = iw1[b] - elbo[b];
        s += dlt, s2 += dlt * dlt, se += elbo[b], si += iw1[b], si32 += iw32[b];
    }
    const double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    CHECK("iw K=1 minus ELBO averages to 0 (log q - log p vs closed-form KL, same z)",
          fabs(mean) < 4.0 * sd / sqrt((double)n) && sd > 0.1, "mean %.4f sd %.4f", mean, sd);
    CHECK("iw K=32 is a tighter bound than the ELBO and iw K=1", si32 < se && si32 < si,
          "iw32 %.3f elbo %.3f iw1 %.3f", si32 / (double)n, se / (double)n, si / (double)n);
    free(imgs), free(elbo), free(iw1), free(iw32);
    loom_model_free(m);
}

/* evaluation (noise_seed 0) and training noise depend on the images, not on
 * the thread split; sampling at a seed is reproducible */
static void test_determinism(void) {
    const size_t n = 7, H = 6, W = 5, HW = H * W;
    loom_model *m1 = make(H, W, 5, 3, 4, 2, 2, 1, 1, 9), *m2 = make(H, W, 5, 3, 4, 2, 2, 1, 2, 9);
    uint8_t imgs[7 * 30];
    loom_rng r;
    loom_rng_seed(&r, 4);
    test_random_images(imgs, sizeof imgs, &r);
    double a[7], b[7], c[7];
    loom_model_nll(m1, a, imgs, NULL, n, n, NULL);
    /* in other chunks only where the matrix products let a row's bits not
     * depend on the row count (testutil.h); the same chunks otherwise */
    const int rows_free = test_rows_free();
    loom_model_nll(m2, b, imgs, NULL, n, rows_free ? 3 : n, NULL);
    CHECK(rows_free ? "eval: 1 thread and 2 threads in other chunks give the same bound per image"
                    : "eval: 1 thread and 2 threads give the same bound per image (same chunks: this "
                      "CPU's products round a row by the row count)",
          memcmp(a, b, sizeof a) == 0, "%.9g vs %.9g", a[0], b[0]);
    m2->noise_seed = 1234;
    loom_model_nll(m2, c, imgs, NULL, n, n, NULL);
    CHECK("training noise (noise_seed != 0) differs from the static evaluation noise",
          memcmp(a, c, sizeof a) != 0, "same values");
    m2->noise_seed = 0;
    uint8_t s1[7 * 30], s2[7 * 30], fr[7 * 4 * 30];
    loom_model_sample(m1, s1, NULL, n, 0, 1.0f, 3, NULL);
    loom_model_sample_frames(m2, s2, fr, NULL, n, 1.0f, 3, NULL);
    CHECK("sample: same seed, same images on 1 and 2 threads, with or without frames",
          memcmp(s1, s2, sizeof s1) == 0, "differ");
    int last_ok = 1;
    for (size_t k = 0; k < n; k++) last_ok &= memcmp(fr + (k * 4 + 3) * HW, s1 + k * HW, HW) == 0;
    CHECK("sample frames: the last frame of each image is the sample", last_ok, "differ");
    loom_error err;
    CHECK("sample: keeping pixels (completion) is refused for draw",
          loom_model_sample(m1, s1, NULL, n, 5, 1.0f, 3, &err) == LOOM_EINVAL && strstr(err.msg, "not autoregressive"),
          "%s", err.msg);
    CHECK("draw has 4 frames (steps_draw)", loom_model_nframes(m1) == 4, "%zu", loom_model_nframes(m1));
    uint8_t rec[2 * 7 * 30];
    CHECK("reconstruct runs", loom_model_reconstruct(m1, rec, imgs, NULL, n, NULL) == LOOM_OK, "failed");
    int binary = 1;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < HW; i++) binary &= rec[2 * k * HW + i] == 0 || rec[2 * k * HW + i] == 255;
    CHECK("reconstruct: the model's input is binary", binary, "non-binary pixel");
    loom_model_free(m1), loom_model_free(m2);
}

/* static binarization: pixel v is 1 with probability v / 255 */
static void test_binarization(void) {
    const size_t H = 16, W = 16, HW = H * W, n = 40;
    loom_model *m = make(H, W, 3, 2, 1, 2, 2, 1, 1, 2);
    uint8_t *imgs = malloc(n * HW), *rec = malloc(2 * n * HW);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < HW; i++) imgs[k * HW + i] = (uint8_t)(k == 0 ? 0 : k == 1 ? 255 : 64);
    loom_model_reconstruct(m, rec, imgs, NULL, n, NULL);
    size_t ones0 = 0, ones1 = 0, ones = 0;
    for (size_t i = 0; i < HW; i++) ones0 += rec[i] == 255, ones1 += rec[2 * HW + i] == 255;
    for (size_t k = 2; k < n; k++)
        for (size_t i = 0; i < HW; i++) ones += rec[2 * k * HW + i] == 255;
    const double frac = (double)ones / (double)((n - 2) * HW), want = 64.0 / 255.0;
    CHECK("binarization: 0 -> 0, 255 -> 1, 64 -> 1 with probability 64/255", ones0 == 0 && ones1 == HW &&
          fabs(frac - want) < 0.02, "zeros image %zu ones, full image %zu of %zu, frac %.4f want %.4f",
          ones0, ones1, HW, frac, want);
    free(imgs), free(rec);
    loom_model_free(m);
}

static double mean_nll(loom_model *m, const uint8_t *imgs, size_t n) {
    double nll[8], s = 0;
    loom_model_nll(m, nll, imgs, NULL, n, n, NULL);
    for (size_t b = 0; b < n; b++) s += nll[b];
    return s / (double)n;
}

static void test_overfit(int attention) {
    const size_t H = 8, W = 8, n = 8;
    loom_model *m = make(H, W, 16, 4, 4, 3, 3, attention, 2, 21);
    uint8_t imgs[8 * 64];
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < 64; i++) imgs[b * 64 + i] = (uint8_t)(((i / 8 + b) % 3 == 0) * 255);
    const double first = mean_nll(m, imgs, n);
    test_train(m, imgs, NULL, n, 300, 1e-2f, 1, NULL, NULL);
    const double last = mean_nll(m, imgs, n);
    char name[128];
    snprintf(name, sizeof name, "overfit 8 images (%s): the negative ELBO falls from > 40 to < half of it",
             attention ? "attention" : "no attention");
    CHECK(name, first > 40.0 && last < first / 2.0, "first %.3f last %.3f nats/image", first, last);
    loom_model_free(m);
}

static double elbo_of(loom_model *m, const uint8_t *img) {
    double nll;
    loom_model_nll(m, &nll, img, NULL, 1, 1, NULL);
    return nll;
}

/* Attention through the model's own linear maps, for a hand-set decoder
 * state (h_dec_0 = 0, so the grids come from the attention biases): with the
 * write weights zero the canvas is write(write.bias), fixed, and flipping one
 * pixel changes the bound only through what the read grid sees (KL) or where
 * the write grid put mass (-c_T at that pixel). */
static void test_attention_placement(void) {
    const size_t H = 20, W = 16;
    loom_model *m = make(H, W, 4, 3, 1, 1, 1, 1, 1, 31);
    float *w = m->w;
    const loom_param *ra = loom_model_param(m, "read_attn.weight"), *rb = loom_model_param(m, "read_attn.bias");
    const loom_param *wa = loom_model_param(m, "write_attn.weight"), *wb = loom_model_param(m, "write_attn.bias");
    const loom_param *ww = loom_model_param(m, "write.weight"), *pb = loom_model_param(m, "write.bias");
    memset(w + ra->offset, 0, ra->size * sizeof *w);
    memset(w + wa->offset, 0, wa->size * sizeof *w);
    memset(w + ww->offset, 0, ww->size * sizeof *w);
    const float s2 = 0.05f; /* sharp filters */
    /* read grid on row 12, column 5; write grid on row 4, column 10 (1-based) */
    const float rp[5] = {2.0f * 5 / (W + 1) - 1.0f, 2.0f * 12 / (H + 1) - 1.0f, logf(s2), 0.0f, 0.0f};
    const float wp[5] = {2.0f * 10 / (W + 1) - 1.0f, 2.0f * 4 / (H + 1) - 1.0f, logf(s2), 0.0f, 0.0f};
    memcpy(w + rb->offset, rp, sizeof rp);
    memcpy(w + wb->offset, wp, sizeof wp);
    w[pb->offset] = 3.0f; /* the 1x1 patch's value */
    uint8_t img[20 * 16] = {0};
    const double base = elbo_of(m, img);
    img[(12 - 1) * W + (5 - 1)] = 255;
    const double at_read = elbo_of(m, img);
    img[(12 - 1) * W + (5 - 1)] = 0;
    img[(4 - 1) * W + (10 - 1)] = 255;
    const double at_write = elbo_of(m, img);
    img[(4 - 1) * W + (10 - 1)] = 0;
    img[(17 - 1) * W + (14 - 1)] = 255;
    const double elsewhere = elbo_of(m, img);
    double zsum = 0.0; /* normaliser of a filter centred on a pixel */
    for (int k = -20; k <= 20; k++) zsum += exp(-k * k / (2.0 * s2));
    const double c_w = 3.0 / (zsum * zsum); /* canvas at the write centre: w Fy Fx */
    CHECK("attention via the model: a pixel under the read grid changes the posterior (KL)",
          fabs(at_read - base) > 1e-3, "base %.6f with pixel %.6f", base, at_read);
    CHECK("attention via the model: a pixel under the write grid changes the bound by -c_T there",
          fabs((at_write - base) + c_w) < 2e-3, "change %.6f, want %.6f", at_write - base, -c_w);
    CHECK("attention via the model: a pixel under neither grid changes nothing",
          fabs(elsewhere - base) < 1e-6, "change %.3g", elsewhere - base);
    loom_model_free(m);
}

static void test_config(void) {
    loom_config c = {.model = "draw", .height = 8, .width = 8, .layers = 1, .hidden = 4, .zdim = 2,
                     .steps_draw = 2, .read_n = 2, .write_n = 2, .attention = 1};
    loom_error err;
    CHECK("config: a good draw config passes", loom_config_check(&c, &err) == LOOM_OK, "%s", err.msg);
    loom_config b = c;
    b.read_n = 0;
    CHECK("config: read_n 0 is refused", loom_config_check(&b, &err) == LOOM_EINVAL && strstr(err.msg, "--read-n"),
          "%s", err.msg);
    b = c, b.steps_draw = 0;
    CHECK("config: steps_draw 0 is refused", loom_config_check(&b, &err) == LOOM_EINVAL && strstr(err.msg, "--steps-draw"),
          "%s", err.msg);
    b = c, b.zdim = 0;
    CHECK("config: zdim 0 is refused", loom_config_check(&b, &err) == LOOM_EINVAL, "%s", err.msg);
    b = c, b.write_n = 9;
    CHECK("config: a write grid larger than the image is refused", loom_config_check(&b, &err) == LOOM_EINVAL,
          "%s", err.msg);
}

/* The sampler (no attention: the write is the whole image) against a
 * recomputation in double from the model's tensors: z_t = temperature *
 * N(0, 1) from copies of the sampler's RNGs, the decoder LSTM carrying h and
 * c between glimpses, canvas += h_t @ write.weight + write.bias, every frame
 * round(255 sigmoid(canvas)). recur 0: the same without the decoder's state
 * (reset every glimpse), to show that the comparison would see it. Returns
 * the number of frame pixels more than 1 off; frames (n, T, HW). */
static size_t draw_recompute_misses(const loom_model *m, const uint8_t *frames, loom_rng *rngs, size_t n,
                                    float temperature, int recur) {
    const size_t HW = m->cfg.height * m->cfg.width, h = m->cfg.hidden, z = m->cfg.zdim, T = m->cfg.steps_draw;
    const float *wih = m->w + loom_model_param(m, "dec.w_ih")->offset, *whh = m->w + loom_model_param(m, "dec.w_hh")->offset;
    const float *bih = m->w + loom_model_param(m, "dec.b_ih")->offset, *bhh = m->w + loom_model_param(m, "dec.b_hh")->offset;
    const float *ww = m->w + loom_model_param(m, "write.weight")->offset, *wb = m->w + loom_model_param(m, "write.bias")->offset;
    double hs[16], cs[16], zs[16], *canvas = malloc(HW * sizeof *canvas);
    size_t miss = 0;
    for (size_t b = 0; b < n; b++) {
        memset(hs, 0, sizeof hs), memset(cs, 0, sizeof cs);
        for (size_t i = 0; i < HW; i++) canvas[i] = 0.0;
        for (size_t t = 0; t < T; t++) {
            for (size_t j = 0; j < z; j++) zs[j] = temperature * loom_rng_normal(&rngs[b]);
            if (!recur) memset(hs, 0, sizeof hs), memset(cs, 0, sizeof cs);
            test_lstm_step(hs, cs, zs, z, wih, whh, bih, bhh, NULL, h);
            for (size_t i = 0; i < HW; i++) {
                double v = wb[i];
                for (size_t k = 0; k < h; k++) v += hs[k] * ww[k * HW + i];
                canvas[i] += v;
                const double want = 255.0 / (1.0 + exp(-canvas[i]));
                miss += fabs((double)frames[(b * T + t) * HW + i] - want) > 1.0;
            }
        }
    }
    free(canvas);
    return miss;
}

static void test_sampler_recomputed(void) {
    const size_t H = 4, W = 5, HW = H * W, n = 4, T = 3;
    loom_model *m = make(H, W, 4, 3, T, 2, 2, 0, 1, 41);
    /* a decoder whose state matters: larger recurrent and write weights */
    const loom_param *whh = loom_model_param(m, "dec.w_hh"), *ww = loom_model_param(m, "write.weight");
    for (size_t i = 0; i < whh->size; i++) m->w[whh->offset + i] *= 3.0f;
    for (size_t i = 0; i < ww->size; i++) m->w[ww->offset + i] *= 3.0f;
    void *ws = malloc(m->ops->sample_ws_bytes(&m->cfg, n));
    uint8_t imgs[4 * 20], frames[4 * 3 * 20];
    const float temps[2] = {1.0f, 0.5f};
    for (int ti = 0; ti < 2; ti++) {
        loom_rng rngs[4], again[4], other[4], hot[4];
        for (size_t b = 0; b < n; b++) loom_rng_seed(&rngs[b], 300 + b), again[b] = other[b] = hot[b] = rngs[b];
        m->ops->sample_frames(m, ws, imgs, frames, NULL, n, temps[ti], rngs);
        const size_t miss = draw_recompute_misses(m, frames, again, n, temps[ti], 1);
        const size_t reset = draw_recompute_misses(m, frames, other, n, temps[ti], 0);
        const size_t at1 = draw_recompute_misses(m, frames, hot, n, ti ? 1.0f : 0.25f, 1);
        int last = 1;
        for (size_t b = 0; b < n; b++) last &= memcmp(imgs + b * HW, frames + (b * T + T - 1) * HW, HW) == 0;
        char name[192];
        snprintf(name, sizeof name, "draw sampler (temperature %.1f) == a double recomputation from the tensors "
                 "(decoder state carried, z scaled by the temperature)", temps[ti]);
        CHECK(name, miss == 0 && last && reset > 5 && at1 > 5,
              "%zu of %zu frame pixels off by > 1 (last frame is the image: %d; recomputation without the "
              "decoder state: %zu off, at another temperature: %zu off)", miss, n * T * HW, last, reset, at1);
    }
    /* z_t ~ N(0, temperature^2 I): towards 0 every image is the z = 0 image */
    uint8_t a[4 * 20], c[4 * 20];
    loom_model_sample(m, a, NULL, n, 0, 1e-6f, 5, NULL);
    loom_model_sample(m, c, NULL, n, 0, 1.0f, 5, NULL);
    int same = 1, differ = 0;
    for (size_t b = 1; b < n; b++) same &= memcmp(a, a + b * HW, HW) == 0, differ |= memcmp(c, c + b * HW, HW) != 0;
    CHECK("draw sampling: at temperature 1e-6 every image is the same (z ~ 0), at 1 they differ", same && differ,
          "same at 1e-6: %d, differ at 1: %d", same, differ);
    free(ws);
    loom_model_free(m);
}

int main(void) {
    test_config();
    test_gradients(1);
    test_gradients(0);
    test_kl();
    test_attention_placement();
    test_bounds();
    test_determinism();
    test_binarization();
    test_sampler_recomputed();
    test_overfit(1);
    test_overfit(0);
    CHECK_DONE();
}
