/* Sample-quality scores and the classifier two-sample test (docs/scores.md).
 *
 *   FID        Frechet distance between Gaussians fitted to two sets of
 *              features (the penultimate layer of a classifier):
 *              |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))
 *   IS         the classifier-based Inception score exp(E_x KL(p(y|x) || p(y)))
 *   AUC        ROC area of a detector's scores, with DeLong's variance
 *              (DeLong, DeLong & Clarke-Pearson 1988) for a 95% interval
 *   detect     a classifier two-sample test (Lopez-Paz & Oquab 2017): a
 *              renet trained to tell set A from set B on half of each,
 *              scored on the other half
 *
 * Pure functions of their inputs and seeds: no printing, no global state. */
#ifndef LOOM_SCORE_H
#define LOOM_SCORE_H

#include "common.h"

/* *fid of features a (na, D) and b (nb, D), na, nb >= 2; covariances with
 * 1 / (n - 1); the matrix square root by Jacobi eigendecompositions in
 * double. LOOM_EINVAL for fewer than 2 rows or a non-finite feature. */
loom_status loom_fid(double *fid, const float *a, size_t na, const float *b, size_t nb, size_t D,
                     loom_error *err);

/* exp(mean_x KL(p(y|x) || p(y))) with p(y|x) = softmax of logits (n, K) and
 * p(y) their mean over the n rows: 1 (every image alike, or no confident
 * class) to K (confident and every class equally often). */
double loom_inception_score(const float *logits, size_t n, size_t K);

/* ROC AUC = P(pos > neg) + P(pos = neg) / 2 over all pairs of pos (np) and
 * neg (nn), and DeLong's 95% interval [lo, hi] (auc -+ 1.96 sd, clipped to
 * [0, 1]); np, nn >= 1 (with 1 of either the interval is [0, 1]). */
void loom_auc(double *auc, double *lo, double *hi, const double *pos, size_t np, const double *neg,
              size_t nn);

/* Segmentation scores of label maps pred and truth (n values in 0 .. K-1,
 * K <= 256): the pixel accuracy, and the mean IoU over the classes present
 * in either, IoU_k = |pred = k and truth = k| / |pred = k or truth = k|
 * (0 when n == 0). */
void loom_seg_scores(double *pixel_acc, double *miou, const uint8_t *pred, const uint8_t *truth,
                     size_t n, size_t K);

/* SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) of two gray frames a, b
 * (h, w) with values in [0, 1]: the mean over the window positions that fit
 * in the frame of
 *     (2 mu_a mu_b + C1) (2 cov + C2) / ((mu_a^2 + mu_b^2 + C1) (var_a + var_b + C2)),
 * C1 = 0.01^2, C2 = 0.03^2 (a data range of 1). LOOM_SSIM_GAUSS11 is the
 * paper's 11 x 11 Gaussian window of sigma 1.5; LOOM_SSIM_UNIFORM7 is
 * scikit-image's structural_similarity default (7 x 7 uniform window,
 * variances and covariance with 1 / (N - 1)), the one video-prediction papers
 * since PredRNN report. A frame smaller than the window is one window. */
typedef enum { LOOM_SSIM_GAUSS11, LOOM_SSIM_UNIFORM7 } loom_ssim_window;

double loom_ssim(const float *a, const float *b, size_t h, size_t w, loom_ssim_window win);

typedef struct loom_detect_opts {
    size_t steps, batch;          /* Adam steps on the training halves (300, 32) */
    size_t layers, hidden, patch; /* the detector renet (1, 16, 4) */
    char cell[8];                 /* "lstm" (default: "") */
    double lr;                    /* 2e-3 */
    uint64_t seed;                /* init and batch order (1) */
    int threads;                  /* 1 */
} loom_detect_opts;

void loom_detect_opts_default(loom_detect_opts *o);

typedef struct loom_detect_result {
    double auc, auc_low, auc_high; /* held-out ROC AUC of "this image is from B", DeLong 95% */
    double accuracy;               /* held-out accuracy of the detector's decision */
    size_t n;                      /* images per set used (the smaller set's size) */
    size_t n_train, n_test;        /* per set */
} loom_detect_result;

/* Classifier two-sample test of a against b (same h, w and channels, at
 * least 4 images each; else LOOM_EINVAL naming what differs): of each set
 * a seeded shuffle, its first n / 2 images (n = min(a->n, b->n)) to train a
 * renet with labels A = 0, B = 1, the next n - n / 2 to score. */
loom_status loom_detect(loom_detect_result *r, const loom_images *a, const loom_images *b,
                        const loom_detect_opts *o, loom_error *err);

#endif
