/* loom_context_set_gemm: the back-end of the models a context makes, bad
 * names refused, NULL back to each model's default; the model's NLL agrees
 * across back-ends. */
#include "check.h"
#include "gemm.h"
#include "loom.h"
#include "models/model.h"

#include <math.h>
#include <string.h>

#define ROWLSTM "{\"model\": {\"name\": \"rowlstm\", \"height\": 8, \"width\": 6, \"layers\": 1, " \
                "\"hidden\": 4, \"classes\": 0}}"

int main(void) {
    loom_context *ctx;
    loom_error e;
    loom_context_create(&ctx, 2, &e);
    CHECK("set_gemm: an unknown back-end is refused", loom_context_set_gemm(ctx, "mkl", &e) == LOOM_EINVAL &&
          strstr(e.msg, "mkl") && !loom_context_gemm(ctx), "%s", e.msg);
    CHECK("set_gemm: NULL context refused", loom_context_set_gemm(NULL, "openblas", &e) == LOOM_EINVAL, "accepted");
    loom_model *m0 = NULL, *m1 = NULL;
    uint8_t img[2 * 48];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 37);
    double n0[2] = {0}, n1[2] = {0};
    loom_model_create_json(&m0, ctx, ROWLSTM, 3, &e);
    CHECK("set_gemm: unset, a model starts with the library default back-end",
          m0 && m0->gemm == (int)loom_gemm_default(), "gemm %d", m0 ? m0->gemm : -1);
    const char *want = loom_gemm_have_onednn() ? "onednn" : "openblas";
    const loom_gemm_backend wb = loom_gemm_have_onednn() ? LOOM_GEMM_ONEDNN : LOOM_GEMM_OPENBLAS;
    CHECK("set_gemm: a back-end this build has is accepted",
          loom_context_set_gemm(ctx, want, &e) == LOOM_OK && strcmp(loom_context_gemm(ctx), want) == 0, "%s", e.msg);
    loom_model_create_json(&m1, ctx, ROWLSTM, 3, &e);
    CHECK("set_gemm: the models made after it use it", m1 && m1->gemm == (int)wb, "gemm %d", m1 ? m1->gemm : -1);
    if (m0 && m1) {
        loom_model_nll(m0, n0, img, NULL, 2, 2, &e);
        loom_model_nll(m1, n1, img, NULL, 2, 2, &e);
    }
    CHECK("set_gemm: the NLL agrees across back-ends (1e-5 relative)",
          n0[0] > 0 && fabs(n0[0] - n1[0]) <= 1e-5 * n0[0] && fabs(n0[1] - n1[1]) <= 1e-5 * n0[1], "%.9g vs %.9g",
          n0[0], n1[0]);
    if (!loom_gemm_have_onednn())
        CHECK("set_gemm: onednn without oneDNN is refused", loom_context_set_gemm(ctx, "onednn", &e) == LOOM_EINVAL,
              "accepted");
    CHECK("set_gemm: NULL goes back to each model's default",
          loom_context_set_gemm(ctx, NULL, &e) == LOOM_OK && !loom_context_gemm(ctx), "still %s", loom_context_gemm(ctx));
    loom_model_free(m0), loom_model_free(m1);
    loom_context_free(ctx);
    CHECK_DONE();
}
