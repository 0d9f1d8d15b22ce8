/* Minimal test harness: every check prints "PASS name" or "FAIL name: why";
 * tests/run.sh counts those lines. A test binary exits non-zero if any check failed. */
#ifndef LOOM_CHECK_H
#define LOOM_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures_ = 0;

#define CHECK(name, cond, ...)                                                  \
    do {                                                                        \
        if (cond) {                                                             \
            printf("PASS %s\n", (name));                                        \
        } else {                                                                \
            check_failures_++;                                                  \
            printf("FAIL %s: ", (name));                                        \
            printf(__VA_ARGS__);                                                \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                           \
        }                                                                       \
        fflush(stdout);                                                         \
    } while (0)

#define CHECK_DONE() return check_failures_ ? 1 : 0

#endif
