/* Sequence layers (src/nn/seq.h): finite-difference gradients of every input,
 * parameter and state (h0, c0, and through the final-state gradients dhT,
 * dcT), the single step against the whole-sequence forward, the
 * pre-projected input mode, and forward + every gradient against PyTorch's
 * nn.RNN / nn.LSTM / nn.GRU (fixture from bench/seq_torch.py). */
#include "gradcheck.h"
#include "testutil.h"
#include "loom.h"
#include "nn/seq.h"

#include <stdlib.h>
#include <string.h>


/* one layer instance with its buffers; h0/c0/dy/dhT/dcT may be NULL */
typedef struct {
    loom_cell cell;
    loom_seq_dims d;
    float *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *bias;
    float *y, *hT, *cT, *cache, *scratch;
    float *dy, *dhT, *dcT; /* the probe: L = <y, dy> + <hT, dhT> + <cT, dcT> */
} layer;

static loom_seq_params params(const layer *L) {
    return (loom_seq_params){L->w_ih, L->w_hh, L->b_ih, L->b_hh, L->bias};
}

static void forward(layer *L) {
    switch (L->cell) {
    case LOOM_CELL_RNN: loom_rnn_forward(L->y, L->hT, L->cache, L->x, L->h0, params(L), L->d); break;
    case LOOM_CELL_LSTM:
        loom_lstm_forward(L->y, L->hT, L->cT, L->cache, L->x, L->h0, L->c0, params(L), L->d);
        break;
    case LOOM_CELL_GRU: loom_gru_forward(L->y, L->hT, L->cache, L->x, L->h0, params(L), L->d); break;
    }
}

static void backward(layer *L, float *dx, float *dh0, float *dc0, loom_seq_grads g) {
    switch (L->cell) {
    case LOOM_CELL_RNN:
        loom_rnn_backward(dx, dh0, g, L->scratch, L->dy, L->dhT, L->x, L->h0, params(L), L->cache,
                          L->y, L->d);
        break;
    case LOOM_CELL_LSTM:
        loom_lstm_backward(dx, dh0, dc0, g, L->scratch, L->dy, L->dhT, L->dcT, L->x, L->h0, L->c0,
                           params(L), L->cache, L->y, L->d);
        break;
    case LOOM_CELL_GRU:
        loom_gru_backward(dx, dh0, g, L->scratch, L->dy, L->dhT, L->x, L->h0, params(L), L->cache,
                          L->y, L->d);
        break;
    }
}

static double probe(void *p) {
    layer *L = p;
    forward(L);
    const size_t BH = L->d.B * L->d.H;
    double s = 0.0;
    if (L->dy) s += gc_dot(L->y, L->dy, L->d.T * BH);
    if (L->dhT) s += gc_dot(L->hT, L->dhT, BH);
    if (L->dcT) s += gc_dot(L->cT, L->dcT, BH);
    return s;
}

static layer make(loom_cell cell, loom_seq_dims d, loom_rng *r, int with_h0, int with_dy,
                  int with_bias) {
    const size_t G = loom_cell_gates(cell) * d.H, N = d.T * d.B, BH = d.B * d.H;
    layer L = {.cell = cell, .d = d};
    L.x = test_randbuf(r, N * d.In, 1), L.w_ih = test_randbuf(r, d.In * G, 0.7f);
    L.w_hh = test_randbuf(r, d.H * G, 0.7f), L.b_ih = test_randbuf(r, G, 0.3f), L.b_hh = test_randbuf(r, G, 0.3f);
    L.bias = with_bias ? test_randbuf(r, d.B * G, 0.3f) : NULL;
    L.h0 = with_h0 ? test_randbuf(r, BH, 0.8f) : NULL;
    L.c0 = with_h0 && cell == LOOM_CELL_LSTM ? test_randbuf(r, BH, 0.8f) : NULL;
    L.y = test_zeros(N * d.H), L.hT = test_zeros(BH), L.cT = test_zeros(BH);
    L.cache = test_zeros(loom_seq_cache_floats(cell, d)), L.scratch = test_zeros(loom_seq_scratch_floats(cell, d));
    L.dy = with_dy ? test_randbuf(r, N * d.H, 1) : NULL;
    L.dhT = test_randbuf(r, BH, 1);
    L.dcT = cell == LOOM_CELL_LSTM ? test_randbuf(r, BH, 1) : NULL;
    return L;
}

static void drop(layer *L) {
    free(L->x), free(L->w_ih), free(L->w_hh), free(L->b_ih), free(L->b_hh), free(L->bias);
    free(L->h0), free(L->c0), free(L->y), free(L->hT), free(L->cT), free(L->cache);
    free(L->scratch), free(L->dy), free(L->dhT), free(L->dcT);
}

static void gradcheck_layer(loom_cell cell, loom_rng *r, int with_h0, int with_dy, int with_bias) {
    const loom_seq_dims d = {.T = 4, .B = 2, .In = 3, .H = 3};
    const size_t G = loom_cell_gates(cell) * d.H, N = d.T * d.B, BH = d.B * d.H;
    layer L = make(cell, d, r, with_h0, with_dy, with_bias);
    float *dx = test_zeros(N * d.In), *dh0 = test_zeros(BH), *dc0 = test_zeros(BH);
    loom_seq_grads g = {test_zeros(d.In * G), test_zeros(d.H * G), test_zeros(G), test_zeros(G),
                        with_bias ? test_zeros(d.B * G) : NULL};
    /* accumulate onto a non-zero start: backward must add, not overwrite */
    for (size_t k = 0; k < d.H * G; k++) g.w_hh[k] = 1.0f;
    forward(&L);
    backward(&L, dx, with_h0 ? dh0 : NULL, with_h0 ? dc0 : NULL, g);
    for (size_t k = 0; k < d.H * G; k++) g.w_hh[k] -= 1.0f;
    char name[128], what[64];
    snprintf(what, sizeof what, "%s%s%s%s", loom_cell_name(cell), with_h0 ? " h0" : " zero-h0",
             with_dy ? " dy" : " final-state-only", with_bias ? " bias" : "");
#define GC(label, buf, grad, n)                                                      \
    do {                                                                             \
        snprintf(name, sizeof name, "%s (%s): d%s", loom_cell_name(cell), what, label); \
        GRADCHECK(name, probe, &L, buf, grad, n);                                    \
    } while (0)
    GC("x", L.x, dx, N * d.In);
    GC("w_ih", L.w_ih, g.w_ih, d.In * G);
    GC("w_hh", L.w_hh, g.w_hh, d.H * G);
    GC("b_ih", L.b_ih, g.b_ih, G);
    GC("b_hh", L.b_hh, g.b_hh, G);
    if (with_bias) GC("bias", L.bias, g.bias, d.B * G);
    if (with_h0) GC("h0", L.h0, dh0, BH);
    if (with_h0 && cell == LOOM_CELL_LSTM) GC("c0", L.c0, dc0, BH);
#undef GC
    free(dx), free(dh0), free(dc0), free(g.w_ih), free(g.w_hh), free(g.b_ih), free(g.b_hh), free(g.bias);
    drop(&L);
}

/* stepping one time step at a time (state carried by the caller) reproduces
 * the whole-sequence forward; two half-sequence calls chained through
 * hT -> h0 do too; and the pre-projected mode gives the same y and dA */
static void test_step_and_chaining(loom_cell cell, loom_rng *r) {
    const loom_seq_dims d = {.T = 6, .B = 3, .In = 4, .H = 5};
    const size_t G = loom_cell_gates(cell) * d.H, BH = d.B * d.H, N = d.T * d.B;
    layer L = make(cell, d, r, 1, 1, 1);
    forward(&L);
    float *h = malloc(BH * sizeof *h), *c = malloc(BH * sizeof *c), *hn = malloc(BH * sizeof *hn);
    float *cn = malloc(BH * sizeof *cn), *step = malloc(loom_seq_step_floats(cell, d.B, d.H) * sizeof *step);
    memcpy(h, L.h0, BH * sizeof *h);
    if (L.c0) memcpy(c, L.c0, BH * sizeof *c);
    double worst = 0.0;
    for (size_t t = 0; t < d.T; t++) {
        const float *xt = L.x + t * d.B * d.In;
        if (cell == LOOM_CELL_RNN) loom_rnn_step(hn, step, xt, h, params(&L), d.B, d.In, d.H);
        else if (cell == LOOM_CELL_GRU) loom_gru_step(hn, step, xt, h, params(&L), d.B, d.In, d.H);
        else loom_lstm_step(hn, cn, step, xt, h, c, params(&L), d.B, d.In, d.H);
        for (size_t k = 0; k < BH; k++) worst = fmax(worst, fabs(hn[k] - L.y[t * BH + k]));
        memcpy(h, hn, BH * sizeof *h), memcpy(c, cn, BH * sizeof *c);
    }
    char name[96];
    snprintf(name, sizeof name, "%s: step by step == whole sequence", loom_cell_name(cell));
    CHECK(name, worst < 1e-6, "max |diff| %.3g", worst);

    /* two calls of T/2 steps, the second starting from the first's final state */
    layer P = L;
    const size_t half = d.T / 2;
    float *y2 = test_zeros(N * d.H), *hT1 = test_zeros(BH), *cT1 = test_zeros(BH);
    P.d.T = half, P.y = y2, P.hT = hT1, P.cT = cT1;
    forward(&P);
    layer Q = P;
    Q.x = L.x + half * d.B * d.In, Q.y = y2 + half * BH, Q.h0 = hT1, Q.c0 = cell == LOOM_CELL_LSTM ? cT1 : NULL;
    Q.hT = hn, Q.cT = cn, Q.d.T = d.T - half;
    forward(&Q);
    worst = 0.0;
    for (size_t k = 0; k < N * d.H; k++) worst = fmax(worst, fabs(y2[k] - L.y[k]));
    for (size_t k = 0; k < BH; k++) worst = fmax(worst, fabs(hn[k] - L.hT[k]));
    snprintf(name, sizeof name, "%s: two chained calls (hT -> h0) == one call", loom_cell_name(cell));
    CHECK(name, worst < 1e-6, "max |diff| %.3g", worst);

    /* pre-projected: the caller writes a = x @ w_ih + b_ih + bias into the cache */
    float *yref = malloc(N * d.H * sizeof *yref), *dAref = malloc(N * G * sizeof *dAref);
    memcpy(yref, L.y, N * d.H * sizeof *yref);
    forward(&L);
    loom_seq_grads none = {0};
    backward(&L, NULL, NULL, NULL, none);
    memcpy(dAref, L.scratch, N * G * sizeof *dAref);
    loom_seq_inproj(L.cache, L.x, params(&L), N, d.B, d.In, G);
    float *xkeep = L.x;
    L.x = NULL;
    forward(&L);
    backward(&L, NULL, NULL, NULL, none);
    L.x = xkeep;
    int same = memcmp(yref, L.y, N * d.H * sizeof *yref) == 0 &&
               memcmp(dAref, L.scratch, N * G * sizeof *dAref) == 0;
    snprintf(name, sizeof name, "%s: pre-projected input gives the same y and dA", loom_cell_name(cell));
    CHECK(name, same, "differ");
    if (cell == LOOM_CELL_LSTM) {
        /* loom_lstm_forward_step, step by step into one cache: the same y and
         * cache as the whole sequence, so the same dA from the backward */
        float *ys = test_zeros(N * d.H), *cs = test_zeros(loom_seq_cache_floats(cell, d));
        for (size_t t = 0; t < d.T; t++)
            loom_lstm_forward_step(ys, cs, L.x + t * d.B * d.In, L.h0, L.c0, params(&L), d, t);
        forward(&L);
        backward(&L, NULL, NULL, NULL, none);
        memcpy(dAref, L.scratch, N * G * sizeof *dAref);
        worst = 0.0;
        for (size_t k = 0; k < N * d.H; k++) worst = fmax(worst, fabs(ys[k] - L.y[k]));
        const size_t nc = N * G + 2 * N * d.H; /* act | c | tanh c */
        for (size_t k = 0; k < nc; k++) worst = fmax(worst, fabs(cs[k] - L.cache[k]));
        float *ykeep = L.y, *ckeep = L.cache;
        L.y = ys, L.cache = cs;
        backward(&L, NULL, NULL, NULL, none);
        for (size_t k = 0; k < N * G; k++) worst = fmax(worst, fabs(L.scratch[k] - dAref[k]));
        L.y = ykeep, L.cache = ckeep;
        CHECK("lstm: forward_step t = 0 .. T-1 == the whole forward (y, cache, and the backward's dA)", worst < 1e-6,
              "max |diff| %.3g", worst);
        free(ys), free(cs);
    }
    free(h), free(c), free(hn), free(cn), free(step), free(y2), free(hT1), free(cT1), free(yref), free(dAref);
    drop(&L);
}

/* ---------------------------------------------------------------- PyTorch fixture */

static float *get(const loom_st_file *f, const char *cell, const char *name, size_t n) {
    char full[64];
    snprintf(full, sizeof full, "%s.%s", cell, name);
    const loom_tensor *t = loom_st_find(f, full);
    if (!t || t->dtype != LOOM_F32) {
        printf("# fixture lacks %s\n", full);
        return NULL;
    }
    size_t sz = 1;
    for (int k = 0; k < t->ndim; k++) sz *= t->shape[k];
    if (sz != n) {
        printf("# fixture %s has %zu values, want %zu\n", full, sz, n);
        return NULL;
    }
    float *p = malloc(n * sizeof *p);
    memcpy(p, t->data, n * sizeof *p);
    return p;
}

/* test_rel_err, and a failure when a fixture tensor is missing (NULL) */
static double rel_err(const float *a, const float *b, size_t n) {
    return a && b ? test_rel_err(a, b, n) : 1e9;
}

static void test_reference(void) {
    loom_st_file *f;
    loom_error err;
    loom_status st = loom_safetensors_open(&f, FIXTURE_DIR "/seq_ref.safetensors", &err);
    CHECK("seq fixture loads", st == LOOM_OK, "%s", err.msg);
    if (st) return;
    const loom_seq_dims d = {test_meta_size(f, "T"), test_meta_size(f, "B"), test_meta_size(f, "I"), test_meta_size(f, "H")};
    CHECK("seq fixture dims", d.T && d.B && d.In && d.H, "T %zu B %zu I %zu H %zu", d.T, d.B, d.In, d.H);
    const loom_cell cells[] = {LOOM_CELL_RNN, LOOM_CELL_LSTM, LOOM_CELL_GRU};
    for (int ci = 0; ci < 3; ci++) {
        const loom_cell cell = cells[ci];
        const char *cn = loom_cell_name(cell);
        const int lstm = cell == LOOM_CELL_LSTM;
        const size_t G = loom_cell_gates(cell) * d.H, N = d.T * d.B, BH = d.B * d.H;
        layer L = {.cell = cell, .d = d};
        L.x = get(f, cn, "x", N * d.In), L.h0 = get(f, cn, "h0", BH);
        L.c0 = lstm ? get(f, cn, "c0", BH) : NULL;
        L.w_ih = get(f, cn, "w_ih", d.In * G), L.w_hh = get(f, cn, "w_hh", d.H * G);
        L.b_ih = get(f, cn, "b_ih", G), L.b_hh = get(f, cn, "b_hh", G);
        L.dy = get(f, cn, "dy", N * d.H), L.dhT = get(f, cn, "dhT", BH);
        L.dcT = lstm ? get(f, cn, "dcT", BH) : NULL;
        int have = L.x && L.h0 && L.w_ih && L.w_hh && L.b_ih && L.b_hh && L.dy && L.dhT &&
                   (!lstm || (L.c0 && L.dcT));
        char name[96];
        snprintf(name, sizeof name, "%s: fixture has every input", cn);
        CHECK(name, have, "see above");
        if (!have) {
            drop(&L);
            continue;
        }
        L.y = test_zeros(N * d.H), L.hT = test_zeros(BH), L.cT = test_zeros(BH);
        L.cache = test_zeros(loom_seq_cache_floats(cell, d)), L.scratch = test_zeros(loom_seq_scratch_floats(cell, d));
        forward(&L);
        float *ry = get(f, cn, "y", N * d.H), *rh = get(f, cn, "hT", BH), *rc = lstm ? get(f, cn, "cT", BH) : NULL;
        snprintf(name, sizeof name, "%s: y matches torch.nn.%s", cn, lstm ? "LSTM" : cell == LOOM_CELL_GRU ? "GRU" : "RNN");
        double e = rel_err(L.y, ry, N * d.H);
        CHECK(name, e < 1e-5, "max error %.3g of scale", e);
        snprintf(name, sizeof name, "%s: final hidden state matches PyTorch", cn);
        e = rel_err(L.hT, rh, BH);
        CHECK(name, e < 1e-5, "max error %.3g of scale", e);
        if (lstm) {
            e = rel_err(L.cT, rc, BH);
            CHECK("lstm: final cell state matches PyTorch", e < 1e-5, "max error %.3g of scale", e);
        }
        float *dx = test_zeros(N * d.In), *dh0 = test_zeros(BH), *dc0 = test_zeros(BH);
        loom_seq_grads g = {test_zeros(d.In * G), test_zeros(d.H * G), test_zeros(G), test_zeros(G), NULL};
        backward(&L, dx, dh0, lstm ? dc0 : NULL, g);
        struct { const char *n; const float *v; size_t sz; } gs[] = {
            {"grad.x", dx, N * d.In}, {"grad.h0", dh0, BH}, {"grad.c0", dc0, BH},
            {"grad.w_ih", g.w_ih, d.In * G}, {"grad.w_hh", g.w_hh, d.H * G},
            {"grad.b_ih", g.b_ih, G}, {"grad.b_hh", g.b_hh, G}};
        for (size_t k = 0; k < sizeof gs / sizeof gs[0]; k++) {
            if (!lstm && strcmp(gs[k].n, "grad.c0") == 0) continue;
            float *ref = get(f, cn, gs[k].n, gs[k].sz);
            e = rel_err(gs[k].v, ref, gs[k].sz);
            snprintf(name, sizeof name, "%s: %s matches PyTorch", cn, gs[k].n);
            CHECK(name, e < 1e-5, "max error %.3g of scale", e);
            free(ref);
        }
        free(ry), free(rh), free(rc), free(dx), free(dh0), free(dc0);
        free(g.w_ih), free(g.w_hh), free(g.b_ih), free(g.b_hh);
        drop(&L);
    }
    loom_safetensors_close(f);
}

/* the blocked thin products (taken only above ~1e6 multiply-adds, so never
 * by the tiny cases above) against plain double-precision sums; 160 is not
 * a multiple of the 64-column block */
static void test_thin_products(loom_rng *r) {
    const size_t M = 16, K = 160, N = 480;
    float *a = test_randbuf(r, M * K, 1), *w = test_randbuf(r, K * N, 1), *c = test_randbuf(r, M * N, 1);
    float *c0 = malloc(M * N * sizeof *c0), *dR = test_randbuf(r, M * N, 1), *dh = test_randbuf(r, M * K, 1);
    float *dh0 = malloc(M * K * sizeof *dh0);
    memcpy(c0, c, M * N * sizeof *c0), memcpy(dh0, dh, M * K * sizeof *dh0);
    loom_gemm_thin(c, a, w, M, N, K, 0.5f);
    loom_seq_hh_dh(dh, dR, w, M, K, N); /* dh (M, K) += dR (M, N) @ w^T */
    double e1 = 0.0, e2 = 0.0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0.5 * c0[i * N + j];
            for (size_t k = 0; k < K; k++) s += (double)a[i * K + k] * w[k * N + j];
            e1 = fmax(e1, fabs(s - c[i * N + j]));
        }
    for (size_t i = 0; i < M; i++)
        for (size_t k = 0; k < K; k++) {
            double s = dh0[i * K + k];
            for (size_t j = 0; j < N; j++) s += (double)dR[i * N + j] * w[k * N + j];
            e2 = fmax(e2, fabs(s - dh[i * K + k]));
        }
    CHECK("thin GEMM in column blocks == plain product", e1 < 1e-4, "max |diff| %.3g", e1);
    CHECK("thin dh += dR @ w_hh^T in blocks == plain product", e2 < 1e-4, "max |diff| %.3g", e2);
    free(a), free(w), free(c), free(c0), free(dR), free(dh), free(dh0);
}

int main(void) {
    loom_rng r;
    loom_rng_seed(&r, 42);
    const loom_cell cells[] = {LOOM_CELL_RNN, LOOM_CELL_LSTM, LOOM_CELL_GRU};
    for (int c = 0; c < 3; c++) {
        gradcheck_layer(cells[c], &r, 1, 1, 0);
        gradcheck_layer(cells[c], &r, 0, 1, 1);
        gradcheck_layer(cells[c], &r, 1, 0, 0);
        test_step_and_chaining(cells[c], &r);
    }
    test_thin_products(&r);
    test_reference();
    CHECK_DONE();
}
