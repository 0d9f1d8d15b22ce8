/* Sequence models (LOOM_CAP_PREDICT: convlstm): loom eval's video metrics
 * and loom predict. docs/convlstm.md describes both. */
#include "cli.h"

#include "eval/score.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the sequences to evaluate: a file or folder given with --data whole; the
 * generated set's test split, or the run's validation split */
static void load_seqs(loom_images *out, const char *data, bool given, const char *split,
                      const loom_train_opts *o, const loom_config *cfg) {
    loom_error err;
    loom_status st;
    const bool generated = strcmp(data, "moving-fashion-mnist") == 0;
    if (!generated || strcmp(split, "test") == 0 || given) {
        st = loom_sequences_load(out, data, generated ? split : "test", loom_frames(cfg), &err);
        if (st) cli_die_err(st, &err);
    } else { /* valid: the run's own split of the generated training set */
        loom_images all;
        if ((st = loom_sequences_load(&all, data, "train", loom_frames(cfg), &err))) cli_die_err(st, &err);
        size_t *tr, *va, ntr, nva;
        if ((st = loom_train_split(&tr, &ntr, &va, &nva, &all, o, &err))) cli_die_err(st, &err);
        if (!nva) cli_die(2, "%s: the run has no validation split", data);
        if ((st = loom_images_gather(out, &all, va, nva, &err))) cli_die_err(st, &err);
        free(tr), free(va);
        loom_images_free(&all);
    }
    if (out->h != cfg->height || out->w != cfg->width)
        cli_die(2, "%s: frames are %zux%zu but the model was trained on %zux%zu", data, out->h, out->w,
                cfg->height, cfg->width);
    if ((out->c ? out->c : 1) != loom_channels(cfg)) cli_die(2, "%s: frames are not gray", data);
}

typedef struct {
    double *mse, *mae, *ssim; /* (M) sums over sequences, per predicted frame */
    double *ssim8;            /* (M) the same for SSIM of the 8-bit frames, 7 x 7 window */
    double ce;                /* summed cross-entropy (nats) */
} metrics;

/* the four (M) sums of a predictor, at acc */
static metrics metrics_at(double *acc, size_t M) { return (metrics){acc, acc + M, acc + 2 * M, acc + 3 * M, 0}; }

/* p (M, H, W) predicted intensities against the truth x (M, H, W) in [0, 1];
 * q8 (H, W) scratch for a frame as loom predict writes it (8 bits, rounded) */
static void score(metrics *r, const float *p, const float *x, float *q8, size_t M, size_t HW, size_t h, size_t w) {
    for (size_t t = 0; t < M; t++) {
        const float *pt = p + t * HW, *xt = x + t * HW;
        for (size_t i = 0; i < HW; i++) q8[i] = (float)lrintf(255.0f * fminf(fmaxf(pt[i], 0.0f), 1.0f)) / 255.0f;
        double se = 0, ae = 0, ce = 0;
        for (size_t i = 0; i < HW; i++) {
            const double d = (double)pt[i] - xt[i];
            se += d * d, ae += fabs(d);
            const double pc = fmin(fmax(pt[i], 1e-7), 1 - 1e-7);
            ce -= xt[i] * log(pc) + (1 - xt[i]) * log(1 - pc);
        }
        r->mse[t] += se, r->mae[t] += ae, r->ce += ce;
        r->ssim[t] += loom_ssim(pt, xt, h, w, LOOM_SSIM_GAUSS11);
        r->ssim8[t] += loom_ssim(q8, xt, h, w, LOOM_SSIM_UNIFORM7);
    }
}

static double mean(const double *v, size_t M, size_t n) {
    double s = 0;
    for (size_t t = 0; t < M; t++) s += v[t];
    return s / (double)(M * n);
}

static void json_curve(const char *key, const double *v, size_t M, size_t n) {
    printf(", \"%s\": [", key);
    for (size_t t = 0; t < M; t++) printf("%s%.6g", t ? ", " : "", v[t] / (double)n);
    printf("]");
}

int cli_eval_video(loom_model *m, const char *ckpt, const char *data, bool given, const char *split, size_t limit,
                   size_t batch, bool json, const loom_train_opts *o, long step) {
    const loom_config *c = &m->cfg;
    loom_images set;
    load_seqs(&set, data, given, split, o, c);
    const size_t n = limit && limit < set.n ? limit : set.n, K = c->frames_in, M = c->frames_out;
    const size_t HW = c->height * c->width, EX = loom_example_size(c), B = batch < n ? batch : n;
    uint8_t *buf = malloc(B * EX);
    float *probs = malloc(B * M * HW * sizeof *probs), *truth = malloc(M * HW * sizeof *truth);
    float *last = malloc(M * HW * sizeof *last), *q = malloc(HW * sizeof *q);
    float *black = calloc(M * HW, sizeof *black), *med = malloc(B * M * HW * sizeof *med);
    double *acc = calloc(16 * M, sizeof *acc), *nll = malloc(B * sizeof *nll), nll_sum = 0.0;
    if (!buf || !probs || !truth || !last || !q || !black || !med || !acc || !nll) cli_die(1, "out of memory");
    /* the softmax output has an exact NLL of the 8-bit frames; the Bernoulli's
     * cross-entropy on intensities is not one. It also has a median frame */
    const bool exact = c->softmax256 != 0;
    /* the model (mean frames), the baseline, black frames, the model's median frames */
    metrics mo = metrics_at(acc, M), mb = metrics_at(acc + 4 * M, M);
    metrics mz = metrics_at(acc + 8 * M, M), mm = metrics_at(acc + 12 * M, M);
    loom_error err;
    const double t0 = cli_now();
    for (size_t k0 = 0; k0 < n; k0 += B) {
        const size_t nb = LOOM_MIN(B, n - k0);
        for (size_t k = 0; k < nb; k++) loom_images_example(&set, k0 + k, buf + k * EX);
        loom_status st = loom_model_predict(m, probs, buf, nb, nb, LOOM_POINT_MEAN, &err);
        if (st) cli_die_err(st, &err);
        if (exact) {
            if ((st = loom_model_nll(m, nll, buf, NULL, nb, nb, &err))) cli_die_err(st, &err);
            for (size_t k = 0; k < nb; k++) nll_sum += nll[k];
            if ((st = loom_model_predict(m, med, buf, nb, nb, LOOM_POINT_MEDIAN, &err))) cli_die_err(st, &err);
        }
        for (size_t k = 0; k < nb; k++) {
            const uint8_t *s = buf + k * EX;
            for (size_t i = 0; i < M * HW; i++) truth[i] = s[K * HW + i] * (1.0f / 255.0f);
            for (size_t t = 0; t < M; t++) /* the baseline: the last given frame, repeated */
                for (size_t i = 0; i < HW; i++) last[t * HW + i] = s[(K - 1) * HW + i] * (1.0f / 255.0f);
            score(&mo, probs + k * M * HW, truth, q, M, HW, c->height, c->width);
            score(&mb, last, truth, q, M, HW, c->height, c->width);
            score(&mz, black, truth, q, M, HW, c->height, c->width);
            if (exact) score(&mm, med + k * M * HW, truth, q, M, HW, c->height, c->width);
        }
    }
    const double secs = cli_now() - t0;
    const char *what = given ? data : split;
    if (json) {
        printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": \"%s\", \"kind\": \"mse\", \"data\": \"%s\", "
               "\"split\": \"%s\", \"sequences\": %zu, \"frames_in\": %zu, \"frames_out\": %zu, "
               "\"mse_per_frame\": %.6g, \"mae_per_frame\": %.6g, \"ssim\": %.6g, \"ssim_8bit\": %.6g, "
               "\"cross_entropy_per_sequence\": %.6g, \"baseline\": {\"name\": \"repeat-last-frame\", "
               "\"mse_per_frame\": %.6g, \"mae_per_frame\": %.6g, \"ssim\": %.6g, \"ssim_8bit\": %.6g, "
               "\"cross_entropy_per_sequence\": %.6g}",
               c->model, step, ckpt, data, given ? "all" : split, n, K, M, mean(mo.mse, M, n), mean(mo.mae, M, n),
               mean(mo.ssim, M, n), mean(mo.ssim8, M, n), mo.ce / (double)n, mean(mb.mse, M, n), mean(mb.mae, M, n),
               mean(mb.ssim, M, n), mean(mb.ssim8, M, n), mb.ce / (double)n);
        printf(", \"black\": {\"mse_per_frame\": %.6g, \"mae_per_frame\": %.6g, \"ssim\": %.6g, \"ssim_8bit\": %.6g}",
               mean(mz.mse, M, n), mean(mz.mae, M, n), mean(mz.ssim, M, n), mean(mz.ssim8, M, n));
        if (exact)
            printf(", \"median\": {\"mse_per_frame\": %.6g, \"mae_per_frame\": %.6g, \"ssim\": %.6g, "
                   "\"ssim_8bit\": %.6g}",
                   mean(mm.mse, M, n), mean(mm.mae, M, n), mean(mm.ssim, M, n), mean(mm.ssim8, M, n));
        printf(", \"output\": \"%s\", \"loss\": \"%s\"", exact ? "softmax256" : c->frame_loss ? "intensity" : "bernoulli",
               exact ? "nll" : loom_frame_loss_name(c->frame_loss));
        if (exact)
            printf(", \"nll_per_sequence\": %.6g, \"bits_per_dim\": %.6f", nll_sum / (double)n,
                   loom_bits_per_dim(c, nll_sum / (double)n));
        json_curve("mse_curve", mo.mse, M, n), json_curve("ssim_curve", mo.ssim, M, n);
        json_curve("baseline_mse_curve", mb.mse, M, n), json_curve("baseline_ssim_curve", mb.ssim, M, n);
        json_curve("ssim_8bit_curve", mo.ssim8, M, n), json_curve("baseline_ssim_8bit_curve", mb.ssim8, M, n);
        printf(", \"seconds\": %.2f}\n", secs);
    } else {
        printf("%s: %zu sequences, %zu given + %zu predicted frames of %zux%zu (%.1f s, %.1f ms per sequence)\n",
               what, n, K, M, c->height, c->width, secs, 1e3 * secs / (double)n);
        printf("                   %12s %12s %8s %10s %14s\n", "MSE/frame", "MAE/frame", "SSIM", "SSIM 8-bit",
               "xent/sequence");
        printf("convlstm           %12.3f %12.3f %8.4f %10.4f %14.1f\n", mean(mo.mse, M, n), mean(mo.mae, M, n),
               mean(mo.ssim, M, n), mean(mo.ssim8, M, n), mo.ce / (double)n);
        if (exact)
            printf("  median frames    %12.3f %12.3f %8.4f %10.4f\n", mean(mm.mse, M, n), mean(mm.mae, M, n),
                   mean(mm.ssim, M, n), mean(mm.ssim8, M, n));
        printf("repeat last frame  %12.3f %12.3f %8.4f %10.4f %14.1f\n", mean(mb.mse, M, n), mean(mb.mae, M, n),
               mean(mb.ssim, M, n), mean(mb.ssim8, M, n), mb.ce / (double)n);
        printf("black frames       %12.3f %12.3f %8.4f %10.4f\n", mean(mz.mse, M, n), mean(mz.mae, M, n),
               mean(mz.ssim, M, n), mean(mz.ssim8, M, n));
        printf("per frame:  t   MSE model  MSE baseline  SSIM model  SSIM baseline  SSIM 8-bit model  baseline\n");
        for (size_t t = 0; t < M; t++)
            printf("          %3zu %11.3f %13.3f %11.4f %14.4f %17.4f %9.4f\n", K + t + 1, mo.mse[t] / (double)n,
                   mb.mse[t] / (double)n, mo.ssim[t] / (double)n, mb.ssim[t] / (double)n, mo.ssim8[t] / (double)n,
                   mb.ssim8[t] / (double)n);
        if (exact)
            printf("convlstm (softmax256): NLL of the 8-bit predicted frames %.1f nats/sequence, %.4f bits/dim\n",
                   nll_sum / (double)n, loom_bits_per_dim(c, nll_sum / (double)n));
        printf("(MSE, MAE: summed over the %zux%zu pixels in [0, 1], mean over frames and sequences; the model's "
               "frames are its %s%s; cross-entropy: Bernoulli, nats, of the predicted intensities clamped to "
               "[1e-7, 1 - 1e-7]; SSIM: 11x11 Gaussian window on the model's frames; SSIM 8-bit: 7x7 uniform "
               "window on the frames rounded to 8 bits, as loom predict writes them)\n", c->height, c->width,
               exact ? "softmax's mean values" : c->frame_loss ? "intensities (clamped to [0, 1])" : "Bernoulli means",
               exact ? " (median frames: its medians)" : "");
    }
    free(buf), free(probs), free(truth), free(last), free(q), free(black), free(med), free(acc), free(nll);
    loom_images_free(&set);
    return 0;
}

/* ---------------------------------------------------------- loom predict */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int cmd_predict(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *split = "test", *point_s = "mean";
    size_t n = 4, frames = 0, threads = (size_t)cli_default_threads(), first = 0;
    bool json = false;
    cli_arg args[] = {
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"point", ARG_STR, &point_s, 0, 0, "each pixel of a frame: mean (default) or median (--output softmax256 runs)",
         false},
        {"data", ARG_STR, &data, 0, 0, "sequences (default: the run's data, test split)", false},
        {"split", ARG_STR, &split, 0, 0, "generated data: test (default) or valid", false},
        {"n", ARG_SIZE, &n, 1, 64, "sequences (default 4)", false},
        {"first", ARG_SIZE, &first, 0, 1e9, "index of the first sequence (default 0)", false},
        {"frames", ARG_SIZE, &frames, 1, 1000, "frames to predict (default: the trained horizon; beyond it the "
                                               "model reads its own predictions)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"out", ARG_STR, &out, 0, 0, "FILE.gif (animated) or FILE.png (a strip per sequence)", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("predict", "RUN_DIR|CHECKPOINT --out FILE.gif|FILE.png [flags]", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "predict needs a run directory or checkpoint (see 'loom predict --help')");
    if (!out) cli_die(2, "predict needs --out FILE.gif or FILE.png");
    const bool gif = ends_with(out, ".gif") || ends_with(out, ".GIF");
    if (!gif && !ends_with(out, ".png") && !ends_with(out, ".PNG"))
        cli_die(2, "--out %s: the name must end in .gif or .png", out);
    if (strcmp(split, "test") != 0 && strcmp(split, "valid") != 0)
        cli_die(2, "--split must be 'test' or 'valid', not '%s'", split);
    if (strcmp(point_s, "mean") != 0 && strcmp(point_s, "median") != 0)
        cli_die(2, "--point must be 'mean' or 'median', not '%s'", point_s);
    const loom_point point = strcmp(point_s, "median") == 0 ? LOOM_POINT_MEDIAN : LOOM_POINT_MEAN;
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    if (!(loom_model_caps(m) & LOOM_CAP_PREDICT))
        cli_die(2, "%s: model %s predicts no frames (loom predict is for sequence models: convlstm)", pos[0],
                m->cfg.model);
    if (point == LOOM_POINT_MEDIAN && !m->cfg.softmax256)
        cli_die(2, "%s: --point median needs a run with --output softmax256 (the Bernoulli output has no median)",
                pos[0]);
    const loom_config *c = &m->cfg;
    loom_images set;
    load_seqs(&set, data ? data : o.data, data != NULL, split, &o, c);
    if (first >= set.n) cli_die(2, "--first %zu: the data has %zu sequences", first, set.n);
    if (n > set.n - first) n = set.n - first;
    const size_t K = c->frames_in, M = c->frames_out, F = frames ? frames : M, H = c->height, W = c->width;
    const size_t HW = H * W, EX = loom_example_size(c), L = K + F; /* frames shown */
    uint8_t *seqs = malloc(n * EX), *gen = calloc(n * L, HW);
    if (!seqs || !gen) cli_die(1, "out of memory");
    for (size_t k = 0; k < n; k++) loom_images_example(&set, first + k, seqs + k * EX);
    for (size_t k = 0; k < n; k++) memcpy(gen + k * L * HW, seqs + k * EX, K * HW);
    uint8_t *pred = malloc(n * F * HW);
    if (!pred) cli_die(1, "out of memory");
    loom_error err;
    const double t0 = cli_now();
    /* M frames at a time from the last K frames, given or predicted */
    loom_status pst = loom_model_predict_frames(m, pred, seqs, n, F, point, &err);
    if (pst) cli_die_err(pst, &err);
    for (size_t k = 0; k < n; k++) memcpy(gen + (k * L + K) * HW, pred + k * F * HW, F * HW);
    free(pred);
    const double ms = 1e3 * (cli_now() - t0) / (double)n;
    /* canvas per shown frame t: for each sequence a column of truth over prediction */
    const size_t gap = 2, cw = n * (W + gap), ch = 2 * H + gap;
    uint8_t *canvas = calloc(L, cw * ch);
    if (!canvas) cli_die(1, "out of memory");
    for (size_t t = 0; t < L; t++)
        for (size_t k = 0; k < n; k++)
            for (size_t y = 0; y < H; y++) {
                uint8_t *top = canvas + t * cw * ch + y * cw + k * (W + gap);
                uint8_t *bot = top + (H + gap) * cw;
                if (t < loom_frames(c)) memcpy(top, seqs + k * EX + (t * H + y) * W, W); /* truth, where known */
                memcpy(bot, gen + (k * L + t) * HW + y * W, W);
            }
    loom_status st;
    if (gif) {
        uint16_t *delay = malloc(L * sizeof *delay);
        for (size_t t = 0; t < L; t++) delay[t] = t + 1 == K ? 60 : t + 1 == L ? 150 : 20;
        st = loom_gif_write(out, canvas, L, 1, ch, cw, delay, &err);
        free(delay);
    } else { /* a PNG: the frames side by side, sequence pairs one under another */
        const size_t sw = L * (W + gap), sh = n * (ch + 2 * gap);
        uint8_t *strip = calloc(sw, sh);
        for (size_t k = 0; k < n; k++)
            for (size_t t = 0; t < L; t++)
                for (size_t y = 0; y < ch; y++)
                    memcpy(strip + (k * (ch + 2 * gap) + y) * sw + t * (W + gap),
                           canvas + t * cw * ch + y * cw + k * (W + gap), W);
        st = loom_png_write_gray(out, strip, sh, sw, &err);
        free(strip);
    }
    if (st) cli_die_err(st, &err);
    fprintf(stderr, "loom: %s: %zu sequences, %zu given + %zu predicted frames (truth above, model below; "
            "%.1f ms per sequence)\n", out, n, K, F, ms);
    if (json) {
        cli_json j;
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "frames");
        cli_json_str(&j, "out", out);
        cli_json_int(&j, "sequences", (long long)n);
        cli_json_int(&j, "given", (long long)K);
        cli_json_int(&j, "predicted", (long long)F);
        cli_json_num(&j, "ms_per_sequence", ms);
        cli_json_end(&j);
    }
    free(seqs), free(gen), free(canvas);
    loom_images_free(&set);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
