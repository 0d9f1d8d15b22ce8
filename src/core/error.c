#include "common.h"

#include <errno.h>
#include <stdio.h>

loom_status loom_fail(loom_error *err, loom_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *loom_status_name(loom_status s) {
    switch (s) {
    case LOOM_OK: return "ok";
    case LOOM_EINVAL: return "invalid argument";
    case LOOM_EFORMAT: return "malformed file";
    case LOOM_EIO: return "input/output error";
    case LOOM_ENOMEM: return "out of memory";
    case LOOM_ENAN: return "non-finite value";
    }
    return "unknown status";
}

loom_status loom_open_status(int errnum) {
    return errnum == ENOENT || errnum == ENOTDIR || errnum == EISDIR || errnum == ENAMETOOLONG ||
                   errnum == ELOOP
               ? LOOM_EINVAL
               : LOOM_EIO;
}
