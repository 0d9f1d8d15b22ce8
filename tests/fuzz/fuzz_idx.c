/* Fuzzes the IDX reader through the data-spec resolver (src/data/images.c,
 * src/data/idx.c): raw and gzip images, with or without a label file.
 * Input: byte 0 bit 0 = a label file follows; bytes 1-2 (little-endian)
 * = where the images end and the labels begin (mod the remaining length);
 * the rest is the file content(s). */
#include "fuzz.h"
#include "loom.h"

#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[300], images[340], labels[340];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/idx", fuzz_tmpdir());
        snprintf(images, sizeof images, "%s/train-images-idx3-ubyte", dir);
        snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", dir);
        if (mkdir(dir, 0700) != 0) abort();
    }
    if (size < 3) return 0;
    int with_labels = data[0] & 1;
    size_t rest = size - 3, split = rest;
    if (with_labels && rest) split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    if (fuzz_write(images, data + 3, split) != 0) abort();
    unlink(labels);
    if (with_labels && fuzz_write(labels, data + 3 + split, rest - split) != 0) abort();

    loom_images im;
    loom_error err;
    if (loom_images_load(&im, dir, "train", &err) == LOOM_OK) {
        /* what the trainer relies on */
        if (im.n == 0 || im.h == 0 || im.w == 0 || !im.pixels || im.t != 1 || im.c != 1) abort();
        volatile uint8_t sink = im.pixels[im.n * loom_images_example_bytes(&im) - 1];
        (void)sink;
        if (im.labels)
            for (size_t i = 0; i < im.n; i++)
                if (im.labels[i] < 0 || im.labels[i] >= im.nclasses) abort();
        loom_images_free(&im);
    }
    return 0;
}
