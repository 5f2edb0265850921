/* ops_upsample.c - rules of bilinear upsampling by integer factors (fh, fw) on
 * [B, C, H, W], with PyTorch's align_corners=False geometry: output pixel o reads the
 * input at s = (o + 0.5) / f - 0.5 (clamped at 0), between rows floor(s) and the next
 * (the last row repeats at the border), weighted by the distance.
 *
 * The gradient is an op of its own, upsample_bilinear_bwd, which each target writes as a
 * gather (every input pixel sums the few output pixels that read it), so it needs no
 * atomics and its result does not depend on the order threads run in. The reference
 * evaluation here scatters instead: two formulations the generated code is compared
 * against. Nearest-neighbour upsampling is no op (builtins.c: a reshape and an expand). */
#include "ops.h"

#define X(id) (&g->nodes[id])

/* Output index o of a factor-f axis over n input pixels: its two source indices and
 * the weight of the second. (2o + 1 - f) / 2f is (o + 0.5) / f - 0.5 with one rounding
 * (the targets compute it the same way, in float). */
static void src_of(int64_t o, int64_t f, int64_t n, int64_t *i0, int64_t *i1, double *l) {
    double s = (double)(2 * o + 1 - f) / (double)(2 * f);
    if (s < 0) s = 0;
    *i0 = (int64_t)s;
    *i1 = *i0 + (*i0 < n - 1);
    *l = s - (double)*i0;
}

static int is_image(const Graph *g, const Node *x) {
    return x->shape.rank == 4 && x->shape.bmask == 1 && x->shape.d[0] == g->batch && x->dtype == DT_F32;
}

static const char *s_up(Graph *g, Node *n) {
    const Node *x = X(n->in[0]);
    const int64_t fh = attr_h(n, A_FACTOR), fw = attr_w(n, A_FACTOR);
    char a[96];
    if (!is_image(g, x) || fh < 1 || fw < 1)
        return shape_err(g, "upsample_bilinear needs f32[B, C, H, W] and factors of at least 1, found %s",
                         shape_str(&x->shape, x->dtype, a, sizeof a));
    int64_t d[4] = {x->shape.d[0], x->shape.d[1], x->shape.d[2] * fh, x->shape.d[3] * fw};
    n->shape = shape_make(4, d, 1);
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_up_bwd(Graph *g, Node *n) {
    const Node *dy = X(n->in[0]);
    const int64_t fh = attr_h(n, A_FACTOR), fw = attr_w(n, A_FACTOR);
    char a[96];
    if (!is_image(g, dy) || fh < 1 || fw < 1 || dy->shape.d[2] % fh || dy->shape.d[3] % fw)
        return shape_err(g, "upsample_bilinear_bwd needs f32[B, C, H*fh, W*fw], found %s",
                         shape_str(&dy->shape, dy->dtype, a, sizeof a));
    int64_t d[4] = {dy->shape.d[0], dy->shape.d[1], dy->shape.d[2] / fh, dy->shape.d[3] / fw};
    n->shape = shape_make(4, d, 1);
    n->dtype = DT_F32;
    return NULL;
}

/* For each output pixel of each image plane, its four taps: forward (bwd = 0) reads them,
 * backward (bwd = 1) adds the output's gradient into them. small: [planes, H, W]. */
static void taps(const Node *n, const Shape *small, const double *in, double *out, int bwd) {
    int64_t fh = attr_h(n, A_FACTOR), fw = attr_w(n, A_FACTOR), H = small->d[2], W = small->d[3], Ho = H * fh,
            Wo = W * fw;
    int64_t planes = small->d[0] * small->d[1];
    if (bwd)
        for (int64_t k = 0; k < planes * H * W; k++) out[k] = 0;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t y0, y1, x0, x1;
                double ly, lx;
                src_of(oy, fh, H, &y0, &y1, &ly);
                src_of(ox, fw, W, &x0, &x1, &lx);
                const int64_t r[4] = {y0 * W + x0, y0 * W + x1, y1 * W + x0, y1 * W + x1};
                const double w[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
                int64_t o = (p * Ho + oy) * Wo + ox;
                if (!bwd) out[o] = 0;
                for (int k = 0; k < 4; k++) {
                    if (bwd) out[p * H * W + r[k]] += w[k] * in[o];
                    else out[o] += w[k] * in[p * H * W + r[k]];
                }
            }
}

static void e_up(const Graph *g, const Node *n, double *const *in, double *out) {
    taps(n, &X(n->in[0])->shape, in[0], out, 0);
}
static void e_up_bwd(const Graph *g, const Node *n, double *const *in, double *out) {
    (void)g;
    taps(n, &n->shape, in[0], out, 1);
}

static void g_up(Graph *g, int node, int gy, int *gx) {
    gx[0] = graph_add_like(g, OP_upsample_bilinear_bwd, &gy, 1, X(node), NULL, &X(node)->loc);
}

/* 4 taps an output pixel, in both directions */
static double f_up(const Graph *g, const Node *n) {
    (void)g;
    return 8.0 * (double)shape_numel(&n->shape);
}
static double f_up_bwd(const Graph *g, const Node *n) { return 8.0 * (double)shape_numel(&X(n->in[0])->shape); }

/* factor 2 (the decoder's), uneven factors 3 x 2 on a 1-pixel-wide border case, and 1 */
static int c_up(Graph *g, int i) {
    static const struct {
        int64_t d[4], fh, fw;
    } c[] = {
        {{3, 2, 3, 4}, 2, 2},
        {{3, 1, 2, 1}, 3, 2},
        {{3, 1, 2, 3}, 1, 1},
        {{3, 2, 4, 3}, 4, 3},
    };
    if (i >= (int)(sizeof c / sizeof c[0])) return -1;
    int x = case_param(g, 4, c[i].d, 1, INIT_UNIFORM, -2, 2);
    return graph_add(g, OP_upsample_bilinear, &x, 1, ATTRS(AP(A_FACTOR, c[i].fh, c[i].fw)), NULL);
}

const OpRules rules_upsample_bilinear = {.shape = s_up, .grad = g_up, .eval = e_up, .flops = f_up, .cases = c_up};
const OpRules rules_upsample_bilinear_bwd = {
    .shape = s_up_bwd, .eval = e_up_bwd, .flops = f_up_bwd, .flags = OPF_BACKWARD_ONLY};
