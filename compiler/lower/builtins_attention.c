/* builtins_attention.c - attention(q, k, v, causal = false, scale = 1/sqrt(D)): fused
 * scaled-dot-product attention, one op (compiler/ops/ops_attention.c says what it
 * computes and why its memory grows with T, not T^2). */
#include <math.h>

#include "lower_internal.h"

Value b_attention(Lower *L, Scope *s, const Expr *call, Args *a) {
    int qkv[3] = {T(0, "q"), T(1, "k"), T(2, "v")};
    if (a->given[3] && a->v[3].k != V_BOOL)
        diag_error(arg_loc(L, s, call, a, 3), "attention: argument 'causal' must be true or false, found %s",
                   kind_name(a->v[3].k));
    const Shape *q = &L->g->nodes[qkv[0]].shape;
    double scale = 1 / sqrt((double)(q->rank > 0 ? q->d[q->rank - 1] : 1));
    scale = arg_num(L, s, call, a, 4, "scale", scale);
    if (!isfinite(scale) || scale == 0)
        diag_error(arg_loc(L, s, call, a, 4), "attention: 'scale' must be a finite nonzero number, found %g", scale);
    int causal = a->given[3] && a->v[3].i;
    return vtensor(graph_add(L->g, OP_attention, qkv, 3, ATTRS(AF(A_SCALE, scale), AI(A_CAUSAL, causal)), LOCE));
}
