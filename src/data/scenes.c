/* fashion-mnist-scenes: scenes.h. */
#include "scenes.h"

#include <stdlib.h>
#include <string.h>

loom_status loom_scenes_make(loom_images *out, loom_scene_item *items, size_t *nitems,
                             const loom_images *src, size_t n, uint64_t seed, loom_error *err) {
    memset(out, 0, sizeof *out);
    const size_t S = LOOM_SCENE_SIZE;
    if (!src->labels || src->h != 28 || src->w != 28 || (src->c ? src->c : 1) != 1 || src->n == 0)
        return loom_fail(err, LOOM_EINVAL, "scenes need 28x28 gray labelled items (Fashion-MNIST)");
    out->pixels = calloc(n ? n : 1, 2 * S * S);
    if (!out->pixels) return loom_fail(err, LOOM_ENOMEM, "scenes: out of memory for %zu scenes", n);
    out->n = n, out->h = 2 * S, out->w = S, out->c = 1, out->t = 1;
    loom_rng r;
    loom_rng_seed(&r, seed);
    for (size_t b = 0; b < n; b++) {
        uint8_t *img = out->pixels + b * 2 * S * S, *lab = img + S * S;
        const size_t k = 2 + loom_rng_below(&r, LOOM_SCENE_MAX_ITEMS - 1);
        for (size_t q = 0; q < k; q++) {
            const loom_scene_item it = {.src = loom_rng_below(&r, src->n), .y = loom_rng_below(&r, S - 28 + 1),
                                        .x = loom_rng_below(&r, S - 28 + 1)};
            const int32_t cls = src->labels[it.src];
            const uint8_t *p = src->pixels + it.src * 784;
            for (size_t y = 0; y < 28; y++)
                for (size_t x = 0; x < 28; x++)
                    if (p[y * 28 + x] >= LOOM_SCENE_THRESHOLD) {
                        img[(it.y + y) * S + it.x + x] = p[y * 28 + x];
                        lab[(it.y + y) * S + it.x + x] = (uint8_t)(1 + cls);
                    }
            if (items) {
                items[b * LOOM_SCENE_MAX_ITEMS + q] = it;
                items[b * LOOM_SCENE_MAX_ITEMS + q].cls = cls;
            }
        }
        if (nitems) nitems[b] = k;
    }
    return LOOM_OK;
}
