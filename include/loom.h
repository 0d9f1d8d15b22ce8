/* loom — recurrent image generators on CPUs.
 *
 * The public header (it includes the parts in include/loom/). Conventions:
 *   - every function that can fail returns a loom_status and, when given a
 *     non-NULL loom_error, fills it with one line "<file or thing>: <problem>";
 *   - the library never exits or prints to stdout; only the CLI does;
 *   - sizes and counts are size_t; images are uint8 (0..255), laid out
 *     (n, t, c, h, w): n examples of t frames of c planes of h rows of w.
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

/* A set of same-sized examples with optional class labels. An example is a
 * uint8 tensor (t, c, h, w): t frames (1 for still images) of c channels (1
 * gray, or 3: R, G, B), each channel a planar h x w raster (row-major). So
 * pixel (frame f, channel k, row y, column x) of example i is
 *   pixels[(((i * t + f) * c + k) * h + y) * w + x],
 * and one example is loom_images_example_bytes() bytes. Loaders set t and c;
 * a struct built by hand with t == 0 or c == 0 is read as 1 there. */
typedef struct loom_seqgen loom_seqgen; /* a generator of sequences (docs/data.md) */
typedef struct loom_images {
    size_t n, h, w;
    uint8_t *pixels;  /* (n, t, c, h, w) */
    int32_t *labels;  /* (n), or NULL when the source has none */
    int nclasses;     /* 0 when labels == NULL */
    char **class_names; /* (nclasses) names of the classes, or NULL when the source has none */
    size_t t, c;      /* frames and channels per example (see above) */
    /* what loading changed, for callers to report (0 when nothing): */
    size_t gray_to_rgb;   /* gray images replicated to R = G = B to join a colour set */
    size_t alpha_dropped; /* images whose alpha channel was discarded */
    /* a generated set (moving-fashion-mnist): pixels is NULL and example k
     * is made on demand by loom_images_example, as sequence gen_ids[k] (k
     * when gen_ids is NULL) of the generator, which the set holds a
     * reference to */
    loom_seqgen *gen;
    size_t *gen_ids;
} loom_images;

/* Example k of im (loom_images_example_bytes bytes) into dst: copied, or
 * generated (the same bytes for the same set and k, on any machine). */
void loom_images_example(const loom_images *im, size_t k, uint8_t *dst);
/* Image sequences for sequence models, (n, frames, 1, h, w):
 *   "moving-fashion-mnist": generated on the fly from Fashion-MNIST (split
 *     "train": 100,000 sequences from the training images, seeded; "test":
 *     the fixed 10,000 from the test images), `frames` frames each;
 *   FILE.npy: uint8 (T, N, H, W) as mnist_test_seq.npy, the whole file;
 *   DIR: one sub-directory per sequence holding its frames as PNG files,
 *     taken in strcmp order of their names (zero-padded numbers), gray.
 * A file or folder is one set whatever the split. frames 0 takes what the
 * source holds (20 for the generator). Bad files are LOOM_EINVAL naming the
 * file; unreadable ones LOOM_EIO. */
loom_status loom_sequences_load(loom_images *out, const char *spec, const char *split,
                                size_t frames, loom_error *err);
/* One Moving Fashion-MNIST sequence: dst (frames, 64, 64) from the 28x28
 * images src (nsrc, 28, 28), drawn with an RNG seeded from (seed, id). */
void loom_moving_sequence(uint8_t *dst, size_t frames, const uint8_t *src, size_t nsrc,
                          uint64_t seed, size_t id);

/* t * c * h * w (t, c of 0 read as 1); 0 when the product overflows size_t
 * or a size is 0. */
size_t loom_images_example_bytes(const loom_images *im);

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
/* A folder of PNG images read as c = channels: 1 gray, 3 RGB, or 0 as the
 * files are (3 when any image is colour, see docs/data.md). */
loom_status loom_png_folder_load_channels(loom_images *out, const char *dir, size_t channels,
                                          loom_error *err);
/* = loom_png_folder_load_channels(out, dir, 1, err): every image to gray with
 * libpng's rule (docs/data.md); loom_images_load keeps colour instead. */
loom_status loom_png_folder_load(loom_images *out, const char *dir, loom_error *err);
/* One PNG file as one image (n = 1) of c = channels (1 gray, 3 RGB, 0 as the
 * file is), decoded as loom_png_folder_load_channels decodes each file. */
loom_status loom_png_read(loom_images *out, const char *path, size_t channels, loom_error *err);
/* loom_images_load with every image centre-cropped to the aspect ratio of
 * h x w and resampled to h x w (pixman's separable Lanczos-3; docs/data.md);
 * a folder's images may then have different sizes. h = w = 0 is
 * loom_images_load. PNG folders may hold JPEG files too (.jpg, .jpeg). */
loom_status loom_images_load_resized(loom_images *out, const char *spec, const char *split, size_t h,
                                     size_t w, loom_error *err);
/* loom_png_folder_load_channels with JPEG files (.jpg, .jpeg) too and, with
 * rh, rw > 0, every image centre-cropped and resampled to rh x rw */
loom_status loom_image_folder_load(loom_images *out, const char *dir, size_t channels, size_t rh, size_t rw,
                                   loom_error *err);
/* src (c, sh, sw) -> dst (c, dh, dw), c = 1 or 3: the centre crop of src with
 * dst's aspect ratio, resampled (Lanczos-3, pixman) */
loom_status loom_image_resize(uint8_t *dst, size_t dh, size_t dw, const uint8_t *src, size_t c, size_t sh,
                              size_t sw, loom_error *err);
/* Colour to gray in place: c = 3 becomes c = 1 with ITU-R BT.601 luma,
 * Y = round(0.299 R + 0.587 G + 0.114 B), exactly (299 R + 587 G + 114 B +
 * 500) / 1000 in integers. c = 1 is left alone; any other c is LOOM_EINVAL. */
loom_status loom_images_to_gray(loom_images *im, loom_error *err);
/* A loaded set made ready for loom's models (still images): LOOM_EINVAL for
 * examples of more than one frame; when gray is non-zero, RGB converted
 * (loom_images_to_gray). note (len bytes) gets what loading and conversion
 * changed, one line each naming `what` (gray images replicated, alpha
 * dropped, converted), or "" when nothing did. */
loom_status loom_images_prepare(loom_images *im, const char *what, int gray, char *note,
                                size_t len, loom_error *err);
void loom_images_free(loom_images *im);
/* Copy images [begin, end) of src into dst (dst owns its memory). */
loom_status loom_images_slice(loom_images *dst, const loom_images *src, size_t begin, size_t end,
                              loom_error *err);

/* ---------------------------------------------------------------- png */

loom_status loom_png_write_gray(const char *path, const uint8_t *pixels, size_t h, size_t w,
                                loom_error *err);
/* RGB, pixels planar (3, h, w): the R plane, then G, then B. */
loom_status loom_png_write_rgb(const char *path, const uint8_t *pixels, size_t h, size_t w,
                               loom_error *err);
/* Tile n images (h, w) into a grid with `cols` columns and `pad` pixels of
 * value `pad_value` between and around them. *out is malloc'ed (caller
 * frees); its size is *out_h x *out_w. */
loom_status loom_grid(uint8_t **out, size_t *out_h, size_t *out_w, const uint8_t *imgs, size_t n,
                      size_t h, size_t w, size_t cols, size_t pad, uint8_t pad_value,
                      loom_error *err);
/* loom_grid for images of c planar channels: imgs (n, c, h, w), *out
 * (c, *out_h, *out_w), each channel tiled like loom_grid (pad_value in every
 * channel, so 128 is mid gray). c = 1 is loom_grid. */
loom_status loom_grid_channels(uint8_t **out, size_t *out_h, size_t *out_w, const uint8_t *imgs,
                               size_t n, size_t c, size_t h, size_t w, size_t cols, size_t pad,
                               uint8_t pad_value, loom_error *err);

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
#include "loom/train.h"   /* training runs (the library trainer) */

#endif
