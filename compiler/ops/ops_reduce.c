/* ops_reduce.c - rules of the reductions over one axis: sum, mean, max, logsumexp (stable:
 * max-shifted, two passes), and the special op argmax_mask (max's gradient routes to the
 * FIRST maximal element, so ties are deterministic). */
#include <math.h>

#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* outer x len x inner around the axis, with B at its compile-time value. */
static void split(const Shape *s, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s->d[i];
    *len = s->d[axis];
    for (int i = axis + 1; i < s->rank; i++) *inner *= s->d[i];
}

/* The reduced output with its axis kept as 1, so it broadcasts against the input. */
static int keepdims_view(Graph *g, int node, int y) {
    const Node *n = X(node);
    Shape k = X(n->in[0])->shape;
    k.d[attr_i(n, A_AXIS)] = 1;
    k.bmask &= (uint8_t) ~(1u << attr_i(n, A_AXIS));
    return ir_reshape(g, y, k, LOC);
}

static int reduce_case(Graph *g, int i, Op op) {
    static const struct {
        int r;
        int64_t d[3];
        uint8_t bm;
        int axis, keep;
    } c[] = {
        {2, {3, 4}, 0, 0, 0}, {2, {3, 4}, 0, 1, 1}, {3, {2, 3, 4}, 0, 1, 0}, {3, {2, 3, 4}, 0, -1, 1},
        {2, {2, 5}, 1, 0, 0}, {2, {2, 5}, 1, 1, 1}, {1, {7}, 0, 0, 0},
    };
    int nc = (int)(sizeof c / sizeof c[0]);
    if (i == nc) { /* over a merged batch axis B*2 (reshape of [B, 2, 5]): mean divides by 2B */
        int64_t d[3] = {g->batch, 2, 5}, m[2] = {2 * g->batch, 5};
        int x = ir_reshape(g, case_param(g, 3, d, 1, INIT_UNIFORM, -2, 2), shape_make(2, m, 1), NULL);
        return ir_reduce(g, op, x, 0, 0, NULL);
    }
    if (i > nc) return -1;
    int x = case_param(g, c[i].r, c[i].d, c[i].bm, INIT_UNIFORM, -2, 2);
    return ir_reduce(g, op, x, c[i].axis, c[i].keep, NULL);
}

typedef enum { R_SUM, R_MEAN, R_MAX, R_LSE } RedKind;

static void reduce_eval(const Graph *g, const Node *n, double *const *in, double *out, RedKind k) {
    int64_t outer, len, inner;
    split(&X(n->in[0])->shape, (int)attr_i(n, A_AXIS), &outer, &len, &inner);
    const double *x = in[0];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < len; j++) {
                double v = x[(o * len + j) * inner + i];
                if (v > m) m = v;
                s += v;
            }
            if (k == R_LSE) {
                s = 0;
                for (int64_t j = 0; j < len; j++) s += exp(x[(o * len + j) * inner + i] - m);
            }
            out[o * inner + i] = k == R_SUM ? s : k == R_MEAN ? s / (double)len : k == R_MAX ? m : m + log(s);
        }
}

/* ---- sum: the gradient is gy broadcast back over the axis ---- */
static void e_sum(const Graph *g, const Node *n, double *const *in, double *out) { reduce_eval(g, n, in, out, R_SUM); }
static void g_sum(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_expand(g, keepdims_view(g, node, gy), X(IN(0))->shape, LOC);
}
static int c_sum(Graph *g, int i) { return reduce_case(g, i, OP_sum); }
const OpRules rules_sum = {.shape = shape_rule_reduce,
                           .grad = g_sum,
                           .eval = e_sum,
                           .red_init = "0.0f",
                           .red_step = "%a += %x",
                           .red_fin = "%a",
                           .cases = c_sum};

/* ---- mean: as sum, scaled by 1/len (1/B when the axis is the batch) ---- */
static void e_mean(const Graph *g, const Node *n, double *const *in, double *out) {
    reduce_eval(g, n, in, out, R_MEAN);
}
static void g_mean(Graph *g, int node, int gy, int *gx) {
    const Node *x = X(IN(0));
    int axis = (int)attr_i(X(node), A_AXIS);
    int is_b = (x->shape.bmask >> axis) & 1;
    double len = is_b ? (double)(x->shape.d[axis] / g->batch) : (double)x->shape.d[axis]; /* B*k: k */
    int scale = ir_const(g, 1.0 / len, is_b ? -1 : 0, LOC);
    int e = ir_expand(g, keepdims_view(g, node, gy), x->shape, LOC);
    gx[0] = ir_binary(g, OP_mul, e, scale, LOC);
}
static int c_mean(Graph *g, int i) { return reduce_case(g, i, OP_mean); }
const OpRules rules_mean = {.shape = shape_rule_reduce,
                            .grad = g_mean,
                            .eval = e_mean,
                            .red_init = "0.0f",
                            .red_step = "%a += %x",
                            .red_fin = "%a / (float)(%n)",
                            .cases = c_mean};

/* ---- max: the gradient goes to the first maximal element ---- */
static void e_max(const Graph *g, const Node *n, double *const *in, double *out) { reduce_eval(g, n, in, out, R_MAX); }
static void g_max(Graph *g, int node, int gy, int *gx) {
    int mask = graph_add(g, OP_argmax_mask, &IN(0), 1, ATTRS(AI(A_AXIS, attr_i(X(node), A_AXIS))), LOC);
    gx[0] = ir_binary(g, OP_mul, mask, keepdims_view(g, node, gy), LOC);
}
static int c_max(Graph *g, int i) { return reduce_case(g, i, OP_max); }
const OpRules rules_max = {.shape = shape_rule_reduce,
                           .grad = g_max,
                           .eval = e_max,
                           .red_init = "-INFINITY",
                           .red_step = "%a = %x > %a ? %x : %a",
                           .red_fin = "%a",
                           .cases = c_max,
                           .flags = OPF_KEEPS_FINITE};

/* ---- logsumexp: log(sum(exp(x - m))) + m; gradient gy * exp(x - y) = gy * softmax ---- */
static void e_lse(const Graph *g, const Node *n, double *const *in, double *out) { reduce_eval(g, n, in, out, R_LSE); }
static void g_lse(Graph *g, int node, int gy, int *gx) {
    int sm = ir_unary(g, OP_exp, ir_binary(g, OP_sub, IN(0), keepdims_view(g, node, node), LOC), LOC);
    gx[0] = ir_binary(g, OP_mul, sm, keepdims_view(g, node, gy), LOC);
}
static int c_lse(Graph *g, int i) { return reduce_case(g, i, OP_logsumexp); }
/* Two passes over the axis: m = the max, then m + log(sum(exp(x - m))). */
const OpRules rules_logsumexp = {.shape = shape_rule_reduce,
                                 .grad = g_lse,
                                 .eval = e_lse,
                                 .red_pre_init = "-INFINITY",
                                 .red_pre_step = "%a = %x > %a ? %x : %a",
                                 .red_init = "0.0f",
                                 .red_step = "%a += exp(%x - %m)",
                                 .red_fin = "%m + log(%a)",
                                 .cases = c_lse};

/* ---- argmax_mask: 1 at the first maximum along the axis, 0 elsewhere ---- */
static const char *s_argmax(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    int axis = axis_norm((int)attr_i(n, A_AXIS), x->shape.rank);
    if (axis < 0) return shape_err(g, "argmax_mask: axis %lld out of range", (long long)attr_i(n, A_AXIS));
    attr_set_i(n, A_AXIS, axis);
    n->shape = x->shape;
    n->dtype = DT_F32;
    return NULL;
}
static void e_argmax(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t outer, len, inner;
    split(&X(n->in[0])->shape, (int)attr_i(n, A_AXIS), &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            for (int64_t j = 0; j < len; j++) {
                out[(o * len + j) * inner + i] = 0;
                if (in[0][(o * len + j) * inner + i] > in[0][(o * len + best) * inner + i]) best = j;
            }
            out[(o * len + best) * inner + i] = 1;
        }
}
static void g_zero(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }
static int c_argmax(Graph *g, int i) {
    static const int64_t d[] = {3, 4};
    if (i > 1) return -1;
    int x = case_param(g, 2, d, 0, INIT_UNIFORM, -2, 2);
    return graph_add(g, OP_argmax_mask, &x, 1, ATTRS(AI(A_AXIS, i)), NULL);
}
const OpRules rules_argmax_mask = {
    .shape = s_argmax, .grad = g_zero, .eval = e_argmax, .cases = c_argmax, .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};
