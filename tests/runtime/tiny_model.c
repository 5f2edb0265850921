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

static void *create_in(uint64_t seed, int max_batch, int in)
{
    tiny *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
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
static void *tiny_c10_create(uint64_t seed, int max_batch)
{
    return create_in(seed, max_batch, 3072);
}

static void tiny_destroy(void *p)
{
    tiny *m = p;
    free(m->w);
    free(m->logits);
    free(m->grads);
    free(m);
}

static void logits_of(const tiny *m, const float *x, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        float *o = out + i * OUT;
        memcpy(o, m->b, sizeof m->b);
        for (int k = 0; k < IN; k++) {
            float xv = x[i * IN + k];
            if (xv == 0.0f)
                continue;
            for (int j = 0; j < OUT; j++)
                o[j] += xv * m->w[k * OUT + j];
        }
    }
}

static void tiny_forward(void *p, const float *x, int n, float *out)
{
    logits_of(p, x, n, out);
}

static float tiny_forward_backward(void *p, const float *x, const int32_t *y, int n, float *out)
{
    tiny *m = p;
    float *gb = m->grads + GB_OFF, *gw = m->grads + GW_OFF;
    logits_of(m, x, n, m->logits);
    if (out)
        memcpy(out, m->logits, sizeof(float) * OUT * (size_t)n);
    double loss = 0;
    memset(m->grads, 0, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
    /* Softmax in place: logits -> dL/dlogits / n. */
    for (int i = 0; i < n; i++) {
        float *o = m->logits + i * OUT, mx = o[0];
        for (int j = 1; j < OUT; j++)
            mx = o[j] > mx ? o[j] : mx;
        double s = 0;
        for (int j = 0; j < OUT; j++)
            s += exp((double)(o[j] - mx));
        loss += log(s) - (double)(o[y[i]] - mx);
        for (int j = 0; j < OUT; j++)
            o[j] = (float)(exp((double)(o[j] - mx)) / s) - (j == y[i] ? 1.0f : 0.0f);
        for (int j = 0; j < OUT; j++) {
            o[j] /= (float)n;
            gb[j] += o[j];
        }
    }
    for (int i = 0; i < n; i++) {
        const float *g = m->logits + i * OUT;
        for (int k = 0; k < IN; k++) {
            float xv = x[i * IN + k];
            if (xv == 0.0f)
                continue;
            for (int j = 0; j < OUT; j++)
                gw[k * OUT + j] += xv * g[j];
        }
    }
    return (float)(loss / n);
}

static void tiny_update(void *p, float lr)
{
    tiny *m = p;
    for (int k = 0; k < IN * OUT; k++)
        m->w[k] -= lr * m->grads[GW_OFF + k];
    for (int j = 0; j < OUT; j++)
        m->b[j] -= lr * m->grads[GB_OFF + j];
    m->step++;
}

static float tiny_train_step(void *p, const float *x, const int32_t *y, int n, float lr,
                             float *out)
{
    float loss = tiny_forward_backward(p, x, y, n, out);
    tiny_update(p, lr);
    return loss;
}

static float *tiny_grads(void *p) { return ((tiny *)p)->grads; }
static void tiny_read_grads(void *p, float *dst)
{
    tiny *m = p;
    memcpy(dst, m->grads, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
}
static void tiny_write_grads(void *p, const float *src)
{
    tiny *m = p;
    memcpy(m->grads, src, sizeof(float) * (GW_OFF + (size_t)IN * OUT));
}

static void tiny_read(void *p, int i, void *dst)
{
    tiny *m = p;
    if (i == 0)
        memcpy(dst, m->w, sizeof(float) * IN * OUT);
    else
        memcpy(dst, m->b, sizeof m->b);
}

static void tiny_write(void *p, int i, const void *src)
{
    tiny *m = p;
    if (i == 0)
        memcpy(m->w, src, sizeof(float) * IN * OUT);
    else
        memcpy(m->b, src, sizeof m->b);
}

static int64_t tiny_get_step(void *p) { return ((tiny *)p)->step; }
static void tiny_set_step(void *p, int64_t s) { ((tiny *)p)->step = s; }

const mlc_model_api tiny_api = {
    .api_version = MLC_API_VERSION,
    .name = "tiny",
    .target = "c",
    .input_rank = 1,
    .input_dims = {784},
    .input_numel = 784,
    .output_numel = OUT,
    .default_batch = 32,
    .default_epochs = 2,
    .default_accum = 1,
    .default_seed = 42,
    .optimizer = {"sgd", 0.1f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 2,
    .tensors = tiny_tensors,
    .grad_numel = GW_OFF + 784 * OUT,
    .create = tiny_create,
    .destroy = tiny_destroy,
    .train_step = tiny_train_step,
    .forward_backward = tiny_forward_backward,
    .update = tiny_update,
    .grads = tiny_grads,
    .read_grads = tiny_read_grads,
    .write_grads = tiny_write_grads,
    .forward = tiny_forward,
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
    .input_rank = 3,
    .input_dims = {3, 32, 32},
    .input_numel = 3072,
    .output_numel = OUT,
    .default_batch = 32,
    .default_epochs = 1,
    .default_accum = 1,
    .default_seed = 42,
    .optimizer = {"sgd", 0.05f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    .n_tensors = 2,
    .tensors = tiny_c10_tensors,
    .grad_numel = GW_OFF + 3072 * OUT,
    .create = tiny_c10_create,
    .destroy = tiny_destroy,
    .train_step = tiny_train_step,
    .forward_backward = tiny_forward_backward,
    .update = tiny_update,
    .grads = tiny_grads,
    .read_grads = tiny_read_grads,
    .write_grads = tiny_write_grads,
    .forward = tiny_forward,
    .read_tensor = tiny_read,
    .write_tensor = tiny_write,
    .get_step = tiny_get_step,
    .set_step = tiny_set_step,
    .set_threads = NULL,
    .augment = "flip",
};
