/* Capabilities are discovered from each model's op table (loom_model_caps),
 * and parameters may have any rank (loom_param_add_nd). */
#include "testutil.h"

#include <string.h>

static unsigned caps_of(loom_config cfg) {
    cfg.height = cfg.height ? cfg.height : 6, cfg.width = cfg.width ? cfg.width : 6;
    loom_model *m = test_model(&cfg, 1, 1, 0.0f);
    unsigned c = loom_model_caps(m);
    loom_model_free(m);
    return c;
}

static void expect(const char *name, unsigned got, unsigned want) {
    char buf[96];
    snprintf(buf, sizeof buf, "caps: %s", name);
    CHECK(buf, got == want, "got 0x%x, want 0x%x", got, want);
}

int main(void) {
    const unsigned AR = LOOM_CAP_SAMPLE | LOOM_CAP_EXACT_NLL | LOOM_CAP_CONDITIONALS | LOOM_CAP_OUTPUT_GRAD;
    expect("rowlstm: sample, exact NLL, conditionals, output gradient",
           caps_of((loom_config){.model = "rowlstm", .layers = 1, .hidden = 2}), AR);
    expect("diagbilstm: sample, exact NLL, conditionals, output gradient",
           caps_of((loom_config){.model = "diagbilstm", .layers = 1, .hidden = 2}), AR);
    /* grupixel's NLL is a bound at a fixed z, but its per-pixel logits exist */
    const unsigned gp = caps_of((loom_config){.model = "grupixel", .layers = 1, .hidden = 4, .cell = "gru", .zdim = 2});
    CHECK("caps: grupixel samples and has conditionals, its NLL is not exact",
          (gp & (LOOM_CAP_SAMPLE | LOOM_CAP_CONDITIONALS)) == (LOOM_CAP_SAMPLE | LOOM_CAP_CONDITIONALS) &&
          !(gp & LOOM_CAP_EXACT_NLL), "0x%x", gp);
    expect("draw: sample, iw bound, reconstruct, stages, output gradient",
           caps_of((loom_config){.model = "draw", .height = 8, .width = 8, .layers = 1, .hidden = 4,
                                 .zdim = 2, .steps_draw = 2, .read_n = 2, .write_n = 2, .attention = 1}),
           LOOM_CAP_SAMPLE | LOOM_CAP_IW_BOUND | LOOM_CAP_RECONSTRUCT | LOOM_CAP_STAGES |
               LOOM_CAP_OUTPUT_GRAD);
    expect("rae --variational: sample, iw bound, reconstruct, codes, output gradient",
           caps_of((loom_config){.model = "rae", .height = 8, .width = 8, .layers = 1, .hidden = 4,
                                 .zdim = 2, .variational = 1}),
           LOOM_CAP_SAMPLE | LOOM_CAP_IW_BOUND | LOOM_CAP_RECONSTRUCT | LOOM_CAP_CODES |
               LOOM_CAP_OUTPUT_GRAD);
    /* a plain autoencoder has no prior: it cannot sample, so it has no bound either */
    expect("rae (deterministic): reconstruct, codes, exact reconstruction loss",
           caps_of((loom_config){.model = "rae", .height = 8, .width = 8, .layers = 1, .hidden = 4, .zdim = 2}) &
               ~(unsigned)LOOM_CAP_EXACT_NLL,
           LOOM_CAP_RECONSTRUCT | LOOM_CAP_CODES | LOOM_CAP_OUTPUT_GRAD);
    int names_ok = 1;
    for (int k = 0; k < LOOM_NCAPS; k++) names_ok &= loom_cap_name(1u << k) != NULL;
    CHECK("caps: every bit has a name, others none", names_ok && !loom_cap_name(1u << LOOM_NCAPS) &&
          !loom_cap_name(3), "names");

    loom_param p[2];
    const size_t shape[4] = {5, 3, 7, 7};
    size_t n = loom_param_add_nd(p, 0, 0.5f, 4, shape, "conv.weight");
    n = loom_param_add_nd(p, n, 0.0f, 1, shape, "conv.bias");
    CHECK("params: a rank-4 tensor keeps its shape", n == 2 && p[0].ndim == 4 && p[0].shape[0] == 5 &&
          p[0].shape[3] == 7 && p[1].ndim == 1 && p[1].shape[0] == 5 && !strcmp(p[0].name, "conv.weight"),
          "ndim %d", p[0].ndim);
    CHECK_DONE();
}
