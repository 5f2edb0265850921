/* ops_norm.c - the batch-norm ops: bn_stats, bn_apply, and the two ops bn_apply's
 * gradient rule makes (bn_param_grads, bn_bwd).
 *
 * batch_norm could be written with primitive ops alone, but that reads and writes the
 * activation about twenty times per layer per step; these four read it seven times.
 * All work on x viewed as [B, C, S] (S = H*W), per channel c over N = B*S values:
 *
 *   bn_stats(x)                     -> [2, C]: mean, biased variance
 *   bn_apply(x, stats, gamma, beta) -> (x - mean) * rsqrt(var + eps) * gamma + beta
 *   bn_param_grads(dy, x, stats)    -> [2, C]: sum(dy), sum(dy * xhat)   (dbeta, dgamma)
 *   bn_bwd(dy, x, stats, pg, gamma) -> gamma * rstd / N * (N dy - dbeta - xhat dgamma)
 *
 * After autodiff, split_bn.c replaces bn_apply by elementwise ops on per-channel
 * coefficients, so what follows a batch norm (a ReLU, a residual add) runs in its loop:
 *
 *   bn_scale(stats, gamma)         -> [C]: gamma / sqrt(var + eps)
 *   bn_shift(stats, scale, beta)   -> [C]: beta - mean * scale;  y = x * scale + shift
 *
 * bn_apply's `stats` must be bn_stats of its own x (its shape rule checks this): its
 * gradient rule returns the whole derivative through both paths in x's gradient, and
 * none for stats. Every per-channel sum runs sequentially over (n, s), so results do not
 * depend on the thread count. Attribute eps. */
#include <math.h>

#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* B, C, S of a [B, C, S] tensor (B at its compile-time value). */
static void bcs(const Shape *s, int64_t *B, int64_t *C, int64_t *S) { *B = s->d[0], *C = s->d[1], *S = s->d[2]; }

static int is_bcs(const Graph *g, const Node *x) {
    return x->shape.rank == 3 && x->shape.bmask == 1 && x->shape.d[0] == g->batch && x->dtype == DT_F32;
}

static const char *s_stats(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    char a[96];
    if (!is_bcs(g, x))
        return shape_err(g, "bn_stats needs f32[B, C, S], found %s", shape_str(&x->shape, x->dtype, a, sizeof a));
    int64_t d[2] = {2, x->shape.d[1]};
    n->shape = shape_make(2, d, 0);
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_apply(Graph *g, Node *n) {
    const Node *x = X(n->in[0]), *st = X(n->in[1]);
    if (!is_bcs(g, x) || st->op != OP_bn_stats || st->in[0] != n->in[0])
        return shape_err(g, "bn_apply needs x f32[B, C, S] and bn_stats(x)");
    int64_t C = x->shape.d[1];
    for (int k = 2; k < 4; k++) {
        const Shape *p = &X(n->in[k])->shape;
        if (p->rank != 1 || p->d[0] != C || p->bmask)
            return shape_err(g, "bn_apply: scale and shift must be f32[%lld]", (long long)C);
    }
    n->shape = x->shape;
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_pgrads(Graph *g, Node *n) {
    int64_t d[2] = {2, X(n->in[1])->shape.d[1]};
    n->shape = shape_make(2, d, 0);
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_bwd(Graph *g, Node *n) {
    n->shape = X(n->in[1])->shape;
    n->dtype = DT_F32;
    return NULL;
}

/* ---- reference evaluation ---- */

static void stats_of(const double *x, int64_t B, int64_t C, int64_t S, int64_t c, double *mean, double *var) {
    double s = 0, v = 0, N = (double)(B * S);
    for (int64_t n = 0; n < B; n++)
        for (int64_t i = 0; i < S; i++) s += x[(n * C + c) * S + i];
    *mean = s / N;
    for (int64_t n = 0; n < B; n++)
        for (int64_t i = 0; i < S; i++) {
            double d = x[(n * C + c) * S + i] - *mean;
            v += d * d;
        }
    *var = v / N;
}

static void e_stats(const Graph *g, const Node *nd, double *const *in, double *out) {
    int64_t B, C, S;
    bcs(&X(nd->in[0])->shape, &B, &C, &S);
    for (int64_t c = 0; c < C; c++) stats_of(in[0], B, C, S, c, &out[c], &out[C + c]);
}

static void e_apply(const Graph *g, const Node *nd, double *const *in, double *out) {
    (void)g;
    int64_t B, C, S;
    bcs(&nd->shape, &B, &C, &S);
    for (int64_t n = 0; n < B; n++)
        for (int64_t c = 0; c < C; c++) {
            double rstd = 1 / sqrt(in[1][C + c] + attr_f(nd, A_EPS));
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (n * C + c) * S + i;
                out[k] = (in[0][k] - in[1][c]) * rstd * in[2][c] + in[3][c];
            }
        }
}

static void e_pgrads(const Graph *g, const Node *nd, double *const *in, double *out) {
    int64_t B, C, S;
    bcs(&X(nd->in[1])->shape, &B, &C, &S);
    for (int64_t c = 0; c < C; c++) {
        double rstd = 1 / sqrt(in[2][C + c] + attr_f(nd, A_EPS)), sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < B; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (n * C + c) * S + i;
                sdy += in[0][k];
                sdyx += in[0][k] * (in[1][k] - in[2][c]) * rstd;
            }
        out[c] = sdy, out[C + c] = sdyx;
    }
}

static void e_bwd(const Graph *g, const Node *nd, double *const *in, double *out) {
    (void)g;
    int64_t B, C, S;
    bcs(&nd->shape, &B, &C, &S);
    double N = (double)(B * S);
    for (int64_t c = 0; c < C; c++) {
        double rstd = 1 / sqrt(in[2][C + c] + attr_f(nd, A_EPS));
        for (int64_t n = 0; n < B; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (n * C + c) * S + i;
                double xhat = (in[1][k] - in[2][c]) * rstd;
                out[k] = in[4][c] * rstd / N * (N * in[0][k] - in[3][c] - xhat * in[3][C + c]);
            }
    }
}

static const char *s_coef(Graph *g, Node *n) {
    const Node *st = X(n->in[0]);
    if (st->shape.rank != 2 || st->shape.d[0] != 2 || st->shape.bmask)
        return shape_err(g, "%s needs stats f32[2, C]", op_of(n)->name);
    int64_t C = st->shape.d[1];
    for (int k = 1; k < n->nin; k++) {
        const Shape *p = &X(n->in[k])->shape;
        if (p->rank != 1 || p->d[0] != C || p->bmask)
            return shape_err(g, "%s: its inputs after stats must be f32[%lld]", op_of(n)->name, (long long)C);
    }
    n->shape = shape_make(1, &C, 0);
    n->dtype = DT_F32;
    return NULL;
}

static void e_scale(const Graph *g, const Node *nd, double *const *in, double *out) {
    (void)g;
    int64_t C = nd->shape.d[0];
    for (int64_t c = 0; c < C; c++) out[c] = in[1][c] / sqrt(in[0][C + c] + attr_f(nd, A_EPS));
}

static void e_shift(const Graph *g, const Node *nd, double *const *in, double *out) {
    (void)g;
    for (int64_t c = 0; c < nd->shape.d[0]; c++) out[c] = in[2][c] - in[0][c] * in[1][c];
}

/* ---- gradients ---- */

/* Row r of a [2, C] tensor as [1, C, 1], to broadcast against [B, C, S]. */
static int row(Graph *g, int node, int t, int r) {
    int s = ir_slice(g, t, 0, r, r + 1, LOC);
    int64_t d[3] = {1, X(t)->shape.d[1], 1};
    return ir_reshape(g, s, shape_make(3, d, 0), LOC);
}

/* d mean / dx = 1/N, d var / dx = 2 (x - mean) / N; N = B*S, so 1/N = (1/S) / B. */
static void g_stats(Graph *g, int node, int gy, int *gx) {
    int x = IN(0);
    int64_t S = X(x)->shape.d[2];
    int inv_n = ir_const(g, 1.0 / (double)S, -1, LOC);
    int d = ir_binary(g, OP_sub, x, row(g, node, node, 0), LOC);
    int two_d = ir_binary(g, OP_mul, d, ir_const(g, 2.0, 0, LOC), LOC);
    int t = ir_binary(g, OP_add, ir_binary(g, OP_mul, two_d, row(g, node, gy, 1), LOC), row(g, node, gy, 0), LOC);
    gx[0] = ir_expand(g, ir_binary(g, OP_mul, t, inv_n, LOC), X(x)->shape, LOC);
}

static void g_apply(Graph *g, int node, int gy, int *gx) {
    int in3[3] = {gy, IN(0), IN(1)};
    int pg = graph_add_like(g, OP_bn_param_grads, in3, 3, X(node), NULL, LOC);
    int in5[5] = {gy, IN(0), IN(1), pg, IN(2)};
    gx[0] = graph_add_like(g, OP_bn_bwd, in5, 5, X(node), NULL, LOC);
    gx[1] = -1; /* accounted for in gx[0] */
    int64_t C = X(IN(2))->shape.d[0];
    Shape c1 = shape_make(1, &C, 0);
    gx[3] = ir_reshape(g, ir_slice(g, pg, 0, 0, 1, LOC), c1, LOC);
    gx[2] = ir_reshape(g, ir_slice(g, pg, 0, 1, 2, LOC), c1, LOC);
}

/* ---- gradient-check cases ---- */

static int bn_input(Graph *g, int i) {
    static const int64_t a[] = {2, 3, 4}, b[] = {2, 2, 1}, c[] = {2, 1, 6};
    const int64_t *d = i == 0 ? a : i == 1 ? b : c;
    return i > 2 ? -1 : case_param(g, 3, d, 1, INIT_UNIFORM, -2, 2);
}

static int c_stats(Graph *g, int i) {
    int x = bn_input(g, i);
    return x < 0 ? -1 : graph_add(g, OP_bn_stats, &x, 1, NULL, NULL);
}

static int c_apply(Graph *g, int i) {
    int x = bn_input(g, i);
    if (x < 0) return -1;
    int64_t C = g->nodes[x].shape.d[1];
    int in[4] = {x, graph_add(g, OP_bn_stats, &x, 1, NULL, NULL), case_param(g, 1, &C, 0, INIT_UNIFORM, 0.5, 1.5),
                 case_param(g, 1, &C, 0, INIT_UNIFORM, -1, 1)};
    return graph_add(g, OP_bn_apply, in, 4, ATTRS(AF(A_EPS, 1e-3)), NULL);
}

const OpRules rules_bn_stats = {.shape = s_stats, .grad = g_stats, .eval = e_stats, .cases = c_stats};
/* No code on any target: split_bn replaces every bn_apply of the train step before
 * emission, and evaluation lowers batch norm to elementwise ops. */
const OpRules rules_bn_apply = {
    .shape = s_apply, .grad = g_apply, .eval = e_apply, .cases = c_apply, .flags = OPF_LOWERED};
const OpRules rules_bn_param_grads = {.shape = s_pgrads, .eval = e_pgrads, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_bn_bwd = {.shape = s_bwd, .eval = e_bwd, .flags = OPF_BACKWARD_ONLY};
/* Made by split_bn from bn_apply after autodiff; the gradient check runs split_bn, so the
 * forward values it compares against come through these two. */
const OpRules rules_bn_scale = {.shape = s_coef, .eval = e_scale, .flags = OPF_BACKWARD_ONLY | OPF_RECOMPUTE};
const OpRules rules_bn_shift = {.shape = s_coef, .eval = e_shift, .flags = OPF_BACKWARD_ONLY | OPF_RECOMPUTE};
