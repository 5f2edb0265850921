/* ops_layout.c - rules of the layout ops: reshape (a view: same data, new shape) and
 * expand (broadcast to a larger shape). Both carry their target shape in the node. */
#include <string.h>

#include "ops.h"
#include "ops_attrs.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* ---- reshape: element count kept, the batch dimension (if any) kept whole ---- */

/* The product of the dimensions before the batch dimension (B, or a merged B*T), or -1
 * without one. Element order is [before][batch][after], each sample's run of elements one
 * block per "before" index, so a reshape keeps every element in its sample exactly when
 * this product (and so the elements per sample after it) is the same on both sides, at
 * every run-time batch: [B * 64, 512] -> [B, 64, 512], or [4, B] -> [1, 4, B] in a matmul.
 * [2, B, 784] -> [B, 1568] or [784, B] -> [B, 784] would read other samples' elements. */
static int64_t before_batch(const Shape *s) {
    int64_t p = 1;
    for (int i = 0; i < s->rank; i++) {
        if ((s->bmask >> i) & 1) return p;
        p *= s->d[i];
    }
    return -1;
}

static const char *s_reshape(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    int64_t xc, xb, yc, yb;
    int nb = 0;
    for (int i = 0; i < n->shape.rank; i++) nb += (n->shape.bmask >> i) & 1;
    if (nb > 1) return shape_err(g, "reshape: a shape can have only one batch dimension B");
    shape_numel_affine(&x->shape, g->batch, &xc, &xb);
    shape_numel_affine(&n->shape, g->batch, &yc, &yb);
    int64_t xp = before_batch(&x->shape), yp = before_batch(&n->shape);
    int moved = xb && xb == yb && xp != yp; /* else the counts differ, said below */
    if (xc != yc || xb != yb || moved) {
        char a[96], b[96];
        shape_str_at(&x->shape, x->dtype, g->batch, a, sizeof a);
        shape_str_at(&n->shape, x->dtype, g->batch, b, sizeof b);
        if ((xb != 0) != (yb != 0))
            return shape_err(
                g, "reshape: cannot reshape %s to %s: the batch dimension B must stay a dimension of its own", a, b);
        if (moved)
            return shape_err(g,
                             "reshape: cannot reshape %s to %s: the dimensions before the batch dimension B "
                             "make %lld, then %lld; they must match (keep B outermost), or samples would mix",
                             a, b, (long long)xp, (long long)yp);
        return shape_err(g, "reshape: cannot reshape %s to %s: element counts differ", a, b);
    }
    n->dtype = x->dtype;
    return NULL;
}
static void e_copy(const Graph *g, const Node *n, double *const *in, double *out) {
    memcpy(out, in[0], sizeof(double) * (size_t)shape_numel(&g->nodes[n->in[0]].shape));
}
static void g_reshape(Graph *g, int node, int gy, int *gx) { gx[0] = ir_reshape(g, gy, X(IN(0))->shape, LOC); }
static int c_reshape(Graph *g, int i) {
    static const int64_t a[] = {3, 4}, b[] = {2, 6}, c[] = {2, 3, 2};
    int x;
    switch (i) {
    case 0: x = case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1); return ir_reshape(g, x, shape_make(2, b, 0), NULL);
    case 1: {
        int64_t to[3] = {g->batch, 6, 1};
        x = case_param(g, 3, c, 1, INIT_UNIFORM, -1, 1);
        return ir_reshape(g, x, shape_make(3, to, 1), NULL);
    }
    case 2: { /* [B, 3, 2] -> [B*3, 2]: the batch merged with the next axis */
        int64_t to[2] = {3 * g->batch, 2};
        x = case_param(g, 3, c, 1, INIT_UNIFORM, -1, 1);
        return ir_reshape(g, x, shape_make(2, to, 1), NULL);
    }
    case 3: { /* [B*3, 2] -> [B, 6]: split and merged again */
        int64_t from[2] = {3 * g->batch, 2}, to[2] = {g->batch, 6};
        x = ir_reshape(g, case_param(g, 3, c, 1, INIT_UNIFORM, -1, 1), shape_make(2, from, 1), NULL);
        return ir_reshape(g, x, shape_make(2, to, 1), NULL);
    }
    default: return -1;
    }
}
const OpRules rules_reshape = {.shape = s_reshape, .grad = g_reshape, .eval = e_copy, .cases = c_reshape};

/* ---- expand: right-aligned broadcast of the input to the node's shape ---- */
static const char *s_expand(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const Shape *s = &x->shape, *t = &n->shape;
    const char *err = shape_need_f32(g, n); /* its loop is an elementwise one (fuse.c) */
    if (err) return err;
    int off = t->rank - s->rank;
    int ok = off >= 0;
    for (int i = 0; ok && i < s->rank; i++) {
        int sb = (s->bmask >> i) & 1, tb = (t->bmask >> (i + off)) & 1;
        if (sb) ok = tb;
        else ok = !tb ? (s->d[i] == t->d[i + off] || s->d[i] == 1) : s->d[i] == 1;
    }
    if (!ok) {
        char a[96], b[96];
        return shape_err(g, "expand: cannot broadcast %s to %s", shape_str(s, x->dtype, a, sizeof a),
                         shape_str(t, x->dtype, b, sizeof b));
    }
    n->dtype = x->dtype;
    return NULL;
}
static void e_expand(const Graph *g, const Node *n, double *const *in, double *out) {
    const Shape *s = &g->nodes[n->in[0]].shape, *t = &n->shape;
    for (int64_t k = 0; k < shape_numel(t); k++) out[k] = in[0][broadcast_index(t, s, k)];
}
static void g_expand(Graph *g, int node, int gy, int *gx) { gx[0] = ir_sum_to(g, gy, X(IN(0))->shape, LOC); }
static int c_expand(Graph *g, int i) {
    static const int64_t a[] = {3, 1}, at[] = {3, 4}, b[] = {4}, bt[] = {2, 3, 4}, c[] = {1, 5}, ct[] = {2, 5};
    int x;
    switch (i) {
    case 0: x = case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1); return ir_expand(g, x, shape_make(2, at, 0), NULL);
    case 1: x = case_param(g, 1, b, 0, INIT_UNIFORM, -1, 1); return ir_expand(g, x, shape_make(3, bt, 0), NULL);
    case 2: x = case_param(g, 2, c, 0, INIT_UNIFORM, -1, 1); return ir_expand(g, x, shape_make(2, ct, 1), NULL);
    default: return -1;
    }
}
const OpRules rules_expand = {.shape = s_expand,
                              .grad = g_expand,
                              .eval = e_expand,
                              .cases = c_expand,
                              .flags = OPF_RECOMPUTE | OPF_KEEPS_FINITE};

/* ---- transpose: out.d[i] = x.d[perm[i]] ---- */

int transpose_perm_at(const Node *n, int i) { return attr_perm_at(n, A_PERM, i); }

static const char *s_transpose(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    int r = x->shape.rank, seen = 0;
    for (int i = 0; i < r; i++) {
        int p = transpose_perm_at(n, i);
        if (p >= 0 && p < r) seen |= 1 << p;
    }
    if (seen != (1 << r) - 1) return shape_err(g, "transpose: the axes must be a permutation of 0..%d", r - 1);
    n->shape.rank = r;
    n->shape.bmask = 0;
    for (int i = 0; i < r; i++) {
        n->shape.d[i] = x->shape.d[transpose_perm_at(n, i)];
        if ((x->shape.bmask >> transpose_perm_at(n, i)) & 1) n->shape.bmask |= (uint8_t)(1u << i);
    }
    n->dtype = x->dtype;
    return NULL;
}

/* Row-major strides of a shape (concrete, B at its compile-time value). */
static void strides(const Shape *s, int64_t *st) {
    int64_t k = 1;
    for (int i = s->rank - 1; i >= 0; i--) st[i] = k, k *= s->d[i];
}

static void e_transpose(const Graph *g, const Node *n, double *const *in, double *out) {
    const Shape *xs = &X(n->in[0])->shape, *ys = &n->shape;
    int64_t xst[IR_MAX_RANK], total = shape_numel(ys);
    strides(xs, xst);
    for (int64_t k = 0; k < total; k++) {
        int64_t rem = k, src = 0;
        for (int i = ys->rank - 1; i >= 0; i--) {
            src += (rem % ys->d[i]) * xst[transpose_perm_at(n, i)];
            rem /= ys->d[i];
        }
        out[k] = in[0][src];
    }
}

static void g_transpose(Graph *g, int node, int gy, int *gx) {
    AttrVal inv = {0}; /* the inverse permutation */
    for (int i = 0; i < X(node)->shape.rank; i++) inv.perm[transpose_perm_at(X(node), i)] = (int8_t)i;
    gx[0] = graph_add(g, OP_transpose, &gy, 1, ATTRS(AV(A_PERM, inv)), LOC);
}

static int c_transpose(Graph *g, int i) {
    static const int64_t a[] = {3, 4}, b[] = {2, 3, 4};
    int x;
    AttrVal perm = {0};
    switch (i) {
    case 0:
        x = case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1);
        perm = (AttrVal){.perm = {1, 0}};
        break;
    case 1:
        x = case_param(g, 3, b, 0, INIT_UNIFORM, -1, 1);
        perm = (AttrVal){.perm = {2, 0, 1}};
        break;
    case 2:
        x = case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1);
        perm = (AttrVal){.perm = {1, 2, 0}};
        break;
    default: return -1;
    }
    return graph_add(g, OP_transpose, &x, 1, ATTRS(AV(A_PERM, perm)), NULL);
}

const OpRules rules_transpose = {
    .shape = s_transpose, .grad = g_transpose, .eval = e_transpose, .cases = c_transpose, .flags = OPF_KEEPS_FINITE};

/* ---- slice / pad / concat along one axis: outer x (axis) x inner copies ---- */

static void split3(const Shape *s, int axis, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s->d[i];
    for (int i = axis + 1; i < s->rank; i++) *inner *= s->d[i];
}

static const char *check_axis(Graph *g, Node *n, const Node *x, const char *what) {
    int axis = axis_norm((int)attr_i(n, A_AXIS), x->shape.rank);
    char sh[96];
    if (axis < 0)
        return shape_err(g, "%s: axis %lld is out of range for %s", what, (long long)attr_i(n, A_AXIS),
                         shape_str(&x->shape, x->dtype, sh, sizeof sh));
    if ((x->shape.bmask >> axis) & 1) return shape_err(g, "%s: cannot %s along the batch dimension B", what, what);
    attr_set_i(n, A_AXIS, axis);
    return NULL;
}

/* slice: [start, end) along axis */
static const char *s_slice(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const char *err = check_axis(g, n, x, "slice");
    if (err) return err;
    int64_t len = x->shape.d[attr_i(n, A_AXIS)];
    if (attr_i(n, A_START) < 0 || attr_i(n, A_END) > len || attr_i(n, A_START) >= attr_i(n, A_END))
        return shape_err(g, "slice: [%lld, %lld) is not a non-empty range within 0..%lld",
                         (long long)attr_i(n, A_START), (long long)attr_i(n, A_END), (long long)len);
    n->shape = x->shape;
    n->shape.d[attr_i(n, A_AXIS)] = attr_i(n, A_END) - attr_i(n, A_START);
    n->dtype = x->dtype;
    return NULL;
}

/* pad with zeros: before and after along axis */
static const char *s_pad(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const char *err = check_axis(g, n, x, "pad");
    if (err) return err;
    int64_t before = attr_i(n, A_BEFORE), after = attr_i(n, A_AFTER);
    if (before < 0 || after < 0) return shape_err(g, "pad: padding cannot be negative");
    /* each width within a dimension's limit, so the sum below cannot wrap; the sum itself
     * is checked against the limit like every op's result */
    if (before > IR_MAX_NUMEL || after > IR_MAX_NUMEL)
        return shape_err(g, "pad: a width must be at most %lld, found %lld", (long long)IR_MAX_NUMEL,
                         (long long)(before > after ? before : after));
    n->shape = x->shape;
    n->shape.d[attr_i(n, A_AXIS)] += before + after;
    n->dtype = x->dtype;
    return NULL;
}

/* concat(a, b): along axis; all other dims equal */
static const char *s_concat(Graph *g, Node *n) {
    const Node *a = X(n->in[0]), *b = X(n->in[1]);
    const char *err = check_axis(g, n, a, "concat");
    if (err) return err;
    int ax = (int)attr_i(n, A_AXIS);
    Shape t = b->shape;
    t.d[ax] = a->shape.d[ax];
    if (!shape_eq(&t, &a->shape) || a->dtype != b->dtype) {
        char x[96], y[96];
        return shape_err(g, "concat: %s and %s differ outside axis %d", shape_str(&a->shape, a->dtype, x, sizeof x),
                         shape_str(&b->shape, b->dtype, y, sizeof y), ax);
    }
    n->shape = a->shape;
    n->shape.d[ax] += b->shape.d[ax];
    n->dtype = a->dtype;
    return NULL;
}

/* Copies src rows [outer][n_src*inner] into dst rows [outer][n_dst*inner] at offset
 * off*inner (pad: src smaller; slice: dst smaller, negative off = start of the source). */
static void copy_rows(double *dst, const double *src, int64_t outer, int64_t inner, int64_t nd, int64_t ns,
                      int64_t off) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nd; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t sj = j - off;
                dst[(o * nd + j) * inner + i] = sj >= 0 && sj < ns ? src[(o * ns + sj) * inner + i] : 0;
            }
}

static void e_slice(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t outer, inner;
    split3(&n->shape, (int)attr_i(n, A_AXIS), &outer, &inner);
    copy_rows(out, in[0], outer, inner, n->shape.d[attr_i(n, A_AXIS)], X(n->in[0])->shape.d[attr_i(n, A_AXIS)],
              -attr_i(n, A_START));
}
static void e_pad(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t outer, inner;
    split3(&n->shape, (int)attr_i(n, A_AXIS), &outer, &inner);
    copy_rows(out, in[0], outer, inner, n->shape.d[attr_i(n, A_AXIS)], X(n->in[0])->shape.d[attr_i(n, A_AXIS)],
              attr_i(n, A_BEFORE));
}
static void e_concat(const Graph *g, const Node *n, double *const *in, double *out) {
    int ax = (int)attr_i(n, A_AXIS);
    int64_t outer, inner, na = X(n->in[0])->shape.d[ax], nb = X(n->in[1])->shape.d[ax], nd = n->shape.d[ax];
    split3(&n->shape, ax, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nd; j++)
            for (int64_t i = 0; i < inner; i++)
                out[(o * nd + j) * inner + i] =
                    j < na ? in[0][(o * na + j) * inner + i] : in[1][(o * nb + j - na) * inner + i];
}

/* slice(x) {axis, start, end} or pad(x) {axis, before, after} */
static int add3(Graph *g, Op op, int x, int64_t axis, int64_t b, int64_t c, const SrcLoc *loc) {
    int slice = op == OP_slice;
    return graph_add(g, op, &x, 1,
                     ATTRS(AI(A_AXIS, axis), AI(slice ? A_START : A_BEFORE, b), AI(slice ? A_END : A_AFTER, c)), loc);
}

static void g_slice(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int64_t len = X(n->in[0])->shape.d[attr_i(n, A_AXIS)];
    gx[0] = add3(g, OP_pad, gy, attr_i(n, A_AXIS), attr_i(n, A_START), len - attr_i(n, A_END), LOC);
}
static void g_pad(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int64_t len = X(n->in[0])->shape.d[attr_i(n, A_AXIS)];
    gx[0] = add3(g, OP_slice, gy, attr_i(n, A_AXIS), attr_i(n, A_BEFORE), attr_i(n, A_BEFORE) + len, LOC);
}
static void g_concat(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int ax = (int)attr_i(n, A_AXIS);
    int64_t na = X(n->in[0])->shape.d[ax], nd = n->shape.d[ax];
    gx[0] = add3(g, OP_slice, gy, ax, 0, na, LOC);
    gx[1] = add3(g, OP_slice, gy, ax, na, nd, LOC);
}

static int c_slice(Graph *g, int i) {
    static const int64_t a[] = {5, 4}, b[] = {2, 3, 6};
    switch (i) {
    case 0: return add3(g, OP_slice, case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1), 0, 1, 4, NULL);
    case 1: return add3(g, OP_slice, case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1), 2, 2, 5, NULL);
    default: return -1;
    }
}
static int c_pad(Graph *g, int i) {
    static const int64_t a[] = {3, 4}, b[] = {2, 3, 2};
    switch (i) {
    case 0: return add3(g, OP_pad, case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1), 1, 2, 1, NULL);
    case 1: return add3(g, OP_pad, case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1), 1, 0, 2, NULL);
    default: return -1;
    }
}
static int c_concat(Graph *g, int i) {
    static const int64_t a[] = {2, 3, 4}, b[] = {2, 2, 4}, c[] = {3, 2}, d[] = {3, 5};
    int in[2];
    int axis;
    switch (i) {
    case 0:
        in[0] = case_param(g, 3, a, 1, INIT_UNIFORM, -1, 1), in[1] = case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1),
        axis = 1;
        break;
    case 1:
        in[0] = case_param(g, 2, c, 0, INIT_UNIFORM, -1, 1), in[1] = case_param(g, 2, d, 0, INIT_UNIFORM, -1, 1),
        axis = -1;
        break;
    default: return -1;
    }
    return graph_add(g, OP_concat, in, 2, ATTRS(AI(A_AXIS, axis)), NULL);
}

const OpRules rules_slice = {
    .shape = s_slice, .grad = g_slice, .eval = e_slice, .cases = c_slice, .flags = OPF_KEEPS_FINITE};
const OpRules rules_pad = {.shape = s_pad, .grad = g_pad, .eval = e_pad, .cases = c_pad, .flags = OPF_KEEPS_FINITE};
const OpRules rules_concat = {
    .shape = s_concat, .grad = g_concat, .eval = e_concat, .cases = c_concat, .flags = OPF_KEEPS_FINITE};
