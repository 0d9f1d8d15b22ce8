/* Validation splits and stratified orders of a data set. */
#include "trainer.h"
#include "data/seqgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the split's own stream, apart from initialisation and the epoch shuffles */
#define SPLIT_STREAM 0x243f6a8885a308d3ULL


size_t loom_valid_default(size_t n) {
    size_t v = n / 10;
    if (v == 0 && n >= 2) v = 1;
    return v > 5000 ? 5000 : v;
}

static void fisher_yates(size_t *v, size_t n, loom_rng *r) {
    for (size_t i = n; i > 1; i--) {
        size_t j = loom_rng_below(r, i), t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
}

typedef struct {
    double key;
    size_t cls, idx;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->cls < y->cls ? -1 : x->cls > y->cls;
}

loom_status loom_images_order(size_t *order, const loom_images *im, uint64_t seed, loom_error *err) {
    const size_t n = im->n;
    loom_rng r;
    loom_rng_seed(&r, seed ^ SPLIT_STREAM);
    for (size_t i = 0; i < n; i++) order[i] = i;
    if (!im->labels || im->nclasses <= 0) {
        fisher_yates(order, n, &r);
        return LOOM_OK;
    }
    /* each class shuffled on its own; its k-th image (of n_c) gets the key
     * (k + 0.5) / n_c, and the classes are merged by key: every prefix holds
     * each class in proportion, within one image */
    const size_t nc = (size_t)im->nclasses;
    size_t *count = calloc(nc + 1, sizeof *count), *start = calloc(nc + 1, sizeof *start);
    size_t *byc = malloc((n ? n : 1) * sizeof *byc);
    keyed *k = malloc((n ? n : 1) * sizeof *k);
    if (!count || !start || !byc || !k) {
        free(count), free(start), free(byc), free(k);
        return loom_fail(err, LOOM_ENOMEM, "split of %zu images: out of memory", n);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t c = im->labels[i];
        count[c >= 0 && (size_t)c < nc ? (size_t)c : nc]++;
    }
    for (size_t c = 1; c <= nc; c++) start[c] = start[c - 1] + count[c - 1];
    size_t *fill = calloc(nc + 1, sizeof *fill);
    if (!fill) {
        free(count), free(start), free(byc), free(k);
        return loom_fail(err, LOOM_ENOMEM, "split of %zu images: out of memory", n);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t c = im->labels[i];
        size_t cc = c >= 0 && (size_t)c < nc ? (size_t)c : nc;
        byc[start[cc] + fill[cc]++] = i;
    }
    size_t m = 0;
    for (size_t c = 0; c <= nc; c++) {
        fisher_yates(byc + start[c], count[c], &r);
        for (size_t q = 0; q < count[c]; q++)
            k[m++] = (keyed){((double)q + 0.5) / (double)count[c], c, byc[start[c] + q]};
    }
    qsort(k, n, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < n; i++) order[i] = k[i].idx;
    free(count), free(start), free(byc), free(k), free(fill);
    return LOOM_OK;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

loom_status loom_train_split(size_t **train_idx, size_t *ntrain, size_t **valid_idx,
                             size_t *nvalid, const loom_images *data, const loom_train_opts *o,
                             loom_error *err) {
    *train_idx = *valid_idx = NULL, *ntrain = *nvalid = 0;
    const size_t n = data->n, v = o->valid;
    if (v == LOOM_VALID_AUTO)
        return loom_fail(err, LOOM_EINVAL, "loom_train_split: the validation size is not resolved");
    if (v >= n)
        return loom_fail(err, LOOM_EINVAL, "%s: --valid %zu leaves no training images (the set has %zu)",
                         o->data, v, n);
    size_t *order = malloc(n * sizeof *order), *tr = malloc((n - v) * sizeof *tr);
    size_t *va = malloc((v ? v : 1) * sizeof *va);
    if (!order || !tr || !va) {
        free(order), free(tr), free(va);
        return loom_fail(err, LOOM_ENOMEM, "%s: out of memory for the split of %zu images", o->data, n);
    }
    if (o->valid_split == LOOM_SPLIT_TAIL) {
        for (size_t i = 0; i < n; i++) order[i] = i < v ? n - v + i : i - v;
    } else {
        loom_status st = loom_images_order(order, data, o->seed, err);
        if (st) {
            free(order), free(tr), free(va);
            return st;
        }
    }
    memcpy(va, order, v * sizeof *va);
    memcpy(tr, order + v, (n - v) * sizeof *tr);
    qsort(tr, n - v, sizeof *tr, cmp_size); /* training images in file order */
    free(order);
    *train_idx = tr, *ntrain = n - v, *valid_idx = va, *nvalid = v;
    return LOOM_OK;
}

loom_status loom_images_gather(loom_images *dst, const loom_images *src, const size_t *idx,
                               size_t n, loom_error *err) {
    memset(dst, 0, sizeof *dst);
    const size_t eb = loom_images_example_bytes(src);
    size_t bytes;
    if (!n) return loom_fail(err, LOOM_EINVAL, "loom_images_gather: no images");
    if (!loom_mul_ok(n, eb, &bytes)) return loom_fail(err, LOOM_ENOMEM, "loom_images_gather: size overflows");
    loom_images s = *src; /* shape fields (and any added later) as the source's */
    if (src->gen) { /* a generated set: the same generator, the chosen ids */
        s.n = n, s.labels = NULL, s.nclasses = 0, s.class_names = NULL;
        if (!(s.gen_ids = malloc(n * sizeof *s.gen_ids)))
            return loom_fail(err, LOOM_ENOMEM, "loom_images_gather: out of memory");
        for (size_t i = 0; i < n; i++) s.gen_ids[i] = loom_images_gen_id(src, idx[i]);
        loom_seqgen_ref(s.gen);
        *dst = s;
        return LOOM_OK;
    }
    s.n = n, s.pixels = malloc(bytes), s.labels = NULL;
    s.class_names = NULL; /* not copied: the source keeps them */
    if (!s.pixels) return loom_fail(err, LOOM_ENOMEM, "loom_images_gather: out of memory for %zu bytes", bytes);
    if (src->labels && !(s.labels = malloc(n * sizeof *s.labels))) {
        free(s.pixels);
        return loom_fail(err, LOOM_ENOMEM, "loom_images_gather: out of memory for %zu labels", n);
    }
    for (size_t i = 0; i < n; i++) {
        loom_images_example(src, idx[i], s.pixels + i * eb);
        if (s.labels) s.labels[i] = src->labels[idx[i]];
    }
    *dst = s;
    return LOOM_OK;
}

/* "a, b, c" of at most ~200 characters */
static void list_names(char *out, size_t cap, char *const *names, size_t n) {
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && len + 8 < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - len) {
            snprintf(out + (cap > 5 ? cap - 5 : 0), 5, "...");
            return;
        }
        len += (size_t)w;
    }
}

loom_status loom_classes_match(const loom_train_opts *o, const loom_images *im, const char *what,
                               loom_error *err) {
    if (!o->class_names || !im->class_names) return LOOM_OK; /* numbers only: nothing to compare */
    bool same = o->nclass_names == (size_t)im->nclasses;
    for (size_t i = 0; same && i < o->nclass_names; i++) same = strcmp(o->class_names[i], im->class_names[i]) == 0;
    if (same) return LOOM_OK;
    char a[200], b[200];
    list_names(a, sizeof a, im->class_names, (size_t)im->nclasses);
    list_names(b, sizeof b, o->class_names, o->nclass_names);
    return loom_fail(err, LOOM_EINVAL, "%s: its classes (%s) are not the run's training classes (%s)", what, a, b);
}
