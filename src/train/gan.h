/* Adversarial training (docs/gran.md): a generator (an op table with
 * generate + backward_out) against a discriminator (forward_x +
 * backward_out, one logit per image), with the non-saturating GAN loss:
 *   L_D = mean_b softplus(-D(x_b)) + softplus(D(G(z_b)))
 *   L_G = mean_b softplus(-D(G(z_b)))
 * A trainer step is two stages (loom_trainer_set_stages): the
 * discriminator's update on the step's real batch and as many generated
 * images, then, every d_steps-th step, the generator's update against the
 * updated discriminator, on the same generated images (the generator has not
 * changed since it drew them). Micro-shards of 8 images run over the
 * threads, each with its own workspaces and gradient buffers, summed in
 * micro-shard order: the same bits on any thread count. */
#ifndef LOOM_GAN_H
#define LOOM_GAN_H

#include "trainer.h"

typedef struct loom_gan loom_gan;

/* for models[0] (the generator) and models[1] (the discriminator) of a run
 * with batches of `batch` images; d_steps >= 1 */
loom_status loom_gan_create(loom_gan **out, loom_model *gen, loom_model *disc, size_t batch, long d_steps,
                            loom_error *err);
void loom_gan_free(loom_gan *g);
/* for tests against a reference: the generator reads z (batch, zdim) (borrowed)
 * instead of drawing its noise; NULL: drawn again */
void loom_gan_set_noise(loom_gan *g, const float *z);
/* the loom_train_stage_fn of the run (user: the loom_gan); losses[0] = L_G,
 * losses[1] = L_D (nats per image) */
loom_status loom_gan_stage(void *user, size_t stage, loom_model *const *models, size_t n,
                           const uint8_t *imgs, size_t batch, uint64_t noise_seed, long step,
                           double *losses, unsigned *update, loom_error *err);

/* logits (n) = disc's logit of each image (n, C, H, W, bytes), over its
 * threads in micro-shards; for judging samples and test images (battle) */
loom_status loom_disc_logits(loom_model *disc, float *logits, const uint8_t *imgs, size_t n,
                             loom_error *err);

/* log(1 + e^x) and its derivative, without overflow */
double loom_softplus(double x);

#endif
