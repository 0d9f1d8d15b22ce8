/* Layer library: forward/backward pairs on raw float buffers.
 *
 * Conventions (../shared/STYLE.md): outputs first, then caches, inputs,
 * parameters, dimensions. Backward functions ACCUMULATE (+=) into every
 * gradient buffer they are given; a NULL input gradient skips that work.
 * Nothing here allocates; nothing here threads: callers shard the batch and
 * every BLAS call runs single-threaded inside its shard.
 *
 * Feature maps are pixel-major and row-first: (H, B, W, C), so that one image
 * row of every image in the batch is one contiguous (B*W, C) block. */
#ifndef LOOM_NN_H
#define LOOM_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear: y = x @ w + b, applied to N rows (1x1 convolutions too) */
void loom_linear_forward(float *y, const float *x, const float *w, const float *b, size_t n,
                         size_t k, size_t m);
void loom_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, size_t n, size_t k, size_t m);

/* ---- tap convolution: y[p] = b + sum_t x[p + tap_t] @ w[t*cin:(t+1)*cin]
 * A masked convolution is a convolution that only has its unmasked taps, so
 * masks are expressed by the tap list, and no weight is ever dead. Zero
 * padding outside the image. */
typedef struct loom_tap {
    int dy, dx;
} loom_tap;

typedef struct loom_conv_dims {
    size_t H, B, W, cin, cout, ntaps;
} loom_conv_dims;

/* col: scratch (H*B*W, ntaps*cin) */
void loom_conv_forward(float *y, float *col, const float *x, const loom_tap *taps, const float *w,
                       const float *b, loom_conv_dims d);
void loom_conv_backward(float *dx, float *dw, float *db, float *col, const float *dy,
                        const float *x, const loom_tap *taps, const float *w, loom_conv_dims d);
/* im2col for the taps (exposed for the incremental sampler and tests) */
void loom_conv_im2col(float *col, const float *x, const loom_tap *taps, loom_conv_dims d);

/* The 24 taps of a 7x7 mask-A convolution (strictly before the centre). */
#define LOOM_MASK_A7_TAPS 24
extern const loom_tap loom_mask_a7[LOOM_MASK_A7_TAPS];

/* ---- Row LSTM layer (docs/rowlstm.md): y = x + h @ w_out + b_out */
typedef struct loom_rowlstm_dims {
    size_t H, B, W, C, h;
} loom_rowlstm_dims;

typedef struct loom_rowlstm_params {
    const float *w_is;  /* (2C, 4h)  taps j-1, j */
    const float *b_is;  /* (4h) */
    const float *w_ss;  /* (3h, 4h)  taps j-1, j, j+1 of the previous row */
    const float *w_out; /* (h, C) */
    const float *b_out; /* (C) */
    const float *cls;   /* (B, 4h) per-image gate bias (class conditioning), or NULL */
} loom_rowlstm_params;

typedef struct loom_rowlstm_grads {
    float *w_is, *b_is, *w_ss, *w_out, *b_out;
    float *cls; /* (B, 4h) or NULL */
} loom_rowlstm_grads;

typedef struct loom_rowlstm_cache {
    float *gates; /* (H, B, W, 4h) after the nonlinearities: i f o g */
    float *c;     /* (H, B, W, h) */
    float *tc;    /* (H, B, W, h) tanh(c) */
    float *hs;    /* (H, B, W, h) */
} loom_rowlstm_cache;

/* floats of scratch the layer needs */
size_t loom_rowlstm_scratch_floats(loom_rowlstm_dims d);
void loom_rowlstm_forward(float *y, loom_rowlstm_cache cache, float *scratch, const float *x,
                          loom_rowlstm_params p, loom_rowlstm_dims d);
/* dy is read-only; dx (may be NULL) accumulates, and gets dy for the residual */
void loom_rowlstm_backward(float *dx, loom_rowlstm_grads g, float *scratch, const float *dy,
                           const float *x, loom_rowlstm_params p, loom_rowlstm_cache cache,
                           loom_rowlstm_dims d);
/* One column of one row for incremental sampling, for n images:
 *   gates_ss: (n, 4h) state-to-state term already computed for this pixel
 *   x_prev, x_cur: (n, C) inputs at j-1 (zeros when j == 0) and j
 *   c_prev: (n, h) cell state above (row i-1, column j)
 * writes h_out, c_out (n, h) and y (n, C); scratch (n, 2C + 5h). */
void loom_rowlstm_step(float *y, float *h_out, float *c_out, float *scratch, const float *x_prev,
                       const float *x_cur, const float *gates_ss, const float *c_prev,
                       loom_rowlstm_params p, size_t n, size_t C, size_t h);
/* The state-to-state term of a whole row from the previous row's hidden state:
 * r (n*W, 4h) = im2col3(h_prev (n*W, h)) @ w_ss; col scratch (n*W, 3h). */
void loom_rowlstm_row_ss(float *r, float *col, const float *h_prev, const float *w_ss, size_t n,
                         size_t W, size_t h);

/* ---- Diagonal BiLSTM layer (docs/diagbilstm.md), both directions:
 *   y = x + (down(hf, shift_f) + down(hr, shift_r)) @ w_out + b_out
 * hf(i,j) reads hf(i-1,j) and hf(i,j-1) (the skewed map's previous column);
 * hr, the direction run on the mirrored map, reads hr(i-1,j) and hr(i,j+1).
 * down(h, s)(i,j) = h(i-s,j) (zero for i < s). The model uses shift_f = 0,
 * shift_r = 1; other values exist so that the tests can show that a shift on
 * the wrong side is caught. States outside the image are zero. */
typedef struct loom_diag_dims {
    size_t H, B, W, C, h;
    unsigned shift_f, shift_r;
} loom_diag_dims;

typedef struct loom_diag_params {
    const float *w_is;  /* (C, 8h) 1x1 mask-B conv: forward gates i f o g | reverse i f o g */
    const float *b_is;  /* (8h) */
    const float *w_ssf; /* (2h, 4h) forward taps: h(i-1, j), h(i, j-1) */
    const float *w_ssr; /* (2h, 4h) reverse taps: h(i-1, j), h(i, j+1) */
    const float *w_out; /* (h, C) */
    const float *b_out; /* (C) */
    const float *cls;   /* (B, 8h) per-image gate bias (class conditioning), or NULL */
} loom_diag_params;

typedef struct loom_diag_grads {
    float *w_is, *b_is, *w_ssf, *w_ssr, *w_out, *b_out;
    float *cls; /* (B, 8h) or NULL */
} loom_diag_grads;

typedef struct loom_diag_cache {
    float *gates; /* (H, B, W, 8h) after the nonlinearities */
    float *c;     /* (2, H, B, W, h) forward then reverse */
    float *tc;    /* (2, H, B, W, h) tanh(c) */
    float *hs;    /* (2, H, B, W, h) */
} loom_diag_cache;

size_t loom_diag_cache_floats(loom_diag_dims d); /* gates + c + tc + hs */
loom_diag_cache loom_diag_cache_at(float *base, loom_diag_dims d);
size_t loom_diag_scratch_floats(loom_diag_dims d);
void loom_diag_forward(float *y, loom_diag_cache cache, float *scratch, const float *x,
                       loom_diag_params p, loom_diag_dims d);
/* dy is read-only; dx (may be NULL) accumulates, and gets dy for the residual */
void loom_diag_backward(float *dx, loom_diag_grads g, float *scratch, const float *dy,
                        const float *x, loom_diag_params p, loom_diag_cache cache,
                        loom_diag_dims d);
/* Incremental sampling, for n images; rows are stored (W, n, .), so that one
 * column of all images is contiguous. p.cls is (n, 8h) or NULL.
 * Forward direction at one pixel (i, j):
 *   x (n, C); h_up (n, h) = hf(i-1, j) or NULL; h_left, c_left (n, h) = hf, cf
 *   at (i, j-1) or NULL; hr_up (n, h) = hr(i-1, j) or NULL (row 0).
 *   Writes h_out, c_out (n, h) and y (n, C); scratch (n, 8h). */
void loom_diag_step_fwd(float *y, float *h_out, float *c_out, float *scratch, const float *x,
                        const float *h_up, const float *h_left, const float *c_left,
                        const float *hr_up, loom_diag_params p, size_t n, size_t C, size_t h);
/* Reverse direction over one finished row i: x_row (W, n, C); h_up (W, n, h) =
 * hr of row i-1 or NULL. Writes h_row, c_row (W, n, h); scratch
 * (W*n*4h + n*7h). */
void loom_diag_row_rev(float *h_row, float *c_row, float *scratch, const float *x_row,
                       const float *h_up, loom_diag_params p, size_t n, size_t W, size_t C,
                       size_t h);

/* ---- 256-way softmax cross-entropy over N pixels.
 * Returns the summed negative log-likelihood in nats (double) and, when
 * nll != NULL, the per-pixel values. Overwrites logits with
 * scale * (softmax - onehot) when grad != 0. */
double loom_softmax256_xent(float *logits, double *nll, const uint8_t *target, size_t n,
                            float scale, int grad);

/* e (256) = exp((z - max z) / temperature); returns sum e (e unnormalised) */
float loom_softmax256(float *e, const float *z, float temperature);

/* ---- relu helpers */
void loom_relu_forward(float *y, const float *x, size_t n);
/* dx = dy * (y > 0): written (not accumulated), in place allowed */
void loom_relu_backward(float *dx, const float *dy, const float *y, size_t n);

#endif
