/* Fuzzes the PNG folder reader (src/data/png_folder.c, libpng underneath).
 * Input: byte 0 = layout: bit 0 set = two images (split at bytes 1-2,
 * little-endian, mod the remaining length), bit 1 set = in a class
 * sub-directory (labelled layout); the rest is the file content(s). */
#include "fuzz.h"
#include "loom.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* libpng rejects chunks whose CRC is wrong, which the fuzzer almost never gets
 * right; recompute every CRC so that mutations reach the decoder. */
static void fix_crcs(uint8_t *p, size_t n) {
    size_t at = 8; /* after the signature */
    while (at + 12 <= n) {
        uint32_t len = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (len > n - at - 12) break;
        uLong crc = crc32(0L, p + at + 4, (uInt)len + 4);
        uint8_t *c = p + at + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16), c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        at += 12 + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char root[300];
    static int n = 0;
    if (!root[0]) snprintf(root, sizeof root, "%s/png", fuzz_tmpdir());
    if (size < 3) return 0;
    /* a fresh folder per input: earlier files would change the layout */
    char dir[340], sub[360], a[400], b[400];
    snprintf(dir, sizeof dir, "%s/%d", root, n++);
    snprintf(sub, sizeof sub, "%s/class0", dir);
    int two = data[0] & 1, classes = data[0] & 2;
    if (mkdir(root, 0700) != 0 && errno != EEXIST) abort();
    if (mkdir(dir, 0700) != 0 || (classes && mkdir(sub, 0700) != 0)) abort();
    const char *where = classes ? sub : dir;
    snprintf(a, sizeof a, "%s/a.png", where);
    snprintf(b, sizeof b, "%s/b.png", where);
    size_t rest = size - 3, split = rest;
    if (two && rest) split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    uint8_t *copy = malloc(rest ? rest : 1);
    if (!copy) abort();
    memcpy(copy, data + 3, rest);
    fix_crcs(copy, split);
    if (two) fix_crcs(copy + split, rest - split);
    if (fuzz_write(a, copy, split) != 0) abort();
    if (two && fuzz_write(b, copy + split, rest - split) != 0) abort();
    free(copy);

    loom_images im;
    loom_error err;
    /* bit 2 of the first byte: the colour-keeping reader instead of the gray one */
    const size_t channels = data[0] & 4 ? 0 : 1;
    if (loom_png_folder_load_channels(&im, dir, channels, &err) == LOOM_OK) {
        if (im.n != (two ? 2u : 1u) || im.h == 0 || im.w == 0 || !im.pixels || im.t != 1 ||
            (im.c != 1 && im.c != 3) || (channels == 1 && im.c != 1))
            abort();
        volatile uint8_t sink = im.pixels[im.n * loom_images_example_bytes(&im) - 1];
        (void)sink;
        if (classes && (!im.labels || im.nclasses != 1)) abort();
        loom_images_free(&im);
    }
    unlink(a);
    unlink(b);
    rmdir(sub);
    rmdir(dir);
    return 0;
}
