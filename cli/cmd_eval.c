/* loom eval, loom info */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    loom_model *m = cli_load_model(pos[0], (int)threads, &o, NULL);
    cli_gemm(m, gemm, NULL, precision);
    loom_images set;
    cli_load_split(&set, data ? data : o.data, split, &o, &m->cfg, gray);
    size_t n = limit && limit < set.n ? limit : set.n;
    if (m->cfg.nclasses && (!set.labels || set.nclasses > m->cfg.nclasses))
        cli_die(2, "%s: the conditional model needs labels below %d", data ? data : o.data, m->cfg.nclasses);
    double *nll = malloc(n * sizeof *nll), s = 0.0;
    loom_error err;
    double t0 = cli_now();
    if (iw && !(loom_model_caps(m) & LOOM_CAP_IW_BOUND)) {
        /* fails at once, saying why: no latent variables, or no prior */
        loom_model_iw_nll(m, NULL, NULL, NULL, 0, iw, 1, &err);
        cli_die(2, "--iw: %s", err.msg);
    }
    const int32_t *labels = m->cfg.nclasses ? set.labels : NULL;
    loom_status st = iw ? loom_model_iw_nll(m, nll, set.pixels, labels, n, iw, batch, &err)
                        : loom_model_nll(m, nll, set.pixels, labels, n, batch, &err);
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
    if (json)
        printf("{\"bits_per_dim\": %.6f, \"nats_per_image\": %.4f, \"images\": %zu, \"split\": \"%s\"%s%s%s}\n",
               bpd, nats, n, split, *what ? ", \"kind\": \"" : "", what, *what ? "\"" : "");
    else
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
        char *cfg = loom_config_json(c, &o);
        printf("{\"model\": \"%s\", \"step\": %ld, \"parameters\": %zu, \"capabilities\": [%s], "
               "\"config\": %s}\n", c->model, ts.step, m->nfloats, capl, cfg);
        free(cfg);
    } else {
        printf("checkpoint  %s\nmodel       %s %zux%zu, %zu layers, hidden %zu, %d classes\n"
               "parameters  %zu in %zu tensors\nstep        %ld of %ld (epoch %zu)\n"
               "training    data %s, batch %zu, lr %g, seed %llu\n",
               cli_checkpoint_path(pos[0]), c->model, c->height, c->width, c->layers, c->hidden,
               c->nclasses, m->nfloats, m->nparams, ts.step, o.steps, ts.epoch, o.data, o.batch, o.lr,
               (unsigned long long)o.seed);
        if (c->steps_draw)
            printf("draw        z %zu, %zu glimpses, read %zux%zu, write %zux%zu, attention %s\n", c->zdim,
                   c->steps_draw, c->read_n, c->read_n, c->write_n, c->write_n, c->attention ? "on" : "off");
        if (c->cell[0] || c->zdim) printf("cell        %s, zdim %zu\n", c->cell[0] ? c->cell : "-", c->zdim);
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
