/* ops_conv.c - rules of conv2d (NCHW, stride, padding, dilation, groups) and the two ops
 * its gradient rule creates: conv2d_bwd_data (the input's gradient, which is also the
 * transposed convolution layer, conv_transpose2d) and conv2d_bwd_filter (the weight's
 * gradient).
 *
 * Attributes (attrs.def): stride, pad, dilation ([h, w] each), groups. The backward ops
 * carry the size their result must have (in_size: the input's H, W; kernel: KH, KW), since
 * strided convolutions lose it.
 *
 * The C target calls mlc_conv2d_* from the kernel library (runtime/kernels/c/conv_*.c):
 * per sample, vector GEMM kernels that read the column matrix in place as shifted rows
 * of the padded input (strided convolutions: of its stride phases; the input gradient:
 * of dy, phase by phase of dx). The OpenMP team shares the samples (targets/c/conv.c,
 * mlc_conv_plan_for). A conv2d with an
 * epilogue (fuse.c: bias, activation, residual add) runs its samples in the generated
 * code's own loop (mlc_conv2d_fwd_sample), each finished by the epilogue while it is in
 * cache; on CUDA the epilogue's kernel follows the convolution. */
#include <stdio.h>

#include "ops.h"
#include "ops_attrs.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* A kernel of k taps, d apart, spans d * (k - 1) + 1 input elements. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    return window_count(in + 2 * p, d * (k - 1) + 1, s);
}

/* The geometry from the attributes, the input's shape x [N, C, H, W] and the weight's
 * w [O, C/G, KH, KW]. */
static Geom geom(const Node *n, const Shape *x, const Shape *w) {
    Geom q;
    q.C = x->d[1], q.H = x->d[2], q.W = x->d[3];
    q.O = w->d[0], q.KH = w->d[2], q.KW = w->d[3];
    q.sh = attr_h(n, A_STRIDE), q.sw = attr_w(n, A_STRIDE);
    q.ph = attr_h(n, A_PAD), q.pw = attr_w(n, A_PAD);
    q.dh = attr_h(n, A_DILATION), q.dw = attr_w(n, A_DILATION);
    q.G = attr_i(n, A_GROUPS);
    q.Ho = out_size(q.H, q.KH, q.sh, q.ph, q.dh);
    q.Wo = out_size(q.W, q.KW, q.sw, q.pw, q.dw);
    return q;
}

static const char *check_geom(Graph *g, const Geom *q) {
    if (q->sh < 1 || q->sw < 1 || q->dh < 1 || q->dw < 1 || q->ph < 0 || q->pw < 0 || q->G < 1)
        return shape_err(g, "conv2d: stride and dilation must be at least 1, padding at least 0");
    if (q->C % q->G || q->O % q->G)
        return shape_err(g, "conv2d: %lld input and %lld output channels are not divisible by groups = %lld",
                         (long long)q->C, (long long)q->O, (long long)q->G);
    if (q->Ho < 1 || q->Wo < 1) {
        char dil[160] = ""; /* a dilated kernel's span, which is what must fit */
        if (q->dh > 1 || q->dw > 1)
            snprintf(dil, sizeof dil, " with dilation %lldx%lld spans %lldx%lld and", (long long)q->dh,
                     (long long)q->dw, (long long)(q->dh * (q->KH - 1) + 1), (long long)(q->dw * (q->KW - 1) + 1));
        return shape_err(g, "conv2d: a %lldx%lld kernel%s does not fit the %lldx%lld input with padding %lldx%lld",
                         (long long)q->KH, (long long)q->KW, dil, (long long)q->H, (long long)q->W, (long long)q->ph,
                         (long long)q->pw);
    }
    return NULL;
}

/* B itself, not a merged B*k: the kernels run sample by sample over B */
static int is_nchw(const Graph *g, const Node *x) {
    return x->shape.rank == 4 && x->shape.bmask == 1 && x->shape.d[0] == g->batch && x->dtype == DT_F32;
}

static const char *s_conv(Graph *g, Node *n) {
    const Node *x = X(n->in[0]), *w = X(n->in[1]);
    char a[96], b[96];
    if (!is_nchw(g, x) || w->shape.rank != 4 || w->shape.bmask)
        return shape_err(g,
                         "conv2d needs an input f32[B, C, H, W] and a weight f32[O, C/groups, KH, KW], found %s and %s",
                         shape_str(&x->shape, x->dtype, a, sizeof a), shape_str(&w->shape, w->dtype, b, sizeof b));
    Geom q = geom(n, &x->shape, &w->shape);
    const char *err = check_geom(g, &q);
    if (err) return err;
    if (w->shape.d[1] * q.G != q.C)
        return shape_err(g, "conv2d: the weight %s expects %lld input channels (groups = %lld), the input %s has %lld",
                         shape_str(&w->shape, w->dtype, b, sizeof b), (long long)(w->shape.d[1] * q.G), (long long)q.G,
                         shape_str(&x->shape, x->dtype, a, sizeof a), (long long)q.C);
    int64_t d[4] = {x->shape.d[0], q.O, q.Ho, q.Wo};
    n->shape = shape_make(4, d, 1);
    n->dtype = DT_F32;
    return NULL;
}

/* conv2d_bwd_data(dy [N, O, Ho, Wo], w) -> dx [N, C, H, W]; H, W in in_size. Also the
 * transposed convolution (conv_transpose2d), so its operands come from users too. */
static const char *s_bwd_data(Graph *g, Node *n) {
    const Node *dy = X(n->in[0]), *w = X(n->in[1]);
    char a[96], b[96];
    int64_t G = attr_i(n, A_GROUPS), H = attr_h(n, A_IN_SIZE), W = attr_w(n, A_IN_SIZE);
    if (!is_nchw(g, dy) || w->shape.rank != 4 || w->shape.bmask || w->dtype != DT_F32 ||
        w->shape.d[0] != dy->shape.d[1] || G < 1 || w->shape.d[0] % G || H < 1 || W < 1)
        return shape_err(
            g,
            "a transposed convolution needs an input f32[B, C, H, W] and a weight f32[C, O/groups, KH, KW], "
            "found %s and %s",
            shape_str(&dy->shape, dy->dtype, a, sizeof a), shape_str(&w->shape, w->dtype, b, sizeof b));
    if ((double)w->shape.d[1] * (double)G * (double)H * (double)W > (double)IR_MAX_NUMEL)
        return shape_err(g, "a transposed convolution's output would have more than %lld elements per sample",
                         (long long)IR_MAX_NUMEL);
    int64_t d[4] = {dy->shape.d[0], w->shape.d[1] * G, H, W};
    n->shape = shape_make(4, d, 1);
    n->dtype = DT_F32;
    Geom q = geom(n, &n->shape, &w->shape);
    const char *err = check_geom(g, &q);
    if (err) return err;
    /* gradient rules size dx exactly, and conv_transpose2d's builtin keeps output_pad below
     * the stride (builtins.c), so this is an internal inconsistency if it fires */
    if (q.Ho != dy->shape.d[2] || q.Wo != dy->shape.d[3])
        return shape_err(g, "conv2d_bwd_data: an output of %lldx%lld does not convolve back to the input's %lldx%lld",
                         (long long)q.H, (long long)q.W, (long long)dy->shape.d[2], (long long)dy->shape.d[3]);
    return NULL;
}

/* conv2d_bwd_filter(x, dy) -> dw [O, C/G, KH, KW]; KH, KW in kernel */
static const char *s_bwd_filter(Graph *g, Node *n) {
    const Node *x = X(n->in[0]), *dy = X(n->in[1]);
    int64_t d[4] = {dy->shape.d[1], x->shape.d[1] / attr_i(n, A_GROUPS), attr_h(n, A_KERNEL), attr_w(n, A_KERNEL)};
    n->shape = shape_make(4, d, 0);
    n->dtype = DT_F32;
    Geom q = geom(n, &x->shape, &n->shape);
    if (q.Ho != dy->shape.d[2] || q.Wo != dy->shape.d[3]) return shape_err(g, "conv2d_bwd_filter: inconsistent sizes");
    return NULL;
}

/* ---- reference evaluation: direct loops ---- */

/* Calls f for every tap of the convolution: each (input, weight, output) index triple
 * that contributes x[xi] * w[wi] to y[yi]. Slow and plain, as a reference should be. */
typedef void (*TapFn)(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi);

static void visit_taps(const Geom *q, int64_t N, TapFn f, double *const *in, double *out) {
    int64_t Cg = q->C / q->G, Og = q->O / q->G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < q->O; o++)
            for (int64_t oh = 0; oh < q->Ho; oh++)
                for (int64_t ow = 0; ow < q->Wo; ow++)
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < q->KH; kh++)
                            for (int64_t kw = 0; kw < q->KW; kw++) {
                                int64_t ih = oh * q->sh - q->ph + kh * q->dh, iw = ow * q->sw - q->pw + kw * q->dw;
                                if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W) continue;
                                int64_t xi = ((n * q->C + o / Og * Cg + c) * q->H + ih) * q->W + iw;
                                int64_t wi = ((o * Cg + c) * q->KH + kh) * q->KW + kw;
                                int64_t yi = ((n * q->O + o) * q->Ho + oh) * q->Wo + ow;
                                f(in, out, xi, wi, yi);
                            }
}

static void tap_fwd(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) {
    out[yi] += in[0][xi] * in[1][wi];
}
static void tap_data(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) {
    out[xi] += in[0][yi] * in[1][wi];
}
static void tap_filter(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) {
    out[wi] += in[0][xi] * in[1][yi];
}

static void zero(double *out, const Shape *s) {
    for (int64_t i = 0; i < shape_numel(s); i++) out[i] = 0;
}

static void e_conv(const Graph *g, const Node *nd, double *const *in, double *out) {
    Geom q = geom(nd, &X(nd->in[0])->shape, &X(nd->in[1])->shape);
    zero(out, &nd->shape);
    visit_taps(&q, nd->shape.d[0], tap_fwd, in, out);
}

static void e_bwd_data(const Graph *g, const Node *nd, double *const *in, double *out) {
    Geom q = geom(nd, &nd->shape, &X(nd->in[1])->shape);
    zero(out, &nd->shape);
    visit_taps(&q, nd->shape.d[0], tap_data, in, out);
}

static void e_bwd_filter(const Graph *g, const Node *nd, double *const *in, double *out) {
    Geom q = geom(nd, &X(nd->in[0])->shape, &nd->shape);
    zero(out, &nd->shape);
    visit_taps(&q, X(nd->in[0])->shape.d[0], tap_filter, in, out);
}

/* ---- gradient ---- */

/* A backward op with conv2d's geometry and the size of its result: in_size (bwd_data) or
 * kernel (bwd_filter). */
static int bwd(Graph *g, int node, Op op, int a, int b, int64_t h, int64_t w) {
    int in[2] = {a, b};
    AttrName size = op == OP_conv2d_bwd_data ? A_IN_SIZE : A_KERNEL;
    return graph_add_like(g, op, in, 2, X(node), ATTRS(AP(size, h, w)), LOC);
}

static void g_conv(Graph *g, int node, int gy, int *gx) {
    const Shape *xs = &X(IN(0))->shape, *ws = &X(IN(1))->shape;
    gx[0] = bwd(g, node, OP_conv2d_bwd_data, gy, IN(1), xs->d[2], xs->d[3]);
    gx[1] = bwd(g, node, OP_conv2d_bwd_filter, IN(0), gy, ws->d[2], ws->d[3]);
}

/* dx = conv2d_bwd_data(dy, w) is linear in each operand, the adjoint of conv2d's map from
 * the input: its gradient with respect to dy is conv2d of the incoming gradient, and with
 * respect to w the filter gradient of that gradient against dy (the roles of conv2d's x
 * and dy swapped). Used when it is a layer (conv_transpose2d), not conv2d's gradient. */
static void g_bwd_data(Graph *g, int node, int gy, int *gx) {
    const Shape *ws = &X(IN(1))->shape;
    int in[2] = {gy, IN(1)};
    gx[0] = graph_add_like(g, OP_conv2d, in, 2, X(node), NULL, LOC);
    gx[1] = bwd(g, node, OP_conv2d_bwd_filter, gy, IN(0), ws->d[2], ws->d[3]);
}

Geom conv_node_geom(const Graph *g, const Node *n) {
    if (n->op == OP_conv2d) return geom(n, &X(n->in[0])->shape, &X(n->in[1])->shape);
    if (n->op == OP_conv2d_bwd_data) return geom(n, &n->shape, &X(n->in[1])->shape);
    return geom(n, &X(n->in[0])->shape, &n->shape);
}

/* 2 B O Ho Wo (C/G) KH KW for each of the three */
static double f_conv(const Graph *g, const Node *n) {
    Geom q = conv_node_geom(g, n);
    double B = (double)(n->op == OP_conv2d_bwd_filter ? X(n->in[0])->shape.d[0] : n->shape.d[0]);
    return 2.0 * B * (double)(q.O * q.Ho * q.Wo) * (double)(q.C / q.G * q.KH * q.KW);
}

/* ---- gradient-check cases: stride, padding, dilation, groups, odd sizes ---- */

static int c_conv(Graph *g, int i) {
    // clang-format off
    static const struct { int64_t C, H, W, O, K, s, p, d, G; } c[] = {
        {2, 5, 5, 3, 3, 1, 1, 1, 1}, /* same padding */
        {3, 7, 6, 2, 3, 2, 0, 1, 1}, /* stride 2, odd size, no padding */
        {2, 6, 6, 2, 3, 1, 2, 2, 1}, /* dilation 2 */
        {4, 5, 5, 4, 3, 1, 1, 1, 2}, /* groups 2 */
        {3, 4, 5, 2, 1, 1, 0, 1, 1}, /* 1x1: the direct path */
        {2, 5, 5, 3, 1, 2, 0, 1, 1}, /* 1x1 stride 2: a downsampling shortcut */
    };
    // clang-format on
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int64_t xd[4] = {g->batch, c[i].C, c[i].H, c[i].W}, wd[4] = {c[i].O, c[i].C / c[i].G, c[i].K, c[i].K};
    int in[2] = {case_param(g, 4, xd, 1, INIT_UNIFORM, -1, 1), case_param(g, 4, wd, 0, INIT_UNIFORM, -1, 1)};
    return graph_add(g, OP_conv2d, in, 2,
                     ATTRS(AP(A_STRIDE, c[i].s, c[i].s), AP(A_PAD, c[i].p, c[i].p), AP(A_DILATION, c[i].d, c[i].d),
                           AI(A_GROUPS, c[i].G)),
                     NULL);
}

const OpRules rules_conv2d = {.shape = s_conv,
                              .grad = g_conv,
                              .eval = e_conv,
                              .flops = f_conv,
                              .cases = c_conv,
                              .flags = OPF_SAMPLE_EPILOGUE | OPF_CHECKPOINT};
/* The transposed convolution's cases: dy [B, O, Ho, Wo], w [O, C/G, K, K] -> [B, C, H, W],
 * with the output sizes a stride leaves open (output padding) and groups. */
static int c_bwd_data(Graph *g, int i) {
    // clang-format off
    static const struct { int64_t O, Hi, Wi, C, K, s, p, d, G, op; } c[] = {
        {3, 4, 4, 2, 3, 1, 1, 1, 1, 0}, /* same size */
        {2, 3, 4, 3, 3, 2, 1, 1, 1, 1}, /* stride 2, output padding 1: 2x upsampling */
        {2, 3, 3, 2, 4, 2, 1, 1, 1, 0}, /* 4x4 stride 2 pad 1, the DCGAN layer */
        {4, 3, 3, 4, 3, 1, 0, 2, 2, 0}, /* dilation 2, groups 2 */
    };
    // clang-format on
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int64_t H = (c[i].Hi - 1) * c[i].s - 2 * c[i].p + c[i].d * (c[i].K - 1) + 1 + c[i].op;
    int64_t W = (c[i].Wi - 1) * c[i].s - 2 * c[i].p + c[i].d * (c[i].K - 1) + 1 + c[i].op;
    int64_t dd[4] = {g->batch, c[i].O, c[i].Hi, c[i].Wi}, wd[4] = {c[i].O, c[i].C / c[i].G, c[i].K, c[i].K};
    int in[2] = {case_param(g, 4, dd, 1, INIT_UNIFORM, -1, 1), case_param(g, 4, wd, 0, INIT_UNIFORM, -1, 1)};
    return graph_add(g, OP_conv2d_bwd_data, in, 2,
                     ATTRS(AP(A_STRIDE, c[i].s, c[i].s), AP(A_PAD, c[i].p, c[i].p), AP(A_DILATION, c[i].d, c[i].d),
                           AI(A_GROUPS, c[i].G), AP(A_IN_SIZE, H, W)),
                     NULL);
}

const OpRules rules_conv2d_bwd_data = {.shape = s_bwd_data,
                                       .grad = g_bwd_data,
                                       .eval = e_bwd_data,
                                       .flops = f_conv,
                                       .cases = c_bwd_data,
                                       .flags = OPF_SAMPLE_EPILOGUE};
const OpRules rules_conv2d_bwd_filter = {
    .shape = s_bwd_filter, .eval = e_bwd_filter, .flops = f_conv, .flags = OPF_BACKWARD_ONLY};
