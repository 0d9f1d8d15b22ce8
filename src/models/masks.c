/* Masked weights (ops->masked), checked where weights come from outside the
 * model: a checkpoint. */
#include "model.h"

loom_status loom_model_check_masks(const loom_model *m, loom_error *err) {
    if (!m->ops->masked) return LOOM_OK;
    for (size_t p = 0; p < m->nparams; p++) {
        const loom_param *pp = &m->params[p];
        const float *w = m->w + pp->offset;
        for (size_t k = 0; k < pp->size; k++)
            if (w[k] != 0.0f && m->ops->masked(m, p, k)) {
                const size_t cols = pp->ndim > 1 ? pp->shape[1] : 1;
                return loom_fail(err, LOOM_EINVAL,
                                 "tensor %s entry (%zu, %zu) is %g, but the %s model masks it (it "
                                 "must be 0)", pp->name, k / cols, k % cols, (double)w[k],
                                 m->ops->name);
            }
    }
    return LOOM_OK;
}
