/* ops_layout.c - rules of the layout ops: reshape (a view: same data, new shape) and
 * expand (broadcast to a larger shape). Both carry their target shape in the node. */
#include <string.h>

#include "emit.h"
#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* ---- reshape: element count kept, the batch dimension (if any) kept whole ---- */
static const char *s_reshape(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    int64_t xc, xb, yc, yb;
    int nb = 0;
    for (int i = 0; i < n->shape.rank; i++) nb += (n->shape.bmask >> i) & 1;
    if (nb > 1) return shape_err(g, "reshape: a shape can have only one batch dimension B");
    shape_numel_affine(&x->shape, &xc, &xb);
    shape_numel_affine(&n->shape, &yc, &yb);
    if (xc != yc || xb != yb) {
        char a[96], b[96];
        shape_str(&x->shape, x->dtype, a, sizeof a);
        shape_str(&n->shape, x->dtype, b, sizeof b);
        if ((xb != 0) != (yb != 0))
            return shape_err(g, "reshape: cannot reshape %s to %s: the batch dimension B must stay a dimension of its own", a, b);
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
    static const int64_t a[] = {3, 4}, b[] = {2, 6}, c[] = {2, 3, 2}, d[] = {2, 6, 1};
    int x;
    switch (i) {
    case 0: x = case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1); return ir_reshape(g, x, shape_make(2, b, 0), NULL);
    case 1: x = case_param(g, 3, c, 1, INIT_UNIFORM, -1, 1); return ir_reshape(g, x, shape_make(3, d, 1), NULL);
    default: return -1;
    }
}
const OpRules rules_reshape = {.shape = s_reshape, .grad = g_reshape, .eval = e_copy, .cases = c_reshape};

/* ---- expand: right-aligned broadcast of the input to the node's shape ---- */
static const char *s_expand(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const Shape *s = &x->shape, *t = &n->shape;
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
const OpRules rules_expand = {.shape = s_expand, .grad = g_expand, .eval = e_expand, .cases = c_expand,
                              .flags = OPF_RECOMPUTE};

/* ---- transpose: out.d[i] = x.d[perm[i]]; perm packed 3 bits per axis in iattr0 ---- */

static int perm_at(const Node *n, int i) { return (int)((n->iattr[0] >> (3 * i)) & 7); }

static const char *s_transpose(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    int r = x->shape.rank, seen = 0;
    for (int i = 0; i < r; i++) seen |= 1 << perm_at(n, i);
    if (seen != (1 << r) - 1 || (n->iattr[0] >> (3 * r)) != 0)
        return shape_err(g, "transpose: the axes must be a permutation of 0..%d", r - 1);
    n->shape.rank = r;
    n->shape.bmask = 0;
    for (int i = 0; i < r; i++) {
        n->shape.d[i] = x->shape.d[perm_at(n, i)];
        if ((x->shape.bmask >> perm_at(n, i)) & 1) n->shape.bmask |= (uint8_t)(1u << i);
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
            src += (rem % ys->d[i]) * xst[perm_at(n, i)];
            rem /= ys->d[i];
        }
        out[k] = in[0][src];
    }
}

/* Nested loops over the output's dims, reading x at the permuted strides. */
static void emit_transpose_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int r = n->shape.rank;
    const char *xst[IR_MAX_RANK], *yst[IR_MAX_RANK];
    const char *one = "1";
    for (int i = r - 1; i >= 0; i--) {
        xst[i] = i == r - 1 ? one : arena_printf(e->arena, "%s*%s", xst[i + 1], emit_dim(e, n->in[0], i + 1));
        yst[i] = i == r - 1 ? one : arena_printf(e->arena, "%s*%s", yst[i + 1], emit_dim(e, id, i + 1));
    }
    const char *src = "0", *dst = "0";
    for (int i = 0; i < r; i++) {
        emit(e, "for (long i%d = 0; i%d < (long)(%s); i%d++)", i, i, emit_dim(e, id, i), i);
        e->indent++;
        src = arena_printf(e->arena, "%s + i%d*(%s)", src, i, xst[perm_at(n, i)]);
        dst = arena_printf(e->arena, "%s + i%d*(%s)", dst, i, yst[i]);
    }
    emit(e, "%s[%s] = %s[%s];", emit_buf(e, id), dst, emit_buf(e, n->in[0]), src);
    e->indent -= r;
}

/* CUDA: a thread per output element; the flat index split into the output's dims. */
static void emit_transpose_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int r = n->shape.rank;
    const char *xst[IR_MAX_RANK];
    for (int i = r - 1; i >= 0; i--)
        xst[i] = i == r - 1 ? "1" : arena_printf(e->arena, "%s*%s", xst[i + 1], emit_dim(e, n->in[0], i + 1));
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", NULL);
    emit(e, "long rest = i, src = 0;");
    for (int i = r - 1; i >= 0; i--) {
        const char *d = emit_dim(e, id, i);
        emit(e, "src += (rest %% (long)(%s)) * (%s);", d, xst[perm_at(n, i)]);
        if (i > 0) emit(e, "rest /= (long)(%s);", d);
    }
    emit(e, "%s[i] = %s[src];", emit_buf(e, id), emit_buf(e, n->in[0]));
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}

static int64_t inverse_perm(const Node *n, int r) {
    int64_t p = 0;
    for (int i = 0; i < r; i++) p |= (int64_t)i << (3 * perm_at(n, i));
    return p;
}

static void g_transpose(Graph *g, int node, int gy, int *gx) {
    int64_t ia[4] = {inverse_perm(X(node), X(node)->shape.rank), 0, 0, 0};
    gx[0] = graph_add(g, OP_transpose, &gy, 1, ia, NULL, LOC);
}

static int c_transpose(Graph *g, int i) {
    static const int64_t a[] = {3, 4}, b[] = {2, 3, 4};
    int x;
    int64_t ia[4] = {0};
    switch (i) {
    case 0: x = case_param(g, 2, a, 0, INIT_UNIFORM, -1, 1); ia[0] = 1 | 0 << 3; break;
    case 1: x = case_param(g, 3, b, 0, INIT_UNIFORM, -1, 1); ia[0] = 2 | 0 << 3 | 1 << 6; break;
    case 2: x = case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1); ia[0] = 1 | 2 << 3 | 0 << 6; break;
    default: return -1;
    }
    return graph_add(g, OP_transpose, &x, 1, ia, NULL, NULL);
}

const OpRules rules_transpose = {.shape = s_transpose, .grad = g_transpose, .eval = e_transpose,
                                 .emit_c = emit_transpose_c, .emit_cuda = emit_transpose_cuda,
                                 .cases = c_transpose};

/* ---- slice / pad / concat along one axis: outer x (axis) x inner copies ---- */

static void split3(const Shape *s, int axis, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s->d[i];
    for (int i = axis + 1; i < s->rank; i++) *inner *= s->d[i];
}

static const char *check_axis(Graph *g, Node *n, const Node *x, const char *what) {
    int axis = axis_norm((int)n->iattr[0], x->shape.rank);
    char sh[96];
    if (axis < 0)
        return shape_err(g, "%s: axis %lld is out of range for %s", what, (long long)n->iattr[0],
                         shape_str(&x->shape, x->dtype, sh, sizeof sh));
    if ((x->shape.bmask >> axis) & 1) return shape_err(g, "%s: cannot %s along the batch dimension B", what, what);
    n->iattr[0] = axis;
    return NULL;
}

/* slice: iattr0 axis, iattr1 start, iattr2 end (exclusive) */
static const char *s_slice(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const char *err = check_axis(g, n, x, "slice");
    if (err) return err;
    int64_t len = x->shape.d[n->iattr[0]];
    if (n->iattr[1] < 0 || n->iattr[2] > len || n->iattr[1] >= n->iattr[2])
        return shape_err(g, "slice: [%lld, %lld) is not a non-empty range within 0..%lld", (long long)n->iattr[1],
                         (long long)n->iattr[2], (long long)len);
    n->shape = x->shape;
    n->shape.d[n->iattr[0]] = n->iattr[2] - n->iattr[1];
    n->dtype = x->dtype;
    return NULL;
}

/* pad with zeros: iattr0 axis, iattr1 before, iattr2 after */
static const char *s_pad(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const char *err = check_axis(g, n, x, "pad");
    if (err) return err;
    if (n->iattr[1] < 0 || n->iattr[2] < 0) return shape_err(g, "pad: padding cannot be negative");
    n->shape = x->shape;
    n->shape.d[n->iattr[0]] += n->iattr[1] + n->iattr[2];
    n->dtype = x->dtype;
    return NULL;
}

/* concat(a, b): iattr0 axis; all other dims equal */
static const char *s_concat(Graph *g, Node *n) {
    const Node *a = X(n->in[0]), *b = X(n->in[1]);
    const char *err = check_axis(g, n, a, "concat");
    if (err) return err;
    int ax = (int)n->iattr[0];
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
static void copy_rows(double *dst, const double *src, int64_t outer, int64_t inner, int64_t nd, int64_t ns, int64_t off) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nd; j++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t sj = j - off;
                dst[(o * nd + j) * inner + i] = sj >= 0 && sj < ns ? src[(o * ns + sj) * inner + i] : 0;
            }
}

static void e_slice(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t outer, inner;
    split3(&n->shape, (int)n->iattr[0], &outer, &inner);
    copy_rows(out, in[0], outer, inner, n->shape.d[n->iattr[0]], X(n->in[0])->shape.d[n->iattr[0]], -n->iattr[1]);
}
static void e_pad(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t outer, inner;
    split3(&n->shape, (int)n->iattr[0], &outer, &inner);
    copy_rows(out, in[0], outer, inner, n->shape.d[n->iattr[0]], X(n->in[0])->shape.d[n->iattr[0]], n->iattr[1]);
}
static void e_concat(const Graph *g, const Node *n, double *const *in, double *out) {
    int ax = (int)n->iattr[0];
    int64_t outer, inner, na = X(n->in[0])->shape.d[ax], nb = X(n->in[1])->shape.d[ax], nd = n->shape.d[ax];
    split3(&n->shape, ax, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nd; j++)
            for (int64_t i = 0; i < inner; i++)
                out[(o * nd + j) * inner + i] = j < na ? in[0][(o * na + j) * inner + i] : in[1][(o * nb + j - na) * inner + i];
}

/* C: one memcpy per outer row (and memset for padding). */
static void emit_rows_c(EmitCtx *e, int id, int src, int64_t dst_off, int64_t src_off, int64_t count) {
    const Node *n = &e->g->nodes[id];
    int ax = (int)n->iattr[0];
    const char *outer, *len, *inner, *sl, *si, *so;
    emit_axis_split(e, id, ax, &outer, &len, &inner);
    emit_axis_split(e, src, ax, &so, &sl, &si);
    (void)so, (void)si;
    emit(e, "for (long o = 0; o < (long)(%s); o++)", outer);
    emit(e, "    memcpy(%s + (o * (%s) + %lld) * (%s), %s + (o * (%s) + %lld) * (%s), sizeof(float) * %lld * (%s));",
         emit_buf(e, id), len, (long long)dst_off, inner, emit_buf(e, src), sl, (long long)src_off, inner,
         (long long)count, inner);
}

static void emit_slice_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit_rows_c(e, id, n->in[0], 0, n->iattr[1], n->iattr[2] - n->iattr[1]);
}
static void emit_pad_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "memset(%s, 0, sizeof(float) * (size_t)(%s));", emit_buf(e, id), emit_numel(e, id));
    emit_rows_c(e, id, n->in[0], n->iattr[1], 0, e->g->nodes[n->in[0]].shape.d[n->iattr[0]]);
}
static void emit_concat_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int64_t na = e->g->nodes[n->in[0]].shape.d[n->iattr[0]], nb = e->g->nodes[n->in[1]].shape.d[n->iattr[0]];
    emit_rows_c(e, id, n->in[0], 0, 0, na);
    emit_rows_c(e, id, n->in[1], na, 0, nb);
}

/* CUDA (slice, pad, concat): a thread per output element, its index split into o (outer)
 * x j (along the axis) x in (inner), reading its source's row o. */
static void emit_rows_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, id, (int)n->iattr[0], &outer, &len, &inner);
    (void)outer;
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", NULL);
    emit(e, "const long in = i %% (long)(%s), j = (i / (long)(%s)) %% (long)(%s), o = i / ((long)(%s) * (long)(%s));",
         inner, inner, len, inner, len);
    const char *y = emit_buf(e, id);
    int ax = (int)n->iattr[0];
    if (n->op == OP_concat) {
        int a = n->in[0], b = n->in[1];
        int64_t na = e->g->nodes[a].shape.d[ax], nb = e->g->nodes[b].shape.d[ax];
        emit(e, "%s[i] = j < %lld ? %s[(o * %lld + j) * (%s) + in] : %s[(o * %lld + j - %lld) * (%s) + in];", y,
             (long long)na, emit_buf(e, a), (long long)na, inner, emit_buf(e, b), (long long)nb, (long long)na, inner);
    } else {
        int x = n->in[0];
        int64_t ns = e->g->nodes[x].shape.d[ax];
        if (n->op == OP_slice) {
            emit(e, "%s[i] = %s[(o * %lld + j + %lld) * (%s) + in];", y, emit_buf(e, x), (long long)ns,
                 (long long)n->iattr[1], inner);
        } else {
            emit(e, "const long sj = j - %lld;", (long long)n->iattr[1]);
            emit(e, "%s[i] = sj >= 0 && sj < %lld ? %s[(o * %lld + sj) * (%s) + in] : 0;", y, (long long)ns,
                 emit_buf(e, x), (long long)ns, inner);
        }
    }
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}

static int add3(Graph *g, Op op, int x, int64_t a, int64_t b, int64_t c, const SrcLoc *loc) {
    int64_t ia[4] = {a, b, c, 0};
    return graph_add(g, op, &x, 1, ia, NULL, loc);
}

static void g_slice(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int64_t len = X(n->in[0])->shape.d[n->iattr[0]];
    gx[0] = add3(g, OP_pad, gy, n->iattr[0], n->iattr[1], len - n->iattr[2], LOC);
}
static void g_pad(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int64_t len = X(n->in[0])->shape.d[n->iattr[0]];
    gx[0] = add3(g, OP_slice, gy, n->iattr[0], n->iattr[1], n->iattr[1] + len, LOC);
}
static void g_concat(Graph *g, int node, int gy, int *gx) {
    const Node *n = X(node);
    int ax = (int)n->iattr[0];
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
    int64_t ia[4] = {0};
    switch (i) {
    case 0: in[0] = case_param(g, 3, a, 1, INIT_UNIFORM, -1, 1), in[1] = case_param(g, 3, b, 1, INIT_UNIFORM, -1, 1), ia[0] = 1; break;
    case 1: in[0] = case_param(g, 2, c, 0, INIT_UNIFORM, -1, 1), in[1] = case_param(g, 2, d, 0, INIT_UNIFORM, -1, 1), ia[0] = -1; break;
    default: return -1;
    }
    return graph_add(g, OP_concat, in, 2, ia, NULL, NULL);
}

const OpRules rules_slice = {.shape = s_slice, .grad = g_slice, .eval = e_slice, .emit_c = emit_slice_c,
                             .emit_cuda = emit_rows_cuda, .cases = c_slice};
const OpRules rules_pad = {.shape = s_pad, .grad = g_pad, .eval = e_pad, .emit_c = emit_pad_c, .emit_cuda = emit_rows_cuda,
                           .cases = c_pad};
const OpRules rules_concat = {.shape = s_concat, .grad = g_concat, .eval = e_concat, .emit_c = emit_concat_c,
                              .emit_cuda = emit_rows_cuda, .cases = c_concat};
