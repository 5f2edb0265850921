/* ops_labels.c - rules of one_hot: integer class labels i32[...] to f32[..., classes].
 *
 * Labels are data, not functions of parameters, so one_hot's gradient rule is "none".
 * It is also a generator (ops.h): fused groups that read it compute it from the labels
 * in registers, so its own loop (targets/shared/labels.c) only runs when something else
 * reads it.
 * A label outside [0, classes) gives an all-zero row; the runtime rejects such labels
 * when it loads a data set, naming the sample. */
#include "ops.h"

#define X(id) (&g->nodes[id])

static const char *s_one_hot(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    char s[96];
    if (x->dtype != DT_I32)
        return shape_err(g, "one_hot needs i32 labels, found %s", shape_str(&x->shape, x->dtype, s, sizeof s));
    if (attr_i(n, A_CLASSES) < 1)
        return shape_err(g, "one_hot needs at least one class, found %lld", (long long)attr_i(n, A_CLASSES));
    if (x->shape.rank >= IR_MAX_RANK) return shape_err(g, "one_hot: rank too large");
    n->shape = x->shape;
    n->shape.d[n->shape.rank++] = attr_i(n, A_CLASSES);
    n->dtype = DT_F32;
    return NULL;
}

static void e_one_hot(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t m = shape_numel(&X(n->in[0])->shape), c = attr_i(n, A_CLASSES);
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < c; k++) out[i * c + k] = (int64_t)in[0][i] == k;
}

/* As a generator (ops.h): element [i..., k] reads label [i...]; the class index is the
 * output's last dimension, which the label does not have. */
static void gen_map_one_hot(const Shape *out, const Shape *in, const int8_t *m, int8_t *res) {
    (void)out;
    for (int d = 0; d < IR_MAX_RANK; d++) {
        int j = m[d];
        res[d] = (int8_t)(j >= 0 && j < in->rank && (in->d[j] != 1 || ((in->bmask >> j) & 1)) ? j : -1);
    }
}

static void g_none(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

/* Labels come from an i32 input; the checker fills it with values in [0, range). */
static int c_one_hot(Graph *g, int i) {
    if (i > 0) return -1;
    int64_t d[1] = {g->batch};
    int x = graph_add_source(g, OP_input, shape_make(1, d, 1), DT_I32, "label", NULL);
    attr_set_i(&g->nodes[x], A_RANGE, 4);
    return graph_add(g, OP_one_hot, &x, 1, ATTRS(AI(A_CLASSES, 4)), NULL);
}

const OpRules rules_one_hot = {.shape = s_one_hot,
                               .grad = g_none,
                               .eval = e_one_hot,
                               .gen_expr = "(%0 == %i ? 1.0f : 0.0f)",
                               .gen_map = gen_map_one_hot,
                               .cases = c_one_hot,
                               .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};
