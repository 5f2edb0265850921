/* model_helpers.c - small conveniences every generated model exports (NAME_evaluate,
 * NAME_save, NAME_load, its buffer allocation), written once here over mlc_model_api. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "data.h"
#include "io_bind.h"
#include "trainer.h"
#include "mlc_model.h"

float *mlcrt_alloc_floats(int64_t n) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

int mlcrt_check_api(const mlc_model_api *api, FILE *err) {
    if (api->api_version == MLC_API_VERSION) return 0;
    /* the name is read only when the version says where it is */
    fprintf(err,
            "error: model '%s' was built against mlc_model.h API version %d, this runtime has version %d: "
            "rebuild the model with this mlc\n",
            api->api_version > 0 && api->api_version <= MLC_API_VERSION ? api->name : "?", api->api_version,
            MLC_API_VERSION);
    return -1;
}

/* A view of the caller's arrays as a data set, evaluated like the trainer does. */
double mlcrt_evaluate_arrays(const mlc_model_api *api, void *model, const void *const *inputs, int count,
                             int max_batch) {
    mlcrt_binding b;
    if (mlcrt_bind_inputs(api, &b, NULL, 0) != 0) return -1.0;
    if (count <= 0) { /* no accuracy or loss of no samples: 0 would read as one */
        fprintf(stderr, "error: %s_evaluate: a count of %d samples, expected at least 1\n", api->name, count);
        return NAN;
    }
    const mlc_io_desc *img = &api->inputs[b.image_input];
    mlc_dataset ds = {.n = count,
                      .sample_rank = img->rank,
                      .sample_numel = img->numel,
                      .x = (float *)inputs[b.image_input],
                      .y = b.label_input >= 0 ? (int32_t *)inputs[b.label_input] : NULL};
    memcpy(ds.sample_dims, img->dims, sizeof ds.sample_dims);
    int batch = api->default_batch > 0 ? api->default_batch : 64;
    return mlcrt_evaluate(api, model, &ds, batch < max_batch ? batch : max_batch); /* the buffers' size */
}

int mlcrt_batch_refused(const char *call, int n, int max_batch) {
    if (n >= 1 && n <= max_batch) return 0;
    fprintf(stderr, "error: %s: a batch of %d samples, expected 1 to %d (the max_batch the model was created with)\n",
            call, n, max_batch);
    return 1;
}

int mlcrt_labels_refused(const char *call, const char *input, const int32_t *labels, int64_t n, int64_t per_sample,
                         int64_t classes) {
    if (!labels) return 0; /* an input the call does not read */
    for (int64_t i = 0; i < n * per_sample; i++) {
        if (labels[i] >= 0 && labels[i] < classes) continue;
        char at[64] = "";
        if (per_sample > 1) snprintf(at, sizeof at, ", position %lld", (long long)(i % per_sample));
        fprintf(stderr, "error: %s: input '%s': sample %lld%s has label %d, expected 0..%lld\n", call, input,
                (long long)(i / per_sample), at, (int)labels[i], (long long)(classes - 1));
        return 1;
    }
    return 0;
}

void mlcrt_create_failed(const char *call, int max_batch) {
    if (max_batch < 1) fprintf(stderr, "error: %s: max_batch %d, expected at least 1\n", call, max_batch);
    else fprintf(stderr, "error: %s: out of memory for batches of %d samples\n", call, max_batch);
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
