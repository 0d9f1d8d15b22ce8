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
double cli_now(void);
size_t cli_peak_rss_mb(void);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_complete(int argc, char **argv);
int cmd_info(int argc, char **argv);
/* --gemm openblas|onednn and --precision fp32|bf16 (NULL: not given) applied
 * to m (training's precision, everything else's); exit 2 naming the flag when
 * this build or CPU cannot run them (cli/gemm_flags.c) */
void cli_gemm(loom_model *m, const char *gemm, const char *train_prec, const char *eval_prec);

int cmd_bench(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_interpolate(int argc, char **argv);

#endif
