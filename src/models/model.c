/* Generic model machinery: parameter table, initialisation, batch sharding
 * over threads with a deterministic gradient reduction. */
#include "model.h"

#include "gemm.h"

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
extern const loom_model_ops loom_convlstm_ops;
extern const loom_model_ops loom_renet_ops;
extern const loom_model_ops loom_reseg_ops;
extern const loom_model_ops loom_gran_ops;
extern const loom_model_ops loom_gran_d_ops;
extern const loom_model_ops loom_renet_d_ops;

static const loom_model_ops *const all_models[] = {&loom_rowlstm_ops, &loom_diagbilstm_ops,
                                                   &loom_grupixel_ops, &loom_draw_ops,
                                                   &loom_rae_ops, &loom_convlstm_ops,
                                                   &loom_renet_ops, &loom_reseg_ops,
                                                   &loom_gran_ops, &loom_gran_d_ops, &loom_renet_d_ops};

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
    if (loom_channels(cfg) != 1 && loom_channels(cfg) != 3)
        return loom_fail(err, LOOM_EINVAL, "%zu channels per image: images have 1 (gray) or 3 (RGB)",
                         cfg->channels);
    if (cfg->mbstd && strcmp(cfg->model, "gran_d") != 0)
        return loom_fail(err, LOOM_EINVAL, "mbstd (a discriminator's minibatch feature): model %s has none",
                         cfg->model);
    if (cfg->batchnorm && strcmp(cfg->model, "gran") != 0)
        return loom_fail(err, LOOM_EINVAL, "batchnorm (a generator's normalisation): model %s has none", cfg->model);
    return ops->check(cfg, err);
}

const loom_param *loom_model_param(const loom_model *m, const char *name) {
    for (size_t i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

static void free_ws(loom_model *m) {
    if (m->ws)
        for (int t = 0; t < m->nthreads; t++) {
            if (m->ws[t] && m->ops->ws_release) m->ops->ws_release(m->ws[t]);
            free(m->ws[t]);
        }
    free(m->ws);
    m->ws = NULL;
    m->ws_bytes = 0;
}

/* per-thread workspaces of at least `bytes` each */
static loom_status need_ws(loom_model *m, size_t bytes, loom_error *err) {
    m->forward_n = 0; /* every op uses the workspaces: a pending forward is gone */
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
        m->ws[t] = calloc(1, bytes); /* zeroed: ws_release may look at it */
        if (!m->ws[t]) {
            free_ws(m);
            return loom_fail(err, LOOM_ENOMEM, "out of memory: %zu MB of activations per thread",
                             bytes >> 20);
        }
    }
    m->ws_bytes = bytes;
    return LOOM_OK;
}

/* ------------------------------------------------------------ micro-shards
 *
 * Every batch op cuts its n images into micro-shards of loom_micro_shard(cfg,
 * n) images, j = 0 .. K-1 in image order (the last may be smaller). Their
 * size depends on the model and n only, never on the thread count, so each
 * micro-shard computes the same bits on whichever thread runs it. */

size_t loom_micro_shard(const loom_config *cfg, size_t n) {
    const loom_model_ops *ops = loom_model_find(cfg->model);
    const size_t u = ops && ops->micro_shard ? ops->micro_shard : 8;
    return LOOM_MAX(LOOM_MIN(u, n), 1);
}

static size_t nmicro(size_t n, size_t u) { return (n + u - 1) / u; }

static size_t popcount(size_t x) {
    size_t c = 0;
    for (; x; x &= x - 1) c++;
    return c;
}

/* pending tree nodes after j micro-shards: one per 1 bit of j, so at most
 * floor(log2(K + 1)) */
static size_t tree_depth(size_t K) {
    size_t d = 0;
    while ((K + 1) >> (d + 1)) d++;
    return d;
}

/* micro-shards loom_model_grad computes at once, each into its own gradient
 * buffer, before folding them into the tree: one per thread */
static size_t wave_size(int nthreads, size_t K) { return LOOM_MIN(K, (size_t)nthreads); }

/* gradient buffers besides m->g that loom_model_grad needs for K micro-shards
 * on nthreads: the most, over the waves, of pending tree nodes plus the wave's
 * leaves (micro-shard 0 and the leftmost node are m->g itself) */
static size_t grad_buffers(int nthreads, size_t K) {
    const size_t W = wave_size(nthreads, K);
    size_t most = 0;
    for (size_t j0 = 0; j0 < K; j0 += W) {
        const size_t need = (j0 ? popcount(j0) - 1 : 0) + LOOM_MIN(W, K - j0) - (j0 == 0);
        most = LOOM_MAX(most, need);
    }
    return most;
}

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
    const size_t u = loom_micro_shard(cfg, batch), K = nmicro(batch, u);
    const size_t T = LOOM_MIN(K, (size_t)nthreads);
    /* w, g, Adam m and v, and the other gradient buffers of the micro-shards */
    size_t b = mul_sat(mul_sat(nf, sizeof(float)), grad_buffers(nthreads, K) + 4);
    /* per-thread activations of one micro-shard, plus the batch itself */
    size_t ws = loom_model_find(cfg->model)->train_ws_bytes(cfg, u);
    b = add_sat(b, mul_sat(ws, T));
    *bytes = add_sat(b, mul_sat(batch, mul_sat(loom_frames(cfg) * loom_channels(cfg), mul_sat(cfg->height, cfg->width))));
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

double loom_bits_per_dim(const loom_config *cfg, double nats_per_image) {
    return nats_per_image / log(2.0) / (double)loom_nll_dims(cfg);
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
    if (!loom_mul_ok(off, 2, &total) || total > (SIZE_MAX / sizeof(float))) {
        free(m);
        return loom_fail(err, LOOM_ENOMEM, "model too large");
    }
    m->w = calloc(off, sizeof *m->w);
    m->g = calloc(off, sizeof *m->g);
    if (!m->w || !m->g) {
        loom_model_free(m);
        return loom_fail(err, LOOM_ENOMEM, "out of memory for %zu parameters", off);
    }
    /* the library's default (the thread's, so that a model op called directly
     * multiplies the same way); programs pick loom_model_default_gemm */
    m->gemm = loom_gemm_default();
    /* no loom_blas_init() here: BLAS threads are the caller's (see loom/model.h) */
    *out = m;
    return LOOM_OK;
}

void loom_model_free(loom_model *m) {
    if (!m) return;
    free(m->forward_labels);
    free_ws(m);
    for (size_t i = 0; i < m->ngbuf; i++) free(m->gbuf[i]);
    free(m->gbuf);
    free(m->xbuf);
    free(m->w), free(m->g), free(m->wbf);
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
        memset(p->shape, 0, sizeof p->shape);
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

size_t loom_param_add_nd(loom_param *out, size_t n, float init_bound, int ndim,
                         const size_t *shape, const char *name) {
    if (out) {
        loom_param *p = &out[n];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = ndim < 1 ? 1 : (ndim > LOOM_MAXDIM ? LOOM_MAXDIM : ndim);
        for (int d = 0; d < p->ndim; d++) p->shape[d] = shape[d];
        p->init_bound = init_bound;
    }
    return n + 1;
}

/* ------------------------------------------------------------ capabilities */

unsigned loom_model_caps(const loom_model *m) {
    const loom_model_ops *o = m->ops;
    unsigned c = 0;
    if (!(o->cannot_sample && o->cannot_sample(&m->cfg))) c |= LOOM_CAP_SAMPLE;
    if (o->shard && !(o->nll_kind && o->nll_kind(&m->cfg))) c |= LOOM_CAP_EXACT_NLL;
    if (o->logits && !m->cfg.multiscale) c |= LOOM_CAP_CONDITIONALS; /* multi-scale: two models' */
    if (o->iw_nll && (c & LOOM_CAP_SAMPLE)) c |= LOOM_CAP_IW_BOUND;
    if (o->reconstruct) c |= LOOM_CAP_RECONSTRUCT;
    if (loom_model_nframes(m)) c |= LOOM_CAP_STAGES;
    if (loom_model_code_dim(m)) c |= LOOM_CAP_CODES;
    if (loom_model_out_floats(m)) c |= LOOM_CAP_OUTPUT_GRAD;
    if (o->predict) c |= LOOM_CAP_PREDICT;
    return c;
}

const char *loom_frame_loss_name(int loss) {
    return loss == LOOM_FRAME_L1 ? "l1" : loss == LOOM_FRAME_MSE ? "mse" : loss == LOOM_FRAME_XENT ? "xent" : "?";
}

int loom_frame_loss_parse(const char *name) {
    for (int k = LOOM_FRAME_XENT; k <= LOOM_FRAME_MSE; k++)
        if (strcmp(name, loom_frame_loss_name(k)) == 0) return k;
    return -1;
}

const char *loom_cap_name(unsigned cap) {
    static const char *const names[LOOM_NCAPS] = {"sample", "exact-nll", "conditionals", "iw-bound",
                                                  "reconstruct", "stages", "codes", "output-grad", "predict"};
    for (int k = 0; k < LOOM_NCAPS; k++)
        if (cap == 1u << k) return names[k];
    return NULL;
}

/* threads for K micro-shards */
static int threads_for(const loom_model *m, size_t K) {
    return K < (size_t)m->nthreads ? (int)K : m->nthreads;
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
               JOB_SAMPLE, JOB_SAMPLE_GIVEN, JOB_PREDICT, JOB_CLASSIFY } job_kind;
typedef struct {
    job_kind kind;
    const uint8_t *imgs;   /* (n, H, W) input images */
    const int32_t *labels; /* (n) or NULL */
    const float *codes;    /* (n, code_dim) decode input */
    double *nll;           /* (n) shard, iw_nll output */
    double *terms;         /* (n, nterms) shard: the loss terms per image, or NULL */
    uint8_t *out;          /* (n, ...) reconstruct, decode, frames, sample output images */
    uint8_t *frames;       /* (n, nframes, H, W) frames output */
    float *fout;           /* (n, code_dim) encode output; (n, frames_out, C, H, W) predict output;
                            * (n, class_floats) classify output */
    float *feats;          /* (n, feat_dim) classify output, or NULL */
    float **grads;         /* shard: micro-shard j's gradient goes to grads[j - j0] */
    size_t j0;             /* shard: the first micro-shard with a gradient buffer */
    float scale;           /* shard */
    size_t K, keep;        /* iw_nll; sample */
    loom_point point;      /* predict */
    float temperature;     /* frames, sample */
    loom_rng *rngs;        /* (n) frames, sample */
    const uint8_t *given;  /* (H*W) sample_given: the pixels given */
    double *logw;          /* (n) sample_given: log-weights */
    loom_gemm_mode mode;   /* how the op's products run, on whichever thread (gemm.h) */
} shard_job;

/* ------------------------------------------------------------ matrix products */

int loom_model_default_gemm(const loom_config *cfg) {
    /* measured (docs/performance.md, bench/modes.sh): oneDNN's fp32 matmul
     * trains grupixel faster than OpenBLAS everywhere. With AVX-512 it trains
     * every model as fast or faster (Zen 5: rae 1.12x, draw 1.11x, the
     * PixelRNNs and renet within 3%; Intel family 6 model 207: 1.1-1.25x
     * each), so it is the default there. On an AVX2 CPU (Zen 3) oneDNN's thin
     * products with 1024 columns (draw's LSTM gates) ran at 0.7x of
     * OpenBLAS's and the others tied: OpenBLAS. LOOM_GEMM overrides (tests). */
    const bool dnnl = loom_gemm_have_onednn() &&
                      (strcmp(cfg->model, "grupixel") == 0 || loom_cpu_has_avx512());
    return loom_gemm_env(dnnl ? LOOM_GEMM_ONEDNN : LOOM_GEMM_OPENBLAS);
}

loom_status loom_model_set_gemm(loom_model *m, int backend, int train_prec, int eval_prec,
                                loom_error *err) {
    const char *why = loom_gemm_unavailable((loom_gemm_backend)backend, (loom_precision)train_prec);
    if (!why) why = loom_gemm_unavailable((loom_gemm_backend)backend, (loom_precision)eval_prec);
    if (why) return loom_fail(err, LOOM_EINVAL, "%s", why);
    m->gemm = backend, m->train_prec = train_prec, m->eval_prec = eval_prec;
    return LOOM_OK;
}

/* the weights' generation for the products' mode: m->wgen, or 0 (oneDNN reads
 * B plainly, not repacked) with LOOM_GEMM_PACK=0 (an A/B switch, and tests) */
static unsigned long pack_gen(const loom_model *m) {
    const char *e = getenv("LOOM_GEMM_PACK");
    return e && strcmp(e, "0") == 0 ? 0 : m->wgen;
}

/* the products' mode in precision prec with m's weights as they are now
 * (m->wbf and m->wgen as the last op_mode left them): in bf16 the weights'
 * shadow, on oneDNN in fp32 the weights themselves, read through repacked
 * copies of generation m->wgen; on OpenBLAS in fp32 nothing */
static loom_gemm_mode weights_mode(const loom_model *m, int prec) {
    loom_gemm_mode mode = {(loom_gemm_backend)m->gemm, (loom_precision)prec, NULL, NULL, 0, 0};
    if (prec == LOOM_PREC_BF16 || m->gemm == LOOM_GEMM_ONEDNN)
        mode.w = m->w, mode.nw = m->nfloats, mode.wgen = pack_gen(m);
    if (prec == LOOM_PREC_BF16) mode.wbf = m->wbf;
    return mode;
}

/* the products' mode for a training (or other) op of m; a bf16 mode rounds
 * the weights into m->wbf first (once per batch op), so it may fail for
 * memory. Each op takes a new weights generation (oneDNN's repacked copies
 * of the old ones are stale: the weights may have moved since the last op). */
static loom_status op_mode(loom_model *m, bool training, loom_gemm_mode *mode, loom_error *err) {
    const int prec = training ? m->train_prec : m->eval_prec;
    if (prec == LOOM_PREC_BF16) {
        if (!m->wbf && !(m->wbf = malloc(m->nfloats * sizeof *m->wbf)))
            return loom_fail(err, LOOM_ENOMEM, "out of memory for the bf16 weights");
        loom_bf16_round(m->wbf, m->w, m->nfloats);
    }
    m->wgen = loom_gemm_generation_next(); /* unread where weights_mode names no weights */
    *mode = weights_mode(m, prec);
    return LOOM_OK;
}

/* the job's op on micro-shard mj, images [mj * u, mj * u + nb), with thread t's workspace */
static void run_job(loom_model *m, const shard_job *j, int t, size_t mj, size_t u, size_t nb) {
    const size_t HW = loom_example_size(&m->cfg), b0 = mj * u; /* HW: one example */
    void *ws = m->ws[t];
    const int32_t *labels = j->labels ? j->labels + b0 : NULL;
    const loom_gemm_mode caller = loom_gemm_mode_set(j->mode);
    switch (j->kind) {
    case JOB_SHARD: {
        float *g = j->grads ? j->grads[mj - j->j0] : NULL;
        if (g) memset(g, 0, m->nfloats * sizeof *g);
        m->ops->shard(m, ws, g, j->nll + b0, j->imgs + b0 * HW, labels, nb, j->scale);
        if (j->terms) m->ops->shard_terms(m, ws, j->terms + b0 * loom_model_loss_terms(m, NULL), nb);
        break;
    }
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
    case JOB_SAMPLE_GIVEN:
        m->ops->sample_given(m, ws, j->out + b0 * HW, j->logw + b0, j->given, labels, nb, j->rngs + b0);
        break;
    case JOB_PREDICT:
        m->ops->predict(m, ws, j->fout + b0 * loom_nll_dims(&m->cfg), j->imgs + b0 * HW, nb, (int)j->point);
        break;
    case JOB_CLASSIFY:
        m->ops->classify(m, ws, j->fout ? j->fout + b0 * loom_model_class_floats(m) : NULL,
                         j->feats ? j->feats + b0 * loom_model_feat_dim(m) : NULL, j->imgs + b0 * HW, nb);
        break;
    }
    loom_gemm_mode_set(caller);
}

/* Run job on micro-shards [j0, j1) of a batch of n images cut into
 * micro-shards of u, spread over the threads in any order: each micro-shard
 * computes the same bits on any thread (its workspace must be ready). */
static void run_micro(loom_model *m, const shard_job *job, size_t n, size_t u, size_t j0,
                      size_t j1) {
    const int T = threads_for(m, j1 - j0);
    if (T == 1) {
        for (size_t j = j0; j < j1; j++) run_job(m, job, 0, j, u, LOOM_MIN(u, n - j * u));
        return;
    }
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
    for (size_t j = j0; j < j1; j++) run_job(m, job, omp_get_thread_num(), j, u, LOOM_MIN(u, n - j * u));
}

/* Run job over n images in micro-shards, each with its thread's workspace
 * (ws_bytes: the op's workspace size for a micro-shard). */
static loom_status run_sharded(loom_model *m, const shard_job *job, size_t n,
                               size_t (*ws_bytes)(const loom_config *, size_t), loom_error *err) {
    const size_t u = loom_micro_shard(&m->cfg, n);
    loom_status st = need_ws(m, ws_bytes(&m->cfg, u), err);
    if (st) return st;
    shard_job j = *job;
    if ((st = op_mode(m, false, &j.mode, err))) return st;
    run_micro(m, &j, n, u, 0, nmicro(n, u));
    return LOOM_OK;
}

/* at least count gradient buffers of nfloats each in m->gbuf */
static loom_status need_gbufs(loom_model *m, size_t count, loom_error *err) {
    if (count <= m->ngbuf) return LOOM_OK;
    float **nb = realloc(m->gbuf, count * sizeof *nb);
    if (!nb) return loom_fail(err, LOOM_ENOMEM, "out of memory for gradient buffers");
    m->gbuf = nb;
    for (; m->ngbuf < count; m->ngbuf++)
        if (!(m->gbuf[m->ngbuf] = malloc(m->nfloats * sizeof(float))))
            return loom_fail(err, LOOM_ENOMEM, "out of memory for gradient buffers");
    return LOOM_OK;
}

/* The gradient reduction: one fixed sum that depends on the micro-shard count
 * K only, never on the thread count or on which thread ran what.
 *
 * Leaf j is micro-shard j's gradient. The batch's gradient is the pairwise
 * tree over leaf indices
 *     sum(lo, hi) = sum(lo, lo + p) + sum(lo + p, hi),  p the largest power of two < hi - lo,
 * i.e. complete nodes node(l, i) = leaves [i 2^l, (i + 1) 2^l) summed as
 * node(l-1, 2i) + node(l-1, 2i+1), and for K = 2^a + 2^b + ... (a > b > ...)
 * g = N1 + (N2 + (N3 + ...)) over the complete nodes N1 = [0, 2^a),
 * N2 = [2^a, 2^a + 2^b), ... A contiguous range of leaves is covered by at
 * most 2 log2 K complete nodes, so a worker that owns a contiguous range of
 * micro-shards (a thread here, an MPI rank later) can sum those locally and
 * hand them on; whoever combines the nodes by the same rule gets the same bits.
 *
 * Here the leaves are computed in waves of one micro-shard per thread, each
 * into its own buffer, and folded into a stack of pending nodes like a binary
 * counter: leaf j merges with the top while the top is its left sibling
 * (same level). Micro-shard 0 writes m->g, which stays the leftmost node and
 * ends as the root. Memory: grad_buffers() besides g, about threads +
 * log2 K, whatever the batch. The adds are elementwise, so each wave's run
 * split over the parameters across the threads. */
typedef struct {
    float *dst;
    const float *src; /* dst += src */
} grad_add;

static void run_adds(const loom_model *m, const grad_add *adds, size_t nadd) {
    if (!nadd) return;
    const size_t nf = m->nfloats;
    /* slices of whole 64-byte lines; small models are not worth a second thread */
    const int T = nf < 16384 ? 1 : m->nthreads;
#pragma omp parallel num_threads(T)
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        const size_t lines = (nf + 15) / 16;
        const size_t k0 = LOOM_MIN(nf, lines * t / nt * 16), k1 = LOOM_MIN(nf, lines * (t + 1) / nt * 16);
        for (size_t i = 0; i < nadd; i++) {
            float *d = adds[i].dst;
            const float *a = adds[i].src;
            for (size_t k = k0; k < k1; k++) d[k] += a[k];
        }
    }
}

/* root = the sum of the gradients of micro-shards [lo, hi) of a batch of n
 * images cut into micro-shards of u, in the pairwise tree over their indices
 * counted from lo (a node [lo, hi) of the batch's tree is exactly that sum),
 * and nll[b] (and terms (n, nterms) when non-NULL) for their images; the
 * training workspaces must be ready. */
static loom_status grad_tree(loom_model *m, float *root, double *nll, double *terms, const uint8_t *imgs,
                             const int32_t *labels, size_t n, size_t u, size_t lo, size_t hi,
                             loom_error *err) {
    const size_t K = hi - lo, W = wave_size(m->nthreads, K);
    const size_t D = tree_depth(K), P = grad_buffers(m->nthreads, K);
    loom_status st = need_gbufs(m, P, err);
    if (st) return st;
    const size_t npix = loom_nll_dims(&m->cfg); /* dimensions */
    loom_gemm_mode mode;
    if ((st = op_mode(m, true, &mode, err))) return st;
    /* free: pool buffers not in use; stack: pending nodes, level: theirs; leaves: the wave's */
    float **mem = malloc((P + D + W) * sizeof *mem);
    size_t *level = malloc((D ? D : 1) * sizeof *level);
    grad_add *adds = malloc((W + D) * sizeof *adds);
    if (!mem || !level || !adds) {
        free(mem), free(level), free(adds);
        return loom_fail(err, LOOM_ENOMEM, "out of memory");
    }
    float **freeb = mem, **stack = mem + P, **leaves = mem + P + D;
    size_t nfree = P, sp = 0;
    for (size_t i = 0; i < P; i++) freeb[i] = m->gbuf[i];
    shard_job job = {.kind = JOB_SHARD, .imgs = imgs, .labels = labels, .nll = nll, .terms = terms,
                     .grads = leaves, .scale = 1.0f / (float)(n * npix), .mode = mode};
    for (size_t j0 = lo; j0 < hi; j0 += W) {
        const size_t j1 = LOOM_MIN(hi, j0 + W);
        for (size_t j = j0; j < j1; j++) leaves[j - j0] = j == lo ? root : freeb[--nfree];
        job.j0 = j0;
        run_micro(m, &job, n, u, j0, j1);
        size_t nadd = 0;
        for (size_t j = j0; j < j1; j++) {
            float *node = leaves[j - j0];
            size_t l = 0;
            while (sp && level[sp - 1] == l) { /* the top is node's left sibling */
                float *left = stack[--sp];
                adds[nadd++] = (grad_add){left, node};
                freeb[nfree++] = node; /* reused by the next wave, after these adds */
                node = left, l++;
            }
            stack[sp] = node, level[sp++] = l;
        }
        if (j1 == hi) /* g = N1 + (N2 + (... + Nr)): fold the stack from the top */
            for (; sp > 1; sp--) adds[nadd++] = (grad_add){stack[sp - 2], stack[sp - 1]};
        run_adds(m, adds, nadd);
    }
    free(mem), free(level), free(adds);
    return LOOM_OK;
}

/* the mean of nll (n) per dimension; LOOM_ENAN when it is not finite */
static loom_status mean_loss(const loom_model *m, double *loss, const double *nll, size_t n,
                             loom_error *err) {
    const size_t npix = loom_nll_dims(&m->cfg); /* dimensions */
    double s = 0.0;
    for (size_t b = 0; b < n; b++) s += nll[b];
    *loss = s / (double)(n * npix);
    if (!isfinite(*loss)) return loom_fail(err, LOOM_ENAN, "loss is %g", *loss);
    return LOOM_OK;
}

/* m->terms = the image means of terms (n, nterms), in image order */
static void mean_terms(loom_model *m, const double *terms, size_t n) {
    const size_t nt = loom_model_loss_terms(m, NULL);
    for (size_t k = 0; k < nt; k++) {
        double s = 0.0;
        for (size_t b = 0; b < n; b++) s += terms[b * nt + k];
        m->terms[k] = s / (double)n;
    }
}

size_t loom_model_loss_terms(const loom_model *m, const char **names) {
    if (!m->ops->loss_terms || !m->ops->shard_terms) return 0;
    const size_t nt = m->ops->loss_terms(&m->cfg, names);
    return nt <= LOOM_MAX_TERMS ? nt : 0;
}

/* LOOM_EINVAL when m has no likelihood (no shard op: an adversarial model) */
static loom_status need_nll(const loom_model *m, loom_error *err) {
    if (m->ops->shard) return LOOM_OK;
    return loom_fail(err, LOOM_EINVAL, "model %s has no likelihood (%s)", m->ops->name,
                     m->ops->nll_kind ? m->ops->nll_kind(&m->cfg) : "no NLL");
}

loom_status loom_model_grad(loom_model *m, double *loss, const uint8_t *imgs,
                            const int32_t *labels, size_t n, loom_error *err) {
    if (need_nll(m, err)) return LOOM_EINVAL;
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "empty batch");
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const size_t u = loom_micro_shard(&m->cfg, n), K = nmicro(n, u);
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, u), err);
    if (st) return st;
    const size_t nt = loom_model_loss_terms(m, NULL);
    double *nll = malloc(n * (1 + nt) * sizeof *nll), *terms = nt ? nll + n : NULL;
    if (!nll) return loom_fail(err, LOOM_ENOMEM, "out of memory");
    st = grad_tree(m, m->g, nll, terms, imgs, labels, n, u, 0, K, err);
    if (!st) st = mean_loss(m, loss, nll, n, err);
    if (!st) mean_terms(m, terms, n);
    free(nll);
    return st;
}

/* ------------------------------------------------------------ over ranks
 *
 * Rank r of R computes micro-shards [K r / R, K (r + 1) / R) (loom_rank_shards)
 * and sums them into the nodes of the batch's tree that cover its range
 * exactly (tree_cover: at most about 2 log2 K, one when the ranges fall on
 * the tree's boundaries, e.g. R and K powers of two). The parameters are cut
 * into R slices; an all-to-all hands every rank slice q of every node to
 * rank q, which combines the nodes of its slice by the tree's own rule
 * (sum(lo, hi) = sum(lo, lo + p) + sum(lo + p, hi)), and an all-gather of
 * the combined slices gives every rank the whole gradient. The adds are
 * elementwise, so a slice sums to the bits of the same floats of one
 * process's loom_model_grad: any rank count, any thread count, same bits.
 * Per step a rank sends (its nodes + 1) x nfloats x 4 x (R - 1) / R bytes
 * (2 x nfloats x 4 x (R - 1) / R with one node, what a ring all-reduce
 * sends), plus its images' NLLs (8 bytes each). */

void loom_rank_shards(size_t K, int R, int r, size_t *j0, size_t *j1) {
    *j0 = K * (size_t)r / (size_t)R;
    *j1 = K * (size_t)(r + 1) / (size_t)R;
}

/* the largest power of two below k (k >= 2): where the tree splits k leaves */
static size_t tree_split(size_t k) {
    size_t p = 1;
    while (p * 2 < k) p *= 2;
    return p;
}

#define COVER_MAX 160 /* > 2 x 64 + 2: the most nodes a range of a 64-bit tree needs */

/* appends to out (from *k) the nodes of subtree [lo, hi) that cover [a, b)
 * exactly, in leaf order */
static void tree_cover(size_t lo, size_t hi, size_t a, size_t b, size_t (*out)[2], size_t *k) {
    if (b <= lo || hi <= a || lo >= hi) return;
    if (a <= lo && hi <= b) {
        out[*k][0] = lo, out[*k][1] = hi, (*k)++;
        return;
    }
    const size_t p = tree_split(hi - lo);
    tree_cover(lo, lo + p, a, b, out, k);
    tree_cover(lo + p, hi, a, b, out, k);
}

/* The subtree [lo, hi) of slice values: nodes (nnodes) the cover of every
 * rank in leaf order, vals[i] (len floats) node i's slice; returns the
 * buffer holding the sum (one of vals, added into in place). */
static float *tree_combine(size_t lo, size_t hi, const size_t (*nodes)[2], float *const *vals,
                           size_t *next, size_t len) {
    if (nodes[*next][0] == lo && nodes[*next][1] == hi) return vals[(*next)++];
    const size_t p = tree_split(hi - lo);
    float *l = tree_combine(lo, lo + p, nodes, vals, next, len);
    const float *r = tree_combine(lo + p, hi, nodes, vals, next, len);
    for (size_t k = 0; k < len; k++) l[k] += r[k];
    return l;
}

/* rank q's slice of nf parameters: [slice(q), slice(q + 1)), whole 64-byte lines */
static size_t slice_at(size_t nf, int R, int q) {
    const size_t lines = (nf + 15) / 16;
    return LOOM_MIN(nf, lines * (size_t)q / (size_t)R * 16);
}

/* at least `floats` floats in m->xbuf */
static loom_status need_xbuf(loom_model *m, size_t floats, loom_error *err) {
    if (floats <= m->nxbuf) return LOOM_OK;
    float *p = realloc(m->xbuf, floats * sizeof *p);
    if (!p) return loom_fail(err, LOOM_ENOMEM, "out of memory for %zu MB of exchange buffers",
                             (floats * sizeof *p) >> 20);
    m->xbuf = p, m->nxbuf = floats;
    return LOOM_OK;
}

loom_status loom_model_grad_ranks(loom_model *m, double *loss, const uint8_t *imgs,
                                  const int32_t *labels, size_t n, const loom_comm *c,
                                  loom_error *err) {
    if (!c || c->size <= 1) return loom_model_grad(m, loss, imgs, labels, n, err);
    if (need_nll(m, err)) return LOOM_EINVAL;
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "empty batch");
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const int R = c->size, me = c->rank;
    const size_t u = loom_micro_shard(&m->cfg, n), K = nmicro(n, u), nf = m->nfloats;
    if (K < (size_t)R)
        return loom_fail(err, LOOM_EINVAL, "a batch of %zu images is %zu micro-shard%s of %zu, fewer than the %d ranks",
                         n, K, K == 1 ? "" : "s", u, R);
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, u), err);
    if (st) return st;
    /* every rank's cover, in rank order = leaf order: cov[first[r] .. first[r + 1]) */
    size_t (*cov)[2] = malloc((size_t)R * COVER_MAX * sizeof *cov);
    size_t *cnt = malloc(8 * (size_t)R * sizeof *cnt), *first = malloc(((size_t)R + 1) * sizeof *first);
    const size_t nt = loom_model_loss_terms(m, NULL);
    double *nll = malloc(2 * n * (1 + nt) * sizeof *nll); /* nll, nll_all (n); terms, terms_all (n, nt) */
    float **vals = NULL;
    if (!cov || !cnt || !first || !nll) {
        st = loom_fail(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    size_t *scount = cnt, *sdispl = cnt + R, *rcount = cnt + 2 * R, *rdispl = cnt + 3 * R;
    size_t *icount = cnt + 4 * R, *idispl = cnt + 5 * R, *tcount = cnt + 6 * R, *tdispl = cnt + 7 * R;
    size_t ncov = 0;
    for (int r = 0; r < R; r++) {
        size_t a, b;
        loom_rank_shards(K, R, r, &a, &b);
        first[r] = ncov;
        tree_cover(0, K, a, b, cov, &ncov);
        idispl[r] = LOOM_MIN(a * u, n) * sizeof(double);
        icount[r] = (LOOM_MIN(b * u, n) - LOOM_MIN(a * u, n)) * sizeof(double);
        tdispl[r] = idispl[r] * nt, tcount[r] = icount[r] * nt;
    }
    first[R] = ncov;
    const size_t mine = first[me + 1] - first[me], s0 = slice_at(nf, R, me);
    const size_t len = slice_at(nf, R, me + 1) - s0; /* my slice */
    /* xbuf: my nodes (mine, nf), packed for the all-to-all (mine, nf), every
     * node's slice `me` (ncov, len) */
    if ((st = need_xbuf(m, 2 * mine * nf + ncov * len + 1, err))) goto done;
    if (!(vals = malloc((ncov ? ncov : 1) * sizeof *vals))) {
        st = loom_fail(err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    float *nodes = m->xbuf, *packed = m->xbuf + mine * nf, *recv = m->xbuf + 2 * mine * nf;
    double *nll_all = nll + n, *terms = nt ? nll + 2 * n : NULL, *terms_all = terms ? terms + n * nt : NULL;
    for (size_t i = 0; i < mine; i++) {
        const size_t *nd = cov[first[me] + i];
        if ((st = grad_tree(m, nodes + i * nf, nll, terms, imgs, labels, n, u, nd[0], nd[1], err))) goto done;
    }
    /* to rank q: slice q of each of my nodes; from rank q: my slice of each of its */
    size_t off = 0;
    for (int q = 0; q < R; q++) {
        const size_t q0 = slice_at(nf, R, q), ql = slice_at(nf, R, q + 1) - q0;
        sdispl[q] = off * sizeof(float), scount[q] = mine * ql * sizeof(float);
        for (size_t i = 0; i < mine; i++, off += ql)
            memcpy(packed + off, nodes + i * nf + q0, ql * sizeof(float));
        rdispl[q] = first[q] * len * sizeof(float);
        rcount[q] = (first[q + 1] - first[q]) * len * sizeof(float);
    }
    if ((st = c->alltoallv(c->user, packed, scount, sdispl, recv, rcount, rdispl, err))) goto done;
    for (size_t i = 0; i < ncov; i++) vals[i] = recv + i * len;
    size_t next = 0;
    const float *sum = tree_combine(0, K, (const size_t(*)[2])cov, vals, &next, len);
    for (int q = 0; q < R; q++) {
        const size_t q0 = slice_at(nf, R, q);
        rdispl[q] = q0 * sizeof(float), rcount[q] = (slice_at(nf, R, q + 1) - q0) * sizeof(float);
    }
    if ((st = c->allgatherv(c->user, sum, len * sizeof(float), m->g, rcount, rdispl, err))) goto done;
    if ((st = c->allgatherv(c->user, (const char *)nll + idispl[me], icount[me], nll_all, icount,
                            idispl, err)))
        goto done;
    if (nt && (st = c->allgatherv(c->user, (const char *)terms + tdispl[me], tcount[me], terms_all, tcount,
                                  tdispl, err)))
        goto done;
    st = mean_loss(m, loss, nll_all, n, err);
    if (!st && nt) mean_terms(m, terms_all, n);
done:
    free(cov), free(cnt), free(first), free(nll), free(vals);
    return st;
}

loom_status loom_model_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                           const int32_t *labels, size_t n, size_t chunk, loom_error *err) {
    if (need_nll(m, err)) return LOOM_EINVAL;
    if (chunk == 0) chunk = 1;
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const size_t HW = loom_example_size(&m->cfg); /* one example */
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const shard_job job = {.kind = JOB_SHARD, .imgs = imgs + c0 * HW,
                               .labels = labels ? labels + c0 : NULL, .nll = nll_img + c0};
        loom_status st = run_sharded(m, &job, LOOM_MIN(chunk, n - c0), m->ops->train_ws_bytes, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_model_predict(loom_model *m, float *probs, const uint8_t *seqs, size_t n,
                               size_t chunk, loom_point point, loom_error *err) {
    if (!m->ops->predict)
        return loom_fail(err, LOOM_EINVAL, "model %s predicts no frames (it models still images)",
                         m->ops->name);
    if (point == LOOM_POINT_MEDIAN && !m->cfg.softmax256)
        return loom_fail(err, LOOM_EINVAL, "a median frame needs --output softmax256 (the Bernoulli output has none)");
    if (chunk == 0) chunk = 1;
    const size_t EX = loom_example_size(&m->cfg), PF = loom_nll_dims(&m->cfg);
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const shard_job job = {.kind = JOB_PREDICT, .imgs = seqs + c0 * EX, .fout = probs + c0 * PF, .point = point};
        loom_status st = run_sharded(m, &job, LOOM_MIN(chunk, n - c0), m->ops->train_ws_bytes, err);
        if (st) return st;
    }
    return LOOM_OK;
}

loom_status loom_model_predict_frames(loom_model *m, uint8_t *frames, const uint8_t *seqs, size_t n,
                                      size_t F, loom_point point, loom_error *err) {
    if (!m->ops->predict)
        return loom_fail(err, LOOM_EINVAL, "model %s predicts no frames (it models still images)",
                         m->ops->name);
    const size_t K = m->cfg.frames_in, M = m->cfg.frames_out, EX = loom_example_size(&m->cfg);
    const size_t FR = EX / loom_frames(&m->cfg), L = K + F; /* one frame; frames kept per sequence */
    uint8_t *gen = malloc(n * L * FR), *win = malloc(n * EX);
    float *probs = malloc(n * M * FR * sizeof *probs);
    loom_status st = gen && win && probs ? LOOM_OK : loom_fail(err, LOOM_ENOMEM, "out of memory");
    for (size_t k = 0; !st && k < n; k++) memcpy(gen + k * L * FR, seqs + k * EX, K * FR);
    for (size_t done = 0; !st && done < F; done += M) {
        /* the window: the last K of the frames so far; the rest of each example is not read */
        for (size_t k = 0; k < n; k++) {
            memcpy(win + k * EX, gen + (k * L + done) * FR, K * FR);
            memset(win + k * EX + K * FR, 0, M * FR);
        }
        if ((st = loom_model_predict(m, probs, win, n, n, point, err))) break;
        const size_t take = LOOM_MIN(M, F - done);
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < take * FR; i++)
                gen[(k * L + K + done) * FR + i] = (uint8_t)lrintf(255.0f * probs[k * M * FR + i]);
    }
    for (size_t k = 0; !st && k < n; k++) memcpy(frames + k * F * FR, gen + (k * L + K) * FR, F * FR);
    free(gen), free(win), free(probs);
    return st;
}

loom_status loom_model_logits(loom_model *m, float *logits, const uint8_t *imgs,
                              const int32_t *labels, size_t n, loom_error *err) {
    if (!m->ops->logits)
        return loom_fail(err, LOOM_EINVAL, "model %s has no per-pixel logits", m->ops->name);
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, n), err);
    if (st) return st;
    loom_gemm_mode mode;
    if ((st = op_mode(m, false, &mode, err))) return st;
    mode = loom_gemm_mode_set(mode);
    m->ops->logits(m, m->ws[0], logits, imgs, labels, n);
    loom_gemm_mode_set(mode);
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
    const size_t HW = loom_example_size(&m->cfg); /* one example */
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

size_t loom_model_class_floats(const loom_model *m) {
    return m->ops->classify && m->ops->class_floats ? m->ops->class_floats(&m->cfg) : 0;
}

size_t loom_model_feat_dim(const loom_model *m) {
    return m->ops->classify && m->ops->feat_dim ? m->ops->feat_dim(&m->cfg) : 0;
}

loom_status loom_model_classify(loom_model *m, float *logits, float *feats, const uint8_t *imgs,
                                size_t n, size_t chunk, loom_error *err) {
    if (!loom_model_class_floats(m))
        return loom_fail(err, LOOM_EINVAL, "model %s makes no predictions (not a classifier)",
                         m->ops->name);
    if (chunk == 0) chunk = 1;
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* one image */
    const size_t P = loom_model_class_floats(m), F = loom_model_feat_dim(m);
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const shard_job job = {.kind = JOB_CLASSIFY, .imgs = imgs + c0 * HW,
                               .fout = logits ? logits + c0 * P : NULL,
                               .feats = feats ? feats + c0 * F : NULL};
        loom_status st = run_sharded(m, &job, LOOM_MIN(chunk, n - c0), m->ops->train_ws_bytes, err);
        if (st) return st;
    }
    return LOOM_OK;
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
    const size_t ws = m->ops->sample_ws_bytes(&m->cfg, loom_micro_shard(&m->cfg, n));
    /* sample --n: the images (and frames) and their RNGs grow with n, the
     * workspaces do not; refuse what the machine cannot hold */
    const size_t HW = m->cfg.height * m->cfg.width;
    const size_t per_image = add_sat(mul_sat(HW, job.kind == JOB_FRAMES ? 1 + loom_model_nframes(m) : 1),
                                     sizeof(loom_rng));
    char what[64];
    snprintf(what, sizeof what, "a batch this large (%zu images)", n);
    loom_status st = loom_memory_check(add_sat(mul_sat(n, per_image), mul_sat(ws, (size_t)m->nthreads)),
                                       what, err);
    if (st) return st;
    if ((st = need_ws(m, ws, err))) return st;
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

loom_status loom_model_sample_given(loom_model *m, uint8_t *imgs, double *logw, const uint8_t *given,
                                    const int32_t *labels, size_t n, uint64_t seed, loom_error *err) {
    if (!m->ops->sample_given)
        return loom_fail(err, LOOM_EINVAL, "model %s cannot draw chosen pixels given the others "
                         "(not autoregressive)", m->ops->name);
    if (n == 0) return LOOM_OK;
    const char *why = m->ops->cannot_sample ? m->ops->cannot_sample(&m->cfg) : NULL;
    if (why) return loom_fail(err, LOOM_EINVAL, "cannot sample: %s", why);
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    const shard_job job = {.kind = JOB_SAMPLE_GIVEN, .labels = labels, .out = imgs, .given = given,
                           .logw = logw, .temperature = 1.0f};
    return run_sampling(m, job, n, seed, err);
}

/* ------------------------------------------------------------ losses from outside */

size_t loom_model_out_floats(const loom_model *m) {
    const loom_model_ops *o = m->ops;
    return o->out_floats && o->forward_out && o->backward_out ? o->out_floats(&m->cfg) : 0;
}

loom_status loom_model_forward(loom_model *m, float *out, double *internal, const uint8_t *imgs,
                               const int32_t *labels, size_t n, loom_error *err) {
    m->forward_n = 0;
    if (!loom_model_out_floats(m))
        return loom_fail(err, LOOM_EINVAL, "model %s cannot be trained from a loss on its outputs",
                         m->ops->name);
    if (n == 0) return loom_fail(err, LOOM_EINVAL, "empty batch");
    if (check_labels(m, labels, n, err)) return LOOM_EINVAL;
    loom_status st = need_ws(m, m->ops->train_ws_bytes(&m->cfg, n), err);
    if (st) return st;
    free(m->forward_labels), m->forward_labels = NULL;
    if (m->cfg.nclasses && labels) { /* backward needs them (the class tables' gradients) */
        if (!(m->forward_labels = malloc(n * sizeof *labels)))
            return loom_fail(err, LOOM_ENOMEM, "out of memory");
        memcpy(m->forward_labels, labels, n * sizeof *labels);
    }
    loom_gemm_mode mode; /* the forward of a training step: training's precision */
    if ((st = op_mode(m, true, &mode, err))) return st;
    mode = loom_gemm_mode_set(mode);
    m->ops->forward_out(m, m->ws[0], out, internal, imgs, labels, n);
    loom_gemm_mode_set(mode);
    m->forward_n = n;
    return LOOM_OK;
}

loom_status loom_model_backward(loom_model *m, float *dinput, const float *dout, size_t n,
                                float internal_weight, loom_error *err) {
    if (!m->forward_n || n != m->forward_n)
        return loom_fail(err, LOOM_EINVAL, "backward of %zu images without a forward of them", n);
    memset(m->g, 0, m->nfloats * sizeof *m->g);
    /* the weights as forward rounded them: unchanged since, so wbf is still theirs */
    loom_gemm_mode mode = loom_gemm_mode_set(weights_mode(m, m->train_prec));
    m->ops->backward_out(m, m->ws[0], m->g, dinput, dout, m->forward_labels, n, internal_weight);
    loom_gemm_mode_set(mode);
    m->forward_n = 0;
    for (size_t k = 0; k < m->nfloats; k++)
        if (!isfinite(m->g[k])) return loom_fail(err, LOOM_ENAN, "gradient is not finite");
    return LOOM_OK;
}
