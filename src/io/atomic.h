/* Atomic file writes, shared by the PNG and safetensors writers: write to
 * "<path>.tmp", fsync it, rename it over path, then fsync the directory. */
#ifndef LOOM_ATOMIC_H
#define LOOM_ATOMIC_H

#include "common.h"

/* "<path>.tmp", malloc'd (the caller frees it); NULL when out of memory */
char *loom_tmp_path(const char *path);
/* fsync the directory holding path, so that the rename itself survives a crash;
 * a file system that cannot sync directories (EINVAL) is not an error */
loom_status loom_fsync_dir(const char *path, loom_error *err);

#endif
