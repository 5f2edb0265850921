/* ops_conv.c - rules of conv2d (NCHW, stride, padding, dilation, groups) and the two ops
 * its gradient rule creates: conv2d_bwd_data (the input's gradient) and
 * conv2d_bwd_filter (the weight's gradient).
 *
 * Attributes, 16 bits per value: iattr0 = stride h | w << 16, iattr1 = pad h | w << 16,
 * iattr2 = dilation h | w << 16, iattr3 = groups. The backward ops carry the size their
 * result must have (input H, W or kernel KH, KW) in fattr0/fattr1, since strided
 * convolutions lose it.
 *
 * The C target calls mlc_conv2d_* from the kernel library (runtime/kernels/c/conv_*.c):
 * per sample, vector GEMM kernels that read the column matrix in place as shifted rows
 * of the padded input (strided convolutions: of its stride phases; the input gradient:
 * of dy, phase by phase of dx). The OpenMP team shares the samples (mlc_conv_plan_for). A conv2d with an
 * epilogue (fuse.c: bias, activation, residual add) runs its samples in the generated
 * code's own loop (mlc_conv2d_fwd_sample), each finished by the epilogue while it is in
 * cache; on CUDA the epilogue's kernel follows the convolution. */
#include <stdio.h>

#include "emit.h"
#include "kernels/mlc_conv_layout.h"
#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

static int lo16(int64_t v) { return (int)(v & 0xffff); }
static int hi16(int64_t v) { return (int)((v >> 16) & 0xffff); }

typedef struct Geom {
    int64_t C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, G, Ho, Wo;
} Geom;

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* The geometry from the attributes, the input's shape x [N, C, H, W] and the weight's
 * w [O, C/G, KH, KW]. */
static Geom geom(const Node *n, const Shape *x, const Shape *w) {
    Geom q;
    q.C = x->d[1], q.H = x->d[2], q.W = x->d[3];
    q.O = w->d[0], q.KH = w->d[2], q.KW = w->d[3];
    q.sh = lo16(n->iattr[0]), q.sw = hi16(n->iattr[0]);
    q.ph = lo16(n->iattr[1]), q.pw = hi16(n->iattr[1]);
    q.dh = lo16(n->iattr[2]), q.dw = hi16(n->iattr[2]);
    q.G = n->iattr[3];
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
    if (q->Ho < 1 || q->Wo < 1)
        return shape_err(g, "conv2d: a %lldx%lld kernel does not fit a %lldx%lld input with this padding",
                         (long long)q->KH, (long long)q->KW, (long long)q->H, (long long)q->W);
    return NULL;
}

static int is_nchw(const Node *x) { return x->shape.rank == 4 && x->shape.bmask == 1 && x->dtype == DT_F32; }

static const char *s_conv(Graph *g, Node *n) {
    const Node *x = X(n->in[0]), *w = X(n->in[1]);
    char a[96], b[96];
    if (!is_nchw(x) || w->shape.rank != 4 || w->shape.bmask)
        return shape_err(g, "conv2d needs an input f32[B, C, H, W] and a weight f32[O, C/groups, KH, KW], found %s and %s",
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

/* conv2d_bwd_data(dy [N, O, Ho, Wo], w) -> dx [N, C, H, W]; H, W in fattr0/1 */
static const char *s_bwd_data(Graph *g, Node *n) {
    const Node *dy = X(n->in[0]), *w = X(n->in[1]);
    int64_t d[4] = {dy->shape.d[0], w->shape.d[1] * n->iattr[3], (int64_t)n->fattr[0], (int64_t)n->fattr[1]};
    n->shape = shape_make(4, d, 1);
    n->dtype = DT_F32;
    Geom q = geom(n, &n->shape, &w->shape);
    if (q.Ho != dy->shape.d[2] || q.Wo != dy->shape.d[3]) return shape_err(g, "conv2d_bwd_data: inconsistent sizes");
    return NULL;
}

/* conv2d_bwd_filter(x, dy) -> dw [O, C/G, KH, KW]; KH, KW in fattr0/1 */
static const char *s_bwd_filter(Graph *g, Node *n) {
    const Node *x = X(n->in[0]), *dy = X(n->in[1]);
    int64_t d[4] = {dy->shape.d[1], x->shape.d[1] / n->iattr[3], (int64_t)n->fattr[0], (int64_t)n->fattr[1]};
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

static void tap_fwd(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) { out[yi] += in[0][xi] * in[1][wi]; }
static void tap_data(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) { out[xi] += in[0][yi] * in[1][wi]; }
static void tap_filter(double *const *in, double *out, int64_t xi, int64_t wi, int64_t yi) { out[wi] += in[0][xi] * in[1][yi]; }

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

static int bwd(Graph *g, int node, Op op, int a, int b, int64_t f0, int64_t f1) {
    double fa[4] = {(double)f0, (double)f1, 0, 0};
    int in[2] = {a, b};
    return graph_add(g, op, in, 2, X(node)->iattr, fa, LOC);
}

static void g_conv(Graph *g, int node, int gy, int *gx) {
    const Shape *xs = &X(IN(0))->shape, *ws = &X(IN(1))->shape;
    gx[0] = bwd(g, node, OP_conv2d_bwd_data, gy, IN(1), xs->d[2], xs->d[3]);
    gx[1] = bwd(g, node, OP_conv2d_bwd_filter, IN(0), gy, ws->d[2], ws->d[3]);
}

/* ---- the C target's work plan and the workspace ---- */

static Geom node_geom(const Graph *g, const Node *n) {
    if (n->op == OP_conv2d) return geom(n, &X(n->in[0])->shape, &X(n->in[1])->shape);
    if (n->op == OP_conv2d_bwd_data) return geom(n, &n->shape, &X(n->in[1])->shape);
    return geom(n, &X(n->in[0])->shape, &n->shape);
}

/* The C kernels' plan and workspace (mlc_conv_layout.h, shared with the kernels): a
 * scratch slot per thread (a slot holds a whole padded sample; the trainer allocates one
 * per thread of its team when it creates the model, so the count is not fixed here), then
 * a part the threads share. */
static mlc_conv_geom kernel_geom(const Geom *q) {
    return (mlc_conv_geom){.C = (int)q->C, .H = (int)q->H, .W = (int)q->W, .O = (int)q->O, .KH = (int)q->KH,
                           .KW = (int)q->KW, .sh = (int)q->sh, .sw = (int)q->sw, .ph = (int)q->ph, .pw = (int)q->pw,
                           .dh = (int)q->dh, .dw = (int)q->dw, .G = (int)q->G, .Ho = (int)q->Ho, .Wo = (int)q->Wo};
}

static int kernel_op(Op op) {
    return op == OP_conv2d ? MLC_CONV_FWD : op == OP_conv2d_bwd_data ? MLC_CONV_BWD_DATA : MLC_CONV_BWD_FILTER;
}

/* CUDA: the launchers (templates/cuda_device.cuh) take the batch in chunks of
 * cuda_chunk samples; a sample needs K * P column floats (none on the direct path: 1x1,
 * stride 1, no padding) and, for the weight gradient, an Og * K slot. A chunk's
 * workspace stays within CUDA_CHUNK_FLOATS, so the workspace does not grow with the
 * batch: a whole batch's columns were the biggest tensor of the CUDA ResNets' arenas
 * (77 MB of resnet20_cifar's 281). Fewer, bigger chunks would launch fewer GEMMs; 8 MiB
 * keeps each GEMM batch big enough to fill the GPU on these networks. */
#define CUDA_CHUNK_FLOATS ((int64_t)1 << 21)

static int64_t cuda_sample_floats(const Geom *q, Op op) {
    int64_t K = q->C / q->G * q->KH * q->KW, P = q->Ho * q->Wo, Og = q->O / q->G;
    int direct = q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
    return (direct ? 0 : K * P) + (op == OP_conv2d_bwd_filter ? Og * K : 0);
}

static int64_t cuda_chunk(const Geom *q, Op op) {
    int64_t per = cuda_sample_floats(q, op);
    if (per == 0) return (int64_t)1 << 30; /* no workspace: the whole batch at once */
    return CUDA_CHUNK_FLOATS / per > 1 ? CUDA_CHUNK_FLOATS / per : 1;
}

/* C: the plan's shared part and a scratch slot per thread, independent of the batch
 * size. CUDA: a chunk's columns and weight-gradient slots (above). */
static void ws_conv(const Graph *g, const Node *n, TargetKind t, Workspace *w) {
    Geom q = node_geom(g, n);
    if (t == TARGET_C) {
        const mlc_conv_geom kg = kernel_geom(&q);
        const mlc_conv_plan p = mlc_conv_plan_for(&kg, kernel_op(n->op), g->batch);
        w->c = mlc_conv_shared_floats(&kg, &p, kernel_op(n->op));
        w->per_thread = p.slot;
    } else {
        int64_t per = cuda_sample_floats(&q, n->op);
        w->c = per ? per * cuda_chunk(&q, n->op) : 0;
    }
}

/* 2 B O Ho Wo (C/G) KH KW for each of the three */
static double f_conv(const Graph *g, const Node *n) {
    Geom q = node_geom(g, n);
    double B = (double)(n->op == OP_conv2d_bwd_filter ? X(n->in[0])->shape.d[0] : n->shape.d[0]);
    return 2.0 * B * (double)(q.O * q.Ho * q.Wo) * (double)(q.C / q.G * q.KH * q.KW);
}

/* ---- C emission: one call into the kernel library's conv routines (libmlckernels) ---- */

/* mlc_conv_geom (runtime/kernels/mlc_geom.h), which both targets' kernels take */
static void emit_geom(EmitCtx *e, const Geom *q) {
    emit(e, "static const mlc_conv_geom geom = {.C = %lld, .H = %lld, .W = %lld, .O = %lld, .KH = %lld, .KW = %lld, "
            ".sh = %lld, .sw = %lld, .ph = %lld, .pw = %lld, .dh = %lld, .dw = %lld, .G = %lld, .Ho = %lld, .Wo = %lld};",
         (long long)q->C, (long long)q->H, (long long)q->W, (long long)q->O, (long long)q->KH, (long long)q->KW,
         (long long)q->sh, (long long)q->sw, (long long)q->ph, (long long)q->pw, (long long)q->dh, (long long)q->dw,
         (long long)q->G, (long long)q->Ho, (long long)q->Wo);
}

static void emit_conv_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d ? "mlc_conv2d_fwd" : n->op == OP_conv2d_bwd_data ? "mlc_conv2d_bwd_data"
                                                                                         : "mlc_conv2d_bwd_filter";
    const mlc_conv_geom kg = kernel_geom(&q);
    const mlc_conv_plan p = mlc_conv_plan_for(&kg, kernel_op(n->op), e->g->batch);
    emit(e, "{");
    e->indent++;
    emit_geom(e, &q);
    /* self->slots: the scratch slots the model was created with (a thread each) */
    emit(e, "const mlc_conv_plan plan = {.spt = %d, .slots = self->slots, .red = %d, .slot = %ld};", p.spt, p.red,
         p.slot);
    const char *x = emit_buf(e, n->in[0]), *w = emit_buf(e, n->in[1]), *y = emit_buf(e, id), *ws = e->ws ? e->ws : "NULL";
    const char *call = arena_printf(e->arena, "%s(&geom, &plan, B, %s, %s, %s, %s)", fn, x, w, y, ws);
    if (emit_epilogue_of(e, id) >= 0) { /* sample by sample, each finished by the epilogue */
        const char *pre = n->op == OP_conv2d ? "mlc_conv2d_fwd" : "mlc_conv2d_bwd_data";
        c_sample_epilogue(e, id, arena_printf(e->arena, "%s_prepare(&geom, &plan, %s, %s)", pre, w, ws),
                          "mlc_conv_team(&plan, B)",
                          arena_printf(e->arena, "%s_sample(&geom, &plan, B, %%0, %s, %s, %s)", pre, x, y, ws), call);
    } else
        emit(e, "%s;", call);
    e->indent--;
    emit(e, "}");
}

/* ---- CUDA emission: one call into the device template's launchers (cuda_device.cuh):
 * im2col / col2im kernels, strided-batched cuBLAS GEMMs over the samples, per-sample
 * weight-gradient slots summed in sample order ---- */

static void emit_conv_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d ? "mlc_cuda_conv2d_fwd" : n->op == OP_conv2d_bwd_data ? "mlc_cuda_conv2d_bwd_data"
                                                                                              : "mlc_cuda_conv2d_bwd_filter";
    emit(e, "{");
    e->indent++;
    emit_geom(e, &q);
    emit(e, "%s(self->cublas, stream, &geom, B, %s, %s, %s, %s, %lld);", fn, emit_buf(e, n->in[0]),
         emit_buf(e, n->in[1]), emit_buf(e, id), e->ws ? e->ws : "NULL", (long long)cuda_chunk(&q, n->op));
    e->indent--;
    emit(e, "}");
    cuda_epilogue(e, id);
}

/* ---- gradient-check cases: stride, padding, dilation, groups, odd sizes ---- */

static int c_conv(Graph *g, int i) {
    static const struct { int64_t C, H, W, O, K, s, p, d, G; } c[] = {
        {2, 5, 5, 3, 3, 1, 1, 1, 1}, /* same padding */
        {3, 7, 6, 2, 3, 2, 0, 1, 1}, /* stride 2, odd size, no padding */
        {2, 6, 6, 2, 3, 1, 2, 2, 1}, /* dilation 2 */
        {4, 5, 5, 4, 3, 1, 1, 1, 2}, /* groups 2 */
        {3, 4, 5, 2, 1, 1, 0, 1, 1}, /* 1x1: the direct path */
        {2, 5, 5, 3, 1, 2, 0, 1, 1}, /* 1x1 stride 2: a downsampling shortcut */
    };
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int64_t xd[4] = {g->batch, c[i].C, c[i].H, c[i].W}, wd[4] = {c[i].O, c[i].C / c[i].G, c[i].K, c[i].K};
    int in[2] = {case_param(g, 4, xd, 1, INIT_UNIFORM, -1, 1), case_param(g, 4, wd, 0, INIT_UNIFORM, -1, 1)};
    int64_t ia[4] = {c[i].s | c[i].s << 16, c[i].p | c[i].p << 16, c[i].d | c[i].d << 16, c[i].G};
    return graph_add(g, OP_conv2d, in, 2, ia, NULL, NULL);
}

const OpRules rules_conv2d = {.shape = s_conv, .grad = g_conv, .eval = e_conv, .emit_c = emit_conv_c, .emit_cuda = emit_conv_cuda,
                              .workspace = ws_conv, .flops = f_conv, .cases = c_conv,
                              .flags = OPF_SAMPLE_EPILOGUE | OPF_CHECKPOINT};
const OpRules rules_conv2d_bwd_data = {.shape = s_bwd_data, .eval = e_bwd_data, .emit_c = emit_conv_c, .emit_cuda = emit_conv_cuda,
                                       .workspace = ws_conv, .flops = f_conv,
                                       .flags = OPF_BACKWARD_ONLY | OPF_SAMPLE_EPILOGUE};
const OpRules rules_conv2d_bwd_filter = {.shape = s_bwd_filter, .eval = e_bwd_filter, .emit_c = emit_conv_c, .emit_cuda = emit_conv_cuda,
                                         .workspace = ws_conv, .flops = f_conv, .flags = OPF_BACKWARD_ONLY};
