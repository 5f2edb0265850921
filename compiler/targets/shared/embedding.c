/* embedding.c - gather_rows and scatter_rows (ops/ops_embedding.c) on every target.
 * The lookup is a loop over the ids, each copying its row. The gradient is a loop over
 * the table's columns (a thread per column on CUDA), each adding the rows of dy into its
 * column in the order of the ids: every element has one writer and a fixed order of
 * additions, so no atomics and the same bits on every run. Ids are clamped to [0, V). */
#include "shared_emitters.h"

/* Body line: `row`, id i clamped to the table. */
static void emit_row_of(EmitCtx *e, const char *ids, long long V) {
    emit(e, "const long id = (long)%s[i];", ids);
    emit(e, "const long row = id < 0 ? 0 : id >= %lld ? %lld : id;", V, V - 1);
}

void emit_gather_rows(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const Shape *t = &e->g->nodes[n->in[0]].shape;
    long long V = (long long)t->d[0], D = (long long)t->d[1];
    const char *m = emit_numel(e, n->in[1]);
    ElemLoop l = {.rank = 1, .size = {m}, .var = {"i"}, .par = LOOP_PARALLEL, .work = arena_printf(e->arena, "(%s) * %lld", m, D)};
    loop_begin(e, id, &l);
    emit_row_of(e, emit_buf(e, n->in[1]), V);
    emit(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s[row * %lld + j];", D, emit_buf(e, id), D,
         emit_buf(e, n->in[0]), D);
    loop_end(e, id, &l);
}

void emit_scatter_rows(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long V = (long long)n->shape.d[0], D = (long long)n->shape.d[1];
    const char *out = emit_buf(e, id);
    const char *m = emit_numel(e, n->in[1]);
    ElemLoop l = {.rank = 1, .size = {arena_printf(e->arena, "%lld", D)}, .var = {"j"}, .par = LOOP_PARALLEL,
                  .work = arena_printf(e->arena, "(%s) * %lld", m, D)};
    loop_begin(e, id, &l);
    emit(e, "for (long v = 0; v < %lld; v++) %s[v * %lld + j] = 0.0f;", V, out, D);
    emit(e, "for (long i = 0; i < (long)(%s); i++) {", m);
    e->indent++;
    emit_row_of(e, emit_buf(e, n->in[1]), V);
    emit(e, "%s[row * %lld + j] += %s[i * %lld + j];", out, D, emit_buf(e, n->in[0]), D);
    e->indent--;
    emit(e, "}");
    loop_end(e, id, &l);
}
