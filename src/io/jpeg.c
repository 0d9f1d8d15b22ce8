/* JPEG reading and writing with libjpeg (jpeg.h). libjpeg reports errors
 * through a callback that must not return: it longjmps back here. */
#include "jpeg.h"

#include "atomic.h"

#include <errno.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jerr_mgr;

static void on_error(j_common_ptr cinfo) {
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo) { (void)cinfo; } /* warnings: not printed */

bool loom_is_jpeg_name(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot && !strchr(dot, '/') && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

loom_status loom_jpeg_write(const char *path, const uint8_t *pixels, size_t c, size_t h, size_t w,
                            int quality, loom_error *err) {
    if (c != 1 && c != 3) return loom_fail(err, LOOM_EINVAL, "%s: JPEG of %zu channels (1 or 3)", path, c);
    if (h == 0 || w == 0 || h > JPEG_MAX_DIMENSION || w > JPEG_MAX_DIMENSION)
        return loom_fail(err, LOOM_EINVAL, "%s: image size %zu x %zu is not in 1..%ld", path, h, w, (long)JPEG_MAX_DIMENSION);
    char *tmp = loom_tmp_path(path);
    uint8_t *row = malloc(w * c);
    if (!tmp || !row) {
        free(tmp), free(row);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        loom_status st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(errno));
        free(tmp), free(row);
        return st;
    }
    struct jpeg_compress_struct cinfo;
    jerr_mgr je;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_error, je.pub.output_message = on_message;
    loom_status st = LOOM_OK;
    if (setjmp(je.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(fp);
        remove(tmp);
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, je.msg);
        free(tmp), free(row);
        return st;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, fp);
    cinfo.image_width = (JDIMENSION)w, cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = (int)c;
    cinfo.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++)
            for (size_t k = 0; k < c; k++) row[x * c + k] = pixels[(k * h + y) * w + x];
        JSAMPROW r = row;
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    bool ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int e = errno;
    ok = fclose(fp) == 0 && ok;
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    if (!ok) {
        remove(tmp);
        st = loom_fail(err, LOOM_EIO, "%s: %s", path, strerror(e ? e : EIO));
    }
    free(tmp);
    return st ? st : loom_fsync_dir(path, err);
}

static loom_status jpeg_read(const char *path, bool want_gray, uint8_t **pixels, size_t *c, size_t *h,
                             size_t *w, size_t max_pixels, loom_error *err) {
    *pixels = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
    struct jpeg_decompress_struct cinfo;
    jerr_mgr je;
    uint8_t *volatile out = NULL, *volatile row = NULL;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_error, je.pub.output_message = on_message;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        free(out), free(row);
        return loom_fail(err, LOOM_EFORMAT, "%s: bad JPEG (%s)", path, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    const bool gray = want_gray || cinfo.jpeg_color_space == JCS_GRAYSCALE;
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        return loom_fail(err, LOOM_EFORMAT, "%s: a CMYK JPEG (gray or colour ones only)", path);
    }
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    const size_t W = cinfo.image_width, H = cinfo.image_height, C = gray ? 1 : 3;
    if ((double)W * (double)H > (double)max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        return loom_fail(err, LOOM_EFORMAT, "%s: %zux%zu pixels, more than the %zu this loader takes", path, W,
                         H, max_pixels);
    }
    jpeg_start_decompress(&cinfo);
    out = malloc(C * H * W), row = malloc(C * W);
    if (!out || !row) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        free(out), free(row);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for %zux%zu pixels", path, W, H);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        const size_t y = cinfo.output_scanline;
        JSAMPROW r = row;
        jpeg_read_scanlines(&cinfo, &r, 1);
        for (size_t x = 0; x < W; x++)
            for (size_t k = 0; k < C; k++) out[(k * H + y) * W + x] = row[x * C + k];
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(fp);
    free(row);
    *pixels = out, *c = C, *h = H, *w = W;
    return LOOM_OK;
}

loom_status loom_jpeg_read(const char *path, uint8_t **pixels, size_t *c, size_t *h, size_t *w,
                           size_t max_pixels, loom_error *err) {
    return jpeg_read(path, false, pixels, c, h, w, max_pixels, err);
}

loom_status loom_jpeg_read_gray(const char *path, uint8_t **pixels, size_t *h, size_t *w,
                                size_t max_pixels, loom_error *err) {
    size_t c;
    return jpeg_read(path, true, pixels, &c, h, w, max_pixels, err);
}
