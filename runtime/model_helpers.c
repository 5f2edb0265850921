/* model_helpers.c - small conveniences every generated model exports (NAME_evaluate,
 * NAME_save, NAME_load, its buffer allocation), written once here over mlc_model_api. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "mlc_model.h"

float *mlcrt_alloc_floats(int64_t n) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

double mlcrt_accuracy(const mlc_model_api *api, void *model, const float *x, const int32_t *y, int count) {
    if (count <= 0) return 0.0;
    int batch = api->default_batch > 0 ? api->default_batch : 64;
    float *out = malloc(sizeof(float) * (size_t)batch * (size_t)api->output_numel);
    if (!out) return -1.0;
    int64_t correct = 0;
    for (int s = 0; s < count; s += batch) {
        int n = count - s < batch ? count - s : batch;
        api->forward(model, x + (size_t)s * (size_t)api->input_numel, n, out);
        for (int i = 0; i < n; i++) {
            const float *row = out + (size_t)i * (size_t)api->output_numel;
            int64_t best = 0;
            for (int64_t k = 1; k < api->output_numel; k++)
                if (row[k] > row[best]) best = k;
            correct += best == y[s + i];
        }
    }
    free(out);
    return (double)correct / (double)count;
}

int mlcrt_save(const mlc_model_api *api, void *model, const char *path) {
    char msg[512];
    if (mlcrt_ckpt_save(api, model, path, msg, sizeof msg) != 0) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

int mlcrt_load(const mlc_model_api *api, void *model, const char *path) {
    char msg[512];
    if (mlcrt_ckpt_load(api, model, path, msg, sizeof msg) != 0) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    return 0;
}
