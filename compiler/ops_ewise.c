/* ops_ewise.c - rules of the elementwise ops (unary, and binary with broadcasting).
 *
 * Each op: a scalar function in double (reference interpreter), the C/CUDA expression in
 * float, and a gradient rule built from forward ops. Broadcasting binary ops send the
 * gradient back through ir_sum_to, which sums over the broadcast dimensions. */
#include <math.h>

#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* ---- gradient-check cases ---- */

static int unary_case(Graph *g, int i, Op op, InitKind init, double lo, double hi) {
    static const int64_t s0[] = {3, 5}, s1[] = {2, 3, 4}, s2[] = {2, 7};
    int x;
    switch (i) {
    case 0: x = case_param(g, 2, s0, 0, init, lo, hi); break;
    case 1: x = case_param(g, 3, s1, 0, init, lo, hi); break;
    case 2: x = case_param(g, 2, s2, 1, init, lo, hi); break; /* [B, 7] */
    default: return -1;
    }
    return ir_unary(g, op, x, NULL);
}

/* Same shapes, trailing broadcast, broadcast both ways, size-1 dims, and the batch dim. */
static int binary_case(Graph *g, int i, Op op, double blo, double bhi) {
    static const struct { int ra; int64_t a[3]; uint8_t ba; int rb; int64_t b[3]; uint8_t bb; } c[] = {
        {2, {3, 4}, 0, 2, {3, 4}, 0},
        {2, {3, 4}, 0, 1, {4}, 0},
        {2, {3, 1}, 0, 2, {1, 4}, 0},
        {3, {2, 3, 4}, 0, 2, {3, 1}, 0},
        {2, {2, 5}, 1, 1, {5}, 0},       /* [B, 5] + [5] */
        {1, {1}, 0, 2, {2, 3}, 1},       /* [1] + [B, 3] */
    };
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int a = case_param(g, c[i].ra, c[i].a, c[i].ba, INIT_UNIFORM, -1, 1);
    int b = case_param(g, c[i].rb, c[i].b, c[i].bb, INIT_AWAY, blo, bhi);
    return ir_binary(g, op, a, b, NULL);
}

/* ---- neg ---- */
static double f_neg(double x) { return -x; }
static void g_neg(Graph *g, int node, int gy, int *gx) { gx[0] = ir_unary(g, OP_neg, gy, LOC); }
static int c_neg(Graph *g, int i) { return unary_case(g, i, OP_neg, INIT_UNIFORM, -1, 1); }
const OpRules rules_neg = {.shape = shape_rule_same, .grad = g_neg, .scalar1 = f_neg, .c_expr = "(-%0)", .cases = c_neg};

/* ---- relu ---- */
static double f_relu(double x) { return x > 0 ? x : 0; }
static void g_relu(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_step, IN(0), LOC), LOC);
}
/* Sample points stay at least 0.1 away from the kink at 0. */
static int c_relu(Graph *g, int i) { return unary_case(g, i, OP_relu, INIT_AWAY, 0.1, 1); }
const OpRules rules_relu = {.shape = shape_rule_same, .grad = g_relu, .scalar1 = f_relu,
                            .c_expr = "(%0 > 0.0f ? %0 : 0.0f)", .cases = c_relu};

/* ---- step (relu's slope): piecewise constant ---- */
static double f_step(double x) { return x > 0 ? 1 : 0; }
static void g_zero1(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }
static int c_step(Graph *g, int i) { return unary_case(g, i, OP_step, INIT_AWAY, 0.1, 1); }
const OpRules rules_step = {.shape = shape_rule_same, .grad = g_zero1, .scalar1 = f_step,
                            .c_expr = "(%0 > 0.0f ? 1.0f : 0.0f)", .cases = c_step, .flags = OPF_ZERO_GRAD};

/* ---- exp ---- */
static double f_exp(double x) { return exp(x); }
static void g_exp(Graph *g, int node, int gy, int *gx) { gx[0] = ir_binary(g, OP_mul, gy, node, LOC); }
static int c_exp(Graph *g, int i) { return unary_case(g, i, OP_exp, INIT_UNIFORM, -2, 2); }
const OpRules rules_exp = {.shape = shape_rule_same, .grad = g_exp, .scalar1 = f_exp, .c_expr = "expf(%0)", .cases = c_exp};

/* ---- log ---- */
static double f_log(double x) { return log(x); }
static void g_log(Graph *g, int node, int gy, int *gx) { gx[0] = ir_binary(g, OP_div, gy, IN(0), LOC); }
static int c_log(Graph *g, int i) { return unary_case(g, i, OP_log, INIT_UNIFORM, 0.5, 3); }
const OpRules rules_log = {.shape = shape_rule_same, .grad = g_log, .scalar1 = f_log, .c_expr = "logf(%0)", .cases = c_log};

/* ---- add ---- */
static double f_add(double a, double b) { return a + b; }
static void g_add(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, gy, X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, gy, X(IN(1))->shape, LOC);
}
static int c_add(Graph *g, int i) { return binary_case(g, i, OP_add, 0.1, 1); }
const OpRules rules_add = {.shape = shape_rule_broadcast, .grad = g_add, .scalar2 = f_add, .c_expr = "(%0 + %1)", .cases = c_add};

/* ---- sub ---- */
static double f_sub(double a, double b) { return a - b; }
static void g_sub(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, gy, X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, ir_unary(g, OP_neg, gy, LOC), X(IN(1))->shape, LOC);
}
static int c_sub(Graph *g, int i) { return binary_case(g, i, OP_sub, 0.1, 1); }
const OpRules rules_sub = {.shape = shape_rule_broadcast, .grad = g_sub, .scalar2 = f_sub, .c_expr = "(%0 - %1)", .cases = c_sub};

/* ---- mul ---- */
static double f_mul(double a, double b) { return a * b; }
static void g_mul(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, ir_binary(g, OP_mul, gy, IN(1), LOC), X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, ir_binary(g, OP_mul, gy, IN(0), LOC), X(IN(1))->shape, LOC);
}
static int c_mul(Graph *g, int i) { return binary_case(g, i, OP_mul, 0.1, 1); }
const OpRules rules_mul = {.shape = shape_rule_broadcast, .grad = g_mul, .scalar2 = f_mul, .c_expr = "(%0 * %1)", .cases = c_mul};

/* ---- div: d(a/b)/db = -(a/b)/b, reusing the output ---- */
static double f_div(double a, double b) { return a / b; }
static void g_div(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, ir_binary(g, OP_div, gy, IN(1), LOC), X(IN(0))->shape, LOC);
    int t = ir_binary(g, OP_div, ir_binary(g, OP_mul, gy, node, LOC), IN(1), LOC);
    gx[1] = ir_sum_to(g, ir_unary(g, OP_neg, t, LOC), X(IN(1))->shape, LOC);
}
/* Denominators stay in [0.5, 2] in magnitude. */
static int c_div(Graph *g, int i) { return binary_case(g, i, OP_div, 0.5, 2); }
const OpRules rules_div = {.shape = shape_rule_broadcast, .grad = g_div, .scalar2 = f_div, .c_expr = "(%0 / %1)", .cases = c_div};
