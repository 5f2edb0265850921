/* ops_random.c - rules of dropout_mask(x): for each element of x, 0 with probability p
 * (attribute p) and 1/(1-p) otherwise, drawn from the runtime's Philox generator at (the
 * model's seed, attribute stream, counter t << 32 | element; t: the step, and the
 * micro-batch within it under --accum, emit_dropout_counter), so a run is reproduced
 * exactly by its seed, and a resumed run draws what the uninterrupted one would have.
 * The mask does not depend on x's values, only on its shape: its gradient is zero. */
#include "ops.h"
#include "rng.h"

#define X(id) (&g->nodes[id])

static float keep(const Node *n, uint64_t seed, int64_t step, int64_t i) {
    float u = mlc_rng_uniform(seed, (uint64_t)attr_i(n, A_STREAM), ((uint64_t)step << 32) | (uint64_t)i);
    return u >= (float)attr_f(n, A_P) ? (float)(1.0 / (1.0 - attr_f(n, A_P))) : 0.0f;
}

static const char *s_dropout(Graph *g, Node *n) {
    if (!(attr_f(n, A_P) >= 0 && attr_f(n, A_P) < 1))
        return shape_err(g, "dropout: p must be in [0, 1), found %g", attr_f(n, A_P));
    n->shape = X(n->in[0])->shape;
    n->dtype = DT_F32;
    return NULL;
}

/* The interpreter evaluates at seed 1, step 1: the values the first train step draws. */
static void e_dropout(const Graph *g, const Node *n, double *const *in, double *out) {
    (void)in;
    for (int64_t i = 0; i < shape_numel(&n->shape); i++) out[i] = keep(n, 1, 1, i);
    (void)g;
}

static void g_zero(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

static int c_dropout(Graph *g, int i) {
    static const int64_t d[] = {2, 5};
    if (i > 0) return -1;
    int x = case_param(g, 2, d, 1, INIT_UNIFORM, -1, 1);
    return graph_add(g, OP_dropout_mask, &x, 1, ATTRS(AF(A_P, 0.3), AI(A_STREAM, 7)), NULL);
}

const OpRules rules_dropout_mask = {.shape = s_dropout,
                                    .grad = g_zero,
                                    .eval = e_dropout,
                                    .cases = c_dropout,
                                    .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};
