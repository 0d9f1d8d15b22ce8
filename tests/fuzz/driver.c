/* Replays fuzz inputs through a harness without libFuzzer (gcc, `make test`).
 * With no arguments it replays every file in tests/fuzz/corpus/FUZZ_NAME/ and
 * tests/fuzz/regress/FUZZ_NAME/ (run from the repository root); otherwise the
 * files and directories given. One "PASS" line per directory, and a crash or a
 * sanitizer report stops the process, which tests/run.sh counts as a failure. */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "compile with -DFUZZ_NAME=\"name\""
#endif

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL fuzz_%s: cannot open %s\n", FUZZ_NAME, path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) abort();
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    fclose(f);
    /* an exact-size copy, so that ASan catches reads past the end of the input */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) abort();
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the number of inputs run, or -1 when dir is missing. */
static long run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!names[n]) abort();
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n > 1) qsort(names, n, sizeof *names, cmp);
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode) && run_file(names[i]) == 0) ran++;
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            struct stat sb;
            if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
                run_dir(argv[i]);
            else
                run_file(argv[i]);
        }
        printf("PASS fuzz_%s: replayed %d argument(s)\n", FUZZ_NAME, argc - 1);
        return 0;
    }
    const char *kinds[2] = {"corpus", "regress"};
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fuzz/%s/%s", kinds[k], FUZZ_NAME);
        long ran = run_dir(dir);
        if (ran < 0 && k == 1) continue; /* no regression inputs (yet) for this harness */
        if (ran <= 0) {
            printf("FAIL fuzz_%s %s: no inputs in %s\n", FUZZ_NAME, kinds[k], dir);
            bad = 1;
        } else {
            printf("PASS fuzz_%s %s: %ld inputs replayed clean\n", FUZZ_NAME, kinds[k], ran);
        }
    }
    return bad;
}
