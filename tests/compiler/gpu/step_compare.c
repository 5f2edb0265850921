/* tests/compiler/gpu/step_compare.c - prints what a generated model computes, so the C
 * and CUDA targets' builds of one .mdl can be compared (run_cuda_vs_c.sh; needs a GPU for
 * the CUDA side). Built against one model (-DMLC_MODEL_API=NAME_api): seed 1, the
 * default batch, fixed pseudo-random data; prints the loss of each of --steps train steps
 * (with dropout, the masks must agree bit for bit for the losses to), then the sum, the
 * sum of squares and the sum of magnitudes of every persistent tensor and of each
 * eval-mode output (the last is the scale a sum that cancels is compared on; an i32
 * output's, e.g. argmax's, summed as the integers it holds, not read as floats). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_model.h"
#include "test_inputs.h"

extern const mlc_model_api MLC_MODEL_API;

int main(int argc, char **argv) {
    const mlc_model_api *api = &MLC_MODEL_API;
    int batch = api->default_batch, steps = argc > 1 ? atoi(argv[1]) : 5;
    void *m = api->create(1, batch);
    if (!m) return 1;
    float *outs[MLC_MAX_OUTPUTS] = {0};
    for (int k = 0; k < api->n_outputs; k++)
        if (!(outs[k] = malloc(sizeof(float) * (size_t)batch * (size_t)api->outputs[k].numel))) return 1;
    void *in[8] = {0};
    test_inputs(api, batch, 12345, in);
    const void *const *x = (const void *const *)in;
    for (int i = 0; i < steps; i++) printf("loss %d %.9g\n", i, api->train_step(m, x, batch, api->optimizer.lr, NULL));
    for (int t = 0; t < api->n_tensors; t++) {
        size_t n = (size_t)api->tensors[t].numel;
        float *buf = malloc(sizeof(float) * n);
        api->read_tensor(m, t, buf);
        double a = 0, b = 0, c = 0;
        for (size_t i = 0; i < n; i++) a += buf[i], b += (double)buf[i] * buf[i], c += fabs(buf[i]);
        printf("tensor %s %.9g %.9g %.9g\n", api->tensors[t].name, a, b, c);
        free(buf);
    }
    api->forward(m, x, batch, outs);
    for (int k = 0; k < api->n_outputs; k++) {
        const size_t no = (size_t)batch * (size_t)api->outputs[k].numel;
        double a = 0, b = 0, c = 0;
        for (size_t i = 0; i < no; i++) {
            double v = api->outputs[k].dtype == MLC_I32 ? (double)((const int32_t *)outs[k])[i] : (double)outs[k][i];
            a += v, b += v * v, c += fabs(v);
        }
        printf("forward %s %.9g %.9g %.9g\n", api->outputs[k].name, a, b, c);
    }
    api->destroy(m);
    for (int k = 0; k < 8; k++) free(in[k]);
    for (int k = 0; k < api->n_outputs; k++) free(outs[k]);
    return 0;
}
