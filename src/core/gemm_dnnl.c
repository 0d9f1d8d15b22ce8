/* loom_gemm's oneDNN back-end: matmul primitives, one per product shape
 * (transposes, sizes, strides, alpha, beta, fp32 or bf16 inputs), created on
 * first use and kept in a small per-thread cache, so that the thin products
 * of a recurrence (thousands per batch, a few distinct shapes) pay creation
 * once and then only an execute.
 *
 * Threads: Debian's libdnnl runs on OpenMP and would otherwise use
 * omp_get_max_threads() threads inside a product. loom parallelises over
 * micro-shards, and a micro-shard's bits must not depend on the thread count,
 * so every creation and execution here runs with this thread's OpenMP
 * thread count set to 1 (a per-thread ICV, put back afterwards: nothing
 * process-wide changes).
 *
 * Weights repacked: when B is the weights' bf16 shadow (the caller passes its
 * generation), the primitive takes B in the blocked layout it prefers
 * (format "any") and B is reordered into that layout once per thread,
 * primitive and generation, then reused by every call until the caller
 * rounds the weights again. A plain B is repacked by the kernel inside every
 * call, which at grupixel's 32 x 768 x 256 step product cost 1.3x. */
#ifdef LOOM_HAVE_DNNL
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 64 /* per thread; draw, the most varied model, makes ~25 shapes (oneDNN's) */
#define PACK_SLOTS 32  /* repacked weights per thread: a few per layer */

typedef struct {
    int ta, tb, bf16;
    int scaled; /* alpha != 1: given at execution (a runtime scale), not part of the shape */
    int packed; /* B is read from a repacked copy (pack_get) */
    size_t m, n, k, lda, ldb, ldc;
    float beta;
} gemm_key;

typedef struct {
    gemm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, sp; /* sp: scratchpad, or NULL */
    dnnl_memory_t alpha;       /* scaled: one f32, the output scale */
    void *sp_buf;
    unsigned long last; /* LRU tick */
    unsigned long id;   /* this thread's number for the primitive, never reused */
    /* packed: b holds the primitive's layout; bplain the caller's, and reord
     * goes from one to the other; bsize bytes */
    dnnl_memory_t bplain;
    dnnl_primitive_t reord;
    size_t bsize;
} gemm_entry;

typedef struct {
    const void *src;       /* the caller's B (in the weights' shadow) */
    unsigned long gen, id; /* its generation (0: none yet); the primitive laid out for */
    void *buf;
    size_t cap;
    unsigned long last;
} pack_slot;

typedef struct {
    dnnl_stream_t stream;
    gemm_entry e[CACHE_SLOTS];
    size_t n;
    unsigned long tick, next_id;
    pack_slot packs[PACK_SLOTS];
    size_t npacks;
} gemm_cache;

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static _Thread_local gemm_cache *tcache;

static void entry_free(gemm_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    if (e->sp) dnnl_memory_destroy(e->sp);
    if (e->alpha) dnnl_memory_destroy(e->alpha);
    if (e->bplain) dnnl_memory_destroy(e->bplain);
    if (e->reord) dnnl_primitive_destroy(e->reord);
    free(e->sp_buf);
    memset(e, 0, sizeof *e);
}

static void cache_free(void *p) {
    gemm_cache *c = p;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) entry_free(&c->e[i]);
    for (size_t i = 0; i < c->npacks; i++) free(c->packs[i].buf);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c);
}

static void engine_init(void) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
    pthread_key_create(&cache_key, cache_free);
}

static gemm_cache *cache_get(void) {
    if (tcache) return tcache;
    pthread_once(&engine_once, engine_init);
    if (!engine) return NULL;
    gemm_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (dnnl_stream_create(&c->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        free(c);
        return NULL;
    }
    pthread_setspecific(cache_key, c); /* freed when the thread ends */
    return tcache = c;
}

size_t loom_gemm_onednn_cached(void) { return tcache ? tcache->n : 0; }

static _Thread_local size_t fallbacks, repacks;
size_t loom_gemm_onednn_fallbacks(void) { return fallbacks; }
size_t loom_gemm_onednn_repacks(void) { return repacks; }

static int entry_make(gemm_entry *e, const gemm_key *k) {
    const dnnl_data_type_t in = k->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t ma, mb, mc;
    const dnnl_dims_t da = {(dnnl_dim_t)k->m, (dnnl_dim_t)k->k}, db = {(dnnl_dim_t)k->k, (dnnl_dim_t)k->n},
                      dc = {(dnnl_dim_t)k->m, (dnnl_dim_t)k->n};
    const dnnl_dims_t sa = {k->ta ? 1 : (dnnl_dim_t)k->lda, k->ta ? (dnnl_dim_t)k->lda : 1};
    const dnnl_dims_t sb = {k->tb ? 1 : (dnnl_dim_t)k->ldb, k->tb ? (dnnl_dim_t)k->ldb : 1};
    const dnnl_dims_t sc = {(dnnl_dim_t)k->ldc, 1};
    if (dnnl_memory_desc_init_by_strides(&ma, 2, da, in, sa) ||
        dnnl_memory_desc_init_by_strides(&mb, 2, db, in, sb) ||
        dnnl_memory_desc_init_by_strides(&mc, 2, dc, dnnl_f32, sc))
        return -1;
    dnnl_memory_desc_t many; /* packed: the layout the primitive prefers */
    if (k->packed && dnnl_memory_desc_init_by_tag(&many, 2, db, in, dnnl_format_tag_any)) return -1;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &ma, k->packed ? &many : &mb, NULL, &mc)) return -1;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    int rc = -1;
    if (dnnl_primitive_attr_create(&attr)) goto done;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)) goto done;
    const float runtime = DNNL_RUNTIME_F32_VAL;
    if (k->scaled && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &runtime)) goto done;
    if (k->beta != 0.0f) {
        if (dnnl_post_ops_create(&po) || dnnl_post_ops_append_sum(po, k->beta) ||
            dnnl_primitive_attr_set_post_ops(attr, po))
            goto done;
    }
    if (dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL)) goto done;
    if (dnnl_primitive_create(&e->prim, pd)) goto done;
    const dnnl_memory_desc_t *mw = k->packed ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : &mb;
    if (!mw || dnnl_memory_create(&e->a, &ma, engine, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->b, mw, engine, DNNL_MEMORY_NONE) ||
        dnnl_memory_create(&e->c, &mc, engine, DNNL_MEMORY_NONE))
        goto done;
    if (k->packed) {
        e->bsize = dnnl_memory_desc_get_size(mw);
        if (dnnl_memory_create(&e->bplain, &mb, engine, DNNL_MEMORY_NONE) ||
            dnnl_reorder_primitive_desc_create(&rpd, &mb, engine, mw, engine, NULL) ||
            dnnl_primitive_create(&e->reord, rpd))
            goto done;
    }
    if (k->scaled) {
        dnnl_memory_desc_t ms;
        const dnnl_dims_t one = {1};
        if (dnnl_memory_desc_init_by_tag(&ms, 1, one, dnnl_f32, dnnl_a) ||
            dnnl_memory_create(&e->alpha, &ms, engine, DNNL_MEMORY_NONE))
            goto done;
    }
    const dnnl_memory_desc_t *spd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t sps = spd ? dnnl_memory_desc_get_size(spd) : 0;
    if (sps) {
        if (!(e->sp_buf = aligned_alloc(64, (sps + 63) / 64 * 64))) goto done;
        if (dnnl_memory_create(&e->sp, spd, engine, e->sp_buf)) goto done;
    }
    e->key = *k;
    rc = 0;
done:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) entry_free(e);
    return rc;
}

/* the cached entry for k, made (evicting the least recently used) if new */
static gemm_entry *lookup(gemm_cache *c, const gemm_key *k) {
    c->tick++;
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(&c->e[i].key, k, sizeof *k) == 0) {
            c->e[i].last = c->tick;
            return &c->e[i];
        }
    size_t slot = c->n;
    if (c->n == CACHE_SLOTS) {
        slot = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].last < c->e[slot].last) slot = i;
        entry_free(&c->e[slot]);
    } else {
        c->n++;
    }
    c->e[slot].id = ++c->next_id;
    if (entry_make(&c->e[slot], k)) {
        /* keep the table dense: move the last entry into the hole */
        c->n--;
        if (slot != c->n) c->e[slot] = c->e[c->n], memset(&c->e[c->n], 0, sizeof c->e[0]);
        return NULL;
    }
    c->e[slot].last = c->tick;
    return &c->e[slot];
}

/* b repacked for entry e at generation gen: this thread's copy, reordered
 * now if it has none of that generation; NULL if that fails */
static void *pack_get(gemm_cache *c, gemm_entry *e, const void *b, unsigned long gen) {
    pack_slot *s = NULL;
    for (size_t i = 0; i < c->npacks && !s; i++)
        if (c->packs[i].src == b && c->packs[i].id == e->id) s = &c->packs[i];
    if (s && s->gen == gen) {
        s->last = c->tick;
        return s->buf;
    }
    if (!s) { /* a free slot, or the least recently used */
        if (c->npacks < PACK_SLOTS) {
            s = &c->packs[c->npacks++];
        } else {
            s = &c->packs[0];
            for (size_t i = 1; i < c->npacks; i++)
                if (c->packs[i].last < s->last) s = &c->packs[i];
        }
        s->src = b, s->id = e->id;
    }
    s->gen = 0, s->last = c->tick; /* not valid until the reorder has run */
    if (e->bsize > s->cap) {
        free(s->buf);
        s->buf = aligned_alloc(64, (e->bsize + 63) / 64 * 64);
        s->cap = s->buf ? e->bsize : 0;
        if (!s->buf) return NULL;
    }
    dnnl_memory_set_data_handle(e->bplain, (void *)b);
    dnnl_memory_set_data_handle(e->b, s->buf);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, e->bplain}, {DNNL_ARG_TO, e->b}};
    if (dnnl_primitive_execute(e->reord, c->stream, 2, args) != dnnl_success ||
        dnnl_stream_wait(c->stream) != dnnl_success)
        return NULL;
    s->gen = gen;
    repacks++;
    return s->buf;
}

/* oneDNN could not make the product: OpenBLAS, on fp32 copies of bf16 inputs */
static void fallback(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const void *a,
                     size_t lda, const void *b, size_t ldb, float beta, float *c, size_t ldc,
                     bool bf16) {
    if (!bf16) {
        loom_gemm_openblas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const size_t ra = ta ? k : m, rb = tb ? n : k;
    float *fa = malloc(ra * lda * sizeof *fa), *fb = malloc(rb * ldb * sizeof *fb);
    if (fa && fb) {
        const uint16_t *ha = a, *hb = b;
        for (size_t i = 0; i < ra * lda; i++) fa[i] = loom_bf16_to_f32(ha[i]);
        for (size_t i = 0; i < rb * ldb; i++) fb[i] = loom_bf16_to_f32(hb[i]);
        loom_gemm_openblas(ta, tb, m, n, k, alpha, fa, lda, fb, ldb, beta, c, ldc);
    }
    free(fa), free(fb);
}

void loom_gemm_onednn(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const void *a,
                      size_t lda, const void *b, size_t ldb, float beta, float *c, size_t ldc,
                      bool bf16, unsigned long bgen) {
    if (m == 0 || n == 0) return;
    if (k == 0) { /* no product: C = beta C, as cblas does */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    gemm_key key;
    memset(&key, 0, sizeof key); /* padding too: keys compare with memcmp */
    key.ta = ta, key.tb = tb, key.bf16 = bf16;
    key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.scaled = alpha != 1.0f, key.beta = beta, key.packed = bgen != 0;
    const int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
    gemm_cache *cache = cache_get();
    gemm_entry *e = cache ? lookup(cache, &key) : NULL;
    int ok = 0;
    const void *bb = e && e->key.packed ? pack_get(cache, e, b, bgen) : b;
    if (e && bb) {
        dnnl_memory_set_data_handle(e->a, (void *)a);
        dnnl_memory_set_data_handle(e->b, (void *)bb);
        dnnl_memory_set_data_handle(e->c, c);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
        int nargs = 3;
        if (e->sp) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->sp};
        if (e->alpha) {
            dnnl_memory_set_data_handle(e->alpha, &alpha);
            args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_OUTPUT_SCALES, e->alpha};
        }
        ok = dnnl_primitive_execute(e->prim, cache->stream, nargs, args) == dnnl_success &&
             dnnl_stream_wait(cache->stream) == dnnl_success;
    }
    if (saved != 1) omp_set_num_threads(saved);
    if (!ok) fallbacks++, fallback(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bf16);
}
#else
typedef int loom_gemm_dnnl_unused; /* ISO C: a translation unit is not empty */
#endif
