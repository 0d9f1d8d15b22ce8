/* Generic model machinery: parameter table, initialisation, batch sharding
 * over threads with a deterministic gradient reduction. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const loom_model_ops loom_rowlstm_ops;
extern const loom_model_ops loom_diagbilstm_ops;
extern const loom_model_ops loom_grupixel_ops;
extern const loom_model_ops loom_draw_ops;
extern const loom_model_ops loom_rae_ops;

static const loom_model_ops *const all_models[] = {&loom_rowlstm_ops, &loom_diagbilstm_ops,
                                                   &loom_grupixel_ops, &loom_draw_ops,
                                                   &loom_rae_ops};

const loom_model_ops *loom_model_find(const char *name) {
    for (size_t i = 0; i < sizeof all_models / sizeof all_models[0]; i++)
        if (strcmp(all_models[i]->name, name) == 0) return all_models[i];
    return NULL;
}

const char *loom_model_names(void) {
    static char names[256];
    if (!names[0])
        for (size_t i = 0; i < sizeof all_models / sizeof all_models[0]; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     all_models[i]->name);
    return names;
}

loom_status loom_check_range(const char *flag, size_t v, size_t hi, loom_error *err) {
    if (v < 1 || v > hi)
        return loom_fail(err, LOOM_EINVAL, "%s %zu out of range (1..%zu)", flag, v, hi);
    return LOOM_OK;
}

loom_status loom_config_check(const loom_config *cfg, loom_error *err) {
    const loom_model_ops *ops = loom_model_find(cfg->model);
    if (!ops) return loom_fail(err, LOOM_EINVAL, "unknown model '%s' (known: %s)", cfg->model, loom_model_names());
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
    /* eval --batch, sample --n: refuse what the machine cannot hold rather than
     * being killed by the OOM killer half-way */
    char what[96];
    snprintf(what, sizeof what, "a batch this large (%d thread%s x %zu MB of activations)",
             m->nthreads, m->nthreads == 1 ? "" : "s", bytes >> 20);
    size_t total;
    if (loom_memory_check(loom_mul_ok(bytes, (size_t)m->nthreads, &total) ? total : SIZE_MAX, what,
                          err))
        return LOOM_EINVAL;
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

static size_t max_shard(size_t n, int T) { return (n + (size_t)T - 1) / (size_t)T; }

/* Fills params (LOOM_MAX_PARAMS entries) with the layout of cfg, with offsets
 * and sizes computed with overflow checks. */
static loom_status layout(const loom_config *cfg, loom_param *params, size_t *nparams,
                          size_t *nfloats, loom_error *err) {
    loom_status st = loom_config_check(cfg, err);
    if (st) return st;
    const loom_model_ops *ops = loom_model_find(cfg->model);
    size_t np = ops->layout(cfg, NULL);
    if (np > LOOM_MAX_PARAMS)
        return loom_fail(err, LOOM_EINVAL, "model has %zu tensors, more than %d", np,
                         LOOM_MAX_PARAMS);
    np = ops->layout(cfg, params);
    size_t off = 0;
    for (size_t i = 0; i < np; i++) {
        loom_param *p = &params[i];
        size_t sz = 1;
        for (int d = 0; d < p->ndim; d++)
            if (!loom_mul_ok(sz, p->shape[d], &sz)) sz = SIZE_MAX;
        if (sz == SIZE_MAX || off > SIZE_MAX / 4 - sz)
            return loom_fail(err, LOOM_EINVAL, "model too large: its parameter count overflows");
        p->offset = off, p->size = sz;
        off += sz;
    }
    *nparams = np;
    *nfloats = off;
    return LOOM_OK;
}

loom_status loom_model_layout(const loom_config *cfg, loom_param *params, size_t *nparams,
                              size_t *nfloats, loom_error *err) {
    return layout(cfg, params, nparams, nfloats, err);
}

static size_t add_sat(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t mul_sat(size_t a, size_t b) {
    size_t r;
    return loom_mul_ok(a, b, &r) ? r : SIZE_MAX;
}

loom_status loom_model_train_bytes(const loom_config *cfg, int nthreads, size_t batch,
                                   size_t *bytes, loom_error *err) {
    *bytes = SIZE_MAX;
    if (nthreads < 1) return loom_fail(err, LOOM_EINVAL, "thread count must be >= 1");
    if (batch == 0) return loom_fail(err, LOOM_EINVAL, "batch size must be >= 1");
    loom_param *params = malloc(LOOM_MAX_PARAMS * sizeof *params);
    size_t np, nf;
    if (!params) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    loom_status st = layout(cfg, params, &np, &nf, err);
    free(params);
    if (st) return st;
    const int T = batch < (size_t)nthreads ? (int)batch : nthreads;
    /* w, g, per-thread gradients (nthreads of them), Adam m and v */
    size_t b = mul_sat(mul_sat(nf, sizeof(float)), (size_t)nthreads + 4);
    /* per-thread activations of the largest shard, plus the batch itself */
    size_t ws = loom_model_find(cfg->model)->train_ws_bytes(cfg, max_shard(batch, T));
    b = add_sat(b, mul_sat(ws, (size_t)T));
    *bytes = add_sat(b, mul_sat(batch, mul_sat(loom_channels(cfg), mul_sat(cfg->height, cfg->width))));
    return LOOM_OK;
}

/* Physical memory, or LOOM_MEM_LIMIT_MB when set (tests; machines shared with others). */
static size_t memory_limit(void) {
    const char *env = getenv("LOOM_MEM_LIMIT_MB");
    if (env && *env) {
        char *end;
        unsigned long long mb = strtoull(env, &end, 10);
        if (!*end && mb > 0) return mul_sat((size_t)mb, (size_t)1 << 20);
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    return mul_sat((size_t)pages, (size_t)page);
}

static void human(char *buf, size_t cap, size_t bytes) {
    const double mb = 1024.0 * 1024.0;
    if ((double)bytes < 1024.0 * mb)
        snprintf(buf, cap, "%.0f MB", (double)bytes / mb);
    else
        snprintf(buf, cap, "%.1f GB", (double)bytes / (1024.0 * mb));
}

loom_status loom_memory_check(size_t bytes, const char *what, loom_error *err) {
    size_t limit = memory_limit();
    if (bytes <= limit) return LOOM_OK;
    if (bytes == SIZE_MAX)
        return loom_fail(err, LOOM_EINVAL, "%s: the memory it needs overflows a 64-bit size", what);
    char need[32], have[32];
    human(need, sizeof need, bytes);
    human(have, sizeof have, limit);
    const char *env = getenv("LOOM_MEM_LIMIT_MB");
    return loom_fail(err, LOOM_EINVAL, "%s needs about %s of memory; %s %s", what, need,
                     env && *env ? "LOOM_MEM_LIMIT_MB allows" : "this machine has", have);
}

loom_status loom_model_create(loom_model **out, const loom_config *cfg, int nthreads,
                              loom_error *err) {
    *out = NULL;
    if (nthreads < 1) return loom_fail(err, LOOM_EINVAL, "thread count must be >= 1");
    loom_model *m = calloc(1, sizeof *m);
    if (!m) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    loom_status st = layout(cfg, m->params, &m->nparams, &m->nfloats, err);
    if (st) {
        free(m);
        return st;
    }
    m->cfg = *cfg;
    m->ops = loom_model_find(cfg->model);
    m->nthreads = nthreads;
    size_t off = m->nfloats, total;
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

/* ------------------------------------------------------------ parameter tables */

size_t loom_param_add(loom_param *out, size_t n, float init_bound, size_t r, size_t c,
                      const char *fmt, size_t l) {
    if (out) {
        loom_param *p = &out[n];
        snprintf(p->name, sizeof p->name, fmt, l);
        p->ndim = c ? 2 : 1;
        p->shape[0] = r, p->shape[1] = c;
        p->init_bound = init_bound;
    }
    return n + 1;
}

size_t loom_param_add_fanin(loom_param *out, size_t n, float scale, size_t r, size_t c,
                            const char *fmt, size_t l) {
    return loom_param_add(out, n, c ? scale / sqrtf((float)r) : 0.0f, r, c, fmt, l);
}

size_t loom_param_add_named(loom_param *out, size_t n, size_t r, size_t c, const char *name) {
    return loom_param_add_fanin(out, n, 1.0f, r, c, name, 0);
}

/* shard t of T over n items: [*begin, *end) */
static void shard_range(size_t n, int T, int t, size_t *begin, size_t *end) {
    *begin = n * (size_t)t / (size_t)T;
    *end = n * (size_t)(t + 1) / (size_t)T;
}


static int threads_for(const loom_model *m, size_t n) {
    return n < (size_t)m->nthreads ? (int)n : m->nthreads;
}

/* A conditional model indexes its class tables with the labels: one out of
 * range would read (and in training, write) other parameters. `loom complete
 * --data` with more classes than the model had did exactly that. */
static loom_status check_labels(const loom_model *m, const int32_t *labels, size_t n,
                                loom_error *err) {
    if (!m->cfg.nclasses || !labels) return LOOM_OK;
    for (size_t b = 0; b < n; b++)
        if (labels[b] < 0 || labels[b] >= m->cfg.nclasses)
            return loom_fail(err, LOOM_EINVAL, "label %d of image %zu is outside the model's %d classes",
                             (int)labels[b], b, m->cfg.nclasses);
    return LOOM_OK;
}

/* One per-shard model op over a batch: which op, and its batch-wide arguments
 * (pointers at the batch's first image). */
typedef enum { JOB_SHARD, JOB_IW_NLL, JOB_RECONSTRUCT, JOB_ENCODE, JOB_DECODE, JOB_FRAMES,
               JOB_SAMPLE } job_kind;
typedef struct {
    job_kind kind;
    const uint8_t *imgs;   /* (n, H, W) input images */
    const int32_t *labels; /* (n) or NULL */
    const float *codes;    /* (n, code_dim) decode input */
    double *nll;           /* (n) shard, iw_nll output */
    uint8_t *out;          /* (n, ...) reconstruct, decode, frames, sample output images */
    uint8_t *frames;       /* (n, nframes, H, W) frames output */
    float *fout;           /* (n, code_dim) encode output */
    int grad;              /* shard: write thread t's gradient into m->tgrad */
    float scale;           /* shard */
    size_t K, keep;        /* iw_nll; sample */
    float temperature;     /* frames, sample */
    loom_rng *rngs;        /* (n) frames, sample */
} shard_job;

/* the job's op on images [b0, b0 + nb) with thread t's workspace */
static void run_job(loom_model *m, const shard_job *j, int t, size_t b0, size_t nb) {
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* one image */
    void *ws = m->ws[t];
    const int32_t *labels = j->labels ? j->labels + b0 : NULL;
    switch (j->kind) {
    case JOB_SHARD:
        m->ops->shard(m, ws, j->grad ? m->tgrad + (size_t)t * m->nfloats : NULL, j->nll + b0,
                      j->imgs + b0 * HW, labels, nb, j->scale);
        break;
    case JOB_IW_NLL:
        m->ops->iw_nll(m, ws, j->nll + b0, j->imgs + b0 * HW, labels, nb, j->K);
        break;
    case JOB_RECONSTRUCT:
        m->ops->reconstruct(m, ws, j->out + 2 * b0 * HW, j->imgs + b0 * HW, labels, nb);
        break;
    case JOB_ENCODE:
        m->ops->encode(m, ws, j->fout + b0 * loom_model_code_dim(m), j->imgs + b0 * HW, nb);
        break;
    case JOB_DECODE:
        m->ops->decode(m, ws, j->out + b0 * HW, j->codes + b0 * loom_model_code_dim(m), nb);
        break;
    case JOB_FRAMES:
        m->ops->sample_frames(m, ws, j->out + b0 * HW, j->frames + b0 * loom_model_nframes(m) * HW,
                              labels, nb, j->temperature, j->rngs + b0);
        break;
    case JOB_SAMPLE:
        m->ops->sample(m, ws, j->out + b0 * HW, labels, nb, j->keep, j->temperature, j->rngs + b0);
        break;
    }
}

/* Run job over n images split across the threads, each shard with its
 * thread's workspace (ws_bytes: the op's workspace size for a shard). Shard t
 * always gets the same images, so the same thread count gives the same bits. */
static loom_status run_sharded(loom_model *m, const shard_job *job, size_t n,
                               size_t (*ws_bytes)(const loom_config *, size_t), loom_error *err) {
    const int T = threads_for(m, n);
    loom_status st = need_ws(m, ws_bytes(&m->cfg, max_shard(n, T)), err);
    if (st) return st;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        size_t b0, b1;
        shard_range(n, T, t, &b0, &b1);
        run_job(m, job, t, b0, b1 - b0);
    }
    return LOOM_OK;
}

loom_status loom_model_grad(loom_model *m, double *loss, const uint8_t *imgs,
                            const int32_t *labels, size_t n, loom_error *err) {
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "empty batch");
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const int T = threads_for(m, n);
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, max_shard(n, T)), err);
    if (st) return st;
    const size_t npix = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* dimensions */
    double *nll = malloc(n * sizeof *nll);
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    memset(m->tgrad, 0, (size_t)T * m->nfloats * sizeof *m->tgrad);
    const shard_job job = {.kind = JOB_SHARD, .imgs = imgs, .labels = labels, .nll = nll,
                           .grad = 1, .scale = 1.0f / (float)(n * npix)};
    run_sharded(m, &job, n, m->ops->train_ws_bytes, err); /* cannot fail: ws is ready */
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
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* one image */
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const shard_job job = {.kind = JOB_SHARD, .imgs = imgs + c0 * HW,
                               .labels = labels ? labels + c0 : NULL, .nll = nll_img + c0};
        loom_status st = run_sharded(m, &job, LOOM_MIN(chunk, n - c0), m->ops->train_ws_bytes, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_model_logits(loom_model *m, float *logits, const uint8_t *imgs,
                              const int32_t *labels, size_t n, loom_error *err) {
    if (!m->ops->logits)
        return loom_fail(err, LOOM_EINVAL, "model %s has no per-pixel logits", m->ops->name);
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, n), err);
    if (st) return st;
    m->ops->logits(m, m->ws[0], logits, imgs, labels, n);
    return LOOM_OK;
}

loom_status loom_model_iw_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                              const int32_t *labels, size_t n, size_t K, size_t chunk,
                              loom_error *err) {
    if (!m->ops->iw_nll)
        return loom_fail(err, LOOM_EINVAL, "model %s has no latent variables (its NLL is exact)",
                         m->ops->name);
    if (K < 1) return loom_fail(err, LOOM_EINVAL, "importance samples must be >= 1");
    const char *why = m->ops->cannot_sample ? m->ops->cannot_sample(&m->cfg) : NULL;
    if (why) return loom_fail(err, LOOM_EINVAL, "no importance-weighted bound: %s", why);
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    if (chunk == 0) chunk = 1;
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* one image */
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const shard_job job = {.kind = JOB_IW_NLL, .imgs = imgs + c0 * HW,
                               .labels = labels ? labels + c0 : NULL, .nll = nll_img + c0, .K = K};
        loom_status st = run_sharded(m, &job, LOOM_MIN(chunk, n - c0), m->ops->train_ws_bytes, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_model_reconstruct(loom_model *m, uint8_t *out, const uint8_t *imgs,
                                   const int32_t *labels, size_t n, loom_error *err) {
    if (!m->ops->reconstruct)
        return loom_fail(err, LOOM_EINVAL, "model %s is not an autoencoder (nothing to reconstruct)",
                         m->ops->name);
    if (n == 0) return LOOM_OK;
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const shard_job job = {.kind = JOB_RECONSTRUCT, .imgs = imgs, .labels = labels, .out = out};
    return run_sharded(m, &job, n, m->ops->train_ws_bytes, err);
}

size_t loom_model_code_dim(const loom_model *m) {
    return m->ops->code_dim && m->ops->encode && m->ops->decode ? m->ops->code_dim(&m->cfg) : 0;
}

loom_status loom_model_encode(loom_model *m, float *codes, const uint8_t *imgs, size_t n,
                              loom_error *err) {
    if (!loom_model_code_dim(m))
        return loom_fail(err, LOOM_EINVAL, "model %s has no codes", m->ops->name);
    if (n == 0) return LOOM_OK;
    const shard_job job = {.kind = JOB_ENCODE, .imgs = imgs, .fout = codes};
    return run_sharded(m, &job, n, m->ops->train_ws_bytes, err);
}

loom_status loom_model_decode(loom_model *m, uint8_t *imgs, const float *codes, size_t n,
                              loom_error *err) {
    if (!loom_model_code_dim(m))
        return loom_fail(err, LOOM_EINVAL, "model %s has no codes", m->ops->name);
    if (n == 0) return LOOM_OK;
    const shard_job job = {.kind = JOB_DECODE, .codes = codes, .out = imgs};
    return run_sharded(m, &job, n, m->ops->sample_ws_bytes, err);
}

size_t loom_model_nframes(const loom_model *m) {
    return m->ops->nframes && m->ops->sample_frames ? m->ops->nframes(&m->cfg) : 0;
}

/* image k's sampling RNG from (seed, k) */
static loom_rng *sample_rngs(size_t n, uint64_t seed) {
    loom_rng *rngs = malloc(n * sizeof *rngs);
    if (!rngs) return NULL;
    for (size_t k = 0; k < n; k++) {
        loom_rng_seed(&rngs[k], seed);
        /* decorrelate images: mix the index into a fresh seed */
        loom_rng_seed(&rngs[k], loom_rng_u64(&rngs[k]) ^ (0x9e3779b97f4a7c15ULL * (k + 1)));
    }
    return rngs;
}

/* job (JOB_FRAMES or JOB_SAMPLE) with image k's RNG seeded from (seed, k) */
static loom_status run_sampling(loom_model *m, shard_job job, size_t n, uint64_t seed,
                                loom_error *err) {
    const int T = threads_for(m, n);
    loom_status st = need_ws(m, m->ops->sample_ws_bytes(&m->cfg, max_shard(n, T)), err);
    if (st) return st;
    job.rngs = sample_rngs(n, seed);
    if (!job.rngs) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    run_sharded(m, &job, n, m->ops->sample_ws_bytes, err); /* cannot fail: ws is ready */
    free(job.rngs);
    return LOOM_OK;
}

loom_status loom_model_sample_frames(loom_model *m, uint8_t *imgs, uint8_t *frames,
                                     const int32_t *labels, size_t n, float temperature,
                                     uint64_t seed, loom_error *err) {
    if (!loom_model_nframes(m))
        return loom_fail(err, LOOM_EINVAL, "model %s does not draw in stages", m->ops->name);
    if (n == 0) return LOOM_OK;
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return loom_fail(err, LOOM_EINVAL, "temperature must be a positive number");
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const shard_job job = {.kind = JOB_FRAMES, .labels = labels, .out = imgs, .frames = frames,
                           .temperature = temperature};
    return run_sampling(m, job, n, seed, err);
}

loom_status loom_model_sample(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                              size_t keep, float temperature, uint64_t seed, loom_error *err) {
    if (n == 0) return LOOM_OK;
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return loom_fail(err, LOOM_EINVAL, "temperature must be a positive number");
    if (keep && !m->ops->logits)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot complete images (not autoregressive)",
                         m->ops->name);
    const char *why = m->ops->cannot_sample ? m->ops->cannot_sample(&m->cfg) : NULL;
    if (why) return loom_fail(err, LOOM_EINVAL, "cannot sample: %s", why);
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const shard_job job = {.kind = JOB_SAMPLE, .labels = labels, .out = imgs, .keep = keep,
                           .temperature = temperature};
    return run_sampling(m, job, n, seed, err);
}
