/* loom train: a run directory holds config.json, checkpoint.safetensors,
 * metrics.csv, train.log and sample grids. */
#include "cli.h"

#include "gemm.h"

#include "train/gan.h"
#include "train/trainer.h"

#include <errno.h>
#include <fcntl.h>
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
    bool old_csv; /* a run from before the lr / grad_norm columns: its five columns */
    bool quiet;   /* --quiet: the log file only */
    bool terms;   /* the validation's loss terms (KL, reconstruction) have columns */
    bool train_terms; /* the training loss's terms (loom_trainer_terms) have columns */
    bool gan;     /* an adversarial run (gran): loss_g and loss_d columns, no bits/dim */
    loom_adv *adv; /* an autoencoder with an adversarial term: bits/dim, and loss_g (its term), loss_d */
    double wall0; /* seconds trained by the run's earlier processes (metrics.csv's last wall_s) */
} run_files;

/* metrics.csv: the first five columns as they always were (scripts cut them),
 * then the rest; the full-set validation (the last of a run, or --eval-limit
 * 0) and the periodic one on a subset each have their own column */
#define CSV_HEADER "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s," \
                   "valid_subset_bits_per_dim,lr,grad_norm,event"
#define CSV_TERMS ",valid_kl_nats_per_image,valid_recon_nats_per_image"
#define CSV_GAN ",loss_g,loss_d" /* an adversarial run: each model's training loss, nats per image */
#define CSV_OLD_HEADER "step,train_bits_per_dim,valid_bits_per_dim,images_per_s,wall_s" 

/* a line for stderr and train.log; important (notes on the data, skipped
 * steps, stops) ones are printed under --quiet too, routine progress is not */
static void say_to(run_files *rf, bool important, const char *fmt, va_list ap) {
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    if (rf->tty) fputs("\r\033[K", stderr);
    if (!rf->quiet || important) fprintf(stderr, "%s\n", line);
    if (rf->log) fprintf(rf->log, "%s\n", line), fflush(rf->log);
}

static void say(run_files *rf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_to(rf, false, fmt, ap);
    va_end(ap);
}

static void note(run_files *rf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_to(rf, true, fmt, ap);
    va_end(ap);
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

/* Nats per image in one bit per dimension of c's images: the trainer reports every loss
 * in bits/dim (nats / (log 2 x C x H x W)). */
static double nats_per_bit_dim(const loom_config *c) {
    return log(2.0) * (double)(loom_channels(c) * c->height * c->width);
}

/* The terms of a validation NLL of nats per image for a model with a KL term
 * (draw, rae --variational): the mean KL over the same images (the model's
 * forward_out with the same fixed noise as its NLL) and the reconstruction,
 * the rest. NaN when it cannot be computed. */
static void valid_terms(loom_trainer *t, size_t n, double nats, double *kl, double *recon) {
    loom_model *m = loom_trainer_model(t, 0);
    const loom_images *set = loom_trainer_valid(t);
    /* in micro-shards, so that the workspaces stay the size training gave them */
    const size_t B = m->ops->micro_shard ? m->ops->micro_shard : 8, EX = loom_images_example_bytes(set),
                 F = loom_model_out_floats(m);
    float *out = malloc((B < n ? B : n) * F * sizeof *out);
    double *in = malloc((B < n ? B : n) * sizeof *in), s = 0.0;
    loom_error e;
    loom_status st = out && in ? LOOM_OK : LOOM_ENOMEM;
    loom_trainer_use_average(t, true); /* the weights the validation used */
    for (size_t i = 0; i < n && !st; i += B) {
        const size_t k = n - i < B ? n - i : B;
        st = loom_model_forward(m, out, in, set->pixels + i * EX, m->cfg.nclasses ? set->labels + i : NULL, k, &e);
        for (size_t j = 0; !st && j < k; j++) s += in[j];
    }
    loom_trainer_use_average(t, false);
    free(out), free(in);
    *kl = st ? NAN : s / (double)n;
    *recon = st ? NAN : nats - *kl;
}

/* what the trainer reports, on stderr, in train.log and metrics.csv */
typedef struct {
    run_files *rf;
    bool quiet;
    loom_model *m;
    uint64_t seed;
    int rank;      /* of a data-parallel run: only rank 0 reports */
    long kill_at;  /* test hook LOOM_FAULT_KILL_RANK */
    bool report; /* refresh report.html at every checkpoint */
    loom_trainer *t;
    double last_train, last_valid; /* the last logged values, for --json */
} train_view;

/* Test hook (docs/distributed.md), only in the test build: LOOM_FAULT_KILL_RANK=R:K
 * makes rank R kill itself with SIGKILL after step K, a rank that dies. */
static long fault_kill_rank(int rank) {
#ifdef LOOM_TEST_HOOKS
    const char *v = getenv("LOOM_FAULT_KILL_RANK");
    char *end;
    if (v && *v && strtol(v, &end, 10) == rank && *end == ':') return strtol(end + 1, NULL, 10);
#else
    (void)rank;
#endif
    return 0;
}

static void on_event(void *user, const loom_train_event *ev) {
    train_view *v = user;
    run_files *rf = v->rf;
    if (v->kill_at && ev->step == v->kill_at && ev->kind != LOOM_TRAIN_SAMPLE) raise(SIGKILL);
    if (v->rank) return;
    /* a sequence model's examples are sequences */
    const char *rate = loom_frames(&v->m->cfg) > 1 ? "sequences/s" : "images/s";
    switch (ev->kind) {
    case LOOM_TRAIN_SKIP:
        note(rf, "%s", ev->msg);
        break;
    case LOOM_TRAIN_LOG: {
        const double bpd = ev->train_bpd[0], vb = ev->valid_bpd[0];
        v->last_train = bpd;
        if (isfinite(vb)) v->last_valid = vb;
        if (rf->gan) fprintf(rf->csv, "%ld,,", ev->step); /* no bits/dim: the losses are at the end */
        else fprintf(rf->csv, "%ld,%.6f,", ev->step, bpd);
        if (isfinite(vb) && !ev->valid_subset) fprintf(rf->csv, "%.6f", vb);
        fprintf(rf->csv, ",%.1f,%.1f", ev->images_per_s, rf->wall0 + ev->wall_s);
        if (!rf->old_csv) {
            fputc(',', rf->csv);
            if (isfinite(vb) && ev->valid_subset) fprintf(rf->csv, "%.6f", vb);
            fprintf(rf->csv, ",%.6g,", ev->lr);
            if (isfinite(ev->grad_norm[0])) fprintf(rf->csv, "%.6g", ev->grad_norm[0]);
            fprintf(rf->csv, ",%s", ev->best ? "best" : "");
            if (rf->terms) {
                double kl = NAN, rec = NAN;
                const loom_train_opts *o = loom_trainer_opts(v->t);
                const size_t nv = loom_trainer_nvalid(v->t);
                const size_t n = ev->valid_subset && o->eval_limit < nv ? o->eval_limit : nv;
                const loom_config *c = &v->m->cfg;
                if (isfinite(vb) && n) valid_terms(v->t, n, vb * nats_per_bit_dim(c), &kl, &rec);
                fputc(',', rf->csv);
                if (isfinite(kl)) fprintf(rf->csv, "%.4f", kl);
                fputc(',', rf->csv);
                if (isfinite(rec)) fprintf(rf->csv, "%.4f", rec);
            }
            for (size_t k = 0; rf->train_terms && k < ev->nterms; k++) { /* train_<term> */
                fputc(',', rf->csv);
                if (isfinite(ev->terms[k])) fprintf(rf->csv, "%.4f", ev->terms[k]);
            }
        }
        if (rf->gan) /* the trainer reports nats as bits (/ log 2): back to nats per image */
            fprintf(rf->csv, ",%.6f,%.6f", ev->train_bpd[0] * log(2.0), ev->train_bpd[1] * log(2.0));
        const double adv_g = rf->adv ? loom_adv_take(rf->adv) : NAN;
        if (rf->adv) {
            fputc(',', rf->csv);
            if (isfinite(adv_g)) fprintf(rf->csv, "%.6f", adv_g);
            fprintf(rf->csv, ",%.6f", ev->train_bpd[1] * log(2.0));
        }
        fputc('\n', rf->csv);
        fflush(rf->csv);
        if (rf->gan) {
            say(rf, "step %ld/%ld loss_g %.4f loss_d %.4f nats/image (d: 2 log 2 = 1.386 at chance) %.1f images/s eta %.0fs",
                ev->step, ev->steps, ev->train_bpd[0] * log(2.0), ev->train_bpd[1] * log(2.0), ev->images_per_s,
                ev->eta_s);
        } else if (v->m->ops->labelled) { /* a classifier: its loss is the labels' cross-entropy */
            const double nats = nats_per_bit_dim(&v->m->cfg);
            char vbuf[80] = "";
            if (isfinite(vb))
                snprintf(vbuf, sizeof vbuf, " valid %.4f%s", vb * nats, ev->valid_subset ? " (subset)" : "");
            say(rf, "step %ld/%ld cross-entropy train %.4f%s nats/image %.1f images/s eta %.0fs", ev->step, ev->steps,
                bpd * nats, vbuf, ev->images_per_s, ev->eta_s);
        } else {
            char vbuf[80] = "", abuf[96] = "";
            /* convlstm --loss l1 or mse: its loss per pixel, not in bits (metrics.csv keeps
             * every model's loss / log 2 per pixel) */
            const int fl = v->m->cfg.frame_loss;
            const char *unit = fl == LOOM_FRAME_L1 ? "L1 error/pixel" : fl ? "squared error/pixel" : "bits/dim";
            const double u = fl ? log(2.0) : 1.0;
            if (isfinite(vb)) snprintf(vbuf, sizeof vbuf, " valid %.4f %s%s", vb * u, unit, ev->valid_subset ? " (subset)" : "");
            if (rf->adv)
                snprintf(abuf, sizeof abuf, " loss_g %.4f loss_d %.4f nats/image", adv_g, ev->train_bpd[1] * log(2.0));
            say(rf, "step %ld/%ld train %.4f %s%s%s %.1f %s eta %.0fs", ev->step, ev->steps, bpd * u, unit, vbuf, abuf,
                ev->images_per_s, rate, ev->eta_s);
        }
        break;
    }
    case LOOM_TRAIN_STEP:
        if (rf->tty) {
            int w = 30, done = (int)(w * ev->step / ev->steps);
            fprintf(stderr, "\r[%.*s%*s] step %ld/%ld loss %.3f bits/dim %.0f %s eta %.0fs ", done,
                    "##############################", w - done, "", ev->step, ev->steps, ev->loss_bpd,
                    ev->images_per_s, rate, ev->eta_s);
        }
        break;
    case LOOM_TRAIN_SAMPLE: {
        char name[64];
        snprintf(name, sizeof name, "samples_%06ld.png", ev->step);
        write_samples(v->m, join(rf->dir, name), 16, v->seed);
        break;
    }
    case LOOM_TRAIN_CHECKPOINT:
        if (v->report) {
            loom_error e;
            /* a report that cannot be written does not stop the training */
            if (cli_report_write(rf->dir, NULL, &e)) note(rf, "report not written: %s", e.msg);
        }
        break;
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
    if (strcmp(data, "fashion-mnist") == 0 || strcmp(data, "moving-fashion-mnist") == 0 ||
        strcmp(data, "fashion-mnist-scenes") == 0 || data[0] == '/') {
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
    "--model rowlstm|diagbilstm|grupixel|draw|rae|convlstm|renet|reseg|gran [--layers L] [--hidden H] [--cell C] [--zdim Z]\n"
    "                  [--data D [--gray]] [--steps N | --epochs E] [--batch B]\n"
    "                  [draw: --steps-draw T --read-n N --write-n N --attention on|off] [rae: --variational]\n"
    "                  [rae, draw: --adversarial W --adversarial-on recon|samples|both --lr-d F --disc D --mbstd G]\n"
    "                  [gran: --steps-draw T --zdim Z --d-steps K --lr-d F --batchnorm on|off --disc gran_d|renet_d --mbstd G]\n"
    "                  [convlstm: --frames-in K --frames-out M --kernel K --patch P --output O --peephole --feedback --loss L] [renet, reseg: --patch P]\n"
    "                  [--lr F] [--seed S] [--threads T] [--gemm openblas|onednn] [--precision fp32|bf16]\n"
    "                  --out RUN_DIR\n"
    "       loom train --resume RUN_DIR [--steps N | --epochs E] [--threads T] [--gemm openblas|onednn]\n"
    "       mpirun -np R loom train ...   (or srun: data parallel over R ranks, docs/distributed.md)";

int cmd_train(int argc, char **argv) {
    /* Under mpirun or srun: one rank of a data-parallel run. The set-up is the
     * same on every rank, so the others keep quiet until training starts
     * (one error line, not R), and only rank 0 writes the run's files. */
    const loom_comm *comm = NULL;
    int local_ranks = 1, rank = 0, saved_stderr = -1;
    const int launched = cli_launcher_ranks();
#ifdef LOOM_HAVE_MPI
    if (launched) {
        comm = cli_mpi_start(&local_ranks);
        rank = comm->rank;
        if (rank) {
            fflush(stderr);
            saved_stderr = dup(2);
            cli_die_delay_ms = 1000; /* rank 0 says why; this rank's exit must not cut it off */
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 2), close(null);
        }
        if (comm->size != launched)
            cli_die(2, "the launcher started %d processes but MPI sees %d (under srun: srun --mpi=pmix)",
                    launched, comm->size);
    }
#else
    if (launched > 1)
        cli_die(2, "started as one of %d processes (mpirun or srun), but this loom is built without MPI "
                "(install libopenmpi-dev and rebuild: make MPI=1)", launched);
#endif
    const int nranks = comm ? comm->size : 1;
    loom_train_opts o;
    loom_train_opts_default(&o);
    loom_config cfg = {.model = "rowlstm", .layers = 4, .hidden = 32};
    const char *model = "rowlstm", *out = NULL, *resume = NULL, *data = o.data, *cell = NULL, *resize = NULL;
    size_t layers = cfg.layers, hidden = cfg.hidden, zdim = 0;
    /* ranks on one machine share its cores */
    size_t threads = (size_t)LOOM_MAX(1, cli_default_threads() / local_ranks);
    size_t epochs = 0, log_every = 50, multiscale = 0;
    const char *gemm = NULL, *precision = NULL;
    double time_limit = 0;
    bool conditional = false, quiet = false, no_report = false, json = false;
    cli_draw_flags df = {0};
    long d_steps = 1;
    double lr_d = 0;
    size_t mbstd = 0;
    double adversarial = 0;
    const char *batchnorm = NULL, *adversarial_on = NULL, *disc = NULL;
    size_t frames_in = 10, frames_out = 10, kernel = 5, patch = 0; /* patch: convlstm 4, renet 2, reseg 4 */
    const char *output = NULL, *frame_loss = NULL;
    bool peephole = false, feedback = false;
    cli_arg args[] = {
        {"output", ARG_STR, &output, 0, 0, "convlstm: per-pixel output, bernoulli (default: cross-entropy on intensities) or softmax256 (256 values: the exact NLL)", false},
        {"peephole", ARG_FLAG, &peephole, 0, 0, "convlstm: peephole terms w_c . c in the i, f, o gates (Shi et al. 2015; default off)", false},
        {"loss", ARG_STR, &frame_loss, 0, 0, "convlstm: xent (default: Bernoulli means, the cross-entropy), or intensities z trained with l1 (|z - x|) or mse ((z - x)^2)", false},
        {"feedback", ARG_FLAG, &feedback, 0, 0, "convlstm: the forecaster reads its own previous prediction, the last given frame first (default: nothing, as Shi et al.)", false},
        {"frames-in", ARG_SIZE, &frames_in, 1, 100, "convlstm: frames the encoder reads (default 10)", false},
        {"frames-out", ARG_SIZE, &frames_out, 1, 100, "convlstm: frames the forecaster predicts (default 10)", false},
        {"kernel", ARG_SIZE, &kernel, 1, 15, "convlstm: convolution kernel, odd (default 5)", false},
        {"patch", ARG_SIZE, &patch, 1, 16, "convlstm: space-to-depth patch size (default 4); renet, reseg: patches of P x P pixels (default 2; reseg 4)", false},
        {"model", ARG_STR, &model, 0, 0, "model: rowlstm (default), diagbilstm, grupixel, draw, rae, convlstm, renet (a classifier), reseg (a segmenter) or gran (an adversarial generator)", false},
        {"steps-draw", ARG_SIZE, &df.steps_draw, 1, 1024, "draw: glimpses T (default 64); gran: canvas updates T (default 3)", false},
        {"d-steps", ARG_LONG, &d_steps, 1, 1000, "gran: discriminator updates per generator update (default 1)", false},
        {"lr-d", ARG_DOUBLE, &lr_d, 1e-12, 10, "gran: the discriminator's Adam learning rate (default: 4 --lr, with --disc renet_d 20 --lr); --adversarial: (default: --lr)", false},
        {"adversarial", ARG_DOUBLE, &adversarial, 1e-9, 1e6, "rae, draw: add a discriminator on the reconstructions and samples, its loss weighted W against the model's own (nats per image; docs/rae.md)", false},
        {"adversarial-on", ARG_STR, &adversarial_on, 0, 0, "--adversarial: what the discriminator judges, recon, samples or both (default: both, recon for a rae without --variational)", false},
        {"batchnorm", ARG_STR, &batchnorm, 0, 0, "gran: batch normalisation in the generator, on (default) or off", false},
        {"disc", ARG_STR, &disc, 0, 0, "gran, --adversarial: the discriminator, gran_d (convolutional, default) or renet_d (recurrent: LSTM sweeps over 2x2 patches; docs/gran.md)", false},
        {"mbstd", ARG_SIZE, &mbstd, 0, 8, "gran, --adversarial: the discriminator's minibatch standard deviation over groups of N images, 0 = off (default)", false},
        {"read-n", ARG_SIZE, &df.read_n, 1, 4096, "draw: read grid N x N (default 2)", false},
        {"write-n", ARG_SIZE, &df.write_n, 1, 4096, "draw: write grid N x N (default 5)", false},
        {"attention", ARG_STR, &df.attention, 0, 0, "draw: on (default) or off", false},
        {"variational", ARG_FLAG, &df.variational, 0, 0, "rae: a Gaussian code with a KL term (a VAE)", false},
        {"layers", ARG_SIZE, &layers, 1, 64, "recurrent layers (default 4; grupixel 1)", false},
        {"hidden", ARG_SIZE, &hidden, 1, 4096, "hidden units h; feature maps are 2h (default 32)", false},
        {"cell", ARG_STR, &cell, 0, 0, "grupixel: gru (default), lstm or rnn; renet: lstm (default), gru or rnn", false},
        {"zdim", ARG_SIZE, &zdim, 1, 4096, "grupixel: noise vector z (32); draw: latent per glimpse (100); rae: code (32)", false},
        {"conditional", ARG_FLAG, &conditional, 0, 0, "class-conditional (labels from the data)", false},
        {"multiscale", ARG_SIZE, &multiscale, 1, 4096,
         "rowlstm, diagbilstm: model the image subsampled to S rows, then the full image given it", false},
        {"data", ARG_STR, &data, 0, 0, "fashion-mnist (default), fashion-mnist-scenes (reseg's default) or a directory of IDX or PNG files; convlstm: moving-fashion-mnist (default), FILE.npy or a folder of PNG sequences", false},
        {"resize", ARG_STR, &resize, 0, 0, "HxW: centre-crop every image to this aspect and resample it (Lanczos-3, pixman); the run remembers it", false},
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
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores; per rank: cores / ranks on the machine)", false},
        {"gemm", ARG_STR, &gemm, 0, 0, "matrix products: openblas or onednn (default: the faster for the model)", false},
        {"precision", ARG_STR, &precision, 0, 0, "training's matrix products: fp32 (default) or bf16 (oneDNN, AVX512_BF16); the run remembers it", false},
        {"time-limit", ARG_DOUBLE, &time_limit, 0, 1e9, "stop (and save) after this many seconds of training", false},
        {"ema", ARG_DOUBLE, &o.ema, 0, 0.999999999, "keep a moving average of the weights with this decay (e.g. 0.999) for validation, eval and sampling; 0 = off (default)", false},
        {"no-report", ARG_FLAG, &no_report, 0, 0, "do not write report.html at every checkpoint", false},
        {"json", ARG_FLAG, &json, 0, 0, "at the end, one JSON object on stdout (the run's last numbers)", false},
        {"quiet", ARG_FLAG, &quiet, 0, 0, "only errors on stderr (train.log still gets everything)", false},
        {"out", ARG_STR, &out, 0, 0, "run directory to create (with its parents)", false},
        {"resume", ARG_STR, &resume, 0, 0, "continue the run in this directory", false},
    };
    const size_t nargs = sizeof args / sizeof args[0];
    const char *pos[1];
    int npos;
    cli_parse("train", usage_text, argc, argv, args, nargs, pos, 0, &npos);
    const bool rnn_d = disc && strcmp(disc, "renet_d") == 0; /* --disc renet_d: the recurrent discriminator */
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
        static const char *const allowed[] = {"resume", "steps", "epochs", "threads", "quiet", "log-every", "time-limit",
                                              "no-report", "json", "gemm"};
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
        const bool gran = strcmp(cfg.model, "gran") == 0;
        /* gran's flags, and whether --adversarial takes each too */
        static const struct { const char *name; bool adv; } gflags[] = {
            {"d-steps", false}, {"lr-d", true}, {"mbstd", true}, {"batchnorm", false}, {"disc", true}};
        const bool adv = adversarial > 0;
        if (adv && strcmp(cfg.model, "rae") != 0 && strcmp(cfg.model, "draw") != 0)
            cli_die(2, "--adversarial: only rae and draw take it (a Bernoulli output with a likelihood), not %s", model);
        for (size_t k = 0; k < sizeof gflags / sizeof gflags[0]; k++)
            if (!gran && !(adv && gflags[k].adv) && cli_find(args, nargs, gflags[k].name)->seen)
                cli_die(2, "--%s: only --model gran%s takes it (model %s)", gflags[k].name,
                        gflags[k].adv ? " or --adversarial" : "", model);
        if (disc && strcmp(disc, "gran_d") != 0 && strcmp(disc, "renet_d") != 0)
            cli_die(2, "--disc %s: gran_d or renet_d", disc);
        if (rnn_d && mbstd) cli_die(2, "--mbstd: only the gran_d discriminator has it, not --disc renet_d");
        if (adv && precision && strcmp(precision, "fp32") != 0)
            cli_die(2, "--precision %s: an adversarial run trains in fp32 only", precision);
        if (adversarial_on && !adv) cli_die(2, "--adversarial-on: only with --adversarial W");
        if (adv) o.adversarial = adversarial, o.model_lr[1] = lr_d; /* 0: --lr */
        if (gran) { /* docs/gran.md: defaults that train stably on Fashion-MNIST */
            const char *other = df.read_n ? "read-n" : df.write_n ? "write-n" : df.attention ? "attention" :
                                df.variational ? "variational" : NULL;
            if (other) cli_die(2, "--%s: model gran does not take it", other);
            if (df.layers_seen) cli_die(2, "--layers: model gran has a fixed depth (two convolutions each way)");
            if (conditional) cli_die(2, "--conditional: gran is unconditional");
            if (precision && strcmp(precision, "fp32") != 0) cli_die(2, "--precision %s: gran trains in fp32 only", precision);
            cfg.layers = 1;
            if (!df.hidden_seen) cfg.hidden = 32;
            cfg.zdim = zdim ? zdim : 100;
            cfg.steps_draw = df.steps_draw ? df.steps_draw : 3;
            if (batchnorm && strcmp(batchnorm, "on") != 0 && strcmp(batchnorm, "off") != 0)
                cli_die(2, "--batchnorm %s: give on or off", batchnorm);
            cfg.batchnorm = !batchnorm || strcmp(batchnorm, "on") == 0;
            if (!cli_find(args, nargs, "lr")->seen) o.lr = 1e-4;
            if (!cli_find(args, nargs, "beta1")->seen) o.beta1 = 0.5;
            if (!cli_find(args, nargs, "clip")->seen) o.clip = 0;
            if (!cli_find(args, nargs, "batch")->seen) o.batch = 64;
            if (!cli_find(args, nargs, "valid")->seen) o.valid = 0; /* no likelihood to validate */
            o.d_steps = d_steps;
            /* two time-scale: the discriminator 4x faster; the recurrent one, which stays at chance
             * at 4x (docs/gran.md), 20x */
            o.model_lr[1] = lr_d ? lr_d : (rnn_d ? 20 : 4) * o.lr;
        } else {
            cli_draw_config(&cfg, &df);
        }
        if (adv) { /* what the discriminator judges: samples only of a model with a prior */
            const loom_model_ops *mo = loom_model_find(cfg.model);
            const char *no_prior = mo->cannot_sample ? mo->cannot_sample(&cfg) : NULL;
            o.adversarial_on = adversarial_on ? loom_adv_on_parse(adversarial_on) :
                               no_prior ? LOOM_ADV_RECON : LOOM_ADV_RECON | LOOM_ADV_SAMPLES;
            if (!o.adversarial_on) cli_die(2, "--adversarial-on %s: recon, samples or both", adversarial_on);
            if ((o.adversarial_on & LOOM_ADV_SAMPLES) && no_prior)
                cli_die(2, "--adversarial-on %s: %s", adversarial_on, no_prior);
        }
        if (multiscale && strcmp(cfg.model, "rowlstm") != 0 && strcmp(cfg.model, "diagbilstm") != 0)
            cli_die(2, "--multiscale: only --model rowlstm or diagbilstm takes it (model %s)", cfg.model);
        const bool video = strcmp(model, "convlstm") == 0;
        static const char *const vflags[] = {"frames-in", "frames-out", "kernel", "output", "peephole", "feedback", "loss"};
        for (size_t k = 0; k < 7; k++)
            if (!video && cli_find(args, nargs, vflags[k])->seen)
                cli_die(2, "--%s: only --model convlstm takes it (model %s)", vflags[k], model);
        if (video) {
            cfg.frames_in = frames_in, cfg.frames_out = frames_out, cfg.kernel = kernel, cfg.patch = patch ? patch : 4;
            if (output && strcmp(output, "softmax256") != 0 && strcmp(output, "bernoulli") != 0)
                cli_die(2, "--output: '%s' is not bernoulli or softmax256", output);
            cfg.softmax256 = output && strcmp(output, "softmax256") == 0, cfg.peephole = peephole;
            cfg.feedback = feedback;
            if (frame_loss && (cfg.frame_loss = loom_frame_loss_parse(frame_loss)) < 0)
                cli_die(2, "--loss: '%s' is not xent, l1 or mse", frame_loss);
            if (!cli_find(args, nargs, "layers")->seen) cfg.layers = 2;
            if (!cli_find(args, nargs, "hidden")->seen) cfg.hidden = 64;
            if (!cli_find(args, nargs, "data")->seen) data = "moving-fashion-mnist";
            /* a sequence's NLL costs ~1/3 of a training step: keep periodic validation short */
            if (!cli_find(args, nargs, "eval-limit")->seen) o.eval_limit = 100;
            if (!cli_find(args, nargs, "valid")->seen) o.valid = 256;
            if (conditional) cli_die(2, "--conditional: convlstm is not class-conditional");
        }
        cli_renet_config(&cfg, cell, patch, df.layers_seen, df.hidden_seen);
        /* the segmenter's data by default: the scenes */
        if (strcmp(cfg.model, "reseg") == 0 && !cli_find(args, nargs, "data")->seen) data = "fashion-mnist-scenes";
        absolute_data(o.data, sizeof o.data, data);
        if (resize) {
            char *x = NULL;
            unsigned long rh = strspn(resize, "0123456789") ? strtoul(resize, &x, 10) : 0, rw = 0;
            if (x && (*x == 'x' || *x == 'X') && strspn(x + 1, "0123456789") == strlen(x + 1) && x[1])
                rw = strtoul(x + 1, NULL, 10);
            if (!rh || !rw || rh > 4096 || rw > 4096)
                cli_die(2, "--resize %s: give HEIGHTxWIDTH, each 1..4096 (e.g. --resize 32x32)", resize);
            o.resize_h = rh, o.resize_w = rw;
        }
    }

    loom_images all;
    char data_note[1024] = ""; /* what loading and --gray changed, for the log */
    if (cfg.frames_out) { /* a sequence model: sequences of frames_in + frames_out frames */
        st = loom_sequences_load(&all, o.data, "train", loom_frames(&cfg), &err);
        if (st) cli_die_err(st, &err);
    } else {
        st = loom_images_load_resized(&all, o.data, "train", o.resize_h, o.resize_w, &err);
        if (st) cli_die_err(st, &err);
        cli_data_prepare(&all, o.data, o.gray, data_note, sizeof data_note);
    }
    if (resume) cli_check_data(&all, o.data, &cfg);
    if (!resume) {
        cfg.height = all.h, cfg.width = all.w, cfg.channels = all.c, cfg.multiscale = multiscale;
        if (loom_model_find(cfg.model)->labelled) { /* a classifier: the labels are its targets */
            if (conditional) cli_die(2, "--conditional: model %s is a classifier (it reads the labels anyway)", cfg.model);
            if (!all.labels) cli_die(2, "%s: model %s is a classifier and needs labels (IDX label files or class sub-directories)",
                                     o.data, cfg.model);
            cfg.nclasses = all.nclasses;
        }
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
        loom_train_model_spec spec[2] = {{.role = "model", .cfg = cfg}, {.role = "disc", .cfg = cfg}};
        size_t nspec = 1;
        if (strcmp(cfg.model, "gran") == 0) { /* the generator and its discriminator */
            spec[0].role = "gen";
            snprintf(spec[1].cfg.model, sizeof spec[1].cfg.model, "gran_d");
            spec[1].cfg.zdim = 0, spec[1].cfg.steps_draw = 0, spec[1].cfg.batchnorm = 0, spec[1].cfg.mbstd = mbstd;
            nspec = 2;
        } else if (o.adversarial > 0) { /* the autoencoder and a discriminator on its reconstructions */
            spec[1].role = "disc";
            spec[1].cfg = (loom_config){.model = "gran_d", .height = cfg.height, .width = cfg.width,
                                        .channels = cfg.channels, .layers = 1, .hidden = 32, .mbstd = mbstd};
            nspec = 2;
        }
        if (nspec == 2 && rnn_d) /* one layer of LSTM sweeps over 2x2 patches */
            spec[1].cfg = (loom_config){.model = "renet_d", .height = cfg.height, .width = cfg.width,
                                        .channels = cfg.channels, .layers = 1, .hidden = spec[1].cfg.hidden,
                                        .cell = "lstm", .patch = 2};
        st = loom_trainer_create(&t, &o, spec, nspec, (int)threads, &err);
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
    if ((st = loom_trainer_set_comm(t, comm, &err))) cli_die_err(st, &err);
    if (resume && target == ts->step) {
        fprintf(stderr, "loom: %s is complete at step %ld of %ld; nothing to do (give a larger --steps to train on)\n",
                resume, ts->step, target);
        loom_trainer_free(t);
        loom_images_free(&all);
#ifdef LOOM_HAVE_MPI
        cli_mpi_end();
#endif
        return 0;
    }
    if ((st = loom_trainer_set_steps(t, target, &err))) cli_die_err(st, &err);
    if (!resume && (st = loom_trainer_start(t, out, &err))) cli_die_err(st, &err);
    o = *loom_trainer_opts(t);
    loom_model *m = loom_trainer_model(t, 0);
    if (gemm || o.precision == LOOM_PREC_FP32) cli_gemm(m, gemm, NULL, NULL); /* bf16: oneDNN already */
    loom_gan *gan = NULL; /* an adversarial run: the GAN objective (src/train/gan.c) */
    if (strcmp(cfg.model, "gran") == 0) {
        if (loom_trainer_nmodels(t) != 2) cli_die(2, "%s: a gran run has a generator and a discriminator", out);
        loom_model *dm = loom_trainer_model(t, 1);
        cli_gemm(dm, gemm, NULL, NULL);
        st = loom_gan_create(&gan, m, dm, o.batch, o.d_steps ? o.d_steps : 1, &err);
        if (st) cli_die_err(st, &err);
        loom_trainer_set_stages(t, 2, loom_gan_stage, gan);
    }
    loom_adv *adv = NULL; /* an autoencoder with a discriminator on its reconstructions (src/train/gan.c) */
    if (o.adversarial > 0) {
        if (loom_trainer_nmodels(t) != 2) cli_die(2, "%s: an adversarial run has a model and a discriminator", out);
        loom_model *dm = loom_trainer_model(t, 1);
        cli_gemm(dm, gemm, NULL, NULL);
        if ((st = loom_adv_create(&adv, m, dm, o.batch, o.adversarial, o.adversarial_on, &err))) cli_die_err(st, &err);
        loom_trainer_set_stages(t, 2, loom_adv_stage, adv);
    }

    run_files rf = {.dir = out, .tty = !quiet && isatty(2) && rank == 0, .quiet = quiet};
    train_view view = {.rf = &rf, .quiet = quiet, .m = m, .seed = o.seed, .rank = rank,
                       .kill_at = fault_kill_rank(rank), .report = !no_report, .t = t,
                       .last_train = NAN, .last_valid = NAN};
    if (rank) { /* set up as rank 0 was: from here on a rank's own failure is worth its line */
        fflush(stderr);
        if (saved_stderr >= 0) dup2(saved_stderr, 2), close(saved_stderr);
        cli_die_delay_ms = 0;
        goto train;
    }
    rf.log = fopen(join(out, "train.log"), "a");
    struct stat sb;
    /* empty: a run killed before its header reached the disk gets it now */
    bool new_csv = stat(join(out, "metrics.csv"), &sb) != 0 || sb.st_size == 0;
    char head[1024] = ""; /* the header of the run's metrics.csv */
    if (!new_csv) { /* a run from before the extra columns keeps its five */
        FILE *f = fopen(join(out, "metrics.csv"), "r");
        char line[512];
        if (f && fgets(head, sizeof head, f)) head[strcspn(head, "\r\n")] = 0;
        /* wall time goes on from the last row's (the checkpoint keeps no clock, so
         * that a resumed run's checkpoint is byte-identical to an uninterrupted one's) */
        while (f && fgets(line, sizeof line, f)) {
            const char *c = line;
            for (int k = 0; k < 4 && c; k++) c = strchr(c, ','), c = c ? c + 1 : NULL;
            if (c && *c != ',' && *c != '\n') rf.wall0 = strtod(c, NULL);
        }
        if (f) fclose(f);
        rf.old_csv = strcmp(head, CSV_OLD_HEADER) == 0;
        rf.terms = strstr(head, CSV_TERMS) != NULL; /* a run keeps its columns */
    }
    rf.csv = fopen(join(out, "metrics.csv"), "a");
    if (!rf.log || !rf.csv) cli_die(1, "%s: cannot write the run's log files: %s", out, strerror(errno));
    /* a composite loss (a KL and a reconstruction) gets a column per term */
    const bool composite = loom_model_out_floats(m) && strcmp(cli_nll_kind(m, 0), "elbo") == 0;
    rf.terms = composite && (new_csv || rf.terms);
    rf.gan = gan != NULL, rf.adv = adv;
    /* the training loss's terms, a column each after those (a run that began
     * without them, from before they existed, keeps its columns); an
     * adversarial run has its own two (loss_g, loss_d) instead */
    const char *const *tnames = NULL;
    const size_t nterms = rf.gan || rf.adv ? 0 : loom_trainer_terms(t, &tnames);
    char tcols[LOOM_MAX_RUN_TERMS * (LOOM_TERM_NAMELEN + 8)] = "";
    for (size_t k = 0, len = 0; k < nterms; k++)
        len += (size_t)snprintf(tcols + len, sizeof tcols - len, ",train_%s", tnames[k]);
    rf.train_terms = nterms && !rf.old_csv && (new_csv || strstr(head, tcols));
    if (new_csv)
        fprintf(rf.csv, "%s%s%s%s\n", CSV_HEADER, rf.terms ? CSV_TERMS : "", rf.train_terms ? tcols : "",
                rf.gan || rf.adv ? CSV_GAN : ""), fflush(rf.csv);
    if (resume && !rf.old_csv) /* a marker row: the curves have a seam here */
        fprintf(rf.csv, "%ld,,,,%.1f,,,,resume%s%.*s%s\n", ts->step, rf.wall0, rf.terms ? ",," : "",
                rf.train_terms ? (int)nterms : 0, ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,", rf.gan || rf.adv ? ",," : ""),
            fflush(rf.csv);

    say(&rf, "%s run %s: model %s %zux%zu layers %zu hidden %zu classes %d, %zu parameters; "
        "%zu train / %zu valid %s; batch %zu, steps %ld -> %ld, %zu thread%s, products %s %s (OpenBLAS core %s)",
        resume ? "resuming" : "new", out, cfg.model, cfg.height, cfg.width, cfg.layers, cfg.hidden,
        cfg.nclasses, m->nfloats, ntrain, loom_trainer_nvalid(t), loom_frames(&cfg) > 1 ? "sequences" : "images",
        o.batch, ts->step, o.steps, threads,
        threads == 1 ? "" : "s", loom_gemm_backend_name((loom_gemm_backend)m->gemm),
        loom_precision_name((loom_precision)o.precision), loom_blas_core());
    if (nranks > 1) {
        const size_t u = loom_micro_shard(&cfg, o.batch), K = (o.batch + u - 1) / u;
        say(&rf, "data parallel: %d ranks x %zu threads (%d on this machine), %zu micro-shards of %zu images "
            "per batch, %zu to %zu per rank", nranks, threads, local_ranks, K, u, K / (size_t)nranks,
            (K + (size_t)nranks - 1) / (size_t)nranks);
    }
    if (*data_note) note(&rf, "%s", data_note);
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
    if (strcmp(cfg.model, "grupixel") == 0)
        say(&rf, "cell %s, zdim %zu: z ~ N(0, I) fresh per image and step; validation uses one fixed z "
            "(an upper bound on the NLL, docs/grupixel.md)", cfg.cell, cfg.zdim);

train:
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* past a file size limit (ulimit -f), write() should fail with EFBIG and
     * reach the checkpoint writer's error, not kill the process */
    signal(SIGXFSZ, SIG_IGN);
    const double run_t0 = cli_now();
    const long step0 = ts->step;
    loom_train_hooks hooks = {.log = on_event, .should_stop = should_stop, .user = &view,
                              .log_every = log_every, .time_limit = time_limit};
    loom_train_stop why;
    st = loom_trainer_run(t, out, &hooks, &why, &err);
    if (st && rank) cli_die_err(st, &err);
    if (st) {
        if (rf.log) fprintf(rf.log, "step %ld: %s\n", ts->step, err.msg);
        if (rf.tty) fputs("\r\033[K", stderr);
        cli_die_err(st, &err);
    }
#ifdef LOOM_HAVE_MPI
    if (rank) {
        loom_trainer_free(t);
        loom_images_free(&all);
        cli_mpi_end();
        return 0;
    }
    if (nranks > 1 && ts->step > step0) {
        const cli_mpi_stats ms = cli_mpi_get_stats();
        const double steps_run = (double)(ts->step - step0);
        say(&rf, "data parallel: rank 0 sent %.3f MB per step; %.1f ms of %.1f ms per step in MPI collectives "
            "(waiting for the other ranks included)", ms.bytes_sent / steps_run / 1e6, 1e3 * ms.seconds / steps_run,
            1e3 * (cli_now() - run_t0) / steps_run);
    }
#else
    (void)run_t0, (void)step0, (void)nranks;
#endif
    if (why == LOOM_TRAIN_STOPPED && !stop_requested) {
        note(&rf, "stopped by a signal to another rank at step %ld; checkpoint saved, resume with: loom train --resume %s",
            ts->step, out);
    } else if (why == LOOM_TRAIN_STOPPED) {
        note(&rf, "stopped by signal %d at step %ld; checkpoint saved, resume with: loom train --resume %s",
            (int)stop_requested, ts->step, out);
    } else {
        /* a model that cannot sample (a plain autoencoder) has no samples.png to announce */
        const bool sampled = !(m->ops->cannot_sample && m->ops->cannot_sample(&m->cfg));
        char what[4200] = "";
        loom_trainer_use_average(t, true);
        write_samples(m, join(out, "samples.png"), 64, o.seed);
        loom_trainer_use_average(t, false);
        if (sampled) snprintf(what, sizeof what, " and samples %s", join(out, "samples.png"));
        if (view.report) {
            loom_error e;
            if (cli_report_write(out, NULL, &e)) note(&rf, "report not written: %s", e.msg);
        }
        if (why == LOOM_TRAIN_OUT_OF_TIME)
            note(&rf, "time limit: stopped at step %ld of %ld; checkpoint %s%s saved, "
                "resume with: loom train --resume %s", ts->step, o.steps, join(out, "checkpoint.safetensors"),
                what, out);
        else
            say(&rf, "done: step %ld, checkpoint %s%s%s", ts->step, join(out, "checkpoint.safetensors"),
                sampled ? ", samples " : "", sampled ? join(out, "samples.png") : "");
    }
    if (json) {
        cli_json j; /* the validation's kind: what the model's NLL is */
        cli_json_begin(&j, cfg.model, ts->step, join(out, "checkpoint.safetensors"), cli_nll_kind(m, 0));
        cli_json_int(&j, "steps", o.steps);
        cli_json_str(&j, "stopped", why == LOOM_TRAIN_STOPPED ? "signal" : why == LOOM_TRAIN_OUT_OF_TIME ? "time-limit" : "done");
        cli_json_fixed(&j, "train_bits_per_dim", view.last_train, 6);
        cli_json_fixed(&j, "valid_bits_per_dim", view.last_valid, 6);
        cli_json_str(&j, "run", out);
        cli_json_end(&j);
    }
    fclose(rf.log), fclose(rf.csv);
    loom_trainer_free(t);
    loom_gan_free(gan);
    loom_adv_free(adv);
    loom_images_free(&all);
#ifdef LOOM_HAVE_MPI
    cli_mpi_end();
#endif
    return 0;
}
