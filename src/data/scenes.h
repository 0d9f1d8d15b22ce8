/* fashion-mnist-scenes (docs/renet.md): scenes of 2 to 4 Fashion-MNIST items
 * placed at random on a 64x64 canvas, overlaps allowed, later items on top.
 * An item covers the pixels where its value is at least
 * LOOM_SCENE_THRESHOLD; there the canvas takes its value and the label map
 * its class + 1; label 0 is the background. An example is one 128x64 gray
 * image: the scene (rows 0-63) above its label map (rows 64-127), so that
 * scenes pass through the loaders, splits and trainer as images do. */
#ifndef LOOM_SCENES_H
#define LOOM_SCENES_H

#include "common.h"

#define LOOM_SCENE_CLASSES 11 /* background, then the 10 Fashion-MNIST classes */
#define LOOM_SCENE_SIZE 64
#define LOOM_SCENE_THRESHOLD 32
#define LOOM_SCENE_MAX_ITEMS 4
#define LOOM_SCENES_TRAIN 10000 /* scenes made from the training images (seed 1) */
#define LOOM_SCENES_TEST 1000   /* the fixed test set, from the test images (seed 2) */

typedef struct loom_scene_item {
    size_t src;  /* index of the item in the source images */
    int32_t cls; /* its Fashion-MNIST class */
    size_t y, x; /* its top-left corner on the canvas */
} loom_scene_item;

/* out: n examples (n, 128, 64) made from src (28x28 gray with labels) with
 * seed; items (n, LOOM_SCENE_MAX_ITEMS) and nitems (n) receive the
 * placements, bottom item first, when not NULL. */
loom_status loom_scenes_make(loom_images *out, loom_scene_item *items, size_t *nitems,
                             const loom_images *src, size_t n, uint64_t seed, loom_error *err);

#endif
