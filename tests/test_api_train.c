/* The public training API (include/loom/train.h): a run made and trained
 * through it is `loom train`'s run directory; 3 + resume + 3 steps equal 6
 * steps, on another thread count too; progress comes back; misuse is refused. */
#include "loom.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

static char config[2048];

static void on_progress(void *user, long step, long steps, double train_bpd, double valid_bpd) {
    int *calls = user;
    (void)steps, (void)valid_bpd;
    if (step > 0 && isfinite(train_bpd) && train_bpd > 0) (*calls)++;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

int main(void) {
    char tmpl[] = "/tmp/loom_api_train_XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    if (!tmp) return 1;
    snprintf(config, sizeof config,
             "{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 8, \"layers\": 1, \"hidden\": 2,"
             " \"classes\": 0}, \"train\": {\"data\": \"%s/png8/gray\", \"batch\": 4, \"lr\": 0.01,"
             " \"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-8, \"clip\": 1, \"lr_halflife\": 0, \"steps\": 6,"
             " \"seed\": 7, \"valid\": 4, \"eval_every\": 0, \"eval_limit\": 0, \"checkpoint_every\": 0,"
             " \"sample_every\": 0}}", FIXTURE_DIR);
    char a[512], b[512], ca[600], cb[600];
    snprintf(a, sizeof a, "%s/runs/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", a);
    snprintf(cb, sizeof cb, "%s/checkpoint.safetensors", b);
    loom_context *c1, *c2;
    loom_error err;
    loom_context_create(&c1, 1, NULL);
    loom_context_create(&c2, 2, NULL);

    /* a: 6 steps in one call, 1 thread */
    loom_trainer *t;
    loom_status st = loom_trainer_new(&t, c1, config, a, &err);
    CHECK("trainer_new: a run in a new directory (parents created)", st == LOOM_OK && access(ca, F_OK) == 0,
          "%s", st ? err.msg : "no checkpoint");
    if (st) CHECK_DONE();
    int calls = 0;
    st = loom_trainer_train(t, 6, on_progress, &calls, &err);
    CHECK("trainer_train: 6 steps", st == LOOM_OK && loom_trainer_steps_done(t) == 6, "%s", st ? err.msg : "steps");
    CHECK("trainer_train: progress reports the training bits/dim", calls >= 1, "%d calls", calls);
    loom_model *m = loom_trainer_get_model(t);
    uint8_t imgs[2 * 64];
    double nll[2];
    memset(imgs, 100, sizeof imgs);
    st = loom_model_eval_nll(m, nll, imgs, NULL, 2, &err);
    CHECK("trainer_get_model: the trained model evaluates", st == LOOM_OK && nll[0] > 0, "%s", st ? err.msg : "nll");
    st = loom_trainer_train(t, 3, NULL, NULL, &err);
    CHECK("trainer_train: a target below the steps taken is refused", st == LOOM_EINVAL, "status %d", st);
    loom_trainer_free(t);

    /* b: 3 steps on 2 threads, then open and 3 more on 1 thread */
    st = loom_trainer_new(&t, c2, config, b, &err);
    if (!st) st = loom_trainer_train(t, 3, NULL, NULL, &err);
    loom_trainer_free(t);
    CHECK("trainer: 3 steps on 2 threads", st == LOOM_OK, "%s", err.msg);
    st = loom_trainer_open(&t, c1, b, &err);
    CHECK("trainer_open: the run at step 3", st == LOOM_OK && loom_trainer_steps_done(t) == 3, "%s", st ? err.msg : "step");
    if (!st) st = loom_trainer_train(t, 6, NULL, NULL, &err);
    loom_trainer_free(t);
    CHECK("trainer: 3 (2 threads) + open + 3 (1 thread) == 6 steps, byte for byte", st == LOOM_OK && same_file(ca, cb),
          "%s", st ? err.msg : "checkpoints differ");

    st = loom_trainer_new(&t, c1, config, a, &err);
    CHECK("trainer_new: a directory holding a run is refused", st != LOOM_OK && t == NULL && strstr(err.msg, a),
          "status %d %s", st, err.msg);
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", config);
    char *h = strstr(bad, "\"height\": 8");
    h[10] = '9'; /* the data is 8x8 */
    snprintf(b, sizeof b, "%s/c", tmp);
    st = loom_trainer_new(&t, c1, bad, b, &err);
    CHECK("trainer_new: a model of another size than the data is refused", st != LOOM_OK && t == NULL, "accepted");
    st = loom_trainer_open(&t, c1, tmp, &err);
    CHECK("trainer_open: a directory without a run is refused", st != LOOM_OK && t == NULL, "accepted");
    loom_context_free(c1), loom_context_free(c2);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    CHECK_DONE();
}
