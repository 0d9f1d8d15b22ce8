/* "Same" stride-1 convolution, channels last (conv2d.h): oneDNN primitives
 * or im2col + loom_gemm. */
#include "conv2d.h"

#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#ifdef LOOM_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#endif

/* images per im2col chunk: the GEMMs get 4 h w rows, enough to be efficient */
#define CHUNK 4

size_t loom_conv2d_scratch_floats(loom_conv2d_dims d) {
    size_t nb = d.n < CHUNK ? d.n : CHUNK;
    return nb * d.h * d.w * d.k * d.k * d.cin;
}

/* ------------------------------------------------------------------ im2col */

/* col (nb h w, k k cin) of images x (nb, h, w, cin) */
static void im2col(float *col, const float *x, size_t nb, loom_conv2d_dims d) {
    const size_t r = d.k / 2, KC = d.k * d.cin;
    for (size_t b = 0; b < nb; b++)
        for (size_t y = 0; y < d.h; y++)
            for (size_t xx = 0; xx < d.w; xx++) {
                float *row = col + ((b * d.h + y) * d.w + xx) * d.k * KC;
                for (size_t ky = 0; ky < d.k; ky++) {
                    float *dst = row + ky * KC;
                    const long sy = (long)y + (long)ky - (long)r;
                    if (sy < 0 || sy >= (long)d.h) {
                        memset(dst, 0, KC * sizeof *dst);
                        continue;
                    }
                    for (size_t kx = 0; kx < d.k; kx++) {
                        const long sx = (long)xx + (long)kx - (long)r;
                        float *o = dst + kx * d.cin;
                        if (sx < 0 || sx >= (long)d.w) memset(o, 0, d.cin * sizeof *o);
                        else memcpy(o, x + ((b * d.h + (size_t)sy) * d.w + (size_t)sx) * d.cin, d.cin * sizeof *o);
                    }
                }
            }
}

/* dx (nb, h, w, cin) += the columns dcol (nb h w, k k cin) put back */
static void col2im(float *dx, const float *dcol, size_t nb, loom_conv2d_dims d) {
    const size_t r = d.k / 2, KC = d.k * d.cin;
    for (size_t b = 0; b < nb; b++)
        for (size_t y = 0; y < d.h; y++)
            for (size_t xx = 0; xx < d.w; xx++) {
                const float *row = dcol + ((b * d.h + y) * d.w + xx) * d.k * KC;
                for (size_t ky = 0; ky < d.k; ky++) {
                    const long sy = (long)y + (long)ky - (long)r;
                    if (sy < 0 || sy >= (long)d.h) continue;
                    for (size_t kx = 0; kx < d.k; kx++) {
                        const long sx = (long)xx + (long)kx - (long)r;
                        if (sx < 0 || sx >= (long)d.w) continue;
                        const float *s = row + ky * KC + kx * d.cin;
                        float *o = dx + ((b * d.h + (size_t)sy) * d.w + (size_t)sx) * d.cin;
                        for (size_t c = 0; c < d.cin; c++) o[c] += s[c];
                    }
                }
            }
}

static void fwd_im2col(float *y, const float *x, const float *wt, loom_conv2d_dims d, float *col) {
    const size_t S = d.h * d.w, KK = d.k * d.k * d.cin;
    for (size_t b0 = 0; b0 < d.n; b0 += CHUNK) {
        const size_t nb = d.n - b0 < CHUNK ? d.n - b0 : CHUNK;
        im2col(col, x + b0 * S * d.cin, nb, d);
        /* y (M, cout) = col (M, KK) @ wt^T */
        loom_gemm(false, true, nb * S, d.cout, KK, 1.0f, col, KK, wt, KK, 0.0f, y + b0 * S * d.cout, d.cout);
    }
}

static void bwd_data_im2col(float *dx, const float *dy, const float *wt, loom_conv2d_dims d, float *col) {
    const size_t S = d.h * d.w, KK = d.k * d.k * d.cin;
    memset(dx, 0, d.n * S * d.cin * sizeof *dx);
    for (size_t b0 = 0; b0 < d.n; b0 += CHUNK) {
        const size_t nb = d.n - b0 < CHUNK ? d.n - b0 : CHUNK;
        /* dcol (M, KK) = dy (M, cout) @ wt (cout, KK) */
        loom_gemm(false, false, nb * S, KK, d.cout, 1.0f, dy + b0 * S * d.cout, d.cout, wt, KK, 0.0f, col, KK);
        col2im(dx + b0 * S * d.cin, col, nb, d);
    }
}

static void bwd_weights_im2col(float *dwt, const float *x, const float *dy, loom_conv2d_dims d, float *col) {
    const size_t S = d.h * d.w, KK = d.k * d.k * d.cin;
    for (size_t b0 = 0; b0 < d.n; b0 += CHUNK) {
        const size_t nb = d.n - b0 < CHUNK ? d.n - b0 : CHUNK;
        im2col(col, x + b0 * S * d.cin, nb, d);
        /* dwt (cout, KK) += dy^T (cout, M) @ col (M, KK) */
        loom_gemm(true, false, d.cout, KK, nb * S, 1.0f, dy + b0 * S * d.cout, d.cout, col, KK, 1.0f, dwt, KK);
    }
}

/* ------------------------------------------------------------------ oneDNN */

#ifdef LOOM_HAVE_DNNL
enum { P_FWD, P_BWD_DATA, P_BWD_WEIGHTS };

typedef struct loom_conv2d_plan {
    int kind;
    int bf16;                         /* activations and weights in bf16, results fp32 */
    loom_conv2d_dims d;
    dnnl_primitive_desc_t fwd_pd, pd; /* pd: this plan's primitive (fwd_pd when kind is P_FWD) */
    dnnl_primitive_t prim, reorder;   /* reorder: user weights <-> the primitive's layout */
    dnnl_memory_t act_a, act_b;       /* the two activations (nhwc), handles set per call */
    dnnl_memory_t wt_user, wt_prim;   /* weights ohwi (user) and in the primitive's layout */
    void *wt_buf;                     /* wt_prim's memory */
    size_t wt_bytes;
    int same_layout;                  /* the primitive takes ohwi weights: no reorder */
    unsigned long gen;                /* weights_gen that wt_buf holds (forward, backward data), */
    const float *wt_src;              /* of these weights: layers of one shape share the plan */
    float *dw_tmp;                    /* backward weights: the result in ohwi before += */
    uint16_t *abf, *bbf;              /* bf16: the activations read, rounded (bbf: backward weights' dy) */
} loom_conv2d_plan;

static void plan_free(loom_conv2d_plan *p) {
    if (!p) return;
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->reorder) dnnl_primitive_destroy(p->reorder);
    if (p->pd && p->pd != p->fwd_pd) dnnl_primitive_desc_destroy(p->pd);
    if (p->fwd_pd) dnnl_primitive_desc_destroy(p->fwd_pd);
    if (p->act_a) dnnl_memory_destroy(p->act_a);
    if (p->act_b) dnnl_memory_destroy(p->act_b);
    if (p->wt_user) dnnl_memory_destroy(p->wt_user);
    if (p->wt_prim) dnnl_memory_destroy(p->wt_prim);
    free(p->wt_buf);
    free(p->dw_tmp);
    free(p->abf);
    free(p->bbf);
    free(p);
}

static int dims_eq(loom_conv2d_dims a, loom_conv2d_dims b) {
    return a.n == b.n && a.h == b.h && a.w == b.w && a.cin == b.cin && a.cout == b.cout && a.k == b.k;
}

/* NULL when oneDNN cannot make this primitive (the caller falls back). In
 * bf16 the activations a primitive reads and its weights are bf16 and what
 * it writes is fp32: forward src, backward-data diff_dst, backward-weights
 * src and diff_dst (the forward hint of a backward primitive is all bf16). */
static loom_conv2d_plan *plan_make(loom_conv2d_cache *c, int kind, loom_conv2d_dims d, int bf16) {
    dnnl_engine_t eng = c->engine;
    loom_conv2d_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = kind, p->d = d, p->bf16 = bf16;
    const dnnl_data_type_t lo = bf16 ? dnnl_bf16 : dnnl_f32;
    const dnnl_data_type_t src_t = kind == P_BWD_DATA ? dnnl_f32 : lo, dst_t = kind == P_FWD ? dnnl_f32 : lo;
    const dnnl_data_type_t w_t = kind == P_BWD_WEIGHTS ? dnnl_f32 : lo;
    const dnnl_dim_t pad = (dnnl_dim_t)(d.k / 2);
    dnnl_dims_t src_dims = {(dnnl_dim_t)d.n, (dnnl_dim_t)d.cin, (dnnl_dim_t)d.h, (dnnl_dim_t)d.w};
    dnnl_dims_t dst_dims = {(dnnl_dim_t)d.n, (dnnl_dim_t)d.cout, (dnnl_dim_t)d.h, (dnnl_dim_t)d.w};
    dnnl_dims_t w_dims = {(dnnl_dim_t)d.cout, (dnnl_dim_t)d.cin, (dnnl_dim_t)d.k, (dnnl_dim_t)d.k};
    dnnl_dims_t strides = {1, 1}, padl = {pad, pad}, padr = {pad, pad};
    dnnl_memory_desc_t src_md, dst_md, w_any, w_user, hsrc_md, hdst_md, hw_any;
    dnnl_convolution_desc_t fd, bd;
    int ok = dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, src_t, dnnl_nhwc) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dst_t, dnnl_nhwc) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, w_t, dnnl_format_tag_any) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&w_user, 4, w_dims, dnnl_f32, dnnl_ohwi) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&hsrc_md, 4, src_dims, lo, dnnl_nhwc) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&hdst_md, 4, dst_dims, kind == P_FWD ? dnnl_f32 : lo, dnnl_nhwc) ==
                 dnnl_success &&
             dnnl_memory_desc_init_by_tag(&hw_any, 4, w_dims, lo, dnnl_format_tag_any) == dnnl_success &&
             dnnl_convolution_forward_desc_init(&fd, kind == P_FWD ? dnnl_forward_inference : dnnl_forward_training,
                                                dnnl_convolution_direct, &hsrc_md, &hw_any, NULL, &hdst_md, strides,
                                                padl, padr) == dnnl_success &&
             dnnl_primitive_desc_create(&p->fwd_pd, &fd, NULL, eng, NULL) == dnnl_success;
    if (ok && kind == P_FWD) {
        p->pd = p->fwd_pd;
    } else if (ok && kind == P_BWD_DATA) {
        ok = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &src_md, &w_any, &dst_md,
                                                      strides, padl, padr) == dnnl_success &&
             dnnl_primitive_desc_create(&p->pd, &bd, NULL, eng, p->fwd_pd) == dnnl_success;
    } else if (ok) {
        ok = dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &src_md, &w_any, NULL,
                                                         &dst_md, strides, padl, padr) == dnnl_success &&
             dnnl_primitive_desc_create(&p->pd, &bd, NULL, eng, p->fwd_pd) == dnnl_success;
    }
    if (!ok) {
        plan_free(p);
        return NULL;
    }
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(
        p->pd, kind == P_BWD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    p->same_layout = dnnl_memory_desc_equal(wmd, &w_user);
    p->wt_bytes = dnnl_memory_desc_get_size(wmd);
    p->wt_buf = malloc(p->wt_bytes);
    if (kind == P_BWD_WEIGHTS) p->dw_tmp = malloc(d.cout * d.k * d.k * d.cin * sizeof(float));
    if (bf16) { /* the activations the primitive reads: x (forward, backward weights), dy */
        const size_t nx = d.n * d.h * d.w * d.cin, ny = d.n * d.h * d.w * d.cout;
        p->abf = malloc((kind == P_BWD_DATA ? ny : nx) * sizeof *p->abf);
        if (kind == P_BWD_WEIGHTS) p->bbf = malloc(ny * sizeof *p->bbf);
    }
    ok = p->wt_buf && (kind != P_BWD_WEIGHTS || p->dw_tmp) && (!bf16 || p->abf) &&
         (!bf16 || kind != P_BWD_WEIGHTS || p->bbf) &&
         dnnl_primitive_create(&p->prim, p->pd) == dnnl_success &&
         dnnl_memory_create(&p->act_a, &src_md, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->act_b, &dst_md, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->wt_user, &w_user, eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->wt_prim, wmd, eng, p->wt_buf) == dnnl_success;
    if (ok && !p->same_layout) {
        dnnl_primitive_desc_t rpd = NULL;
        ok = (kind == P_BWD_WEIGHTS ? dnnl_reorder_primitive_desc_create(&rpd, wmd, eng, &w_user, eng, NULL)
                                    : dnnl_reorder_primitive_desc_create(&rpd, &w_user, eng, wmd, eng, NULL)) ==
                 dnnl_success &&
             dnnl_primitive_create(&p->reorder, rpd) == dnnl_success;
        if (rpd) dnnl_primitive_desc_destroy(rpd);
    }
    if (!ok) {
        plan_free(p);
        return NULL;
    }
    p->gen = (unsigned long)-1;
    return p;
}

static loom_conv2d_plan *plan_get(loom_conv2d_cache *c, int kind, loom_conv2d_dims d, int bf16) {
    size_t i = 0;
    for (; i < LOOM_CONV2D_PLANS && c->plans[i]; i++)
        if (c->plans[i]->kind == kind && c->plans[i]->bf16 == bf16 && dims_eq(c->plans[i]->d, d))
            return c->plans[i];
    loom_conv2d_plan *p = plan_make(c, kind, d, bf16);
    if (!p) return NULL;
    if (i == LOOM_CONV2D_PLANS) { /* full: drop the oldest */
        plan_free(c->plans[0]);
        memmove(c->plans, c->plans + 1, (LOOM_CONV2D_PLANS - 1) * sizeof *c->plans);
        i = LOOM_CONV2D_PLANS - 1;
    }
    c->plans[i] = p;
    return p;
}

static int run(dnnl_primitive_t prim, dnnl_stream_t s, int n, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(prim, s, n, args) == dnnl_success && dnnl_stream_wait(s) == dnnl_success;
}

/* the weights in the primitive's layout, made once per weights generation */
static int weights_in(loom_conv2d_plan *p, loom_conv2d_cache *c, const float *wt) {
    if (p->same_layout) return dnnl_memory_set_data_handle(p->wt_prim, (void *)wt) == dnnl_success;
    if (p->gen == c->weights_gen && p->wt_src == wt) return 1;
    dnnl_memory_set_data_handle(p->wt_user, (void *)wt);
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, p->wt_user}, {DNNL_ARG_TO, p->wt_prim}};
    if (!run(p->reorder, c->stream, 2, a)) return 0;
    p->gen = c->weights_gen, p->wt_src = wt;
    return 1;
}

/* an activation as the primitive reads it: itself, or in bf16 rounded into buf */
static void *act_in(const float *x, uint16_t *buf, size_t n) {
    if (!buf) return (void *)x;
    loom_bf16_round(buf, x, n);
    return buf;
}

/* oneDNN on this thread alone (see conv2d.h); 0 when it failed */
static int dnnl_conv(int kind, float *out, const float *a, const float *b, loom_conv2d_dims d,
                     loom_conv2d_cache *c) {
    loom_conv2d_plan *p = plan_get(c, kind, d, loom_gemm_rounds_bf16());
    if (!p) return 0;
    const size_t nx = d.n * d.h * d.w * d.cin, ny = d.n * d.h * d.w * d.cout;
    int ok = 1;
    if (kind == P_FWD) { /* out = y, a = x, b = wt */
        ok = weights_in(p, c, b);
        dnnl_memory_set_data_handle(p->act_a, act_in(a, p->abf, nx));
        dnnl_memory_set_data_handle(p->act_b, out);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->act_a}, {DNNL_ARG_WEIGHTS, p->wt_prim}, {DNNL_ARG_DST, p->act_b}};
        ok = ok && run(p->prim, c->stream, 3, args);
    } else if (kind == P_BWD_DATA) { /* out = dx, a = dy, b = wt */
        ok = weights_in(p, c, b);
        dnnl_memory_set_data_handle(p->act_a, out);
        dnnl_memory_set_data_handle(p->act_b, act_in(a, p->abf, ny));
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_SRC, p->act_a}, {DNNL_ARG_WEIGHTS, p->wt_prim},
                                   {DNNL_ARG_DIFF_DST, p->act_b}};
        ok = ok && run(p->prim, c->stream, 3, args);
    } else { /* out = dwt (+=), a = x, b = dy */
        float *dw = p->dw_tmp;
        const size_t nw = d.cout * d.k * d.k * d.cin;
        dnnl_memory_set_data_handle(p->act_a, act_in(a, p->abf, nx));
        dnnl_memory_set_data_handle(p->act_b, act_in(b, p->bbf, ny));
        if (p->same_layout) dnnl_memory_set_data_handle(p->wt_prim, dw);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->act_a}, {DNNL_ARG_DIFF_WEIGHTS, p->wt_prim},
                                   {DNNL_ARG_DIFF_DST, p->act_b}};
        ok = run(p->prim, c->stream, 3, args);
        if (ok && !p->same_layout) {
            dnnl_memory_set_data_handle(p->wt_user, dw);
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, p->wt_prim}, {DNNL_ARG_TO, p->wt_user}};
            ok = run(p->reorder, c->stream, 2, r);
        }
        if (ok)
            for (size_t i = 0; i < nw; i++) out[i] += dw[i];
    }
    return ok;
}

static int dnnl_begin(loom_conv2d_cache *c, int *saved) {
    if (!c->engine) {
        dnnl_engine_t e;
        dnnl_stream_t s;
        if (dnnl_engine_create(&e, dnnl_cpu, 0) != dnnl_success) return 0;
        if (dnnl_stream_create(&s, e, dnnl_stream_default_flags) != dnnl_success) {
            dnnl_engine_destroy(e);
            return 0;
        }
        c->engine = e, c->stream = s;
    }
    *saved = omp_get_max_threads();
    omp_set_num_threads(1);
    return 1;
}
#endif

void loom_conv2d_cache_init(loom_conv2d_cache *c, loom_conv_backend b) {
    memset(c, 0, sizeof *c);
#ifdef LOOM_HAVE_DNNL
    c->backend = b == LOOM_CONV_IM2COL ? LOOM_CONV_IM2COL : LOOM_CONV_DNNL;
#else
    (void)b;
    c->backend = LOOM_CONV_IM2COL;
#endif
    c->ready = 1;
}

static void ready(loom_conv2d_cache *c) {
    if (!c->ready) loom_conv2d_cache_init(c, LOOM_CONV_AUTO);
}

void loom_conv2d_cache_release(loom_conv2d_cache *c) {
    if (!c || !c->ready) return;
#ifdef LOOM_HAVE_DNNL
    for (size_t i = 0; i < LOOM_CONV2D_PLANS; i++) plan_free(c->plans[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
#endif
    loom_conv_backend b = c->backend;
    memset(c, 0, sizeof *c);
    c->backend = b;
}

void loom_conv2d_cache_new_weights(loom_conv2d_cache *c) {
    ready(c);
    c->weights_gen++;
}

size_t loom_conv2d_cache_plans(const loom_conv2d_cache *c, bool bf16) {
    size_t n = 0;
#ifdef LOOM_HAVE_DNNL
    for (size_t i = 0; c->ready && i < LOOM_CONV2D_PLANS; i++) n += c->plans[i] && c->plans[i]->bf16 == bf16;
#else
    (void)c, (void)bf16;
#endif
    return n;
}

const char *loom_conv2d_backend_name(const loom_conv2d_cache *c) {
    return c->ready && c->backend == LOOM_CONV_DNNL ? "onednn" : "im2col";
}

/* oneDNN when selected and it works for the shape; else 0 (use im2col) */
static int try_dnnl(int kind, float *out, const float *a, const float *b, loom_conv2d_dims d,
                    loom_conv2d_cache *c) {
#ifdef LOOM_HAVE_DNNL
    if (c->backend != LOOM_CONV_DNNL) return 0;
    int saved;
    if (!dnnl_begin(c, &saved)) return 0;
    int ok = dnnl_conv(kind, out, a, b, d, c);
    omp_set_num_threads(saved);
    return ok;
#else
    (void)kind, (void)out, (void)a, (void)b, (void)d, (void)c;
    return 0;
#endif
}

void loom_conv2d_forward(float *y, const float *x, const float *wt, loom_conv2d_dims d,
                         loom_conv2d_cache *c, float *scratch) {
    ready(c);
    if (!try_dnnl(0, y, x, wt, d, c)) fwd_im2col(y, x, wt, d, scratch);
}

void loom_conv2d_backward_data(float *dx, const float *dy, const float *wt, loom_conv2d_dims d,
                               loom_conv2d_cache *c, float *scratch) {
    ready(c);
    if (!try_dnnl(1, dx, dy, wt, d, c)) bwd_data_im2col(dx, dy, wt, d, scratch);
}

void loom_conv2d_backward_weights(float *dwt, const float *x, const float *dy, loom_conv2d_dims d,
                                  loom_conv2d_cache *c, float *scratch) {
    ready(c);
    if (!try_dnnl(2, dwt, x, dy, d, c)) bwd_weights_im2col(dwt, x, dy, d, scratch);
}

/* ------------------------------------------------ strided convolution (im2col) */

size_t loom_sconv_col_floats(loom_sconv_dims d) {
    return d.n * loom_sconv_ho(d) * loom_sconv_wo(d) * d.k * d.k * d.cin;
}

/* col (n ho wo, k k cin) of x (n, h, w, cin); with add, the reverse:
 * x += col put back (col2im) */
static void sconv_cols(float *col, float *x, loom_sconv_dims d, bool add) {
    const size_t ho = loom_sconv_ho(d), wo = loom_sconv_wo(d), KC = d.k * d.cin;
    for (size_t b = 0; b < d.n; b++)
        for (size_t oy = 0; oy < ho; oy++)
            for (size_t ox = 0; ox < wo; ox++) {
                float *row = col + ((b * ho + oy) * wo + ox) * d.k * KC;
                for (size_t ky = 0; ky < d.k; ky++) {
                    const long sy = (long)(oy * d.stride + ky) - (long)d.pad;
                    float *dst = row + ky * KC;
                    if (sy < 0 || sy >= (long)d.h) {
                        if (!add)
                            for (size_t c = 0; c < KC; c++) dst[c] = 0.0f;
                        continue;
                    }
                    for (size_t kx = 0; kx < d.k; kx++) {
                        const long sx = (long)(ox * d.stride + kx) - (long)d.pad;
                        float *o = dst + kx * d.cin;
                        if (sx < 0 || sx >= (long)d.w) {
                            if (!add)
                                for (size_t c = 0; c < d.cin; c++) o[c] = 0.0f;
                            continue;
                        }
                        float *px = x + ((b * d.h + (size_t)sy) * d.w + (size_t)sx) * d.cin;
                        /* loops, not memcpy: cin is 1 for the image layers */
                        if (add)
                            for (size_t c = 0; c < d.cin; c++) px[c] += o[c];
                        else
                            for (size_t c = 0; c < d.cin; c++) o[c] = px[c];
                    }
                }
            }
}

void loom_sconv_forward(float *y, const float *x, const float *wt, loom_sconv_dims d, float *col) {
    const size_t M = d.n * loom_sconv_ho(d) * loom_sconv_wo(d), KK = d.k * d.k * d.cin;
    sconv_cols(col, (float *)x, d, false); /* reads x only */
    /* y (M, cout) = col (M, KK) @ wt^T */
    loom_gemm(false, true, M, d.cout, KK, 1.0f, col, KK, wt, KK, 0.0f, y, d.cout);
}

void loom_sconv_backward_data(float *dx, const float *dy, const float *wt, loom_sconv_dims d,
                              float *col) {
    const size_t M = d.n * loom_sconv_ho(d) * loom_sconv_wo(d), KK = d.k * d.k * d.cin;
    /* forward: y = col @ wt^T, so dcol (M, KK) = dy (M, cout) @ wt */
    loom_gemm(false, false, M, KK, d.cout, 1.0f, dy, d.cout, wt, KK, 0.0f, col, KK);
    sconv_cols(col, dx, d, true);
}

void loom_sconv_backward_weights(float *dwt, const float *x, const float *dy, loom_sconv_dims d,
                                 float *col) {
    const size_t M = d.n * loom_sconv_ho(d) * loom_sconv_wo(d), KK = d.k * d.k * d.cin;
    sconv_cols(col, (float *)x, d, false);
    /* forward: y = col @ wt^T, so dwt (cout, KK) += dy^T @ col */
    loom_gemm(true, false, d.cout, KK, M, 1.0f, dy, d.cout, col, KK, 1.0f, dwt, KK);
}

void loom_deconv_forward(float *out, const float *in, const float *wt, loom_sconv_dims d, float *col) {
    memset(out, 0, d.n * d.h * d.w * d.cin * sizeof *out);
    loom_sconv_backward_data(out, in, wt, d, col);
}

void loom_deconv_backward(float *din, float *dwt, const float *dout, const float *in, const float *wt,
                          loom_sconv_dims d, float *col) {
    /* forward: out = conv^T(in), i.e. out = d conv / d x applied to in, which is
     * linear in in and in wt: din = conv(dout), dwt += conv's weight gradient
     * with input dout and output gradient in */
    if (dwt) loom_sconv_backward_weights(dwt, dout, in, d, col);
    if (din) {
        const size_t M = d.n * loom_sconv_ho(d) * loom_sconv_wo(d), KK = d.k * d.k * d.cin;
        sconv_cols(col, (float *)dout, d, false);
        loom_gemm(false, true, M, d.cout, KK, 1.0f, col, KK, wt, KK, 1.0f, din, d.cout);
    }
}
