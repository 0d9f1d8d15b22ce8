/* The model interface. A model is a table of named parameter tensors living
 * in one flat float buffer, plus a vtable of single-threaded functions that
 * work on one shard of a batch. Threading, gradient reduction, the optimiser
 * and checkpoints are generic (model.c) and never see a model's internals. */
#ifndef LOOM_MODEL_H
#define LOOM_MODEL_H

#include "comm.h"
#include "common.h"

#define LOOM_NAMELEN 48
#define LOOM_MAX_PARAMS 512 /* --layers 64 --conditional has 6 * 64 + 6 tensors */
#define LOOM_MAX_TERMS 4     /* named terms of a model's loss (ops->loss_terms) */

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
    /* rowlstm, diagbilstm: 0, or S: a multi-scale PixelRNN (docs/rowlstm.md,
     * "Multi-scale"): an S x (W*S/H) model of the image subsampled every H/S
     * pixels, and the full model conditioned on it */
    size_t multiscale;
    /* convlstm: an example is a sequence of frames_in + frames_out frames; the
     * model reads frames_in and predicts frames_out (0, 0 for still images);
     * kernel: convolution size (odd), patch: space-to-depth factor */
    size_t frames_in, frames_out, kernel, patch;
    /* convlstm: space-to-depth factor (above); renet: patches of patch x patch pixels */
    /* convlstm: peephole = 1 adds Shi et al.'s w_c . c terms (0 by default);
     * softmax256 = 1: a 256-way softmax per pixel (the exact NLL of 8-bit
     * frames), 0: a Bernoulli per pixel on intensities in [0, 1] (default);
     * feedback = 1: the forecaster reads its own previous prediction (the
     * last given frame at its first step), 0: nothing (Shi et al.; default) */
    int peephole, softmax256, feedback;
    /* convlstm without softmax256: what trains its frames (loom_frame_loss:
     * Bernoulli means by their cross-entropy by default, or intensities by
     * |z - x| or (z - x)^2) */
    int frame_loss;
    /* gran_d: the minibatch standard deviation feature (Karras et al. 2018)
     * over groups of this many consecutive images; 0: off */
    size_t mbstd;
    /* gran: 1 batch-normalises (no scale or shift) the generator's hidden
     * layers over each call's images, a micro-shard of 8; 0: none */
    int batchnorm;
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
    LOOM_OUT_BERNOULLI,  /* (n, H, W) logits per pixel */
    LOOM_OUT_IMAGE,      /* (n, C, H, W) an image in [0, 1] (a generator: gran) */
    LOOM_OUT_LOGIT       /* (n, 1) one logit per image (a discriminator: gran_d) */
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
    /* optional (autoregressive models; loom_model_inpaint): imgs (n, C, H, W)
     * in/out, raster order: pixel p is given (all its channels, left as they
     * are) when given[p] != 0 (given (H*W), the same for every image), else
     * drawn from the model at temperature 1; logw[b] = sum over image b's
     * given pixels of log p(pixel | everything before it) (colour: of its
     * channels' conditionals), nats: the log-weight of self-normalised
     * importance sampling of the drawn pixels given the others. Uses the
     * sampling workspace. */
    void (*sample_given)(const loom_model *m, void *ws, uint8_t *imgs, double *logw,
                         const uint8_t *given, const int32_t *labels, size_t n, loom_rng *rngs);
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
    /* optional, after forward_out on this workspace: target (n, out_floats)
     * = what the output distribution is scored against by the model's own
     * loss (LOOM_OUT_BERNOULLI: the binarized image, 0 or 1), so that a loss
     * from outside can be added to the model's own in one backward_out */
    void (*out_target)(const loom_model *m, void *ws, float *target, size_t n);
    /* optional (models whose weights carry fixed 0/1 masks: the colour
     * PixelRNNs): 1 when entry k of tensor p is masked. Masked entries are 0
     * after loom_model_init, the model's gradient is 0 on them (so Adam keeps
     * them 0), and loom_model_check_masks rejects weights where one is not. */
    int (*masked)(const loom_model *m, size_t p, size_t k);
    /* optional (sequence models): probs (n, frames_out, C, H, W) = the
     * predicted frames, each pixel's point estimate (loom_point: its mean, or
     * with a softmax256 output its median), from
     * the first frames_in frames of each example of seqs (n, frames_in +
     * frames_out, C, H, W; the later frames are not read); uses the training
     * workspace */
    void (*predict)(const loom_model *m, void *ws, float *probs, const uint8_t *seqs, size_t n, int point);
    /* optional: frees what a workspace holds besides its memory (e.g. cached
     * convolution primitives) before model.c frees it; workspaces start zeroed */
    void (*ws_release)(void *ws);
    /* optional (models that read an image to decide something about it: the
     * renet classifier): labelled = 1 means the data's labels are the
     * model's targets (cfg->nclasses comes from the data, shard's nll_img is
     * -log p(label | image)); classify: logits (n, class_floats(cfg)), the
     * class logits, and feats (n, feat_dim(cfg)), the features the head reads
     * (either may be NULL); uses the training workspace */
    int labelled;
    size_t (*class_floats)(const loom_config *cfg);
    size_t (*feat_dim)(const loom_config *cfg);
    void (*classify)(const loom_model *m, void *ws, float *logits, float *feats,
                     const uint8_t *imgs, size_t n);
    /* optional (composite losses: a KL and a reconstruction): loss_terms
     * returns how many terms (<= LOOM_MAX_TERMS; 0: none for this cfg) shard's
     * nll_img is the sum of, and fills names (when non-NULL) with theirs ("kl",
     * "recon": [a-z0-9_]); shard_terms, called after shard on the same
     * workspace and n, writes terms (n, nterms), each image's terms in nats,
     * which add up to its nll_img */
    size_t (*loss_terms)(const loom_config *cfg, const char **names);
    void (*shard_terms)(const loom_model *m, void *ws, double *terms, size_t n);
    /* optional (adversarial training, src/train/gan.c; models without a
     * likelihood leave shard NULL). generate (generators): x (n, C, H, W) =
     * images in [0, 1] from the noise z (n, zdim) or, when z is NULL, from
     * noise drawn for images first .. first + n - 1 of a batch with
     * noise_seed, keeping in ws what backward_out needs (its
     * dout is then d loss / d x). Autoencoders with a prior (draw, rae) have
     * it too, for the samples an adversarial term judges: their z must be
     * NULL, and their backward_out after it skips the encoder (whose
     * gradient it leaves alone). forward_x (models that read continuous
     * images, e.g. a discriminator): out (n, out_floats) for x (n, C, H, W)
     * in [0, 1], keeping what backward_out needs, whose dinput is then
     * d loss / d x; backward_out's grad may be NULL when only dinput is wanted.
     * Both use the training workspace. */
    void (*generate)(const loom_model *m, void *ws, float *x, const float *z, uint64_t noise_seed,
                     size_t first, size_t n);
    void (*forward_x)(const loom_model *m, void *ws, float *out, const float *x, size_t n);
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
    float *xbuf;     /* (nxbuf) loom_model_grad_ranks: tree nodes and slices exchanged */
    size_t nxbuf;
    void **ws;       /* per-thread workspaces */
    size_t ws_bytes; /* size of each */
    /* models with a latent noise vector (grupixel): training sets a fresh value
     * per step so every image gets new noise; 0 (evaluation) fixes it */
    uint64_t noise_seed;
    size_t forward_n; /* images of the last loom_model_forward, 0 when none is pending */
    int32_t *forward_labels; /* (forward_n) its labels (conditional models), or NULL */
    /* the last loom_model_grad[_ranks]'s loss terms (loom_model_loss_terms
     * names them): the batch mean of each, nats per image */
    double terms[LOOM_MAX_TERMS];
    /* the caller's context when made through the public API (src/api/): its
     * BLAS policy is applied around each public call; NULL otherwise */
    const struct loom_context *ctx;
    /* matrix products (src/core/gemm.h): back-end, and the precision of
     * training (loom_model_grad) and of everything else; bf16 reads the
     * weights from wbf, rounded from w at the start of each batch op */
    int gemm;            /* loom_gemm_backend */
    int train_prec, eval_prec; /* loom_precision */
    uint16_t *wbf;       /* (nfloats) or NULL */
    unsigned long wgen;  /* wbf's generation (loom_gemm_generation_next) */
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
/* frames of one example (1 for still images) and its bytes, (T, C, H, W) */
static inline size_t loom_frames(const loom_config *c) {
    return c->frames_in + c->frames_out ? c->frames_in + c->frames_out : 1;
}
static inline size_t loom_example_size(const loom_config *c) {
    return loom_frames(c) * loom_channels(c) * c->height * c->width;
}
/* the dimensions an NLL covers: the predicted frames of a sequence model,
 * every pixel and channel of a still image */
static inline size_t loom_nll_dims(const loom_config *c) {
    return (c->frames_out ? c->frames_out : 1) * loom_channels(c) * c->height * c->width;
}

/* What a model can do beyond training and evaluation, discovered from its op
 * table (so a command asks for a capability, not for a model by name): the
 * LOOM_CAP_* bits of include/loom/model.h. */
#define LOOM_NCAPS 9
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
/* loom_model_grad over the ranks of c (NULL or one rank: loom_model_grad):
 * every rank passes the same batch, computes its micro-shards
 * (loom_rank_shards) and gets the whole gradient in m->g and the loss, the
 * same bits as loom_model_grad on one process (model.c "over ranks").
 * Collective; LOOM_EINVAL when the batch has fewer micro-shards than ranks. */
loom_status loom_model_grad_ranks(loom_model *m, double *loss, const uint8_t *imgs,
                                  const int32_t *labels, size_t n, const loom_comm *c,
                                  loom_error *err);
/* micro-shards [*j0, *j1) of K that rank r of R computes: contiguous, in rank
 * order, sizes within one of each other */
void loom_rank_shards(size_t K, int R, int r, size_t *j0, size_t *j1);
/* NLL per image in nats (nll_img (n)), batched internally in chunks of `chunk`. */
loom_status loom_model_nll(loom_model *m, double *nll_img, const uint8_t *imgs,
                           const int32_t *labels, size_t n, size_t chunk, loom_error *err);
/* Per-pixel logits (n, H, W, 256), for colour (n, H, W, 3, 256): channel c's
 * 256 logits at each pixel; single-threaded; LOOM_EINVAL when the model has none.
 * Multi-scale models: the full model's, given the small image subsampled from
 * imgs (so they are not raster-order conditionals of p(x): no
 * LOOM_CAP_CONDITIONALS). */
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
/* the number of named terms of m's training loss (ops->loss_terms; 0: it is
 * one term), their names into names (LOOM_MAX_TERMS, may be NULL); after
 * loom_model_grad[_ranks], m->terms holds their batch means */
size_t loom_model_loss_terms(const loom_model *m, const char **names);
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

/* The point estimate a predicted frame takes of each pixel's distribution:
 * its mean (the MSE's best guess), or its median (the absolute error's; a
 * softmax256 output only: the Bernoulli on intensities has no median). */
typedef enum { LOOM_POINT_MEAN = 0, LOOM_POINT_MEDIAN } loom_point;

/* what trains convlstm's frames against intensities x in [0, 1]: the
 * cross-entropy of Bernoulli means sigmoid(z), or the absolute or squared
 * error of outputs z that are the intensities themselves */
typedef enum { LOOM_FRAME_XENT = 0, LOOM_FRAME_L1, LOOM_FRAME_MSE } loom_frame_loss;
/* by name ("xent", "l1", "mse"; "?" otherwise) and back (-1: none of them) */
const char *loom_frame_loss_name(int loss);
int loom_frame_loss_parse(const char *name);

/* Predicted frames of a sequence model (ops->predict), in chunks of `chunk`
 * examples over the threads: probs (n, frames_out, C, H, W) in [0, 1];
 * LOOM_EINVAL when the model predicts no frames, or for a median it has not. */
loom_status loom_model_predict(loom_model *m, float *probs, const uint8_t *seqs, size_t n,
                               size_t chunk, loom_point point, loom_error *err);

/* frames (n, F, C, H, W): F predicted frames of each sequence of seqs (only
 * its first frames_in frames are read), frames_out at a time; past the first
 * frames_out, the last frames_in frames so far (given, or predicted and
 * rounded to 8 bits) are read again, so the model runs on its own output.
 * frames[f] = round(255 p), p the point estimate. LOOM_EINVAL when the
 * model predicts no frames, or for a median it has not. */
loom_status loom_model_predict_frames(loom_model *m, uint8_t *frames, const uint8_t *seqs, size_t n,
                                      size_t F, loom_point point, loom_error *err);

/* Classifiers (ops->classify): logits (n, loom_model_class_floats) and
 * feats (n, loom_model_feat_dim), either may be NULL, for n images, in chunks
 * of `chunk` across the threads; LOOM_EINVAL when the model does not classify. */
size_t loom_model_class_floats(const loom_model *m); /* 0: no class logits */
size_t loom_model_feat_dim(const loom_model *m);
loom_status loom_model_classify(loom_model *m, float *logits, float *feats, const uint8_t *imgs,
                                size_t n, size_t chunk, loom_error *err);

/* Sample n images; image k uses an RNG seeded from (seed, k), so a given image
 * does not depend on how the batch is split across threads. */
loom_status loom_model_sample(loom_model *m, uint8_t *imgs, const int32_t *labels, size_t n,
                              size_t keep, float temperature, uint64_t seed, loom_error *err);
/* ops->sample_given over n images (imgs (n, C, H, W) in/out, logw (n), given
 * (H*W)), image k's RNG seeded from (seed, k) as in loom_model_sample;
 * LOOM_EINVAL when the model has no such sampler. */
loom_status loom_model_sample_given(loom_model *m, uint8_t *imgs, double *logw, const uint8_t *given,
                                    const int32_t *labels, size_t n, uint64_t seed, loom_error *err);

/* Filling any hidden region of one image (src/models/inpaint.c, docs/inpaint.md). */
typedef struct loom_inpaint_result {
    const char *method;  /* "sir" (autoregressive models) or "iterated-reconstruction" */
    size_t candidates;   /* sir: candidates drawn; iterated: 0 */
    double ess;          /* sir: (sum w)^2 / sum w^2 of the candidates' weights; iterated: 0 */
    /* sir: log of (1/M) sum_k w_k, w_k = exp(logw_k) (ops->sample_given): an
     * unbiased estimate of p(given pixels) inside the log (so in expectation
     * a lower bound on log p(given pixels)); exact when `exact` */
    double log_given;
    /* sir: 1 when no given pixel comes after the first hidden one in raster
     * order: then every weight is the same, each candidate is an exact draw
     * of p(hidden | given) and log_given is exact */
    int exact;
} loom_inpaint_result;

/* fills (nfills, C, H, W) = img (C, H, W) with the pixels where hidden[p]
 * (hidden (H*W)) is nonzero filled in; every other pixel is img's, exactly.
 * Models with ops->sample_given: `candidates` draws of the hidden pixels given
 * the others (ops->sample_given), weighted and resampled into nfills
 * (sampling-importance-resampling: the fills' distribution tends to p(hidden
 * | given) as candidates grows). Autoencoders (ops->reconstruct): each fill
 * starts from uniform noise in the hidden pixels and `iters` times takes the
 * hidden pixels of the reconstruction of the current image (the given ones
 * clamped): an approximation with no guarantee. label: (1) for conditional
 * models, else NULL. LOOM_EINVAL when hidden selects no pixel or every pixel,
 * or the model can do neither. Deterministic in seed, on any thread count. */
loom_status loom_model_inpaint(loom_model *m, uint8_t *fills, loom_inpaint_result *res,
                               const uint8_t *img, const uint8_t *hidden, const int32_t *label,
                               size_t candidates, size_t nfills, size_t iters, uint64_t seed,
                               loom_error *err);
/* out (C, H, W) = img with its hidden pixels (hidden (H*W) nonzero) shown as
 * a checkerboard of 32 and 224 (gray) or magenta (RGB): never the mid gray
 * 128 that pads image grids */
void loom_inpaint_masked_view(uint8_t *out, const uint8_t *img, const uint8_t *hidden, size_t C, size_t H,
                              size_t W);

#endif
