/* ops_ewise.c - rules of the elementwise ops (unary, and binary with broadcasting).
 *
 * Each op: a scalar function in double (reference interpreter), the same as scalar text in
 * float (ops.h: every target reads it), and a gradient rule built from forward ops. Broadcasting binary ops send the
 * gradient back through ir_sum_to, which sums over the broadcast dimensions. */
#include <math.h>

#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* ---- gradient-check cases ---- */

/* The input of unary case i, or -1 when there is none. */
static int unary_case_input(Graph *g, int i, InitKind init, double lo, double hi) {
    static const int64_t s0[] = {3, 5}, s1[] = {2, 3, 4}, s2[] = {2, 7};
    switch (i) {
    case 0: return case_param(g, 2, s0, 0, init, lo, hi);
    case 1: return case_param(g, 3, s1, 0, init, lo, hi);
    case 2: return case_param(g, 2, s2, 1, init, lo, hi); /* [B, 7] */
    default: return -1;
    }
}

static int unary_case(Graph *g, int i, Op op, InitKind init, double lo, double hi) {
    int x = unary_case_input(g, i, init, lo, hi);
    return x < 0 ? -1 : ir_unary(g, op, x, NULL);
}

/* Same shapes, trailing broadcast, broadcast both ways, size-1 dims, and the batch dim. */
static int binary_case(Graph *g, int i, Op op, double blo, double bhi) {
    // clang-format off
    static const struct { int ra; int64_t a[3]; uint8_t ba; int rb; int64_t b[3]; uint8_t bb; } c[] = {
        {2, {3, 4}, 0, 2, {3, 4}, 0},
        {2, {3, 4}, 0, 1, {4}, 0},
        {2, {3, 1}, 0, 2, {1, 4}, 0},
        {3, {2, 3, 4}, 0, 2, {3, 1}, 0},
        {2, {2, 5}, 1, 1, {5}, 0},       /* [B, 5] + [5] */
        {1, {1}, 0, 2, {2, 3}, 1},       /* [1] + [B, 3] */
    };
    // clang-format on
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int a = case_param(g, c[i].ra, c[i].a, c[i].ba, INIT_UNIFORM, -1, 1);
    int b = case_param(g, c[i].rb, c[i].b, c[i].bb, INIT_AWAY, blo, bhi);
    return ir_binary(g, op, a, b, NULL);
}

/* ---- neg ---- */
static double f_neg(double x, const Node *n) {
    (void)n;
    return -x;
}
static void g_neg(Graph *g, int node, int gy, int *gx) { gx[0] = ir_unary(g, OP_neg, gy, LOC); }
static int c_neg(Graph *g, int i) { return unary_case(g, i, OP_neg, INIT_UNIFORM, -1, 1); }
const OpRules rules_neg = {.shape = shape_rule_same,
                           .grad = g_neg,
                           .scalar1 = f_neg,
                           .expr = "(-%0)",
                           .cases = c_neg,
                           .flags = OPF_KEEPS_FINITE};

/* ---- relu ---- */
static double f_relu(double x, const Node *n) {
    (void)n;
    return x > 0 ? x : 0;
}
/* The slope is read off the output: relu(x) > 0 exactly when x > 0 (NaN and -0 included),
 * so the backward keeps the output, which the next layer keeps anyway, and the input can
 * die in the forward. */
static void g_relu(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_step, node, LOC), LOC);
}
/* Sample points stay at least 0.1 away from the kink at 0. */
static int c_relu(Graph *g, int i) { return unary_case(g, i, OP_relu, INIT_AWAY, 0.1, 1); }
const OpRules rules_relu = {.shape = shape_rule_same,
                            .grad = g_relu,
                            .scalar1 = f_relu,
                            .expr = "(%0 > 0.0f ? %0 : 0.0f)",
                            .cases = c_relu,
                            .flags = OPF_KEEPS_FINITE};

/* ---- step (relu's slope): piecewise constant ---- */
static double f_step(double x, const Node *n) {
    (void)n;
    return x > 0 ? 1 : 0;
}
static void g_zero1(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }
static int c_step(Graph *g, int i) { return unary_case(g, i, OP_step, INIT_AWAY, 0.1, 1); }
const OpRules rules_step = {.shape = shape_rule_same,
                            .grad = g_zero1,
                            .scalar1 = f_step,
                            .expr = "(%0 > 0.0f ? 1.0f : 0.0f)",
                            .cases = c_step,
                            .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};

/* ---- exp ---- */
static double f_exp(double x, const Node *n) {
    (void)n;
    return exp(x);
}
static void g_exp(Graph *g, int node, int gy, int *gx) { gx[0] = ir_binary(g, OP_mul, gy, node, LOC); }
static int c_exp(Graph *g, int i) { return unary_case(g, i, OP_exp, INIT_UNIFORM, -2, 2); }
const OpRules rules_exp = {
    .shape = shape_rule_same, .grad = g_exp, .scalar1 = f_exp, .expr = "exp(%0)", .cases = c_exp};

/* ---- log ---- */
static double f_log(double x, const Node *n) {
    (void)n;
    return log(x);
}
static void g_log(Graph *g, int node, int gy, int *gx) { gx[0] = ir_binary(g, OP_div, gy, IN(0), LOC); }
static int c_log(Graph *g, int i) { return unary_case(g, i, OP_log, INIT_UNIFORM, 0.5, 3); }
const OpRules rules_log = {
    .shape = shape_rule_same, .grad = g_log, .scalar1 = f_log, .expr = "log(%0)", .cases = c_log};

/* ---- add ---- */
static double f_add(double a, double b, const Node *n) {
    (void)n;
    return a + b;
}
static void g_add(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, gy, X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, gy, X(IN(1))->shape, LOC);
}
static int c_add(Graph *g, int i) { return binary_case(g, i, OP_add, 0.1, 1); }
const OpRules rules_add = {
    .shape = shape_rule_broadcast, .grad = g_add, .scalar2 = f_add, .expr = "(%0 + %1)", .cases = c_add};

/* ---- sub ---- */
static double f_sub(double a, double b, const Node *n) {
    (void)n;
    return a - b;
}
static void g_sub(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, gy, X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, ir_unary(g, OP_neg, gy, LOC), X(IN(1))->shape, LOC);
}
static int c_sub(Graph *g, int i) { return binary_case(g, i, OP_sub, 0.1, 1); }
const OpRules rules_sub = {
    .shape = shape_rule_broadcast, .grad = g_sub, .scalar2 = f_sub, .expr = "(%0 - %1)", .cases = c_sub};

/* ---- mul ---- */
static double f_mul(double a, double b, const Node *n) {
    (void)n;
    return a * b;
}
static void g_mul(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, ir_binary(g, OP_mul, gy, IN(1), LOC), X(IN(0))->shape, LOC);
    gx[1] = ir_sum_to(g, ir_binary(g, OP_mul, gy, IN(0), LOC), X(IN(1))->shape, LOC);
}
static int c_mul(Graph *g, int i) { return binary_case(g, i, OP_mul, 0.1, 1); }
const OpRules rules_mul = {
    .shape = shape_rule_broadcast, .grad = g_mul, .scalar2 = f_mul, .expr = "(%0 * %1)", .cases = c_mul};

/* ---- div: d(a/b)/db = -(a/b)/b, reusing the output ---- */
static double f_div(double a, double b, const Node *n) {
    (void)n;
    return a / b;
}
static void g_div(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_sum_to(g, ir_binary(g, OP_div, gy, IN(1), LOC), X(IN(0))->shape, LOC);
    int t = ir_binary(g, OP_div, ir_binary(g, OP_mul, gy, node, LOC), IN(1), LOC);
    gx[1] = ir_sum_to(g, ir_unary(g, OP_neg, t, LOC), X(IN(1))->shape, LOC);
}
/* Denominators stay in [0.5, 2] in magnitude. */
static int c_div(Graph *g, int i) { return binary_case(g, i, OP_div, 0.5, 2); }
/* A divisor known to be 0 (image / 0, image / (B * 0)) makes every element inf or NaN on
 * every step: the same mistake as 1 / 0 between numbers, and an error like it. */
static const char *s_div(Graph *g, Node *n) {
    const Node *b = X(n->in[1]);
    if (b->op == OP_const && attr_f(b, A_VALUE) == 0) return shape_err(g, "division by zero");
    return shape_rule_broadcast(g, n);
}
const OpRules rules_div = {.shape = s_div, .grad = g_div, .scalar2 = f_div, .expr = "(%0 / %1)", .cases = c_div};

/* ---- the activation zoo (issue: conv nets). Slopes that are themselves only ever
 * produced by a gradient rule are OPF_BACKWARD_ONLY. ---- */

static int cst(Graph *g, double v, int node) { return ir_const(g, v, 0, LOC); }

/* ---- sqrt: g / (2 sqrt x) ---- */
static double f_sqrt(double x, const Node *n) {
    (void)n;
    return sqrt(x);
}
static void g_sqrt(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_div, ir_binary(g, OP_mul, gy, cst(g, 0.5, node), LOC), node, LOC);
}
static int c_sqrt(Graph *g, int i) { return unary_case(g, i, OP_sqrt, INIT_UNIFORM, 0.5, 3); }
const OpRules rules_sqrt = {
    .shape = shape_rule_same, .grad = g_sqrt, .scalar1 = f_sqrt, .expr = "sqrt(%0)", .cases = c_sqrt};

/* ---- rsqrt: -g y^3 / 2 ---- */
static double f_rsqrt(double x, const Node *n) {
    (void)n;
    return 1 / sqrt(x);
}
static void g_rsqrt(Graph *g, int node, int gy, int *gx) {
    int y3 = ir_binary(g, OP_mul, node, ir_binary(g, OP_mul, node, node, LOC), LOC);
    gx[0] = ir_binary(g, OP_mul, gy, ir_binary(g, OP_mul, y3, cst(g, -0.5, node), LOC), LOC);
}
static int c_rsqrt(Graph *g, int i) { return unary_case(g, i, OP_rsqrt, INIT_UNIFORM, 0.5, 3); }
const OpRules rules_rsqrt = {
    .shape = shape_rule_same, .grad = g_rsqrt, .scalar1 = f_rsqrt, .expr = "(1.0f / sqrt(%0))", .cases = c_rsqrt};

/* ---- tanh: g (1 - y^2) ---- */
static double f_tanh(double x, const Node *n) {
    (void)n;
    return tanh(x);
}
static void g_tanh(Graph *g, int node, int gy, int *gx) {
    int d = ir_binary(g, OP_sub, cst(g, 1, node), ir_binary(g, OP_mul, node, node, LOC), LOC);
    gx[0] = ir_binary(g, OP_mul, gy, d, LOC);
}
static int c_tanh(Graph *g, int i) { return unary_case(g, i, OP_tanh, INIT_UNIFORM, -2, 2); }
const OpRules rules_tanh = {
    .shape = shape_rule_same, .grad = g_tanh, .scalar1 = f_tanh, .expr = "tanh(%0)", .cases = c_tanh};

/* ---- sigmoid: g y (1 - y) ---- */
static double f_sigmoid(double x, const Node *n) {
    (void)n;
    return 1 / (1 + exp(-x));
}
static void g_sigmoid(Graph *g, int node, int gy, int *gx) {
    int d = ir_binary(g, OP_mul, node, ir_binary(g, OP_sub, cst(g, 1, node), node, LOC), LOC);
    gx[0] = ir_binary(g, OP_mul, gy, d, LOC);
}
static int c_sigmoid(Graph *g, int i) { return unary_case(g, i, OP_sigmoid, INIT_UNIFORM, -3, 3); }
const OpRules rules_sigmoid = {.shape = shape_rule_same,
                               .grad = g_sigmoid,
                               .scalar1 = f_sigmoid,
                               .expr = "(1.0f / (1.0f + exp(-%0)))",
                               .cases = c_sigmoid};

/* ---- leaky_relu (alpha = negative slope): g * leaky_step(x) ---- */
/* op(x) with its one float attribute a = v */
static int with_f(Graph *g, Op op, int x, AttrName a, double v, const SrcLoc *loc) {
    return graph_add(g, op, &x, 1, ATTRS(AF(a, v)), loc);
}
static double f_leaky(double x, const Node *n) { return x > 0 ? x : attr_f(n, A_ALPHA) * x; }
/* With a slope >= 0 the output has the input's sign wherever the slope differs (x > 0 or
 * not), so, as for relu, the slope is read off the output. */
static void g_leaky(Graph *g, int node, int gy, int *gx) {
    const double a = attr_f(X(node), A_ALPHA);
    gx[0] = ir_binary(g, OP_mul, gy, with_f(g, OP_leaky_step, a >= 0 ? node : IN(0), A_ALPHA, a, LOC), LOC);
}
/* Unary ops with a parameter, sampled away from their kink at 0. */
static int param_case(Graph *g, int i, Op op, double a) {
    int x = unary_case_input(g, i, INIT_AWAY, 0.1, 1);
    return x < 0 ? -1 : with_f(g, op, x, A_ALPHA, a, NULL);
}
static int c_leaky(Graph *g, int i) { return param_case(g, i, OP_leaky_relu, 0.1); }
const OpRules rules_leaky_relu = {.shape = shape_rule_same,
                                  .grad = g_leaky,
                                  .scalar1 = f_leaky,
                                  .expr = "(%0 > 0.0f ? %0 : %{alpha} * %0)",
                                  .cases = c_leaky};

static double f_leaky_step(double x, const Node *n) { return x > 0 ? 1 : attr_f(n, A_ALPHA); }
static int c_leaky_step(Graph *g, int i) { return param_case(g, i, OP_leaky_step, 0.1); }
const OpRules rules_leaky_step = {.shape = shape_rule_same,
                                  .grad = g_zero1,
                                  .scalar1 = f_leaky_step,
                                  .expr = "(%0 > 0.0f ? 1.0f : %{alpha})",
                                  .cases = c_leaky_step,
                                  .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};

/* ---- elu (alpha): g * (x > 0 ? 1 : alpha e^x) ---- */
static double f_elu(double x, const Node *n) { return x > 0 ? x : attr_f(n, A_ALPHA) * (exp(x) - 1); }
static void g_elu(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, with_f(g, OP_elu_slope, IN(0), A_ALPHA, attr_f(X(node), A_ALPHA), LOC), LOC);
}
static int c_elu(Graph *g, int i) { return param_case(g, i, OP_elu, 1.0); }
const OpRules rules_elu = {.shape = shape_rule_same,
                           .grad = g_elu,
                           .scalar1 = f_elu,
                           .expr = "(%0 > 0.0f ? %0 : %{alpha} * (exp(%0) - 1.0f))",
                           .cases = c_elu};
static double f_elu_slope(double x, const Node *n) { return x > 0 ? 1 : attr_f(n, A_ALPHA) * exp(x); }
const OpRules rules_elu_slope = {.shape = shape_rule_same,
                                 .scalar1 = f_elu_slope,
                                 .expr = "(%0 > 0.0f ? 1.0f : %{alpha} * exp(%0))",
                                 .flags = OPF_BACKWARD_ONLY};

/* ---- abs: g sign(x); sign is piecewise constant (its gradient is zero) ---- */
static double f_sign(double x, const Node *n) {
    (void)n;
    return x > 0 ? 1 : x < 0 ? -1 : 0;
}
static int c_sign(Graph *g, int i) {
    int x = unary_case_input(g, i, INIT_AWAY, 0.1, 1);
    return x < 0 ? -1 : ir_unary(g, OP_sign, x, NULL);
}
const OpRules rules_sign = {.shape = shape_rule_same,
                            .grad = g_zero1,
                            .scalar1 = f_sign,
                            .expr = "(%0 > 0.0f ? 1.0f : (%0 < 0.0f ? -1.0f : 0.0f))",
                            .cases = c_sign,
                            .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};
static double f_abs(double x, const Node *n) {
    (void)n;
    return fabs(x);
}
static void g_abs(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_sign, IN(0), LOC), LOC);
}
static int c_abs(Graph *g, int i) {
    int x = unary_case_input(g, i, INIT_AWAY, 0.1, 1); /* away from the kink at 0 */
    return x < 0 ? -1 : ir_unary(g, OP_abs, x, NULL);
}
const OpRules rules_abs = {.shape = shape_rule_same,
                           .grad = g_abs,
                           .scalar1 = f_abs,
                           .expr = "fabs(%0)",
                           .cases = c_abs,
                           .flags = OPF_KEEPS_FINITE};

/* ---- sin: g cos(x); cos: -g sin(x) ---- */
static double f_sin(double x, const Node *n) {
    (void)n;
    return sin(x);
}
static void g_sin(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_cos, IN(0), LOC), LOC);
}
static int c_sin(Graph *g, int i) { return unary_case(g, i, OP_sin, INIT_UNIFORM, -4, 4); }
const OpRules rules_sin = {
    .shape = shape_rule_same, .grad = g_sin, .scalar1 = f_sin, .expr = "sin(%0)", .cases = c_sin};
static double f_cos(double x, const Node *n) {
    (void)n;
    return cos(x);
}
static void g_cos(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_unary(g, OP_neg, ir_binary(g, OP_mul, gy, ir_unary(g, OP_sin, IN(0), LOC), LOC), LOC);
}
static int c_cos(Graph *g, int i) { return unary_case(g, i, OP_cos, INIT_UNIFORM, -4, 4); }
const OpRules rules_cos = {
    .shape = shape_rule_same, .grad = g_cos, .scalar1 = f_cos, .expr = "cos(%0)", .cases = c_cos};

/* ---- softplus: log(1 + e^x) without overflow (x + log(1 + e^-x) for x > 0); g sigmoid(x) ---- */
static double f_softplus(double x, const Node *n) {
    (void)n;
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static void g_softplus(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_sigmoid, IN(0), LOC), LOC);
}
static int c_softplus(Graph *g, int i) { return unary_case(g, i, OP_softplus, INIT_UNIFORM, -4, 4); }
const OpRules rules_softplus = {.shape = shape_rule_same,
                                .grad = g_softplus,
                                .scalar1 = f_softplus,
                                .expr = "(%0 > 0.0f ? %0 + log(1.0f + exp(-%0)) : log(1.0f + exp(%0)))",
                                .cases = c_softplus};

/* ---- pow (exponent p): x^p; g p x^(p-1). As in C and PyTorch, a negative x
 * with a non-integer p gives NaN. ---- */
static double f_pow(double x, const Node *n) { return pow(x, attr_f(n, A_EXPONENT)); }
static void g_pow(Graph *g, int node, int gy, int *gx) {
    const double p = attr_f(X(node), A_EXPONENT);
    if (p == 0) { /* x^0 is constant: exactly 0, as PyTorch; 0 * x^-1 is NaN at x = 0 */
        gx[0] = ir_expand(g, cst(g, 0, node), X(IN(0))->shape, LOC);
        return;
    }
    int slope = ir_binary(g, OP_mul, cst(g, p, node), with_f(g, OP_pow, IN(0), A_EXPONENT, p - 1, LOC), LOC);
    gx[0] = ir_binary(g, OP_mul, gy, slope, LOC);
}
static int c_pow(Graph *g, int i) {
    static const double p[] = {2.5, -1.5, 3};
    int x = unary_case_input(g, i, INIT_UNIFORM, 0.5, 2);
    return x < 0 ? -1 : with_f(g, OP_pow, x, A_EXPONENT, p[i], NULL);
}
const OpRules rules_pow = {
    .shape = shape_rule_same, .grad = g_pow, .scalar1 = f_pow, .expr = "pow(%0, %{exponent})", .cases = c_pow};

/* ---- gelu, exact: x Phi(x); slope Phi(x) + x phi(x) ---- */
static double f_gelu(double x, const Node *n) {
    (void)n;
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static void g_gelu(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_binary(g, OP_mul, gy, ir_unary(g, OP_gelu_slope, IN(0), LOC), LOC);
}
static int c_gelu(Graph *g, int i) { return unary_case(g, i, OP_gelu, INIT_UNIFORM, -3, 3); }
const OpRules rules_gelu = {.shape = shape_rule_same,
                            .grad = g_gelu,
                            .scalar1 = f_gelu,
                            .expr = "(0.5f * %0 * (1.0f + erf(%0 * 0.70710678f)))",
                            .cases = c_gelu};
static double f_gelu_slope(double x, const Node *n) {
    (void)n;
    return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * 3.14159265358979323846);
}
const OpRules rules_gelu_slope = {
    .shape = shape_rule_same,
    .scalar1 = f_gelu_slope,
    .expr = "(0.5f * (1.0f + erf(%0 * 0.70710678f)) + %0 * exp(-0.5f * %0 * %0) * 0.39894228f)",
    .flags = OPF_BACKWARD_ONLY};

/* ---- ge: 1 where a >= b (the selector of maximum/minimum's gradients) ---- */
static double f_ge(double a, double b, const Node *n) {
    (void)n;
    return a >= b ? 1 : 0;
}
static void g_zero2(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = gx[1] = -1; }
static int c_ge(Graph *g, int i) { return binary_case(g, i, OP_ge, 0.1, 1); }
const OpRules rules_ge = {.shape = shape_rule_broadcast,
                          .grad = g_zero2,
                          .scalar2 = f_ge,
                          .expr = "(%0 >= %1 ? 1.0f : 0.0f)",
                          .cases = c_ge,
                          .flags = OPF_ZERO_GRAD | OPF_KEEPS_FINITE};

/* ---- maximum / minimum: the gradient goes to the selected side (to a on ties) ---- */
static void g_minmax(Graph *g, int node, int gy, int *gx, int is_max) {
    int a = IN(0), b = IN(1);
    int sel = is_max ? ir_binary(g, OP_ge, a, b, LOC) : ir_binary(g, OP_ge, b, a, LOC);
    int other = ir_binary(g, OP_sub, cst(g, 1, node), sel, LOC);
    gx[0] = ir_sum_to(g, ir_binary(g, OP_mul, gy, sel, LOC), X(a)->shape, LOC);
    gx[1] = ir_sum_to(g, ir_binary(g, OP_mul, gy, other, LOC), X(b)->shape, LOC);
}
static double f_maximum(double a, double b, const Node *n) {
    (void)n;
    return a >= b ? a : b;
}
static void g_maximum(Graph *g, int node, int gy, int *gx) { g_minmax(g, node, gy, gx, 1); }
static int c_maximum(Graph *g, int i) { return binary_case(g, i, OP_maximum, 0.1, 1); }
const OpRules rules_maximum = {.shape = shape_rule_broadcast,
                               .grad = g_maximum,
                               .scalar2 = f_maximum,
                               .expr = "(%0 >= %1 ? %0 : %1)",
                               .cases = c_maximum,
                               .flags = OPF_KEEPS_FINITE};
static double f_minimum(double a, double b, const Node *n) {
    (void)n;
    return b >= a ? a : b;
}
static void g_minimum(Graph *g, int node, int gy, int *gx) { g_minmax(g, node, gy, gx, 0); }
static int c_minimum(Graph *g, int i) { return binary_case(g, i, OP_minimum, 0.1, 1); }
const OpRules rules_minimum = {.shape = shape_rule_broadcast,
                               .grad = g_minimum,
                               .scalar2 = f_minimum,
                               .expr = "(%1 >= %0 ? %0 : %1)",
                               .cases = c_minimum,
                               .flags = OPF_KEEPS_FINITE};
