/* reduce.c - the CUDA target's argmax_mask (ops/ops_reduce.c); the reductions
 * themselves are fused groups (emit_cuda.c). */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

/* CUDA: a thread per (outer, inner) pair writes its whole line along the axis. */
void emit_argmax_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, n->in[0], (int)n->iattr[0], &outer, &len, &inner);
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    const char *count = arena_printf(e->arena, "(%s) * (%s)", outer, inner);
    const char *k = cuda_kernel_begin(e, id, count, "k", NULL);
    emit(e, "const long o = k / (%s), i = k %% (%s);", inner, inner);
    emit(e, "const long base = o * (%s) * (%s) + i;", len, inner);
    emit(e, "long best = 0;");
    emit(e, "for (long j = 0; j < (long)(%s); j++) {", len);
    emit(e, "    %s[base + j * (%s)] = 0.0f;", y, inner);
    emit(e, "    if (%s[base + j * (%s)] > %s[base + best * (%s)]) best = j;", x, inner, x, inner);
    emit(e, "}");
    emit(e, "%s[base + best * (%s)] = 1.0f;", y, inner);
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}
