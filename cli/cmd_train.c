/* loom train: a run directory holds config.json, checkpoint.safetensors,
 * metrics.csv, train.log and sample grids. */
#include "cli.h"

#include "optim/optim.h"

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

/* Fisher-Yates with the training RNG */
static void shuffle(size_t *perm, size_t n, loom_rng *r) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = loom_rng_below(r, i), t = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = t;
    }
}

static double bits_per_dim(double nats_per_image, const loom_config *c) {
    return nats_per_image / log(2.0) / (double)(c->height * c->width);
}

/* mean NLL (nats/image) over the first `limit` images of set (0 = all), in
 * chunks of the training batch so the workspaces do not grow past training's */
static double evaluate(loom_model *m, const loom_images *set, size_t limit, size_t chunk) {
    size_t n = limit && limit < set->n ? limit : set->n;
    double *nll = malloc(n * sizeof *nll), s = 0.0;
    loom_error err;
    if (!nll) cli_die(1, "out of memory");
    loom_status st = loom_model_nll(m, nll, set->pixels, m->cfg.nclasses ? set->labels : NULL, n,
                                    chunk, &err);
    if (st) cli_die_err(st, &err);
    for (size_t i = 0; i < n; i++) s += nll[i];
    free(nll);
    return s / (double)n;
}

static void write_samples(loom_model *m, const char *path, size_t n, uint64_t seed) {
    if (m->ops->cannot_sample && m->ops->cannot_sample(&m->cfg)) return; /* e.g. a plain autoencoder */
    const size_t HW = m->cfg.height * m->cfg.width;
    uint8_t *imgs = calloc(n, HW), *grid = NULL;
    int32_t *labels = NULL;
    loom_error err;
    if (!imgs) cli_die(1, "out of memory");
    if (m->cfg.nclasses) {
        labels = malloc(n * sizeof *labels);
        for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % (size_t)m->cfg.nclasses);
    }
    size_t gh, gw, cols = (size_t)ceil(sqrt((double)n));
    loom_status st = loom_model_sample(m, imgs, labels, n, 0, 1.0f, seed, &err);
    if (!st) st = loom_grid(&grid, &gh, &gw, imgs, n, m->cfg.height, m->cfg.width, cols, 1, 128, &err);
    if (!st) st = loom_png_write_gray(path, grid, gh, gw, &err);
    free(imgs), free(grid), free(labels);
    if (st) cli_die_err(st, &err);
}

/* A failed save (disk full, file size limit, I/O error, NaN) leaves the previous
 * checkpoint in place (loom_safetensors_write is atomic); say so and stop. */
static void save(run_files *rf, const loom_model *m, const loom_adam *a, const loom_train_state *ts,
                 const loom_train_opts *o) {
    loom_error err;
    loom_status st = loom_checkpoint_save(join(rf->dir, "checkpoint.safetensors"), m, a->m, a->v,
                                          ts, o, &err);
    if (st) {
        if (rf->log) fprintf(rf->log, "step %ld: checkpoint not written: %s\n", ts->step, err.msg);
        if (rf->tty) fputs("\r\033[K", stderr);
        cli_die(st == LOOM_EINVAL || st == LOOM_EFORMAT ? 2 : 1,
                "%s; checkpoint of step %ld not written, the previous one is kept", err.msg,
                ts->step);
    }
}

/* Test hook (docs/robustness.md), only in test builds (-DLOOM_TEST_HOOKS):
 * LOOM_FAULT_NAN_STEP=K poisons the gradient of step K (1-based) with a NaN,
 * to exercise the non-finite-step guard. */
static long fault_nan_step(void) {
#ifdef LOOM_TEST_HOOKS
    const char *v = getenv("LOOM_FAULT_NAN_STEP");
    return v && *v ? strtol(v, NULL, 10) : 0;
#else
    return 0;
#endif
}

static const char *usage_text =
    "--model rowlstm|diagbilstm|grupixel|draw|rae [--layers L] [--hidden H] [--cell C] [--zdim Z]\n"
    "                  [--data D] [--steps N | --epochs E] [--batch B]\n"
    "                  [draw: --steps-draw T --read-n N --write-n N --attention on|off] [rae: --variational]\n"
    "                  [--lr F] [--seed S] [--threads T] --out RUN_DIR\n"
    "       loom train --resume RUN_DIR [--steps N | --epochs E] [--threads T]";

int cmd_train(int argc, char **argv) {
    loom_train_opts o;
    loom_train_opts_default(&o);
    loom_config cfg = {.model = "rowlstm", .layers = 4, .hidden = 32};
    const char *model = "rowlstm", *out = NULL, *resume = NULL, *data = o.data, *cell = NULL;
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
        {"valid", ARG_SIZE, &o.valid, 0, 1e9, "last N training images form the validation set (default 5000)", false},
        {"eval-every", ARG_LONG, &o.eval_every, 0, 1e12, "validate every N steps, 0 = only at the end (default 500)", false},
        {"eval-limit", ARG_SIZE, &o.eval_limit, 0, 1e9, "images for periodic validation, 0 = all (default 1000)", false},
        {"checkpoint-every", ARG_LONG, &o.checkpoint_every, 0, 1e12, "checkpoint every N steps (default 500)", false},
        {"sample-every", ARG_LONG, &o.sample_every, 0, 1e12, "sample grid every N steps, 0 = only at the end", false},
        {"log-every", ARG_SIZE, &log_every, 1, 1e9, "metrics line every N steps (default 50)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"time-limit", ARG_DOUBLE, &time_limit, 0, 1e9, "stop (and save) after this many seconds of training", false},
        {"quiet", ARG_FLAG, &quiet, 0, 0, "no progress on stderr", false},
        {"out", ARG_STR, &out, 0, 0, "run directory to create", false},
        {"resume", ARG_STR, &resume, 0, 0, "continue the run in this directory", false},
    };
    const size_t nargs = sizeof args / sizeof args[0];
    const char *pos[1];
    int npos;
    cli_parse("train", usage_text, argc, argv, args, nargs, pos, 0, &npos);
    if (cli_find(args, nargs, "steps")->seen && epochs)
        cli_die(2, "give --steps or --epochs, not both");

    loom_error err;
    loom_status st;
    loom_model *m = NULL;
    float *am = NULL, *av = NULL;
    loom_train_state ts = {0};
    if (resume) {
        static const char *const allowed[] = {"resume", "steps", "epochs", "threads", "quiet", "log-every", "time-limit"};
        for (size_t i = 0; i < nargs; i++) {
            bool ok = false;
            for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++) ok |= strcmp(args[i].name, allowed[k]) == 0;
            if (args[i].seen && !ok)
                cli_die(2, "--%s cannot be changed on --resume (the run keeps its config)", args[i].name);
        }
        long want_steps = o.steps;
        bool steps_given = cli_find(args, nargs, "steps")->seen;
        st = loom_checkpoint_load(cli_checkpoint_path(resume), (int)threads, &m, &am, &av, &ts, &o, &err);
        if (st) cli_die_err(st, &err);
        if (steps_given) o.steps = want_steps;
        cfg = m->cfg;
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
        if (data != o.data) {
            if (strlen(data) >= sizeof o.data) cli_die(2, "--data path too long");
            snprintf(o.data, sizeof o.data, "%s", data);
        }
    }

    /* data: the training split minus the validation tail */
    loom_images all, valid = {0};
    st = loom_images_load(&all, o.data, "train", &err);
    if (st) cli_die_err(st, &err);
    if (o.valid >= all.n)
        cli_die(2, "%s: --valid %zu leaves no training images (the set has %zu)", o.data, o.valid, all.n);
    const size_t ntrain = all.n - o.valid;
    if (o.valid) {
        st = loom_images_slice(&valid, &all, ntrain, all.n, &err);
        if (st) cli_die_err(st, &err);
    }
    if (o.batch > ntrain) cli_die(2, "--batch %zu is larger than the %zu training images", o.batch, ntrain);
    if (epochs) o.steps = (long)(epochs * (ntrain / o.batch));

    if (!resume) {
        cfg.height = all.h, cfg.width = all.w;
        if (conditional) {
            if (!all.labels) cli_die(2, "%s: --conditional needs labels (IDX label files or class sub-directories)", o.data);
            cfg.nclasses = all.nclasses;
        }
        /* refuse absurd sizes before allocating anything large */
        size_t need = 0;
        st = loom_model_train_bytes(&cfg, (int)threads, o.batch, &need, &err);
        if (st) cli_die_err(st, &err);
        char what[160];
        snprintf(what, sizeof what, "--layers %zu --hidden %zu --batch %zu --threads %zu on %zux%zu images",
                 cfg.layers, cfg.hidden, o.batch, threads, cfg.height, cfg.width);
        if ((st = loom_memory_check(need, what, &err))) cli_die_err(st, &err);
        st = loom_model_create(&m, &cfg, (int)threads, &err);
        if (st) cli_die_err(st, &err);
        loom_rng init;
        loom_rng_seed(&init, o.seed);
        loom_model_init(m, &init);
        loom_rng_seed(&ts.rng, o.seed ^ 0x5851f42d4c957f2dULL); /* shuffling stream */
        am = calloc(m->nfloats, sizeof *am), av = calloc(m->nfloats, sizeof *av);
        if (!am || !av) cli_die(1, "out of memory");
        struct stat sb;
        if (stat(join(out, "checkpoint.safetensors"), &sb) == 0)
            cli_die(2, "%s: already holds a run; use --resume %s or another --out", out, out);
        if (mkdir(out, 0777) != 0 && errno != EEXIST) cli_die(1, "%s: %s", out, strerror(errno));
        /* a step-0 checkpoint first: from here on the run can always be resumed,
         * whenever the process is killed */
        st = loom_checkpoint_save(join(out, "checkpoint.safetensors"), m, am, av, &ts, &o, &err);
        if (st) cli_die_err(st, &err);
        char *js = loom_config_json(&cfg, &o);
        FILE *f = fopen(join(out, "config.json"), "w");
        if (!f || fputs(js, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0)
            cli_die(1, "%s: %s", join(out, "config.json"), strerror(errno));
        free(js);
    } else if (all.h != cfg.height || all.w != cfg.width) {
        cli_die(2, "%s: images are %zux%zu but the run's model is %zux%zu", o.data, all.h, all.w, cfg.height, cfg.width);
    } else if (ts.index > ntrain) {
        cli_die(2, "%s: data position %zu is beyond the %zu training images of %s", cli_checkpoint_path(resume),
                ts.index, ntrain, o.data);
    }
    if (cfg.nclasses && (!all.labels || all.nclasses > cfg.nclasses))
        cli_die(2, "%s: labels do not fit the model's %d classes", o.data, cfg.nclasses);

    run_files rf = {.dir = out, .tty = !quiet && isatty(2)};
    rf.log = fopen(join(out, "train.log"), "a");
    struct stat sb;
    bool new_csv = stat(join(out, "metrics.csv"), &sb) != 0;
    rf.csv = fopen(join(out, "metrics.csv"), "a");
    if (!rf.log || !rf.csv) cli_die(1, "%s: cannot write the run's log files: %s", out, strerror(errno));
    if (new_csv) fprintf(rf.csv, "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s\n");

    loom_adam adam = {.lr = (float)o.lr, .beta1 = (float)o.beta1, .beta2 = (float)o.beta2,
                      .eps = (float)o.eps, .m = am, .v = av, .n = m->nfloats, .t = ts.adam_t};
    size_t *perm = malloc(ntrain * sizeof *perm);
    const size_t HW = cfg.height * cfg.width;
    uint8_t *batch = malloc(o.batch * HW);
    int32_t *blabels = malloc(o.batch * sizeof *blabels);
    if (!perm || !batch || !blabels) cli_die(1, "out of memory");
    loom_rng shuf = ts.rng;
    shuffle(perm, ntrain, &shuf);

    size_t nparam = m->nfloats;
    say(&rf, "%s run %s: model %s %zux%zu layers %zu hidden %zu classes %d, %zu parameters; "
        "%zu train / %zu valid images; batch %zu, steps %ld -> %ld, %zu threads, BLAS %s",
        resume ? "resuming" : "new", out, cfg.model, cfg.height, cfg.width, cfg.layers, cfg.hidden,
        cfg.nclasses, nparam, ntrain, o.valid, o.batch, ts.step, o.steps, threads, loom_blas_core());
    if (cfg.zdim)
        say(&rf, "cell %s, zdim %zu: z ~ N(0, I) fresh per image and step; validation uses one fixed z "
            "(an upper bound on the NLL, docs/grupixel.md)", cfg.cell, cfg.zdim);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* past a file size limit (ulimit -f), write() should fail with EFBIG and
     * reach save()'s error, not kill the process */
    signal(SIGXFSZ, SIG_IGN);
    const long nan_step = fault_nan_step();
    const double t0 = cli_now();
    double tlog = t0, loss_sum = 0.0, tstep = 0.0;
    size_t loss_n = 0, skipped = 0;
    long start_step = ts.step;
    while (ts.step < o.steps && !stop_requested) {
        if (ts.index + o.batch > ntrain) { /* next epoch; the partial tail batch is dropped */
            ts.epoch++, ts.index = 0;
            ts.rng = shuf;
            shuffle(perm, ntrain, &shuf);
        }
        for (size_t b = 0; b < o.batch; b++) {
            size_t k = perm[ts.index + b];
            memcpy(batch + b * HW, all.pixels + k * HW, HW);
            blabels[b] = all.labels ? all.labels[k] : 0;
        }
        ts.index += o.batch;
        double ts0 = cli_now(), loss;
        /* fresh noise for models with a latent: a function of seed and step, so
         * a resumed run draws the same; evaluation runs with 0 (fixed noise) */
        m->noise_seed = ((o.seed + 1) * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ts.step * 0xbf58476d1ce4e5b9ULL) ^ 1;
        st = loom_model_grad(m, &loss, batch, cfg.nclasses ? blabels : NULL, o.batch, &err);
        m->noise_seed = 0;
        if (!st && nan_step == ts.step + 1) m->g[m->nfloats / 2] = NAN;
        double gnorm = st ? NAN : loom_clip_grad_norm(m->g, m->nfloats, o.clip);
        ts.step++;
        if (st || !isfinite(gnorm)) {
            /* a non-finite loss or gradient: skip the update, never store it */
            skipped++;
            say(&rf, "step %ld: non-finite %s (%s); update skipped", ts.step,
                st ? "loss" : "gradient", st ? err.msg : "norm");
            if (skipped > 10) cli_die(1, "more than 10 non-finite steps; stopping (last checkpoint kept)");
        } else {
            float lr = o.lr_halflife ? (float)(o.lr * pow(0.5, (double)ts.step / (double)o.lr_halflife)) : (float)o.lr;
            loom_adam_step(&adam, m->w, m->g, lr);
            loss_sum += loss, loss_n++;
        }
        ts.adam_t = adam.t;
        tstep += cli_now() - ts0;

        bool out_of_time = time_limit > 0 && cli_now() - t0 >= time_limit;
        if (out_of_time) o.steps = ts.step; /* this step is the last; the saved config says so */
        bool last = ts.step == o.steps;
        bool do_eval = last || (o.eval_every && ts.step % o.eval_every == 0);
        if (ts.step % (long)log_every == 0 || do_eval || last) {
            double bpd = loss_n ? loss_sum / loss_n / log(2.0) : NAN;
            double ips = tstep > 0 ? (double)(loss_n + 0 * skipped) * (double)o.batch / tstep : 0.0;
            double vb = NAN;
            if (do_eval && valid.n) vb = bits_per_dim(evaluate(m, &valid, last ? 0 : o.eval_limit, o.batch), &cfg);
            double wall = cli_now() - t0;
            fprintf(rf.csv, "%ld,%.6f,", ts.step, bpd);
            if (isfinite(vb)) fprintf(rf.csv, "%.6f", vb);
            fprintf(rf.csv, ",%.1f,%.1f\n", ips, wall);
            fflush(rf.csv);
            double eta = ts.step > start_step ? wall / (double)(ts.step - start_step) * (double)(o.steps - ts.step) : 0;
            if (!quiet || do_eval) {
                char vbuf[64] = "";
                if (isfinite(vb)) snprintf(vbuf, sizeof vbuf, " valid %.4f bits/dim%s", vb, last ? "" : " (subset)");
                say(&rf, "step %ld/%ld train %.4f bits/dim%s %.1f images/s eta %.0fs", ts.step, o.steps, bpd, vbuf, ips, eta);
            }
            loss_sum = 0, loss_n = 0, tstep = 0, tlog = cli_now();
        } else if (rf.tty) {
            int w = 30, done = (int)(w * ts.step / o.steps);
            double ips = tstep > 0 ? (double)loss_n * (double)o.batch / tstep : 0.0;
            double eta = (cli_now() - t0) / (double)(ts.step - start_step) * (double)(o.steps - ts.step);
            fprintf(stderr, "\r[%.*s%*s] step %ld/%ld loss %.3f bits/dim %.0f images/s eta %.0fs ", done,
                    "##############################", w - done, "", ts.step, o.steps, loss / log(2.0), ips, eta);
        }
        if ((o.checkpoint_every && ts.step % o.checkpoint_every == 0) || last) save(&rf, m, &adam, &ts, &o);
        if (o.sample_every && ts.step % o.sample_every == 0 && !last) {
            char name[64];
            snprintf(name, sizeof name, "samples_%06ld.png", ts.step);
            write_samples(m, join(out, name), 16, o.seed);
        }
    }
    (void)tlog;
    save(&rf, m, &adam, &ts, &o);
    if (stop_requested) {
        say(&rf, "stopped by signal %d at step %ld; checkpoint saved, resume with: loom train --resume %s",
            (int)stop_requested, ts.step, out);
    } else {
        write_samples(m, join(out, "samples.png"), 64, o.seed);
        say(&rf, "done: step %ld, checkpoint %s, samples %s", ts.step, join(out, "checkpoint.safetensors"),
            join(out, "samples.png"));
    }
    fclose(rf.log), fclose(rf.csv);
    free(perm), free(batch), free(blabels), free(am), free(av);
    loom_images_free(&all), loom_images_free(&valid);
    loom_model_free(m);
    return 0;
}
