/* embedding.c - the CUDA target's gather_rows and scatter_rows (ops/ops_embedding.c).
 * The lookup is a thread per id copying its row. The gradient is a thread per column of
 * the table adding the rows of dy into its column in the order of the ids: every element
 * has one writer and a fixed order of additions, so no atomics and the same bits on every
 * run. Ids are clamped to [0, V). The C target calls the kernel library
 * (targets/c/embedding.c). */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

/* Body line: `row`, id i clamped to the table. */
static void emit_row_of(EmitCtx *e, const char *ids, long long V) {
    emit(e, "const long id = (long)%s[i];", ids);
    emit(e, "const long row = id < 0 ? 0 : id >= %lld ? %lld : id;", V, V - 1);
}

void emit_embedding_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *ids = emit_buf(e, n->in[1]), *m = emit_numel(e, n->in[1]), *out = emit_buf(e, id);
    if (n->op == OP_gather_rows) {
        const Shape *t = &e->g->nodes[n->in[0]].shape;
        long long V = (long long)t->d[0], D = (long long)t->d[1];
        ElemLoop l = {.rank = 1, .size = {m}, .var = {"i"}, .par = LOOP_PARALLEL};
        loop_begin(e, id, &l);
        emit_row_of(e, ids, V);
        emit(e, "for (long j = 0; j < %lld; j++) %s[i * %lld + j] = %s[row * %lld + j];", D, out, D,
             emit_buf(e, n->in[0]), D);
        loop_end(e, id, &l);
        return;
    }
    long long V = (long long)n->shape.d[0], D = (long long)n->shape.d[1];
    ElemLoop l = {.rank = 1, .size = {arena_printf(e->arena, "%lld", D)}, .var = {"j"}, .par = LOOP_PARALLEL};
    loop_begin(e, id, &l);
    emit(e, "for (long v = 0; v < %lld; v++) %s[v * %lld + j] = 0.0f;", V, out, D);
    emit(e, "for (long i = 0; i < (long)(%s); i++) {", m);
    e->indent++;
    emit_row_of(e, ids, V);
    emit(e, "%s[row * %lld + j] += %s[i * %lld + j];", out, D, emit_buf(e, n->in[0]), D);
    e->indent--;
    emit(e, "}");
    loop_end(e, id, &l);
}
