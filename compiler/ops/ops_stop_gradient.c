/* ops_stop_gradient.c - rules of stop_gradient: the identity in the forward, and no
 * gradient for its input (PyTorch's detach, JAX's stop_gradient): a target that is a
 * function of the parameters (a bootstrapped value, a moving average) without training
 * through it. Elementwise, so it costs nothing in a fused loop. */
#include "ops.h"

static double f_stop(double x, const Node *n) {
    (void)n;
    return x;
}
static void g_stop(Graph *g, int node, int gy, int *gx) { (void)g, (void)node, (void)gy, gx[0] = -1; }

/* The checker's loss sum(stop_gradient(a) * W) moves with a, yet a gets no gradient. */
static int c_stop(Graph *g, int i) {
    static const int64_t s0[] = {3, 4}, s1[] = {2, 2, 3};
    if (i > 1) return -1;
    int a = case_param(g, i + 2, i ? s1 : s0, i ? 1 : 0, INIT_UNIFORM, -1, 1);
    return ir_unary(g, OP_stop_gradient, a, NULL);
}

const OpRules rules_stop_gradient = {.shape = shape_rule_same,
                                     .grad = g_stop,
                                     .scalar1 = f_stop,
                                     .expr = "(%0)",
                                     .cases = c_stop,
                                     .flags = OPF_STOP_GRAD | OPF_KEEPS_FINITE};
