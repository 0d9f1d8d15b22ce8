/* The grid font (src/io/font.c): known strings render to the expected pixels,
 * every character Fashion-MNIST's class names need has a glyph of its own,
 * no two glyphs look alike, clipping, and the labelled grid's size and
 * margin (src/io/font.h, loom_grid_label_rows). */
#include "check.h"
#include "io/font.h"

#include <string.h>

/* plane (h, w) as rows of '#' (== ink) and '.' */
static void ascii(char *out, const uint8_t *plane, size_t h, size_t w, uint8_t ink) {
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++) *out++ = plane[y * w + x] == ink ? '#' : '.';
        *out++ = '\n';
    }
    *out = 0;
}

static int render(char *out, const char *s, size_t h, size_t w, size_t x, size_t y) {
    uint8_t plane[16 * 64];
    memset(plane, 9, sizeof plane);
    loom_font_draw(plane, h, w, x, y, s, LOOM_LABEL_CHARS, 200);
    ascii(out, plane, h, w, 200);
    for (size_t i = 0; i < h * w; i++)
        if (plane[i] != 9 && plane[i] != 200) return 0; /* paper is left as it was */
    return 1;
}

int main(void) {
    char got[16 * 66];
    /* "Hi7": capital, lower case with a dot, a digit, one column of paper between */
    const char *hi7 = "#...#...#...#####\n"
                      "#...#...........#\n"
                      "#...#..##......#.\n"
                      "#####...#.....#..\n"
                      "#...#...#....#...\n"
                      "#...#...#....#...\n"
                      "#...#..###...#...\n"
                      ".................\n"
                      ".................\n";
    int paper = render(got, "Hi7", 9, 17, 0, 0);
    CHECK("font: \"Hi7\" renders to its pixels", strcmp(got, hi7) == 0, "got\n%s", got);
    CHECK("font: paper is left as it was", paper, "a pixel other than ink or the old value");
    /* a descender goes below the baseline: "py" */
    const char *py = "...........\n"
                     "...........\n"
                     "####..#...#\n"
                     "#...#.#...#\n"
                     "#...#.#...#\n"
                     "#...#.#...#\n"
                     "####...####\n"
                     "#.........#\n"
                     "#......###.\n";
    render(got, "py", 9, 11, 0, 0);
    CHECK("font: p and y descend two rows below the baseline", strcmp(got, py) == 0, "got\n%s", got);
    /* clipped at the plane's edges, placed at (x, y) */
    const char *clip = "......\n"
                       "....##\n"
                       "...#..\n";
    render(got, "A", 3, 6, 3, 1);
    CHECK("font: drawn at (x, y), clipped at the edges", strcmp(got, clip) == 0, "got\n%s", got);
    CHECK("font: widths", loom_font_width("", 24) == 0 && loom_font_width("A", 24) == 5 &&
          loom_font_width("Ankle boot", 24) == 59 && loom_font_width("Ankle boot", 3) == 17,
          "%zu %zu %zu %zu", loom_font_width("", 24), loom_font_width("A", 24),
          loom_font_width("Ankle boot", 24), loom_font_width("Ankle boot", 3));
    CHECK("font: a UTF-8 character is one box", loom_font_width("\xc3\xa9t\xc3\xa9", 24) == 17,
          "%zu", loom_font_width("\xc3\xa9t\xc3\xa9", 24));
    const char *box = "#####\n#...#\n#...#\n#...#\n#...#\n#...#\n#####\n.....\n.....\n";
    render(got, "\xc3\xa9", 9, 5, 0, 0);
    CHECK("font: a character without a glyph is a hollow box", strcmp(got, box) == 0, "got\n%s", got);

    /* every character of Fashion-MNIST's names, the digits, both alphabets */
    const char *need = "T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Ankle boot "
                       "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.()";
    int all = 1;
    for (const char *c = need; *c; c++)
        if (!loom_font_has(*c)) all = 0, printf("# no glyph for '%c'\n", *c);
    CHECK("font: a glyph for every character class names need", all, "see above");
    /* no two printable characters render alike (e.g. 0 and O, 1 and l) */
    char r1[16 * 66], r2[16 * 66];
    int alike = 0;
    for (int a = 33; a < 127; a++)
        for (int b = a + 1; b < 127; b++) {
            if (!loom_font_has((char)a) || !loom_font_has((char)b)) continue;
            const char sa[2] = {(char)a, 0}, sb[2] = {(char)b, 0};
            render(r1, sa, 9, 5, 0, 0), render(r2, sb, 9, 5, 0, 0);
            if (strcmp(r1, r2) == 0) alike++, printf("# '%c' and '%c' look alike\n", a, b);
        }
    CHECK("font: no two glyphs look alike", alike == 0, "%d pairs", alike);

    /* a labelled grid: 2 rows of 2 images 8 high, 1 px pad -> 19 high, 19 wide;
     * labels "Ab" (11 px) and none: a margin of 13 px, the text at (1, 1 + 0) */
    uint8_t imgs[4 * 8 * 8];
    memset(imgs, 255, sizeof imgs);
    uint8_t *g = NULL;
    size_t gh, gw;
    loom_error err;
    loom_status st = loom_grid_channels(&g, &gh, &gw, imgs, 4, 1, 8, 8, 2, 1, 128, &err);
    const char *labels[2] = {"Ab", NULL};
    if (!st) st = loom_grid_label_rows(&g, 1, &gh, &gw, 8, 1, labels, 2, 128, &err);
    CHECK("font: a labelled grid is as high and wider by the label + 2", !st && gh == 19 && gw == 19 + 13,
          "%d %zux%zu", (int)st, gw, gh);
    if (!st && gw == 32) {
        /* rows 1..8 are row 0's images; an 8-high row centres the 9-row cell: y 1 + 0 */
        char want[14 * 20 + 1], *p = want;
        const char *ab[9] = {".###..#.....", "#...#.#.....", "#...#.#.##..", "#####.##..#.", "#...#.#...#.",
                             "#...#.#...#.", "#...#.####..", "............", "............"};
        for (int y = 0; y < 19; y++) {
            for (int x = 0; x < 13; x++) *p++ = x >= 1 && y >= 1 && y <= 8 && ab[y - 1][x - 1] == '#' ? '#' : '.';
            *p++ = '\n';
        }
        *p = 0;
        char margin[14 * 20 + 1], *q = margin;
        int images_kept = 1;
        for (size_t y = 0; y < gh; y++) {
            for (size_t x = 0; x < 13; x++) *q++ = g[y * gw + x] == 0 ? '#' : g[y * gw + x] == 128 ? '.' : '?';
            *q++ = '\n';
            for (size_t x = 13; x < gw; x++) {
                const int pad = y % 9 == 0 || (x - 13) % 9 == 0;
                images_kept &= g[y * gw + x] == (pad ? 128 : 255);
            }
        }
        *q = 0;
        CHECK("font: the margin holds the label, black on the mid-gray pad", strcmp(margin, want) == 0,
              "got\n%s", margin);
        CHECK("font: the images are the unlabelled grid's, moved right", images_kept, "a pixel moved");
    }
    free(g);
    g = NULL;
    const char *none[1] = {""};
    st = loom_grid_channels(&g, &gh, &gw, imgs, 2, 1, 8, 8, 2, 1, 0, &err);
    if (!st) st = loom_grid_label_rows(&g, 1, &gh, &gw, 8, 1, none, 1, 0, &err);
    CHECK("font: only empty labels leave the grid as it is", !st && gw == 19 && gh == 10, "%zux%zu", gw, gh);
    free(g);
    CHECK_DONE();
}
