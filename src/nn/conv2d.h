/* Stride-1 "same" 2-D convolution on channels-last tensors, for the
 * ConvLSTM: y (n, h, w, cout) = x (n, h, w, cin) * wt (cout, k, k, cin), zero
 * padding of k / 2 on every side (k odd), no bias (the caller adds it).
 *
 * Two back-ends compute it: oneDNN's convolution primitives (when built with
 * LOOM_HAVE_DNNL; created once per shape and kept in the cache), and an
 * im2col + loom_gemm fallback. Each runs on the calling thread only: loom
 * parallelises over micro-shards, and a primitive whose reductions depended
 * on the thread count would break the bit-identity across thread counts.
 *
 * A cache belongs to one thread's workspace: zero-filled memory is an empty
 * cache (loom_conv2d_cache_release frees what it holds). Before the weights
 * change, call loom_conv2d_cache_new_weights so that the copies of the
 * weights in oneDNN's preferred layout are made again.
 *
 * Precision: the calling thread's matrix-product mode (gemm.h). When its
 * products round to bf16 (oneDNN, bf16), the convolution does too: oneDNN's
 * bf16 primitives read the activations and the weights rounded to bf16 and
 * write fp32 (forward y, backward dx and dwt), as the im2col path's bf16
 * products do; an fp32 mode stays fp32. */
#ifndef LOOM_CONV2D_H
#define LOOM_CONV2D_H

#include <stdbool.h>
#include <stddef.h>

#define LOOM_CONV2D_PLANS 24

typedef enum { LOOM_CONV_AUTO = 0, LOOM_CONV_IM2COL, LOOM_CONV_DNNL } loom_conv_backend;

typedef struct loom_conv2d_dims {
    size_t n, h, w, cin, cout, k;
} loom_conv2d_dims;

typedef struct loom_conv2d_cache {
    int ready;                 /* 0 in zero-filled memory */
    loom_conv_backend backend; /* what runs: IM2COL or DNNL (AUTO picks DNNL when built in) */
    unsigned long weights_gen; /* bumped by loom_conv2d_cache_new_weights */
    void *engine, *stream;     /* dnnl_engine_t, dnnl_stream_t */
    struct loom_conv2d_plan *plans[LOOM_CONV2D_PLANS];
} loom_conv2d_cache;

/* Select a back-end (before first use; LOOM_CONV_DNNL without oneDNN falls
 * back to im2col). loom_conv2d_backend_name: "onednn" or "im2col". */
void loom_conv2d_cache_init(loom_conv2d_cache *c, loom_conv_backend b);
void loom_conv2d_cache_release(loom_conv2d_cache *c);
void loom_conv2d_cache_new_weights(loom_conv2d_cache *c);
const char *loom_conv2d_backend_name(const loom_conv2d_cache *c);
/* oneDNN primitives the cache holds in this precision (tests: a shape ran on
 * oneDNN rather than falling back to im2col) */
size_t loom_conv2d_cache_plans(const loom_conv2d_cache *c, bool bf16);
/* floats of scratch the im2col path needs for dims d (0 for oneDNN) */
size_t loom_conv2d_scratch_floats(loom_conv2d_dims d);

/* y = conv(x, wt) (overwritten) */
void loom_conv2d_forward(float *y, const float *x, const float *wt, loom_conv2d_dims d,
                         loom_conv2d_cache *c, float *scratch);
/* dx = d conv / d x applied to dy (overwritten) */
void loom_conv2d_backward_data(float *dx, const float *dy, const float *wt, loom_conv2d_dims d,
                               loom_conv2d_cache *c, float *scratch);
/* dwt += d conv / d wt applied to dy, with the forward's input x */
void loom_conv2d_backward_weights(float *dwt, const float *x, const float *dy, loom_conv2d_dims d,
                                  loom_conv2d_cache *c, float *scratch);

#endif

/* ---- Strided convolution and its transpose, channels last, im2col +
 * loom_gemm on the calling thread (GRAN's encoder, decoder and
 * discriminator). A strided convolution maps x (n, h, w, cin) to
 * y (n, ho, wo, cout), ho = (h + 2 pad - k) / stride + 1 (wo alike), with
 * weights wt (cout, k, k, cin) and zero padding `pad` on every side. Its
 * transpose ("deconvolution") maps y-shaped inputs back to x-shaped outputs:
 * loom_deconv_forward is the convolution's data gradient, and its backward
 * the convolution's forward (data) plus the weight gradient. col is scratch
 * of loom_sconv_col_floats(d) floats. */
typedef struct loom_sconv_dims {
    size_t n, h, w, cin, cout, k, stride, pad;
} loom_sconv_dims;

static inline size_t loom_sconv_ho(loom_sconv_dims d) { return (d.h + 2 * d.pad - d.k) / d.stride + 1; }
static inline size_t loom_sconv_wo(loom_sconv_dims d) { return (d.w + 2 * d.pad - d.k) / d.stride + 1; }
size_t loom_sconv_col_floats(loom_sconv_dims d);

/* y (n, ho, wo, cout) = conv(x, wt) (overwritten) */
void loom_sconv_forward(float *y, const float *x, const float *wt, loom_sconv_dims d, float *col);
/* dx (n, h, w, cin) += d conv / d x applied to dy (n, ho, wo, cout) */
void loom_sconv_backward_data(float *dx, const float *dy, const float *wt, loom_sconv_dims d,
                              float *col);
/* dwt (cout, k, k, cin) += d conv / d wt applied to dy, with the forward's input x */
void loom_sconv_backward_weights(float *dwt, const float *x, const float *dy, loom_sconv_dims d,
                                 float *col);

/* The transposed convolution of d: out (n, h, w, cin) = conv^T(in (n, ho, wo,
 * cout)) (overwritten); its backward: din (n, ho, wo, cout) += conv(dout)
 * when din != NULL, and dwt += the weight gradient (in is the forward's input). */
void loom_deconv_forward(float *out, const float *in, const float *wt, loom_sconv_dims d, float *col);
void loom_deconv_backward(float *din, float *dwt, const float *dout, const float *in, const float *wt,
                          loom_sconv_dims d, float *col);
