/* ops_argmax.c - rules of argmax: the index of the first maximum along one axis, as an
 * i32 tensor with that axis removed (PyTorch's argmax(x, dim)). The result is an integer
 * label, not a function to differentiate: its gradient rule is "none", as one_hot's is,
 * so a loss may read it (through one_hot) and the parameters before it simply get no
 * gradient from that path. The first maximum wins, so ties are deterministic. */
#include "ops.h"

#define X(id) (&g->nodes[id])

static const char *s_argmax(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    char a[96];
    int axis = axis_norm((int)attr_i(n, A_AXIS), x->shape.rank);
    if (x->dtype != DT_F32)
        return shape_err(g, "argmax needs an f32 tensor, found %s", shape_str(&x->shape, x->dtype, a, sizeof a));
    if (axis < 0) return shape_err(g, "argmax: axis %lld out of range", (long long)attr_i(n, A_AXIS));
    if ((x->shape.bmask >> axis) & 1) return shape_err(g, "argmax: axis %d holds the batch", axis);
    attr_set_i(n, A_AXIS, axis);
    n->shape = x->shape;
    n->shape.rank--;
    for (int i = axis; i < n->shape.rank; i++) n->shape.d[i] = x->shape.d[i + 1];
    uint8_t low = (uint8_t)(x->shape.bmask & ((1u << axis) - 1));
    n->shape.bmask = (uint8_t)(low | ((x->shape.bmask >> (axis + 1)) << axis));
    n->dtype = DT_I32;
    return NULL;
}

static void e_argmax(const Graph *g, const Node *n, double *const *in, double *out) {
    const Shape *s = &X(n->in[0])->shape;
    int axis = (int)attr_i(n, A_AXIS);
    int64_t outer = 1, len = s->d[axis], inner = 1;
    for (int i = 0; i < axis; i++) outer *= s->d[i];
    for (int i = axis + 1; i < s->rank; i++) inner *= s->d[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            for (int64_t j = 1; j < len; j++)
                if (in[0][(o * len + j) * inner + i] > in[0][(o * len + best) * inner + i]) best = j;
            out[o * inner + i] = (double)best;
        }
}

static void g_none(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

/* Over the last axis of [B, 5] and the middle one of [3, 4, 2]; the checker reads the
 * indices through a table (test_gradcheck.c), and their finite differences are zero. */
static int c_argmax(Graph *g, int i) {
    static const int64_t d0[] = {3, 5}, d1[] = {3, 4, 2};
    if (i > 1) return -1;
    int x = i ? case_param(g, 3, d1, 0, INIT_UNIFORM, -2, 2) : case_param(g, 2, d0, 1, INIT_UNIFORM, -2, 2);
    return graph_add(g, OP_argmax, &x, 1, ATTRS(AI(A_AXIS, 1)), NULL);
}

const OpRules rules_argmax = {
    .shape = s_argmax, .grad = g_none, .eval = e_argmax, .cases = c_argmax, .flags = OPF_ZERO_GRAD};
