/* loom — recurrent image generators on CPUs.
 *
 * The public header (it includes the parts in include/loom/). Conventions:
 *   - every function that can fail returns a loom_status and, when given a
 *     non-NULL loom_error, fills it with one line "<file or thing>: <problem>";
 *   - the library never exits or prints to stdout; only the CLI does;
 *   - sizes and counts are size_t; images are uint8 (0..255), row-major (n, h, w).
 */
#ifndef LOOM_H
#define LOOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum loom_status {
    LOOM_OK = 0,
    LOOM_EINVAL,  /* bad argument, flag or config value */
    LOOM_EFORMAT, /* malformed or inconsistent file */
    LOOM_EIO,     /* the operating system refused a read or write */
    LOOM_ENOMEM,  /* allocation failed or a size overflowed */
    LOOM_ENAN     /* a NaN or Inf appeared in a loss or gradient */
} loom_status;

#define LOOM_ERRLEN 512
typedef struct loom_error {
    char msg[LOOM_ERRLEN];
} loom_error;

const char *loom_status_name(loom_status s);

/* ---------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64; the state is 4 words so that a
 * checkpoint can store it exactly. */
typedef struct loom_rng {
    uint64_t s[4];
} loom_rng;

void loom_rng_seed(loom_rng *r, uint64_t seed);
uint64_t loom_rng_u64(loom_rng *r);
float loom_rng_uniform(loom_rng *r); /* [0, 1) */
float loom_rng_normal(loom_rng *r);  /* N(0, 1) */
size_t loom_rng_below(loom_rng *r, size_t n); /* uniform in [0, n), n > 0 */

/* ---------------------------------------------------------------- images */

/* A set of same-sized grayscale images with optional class labels. */
typedef struct loom_images {
    size_t n, h, w;
    uint8_t *pixels;  /* (n, h, w) */
    int32_t *labels;  /* (n), or NULL when the source has none */
    int nclasses;     /* 0 when labels == NULL */
    char **class_names; /* (nclasses) names of the classes, or NULL when the source has none */
} loom_images;

/* spec: "fashion-mnist" (the Debian dataset-fashion-mnist files), a
 * directory holding IDX files (train-images-idx3-ubyte[.gz], ...), or a
 * directory of PNG images of one size (optionally one sub-directory per
 * class). split: "train" or "test". */
loom_status loom_images_load(loom_images *out, const char *spec, const char *split,
                             loom_error *err);
/* Read one IDX image file (and optionally its label file; labels_path may be
 * NULL). gzip or raw, detected by content. */
loom_status loom_idx_load(loom_images *out, const char *images_path, const char *labels_path,
                          loom_error *err);
loom_status loom_png_folder_load(loom_images *out, const char *dir, loom_error *err);
void loom_images_free(loom_images *im);
/* Copy images [begin, end) of src into dst (dst owns its memory). */
loom_status loom_images_slice(loom_images *dst, const loom_images *src, size_t begin, size_t end,
                              loom_error *err);

/* ---------------------------------------------------------------- png */

loom_status loom_png_write_gray(const char *path, const uint8_t *pixels, size_t h, size_t w,
                                loom_error *err);
/* Tile n images (h, w) into a grid with `cols` columns and `pad` pixels of
 * value `pad_value` between and around them. *out is malloc'ed (caller
 * frees); its size is *out_h x *out_w. */
loom_status loom_grid(uint8_t **out, size_t *out_h, size_t *out_w, const uint8_t *imgs, size_t n,
                      size_t h, size_t w, size_t cols, size_t pad, uint8_t pad_value,
                      loom_error *err);

/* ---------------------------------------------------------------- safetensors */

typedef enum loom_dtype { LOOM_F32 = 0, LOOM_U8, LOOM_I32, LOOM_I64, LOOM_F64 } loom_dtype;

#define LOOM_MAXDIM 4
typedef struct loom_tensor {
    const char *name;
    loom_dtype dtype;
    int ndim;
    size_t shape[LOOM_MAXDIM];
    const void *data; /* for writing */
} loom_tensor;

typedef struct loom_kv {
    const char *key;
    const char *value;
} loom_kv;

/* Atomic: writes PATH.tmp, fsyncs, renames over PATH, fsyncs the directory.
 * On any failure PATH is untouched and the temp file removed. */
loom_status loom_safetensors_write(const char *path, const loom_tensor *tensors, size_t ntensors,
                                   const loom_kv *meta, size_t nmeta, loom_error *err);

typedef struct loom_st_file loom_st_file;
/* Reads and validates the whole file: header JSON, dtypes, shapes, offsets
 * (in range, no overlaps, no holes), metadata (string -> string). */
loom_status loom_safetensors_open(loom_st_file **out, const char *path, loom_error *err);
void loom_safetensors_close(loom_st_file *f);
const char *loom_st_meta(const loom_st_file *f, const char *key); /* NULL when absent */
size_t loom_st_count(const loom_st_file *f);
const loom_tensor *loom_st_get(const loom_st_file *f, size_t i);
const loom_tensor *loom_st_find(const loom_st_file *f, const char *name); /* NULL when absent */
/* Copy tensor `name` into dst, which must be F32 with exactly this shape. */
loom_status loom_st_read_f32(const loom_st_file *f, const char *name, float *dst, int ndim,
                             const size_t *shape, loom_error *err);

#ifdef __cplusplus
}
#endif

/* The rest of the API, one header per part (each needs the types above). */
#include "loom/version.h" /* LOOM_VERSION, loom_version() */
#include "loom/model.h"   /* contexts, models, NLLs, sampling, training steps, checkpoints */
#include "loom/gif.h"     /* animated GIFs */

#endif
