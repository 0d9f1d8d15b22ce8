/* loom public API: animated GIFs. Included by <loom.h>. */
#ifndef LOOM_GIF_API_H
#define LOOM_GIF_API_H

#ifndef LOOM_H
#error "include <loom.h>, not <loom/gif.h>"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_GIF_DELAY 10 /* default per-frame delay, hundredths of a second */

/* Write an animated GIF of nframes frames of h x w pixels that loops forever
 * (NETSCAPE2.0 extension). channels 1: frames (nframes, h, w) gray, written
 * exactly with a 256-level gray palette; channels 3: frames (nframes, 3, h, w)
 * planar RGB (the (T, C, H, W) layout), each pixel mapped to the nearest
 * colour of a fixed 6x7x6 RGB cube (error at most 26 per channel). delays_cs
 * (nframes) gives each frame's delay in hundredths of a second; NULL means
 * LOOM_GIF_DELAY for every frame. 1 <= h, w <= 65535, nframes >= 1.
 * Atomic like loom_png_write_gray (PATH.tmp, fsync, rename); the file's mode
 * is 0666 minus the umask. */
loom_status loom_gif_write(const char *path, const uint8_t *frames, size_t nframes,
                           size_t channels, size_t h, size_t w, const uint16_t *delays_cs,
                           loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
