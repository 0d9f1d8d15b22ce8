/* Convolutional LSTM layer (Shi et al. 2015) over T steps, channels last,
 * gate order i f g o as in the other LSTMs (nn/lstm.c), peepholes optional:
 *   xh_t = [x_t, h_{t-1}]                         (B, H, W, cin + hid)
 *   a_i, a_f, a_g, a_o = conv(xh_t, wt) + bias
 *   i = sigm(a_i + w_ci . c_{t-1}),  f = sigm(a_f + w_cf . c_{t-1}),  g = tanh(a_g)
 *   c_t = f . c_{t-1} + i . g
 *   o = sigm(a_o + w_co . c_t),      h_t = o . tanh(c_t)
 * where . is the Hadamard product and w_ci, w_cf, w_co have the state's
 * shape, one weight per channel and position (Shi et al. 2015, eq. 3), held
 * as peep (H, W, 3, hid): at each position w_ci, w_cf, w_co; peep == NULL
 * drops the three terms.
 * wt (4 hid, k, k, cin + hid) holds the input-to-state and state-to-state
 * kernels side by side, so one convolution computes both (conv2d.h). A
 * layer without input has cin = 0 (the forecaster's first layer). */
#ifndef LOOM_CONVLSTM_H
#define LOOM_CONVLSTM_H

#include "conv2d.h"

typedef struct loom_convlstm_dims {
    size_t T, B, h, w; /* steps, batch, spatial size */
    size_t cin, hid, k; /* input channels (0: none), state channels, kernel (odd) */
} loom_convlstm_dims;

/* cache: xh (T, B, h, w, cin + hid), act (T, B, h, w, 4 hid) = i f g o,
 * c (T, B, h, w, hid) */
size_t loom_convlstm_cache_floats(loom_convlstm_dims d);
/* c_t (B, h, w, hid) in the cache */
const float *loom_convlstm_cell(const float *cache, loom_convlstm_dims d, size_t t);
/* scratch for forward and backward (the backward's state and its per-step
 * scratch below, side by side) */
size_t loom_convlstm_scratch_floats(loom_convlstm_dims d);

/* hs (T, B, h, w, hid) = the states h_t; x (T, B, h, w, cin) (NULL when cin
 * is 0); h0, c0 (B, h, w, hid) the initial state (NULL: zeros). */
void loom_convlstm_forward(float *hs, float *cache, const float *x, const float *h0,
                           const float *c0, const float *wt, const float *bias, const float *peep,
                           loom_convlstm_dims d, loom_conv2d_cache *cc, float *scratch);
/* step t alone of loom_convlstm_forward, steps 0..t-1 done: xt (B, h, w,
 * cin) is x_t; so that a caller can make x_t from step t-1's output (the
 * forecaster fed its own predictions) */
void loom_convlstm_forward_step(float *hs, float *cache, const float *xt, const float *h0, const float *c0,
                                const float *wt, const float *bias, const float *peep, loom_convlstm_dims d,
                                size_t t, loom_conv2d_cache *cc, float *scratch);
/* Given dhs (T, B, h, w, hid) = dL/dh_t from above and
 * dhT, dcT (B, h, w, hid) = dL/d(final state) (NULL: 0): dx (T, B, h, w,
 * cin) = dL/dx (written, NULL skips), dh0, dc0 (B, h, w, hid) = dL/d(initial
 * state) (written, NULL skips), dwt, dbias and dpeep (when peep != NULL) +=
 * the parameters' gradient. */
void loom_convlstm_backward(float *dx, float *dh0, float *dc0, float *dwt, float *dbias, float *dpeep,
                            const float *dhs, const float *dhT, const float *dcT, const float *cache,
                            const float *c0, const float *wt, const float *peep, loom_convlstm_dims d,
                            loom_conv2d_cache *cc, float *scratch);

/* loom_convlstm_backward one step at a time, for a caller whose dL/dh_t is
 * known only once step t + 1 is done: begin, then step for t = T-1 .. 0
 * (dht (B, h, w, hid) = dL/dh_t from above; dxt (B, h, w, cin) = dL/dx_t,
 * written, NULL skips), then end. bs holds the pass's state between the
 * calls (the gates' gradient of every step, for one weights' convolution at
 * the end); scratch is the calls' own. */
size_t loom_convlstm_bstate_floats(loom_convlstm_dims d);
size_t loom_convlstm_step_scratch_floats(loom_convlstm_dims d);
void loom_convlstm_backward_begin(float *bs, const float *dhT, const float *dcT, loom_convlstm_dims d);
void loom_convlstm_backward_step(float *dxt, float *bs, float *dpeep, const float *dht, const float *cache,
                                 const float *c0, const float *wt, const float *peep, loom_convlstm_dims d,
                                 size_t t, loom_conv2d_cache *cc, float *scratch);
void loom_convlstm_backward_end(float *dh0, float *dc0, float *dwt, float *dbias, const float *bs,
                                const float *cache, loom_convlstm_dims d, loom_conv2d_cache *cc, float *scratch);

#endif
