/* builtins_resample.c - argmax(x, axis) (an i32 result: predicted classes as a model
 * output) and the bilinear mode of upsample, with the f32 check of every mode (builtins.c
 * keeps the nearest-neighbour one, which needs no op of its own). */
#include <string.h>

#include "lower_internal.h"

/* argmax(x, axis): the index of the first maximum along the axis, i32, the axis removed */
Value b_argmax(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Node *xn = &L->g->nodes[x];
    char sh[96];
    if (xn->dtype != DT_F32)
        diag_error(arg_loc(L, s, call, a, 0), "argmax needs an f32 tensor, found %s",
                   shape_str_at(&xn->shape, xn->dtype, L->g->batch, sh, sizeof sh));
    long long axis = arg_int(L, s, call, a, 1, "axis", 0, -IR_MAX_RANK);
    int ax = axis_norm((int)axis, xn->shape.rank);
    if (ax < 0 || xn->shape.rank < 2)
        diag_error(arg_loc(L, s, call, a, 1), "argmax: axis %lld is not an axis of %s past the batch", axis,
                   shape_str_at(&xn->shape, xn->dtype, L->g->batch, sh, sizeof sh));
    if ((xn->shape.bmask >> ax) & 1)
        diag_error(arg_loc(L, s, call, a, 1), "argmax: axis %lld of %s holds the batch; pick an axis after it", axis,
                   shape_str_at(&xn->shape, xn->dtype, L->g->batch, sh, sizeof sh));
    return vtensor(graph_add(L->g, OP_argmax, &x, 1, ATTRS(AI(A_AXIS, ax)), LOCE));
}

/* upsample(x, factor, mode = "bilinear"): x is [B, C, H, W] (the caller checked). Every
 * mode comes here first, so x's element type is checked here for both: the nearest
 * mode's expand and the bilinear op compute in f32 only (an i32 x would otherwise meet
 * an internal op's error, expand's or upsample_bilinear's). */
int upsample_mode_bilinear(Lower *L, Scope *s, const Expr *call, const Args *a, int mode_arg, int x,
                           const int64_t f[2]) {
    const Node *xn = &L->g->nodes[x];
    char sh[96];
    if (xn->dtype != DT_F32)
        diag_error(arg_loc(L, s, call, a, 0), "upsample needs an f32 tensor, found %s",
                   shape_str_at(&xn->shape, xn->dtype, L->g->batch, sh, sizeof sh));
    const char *mode = arg_str(L, s, call, a, mode_arg, "mode");
    if (!mode || !strcmp(mode, "nearest")) return -1;
    if (strcmp(mode, "bilinear"))
        diag_error_hint(arg_loc(L, s, call, a, mode_arg), "mode = \"nearest\" (the default) or mode = \"bilinear\"",
                        "upsample: unknown mode \"%s\"", mode);
    return graph_add(L->g, OP_upsample_bilinear, &x, 1, ATTRS(AP(A_FACTOR, f[0], f[1])), LOCE);
}
