/* tests/compiler/gpu/step_compare.c - prints what a generated model computes, so the C
 * and CUDA targets' builds of one .mdl can be compared (run_cuda_vs_c.sh; needs a GPU for
 * the CUDA side). Built against one model (-DMLC_MODEL_API=NAME_api): seed 1, the
 * default batch, fixed pseudo-random data; prints the loss of each of --steps train steps
 * (with dropout, the masks must agree bit for bit for the losses to), then the sum and
 * sum of squares of every persistent tensor and of the eval-mode outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_model.h"

extern const mlc_model_api MLC_MODEL_API;

int main(int argc, char **argv) {
    const mlc_model_api *api = &MLC_MODEL_API;
    int batch = api->default_batch, steps = argc > 1 ? atoi(argv[1]) : 5;
    void *m = api->create(1, batch);
    if (!m) return 1;
    size_t nx = (size_t)batch * (size_t)api->inputs[0].numel, no = (size_t)batch * (size_t)api->outputs[0].numel;
    float *x = malloc(sizeof(float) * nx), *out = malloc(sizeof(float) * no);
    int32_t *y = malloc(sizeof(int32_t) * (size_t)batch);
    unsigned s = 12345;
    for (size_t i = 0; i < nx; i++) s = s * 1103515245u + 12345u, x[i] = (float)((s >> 8) & 0xffff) / 65536.0f;
    if (api->inputs[0].dtype == MLC_I32) /* token ids in [0, outputs), as the vocabulary of seqops.mdl */
        for (size_t i = 0; i < nx; i++) s = s * 1103515245u + 12345u, ((int32_t *)x)[i] = (int32_t)((s >> 16) % (unsigned)api->outputs[0].numel);
    for (int i = 0; i < batch; i++) s = s * 1103515245u + 12345u, y[i] = (int32_t)((s >> 16) % (unsigned)api->outputs[0].numel);
    for (int i = 0; i < steps; i++) printf("loss %d %.9g\n", i, api->train_step(m, (const void *[]){x, y}, batch, api->optimizer.lr, NULL));
    for (int t = 0; t < api->n_tensors; t++) {
        size_t n = (size_t)api->tensors[t].numel;
        float *buf = malloc(sizeof(float) * n);
        api->read_tensor(m, t, buf);
        double a = 0, b = 0;
        for (size_t i = 0; i < n; i++) a += buf[i], b += (double)buf[i] * buf[i];
        printf("tensor %s %.9g %.9g\n", api->tensors[t].name, a, b);
        free(buf);
    }
    api->forward(m, (const void *[]){x, NULL}, batch, (float *[MLC_MAX_OUTPUTS]){out});
    double a = 0, b = 0;
    for (size_t i = 0; i < no; i++) a += out[i], b += (double)out[i] * out[i];
    printf("forward %.9g %.9g\n", a, b);
    api->destroy(m);
    free(x), free(y), free(out);
    return 0;
}
