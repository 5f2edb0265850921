/* ops_matmul.c - rules of matmul: C[M,N] = op(A) op(B), op = optional transpose.
 *
 * The transposes exist so that gradients never materialise a transposed copy: both
 * targets hand them straight to the GEMM (cblas_sgemm / cublasSgemm). */
#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

static const char *s_matmul(Graph *g, Node *n) {
    const Node *a = X(n->in[0]), *b = X(n->in[1]);
    const Shape *sa = &a->shape, *sb = &b->shape;
    char x[96], y[96];
    if (sa->rank != 2 || sb->rank != 2 || a->dtype != DT_F32 || b->dtype != DT_F32)
        return shape_err(g, "matmul needs two f32 matrices, found %s and %s", shape_str(sa, a->dtype, x, sizeof x),
                         shape_str(sb, b->dtype, y, sizeof y));
    int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    int ka = ta ? 0 : 1, ma = 1 - ka, kb = tb ? 1 : 0, nb = 1 - kb;
    int kab = (sa->bmask >> ka) & 1, kbb = (sb->bmask >> kb) & 1;
    if (sa->d[ka] != sb->d[kb] || kab != kbb)
        return shape_err(g, "matmul: inner dimensions differ: %s x %s%s", shape_str(sa, a->dtype, x, sizeof x),
                         shape_str(sb, b->dtype, y, sizeof y),
                         ta || tb ? (ta && tb ? " (both transposed)" : ta ? " (first transposed)" : " (second transposed)") : "");
    int64_t d[2] = {sa->d[ma], sb->d[nb]};
    uint8_t bm = (uint8_t)(((sa->bmask >> ma) & 1) | (((sb->bmask >> nb) & 1) << 1));
    if (bm == 3) return shape_err(g, "matmul: the result would have two batch dimensions");
    n->shape = shape_make(2, d, bm);
    n->dtype = DT_F32;
    return NULL;
}

static void e_matmul(const Graph *g, const Node *n, double *const *in, double *out) {
    const Shape *sa = &X(n->in[0])->shape, *sb = &X(n->in[1])->shape;
    int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    int64_t M = n->shape.d[0], N = n->shape.d[1], K = ta ? sa->d[0] : sa->d[1];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double a = ta ? in[0][k * sa->d[1] + i] : in[0][i * sa->d[1] + k];
                double b = tb ? in[1][j * sb->d[1] + k] : in[1][k * sb->d[1] + j];
                s += a * b;
            }
            out[i * N + j] = s;
        }
}

/* With Y = op(A) op(B): dA and dB are again matmuls of dY with the other operand, the
 * transposes chosen so each result comes out in its operand's stored layout. */
static void g_matmul(Graph *g, int node, int gy, int *gx) {
    int a = IN(0), b = IN(1);
    int ta = (int)X(node)->iattr[0], tb = (int)X(node)->iattr[1];
    if (!ta && !tb) gx[0] = ir_matmul(g, gy, b, 0, 1, LOC), gx[1] = ir_matmul(g, a, gy, 1, 0, LOC);
    if (ta && !tb) gx[0] = ir_matmul(g, b, gy, 0, 1, LOC), gx[1] = ir_matmul(g, a, gy, 0, 0, LOC);
    if (!ta && tb) gx[0] = ir_matmul(g, gy, b, 0, 0, LOC), gx[1] = ir_matmul(g, gy, a, 1, 0, LOC);
    if (ta && tb) gx[0] = ir_matmul(g, b, gy, 1, 1, LOC), gx[1] = ir_matmul(g, gy, a, 1, 1, LOC);
}

static int c_matmul(Graph *g, int i) {
    if (i >= 5) return -1;
    int ta = i & 1, tb = (i >> 1) & 1;
    int64_t M = 3, K = 4, N = 5;
    uint8_t bma = 0;
    if (i == 4) M = g->batch, bma = 1; /* [B, K] x [K, N]: a dense layer */
    int64_t da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
    if (i == 4) bma = 1;
    int a = case_param(g, 2, da, ta ? (uint8_t)(bma << 1) : bma, INIT_UNIFORM, -1, 1);
    int b = case_param(g, 2, db, 0, INIT_UNIFORM, -1, 1);
    return ir_matmul(g, a, b, ta, tb, NULL);
}

/* 2 M N K */
static double f_matmul(const Graph *g, const Node *n) {
    const Shape *a = &X(n->in[0])->shape;
    return 2.0 * (double)shape_numel(&n->shape) * (double)(n->iattr[0] ? a->d[0] : a->d[1]);
}

const OpRules rules_matmul = {.shape = s_matmul, .grad = g_matmul, .eval = e_matmul, .flops = f_matmul, .cases = c_matmul,
                              .flags = OPF_CHECKPOINT};
