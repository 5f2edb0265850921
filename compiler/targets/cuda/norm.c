/* norm.c - the CUDA target's batch-norm ops (ops/ops_norm.c): per-channel sums in
 * slices of the batch (mlc_cuda_bn_sums, runtime/kernels/cuda/norm.cu) and their
 * scratch. */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"
#include "target.h"

/* ---- CUDA: per-channel sums in slices of the batch, then the slices added in order
 * (the kernel library); elementwise parts a thread per element ---- */

/* How many slices of the batch each channel's sum is split into: enough blocks, C * P
 * of about 1024, to fill the GPU when there are few channels. Fixed at compile time, so
 * the workspace and the order of the additions do not depend on B. */
static int64_t bn_parts(int64_t C) {
    int64_t p = 1024 / (C > 0 ? C : 1);
    return p < 1 ? 1 : p > 64 ? 64 : p;
}

/* CUDA: the slices' partial sums, two doubles per channel and slice. */
void ws_norm_cuda(const Graph *g, const Node *n, Workspace *w) {
    int64_t C = g->nodes[n->op == OP_bn_stats ? n->in[0] : n->in[1]].shape.d[1];
    w->c = 4 * bn_parts(C) * C;
}

void emit_norm_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int xi = n->op == OP_bn_stats ? n->in[0] : n->in[1];
    const Shape *xs = &e->g->nodes[xi].shape;
    long long C = (long long)xs->d[1], S = (long long)xs->d[2], P = (long long)bn_parts(C);
    const char *eps = op_has_attr(n->op, A_EPS) ? emit_float(e, attr_f(n, A_EPS)) : "0.0f"; /* bn_stats has none */
    const char *x = emit_buf(e, xi), *out = emit_buf(e, id);
    const char *elems = arena_printf(e->arena, "B * %lld", C * S);
    const char *k;
    switch (n->op) {
    case OP_bn_stats:
    case OP_bn_param_grads: {
        int stats = n->op == OP_bn_stats;
        const char *dy = stats ? "NULL" : emit_buf(e, n->in[0]), *st = stats ? "NULL" : emit_buf(e, n->in[2]);
        emit(e, "mlc_cuda_bn_sums(stream, B, %lld, %lld, %lld, %s, %d, %s, %s, %s, (double *)%s, %s);", C, S, P, x,
             e->half[xi], dy, st, stats ? "0.0f" : eps, e->ws, out);
        emit_batch_sync_call(e, id, 1);
        return;
    }
    default: {
        const char *dy = emit_buf(e, n->in[0]), *st = emit_buf(e, n->in[2]), *pg = emit_buf(e, n->in[3]);
        const char *g = emit_buf(e, n->in[4]);
        k = cuda_kernel_begin(e, id, elems, "k", NULL);
        emit(e, "const long c = (k / %lld) %% %lld;", S, C);
        emit(e, "const float N = (float)(B * %lld), rstd = 1.0f / sqrtf(%s[%lld + c] + %s), gs = %s[c] * rstd;", S, st,
             C, eps, g);
        emit(e, "const float k2 = -gs * rstd * %s[%lld + c] / N, k3 = -gs * %s[c] / N - k2 * %s[c];", pg, C, pg, st);
        emit(e, "%s[k] = gs * %s[k] + k2 * %s[k] + k3;", out, dy, x);
        cuda_kernel_end(e);
        cuda_launch(e, id, k, elems, NULL);
    }
    }
}
