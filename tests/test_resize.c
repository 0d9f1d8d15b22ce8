/* Resampling (loom_image_resize: centre crop + pixman Lanczos-3) and the JPEG
 * reader and writer (src/io/jpeg.c). */
#include "check.h"
#include "io/jpeg.h"
#include "loom.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int maxdiff(const uint8_t *a, int v, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) m = abs((int)a[i] - v) > m ? abs((int)a[i] - v) : m;
    return m;
}

int main(void) {
    loom_error err;
    uint8_t src[3 * 40 * 60], dst[3 * 20 * 20];
    /* a constant stays constant (the filter is normalised), down and up */
    memset(src, 100, 30 * 40);
    loom_status st = loom_image_resize(dst, 16, 16, src, 1, 30, 40, &err);
    CHECK("resize: a constant gray 40x30 -> 16x16 stays 100", !st && maxdiff(dst, 100, 256) <= 1, "%d %s",
          maxdiff(dst, 100, 256), err.msg);
    st = loom_image_resize(dst, 20, 20, src, 1, 10, 10, &err);
    CHECK("resize: a constant 10x10 enlarged to 20x20 stays 100", !st && maxdiff(dst, 100, 400) <= 1, "%d",
          maxdiff(dst, 100, 400));
    /* colour: each plane keeps its value */
    memset(src, 10, 20 * 20), memset(src + 400, 200, 400), memset(src + 800, 30, 400);
    st = loom_image_resize(dst, 8, 8, src, 3, 20, 20, &err);
    CHECK("resize: RGB planes stay R, G, B", !st && maxdiff(dst, 10, 64) <= 1 && maxdiff(dst + 64, 200, 64) <= 1 &&
          maxdiff(dst + 128, 30, 64) <= 1, "%d %d %d", dst[0], dst[64], dst[128]);
    /* centre crop: 60 wide x 20 high, columns 0..29 black, 30..59 white; to 20x20 the
     * crop is columns 20..39: its left half black, its right half white */
    for (size_t y = 0; y < 20; y++)
        for (size_t x = 0; x < 60; x++) src[y * 60 + x] = x < 30 ? 0 : 255;
    st = loom_image_resize(dst, 20, 20, src, 1, 20, 60, &err);
    CHECK("resize: the centre crop of a wide image (left black, right white)",
          !st && dst[5 * 20 + 2] < 8 && dst[5 * 20 + 17] > 247 && dst[5 * 20 + 9] < dst[5 * 20 + 10],
          "%d %d %d %d", dst[102], dst[117], dst[109], dst[110]);
    /* a tall image is cropped in height: rows 0..29 black, 30..59 white, 20 wide */
    for (size_t y = 0; y < 60; y++)
        for (size_t x = 0; x < 20; x++) src[y * 20 + x] = y < 30 ? 0 : 255;
    st = loom_image_resize(dst, 10, 10, src, 1, 60, 20, &err);
    CHECK("resize: the centre crop of a tall image", !st && dst[1 * 10 + 5] < 8 && dst[8 * 10 + 5] > 247, "%d %d",
          dst[15], dst[85]);
    /* halving a 2x2 checkerboard of 0/200 averages to 100 (box pixels, a window one target pixel wide) */
    for (size_t y = 0; y < 40; y++)
        for (size_t x = 0; x < 40; x++) src[y * 40 + x] = ((x / 2 + y / 2) & 1) ? 200 : 0;
    st = loom_image_resize(dst, 10, 10, src, 1, 40, 40, &err);
    int lo = 255, hi = 0;
    for (size_t i = 11; i < 89; i++) lo = dst[i] < lo ? dst[i] : lo, hi = dst[i] > hi ? dst[i] : hi;
    CHECK("resize: a fine checkerboard shrunk 4x is gray, not aliased", !st && lo >= 80 && hi <= 120, "%d..%d", lo, hi);
    st = loom_image_resize(dst, 0, 10, src, 1, 40, 40, &err);
    CHECK("resize: a 0 size is refused", st == LOOM_EINVAL, "%d", (int)st);

    /* JPEG: written and read back, gray and colour */
    char dir[] = "/tmp/loom_jpeg_XXXXXX", path[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/g.jpg", dir);
    for (size_t i = 0; i < 20 * 30; i++) src[i] = (uint8_t)(i % 30 * 8);
    st = loom_jpeg_write(path, src, 1, 20, 30, 95, &err);
    uint8_t *back = NULL;
    size_t c = 0, h = 0, w = 0;
    if (!st) st = loom_jpeg_read(path, &back, &c, &h, &w, 1 << 20, &err);
    int md = 0;
    for (size_t i = 0; !st && i < 20 * 30; i++) md = abs(back[i] - src[i]) > md ? abs(back[i] - src[i]) : md;
    CHECK("jpeg: a gray gradient round trip (quality 95) within 12 levels", !st && c == 1 && h == 20 && w == 30 && md <= 12,
          "%s c %zu %zux%zu max %d", st ? err.msg : "", c, w, h, md);
    free(back);
    for (size_t i = 0; i < 400; i++) src[i] = 250, src[400 + i] = 20, src[800 + i] = 120;
    snprintf(path, sizeof path, "%s/c.jpeg", dir);
    st = loom_jpeg_write(path, src, 3, 20, 20, 95, &err);
    if (!st) st = loom_jpeg_read(path, &back, &c, &h, &w, 1 << 20, &err);
    CHECK("jpeg: a colour image reads back as 3 planes", !st && c == 3 && abs(back[0] - 250) <= 6 &&
          abs(back[400] - 20) <= 6 && abs(back[800] - 120) <= 6, "%s %d %d %d", st ? err.msg : "", back ? back[0] : -1,
          back ? back[400] : -1, back ? back[800] : -1);
    free(back), back = NULL;
    st = loom_jpeg_read_gray(path, &back, &h, &w, 1 << 20, &err);
    const int y601 = (299 * 250 + 587 * 20 + 114 * 120 + 500) / 1000;
    CHECK("jpeg: read as gray is the BT.601 luma", !st && abs(back[0] - y601) <= 4, "%d vs %d", back ? back[0] : -1, y601);
    free(back), back = NULL;
    st = loom_jpeg_read(path, &back, &c, &h, &w, 100, &err);
    CHECK("jpeg: more pixels than allowed is refused before decoding", st == LOOM_EFORMAT && strstr(err.msg, "more than"),
          "%s", err.msg);
    snprintf(path, sizeof path, "%s/bad.jpg", dir);
    FILE *f = fopen(path, "wb");
    fputs("\xff\xd8\xff\xe0 not really a jpeg", f);
    fclose(f);
    st = loom_jpeg_read(path, &back, &c, &h, &w, 1 << 20, &err);
    CHECK("jpeg: a truncated file is a format error naming it", st == LOOM_EFORMAT && strstr(err.msg, "bad.jpg"), "%d %s",
          (int)st, err.msg);
    snprintf(path, sizeof path, "%s/none/x.jpg", dir);
    st = loom_jpeg_write(path, src, 1, 4, 4, 90, &err);
    CHECK("jpeg: a write error names the file, not its .tmp", st == LOOM_EIO && strstr(err.msg, "x.jpg:") &&
          !strstr(err.msg, ".tmp"), "%s", err.msg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    CHECK_DONE();
}
