/* embedding.c - the C target's gather_rows and scatter_rows (ops/ops_embedding.c):
 * calls into the kernel library, runtime/kernels/c/embedding.c. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_embedding_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *ids = emit_buf(e, n->in[1]), *m = emit_numel(e, n->in[1]);
    if (n->op == OP_gather_rows) {
        const Shape *t = &e->g->nodes[n->in[0]].shape;
        emit(e, "mlc_gather_rows(%s, %lld, %lld, %s, %s, %s);", m, (long long)t->d[0], (long long)t->d[1], ids,
             emit_buf(e, n->in[0]), emit_buf(e, id));
    } else {
        emit(e, "mlc_scatter_rows(%s, %lld, %lld, %s, %s, %s);", m, (long long)n->shape.d[0], (long long)n->shape.d[1],
             ids, emit_buf(e, n->in[0]), emit_buf(e, id));
    }
}
