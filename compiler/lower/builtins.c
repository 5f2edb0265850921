/* builtins.c - the primitive ops and layer helpers a .mdl can call (see lower_internal.h).
 *
 * Each builtin receives its arguments evaluated and bound to its signature (Args) and
 * returns a Value, adding nodes to the graph through the ir_* helpers. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lower_internal.h"
#include "ops_attrs.h"
#include "rng.h"

/* ---- builtins: primitive ops and layer helpers ---- */

static Value b_unary(Lower *L, Scope *s, const Expr *call, Args *a) {
    return vtensor(ir_unary(L->g, op_by_name(call->name), T(0, "x"), LOCE));
}

/* leaky_relu(x, alpha = 0.01), elu(x, alpha = 1.0): unary ops with one float attribute. */
static Value b_unary_alpha(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double dflt = !strcmp(call->name, "elu") ? 1.0 : 0.01;
    double alpha = arg_num(L, s, call, a, 1, "alpha", dflt);
    return vtensor(graph_add(L->g, op_by_name(call->name), &x, 1, ATTRS(AF(A_ALPHA, alpha)), LOCE));
}

/* maximum / minimum: either operand may be a number (maximum(x, 0)), as with + - * /. */
static Value b_binary(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = as_tensor(L, s, a->v[0], a->e[0], "maximum's and minimum's first argument");
    int y = as_tensor(L, s, a->v[1], a->e[1], "maximum's and minimum's second argument");
    return vtensor(ir_binary(L->g, op_by_name(call->name), x, y, LOCE));
}

/* pow(x, exponent): elementwise x^exponent, a number known at compile time. */
static Value b_pow(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double p = arg_num(L, s, call, a, 1, "exponent", 1);
    return vtensor(graph_add(L->g, OP_pow, &x, 1, ATTRS(AF(A_EXPONENT, p)), LOCE));
}

/* The activations built from primitive ops, PyTorch's definitions:
 *   clamp(x, lo, hi) = minimum(maximum(x, lo), hi)    hardtanh(x, min_val = -1, max_val = 1)
 *   relu6(x) = clamp(x, 0, 6)                        silu(x) = swish(x) = x * sigmoid(x)
 *   hardsigmoid(x) = clamp(x / 6 + 1/2, 0, 1)        hardswish(x) = x * hardsigmoid(x)
 * Each is one fused loop in the generated code, and its gradient comes from those of the
 * primitives (at a kink, the one maximum and minimum give: to their first operand). */
static int clamp_of(Lower *L, Scope *s, const Expr *call, int x, double lo, double hi) {
    if (lo > hi) diag_error(LOCE, "%s: the lower bound %g is above the upper bound %g", call->name, lo, hi);
    int y = ir_binary(L->g, OP_maximum, x, ir_const(L->g, lo, 0, LOCE), LOCE);
    return ir_binary(L->g, OP_minimum, y, ir_const(L->g, hi, 0, LOCE), LOCE);
}
static Value b_activation(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    const char *f = call->name;
    if (!strcmp(f, "clamp"))
        return vtensor(
            clamp_of(L, s, call, x, arg_num(L, s, call, a, 1, "min", 0), arg_num(L, s, call, a, 2, "max", 0)));
    if (!strcmp(f, "hardtanh"))
        return vtensor(
            clamp_of(L, s, call, x, arg_num(L, s, call, a, 1, "min_val", -1), arg_num(L, s, call, a, 2, "max_val", 1)));
    if (!strcmp(f, "relu6")) return vtensor(clamp_of(L, s, call, x, 0, 6));
    if (!strcmp(f, "silu") || !strcmp(f, "swish"))
        return vtensor(ir_binary(g, OP_mul, x, ir_unary(g, OP_sigmoid, x, LOCE), LOCE));
    /* x / 6, not x * (1/6): 6 is exact in float, so the gradient is PyTorch's to the bit */
    int hs = clamp_of(
        L, s, call,
        ir_binary(g, OP_add, ir_binary(g, OP_div, x, ir_const(g, 6, 0, LOCE), LOCE), ir_const(g, 0.5, 0, LOCE), LOCE),
        0, 1);
    if (!strcmp(f, "hardsigmoid")) return vtensor(hs);
    return vtensor(ir_binary(g, OP_mul, x, hs, LOCE)); /* hardswish */
}

/* transpose(x) swapping only the last two axes: matmul reads x with its transpose flag
 * instead of a transposed copy. Returns x's input and sets *t, or returns x. */
static int fold_transpose(const Graph *g, int x, int *t) {
    const Node *n = &g->nodes[x];
    int r = n->shape.rank;
    if (n->op != OP_transpose || r < 2) return x;
    for (int i = 0; i < r - 2; i++)
        if (transpose_perm_at(n, i) != i) return x;
    if (transpose_perm_at(n, r - 2) != r - 1) return x;
    *t = 1;
    return n->in[0];
}

/* Operand x of a batched matmul, given the broadcast batch axes `lead` (rank nl): a
 * matrix when its batch axes are all 1 (shared by every entry: stride 0), else expanded
 * to all of `lead` where it lacks some (a copy). */
static int matmul_operand(Graph *g, int x, const Shape *lead, const SrcLoc *loc) {
    Shape s = g->nodes[x].shape;
    int shared = 1;
    for (int i = 0; i < s.rank - 2; i++) shared &= s.d[i] == 1 && !((s.bmask >> i) & 1);
    if (shared) {
        int64_t d[2] = {s.d[s.rank - 2], s.d[s.rank - 1]};
        return ir_reshape(g, x, shape_make(2, d, (uint8_t)(s.bmask >> (s.rank - 2))), loc);
    }
    Shape to = *lead;
    to.rank = lead->rank + 2;
    to.d[lead->rank] = s.d[s.rank - 2], to.d[lead->rank + 1] = s.d[s.rank - 1];
    to.bmask |= (uint8_t)((s.bmask >> (s.rank - 2)) << lead->rank);
    return ir_expand(g, x, to, loc);
}

/* matmul(a [..., M, K], b [..., K, N]) -> [..., M, N], numpy's: the leading (batch) axes
 * broadcast; transpose(x) of the last two axes is read in place. */
static Value b_matmul(Lower *L, Scope *s, const Expr *call, Args *a) {
    Graph *g = L->g;
    const SrcLoc *loc = LOCE;
    int ta = 0, tb = 0;
    int x = fold_transpose(g, T(0, "a"), &ta), y = fold_transpose(g, T(1, "b"), &tb);
    const Shape *sx = &g->nodes[x].shape, *sy = &g->nodes[y].shape;
    if (sx->rank > 2 || sy->rank > 2) {
        if (sx->rank < 2 || sy->rank < 2) return vtensor(ir_matmul(g, x, y, ta, tb, loc)); /* its error */
        /* numpy's broadcast of the batch axes, right-aligned; B only against B or 1 */
        int nx = sx->rank - 2, ny = sy->rank - 2;
        Shape lead = {0};
        lead.rank = nx > ny ? nx : ny;
        for (int i = 0; i < lead.rank; i++) {
            int ix = i - (lead.rank - nx), iy = i - (lead.rank - ny);
            int64_t dx = ix >= 0 ? sx->d[ix] : 1, dy = iy >= 0 ? sy->d[iy] : 1;
            int bx = ix >= 0 && ((sx->bmask >> ix) & 1), by = iy >= 0 && ((sy->bmask >> iy) & 1);
            if ((dx == dy && bx == by) || (dy == 1 && !by)) {
                lead.d[i] = dx, lead.bmask |= (uint8_t)(bx << i);
            } else if (dx == 1 && !bx) {
                lead.d[i] = dy, lead.bmask |= (uint8_t)(by << i);
            } else {
                char s1[96], s2[96];
                diag_error(loc, "matmul: the batch dimensions of %s and %s cannot be broadcast together",
                           shape_str_at(sx, DT_F32, g->batch, s1, sizeof s1),
                           shape_str_at(sy, DT_F32, g->batch, s2, sizeof s2));
            }
        }
        x = matmul_operand(g, x, &lead, loc), y = matmul_operand(g, y, &lead, loc);
    }
    return vtensor(ir_matmul(g, x, y, ta, tb, loc));
}

static Value b_reduce(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    long long axis = arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int keep = arg_flag(L, s, call, a, 2, "keepdims", 0);
    return vtensor(ir_reduce(L->g, op_by_name(call->name), x, (int)axis, keep, LOCE));
}

/* reshape(x, [B, 1, 28, 28]): B keeps the batch dimension, B * T merges it with a dimension of
 * size T ([B, T, D] -> [B * T, D]) and back; one -1 is inferred. */
static Value b_reshape(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Value *sh = &a->v[1];
    if (sh->k != V_LIST || sh->n < 1 || sh->n > IR_MAX_RANK)
        diag_error(arg_loc(L, s, call, a, 1), "reshape: the shape must be a list of 1 to %d dimensions", IR_MAX_RANK);
    Shape to = {0};
    to.rank = sh->n;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < sh->n; i++) {
        const Value *d = &sh->items[i];
        if (d->k != V_INT || (d->i < 1 && d->i != -1))
            diag_error(arg_loc(L, s, call, a, 1), "reshape: dimension %d must be a positive integer, B or -1", i);
        if (d->i == -1) {
            if (infer >= 0) diag_error(arg_loc(L, s, call, a, 1), "reshape: only one dimension can be -1");
            infer = i;
            continue;
        }
        if (d->i > IR_MAX_NUMEL || known > IR_MAX_NUMEL / d->i)
            diag_error(arg_loc(L, s, call, a, 1),
                       "reshape: the shape has more than the %lld elements a tensor can have", (long long)IR_MAX_NUMEL);
        if (d->bbad || d->bpow < 0 || (d->bpow == 1 && (d->bcoef < 1 || d->bcoef != floor(d->bcoef))))
            diag_error(arg_loc(L, s, call, a, 1),
                       "reshape: dimension %d depends on B but is not B or B times a whole number (B * T)", i);
        to.d[i] = d->i;
        if (d->bpow == 1) to.bmask |= (uint8_t)(1u << i); /* B, or B*T merging the batch with T */
        known *= d->i;
    }
    if (infer >= 0) {
        int64_t total = shape_numel(&L->g->nodes[x].shape);
        if (known == 0 || total % known)
            diag_error(arg_loc(L, s, call, a, 1), "reshape: cannot infer the -1 dimension from %lld elements",
                       (long long)total);
        to.d[infer] = total / known;
    }
    return vtensor(ir_reshape(L->g, x, to, LOCE));
}

/* flatten(x): [B, d1, d2, ...] -> [B, d1*d2*...] */
static Value b_flatten(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Shape sh = L->g->nodes[x].shape;
    if (sh.rank < 1) diag_error(LOCE, "flatten needs a tensor of rank 1 or more, found a scalar");
    if (sh.bmask & ~1u) { /* rows of [784, B] are not samples: keeping axis 0 would move B */
        char b[96];
        diag_error(LOCE, "flatten needs the batch dimension B first, found %s",
                   shape_str_at(&sh, L->g->nodes[x].dtype, L->g->batch, b, sizeof b));
    }
    Shape to = {0};
    to.rank = 2;
    to.d[0] = sh.d[0];
    to.bmask = sh.bmask & 1;
    to.d[1] = 1;
    for (int i = 1; i < sh.rank; i++) to.d[1] *= sh.d[i];
    return vtensor(ir_reshape(L->g, x, to, LOCE));
}

static Value b_one_hot(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "labels");
    int64_t classes = arg_int(L, s, call, a, 1, "classes", 0, 1);
    return vtensor(graph_add(L->g, OP_one_hot, &x, 1, ATTRS(AI(A_CLASSES, classes)), LOCE));
}

/* x - max(x, axis), the max a constant to the gradient: what the log-probabilities below
 * are computed from. logsumexp(x) rounds to the ulp of the largest x, so x - logsumexp(x)
 * would carry that absolute error (6e-5 at a logit of 1000: all of a confident sample's
 * loss of 1e-4); in z the largest entry is exactly 0, logsumexp(z) is the log of a sum in
 * [1, n], and z - logsumexp(z) is as exact as PyTorch's. The max passes no gradient: it
 * cancels from every result, and through max it would only add rounding to the argmax.
 * It costs a pass over x for the max and one storing z, which the logsumexp (two passes)
 * and the backward read. */
static int shifted_by_max(Graph *g, int x, int axis, const SrcLoc *loc) {
    int m = ir_unary(g, OP_stop_gradient, ir_reduce(g, OP_max, x, axis, 1, loc), loc);
    return ir_binary(g, OP_sub, x, m, loc);
}

/* softmax(x, axis) = exp(z - logsumexp(z, axis)), z = x - max(x, axis) */
static Value b_softmax(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int axis = (int)arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int z = shifted_by_max(L->g, x, axis, LOCE);
    int lse = ir_reduce(L->g, OP_logsumexp, z, axis, 1, LOCE);
    return vtensor(ir_unary(L->g, OP_exp, ir_binary(L->g, OP_sub, z, lse, LOCE), LOCE));
}

/* log_softmax(x, axis) = z - logsumexp(z, axis), z = x - max(x, axis) */
static Value b_log_softmax(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int axis = (int)arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int z = shifted_by_max(L->g, x, axis, LOCE);
    int lse = ir_reduce(L->g, OP_logsumexp, z, axis, 1, LOCE);
    return vtensor(ir_binary(L->g, OP_sub, z, lse, LOCE));
}

/* The mean of all elements of x, as a scalar. */
static int mean_all(Graph *g, int x, const SrcLoc *loc) {
    while (g->nodes[x].shape.rank > 0) x = ir_reduce(g, OP_mean, x, 0, 0, loc);
    return x;
}

/* mse(prediction, target) = mean((prediction - target)^2) over all elements. */
static Value b_mse(Lower *L, Scope *s, const Expr *call, Args *a) {
    int d = ir_binary(L->g, OP_sub, T(0, "prediction"), T(1, "target"), LOCE);
    return vtensor(mean_all(L->g, ir_binary(L->g, OP_mul, d, d, LOCE), LOCE));
}

/* cross_entropy(logits [B, C], labels i32[B], label_smoothing = 0): mean over the batch of
 * logsumexp(z) - sum_k q_k z_k, z = logits - max(logits), with q = (1 - eps) one_hot + eps / C
 * (sum_k q_k = 1, so the max cancels); stable for any logit size. Logits [B, T, C] with labels i32[B, T]: the same per token, the mean
 * over all B*T of them. */
static Value b_cross_entropy(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "logits"), y = T(1, "labels");
    L->ce_logits = x, L->ce_labels = y;
    double eps = arg_num(L, s, call, a, 2, "label_smoothing", 0.0);
    if (eps < 0 || eps >= 1) diag_error(arg_loc(L, s, call, a, 2), "cross_entropy: label_smoothing must be in [0, 1)");
    Graph *g = L->g;
    const Node *xn = &g->nodes[x], *yn = &g->nodes[y];
    char s1[96], s2[96];
    int r = xn->shape.rank, same = r >= 2 && yn->shape.rank == r - 1;
    for (int i = 0; same && i < r - 1; i++)
        same = xn->shape.d[i] == yn->shape.d[i] && ((xn->shape.bmask >> i) & 1) == ((yn->shape.bmask >> i) & 1);
    if (!same || yn->dtype != DT_I32 || xn->dtype != DT_F32 || ((xn->shape.bmask >> (r - 1)) & 1))
        diag_error(LOCE,
                   "cross_entropy needs logits f32[N, C] and labels i32[N] (or f32[B, T, C] and i32[B, T]: one "
                   "label per token), found %s and %s",
                   shape_str_at(&xn->shape, xn->dtype, g->batch, s1, sizeof s1),
                   shape_str_at(&yn->shape, yn->dtype, g->batch, s2, sizeof s2));
    const SrcLoc *loc = LOCE;
    int oh = graph_add(g, OP_one_hot, &y, 1, ATTRS(AI(A_CLASSES, g->nodes[x].shape.d[r - 1])), loc);
    if (eps > 0) {
        double c = (double)g->nodes[x].shape.d[r - 1];
        oh = ir_binary(g, OP_add, ir_binary(g, OP_mul, oh, ir_const(g, 1 - eps, 0, loc), loc),
                       ir_const(g, eps / c, 0, loc), loc);
    }
    /* on z = logits - max (shifted_by_max): a well-classified sample's loss is a
     * difference of numbers near 0, not of two near its largest logit */
    int z = shifted_by_max(g, x, r - 1, loc);
    int lse = ir_reduce(g, OP_logsumexp, z, r - 1, 0, loc);
    int picked = ir_reduce(g, OP_sum, ir_binary(g, OP_mul, z, oh, loc), r - 1, 0, loc);
    /* per token: every position counts the same, so the mean over all B*T of them is a
     * mean of means, and B*T never has to be a dimension */
    return vtensor(mean_all(g, ir_binary(g, OP_sub, lse, picked, loc), loc));
}

/* dense(x [B, ..., in], units): x @ weight [in, units] + bias [units] on the last axis. He-uniform weights
 * (suited to the ReLU layers it usually feeds), zero bias. */
static Value b_dense(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int64_t units = arg_int(L, s, call, a, 1, "units", 0, 1);
    int bias = arg_flag(L, s, call, a, 2, "bias", 1);
    const char *scope = scope_name(L, s, "dense", arg_name(L, s, call, a, 3));
    Graph *g = L->g;
    const Shape xs = g->nodes[x].shape;
    char sh[96];
    if (xs.rank < 2 || ((xs.bmask >> (xs.rank - 1)) & 1) || g->nodes[x].dtype != DT_F32)
        diag_error(LOCE, "dense needs an input f32[..., features] of rank 2 or more, found %s",
                   shape_str_at(&xs, g->nodes[x].dtype, g->batch, sh, sizeof sh));
    int64_t fan_in = xs.d[xs.rank - 1];
    /* [B, T, in] is applied to the last axis, as one GEMM over B*T rows ([B*T, in] is a
     * view), so its bias and activation still run as that GEMM's epilogue */
    Shape full = xs;
    full.d[full.rank - 1] = units;
    if (xs.rank > 2) {
        int64_t rows[2] = {shape_numel(&xs) / fan_in, fan_in};
        x = ir_reshape(g, x, shape_make(2, rows, xs.bmask ? 1 : 0), LOCE);
    }
    int64_t wd[2] = {fan_in, units};
    double lim = sqrt(6.0 / (double)fan_in);
    int w = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(2, wd, 0), INIT_UNIFORM,
                       -lim, lim);
    int y = ir_matmul(g, x, w, 0, 0, LOCE);
    if (bias) {
        int b = make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), shape_make(1, &units, 0), INIT_ZERO,
                           0, 0);
        y = ir_binary(g, OP_add, y, b, LOCE);
    }
    return vtensor(ir_reshape(g, y, full, LOCE));
}

/* An int, or a list [h, w] of two: kernel sizes, strides, paddings. */
static void arg_pair(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, int64_t dflt,
                     int64_t lo, int64_t out[2]) {
    out[0] = out[1] = dflt;
    if (!a->given[i]) return;
    const Value *v = &a->v[i];
    const char *what = arena_printf(L->a, "%s: '%s'", call->name, name);
    check_known(L, s, v, &a->e[i]->loc, what);
    for (int k = 0; v->k == V_LIST && k < v->n; k++) check_known(L, s, &v->items[k], &a->e[i]->loc, what);
    if (v->k == V_INT && v->i >= lo && v->i < 65536) {
        out[0] = out[1] = v->i;
        return;
    }
    if (v->k == V_LIST && v->n == 2 && v->items[0].k == V_INT && v->items[1].k == V_INT && v->items[0].i >= lo &&
        v->items[1].i >= lo && v->items[0].i < 65536 && v->items[1].i < 65536) {
        out[0] = v->items[0].i, out[1] = v->items[1].i;
        return;
    }
    diag_error(arg_loc(L, s, call, a, i), "%s: '%s' must be an integer from %lld to 65535, or a list [h, w] of two",
               call->name, name, (long long)lo);
}

/* The shape of tensor x, which call needs as an image batch [B, C, H, W] (B itself, not
 * B * T): an error at the call otherwise. */
static Shape image_shape(Lower *L, Scope *s, const Expr *call, int x) {
    const Graph *g = L->g;
    Shape xs = g->nodes[x].shape;
    char sh[96];
    if (xs.rank != 4 || xs.bmask != 1 || xs.d[0] != g->batch) {
        /* flat images, [B, H*W]: say how to make them a batch of images */
        int64_t side = xs.rank == 2 && xs.bmask == 1 ? (int64_t)llround(sqrt((double)xs.d[1])) : 0;
        const char *hint = side > 1 && side * side == xs.d[1]
                               ? arena_printf(L->a, "reshape it first: reshape(x, [B, 1, %lld, %lld])", (long long)side,
                                              (long long)side)
                               : NULL;
        diag_error_hint(LOCE, hint, "%s needs an input of shape [B, C, H, W], found %s", call->name,
                        shape_str_at(&xs, g->nodes[x].dtype, g->batch, sh, sizeof sh));
    }
    return xs;
}

/* A 1-D layer's size argument: an integer (a pair is a 2-D layer's). */
static void arg_single(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, int64_t dflt,
                       int64_t lo, int64_t out[2]) {
    out[0] = lo > 0 ? 1 : 0; /* the 1-D layer's height: one row, no padding */
    out[1] = dflt;
    if (!a->given[i]) return;
    check_known(L, s, &a->v[i], &a->e[i]->loc, arena_printf(L->a, "%s: '%s'", call->name, name));
    if (a->v[i].k != V_INT || a->v[i].i < lo || a->v[i].i > 65535)
        diag_error(arg_loc(L, s, call, a, i), "%s: '%s' must be an integer from %lld to 65535", call->name, name,
                   (long long)lo);
    out[1] = a->v[i].i;
}

/* x [B, C, L] as [B, C, 1, L], for the 1-D layers, which are the 2-D ones on one row. */
static int as_row_image(Lower *L, Scope *s, const Expr *call, int x) {
    Graph *g = L->g;
    const Shape *xs = &g->nodes[x].shape;
    char sh[96];
    if (xs->rank != 3 || xs->bmask != 1)
        diag_error(LOCE, "%s needs an input of shape [B, C, L], found %s", call->name,
                   shape_str(xs, g->nodes[x].dtype, sh, sizeof sh));
    int64_t d[4] = {xs->d[0], xs->d[1], 1, xs->d[2]};
    return ir_reshape(g, x, shape_make(4, d, 1), LOCE);
}

/* [B, C, 1, L] back to [B, C, L]. */
static int from_row_image(Lower *L, Scope *s, const Expr *call, int y) {
    const Shape *ys = &L->g->nodes[y].shape;
    int64_t d[3] = {ys->d[0], ys->d[1], ys->d[3]};
    return ir_reshape(L->g, y, shape_make(3, d, 1), LOCE);
}

/* conv2d(x [B, C, H, W], channels, kernel, stride = 1, pad = 0, dilation = 1, groups = 1,
 * bias = true, name): creates <name>.weight [channels, C/groups, kh, kw] (He-uniform) and
 * <name>.bias [channels] (zeros). conv1d(x [B, C, L], ...) is conv2d on [B, C, 1, L] with a
 * [1, kernel] window; its weight is [channels, C/groups, kernel], as PyTorch's Conv1d's. */
static Value b_conv2d(Lower *L, Scope *s, const Expr *call, Args *a) {
    int one_d = !strcmp(call->name, "conv1d");
    int x = T(0, "x");
    Graph *g = L->g;
    if (one_d) x = as_row_image(L, s, call, x);
    Shape xs = image_shape(L, s, call, x);
    int64_t C = xs.d[1];
    int64_t O = arg_int(L, s, call, a, 1, "channels", 0, 1);
    int64_t k[2], st[2], pd[2], dl[2];
    void (*pair)(Lower *, Scope *, const Expr *, const Args *, int, const char *, int64_t, int64_t, int64_t[2]) =
        one_d ? arg_single : arg_pair;
    pair(L, s, call, a, 2, "kernel", 1, 1, k);
    pair(L, s, call, a, 3, "stride", 1, 1, st);
    pair(L, s, call, a, 4, "pad", 0, 0, pd);
    pair(L, s, call, a, 5, "dilation", 1, 1, dl);
    int64_t G = arg_int(L, s, call, a, 6, "groups", 1, 1);
    int bias = arg_flag(L, s, call, a, 7, "bias", 1);
    if (C % G || O % G)
        diag_error(LOCE, "%s: %lld input and %lld output channels are not divisible by groups = %lld", call->name,
                   (long long)C, (long long)O, (long long)G);
    const char *scope = scope_name(L, s, "conv", arg_name(L, s, call, a, 8));
    int64_t wd[4] = {O, C / G, k[0], k[1]};
    double lim = sqrt(6.0 / (double)(C / G * k[0] * k[1]));
    int w = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope),
                       one_d ? shape_make(3, (int64_t[3]){O, C / G, k[1]}, 0) : shape_make(4, wd, 0), INIT_UNIFORM,
                       -lim, lim);
    if (one_d) w = ir_reshape(g, w, shape_make(4, wd, 0), LOCE);
    int in[2] = {x, w};
    int y = graph_add(
        g, OP_conv2d, in, 2,
        ATTRS(AP(A_STRIDE, st[0], st[1]), AP(A_PAD, pd[0], pd[1]), AP(A_DILATION, dl[0], dl[1]), AI(A_GROUPS, G)),
        LOCE);
    if (bias) {
        int b =
            make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), shape_make(1, &O, 0), INIT_ZERO, 0, 0);
        int64_t bd[3] = {O, 1, 1};
        y = ir_binary(g, OP_add, y, ir_reshape(g, b, shape_make(3, bd, 0), LOCE), LOCE);
    }
    return vtensor(one_d ? from_row_image(L, s, call, y) : y);
}

/* conv_transpose2d(x [B, C, H, W], channels, kernel, stride = 1, pad = 0, output_pad = 0,
 * dilation = 1, groups = 1, bias = true, name): the adjoint of conv2d (its input gradient,
 * the op conv2d_bwd_data), output [B, channels, Ho, Wo] with
 * Ho = (H - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1. The weight is
 * <name>.weight [C, channels/groups, kh, kw], PyTorch's ConvTranspose2d layout, He-uniform
 * over PyTorch's fan-in (channels/groups * kh * kw); <name>.bias [channels] zeros. */
static Value b_conv_transpose2d(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    Shape xs = image_shape(L, s, call, x);
    int64_t C = xs.d[1];
    int64_t O = arg_int(L, s, call, a, 1, "channels", 0, 1);
    int64_t k[2], st[2], pd[2], op[2], dl[2];
    arg_pair(L, s, call, a, 2, "kernel", 1, 1, k);
    arg_pair(L, s, call, a, 3, "stride", 1, 1, st);
    arg_pair(L, s, call, a, 4, "pad", 0, 0, pd);
    arg_pair(L, s, call, a, 5, "output_pad", 0, 0, op);
    arg_pair(L, s, call, a, 6, "dilation", 1, 1, dl);
    int64_t G = arg_int(L, s, call, a, 7, "groups", 1, 1);
    int bias = arg_flag(L, s, call, a, 8, "bias", 1);
    if (C % G || O % G)
        diag_error(LOCE, "conv_transpose2d: %lld input and %lld output channels are not divisible by groups = %lld",
                   (long long)C, (long long)O, (long long)G);
    int64_t hw[2];
    for (int i = 0; i < 2; i++) {
        /* PyTorch also takes an output_pad below the dilation alone: rows past the forward
         * convolution's reach, which conv2d_bwd_data's kernels do not produce */
        if (op[i] >= st[i])
            diag_error(arg_loc(L, s, call, a, 5),
                       "conv_transpose2d: output_pad must be below the stride, found output_pad %lldx%lld with stride "
                       "%lldx%lld",
                       (long long)op[0], (long long)op[1], (long long)st[0], (long long)st[1]);
        hw[i] = (xs.d[2 + i] - 1) * st[i] - 2 * pd[i] + dl[i] * (k[i] - 1) + op[i] + 1; /* each term < 2^32 */
        if (hw[i] < 1)
            diag_error(LOCE, "conv_transpose2d: pad %lld leaves no output from a %lldx%lld input", (long long)pd[i],
                       (long long)xs.d[2], (long long)xs.d[3]);
    }
    const char *scope = scope_name(L, s, "conv_transpose", arg_name(L, s, call, a, 9));
    int64_t wd[4] = {C, O / G, k[0], k[1]};
    double lim = sqrt(6.0 / (double)(O / G * k[0] * k[1]));
    int w = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(4, wd, 0), INIT_UNIFORM,
                       -lim, lim);
    int in[2] = {x, w};
    int y = graph_add(g, OP_conv2d_bwd_data, in, 2,
                      ATTRS(AP(A_STRIDE, st[0], st[1]), AP(A_PAD, pd[0], pd[1]), AP(A_DILATION, dl[0], dl[1]),
                            AI(A_GROUPS, G), AP(A_IN_SIZE, hw[0], hw[1])),
                      LOCE);
    if (bias) {
        int b =
            make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), shape_make(1, &O, 0), INIT_ZERO, 0, 0);
        int64_t bd[3] = {O, 1, 1};
        y = ir_binary(g, OP_add, y, ir_reshape(g, b, shape_make(3, bd, 0), LOCE), LOCE);
    }
    return vtensor(y);
}

/* max_pool2d / avg_pool2d(x, kernel, stride = kernel, pad = 0), and max_pool1d /
 * avg_pool1d on [B, C, L] (the 2-D pools on one row). */
static Value b_pool(Lower *L, Scope *s, const Expr *call, Args *a) {
    int one_d = strstr(call->name, "1d") != NULL;
    int x = T(0, "x");
    if (one_d) x = as_row_image(L, s, call, x);
    void (*pair)(Lower *, Scope *, const Expr *, const Args *, int, const char *, int64_t, int64_t, int64_t[2]) =
        one_d ? arg_single : arg_pair;
    int64_t k[2], st[2], pd[2];
    pair(L, s, call, a, 1, "kernel", 1, 1, k);
    pair(L, s, call, a, 2, "stride", 0, 1, st);
    if (!a->given[2]) st[0] = k[0], st[1] = k[1];
    pair(L, s, call, a, 3, "pad", 0, 0, pd);
    Op op = !strncmp(call->name, "max", 3) ? OP_max_pool2d : OP_avg_pool2d;
    int y = graph_add(L->g, op, &x, 1,
                      ATTRS(AP(A_KERNEL, k[0], k[1]), AP(A_STRIDE, st[0], st[1]), AP(A_PAD, pd[0], pd[1])), LOCE);
    return vtensor(one_d ? from_row_image(L, s, call, y) : y);
}

/* global_avg_pool(x [B, C, H, W]) -> [B, C]: the mean of each channel */
static Value b_global_avg_pool(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    Shape xs = image_shape(L, s, call, x);
    int64_t d[3] = {xs.d[0], xs.d[1], xs.d[2] * xs.d[3]};
    int r = ir_reshape(g, x, shape_make(3, d, 1), LOCE);
    return vtensor(ir_reduce(g, OP_mean, r, 2, 0, LOCE));
}

/* upsample(x [B, C, H, W], factor = 2, mode = "nearest"): nearest-neighbour upsampling, each pixel repeated
 * factor times along H and W (`factor` an integer or [fh, fw]). No op of its own: a
 * reshape to [B, C, H, 1, W, 1], an expand to [B, C, H, fh, W, fw] and a reshape back, so
 * it fuses into what reads it and its gradient is expand's (a sum over each block). */
static Value b_upsample(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    Shape xs = image_shape(L, s, call, x);
    int64_t f[2];
    arg_pair(L, s, call, a, 1, "factor", 2, 1, f); /* a size past the tensor limit: graph_push says so */
    int bilinear = upsample_mode_bilinear(L, s, call, a, 2, x, f); /* builtins_resample.c */
    if (bilinear >= 0) return vtensor(bilinear);
    int64_t d6[6] = {xs.d[0], xs.d[1], xs.d[2], 1, xs.d[3], 1};
    int r = ir_reshape(g, x, shape_make(6, d6, 1), LOCE);
    d6[3] = f[0], d6[5] = f[1];
    int e = ir_expand(g, r, shape_make(6, d6, 1), LOCE);
    int64_t d4[4] = {xs.d[0], xs.d[1], xs.d[2] * f[0], xs.d[3] * f[1]};
    return vtensor(ir_reshape(g, e, shape_make(4, d4, 1), LOCE));
}

/* transpose(x, axes = reversed) */
static Value b_transpose(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int r = L->g->nodes[x].shape.rank;
    AttrVal perm = {0};
    if (!a->given[1]) {
        for (int i = 0; i < r; i++) perm.perm[i] = (int8_t)(r - 1 - i);
    } else {
        const Value *v = &a->v[1];
        if (v->k != V_LIST || v->n != r)
            diag_error(arg_loc(L, s, call, a, 1), "transpose: 'axes' must list all %d axes", r);
        for (int i = 0; i < r; i++) {
            check_known(L, s, &v->items[i], &a->e[1]->loc, "transpose: an axis");
            if (v->items[i].k != V_INT)
                diag_error(arg_loc(L, s, call, a, 1), "transpose: item %d of 'axes' must be an integer, found %s", i,
                           kind_name(v->items[i].k));
            if (v->items[i].i < -r || v->items[i].i >= r) /* checked before narrowing: 2^32 is not axis 0 */
                diag_error(arg_loc(L, s, call, a, 1),
                           "transpose: %lld (item %d of 'axes') is not an axis of a rank-%d tensor",
                           (long long)v->items[i].i, i, r);
            perm.perm[i] = (int8_t)axis_norm((int)v->items[i].i, r);
        }
    }
    return vtensor(graph_add(L->g, OP_transpose, &x, 1, ATTRS(AV(A_PERM, perm)), LOCE));
}

/* slice(x, axis, start, end) */
static Value b_slice(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int64_t axis = arg_int(L, s, call, a, 1, "axis", 0, -IR_MAX_RANK), start = arg_int(L, s, call, a, 2, "start", 0, 0),
            end = arg_int(L, s, call, a, 3, "end", 0, 1);
    return vtensor(graph_add(L->g, OP_slice, &x, 1, ATTRS(AI(A_AXIS, axis), AI(A_START, start), AI(A_END, end)), LOCE));
}

/* pad(x, [[before, after], ...]): zeros, one pair per leading axis */
static Value b_pad(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Value *v = &a->v[1];
    int r = L->g->nodes[x].shape.rank;
    if (v->k != V_LIST || v->n > r)
        diag_error(arg_loc(L, s, call, a, 1), "pad: 'widths' must be a list of at most %d [before, after] pairs", r);
    for (int i = 0; i < v->n; i++) {
        const Value *p = &v->items[i];
        for (int k = 0; p->k == V_LIST && k < p->n; k++) check_known(L, s, &p->items[k], &a->e[1]->loc, "pad: a width");
        if (p->k != V_LIST || p->n != 2 || p->items[0].k != V_INT || p->items[1].k != V_INT || p->items[0].i < 0 ||
            p->items[1].i < 0 || p->items[0].i > IR_MAX_NUMEL || p->items[1].i > IR_MAX_NUMEL)
            diag_error(arg_loc(L, s, call, a, 1),
                       "pad: width %d must be a pair [before, after] of integers from 0 to %lld", i,
                       (long long)IR_MAX_NUMEL);
        if (!p->items[0].i && !p->items[1].i) continue;
        x = graph_add(L->g, OP_pad, &x, 1,
                      ATTRS(AI(A_AXIS, i), AI(A_BEFORE, p->items[0].i), AI(A_AFTER, p->items[1].i)), LOCE);
    }
    return vtensor(x);
}

/* concat([a, b, ...], axis) */
static Value b_concat(Lower *L, Scope *s, const Expr *call, Args *a) {
    const Value *v = &a->v[0];
    if (v->k != V_LIST || v->n < 1)
        diag_error(arg_loc(L, s, call, a, 0), "concat: 'tensors' must be a list of tensors");
    int64_t axis = arg_int(L, s, call, a, 1, "axis", 0, -IR_MAX_RANK);
    for (int i = 0; i < v->n; i++)
        if (v->items[i].k != V_TENSOR)
            diag_error(arg_loc(L, s, call, a, 0), "concat: item %d is %s, not a tensor", i, kind_name(v->items[i].k));
    int y = v->items[0].node;
    for (int i = 1; i < v->n; i++) {
        int in[2] = {y, v->items[i].node};
        y = graph_add(L->g, OP_concat, in, 2, ATTRS(AI(A_AXIS, axis)), LOCE);
    }
    return vtensor(y);
}

int make_state(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, double value) {
    int id = graph_add_source(L->g, OP_state, shape, DT_F32, name, loc_at(L, s, loc));
    attr_set_all(&L->g->nodes[id], ATTRS(AI(A_INIT, value != 0 ? INIT_CONST : INIT_ZERO), AF(A_INIT_A, value)));
    return id;
}

/* batch_norm(x [B, C, ...], momentum = 0.1, eps = 1e-5): per channel, over the batch and
 * the spatial positions. Training normalises with the batch's statistics and updates the
 * running mean and (unbiased) variance, state tensors <name>.running_mean / running_var;
 * evaluation uses the running statistics. Scale <name>.weight (ones) and shift
 * <name>.bias (zeros) are trained. */
static Value b_batch_norm(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double mom = arg_num(L, s, call, a, 1, "momentum", 0.1), eps = arg_num(L, s, call, a, 2, "eps", 1e-5);
    if (mom < 0 || mom > 1 || eps <= 0) diag_error(LOCE, "batch_norm: momentum must be in [0, 1] and eps positive");
    Graph *g = L->g;
    const SrcLoc *loc = LOCE;
    Shape xs = g->nodes[x].shape;
    char sh[96];
    if (xs.rank < 2 || !(xs.bmask & 1) || xs.d[0] != g->batch)
        diag_error(loc, "batch_norm needs an input [B, C, ...], found %s",
                   shape_str_at(&xs, g->nodes[x].dtype, g->batch, sh, sizeof sh));
    int64_t C = xs.d[1], HW = 1;
    for (int i = 2; i < xs.rank; i++) HW *= xs.d[i];
    const char *scope = scope_name(L, s, "bn", arg_name(L, s, call, a, 3));
    int64_t d3[3] = {xs.d[0], C, HW}, c3[3] = {1, C, 1};
    Shape chan = shape_make(1, &C, 0), bcast = shape_make(3, c3, 0);
    int xr = ir_reshape(g, x, shape_make(3, d3, 1), loc);
    int gamma = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), chan, INIT_CONST, 1, 0);
    int beta = make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), chan, INIT_ZERO, 0, 0);
    int rmean = make_state(L, s, &call->loc, arena_printf(L->a, "%s.running_mean", scope), chan, 0);
    int rvar = make_state(L, s, &call->loc, arena_printf(L->a, "%s.running_var", scope), chan, 1);
    if (g->mode == MODE_TRAIN) {
        /* Fused: statistics in one op, normalise-scale-shift in another (ops_norm.c). */
        int st = graph_add(g, OP_bn_stats, &xr, 1, NULL, loc);
        int in[4] = {xr, st, gamma, beta};
        int y = graph_add(g, OP_bn_apply, in, 4, ATTRS(AF(A_EPS, eps)), loc);
        for (int r = 0; r < 2; r++) {
            int row = ir_reshape(g, ir_slice(g, st, 0, r, r + 1, loc), chan, loc);
            int upd[2] = {r ? rvar : rmean, row};
            /* the variance: unbiased */
            graph_add(g, OP_ema_update, upd, 2, ATTRS(AF(A_MOMENTUM, mom), AI(A_PER_SAMPLE, HW), AI(A_UNBIASED, r)),
                      loc);
        }
        return vtensor(ir_reshape(g, y, xs, loc));
    }
    /* Evaluation: the running statistics, a few small ops on [C]. */
    int mu = ir_reshape(g, rmean, bcast, loc), var = ir_reshape(g, rvar, bcast, loc);
    int inv = ir_unary(g, OP_rsqrt, ir_binary(g, OP_add, var, ir_const(g, eps, 0, loc), loc), loc);
    int scale = ir_binary(g, OP_mul, inv, ir_reshape(g, gamma, bcast, loc), loc);
    int y = ir_binary(g, OP_mul, ir_binary(g, OP_sub, xr, mu, loc), scale, loc);
    y = ir_binary(g, OP_add, y, ir_reshape(g, beta, bcast, loc), loc);
    return vtensor(ir_reshape(g, y, xs, loc));
}

/* dropout(x, p = 0.5): in training, zeroes each element with probability p and scales
 * the rest by 1/(1-p); in evaluation, the identity. */
static Value b_dropout(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double p = arg_num(L, s, call, a, 1, "p", 0.5);
    if (p < 0 || p >= 1) diag_error(arg_loc(L, s, call, a, 1), "dropout: p must be in [0, 1), found %g", p);
    /* Each dropout draws from its own stream, named like a parameter would be. */
    const char *scope = scope_name(L, s, "dropout", NULL);
    if (L->g->mode != MODE_TRAIN || p == 0) return vtensor(x);
    int64_t stream = (int64_t)(mlc_hash_name(scope) & 0x7fffffffffffffffULL);
    int mask = graph_add(L->g, OP_dropout_mask, &x, 1, ATTRS(AF(A_P, p), AI(A_STREAM, stream)), LOCE);
    return vtensor(ir_binary(L->g, OP_mul, x, mask, LOCE));
}

/* range(n) or range(start, stop, step = 1): the integers from start up to (not including)
 * stop, as in Python; what a `for` loop usually runs over. At most MAX_RANGE of them:
 * every iteration expands its body again. */
enum { MAX_RANGE = 65536 };
static Value b_range(Lower *L, Scope *s, const Expr *call, Args *a) {
    /* By position only, as in Python: the first argument is the start or the stop by how
     * many there are, so no keyword can name it (range(stop = 3) has no start). */
    for (int k = 0; k < call->nargs; k++)
        if (call->args[k].keyword)
            diag_error_hint(loc_at(L, s, &call->args[k].kw_loc),
                            "write range(n), range(start, stop) or range(start, stop, step)",
                            "range takes its arguments by position, found '%s ='", call->args[k].keyword);
    if (!a->given[0]) diag_error(LOCE, "range: missing argument 'n'");
    /* the first argument is named as the docs' forms name it: n in range(n) */
    long long start = arg_int(L, s, call, a, 0, a->given[1] ? "start" : "n", 0, LLONG_MIN), stop = start, step = 1;
    if (a->given[1]) stop = arg_int(L, s, call, a, 1, "stop", 0, LLONG_MIN);
    else start = 0;
    if (a->given[2]) step = arg_int(L, s, call, a, 2, "step", 1, LLONG_MIN);
    if (step == 0) diag_error(arg_loc(L, s, call, a, 2), "range: step must not be 0");
    /* the count in double first: stop - start may not fit in 64 bits */
    double count = ((double)stop - (double)start) / (double)step;
    if (count > MAX_RANGE)
        diag_error(LOCE, "range: %.0f items, more than the %d a range may have", ceil(count), MAX_RANGE);
    eval_charge(L, s, &call->loc, count > 0 ? (long long)ceil(count) : 0); /* before making the list */
    Value v = {.k = V_LIST};
    v.items = ARENA_ARRAY(L->a, Value, count > 0 ? (size_t)ceil(count) : 1);
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
        v.items[v.n++] = vint(i);
        if ((step > 0 && i > LLONG_MAX - step) || (step < 0 && i < LLONG_MIN - step)) break; /* the last one */
    }
    return v;
}

// clang-format off
const Builtin builtins[] = {
    {"relu", b_unary, {{"x"}}},
    {"exp", b_unary, {{"x"}}},
    {"log", b_unary, {{"x"}}},
    {"sqrt", b_unary, {{"x"}}},
    {"rsqrt", b_unary, {{"x"}}},
    {"tanh", b_unary, {{"x"}}},
    {"sigmoid", b_unary, {{"x"}}},
    {"gelu", b_unary, {{"x"}}},
    {"abs", b_unary, {{"x"}}},
    {"sin", b_unary, {{"x"}}},
    {"cos", b_unary, {{"x"}}},
    {"softplus", b_unary, {{"x"}}},
    {"pow", b_pow, {{"x", "exponent"}}},
    {"clamp", b_activation, {{"x", "min", "max"}}},
    {"hardtanh", b_activation, {{"x", "min_val=", "max_val="}}},
    {"relu6", b_activation, {{"x"}}},
    {"silu", b_activation, {{"x"}}},
    {"swish", b_activation, {{"x"}}},
    {"hardsigmoid", b_activation, {{"x"}}},
    {"hardswish", b_activation, {{"x"}}},
    {"leaky_relu", b_unary_alpha, {{"x", "alpha="}}},
    {"elu", b_unary_alpha, {{"x", "alpha="}}},
    {"maximum", b_binary, {{"a", "b"}}},
    {"minimum", b_binary, {{"a", "b"}}},
    {"log_softmax", b_log_softmax, {{"x", "axis="}}},
    {"mse", b_mse, {{"prediction", "target"}}},
    {"matmul", b_matmul, {{"a", "b"}}},
    {"sum", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"mean", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"max", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"logsumexp", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"reshape", b_reshape, {{"x", "shape"}}},
    {"flatten", b_flatten, {{"x"}}},
    {"one_hot", b_one_hot, {{"labels", "classes"}}},
    {"softmax", b_softmax, {{"x", "axis="}}},
    {"cross_entropy", b_cross_entropy, {{"logits", "labels", "label_smoothing="}}},
    {"dense", b_dense, {{"x", "units", "bias=", "name="}}},
    {"conv2d", b_conv2d, {{"x", "channels", "kernel", "stride=", "pad=", "dilation=", "groups=", "bias=", "name="}}},
    {"max_pool2d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"avg_pool2d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"conv_transpose2d", b_conv_transpose2d,
     {{"x", "channels", "kernel", "stride=", "pad=", "output_pad=", "dilation=", "groups=", "bias=", "name="}}},
    {"conv1d", b_conv2d, {{"x", "channels", "kernel", "stride=", "pad=", "dilation=", "groups=", "bias=", "name="}}},
    {"max_pool1d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"avg_pool1d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"global_avg_pool", b_global_avg_pool, {{"x"}}},
    {"upsample", b_upsample, {{"x", "factor=", "mode="}}},
    {"transpose", b_transpose, {{"x", "axes="}}},
    {"slice", b_slice, {{"x", "axis", "start", "end"}}},
    {"pad", b_pad, {{"x", "widths"}}},
    {"concat", b_concat, {{"tensors", "axis"}}},
    {"batch_norm", b_batch_norm, {{"x", "momentum=", "eps=", "name="}}},
    {"dropout", b_dropout, {{"x", "p="}}},
    {"range", b_range, {{"start=", "stop=", "step="}}}, /* all by position: b_range checks */
    /* builtins_tensor.c */
    {"zeros", b_full, {{"shape"}}},
    {"ones", b_full, {{"shape"}}},
    {"full", b_full, {{"shape", "value"}}},
    {"broadcast_to", b_broadcast_to, {{"x", "shape"}}},
    /* sequence models (builtins_seq.c) */
    {"layer_norm", b_layer_norm, {{"x", "axis=", "eps=", "name="}}},
    {"rms_norm", b_rms_norm, {{"x", "eps=", "name="}}},
    {"embedding", b_embedding, {{"ids", "vocab=", "dim=", "name=", "table="}}},
    {"where", b_where, {{"cond", "a", "b"}}},
    {"causal_mask", b_causal_mask, {{"T"}}},
    {"stop_gradient", b_stop_gradient, {{"x"}}},
    {"round_bf16", b_round_bf16, {{"x"}}},
    /* attention (builtins_attention.c) */
    {"attention", b_attention, {{"q", "k", "v", "causal=", "scale="}}},
    /* lang (issue 14): builtins_resample.c */
    {"argmax", b_argmax, {{"x", "axis"}}},
};
// clang-format on
const int nbuiltins = (int)(sizeof builtins / sizeof builtins[0]);
