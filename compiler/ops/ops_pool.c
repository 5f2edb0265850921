/* ops_pool.c - rules of max_pool2d and avg_pool2d (NCHW) and their backward ops.
 *
 * Attributes (attrs.def): kernel, stride, pad, each [h, w]. Max pooling ignores padding; average pooling counts it as
 * zeros (divisor KH*KW). Max pooling's gradient goes to the first maximal element of each
 * window in row-major order, so ties are broken the same way every run.
 * avgpool2d_bwd carries the input's H, W in in_size. */
#include "ops.h"
#include "ops_attrs.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

static PGeom pgeom(const Node *n, int64_t H, int64_t W) {
    PGeom q;
    q.H = H, q.W = W;
    q.KH = attr_h(n, A_KERNEL), q.KW = attr_w(n, A_KERNEL);
    q.sh = attr_h(n, A_STRIDE), q.sw = attr_w(n, A_STRIDE);
    q.ph = attr_h(n, A_PAD), q.pw = attr_w(n, A_PAD);
    q.Ho = window_count(H + 2 * q.ph, q.KH, q.sh);
    q.Wo = window_count(W + 2 * q.pw, q.KW, q.sw);
    return q;
}

PGeom pool_node_geom(const Graph *g, const Node *n) {
    const Shape *x = n->op == OP_avgpool2d_bwd   ? &n->shape
                     : n->op == OP_maxpool2d_bwd ? &X(n->in[1])->shape
                                                 : &X(n->in[0])->shape;
    return pgeom(n, x->d[2], x->d[3]);
}

static const char *s_pool(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    char a[96];
    if (x->shape.rank != 4 || x->shape.bmask != 1 || x->shape.d[0] != g->batch || x->dtype != DT_F32)
        return shape_err(g, "%s needs an input f32[B, C, H, W], found %s", op_of(n)->name,
                         shape_str_at(&x->shape, x->dtype, g->batch, a, sizeof a));
    PGeom q = pgeom(n, x->shape.d[2], x->shape.d[3]);
    if (q.KH < 1 || q.KW < 1 || q.sh < 1 || q.sw < 1)
        return shape_err(g, "%s: kernel and stride must be at least 1", op_of(n)->name);
    if (q.ph * 2 > q.KH || q.pw * 2 > q.KW)
        return shape_err(g, "%s: padding can be at most half the kernel", op_of(n)->name);
    if (q.Ho < 1 || q.Wo < 1)
        return shape_err(g, "%s: a %lldx%lld window does not fit %s", op_of(n)->name, (long long)q.KH, (long long)q.KW,
                         shape_str(&x->shape, x->dtype, a, sizeof a));
    n->shape = x->shape;
    n->shape.d[2] = q.Ho, n->shape.d[3] = q.Wo;
    n->dtype = DT_F32;
    return NULL;
}

/* maxpool2d_bwd(dy, x) -> dx, x's shape */
static const char *s_max_bwd(Graph *g, Node *n) {
    n->shape = X(n->in[1])->shape;
    n->dtype = DT_F32;
    return NULL;
}

/* avgpool2d_bwd(dy) -> dx [N, C, in_size] */
static const char *s_avg_bwd(Graph *g, Node *n) {
    n->shape = X(n->in[0])->shape;
    n->shape.d[2] = attr_h(n, A_IN_SIZE), n->shape.d[3] = attr_w(n, A_IN_SIZE);
    n->dtype = DT_F32;
    return NULL;
}

/* ---- reference evaluation ---- */

typedef enum { P_MAX, P_AVG, P_MAX_BWD, P_AVG_BWD } PoolKind;

static void pool_eval(const PGeom *q, int64_t planes, PoolKind k, const double *a, const double *x, double *out) {
    int64_t in_sz = q->H * q->W, out_sz = q->Ho * q->Wo;
    if (k == P_MAX_BWD || k == P_AVG_BWD)
        for (int64_t i = 0; i < planes * in_sz; i++) out[i] = 0;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oh = 0; oh < q->Ho; oh++)
            for (int64_t ow = 0; ow < q->Wo; ow++) {
                int64_t best = -1, o = p * out_sz + oh * q->Wo + ow;
                double s = 0;
                for (int64_t kh = 0; kh < q->KH; kh++)
                    for (int64_t kw = 0; kw < q->KW; kw++) {
                        int64_t ih = oh * q->sh - q->ph + kh, iw = ow * q->sw - q->pw + kw;
                        if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W) continue;
                        int64_t i = p * in_sz + ih * q->W + iw;
                        if (k == P_MAX || k == P_MAX_BWD) { /* the input's values: a forward, x backward */
                            const double *src = k == P_MAX_BWD ? x : a;
                            if (best < 0 || src[i] > src[best]) best = i;
                        }
                        if (k == P_AVG) s += a[i];
                        if (k == P_AVG_BWD) out[i] += a[o] / (double)(q->KH * q->KW);
                    }
                if (k == P_MAX) out[o] = a[best];
                if (k == P_AVG) out[o] = s / (double)(q->KH * q->KW);
                if (k == P_MAX_BWD) out[best] += a[o];
            }
}

static int64_t planes(const Node *n) { return n->shape.d[0] * n->shape.d[1]; }

static void e_max(const Graph *g, const Node *n, double *const *in, double *out) {
    PGeom q = pool_node_geom(g, n);
    pool_eval(&q, planes(n), P_MAX, in[0], NULL, out);
}
static void e_avg(const Graph *g, const Node *n, double *const *in, double *out) {
    PGeom q = pool_node_geom(g, n);
    pool_eval(&q, planes(n), P_AVG, in[0], NULL, out);
}
static void e_max_bwd(const Graph *g, const Node *n, double *const *in, double *out) {
    PGeom q = pool_node_geom(g, n);
    pool_eval(&q, planes(n), P_MAX_BWD, in[0], in[1], out);
}
static void e_avg_bwd(const Graph *g, const Node *n, double *const *in, double *out) {
    PGeom q = pool_node_geom(g, n);
    pool_eval(&q, planes(n), P_AVG_BWD, in[0], NULL, out);
}

/* ---- gradients ---- */

static void g_max(Graph *g, int node, int gy, int *gx) {
    int in[2] = {gy, IN(0)};
    gx[0] = graph_add_like(g, OP_maxpool2d_bwd, in, 2, X(node), NULL, LOC);
}
static void g_avg(Graph *g, int node, int gy, int *gx) {
    const Shape *x = &X(IN(0))->shape;
    gx[0] = graph_add_like(g, OP_avgpool2d_bwd, &gy, 1, X(node), ATTRS(AP(A_IN_SIZE, x->d[2], x->d[3])), LOC);
}

/* ---- gradient-check cases ---- */

static int pool_case(Graph *g, int i, Op op) {
    // clang-format off
    static const struct { int64_t C, H, W, k, s, p; } c[] = {
        {2, 4, 4, 2, 2, 0}, /* the classic 2x2 */
        {1, 5, 7, 3, 2, 1}, /* odd sizes, overlapping windows, padding */
        {2, 5, 5, 3, 1, 0}, /* stride 1 */
    };
    // clang-format on
    if (i >= 3) return -1;
    int64_t xd[4] = {g->batch, c[i].C, c[i].H, c[i].W};
    int x = case_param(g, 4, xd, 1, INIT_UNIFORM, -2, 2);
    return graph_add(g, op, &x, 1,
                     ATTRS(AP(A_KERNEL, c[i].k, c[i].k), AP(A_STRIDE, c[i].s, c[i].s), AP(A_PAD, c[i].p, c[i].p)),
                     NULL);
}
static int c_max(Graph *g, int i) { return pool_case(g, i, OP_max_pool2d); }
static int c_avg(Graph *g, int i) { return pool_case(g, i, OP_avg_pool2d); }

const OpRules rules_max_pool2d = {
    .shape = s_pool, .grad = g_max, .eval = e_max, .cases = c_max, .flags = OPF_RECOMPUTE | OPF_KEEPS_FINITE};
const OpRules rules_avg_pool2d = {
    .shape = s_pool, .grad = g_avg, .eval = e_avg, .cases = c_avg, .flags = OPF_RECOMPUTE};
const OpRules rules_maxpool2d_bwd = {.shape = s_max_bwd, .eval = e_max_bwd, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_avgpool2d_bwd = {.shape = s_avg_bwd, .eval = e_avg_bwd, .flags = OPF_BACKWARD_ONLY};
