/* builtins_attention.c - attention(q, k, v, causal = false, scale = 1/sqrt(D)): fused
 * scaled-dot-product attention, one op (compiler/ops/ops_attention.c says what it
 * computes and why its memory grows with T, not T^2). */
#include <math.h>

#include "lower_internal.h"

Value b_attention(Lower *L, Scope *s, const Expr *call, Args *a) {
    int qkv[3] = {T(0, "q"), T(1, "k"), T(2, "v")};
    int causal = arg_flag(L, s, call, a, 3, "causal", 0);
    const Shape *q = &L->g->nodes[qkv[0]].shape;
    double scale = 1 / sqrt((double)(q->rank > 0 ? q->d[q->rank - 1] : 1));
    scale = arg_num(L, s, call, a, 4, "scale", scale);
    if (!isfinite(scale) || scale == 0)
        diag_error(arg_loc(L, s, call, a, 4), "attention: 'scale' must be a finite nonzero number, found %g", scale);
    return vtensor(graph_add(L->g, OP_attention, qkv, 3, ATTRS(AF(A_SCALE, scale), AI(A_CAUSAL, causal)), LOCE));
}
