/* Fuzzes the safetensors reader (src/io/safetensors.c: header length, JSON,
 * dtypes, shapes, offsets, overlaps, huge numbers, metadata) and the
 * checkpoint loader on top of it (src/io/checkpoint.c: format, config JSON,
 * tensor names and shapes against the config, Adam moments, resume state).
 * An input that starts with '{' is also fed to the run-config parser alone. */
#include "fuzz.h"
#include "io/checkpoint.h"
#include "loom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[320];
    if (!path[0]) snprintf(path, sizeof path, "%s/fuzz.safetensors", fuzz_tmpdir());
    loom_error err;

    if (size && data[0] == '{') {
        char *json = malloc(size + 1);
        if (!json) abort();
        memcpy(json, data, size);
        json[size] = 0;
        loom_config cfg;
        loom_train_opts o;
        if (loom_config_parse(&cfg, &o, json, "fuzz", &err) == LOOM_OK) {
            if (loom_config_check(&cfg, &err) != LOOM_OK)
                abort(); /* the parser accepted a config the models reject */
            loom_train_opts_free(&o);
        }
        free(json);
        return 0;
    }

    if (fuzz_write(path, data, size) != 0) abort();
    loom_st_file *f;
    if (loom_safetensors_open(&f, path, &err) == LOOM_OK) {
        size_t total = 0;
        for (size_t i = 0; i < loom_st_count(f); i++) {
            const loom_tensor *t = loom_st_get(f, i);
            size_t n = 1;
            for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
            /* the reader promised the data lies inside the file */
            if (n > size) abort();
            total += n;
            if (t->dtype != LOOM_F32) continue;
            float *buf = malloc((n ? n : 1) * sizeof *buf);
            if (!buf) abort();
            if (loom_st_read_f32(f, t->name, buf, t->ndim, t->shape, &err) != LOOM_OK) abort();
            free(buf);
            if (loom_st_find(f, t->name) == NULL) abort();
        }
        (void)total;
        (void)loom_st_meta(f, "config");
        loom_safetensors_close(f);
    }

    loom_model *m = NULL;
    float *am = NULL, *av = NULL;
    loom_train_state ts;
    loom_train_opts o;
    if (loom_checkpoint_load(path, 1, &m, &am, &av, &ts, &o, &err) == LOOM_OK) {
        for (size_t i = 0; i < m->nfloats; i++)
            if (m->w[i] != m->w[i]) abort(); /* the loader promised finite weights */
        /* the trainer adds to these counters: they must be far from overflow */
        if (ts.step < 0 || ts.adam_t < 0 || ts.index > (size_t)1 << 52 || ts.epoch > (size_t)1 << 52)
            abort();
        free(am);
        free(av);
        loom_train_opts_free(&o);
        loom_model_free(m);
    }
    return 0;
}
