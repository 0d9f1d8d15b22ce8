/* Create a tiny Row LSTM, train it for a few Adam steps on a few
 * Fashion-MNIST images and print the loss going down; then save a
 * checkpoint that `loom sample` (and loom_model_load) read.
 *
 *   cc $(pkg-config --cflags loom) train_tiny.c $(pkg-config --libs loom) -o train_tiny
 *   ./train_tiny [DATA [STEPS [OUT.safetensors]]]     DATA defaults to "fashion-mnist"
 */
#include <loom.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    const char *data = argc > 1 ? argv[1] : "fashion-mnist";
    const long steps = argc > 2 ? strtol(argv[2], NULL, 10) : 20;
    const char *out = argc > 3 ? argv[3] : NULL;
    const size_t batch = 8;
    loom_error err = {{0}};
    loom_context *ctx = NULL;
    loom_model *m = NULL;
    loom_optimizer *opt = NULL;
    loom_images train = {0};

    loom_status st = loom_images_load(&train, data, "train", &err);
    if (st) goto done;
    if (train.n < batch) {
        st = LOOM_EINVAL;
        snprintf(err.msg, sizeof err.msg, "%s: fewer than %zu training images", data, batch);
        goto done;
    }
    if ((st = loom_context_create(&ctx, 0, &err))) goto done;
    char json[256];
    snprintf(json, sizeof json,
             "{\"model\": {\"name\": \"rowlstm\", \"height\": %zu, \"width\": %zu, \"layers\": 1, "
             "\"hidden\": 8, \"classes\": 0}}", train.h, train.w);
    if ((st = loom_model_create_json(&m, ctx, json, 1, &err))) goto done;
    printf("model %s: %zu parameters\n", loom_model_name(m), loom_model_num_params(m));

    loom_adam_opts o;
    loom_adam_opts_default(&o);
    o.lr = 1e-2; /* a tiny model on one batch: a large step shows progress in few steps */
    if ((st = loom_optimizer_create(&opt, m, &o, &err))) goto done;

    double before, after, loss;
    if ((st = loom_model_eval_bpd(m, &before, train.pixels, NULL, batch, &err))) goto done;
    for (long s = 1; s <= steps; s++) {
        /* the same first batch every step: the model overfits it */
        if ((st = loom_train_step(m, opt, &loss, train.pixels, NULL, batch, &err))) goto done;
        printf("step %ld loss %.4f nats/pixel\n", s, loss);
    }
    if ((st = loom_model_eval_bpd(m, &after, train.pixels, NULL, batch, &err))) goto done;
    printf("bits/dim on the batch: %.4f before, %.4f after %ld steps\n", before, after,
           loom_optimizer_steps(opt));
    if (out) {
        if ((st = loom_model_save(m, opt, out, &err))) goto done;
        printf("checkpoint -> %s\n", out);
    }

done:
    if (st) fprintf(stderr, "train_tiny: %s (%s)\n", err.msg, loom_status_name(st));
    loom_optimizer_free(opt);
    loom_model_free(m);
    loom_context_free(ctx);
    loom_images_free(&train);
    return st == LOOM_OK ? 0 : (st == LOOM_EINVAL || st == LOOM_EFORMAT ? 2 : 1);
}
