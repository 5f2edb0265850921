/* optim.c - the C target's optimizer updates (ops/ops_optim.c): one loop each. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

/* v = momentum*v + (g + wd*p);  p -= lr * (nesterov ? g + wd*p + momentum*v : v) */
void emit_sgd_c(EmitCtx *e, int id) {
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
void emit_adam_c(EmitCtx *e, int id) {
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

/* ema_update(state, value): state = (1 - m) state + m c value, the running statistics of
 * batch_norm. fattr0 = m (momentum); iattr0 = elements per sample behind each value
 * (H*W), iattr1 = 1 for the unbiased correction c = n / (n - 1), n = B * iattr0. */
void emit_ema_c(EmitCtx *e, int id) {
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
