/* builtins_tensor.c - tensors made from a shape: zeros, ones, full, broadcast_to.
 *
 * A shape may hold B (`zeros([B, 96])`: an initial state, a class token broadcast over the
 * batch), so these cannot be params; they are a scalar constant or a tensor expanded to
 * the shape (op `expand`), which costs no memory of its own when it fuses into its
 * reader, and whose gradient sums back over the broadcast dimensions. */
#include <math.h>
#include <string.h>

#include "lower_internal.h"

/* The shape argument i: a list of positive integers and B (the batch dimension, or B * T). */
static Shape shape_arg(Lower *L, Scope *s, const Expr *call, const Args *a, int i) {
    const Value *sh = &a->v[i];
    if (sh->k != V_LIST || sh->n < 1 || sh->n > IR_MAX_RANK)
        diag_error(arg_loc(L, s, call, a, i), "%s: the shape must be a list of 1 to %d dimensions", call->name,
                   IR_MAX_RANK);
    Shape to = {0};
    to.rank = sh->n;
    int64_t numel = 1;
    for (int k = 0; k < sh->n; k++) {
        const Value *d = &sh->items[k];
        if (d->k != V_INT || d->i < 1)
            diag_error(arg_loc(L, s, call, a, i), "%s: dimension %d must be a positive integer or B", call->name, k);
        if (d->i > IR_MAX_NUMEL || numel > IR_MAX_NUMEL / d->i)
            diag_error(arg_loc(L, s, call, a, i), "%s: the shape has more than the %lld elements a tensor can have",
                       call->name, (long long)IR_MAX_NUMEL);
        if (d->bbad || d->bpow < 0 || d->bpow > 1 || (d->bpow == 1 && (d->bcoef < 1 || d->bcoef != floor(d->bcoef))))
            diag_error(arg_loc(L, s, call, a, i),
                       "%s: dimension %d depends on B but is not B or B times a whole number", call->name, k);
        numel *= d->i;
        to.d[k] = d->i;
        if (d->bpow == 1) to.bmask |= (uint8_t)(1u << k); /* B, or B * T */
    }
    return to;
}

/* zeros(shape), ones(shape), full(shape, value) */
Value b_full(Lower *L, Scope *s, const Expr *call, Args *a) {
    Shape to = shape_arg(L, s, call, a, 0);
    double v = !strcmp(call->name, "ones")   ? 1.0
               : !strcmp(call->name, "full") ? arg_num(L, s, call, a, 1, "value", 0)
                                             : 0.0;
    int c = ir_const(L->g, v, 0, LOCE);
    /* a scalar const expands from rank 0: as a [1, ..., 1] first, as expand reads ranks */
    Shape ones = to;
    for (int k = 0; k < ones.rank; k++) ones.d[k] = 1;
    ones.bmask = 0;
    return vtensor(ir_expand(L->g, ir_reshape(L->g, c, ones, LOCE), to, LOCE));
}

/* broadcast_to(x, shape): x repeated along its size-1 (or missing leading) dimensions, as
 * numpy's broadcast_to. */
Value b_broadcast_to(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Shape to = shape_arg(L, s, call, a, 1);
    const Shape *xs = &L->g->nodes[x].shape;
    char have[96], want[96];
    int ok = xs->rank <= to.rank;
    for (int k = 0; ok && k < xs->rank; k++) {
        int t = to.rank - xs->rank + k;
        ok = xs->d[k] == 1 || (xs->d[k] == to.d[t] && ((xs->bmask >> k) & 1) == ((to.bmask >> t) & 1));
    }
    if (!ok)
        diag_error(LOCE, "broadcast_to: %s does not broadcast to %s (each dimension must be 1 or equal, aligned right)",
                   shape_str(xs, L->g->nodes[x].dtype, have, sizeof have), shape_str(&to, DT_F32, want, sizeof want));
    if (xs->rank < to.rank) { /* missing leading dimensions become size 1 */
        Shape r = {0};
        r.rank = to.rank;
        int off = to.rank - xs->rank;
        for (int k = 0; k < to.rank; k++) r.d[k] = k < off ? 1 : xs->d[k - off];
        r.bmask = (uint8_t)(xs->bmask << off);
        x = ir_reshape(L->g, x, r, LOCE);
    }
    /* a real expand computes in f32 only; said here, as expand's own check names expand */
    if (L->g->nodes[x].dtype != DT_F32 && !shape_eq(&L->g->nodes[x].shape, &to))
        diag_error(arg_loc(L, s, call, a, 0), "broadcast_to needs an f32 tensor to repeat, found %s",
                   shape_str_at(&L->g->nodes[x].shape, L->g->nodes[x].dtype, L->g->batch, have, sizeof have));
    return vtensor(ir_expand(L->g, x, to, LOCE));
}
