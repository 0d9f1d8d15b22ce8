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
} loom_pixelrnn_fill;
static inline int loom_pixelrnn_drawn(const loom_pixelrnn_fill *f, size_t p) {
    return f->given ? !f->given[p] : p >= f->keep;
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

/* one value in 0..255 from the softmax of z (256) at `temperature` */
uint8_t loom_pixelrnn_draw(const float *z, float temperature, loom_rng *rng);

#endif
