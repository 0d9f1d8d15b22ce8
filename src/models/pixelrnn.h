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

typedef struct loom_pixelrnn_ws {
    double *nllpix;  /* (N) N = H*n*W */
    uint8_t *tgt;    /* (N) images permuted to (H, n, W) */
    float *u;        /* (N) tgt / 255 */
    float *col_in;   /* (N, 24) */
    float *X;        /* (L+1, N, C) layer inputs/outputs */
    float *cache;    /* (L, cache_floats) the layers' caches */
    float *scratch;  /* (scratch_floats) the layer's scratch */
    float *Z;        /* (N, C) head hidden, after relu */
    float *A;        /* (N, C) relu(X_L) */
    float *logits;   /* (N, 256) */
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
} loom_pixelrnn_arch;

/* carve ws from base (NULL: only count); returns the bytes */
size_t loom_pixelrnn_carve(loom_pixelrnn_ws *ws, void *base, const loom_pixelrnn_arch *a,
                           const loom_config *c, size_t n);
/* the model_ops shard: forward, loss, and backward when grad != NULL */
void loom_pixelrnn_shard(const loom_model *m, const loom_pixelrnn_arch *a, void *ws, float *grad,
                         double *nll_img, const uint8_t *imgs, const int32_t *labels, size_t n,
                         float scale);
/* the model_ops logits: (n, H, W, 256) */
void loom_pixelrnn_logits(const loom_model *m, const loom_pixelrnn_arch *a, void *ws,
                          float *logits, const uint8_t *imgs, const int32_t *labels, size_t n);

/* layout entries: in.weight, in.bias (before the layers) and head1/head2
 * (after them), appended to out as loom_param_add_fanin does */
size_t loom_pixelrnn_layout_in(loom_param *out, size_t n, const loom_config *c);
size_t loom_pixelrnn_layout_head(loom_param *out, size_t n, const loom_config *c);

/* ---- sampling, one pixel (i, j) of n images at a time */

/* cls (L, n, g) = the class rows of each image */
void loom_pixelrnn_classes(float *cls, const loom_model *m, const loom_pixelrnn_arch *a,
                           const int32_t *labels, size_t n);
/* x0 (n, C) = the input convolution at (i, j) of imgs (n, H, W); col (n, 24) */
void loom_pixelrnn_sample_in(float *x0, float *col, const loom_model *m, const uint8_t *imgs,
                             size_t i, size_t j, size_t n);
/* the head on the last layer's X (n, C) at (i, j), then pixel (i, j) of each
 * image drawn at `temperature` with rngs[b] unless its raster index < keep;
 * logits (n, 256), Z, A (n, C) scratch */
void loom_pixelrnn_sample_out(uint8_t *imgs, float *logits, float *Z, float *A, const float *X,
                              const loom_model *m, const loom_pixelrnn_arch *a, size_t i,
                              size_t j, size_t n, size_t keep, float temperature,
                              loom_rng *rngs);

/* one value in 0..255 from the softmax of z (256) at `temperature` */
uint8_t loom_pixelrnn_draw(const float *z, float temperature, loom_rng *rng);

#endif
