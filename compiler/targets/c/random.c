/* random.c - the C target's dropout_mask (ops/ops_random.c): the runtime's Philox. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_dropout_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "{");
    e->indent++;
    emit(e, "const float p = %s, scale = %s;", emit_float(e, n->fattr[0]), emit_float(e, 1.0 / (1.0 - n->fattr[0])));
    emit(e, "float *restrict y = %s;", emit_buf(e, id));
    emit(e, "#pragma omp parallel for if ((%s) > 32768)", emit_numel(e, id));
    emit(e, "for (long i = 0; i < (long)(%s); i++)", emit_numel(e, id));
    emit(e, "    y[i] = mlc_rng_uniform(self->seed, %lluu, ((uint64_t)t << 32) | (uint64_t)i) >= p ? scale : 0.0f;",
         (unsigned long long)n->iattr[0]);
    e->indent--;
    emit(e, "}");
}
