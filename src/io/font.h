/* Text in pictures: a 5x7 bitmap font of loom's own (font.c) and row labels
 * for sample grids. Internal: the CLI draws class names with it. */
#ifndef LOOM_FONT_H
#define LOOM_FONT_H

#include "loom.h"

#include <stddef.h>
#include <stdint.h>

#define LOOM_GLYPH_W 5
#define LOOM_GLYPH_H 9 /* 7 rows down to the baseline and 2 for descenders */
#define LOOM_FONT_ADVANCE 6 /* a glyph and a column of paper */
#define LOOM_LABEL_CHARS 24 /* a row label's characters at most (longer ones are cut) */

/* 1 when c has a glyph of its own (not the box drawn for the rest) */
int loom_font_has(char c);
/* pixels across the first max_chars characters of s (UTF-8: one character
 * per sequence): 6 per character less the last column of paper; 0 for "" */
size_t loom_font_width(const char *s, size_t max_chars);
/* draw the first max_chars characters of s into plane (h, w) with their top
 * left corner at (x, y): ink where a glyph has it, the rest left as it is,
 * clipped at the plane's edges */
void loom_font_draw(uint8_t *plane, size_t h, size_t w, size_t x, size_t y, const char *s,
                    size_t max_chars, uint8_t ink);
/* *grid (c, *gh, *gw), a loom_grid_channels grid of images h high with `pad`
 * pixels around them, becomes the same grid with a margin on the left
 * (pad_value, *gw grows by the widest label + 2) holding labels[r] (NULL:
 * none) beside row r, centred on it, black on a light pad, white on a dark
 * one. Every label empty: the grid is left as it is. */
loom_status loom_grid_label_rows(uint8_t **grid, size_t c, size_t *gh, size_t *gw, size_t h,
                                 size_t pad, const char *const *labels, size_t nrows,
                                 uint8_t pad_value, loom_error *err);

#endif
