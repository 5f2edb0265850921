/* oracle_driver.c - runs one train step of a generated model for the random suite of
 * check_torch.py, which compares it with the reference interpreter.
 *
 *   oracle_driver INDEX BATCH LR [STEPS]
 *
 * Linked with several generated models and a table of their APIs (oracle_models[],
 * written by check_torch.py), so one link serves a whole sample. Prints the model's own
 * starting values (T0 NAME N v..., X and Y: the data and labels, a fixed formula), the
 * loss and train-mode output of one train_step (LOSS, TOUT) and every persistent tensor
 * after it (T1 ...), all with %.9g (exact for floats); oracle_dump --values reads the T0,
 * X and Y lines back. With STEPS (the optim_c suite), that many train steps on the same
 * batch, each followed by its LOSS and every tensor (T1, T2, ...). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlc_model.h"

extern const mlc_model_api *const oracle_models[];
extern const int oracle_nmodels;

static void vec(const char *tag, const char *name, const float *v, long long n) {
    printf("%s%s%s %lld", tag, name ? " " : "", name ? name : "", n);
    for (long long j = 0; j < n; j++) printf(" %.9g", v[j]);
    printf("\n");
}

static void tensors(const mlc_model_api *api, void *m, const char *tag) {
    for (int i = 0; i < api->n_tensors; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        float *v = malloc(sizeof(float) * (size_t)t->numel);
        if (!v) exit(3);
        api->read_tensor(m, i, v);
        vec(tag, t->name, v, t->numel);
        free(v);
    }
}

int main(int argc, char **argv) {
    int steps = argc == 5 ? atoi(argv[4]) : 1;
    if (argc < 4 || argc > 5 || atoi(argv[1]) < 0 || atoi(argv[1]) >= oracle_nmodels || atoi(argv[2]) < 1 ||
        steps < 1 || steps > 1000) {
        fprintf(stderr, "error: usage: oracle_driver INDEX (0..%d) BATCH (>= 1) LR [STEPS (1..1000)]\n",
                oracle_nmodels - 1);
        return 2;
    }
    const mlc_model_api *api = oracle_models[atoi(argv[1])];
    int n = atoi(argv[2]);
    float lr = (float)atof(argv[3]);
    api->set_threads(1);
    void *m = api->create(5, n);
    if (!m) return 3;
    /* the random graphs have one f32 input (the data) and one i32 input (labels below the
     * output's per-sample size) */
    int xi = -1, yi = -1;
    for (int k = 0; k < api->n_inputs; k++) {
        if (api->inputs[k].dtype == MLC_F32 && xi < 0) xi = k;
        if (api->inputs[k].dtype == MLC_I32 && yi < 0) yi = k;
    }
    if (xi < 0 || yi < 0 || api->n_outputs < 1) return 3;
    const long long classes = api->outputs[0].numel;
    long long ni = api->inputs[xi].numel * n, no = classes * n;
    float *x = malloc(sizeof(float) * (size_t)ni), *out = malloc(sizeof(float) * (size_t)no);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    float *yf = malloc(sizeof(float) * (size_t)n);
    if (!x || !out || !y || !yf) return 3;
    for (long long i = 0; i < ni; i++) x[i] = (float)sin(0.37 * (double)i + 0.1);
    for (int i = 0; i < n; i++) y[i] = (int32_t)((i * 7 + 3) % classes), yf[i] = (float)y[i];
    vec("X", NULL, x, ni);
    vec("Y", NULL, yf, n);
    tensors(api, m, "T0");
    const void *inputs[2] = {NULL, NULL};
    inputs[xi] = x, inputs[yi] = y;
    float *outputs[MLC_MAX_OUTPUTS] = {out};
    for (int k = 1; k <= steps; k++) {
        float loss = api->train_step(m, inputs, n, lr, outputs);
        char tag[16];
        snprintf(tag, sizeof tag, "T%d", k);
        printf("LOSS %.9g\n", loss);
        if (k == 1) vec("TOUT", NULL, out, no);
        tensors(api, m, tag);
    }
    api->destroy(m);
    free(x), free(y), free(yf), free(out);
    return 0;
}
