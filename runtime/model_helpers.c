/* model_helpers.c - small conveniences every generated model exports (NAME_evaluate,
 * NAME_save, NAME_load, its buffer allocation), written once here over mlc_model_api. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "mlcrt_error.h"
#include "trainer.h"
#include "mlc_model.h"

/* The size of this thread's last allocation that failed, for the message that reports it
 * (mlcrt_oom_size); 0 once reported. */
static _Thread_local uint64_t failed_bytes;

float *mlcrt_alloc_floats(int64_t n) {
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    else failed_bytes = bytes;
    return p;
}

const char *mlcrt_oom_size(char *buf, size_t cap) {
    buf[0] = '\0';
    if (failed_bytes)
        snprintf(buf, cap, " (an allocation of %llu bytes, %.1f GiB, failed)", (unsigned long long)failed_bytes,
                 (double)failed_bytes / (1024.0 * 1024 * 1024));
    failed_bytes = 0;
    return buf;
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

/* Input i's pointer to sample `first` of the caller's array (f32 and i32 are 4 bytes an
 * element; NULL stays NULL: an input the call does not read). */
static const void *sample_at(const mlc_io_desc *d, const void *base, int64_t first) {
    return base ? (const void *)((const char *)base + (size_t)first * (size_t)d->numel * sizeof(float)) : NULL;
}

/* Straight from the caller's arrays, a batch at a time: every input advanced by its own
 * per-sample size (a token model's targets are T a sample, a second f32 input has its own
 * width), so any model's inputs work, unlike the trainer's dataset binding. Every model
 * has a loss (mlc refuses one without): a classifier is measured by accuracy, any other
 * model by its mean loss. */
double mlcrt_evaluate_arrays(const mlc_model_api *api, void *model, const void *const *inputs, int count,
                             int max_batch) {
    if (count <= 0) { /* no accuracy or loss of no samples: 0 would read as one */
        fprintf(stderr, "error: %s_evaluate: a count of %d samples, expected at least 1\n", api->name, count);
        return NAN;
    }
    int batch = api->default_batch > 0 ? api->default_batch : 64;
    if (batch > max_batch) batch = max_batch; /* the buffers' size */
    int64_t k = api->classifier ? api->outputs[api->cls_output].numel : 0;
    const void **in = calloc((size_t)api->n_inputs, sizeof *in);
    float **outs = api->classifier ? calloc((size_t)api->n_outputs, sizeof *outs) : NULL;
    float *out = api->classifier ? malloc((size_t)batch * (size_t)k * sizeof *out) : NULL;
    if (!in || (api->classifier && (!outs || !out))) {
        free(in), free(outs), free(out);
        fprintf(stderr, "error: %s_evaluate: out of memory for a batch of %d samples\n", api->name, batch);
        return NAN;
    }
    if (outs) outs[api->cls_output] = out;
    double sum = 0; /* correct answers, or the loss times the samples */
    for (int64_t start = 0; start < count; start += batch) {
        int nb = (int)(count - start < batch ? count - start : batch);
        for (int i = 0; i < api->n_inputs; i++) in[i] = sample_at(&api->inputs[i], inputs[i], start);
        if (!api->classifier) {
            sum += (double)api->eval_loss(model, in, nb) * nb;
            continue;
        }
        api->forward(model, in, nb, outs);
        const int32_t *labels = in[api->cls_label];
        for (int i = 0; i < nb; i++) sum += mlcrt_argmax_row(out + (int64_t)i * k, k) == labels[i];
    }
    free(in), free(outs), free(out);
    return sum / (double)count;
}

int mlcrt_batch_refused(const char *call, int n, int max_batch) {
    if (n >= 1 && n <= max_batch) return 0;
    fprintf(stderr, "error: %s: a batch of %d samples, expected 1 to %d (the max_batch the model was created with)\n",
            call, n, max_batch);
    return 1;
}

int mlcrt_lr_refused(const char *call, float lr) {
    if (isfinite(lr)) return 0;
    fprintf(stderr, "error: %s: lr %g, expected a finite number\n", call, (double)lr);
    return 1;
}

int mlcrt_train_batch_refused(const char *call, int n, int least) {
    if (n >= least) return 0;
    fprintf(stderr,
            "error: %s: a batch of %d sample%s, expected at least %d (a batch_norm with one value per channel and "
            "sample: the variance of one sample is 0)\n",
            call, n, n == 1 ? "" : "s", least);
    return 1;
}

int mlcrt_inputs_refused(const mlc_model_api *api, const char *call, const void *const *inputs, int every) {
    if (!inputs) {
        fprintf(stderr, "error: %s: inputs is NULL, expected one pointer per input (%d)\n", call, api->n_inputs);
        return 1;
    }
    for (int i = 0; i < api->n_inputs; i++) {
        if (inputs[i] || !(every || api->inputs[i].eval_reads)) continue;
        fprintf(stderr, "error: %s: input '%s' is NULL, and this call reads it\n", call, api->inputs[i].name);
        return 1;
    }
    return 0;
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
    else {
        char size[96];
        fprintf(stderr, "error: %s: out of memory for batches of %d samples%s\n", call, max_batch,
                mlcrt_oom_size(size, sizeof size));
    }
}

/* A NULL path is refused as a line, not passed on to a "%s" (or a crash). */
static int path_refused(const char *who, const char *call, const char *path) {
    if (path) return 0;
    fprintf(stderr, "error: %s_%s: the path is NULL\n", who, call);
    return 1;
}

int mlcrt_save(const mlc_model_api *api, void *model, const char *path) {
    char msg[512];
    if (path_refused(api->name, "save", path)) return -1;
    /* as the trainer's --save: a checkpoint (or an empty file) is all a save replaces */
    if (mlcrt_ckpt_check_writable(path, msg, sizeof msg) != 0 ||
        mlcrt_ckpt_save(api, model, path, msg, sizeof msg) != 0) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

int mlcrt_load(const mlc_model_api *api, void *model, const char *path) {
    char msg[512];
    if (path_refused(api->name, "load", path)) return -1;
    if (mlcrt_ckpt_load(api, model, path, msg, sizeof msg) != 0) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

int mlcrt_ckpt_norm(const mlc_model_api *api, const char *path, float mean[4], float std[4]) {
    char msg[MLCRT_MSG_SIZE];
    mlcrt_train_state st;
    if (path_refused("mlcrt", "ckpt_norm", path)) return -1;
    if (mlcrt_ckpt_load_state(api, NULL, &st, path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    if (!st.has_data_settings) /* an older checkpoint: trained with the .mdl's values (or flags it did not record) */
        st.n_norm = api->n_norm, memcpy(st.norm_mean, api->norm_mean, sizeof st.norm_mean),
        memcpy(st.norm_std, api->norm_std, sizeof st.norm_std);
    memcpy(mean, st.norm_mean, sizeof st.norm_mean);
    memcpy(std, st.norm_std, sizeof st.norm_std);
    return st.n_norm;
}
