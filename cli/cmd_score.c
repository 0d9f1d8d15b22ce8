/* loom score RUN|SET: sample quality against the test set (docs/scores.md). */
#include "cli.h"

#include "eval/score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* a number, or null when not finite (not available) */
static void jnum(char *buf, size_t cap, double v) {
    if (isfinite(v)) snprintf(buf, cap, "%.6g", v);
    else snprintf(buf, cap, "null");
}

int cmd_score(int argc, char **argv) {
    size_t n = 1000, threads = 1, steps = 0;
    uint64_t seed = 1;
    const char *classifier = NULL, *ref_spec = NULL;
    bool json = false, no_detect = false;
    cli_arg args[] = {
        {"n", ARG_SIZE, &n, 4, 1e7, "samples drawn and test images compared (default 1000)", false},
        {"classifier", ARG_STR, &classifier, 0, 0, "renet checkpoint whose features FID and IS use "
         "(default: the shipped Fashion-MNIST one, models/fmnist_renet.safetensors)", false},
        {"reference", ARG_STR, &ref_spec, 0, 0, "the real images compared with, and the model's NLL's (default: --n of the test split of the run's data)", false},
        {"detect-steps", ARG_SIZE, &steps, 1, 1e7, "detector training steps (default 300)", false},
        {"no-detect", ARG_FLAG, &no_detect, 0, 0, "skip the detector (detector_auc null)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed of the samples and the detector (default 1)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default 1)", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("score", "RUN_DIR|SET [--n N] [--classifier CKPT] [--json]   (SET: DATA:train|test, for "
              "reference values of real images)", argc, argv, args, sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "score needs a run directory (or an image set) (see 'loom score --help')");

    /* the run (for its data, NLL and samples) or a set of real images */
    struct stat sb;
    char ckpt[4096] = "";
    loom_model *m = NULL;
    loom_train_opts o;
    loom_train_state ts = {0};
    loom_train_opts_default(&o);
    const char *cp = cli_checkpoint_path(pos[0]);
    const bool run = stat(cp, &sb) == 0 && S_ISREG(sb.st_mode) && strstr(cp, ".safetensors");
    char data[1024];
    const char *split;
    if (run) {
        snprintf(ckpt, sizeof ckpt, "%s", cp);
        m = cli_load_model(pos[0], (int)threads, &o, &ts);
        snprintf(data, sizeof data, "%s", o.data);
    } else {
        cli_split_spec(pos[0], data, sizeof data, &split);
    }
    loom_images x, ref;
    char wx[512], wr[512], refbuf[1100];
    cli_image_set(&x, pos[0], n, seed, (int)threads, wx, sizeof wx);
    if (!ref_spec) {
        snprintf(refbuf, sizeof refbuf, "%s:test", data);
        ref_spec = refbuf;
    }
    cli_image_set(&ref, ref_spec, n, seed, (int)threads, wr, sizeof wr);
    cli_check_same_shape(&x, pos[0], &ref, ref_spec);
    if (ref.n < 2 || x.n < 2) cli_die(2, "%s: too few images to score (%zu and %zu)", pos[0], x.n, ref.n);

    /* FID and IS need a classifier of this kind of image */
    const bool given = classifier != NULL;
    if (!classifier) classifier = cli_default_classifier();
    double fid = NAN, is = NAN, is_ref = NAN;
    char fid_note[256] = "";
    loom_error err;
    loom_status st;
    if (!classifier) {
        snprintf(fid_note, sizeof fid_note, "no classifier: models/fmnist_renet.safetensors not found "
                 "(set LOOM_CLASSIFIER or give --classifier)");
    } else {
        loom_model *cl = cli_load_model(classifier, (int)threads, NULL, NULL);
        const size_t D = loom_model_feat_dim(cl), K = loom_model_class_floats(cl);
        const bool fits = cl->cfg.height == x.h && cl->cfg.width == x.w && loom_channels(&cl->cfg) == (x.c ? x.c : 1);
        if (!D || (!fits && given)) { /* one line, exit 2, nothing left allocated */
            char msg[1024];
            if (!D) snprintf(msg, sizeof msg, "--classifier %s: model %s is not a classifier", classifier, cl->ops->name);
            else
                snprintf(msg, sizeof msg, "--classifier %s reads %zux%zux%zu images but %s has %zux%zux%zu", classifier,
                         cl->cfg.height, cl->cfg.width, loom_channels(&cl->cfg), pos[0], x.h, x.w, x.c ? x.c : 1);
            loom_model_free(cl), loom_model_free(m);
            loom_images_free(&x), loom_images_free(&ref);
            loom_train_opts_free(&o);
            cli_die(2, "%s", msg);
        }
        if (!fits) {
            snprintf(fid_note, sizeof fid_note, "the shipped classifier reads 28x28 gray Fashion-MNIST images; "
                     "train a renet on this data and give it as --classifier for fid and is");
        } else {
            float *fx = malloc(x.n * D * sizeof *fx), *fr = malloc(ref.n * D * sizeof *fr);
            float *lx = malloc(x.n * K * sizeof *lx), *lr = malloc(ref.n * K * sizeof *lr);
            if (!fx || !fr || !lx || !lr) cli_die(1, "out of memory");
            if ((st = loom_model_classify(cl, lx, fx, x.pixels, x.n, 64, &err))) cli_die_err(st, &err);
            if ((st = loom_model_classify(cl, lr, fr, ref.pixels, ref.n, 64, &err))) cli_die_err(st, &err);
            if ((st = loom_fid(&fid, fx, x.n, fr, ref.n, D, &err))) cli_die_err(st, &err);
            is = loom_inception_score(lx, x.n, K);
            is_ref = loom_inception_score(lr, ref.n, K);
            free(fx), free(fr), free(lx), free(lr);
        }
        loom_model_free(cl);
    }

    /* the detector: real (A) against the scored set (B) */
    loom_detect_result dr = {.auc = NAN, .auc_low = NAN, .auc_high = NAN, .accuracy = NAN};
    loom_detect_opts dopt;
    loom_detect_opts_default(&dopt);
    if (steps) dopt.steps = steps;
    dopt.seed = seed, dopt.threads = (int)threads;
    if (!no_detect && (st = loom_detect(&dr, &ref, &x, &dopt, &err))) cli_die_err(st, &err);

    /* the model's own test NLL (or its bound) */
    double nll_bpd = NAN;
    const char *nll_kind = "none";
    /* a model without a likelihood (gran): nll is null, and says why */
    const char *nll_note = m && !m->ops->labelled && !m->ops->shard ? "an adversarial generator has no likelihood" : "";
    if (m && !m->ops->labelled && m->ops->shard) { /* on the reference images (by default the test split's) */
        cli_check_data(&ref, ref_spec, &m->cfg);
        double *nll = malloc(ref.n * sizeof *nll), s = 0.0;
        if (!nll) cli_die(1, "out of memory");
        if (m->cfg.nclasses && !ref.labels) cli_die(2, "%s: the conditional model needs labels", ref_spec);
        if ((st = loom_model_nll(m, nll, ref.pixels, m->cfg.nclasses ? ref.labels : NULL, ref.n, 64, &err)))
            cli_die_err(st, &err);
        for (size_t i = 0; i < ref.n; i++) s += nll[i];
        nll_bpd = loom_bits_per_dim(&m->cfg, s / (double)ref.n);
        nll_kind = m->ops->nll_kind && m->ops->nll_kind(&m->cfg) ? "bound" : "exact";
        free(nll);
    }
    char jf[32], ji[32], jir[32], ja[32], jal[32], jah[32], jacc[32], jn[32];
    jnum(jf, sizeof jf, fid), jnum(ji, sizeof ji, is), jnum(jir, sizeof jir, is_ref);
    jnum(ja, sizeof ja, dr.auc), jnum(jal, sizeof jal, dr.auc_low), jnum(jah, sizeof jah, dr.auc_high);
    jnum(jacc, sizeof jacc, dr.accuracy), jnum(jn, sizeof jn, nll_bpd);
    if (json) {
        printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": %s%s%s, \"kind\": \"fid\", \"fid\": %s, \"is\": %s, "
               "\"is_reference\": %s, \"detector_auc\": %s, \"detector_auc_low\": %s, \"detector_auc_high\": %s, "
               "\"detector_accuracy\": %s, \"nll\": %s, \"nll_unit\": \"bits/dim\", \"nll_kind\": \"%s\", %s%s%s\"n\": %zu, "
               "\"reference_n\": %zu, \"classifier\": %s%s%s, \"fid_note\": \"%s\", \"samples\": \"%s\", "
               "\"reference\": \"%s\"}\n",
               m ? m->cfg.model : "data", ts.step, ckpt[0] ? "\"" : "", ckpt[0] ? ckpt : "null", ckpt[0] ? "\"" : "",
               jf, ji, jir, ja, jal, jah, jacc, jn, nll_kind, *nll_note ? "\"nll_note\": \"" : "", nll_note,
               *nll_note ? "\", " : "", x.n, ref.n, classifier && isfinite(fid) ? "\"" : "",
               classifier && isfinite(fid) ? classifier : "null", classifier && isfinite(fid) ? "\"" : "", fid_note,
               wx, wr);
    } else {
        printf("scored: %s\nagainst: %s\n", wx, wr);
        if (isfinite(fid))
            printf("fid %.3f, inception score %.3f (the reference images: %.3f), classifier %s\n", fid, is, is_ref,
                   classifier);
        else
            printf("fid, is: not available: %s\n", fid_note);
        if (isfinite(dr.auc))
            printf("detector ROC AUC %.4f (95%% interval %.4f-%.4f, DeLong), accuracy %.4f\n", dr.auc, dr.auc_low,
                   dr.auc_high, dr.accuracy);
        if (isfinite(nll_bpd)) printf("test NLL %.4f bits/dim (%s)\n", nll_bpd, nll_kind);
        if (*nll_note) printf("test NLL: none (%s)\n", nll_note);
    }
    loom_images_free(&x), loom_images_free(&ref);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
