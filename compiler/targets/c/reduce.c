/* reduce.c - the C target's argmax_mask (ops/ops_reduce.c); the reductions themselves
 * are fused groups (emit_c.c). */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_argmax_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, n->in[0], (int)n->iattr[0], &outer, &len, &inner);
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    emit(e, "for (long o = 0; o < (long)(%s); o++)", outer);
    emit(e, "    for (long i = 0; i < (long)(%s); i++) {", inner);
    emit(e, "        const long base = o * (%s) * (%s) + i;", len, inner);
    emit(e, "        long best = 0;");
    emit(e, "        for (long j = 0; j < (long)(%s); j++) {", len);
    emit(e, "            %s[base + j * (%s)] = 0.0f;", y, inner);
    emit(e, "            if (%s[base + j * (%s)] > %s[base + best * (%s)]) best = j;", x, inner, x, inner);
    emit(e, "        }");
    emit(e, "        %s[base + best * (%s)] = 1.0f;", y, inner);
    emit(e, "    }");
}
