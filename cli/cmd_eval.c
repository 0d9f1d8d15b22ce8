/* loom eval, loom info */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_eval(int argc, char **argv) {
    const char *data = NULL, *split = "test", *gemm = NULL, *precision = NULL;
    size_t limit = 0, threads = (size_t)cli_default_threads(), batch = 64, iw = 0;
    bool json = false, gray = false;
    cli_arg args[] = {
        {"iw", ARG_SIZE, &iw, 1, 1e6, "latent-variable models: importance-weighted bound with K samples", false},
        {"data", ARG_STR, &data, 0, 0, "data (default: the run's)", false},
        {"split", ARG_STR, &split, 0, 0, "test (default) or valid", false},
        {"gray", ARG_FLAG, &gray, 0, 0, "convert RGB data to gray (BT.601; automatic for runs trained with --gray)", false},
        {"limit", ARG_SIZE, &limit, 1, 1e12, "evaluate only the first N images", false},
        {"batch", ARG_SIZE, &batch, 1, 65536, "images per forward pass (default 64)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"gemm", ARG_STR, &gemm, 0, 0, "matrix products: openblas or onednn (default: the faster for the model)", false},
        {"precision", ARG_STR, &precision, 0, 0, "matrix products' inputs: fp32 (default, whatever the run trained in) or bf16", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("eval", "RUN_DIR|CHECKPOINT [flags]", argc, argv, args, sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "eval needs a run directory or checkpoint (see 'loom eval --help')");
    if (strcmp(split, "test") != 0 && strcmp(split, "valid") != 0)
        cli_die(2, "--split must be 'test' or 'valid', not '%s'", split);
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, &ts);
    cli_gemm(m, gemm, NULL, precision);
    if (loom_model_caps(m) & LOOM_CAP_PREDICT) { /* sequence models: video metrics (cmd_video.c) */
        if (iw) cli_die(2, "--iw: model %s has no latent variables", m->cfg.model);
        int rc = cli_eval_video(m, cli_checkpoint_path(pos[0]), data ? data : o.data, data != NULL, split, limit,
                                cli_find(args, sizeof args / sizeof args[0], "batch")->seen ? batch : 16, json, &o,
                                ts.step);
        loom_train_opts_free(&o);
        loom_model_free(m);
        return rc;
    }
    loom_images set;
    cli_load_split(&set, data ? data : o.data, split, &o, &m->cfg, gray);
    size_t n = limit && limit < set.n ? limit : set.n;
    if (m->cfg.nclasses && (!set.labels || set.nclasses > m->cfg.nclasses))
        cli_die(2, "%s: the conditional model needs labels below %d", data ? data : o.data, m->cfg.nclasses);
    loom_error err;
    double t0 = cli_now(); /* eval time, for the text output */
    if (m->ops->classify && !m->ops->labelled) { /* a segmenter: pixel accuracy and mean IoU */
        if (iw) cli_die(2, "--iw: model %s is a segmenter (no latent variables)", m->ops->name);
        double acc, miou;
        cli_segment_eval(m, &set, n, batch, NULL, &acc, &miou);
        if (json)
            printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": \"%s\", \"kind\": \"pixel_accuracy\", "
                   "\"pixel_accuracy\": %.6f, \"mean_iou\": %.6f, \"images\": %zu, \"split\": \"%s\"}\n",
                   m->cfg.model, ts.step, cli_checkpoint_path(pos[0]), acc, miou, n, split);
        else
            printf("%s: pixel accuracy %.4f, mean IoU %.4f over %zu scenes (%.1f s)\n", split, acc, miou, n,
                   cli_now() - t0);
        loom_images_free(&set);
        loom_train_opts_free(&o);
        loom_model_free(m);
        return 0;
    }
    if (m->ops->labelled) { /* a classifier: accuracy and cross-entropy of the labels */
        if (iw) cli_die(2, "--iw: model %s is a classifier (no latent variables)", m->ops->name);
        if (!set.labels) cli_die(2, "%s: model %s is a classifier and the data has no labels", data ? data : o.data,
                                 m->ops->name);
        double acc, xent;
        cli_classify(m, &set, n, batch, &acc, &xent);
        if (json)
            printf("{\"model\": \"%s\", \"step\": %ld, \"checkpoint\": \"%s\", \"kind\": \"accuracy\", "
                   "\"accuracy\": %.6f, \"error\": %.6f, \"xent_nats\": %.6f, \"images\": %zu, \"split\": \"%s\"}\n",
                   m->cfg.model, ts.step, cli_checkpoint_path(pos[0]), acc, 1.0 - acc, xent, n, split);
        else
            printf("%s: accuracy %.4f (error %.2f%%), cross-entropy %.4f nats/image over %zu images (%.1f s)\n",
                   split, acc, 100.0 * (1.0 - acc), xent, n, cli_now() - t0);
        loom_images_free(&set);
        loom_train_opts_free(&o);
        loom_model_free(m);
        return 0;
    }
    if (iw && !(loom_model_caps(m) & LOOM_CAP_IW_BOUND)) {
        if (!m->ops->iw_nll) /* no latent variables at all: nothing to weight */
            cli_die(2, "--iw: model %s has no latent variables; its eval is %s", m->ops->name,
                    m->ops->nll_kind ? "an upper bound already" : "the exact NLL");
        /* fails at once, saying why: no latent variables, or no prior */
        loom_model_iw_nll(m, NULL, NULL, NULL, 0, iw, 1, &err);
        cli_die(2, "--iw: %s", err.msg);
    }
    double *nll = malloc(n * sizeof *nll), s = 0.0;
    if (!nll) cli_die(1, "out of memory");
    const int32_t *labels = m->cfg.nclasses ? set.labels : NULL;
    /* at a terminal, a progress line: chunks of whole batches, which changes no
     * number (each image's NLL is its own; eval is the same in any chunks) */
    const bool tty = !json && isatty(2);
    const size_t EX = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width;
    const size_t chunk = tty ? batch * (iw ? 1 : 8) : n;
    loom_status st = LOOM_OK;
    for (size_t i = 0; i < n && !st; i += chunk) {
        const size_t k = n - i < chunk ? n - i : chunk;
        const int32_t *lab = labels ? labels + i : NULL;
        st = iw ? loom_model_iw_nll(m, nll + i, set.pixels + i * EX, lab, k, iw, batch, &err)
                : loom_model_nll(m, nll + i, set.pixels + i * EX, lab, k, batch, &err);
        if (tty) {
            const double dt = cli_now() - t0;
            fprintf(stderr, "\r\033[Keval: %zu/%zu images, %.0f s, eta %.0f s", i + k, n, dt,
                    dt / (double)(i + k) * (double)(n - i - k));
        }
    }
    if (tty) fputs("\r\033[K", stderr);
    if (st) cli_die_err(st, &err);
    for (size_t i = 0; i < n; i++) s += nll[i];
    double nats = s / (double)n, bpd = loom_bits_per_dim(&m->cfg, nats);
    /* a latent-variable model has no exact NLL: say what this number is */
    const char *kind = m->ops->nll_kind ? m->ops->nll_kind(&m->cfg) : NULL;
    char what[224] = "";
    /* without an encoder (grupixel) the z_k come from the prior, fresh per image and k */
    if (iw && !(loom_model_caps(m) & LOOM_CAP_RECONSTRUCT))
        snprintf(what, sizeof what, "importance-weighted estimate -log mean_k p(x|z_k) (K = %zu, z_k from the prior, "
                 "fresh per image): an upper bound on -log p(x) in expectation, tighter as K grows", iw);
    else if (iw) snprintf(what, sizeof what, "importance-weighted bound (K = %zu): an upper bound on -log p(x)", iw);
    else if (kind) snprintf(what, sizeof what, "%s", kind);
    if (json) {
        cli_json j;
        cli_json_begin(&j, m->cfg.model, ts.step, cli_checkpoint_path(pos[0]), cli_nll_kind(m, iw));
        cli_json_fixed(&j, "bits_per_dim", bpd, 6); /* the precision of metrics.csv */
        cli_json_fixed(&j, "nats_per_image", nats, 4);
        cli_json_int(&j, "images", (long long)n);
        cli_json_str(&j, "split", split);
        if (iw) cli_json_int(&j, "iw_samples", (long long)iw);
        if (*what) cli_json_str(&j, "what", what);
        cli_json_end(&j);
    } else
        printf("%s: %.4f bits/dim, %.2f nats/image over %zu images (%.1f s)%s%s%s\n", split, bpd, nats, n,
               cli_now() - t0, *what ? "; " : "", what, kind ? " (binarized images)" : "");
    free(nll);
    loom_images_free(&set);
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}

int cmd_info(int argc, char **argv) {
    bool json = false;
    cli_arg args[] = {{"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false}};
    const char *pos[1];
    int npos;
    cli_parse("info", "RUN_DIR|CHECKPOINT [--json]", argc, argv, args, 1, pos, 1, &npos);
    if (npos != 1) cli_die(2, "info needs a run directory or checkpoint (see 'loom info --help')");
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], 1, &o, &ts);
    const loom_config *c = &m->cfg;
    const unsigned caps = loom_model_caps(m);
    char capl[160] = "";
    for (int k = 0; k < LOOM_NCAPS; k++)
        if (caps & (1u << k))
            snprintf(capl + strlen(capl), sizeof capl - strlen(capl), json ? "%s\"%s\"" : "%s%s",
                     capl[0] ? (json ? ", " : " ") : "", loom_cap_name(1u << k));
    if (json) {
        char *cfg = loom_config_json(c, &o), caps_json[200];
        cli_json j;
        snprintf(caps_json, sizeof caps_json, "[%s]", capl);
        cli_json_begin(&j, c->model, ts.step, cli_checkpoint_path(pos[0]), "info");
        cli_json_int(&j, "parameters", (long long)m->nfloats);
        cli_json_int(&j, "tensors", (long long)m->nparams);
        cli_json_int(&j, "steps", o.steps);
        cli_json_int(&j, "epoch", (long long)ts.epoch);
        cli_json_num(&j, "ema", o.ema);
        cli_json_raw(&j, "capabilities", caps_json);
        cli_json_raw(&j, "config", cfg); /* last: scripts cut it out */
        cli_json_end(&j);
        free(cfg);
    } else {
        printf("checkpoint  %s\nmodel       %s %zux%zu, %zu layer%s, hidden %zu, %d class%s\n"
               "parameters  %zu in %zu tensors\nstep        %ld of %ld (epoch %zu)\n"
               "training    data %s, batch %zu, lr %g, seed %llu\n",
               cli_checkpoint_path(pos[0]), c->model, c->height, c->width, c->layers, c->layers == 1 ? "" : "s",
               c->hidden, c->nclasses, c->nclasses == 1 ? "" : "es", m->nfloats, m->nparams, ts.step, o.steps, ts.epoch, o.data, o.batch, o.lr,
               (unsigned long long)o.seed);
        const bool gran = strcmp(c->model, "gran") == 0;
        const double lr_d = o.model_lr[1] > 0 ? o.model_lr[1] : o.lr; /* a second model's */
        if (gran)
            printf("gran        z %zu, %zu canvas updates, batchnorm %s; the discriminator's lr %g\n", c->zdim,
                   c->steps_draw, c->batchnorm ? "on" : "off", lr_d);
        else if (c->steps_draw)
            printf("draw        z %zu, %zu glimpses, read %zux%zu, write %zux%zu, attention %s\n", c->zdim,
                   c->steps_draw, c->read_n, c->read_n, c->write_n, c->write_n, c->attention ? "on" : "off");
        if (!gran && (c->cell[0] || c->zdim)) printf("cell        %s, zdim %zu\n", c->cell[0] ? c->cell : "-", c->zdim);
        if (o.adversarial > 0)
            printf("adversarial weight %g, a discriminator on the %s (lr %g)\n", o.adversarial,
                   o.adversarial_on == LOOM_ADV_SAMPLES ? "samples" : o.adversarial_on == LOOM_ADV_RECON ?
                   "reconstructions" : "reconstructions and samples", lr_d);
        if (c->multiscale)
            printf("multiscale  a %zux%zu model of every %zu-th pixel, then the full image given it\n",
                   c->multiscale, c->width * c->multiscale / c->height, c->height / c->multiscale);
        if (c->frames_in)
            printf("sequences   %zu given + %zu predicted frames, kernel %zu, patch %zu, output %s%s%s%s%s\n", c->frames_in,
                   c->frames_out, c->kernel, c->patch, c->softmax256 ? "softmax256" : "bernoulli",
                   c->peephole ? ", peepholes" : "", c->feedback ? ", fed its predictions" : "",
                   c->frame_loss ? ", loss " : "", c->frame_loss ? loom_frame_loss_name(c->frame_loss) : "");
        printf("can         %s\n", capl);
        if (o.class_names) {
            printf("classes    ");
            for (size_t i = 0; i < o.nclass_names; i++) printf(" %zu=%s", i, o.class_names[i]);
            printf("\n");
        }
        printf("channels    %zu (%s)%s\n", loom_channels(c), loom_channels(c) == 1 ? "gray" : "RGB",
               o.gray ? "; colour data converted to gray on load (--gray)" : "");
    }
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
