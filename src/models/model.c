/* Generic model machinery: parameter table, initialisation, batch sharding
 * over threads with a deterministic gradient reduction. */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

extern const loom_model_ops loom_rowlstm_ops;
extern const loom_model_ops loom_grupixel_ops;

static const loom_model_ops *const all_models[] = {&loom_rowlstm_ops, &loom_grupixel_ops};

const loom_model_ops *loom_model_find(const char *name) {
    for (size_t i = 0; i < sizeof all_models / sizeof all_models[0]; i++)
        if (strcmp(all_models[i]->name, name) == 0) return all_models[i];
    return NULL;
}

loom_status loom_config_check(const loom_config *cfg, loom_error *err) {
    const loom_model_ops *ops = loom_model_find(cfg->model);
    if (!ops) return loom_fail(err, LOOM_EINVAL, "unknown model '%s' (known: rowlstm, grupixel)", cfg->model);
    if (cfg->height < 1 || cfg->width < 1 || cfg->height > 4096 || cfg->width > 4096)
        return loom_fail(err, LOOM_EINVAL, "image size %zux%zu out of range (1..4096)",
                         cfg->height, cfg->width);
    if (cfg->nclasses < 0 || cfg->nclasses > 100000)
        return loom_fail(err, LOOM_EINVAL, "number of classes %d out of range", cfg->nclasses);
    return ops->check(cfg, err);
}

const loom_param *loom_model_param(const loom_model *m, const char *name) {
    for (size_t i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

static void free_ws(loom_model *m) {
    if (m->ws)
        for (int t = 0; t < m->nthreads; t++) free(m->ws[t]);
    free(m->ws);
    m->ws = NULL;
    m->ws_bytes = 0;
}

/* per-thread workspaces of at least `bytes` each */
static loom_status need_ws(loom_model *m, size_t bytes, loom_error *err) {
    if (bytes <= m->ws_bytes) return LOOM_OK;
    free_ws(m);
    m->ws = calloc((size_t)m->nthreads, sizeof *m->ws);
    if (!m->ws) return loom_fail(err, LOOM_ENOMEM, "out of memory for workspaces");
    for (int t = 0; t < m->nthreads; t++) {
        m->ws[t] = malloc(bytes);
        if (!m->ws[t]) {
            free_ws(m);
            return loom_fail(err, LOOM_ENOMEM, "out of memory: %zu MB of activations per thread",
                             bytes >> 20);
        }
    }
    m->ws_bytes = bytes;
    return LOOM_OK;
}

loom_status loom_model_create(loom_model **out, const loom_config *cfg, int nthreads,
                              loom_error *err) {
    *out = NULL;
    loom_status st = loom_config_check(cfg, err);
    if (st) return st;
    if (nthreads < 1) return loom_fail(err, LOOM_EINVAL, "thread count must be >= 1");
    loom_model *m = calloc(1, sizeof *m);
    if (!m) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->ops = loom_model_find(cfg->model);
    m->nthreads = nthreads;
    size_t np = m->ops->layout(cfg, NULL);
    if (np > LOOM_MAX_PARAMS) {
        free(m);
        return loom_fail(err, LOOM_EINVAL, "model has %zu tensors, more than %d", np,
                         LOOM_MAX_PARAMS);
    }
    m->nparams = m->ops->layout(cfg, m->params);
    size_t off = 0;
    for (size_t i = 0; i < m->nparams; i++) {
        loom_param *p = &m->params[i];
        size_t sz = 1;
        for (int d = 0; d < p->ndim; d++)
            if (!loom_mul_ok(sz, p->shape[d], &sz)) sz = SIZE_MAX;
        if (sz == SIZE_MAX || off > SIZE_MAX / 4 - sz) {
            free(m);
            return loom_fail(err, LOOM_ENOMEM, "model too large");
        }
        p->offset = off, p->size = sz;
        off += sz;
    }
    m->nfloats = off;
    size_t total;
    if (!loom_mul_ok(off, (size_t)nthreads + 2, &total) || total > (SIZE_MAX / sizeof(float))) {
        free(m);
        return loom_fail(err, LOOM_ENOMEM, "model too large");
    }
    m->w = calloc(off, sizeof *m->w);
    m->g = calloc(off, sizeof *m->g);
    m->tgrad = calloc(off * (size_t)nthreads, sizeof *m->tgrad);
    if (!m->w || !m->g || !m->tgrad) {
        loom_model_free(m);
        return loom_fail(err, LOOM_ENOMEM, "out of memory for %zu parameters", off);
    }
    loom_blas_init();
    *out = m;
    return LOOM_OK;
}

void loom_model_free(loom_model *m) {
    if (!m) return;
    free_ws(m);
    free(m->w), free(m->g), free(m->tgrad);
    free(m);
}

void loom_model_init(loom_model *m, loom_rng *rng) {
    for (size_t i = 0; i < m->nparams; i++) {
        const loom_param *p = &m->params[i];
        float *w = m->w + p->offset;
        for (size_t k = 0; k < p->size; k++)
            w[k] = p->init_bound * (2.0f * loom_rng_uniform(rng) - 1.0f);
    }
    if (m->ops->init_extra) m->ops->init_extra(m);
}

/* shard t of T over n items: [*begin, *end) */
static void shard_range(size_t n, int T, int t, size_t *begin, size_t *end) {
    *begin = n * (size_t)t / (size_t)T;
    *end = n * (size_t)(t + 1) / (size_t)T;
}

static size_t max_shard(size_t n, int T) { return (n + (size_t)T - 1) / (size_t)T; }

static int threads_for(const loom_model *m, size_t n) {
    return n < (size_t)m->nthreads ? (int)n : m->nthreads;
}

loom_status loom_model_grad(loom_model *m, double *loss, const uint8_t *imgs,
                            const int32_t *labels, size_t n, loom_error *err) {
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "empty batch");
    const int T = threads_for(m, n);
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, max_shard(n, T)), err);
    if (st) return st;
    const size_t npix = m->cfg.height * m->cfg.width, HW = npix;
    double *nll = malloc(n * sizeof *nll);
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    memset(m->tgrad, 0, (size_t)T * m->nfloats * sizeof *m->tgrad);
    const float scale = 1.0f / (float)(n * npix);
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        size_t b0, b1;
        shard_range(n, T, t, &b0, &b1);
        m->ops->shard(m, m->ws[t], m->tgrad + (size_t)t * m->nfloats, nll + b0, imgs + b0 * HW,
                      labels ? labels + b0 : NULL, b1 - b0, scale);
    }
    /* reduce in thread order: same thread count, same bits */
    memcpy(m->g, m->tgrad, m->nfloats * sizeof *m->g);
    for (int t = 1; t < T; t++) {
        const float *src = m->tgrad + (size_t)t * m->nfloats;
        for (size_t k = 0; k < m->nfloats; k++) m->g[k] += src[k];
    }
    double s = 0.0;
    for (size_t b = 0; b < n; b++) s += nll[b];
    free(nll);
    *loss = s / (double)(n * npix);
    if (!isfinite(*loss)) return loom_fail(err, LOOM_ENAN, "loss is %g", *loss);
    return LOOM_OK;
}

loom_status loom_model_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                           const int32_t *labels, size_t n, size_t chunk, loom_error *err) {
    if (chunk == 0) chunk = 1;
    const size_t HW = m->cfg.height * m->cfg.width;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t cn = LOOM_MIN(chunk, n - c0);
        const int T = threads_for(m, cn);
        loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, max_shard(cn, T)), err);
        if (st) return st;
#pragma omp parallel for num_threads(T) schedule(static, 1)
        for (int t = 0; t < T; t++) {
            size_t b0, b1;
            shard_range(cn, T, t, &b0, &b1);
            m->ops->shard(m, m->ws[t], NULL, nll_img + c0 + b0, imgs + (c0 + b0) * HW,
                          labels ? labels + c0 + b0 : NULL, b1 - b0, 0.0f);
        }
    }
    return LOOM_OK;
}

loom_status loom_model_logits(loom_model *m, float *logits, const uint8_t *imgs,
                              const int32_t *labels, size_t n, loom_error *err) {
    if (!m->ops->logits)
        return loom_fail(err, LOOM_EINVAL, "model %s has no per-pixel logits", m->ops->name);
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, n), err);
    if (st) return st;
    m->ops->logits(m, m->ws[0], logits, imgs, labels, n);
    return LOOM_OK;
}

loom_status loom_model_sample(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                              size_t keep, float temperature, uint64_t seed, loom_error *err) {
    if (n == 0) return LOOM_OK;
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return loom_fail(err, LOOM_EINVAL, "temperature must be a positive number");
    const size_t HW = m->cfg.height * m->cfg.width;
    const int T = threads_for(m, n);
    loom_status st = need_ws(m, m->ops->sample_ws_bytes(&m->cfg, max_shard(n, T)), err);
    if (st) return st;
    loom_rng *rngs = malloc(n * sizeof *rngs);
    if (!rngs) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        loom_rng_seed(&rngs[k], seed);
        /* decorrelate images: mix the index into a fresh seed */
        loom_rng_seed(&rngs[k], loom_rng_u64(&rngs[k]) ^ (0x9e3779b97f4a7c15ULL * (k + 1)));
    }
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        size_t b0, b1;
        shard_range(n, T, t, &b0, &b1);
        m->ops->sample(m, m->ws[t], imgs + b0 * HW, labels ? labels + b0 : NULL, b1 - b0, keep,
                       temperature, rngs + b0);
    }
    free(rngs);
    return LOOM_OK;
}
