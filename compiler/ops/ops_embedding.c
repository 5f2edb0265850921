/* ops_embedding.c - rules of the embedding lookup and its gradient:
 *
 *   gather_rows(table [V, D], ids i32[...])   -> [..., D]: row ids[i...] of the table
 *   scatter_rows(dy [..., D], ids), rows = V  -> [V, D]: each row of dy added into row
 *                                                 ids[i...], in the order of the ids
 *
 * An id outside [0, V) is clamped to the nearest row (0 or V - 1), in the lookup and in
 * its gradient alike, so generated code never reads or writes outside the table; the
 * data loaders are what reject bad ids. The ids get no gradient. The targets add the rows
 * of dy into each column in the order of the ids, never with atomics, so the table's
 * gradient has the same bits on every run and thread count. */
#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

static int64_t clamp_id(double v, int64_t V) { return v < 0 ? 0 : (int64_t)v >= V ? V - 1 : (int64_t)v; }

static const char *s_gather(Graph *g, Node *n) {
    const Node *t = X(n->in[0]), *ids = X(n->in[1]);
    char a[96], b[96];
    if (t->dtype != DT_F32 || t->shape.rank != 2 || t->shape.bmask)
        return shape_err(g, "gather_rows needs a table f32[V, D], found %s",
                         shape_str(&t->shape, t->dtype, a, sizeof a));
    if (ids->dtype != DT_I32)
        return shape_err(g, "gather_rows needs i32 ids, found %s", shape_str(&ids->shape, ids->dtype, b, sizeof b));
    if (ids->shape.rank >= IR_MAX_RANK)
        return shape_err(g, "gather_rows: ids of rank %d, the most is %d", ids->shape.rank, IR_MAX_RANK - 1);
    n->shape = ids->shape;
    n->shape.d[n->shape.rank++] = t->shape.d[1];
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_scatter(Graph *g, Node *n) {
    const Shape *dy = &X(n->in[0])->shape;
    int64_t d[2] = {attr_i(n, A_ROWS), dy->d[dy->rank - 1]};
    n->shape = shape_make(2, d, 0);
    n->dtype = DT_F32;
    return NULL;
}

static void e_gather(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t V = X(n->in[0])->shape.d[0], D = X(n->in[0])->shape.d[1], m = shape_numel(&X(n->in[1])->shape);
    for (int64_t i = 0; i < m; i++) {
        int64_t r = clamp_id(in[1][i], V);
        for (int64_t j = 0; j < D; j++) out[i * D + j] = in[0][r * D + j];
    }
}

static void e_scatter(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t V = attr_i(n, A_ROWS), D = n->shape.d[1], m = shape_numel(&X(n->in[1])->shape);
    for (int64_t k = 0; k < V * D; k++) out[k] = 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t r = clamp_id(in[1][i], V);
        for (int64_t j = 0; j < D; j++) out[r * D + j] += in[0][i * D + j];
    }
}

static void g_gather(Graph *g, int node, int gy, int *gx) {
    int in[2] = {gy, IN(1)};
    gx[0] = graph_add(g, OP_scatter_rows, in, 2, ATTRS(AI(A_ROWS, X(IN(0))->shape.d[0])), LOC);
    gx[1] = -1;
}

/* ids i32[B] and i32[B, 3] from the checker, drawn in [0, V + 2) so that some are clamped
 * to the last row (and that row's gradient collects theirs). */
static int c_gather(Graph *g, int i) {
    if (i > 1) return -1;
    int64_t V = 4, D = 3, td[2] = {V, D}, d[2] = {g->batch, 3};
    int t = case_param(g, 2, td, 0, INIT_UNIFORM, -2, 2);
    int ids = graph_add_source(g, OP_input, shape_make(i + 1, d, 1), DT_I32, "ids", NULL);
    attr_set_i(&g->nodes[ids], A_RANGE, V + 2);
    int in[2] = {t, ids};
    return graph_add(g, OP_gather_rows, in, 2, NULL, NULL);
}

const OpRules rules_gather_rows = {
    .shape = s_gather, .grad = g_gather, .eval = e_gather, .cases = c_gather, .flags = OPF_KEEPS_FINITE};
const OpRules rules_scatter_rows = {.shape = s_scatter, .eval = e_scatter, .flags = OPF_BACKWARD_ONLY};
