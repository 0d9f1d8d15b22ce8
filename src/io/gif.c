/* Animated GIF output (include/loom/gif.h) through giflib's encoder, with a
 * fixed palette: no quantisation search, so a frame's indices depend only on
 * its pixels. */
#include "common.h"
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The RGB cube: 6 red x 7 green x 6 blue levels (green gets the extra level:
 * the eye resolves it best), index = (r * 7 + g) * 6 + b, 252 colours. */
enum { CUBE_R = 6, CUBE_G = 7, CUBE_B = 6 };

static int level_value(int i, int levels) { return (i * 255 + (levels - 1) / 2) / (levels - 1); }
/* the nearest of `levels` evenly spaced values to v: the cube's levels are
 * separable, so the per-channel nearest is the nearest colour */
static int nearest_level(int v, int levels) { return (v * (levels - 1) + 127) / 255; }

static void fill_palette(GifColorType *c, size_t channels) {
    memset(c, 0, 256 * sizeof *c);
    if (channels == 1) {
        for (int i = 0; i < 256; i++) c[i].Red = c[i].Green = c[i].Blue = (GifByteType)i;
        return;
    }
    for (int r = 0; r < CUBE_R; r++)
        for (int g = 0; g < CUBE_G; g++)
            for (int b = 0; b < CUBE_B; b++) {
                GifColorType *e = &c[(r * CUBE_G + g) * CUBE_B + b];
                e->Red = (GifByteType)level_value(r, CUBE_R);
                e->Green = (GifByteType)level_value(g, CUBE_G);
                e->Blue = (GifByteType)level_value(b, CUBE_B);
            }
}

/* Everything after the file is open; returns 0 or a giflib error code. */
static int encode(GifFileType *gif, const uint8_t *frames, size_t nframes, size_t channels,
                  size_t h, size_t w, const uint16_t *delays_cs, GifPixelType *row) {
    GifColorType colors[256];
    fill_palette(colors, channels);
    ColorMapObject *map = GifMakeMapObject(256, colors);
    if (!map) return E_GIF_ERR_NOT_ENOUGH_MEM;
    EGifSetGifVersion(gif, true);
    int ok = EGifPutScreenDesc(gif, (int)w, (int)h, 8, 0, map);
    GifFreeMapObject(map);
    if (ok != GIF_OK) return gif->Error;
    /* loop forever: NETSCAPE2.0 application extension, sub-block 1, count 0 */
    static const GifByteType loop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
        EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") != GIF_OK ||
        EGifPutExtensionBlock(gif, 3, loop) != GIF_OK || EGifPutExtensionTrailer(gif) != GIF_OK)
        return gif->Error;
    const size_t hw = h * w;
    for (size_t f = 0; f < nframes; f++) {
        GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT, .UserInputFlag = false,
                                    .DelayTime = delays_cs ? delays_cs[f] : LOOM_GIF_DELAY,
                                    .TransparentColor = NO_TRANSPARENT_COLOR};
        GifByteType ext[4];
        size_t len = EGifGCBToExtension(&gcb, ext);
        if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)len, ext) != GIF_OK ||
            EGifPutImageDesc(gif, 0, 0, (int)w, (int)h, false, NULL) != GIF_OK)
            return gif->Error;
        const uint8_t *fr = frames + f * channels * hw; /* (C, h, w) */
        for (size_t y = 0; y < h; y++) {
            for (size_t x = 0; x < w; x++) {
                size_t p = y * w + x;
                if (channels == 1) {
                    row[x] = fr[p];
                } else {
                    int r = nearest_level(fr[p], CUBE_R), g = nearest_level(fr[hw + p], CUBE_G),
                        b = nearest_level(fr[2 * hw + p], CUBE_B);
                    row[x] = (GifPixelType)((r * CUBE_G + g) * CUBE_B + b);
                }
            }
            if (EGifPutLine(gif, row, (int)w) != GIF_OK) return gif->Error;
        }
    }
    return 0;
}

loom_status loom_gif_write(const char *path, const uint8_t *frames, size_t nframes,
                           size_t channels, size_t h, size_t w, const uint16_t *delays_cs,
                           loom_error *err) {
    if (!path || !path[0]) return loom_fail(err, LOOM_EINVAL, "gif: empty path");
    if (!frames) return loom_fail(err, LOOM_EINVAL, "%s: NULL frames", path);
    if (channels != 1 && channels != 3)
        return loom_fail(err, LOOM_EINVAL, "%s: %zu channels (1 gray or 3 RGB)", path, channels);
    if (nframes == 0) return loom_fail(err, LOOM_EINVAL, "%s: no frames", path);
    if (h == 0 || w == 0 || h > 65535 || w > 65535)
        return loom_fail(err, LOOM_EINVAL, "%s: frame size %zu x %zu is not in 1..65535", path, h, w);
    size_t total;
    if (!loom_mul_ok(nframes, channels * h * w, &total))
        return loom_fail(err, LOOM_ENOMEM, "%s: %zu frames of %zu x %zu overflow", path, nframes, h, w);

    GifPixelType *row = malloc(w);
    char *tmp = loom_tmp_path(path);
    if (!row || !tmp) {
        free(row), free(tmp);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    /* open ourselves: EGifOpenFileName would create the file with mode 0600 */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        loom_status st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        free(row), free(tmp);
        return st;
    }
    int keep = dup(fd); /* EGifCloseFile closes fd; this one is for fsync */
    int gerr = 0, e = 0;
    GifFileType *gif = keep < 0 ? NULL : EGifOpenFileHandle(fd, &gerr);
    if (!gif) {
        e = keep < 0 ? errno : 0;
        close(fd);
    } else {
        errno = 0;
        gerr = encode(gif, frames, nframes, channels, h, w, delays_cs, row);
        if (gerr) e = errno;
        int cerr = 0;
        if (EGifCloseFile(gif, &cerr) != GIF_OK && !gerr) gerr = cerr, e = errno;
    }
    if (!gerr && !e && fsync(keep) != 0) e = errno;
    if (keep >= 0 && close(keep) != 0 && !gerr && !e) e = errno;
    if (!gerr && !e && rename(tmp, path) != 0) e = errno;
    loom_status st;
    if (gerr || e) {
        unlink(tmp);
        const char *why = e ? strerror(e) : GifErrorString(gerr);
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, why ? why : "GIF encoder error");
    } else {
        st = loom_fsync_dir(path, err);
    }
    free(row), free(tmp);
    return st;
}
