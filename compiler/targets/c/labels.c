/* labels.c - the C target's one_hot (ops/ops_labels.c), for when something other than
 * a fused group reads it. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_one_hot_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    long long c = (long long)n->iattr[0];
    emit(e, "for (long i = 0; i < (long)(%s); i++)", emit_numel(e, n->in[0]));
    emit(e, "    for (long k = 0; k < %lld; k++) %s[i * %lld + k] = %s[i] == k ? 1.0f : 0.0f;", c, y, c, x);
}
