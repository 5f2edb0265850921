/* labels.c - one_hot (ops/ops_labels.c) on every target, for when something other than
 * a fused group reads it (fused groups compute it from the labels in registers): a loop
 * over the labels, each writing its row of classes. */
#include "shared_emitters.h"

void emit_one_hot(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    long long c = (long long)attr_i(n, A_CLASSES);
    ElemLoop l = {.rank = 1, .size = {emit_numel(e, n->in[0])}, .var = {"i"}, .par = LOOP_SERIAL};
    loop_begin(e, id, &l);
    emit(e, "for (long k = 0; k < %lld; k++) %s[i * %lld + k] = %s[i] == k ? 1.0f : 0.0f;", c, y, c, x);
    loop_end(e, id, &l);
}
