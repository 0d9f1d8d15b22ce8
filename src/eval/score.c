/* Sample-quality scores and the classifier two-sample test: score.h. */
#include "score.h"

#include "../losses/losses.h"
#include "../models/model.h"
#include "../optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ FID */

/* Eigenvalues of the symmetric a (D, D) into ev (D) and its eigenvectors as
 * the columns of v (D, D), by cyclic Jacobi rotations; a is destroyed. */
static void jacobi_eigen(double *ev, double *v, double *a, size_t D) {
    for (size_t i = 0; i < D * D; i++) v[i] = 0.0;
    for (size_t i = 0; i < D; i++) v[i * D + i] = 1.0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (size_t p = 0; p < D; p++)
            for (size_t q = 0; q < D; q++) {
                const double e = a[p * D + q] * a[p * D + q];
                if (p == q) diag += e;
                else off += e;
            }
        if (off <= 1e-22 * diag || off == 0.0) break;
        for (size_t p = 0; p < D; p++)
            for (size_t q = p + 1; q < D; q++) {
                const double apq = a[p * D + q];
                if (fabs(apq) < 1e-300) continue;
                /* the rotation that zeroes a[p][q] */
                const double theta = (a[q * D + q] - a[p * D + p]) / (2.0 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                const double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t k = 0; k < D; k++) { /* columns p, q */
                    const double akp = a[k * D + p], akq = a[k * D + q];
                    a[k * D + p] = c * akp - s * akq;
                    a[k * D + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < D; k++) { /* rows p, q */
                    const double apk = a[p * D + k], aqk = a[q * D + k];
                    a[p * D + k] = c * apk - s * aqk;
                    a[q * D + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < D; k++) {
                    const double vkp = v[k * D + p], vkq = v[k * D + q];
                    v[k * D + p] = c * vkp - s * vkq;
                    v[k * D + q] = s * vkp + c * vkq;
                }
            }
    }
    for (size_t i = 0; i < D; i++) ev[i] = a[i * D + i];
}

/* mean mu (D) and covariance S (D, D) of x (n, D), in double */
static void moments(double *mu, double *S, const float *x, size_t n, size_t D) {
    for (size_t k = 0; k < D; k++) mu[k] = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < D; k++) mu[k] += x[i * D + k];
    for (size_t k = 0; k < D; k++) mu[k] /= (double)n;
    for (size_t i = 0; i < D * D; i++) S[i] = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < D; p++) {
            const double dp = x[i * D + p] - mu[p];
            for (size_t q = p; q < D; q++) S[p * D + q] += dp * (x[i * D + q] - mu[q]);
        }
    for (size_t p = 0; p < D; p++)
        for (size_t q = p; q < D; q++) S[q * D + p] = S[p * D + q] /= (double)(n - 1);
}

loom_status loom_fid(double *fid, const float *a, size_t na, const float *b, size_t nb, size_t D,
                     loom_error *err) {
    *fid = NAN;
    if (na < 2 || nb < 2 || D == 0)
        return loom_fail(err, LOOM_EINVAL, "FID needs at least 2 images per set (got %zu and %zu)", na, nb);
    for (size_t i = 0; i < na * D; i++)
        if (!isfinite(a[i])) return loom_fail(err, LOOM_EINVAL, "FID: a feature of the first set is not finite");
    for (size_t i = 0; i < nb * D; i++)
        if (!isfinite(b[i])) return loom_fail(err, LOOM_EINVAL, "FID: a feature of the second set is not finite");
    double *buf = malloc((2 * D + 6 * D * D) * sizeof *buf);
    if (!buf) return loom_fail(err, LOOM_ENOMEM, "FID: out of memory");
    double *mua = buf, *mub = mua + D, *Sa = mub + D, *Sb = Sa + D * D, *V = Sb + D * D;
    double *R = V + D * D, *M = R + D * D, *T = M + D * D, *ev = mua; /* ev reuses mua after use */
    moments(mua, Sa, a, na, D);
    moments(mub, Sb, b, nb, D);
    double d2 = 0.0, tr = 0.0;
    for (size_t k = 0; k < D; k++) d2 += (mua[k] - mub[k]) * (mua[k] - mub[k]);
    for (size_t k = 0; k < D; k++) tr += Sa[k * D + k] + Sb[k * D + k];
    /* tr (Sa Sb)^(1/2) = sum of sqrt of the eigenvalues of R Sb R, R = Sa^(1/2)
     * (symmetric and positive semi-definite, with the eigenvalues of Sa Sb) */
    memcpy(T, Sa, D * D * sizeof *T);
    jacobi_eigen(ev, V, T, D);
    for (size_t p = 0; p < D; p++)
        for (size_t q = 0; q < D; q++) {
            double s = 0.0;
            for (size_t k = 0; k < D; k++) s += V[p * D + k] * sqrt(fmax(ev[k], 0.0)) * V[q * D + k];
            R[p * D + q] = s;
        }
    for (size_t p = 0; p < D; p++) /* T = R Sb */
        for (size_t q = 0; q < D; q++) {
            double s = 0.0;
            for (size_t k = 0; k < D; k++) s += R[p * D + k] * Sb[k * D + q];
            T[p * D + q] = s;
        }
    for (size_t p = 0; p < D; p++) /* M = T R, symmetrised against rounding */
        for (size_t q = 0; q < D; q++) {
            double s = 0.0;
            for (size_t k = 0; k < D; k++) s += T[p * D + k] * R[k * D + q];
            M[p * D + q] = s;
        }
    for (size_t p = 0; p < D; p++)
        for (size_t q = p + 1; q < D; q++) M[p * D + q] = M[q * D + p] = 0.5 * (M[p * D + q] + M[q * D + p]);
    jacobi_eigen(ev, V, M, D);
    double trsqrt = 0.0;
    for (size_t k = 0; k < D; k++) trsqrt += sqrt(fmax(ev[k], 0.0));
    *fid = fmax(d2 + tr - 2.0 * trsqrt, 0.0);
    free(buf);
    return LOOM_OK;
}

/* ------------------------------------------------------------ IS */

double loom_inception_score(const float *logits, size_t n, size_t K) {
    if (n == 0 || K == 0) return NAN;
    double *p = malloc(n * K * sizeof *p), *marg = calloc(K, sizeof *marg);
    if (!p || !marg) {
        free(p), free(marg);
        return NAN;
    }
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * K;
        float mx = z[0];
        for (size_t k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (size_t k = 0; k < K; k++) s += (p[i * K + k] = exp((double)z[k] - mx));
        for (size_t k = 0; k < K; k++) marg[k] += (p[i * K + k] /= s) / (double)n;
    }
    double kl = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < K; k++) {
            const double q = p[i * K + k];
            if (q > 0.0) kl += q * (log(q) - log(marg[k]));
        }
    free(p), free(marg);
    return exp(kl / (double)n);
}

/* ------------------------------------------------------------ AUC */

typedef struct {
    double v;
    size_t i; /* index into the combined list: pos first, then neg */
} scored;

static int cmp_scored(const void *x, const void *y) {
    const scored *a = x, *b = y;
    if (a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* midranks (1-based, ties averaged) of v (n) into r (n) */
static void midranks(double *r, const double *v, size_t n, scored *tmp) {
    for (size_t i = 0; i < n; i++) tmp[i] = (scored){v[i], i};
    qsort(tmp, n, sizeof *tmp, cmp_scored);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && tmp[j].v == tmp[i].v) j++;
        const double mid = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
        for (size_t k = i; k < j; k++) r[tmp[k].i] = mid;
        i = j;
    }
}

void loom_auc(double *auc, double *lo, double *hi, const double *pos, size_t np, const double *neg,
              size_t nn) {
    *auc = NAN, *lo = 0.0, *hi = 1.0;
    if (np == 0 || nn == 0) return;
    const size_t N = np + nn;
    double *all = malloc(N * sizeof *all), *rz = malloc(N * sizeof *rz), *rp = malloc(np * sizeof *rp);
    double *rn = malloc(nn * sizeof *rn);
    scored *tmp = malloc(N * sizeof *tmp);
    if (!all || !rz || !rp || !rn || !tmp) goto done;
    memcpy(all, pos, np * sizeof *all);
    memcpy(all + np, neg, nn * sizeof *all);
    midranks(rz, all, N, tmp);
    midranks(rp, pos, np, tmp);
    midranks(rn, neg, nn, tmp);
    /* DeLong's placements: V10_i = P(neg < pos_i) (ties 1/2) = (rank of
     * pos_i among all - its rank among pos) / nn; V01_j = P(pos > neg_j) */
    double sum = 0.0, s10 = 0.0, s01 = 0.0;
    for (size_t i = 0; i < np; i++) sum += (rz[i] - rp[i]) / (double)nn;
    const double A = sum / (double)np;
    for (size_t i = 0; i < np; i++) {
        const double v = (rz[i] - rp[i]) / (double)nn - A;
        s10 += v * v;
    }
    for (size_t j = 0; j < nn; j++) {
        const double v = 1.0 - (rz[np + j] - rn[j]) / (double)np - A;
        s01 += v * v;
    }
    *auc = A;
    if (np > 1 && nn > 1) {
        const double var = s10 / (double)(np - 1) / (double)np + s01 / (double)(nn - 1) / (double)nn;
        const double sd = sqrt(fmax(var, 0.0));
        *lo = fmax(0.0, A - 1.959964 * sd), *hi = fmin(1.0, A + 1.959964 * sd);
    }
done:
    free(all), free(rz), free(rp), free(rn), free(tmp);
}

/* ------------------------------------------------------------ segmentation */

void loom_seg_scores(double *pixel_acc, double *miou, const uint8_t *pred, const uint8_t *truth,
                     size_t n, size_t K) {
    double inter[256] = {0}, uni[256] = {0}, right = 0.0, s = 0.0;
    size_t present = 0;
    K = LOOM_MIN(K, (size_t)256);
    for (size_t q = 0; q < n; q++) {
        const size_t p = pred[q], t = truth[q];
        if (p == t) right += 1, inter[t] += 1, uni[t] += 1;
        else uni[t] += 1, uni[p] += 1;
    }
    for (size_t k = 0; k < K; k++)
        if (uni[k] > 0) s += inter[k] / uni[k], present++;
    *pixel_acc = n ? right / (double)n : 0.0;
    *miou = present ? s / (double)present : 0.0;
}

/* ------------------------------------------------------------ SSIM */

/* one window's SSIM from its weighted sums (weights summing to 1); bessel
 * turns the weighted moments into sample ones (N / (N - 1)) */
static double ssim_window(double ma, double mb, double aa, double bb, double ab, double bessel) {
    const double C1 = 1e-4, C2 = 9e-4;
    const double va = (aa - ma * ma) * bessel, vb = (bb - mb * mb) * bessel, cv = (ab - ma * mb) * bessel;
    return (2 * ma * mb + C1) * (2 * cv + C2) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
}

double loom_ssim(const float *a, const float *b, size_t h, size_t w, loom_ssim_window win) {
    const int R = win == LOOM_SSIM_UNIFORM7 ? 3 : 5, D = 2 * R + 1;
    double g[11], gs = 0;
    for (int i = -R; i <= R; i++)
        gs += g[i + R] = win == LOOM_SSIM_UNIFORM7 ? 1.0 : exp(-(double)(i * i) / (2 * 1.5 * 1.5));
    for (int i = 0; i < D; i++) g[i] /= gs;
    if (h < (size_t)D || w < (size_t)D) { /* the whole frame, uniformly weighted */
        const double n = (double)(h * w);
        double ma = 0, mb = 0, aa = 0, bb = 0, ab = 0;
        for (size_t i = 0; i < h * w; i++)
            ma += a[i], mb += b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i], ab += (double)a[i] * b[i];
        const double bessel = win == LOOM_SSIM_UNIFORM7 && n > 1 ? n / (n - 1) : 1.0;
        return ssim_window(ma / n, mb / n, aa / n, bb / n, ab / n, bessel);
    }
    const double bessel = win == LOOM_SSIM_UNIFORM7 ? (double)(D * D) / (double)(D * D - 1) : 1.0;
    double sum = 0;
    size_t cnt = 0;
    for (size_t y = (size_t)R; y + (size_t)R < h; y++)
        for (size_t x = (size_t)R; x + (size_t)R < w; x++) {
            double ma = 0, mb = 0, aa = 0, bb = 0, ab = 0;
            for (int dy = -R; dy <= R; dy++)
                for (int dx = -R; dx <= R; dx++) {
                    const double wt = g[dy + R] * g[dx + R];
                    const size_t k = (y + (size_t)dy) * w + x + (size_t)dx;
                    ma += wt * a[k], mb += wt * b[k];
                    aa += wt * a[k] * a[k], bb += wt * b[k] * b[k], ab += wt * a[k] * b[k];
                }
            sum += ssim_window(ma, mb, aa, bb, ab, bessel);
            cnt++;
        }
    return sum / (double)cnt;
}

/* ------------------------------------------------------------ detect */

/* perm (n) = a seeded permutation of 0 .. n-1 (Fisher-Yates) */
static void shuffle(size_t *perm, size_t n, loom_rng *rng) {
    for (size_t k = 0; k < n; k++) perm[k] = k;
    for (size_t k = n; k > 1; k--) {
        const size_t j = loom_rng_below(rng, k), t = perm[k - 1];
        perm[k - 1] = perm[j], perm[j] = t;
    }
}

void loom_detect_opts_default(loom_detect_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 300, o->batch = 32;
    o->layers = 1, o->hidden = 16, o->patch = 4;
    snprintf(o->cell, sizeof o->cell, "lstm");
    o->lr = 2e-3;
    o->seed = 1;
    o->threads = 1;
}

loom_status loom_detect(loom_detect_result *r, const loom_images *a, const loom_images *b,
                        const loom_detect_opts *o, loom_error *err) {
    memset(r, 0, sizeof *r);
    const size_t ca = a->c ? a->c : 1, cb = b->c ? b->c : 1;
    if (a->h != b->h || a->w != b->w)
        return loom_fail(err, LOOM_EINVAL, "the two sets have different image sizes: %zux%zu and %zux%zu",
                         a->h, a->w, b->h, b->w);
    if (ca != cb)
        return loom_fail(err, LOOM_EINVAL, "the two sets have different channel counts: %zu and %zu", ca, cb);
    if ((a->t ? a->t : 1) != 1 || (b->t ? b->t : 1) != 1)
        return loom_fail(err, LOOM_EINVAL, "sets of examples with several frames cannot be compared");
    const size_t n = LOOM_MIN(a->n, b->n);
    if (n < 4) return loom_fail(err, LOOM_EINVAL, "a set has %zu images; the test needs at least 4 in each", n);
    const size_t ntr = n / 2, nte = n - ntr, HW = ca * a->h * a->w;
    r->n = n, r->n_train = ntr, r->n_test = nte;
    loom_config cfg = {.model = "renet", .height = a->h, .width = a->w, .channels = ca, .layers = o->layers,
                       .hidden = o->hidden, .nclasses = 2, .patch = o->patch};
    snprintf(cfg.cell, sizeof cfg.cell, "%s", o->cell[0] ? o->cell : "lstm");
    loom_model *m;
    loom_status st = loom_model_create(&m, &cfg, o->threads, err);
    if (st) return st;
    loom_rng rng;
    loom_rng_seed(&rng, o->seed);
    loom_model_init(m, &rng);
    /* which images of each set train and which test: a seeded shuffle (a set
     * in file order may be sorted by class, e.g. a folder of class
     * sub-directories) */
    size_t *pa = malloc(a->n * sizeof *pa), *pb = malloc(b->n * sizeof *pb);
    if (!pa || !pb) {
        free(pa), free(pb), loom_model_free(m);
        return loom_fail(err, LOOM_ENOMEM, "detect: out of memory");
    }
    shuffle(pa, a->n, &rng);
    shuffle(pb, b->n, &rng);
    const size_t B = LOOM_MAX((size_t)1, LOOM_MIN(o->batch, 2 * ntr));
    uint8_t *batch = malloc(B * HW), *test = malloc(2 * nte * HW);
    int32_t *lab = malloc(B * sizeof *lab);
    size_t *perm = malloc(2 * ntr * sizeof *perm);
    float *am = calloc(m->nfloats, sizeof *am), *av = calloc(m->nfloats, sizeof *av);
    float *logits = malloc(2 * nte * 2 * sizeof *logits);
    double *sa = malloc(nte * sizeof *sa), *sb = malloc(nte * sizeof *sb);
    if (!batch || !test || !lab || !perm || !am || !av || !logits || !sa || !sb) {
        st = loom_fail(err, LOOM_ENOMEM, "detect: out of memory");
        goto done;
    }
    loom_adam adam = {.lr = (float)o->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .m = am, .v = av,
                      .n = m->nfloats};
    /* training examples k < ntr: image k of a (label 0); else image k - ntr of b (label 1) */
    size_t pos = 2 * ntr;
    for (size_t s = 0; s < o->steps; s++) {
        for (size_t q = 0; q < B; q++) {
            if (pos == 2 * ntr) { /* a new epoch: a seeded shuffle */
                shuffle(perm, 2 * ntr, &rng);
                pos = 0;
            }
            const size_t k = perm[pos++];
            memcpy(batch + q * HW, k < ntr ? a->pixels + pa[k] * HW : b->pixels + pb[k - ntr] * HW, HW);
            lab[q] = k >= ntr;
        }
        double loss;
        if ((st = loom_model_grad(m, &loss, batch, lab, B, err))) goto done;
        loom_clip_grad_norm(m->g, m->nfloats, 1.0);
        loom_adam_step(&adam, m->w, m->g, adam.lr);
    }
    for (size_t k = 0; k < nte; k++) {
        memcpy(test + k * HW, a->pixels + pa[ntr + k] * HW, HW);
        memcpy(test + (nte + k) * HW, b->pixels + pb[ntr + k] * HW, HW);
    }
    if ((st = loom_model_classify(m, logits, NULL, test, 2 * nte, 64, err))) goto done;
    size_t right = 0;
    for (size_t k = 0; k < nte; k++) {
        /* the detector's log-odds of "from b" */
        sa[k] = (double)logits[2 * k + 1] - logits[2 * k];
        sb[k] = (double)logits[2 * (nte + k) + 1] - logits[2 * (nte + k)];
        right += (sa[k] <= 0.0) + (sb[k] > 0.0);
    }
    r->accuracy = (double)right / (double)(2 * nte);
    loom_auc(&r->auc, &r->auc_low, &r->auc_high, sb, nte, sa, nte);
done:
    free(batch), free(test), free(lab), free(perm), free(am), free(av), free(logits), free(sa), free(sb);
    free(pa), free(pb);
    loom_model_free(m);
    return st;
}
