/* norm.c - the batch-norm coefficients (ops/ops_norm.c: bn_scale, bn_shift, which
 * split_bn makes) on every target: a loop over the channels. scale = gamma /
 * sqrt(var + eps), shift = beta - mean * scale; the fused group that reads them then
 * computes x * scale + shift. The batch-norm sums are each target's own. */
#include "shared_emitters.h"

void emit_bn_coef(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long C = (long long)n->shape.d[0];
    ElemLoop l = {.rank = 1, .size = {arena_printf(e->arena, "%lld", C)}, .var = {"c"}, .par = LOOP_SERIAL};
    const char *st = emit_buf(e, n->in[0]), *out = emit_buf(e, id);
    loop_begin(e, id, &l);
    if (n->op == OP_bn_scale)
        emit_math(e, "%s[c] = %s[c] / sqrt(%s[%lld + c] + %s);", out, emit_buf(e, n->in[1]), st, C,
                  emit_float(e, attr_f(n, A_EPS)));
    else emit(e, "%s[c] = %s[c] - %s[c] * %s[c];", out, emit_buf(e, n->in[2]), st, emit_buf(e, n->in[1]));
    loop_end(e, id, &l);
}
