/* norm.c - the C target's batch-norm ops (ops/ops_norm.c): calls into the prologue. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"
#include "target.h"

/* ---- C emission: calls into the kernel library, runtime/kernels/c/norm.c (bn_apply has none: split_bn) ---- */

/* The bn_bwd node that bn_param_grads node id's call also computes (mlc_bn_backward), or
 * -1: the next node with code, when it is the bn_bwd of the same dy, x and statistics.
 * Its output is written a node early, which no code in between can see. */
static int bn_bwd_fused(const EmitCtx *e, int id) {
    const Graph *g = e->g;
    const Node *p = &g->nodes[id];
    if (p->op != OP_bn_param_grads) return -1;
    for (int q = id + 1; q < g->n; q++) {
        if (!emit_has_code(e, q)) continue;
        const Node *n = &g->nodes[q];
        return n->op == OP_bn_bwd && n->in[0] == p->in[0] && n->in[1] == p->in[1] && n->in[2] == p->in[2] &&
                       n->in[3] == id
                   ? q
                   : -1;
    }
    return -1;
}

void emit_norm_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int xi = n->op == OP_bn_stats ? n->in[0] : n->in[1];
    const Shape *x = &e->g->nodes[xi].shape;
    long long C = (long long)x->d[1], S = (long long)x->d[2];
    const char *eps = op_has_attr(n->op, A_EPS) ? emit_float(e, attr_f(n, A_EPS)) : "0.0f"; /* bn_stats has none */
#define B_(k) emit_buf(e, n->in[k])
    switch (n->op) {
    case OP_bn_stats:
        emit(e, "mlc_bn_stats(B, %lld, %lld, %s, %s);", C, S, B_(0), emit_buf(e, id));
        emit_batch_sync_call(e, id, 0);
        break;
    case OP_bn_param_grads: {
        const int q = bn_bwd_fused(e, id);
        if (q >= 0) { /* with --sync-bn the sums are added across processes before dx */
            emit(e, "if (!self->batch_sync) /* with %%%d's dx, channel by channel */", q);
            emit(e, "    mlc_bn_backward(B, %lld, %lld, %s, %s, %s, %s, %s, %s, %s);", C, S, B_(0), B_(1), B_(2),
                 emit_buf(e, e->g->nodes[q].in[4]), eps, emit_buf(e, id), emit_buf(e, q));
            emit(e, "else {");
            e->indent++;
        }
        emit(e, "mlc_bn_param_grads(B, %lld, %lld, %s, %s, %s, %s, %s);", C, S, B_(0), B_(1), B_(2), eps,
             emit_buf(e, id));
        emit_batch_sync_call(e, id, 0);
        if (q >= 0) e->indent--, emit(e, "}");
        break;
    }
    default:
        emit(e, "%smlc_bn_bwd(B, %lld, %lld, %s, %s, %s, %s, %s, %s, %s);",
             bn_bwd_fused(e, n->in[3]) == id ? "if (self->batch_sync) " : "", C, S, B_(0), B_(1), B_(2), B_(3), B_(4),
             eps, emit_buf(e, id));
    }
#undef B_
}
