/* Sequence layers: Elman RNN (tanh), LSTM and GRU over a whole sequence,
 * with backpropagation through time.
 *
 * Same conventions as nn.h: outputs first, backward ACCUMULATES into every
 * gradient it is given (NULL skips that work), nothing allocates or threads.
 *
 * Layout is time-major: x (T, B, In), y (T, B, H), so one time step of the
 * whole batch is one contiguous (B, F) block and the recurrent product of a
 * step is one sgemm. Weights use loom's y = x @ w layout, which is the
 * transpose of PyTorch's: w_ih (In, G) == weight_ih_l0.T, w_hh (H, G) ==
 * weight_hh_l0.T, with G gate columns in PyTorch's order, so weights convert
 * with a transpose and nothing else. Both biases exist, as in PyTorch.
 *
 * With a_t = x_t @ w_ih + b_ih (+ bias[b] per sequence) and
 *      r_t = h_{t-1} @ w_hh + b_hh, split into blocks of H columns:
 *
 *   RNN  (G = H):   h_t = tanh(a_t + r_t)
 *   LSTM (G = 4H):  i, f, g, o = sigm(a_i + r_i), sigm(a_f + r_f), tanh(a_g + r_g), sigm(a_o + r_o)
 *                   c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)
 *   GRU  (G = 3H):  r = sigm(a_r + r_r);  z = sigm(a_z + r_z)
 *                   n = tanh(a_n + r * r_n)      (r_n includes b_hn: PyTorch's convention)
 *                   h_t = (1 - z) * n + z * h_{t-1}
 *
 * y_t = h_t. h0 (and c0) (B, H) may be NULL (zeros). hT (cT) (B, H) receive
 * the final state when non-NULL, so a caller can carry state across calls.
 *
 * Pre-projected input: when x == NULL, the caller has already written the
 * input pre-activations a (T, B, G) into the start of the cache (for example
 * rows of a token table: an embedding followed by w_ih is a (V, G) table).
 * Then w_ih, b_ih and bias are not read by forward, and backward leaves
 * dx / w_ih / b_ih / bias alone; backward always leaves the gradient w.r.t.
 * a, dA (T, B, G), at the start of its scratch, for such callers. */
#ifndef LOOM_SEQ_H
#define LOOM_SEQ_H

#include <stddef.h>

typedef enum loom_cell { LOOM_CELL_RNN = 0, LOOM_CELL_LSTM, LOOM_CELL_GRU } loom_cell;

/* "rnn" | "lstm" | "gru" -> 0 and *out, or -1 for anything else */
int loom_cell_parse(const char *name, loom_cell *out);
const char *loom_cell_name(loom_cell c);
size_t loom_cell_gates(loom_cell c); /* G / H: 1, 4, 3 */

typedef struct loom_seq_dims {
    size_t T, B, In, H;
} loom_seq_dims;

typedef struct loom_seq_params {
    const float *w_ih; /* (In, G) */
    const float *w_hh; /* (H, G) */
    const float *b_ih; /* (G) */
    const float *b_hh; /* (G) */
    const float *bias; /* (B, G) per-sequence input bias (class conditioning), or NULL */
} loom_seq_params;

typedef struct loom_seq_grads {
    float *w_ih, *w_hh, *b_ih, *b_hh; /* shapes as the parameters; each may be NULL */
    float *bias;                      /* (B, G) or NULL */
} loom_seq_grads;

/* floats of cache (forward -> backward) and of backward scratch */
size_t loom_seq_cache_floats(loom_cell c, loom_seq_dims d);
size_t loom_seq_scratch_floats(loom_cell c, loom_seq_dims d);
/* floats of scratch for one step of B sequences */
size_t loom_seq_step_floats(loom_cell c, size_t B, size_t H);

/* Cache layouts (G = gates * H):
 *   RNN   act (T, B, H) = h
 *   LSTM  act (T, B, 4H) = i f g o after the nonlinearities | c (T, B, H) | tanh c (T, B, H)
 *   GRU   act (T, B, 3H) = r z n after the nonlinearities | r_n (T, B, H)
 * followed by one step buffer (B, G). */

void loom_rnn_forward(float *y, float *hT, float *cache, const float *x, const float *h0,
                      loom_seq_params p, loom_seq_dims d);
void loom_lstm_forward(float *y, float *hT, float *cT, float *cache, const float *x,
                       const float *h0, const float *c0, loom_seq_params p, loom_seq_dims d);
void loom_gru_forward(float *y, float *hT, float *cache, const float *x, const float *h0,
                      loom_seq_params p, loom_seq_dims d);
/* Step t of loom_lstm_forward, for a sequence whose inputs depend on its
 * earlier outputs (a decoder that reads what it drew): xt (B, In) is step t's
 * input, and steps 0 .. t-1 have run into the same y and cache. After all T
 * steps, y and cache are loom_lstm_forward's (but for the rounding of the
 * input product, done a step at a time), ready for loom_lstm_backward. */
void loom_lstm_forward_step(float *y, float *cache, const float *xt, const float *h0, const float *c0,
                            loom_seq_params p, loom_seq_dims d, size_t t);

/* dy (T, B, H) may be NULL (only the final state matters); dhT, dcT (B, H)
 * may be NULL (zero). dx (T, B, In), dh0, dc0 (B, H) accumulate when non-NULL.
 * scratch: loom_seq_scratch_floats(); on return it starts with dA (T, B, G). */
void loom_rnn_backward(float *dx, float *dh0, loom_seq_grads g, float *scratch, const float *dy,
                       const float *dhT, const float *x, const float *h0, loom_seq_params p,
                       const float *cache, const float *y, loom_seq_dims d);
void loom_lstm_backward(float *dx, float *dh0, float *dc0, loom_seq_grads g, float *scratch,
                        const float *dy, const float *dhT, const float *dcT, const float *x,
                        const float *h0, const float *c0, loom_seq_params p, const float *cache,
                        const float *y, loom_seq_dims d);
void loom_gru_backward(float *dx, float *dh0, loom_seq_grads g, float *scratch, const float *dy,
                       const float *dhT, const float *x, const float *h0, loom_seq_params p,
                       const float *cache, const float *y, loom_seq_dims d);

/* One step for B sequences (incremental sampling): h_out (B, H) from x (B, In)
 * and h (B, H) (NULL: zeros); LSTM also c -> c_out. scratch:
 * loom_seq_step_floats(). x == NULL: the caller wrote the input
 * pre-activations (B, G) into the start of scratch. h_out must not alias h. */
void loom_rnn_step(float *h_out, float *scratch, const float *x, const float *h,
                   loom_seq_params p, size_t B, size_t In, size_t H);
void loom_lstm_step(float *h_out, float *c_out, float *scratch, const float *x, const float *h,
                    const float *c, loom_seq_params p, size_t B, size_t In, size_t H);
void loom_gru_step(float *h_out, float *scratch, const float *x, const float *h,
                   loom_seq_params p, size_t B, size_t In, size_t H);

/* ---- shared by the three cells (seq.c) */
/* a (N, G) = x (N, In) @ w_ih + b_ih, + bias[b] for row t*B + b when bias != NULL */
void loom_seq_inproj(float *a, const float *x, loom_seq_params p, size_t N, size_t B, size_t In,
                     size_t G);
/* the input-side gradients from dA (T*B, G): dx, w_ih, b_ih, bias */
void loom_seq_inproj_backward(float *dx, loom_seq_grads g, const float *dA, const float *x,
                              loom_seq_params p, size_t N, size_t B, size_t In, size_t G);
/* c (M, N) = a (M, K) @ w (K, N) + beta * c, fast for few rows M (a step) */
void loom_gemm_thin(float *c, const float *a, const float *w, size_t M, size_t N, size_t K,
                    float beta);
/* R (B, G) = h @ w_hh + b_hh (h NULL: zeros): the one GEMM of a step */
void loom_seq_hh_forward(float *R, const float *h, loom_seq_params p, size_t B, size_t H,
                         size_t G);
/* dh (B, H) += dR (B, G) @ w_hh^T */
void loom_seq_hh_dh(float *dh, const float *dR, const float *w_hh, size_t B, size_t H, size_t G);
/* w_hh += [h0; y_0 .. y_{T-2}]^T @ dR and b_hh += sum dR, dR (T, B, G) */
void loom_seq_hh_backward(loom_seq_grads g, const float *dR, const float *h0, const float *y,
                          loom_seq_dims d, size_t G);

#endif
