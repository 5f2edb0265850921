/* reduce.c - argmax_mask (ops/ops_reduce.c) and argmax (ops/ops_argmax.c) on every
 * target: a loop over the (outer, inner) pairs around the axis, each finding the first
 * maximum of its line (ties go to the lowest index, as the reference's do). The reductions
 * themselves are fused groups, which each target writes (emit_c.c, emit_cuda.c). */
#include "shared_emitters.h"

/* The scan both argmax ops share: for each (outer, inner) pair the first maximum of its
 * line along the axis; argmax writes its i32 index, argmax_mask a line of zeros with a 1
 * there. */
static void emit_first_max(EmitCtx *e, int id, int as_index) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, n->in[0], (int)attr_i(n, A_AXIS), &outer, &len, &inner);
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    ElemLoop l = {.rank = 2, .size = {outer, inner}, .var = {"o", "i"}, .par = LOOP_SERIAL};
    loop_begin(e, id, &l);
    emit(e, "const long base = o * (%s) * (%s) + i;", len, inner);
    emit(e, "long best = 0;");
    if (as_index) {
        emit(e, "for (long j = 1; j < (long)(%s); j++)", len);
        emit(e, "    if (%s[base + j * (%s)] > %s[base + best * (%s)]) best = j;", x, inner, x, inner);
        emit(e, "%s[o * (%s) + i] = (int)best;", y, inner);
    } else {
        emit(e, "for (long j = 0; j < (long)(%s); j++) {", len);
        emit(e, "    %s[base + j * (%s)] = 0.0f;", y, inner);
        emit(e, "    if (%s[base + j * (%s)] > %s[base + best * (%s)]) best = j;", x, inner, x, inner);
        emit(e, "}");
        emit(e, "%s[base + best * (%s)] = 1.0f;", y, inner);
    }
    loop_end(e, id, &l);
}

void emit_argmax(EmitCtx *e, int id) { emit_first_max(e, id, 0); }
void emit_argmax_index(EmitCtx *e, int id) { emit_first_max(e, id, 1); }
