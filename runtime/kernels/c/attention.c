/* attention.c - fused scaled-dot-product attention (compiler/ops/ops_attention.c defines
 * the ops): the forward with an online softmax, and the backward's three kernels, which
 * compute the scores again from q, k and each row's logsumexp.
 *
 * No T x S matrix is ever stored: work goes by blocks of MLC_ATTN_QB query rows and
 * MLC_ATTN_KB keys, and each thread keeps one block of scores (QB x KB floats) and a
 * transposed copy of one key block, so the dot products over the width run as
 * vectorisable loops over the keys. Each output row is written by the one thread that
 * owns its block, summing in a fixed order (dk and dv: per key block, over the queries in
 * order), so results do not depend on the thread count.
 *
 * Not here: the naive three-pass version (tests/kernels/ and bench/attention.c hold one
 * each, as the yardstick). */
#include <stdlib.h>

#include "mlc_kernels.h"

#define QB MLC_ATTN_QB
#define KB MLC_ATTN_KB

/* One thread's scratch: a key block and a value block transposed ([D][KB], [E][KB]),
 * scores and their gradients (KB each, per row of a query block), the running maximum,
 * sum and output of a query block. */
typedef struct AttnScratch {
    float *kt, *vt, *s, *dp, *m, *l, *acc;
} AttnScratch;

static AttnScratch scratch_new(const mlc_attn_geom *g) {
    size_t n = (size_t)(KB * (g->D + g->E) + 2 * QB * KB + 2 * QB + QB * (g->D > g->E ? g->D : g->E));
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "mlc: out of memory for attention's scratch (%zu floats)\n", n);
        abort();
    }
    AttnScratch w = {.kt = p};
    w.vt = w.kt + KB * g->D, w.s = w.vt + KB * g->E, w.dp = w.s + QB * KB, w.m = w.dp + QB * KB, w.l = w.m + QB;
    w.acc = w.l + QB;
    return w;
}

/* Keys of block j0 (jn of them) that query row i sees. */
static inline long keys_seen(const mlc_attn_geom *g, long i, long j0, long jn) {
    if (!g->causal) return jn;
    long n = i + 1 - j0;
    return n < jn ? n : jn;
}

/* dst[c][j] = src[j][c] for j < jn, c < w: a block of rows transposed. */
static void transpose_block(const float *restrict src, long jn, long w, float *restrict dst) {
    for (long j = 0; j < jn; j++)
        for (long c = 0; c < w; c++) dst[c * KB + j] = src[j * w + c];
}

/* s[j] = scale * x . rows_j for j < nk, the rows transposed in xt ([w][KB]). */
static inline void dots(const float *restrict x, const float *restrict xt, long w, long nk, float scale,
                        float *restrict s) {
    for (long j = 0; j < nk; j++) s[j] = 0.0f;
    for (long c = 0; c < w; c++) {
        const float xc = x[c];
        const float *restrict r = xt + c * KB;
        for (long j = 0; j < nk; j++) s[j] += xc * r[j];
    }
    for (long j = 0; j < nk; j++) s[j] *= scale;
}

/* y[c] += a * x[c] */
static inline void axpy(float a, const float *restrict x, long w, float *restrict y) {
    for (long c = 0; c < w; c++) y[c] += a * x[c];
}

/* The online softmax over every key block for query rows [i0, i1) of head h: the running
 * maximum m and sum l per row and, with v, the unnormalised output acc ([rows][E]).
 * A row's first block always holds key 0, which every row sees, so m is finite from then
 * on and exp(m_old - m_new) never meets inf - inf. */
static void online_rows(const mlc_attn_geom *g, long h, long i0, long i1, const float *q, const float *k,
                        const float *v, AttnScratch *w) {
    const long D = g->D, E = g->E, rows = i1 - i0, kend = g->causal && i1 < g->S ? i1 : g->S;
    const float *kh = k + h * g->S * D, *vh = v ? v + h * g->S * E : NULL;
    for (long r = 0; r < rows; r++) w->m[r] = -INFINITY, w->l[r] = 0.0f;
    if (v)
        for (long x = 0; x < rows * E; x++) w->acc[x] = 0.0f;
    for (long j0 = 0; j0 < kend; j0 += KB) {
        const long jn = kend - j0 < KB ? kend - j0 : KB;
        transpose_block(kh + j0 * D, jn, D, w->kt);
        for (long r = 0; r < rows; r++) {
            const long nk = keys_seen(g, i0 + r, j0, jn);
            if (nk <= 0) continue;
            float *restrict s = w->s;
            dots(q + (h * g->T + i0 + r) * D, w->kt, D, nk, g->scale, s);
            float mx = w->m[r];
            for (long j = 0; j < nk; j++) mx = s[j] > mx ? s[j] : mx;
            const float alpha = expf(w->m[r] - mx);
            float sum = 0.0f;
            for (long j = 0; j < nk; j++) s[j] = expf(s[j] - mx), sum += s[j];
            w->l[r] = w->l[r] * alpha + sum, w->m[r] = mx;
            if (!v) continue;
            float *restrict acc = w->acc + r * E;
            for (long e = 0; e < E; e++) acc[e] *= alpha;
            for (long j = 0; j < nk; j++) axpy(s[j], vh + (j0 + j) * E, E, acc);
        }
    }
}

static long blocks(long n, long b) { return (n + b - 1) / b; }

void mlc_attention_fwd(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *v, float *o) {
    const long nq = blocks(g->T, QB), items = BH * nq;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * (g->D + g->E) > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nq, i0 = it % nq * QB, i1 = i0 + QB < g->T ? i0 + QB : g->T;
            online_rows(g, h, i0, i1, q, k, v, &w);
            for (long r = 0; r < i1 - i0; r++) {
                const float inv = 1.0f / w.l[r];
                float *restrict out = o + (h * g->T + i0 + r) * g->E;
                for (long e = 0; e < g->E; e++) out[e] = w.acc[r * g->E + e] * inv;
            }
        }
        free(w.kt);
    }
}

void mlc_attention_stats(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *o,
                         const float *dout, float *st) {
    const long nq = blocks(g->T, QB), items = BH * nq;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * g->D > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nq, i0 = it % nq * QB, i1 = i0 + QB < g->T ? i0 + QB : g->T;
            online_rows(g, h, i0, i1, q, k, NULL, &w);
            for (long r = 0; r < i1 - i0; r++) {
                const long row = h * g->T + i0 + r;
                float delta = 0.0f;
                for (long e = 0; e < g->E; e++) delta += dout[row * g->E + e] * o[row * g->E + e];
                st[2 * row] = w.m[r] + logf(w.l[r]), st[2 * row + 1] = delta;
            }
        }
        free(w.kt);
    }
}

/* For query row i of head h against keys [j0, j0 + nk) (k and v blocks transposed in w):
 * s = p_ij, then dp = ds_ij = p_ij (do_i . v_j - delta_i). */
static void row_grads(const mlc_attn_geom *g, long h, long i, long nk, const float *q, const float *dout,
                      const float *st, AttnScratch *w, float *restrict p, float *restrict ds) {
    const long row = h * g->T + i;
    dots(q + row * g->D, w->kt, g->D, nk, g->scale, p);
    const float lse = st[2 * row], delta = st[2 * row + 1];
    for (long j = 0; j < nk; j++) p[j] = expf(p[j] - lse);
    if (!ds) return;
    dots(dout + row * g->E, w->vt, g->E, nk, 1.0f, ds);
    for (long j = 0; j < nk; j++) ds[j] = p[j] * (ds[j] - delta);
}

void mlc_attention_bwd_q(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *v,
                         const float *dout, const float *st, float *dq) {
    const long D = g->D, E = g->E, nq = blocks(g->T, QB), items = BH * nq;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * (g->D + g->E) > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nq, i0 = it % nq * QB, i1 = i0 + QB < g->T ? i0 + QB : g->T;
            const long kend = g->causal && i1 < g->S ? i1 : g->S;
            float *restrict acc = w.acc;
            for (long x = 0; x < (i1 - i0) * D; x++) acc[x] = 0.0f;
            for (long j0 = 0; j0 < kend; j0 += KB) {
                const long jn = kend - j0 < KB ? kend - j0 : KB;
                transpose_block(k + (h * g->S + j0) * D, jn, D, w.kt);
                transpose_block(v + (h * g->S + j0) * E, jn, E, w.vt);
                for (long r = 0; r < i1 - i0; r++) {
                    const long nk = keys_seen(g, i0 + r, j0, jn);
                    if (nk <= 0) continue;
                    row_grads(g, h, i0 + r, nk, q, dout, st, &w, w.s, w.dp);
                    for (long j = 0; j < nk; j++) axpy(w.dp[j], k + (h * g->S + j0 + j) * D, D, acc + r * D);
                }
            }
            for (long x = 0; x < (i1 - i0) * D; x++) dq[(h * g->T + i0) * D + x] = acc[x] * g->scale;
        }
        free(w.kt);
    }
}

void mlc_attention_bwd_kv(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *v,
                          const float *dout, const float *st, float *dk, float *dv) {
    const long D = g->D, E = g->E, nk_blocks = blocks(g->S, KB), items = BH * nk_blocks;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * (g->D + g->E) > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nk_blocks, j0 = it % nk_blocks * KB, jn = g->S - j0 < KB ? g->S - j0 : KB;
            float *restrict dkb = dk ? dk + (h * g->S + j0) * D : NULL, *restrict dvb = dv ? dv + (h * g->S + j0) * E : NULL;
            if (dkb)
                for (long x = 0; x < jn * D; x++) dkb[x] = 0.0f;
            if (dvb)
                for (long x = 0; x < jn * E; x++) dvb[x] = 0.0f;
            transpose_block(k + (h * g->S + j0) * D, jn, D, w.kt);
            if (dkb) transpose_block(v + (h * g->S + j0) * E, jn, E, w.vt);
            /* causal: queries before j0 see none of these keys */
            for (long i = g->causal ? j0 : 0; i < g->T; i++) {
                const long nk = keys_seen(g, i, j0, jn), row = h * g->T + i;
                row_grads(g, h, i, nk, q, dout, st, &w, w.s, dkb ? w.dp : NULL);
                for (long j = 0; j < nk; j++) {
                    if (dvb) axpy(w.s[j], dout + row * E, E, dvb + j * E);
                    if (dkb) axpy(w.dp[j], q + row * D, D, dkb + j * D);
                }
            }
            if (dkb)
                for (long x = 0; x < jn * D; x++) dkb[x] *= g->scale;
        }
        free(w.kt);
    }
}
