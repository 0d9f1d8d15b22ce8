/* Load a trained model (a run directory or a checkpoint) and write a grid of
 * samples as a PNG: the same grid as `loom sample RUN --n N --seed S`.
 *
 *   cc $(pkg-config --cflags loom) sample_grid.c $(pkg-config --libs loom) -o sample_grid
 *   ./sample_grid RUN_DIR out.png [N [SEED]]
 */
#include <loom.h>

#include <stdio.h>
#include <stdlib.h>

static int die(const char *what, loom_status st, const loom_error *err) {
    fprintf(stderr, "sample_grid: %s: %s (%s)\n", what, err->msg, loom_status_name(st));
    return st == LOOM_EINVAL || st == LOOM_EFORMAT ? 2 : 1;
}

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
    loom_error err;
    loom_context *ctx;
    loom_model *m;
    loom_status st = loom_context_create(&ctx, 0, &err); /* 0: every CPU */
    if (st) return die("context", st, &err);
    if ((st = loom_model_load(&m, ctx, argv[1], &err))) return die(argv[1], st, &err);
    const size_t h = loom_model_height(m), w = loom_model_width(m);
    printf("%s: %s, %zu parameters, %zu x %zu images\n", argv[1], loom_model_name(m),
           loom_model_num_params(m), h, w);

    /* a conditional model needs a class per image: cycle through them */
    const int nclasses = loom_model_num_classes(m);
    int32_t *labels = nclasses ? malloc(n * sizeof *labels) : NULL;
    for (size_t i = 0; labels && i < n; i++) labels[i] = (int32_t)(i % (size_t)nclasses);
    uint8_t *imgs = malloc(n * h * w);
    if (!imgs || (nclasses && !labels)) return fprintf(stderr, "sample_grid: out of memory\n"), 1;
    if ((st = loom_model_generate(m, imgs, labels, n, 1.0f, seed, &err))) return die("sample", st, &err);

    size_t cols = 1;
    while (cols * cols < n) cols++; /* a square grid */
    uint8_t *grid;
    size_t gh, gw;
    if ((st = loom_grid(&grid, &gh, &gw, imgs, n, h, w, cols, 1, 128, &err)) ||
        (st = loom_png_write_gray(argv[2], grid, gh, gw, &err)))
        return die(argv[2], st, &err);
    printf("%zu samples (seed %llu) -> %s (%zu x %zu)\n", n, (unsigned long long)seed, argv[2], gh, gw);
    free(grid), free(imgs), free(labels);
    loom_model_free(m);
    loom_context_free(ctx);
    return 0;
}
