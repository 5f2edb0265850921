/* layout.c - the C target's slice, pad and concat (ops/ops_layout.c): a memcpy per row. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

/* C: one memcpy per outer row (and memset for padding). */
static void emit_rows_c(EmitCtx *e, int id, int src, int64_t dst_off, int64_t src_off, int64_t count) {
    const Node *n = &e->g->nodes[id];
    int ax = (int)attr_i(n, A_AXIS);
    const char *outer, *len, *inner, *sl, *si, *so;
    emit_axis_split(e, id, ax, &outer, &len, &inner);
    emit_axis_split(e, src, ax, &so, &sl, &si);
    (void)so, (void)si;
    emit(e, "for (long o = 0; o < (long)(%s); o++)", outer);
    emit(e, "    memcpy(%s + (o * (%s) + %lld) * (%s), %s + (o * (%s) + %lld) * (%s), sizeof(float) * %lld * (%s));",
         emit_buf(e, id), len, (long long)dst_off, inner, emit_buf(e, src), sl, (long long)src_off, inner,
         (long long)count, inner);
}

void emit_slice_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit_rows_c(e, id, n->in[0], 0, attr_i(n, A_START), attr_i(n, A_END) - attr_i(n, A_START));
}
void emit_pad_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "memset(%s, 0, sizeof(float) * (size_t)(%s));", emit_buf(e, id), emit_numel(e, id));
    emit_rows_c(e, id, n->in[0], attr_i(n, A_BEFORE), 0, e->g->nodes[n->in[0]].shape.d[attr_i(n, A_AXIS)]);
}
void emit_concat_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int ax = (int)attr_i(n, A_AXIS);
    int64_t na = e->g->nodes[n->in[0]].shape.d[ax], nb = e->g->nodes[n->in[1]].shape.d[ax];
    emit_rows_c(e, id, n->in[0], 0, 0, na);
    emit_rows_c(e, id, n->in[1], na, 0, nb);
}
