/* loom's version: the one source of truth. The Makefile reads LOOM_VERSION
 * from this file for the shared library's file name and SONAME
 * (libloom.so.<MAJOR>) and for loom.pc. */
#ifndef LOOM_VERSION_H
#define LOOM_VERSION_H

#define LOOM_VERSION_MAJOR 0
#define LOOM_VERSION_MINOR 1
#define LOOM_VERSION_PATCH 0
#define LOOM_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library linked at run time (LOOM_VERSION is the one
 * compiled against). */
const char *loom_version(void);

#ifdef __cplusplus
}
#endif
#endif
