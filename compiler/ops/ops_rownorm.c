/* ops_rownorm.c - rules of the norms over the last axis of x [..., D], each row of D
 * values on its own (PyTorch's nn.LayerNorm(D) and RMSNorm):
 *
 *   layer_norm(x, w, b)              y = (x - mean) * rstd * w + b,  rstd = 1/sqrt(var + eps)
 *   rms_norm(x, w)                   y = x * rstd * w,               rstd = 1/sqrt(mean(x^2) + eps)
 *
 * and the three ops their gradient rule makes:
 *
 *   row_norm_stats(x)                [..., 2]: each row's mean (0 for rms_norm) and rstd
 *   row_norm_bwd(dy, x, w, stats)    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *                                    g = dy * w, xhat = (x - mean) * rstd (rms_norm: without
 *                                    the mean(g) term)
 *   row_norm_param_grads(dy, x, stats)  [1 + centred, D]: (sum over rows of dy,) sum of dy * xhat
 *
 * Written with primitive ops a norm would be a dozen passes over the activation; these
 * read it once forward and three times backward. The forward keeps no statistics (one
 * output per op): the backward computes them again in one pass over x. The backward ops'
 * attribute centred says which norm: 1 (layer_norm) or 0 (rms_norm); all carry eps.
 * The parameter gradients add the rows in order, so they do not depend on the thread
 * count on any target. */
#include <math.h>

#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

static int centred(const Node *n) { return n->op == OP_layer_norm || (n->op != OP_rms_norm && attr_i(n, A_CENTRED)); }

/* D, the last dimension, and the number of rows at the compile-time batch size. */
static void rows_of(const Shape *s, int64_t *rows, int64_t *D) {
    *D = s->d[s->rank - 1];
    *rows = *D ? shape_numel(s) / *D : 0;
}

static const char *s_norm(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    char a[96];
    const char *name = op_of(n)->name;
    if (x->dtype != DT_F32 || x->shape.rank < 1 || ((x->shape.bmask >> (x->shape.rank - 1)) & 1))
        return shape_err(g, "%s needs f32[..., D] with D not the batch dimension, found %s", name,
                         shape_str(&x->shape, x->dtype, a, sizeof a));
    int64_t D = x->shape.d[x->shape.rank - 1];
    for (int k = 1; k < n->nin; k++) {
        const Node *p = X(n->in[k]);
        if (p->dtype != DT_F32 || p->shape.rank != 1 || p->shape.d[0] != D || p->shape.bmask)
            return shape_err(g, "%s: weight and bias must be f32[%lld], found %s", name, (long long)D,
                             shape_str(&p->shape, p->dtype, a, sizeof a));
    }
    if (!(attr_f(n, A_EPS) > 0)) return shape_err(g, "%s: eps must be positive, found %g", name, attr_f(n, A_EPS));
    n->shape = x->shape;
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_stats(Graph *g, Node *n) {
    n->shape = X(n->in[0])->shape;
    n->shape.d[n->shape.rank - 1] = 2;
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_bwd(Graph *g, Node *n) {
    n->shape = X(n->in[1])->shape;
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_pgrads(Graph *g, Node *n) {
    const Shape *x = &X(n->in[1])->shape;
    int64_t d[2] = {1 + (attr_i(n, A_CENTRED) != 0), x->d[x->rank - 1]};
    n->shape = shape_make(2, d, 0);
    n->dtype = DT_F32;
    return NULL;
}

/* ---- reference evaluation ---- */

/* Row r's mean (0 when not centred) and rstd. */
static void row_stats(const double *x, int64_t D, int c, double eps, double *mean, double *rstd) {
    double s = 0, v = 0;
    if (c)
        for (int64_t j = 0; j < D; j++) s += x[j];
    *mean = s / (double)D;
    for (int64_t j = 0; j < D; j++) v += (x[j] - *mean) * (x[j] - *mean);
    *rstd = 1 / sqrt(v / (double)D + eps);
}

static void e_norm(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t rows, D;
    rows_of(&X(n->in[0])->shape, &rows, &D);
    for (int64_t r = 0; r < rows; r++) {
        const double *x = in[0] + r * D;
        double m, rs;
        row_stats(x, D, centred(n), attr_f(n, A_EPS), &m, &rs);
        for (int64_t j = 0; j < D; j++) out[r * D + j] = (x[j] - m) * rs * in[1][j] + (n->nin > 2 ? in[2][j] : 0);
    }
}

static void e_stats(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t rows, D;
    rows_of(&X(n->in[0])->shape, &rows, &D);
    for (int64_t r = 0; r < rows; r++)
        row_stats(in[0] + r * D, D, centred(n), attr_f(n, A_EPS), &out[2 * r], &out[2 * r + 1]);
}

static void e_bwd(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t rows, D;
    rows_of(&X(n->in[1])->shape, &rows, &D);
    for (int64_t r = 0; r < rows; r++) {
        const double *dy = in[0] + r * D, *x = in[1] + r * D, m = in[3][2 * r], rs = in[3][2 * r + 1];
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < D; j++) {
            double gj = dy[j] * in[2][j];
            sg += gj, sgx += gj * (x[j] - m) * rs;
        }
        sg = centred(n) ? sg / (double)D : 0, sgx /= (double)D;
        for (int64_t j = 0; j < D; j++) out[r * D + j] = rs * (dy[j] * in[2][j] - sg - (x[j] - m) * rs * sgx);
    }
}

static void e_pgrads(const Graph *g, const Node *n, double *const *in, double *out) {
    int64_t rows, D;
    rows_of(&X(n->in[1])->shape, &rows, &D);
    int c = centred(n);
    for (int64_t j = 0; j < (1 + c) * D; j++) out[j] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *dy = in[0] + r * D, *x = in[1] + r * D, m = in[2][2 * r], rs = in[2][2 * r + 1];
        for (int64_t j = 0; j < D; j++) {
            if (c) out[j] += dy[j];
            out[c * D + j] += dy[j] * (x[j] - m) * rs;
        }
    }
}

/* ---- gradient ---- */

/* Row r of the [k, D] parameter gradients, as [D]. */
static int pg_row(Graph *g, int node, int pg, int r) {
    int64_t D = X(pg)->shape.d[1];
    return ir_reshape(g, ir_slice(g, pg, 0, r, r + 1, LOC), shape_make(1, &D, 0), LOC);
}

static void g_norm(Graph *g, int node, int gy, int *gx) {
    int c = X(node)->op == OP_layer_norm;
    const AttrArg *attrs = ATTRS(AI(A_CENTRED, c), AF(A_EPS, attr_f(X(node), A_EPS)));
    int x = IN(0);
    int st = graph_add(g, OP_row_norm_stats, &x, 1, attrs, LOC);
    int bin[4] = {gy, x, IN(1), st};
    gx[0] = graph_add(g, OP_row_norm_bwd, bin, 4, attrs, LOC);
    int pin[3] = {gy, x, st};
    int pg = graph_add(g, OP_row_norm_param_grads, pin, 3, attrs, LOC);
    gx[1] = pg_row(g, node, pg, c);
    if (c) gx[2] = pg_row(g, node, pg, 0);
}

/* ---- gradient-check cases: rank 2, rank 3 with the batch first, and D = 1 ---- */

static int norm_case(Graph *g, int i, Op op) {
    static const struct {
        int r;
        int64_t d[3];
        uint8_t bm;
    } c[] = {
        {2, {3, 5}, 0},
        {3, {2, 3, 4}, 1},
        {2, {2, 1}, 1},
    };
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int x = case_param(g, c[i].r, c[i].d, c[i].bm, INIT_UNIFORM, -2, 2);
    int64_t D = c[i].d[c[i].r - 1];
    int nin = op == OP_layer_norm ? 3 : 2, in[3] = {x, case_param(g, 1, &D, 0, INIT_UNIFORM, 0.5, 1.5), -1};
    if (nin == 3) in[2] = case_param(g, 1, &D, 0, INIT_UNIFORM, -1, 1);
    return graph_add(g, op, in, nin, ATTRS(AF(A_EPS, 1e-3)), NULL);
}
static int c_layer_norm(Graph *g, int i) { return norm_case(g, i, OP_layer_norm); }
static int c_rms_norm(Graph *g, int i) { return norm_case(g, i, OP_rms_norm); }

const OpRules rules_layer_norm = {.shape = s_norm, .grad = g_norm, .eval = e_norm, .cases = c_layer_norm};
const OpRules rules_rms_norm = {.shape = s_norm, .grad = g_norm, .eval = e_norm, .cases = c_rms_norm};
const OpRules rules_row_norm_stats = {.shape = s_stats, .eval = e_stats, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_row_norm_bwd = {.shape = s_bwd, .eval = e_bwd, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_row_norm_param_grads = {.shape = s_pgrads, .eval = e_pgrads, .flags = OPF_BACKWARD_ONLY};
