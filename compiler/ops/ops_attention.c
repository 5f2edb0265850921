/* ops_attention.c - fused scaled-dot-product attention and the ops its gradient makes.
 *
 * Over q [..., T, D], k [..., S, D], v [..., S, E] (the leading dimensions, batch and
 * heads, the same for all three), per leading index and query row i:
 *
 *   s_ij = scale * q_i . k_j            (causal: only keys j <= i, PyTorch's is_causal)
 *   attention(q, k, v)                -> o_i = sum_j softmax_j(s_i.) v_j        [..., T, E]
 *
 * The T x S matrix of scores is never a tensor: each target computes it block by block
 * (an online softmax: a running maximum and sum per row), so the op's memory is that of
 * its inputs and output. The gradient recomputes the scores as well, from q, k and each
 * row's logsumexp lse_i, which the backward's first op computes again (one more pass
 * over the keys, as much work as a forward that kept it, and nothing to keep alive
 * across the step but o, which the backward needs anyway):
 *
 *   attention_stats(q, k, o, do)      -> [..., T, 2]: lse_i, delta_i = do_i . o_i
 *   with p_ij = exp(s_ij - lse_i), dp_ij = do_i . v_j, ds_ij = p_ij (dp_ij - delta_i):
 *   attention_bwd_q(q, k, v, do, st)  -> dq_i = scale * sum_j ds_ij k_j          [..., T, D]
 *   attention_bwd_kv(q, k, v, do, st) -> (dk_j = scale * sum_i ds_ij q_i,
 *                                         dv_j = sum_i p_ij do_i)               [..., S, D + E]
 *
 * dk and dv share their p and ds, so one op computes both (a node has one output: the
 * gradient rule slices the two apart). All four: attributes scale and causal. */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "ops_attrs.h"

#define X(id) (&g->nodes[id])
#define IN(k) (g->nodes[node].in[k])
#define LOC (&g->nodes[node].loc)

AttnGeom attn_node_geom(const Graph *g, const Node *n) {
    const Shape *q = &X(n->in[0])->shape, *k = &X(n->in[1])->shape;
    const Shape *v = &X(n->in[2])->shape; /* v, or for attention_stats o: E wide */
    AttnGeom a = {1,
                  q->d[q->rank - 2],
                  k->d[k->rank - 2],
                  q->d[q->rank - 1],
                  v->d[v->rank - 1],
                  attr_f(n, A_SCALE),
                  (int)attr_i(n, A_CAUSAL)};
    for (int i = 0; i < q->rank - 2; i++) a.BH *= q->d[i];
    return a;
}

/* Whether x is f32 [lead..., rows, cols] with lead = q's leading dimensions and no batch
 * dimension among the last two; rows/cols < 0: any. */
static int attn_operand(const Node *x, const Node *q, int64_t rows, int64_t cols) {
    const Shape *s = &x->shape, *sq = &q->shape;
    int r = s->rank;
    if (x->dtype != DT_F32 || r != sq->rank || r < 2 || (s->bmask >> (r - 2)) || s->bmask != sq->bmask) return 0;
    for (int i = 0; i < r - 2; i++)
        if (s->d[i] != sq->d[i]) return 0;
    return (rows < 0 || s->d[r - 2] == rows) && (cols < 0 || s->d[r - 1] == cols);
}

/* [lead..., rows, cols] with q's leading dimensions */
static Shape attn_shape(const Node *q, int64_t rows, int64_t cols) {
    Shape s = q->shape;
    s.d[s.rank - 2] = rows, s.d[s.rank - 1] = cols;
    return s;
}

static const char *s_attention(Graph *g, Node *n) {
    const Node *q = X(n->in[0]), *k = X(n->in[1]), *v = X(n->in[2]);
    char a[96], b[96], c[96];
    int r = q->shape.rank;
    if (q->dtype != DT_F32 || r < 2 || (q->shape.bmask >> (r - 2)) || !attn_operand(k, q, -1, q->shape.d[r - 1]) ||
        !attn_operand(v, q, k->shape.d[r - 2], -1))
        return shape_err(
            g,
            "attention needs q f32[..., T, D], k f32[..., S, D] and v f32[..., S, E] with the same leading "
            "dimensions, found %s, %s and %s",
            shape_str(&q->shape, q->dtype, a, sizeof a), shape_str(&k->shape, k->dtype, b, sizeof b),
            shape_str(&v->shape, v->dtype, c, sizeof c));
    n->shape = attn_shape(q, q->shape.d[r - 2], v->shape.d[r - 1]);
    n->dtype = DT_F32;
    return NULL;
}

/* The backward ops: made only by g_attention, from operands s_attention accepted. */
static const char *s_stats(Graph *g, Node *n) {
    const Node *q = X(n->in[0]);
    n->shape = attn_shape(q, q->shape.d[q->shape.rank - 2], 2);
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_bwd_q(Graph *g, Node *n) {
    n->shape = X(n->in[0])->shape;
    n->dtype = DT_F32;
    return NULL;
}

static const char *s_bwd_kv(Graph *g, Node *n) {
    const Node *k = X(n->in[1]), *v = X(n->in[2]);
    int r = k->shape.rank;
    n->shape = attn_shape(k, k->shape.d[r - 2], k->shape.d[r - 1] + v->shape.d[r - 1]);
    n->dtype = DT_F32;
    return NULL;
}

/* ---- reference evaluation, in double: the whole T x S matrix per leading index ---- */

/* How many keys query row i sees. */
static int64_t attn_keys(const Node *n, int64_t i, int64_t S) { return attr_i(n, A_CAUSAL) && i + 1 < S ? i + 1 : S; }

/* s[i * S + j] = scale * q_i . k_j for the keys row i sees, for leading index h. */
static void scores(const Node *n, AttnGeom a, const double *q, const double *k, int64_t h, double *s) {
    for (int64_t i = 0; i < a.T; i++)
        for (int64_t j = 0; j < attn_keys(n, i, a.S); j++) {
            double d = 0;
            for (int64_t c = 0; c < a.D; c++) d += q[(h * a.T + i) * a.D + c] * k[(h * a.S + j) * a.D + c];
            s[i * a.S + j] = attr_f(n, A_SCALE) * d;
        }
}

/* Row i's logsumexp over the keys it sees. */
static double row_lse(const Node *n, AttnGeom a, const double *s, int64_t i) {
    int64_t nk = attn_keys(n, i, a.S);
    double m = -INFINITY, z = 0;
    for (int64_t j = 0; j < nk; j++) m = fmax(m, s[i * a.S + j]);
    for (int64_t j = 0; j < nk; j++) z += exp(s[i * a.S + j] - m);
    return m + log(z);
}

static void e_attention(const Graph *g, const Node *n, double *const *in, double *out) {
    AttnGeom a = attn_node_geom(g, n);
    double *s = calloc((size_t)(a.T * a.S), sizeof *s);
    for (int64_t h = 0; h < a.BH; h++) {
        scores(n, a, in[0], in[1], h, s);
        for (int64_t i = 0; i < a.T; i++) {
            double lse = row_lse(n, a, s, i), *o = out + (h * a.T + i) * a.E;
            for (int64_t e = 0; e < a.E; e++) o[e] = 0;
            for (int64_t j = 0; j < attn_keys(n, i, a.S); j++) {
                double p = exp(s[i * a.S + j] - lse);
                for (int64_t e = 0; e < a.E; e++) o[e] += p * in[2][(h * a.S + j) * a.E + e];
            }
        }
    }
    free(s);
}

static void e_stats(const Graph *g, const Node *n, double *const *in, double *out) {
    AttnGeom a = attn_node_geom(g, n); /* E: o's width */
    double *s = calloc((size_t)(a.T * a.S), sizeof *s);
    for (int64_t h = 0; h < a.BH; h++) {
        scores(n, a, in[0], in[1], h, s);
        for (int64_t i = 0; i < a.T; i++) {
            int64_t r = h * a.T + i;
            double delta = 0;
            for (int64_t e = 0; e < a.E; e++) delta += in[2][r * a.E + e] * in[3][r * a.E + e];
            out[2 * r] = row_lse(n, a, s, i), out[2 * r + 1] = delta;
        }
    }
    free(s);
}

/* dq (kv = 0) or dk and dv side by side (kv = 1) from p and ds; inputs q, k, v, do, stats. */
static void attn_bwd(const Graph *g, const Node *n, double *const *in, double *out, int kv) {
    AttnGeom a = attn_node_geom(g, n);
    double *s = calloc((size_t)(a.T * a.S), sizeof *s);
    int64_t rows = kv ? a.S : a.T, cols = kv ? a.D + a.E : a.D;
    for (int64_t x = 0; x < a.BH * rows * cols; x++) out[x] = 0;
    for (int64_t h = 0; h < a.BH; h++) {
        scores(n, a, in[0], in[1], h, s);
        for (int64_t i = 0; i < a.T; i++)
            for (int64_t j = 0; j < attn_keys(n, i, a.S); j++) {
                const double *st = in[4] + 2 * (h * a.T + i), *dout = in[3] + (h * a.T + i) * a.E;
                double p = exp(s[i * a.S + j] - st[0]), dp = 0;
                for (int64_t e = 0; e < a.E; e++) dp += dout[e] * in[2][(h * a.S + j) * a.E + e];
                double ds = attr_f(n, A_SCALE) * p * (dp - st[1]);
                if (!kv) {
                    for (int64_t c = 0; c < a.D; c++)
                        out[(h * a.T + i) * a.D + c] += ds * in[1][(h * a.S + j) * a.D + c];
                    continue;
                }
                double *o = out + (h * a.S + j) * cols;
                for (int64_t c = 0; c < a.D; c++) o[c] += ds * in[0][(h * a.T + i) * a.D + c];
                for (int64_t e = 0; e < a.E; e++) o[a.D + e] += p * dout[e];
            }
    }
    free(s);
}

static void e_bwd_q(const Graph *g, const Node *n, double *const *in, double *out) { attn_bwd(g, n, in, out, 0); }
static void e_bwd_kv(const Graph *g, const Node *n, double *const *in, double *out) { attn_bwd(g, n, in, out, 1); }

/* ---- gradient ---- */

static int attn_op(Graph *g, int node, Op op, const int *in, int nin) {
    return graph_add_like(g, op, in, nin, X(node), NULL, LOC);
}

static void g_attention(Graph *g, int node, int gy, int *gx) {
    int q = IN(0), k = IN(1), v = IN(2);
    int st = attn_op(g, node, OP_attention_stats, (int[]){q, k, node, gy}, 4);
    gx[0] = attn_op(g, node, OP_attention_bwd_q, (int[]){q, k, v, gy, st}, 5);
    int kv = attn_op(g, node, OP_attention_bwd_kv, (int[]){q, k, v, gy, st}, 5);
    int r = X(k)->shape.rank;
    int64_t D = X(k)->shape.d[r - 1], E = X(v)->shape.d[r - 1];
    gx[1] = ir_slice(g, kv, r - 1, 0, D, LOC);
    gx[2] = ir_slice(g, kv, r - 1, D, D + E, LOC);
}

/* ---- FLOPs: 2 per multiply-add over the (query, key) pairs a row sees ---- */

static double attn_pairs(const Graph *g, const Node *n) {
    AttnGeom a = attn_node_geom(g, n);
    double pairs = 0;
    for (int64_t i = 0; i < a.T; i++) pairs += (double)attn_keys(n, i, a.S);
    return pairs * (double)a.BH;
}

static double f_attention(const Graph *g, const Node *n) {
    AttnGeom a = attn_node_geom(g, n);
    return attn_pairs(g, n) * (double)(2 * a.D + 2 * a.E);
}
static double f_stats(const Graph *g, const Node *n) { return attn_pairs(g, n) * (double)(2 * attn_node_geom(g, n).D); }
static double f_bwd_q(const Graph *g, const Node *n) {
    AttnGeom a = attn_node_geom(g, n);
    return attn_pairs(g, n) * (double)(4 * a.D + 2 * a.E);
}
static double f_bwd_kv(const Graph *g, const Node *n) {
    AttnGeom a = attn_node_geom(g, n);
    return attn_pairs(g, n) * (double)(4 * a.D + 4 * a.E);
}

/* ---- gradient-check cases: causal and not, T = 1, widths not powers of 2, cross
 * attention (S != T, E != D), a rank-3 q without heads ---- */

static int c_attention(Graph *g, int i) {
    static const struct {
        int rank;
        int64_t H, T, S, D, E;
        int causal;
        double scale; /* 0: 1/sqrt(D) */
    } cs[] = {
        {4, 2, 5, 5, 3, 3, 0, 0}, {4, 2, 5, 5, 3, 3, 1, 0},   {4, 1, 1, 1, 4, 4, 1, 0},
        {4, 2, 3, 6, 5, 2, 0, 0}, {4, 1, 4, 6, 6, 3, 1, 0.7}, {3, 1, 7, 7, 5, 5, 1, 0},
    };
    if (i >= (int)(sizeof cs / sizeof cs[0])) return -1;
    int r = cs[i].rank, qk[3];
    int64_t rows[3] = {cs[i].T, cs[i].S, cs[i].S}, cols[3] = {cs[i].D, cs[i].D, cs[i].E};
    for (int t = 0; t < 3; t++) {
        int64_t d[4] = {g->batch, cs[i].H, rows[t], cols[t]};
        if (r == 3) d[1] = rows[t], d[2] = cols[t];
        qk[t] = case_param(g, r, d, 1, INIT_UNIFORM, -1.5, 1.5);
    }
    double scale = cs[i].scale ? cs[i].scale : 1 / sqrt((double)cs[i].D);
    return graph_add(g, OP_attention, qk, 3, ATTRS(AF(A_SCALE, scale), AI(A_CAUSAL, cs[i].causal)), NULL);
}

/* Deterministic and costly: --mem-budget may compute it again in the backward. */
const OpRules rules_attention = {.shape = s_attention,
                                 .grad = g_attention,
                                 .eval = e_attention,
                                 .flops = f_attention,
                                 .cases = c_attention,
                                 .flags = OPF_CHECKPOINT};
const OpRules rules_attention_stats = {.shape = s_stats, .eval = e_stats, .flops = f_stats, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_attention_bwd_q = {.shape = s_bwd_q, .eval = e_bwd_q, .flops = f_bwd_q, .flags = OPF_BACKWARD_ONLY};
const OpRules rules_attention_bwd_kv = {
    .shape = s_bwd_kv, .eval = e_bwd_kv, .flops = f_bwd_kv, .flags = OPF_BACKWARD_ONLY};
