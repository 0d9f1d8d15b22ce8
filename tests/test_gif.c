/* The GIF writer (include/loom/gif.h), read back with giflib's decoder:
 * dimensions, frames, delays, the loop extension, exact gray, RGB within the
 * cube's quantisation error, argument checks, atomic writes and the umask. */
#include "check.h"
#include "loom.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/loom_gif_XXXXXX";

static const char *at(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void fill(uint8_t *x, size_t n, uint64_t seed) {
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (uint8_t)loom_rng_below(&r, 256);
}

/* the NETSCAPE2.0 block with loop count 0 among an image's extensions */
static int loops_forever(const SavedImage *im) {
    for (int i = 0; i + 1 < im->ExtensionBlockCount; i++) {
        const ExtensionBlock *b = &im->ExtensionBlocks[i], *c = &im->ExtensionBlocks[i + 1];
        if (b->Function == APPLICATION_EXT_FUNC_CODE && b->ByteCount == 11 &&
            memcmp(b->Bytes, "NETSCAPE2.0", 11) == 0 && c->Function == CONTINUE_EXT_FUNC_CODE &&
            c->ByteCount == 3 && c->Bytes[0] == 1 && c->Bytes[1] == 0 && c->Bytes[2] == 0)
            return 1;
    }
    return 0;
}

/* Decodes path; returns the max per-channel error against frames (F, C, h, w)
 * or -1 when the structure (size, count, delays, loop) is not as written. */
static int read_back(const char *path, const uint8_t *frames, size_t F, size_t C, size_t h,
                     size_t w, const uint16_t *delays, char *why, size_t nwhy) {
    int e = 0;
    GifFileType *g = DGifOpenFileName(path, &e);
    if (!g) return snprintf(why, nwhy, "open: %s", GifErrorString(e)), -1;
    int worst = -1;
    if (DGifSlurp(g) != GIF_OK) {
        snprintf(why, nwhy, "slurp: %s", GifErrorString(g->Error));
    } else if ((size_t)g->SWidth != w || (size_t)g->SHeight != h || (size_t)g->ImageCount != F) {
        snprintf(why, nwhy, "%dx%d, %d frames", g->SWidth, g->SHeight, g->ImageCount);
    } else if (!loops_forever(&g->SavedImages[0])) {
        snprintf(why, nwhy, "no NETSCAPE2.0 loop extension");
    } else {
        worst = 0;
        for (size_t f = 0; f < F && worst >= 0; f++) {
            const SavedImage *im = &g->SavedImages[f];
            GraphicsControlBlock gcb;
            const ColorMapObject *map = im->ImageDesc.ColorMap ? im->ImageDesc.ColorMap : g->SColorMap;
            if (DGifSavedExtensionToGCB(g, (int)f, &gcb) != GIF_OK ||
                gcb.DelayTime != (delays ? delays[f] : LOOM_GIF_DELAY)) {
                snprintf(why, nwhy, "frame %zu: delay %d", f, gcb.DelayTime);
                worst = -1;
                break;
            }
            if ((size_t)im->ImageDesc.Width != w || (size_t)im->ImageDesc.Height != h || !map) {
                snprintf(why, nwhy, "frame %zu: %dx%d", f, im->ImageDesc.Width, im->ImageDesc.Height);
                worst = -1;
                break;
            }
            for (size_t p = 0; p < h * w; p++) {
                const GifColorType *col = &map->Colors[im->RasterBits[p]];
                const int got[3] = {col->Red, col->Green, col->Blue};
                for (size_t c = 0; c < 3; c++) {
                    int want = frames[(f * C + (C == 1 ? 0 : c)) * h * w + p];
                    int d = abs(got[c] - want);
                    if (d > worst) worst = d;
                }
            }
        }
    }
    DGifCloseFile(g, &e);
    return worst;
}

static void test_roundtrip(void) {
    char why[256] = "";
    const size_t F = 3, h = 5, w = 7;
    uint8_t gray[3 * 5 * 7], rgb[3 * 3 * 5 * 7];
    fill(gray, sizeof gray, 1);
    fill(rgb, sizeof rgb, 2);
    const uint16_t delays[3] = {5, 20, 300};
    loom_error e = {{0}};
    CHECK("gif gray: writes", loom_gif_write(at("g.gif"), gray, F, 1, h, w, delays, &e) == LOOM_OK, "%s", e.msg);
    int d = read_back(at("g.gif"), gray, F, 1, h, w, delays, why, sizeof why);
    CHECK("gif gray: size, 3 frames, delays, loop forever; pixels exact", d == 0, "error %d %s", d, why);
    CHECK("gif rgb: writes", loom_gif_write(at("c.gif"), rgb, F, 3, h, w, NULL, &e) == LOOM_OK, "%s", e.msg);
    d = read_back(at("c.gif"), rgb, F, 3, h, w, NULL, why, sizeof why);
    /* 6 levels: 51 apart, so at most 26 off; green's 7 levels: 43 apart, 22 off */
    CHECK("gif rgb: size, frames, default delay; within the 6x7x6 cube's error", d >= 0 && d <= 26,
          "error %d %s", d, why);
    CHECK("gif rgb: random colours do get quantised (the check can see errors)", d > 10, "error %d", d);
    /* colours on the cube come back exactly */
    uint8_t cube[3 * 2 * 3];
    const uint8_t vals[6] = {0, 51, 102, 153, 204, 255};
    for (int p = 0; p < 6; p++) cube[p] = vals[p], cube[6 + p] = p % 2 ? 255 : 0, cube[12 + p] = vals[5 - p];
    loom_gif_write(at("k.gif"), cube, 1, 3, 2, 3, NULL, &e);
    d = read_back(at("k.gif"), cube, 1, 3, 2, 3, NULL, why, sizeof why);
    CHECK("gif rgb: colours of the cube are exact", d == 0, "error %d %s", d, why);
    /* one big frame, 1x1 frames */
    uint8_t one = 77;
    CHECK("gif: a 1x1 single frame", loom_gif_write(at("1.gif"), &one, 1, 1, 1, 1, NULL, &e) == LOOM_OK &&
          read_back(at("1.gif"), &one, 1, 1, 1, 1, NULL, why, sizeof why) == 0, "%s %s", e.msg, why);
    /* overwriting an existing file */
    CHECK("gif: overwrites atomically, no temp file left",
          loom_gif_write(at("g.gif"), gray + 35, 1, 1, h, w, NULL, &e) == LOOM_OK &&
          read_back(at("g.gif"), gray + 35, 1, 1, h, w, NULL, why, sizeof why) == 0 &&
          access(at("g.gif.tmp"), F_OK) != 0, "%s %s", e.msg, why);
}

static void test_bad(void) {
    uint8_t px[16] = {0};
    loom_error e = {{0}};
    struct { const char *name; loom_status st; } cases[] = {
        {"gif bad: 2 channels", loom_gif_write(at("b.gif"), px, 1, 2, 2, 2, NULL, &e)},
        {"gif bad: no frames", loom_gif_write(at("b.gif"), px, 0, 1, 2, 2, NULL, &e)},
        {"gif bad: height 0", loom_gif_write(at("b.gif"), px, 1, 1, 0, 2, NULL, &e)},
        {"gif bad: width 65536", loom_gif_write(at("b.gif"), px, 1, 1, 1, 65536, NULL, &e)},
        {"gif bad: NULL frames", loom_gif_write(at("b.gif"), NULL, 1, 1, 2, 2, NULL, &e)},
        {"gif bad: empty path", loom_gif_write("", px, 1, 1, 2, 2, NULL, &e)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(cases[i].name, cases[i].st == LOOM_EINVAL, "status %d", cases[i].st);
    CHECK("gif bad: nothing written for bad arguments", access(at("b.gif"), F_OK) != 0 &&
          access(at("b.gif.tmp"), F_OK) != 0, "file exists");
    loom_status st = loom_gif_write(at("no/such/dir.gif"), px, 1, 1, 2, 2, NULL, &e);
    CHECK("gif bad: a missing directory is an I/O error naming the file", st == LOOM_EIO && strstr(e.msg, "dir.gif"),
          "%d %s", st, e.msg);
}

static void test_umask(void) {
    uint8_t px[4] = {1, 2, 3, 4};
    loom_error e = {{0}};
    const mode_t masks[2] = {022, 077};
    for (int i = 0; i < 2; i++) {
        mode_t old = umask(masks[i]);
        char name[32];
        snprintf(name, sizeof name, "m%d.gif", i);
        loom_status st = loom_gif_write(at(name), px, 1, 1, 2, 2, NULL, &e);
        umask(old);
        struct stat sb;
        mode_t want = 0666 & ~masks[i];
        CHECK(i ? "gif mode: umask 077 gives 0600" : "gif mode: umask 022 gives 0644 (not giflib's 0600)",
              st == LOOM_OK && stat(at(name), &sb) == 0 && (sb.st_mode & 0777) == want, "mode %o want %o",
              (unsigned)(sb.st_mode & 0777), (unsigned)want);
    }
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    test_roundtrip();
    test_bad();
    test_umask();
    const char *files[] = {"g.gif", "c.gif", "k.gif", "1.gif", "m0.gif", "m1.gif"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) remove(at(files[i]));
    rmdir(dir);
    CHECK_DONE();
}
