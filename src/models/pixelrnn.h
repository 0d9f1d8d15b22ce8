/* Scaffolding shared by the PixelRNN-style models (rowlstm.c, diagbilstm.c,
 * and in part grupixel.c): the (n, H, W) <-> (H, n, W) transpositions, the 7x7
 * mask-A input convolution, the class-embedding rows, the output head and the
 * per-pixel draw. Internal to src/models. Backward functions accumulate into
 * parameter gradients, like the layers in src/nn. */
#ifndef LOOM_PIXELRNN_H
#define LOOM_PIXELRNN_H

#include "model.h"

/* cls (L, n, g) = the class rows of each image; layer l's table (K, g) is
 * parameter tab0 + l * stride */
void loom_pixelrnn_gather_cls(float *cls, const loom_model *m, size_t tab0, size_t stride,
                              const int32_t *labels, size_t n, size_t g);
/* dtab (K, g) += dcls (n, g) scattered to each image's class row */
void loom_pixelrnn_scatter_cls(float *dtab, const float *dcls, const int32_t *labels, size_t n,
                               size_t g);

/* ---- the training/evaluation pass, shared: the model supplies its layer.
 * Parameter layout: in.weight, in.bias, then per layer `layer_tensors`
 * tensors (plus the class table (K, cls_width * hidden) when conditional),
 * then head1.weight, head1.bias, head2.weight, head2.bias. */

/* Colour (docs/rowlstm.md, "Colour"): a mask on a (rows, cols) weight. Input
 * unit r is in group gi = ((r - row0) % rmod) / rdiv, output unit c in group
 * go = (c % cmod) / cdiv; entry (r, c) is masked when r >= row0 and gi > go
 * (mask B), or gi >= go when strict (mask A). */
typedef struct loom_pixelrnn_mask {
    size_t row0, rmod, rdiv, cmod, cdiv;
    int strict;
} loom_pixelrnn_mask;

typedef struct loom_pixelrnn_ws {
    double *nllpix;  /* (N, ch) N = H*n*W */
    uint8_t *tgt;    /* (N, ch) images permuted to (H, n, W, ch) */
    float *u;        /* (N, ch) tgt / 255 */
    float *col_in;   /* (N, in_cols): 24 taps (gray), 25 taps x 3 channels (colour) */
    float *X;        /* (L+1, N, C) layer inputs/outputs */
    float *cache;    /* (L, cache_floats) the layers' caches */
    float *scratch;  /* (scratch_floats) the layer's scratch */
    float *Z;        /* (N, C) head hidden, after relu */
    float *A;        /* (N, C) relu(X_L) */
    float *logits;   /* (N, ch*256) */
    float *dA, *dB;  /* (N, C) */
    float *cls;      /* (L, n, g) class rows gathered per image */
    float *dcls;     /* (n, g) */
    /* multi-scale only (1-float stubs otherwise) */
    uint8_t *small;  /* (n, ch, S, W/f) the small images */
    float *feat;     /* (N, K) their neighbourhoods and the places in the blocks */
    float *F;        /* (N, C) relu(feat @ up.weight + up.bias) */
    float *cond;     /* (L, N, C) each layer's conditioning */
    float *Xc;       /* (N, C) a layer's input plus its conditioning */
    float *dF;       /* (N, C) */
    double *nll_small; /* (n) */
    void *small_ws;  /* the small model's workspace */
} loom_pixelrnn_ws;

typedef struct loom_pixelrnn_arch {
    size_t layer_tensors; /* tensors per layer, not counting the class table */
    size_t cls_width;     /* g = cls_width * hidden: a layer's class row */
    size_t (*cache_floats)(const loom_config *c, size_t n);   /* one layer's cache */
    size_t (*scratch_floats)(const loom_config *c, size_t n);
    /* y (N, C) = layer l of x (N, C); cls (n, g) or NULL */
    void (*forward)(float *y, float *cache, float *scratch, const float *x, const float *cls,
                    const loom_model *m, size_t l, size_t n);
    /* dx (N, C) += d/dx, the layer's gradients in grad +=, dcls (n, g) += when non-NULL */
    void (*backward)(float *dx, float *grad, float *dcls, float *scratch, const float *dy,
                     const float *x, const float *cls, float *cache, const loom_model *m,
                     size_t l, size_t n);
    /* colour: the mask of layer tensor k (< layer_tensors) in *mk, or 0 when it has none */
    int (*layer_mask)(const loom_config *c, size_t k, loom_pixelrnn_mask *mk);
} loom_pixelrnn_arch;

/* LOOM_EINVAL unless 1 or 3 channels, and for 3 a hidden size divisible by 3 */
loom_status loom_pixelrnn_check_channels(const loom_config *c, loom_error *err);
/* the model_ops masked: 1 when entry k of tensor p is masked (colour only) */
int loom_pixelrnn_masked(const loom_model *m, const loom_pixelrnn_arch *a, size_t p, size_t k);
/* zero the masked entries of buf (nfloats): the weights after init, the
 * gradients after a backward pass */
void loom_pixelrnn_apply_masks(const loom_model *m, const loom_pixelrnn_arch *a, float *buf);

/* carve ws from base (NULL: only count); returns the bytes */
size_t loom_pixelrnn_carve(loom_pixelrnn_ws *ws, void *base, const loom_pixelrnn_arch *a,
                           const loom_config *c, size_t n);
/* the model_ops shard: forward, loss, and backward when grad != NULL */
void loom_pixelrnn_shard(const loom_model *m, const loom_pixelrnn_arch *a, void *ws, float *grad,
                         double *nll_img, const uint8_t *imgs, const int32_t *labels, size_t n,
                         float scale);
/* the model_ops logits: (n, H, W, 256), colour (n, H, W, 3, 256) */
void loom_pixelrnn_logits(const loom_model *m, const loom_pixelrnn_arch *a, void *ws,
                          float *logits, const uint8_t *imgs, const int32_t *labels, size_t n);

/* the model_ops forward_out / backward_out: out (n, H, W, ch, 256) = the
 * logits (as loom_pixelrnn_logits), internal 0; backward from dout of that
 * shape (ops->out_floats = loom_pixelrnn_out_floats) */
void loom_pixelrnn_forward_out(const loom_model *m, const loom_pixelrnn_arch *a, void *ws,
                               float *out, double *internal, const uint8_t *imgs,
                               const int32_t *labels, size_t n);
void loom_pixelrnn_backward_out(const loom_model *m, const loom_pixelrnn_arch *a, void *ws,
                                float *grad, const float *dout, const int32_t *labels, size_t n);
size_t loom_pixelrnn_out_floats(const loom_config *c);

/* layout entries: in.weight, in.bias (before the layers) and head1/head2
 * (after them), appended to out as loom_param_add_fanin does */
size_t loom_pixelrnn_layout_in(loom_param *out, size_t n, const loom_config *c);
size_t loom_pixelrnn_layout_head(loom_param *out, size_t n, const loom_config *c);

/* ---- sampling, one pixel (i, j) of n images at a time */

/* cls (L, n, g) = the class rows of each image */
void loom_pixelrnn_classes(float *cls, const loom_model *m, const loom_pixelrnn_arch *a,
                           const int32_t *labels, size_t n);
/* columns of the input convolution's im2col: 24 (gray), 75 (colour) */
size_t loom_pixelrnn_in_cols(const loom_config *c);
/* Which pixels a sampler draws: those of raster index >= keep, or, when
 * given != NULL (H*W), those where given[p] == 0; logw (n, or NULL) += log p
 * of each given pixel under the model (ops->sample_given). */
typedef struct loom_pixelrnn_fill {
    const uint8_t *given;
    size_t keep;
    double *logw;
    /* multi-scale full model: fixed (H*W) the pixels of the small image,
     * neither drawn nor weighed (already in imgs), and cond (L, H, W, n, C)
     * the conditioning added to each layer's input; NULL otherwise */
    const uint8_t *fixed;
    const float *cond;
} loom_pixelrnn_fill;
static inline int loom_pixelrnn_drawn(const loom_pixelrnn_fill *f, size_t p) {
    if (f->fixed && f->fixed[p]) return 0;
    return f->given ? !f->given[p] : p >= f->keep;
}
/* the conditioning of layer l at (i, j) of a sampler's images, (n, C), or NULL */
static inline const float *loom_pixelrnn_cond_at(const loom_pixelrnn_fill *f, const loom_config *c,
                                                 size_t l, size_t i, size_t j, size_t n) {
    return f->cond ? f->cond + (((l * c->height + i) * c->width + j) * n) * 2 * c->hidden : NULL;
}
/* x (n*C) += sign * cond (n*C), when cond != NULL */
static inline void loom_pixelrnn_add_cond(float *x, const float *cond, float sign, size_t nC) {
    if (cond)
        for (size_t k = 0; k < nC; k++) x[k] += sign * cond[k];
}
/* log softmax(z (256))[v] in double */
double loom_pixelrnn_logp(const float *z, uint8_t v);

/* How many times the sampler runs pixel (i, j): 1 in gray or when the pixel is
 * given; in colour 3 when drawn, pass c drawing channel
 * c from a state computed with the pixel's channels < c (the masks make
 * channel c's logits independent of the others, and since mask A hides the
 * last channel from every feature of its pixel, the last pass's state is the
 * state of the finished pixel). */
size_t loom_pixelrnn_passes(const loom_config *c, size_t i, size_t j, const loom_pixelrnn_fill *f);
/* x0 (n, C) = the input convolution at (i, j) of imgs (n, ch, H, W); col (n,
 * in_cols); colour: only the first `known` channels of (i, j) are read, the
 * others taken as 0 */
void loom_pixelrnn_sample_in(float *x0, float *col, const loom_model *m, const uint8_t *imgs,
                             size_t i, size_t j, size_t n, size_t known);
/* the head on the last layer's X (n, C) at (i, j), then channel ch of pixel
 * (i, j) of each image drawn at `temperature` with rngs[b] when f draws the
 * pixel; when it is given and f->logw is set, f->logw[b] += the log
 * probability of all its channels (one pass: given, all channels are known);
 * logits (n, ch*256), Z, A (n, C) scratch */
void loom_pixelrnn_sample_out(uint8_t *imgs, float *logits, float *Z, float *A, const float *X,
                              const loom_model *m, const loom_pixelrnn_arch *a, size_t i,
                              size_t j, size_t ch, size_t n, const loom_pixelrnn_fill *f,
                              float temperature, loom_rng *rngs);

/* ---- multi-scale (cfg->multiscale = S > 0; docs/rowlstm.md, "Multi-scale").
 * Block factor f = H / S; the small image is the pixels (f*si, f*sj), S x
 * W/f. Parameters: the full model's (as without), then cond.up.weight (K, C)
 * and cond.up.bias (C), K = 9 ch + f*f, then per layer cond.L.weight (C, C)
 * and cond.L.bias (C), then the small model's tensors named "small.<name>".
 * F = relu(P @ up.weight + up.bias), P (N, K) = the 3x3 neighbourhood of the
 * pixel's block in the small image (values / 255, zero outside) and the
 * one-hot place of the pixel in its block; layer l's input-to-state sees its
 * input plus cond_l = F @ cond.l.weight + cond.l.bias, the residual does
 * not. The full model predicts only the pixels that are not in the small
 * image. */

/* LOOM_EINVAL unless multiscale is 0, or S < H with H % S == 0 and W % (H/S) == 0 */
loom_status loom_pixelrnn_check_multiscale(const loom_config *c, loom_error *err);
/* the small model's config: S x W/f, multiscale 0 */
loom_config loom_pixelrnn_small_cfg(const loom_config *c);
/* appends the multi-scale tensors (conditioning, then the small model's laid
 * out by `layout`, renamed small.*) after the n of the full model */
size_t loom_pixelrnn_layout_ms(loom_param *out, size_t n, const loom_config *c,
                               size_t (*layout)(const loom_config *, loom_param *));
/* s = the small model inside m: its config and parameter table, with w (and
 * g when m's is set) pointing at its part of m's buffers */
void loom_pixelrnn_small_model(loom_model *s, const loom_model *m, const loom_pixelrnn_arch *a);
/* index of the first small.* tensor of m */
size_t loom_pixelrnn_small0(const loom_model *m, const loom_pixelrnn_arch *a);
/* 1 when (i, j) is a pixel of the small image */
static inline int loom_pixelrnn_in_small(const loom_config *c, size_t i, size_t j) {
    const size_t f = c->height / c->multiscale;
    return i % f == 0 && j % f == 0;
}
/* sampling workspace: the model's own for the full image (full_bytes), and
 * for a multi-scale model also the small model's, the small image, masks and
 * the conditioning */
size_t loom_pixelrnn_sample_bytes(const loom_config *c, size_t n,
                                  size_t (*full_bytes)(const loom_config *, size_t));
/* a model's sampler: fill (m, ws, imgs, labels, n, f, temperature, rngs) */
typedef void (*loom_pixelrnn_filler)(const loom_model *m, void *ws, uint8_t *imgs,
                                     const int32_t *labels, size_t n, const loom_pixelrnn_fill *f,
                                     float temperature, loom_rng *rngs);
/* A PixelRNN's sampler: single-scale, fill itself. Multi-scale: the small
 * image first (drawn by `fill` on the small model, its pixels given where f
 * gives their pixel of the full image), copied into imgs, then the rest of
 * the full image given it; f->logw (when set) = both models' log-weights of
 * the given pixels. */
void loom_pixelrnn_sample(const loom_model *m, const loom_pixelrnn_arch *a, void *ws,
                          uint8_t *imgs, const int32_t *labels, size_t n, const loom_pixelrnn_fill *f,
                          float temperature, loom_rng *rngs, loom_pixelrnn_filler fill,
                          size_t (*full_bytes)(const loom_config *, size_t));

/* one value in 0..255 from the softmax of z (256) at `temperature` */
uint8_t loom_pixelrnn_draw(const float *z, float temperature, loom_rng *rng);

#endif
