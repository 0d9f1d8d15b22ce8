/* loom battle A B: the generative adversarial metric of Im et al. 2016
 * between two adversarial runs (docs/gran.md, "Battle"). */
#include "cli.h"

#include "train/gan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the generator and the discriminator of an adversarial run; exits 2 for other runs */
static void load_pair(const char *spec, int threads, loom_run_model *ms, size_t *n, loom_train_opts *o,
                      loom_train_state *ts) {
    loom_error err;
    loom_status st = loom_run_load(cli_checkpoint_path(spec), threads, false, ms, n, ts, o, &err);
    if (st) cli_die_err(st, &err);
    if (*n != 2 || !ms[0].m->ops->generate || !ms[1].m->ops->forward_x || !(loom_model_caps(ms[0].m) & LOOM_CAP_SAMPLE)) {
        char name[16];
        snprintf(name, sizeof name, "%s", ms[0].m->ops->name);
        loom_run_models_free(ms, *n);
        cli_die(2, "%s: a run of model %s, not an adversarial run of a generator and its discriminator (--model gran, or "
                "draw or a variational rae with --adversarial)",
                spec, name);
    }
}

int cmd_battle(int argc, char **argv) {
    size_t n = 1000, threads = 1;
    uint64_t seed = 1;
    double tol = 0.1;
    const char *test_spec = NULL;
    bool json = false;
    cli_arg args[] = {
        {"n", ARG_SIZE, &n, 1, 1e7, "test images and samples of each generator (default 1000)", false},
        {"test", ARG_STR, &test_spec, 0, 0, "the real images judged (default: DATA:test of run A's data)", false},
        {"tol", ARG_DOUBLE, &tol, 0, 10, "r_test counts as 1 within this (default 0.1)", false},
        {"seed", ARG_U64, &seed, 0, 0, "seed of the samples (default 1)", false},
        {"threads", ARG_SIZE, &threads, 1, 256, "threads (default 1)", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[2];
    int npos;
    cli_parse("battle", "RUN_A RUN_B [--n N] [--test DATA:test] [--tol F] [--json]   (two gran runs: each "
              "discriminator judges the test images and the other's samples)", argc, argv, args,
              sizeof args / sizeof args[0], pos, 2, &npos);
    if (npos != 2) cli_die(2, "battle needs two run directories (see 'loom battle --help')");
    loom_run_model a[LOOM_MAX_MODELS], b[LOOM_MAX_MODELS];
    size_t na = 0, nb = 0;
    loom_train_opts oa, ob;
    loom_train_state ta = {0}, tb = {0};
    loom_train_opts_default(&oa), loom_train_opts_default(&ob);
    load_pair(pos[0], (int)threads, a, &na, &oa, &ta);
    load_pair(pos[1], (int)threads, b, &nb, &ob, &tb);
    char spec[1100], what[512];
    if (!test_spec) {
        snprintf(spec, sizeof spec, "%s:test", oa.data);
        test_spec = spec;
    }
    loom_images test;
    cli_image_set(&test, test_spec, n, seed, (int)threads, what, sizeof what);
    if (test.h != a[0].m->cfg.height || test.w != a[0].m->cfg.width || (test.c ? test.c : 1) != 1)
        cli_die(2, "%s: %zux%zu images, but the runs draw %zux%zu gray ones", test_spec, test.h, test.w,
                a[0].m->cfg.height, a[0].m->cfg.width);
    loom_battle_result r;
    loom_error err;
    loom_status st = loom_battle(&r, a[0].m, a[1].m, b[0].m, b[1].m, test.pixels, test.n, n, seed, tol, &err);
    if (st) cli_die_err(st, &err);
    const char *winner = loom_battle_winner_name(r.winner);
    if (json) {
        cli_json j;
        cli_json_begin(&j, a[0].m->cfg.model, ta.step, cli_checkpoint_path(pos[0]), "battle");
        cli_json_str(&j, "run_a", pos[0]);
        cli_json_str(&j, "run_b", pos[1]);
        cli_json_int(&j, "step_b", tb.step);
        cli_json_num(&j, "r_test", r.r_test);
        cli_json_num(&j, "r_sample", r.r_sample); /* infinite: null, with the errors below */
        cli_json_str(&j, "winner", winner);
        cli_json_num(&j, "err_test_a", r.err_test_a);
        cli_json_num(&j, "err_test_b", r.err_test_b);
        cli_json_num(&j, "err_sample_a", r.err_sample_a);
        cli_json_num(&j, "err_sample_b", r.err_sample_b);
        cli_json_num(&j, "tol", tol);
        cli_json_int(&j, "n", (long long)test.n);
        cli_json_str(&j, "convention", "r_test = err(D_A, test) / err(D_B, test); r_sample = err(D_A, G_B) / "
                     "err(D_B, G_A); A wins when r_sample < 1 and |r_test - 1| <= tol");
        cli_json_end(&j);
    } else {
        printf("test images: %s\n", what);
        printf("D_A errs on %.4f of the test images, D_B on %.4f: r_test = %.4f\n", r.err_test_a, r.err_test_b,
               r.r_test);
        printf("D_A is fooled by %.4f of B's samples, D_B by %.4f of A's: r_sample = %.4f\n", r.err_sample_a,
               r.err_sample_b, r.r_sample);
        printf("winner: %s%s\n", winner, r.winner == LOOM_BATTLE_UNDECIDED ? " (r_test is not within --tol of 1, "
               "or D_B errs on no test image: the discriminators are not comparable)" : r.winner == LOOM_BATTLE_A ?
               " (run A)" : r.winner == LOOM_BATTLE_B ? " (run B)" : "");
    }
    loom_images_free(&test);
    loom_run_models_free(a, na), loom_run_models_free(b, nb);
    loom_train_opts_free(&oa), loom_train_opts_free(&ob);
    return 0;
}
