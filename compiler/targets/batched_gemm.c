/* batched_gemm.c - how both targets call a matmul with batch axes (ops_matmul.c): its
 * sizes, leading dimensions and per-entry strides as C expressions of the run-time B, so
 * the C target's mlc_sgemm_batched and CUDA's cublasSgemmStridedBatched take the same
 * numbers. */
#include "emit.h"

/* The product of the dimensions [from, to) of node x's shape. */
static const char *dims_expr(EmitCtx *e, int x, int from, int to) {
    const char *r = NULL;
    for (int i = from; i < to; i++) {
        const char *d = emit_dim(e, x, i);
        r = r ? arena_printf(e->arena, "%s*%s", r, d) : d;
    }
    return r ? r : "1";
}

BatchedGemm batched_gemm(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int a = n->in[0], b = n->in[1], r = n->shape.rank;
    int ra = e->g->nodes[a].shape.rank, rb = e->g->nodes[b].shape.rank;
    int ta = (int)attr_i(n, A_TRANS_A);
    BatchedGemm q = {0};
    q.M = emit_dim(e, id, r - 2), q.N = emit_dim(e, id, r - 1), q.K = emit_dim(e, a, ta ? ra - 2 : ra - 1);
    q.count = arena_printf(e->arena, "(long)(%s)", dims_expr(e, id, 0, r - 2));
    q.A = emit_buf(e, a), q.B = emit_buf(e, b), q.C = emit_buf(e, id);
    q.lda = emit_dim(e, a, ra - 1), q.ldb = emit_dim(e, b, rb - 1);
    q.sa = ra > 2 ? arena_printf(e->arena, "(long)(%s)", dims_expr(e, a, ra - 2, ra)) : "0L";
    q.sb = rb > 2 ? arena_printf(e->arena, "(long)(%s)", dims_expr(e, b, rb - 2, rb)) : "0L";
    q.sc = arena_printf(e->arena, "(long)(%s)", dims_expr(e, id, r - 2, r));
    q.fold = ra > 2 && rb == 2 && !ta;
    if (q.fold) q.M = dims_expr(e, id, 0, r - 1);
    return q;
}
