/* The grupixel model's entry points beyond the model interface, for tests
 * and tools that need to choose the noise vector z themselves. */
#ifndef LOOM_GRUPIXEL_H
#define LOOM_GRUPIXEL_H

#include "model.h"

/* Forward (and backward when grad != NULL, dloss/dlogit scaled by `scale`)
 * of n images with the given z (n, zdim); z == NULL draws each image's z as
 * training and evaluation do (docs/grupixel.md). nll_img (n) and logits
 * (n, H, W, 256) are optional. ws: the model's training workspace for n. */
void loom_grupixel_run(const loom_model *m, void *ws, float *grad, double *nll_img, float *logits,
                       const uint8_t *imgs, const int32_t *labels, const float *z, size_t n,
                       float scale);
/* z (zdim) ~ N(0, I) from rng: what the sampler does first for each image */
void loom_grupixel_draw_z(float *z, size_t zdim, loom_rng *rng);

#endif
