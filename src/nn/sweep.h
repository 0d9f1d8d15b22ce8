/* Bidirectional sweeps (ReNet, Visin et al. 2015): two recurrent layers of the
 * same cell read a batch of sequences, one forwards and one backwards, and
 * their states are concatenated, so every output sees the whole sequence.
 * On a grid of patches a sweep along the rows then one along the columns
 * gives every position a view of the whole image (src/models/renet.c).
 *
 * Conventions of seq.h: time-major x (T, B, In); y (T, B, 2H) with y_t =
 * [h^f_t | h^b_t], h^f the forward layer's state after x_0 .. x_t and h^b the
 * backward layer's after x_{T-1} .. x_t; zero initial states. Backward
 * ACCUMULATES into dx (NULL: skipped) and every gradient it is given.
 *
 * Grids: a grid of A x Bd positions of n images with F features is stored
 * (A, n, Bd, F), so a sweep along the second axis (time = the A index, the
 * sequences the (image, Bd) pairs) reads it as it is; loom_grid_transpose
 * turns it into (Bd, n, A, F) for a sweep along the other axis. */
#ifndef LOOM_SWEEP_H
#define LOOM_SWEEP_H

#include "seq.h"

typedef struct loom_bisweep_params {
    loom_seq_params f, b; /* forward and backward layers, each (In -> H) */
} loom_bisweep_params;

typedef struct loom_bisweep_grads {
    loom_seq_grads f, b;
} loom_bisweep_grads;

/* d.H is the state size of one direction; floats of cache and of backward scratch */
size_t loom_bisweep_cache_floats(loom_cell c, loom_seq_dims d);
size_t loom_bisweep_scratch_floats(loom_cell c, loom_seq_dims d);

void loom_bisweep_forward(float *y, float *cache, const float *x, loom_bisweep_params p,
                          loom_cell c, loom_seq_dims d);
void loom_bisweep_backward(float *dx, loom_bisweep_grads g, float *scratch, const float *dy,
                           const float *x, loom_bisweep_params p, const float *cache, loom_cell c,
                           loom_seq_dims d);

/* dst (Bd, n, A, F) = src (A, n, Bd, F); with accumulate, dst += instead */
void loom_grid_transpose(float *dst, const float *src, size_t A, size_t n, size_t Bd, size_t F,
                         int accumulate);

#endif
