#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_die_delay_ms = 0;

void cli_die(int code, const char *fmt, ...) {
    /* one write of the whole line: stderr is unbuffered, and under mpirun
     * three writes could interleave with the launcher's own messages */
    char line[4096] = "loom: ";
    const size_t p = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + p, sizeof line - p - 1, fmt, ap);
    va_end(ap);
    size_t len = p + (k < 0 ? 0 : LOOM_MIN((size_t)k, sizeof line - p - 2));
    line[len] = '\n', line[len + 1] = 0;
    fputs(line, stderr);
    if (cli_die_delay_ms > 0) {
        struct timespec ts = {cli_die_delay_ms / 1000, (long)(cli_die_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    exit(code);
}

void cli_die_err(loom_status st, const loom_error *err) {
    cli_die(st == LOOM_EINVAL || st == LOOM_EFORMAT ? 2 : 1, "%s", err->msg);
}

const cli_arg *cli_find(const cli_arg *args, size_t nargs, const char *name) {
    for (size_t i = 0; i < nargs; i++)
        if (strcmp(args[i].name, name) == 0) return &args[i];
    return NULL;
}

void cli_usage(const char *cmd, const char *usage, const cli_arg *args, size_t nargs) {
    printf("usage: loom %s %s\n\n", cmd, usage);
    for (size_t i = 0; i < nargs; i++) {
        char flag[64];
        const char *meta = args[i].kind == ARG_FLAG ? "" : args[i].kind == ARG_STR ? " S" :
                           args[i].kind == ARG_DOUBLE ? " F" : " N";
        snprintf(flag, sizeof flag, "--%s%s", args[i].name, meta);
        printf("  %-22s %s\n", flag, args[i].help);
    }
    printf("\nexit codes: 0 ok, 1 I/O error, 2 bad input (flags, files, sizes); --json: one line with\n"
           "\"model\", \"step\", \"checkpoint\", \"kind\" (docs/cli.md)\n");
}

/* Arguments are quoted in messages; a newline or escape sequence in one must
 * not break the one-line error or reach the terminal (found by fuzz_args). */
static cli_result bad_line(loom_error *e) {
    for (char *p = e->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return CLI_BAD;
}

/* One line into e->msg: "loom CMD: <problem> (see 'loom CMD --help')". */
#define BAD(...) do { \
        size_t n_ = (size_t)snprintf(e->msg, sizeof e->msg, "loom %s: ", cmd); \
        if (n_ < sizeof e->msg) n_ += (size_t)snprintf(e->msg + n_, sizeof e->msg - n_, __VA_ARGS__); \
        if (n_ < sizeof e->msg) snprintf(e->msg + n_, sizeof e->msg - n_, " (see 'loom %s --help')", cmd); \
        return bad_line(e); } while (0)

/* edit distance of a and b (both short: flag names), for "did you mean" */
static size_t edits(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 63 || lb >= 63) return 99;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up, row[j] = best;
        }
    }
    return row[lb];
}

/* the known flag closest to name (at most 2 edits, or name a prefix of it), or NULL */
static const char *closest(const char *name, const cli_arg *args, size_t nargs) {
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < nargs; i++) {
        size_t d = edits(name, args[i].name);
        if (d > 2 && strlen(name) >= 3 && strncmp(args[i].name, name, strlen(name)) == 0) d = 2;
        if (d < bd) bd = d, best = args[i].name;
    }
    return best;
}

static cli_result set_value(const char *cmd, cli_arg *a, const char *v, loom_error *e) {
    char *end = NULL;
    errno = 0;
    switch (a->kind) {
    case ARG_STR:
        if (!*v) BAD("--%s needs a non-empty value", a->name);
        *(const char **)a->dst = v;
        return CLI_OK;
    case ARG_FLAG: return CLI_OK;
    case ARG_DOUBLE: {
        double d = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(d)) BAD("--%s: '%.60s' is not a number", a->name, v);
        if (d < a->lo || d > a->hi) BAD("--%s %.60s is out of range [%g, %g]", a->name, v, a->lo, a->hi);
        *(double *)a->dst = d;
        return CLI_OK;
    }
    default: break;
    }
    /* integers: digits only (strtoull would accept "-1" and wrap it) */
    if (!*v || strspn(v, "0123456789") != strlen(v))
        BAD("--%s: '%.60s' is not a non-negative integer", a->name, v);
    unsigned long long u = strtoull(v, &end, 10);
    if (errno == ERANGE) BAD("--%s %.60s is too large", a->name, v);
    if (a->kind != ARG_U64 && ((double)u < a->lo || (double)u > a->hi))
        BAD("--%s %.60s is out of range [%.0f, %.0f]", a->name, v, a->lo, a->hi);
    if (a->kind == ARG_SIZE) *(size_t *)a->dst = (size_t)u;
    else if (a->kind == ARG_LONG) *(long *)a->dst = (long)u;
    else *(uint64_t *)a->dst = (uint64_t)u;
    return CLI_OK;
}

cli_result cli_parse_args(const char *cmd, int argc, char **argv, cli_arg *args, size_t nargs,
                          const char **pos, int npos_max, int *npos, loom_error *e) {
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) return CLI_HELP;
        if (strncmp(s, "--", 2) != 0 || s[2] == 0) {
            if (s[0] == '-' && s[1] != 0) BAD("unknown flag %.60s", s);
            if (*npos >= npos_max) BAD("unexpected argument '%.60s'", s);
            pos[(*npos)++] = s;
            continue;
        }
        char name[64];
        const char *eq = strchr(s + 2, '=');
        size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        if (len >= sizeof name) BAD("unknown flag %.40s...", s);
        memcpy(name, s + 2, len);
        name[len] = 0;
        cli_arg *a = (cli_arg *)cli_find(args, nargs, name);
        if (!a) {
            const char *near = closest(name, args, nargs);
            if (near) BAD("unknown flag --%s; did you mean --%s?", name, near);
            BAD("unknown flag --%s", name);
        }
        if (a->seen) BAD("--%s given twice", name);
        a->seen = true;
        if (a->kind == ARG_FLAG) {
            if (eq) BAD("--%s takes no value", name);
            *(bool *)a->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) BAD("--%s needs a value", name);
        cli_result r = set_value(cmd, a, v, e);
        if (r != CLI_OK) return r;
    }
    return CLI_OK;
}

void cli_parse(const char *cmd, const char *usage, int argc, char **argv, cli_arg *args,
               size_t nargs, const char **pos, int npos_max, int *npos) {
    loom_error e;
    switch (cli_parse_args(cmd, argc, argv, args, nargs, pos, npos_max, npos, &e)) {
    case CLI_OK: return;
    case CLI_HELP: cli_usage(cmd, usage, args, nargs); exit(0);
    case CLI_BAD: fprintf(stderr, "%s\n", e.msg); exit(2);
    }
}
