/* --gemm and --precision, shared by train, eval, sample and bench */
#include "cli.h"

#include "gemm.h"

#include <stdio.h>

void cli_gemm(loom_model *m, const char *gemm, const char *train_prec, const char *eval_prec) {
    /* no --gemm: the faster back-end for this model (docs/performance.md) */
    loom_gemm_backend b = (loom_gemm_backend)loom_model_default_gemm(&m->cfg);
    loom_precision tp = (loom_precision)m->train_prec, ep = (loom_precision)m->eval_prec;
    if (gemm && loom_gemm_backend_parse(gemm, &b))
        cli_die(2, "--gemm '%s': expected openblas or onednn", gemm);
    if (train_prec && loom_precision_parse(train_prec, &tp))
        cli_die(2, "--precision '%s': expected fp32 or bf16", train_prec);
    if (eval_prec && loom_precision_parse(eval_prec, &ep))
        cli_die(2, "--precision '%s': expected fp32 or bf16", eval_prec);
    /* bf16 without --gemm: the back-end that has it */
    if (!gemm && (tp == LOOM_PREC_BF16 || ep == LOOM_PREC_BF16) && loom_gemm_have_onednn())
        b = LOOM_GEMM_ONEDNN;
    loom_error err;
    if (loom_model_set_gemm(m, b, tp, ep, &err)) {
        const char *flag = (tp == LOOM_PREC_BF16 || ep == LOOM_PREC_BF16) ? "--precision bf16" : "--gemm onednn";
        cli_die(2, "%s: %s", flag, err.msg);
    }
}
