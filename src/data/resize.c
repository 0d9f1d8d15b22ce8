/* Centre crop and resampling of images (loom_image_resize, include/loom.h)
 * with pixman, the raster library under cairo: a separable convolution
 * filter (Lanczos-3) built by pixman_filter_create_separable_convolution. */
#include "common.h"

#include <pixman.h>
#include <stdlib.h>
#include <string.h>

loom_status loom_image_resize(uint8_t *dst, size_t dh, size_t dw, const uint8_t *src, size_t c, size_t sh,
                              size_t sw, loom_error *err) {
    if (!dh || !dw || !sh || !sw || (c != 1 && c != 3) || dh > 32768 || dw > 32768 || sh > 32768 || sw > 32768)
        return loom_fail(err, LOOM_EINVAL, "resize: %zux%zu -> %zux%zu (%zu channels) is not a size it takes",
                         sw, sh, dw, dh, c);
    /* the centre crop with the target's aspect ratio: all of one side */
    size_t ch = sh, cw = sw;
    if (sw * dh > sh * dw) cw = (sh * dw + dh / 2) / dh; /* wider than the target: crop the width */
    else ch = (sw * dh + dw / 2) / dw;                   /* taller: crop the height */
    if (!cw) cw = 1;
    if (!ch) ch = 1;
    const size_t x0 = (sw - cw) / 2, y0 = (sh - ch) / 2;
    /* pixman rows are 32-bit aligned: the crop as x8r8g8b8 (colour, or gray in every byte) */
    uint32_t *in = malloc(ch * cw * sizeof *in), *out = malloc(dh * dw * sizeof *out);
    if (!in || !out) {
        free(in), free(out);
        return loom_fail(err, LOOM_ENOMEM, "resize: out of memory for %zux%zu", cw, ch);
    }
    for (size_t y = 0; y < ch; y++)
        for (size_t x = 0; x < cw; x++) {
            const size_t s = (y0 + y) * sw + x0 + x;
            const uint32_t r = src[s], g = c == 3 ? src[sh * sw + s] : r, b = c == 3 ? src[2 * sh * sw + s] : r;
            in[y * cw + x] = 0xff000000u | r << 16 | g << 8 | b;
        }
    pixman_image_t *pi = pixman_image_create_bits(PIXMAN_x8r8g8b8, (int)cw, (int)ch, in, (int)(cw * 4));
    pixman_image_t *po = pixman_image_create_bits(PIXMAN_x8r8g8b8, (int)dw, (int)dh, out, (int)(dw * 4));
    loom_status st = LOOM_OK;
    int nparams = 0;
    pixman_fixed_t *params = NULL;
    if (!pi || !po) {
        st = loom_fail(err, LOOM_ENOMEM, "resize: out of memory");
        goto done;
    }
    const double sx = (double)cw / (double)dw, sy = (double)ch / (double)dh; /* source pixels per target pixel */
    pixman_transform_t t;
    pixman_transform_init_scale(&t, pixman_double_to_fixed(sx), pixman_double_to_fixed(sy));
    pixman_image_set_transform(pi, &t);
    /* shrinking: source pixels as boxes, sampled through a Lanczos-3 window as wide as a
     * target pixel; enlarging: Lanczos-3 reconstruction, sampled at the target pixel */
    const bool down = sx > 1.0 || sy > 1.0;
    params = pixman_filter_create_separable_convolution(
        &nparams, pixman_double_to_fixed(sx > 1.0 ? sx : 1.0), pixman_double_to_fixed(sy > 1.0 ? sy : 1.0),
        down ? PIXMAN_KERNEL_BOX : PIXMAN_KERNEL_LANCZOS3, down ? PIXMAN_KERNEL_BOX : PIXMAN_KERNEL_LANCZOS3,
        down ? PIXMAN_KERNEL_LANCZOS3 : PIXMAN_KERNEL_IMPULSE, down ? PIXMAN_KERNEL_LANCZOS3 : PIXMAN_KERNEL_IMPULSE,
        4, 4);
    if (!params || !pixman_image_set_filter(pi, PIXMAN_FILTER_SEPARABLE_CONVOLUTION, params, nparams)) {
        st = loom_fail(err, LOOM_ENOMEM, "resize: pixman filter not made");
        goto done;
    }
    pixman_image_set_repeat(pi, PIXMAN_REPEAT_PAD);
    pixman_image_composite32(PIXMAN_OP_SRC, pi, NULL, po, 0, 0, 0, 0, 0, 0, (int)dw, (int)dh);
    for (size_t i = 0; i < dh * dw; i++) {
        const uint32_t p = out[i];
        if (c == 1) dst[i] = (uint8_t)(p >> 16); /* every channel holds the gray */
        else dst[i] = (uint8_t)(p >> 16), dst[dh * dw + i] = (uint8_t)(p >> 8), dst[2 * dh * dw + i] = (uint8_t)p;
    }
done:
    free(params);
    if (pi) pixman_image_unref(pi);
    if (po) pixman_image_unref(po);
    free(in), free(out);
    return st;
}
