/* loom_images_prepare: what every caller (loom train/eval, the training API)
 * does to a loaded set before a model sees it. */
#include "loom.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    uint8_t *px = calloc(2 * 3 * 4, 1); /* the conversion reallocates it */
    for (size_t i = 0; i < 4; i++) px[i] = 255, px[4 + i] = 0, px[8 + i] = 0; /* image 0: red */
    loom_images im = {.n = 2, .h = 2, .w = 2, .t = 1, .c = 3, .pixels = px, .gray_to_rgb = 1};
    char note[512];
    loom_error err;
    loom_status st = loom_images_prepare(&im, "D", 0, note, sizeof note, &err);
    CHECK("prepare: colour kept without gray, the replication noted",
          st == LOOM_OK && im.c == 3 && strstr(note, "D: 1 of 2 images are gray, replicated"), "%d '%s'", st, note);
    st = loom_images_prepare(&im, "D", 1, note, sizeof note, &err);
    CHECK("prepare: gray converts (BT.601: red 255 -> 76) and says so",
          st == LOOM_OK && im.c == 1 && im.pixels[0] == 76 && strstr(note, "D: --gray: 2 RGB images converted") &&
          !strstr(note, "replicated"), "%d c %zu px %d '%s'", st, im.c, im.pixels[0], note);
    loom_images fr = {.n = 1, .h = 2, .w = 2, .t = 3, .c = 1, .pixels = im.pixels};
    st = loom_images_prepare(&fr, "V", 0, NULL, 0, &err);
    CHECK("prepare: examples of several frames are refused, naming the data",
          st == LOOM_EINVAL && strstr(err.msg, "V: examples of 3 frames"), "%d %s", st, st ? err.msg : "");
    free(im.pixels);
    CHECK_DONE();
}
