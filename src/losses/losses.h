/* Output distributions and their losses, shared by every model: a model
 * produces parameters (logits, means), a loss turns them into -log p(target)
 * in nats and, for training, into d(loss)/d(parameters). Nothing here knows
 * which model called it, so a loss computed from outside a model (a
 * discriminator's, a classifier's) uses the same pieces.
 *
 * Conventions: counts are size_t; NLLs are accumulated in double in index
 * order (bit-reproducible); backward functions write (not accumulate) the
 * gradient of `scale` x the summed loss, and may work in place.
 *
 *   distribution        parameters            target            file
 *   256-way softmax     logits (n, 256)        uint8 (n)         nn/softmax256.c
 *   Bernoulli           logits (n)             float in [0, 1]   bernoulli.c
 *   Gaussian, fixed sd  means (n)              float             gaussian.c
 *   K-way class         logits (n, K)          int32 in [0, K)   class_xent.c
 */
#ifndef LOOM_LOSSES_H
#define LOOM_LOSSES_H

#include "common.h"

/* ---- 256-way softmax per value (8-bit pixels, one channel at a time):
 * loom_softmax256_xent and loom_softmax256, declared in nn/nn.h. */

/* ---- Bernoulli with logit l: p(x = 1) = sigmoid(l).
 * -log p(x | l) = softplus(l) - x l, exact for x in {0, 1} and the
 * cross-entropy for x in [0, 1]. Returns acc + the sum over the count values,
 * added one by one in index order (so a caller can sum an image that is laid
 * out in several runs and get the same bits as one run). */
double loom_bernoulli_nll_acc(double acc, const float *logits, const float *x, size_t count);
/* dl (count) = scale (sigmoid(l) - x); dl may be logits */
void loom_bernoulli_backward(float *dl, const float *logits, const float *x, size_t count,
                             float scale);

/* ---- Gaussian with mean mu and a fixed standard deviation sd > 0:
 * -log p(x | mu) = 0.5 ((x - mu) / sd)^2 + log sd + 0.5 log(2 pi); with sd = 1
 * and the constants dropped this is half the squared error (MSE). Returns
 * acc + the sum, in index order. */
double loom_gaussian_nll_acc(double acc, const float *mu, const float *x, size_t count, float sd);
/* dmu (count) = scale (mu - x) / sd^2; dmu may be mu */
void loom_gaussian_backward(float *dmu, const float *mu, const float *x, size_t count, float sd,
                            float scale);

/* ---- K-way class cross-entropy: logits (n, K), labels (n) in [0, K).
 * nll (n) = -log softmax(logits)[label] (nll may be NULL); returns the sum.
 * When dlogits != NULL it gets scale (softmax - onehot) (may be logits).
 * Labels outside [0, K) are the caller's to reject (check before). */
double loom_class_xent(float *dlogits, double *nll, const float *logits, const int32_t *labels,
                       size_t n, size_t K, float scale);

#endif
