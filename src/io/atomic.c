/* Atomic file writes: atomic.h. */
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *loom_tmp_path(const char *path) {
    size_t n = strlen(path);
    char *t = malloc(n + sizeof ".tmp");
    if (t) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", sizeof ".tmp");
    }
    return t;
}

loom_status loom_fsync_dir(const char *path, loom_error *err) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    loom_status st = LOOM_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* EINVAL: the file system cannot sync directories; nothing more can be done. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        st = loom_fail(err, LOOM_EIO, "%s: syncing directory %s after rename: %s", path, dir,
                       strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}
