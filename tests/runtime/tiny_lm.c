/* tiny_lm.c - a bigram language model written by hand against mlc_model_api, standing
 * in for a generated GPT in the runtime tests (see tiny_lm.h). */
#include "tiny_lm.h"

#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T TINY_LM_T

typedef struct tiny_lm {
    int v;        /* vocabulary */
    float *table; /* [v, v]: row a holds the scores of the token after a */
    float *grads; /* the gradient slab: the table's */
    int64_t step;
} tiny_lm;

static void *create_v(uint64_t seed, int v) {
    tiny_lm *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->v = v;
    m->table = malloc(sizeof(float) * (size_t)(v * v));
    m->grads = calloc((size_t)(v * v), sizeof(float));
    if (!m->table || !m->grads) {
        free(m->table);
        free(m->grads);
        free(m);
        return NULL;
    }
    mlc_init_uniform(m->table, v * v, -0.01f, 0.01f, seed, "bigram.table");
    return m;
}

static void *lm_create(uint64_t seed, int max_batch) {
    (void)max_batch;
    return create_v(seed, 256);
}
static void *lm100_create(uint64_t seed, int max_batch) {
    (void)max_batch;
    return create_v(seed, 100);
}
static void *lm5_create(uint64_t seed, int max_batch) {
    (void)max_batch;
    return create_v(seed, 5);
}

static void lm_destroy(void *p) {
    tiny_lm *m = p;
    free(m->table);
    free(m->grads);
    free(m);
}

/* Inputs: 0 tokens i32[T], 1 targets i32[T] (read by the loss only). */
static void lm_forward(void *p, const void *const *inputs, int n, float *const *outputs) {
    const tiny_lm *m = p;
    const int32_t *tok = inputs[0];
    for (int i = 0; outputs && outputs[0] && i < n * T; i++)
        memcpy(outputs[0] + (size_t)i * (size_t)m->v, m->table + (size_t)tok[i] * (size_t)m->v,
               sizeof(float) * (size_t)m->v);
}

/* The mean cross-entropy over n * T positions; with g, adds its gradient into g. */
static double lm_loss(const tiny_lm *m, const int32_t *tok, const int32_t *tgt, int n, float *g) {
    double loss = 0;
    int v = m->v;
    for (int i = 0; i < n * T; i++) {
        const float *row = m->table + (size_t)tok[i] * (size_t)v;
        float mx = row[0];
        for (int j = 1; j < v; j++) mx = row[j] > mx ? row[j] : mx;
        double s = 0;
        for (int j = 0; j < v; j++) s += exp((double)(row[j] - mx));
        loss += log(s) - (double)(row[tgt[i]] - mx);
        for (int j = 0; g && j < v; j++)
            g[(size_t)tok[i] * (size_t)v + (size_t)j] +=
                (float)((exp((double)(row[j] - mx)) / s - (j == tgt[i])) / (n * T));
    }
    return loss / (n * T);
}

static float lm_eval_loss(void *p, const void *const *inputs, int n) {
    return (float)lm_loss(p, inputs[0], inputs[1], n, NULL);
}

static float lm_forward_backward(void *p, const void *const *inputs, int n, float *const *outputs) {
    tiny_lm *m = p;
    lm_forward(m, inputs, n, outputs);
    memset(m->grads, 0, sizeof(float) * (size_t)(m->v * m->v));
    return (float)lm_loss(m, inputs[0], inputs[1], n, m->grads);
}

static void lm_update(void *p, float lr) {
    tiny_lm *m = p;
    for (int k = 0; k < m->v * m->v; k++) m->table[k] -= lr * m->grads[k];
    m->step++;
}

static float lm_train_step(void *p, const void *const *inputs, int n, float lr, float *const *outputs) {
    float loss = lm_forward_backward(p, inputs, n, outputs);
    lm_update(p, lr);
    return loss;
}

static float *lm_grads(void *p) { return ((tiny_lm *)p)->grads; }
static void lm_read_grads(void *p, float *dst) {
    tiny_lm *m = p;
    memcpy(dst, m->grads, sizeof(float) * (size_t)(m->v * m->v));
}
static void lm_write_grads(void *p, const float *src) {
    tiny_lm *m = p;
    memcpy(m->grads, src, sizeof(float) * (size_t)(m->v * m->v));
}
static void lm_read(void *p, int i, void *dst) {
    (void)i;
    tiny_lm *m = p;
    memcpy(dst, m->table, sizeof(float) * (size_t)(m->v * m->v));
}
static void lm_write(void *p, int i, const void *src) {
    (void)i;
    tiny_lm *m = p;
    memcpy(m->table, src, sizeof(float) * (size_t)(m->v * m->v));
}
static int64_t lm_get_step(void *p) { return ((tiny_lm *)p)->step; }
static void lm_set_step(void *p, int64_t s) { ((tiny_lm *)p)->step = s; }

static const mlc_tensor_desc lm_tensors[1] = {{"bigram.table", MLC_F32, 2, {256, 256}, 256 * 256, 1, 0}};
static const mlc_tensor_desc lm100_tensors[1] = {{"bigram.table", MLC_F32, 2, {100, 100}, 100 * 100, 1, 0}};
static const mlc_tensor_desc lm5_tensors[1] = {{"bigram.table", MLC_F32, 2, {5, 5}, 5 * 5, 1, 0}};
static const mlc_io_desc lm_inputs[2] = {
    {"tokens", MLC_I32, 1, {T}, T, 1},
    {"targets", MLC_I32, 1, {T}, T, 0},
};
static const mlc_io_desc lm_outputs[1] = {{"logits", MLC_F32, 2, {T, 256}, T * 256, 1}};
static const mlc_io_desc lm100_outputs[1] = {{"logits", MLC_F32, 2, {T, 100}, T * 100, 1}};
static const mlc_io_desc lm5_outputs[1] = {{"logits", MLC_F32, 2, {T, 5}, T * 5, 1}};

#define TINY_LM_API(NAME, CREATE, TENSORS, OUTPUTS, V)                                                                 \
    {                                                                                                                  \
        .api_version = MLC_API_VERSION, .name = NAME, .target = "c", .n_inputs = 2, .n_outputs = 1,                    \
        .inputs = lm_inputs, .outputs = OUTPUTS, .classifier = 0, .cls_output = 0, .cls_label = 1, .default_batch = 8, \
        .default_epochs = 2, .default_seed = 3, .optimizer = {"sgd", 20.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},             \
        .n_tensors = 1, .tensors = TENSORS, .create = CREATE, .destroy = lm_destroy, .train_step = lm_train_step,      \
        .forward_backward = lm_forward_backward, .update = lm_update, .grad_numel = (V) * (V), .grads = lm_grads,      \
        .read_grads = lm_read_grads, .write_grads = lm_write_grads, .forward = lm_forward, .eval_loss = lm_eval_loss,  \
        .read_tensor = lm_read, .write_tensor = lm_write, .get_step = lm_get_step, .set_step = lm_set_step,            \
        .set_threads = NULL,                                                                                           \
    }

/* tiny_lm_feat: a feature output f32[T, 300] before the logits, as a model with a second
 * head has; the loss scores the logits (cls_output 1). Its features are all zero. */
static const mlc_io_desc feat_outputs[2] = {{"feat", MLC_F32, 2, {T, 300}, T * 300, 1},
                                            {"logits", MLC_F32, 2, {T, 256}, T * 256, 1}};
static void feat_forward(void *p, const void *const *inputs, int n, float *const *outputs) {
    if (outputs && outputs[0]) memset(outputs[0], 0, sizeof(float) * (size_t)(n * T * 300));
    lm_forward(p, inputs, n, outputs ? outputs + 1 : NULL);
}
static float feat_forward_backward(void *p, const void *const *inputs, int n, float *const *outputs) {
    feat_forward(p, inputs, n, outputs);
    return lm_forward_backward(p, inputs, n, NULL);
}
static float feat_train_step(void *p, const void *const *inputs, int n, float lr, float *const *outputs) {
    float loss = feat_forward_backward(p, inputs, n, outputs);
    lm_update(p, lr);
    return loss;
}

const mlc_model_api tiny_lm_api = TINY_LM_API("tiny_lm", lm_create, lm_tensors, lm_outputs, 256);
const mlc_model_api tiny_lm100_api = TINY_LM_API("tiny_lm100", lm100_create, lm100_tensors, lm100_outputs, 100);
const mlc_model_api tiny_lm5_api = TINY_LM_API("tiny_lm5", lm5_create, lm5_tensors, lm5_outputs, 5);

static mlc_model_api feat_api(int cls_output) {
    mlc_model_api a = TINY_LM_API("tiny_lm_feat", lm_create, lm_tensors, feat_outputs, 256);
    a.n_outputs = 2;
    a.cls_output = cls_output;
    a.cls_label = cls_output < 0 ? -1 : 1;
    a.forward = feat_forward;
    a.forward_backward = feat_forward_backward;
    a.train_step = feat_train_step;
    return a;
}
mlc_model_api tiny_lm_feat_api(void) { return feat_api(1); }
mlc_model_api tiny_lm_feat_unscored_api(void) { return feat_api(-1); }
