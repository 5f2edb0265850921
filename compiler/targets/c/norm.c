/* norm.c - the C target's batch-norm ops (ops/ops_norm.c): calls into the prologue. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"
#include "target.h"

/* ---- C emission: calls into the kernel library, runtime/kernels/c/norm.c (bn_apply has none: split_bn) ---- */

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
    case OP_bn_param_grads:
        emit(e, "mlc_bn_param_grads(B, %lld, %lld, %s, %s, %s, %s, %s);", C, S, B_(0), B_(1), B_(2), eps,
             emit_buf(e, id));
        emit_batch_sync_call(e, id, 0);
        break;
    default:
        emit(e, "mlc_bn_bwd(B, %lld, %lld, %s, %s, %s, %s, %s, %s, %s);", C, S, B_(0), B_(1), B_(2), B_(3), B_(4), eps,
             emit_buf(e, id));
    }
#undef B_
}
