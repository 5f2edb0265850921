/* optim.c - the CUDA target's optimizer updates (ops/ops_optim.c): a kernel each. */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

/* CUDA: a thread per element; lr is a kernel argument. */
void emit_sgd_cuda(EmitCtx *e, int id) {
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
void emit_adam_cuda(EmitCtx *e, int id) {
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

/* CUDA: a thread per element; the correction from B as the C target computes it. */
void emit_ema_cuda(EmitCtx *e, int id) {
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
