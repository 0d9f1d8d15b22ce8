/* loom train: a run directory holds config.json, checkpoint.safetensors,
 * metrics.csv, train.log and sample grids. */
#include "cli.h"

#include "gemm.h"

#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { stop_requested = sig; }

typedef struct {
    const char *dir;
    FILE *log, *csv;
    bool tty;
} run_files;

static void say(run_files *rf, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (rf->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s\n", line);
    if (rf->log) fprintf(rf->log, "%s\n", line), fflush(rf->log);
}

static char *join(const char *dir, const char *name) {
    static char buf[4][4096];
    static int k = 0;
    k = (k + 1) % 4;
    if ((size_t)snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name) >= sizeof buf[k])
        cli_die(2, "%s: path too long", dir);
    return buf[k];
}

static void write_samples(loom_model *m, const char *path, size_t n, uint64_t seed) {
    if (m->ops->cannot_sample && m->ops->cannot_sample(&m->cfg)) return; /* e.g. a plain autoencoder */
    const size_t HW = loom_channels(&m->cfg) * m->cfg.height * m->cfg.width; /* (C, H, W) */
    uint8_t *imgs = calloc(n, HW);
    int32_t *labels = NULL;
    loom_error err;
    if (!imgs) cli_die(1, "out of memory");
    if (m->cfg.nclasses) {
        labels = malloc(n * sizeof *labels);
        for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % (size_t)m->cfg.nclasses);
    }
    size_t cols = (size_t)ceil(sqrt((double)n));
    loom_status st = loom_model_sample(m, imgs, labels, n, 0, 1.0f, seed, &err);
    if (st) cli_die_err(st, &err);
    cli_write_grid(path, imgs, n, loom_channels(&m->cfg), m->cfg.height, m->cfg.width, cols);
    free(imgs), free(labels);
}

/* what the trainer reports, on stderr, in train.log and metrics.csv */
typedef struct {
    run_files *rf;
    bool quiet;
    loom_model *m;
    uint64_t seed;
} train_view;

static void on_event(void *user, const loom_train_event *ev) {
    train_view *v = user;
    run_files *rf = v->rf;
    switch (ev->kind) {
    case LOOM_TRAIN_SKIP:
        say(rf, "%s", ev->msg);
        break;
    case LOOM_TRAIN_LOG: {
        const double bpd = ev->train_bpd[0], vb = ev->valid_bpd[0];
        fprintf(rf->csv, "%ld,%.6f,", ev->step, bpd);
        if (isfinite(vb)) fprintf(rf->csv, "%.6f", vb);
        fprintf(rf->csv, ",%.1f,%.1f\n", ev->images_per_s, ev->wall_s);
        fflush(rf->csv);
        if (!v->quiet || ev->eval) {
            char vbuf[64] = "";
            if (isfinite(vb)) snprintf(vbuf, sizeof vbuf, " valid %.4f bits/dim%s", vb, ev->valid_subset ? " (subset)" : "");
            say(rf, "step %ld/%ld train %.4f bits/dim%s %.1f images/s eta %.0fs", ev->step, ev->steps, bpd, vbuf,
                ev->images_per_s, ev->eta_s);
        }
        break;
    }
    case LOOM_TRAIN_STEP:
        if (rf->tty) {
            int w = 30, done = (int)(w * ev->step / ev->steps);
            fprintf(stderr, "\r[%.*s%*s] step %ld/%ld loss %.3f bits/dim %.0f images/s eta %.0fs ", done,
                    "##############################", w - done, "", ev->step, ev->steps, ev->loss_bpd,
                    ev->images_per_s, ev->eta_s);
        }
        break;
    case LOOM_TRAIN_SAMPLE: {
        char name[64];
        snprintf(name, sizeof name, "samples_%06ld.png", ev->step);
        write_samples(v->m, join(rf->dir, name), 16, v->seed);
        break;
    }
    }
}

static int should_stop(void *user) {
    (void)user;
    return stop_requested != 0;
}

/* a relative --data becomes absolute, so the run finds its data from anywhere */
static void absolute_data(char *dst, size_t cap, const char *arg) {
    char cwd[4096], copy[4096];
    if (strlen(arg) >= sizeof copy) cli_die(2, "--data path too long");
    const char *data = strcpy(copy, arg); /* arg may be dst itself */
    if (strcmp(data, "fashion-mnist") == 0 || data[0] == '/') {
        if (strlen(data) >= cap) cli_die(2, "--data path too long");
        memcpy(dst, data, strlen(data) + 1);
        return;
    }
    if (!getcwd(cwd, sizeof cwd)) cli_die(1, "--data %s: cannot get the current directory: %s", data, strerror(errno));
    while (data[0] == '.' && data[1] == '/') data += 2;
    if ((size_t)snprintf(dst, cap, "%s/%s", cwd, strcmp(data, ".") == 0 ? "" : data) >= cap)
        cli_die(2, "--data path too long");
}

static const char *usage_text =
    "--model rowlstm|diagbilstm|grupixel|draw|rae [--layers L] [--hidden H] [--cell C] [--zdim Z]\n"
    "                  [--data D [--gray]] [--steps N | --epochs E] [--batch B]\n"
    "                  [draw: --steps-draw T --read-n N --write-n N --attention on|off] [rae: --variational]\n"
    "                  [--lr F] [--seed S] [--threads T] [--gemm openblas|onednn] [--precision fp32|bf16]\n"
    "                  --out RUN_DIR\n"
    "       loom train --resume RUN_DIR [--steps N | --epochs E] [--threads T] [--gemm openblas|onednn]";

int cmd_train(int argc, char **argv) {
    loom_train_opts o;
    loom_train_opts_default(&o);
    loom_config cfg = {.model = "rowlstm", .layers = 4, .hidden = 32};
    const char *model = "rowlstm", *out = NULL, *resume = NULL, *data = o.data, *cell = NULL;
    const char *gemm = NULL, *precision = NULL;
    size_t layers = cfg.layers, hidden = cfg.hidden, threads = (size_t)cli_default_threads(), zdim = 0;
    size_t epochs = 0, log_every = 50;
    double time_limit = 0;
    bool conditional = false, quiet = false;
    cli_draw_flags df = {0};
    cli_arg args[] = {
        {"model", ARG_STR, &model, 0, 0, "model: rowlstm (default), diagbilstm, grupixel, draw or rae", false},
        {"steps-draw", ARG_SIZE, &df.steps_draw, 1, 1024, "draw: glimpses T (default 64)", false},
        {"read-n", ARG_SIZE, &df.read_n, 1, 4096, "draw: read grid N x N (default 2)", false},
        {"write-n", ARG_SIZE, &df.write_n, 1, 4096, "draw: write grid N x N (default 5)", false},
        {"attention", ARG_STR, &df.attention, 0, 0, "draw: on (default) or off", false},
        {"variational", ARG_FLAG, &df.variational, 0, 0, "rae: a Gaussian code with a KL term (a VAE)", false},
        {"layers", ARG_SIZE, &layers, 1, 64, "recurrent layers (default 4; grupixel 1)", false},
        {"hidden", ARG_SIZE, &hidden, 1, 4096, "hidden units h; feature maps are 2h (default 32)", false},
        {"cell", ARG_STR, &cell, 0, 0, "grupixel: gru (default), lstm or rnn", false},
        {"zdim", ARG_SIZE, &zdim, 1, 4096, "grupixel: noise vector z (32); draw: latent per glimpse (100); rae: code (32)", false},
        {"conditional", ARG_FLAG, &conditional, 0, 0, "class-conditional (labels from the data)", false},
        {"data", ARG_STR, &data, 0, 0, "fashion-mnist (default) or a directory of IDX or PNG files", false},
        {"gray", ARG_FLAG, &o.gray, 0, 0, "convert RGB data to gray (BT.601 luma); the run remembers it", false},
        {"steps", ARG_LONG, &o.steps, 1, 1e12, "total optimiser steps of the run (default 1000)", false},
        {"epochs", ARG_SIZE, &epochs, 1, 1e6, "total epochs instead of --steps", false},
        {"batch", ARG_SIZE, &o.batch, 1, 65536, "images per step (default 32)", false},
        {"lr", ARG_DOUBLE, &o.lr, 1e-12, 10, "Adam learning rate (default 1e-3)", false},
        {"beta1", ARG_DOUBLE, &o.beta1, 0, 0.999999, "Adam beta1 (default 0.9)", false},
        {"beta2", ARG_DOUBLE, &o.beta2, 0, 0.999999, "Adam beta2 (default 0.999)", false},
        {"eps", ARG_DOUBLE, &o.eps, 1e-30, 1, "Adam epsilon (default 1e-8)", false},
        {"clip", ARG_DOUBLE, &o.clip, 0, 1e9, "max gradient L2 norm, 0 = off (default 1)", false},
        {"lr-halflife", ARG_LONG, &o.lr_halflife, 0, 1e12, "halve the lr every N steps, 0 = constant (default)", false},
        {"seed", ARG_U64, &o.seed, 0, 0, "seed for initialisation and shuffling (default 1)", false},
        {"valid", ARG_SIZE, &o.valid, 0, 1e9, "training images held out for validation (default 10%, at most 5000)", false},
        {"eval-every", ARG_LONG, &o.eval_every, 0, 1e12, "validate every N steps, 0 = only at the end (default 500)", false},
        {"eval-limit", ARG_SIZE, &o.eval_limit, 0, 1e9, "images for periodic validation, 0 = all (default 1000)", false},
        {"checkpoint-every", ARG_LONG, &o.checkpoint_every, 0, 1e12, "checkpoint every N steps (default 500)", false},
        {"sample-every", ARG_LONG, &o.sample_every, 0, 1e12, "sample grid every N steps, 0 = only at the end", false},
        {"log-every", ARG_SIZE, &log_every, 1, 1e9, "metrics line every N steps (default 50)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"gemm", ARG_STR, &gemm, 0, 0, "matrix products: openblas or onednn (default: the faster for the model)", false},
        {"precision", ARG_STR, &precision, 0, 0, "training's matrix products: fp32 (default) or bf16 (oneDNN, AVX512_BF16); the run remembers it", false},
        {"time-limit", ARG_DOUBLE, &time_limit, 0, 1e9, "stop (and save) after this many seconds of training", false},
        {"quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr", false},
        {"out", ARG_STR, &out, 0, 0, "run directory to create (with its parents)", false},
        {"resume", ARG_STR, &resume, 0, 0, "continue the run in this directory", false},
    };
    const size_t nargs = sizeof args / sizeof args[0];
    const char *pos[1];
    int npos;
    cli_parse("train", usage_text, argc, argv, args, nargs, pos, 0, &npos);
    if (cli_find(args, nargs, "steps")->seen && epochs)
        cli_die(2, "give --steps or --epochs, not both");

    /* both checked before anything is made; --gemm is applied to the model below */
    loom_gemm_backend gb = LOOM_GEMM_OPENBLAS;
    if (gemm && loom_gemm_backend_parse(gemm, &gb)) cli_die(2, "--gemm '%s': expected openblas or onednn", gemm);
    if (gemm && loom_gemm_unavailable(gb, LOOM_PREC_FP32)) cli_die(2, "--gemm %s: %s", gemm, loom_gemm_unavailable(gb, LOOM_PREC_FP32));
    if (precision) {
        loom_precision p;
        if (loom_precision_parse(precision, &p)) cli_die(2, "--precision '%s': expected fp32 or bf16", precision);
        const char *why = loom_gemm_unavailable(gemm ? gb : p == LOOM_PREC_BF16 ? LOOM_GEMM_ONEDNN : LOOM_GEMM_OPENBLAS, p);
        if (why) cli_die(2, "--precision %s: %s", precision, why);
        o.precision = (int)p;
    }

    loom_error err;
    loom_status st;
    loom_trainer *t = NULL;
    long want_steps = o.steps;
    const bool steps_given = cli_find(args, nargs, "steps")->seen;
    if (resume) {
        static const char *const allowed[] = {"resume", "steps", "epochs", "threads", "quiet", "log-every", "time-limit", "gemm"};
        for (size_t i = 0; i < nargs; i++) {
            bool ok = false;
            for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++) ok |= strcmp(args[i].name, allowed[k]) == 0;
            if (args[i].seen && !ok)
                cli_die(2, "--%s cannot be changed on --resume (the run keeps its config)", args[i].name);
        }
        st = loom_trainer_load(&t, cli_checkpoint_path(resume), (int)threads, &err);
        if (st) cli_die_err(st, &err);
        cfg = loom_trainer_model(t, 0)->cfg;
        o = *loom_trainer_opts(t); /* a view: the trainer owns the class names */
        out = resume;
    } else {
        if (!out) cli_die(2, "train needs --out RUN_DIR (or --resume RUN_DIR) (see 'loom train --help')");
        if (!loom_model_find(model)) cli_die(2, "unknown model '%s' (known: %s)", model, loom_model_names());
        snprintf(cfg.model, sizeof cfg.model, "%s", model);
        cfg.layers = layers, cfg.hidden = hidden;
        cli_model_flags(&cfg, cell, zdim, cli_find(args, nargs, "layers")->seen);
        df.zdim = zdim;
        df.hidden_seen = cli_find(args, nargs, "hidden")->seen;
        df.layers_seen = cli_find(args, nargs, "layers")->seen;
        cli_draw_config(&cfg, &df);
        absolute_data(o.data, sizeof o.data, data);
    }

    loom_images all;
    st = loom_images_load(&all, o.data, "train", &err);
    if (st) cli_die_err(st, &err);
    char note[1024]; /* what loading and --gray changed, for the log */
    cli_data_prepare(&all, o.data, o.gray, note, sizeof note);
    if (resume) cli_check_data(&all, o.data, &cfg);
    if (!resume) {
        cfg.height = all.h, cfg.width = all.w, cfg.channels = all.c;
        if (conditional) {
            if (!all.labels) cli_die(2, "%s: --conditional needs labels (IDX label files or class sub-directories)", o.data);
            cfg.nclasses = all.nclasses;
        }
        /* refuse absurd sizes before allocating anything large */
        size_t need = 0;
        st = loom_model_train_bytes(&cfg, (int)threads, o.batch, &need, &err);
        if (st && loom_channels(&cfg) == 3) cli_die(2, "%s: RGB images: %s; --gray converts them", o.data, err.msg);
        if (st) cli_die_err(st, &err);
        char what[160];
        snprintf(what, sizeof what, "--layers %zu --hidden %zu --batch %zu --threads %zu on %zux%zu images",
                 cfg.layers, cfg.hidden, o.batch, threads, cfg.height, cfg.width);
        if ((st = loom_memory_check(need, what, &err))) cli_die_err(st, &err);
        loom_train_model_spec spec = {.role = "model", .cfg = cfg};
        st = loom_trainer_create(&t, &o, &spec, 1, (int)threads, &err);
        if (st) cli_die_err(st, &err);
    }
    st = loom_trainer_set_data(t, &all, &err);
    if (st) cli_die_err(st, &err);
    const size_t ntrain = loom_trainer_ntrain(t);
    const loom_train_state *ts = loom_trainer_state(t);
    long target = loom_trainer_opts(t)->steps;
    if (steps_given) target = want_steps;
    if (epochs) target = (long)(epochs * (ntrain / o.batch));
    if (resume && target < ts->step)
        cli_die(2, "%s: --%s %ld is below the run's current step %ld (of %ld)", resume, epochs ? "epochs give" : "steps",
                target, ts->step, loom_trainer_opts(t)->steps);
    if (resume && target == ts->step) {
        fprintf(stderr, "loom: %s is complete at step %ld of %ld; nothing to do (give a larger --steps to train on)\n",
                resume, ts->step, target);
        loom_trainer_free(t);
        loom_images_free(&all);
        return 0;
    }
    if ((st = loom_trainer_set_steps(t, target, &err))) cli_die_err(st, &err);
    if (!resume && (st = loom_trainer_start(t, out, &err))) cli_die_err(st, &err);
    o = *loom_trainer_opts(t);
    loom_model *m = loom_trainer_model(t, 0);
    if (gemm || o.precision == LOOM_PREC_FP32) cli_gemm(m, gemm, NULL, NULL); /* bf16: oneDNN already */

    run_files rf = {.dir = out, .tty = !quiet && isatty(2)};
    rf.log = fopen(join(out, "train.log"), "a");
    struct stat sb;
    bool new_csv = stat(join(out, "metrics.csv"), &sb) != 0;
    rf.csv = fopen(join(out, "metrics.csv"), "a");
    if (!rf.log || !rf.csv) cli_die(1, "%s: cannot write the run's log files: %s", out, strerror(errno));
    if (new_csv) fprintf(rf.csv, "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s\n");

    say(&rf, "%s run %s: model %s %zux%zu layers %zu hidden %zu classes %d, %zu parameters; "
        "%zu train / %zu valid images; batch %zu, steps %ld -> %ld, %zu threads, products %s %s (OpenBLAS core %s)",
        resume ? "resuming" : "new", out, cfg.model, cfg.height, cfg.width, cfg.layers, cfg.hidden,
        cfg.nclasses, m->nfloats, ntrain, loom_trainer_nvalid(t), o.batch, ts->step, o.steps, threads,
        loom_gemm_backend_name((loom_gemm_backend)m->gemm), loom_precision_name((loom_precision)o.precision),
        loom_blas_core());
    if (*note) say(&rf, "%s", note);
    const loom_images *vset = loom_trainer_valid(t);
    if (vset->n && vset->labels) { /* which classes validate: the split is stratified */
        char line[1024];
        size_t len = 0;
        len += (size_t)snprintf(line, sizeof line, "validation: %zu images, %s; per class:", vset->n,
                                o.valid_split == LOOM_SPLIT_TAIL ? "the last of the file list (a run from before the shuffle)"
                                                                 : "a seeded shuffle stratified by class");
        for (int c = 0; c < vset->nclasses && len + 40 < sizeof line; c++) {
            size_t k = 0;
            for (size_t i = 0; i < vset->n; i++) k += vset->labels[i] == c;
            char num[16];
            snprintf(num, sizeof num, "%d", c);
            len += (size_t)snprintf(line + len, sizeof line - len, " %s=%zu",
                                    (size_t)c < o.nclass_names ? o.class_names[c] : num, k);
        }
        say(&rf, "%s", line);
    }
    if (cfg.zdim)
        say(&rf, "cell %s, zdim %zu: z ~ N(0, I) fresh per image and step; validation uses one fixed z "
            "(an upper bound on the NLL, docs/grupixel.md)", cfg.cell, cfg.zdim);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* past a file size limit (ulimit -f), write() should fail with EFBIG and
     * reach the checkpoint writer's error, not kill the process */
    signal(SIGXFSZ, SIG_IGN);
    train_view view = {.rf = &rf, .quiet = quiet, .m = m, .seed = o.seed};
    loom_train_hooks hooks = {.log = on_event, .should_stop = should_stop, .user = &view,
                              .log_every = log_every, .time_limit = time_limit};
    loom_train_stop why;
    st = loom_trainer_run(t, out, &hooks, &why, &err);
    if (st) {
        if (rf.log) fprintf(rf.log, "step %ld: %s\n", ts->step, err.msg);
        if (rf.tty) fputs("\r\033[K", stderr);
        cli_die_err(st, &err);
    }
    if (why == LOOM_TRAIN_STOPPED) {
        say(&rf, "stopped by signal %d at step %ld; checkpoint saved, resume with: loom train --resume %s",
            (int)stop_requested, ts->step, out);
    } else {
        write_samples(m, join(out, "samples.png"), 64, o.seed);
        if (why == LOOM_TRAIN_OUT_OF_TIME)
            say(&rf, "time limit: stopped at step %ld of %ld; checkpoint %s and samples %s saved, "
                "resume with: loom train --resume %s", ts->step, o.steps, join(out, "checkpoint.safetensors"),
                join(out, "samples.png"), out);
        else
            say(&rf, "done: step %ld, checkpoint %s, samples %s", ts->step, join(out, "checkpoint.safetensors"),
                join(out, "samples.png"));
    }
    fclose(rf.log), fclose(rf.csv);
    loom_trainer_free(t);
    loom_images_free(&all);
    return 0;
}
