/* ops_mask.c - rules of causal_mask: the [T, T] mask of a causal (autoregressive)
 * attention, 1 where key j <= query i + offset, else 0 (numpy's tril).
 *
 * It is a compile-time constant, so it has no gradient; and it is a generator (ops.h)
 * whose value at [i, j] is a comparison of the two indices (%j and %i in its scalar text),
 * so fused groups that read it, as where(mask, scores, -1e9) or a bias added to the
 * scores does, compute it in registers: no T x T buffer exists unless something other
 * than a fused group (a matmul, say) reads it. Its input is the offset, a constant (0
 * from the builtin), which is what lets fusion treat it as a value to recompute. */
#include "ops.h"

#define X(id) (&g->nodes[id])

static const char *s_causal(Graph *g, Node *n) {
    const Node *off = X(n->in[0]);
    if (off->op != OP_const) return shape_err(g, "causal_mask's offset must be a constant");
    if (attr_i(n, A_SIZE) < 1)
        return shape_err(g, "causal_mask needs a size of at least 1, found %lld", (long long)attr_i(n, A_SIZE));
    int64_t d[2] = {attr_i(n, A_SIZE), attr_i(n, A_SIZE)};
    n->shape = shape_make(2, d, 0);
    n->dtype = DT_F32;
    return NULL;
}

static void e_causal(const Graph *g, const Node *n, double *const *in, double *out) {
    (void)g;
    int64_t T = attr_i(n, A_SIZE);
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) out[i * T + j] = (double)j <= (double)i + in[0][0];
}

/* Its input, a scalar, is read at every element. */
static void gen_map_causal(const Shape *out, const Shape *in, const int8_t *m, int8_t *res) {
    (void)out, (void)in, (void)m;
    for (int d = 0; d < IR_MAX_RANK; d++) res[d] = -1;
}

static void g_none(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

static int c_causal(Graph *g, int i) {
    if (i > 1) return -1;
    int off = ir_const(g, 0, 0, NULL);
    return graph_add(g, OP_causal_mask, &off, 1, ATTRS(AI(A_SIZE, i ? 1 : 4)), NULL);
}

const OpRules rules_causal_mask = {.shape = s_causal,
                                   .grad = g_none,
                                   .eval = e_causal,
                                   .gen_expr = "((float)%i <= (float)%j + %0 ? 1.0f : 0.0f)",
                                   .gen_map = gen_map_causal,
                                   .cases = c_causal,
                                   .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};
