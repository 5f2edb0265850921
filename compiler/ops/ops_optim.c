/* ops_optim.c - rules of the optimizer updates, appended to the train step after
 * autodiff (compiler/passes/optimizer.c). Each writes its parameter (input 0) and its state in
 * place, in one loop: reading a parameter, its gradient and its state once per step is
 * what makes the update cheap. `lr` and the step count t are run-time values. */
#include "emit.h"
#include "ops.h"

#define X(id) (&g->nodes[id])

/* All inputs have the parameter's shape; the node stands for the updated parameter. */
static const char *s_update(Graph *g, Node *n) {
    const Node *p = X(n->in[0]);
    for (int i = 1; i < n->nin; i++)
        if (!shape_eq(&X(n->in[i])->shape, &p->shape))
            return shape_err(g, "%s: input %d's shape differs from the parameter's", op_of(n)->name, i);
    n->shape = p->shape;
    n->dtype = DT_F32;
    return NULL;
}

/* v = momentum*v + (g + wd*p);  p -= lr * (nesterov ? g + wd*p + momentum*v : v) */
static void emit_sgd_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "{");
    e->indent++;
    emit(e, "float *restrict p = %s, *restrict v = %s;", emit_buf(e, n->in[0]), emit_buf(e, n->in[2]));
    emit(e, "const float *restrict g = %s;", emit_buf(e, n->in[1]));
    emit(e, "const float mom = %s, wd = %s;", emit_float(e, n->fattr[0]), emit_float(e, n->fattr[1]));
    emit(e, "#pragma omp parallel for simd if ((%s) > 32768)", emit_numel(e, n->in[0]));
    emit(e, "for (long i = 0; i < (long)(%s); i++) {", emit_numel(e, n->in[0]));
    emit(e, "    const float gi = g[i] + wd * p[i];");
    emit(e, "    v[i] = mom * v[i] + gi;");
    emit(e, "    p[i] -= lr * (%s);", n->iattr[0] ? "gi + mom * v[i]" : "v[i]");
    emit(e, "}");
    e->indent--;
    emit(e, "}");
}

/* Adam; bias corrections from t. Weight decay: L2, folded into the gradient (adam), or
 * decoupled, p *= 1 - lr * wd before the step (adamw: iattr0 = 1). */
static void emit_adam_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "{");
    e->indent++;
    emit(e, "float *restrict p = %s, *restrict m1 = %s, *restrict m2 = %s;", emit_buf(e, n->in[0]),
         emit_buf(e, n->in[2]), emit_buf(e, n->in[3]));
    emit(e, "const float *restrict g = %s;", emit_buf(e, n->in[1]));
    emit(e, "const float b1 = %s, b2 = %s, eps = %s, wd = %s;", emit_float(e, n->fattr[0]), emit_float(e, n->fattr[1]),
         emit_float(e, n->fattr[2]), emit_float(e, n->fattr[3]));
    emit(e, "const float step = lr / (1.0f - powf(b1, (float)t));");
    emit(e, "const float inv_bc2 = 1.0f / (1.0f - powf(b2, (float)t));");
    if (n->iattr[0]) emit(e, "const float decay = 1.0f - lr * wd;");
    emit(e, "#pragma omp parallel for simd if ((%s) > 32768)", emit_numel(e, n->in[0]));
    emit(e, "for (long i = 0; i < (long)(%s); i++) {", emit_numel(e, n->in[0]));
    emit(e, n->iattr[0] ? "    const float gi = g[i];" : "    const float gi = g[i] + wd * p[i];");
    emit(e, "    m1[i] = b1 * m1[i] + (1.0f - b1) * gi;");
    emit(e, "    m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;");
    emit(e, n->iattr[0] ? "    p[i] = p[i] * decay - step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);"
                        : "    p[i] -= step * m1[i] / (sqrtf(m2[i] * inv_bc2) + eps);");
    emit(e, "}");
    e->indent--;
    emit(e, "}");
}

/* CUDA: a thread per element; lr is a kernel argument. */
static void emit_sgd_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *p = emit_buf(e, n->in[0]), *g = emit_buf(e, n->in[1]), *v = emit_buf(e, n->in[2]);
    const char *count = emit_numel(e, n->in[0]);
    const char *k = cuda_kernel_begin(e, id, count, "i", "const float lr");
    emit(e, "const float mom = %s, wd = %s;", emit_float(e, n->fattr[0]), emit_float(e, n->fattr[1]));
    emit(e, "const float gi = %s[i] + wd * %s[i];", g, p);
    emit(e, "%s[i] = mom * %s[i] + gi;", v, v);
    emit(e, "%s[i] -= lr * (%s);", p, n->iattr[0] ? arena_printf(e->arena, "gi + mom * %s[i]", v) : arena_printf(e->arena, "%s[i]", v));
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, "lr");
}

/* CUDA: the step size and bias correction come from lr and t on the host, computed as the
 * C target does; a thread per element. */
static void emit_adam_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *p = emit_buf(e, n->in[0]), *g = emit_buf(e, n->in[1]);
    const char *m1 = emit_buf(e, n->in[2]), *m2 = emit_buf(e, n->in[3]);
    const char *b1 = emit_float(e, n->fattr[0]), *b2 = emit_float(e, n->fattr[1]);
    const char *count = emit_numel(e, n->in[0]);
    const char *k = cuda_kernel_begin(e, id, count, "i", "const float step, const float inv_bc2, const float decay");
    emit(e, "const float b1 = %s, b2 = %s, eps = %s, wd = %s;", b1, b2, emit_float(e, n->fattr[2]),
         emit_float(e, n->fattr[3]));
    emit(e, n->iattr[0] ? "const float gi = %s[i]; (void)wd;" : "const float gi = %s[i] + wd * %s[i];", g, p);
    emit(e, "%s[i] = b1 * %s[i] + (1.0f - b1) * gi;", m1, m1);
    emit(e, "%s[i] = b2 * %s[i] + (1.0f - b2) * gi * gi;", m2, m2);
    emit(e, "%s[i] = %s[i] * decay - step * %s[i] / (sqrtf(%s[i] * inv_bc2) + eps);", p, p, m1, m2);
    cuda_kernel_end(e);
    emit(e, "{");
    e->indent++;
    emit(e, "const float step = lr / (1.0f - powf(%s, (float)t));", b1);
    emit(e, "const float inv_bc2 = 1.0f / (1.0f - powf(%s, (float)t));", b2);
    emit(e, "const float decay = %s;", n->iattr[0] ? arena_printf(e->arena, "1.0f - lr * %s", emit_float(e, n->fattr[3])) : "1.0f");
    cuda_launch(e, id, k, count, "step, inv_bc2, decay");
    e->indent--;
    emit(e, "}");
}

const OpRules rules_sgd_update = {.shape = s_update, .emit_c = emit_sgd_c, .emit_cuda = emit_sgd_cuda};
const OpRules rules_adam_update = {.shape = s_update, .emit_c = emit_adam_c, .emit_cuda = emit_adam_cuda};


/* ema_update(state, value): state = (1 - m) state + m c value, the running statistics of
 * batch_norm. fattr0 = m (momentum); iattr0 = elements per sample behind each value
 * (H*W), iattr1 = 1 for the unbiased correction c = n / (n - 1), n = B * iattr0. */
static void emit_ema_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "{");
    e->indent++;
    emit(e, "float *restrict s = %s;", emit_buf(e, n->in[0]));
    emit(e, "const float *restrict v = %s;", emit_buf(e, n->in[1]));
    emit(e, "const float m = %s;", emit_float(e, n->fattr[0]));
    if (n->iattr[1])
        emit(e, "const float c = B * %lld > 1 ? (float)(B * %lld) / (float)(B * %lld - 1) : 1.0f;",
             (long long)n->iattr[0], (long long)n->iattr[0], (long long)n->iattr[0]);
    else
        emit(e, "const float c = 1.0f;");
    emit(e, "for (long i = 0; i < (long)(%s); i++) s[i] = (1.0f - m) * s[i] + m * c * v[i];", emit_numel(e, n->in[0]));
    e->indent--;
    emit(e, "}");
}

/* CUDA: a thread per element; the correction from B as the C target computes it. */
static void emit_ema_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *s = emit_buf(e, n->in[0]), *v = emit_buf(e, n->in[1]);
    const char *count = emit_numel(e, n->in[0]);
    const char *k = cuda_kernel_begin(e, id, count, "i", NULL);
    emit(e, "const float m = %s;", emit_float(e, n->fattr[0]));
    if (n->iattr[1])
        emit(e, "const float c = B * %lld > 1 ? (float)(B * %lld) / (float)(B * %lld - 1) : 1.0f;",
             (long long)n->iattr[0], (long long)n->iattr[0], (long long)n->iattr[0]);
    else
        emit(e, "const float c = 1.0f;");
    emit(e, "%s[i] = (1.0f - m) * %s[i] + m * c * %s[i];", s, s, v);
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}

const OpRules rules_ema_update = {.shape = s_update, .emit_c = emit_ema_c, .emit_cuda = emit_ema_cuda};
