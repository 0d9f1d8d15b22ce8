/* Fuzzes the command-line parser (cli/args.c, cli_parse_args) with a flag
 * table that has every kind of flag the commands use. Input: arguments
 * separated by NUL bytes (argv[0] is added). */
#include "cli.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#define MAXARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAXARGS + 1];
    int argc = 0;
    argv[argc++] = "train";
    for (size_t i = 0; i <= size && argc < MAXARGS;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;

    size_t layers = 4, batch = 32;
    long steps = 1000;
    double lr = 1e-3, clip = 1;
    uint64_t seed = 1;
    const char *out = NULL, *data_spec = "fashion-mnist";
    bool quiet = false;
    cli_arg args[] = {
        {"layers", ARG_SIZE, &layers, 1, 64, "", false},
        {"batch", ARG_SIZE, &batch, 1, 65536, "", false},
        {"steps", ARG_LONG, &steps, 1, 1e12, "", false},
        {"lr", ARG_DOUBLE, &lr, 1e-12, 10, "", false},
        {"clip", ARG_DOUBLE, &clip, 0, 1e9, "", false},
        {"seed", ARG_U64, &seed, 0, 0, "", false},
        {"out", ARG_STR, &out, 0, 0, "", false},
        {"data", ARG_STR, &data_spec, 0, 0, "", false},
        {"quiet", ARG_FLAG, &quiet, 0, 0, "", false},
    };
    const size_t nargs = sizeof args / sizeof args[0];
    const char *pos[2];
    int npos = -1;
    loom_error e;
    e.msg[0] = 0;
    cli_result r = cli_parse_args("train", argc, argv, args, nargs, pos, 2, &npos, &e);
    if (r == CLI_OK) {
        /* what the commands rely on after a successful parse */
        if (layers < 1 || layers > 64 || batch < 1 || batch > 65536 || steps < 1 ||
            !(lr >= 1e-12 && lr <= 10) || !(clip >= 0 && clip <= 1e9) || npos < 0 || npos > 2 ||
            (out && !*out) || !*data_spec)
            abort();
    } else if (r == CLI_BAD) {
        /* one line, starting with "loom " */
        if (strncmp(e.msg, "loom ", 5) != 0 || strchr(e.msg, '\n')) abort();
    }
    free(buf);
    return 0;
}
