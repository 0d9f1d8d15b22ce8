/* gran: what the GAN objective (src/train/gan.c) and the tests use beyond the
 * op table (src/models/gran.c, docs/gran.md). */
#ifndef LOOM_GRAN_H
#define LOOM_GRAN_H

#include "model.h"

/* z (Z) ~ N(0, I): the noise of image `index` of a training batch with noise_seed */
void loom_gran_noise(float *z, size_t Z, uint64_t noise_seed, size_t index);
/* x (n, H, W) in (0, 1): the generator's images from z (n, Z), keeping in ws
 * (a training workspace for n images) what backward_out needs */
void loom_gran_generate_z(const loom_model *m, void *ws, float *x, const float *z, size_t n);

#endif
