/* rownorm.c - the C target's layer_norm, rms_norm and their backward ops
 * (ops/ops_rownorm.c): calls into the kernel library, runtime/kernels/c/rownorm.c, over
 * the rows of x [..., D]. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_row_norm_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int fwd = n->op == OP_layer_norm || n->op == OP_rms_norm,
        xi = fwd || n->op == OP_row_norm_stats ? n->in[0] : n->in[1];
    int centred = n->op == OP_layer_norm || (!fwd && attr_i(n, A_CENTRED));
    const char *rows, *D, *inner;
    emit_axis_split(e, xi, e->g->nodes[xi].shape.rank - 1, &rows, &D, &inner);
    (void)inner;
    const char *x = emit_buf(e, xi), *out = emit_buf(e, id), *eps = emit_float(e, attr_f(n, A_EPS));
#define B_(k) emit_buf(e, n->in[k])
    switch (n->op) {
    case OP_layer_norm:
    case OP_rms_norm:
        emit(e, "mlc_row_norm(%s, %s, %d, %s, %s, %s, %s, %s);", rows, D, centred, eps, x, B_(1),
             n->nin > 2 ? B_(2) : "NULL", out);
        break;
    case OP_row_norm_stats:
        emit(e, "mlc_row_norm_stats(%s, %s, %d, %s, %s, %s);", rows, D, centred, eps, x, out);
        break;
    case OP_row_norm_bwd:
        emit(e, "mlc_row_norm_bwd(%s, %s, %d, %s, %s, %s, %s, %s);", rows, D, centred, B_(0), x, B_(2), B_(3), out);
        break;
    default: emit(e, "mlc_row_norm_param_grads(%s, %s, %d, %s, %s, %s, %s);", rows, D, centred, B_(0), x, B_(2), out);
    }
#undef B_
}
