/* Load a trained model (a run directory or a checkpoint) and write a grid of
 * samples as a PNG: the same grid as `loom sample RUN --n N --seed S`.
 *
 *   cc $(pkg-config --cflags loom) sample_grid.c $(pkg-config --libs loom) -o sample_grid
 *   ./sample_grid RUN_DIR out.png [N [SEED]]
 */
#include <loom.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: sample_grid RUN_DIR|CHECKPOINT OUT.png [N [SEED]]\n");
        return 2;
    }
    size_t n = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 16;
    uint64_t seed = argc > 4 ? (uint64_t)strtoull(argv[4], NULL, 10) : 1;
    if (n == 0) {
        fprintf(stderr, "sample_grid: N must be >= 1\n");
        return 2;
    }
    loom_error err = {{0}};
    loom_context *ctx = NULL;
    loom_model *m = NULL;
    int32_t *labels = NULL;
    uint8_t *imgs = NULL, *grid = NULL;
    loom_status st = loom_context_create(&ctx, 0, &err); /* 0: every CPU */
    if (st || (st = loom_model_load(&m, ctx, argv[1], &err))) goto done;
    const size_t h = loom_model_height(m), w = loom_model_width(m), c = loom_model_channels(m);
    printf("%s: %s, %zu parameters, %zu x %zu images, %zu channel%s\n", argv[1], loom_model_name(m),
           loom_model_num_params(m), h, w, c, c == 1 ? "" : "s");

    /* a conditional model needs a class per image: cycle through them */
    const int nclasses = loom_model_num_classes(m);
    labels = nclasses ? malloc(n * sizeof *labels) : NULL;
    imgs = malloc(n * c * h * w); /* (n, c, h, w) */
    if (!imgs || (nclasses && !labels)) {
        st = LOOM_ENOMEM;
        snprintf(err.msg, sizeof err.msg, "out of memory for %zu images", n);
        goto done;
    }
    for (size_t i = 0; labels && i < n; i++) labels[i] = (int32_t)(i % (size_t)nclasses);
    if ((st = loom_model_generate(m, imgs, labels, n, 1.0f, seed, &err))) goto done;

    size_t cols = 1, gh, gw;
    while (cols * cols < n) cols++; /* a square grid */
    if ((st = loom_grid_channels(&grid, &gh, &gw, imgs, n, c, h, w, cols, 1, 128, &err)) ||
        (st = c == 3 ? loom_png_write_rgb(argv[2], grid, gh, gw, &err)
                     : loom_png_write_gray(argv[2], grid, gh, gw, &err)))
        goto done;
    printf("%zu samples (seed %llu) -> %s (%zu x %zu)\n", n, (unsigned long long)seed, argv[2], gh, gw);

done:
    if (st) fprintf(stderr, "sample_grid: %s (%s)\n", err.msg, loom_status_name(st));
    free(grid), free(imgs), free(labels);
    loom_model_free(m);
    loom_context_free(ctx);
    return st == LOOM_OK ? 0 : (st == LOOM_EINVAL || st == LOOM_EFORMAT ? 2 : 1);
}
