/* pool.c - the CUDA target's poolings: one call into the kernel library's
 * launchers (runtime/kernels/cuda/pool.cu).
 * The ops' semantics are in ops/ops_pool.c. */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* ---- CUDA emission: one call into the kernel library's launchers (pool.cu),
 * a thread per output element; the backward ops gather per input element (no atomics),
 * except a 2x2 max-pool backward: a thread per window, so it may run in place ---- */

void emit_pool_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    PGeom q = pool_node_geom(e->g, n);
    static const char *fns[] = {"mlc_cuda_maxpool2d_fwd", "mlc_cuda_avgpool2d_fwd", "mlc_cuda_maxpool2d_bwd",
                                "mlc_cuda_avgpool2d_bwd"};
    int k = n->op == OP_max_pool2d ? 0 : n->op == OP_avg_pool2d ? 1 : n->op == OP_maxpool2d_bwd ? 2 : 3;
    emit(e, "{");
    e->indent++;
    emit_pool_geom(e, &q);
    const char *pl = arena_printf(e->arena, "B * %lld", (long long)n->shape.d[1]);
    if (k == 2)
        emit(e, "%s(stream, &geom, %s, %s, %s, %s);", fns[k], pl, emit_buf(e, n->in[0]), emit_buf(e, n->in[1]),
             emit_buf(e, id));
    else emit(e, "%s(stream, &geom, %s, %s, %s);", fns[k], pl, emit_buf(e, n->in[0]), emit_buf(e, id));
    e->indent--;
    emit(e, "}");
}
