/* mask.c - causal_mask (ops/ops_mask.c) on every target, for when something other than
 * a fused group reads it (fused groups compute it from the indices where they read it):
 * a loop over the [T, T] elements. */
#include "shared_emitters.h"

void emit_causal_mask(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long T = (long long)attr_i(n, A_SIZE);
    const char *t = arena_printf(e->arena, "%lld", T);
    ElemLoop l = {.rank = 2, .size = {t, t}, .var = {"i", "j"}, .par = LOOP_SERIAL};
    loop_begin(e, id, &l);
    emit(e, "%s[i * %lld + j] = (float)j <= (float)i + %s ? 1.0f : 0.0f;", emit_buf(e, id), T,
         emit_float(e, attr_f(&e->g->nodes[n->in[0]], A_VALUE)));
    loop_end(e, id, &l);
}
