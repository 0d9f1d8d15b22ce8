/* The loom command-line tool: shared helpers. Only the CLI prints or exits. */
#ifndef LOOM_CLI_H
#define LOOM_CLI_H

#include "io/checkpoint.h"
#include "loom.h"
#include "models/model.h"

#include <stdbool.h>

typedef enum { ARG_SIZE, ARG_LONG, ARG_DOUBLE, ARG_STR, ARG_FLAG, ARG_U64 } cli_kind;

typedef struct cli_arg {
    const char *name;  /* without the leading "--" */
    cli_kind kind;
    void *dst;         /* size_t*, long*, double*, const char**, bool*, uint64_t* */
    double lo, hi;     /* accepted range for numbers */
    const char *help;
    bool seen;
} cli_arg;

typedef enum { CLI_OK = 0, CLI_HELP, CLI_BAD } cli_result;

/* Parses argv[1..] (argv[0] is the command name). Positional arguments go to
 * pos (up to npos_max); *npos gets their count. Returns CLI_HELP for --help,
 * CLI_BAD with one line in e->msg for anything wrong; never prints or exits
 * (so that it can be fuzzed: tests/fuzz/fuzz_args.c). */
cli_result cli_parse_args(const char *cmd, int argc, char **argv, cli_arg *args, size_t nargs,
                          const char **pos, int npos_max, int *npos, loom_error *e);
void cli_usage(const char *cmd, const char *usage, const cli_arg *args, size_t nargs);
/* cli_parse_args for commands: --help prints usage and exits 0; anything
 * wrong prints one line and exits 2. */
void cli_parse(const char *cmd, const char *usage, int argc, char **argv, cli_arg *args,
               size_t nargs, const char **pos, int npos_max, int *npos);
const cli_arg *cli_find(const cli_arg *args, size_t nargs, const char *name);

/* "loom: <msg>" on stderr, exit code */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
void cli_die(int code, const char *fmt, ...);
/* > 0: cli_die waits this many ms before it exits. A data-parallel rank other
 * than 0 sets it while it sets up silently, so that rank 0's error line reaches
 * the launcher before this rank's exit makes the launcher end the job. */
extern int cli_die_delay_ms;
/* exit 2 for bad input (format/argument), 1 for everything else */
__attribute__((noreturn)) void cli_die_err(loom_status st, const loom_error *err);

int cli_default_threads(void);
/* RUN_DIR or a checkpoint file -> the checkpoint path (static buffer) */
const char *cli_checkpoint_path(const char *run_or_ckpt);
/* Load a model for inference (no optimiser state). */
loom_model *cli_load_model(const char *run_or_ckpt, int threads, loom_train_opts *o,
                           loom_train_state *st);
/* Load the evaluation split: "test", or "valid" (the last o->valid training
 * images), convert it to gray when gray or o->gray (cli_data_prepare), and
 * check its size and channels match the model; notes go to stderr. */
void cli_load_split(loom_images *out, const char *data, const char *split,
                    const loom_train_opts *o, const loom_config *cfg, bool gray);
/* loom_images_prepare(im, data, gray, note, len), exiting 2 with its one
 * line when the data cannot be used (examples of several frames). */
void cli_data_prepare(loom_images *im, const char *data, bool gray, char *note, size_t len);
/* Exits 2 with one line when the images' channels are not the model's. */
void cli_check_data(const loom_images *im, const char *data, const loom_config *cfg);
/* imgs (n, c, h, w) into a PNG grid (gray or RGB) with `cols` columns; exits on failure. */
void cli_write_grid(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                    size_t cols);
/* cli_write_grid, enlarged `scale` times (nearest neighbour; 0: cli_auto_scale)
 * with `pad` between the images; a name ending in .jpg / .jpeg is written as
 * JPEG, .gif and other image formats are refused (exit 2), anything else is PNG. */
void cli_write_grid_scaled(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                           size_t cols, size_t scale, uint8_t pad);
/* the default width of a grid a command writes for a person to look at */
#define CLI_GRID_MIN_WIDTH 512
/* the smallest integer scale that makes a grid w pixels wide at least
 * CLI_GRID_MIN_WIDTH wide (1 when it already is) */
size_t cli_auto_scale(size_t w);
/* the grid (c, *gh, *gw) of imgs with 1 px of pad, and with row_labels
 * (ceil(n / cols) of them, or NULL: none) drawn in a margin on its left
 * (loom_grid_label_rows); malloc'ed, exits on failure */
uint8_t *cli_make_grid(const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w, size_t cols, uint8_t pad,
                       const char *const *row_labels, size_t *gh, size_t *gw);
/* cli_write_grid_scaled with row labels (cli_make_grid) */
void cli_write_grid_labelled(const char *path, const uint8_t *imgs, size_t n, size_t c, size_t h, size_t w,
                             size_t cols, size_t scale, uint8_t pad, const char *const *row_labels);
/* grid (c, *h, *w), malloc'ed, enlarged k times by nearest neighbour (freed
 * and replaced; k <= 1 returns it as it is) */
uint8_t *cli_scale_grid(uint8_t *grid, size_t c, size_t *h, size_t *w, size_t k);
/* Model-specific flags into cfg: --cell and --zdim (grupixel only; NULL / 0
 * when not given). Exits 2 with one line for an unknown cell or a flag the
 * model does not take; fills grupixel's defaults (gru, zdim 32, and 1 layer
 * unless --layers was given). */
void cli_model_flags(loom_config *cfg, const char *cell, size_t zdim, bool layers_given);
/* The latent models' flags into cfg (0 / NULL / false when not given):
 * draw: --zdim, --steps-draw, --read-n, --write-n, --attention on|off, with
 * the paper's MNIST configuration as defaults (hidden 256, z 100, T 64, read
 * 2, write 5, attention on); rae: --zdim (32), --variational, hidden 256.
 * Exits 2 with one line for a bad value or a flag the model does not take. */
typedef struct cli_draw_flags {
    size_t zdim, steps_draw, read_n, write_n;
    const char *attention;
    bool variational;
    bool hidden_seen, layers_seen;
} cli_draw_flags;
void cli_draw_config(loom_config *cfg, const cli_draw_flags *f);
/* --json output (the convention of every command, docs/cli.md): one line, one
 * object on stdout, numbers as numbers, always "model", "step", "checkpoint"
 * and "kind" first. cli_json_begin(&j, model, step, checkpoint or NULL (null),
 * kind), then the fields, then cli_json_end prints the line. */
typedef struct cli_json {
    char *buf;
    size_t len, cap;
} cli_json;
void cli_json_begin(cli_json *j, const char *model, long step, const char *checkpoint,
                    const char *kind);
void cli_json_str(cli_json *j, const char *key, const char *v);  /* NULL: null */
void cli_json_num(cli_json *j, const char *key, double v);       /* not finite: null */
void cli_json_int(cli_json *j, const char *key, long long v);
void cli_json_fixed(cli_json *j, const char *key, double v, int digits); /* %.<digits>f */
void cli_json_raw(cli_json *j, const char *key, const char *raw); /* already JSON */
void cli_json_end(cli_json *j);
/* what a model's NLL is, one word for --json's "kind": "exact", "elbo",
 * "iw" (iw > 0), "fixed-z" (grupixel), "reconstruction" (a plain rae) */
const char *cli_nll_kind(const loom_model *m, size_t iw);
/* loom report: RUN_DIR/report.html (out == NULL) or out, from the run's
 * metrics.csv, checkpoint and sample grids (cli/cmd_report.c) */
loom_status cli_report_write(const char *dir, const char *out, loom_error *err);
/* renet's flags into cfg: --cell (lstm), --patch (2), and 2 layers of
 * hidden 64 unless given; --patch with another model exits 2. */
void cli_renet_config(loom_config *cfg, const char *cell, size_t patch, bool layers_given,
                      bool hidden_given);
/* A set of images for the vision commands (detect, score): "DATA:SPLIT"
 * (a data spec with split train or test, e.g. fashion-mnist:test), a run
 * directory (n samples of its model, seed), or a data spec alone (its
 * train split); at most n images (0: all of a data set; a run needs n). */
void cli_image_set(loom_images *out, const char *spec, size_t n, uint64_t seed, int threads,
                   char *what, size_t cap);
/* A classifier's accuracy and mean cross-entropy (nats) on the first n
 * images of set (which has labels); exits on failure. */
void cli_classify(loom_model *m, const loom_images *set, size_t n, size_t batch, double *acc,
                  double *xent);
/* "DATA:SPLIT" -> data (cap bytes) and split ("train" or "test"); without a
 * ":train" / ":test" suffix the whole spec is the data and split "train" */
void cli_split_spec(const char *spec, char *data, size_t cap, const char **split);
/* the shipped Fashion-MNIST classifier of loom score ($LOOM_CLASSIFIER, else
 * ../models/ or ../share/loom/ beside the executable), or NULL */
const char *cli_default_classifier(void);
/* exits 2 naming both sets when their image sizes or channels differ */
void cli_check_same_shape(const loom_images *a, const char *na, const loom_images *b, const char *nb);
/* A segmenter (reseg) on the first n examples of set (scene above label
 * map): pixel accuracy and mean IoU (over the classes present in the truth
 * or the prediction); pred (n, H/2, W) receives the predicted label maps
 * when not NULL. Exits on failure. */
void cli_segment_eval(loom_model *m, const loom_images *set, size_t n, size_t batch, uint8_t *pred,
                      double *pixel_acc, double *miou);
double cli_now(void);
size_t cli_peak_rss_mb(void);

/* Data-parallel training (docs/distributed.md). cli_launcher_ranks: how many
 * processes a launcher (mpirun, mpiexec, srun) started, from its environment,
 * 0 when none did (cli/ranks.c, in every build). */
int cli_launcher_ranks(void);
#ifdef LOOM_HAVE_MPI
/* cli/mpi.c, only in MPI builds: MPI_Init once and MPI_COMM_WORLD as a
 * loom_comm; *local_size = the ranks on this machine */
const loom_comm *cli_mpi_start(int *local_size);
void cli_mpi_end(void); /* MPI_Finalize */
typedef struct cli_mpi_stats {
    double bytes_sent; /* by this rank to the others, over the run */
    double seconds;    /* in collectives, waiting for the others included */
} cli_mpi_stats;
cli_mpi_stats cli_mpi_get_stats(void);
#endif

int cmd_predict(int argc, char **argv);
/* loom eval of a sequence model (LOOM_CAP_PREDICT, cmd_video.c): MSE, MAE,
 * SSIM and cross-entropy of its predicted frames beside the repeat-last-frame
 * baseline; data given (true) is a file or folder evaluated whole */
int cli_eval_video(loom_model *m, const char *ckpt, const char *data, bool given, const char *split, size_t limit,
                   size_t batch, bool json, const loom_train_opts *o, long step);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_complete(int argc, char **argv);
int cmd_inpaint(int argc, char **argv);
int cmd_info(int argc, char **argv);
/* --gemm openblas|onednn and --precision fp32|bf16 (NULL: not given) applied
 * to m (training's precision, everything else's); exit 2 naming the flag when
 * this build or CPU cannot run them (cli/gemm_flags.c) */
void cli_gemm(loom_model *m, const char *gemm, const char *train_prec, const char *eval_prec);

int cmd_bench(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_interpolate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_battle(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_segment(int argc, char **argv);

#endif
