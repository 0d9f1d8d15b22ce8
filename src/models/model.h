/* The model interface. A model is a table of named parameter tensors living
 * in one flat float buffer, plus a vtable of single-threaded functions that
 * work on one shard of a batch. Threading, gradient reduction, the optimiser
 * and checkpoints are generic (model.c) and never see a model's internals. */
#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "common.h"

#define LOOM_NAMELEN 48
#define LOOM_MAX_PARAMS 512 /* --layers 64 --conditional has 6 * 64 + 6 tensors */

typedef struct loom_config {
    char model[16];     /* "rowlstm" | "diagbilstm" | "grupixel" | "draw" | "rae" */
    size_t height, width;
    size_t channels;    /* 1 (gray) or 3 (RGB: R, then G given R, then B given R, G); 0 means 1 */
    size_t layers, hidden;
    size_t steps_draw, read_n, write_n; /* draw: glimpses T, read and write grids N x N */
    int attention;      /* draw: 1 Gaussian filterbank read/write, 0 the whole image */
    int variational;    /* rae: 1 the code is a Gaussian latent (a VAE), 0 a deterministic code */
    int nclasses;       /* 0: unconditional */
    char cell[8];       /* grupixel: "gru" | "lstm" | "rnn"; "" for models without cells */
    size_t zdim;        /* grupixel: noise dimension; 0 for models without a latent */
} loom_config;

typedef struct loom_param {
    char name[LOOM_NAMELEN];
    int ndim;                  /* 1..LOOM_MAXDIM */
    size_t shape[LOOM_MAXDIM];
    size_t offset, size; /* in floats, into loom_model.w */
    float init_bound;    /* uniform in [-bound, bound]; 0 means zeros */
} loom_param;

typedef struct loom_model loom_model;

/* The distribution a model's outputs parameterise (losses/losses.h). */
typedef enum loom_output_kind {
    LOOM_OUT_NONE = 0,
    LOOM_OUT_SOFTMAX256, /* (n, H, W, 256) logits per pixel */
    LOOM_OUT_BERNOULLI   /* (n, H, W) logits per pixel */
} loom_output_kind;

typedef struct loom_model_ops {
    const char *name;
    loom_status (*check)(const loom_config *cfg, loom_error *err);
    /* fills out (when non-NULL) and returns the number of tensors */
    size_t (*layout)(const loom_config *cfg, loom_param *out);
    void (*init_extra)(loom_model *m); /* after the uniform/zero init, e.g. forget biases */
    size_t (*train_ws_bytes)(const loom_config *cfg, size_t n);
    /* images per micro-shard (model.c; 0: 8): batch ops run in micro-shards of
     * this many images, fixed whatever the thread count; as few as keep the
     * model's matrix products efficient (their row count is a multiple of it) */
    size_t micro_shard;
    /* Forward (and backward when grad != NULL, with dloss/dlogit scaled by
     * `scale`) for n images; nll_img[b] = -log p(image b) in nats. */
    void (*shard)(const loom_model *m, void *ws, float *grad, double *nll_img,
                  const uint8_t *imgs, const int32_t *labels, size_t n, float scale);
    /* optional (autoregressive models): logits (n, H, W, 256) of p(x_ij | x_<ij),
     * for colour (n, H, W, 3, 256) of p(x_ijc | pixels before (i,j), channels < c
     * of (i,j)); uses the training workspace */
    void (*logits)(const loom_model *m, void *ws, float *logits, const uint8_t *imgs,
                   const int32_t *labels, size_t n);
    /* optional (latent-variable models): nll_img[b] = the importance-weighted
     * bound -log (1/K sum_k p(x, z_k) / q(z_k | x)) with K posterior samples;
     * uses the training workspace */
    void (*iw_nll)(const loom_model *m, void *ws, double *nll_img, const uint8_t *imgs,
                   const int32_t *labels, size_t n, size_t K);
    /* optional (autoencoders): out (n, 2, H, W) = the input as the model sees
     * it (e.g. binarized) and its reconstruction; uses the training workspace */
    void (*reconstruct)(const loom_model *m, void *ws, uint8_t *out, const uint8_t *imgs,
                        const int32_t *labels, size_t n);
    size_t (*sample_ws_bytes)(const loom_config *cfg, size_t n);
    /* imgs (n, C, H, W) in/out: pixels with raster index < keep are given (all
     * their channels), the rest drawn at `temperature` with rngs[b] */
    void (*sample)(const loom_model *m, void *ws, uint8_t *imgs, const int32_t *labels, size_t n,
                   size_t keep, float temperature, loom_rng *rngs);
    /* optional (models that build an image in stages, e.g. DRAW's canvas):
     * nframes(cfg) stages; sample_frames draws like sample (keep = 0) and also
     * writes frames (n, nframes, H, W), the image after every stage */
    size_t (*nframes)(const loom_config *cfg);
    void (*sample_frames)(const loom_model *m, void *ws, uint8_t *imgs, uint8_t *frames,
                          const int32_t *labels, size_t n, float temperature, loom_rng *rngs);
    /* optional: what shard's nll_img is when it is not an exact -log p(x), for
     * reports: e.g. "negative ELBO" (an upper bound); NULL (or no op) means exact */
    const char *(*nll_kind)(const loom_config *cfg);
    /* optional: why this configuration cannot sample (no prior), or NULL */
    const char *(*cannot_sample)(const loom_config *cfg);
    /* optional (autoencoders with a code): code_dim(cfg) floats per image;
     * encode: codes (n, code_dim) of imgs (the posterior mean for a VAE), uses
     * the training workspace; decode: imgs (n, H, W) from codes, deterministic,
     * uses the sampling workspace */
    size_t (*code_dim)(const loom_config *cfg);
    void (*encode)(const loom_model *m, void *ws, float *codes, const uint8_t *imgs, size_t n);
    void (*decode)(const loom_model *m, void *ws, uint8_t *imgs, const float *codes, size_t n);
    /* optional: training with a loss from outside the model (a discriminator's,
     * a perceptual one), in two halves on one workspace. forward_out: out (n,
     * out_floats) = the parameters of the model's output distribution `output`
     * for imgs (teacher-forced where the model is autoregressive), internal (n)
     * = the model's own loss terms that do not depend on out (e.g. a KL), and
     * ws keeps what backward_out needs; backward_out: given dout (n,
     * out_floats) = d loss / d out, grad += d (loss + internal_weight * sum
     * internal) / d parameters, and dinput (n, C, H, W) += d loss / d input
     * when non-NULL and the model's input is continuous (none today: every
     * model reads 8-bit images) */
    loom_output_kind output;
    size_t (*out_floats)(const loom_config *cfg);
    void (*forward_out)(const loom_model *m, void *ws, float *out, double *internal,
                        const uint8_t *imgs, const int32_t *labels, size_t n);
    void (*backward_out)(const loom_model *m, void *ws, float *grad, float *dinput,
                         const float *dout, const int32_t *labels, size_t n,
                         float internal_weight);
    /* optional (models whose weights carry fixed 0/1 masks: the colour
     * PixelRNNs): 1 when entry k of tensor p is masked. Masked entries are 0
     * after loom_model_init, the model's gradient is 0 on them (so Adam keeps
     * them 0), and loom_model_check_masks rejects weights where one is not. */
    int (*masked)(const loom_model *m, size_t p, size_t k);
} loom_model_ops;

struct loom_model {
    loom_config cfg;
    const loom_model_ops *ops;
    loom_param params[LOOM_MAX_PARAMS];
    size_t nparams, nfloats;
    float *w; /* (nfloats) parameters */
    float *g; /* (nfloats) gradient of the last batch's mean loss */
    int nthreads;
    float **gbuf;    /* (ngbuf, nfloats) gradients of micro-shards and tree nodes */
    size_t ngbuf;
    void **ws;       /* per-thread workspaces */
    size_t ws_bytes; /* size of each */
    /* models with a latent noise vector (grupixel): training sets a fresh value
     * per step so every image gets new noise; 0 (evaluation) fixes it */
    uint64_t noise_seed;
    size_t forward_n; /* images of the last loom_model_forward, 0 when none is pending */
    int32_t *forward_labels; /* (forward_n) its labels (conditional models), or NULL */
    /* the caller's context when made through the public API (src/api/): its
     * BLAS policy is applied around each public call; NULL otherwise */
    const struct loom_context *ctx;
    /* matrix products (src/core/gemm.h): back-end, and the precision of
     * training (loom_model_grad) and of everything else; bf16 reads the
     * weights from wbf, rounded from w at the start of each batch op */
    int gemm;            /* loom_gemm_backend */
    int train_prec, eval_prec; /* loom_precision */
    uint16_t *wbf;       /* (nfloats) or NULL */
};

/* the faster back-end here for cfg's model (docs/performance.md), which the
 * CLI chooses when not told otherwise; LOOM_GEMM overrides it. A model made
 * by loom_model_create starts with loom_gemm_default() (OpenBLAS unless
 * LOOM_GEMM says otherwise), the back-end a thread starts with, so that its
 * ops give the same bits whether run through model.c or called directly. */
int loom_model_default_gemm(const loom_config *cfg);
/* choose m's back-end and precisions; LOOM_EINVAL (with the reason) when this
 * build or CPU cannot run them */
loom_status loom_model_set_gemm(loom_model *m, int backend, int train_prec, int eval_prec,
                                loom_error *err);

/* For layout functions: append tensor fmt (formatted with l) of shape r x c
 * (c == 0: a vector) when out != NULL; returns the new count n + 1.
 * loom_param_add_fanin sets init bound scale / sqrt(r) for a matrix (fan-in
 * r) and 0 for a vector. */
size_t loom_param_add(loom_param *out, size_t n, float init_bound, size_t r, size_t c,
                      const char *fmt, size_t l);
size_t loom_param_add_fanin(loom_param *out, size_t n, float scale, size_t r, size_t c,
                            const char *fmt, size_t l);
/* loom_param_add_fanin with scale 1 and a plain name (no % directives) */
size_t loom_param_add_named(loom_param *out, size_t n, size_t r, size_t c, const char *name);
/* a tensor of any rank 1..LOOM_MAXDIM (e.g. a convolution's (out, in, kh, kw)):
 * shape (ndim), uniform init in [-init_bound, init_bound] */
size_t loom_param_add_nd(loom_param *out, size_t n, float init_bound, int ndim,
                         const size_t *shape, const char *name);

/* Workspace carving, inside a function with `char *p` (the base, unused when
 * ws is NULL) and `size_t off`: point ws->field at p + off when ws != NULL,
 * then advance off by count elements of type, rounded up to 64 bytes. */
#define LOOM_TAKE(ws, field, type, count) do { \
        if (ws) (ws)->field = (type *)(void *)(p + off); \
        off += ((count) * sizeof(type) + 63) & ~(size_t)63; } while (0)

/* For check functions: LOOM_EINVAL with "<flag> <v> out of range (1..<hi>)"
 * unless 1 <= v <= hi. */
loom_status loom_check_range(const char *flag, size_t v, size_t hi, loom_error *err);
static inline size_t loom_channels(const loom_config *c) { return c->channels ? c->channels : 1; }

/* What a model can do beyond training and evaluation, discovered from its op
 * table (so a command asks for a capability, not for a model by name): the
 * LOOM_CAP_* bits of include/loom/model.h. */
#define LOOM_NCAPS 8
unsigned loom_model_caps(const loom_model *m);
/* "sample", "exact-nll", ...: the name of one capability bit (NULL if none) */
const char *loom_cap_name(unsigned cap);

const loom_model_ops *loom_model_find(const char *name);
const char *loom_model_names(void); /* "rowlstm, ...": every registered model */
loom_status loom_config_check(const loom_config *cfg, loom_error *err);
loom_status loom_model_create(loom_model **out, const loom_config *cfg, int nthreads,
                              loom_error *err);
void loom_model_free(loom_model *m);
/* The parameter table of cfg without allocating the model: params needs
 * LOOM_MAX_PARAMS entries. */
loom_status loom_model_layout(const loom_config *cfg, loom_param *params, size_t *nparams,
                              size_t *nfloats, loom_error *err);
/* *bytes = what training cfg with `batch` images per step on nthreads needs
 * (parameters, gradient, Adam moments, the micro-shards' gradient buffers,
 * one micro-shard's activations per thread, the batch), computed with
 * overflow checks (SIZE_MAX when it overflows). Fails only for an invalid config. */
loom_status loom_model_train_bytes(const loom_config *cfg, int nthreads, size_t batch,
                                   size_t *bytes, loom_error *err);
/* LOOM_EINVAL with "<what> needs about X GB of memory; this machine has Y GB"
 * when bytes exceed physical memory (or LOOM_MEM_LIMIT_MB, when set). */
loom_status loom_memory_check(size_t bytes, const char *what, loom_error *err);
/* bits per dimension (pixel and channel) of an NLL of nats_per_image under cfg:
 * the one conversion eval, the trainer and the public API report */
double loom_bits_per_dim(const loom_config *cfg, double nats_per_image);
/* Images per micro-shard for a batch of n (<= n): every batch op computes
 * micro-shards of this many images, whatever the thread count, and
 * loom_model_grad sums their gradients in a fixed tree (model.c), so 1, 2 or
 * N threads give the same bits. */
size_t loom_micro_shard(const loom_config *cfg, size_t n);
void loom_model_init(loom_model *m, loom_rng *rng);
const loom_param *loom_model_param(const loom_model *m, const char *name);

/* LOOM_EINVAL naming the first masked weight (ops->masked) that is not 0;
 * LOOM_OK for models without masks. */
loom_status loom_model_check_masks(const loom_model *m, loom_error *err);

/* Images are uint8 (n, C, H, W) planar, C = loom_channels(cfg): each image is C
 * planes of H x W (R, G, B for colour). */

/* Forward+backward over a batch: m->g = gradient of the mean NLL per
 * dimension (pixel and channel). Returns the mean NLL in nats per dimension. */
loom_status loom_model_grad(loom_model *m, double *loss, const uint8_t *imgs,
                            const int32_t *labels, size_t n, loom_error *err);
/* NLL per image in nats (nll_img (n)), batched internally in chunks of `chunk`. */
loom_status loom_model_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                           const int32_t *labels, size_t n, size_t chunk, loom_error *err);
/* Per-pixel logits (n, H, W, 256), for colour (n, H, W, 3, 256): channel c's
 * 256 logits at each pixel; single-threaded; LOOM_EINVAL when the model has none. */
loom_status loom_model_logits(loom_model *m, float *logits, const uint8_t *imgs,
                              const int32_t *labels, size_t n, loom_error *err);
/* Importance-weighted bound with K samples per image (nll_img (n), nats), in
 * chunks of `chunk` images; LOOM_EINVAL when the model has no latent. */
loom_status loom_model_iw_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                              const int32_t *labels, size_t n, size_t K, size_t chunk,
                              loom_error *err);
/* out (n, 2, H, W): model input | reconstruction; LOOM_EINVAL when the model has none. */
loom_status loom_model_reconstruct(loom_model *m, uint8_t *out, const uint8_t *imgs,
                                   const int32_t *labels, size_t n, loom_error *err);
/* Like loom_model_sample (keep = 0) and also frames (n, nframes, H, W), the
 * image after every stage; LOOM_EINVAL when the model is not staged. */
loom_status loom_model_sample_frames(loom_model *m, uint8_t *imgs, uint8_t *frames,
                                     const int32_t *labels, size_t n, float temperature,
                                     uint64_t seed, loom_error *err);
size_t loom_model_nframes(const loom_model *m); /* 0: not staged */
/* codes (n, loom_model_code_dim) of images, and images decoded from codes;
 * LOOM_EINVAL when the model has no code */
size_t loom_model_code_dim(const loom_model *m); /* 0: no code */
loom_status loom_model_encode(loom_model *m, float *codes, const uint8_t *imgs, size_t n,
                              loom_error *err);
loom_status loom_model_decode(loom_model *m, uint8_t *imgs, const float *codes, size_t n,
                              loom_error *err);
/* Training with a loss from outside (LOOM_CAP_OUTPUT_GRAD; ops forward_out /
 * backward_out): loom_model_forward writes out (n, loom_model_out_floats)
 * and internal (n) for n images and keeps the activations; loom_model_backward
 * then takes dout (n, out_floats) = d loss / d out for those same images and
 * sets m->g = d (loss + internal_weight * sum internal) / d parameters (and
 * dinput, when non-NULL, for models with continuous inputs). One thread for
 * now; a backward without its forward is an error. */
size_t loom_model_out_floats(const loom_model *m); /* 0: no such outputs */
loom_status loom_model_forward(loom_model *m, float *out, double *internal, const uint8_t *imgs,
                               const int32_t *labels, size_t n, loom_error *err);
loom_status loom_model_backward(loom_model *m, float *dinput, const float *dout, size_t n,
                                float internal_weight, loom_error *err);

/* Sample n images; image k uses an RNG seeded from (seed, k), so a given image
 * does not depend on how the batch is split across threads. */
loom_status loom_model_sample(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                              size_t keep, float temperature, uint64_t seed, loom_error *err);

#endif
