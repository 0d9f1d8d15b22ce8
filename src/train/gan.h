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

/* An autoencoder's adversarial term (VAE-GAN style, docs/rae.md): a
 * discriminator (models[1]) learns to tell the step's real images (bytes /
 * 255) from the model's (models[0], a Bernoulli output per pixel with a
 * likelihood: rae, draw) fakes, nf = 1 or 2 kinds of them: its
 * reconstructions' mean images sigmoid(logit), and as many samples of its
 * prior (generate, drawn with the stage's noise_seed; models with a prior:
 * draw, a variational rae), or either alone:
 *   L_D = mean_b softplus(-D(x_b)) + 1/nf sum_k softplus(D(fake_k,b));
 * the model then minimises, per image,
 *   -log p(x) (its own loss: the bound or NLL it trains on alone)
 *   + weight 1/nf sum_k softplus(-D(fake_k,b))
 * through the updated discriminator. Two stages like loom_gan's, in the
 * model's micro-shards (its own size), the same bits on any thread count. losses[0] = the model's
 * own loss (nats per pixel, as a single model's), losses[1] = L_D (nats per
 * image); the adversarial term's mean is kept for loom_adv_take. */
typedef struct loom_adv loom_adv;
/* on: what the discriminator judges, bits of LOOM_ADV_RECON and
 * LOOM_ADV_SAMPLES (LOOM_EINVAL for samples of a model without a prior) */
loom_status loom_adv_create(loom_adv **out, loom_model *m, loom_model *disc, size_t batch, double weight,
                            unsigned on, loom_error *err);
void loom_adv_free(loom_adv *a);
loom_status loom_adv_stage(void *user, size_t stage, loom_model *const *models, size_t n, const uint8_t *imgs,
                           size_t batch, uint64_t noise_seed, long step, double *losses, unsigned *update,
                           loom_error *err);
/* the mean over the steps since the last call of each step's mean
 * adversarial term 1/nf sum_k softplus(-D(fake_k)) (nats per image), NaN
 * when none */
double loom_adv_take(loom_adv *a);

/* logits (n) = disc's logit of each image (n, C, H, W, bytes), over its
 * threads in micro-shards; for judging samples and test images (battle) */
loom_status loom_disc_logits(loom_model *disc, float *logits, const uint8_t *imgs, size_t n,
                             loom_error *err);

/* log(1 + e^x) and its derivative, without overflow */
double loom_softplus(double x);

#endif

/* The generative adversarial metric of Im et al. 2016 ("battle"): models A
 * = (G_A, D_A) and B = (G_B, D_B), each discriminator judging the test
 * images and the other's samples. A discriminator's error on test images is
 * the fraction it calls generated (logit < 0), on samples the fraction it
 * calls real (logit > 0). Convention (the paper's equations):
 *   r_test   = err(D_A, test)   / err(D_B, test)
 *   r_sample = err(D_A, G_B(z)) / err(D_B, G_A(z))
 * r_sample < 1: D_A is fooled less by B's samples than D_B by A's, so A's
 * generator is the better forger: A wins when also |r_test - 1| <= tol (the
 * discriminators are equally good on real data), B when r_sample > 1; equal
 * errors are a tie. 0 / 0 is 1 and a / 0 infinity. Both generators draw
 * from the same z, so battle(B, A) gives 1 / r_test and 1 / r_sample. */
typedef enum { LOOM_BATTLE_A = 0, LOOM_BATTLE_B, LOOM_BATTLE_TIE, LOOM_BATTLE_UNDECIDED } loom_battle_winner;
typedef struct loom_battle_result {
    double err_test_a, err_test_b;     /* err(D_A, test), err(D_B, test) */
    double err_sample_a, err_sample_b; /* err(D_A, G_B(z)), err(D_B, G_A(z)) */
    double r_test, r_sample;
    loom_battle_winner winner;
} loom_battle_result;

/* test (n, C, H, W bytes); nsamples samples of each generator at seed */
loom_status loom_battle(loom_battle_result *r, loom_model *ga, loom_model *da, loom_model *gb, loom_model *db,
                        const uint8_t *test, size_t n, size_t nsamples, uint64_t seed, double tol, loom_error *err);
const char *loom_battle_winner_name(loom_battle_winner w); /* "A", "B", "tie", "undecided" */
