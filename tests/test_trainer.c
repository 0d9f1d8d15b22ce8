/* The library trainer (src/train/): two models in one run, saved and resumed
 * bit-identically; the validation split; the step target on resume. */
#include "testutil.h"
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* n random 6x6 images; labels: class i % 3 for the first two thirds, then
 * class 2 for the rest (so a tail split would be one class) */
static loom_images make_data(size_t n, uint64_t seed) {
    loom_images im = {.n = n, .h = 6, .w = 6, .nclasses = 3};
    im.pixels = malloc(n * 36);
    im.labels = malloc(n * sizeof *im.labels);
    test_random_images_seed(im.pixels, n * 36, seed);
    for (size_t i = 0; i < n; i++) im.labels[i] = i < 2 * n / 3 ? (int32_t)(i % 3) : 2;
    return im;
}

static loom_trainer *two_models(const loom_images *data, long steps) {
    loom_train_opts o;
    loom_train_opts_default(&o);
    snprintf(o.data, sizeof o.data, "synthetic");
    o.batch = 4, o.steps = steps, o.seed = 7, o.valid = 6, o.eval_every = 0;
    o.checkpoint_every = 0;
    loom_train_model_spec specs[2] = {
        {"gen", {.model = "rowlstm", .height = 6, .width = 6, .layers = 1, .hidden = 2}},
        {"disc", {.model = "rowlstm", .height = 6, .width = 6, .layers = 1, .hidden = 3, .nclasses = 3}},
    };
    loom_trainer *t = NULL;
    loom_error err;
    loom_status st = loom_trainer_create(&t, &o, specs, 2, 1, &err);
    if (!st) st = loom_trainer_set_data(t, data, &err);
    if (st) {
        CHECK("two models: create and set data", 0, "%s", err.msg);
        loom_trainer_free(t);
        return NULL;
    }
    return t;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    uint8_t *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

static void test_two_models(void) {
    loom_images data = make_data(30, 11);
    loom_error err;
    loom_train_stop why;
    char a[96], b[96], fa[128], fb[128];
    snprintf(a, sizeof a, "%s/runs/a", dir); /* parents created: mkdir -p */
    snprintf(b, sizeof b, "%s/runs/b", dir);
    snprintf(fa, sizeof fa, "%s/checkpoint.safetensors", a);
    snprintf(fb, sizeof fb, "%s/checkpoint.safetensors", b);

    /* 10 steps in one go (an epoch is 24 / 4 = 6 steps: the resume crosses one) */
    loom_trainer *t = two_models(&data, 10);
    if (!t) return;
    loom_status st = loom_trainer_start(t, a, &err);
    CHECK("two models: start creates the run directory and its parents", st == LOOM_OK, "%s", err.msg);
    st = loom_trainer_run(t, a, NULL, &why, &err);
    CHECK("two models: 10 steps", st == LOOM_OK && why == LOOM_TRAIN_DONE && loom_trainer_state(t)->step == 10,
          "%d %s", (int)st, err.msg);
    const loom_model *g = loom_trainer_model(t, 0), *d = loom_trainer_model(t, 1);
    CHECK("two models: each has its own parameters", g->nfloats != d->nfloats, "%zu %zu", g->nfloats, d->nfloats);
    loom_trainer_free(t);

    /* 4 steps, a new process would load the checkpoint, 6 more */
    t = two_models(&data, 4);
    if (!t) return;
    st = loom_trainer_start(t, b, &err);
    if (!st) st = loom_trainer_run(t, b, NULL, &why, &err);
    CHECK("two models: 4 steps", st == LOOM_OK && loom_trainer_state(t)->step == 4, "%s", err.msg);
    loom_trainer_free(t);
    st = loom_trainer_load(&t, fb, 1, &err);
    CHECK("two models: the checkpoint loads both models", st == LOOM_OK && loom_trainer_nmodels(t) == 2 &&
          strcmp(loom_trainer_role(t, 0), "gen") == 0 && strcmp(loom_trainer_role(t, 1), "disc") == 0,
          "%s", err.msg);
    if (st) return;
    st = loom_trainer_set_steps(t, 3, &err);
    CHECK("two models: a target below the current step is refused", st == LOOM_EINVAL && strstr(err.msg, "below"),
          "%d %s", (int)st, err.msg);
    st = loom_trainer_set_data(t, &data, &err);
    if (!st) st = loom_trainer_set_steps(t, 10, &err);
    if (!st) st = loom_trainer_run(t, b, NULL, &why, &err);
    CHECK("two models: resumed to 10", st == LOOM_OK && loom_trainer_state(t)->step == 10, "%s", err.msg);
    loom_trainer_free(t);
    CHECK("two models: 4 + resume + 6 == 10 steps (byte-identical checkpoint)", same_file(fa, fb), "%s vs %s", fa, fb);

    /* tensor names: prefixed by role, one Adam state per model */
    loom_st_file *f;
    st = loom_safetensors_open(&f, fa, &err);
    if (!st) {
        size_t ng = 0, nd = 0, mg = 0, md = 0;
        for (size_t k = 0; k < loom_st_count(f); k++) {
            const char *nm = loom_st_get(f, k)->name;
            ng += strncmp(nm, "gen.", 4) == 0, nd += strncmp(nm, "disc.", 5) == 0;
            mg += strncmp(nm, "optim.m.gen.", 12) == 0, md += strncmp(nm, "optim.v.disc.", 13) == 0;
        }
        CHECK("two models: every tensor belongs to a role, each role has its Adam moments",
              ng && nd && ng == mg && nd == md && loom_st_count(f) == 3 * (ng + nd), "%zu %zu %zu %zu of %zu",
              ng, nd, mg, md, loom_st_count(f));
        CHECK("two models: an Adam step counter per model",
              loom_st_meta(f, "adam_t.gen") && strcmp(loom_st_meta(f, "adam_t.gen"), "10") == 0 &&
              loom_st_meta(f, "adam_t.disc") && !loom_st_meta(f, "adam_t"), "%s", "");
        loom_safetensors_close(f);
    }
    loom_model *one = NULL;
    st = loom_checkpoint_load(fa, 1, &one, NULL, NULL, NULL, NULL, &err);
    CHECK("two models: a single-model loader refuses the run in one line", st != LOOM_OK && strstr(err.msg, "2 models"),
          "%s", err.msg);
    loom_model_free(one);
    loom_images_free(&data);
}

/* a custom objective: model 0 learns, model 1 gets a zero gradient (frozen) */
static loom_status freeze_second(void *user, loom_model *const *models, size_t n, const uint8_t *imgs,
                                 const int32_t *labels, size_t batch, uint64_t noise, double *losses,
                                 loom_error *err) {
    (void)noise, (void)labels;
    int *calls = user;
    ++*calls;
    loom_status st = loom_model_grad(models[0], &losses[0], imgs, NULL, batch, err);
    for (size_t j = 1; j < n; j++) memset(models[j]->g, 0, models[j]->nfloats * sizeof(float)), losses[j] = 0;
    return st;
}

static void test_custom_objective(void) {
    loom_images data = make_data(30, 12);
    loom_trainer *t = two_models(&data, 3);
    if (!t) return;
    int calls = 0;
    loom_trainer_set_grad(t, freeze_second, &calls);
    const loom_model *d = loom_trainer_model(t, 1), *g = loom_trainer_model(t, 0);
    float *d0 = malloc(d->nfloats * sizeof *d0), *g0 = malloc(g->nfloats * sizeof *g0);
    memcpy(d0, d->w, d->nfloats * sizeof *d0), memcpy(g0, g->w, g->nfloats * sizeof *g0);
    char c[96];
    snprintf(c, sizeof c, "%s/custom", dir);
    loom_error err;
    loom_train_stop why;
    loom_status st = loom_trainer_start(t, c, &err);
    if (!st) st = loom_trainer_run(t, c, NULL, &why, &err);
    CHECK("custom objective: called once per step", st == LOOM_OK && calls == 3, "%d %s", calls, err.msg);
    CHECK("custom objective: the frozen model is unchanged, the other moved",
          memcmp(d0, d->w, d->nfloats * sizeof *d0) == 0 && memcmp(g0, g->w, g->nfloats * sizeof *g0) != 0, "%s", "");
    free(d0), free(g0);
    loom_trainer_free(t);
    loom_images_free(&data);
}

/* the LOG events of a run, kept for test_terms */
typedef struct {
    size_t nlog;
    loom_train_event ev[8];
    char names[LOOM_MAX_RUN_TERMS][LOOM_TERM_NAMELEN];
} logs;

static void keep_logs(void *user, const loom_train_event *ev) {
    logs *l = user;
    if (ev->kind != LOOM_TRAIN_LOG || l->nlog == 8) return;
    l->ev[l->nlog++] = *ev;
    for (size_t k = 0; k < ev->nterms; k++) snprintf(l->names[k], LOOM_TERM_NAMELEN, "%s", ev->term_names[k]);
}

/* The named terms of the training loss in the trainer's LOG events: a DRAW
 * run reports its KL and reconstruction (adding up to its loss), several
 * models report each one's loss as loss_<role>, with or without a custom
 * objective (which hides the models' own terms). */
static void test_terms(void) {
    loom_images data = make_data(30, 14);
    loom_train_opts o;
    loom_train_opts_default(&o);
    snprintf(o.data, sizeof o.data, "synthetic");
    o.batch = 4, o.steps = 4, o.seed = 3, o.valid = 6, o.eval_every = 0, o.checkpoint_every = 0;
    loom_train_model_spec spec = {"model", {.model = "draw", .height = 6, .width = 6, .hidden = 4, .zdim = 2,
                                            .steps_draw = 2, .read_n = 2, .write_n = 2, .attention = 1}};
    loom_trainer *t = NULL;
    loom_error err;
    loom_train_stop why;
    logs l = {0};
    loom_train_hooks hooks = {.log = keep_logs, .user = &l, .log_every = 2};
    char c[96];
    snprintf(c, sizeof c, "%s/terms", dir);
    loom_status st = loom_trainer_create(&t, &o, &spec, 1, 1, &err);
    if (!st) st = loom_trainer_set_data(t, &data, &err);
    const char *const *names = NULL;
    const size_t nt = st ? 0 : loom_trainer_terms(t, &names);
    CHECK("terms: a DRAW run has two, kl and recon", nt == 2 && strcmp(names[0], "kl_nats_per_image") == 0 &&
          strcmp(names[1], "recon_nats_per_image") == 0, "%zu %s", nt, nt ? names[0] : "");
    if (!st) st = loom_trainer_start(t, c, &err);
    if (!st) st = loom_trainer_run(t, c, &hooks, &why, &err);
    int sums = l.nlog == 2, positive = 1;
    for (size_t i = 0; i < l.nlog; i++) {
        const loom_train_event *e = &l.ev[i];
        const double nats = e->train_bpd[0] * log(2.0) * 36; /* per image of 36 pixels */
        sums &= e->nterms == 2 && fabs(e->terms[0] + e->terms[1] - nats) < 1e-9 * nats;
        positive &= e->terms[0] > 0 && e->terms[1] > 0;
    }
    CHECK("terms: every LOG has DRAW's KL and reconstruction, adding up to the training loss", st == LOOM_OK && sums,
          "%d %zu logs: %g + %g vs %g", (int)st, l.nlog, l.ev[0].terms[0], l.ev[0].terms[1],
          l.ev[0].train_bpd[0] * log(2.0) * 36);
    CHECK("terms: both positive", positive, "%g %g", l.ev[0].terms[0], l.ev[0].terms[1]);
    loom_trainer_free(t);

    /* two models on their own NLLs: each model's loss as loss_<role>, its mean over the logged steps */
    t = two_models(&data, 4);
    if (!t) return;
    memset(&l, 0, sizeof l);
    snprintf(c, sizeof c, "%s/terms2", dir);
    const size_t n2 = loom_trainer_terms(t, &names);
    CHECK("terms: two rowlstm models report loss_gen and loss_disc", n2 == 2 && strcmp(names[0], "loss_gen") == 0 &&
          strcmp(names[1], "loss_disc") == 0, "%zu", n2);
    st = loom_trainer_start(t, c, &err);
    if (!st) st = loom_trainer_run(t, c, &hooks, &why, &err);
    int same = l.nlog == 2;
    for (size_t i = 0; i < l.nlog; i++)
        for (size_t j = 0; j < 2; j++)
            same &= fabs(l.ev[i].terms[j] - l.ev[i].train_bpd[j] * log(2.0)) < 1e-12 && l.ev[i].terms[j] > 0;
    CHECK("terms: loss_<role> is each model's training loss (nats per dimension)", st == LOOM_OK && same,
          "%zu logs %g %g", l.nlog, l.ev[0].terms[0], l.ev[0].train_bpd[0] * log(2.0));
    loom_trainer_free(t);

    /* a custom objective (a GAN's shape): its losses per model, model 1's is 0 */
    t = two_models(&data, 4);
    if (!t) return;
    int calls = 0;
    loom_trainer_set_grad(t, freeze_second, &calls);
    memset(&l, 0, sizeof l);
    snprintf(c, sizeof c, "%s/terms3", dir);
    st = loom_trainer_start(t, c, &err);
    if (!st) st = loom_trainer_run(t, c, &hooks, &why, &err);
    CHECK("terms: a custom objective's losses are loss_gen and loss_disc",
          st == LOOM_OK && l.nlog == 2 && l.ev[1].nterms == 2 && strcmp(l.names[1], "loss_disc") == 0 &&
          l.ev[1].terms[0] > 0 && l.ev[1].terms[1] == 0.0, "%zu logs %g %g", l.nlog, l.ev[1].terms[0], l.ev[1].terms[1]);
    loom_trainer_free(t);
    loom_images_free(&data);
}

static void test_split(void) {
    loom_images data = make_data(300, 13);
    loom_train_opts o;
    loom_train_opts_default(&o);
    o.valid = 30, o.seed = 5;
    size_t *tr, *va, ntr, nva, *tr2, *va2, ntr2, nva2;
    loom_error err;
    loom_status st = loom_train_split(&tr, &ntr, &va, &nva, &data, &o, &err);
    CHECK("split: 30 of 300", st == LOOM_OK && nva == 30 && ntr == 270, "%s", err.msg);
    if (st) return;
    /* classes: 0 and 1 have 67 images each, class 2 has 166: 30 valid -> 7, 7, 16 (within one) */
    size_t count[3] = {0};
    for (size_t i = 0; i < nva; i++) count[data.labels[va[i]]]++;
    CHECK("split: stratified by class (a tail split would be all class 2)",
          count[0] >= 6 && count[0] <= 8 && count[1] >= 6 && count[1] <= 8 && count[2] >= 15 && count[2] <= 17,
          "%zu %zu %zu", count[0], count[1], count[2]);
    /* every prefix k: class c has k * n_c / n images, within one */
    size_t c4[3] = {0}, worst_k = 0;
    for (size_t i = 0; i < 300; i++) c4[data.labels[i]]++;
    const double frac[3] = {(double)c4[0] / 300, (double)c4[1] / 300, (double)c4[2] / 300};
    memset(c4, 0, sizeof c4);
    bool prefix_ok = true;
    for (size_t k = 1; k <= nva; k++) {
        c4[data.labels[va[k - 1]]]++;
        for (int c = 0; c < 3; c++)
            if (fabs((double)c4[c] - (double)k * frac[c]) > 1.0 && prefix_ok) prefix_ok = false, worst_k = k;
    }
    CHECK("split: every prefix of the validation split is stratified (eval --limit)", prefix_ok,
          "prefix %zu off", worst_k);
    bool disjoint = true, sorted = true;
    char *seen = calloc(300, 1);
    for (size_t i = 0; i < nva; i++) seen[va[i]]++;
    for (size_t i = 0; i < ntr; i++) disjoint &= !seen[tr[i]]++, sorted &= i == 0 || tr[i] > tr[i - 1];
    for (size_t i = 0; i < 300; i++) disjoint &= seen[i] == 1;
    CHECK("split: training and validation images partition the set; training in file order", disjoint && sorted, "%s", "");
    free(seen);
    st = loom_train_split(&tr2, &ntr2, &va2, &nva2, &data, &o, &err);
    CHECK("split: same seed, same split", !st && memcmp(va, va2, nva * sizeof *va) == 0, "%s", err.msg);
    free(tr2), free(va2);
    o.seed = 6;
    st = loom_train_split(&tr2, &ntr2, &va2, &nva2, &data, &o, &err);
    CHECK("split: another seed, another split", !st && memcmp(va, va2, nva * sizeof *va) != 0, "%s", err.msg);
    free(tr2), free(va2);
    o.valid_split = LOOM_SPLIT_TAIL;
    st = loom_train_split(&tr2, &ntr2, &va2, &nva2, &data, &o, &err);
    CHECK("split: old runs keep the tail", !st && va2[0] == 270 && va2[29] == 299 && tr2[269] == 269, "%s", err.msg);
    free(tr2), free(va2);
    free(tr), free(va);
    CHECK("split: default valid is 10%, at most 5000",
          loom_valid_default(300) == 30 && loom_valid_default(12) == 1 && loom_valid_default(60000) == 5000 &&
          loom_valid_default(1) == 0, "%zu %zu %zu", loom_valid_default(300), loom_valid_default(12),
          loom_valid_default(60000));
    loom_images_free(&data);
}


/* configs: each model's section strictly; the seed an exact integer number */
static void test_config(void) {
    loom_config cfg = {.model = "rowlstm", .height = 6, .width = 6, .layers = 1, .hidden = 2}, back;
    loom_train_opts o, ob;
    loom_train_opts_default(&o);
    o.valid = 3;
    snprintf(o.data, sizeof o.data, "/data/set-2 \"7\""); /* digits in a string before the seed */
    loom_error err;
    const uint64_t seeds[3] = {18446744073709551557ULL, (1ULL << 53) + 1, 0};
    for (int i = 0; i < 3; i++) {
        o.seed = seeds[i];
        char *js = loom_config_json(&cfg, &o);
        loom_status st = loom_config_parse(&back, &ob, js, "cfg", &err);
        char name[96];
        snprintf(name, sizeof name, "config: seed %llu is a JSON number and reads back exactly", (unsigned long long)seeds[i]);
        char want[64];
        snprintf(want, sizeof want, "\"seed\":\t%llu,", (unsigned long long)seeds[i]);
        CHECK(name, st == LOOM_OK && ob.seed == seeds[i] && strstr(js, want), "%s %llu %s", err.msg,
              (unsigned long long)ob.seed, js);
        free(js);
    }
    static const struct { const char *what, *model, *train, *pat; } bad[] = {
        {"a rowlstm with a zdim", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0,\"zdim\":4",
         "\"seed\":1", "\"zdim\" is not a setting of model rowlstm"},
        {"a rowlstm with a cell", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0,\"cell\":\"gru\"",
         "\"seed\":1", "\"cell\" is not a setting of model rowlstm"},
        {"a grupixel with draw's read_n", "\"name\":\"grupixel\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0,\"cell\":\"gru\",\"zdim\":4,\"read_n\":2",
         "\"seed\":1", "\"read_n\" is not a setting of model grupixel"},
        {"an unknown model key", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0,\"depth\":3",
         "\"seed\":1", "unknown config key \"depth\""},
        {"a seed of 2^64", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":18446744073709551616", "\"seed\" must be an integer"},
        {"a fractional seed", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":1.5", "\"seed\" must be an integer"},
        {"a negative seed", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":-1", "\"seed\" must be an integer"},
        {"a seed in exponent form", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":1e3", "\"seed\" must be an integer"},
        {"a convlstm feedback that is a number", "\"name\":\"convlstm\",\"height\":8,\"width\":8,\"layers\":1,\"hidden\":2,\"classes\":0,\"frames_in\":2,\"frames_out\":2,\"kernel\":3,\"patch\":2,\"feedback\":1",
         "\"seed\":1", "\"feedback\" must be true or false"},
        {"a convlstm loss of \"huber\"", "\"name\":\"convlstm\",\"height\":8,\"width\":8,\"layers\":1,\"hidden\":2,\"classes\":0,\"frames_in\":2,\"frames_out\":2,\"kernel\":3,\"patch\":2,\"loss\":\"huber\"",
         "\"seed\":1", "\"loss\" must be \"xent\", \"l1\" or \"mse\""},
        {"a rowlstm with convlstm's feedback", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0,\"feedback\":true",
         "\"seed\":1", "\"feedback\" is not a setting of model rowlstm"},
        {"an adversarial_on of \"all\"", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":1,\"adversarial\":2,\"adversarial_on\":\"all\"", "\"adversarial_on\" must be"},
        {"an adversarial_on without adversarial", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":1,\"adversarial_on\":\"both\"", "\"adversarial_on\" must be"},
        {"an adversarial_on that is a number", "\"name\":\"rowlstm\",\"height\":6,\"width\":6,\"layers\":1,\"hidden\":2,\"classes\":0",
         "\"seed\":1,\"adversarial\":2,\"adversarial_on\":3", "\"adversarial_on\" must be"},
    };
    const char *rest = "\"data\":\"d\",\"batch\":4,\"lr\":0.001,\"beta1\":0.9,\"beta2\":0.999,\"eps\":1e-8,\"clip\":1,"
                       "\"lr_halflife\":0,\"steps\":5,\"valid\":3,\"eval_every\":0,\"eval_limit\":0,\"checkpoint_every\":0,"
                       "\"sample_every\":0";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char js[1024], name[96];
        snprintf(js, sizeof js, "{\"model\":{%s},\"train\":{%s,%s}}", bad[i].model, bad[i].train, rest);
        loom_status st = loom_config_parse(&back, &ob, js, "cfg", &err);
        snprintf(name, sizeof name, "config: %s is refused", bad[i].what);
        CHECK(name, st == LOOM_EFORMAT && strstr(err.msg, bad[i].pat), "%d %s", (int)st, err.msg);
        if (!st) loom_train_opts_free(&ob);
    }
    /* the old form, from checkpoints written before: the seed as a decimal string */
    char js[1024];
    snprintf(js, sizeof js, "{\"model\":{%s},\"train\":{\"seed\":\"18446744073709551557\",%s}}", bad[4].model, rest);
    loom_status st = loom_config_parse(&back, &ob, js, "cfg", &err);
    CHECK("config: the old string seed still reads exactly", st == LOOM_OK && ob.seed == 18446744073709551557ULL,
          "%s", err.msg);
    /* adversarial_on reads back; a config from before the key judged reconstructions */
    for (unsigned on = 1; on <= 3; on++) {
        snprintf(js, sizeof js, "{\"model\":{%s},\"train\":{\"seed\":1,\"adversarial\":2,\"adversarial_on\":\"%s\",%s}}",
                 bad[4].model, loom_adv_on_name(on), rest);
        st = loom_config_parse(&back, &ob, js, "cfg", &err);
        CHECK("config: adversarial_on reads back", st == LOOM_OK && ob.adversarial_on == on, "%s: %s", loom_adv_on_name(on),
              err.msg);
    }
    snprintf(js, sizeof js, "{\"model\":{%s},\"train\":{\"seed\":1,\"adversarial\":2,%s}}", bad[4].model, rest);
    st = loom_config_parse(&back, &ob, js, "cfg", &err);
    CHECK("config: an adversarial run without adversarial_on judges reconstructions (as before the key)",
          st == LOOM_OK && ob.adversarial_on == LOOM_ADV_RECON, "%d %s", (int)st, err.msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/loom-trainer-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_config();
    test_split();
    test_two_models();
    test_custom_objective();
    test_terms();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    CHECK_DONE();
}
