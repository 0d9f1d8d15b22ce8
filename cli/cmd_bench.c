/* loom bench: training throughput, forward and sampling cost, peak memory,
 * on random images (speed does not depend on the pixel values). */
#include "cli.h"

#include "gemm.h"
#include "optim/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the whole process (all threads): on a machine shared with
 * other jobs, wall time measures the neighbours too; CPU time much less so */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --peak: GFLOP/s of one large square product (n x n x n) on one thread in
 * each mode this machine has, the per-core limit the models' products are
 * measured against (docs/performance.md). Per CPU second, so that a loaded
 * machine's waiting is not counted; wall time beside it. */
typedef struct {
    const char *tag;
    loom_gemm_backend be;
    loom_precision prec;
    double gflops, gflops_wall; /* 0: not available here */
    const char *why;            /* why not, or NULL */
} peak_mode;

/* one product in mode p: the back-end itself, not loom_gemm, which may hand
 * a product this large to the other back-end (gemm.c); bf16 inputs rounded
 * before, as the weights' shadow is */
static void peak_call(const peak_mode *p, size_t n, const float *a, const float *b, const uint16_t *ab,
                      const uint16_t *bb, float *c) {
#ifdef LOOM_HAVE_DNNL
    if (p->be == LOOM_GEMM_ONEDNN) {
        const bool bf = p->prec == LOOM_PREC_BF16;
        loom_gemm_onednn(false, false, n, n, n, 1.0f, bf ? (const void *)ab : a, n, bf ? (const void *)bb : b,
                         n, 0.0f, c, n, bf, 0);
        return;
    }
#else
    (void)ab, (void)bb;
#endif
    loom_gemm_openblas(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

static void peak_one(peak_mode *p, size_t n, const float *a, const float *b, const uint16_t *ab,
                     const uint16_t *bb, float *c) {
    peak_call(p, n, a, b, ab, bb, c); /* warm-up: primitive, pages */
    double cpu = 0.0, wall = 0.0;
    size_t reps = 0;
    while (cpu < 2.0 || reps < 3) {
        double t0 = cli_now(), c0 = cpu_now();
        peak_call(p, n, a, b, ab, bb, c);
        cpu += cpu_now() - c0, wall += cli_now() - t0, reps++;
    }
    const double flop = 2.0 * (double)n * (double)n * (double)n * (double)reps;
    p->gflops = 1e-9 * flop / cpu, p->gflops_wall = 1e-9 * flop / wall;
}

static int bench_peak(size_t n, bool json) {
    peak_mode modes[] = {{"openblas_fp32", LOOM_GEMM_OPENBLAS, LOOM_PREC_FP32, 0, 0, NULL},
                         {"onednn_fp32", LOOM_GEMM_ONEDNN, LOOM_PREC_FP32, 0, 0, NULL},
                         {"onednn_bf16", LOOM_GEMM_ONEDNN, LOOM_PREC_BF16, 0, 0, NULL}};
    const size_t nm = sizeof modes / sizeof modes[0];
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b), *c = malloc(n * n * sizeof *c);
    uint16_t *ab = malloc(n * n * sizeof *ab), *bb = malloc(n * n * sizeof *bb);
    if (!a || !b || !c || !ab || !bb) cli_die(1, "out of memory");
    loom_rng r;
    loom_rng_seed(&r, 1);
    for (size_t i = 0; i < n * n; i++) a[i] = loom_rng_uniform(&r) - 0.5f, b[i] = loom_rng_uniform(&r) - 0.5f;
    loom_bf16_round(ab, a, n * n);
    loom_bf16_round(bb, b, n * n);
    for (size_t k = 0; k < nm; k++)
        if (!(modes[k].why = loom_gemm_unavailable(modes[k].be, modes[k].prec)))
            peak_one(&modes[k], n, a, b, ab, bb, c);
    if (json) {
        cli_json j;
        cli_json_begin(&j, "gemm", 0, NULL, "peak");
        cli_json_int(&j, "n", (long long)n);
        cli_json_int(&j, "threads", 1);
        for (size_t k = 0; k < nm; k++) {
            char key[64];
            if (modes[k].why) {
                snprintf(key, sizeof key, "%s_unavailable", modes[k].tag);
                cli_json_str(&j, key, modes[k].why);
                continue;
            }
            snprintf(key, sizeof key, "%s_gflops", modes[k].tag);
            cli_json_num(&j, key, modes[k].gflops);
            snprintf(key, sizeof key, "%s_gflops_wall", modes[k].tag);
            cli_json_num(&j, key, modes[k].gflops_wall);
        }
        cli_json_str(&j, "blas_core", loom_blas_core());
        cli_json_end(&j);
    } else {
        printf("peak of one %zu x %zu x %zu product on 1 thread (OpenBLAS core %s):\n", n, n, n, loom_blas_core());
        for (size_t k = 0; k < nm; k++)
            if (modes[k].why) printf("  %-14s not here: %s\n", modes[k].tag, modes[k].why);
            else printf("  %-14s %.1f GFLOP/s per CPU second (%.1f per wall second)\n", modes[k].tag,
                        modes[k].gflops, modes[k].gflops_wall);
    }
    free(a), free(b), free(c), free(ab), free(bb);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *model = "rowlstm", *cell = NULL, *gemm = NULL, *prec = NULL;
    size_t zdim = 0, layers = 4, hidden = 32, batch = 32, threads = (size_t)cli_default_threads();
    size_t height = 28, width = 28, channels = 1, steps = 10, nsample = 0, patch = 0;
    bool json = false;
    size_t peak = 0;
    cli_draw_flags df = {0};
    size_t frames_in = 10, frames_out = 10, kernel = 5;
    cli_arg args[] = {
        {"frames-in", ARG_SIZE, &frames_in, 1, 100, "convlstm: frames the encoder reads (default 10)", false},
        {"frames-out", ARG_SIZE, &frames_out, 1, 100, "convlstm: frames predicted (default 10)", false},
        {"kernel", ARG_SIZE, &kernel, 1, 15, "convlstm: kernel (default 5)", false},
        {"model", ARG_STR, &model, 0, 0, "model: rowlstm (default), diagbilstm, grupixel, draw, rae, convlstm, renet or reseg", false},
        {"cell", ARG_STR, &cell, 0, 0, "grupixel: gru (default), lstm or rnn; renet: lstm (default), gru, rnn", false},
        {"patch", ARG_SIZE, &patch, 1, 16, "convlstm: space-to-depth patch (default 4); renet: patches of P x P pixels (default 2)", false},
        {"zdim", ARG_SIZE, &zdim, 1, 4096, "grupixel: noise vector z (32); draw: latent per glimpse (100); rae: code (32)", false},
        {"steps-draw", ARG_SIZE, &df.steps_draw, 1, 1024, "draw: glimpses T (default 64)", false},
        {"read-n", ARG_SIZE, &df.read_n, 1, 4096, "draw: read grid N x N (default 2)", false},
        {"write-n", ARG_SIZE, &df.write_n, 1, 4096, "draw: write grid N x N (default 5)", false},
        {"attention", ARG_STR, &df.attention, 0, 0, "draw: on (default) or off", false},
        {"variational", ARG_FLAG, &df.variational, 0, 0, "rae: a Gaussian code with a KL term (a VAE)", false},
        {"layers", ARG_SIZE, &layers, 1, 64, "layers (default 4; grupixel 1)", false},
        {"hidden", ARG_SIZE, &hidden, 1, 4096, "hidden units (default 32)", false},
        {"batch", ARG_SIZE, &batch, 1, 65536, "images per step (default 32)", false},
        {"height", ARG_SIZE, &height, 1, 4096, "image height (default 28)", false},
        {"width", ARG_SIZE, &width, 1, 4096, "image width (default 28)", false},
        {"channels", ARG_SIZE, &channels, 1, 3, "image channels: 1 (gray, default) or 3 (RGB; rowlstm, diagbilstm)", false},
        {"steps", ARG_SIZE, &steps, 1, 100000, "timed training steps (default 10; median reported)", false},
        {"sample-n", ARG_SIZE, &nsample, 1, 100000, "images sampled at once (default: --batch)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default: all cores)", false},
        {"gemm", ARG_STR, &gemm, 0, 0, "matrix products: openblas or onednn (default: the faster for the model)", false},
        {"precision", ARG_STR, &prec, 0, 0, "products' inputs in training, forward and sampling: fp32 (default) or bf16", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
        {"peak", ARG_SIZE, &peak, 64, 8192, "instead: GFLOP/s of one N x N x N product on 1 thread in each mode (the per-core limit; N = 1536 is typical)", false},
    };
    const char *pos[1];
    int npos;
    const size_t nargs = sizeof args / sizeof args[0];
    cli_parse("bench", "--model rowlstm|diagbilstm|grupixel|draw|rae|renet [--cell C] [--layers L] [--hidden H] [--batch B] [--threads T] [--json]", argc,
              argv, args, nargs, pos, 0, &npos);
    if (peak) return bench_peak(peak, json);
    if (!loom_model_find(model)) cli_die(2, "unknown model '%s' (known: %s)", model, loom_model_names());
    if (!nsample) nsample = batch;
    loom_config cfg = {.height = height, .width = width, .channels = channels, .layers = layers,
                       .hidden = hidden};
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    cli_model_flags(&cfg, cell, zdim, cli_find(args, nargs, "layers")->seen);
    df.zdim = zdim;
    df.hidden_seen = cli_find(args, nargs, "hidden")->seen;
    df.layers_seen = cli_find(args, nargs, "layers")->seen;
    cli_draw_config(&cfg, &df);
    if (strcmp(model, "convlstm") == 0) /* an example is a sequence of frames_in + frames_out frames */
        cfg.frames_in = frames_in, cfg.frames_out = frames_out, cfg.kernel = kernel, cfg.patch = patch ? patch : 4;
    cli_renet_config(&cfg, cell, patch, df.layers_seen, df.hidden_seen);
    const bool labelled = loom_model_find(cfg.model)->labelled; /* a classifier: 10 classes, random labels */
    if (labelled) cfg.nclasses = 10;
    layers = cfg.layers, hidden = cfg.hidden;
    loom_model *m;
    loom_error err;
    size_t need = 0;
    loom_status st = loom_model_train_bytes(&cfg, (int)threads, batch, &need, &err);
    if (st) cli_die_err(st, &err);
    char what[160];
    snprintf(what, sizeof what, "--layers %zu --hidden %zu --batch %zu --threads %zu on %zux%zux%zu images",
             layers, hidden, batch, threads, height, width, channels);
    if ((st = loom_memory_check(need, what, &err))) cli_die_err(st, &err);
    st = loom_model_create(&m, &cfg, (int)threads, &err);
    if (st) cli_die_err(st, &err);
    cli_gemm(m, gemm, prec, prec);
    loom_rng r;
    loom_rng_seed(&r, 1);
    loom_model_init(m, &r);
    const size_t HW = loom_example_size(&cfg); /* one image (or sequence) */
    uint8_t *imgs = malloc(LOOM_MAX(batch, nsample) * HW);
    float *am = calloc(m->nfloats, sizeof *am), *av = calloc(m->nfloats, sizeof *av);
    /* t holds the training step times, then at least 3 forward timings (an 8-byte
     * heap overflow with --steps 1 or 2, found by make test SANITIZE=1) */
    double *nll = malloc(batch * sizeof *nll), *t = malloc(LOOM_MAX(steps, 3) * sizeof *t);
    if (!imgs || !am || !av || !nll || !t) cli_die(1, "out of memory");
    for (size_t i = 0; i < LOOM_MAX(batch, nsample) * HW; i++) imgs[i] = (uint8_t)loom_rng_below(&r, 256);
    int32_t *labels = NULL;
    if (labelled) {
        if (!(labels = malloc(batch * sizeof *labels))) cli_die(1, "out of memory");
        for (size_t i = 0; i < batch; i++) labels[i] = (int32_t)loom_rng_below(&r, 10);
    }
    loom_adam adam = {.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .m = am, .v = av, .n = m->nfloats};
    double loss, train_cpu = 0.0, flop0 = 0.0;
    for (size_t s = 0; s <= steps; s++) { /* step 0 warms up caches and workspaces */
        if (s == 1) flop0 = loom_gemm_flops();
        double t0 = cli_now(), c0 = cpu_now();
        m->noise_seed = s + 1; /* as training does: fresh latent noise per step */
        st = loom_model_grad(m, &loss, imgs, labels, batch, &err);
        m->noise_seed = 0;
        if (st) cli_die_err(st, &err);
        loom_clip_grad_norm(m->g, m->nfloats, 1.0);
        loom_adam_step(&adam, m->w, m->g, adam.lr);
        if (s) t[s - 1] = cli_now() - t0, train_cpu += cpu_now() - c0;
    }
    /* the products' flops: all on this thread with --threads 1 (a team's
     * other threads count their own) */
    const double gflop_img = 1e-9 * (loom_gemm_flops() - flop0) / (double)(batch * steps);
    qsort(t, steps, sizeof *t, cmp_double);
    double train_ips = (double)batch / t[steps / 2];
    size_t fw_reps = LOOM_MAX(steps / 2, 3);
    for (size_t s = 0; s < fw_reps; s++) {
        double t0 = cli_now();
        loom_model_nll(m, nll, imgs, labels, batch, batch, NULL);
        t[s] = cli_now() - t0;
    }
    qsort(t, fw_reps, sizeof *t, cmp_double);
    double fwd_ms = 1e3 * t[fw_reps / 2] / (double)batch;
    double t0 = cli_now(), c0 = cpu_now();
    /* a classifier does not sample, convlstm predicts instead: 0 */
    const bool can_sample = loom_model_caps(m) & LOOM_CAP_SAMPLE;
    st = can_sample ? loom_model_sample(m, imgs, NULL, nsample, 0, 1.0f, 1, &err) : LOOM_OK;
    if (st) cli_die_err(st, &err);
    double sample_ms = can_sample ? 1e3 * (cli_now() - t0) / (double)nsample : 0.0;
    double sample_cpu_ms = can_sample ? 1e3 * (cpu_now() - c0) / (double)nsample : 0.0;
    double load[1] = {-1};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load[0]) != 1) load[0] = -1;
        fclose(la);
    }
    size_t rss = cli_peak_rss_mb();
    if (json) {
        cli_json j; /* a measurement, not a checkpoint's: step 0, checkpoint null */
        cli_json_begin(&j, model, 0, NULL, "speed");
        cli_json_str(&j, "cell", cfg.cell);
        cli_json_int(&j, "channels", (long long)loom_channels(&m->cfg));
        cli_json_int(&j, "layers", (long long)cfg.layers);
        cli_json_int(&j, "hidden", (long long)hidden);
        cli_json_int(&j, "batch", (long long)batch);
        cli_json_int(&j, "threads", (long long)threads);
        cli_json_num(&j, "train_images_per_s", train_ips);
        cli_json_num(&j, "forward_ms_per_image", fwd_ms);
        cli_json_num(&j, "sample_ms_per_image", sample_ms);
        cli_json_num(&j, "sample_to_forward", sample_ms / fwd_ms);
        cli_json_num(&j, "train_images_per_cpu_s", (double)(batch * steps) / train_cpu);
        cli_json_num(&j, "sample_cpu_ms_per_image", sample_cpu_ms);
        if (threads == 1) { /* training's products: GFLOP per image, and per CPU second */
            cli_json_num(&j, "gemm_gflop_per_image", gflop_img);
            cli_json_num(&j, "gemm_gflops_per_cpu_s", gflop_img * (double)(batch * steps) / train_cpu);
            /* weights reordered into oneDNN's layout (once per op, shape and thread) */
            cli_json_int(&j, "onednn_repacks", (long long)loom_gemm_onednn_repacks());
        }
        cli_json_num(&j, "loadavg_1m", load[0]);
        cli_json_int(&j, "peak_rss_mb", (long long)rss);
        cli_json_int(&j, "parameters", (long long)m->nfloats);
        cli_json_str(&j, "blas_core", loom_blas_core());
        cli_json_str(&j, "gemm", loom_gemm_backend_name((loom_gemm_backend)m->gemm));
        cli_json_str(&j, "precision", loom_precision_name((loom_precision)m->train_prec));
        cli_json_end(&j);
    }
    else
        printf("%s %zux%zu layers %zu hidden %zu batch %zu threads %zu (products: %s %s; OpenBLAS core %s)\n"
               "  training   %.1f images/s (median of %zu steps)\n"
               "  forward    %.3f ms/image\n"
               "  sampling   %.3f ms/image (%zu at once; %.2fx a forward pass)\n"
               "  peak RSS   %zu MB\n",
               model, height, width, cfg.layers, hidden, batch, threads,
               loom_gemm_backend_name((loom_gemm_backend)m->gemm), loom_precision_name((loom_precision)m->train_prec),
               loom_blas_core(), train_ips, steps, fwd_ms,
               sample_ms, nsample, sample_ms / fwd_ms, rss);
    free(imgs), free(am), free(av), free(nll), free(t), free(labels);
    loom_model_free(m);
    return 0;
}
