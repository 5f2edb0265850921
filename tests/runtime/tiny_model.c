/* tiny_model.c - softmax regression written by hand against mlc_model_api, standing in
 * for generated code in the runtime tests (see tiny_model.h). */
#include "tiny_model.h"

#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IN (m->in)
#define OUT 10

typedef struct tiny {
    float *w; /* [IN, OUT] */
    float b[OUT];
    float *logits; /* [max_batch, OUT] */
    float *grads;  /* the gradient slab: fc.bias's [OUT] (padded to 16), then fc.weight's */
    int max_batch, in;
    int64_t step;
    mlcrt_norm norm; /* norm_of */
} tiny;

/* The bias's gradient is done first (it is summed as the rows go by), so it comes first. */
#define GB_OFF 0
#define GW_OFF 16
const mlc_tensor_desc tiny_tensors[2] = {
    {"fc.weight", MLC_F32, 2, {784, OUT}, 784 * OUT, 1, GW_OFF},
    {"fc.bias", MLC_F32, 1, {OUT}, OUT, 1, GB_OFF},
};
static const mlc_tensor_desc tiny_c10_tensors[2] = {
    {"fc.weight", MLC_F32, 2, {3072, OUT}, 3072 * OUT, 1, GW_OFF},
    {"fc.bias", MLC_F32, 1, {OUT}, OUT, 1, GB_OFF},
};

static void *create_in(uint64_t seed, int max_batch, int in) {
    tiny *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->in = in;
    m->w = malloc(sizeof(float) * IN * OUT);
    m->logits = malloc(sizeof(float) * OUT * (size_t)max_batch);
    m->grads = calloc(GW_OFF + (size_t)IN * OUT, sizeof(float));
    if (!m->w || !m->logits || !m->grads) {
        free(m->w);
        free(m->logits);
        free(m->grads);
        free(m);
        return NULL;
    }
    m->max_batch = max_batch;
    mlc_init_uniform(m->w, IN * OUT, -0.05f, 0.05f, seed, "fc.weight");
    mlc_init_const(m->b, OUT, 0.0f);
    return m;
}

static void *tiny_create(uint64_t seed, int max_batch) { return create_in(seed, max_batch, 784); }
static void *tiny_c10_create(uint64_t seed, int max_batch) { return create_in(seed, max_batch, 3072); }

static void tiny_destroy(void *p) {
    tiny *m = p;
    free(m->w);
    free(m->logits);
    free(m->grads);
    free(m);
}

static void logits_of(const tiny *m, const float *x, int n, float *out) {
    for (int i = 0; i < n; i++) {
        float *o = out + i * OUT;
        memcpy(o, m->b, sizeof m->b);
        for (int k = 0; k < IN; k++) {
            float xv = x[i * IN + k];
            if (xv == 0.0f) continue;
            for (int j = 0; j < OUT; j++) o[j] += xv * m->w[k * OUT + j];
        }
    }
}

/* Inputs: 0 image f32[IN], 1 label i32 (read by train_step and eval_loss only). */
static void tiny_forward(void *p, const void *const *inputs, int n, float *const *outputs) {
    if (outputs && outputs[0]) logits_of(p, inputs[0], n, outputs[0]);
}

/* The mean cross-entropy of the logits in m->logits against y; leaves dL/dlogits there. */
static double softmax_loss(tiny *m, const int32_t *y, int n) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        float *o = m->logits + i * OUT, mx = o[0];
        for (int j = 1; j < OUT; j++) mx = o[j] > mx ? o[j] : mx;
        double s = 0;
        for (int j = 0; j < OUT; j++) s += exp((double)(o[j] - mx));
        loss += log(s) - (double)(o[y[i]] - mx);
        for (int j = 0; j < OUT; j++)
            o[j] = ((float)(exp((double)(o[j] - mx)) / s) - (j == y[i] ? 1.0f : 0.0f)) / (float)n;
    }
    return loss / n;
}

static float tiny_eval_loss(void *p, const void *const *inputs, int n) {
    tiny *m = p;
    logits_of(m, inputs[0], n, m->logits);
    return (float)softmax_loss(m, inputs[1], n);
}

/* Forward, loss and backward: the gradients into the slab (mlc_model.h). */
static float tiny_forward_backward(void *p, const void *const *inputs, int n, float *const *outputs) {
    tiny *m = p;
    const float *x = inputs[0];
    const int32_t *y = inputs[1];
    float *gb = m->grads + GB_OFF, *gw = m->grads + GW_OFF;
    logits_of(m, x, n, m->logits);
    if (outputs && outputs[0]) memcpy(outputs[0], m->logits, sizeof(float) * OUT * (size_t)n);
    double loss = softmax_loss(m, y, n);
    memset(m->grads, 0, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < OUT; j++) gb[j] += m->logits[i * OUT + j];
    for (int i = 0; i < n; i++) {
        const float *g = m->logits + i * OUT;
        for (int k = 0; k < IN; k++) {
            float xv = x[i * IN + k];
            if (xv == 0.0f) continue;
            for (int j = 0; j < OUT; j++) gw[k * OUT + j] += xv * g[j];
        }
    }
    return (float)loss;
}

/* Plain SGD from the slab. */
static void tiny_update(void *p, float lr) {
    tiny *m = p;
    for (int k = 0; k < IN * OUT; k++) m->w[k] -= lr * m->grads[GW_OFF + k];
    for (int j = 0; j < OUT; j++) m->b[j] -= lr * m->grads[GB_OFF + j];
    m->step++;
}

static float tiny_train_step(void *p, const void *const *inputs, int n, float lr, float *const *outputs) {
    float loss = tiny_forward_backward(p, inputs, n, outputs);
    tiny_update(p, lr);
    return loss;
}

static float *tiny_grads(void *p) { return ((tiny *)p)->grads; }
static void tiny_read_grads(void *p, float *dst) {
    tiny *m = p;
    memcpy(dst, m->grads, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
}
static void tiny_write_grads(void *p, const float *src) {
    tiny *m = p;
    memcpy(m->grads, src, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
}

static void tiny_read(void *p, int i, void *dst) {
    tiny *m = p;
    if (i == 0) memcpy(dst, m->w, sizeof(float) * IN * OUT);
    else memcpy(dst, m->b, sizeof m->b);
}

static void tiny_write(void *p, int i, const void *src) {
    tiny *m = p;
    if (i == 0) memcpy(m->w, src, sizeof(float) * IN * OUT);
    else memcpy(m->b, src, sizeof m->b);
}

static int64_t tiny_get_step(void *p) { return ((tiny *)p)->step; }
static void tiny_set_step(void *p, int64_t s) { ((tiny *)p)->step = s; }

static const mlc_io_desc tiny_inputs[2] = {
    {"image", MLC_F32, 1, {784}, 784, 1},
    {"label", MLC_I32, 0, {0}, 1, 0},
};
static const mlc_io_desc tiny_c10_inputs[2] = {
    {"image", MLC_F32, 3, {3, 32, 32}, 3072, 1},
    {"label", MLC_I32, 0, {0}, 1, 0},
};
static const mlc_io_desc tiny_outputs[1] = {{"logits", MLC_F32, 1, {OUT}, OUT, 1}};

static mlcrt_norm *tiny_norm_of(void *model) { return &((tiny *)model)->norm; }

const mlc_model_api tiny_api = {
    .api_version = MLC_API_VERSION,
    .name = "tiny",
    .target = "c",
    .n_inputs = 2,
    .n_outputs = 1,
    .inputs = tiny_inputs,
    .outputs = tiny_outputs,
    .classifier = 1,
    .cls_output = 0,
    .cls_label = 1,
    .default_batch = 32,
    .default_epochs = 2,
    .default_seed = 42,
    .optimizer = {"sgd", 0.1f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 2,
    .tensors = tiny_tensors,
    .norm_of = tiny_norm_of,
    .create = tiny_create,
    .destroy = tiny_destroy,
    .train_step = tiny_train_step,
    .forward_backward = tiny_forward_backward,
    .update = tiny_update,
    .grad_numel = GW_OFF + 784 * OUT,
    .grads = tiny_grads,
    .read_grads = tiny_read_grads,
    .write_grads = tiny_write_grads,
    .forward = tiny_forward,
    .eval_loss = tiny_eval_loss,
    .read_tensor = tiny_read,
    .write_tensor = tiny_write,
    .get_step = tiny_get_step,
    .set_step = tiny_set_step,
    .set_threads = NULL,
};

const mlc_model_api tiny_c10_api = {
    .api_version = MLC_API_VERSION,
    .name = "tiny_c10",
    .target = "c",
    .n_inputs = 2,
    .n_outputs = 1,
    .inputs = tiny_c10_inputs,
    .outputs = tiny_outputs,
    .classifier = 1,
    .cls_output = 0,
    .cls_label = 1,
    .default_batch = 32,
    .default_epochs = 1,
    .default_seed = 42,
    .optimizer = {"sgd", 0.05f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 2,
    .tensors = tiny_c10_tensors,
    .create = tiny_c10_create,
    .destroy = tiny_destroy,
    .train_step = tiny_train_step,
    .forward_backward = tiny_forward_backward,
    .update = tiny_update,
    .grad_numel = GW_OFF + 3072 * OUT,
    .grads = tiny_grads,
    .read_grads = tiny_read_grads,
    .write_grads = tiny_write_grads,
    .forward = tiny_forward,
    .eval_loss = tiny_eval_loss,
    .read_tensor = tiny_read,
    .write_tensor = tiny_write,
    .get_step = tiny_get_step,
    .set_step = tiny_set_step,
    .set_threads = NULL,
    .augment = "flip",
};

/* ---- tiny_ae: a model without labels (not a classifier) ---- */

/* One parameter, "pixels.mean" [784]: every sample's output is it, and the loss is the
 * mean squared error against the image, so SGD moves it towards the mean image. */
typedef struct tiny_ae {
    float m[784];
    int64_t step;
} tiny_ae;

static const mlc_tensor_desc tiny_ae_tensors[1] = {{"pixels.mean", MLC_F32, 1, {784}, 784, 1, -1}};
static const mlc_io_desc tiny_ae_inputs[1] = {{"pixels", MLC_F32, 1, {784}, 784, 1}};
static const mlc_io_desc tiny_ae_outputs[1] = {{"recon", MLC_F32, 1, {784}, 784, 1}};

static void *tiny_ae_create(uint64_t seed, int max_batch) {
    (void)max_batch;
    tiny_ae *m = calloc(1, sizeof *m);
    if (m) mlc_init_uniform(m->m, 784, 0.0f, 1.0f, seed, "pixels.mean");
    return m;
}

static void tiny_ae_destroy(void *p) { free(p); }

static void tiny_ae_forward(void *p, const void *const *inputs, int n, float *const *outputs) {
    (void)inputs;
    for (int i = 0; outputs && outputs[0] && i < n; i++)
        memcpy(outputs[0] + (size_t)i * 784, ((tiny_ae *)p)->m, sizeof(float) * 784);
}

static float tiny_ae_eval_loss(void *p, const void *const *inputs, int n) {
    const tiny_ae *m = p;
    const float *x = inputs[0];
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 784; j++) {
            double d = (double)m->m[j] - x[(size_t)i * 784 + j];
            s += d * d;
        }
    return (float)(s / ((double)n * 784));
}

static float tiny_ae_train_step(void *p, const void *const *inputs, int n, float lr, float *const *outputs) {
    tiny_ae *m = p;
    const float *x = inputs[0];
    tiny_ae_forward(m, inputs, n, outputs);
    float loss = tiny_ae_eval_loss(m, inputs, n);
    for (int j = 0; j < 784; j++) {
        double g = 0;
        for (int i = 0; i < n; i++) g += 2.0 * ((double)m->m[j] - x[(size_t)i * 784 + j]);
        m->m[j] -= lr * (float)(g / ((double)n * 784));
    }
    m->step++;
    return loss;
}

static void tiny_ae_read(void *p, int i, void *dst) {
    (void)i;
    memcpy(dst, ((tiny_ae *)p)->m, sizeof(float) * 784);
}
static void tiny_ae_write(void *p, int i, const void *src) {
    (void)i;
    memcpy(((tiny_ae *)p)->m, src, sizeof(float) * 784);
}
static int64_t tiny_ae_get_step(void *p) { return ((tiny_ae *)p)->step; }
static void tiny_ae_set_step(void *p, int64_t s) { ((tiny_ae *)p)->step = s; }

/* No gradient slab: train_step only (the trainer refuses --accum for such a model). */
const mlc_model_api tiny_ae_api = {
    .api_version = MLC_API_VERSION,
    .name = "tiny_ae",
    .target = "c",
    .n_inputs = 1,
    .n_outputs = 1,
    .inputs = tiny_ae_inputs,
    .outputs = tiny_ae_outputs,
    .classifier = 0,
    .cls_output = -1,
    .cls_label = -1,
    .default_batch = 32,
    .default_epochs = 2,
    .default_seed = 42,
    .optimizer = {"sgd", 50.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 1,
    .tensors = tiny_ae_tensors,
    .create = tiny_ae_create,
    .destroy = tiny_ae_destroy,
    .train_step = tiny_ae_train_step,
    .forward = tiny_ae_forward,
    .eval_loss = tiny_ae_eval_loss,
    .read_tensor = tiny_ae_read,
    .write_tensor = tiny_ae_write,
    .get_step = tiny_ae_get_step,
    .set_step = tiny_ae_set_step,
    .set_threads = NULL,
};

/* ---- tiny_ae_argmax: tiny_ae with a second, i32 output (issue 14's argmax) ---- */

/* Output 1, "brightest" i32[B]: the index of the largest pixel of the output image, as
 * generated code writes an argmax: int32_t in the float-sized slots of outputs[1]. */
static const mlc_io_desc tiny_ae_argmax_outputs[2] = {{"recon", MLC_F32, 1, {784}, 784, 1},
                                                      {"brightest", MLC_I32, 0, {0}, 1, 1}};

static void tiny_ae_argmax_forward(void *p, const void *const *inputs, int n, float *const *outputs) {
    const tiny_ae *m = p;
    tiny_ae_forward(p, inputs, n, outputs);
    int32_t best = 0;
    for (int32_t j = 1; j < 784; j++)
        if (m->m[j] > m->m[best]) best = j;
    for (int i = 0; outputs && outputs[1] && i < n; i++) memcpy(outputs[1] + i, &best, sizeof best);
}

const mlc_model_api tiny_ae_argmax_api = {
    .api_version = MLC_API_VERSION,
    .name = "tiny_ae_argmax",
    .target = "c",
    .n_inputs = 1,
    .n_outputs = 2,
    .inputs = tiny_ae_inputs,
    .outputs = tiny_ae_argmax_outputs,
    .classifier = 0,
    .cls_output = -1,
    .cls_label = -1,
    .default_batch = 32,
    .default_epochs = 2,
    .default_seed = 42,
    .optimizer = {"sgd", 50.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 1,
    .tensors = tiny_ae_tensors,
    .create = tiny_ae_create,
    .destroy = tiny_ae_destroy,
    .train_step = tiny_ae_train_step,
    .forward = tiny_ae_argmax_forward,
    .eval_loss = tiny_ae_eval_loss,
    .read_tensor = tiny_ae_read,
    .write_tensor = tiny_ae_write,
    .get_step = tiny_ae_get_step,
    .set_step = tiny_ae_set_step,
    .set_threads = NULL,
};
