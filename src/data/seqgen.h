/* The reference-counted generator behind a generated loom_images set
 * (sequences.c): gathers and slices of a set share it. */
#ifndef LOOM_SEQGEN_H
#define LOOM_SEQGEN_H

#include "common.h"

loom_seqgen *loom_seqgen_ref(loom_seqgen *g);
void loom_seqgen_unref(loom_seqgen *g);
/* the generator's sequence number of example k of im */
static inline size_t loom_images_gen_id(const loom_images *im, size_t k) {
    return im->gen_ids ? im->gen_ids[k] : k;
}

#endif
