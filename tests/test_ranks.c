/* Data parallel without MPI (src/models/model.c "over ranks"): R threads play
 * R ranks through an in-process loom_comm, each with its own copy of the
 * model, and loom_model_grad_ranks must give every rank the gradient and the
 * loss of one process's loom_model_grad, byte for byte, for every rank count
 * up to the micro-shard count and batches of 1 to 9 micro-shards (ranges that
 * fall on the tree's nodes and ranges that cut across them). tests/cli/mpi.sh
 * runs the same code over MPI. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#define MAXR 6

/* the in-process collectives: every rank publishes its arguments, waits for
 * the others, copies what is addressed to it, and waits again before its
 * buffers may change */
typedef struct {
    pthread_barrier_t bar;
    int R;
    const void *send[MAXR];
    const size_t *scount[MAXR], *sdispl[MAXR];
    size_t sbytes[MAXR];
    int ival[MAXR];
    loom_comm comm[MAXR];
    int skip_rank; /* test of the test: a rank whose data never arrives (-1: none) */
} world;

typedef struct {
    world *w;
    int rank;
} who;

static loom_status w_alltoallv(void *user, const void *send, const size_t *scount,
                               const size_t *sdispl, void *recv, const size_t *rcount,
                               const size_t *rdispl, loom_error *err) {
    (void)err;
    who *me = user;
    world *w = me->w;
    w->send[me->rank] = send, w->scount[me->rank] = scount, w->sdispl[me->rank] = sdispl;
    pthread_barrier_wait(&w->bar);
    for (int r = 0; r < w->R; r++) {
        if (w->scount[r][me->rank] != rcount[r]) return loom_fail(err, LOOM_EINVAL, "count mismatch");
        if (r != w->skip_rank)
            memcpy((char *)recv + rdispl[r], (const char *)w->send[r] + w->sdispl[r][me->rank], rcount[r]);
        else
            memset((char *)recv + rdispl[r], 0, rcount[r]);
    }
    pthread_barrier_wait(&w->bar);
    return LOOM_OK;
}

static loom_status w_allgatherv(void *user, const void *send, size_t scount, void *recv,
                                const size_t *rcount, const size_t *rdispl, loom_error *err) {
    who *me = user;
    world *w = me->w;
    w->send[me->rank] = send, w->sbytes[me->rank] = scount;
    pthread_barrier_wait(&w->bar);
    for (int r = 0; r < w->R; r++) {
        if (w->sbytes[r] != rcount[r]) return loom_fail(err, LOOM_EINVAL, "count mismatch");
        memcpy((char *)recv + rdispl[r], w->send[r], rcount[r]);
    }
    pthread_barrier_wait(&w->bar);
    return LOOM_OK;
}

static loom_status w_max_int(void *user, int *v, loom_error *err) {
    (void)err;
    who *me = user;
    world *w = me->w;
    w->ival[me->rank] = *v;
    pthread_barrier_wait(&w->bar);
    for (int r = 0; r < w->R; r++) *v = LOOM_MAX(*v, w->ival[r]);
    pthread_barrier_wait(&w->bar);
    return LOOM_OK;
}

typedef struct {
    loom_model *m;
    const loom_comm *c;
    const uint8_t *imgs;
    const int32_t *labels;
    size_t n;
    double loss;
    loom_status st;
} job;

static void *rank_main(void *arg) {
    job *j = arg;
    j->m->noise_seed = 77;
    j->st = loom_model_grad_ranks(j->m, &j->loss, j->imgs, j->labels, j->n, j->c, NULL);
    j->m->noise_seed = 0;
    return NULL;
}

/* R ranks on batch imgs (n): 1 when every rank got ref's gradient, loss and
 * loss terms (m->terms, for models that have them) */
static int run_ranks(const loom_config *cfg, int R, const uint8_t *imgs, const int32_t *labels,
                     size_t n, const loom_model *ref, double ref_loss, int skip_rank) {
    world w = {.R = R, .skip_rank = skip_rank};
    pthread_barrier_init(&w.bar, NULL, (unsigned)R);
    who ids[MAXR];
    job jobs[MAXR];
    pthread_t th[MAXR];
    for (int r = 0; r < R; r++) {
        ids[r] = (who){&w, r};
        w.comm[r] = (loom_comm){.rank = r, .size = R, .user = &ids[r], .alltoallv = w_alltoallv,
                                .allgatherv = w_allgatherv, .max_int = w_max_int};
        jobs[r] = (job){.m = test_model(cfg, 1, 11, 0.3f), .c = &w.comm[r], .imgs = imgs,
                        .labels = labels, .n = n};
    }
    for (int r = 0; r < R; r++) pthread_create(&th[r], NULL, rank_main, &jobs[r]);
    int ok = 1;
    for (int r = 0; r < R; r++) {
        pthread_join(th[r], NULL);
        ok &= jobs[r].st == LOOM_OK &&
              memcmp(jobs[r].m->g, ref->g, ref->nfloats * sizeof(float)) == 0 &&
              memcmp(&jobs[r].loss, &ref_loss, sizeof ref_loss) == 0 &&
              memcmp(jobs[r].m->terms, ref->terms, loom_model_loss_terms(ref, NULL) * sizeof(double)) == 0;
        loom_model_free(jobs[r].m);
    }
    pthread_barrier_destroy(&w.bar);
    return ok;
}

static const struct {
    const char *name;
    loom_config cfg;
} specs[] = {
    {"rowlstm", {.model = "rowlstm", .height = 4, .width = 3, .layers = 1, .hidden = 3}},
    {"rowlstm conditional",
     {.model = "rowlstm", .height = 3, .width = 3, .layers = 1, .hidden = 2, .nclasses = 3}},
    {"draw", {.model = "draw", .height = 5, .width = 4, .layers = 1, .hidden = 4, .zdim = 2,
              .steps_draw = 2, .read_n = 2, .write_n = 2, .attention = 1}},
    {"grupixel", {.model = "grupixel", .height = 3, .width = 3, .layers = 1, .hidden = 4,
                  .cell = "gru", .zdim = 2}},
    {"rae", {.model = "rae", .height = 4, .width = 4, .layers = 1, .hidden = 4, .zdim = 2}},
    {"rae variational", {.model = "rae", .height = 4, .width = 4, .layers = 1, .hidden = 4, .zdim = 2,
                         .variational = 1}},
};

int main(void) {
    char name[200];
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        const loom_config *cfg = &specs[s].cfg;
        loom_model *ref = test_model(cfg, 2, 11, 0.3f);
        const size_t u = loom_micro_shard(cfg, 1000), HW = cfg->height * cfg->width;
        int all = 1, tried = 0;
        for (size_t K = 1; K <= 9; K++) {
            const size_t n = K * u - (K > 2 ? u / 2 : 0); /* a partial last micro-shard too */
            uint8_t *imgs = malloc(n * HW);
            int32_t *labels = NULL;
            test_random_images_seed(imgs, n * HW, 3 + K);
            if (cfg->nclasses) {
                labels = malloc(n * sizeof *labels);
                for (size_t b = 0; b < n; b++) labels[b] = (int32_t)(b % (size_t)cfg->nclasses);
            }
            double loss;
            ref->noise_seed = 77;
            loom_status st = loom_model_grad(ref, &loss, imgs, labels, n, NULL);
            ref->noise_seed = 0;
            if (st) all = 0;
            for (int R = 1; R <= MAXR && (size_t)R <= K; R++, tried++)
                if (!run_ranks(cfg, R, imgs, labels, n, ref, loss, -1)) {
                    if (all) printf("  first difference: %s, %zu micro-shards, %d ranks\n", specs[s].name, K, R);
                    all = 0;
                }
            if (K == 6) { /* the check can fail: a rank's nodes lost */
                snprintf(name, sizeof name, "%s: 3 ranks, one rank's nodes lost: a different gradient", specs[s].name);
                CHECK(name, !run_ranks(cfg, 3, imgs, labels, n, ref, loss, 1), "same bytes");
            }
            free(imgs), free(labels);
        }
        snprintf(name, sizeof name,
                 "%s: 1 to %d ranks x 1 to 9 micro-shards of %zu (%d runs): every rank has one process's gradient and loss (and loss terms), byte for byte",
                 specs[s].name, MAXR, u, tried);
        CHECK(name, all, "differ");
        /* fewer micro-shards than ranks: refused, not an idle rank */
        {
            loom_comm c = {.rank = 0, .size = 3};
            uint8_t *imgs = calloc(2 * u, HW);
            loom_error err;
            double loss;
            loom_status st = loom_model_grad_ranks(ref, &loss, imgs, NULL, 2 * u, &c, &err);
            snprintf(name, sizeof name, "%s: 2 micro-shards for 3 ranks are refused", specs[s].name);
            CHECK(name, st == LOOM_EINVAL && strstr(err.msg, "fewer than the 3 ranks"), "status %d: %s", (int)st,
                  st ? err.msg : "");
            free(imgs);
        }
        loom_model_free(ref);
    }
    /* the cut of K micro-shards over R ranks: contiguous, in order, balanced */
    int ok = 1;
    for (size_t K = 1; K <= 40; K++)
        for (int R = 1; (size_t)R <= K; R++) {
            size_t prev = 0, lo = K, hi = 0;
            for (int r = 0; r < R; r++) {
                size_t a, b;
                loom_rank_shards(K, R, r, &a, &b);
                ok &= a == prev && b > a;
                lo = LOOM_MIN(lo, b - a), hi = LOOM_MAX(hi, b - a), prev = b;
            }
            ok &= prev == K && hi - lo <= 1;
        }
    CHECK("loom_rank_shards: contiguous ranges in rank order covering 1..40 micro-shards, sizes within one", ok,
          "not so");
    CHECK_DONE();
}
