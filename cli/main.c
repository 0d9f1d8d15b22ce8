/* loom — train, evaluate and sample recurrent image generators. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} commands[] = {
    {"train", cmd_train, "train a model (or --resume a run)"},
    {"eval", cmd_eval, "NLL of a split (exact, or a stated bound): bits/dim, nats/image"},
    {"sample", cmd_sample, "draw images into a PNG grid"},
    {"complete", cmd_complete, "complete the bottom of test images; NLL of the hidden part"},
    {"inpaint", cmd_inpaint, "fill any masked region of an image (importance resampling; autoencoders: approximate)"},
    {"reconstruct", cmd_reconstruct, "autoencoders (draw): test images next to their reconstructions"},
    {"interpolate", cmd_interpolate, "models with codes (rae): decode codes between two test images"},
    {"info", cmd_info, "model, config, step and parameter count of a checkpoint"},
    {"predict", cmd_predict, "sequence models (convlstm): given frames, then predicted beside the truth (GIF or PNG)"},
    {"report", cmd_report, "one self-contained HTML page of a run: curves, samples, config"},
    {"export", cmd_export, "write a run's inference weights alone (--weights-only) to a file"},
    {"detect", cmd_detect, "classifier two-sample test of two image sets: ROC AUC with a 95% interval"},
    {"segment", cmd_segment, "segmenters (reseg): predicted label maps of test scenes beside the scenes, as a PNG"},
    {"score", cmd_score, "sample quality of a generator: FID, Inception score, detector AUC, NLL"},
    {"bench", cmd_bench, "training images/s, forward and sampling ms/image, peak memory"},
    {"battle", cmd_battle, "two adversarial runs (gran): each discriminator judges the other's samples (GAM)"},
    {"version", NULL, "print loom's version (also: loom --version)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: loom COMMAND [flags]   ('loom COMMAND --help' for its flags)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\nexit codes: 0 ok, 1 I/O error (a file that cannot be read or written), 2 bad input\n"
               "(flags, file contents, sizes); --json: one line, one JSON object on stdout with\n"
               "\"model\", \"step\", \"checkpoint\" and \"kind\" (docs/cli.md)\n");
}

int main(int argc, char **argv) {
    /* OpenBLAS picks its kernels when it loads; where it took this CPU for a
     * generic one (loom_blas_better_core), run again with the right core named
     * in OPENBLAS_CORETYPE. A core the user named is kept; if the exec fails,
     * this process goes on with OpenBLAS's pick. */
    const char *core = getenv("OPENBLAS_CORETYPE") ? NULL : loom_blas_better_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) {
        execv("/proc/self/exe", argv);
        unsetenv("OPENBLAS_CORETYPE");
    }
    /* the program owns its process: single-threaded BLAS inside the batch
     * shards, set once (the library never sets it behind a caller's back) */
    loom_blas_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "loom: %s takes no arguments (got '%s')\n", argv[1], argv[2]);
            return 2;
        }
        printf("loom %s\n", loom_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].fn && strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "loom: unknown command '%s' (see 'loom --help')\n", argv[1]);
    return 2;
}
