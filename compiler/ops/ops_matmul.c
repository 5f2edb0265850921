/* ops_matmul.c - rules of matmul: C[..., M, N] = op(A) op(B), op = optional transpose of
 * the last two axes.
 *
 * The transposes exist so that gradients never materialise a transposed copy: both
 * targets hand them straight to the GEMM (cblas_sgemm / cublasSgemm). Leading (batch)
 * axes make it a batched GEMM, one call for all of them: either operand may be a plain
 * matrix shared by every batch entry (a stride of 0; [B, T, D] x [D, N] is one GEMM of
 * B*T rows), otherwise both carry the same batch axes. The builtin (builtins.c) brings
 * numpy broadcasting to that form. */
#include "ops.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

/* The product's M, N, K and number of batch entries, for the reference evaluation and the
 * FLOP count (the targets write the same from shapes: targets/batched_gemm.c). */
typedef struct MM {
    int ra, rb;             /* operand ranks; 2: a matrix shared by all batch entries */
    int64_t M, N, K, count; /* at the compile-time batch */
} MM;

static MM mm_of(const Graph *g, const Node *n) {
    const Shape *sa = &X(n->in[0])->shape, *sb = &X(n->in[1])->shape;
    int ta = (int)attr_i(n, A_TRANS_A);
    MM m = {sa->rank, sb->rank, 0, 0, 0, 1};
    m.M = n->shape.d[n->shape.rank - 2], m.N = n->shape.d[n->shape.rank - 1];
    m.K = sa->d[sa->rank - (ta ? 2 : 1)];
    for (int i = 0; i < n->shape.rank - 2; i++) m.count *= n->shape.d[i];
    return m;
}

static const char *s_matmul(Graph *g, Node *n) {
    const Node *a = X(n->in[0]), *b = X(n->in[1]);
    const Shape *sa = &a->shape, *sb = &b->shape;
    char x[96], y[96];
    shape_str_at(sa, a->dtype, g->batch, x, sizeof x);
    shape_str_at(sb, b->dtype, g->batch, y, sizeof y);
    if (sa->rank < 2 || sb->rank < 2 || a->dtype != DT_F32 || b->dtype != DT_F32)
        return shape_err(g, "matmul needs two f32 tensors of rank 2 or more, found %s and %s", x, y);
    int ra = sa->rank, rb = sb->rank;
    if (ra > 2 && rb > 2) {
        int same = ra == rb;
        for (int i = 0; same && i < ra - 2; i++)
            same = sa->d[i] == sb->d[i] && ((sa->bmask >> i) & 1) == ((sb->bmask >> i) & 1);
        if (!same) return shape_err(g, "matmul: the batch dimensions of %s and %s differ", x, y);
    }
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    int ka = ra - (ta ? 2 : 1), ma = ra - (ta ? 1 : 2), kb = rb - (tb ? 1 : 2), nb = rb - (tb ? 2 : 1);
    int kab = (sa->bmask >> ka) & 1, kbb = (sb->bmask >> kb) & 1;
    if (sa->d[ka] != sb->d[kb] || kab != kbb)
        return shape_err(g, "matmul: inner dimensions differ: %s x %s%s", x, y,
                         ta || tb ? (ta && tb ? " (both transposed)"
                                     : ta     ? " (first transposed)"
                                              : " (second transposed)")
                                  : "");
    const Shape *lead = ra >= rb ? sa : sb;
    Shape out = {0};
    out.rank = lead->rank;
    for (int i = 0; i < lead->rank - 2; i++) out.d[i] = lead->d[i];
    out.bmask = (uint8_t)(lead->bmask & ((1u << (lead->rank - 2)) - 1));
    out.d[out.rank - 2] = sa->d[ma], out.d[out.rank - 1] = sb->d[nb];
    if ((sa->bmask >> ma) & 1) out.bmask |= (uint8_t)(1u << (out.rank - 2));
    if ((sb->bmask >> nb) & 1) out.bmask |= (uint8_t)(1u << (out.rank - 1));
    int nbatch = 0;
    for (int i = 0; i < out.rank; i++) nbatch += (out.bmask >> i) & 1;
    if (nbatch > 1) return shape_err(g, "matmul: the result would have two batch dimensions");
    n->shape = out;
    n->dtype = DT_F32;
    return NULL;
}

static void e_matmul(const Graph *g, const Node *n, double *const *in, double *out) {
    MM m = mm_of(g, n);
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    int64_t lda = ta ? m.M : m.K, ldb = tb ? m.K : m.N;
    for (int64_t s = 0; s < m.count; s++) {
        const double *A = in[0] + (m.ra > 2 ? s * m.M * m.K : 0), *Bm = in[1] + (m.rb > 2 ? s * m.K * m.N : 0);
        double *C = out + s * m.M * m.N;
        for (int64_t i = 0; i < m.M; i++)
            for (int64_t j = 0; j < m.N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < m.K; k++)
                    acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? Bm[j * ldb + k] : Bm[k * ldb + j]);
                C[i * m.N + j] = acc;
            }
    }
}

/* [S..., R, C] -> [prod(S) * R, C]: a view, the batch (if any) scaled by the rows merged
 * into it. */
static int fold_rows(Graph *g, int x, const SrcLoc *loc) {
    const Shape *s = &X(x)->shape;
    Shape to = {0};
    to.rank = 2;
    to.d[0] = 1, to.d[1] = s->d[s->rank - 1];
    for (int i = 0; i < s->rank - 1; i++) to.d[0] *= s->d[i];
    to.bmask = (uint8_t)(((s->bmask & ((1u << (s->rank - 1)) - 1)) != 0) | (((s->bmask >> (s->rank - 1)) & 1) << 1));
    return ir_reshape(g, x, to, loc);
}

/* With Y = op(A) op(B): dA and dB are again matmuls of dY with the other operand, the
 * transposes chosen so each result comes out in its operand's stored layout. */
static void grad_2d(Graph *g, int a, int b, int ta, int tb, int gy, int *gx, const SrcLoc *loc) {
    if (!ta && !tb) gx[0] = ir_matmul(g, gy, b, 0, 1, loc), gx[1] = ir_matmul(g, a, gy, 1, 0, loc);
    if (ta && !tb) gx[0] = ir_matmul(g, b, gy, 0, 1, loc), gx[1] = ir_matmul(g, a, gy, 0, 0, loc);
    if (!ta && tb) gx[0] = ir_matmul(g, gy, b, 0, 0, loc), gx[1] = ir_matmul(g, gy, a, 1, 0, loc);
    if (ta && tb) gx[0] = ir_matmul(g, b, gy, 1, 1, loc), gx[1] = ir_matmul(g, gy, a, 1, 1, loc);
}

/* Batched: the same products entry by entry. A matrix shared by the batch gets the sum
 * over the entries: when A's rows fold into one matrix ([B, T, D] x [D, N], a dense
 * layer on a sequence) as one GEMM over all B*T rows, otherwise as the batched product
 * summed over its batch axes. */
static void g_matmul(Graph *g, int node, int gy, int *gx) {
    int a = IN(0), b = IN(1);
    int ta = (int)attr_i(X(node), A_TRANS_A), tb = (int)attr_i(X(node), A_TRANS_B);
    Shape sa = X(a)->shape, sb = X(b)->shape;
    if (sa.rank > 2 && sb.rank == 2 && !ta) {
        grad_2d(g, fold_rows(g, a, LOC), b, 0, tb, fold_rows(g, gy, LOC), gx, LOC);
        gx[0] = ir_reshape(g, gx[0], sa, LOC);
        return;
    }
    grad_2d(g, a, b, ta, tb, gy, gx, LOC);
    if (X(gx[0])->shape.rank > sa.rank) gx[0] = ir_sum_to(g, gx[0], sa, LOC);
    if (X(gx[1])->shape.rank > sb.rank) gx[1] = ir_sum_to(g, gx[1], sb, LOC);
}

/* Cases 0-4: matrices, each transpose, and [B, K] x [K, N] (a dense layer). Then batched:
 * 5-8 [2, 3, M, K] x [2, 3, K, N] with each transpose; 9 [B, T, K] x [K, N] (folded);
 * 10 [B, T, K]^T x [K, N]; 11 [M, K] x [B, K, N]^T (the shared operand on the left);
 * 12 [B, 2, M, K] x [B, 2, N, K]^T (attention's scores); 13 [B, 3, T, T] x [B, 3, T, D].
 * 14, 15: one weight used twice, whose gradient is the sum of both uses (weight tying: an
 * embedding table that is also the output projection): W W^T, and x W then (x W) W^T. */
static int c_matmul(Graph *g, int i) {
    if (i >= 16) return -1;
    if (i == 14) {
        int64_t dw[2] = {3, 4};
        int w = case_param(g, 2, dw, 0, INIT_UNIFORM, -1, 1);
        return ir_matmul(g, w, w, 0, 1, NULL);
    }
    if (i == 15) {
        int64_t dx[3] = {g->batch, 2, 4}, dw[2] = {4, 3};
        int x = case_param(g, 3, dx, 1, INIT_UNIFORM, -1, 1), w = case_param(g, 2, dw, 0, INIT_UNIFORM, -1, 1);
        return ir_matmul(g, ir_matmul(g, x, w, 0, 0, NULL), w, 0, 1, NULL);
    }
    if (i < 5) {
        int ta = i & 1, tb = (i >> 1) & 1;
        int64_t M = 3, K = 4, N = 5;
        uint8_t bma = 0;
        if (i == 4) M = g->batch, bma = 1; /* [B, K] x [K, N]: a dense layer */
        int64_t da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
        int a = case_param(g, 2, da, ta ? (uint8_t)(bma << 1) : bma, INIT_UNIFORM, -1, 1);
        int b = case_param(g, 2, db, 0, INIT_UNIFORM, -1, 1);
        return ir_matmul(g, a, b, ta, tb, NULL);
    }
    int64_t M = 3, K = 4, N = 2;
    int a, b, ta = 0, tb = 0;
    if (i <= 8) {
        ta = (i - 5) & 1, tb = ((i - 5) >> 1) & 1;
        int64_t da[4] = {2, 3, ta ? K : M, ta ? M : K}, db[4] = {2, 3, tb ? N : K, tb ? K : N};
        a = case_param(g, 4, da, 0, INIT_UNIFORM, -1, 1), b = case_param(g, 4, db, 0, INIT_UNIFORM, -1, 1);
    } else if (i <= 10) {
        ta = i == 10;
        int64_t da[3] = {g->batch, ta ? K : M, ta ? M : K}, db[2] = {K, N};
        a = case_param(g, 3, da, 1, INIT_UNIFORM, -1, 1), b = case_param(g, 2, db, 0, INIT_UNIFORM, -1, 1);
    } else if (i == 11) {
        tb = 1;
        int64_t da[2] = {M, K}, db[3] = {g->batch, N, K};
        a = case_param(g, 2, da, 0, INIT_UNIFORM, -1, 1), b = case_param(g, 3, db, 1, INIT_UNIFORM, -1, 1);
    } else if (i == 12) {
        tb = 1;
        int64_t da[4] = {g->batch, 2, M, K}, db[4] = {g->batch, 2, N, K};
        a = case_param(g, 4, da, 1, INIT_UNIFORM, -1, 1), b = case_param(g, 4, db, 1, INIT_UNIFORM, -1, 1);
    } else {
        int64_t da[4] = {g->batch, 3, M, M}, db[4] = {g->batch, 3, M, N};
        a = case_param(g, 4, da, 1, INIT_UNIFORM, -1, 1), b = case_param(g, 4, db, 1, INIT_UNIFORM, -1, 1);
    }
    return ir_matmul(g, a, b, ta, tb, NULL);
}

/* 2 M N K per batch entry */
static double f_matmul(const Graph *g, const Node *n) {
    MM m = mm_of(g, n);
    return 2.0 * (double)shape_numel(&n->shape) * (double)m.K;
}

const OpRules rules_matmul = {.shape = s_matmul,
                              .grad = g_matmul,
                              .eval = e_matmul,
                              .flops = f_matmul,
                              .cases = c_matmul,
                              .flags = OPF_CHECKPOINT};
