/* argmax.c - argmax (ops/ops_argmax.c) on every target: a loop over the (outer, inner)
 * pairs around the axis, each scanning its line and writing the i32 index of the first
 * maximum (ties go to the lowest index, as the reference's do). */
#include "shared_emitters.h"

void emit_argmax_index(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, n->in[0], (int)attr_i(n, A_AXIS), &outer, &len, &inner);
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    ElemLoop l = {.rank = 2, .size = {outer, inner}, .var = {"o", "i"}, .par = LOOP_SERIAL};
    loop_begin(e, id, &l);
    emit(e, "const long base = o * (%s) * (%s) + i;", len, inner);
    emit(e, "long best = 0;");
    emit(e, "for (long j = 1; j < (long)(%s); j++)", len);
    emit(e, "    if (%s[base + j * (%s)] > %s[base + best * (%s)]) best = j;", x, inner, x, inner);
    emit(e, "%s[o * (%s) + i] = (int)best;", y, inner);
    loop_end(e, id, &l);
}
