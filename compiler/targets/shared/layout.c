/* layout.c - transpose (ops/ops_layout.c) on every target: a loop over the output's
 * dimensions reading x at the permuted strides. slice, pad and concat are each target's
 * own (C copies rows with memcpy). */
#include "ops_attrs.h"
#include "shared_emitters.h"

void emit_transpose(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int r = n->shape.rank;
    const char *xst[IR_MAX_RANK], *yst[IR_MAX_RANK];
    const char *one = "1";
    for (int i = r - 1; i >= 0; i--) {
        xst[i] = i == r - 1 ? one : arena_printf(e->arena, "%s*%s", xst[i + 1], emit_dim(e, n->in[0], i + 1));
        yst[i] = i == r - 1 ? one : arena_printf(e->arena, "%s*%s", yst[i + 1], emit_dim(e, id, i + 1));
    }
    ElemLoop l = {.rank = r, .par = LOOP_SERIAL};
    const char *src = "0", *dst = "0";
    for (int i = 0; i < r; i++) {
        l.size[i] = emit_dim(e, id, i);
        l.var[i] = arena_printf(e->arena, "i%d", i);
        src = arena_printf(e->arena, "%s + i%d*(%s)", src, i, xst[transpose_perm_at(n, i)]);
        dst = arena_printf(e->arena, "%s + i%d*(%s)", dst, i, yst[i]);
    }
    loop_begin(e, id, &l);
    emit(e, "%s[%s] = %s[%s];", emit_buf(e, id), dst, emit_buf(e, n->in[0]), src);
    loop_end(e, id, &l);
}
