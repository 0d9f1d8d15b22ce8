/* DRAW's selective attention (Gregor et al. 2015, section 3.2): an N x N grid
 * of Gaussian filters over an H x W image, placed by five numbers per image.
 *
 * Raw parameters p (n, 5), usually a linear map of the decoder state:
 *   gx = (W + 1) / 2 * (p0 + 1)            grid centre, pixel columns 1..W
 *   gy = (H + 1) / 2 * (p1 + 1)            grid centre, pixel rows    1..H
 *   s2 = exp(p2)                           filter variance sigma^2
 *   d  = (max(H, W) - 1) / (N - 1) * exp(p3)   stride (N = 1: d = exp(p3))
 *   gm = exp(p4)                           intensity gamma
 * Filter centres, i = 0..N-1:  mx_i = gx + (i + 0.5 - N/2) d,  my_i likewise.
 * Filterbanks, a = 1..W (columns), b = 1..H (rows):
 *   Fx[i, a] = exp(-(a - mx_i)^2 / (2 s2)) / Zx_i,  Zx_i = max(sum_a exp(...), 1e-8)
 *   Fy[i, b] = exp(-(b - my_i)^2 / (2 s2)) / Zy_i
 * read:  r (N, N) = gm * Fy x Fx^T          for an image x (H, W)
 * write: o (H, W) = (1 / gm) * Fy^T w Fx    for a patch  w (N, N)
 *
 * Backward functions accumulate (+=) into every gradient they are given
 * (NULL skips it), like the rest of src/nn. All buffers are per image and
 * contiguous: Fx (n, N, W), Fy (n, N, H), gm (n). */
#ifndef LOOM_ATTENTION_H
#define LOOM_ATTENTION_H

#include <stddef.h>

typedef struct loom_attn_dims {
    size_t n, H, W, N; /* images, image height and width, grid size */
} loom_attn_dims;

/* The five derived numbers of one image, for inspection and tests. */
typedef struct loom_attn_geom {
    float gx, gy, s2, d, gm;
} loom_attn_geom;
loom_attn_geom loom_attn_geometry(const float *p /* (5) */, size_t H, size_t W, size_t N);

void loom_filterbank_forward(float *Fx, float *Fy, float *gm, const float *p, loom_attn_dims d);
/* dp (n, 5) += from dFx, dFy, dgm (any may be NULL) */
void loom_filterbank_backward(float *dp, const float *dFx, const float *dFy, const float *dgm,
                              const float *p, const float *Fx, const float *Fy, loom_attn_dims d);

/* tmp: (n, H, N) scratch, kept between forward and backward */
void loom_attn_read_forward(float *r, float *tmp, const float *x, const float *Fx, const float *Fy,
                            const float *gm, loom_attn_dims d);
/* dx (n, H, W), dFx, dFy, dgm accumulate; dtmp: (H, N) scratch */
void loom_attn_read_backward(float *dx, float *dFx, float *dFy, float *dgm, float *dtmp,
                             const float *dr, const float *r, const float *tmp, const float *x,
                             const float *Fx, const float *Fy, const float *gm, loom_attn_dims d);

/* tmp: (n, N, W) scratch, kept between forward and backward */
void loom_attn_write_forward(float *o, float *tmp, const float *w, const float *Fx,
                             const float *Fy, const float *gm, loom_attn_dims d);
/* dw (n, N, N), dFx, dFy, dgm accumulate; dtmp: (N, W) scratch */
void loom_attn_write_backward(float *dw, float *dFx, float *dFy, float *dgm, float *dtmp,
                              const float *dout, const float *o, const float *tmp, const float *w,
                              const float *Fx, const float *Fy, const float *gm, loom_attn_dims d);

#endif
