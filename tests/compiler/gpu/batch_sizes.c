/* tests/compiler/gpu/batch_sizes.c - a model driven as an adversary would drive it, for
 * run_cuda_vs_c.sh (MAIN=batch_sizes): created for at most 13 samples, then train steps
 * at batch sizes from 1 to 13 in an uneven order, 13 of them distinct (more than the
 * CUDA target's cache of 8 graphs holds, so graphs are dropped and captured again), each
 * followed by a forward of another size and an eval loss; then a persistent tensor
 * written through the API and one more step. Prints per step its loss and the sums of
 * its outputs, the forward's outputs and the eval loss, so the C and CUDA builds of one
 * .mdl can be compared line by line (compare_steps.awk). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlc_model.h"
#include "test_inputs.h"

extern const mlc_model_api MLC_MODEL_API;

enum { MAX_BATCH = 13 };

/* the sum of output 0 over n samples */
static double sum_outputs(const mlc_model_api *api, const float *out, int n) {
    double a = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)api->outputs[0].numel; i++) a += out[i];
    return a;
}

int main(void) {
    const mlc_model_api *api = &MLC_MODEL_API;
    void *m = api->create(7, MAX_BATCH);
    if (!m) return 1;
    void *in[8] = {0};
    test_inputs(api, MAX_BATCH, 99, in);
    const void *const *x = (const void *const *)in;
    float *out = malloc(sizeof(float) * (size_t)MAX_BATCH * (size_t)api->outputs[0].numel);
    static const int sizes[] = {13, 1, 7, 2, 13, 3, 4, 5, 6, 8, 9, 10, 11, 12, 1, 13, 7};
    for (size_t r = 0; r < sizeof sizes / sizeof *sizes; r++) {
        int n = sizes[r], f = MAX_BATCH + 1 - n; /* the forward's size: another one */
        float loss = api->train_step(m, x, n, api->optimizer.lr, (float *[MLC_MAX_OUTPUTS]){out});
        double a = sum_outputs(api, out, n);
        api->forward(m, x, f, (float *[MLC_MAX_OUTPUTS]){out});
        double b = sum_outputs(api, out, f);
        printf("step %d %.9g %.9g forward %d %.9g eval %.9g\n", n, loss, a, f, b, api->eval_loss(m, x, n));
    }
    float *t = NULL;
    if (api->n_tensors > 0) { /* a model may have none */
        size_t tn = (size_t)api->tensors[0].numel;
        t = malloc(sizeof(float) * tn);
        api->read_tensor(m, 0, t);
        for (size_t i = 0; i < tn; i++) t[i] *= 0.5f;
        api->write_tensor(m, 0, t);
    }
    printf("written %.9g\n", api->train_step(m, x, 5, api->optimizer.lr, NULL));
    api->destroy(m);
    for (int k = 0; k < 8; k++) free(in[k]);
    free(out);
    free(t);
    return 0;
}
