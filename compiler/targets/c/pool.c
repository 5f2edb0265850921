/* pool.c - the C target's poolings: one call into the prologue's pooling routines.
 * The ops' semantics are in ops/ops_pool.c. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* ---- C emission ---- */

void emit_pool_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    PGeom q = pool_node_geom(e->g, n);
    static const char *fns[] = {"mlc_maxpool2d_fwd", "mlc_avgpool2d_fwd", "mlc_maxpool2d_bwd", "mlc_avgpool2d_bwd"};
    int k = n->op == OP_max_pool2d ? 0 : n->op == OP_avg_pool2d ? 1 : n->op == OP_maxpool2d_bwd ? 2 : 3;
    emit(e, "{");
    e->indent++;
    emit_pool_geom(e, &q);
    const char *pl = arena_printf(e->arena, "B * %lld", (long long)n->shape.d[1]);
    if (k == 2)
        emit(e, "%s(&geom, %s, %s, %s, %s);", fns[k], pl, emit_buf(e, n->in[0]), emit_buf(e, n->in[1]),
             emit_buf(e, id));
    else emit(e, "%s(&geom, %s, %s, %s);", fns[k], pl, emit_buf(e, n->in[0]), emit_buf(e, id));
    e->indent--;
    emit(e, "}");
}
