/* ops_precision.c - rules of round_bf16: x rounded to the nearest bfloat16 and held in a
 * float, the value a bf16 tensor would store (runtime/kernels/mlc_bf16.h, the one
 * rounding every target and the interpreter use). `--precision bf16` puts it on the
 * inputs and outputs of GEMMs, convolutions and attention (passes/precision.c).
 *
 * The gradient is the cast's, as under PyTorch's autocast: the identity's, rounded the
 * same way (the gradient of a bf16 tensor is a bf16 tensor). Rounding is piecewise
 * constant, so finite differences cannot check that directly: the gradient check
 * (OPF_ROUNDS) compares against the identity's finite differences within bf16's half
 * step and checks that every gradient value is a bf16 value. */
#include "kernels/mlc_bf16.h"
#include "ops.h"

static double f_round(double x, const Node *n) {
    (void)n;
    return (double)mlc_round_bf16((float)x);
}

static void g_round(Graph *g, int node, int gy, int *gx) {
    gx[0] = ir_unary(g, OP_round_bf16, gy, &g->nodes[node].loc);
}

static int c_round(Graph *g, int i) {
    static const int64_t s0[] = {3, 5}, s1[] = {2, 4, 3};
    if (i > 1) return -1;
    int a = case_param(g, i + 2, i ? s1 : s0, i ? 1 : 0, INIT_UNIFORM, -3, 3);
    return ir_unary(g, OP_round_bf16, a, NULL);
}

/* Not OPF_KEEPS_FINITE: a finite float above bf16's largest value rounds to infinity. */
const OpRules rules_round_bf16 = {.shape = shape_rule_same,
                                  .grad = g_round,
                                  .scalar1 = f_round,
                                  .expr = "round_bf16(%0)",
                                  .cases = c_round,
                                  .flags = OPF_ROUNDS};
