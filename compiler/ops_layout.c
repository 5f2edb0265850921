/* ops_layout.c - rules of the layout ops: reshape (a view: same data, new shape) and
 * expand (broadcast to a larger shape). Both carry their target shape in the node. */
#include <string.h>

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
    int off = t->rank - s->rank;
    int64_t total = shape_numel(t);
    for (int64_t k = 0; k < total; k++) {
        int64_t rem = k, src = 0, stride = 1;
        for (int i = t->rank - 1; i >= 0; i--) {
            int64_t idx = rem % t->d[i];
            rem /= t->d[i];
            int si = i - off;
            if (si >= 0) {
                if (s->d[si] != 1) src += idx * stride;
                stride *= s->d[si];
            }
        }
        out[k] = in[0][src];
    }
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
const OpRules rules_expand = {.shape = s_expand, .grad = g_expand, .eval = e_expand, .cases = c_expand};
