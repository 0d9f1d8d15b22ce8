/* Filling any hidden region of an image: loom_model_inpaint (model.h),
 * docs/inpaint.md.
 *
 * Autoregressive models: sampling-importance-resampling. A candidate goes
 * through the image in raster order, drawing each hidden pixel from the
 * model's conditional and keeping each given one (ops->sample_given); its
 * proposal density is q(h) = prod_hidden p(x_p | x_<p), so with weight
 * w = prod_given p(x_p | x_<p) we have q(h) w = p(h, g) and E_q[w] = p(g):
 * resampling candidates in proportion to w gives draws that tend to p(h | g)
 * as their number grows, and the mean weight estimates p(g). Given pixels
 * before the first hidden one weigh every candidate alike (they drop out of
 * the normalised weights); when no given pixel follows a hidden one, all
 * weights are equal and the candidates are exact draws.
 *
 * Autoencoders (draw, rae): no conditionals to weigh with; each fill starts
 * from noise in the hidden pixels and repeatedly takes the reconstruction of
 * the current image there, the given pixels clamped. A heuristic. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static loom_status sir(loom_model *m, uint8_t *fills, loom_inpaint_result *res, const uint8_t *img,
                       const uint8_t *given, const int32_t *label, size_t M, size_t K,
                       uint64_t seed, loom_error *err) {
    const loom_config *c = &m->cfg;
    const size_t HW = c->height * c->width, EX = loom_channels(c) * HW;
    if (M < K) M = K;
    uint8_t *cand = malloc(M * EX);
    double *logw = malloc(M * sizeof *logw), *cum = malloc(M * sizeof *cum);
    int32_t *labels = label ? malloc(M * sizeof *labels) : NULL;
    if (!cand || !logw || !cum || (label && !labels)) {
        free(cand), free(logw), free(cum), free(labels);
        return loom_fail(err, LOOM_ENOMEM, "out of memory for %zu inpainting candidates", M);
    }
    for (size_t k = 0; k < M; k++) {
        memcpy(cand + k * EX, img, EX);
        if (labels) labels[k] = label[0];
    }
    loom_status st = loom_model_sample_given(m, cand, logw, given, labels, M, seed, err);
    if (st) {
        free(cand), free(logw), free(cum), free(labels);
        return st;
    }
    /* w_k / max w, in double: the weights' spread can exceed a float's range */
    double mx = logw[0], s = 0.0, s2 = 0.0;
    for (size_t k = 1; k < M; k++) mx = logw[k] > mx ? logw[k] : mx;
    for (size_t k = 0; k < M; k++) {
        const double w = exp(logw[k] - mx);
        s += w, s2 += w * w;
        cum[k] = s;
    }
    size_t first = HW, last_given = 0;
    for (size_t p = 0; p < HW; p++) {
        if (!given[p] && first == HW) first = p;
        if (given[p]) last_given = p;
    }
    res->method = "sir";
    res->candidates = M;
    res->ess = s * s / s2;
    res->log_given = mx + log(s / (double)M);
    res->exact = last_given < first;
    if (res->exact) { /* equal weights: the candidates are the fills */
        memcpy(fills, cand, K * EX);
    } else { /* multinomial resampling, seeded apart from the candidates' RNGs */
        loom_rng r;
        loom_rng_seed(&r, seed ^ 0x5bd1e9955bd1e995ULL);
        for (size_t k = 0; k < K; k++) {
            const double u = (double)loom_rng_uniform(&r) * s;
            size_t lo = 0, hi = M - 1; /* the first candidate with cum > u */
            while (lo < hi) {
                const size_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            memcpy(fills + k * EX, cand + lo * EX, EX);
        }
    }
    free(cand), free(logw), free(cum), free(labels);
    return LOOM_OK;
}

static loom_status iterate(loom_model *m, uint8_t *fills, loom_inpaint_result *res,
                           const uint8_t *img, const uint8_t *given, const int32_t *label,
                           size_t K, size_t iters, uint64_t seed, loom_error *err) {
    const loom_config *c = &m->cfg;
    const size_t HW = c->height * c->width, C = loom_channels(c), EX = C * HW;
    uint8_t *rec = malloc(2 * K * EX);
    int32_t *labels = label ? malloc(K * sizeof *labels) : NULL;
    if (!rec || (label && !labels)) {
        free(rec), free(labels);
        return loom_fail(err, LOOM_ENOMEM, "out of memory for %zu fills", K);
    }
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t k = 0; k < K; k++) {
        if (labels) labels[k] = label[0];
        for (size_t ch = 0; ch < C; ch++)
            for (size_t p = 0; p < HW; p++)
                fills[k * EX + ch * HW + p] =
                    given[p] ? img[ch * HW + p] : (uint8_t)loom_rng_below(&r, 256);
    }
    loom_status st = LOOM_OK;
    for (size_t t = 0; t < iters && !st; t++) {
        st = loom_model_reconstruct(m, rec, fills, labels, K, err);
        for (size_t k = 0; k < K && !st; k++) /* rec (K, 2, C, H, W): model input | reconstruction */
            for (size_t ch = 0; ch < C; ch++)
                for (size_t p = 0; p < HW; p++)
                    if (!given[p]) fills[k * EX + ch * HW + p] = rec[(2 * k + 1) * EX + ch * HW + p];
    }
    free(rec), free(labels);
    res->method = "iterated-reconstruction";
    res->candidates = 0, res->ess = 0.0, res->log_given = 0.0, res->exact = 0;
    return st;
}

loom_status loom_model_inpaint(loom_model *m, uint8_t *fills, loom_inpaint_result *res,
                               const uint8_t *img, const uint8_t *hidden, const int32_t *label,
                               size_t candidates, size_t nfills, size_t iters, uint64_t seed,
                               loom_error *err) {
    const loom_config *c = &m->cfg;
    const size_t HW = c->height * c->width;
    if (nfills == 0) return loom_fail(err, LOOM_EINVAL, "inpainting needs at least one fill");
    if (c->nclasses && !label)
        return loom_fail(err, LOOM_EINVAL, "the conditional model needs the image's class");
    size_t nh = 0;
    for (size_t p = 0; p < HW; p++) nh += hidden[p] != 0;
    if (nh == 0) return loom_fail(err, LOOM_EINVAL, "the mask hides no pixel: nothing to fill");
    if (nh == HW)
        return loom_fail(err, LOOM_EINVAL, "the mask hides every pixel: nothing to condition on "
                         "(loom sample draws whole images)");
    uint8_t *given = malloc(HW);
    if (!given) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    for (size_t p = 0; p < HW; p++) given[p] = hidden[p] == 0;
    loom_status st;
    if (m->ops->sample_given) {
        st = sir(m, fills, res, img, given, label, candidates ? candidates : 1, nfills, seed, err);
    } else if (m->ops->reconstruct) {
        if (iters == 0) st = loom_fail(err, LOOM_EINVAL, "iterated reconstruction needs iterations >= 1");
        else st = iterate(m, fills, res, img, given, label, nfills, iters, seed, err);
    } else {
        st = loom_fail(err, LOOM_EINVAL, "model %s can neither draw pixels given others nor "
                       "reconstruct: it cannot inpaint", m->ops->name);
    }
    /* both paths leave the given pixels as img has them (sample_given never
     * writes them, iterate copies only hidden ones): tests/test_inpaint.c */
    free(given);
    return st;
}

void loom_inpaint_masked_view(uint8_t *out, const uint8_t *img, const uint8_t *hidden, size_t C, size_t H,
                              size_t W) {
    const size_t HW = H * W;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t p = 0; p < HW; p++)
            out[ch * HW + p] = !hidden[p] ? img[ch * HW + p]
                               : C == 3   ? (ch == 1 ? 0 : 255)
                                          : ((p / W + p % W) % 2 ? 224 : 32);
}
