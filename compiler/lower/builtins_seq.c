/* builtins_seq.c - the builtins sequence models use: layer_norm, rms_norm, embedding,
 * where, causal_mask and stop_gradient (their rows are in the `builtins` table of
 * builtins.c). */
#include <limits.h>
#include <string.h>

#include "lower_internal.h"

/* The norms' axis: the last one only (PyTorch's nn.LayerNorm(D) normalises the trailing
 * dimensions); anything else is an error naming the rank. */
static void norm_axis(Lower *L, Scope *s, const Expr *call, Args *a, int i, int x) {
    const Node *xn = &L->g->nodes[x];
    long long axis = arg_int(L, s, call, a, i, "axis", -1, LLONG_MIN);
    int r = xn->shape.rank, k = axis < -r || axis >= r ? -1 : axis_norm((int)axis, r);
    if (k < 0)
        diag_error(arg_loc(L, s, call, a, i), "%s: axis %lld is out of range for a tensor of rank %d", call->name, axis,
                   r);
    if (k != r - 1)
        diag_error(arg_loc(L, s, call, a, i), "%s normalises the last axis only (axis -1 or %d), found %lld",
                   call->name, r - 1, axis);
}

/* The norm's x: f32 of rank >= 1 whose last axis is not the batch. */
static int norm_input(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Node *xn = &L->g->nodes[x];
    char sh[96];
    if (xn->dtype != DT_F32 || xn->shape.rank < 1 || ((xn->shape.bmask >> (xn->shape.rank - 1)) & 1))
        diag_error(LOCE, "%s needs an input f32[..., D] whose last axis is not the batch, found %s", call->name,
                   shape_str(&xn->shape, xn->dtype, sh, sizeof sh));
    return x;
}

static double norm_eps(Lower *L, Scope *s, const Expr *call, Args *a, int i, double dflt) {
    double eps = arg_num(L, s, call, a, i, "eps", dflt);
    if (!(eps > 0)) diag_error(arg_loc(L, s, call, a, i), "%s: eps must be positive, found %g", call->name, eps);
    return eps;
}

/* layer_norm(x [..., D], axis = -1, eps = 1e-5, name): over the last axis, with a trained
 * scale <name>.weight (ones) and shift <name>.bias (zeros); one op each way (ops_rownorm.c). */
Value b_layer_norm(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = norm_input(L, s, call, a);
    norm_axis(L, s, call, a, 1, x);
    double eps = norm_eps(L, s, call, a, 2, 1e-5);
    const char *scope = scope_name(L, s, "layer_norm", arg_name(L, s, call, a, 3));
    int64_t D = L->g->nodes[x].shape.d[L->g->nodes[x].shape.rank - 1];
    Shape ds = shape_make(1, &D, 0);
    int in[3] = {x, make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), ds, INIT_CONST, 1, 0),
                 make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), ds, INIT_ZERO, 0, 0)};
    return vtensor(graph_add(L->g, OP_layer_norm, in, 3, ATTRS(AF(A_EPS, eps)), LOCE));
}

/* rms_norm(x [..., D], eps = 1e-6, name): x * rsqrt(mean(x^2) + eps) * <name>.weight (ones). */
Value b_rms_norm(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = norm_input(L, s, call, a);
    double eps = norm_eps(L, s, call, a, 1, 1e-6);
    const char *scope = scope_name(L, s, "rms_norm", arg_name(L, s, call, a, 2));
    int64_t D = L->g->nodes[x].shape.d[L->g->nodes[x].shape.rank - 1];
    int in[2] = {x, make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(1, &D, 0),
                               INIT_CONST, 1, 0)};
    return vtensor(graph_add(L->g, OP_rms_norm, in, 2, ATTRS(AF(A_EPS, eps)), LOCE));
}

/* embedding(ids i32[...], vocab, dim, name) -> [..., dim]: rows of <name>.weight
 * [vocab, dim], initialised normal(0, 1) as PyTorch's nn.Embedding; or
 * embedding(ids, table = t) with any f32[V, D] tensor (a param shared with an output
 * projection: both uses' gradients add). Ids outside [0, vocab) are clamped. */
Value b_embedding(Lower *L, Scope *s, const Expr *call, Args *a) {
    int ids = T(0, "ids");
    Graph *g = L->g;
    char sh[96];
    if (g->nodes[ids].dtype != DT_I32)
        diag_error(arg_loc(L, s, call, a, 0), "embedding needs ids i32[...], found %s",
                   shape_str(&g->nodes[ids].shape, g->nodes[ids].dtype, sh, sizeof sh));
    int table;
    if (a->given[4]) {
        table = T(4, "table");
        const Node *t = &g->nodes[table];
        if (t->dtype != DT_F32 || t->shape.rank != 2 || t->shape.bmask)
            diag_error(arg_loc(L, s, call, a, 4), "embedding: table must be f32[vocab, dim], found %s",
                       shape_str(&t->shape, t->dtype, sh, sizeof sh));
        for (int i = 1; i <= 3; i++)
            if (a->given[i])
                diag_error(arg_loc(L, s, call, a, i), "embedding: give either table or vocab, dim and name");
    } else {
        if (!a->given[1] || !a->given[2])
            diag_error(LOCE, "embedding needs vocab and dim (or table = a [vocab, dim] tensor)");
        int64_t d[2] = {arg_int(L, s, call, a, 1, "vocab", 0, 1), arg_int(L, s, call, a, 2, "dim", 0, 1)};
        const char *scope = scope_name(L, s, "embedding", arg_name(L, s, call, a, 3));
        table = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(2, d, 0), INIT_NORMAL,
                           0, 1);
    }
    int in[2] = {table, ids};
    return vtensor(graph_add(g, OP_gather_rows, in, 2, NULL, LOCE));
}

/* where(cond, a, b): a where cond is 1, b where it is 0, broadcasting all three; cond is a
 * mask of 0s and 1s (causal_mask, a comparison). Written cond * a + (1 - cond) * b, one
 * fused loop whose gradient reaches a through the mask and b through its complement; a
 * and b must be finite (0 * inf is NaN): mask with -1e9, not -inf. */
Value b_where(Lower *L, Scope *s, const Expr *call, Args *a) {
    int c = as_tensor(L, s, a->v[0], a->e[0], "where's condition");
    int x = as_tensor(L, s, a->v[1], a->e[1], "where's second argument");
    int y = as_tensor(L, s, a->v[2], a->e[2], "where's third argument");
    Graph *g = L->g;
    const SrcLoc *loc = LOCE;
    for (int k = 0; k < 3; k++) {
        int t = k == 0 ? c : k == 1 ? x : y;
        char sh[96];
        if (g->nodes[t].dtype != DT_F32)
            diag_error(arg_loc(L, s, call, a, k), "where needs f32 arguments, found %s",
                       shape_str(&g->nodes[t].shape, g->nodes[t].dtype, sh, sizeof sh));
    }
    int keep = ir_binary(g, OP_mul, c, x, loc);
    int rest = ir_binary(g, OP_mul, ir_binary(g, OP_sub, ir_const(g, 1, 0, loc), c, loc), y, loc);
    return vtensor(ir_binary(g, OP_add, keep, rest, loc));
}

/* causal_mask(T): the [T, T] mask, 1 where column j <= row i; fused readers compute it
 * from the indices, so it takes no memory (ops_mask.c). */
Value b_causal_mask(Lower *L, Scope *s, const Expr *call, Args *a) {
    int64_t T = arg_int(L, s, call, a, 0, "T", 0, 1);
    int off = ir_const(L->g, 0, 0, LOCE);
    return vtensor(graph_add(L->g, OP_causal_mask, &off, 1, ATTRS(AI(A_SIZE, T)), LOCE));
}

/* stop_gradient(x) and round_bf16(x): one f32 elementwise op each (ops_stop_gradient.c,
 * ops_precision.c); the builtin's name is the op's. */
static Value f32_unary(Lower *L, Scope *s, const Expr *call, Args *a, Op op) {
    int x = T(0, "x");
    char sh[96];
    if (L->g->nodes[x].dtype != DT_F32)
        diag_error(arg_loc(L, s, call, a, 0), "%s needs an f32 tensor, found %s", op_info[op].name,
                   shape_str(&L->g->nodes[x].shape, L->g->nodes[x].dtype, sh, sizeof sh));
    return vtensor(ir_unary(L->g, op, x, LOCE));
}

/* stop_gradient(x): x, through which no gradient flows back. */
Value b_stop_gradient(Lower *L, Scope *s, const Expr *call, Args *a) {
    return f32_unary(L, s, call, a, OP_stop_gradient);
}

/* round_bf16(x): x rounded to bfloat16, its gradient rounded likewise (what --precision
 * bf16 puts around every product, for a value of the user's choice). */
Value b_round_bf16(Lower *L, Scope *s, const Expr *call, Args *a) { return f32_unary(L, s, call, a, OP_round_bf16); }
