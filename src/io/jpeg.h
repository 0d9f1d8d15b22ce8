/* JPEG files through libjpeg-turbo (Debian's libjpeg62-turbo): grids written
 * as JPEG, and JPEG images read into loom's planar (C, H, W) layout. */
#ifndef LOOM_JPEG_H
#define LOOM_JPEG_H

#include "common.h"

/* pixels (c, h, w) planar, c = 1 (gray) or 3 (RGB), quality 1..100; written
 * atomically like the PNG writer (PATH.tmp, fsync, rename). */
loom_status loom_jpeg_write(const char *path, const uint8_t *pixels, size_t c, size_t h, size_t w,
                            int quality, loom_error *err);
/* *pixels (c, h, w) planar, malloc'ed: c = 1 for a gray file, 3 for a colour
 * one (YCbCr / RGB; CMYK is refused); larger than max_pixels is refused
 * before decoding. LOOM_EFORMAT with the decoder's message for a bad file. */
loom_status loom_jpeg_read(const char *path, uint8_t **pixels, size_t *c, size_t *h, size_t *w,
                           size_t max_pixels, loom_error *err);
/* the same, always gray (c = 1): libjpeg's own conversion, the Y of YCbCr
 * (ITU-R BT.601 luma) */
loom_status loom_jpeg_read_gray(const char *path, uint8_t **pixels, size_t *h, size_t *w,
                                size_t max_pixels, loom_error *err);
/* path ends in .jpg or .jpeg (any case) */
bool loom_is_jpeg_name(const char *path);

#endif
