/* attention.c - fused scaled-dot-product attention (compiler/ops/ops_attention.c defines
 * the ops): the forward with an online softmax, and the backward's three kernels, which
 * compute the scores again from q, k and each row's logsumexp.
 *
 * No T x S matrix is ever stored: work goes by blocks of MLC_ATTN_QB query rows and
 * MLC_ATTN_KB keys, and each thread keeps the scores of one such block and transposed
 * copies of one key and value block. The inner loops keep their sums in 8-float vector
 * registers: the scores of 32 keys at a time over the width (dots), and a row of 32
 * output columns at a time over the keys or queries it sums (wsum). Each output row is
 * written by the one thread that owns its block, summing in a fixed order (dk and dv: per
 * key block, over the queries in order), so results do not depend on the thread count.
 * dk and dv come out side by side, [S][D + E]: they share p and ds.
 *
 * Not here: the naive three-pass version (tests/kernels/ and bench/attention.c hold one
 * each, as the yardstick). */
#include <stdlib.h>

#include "mlc_kernels.h"
#include "simd.h"

#define QB MLC_ATTN_QB
#define KB MLC_ATTN_KB
_Static_assert(KB % 32 == 0, "dots computes the scores of 32 keys at a time");

/* One thread's scratch: a key and a value block transposed ([D][KB], [E][KB], zero past
 * the block's keys), the probabilities and score gradients of a query block ([QB][KB]),
 * the running maximum and sum and the output rows of a query block. */
typedef struct AttnScratch {
    float *kt, *vt, *p, *ds, *m, *l, *acc;
} AttnScratch;

static AttnScratch scratch_new(const mlc_attn_geom *g) {
    const long w = g->D > g->E ? g->D : g->E;
    const size_t n = (size_t)(KB * (g->D + g->E) + 2 * QB * KB + 2 * QB + QB * w);
    float *p = aligned_alloc(64, (n * sizeof *p + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "error: out of memory for attention's scratch (%zu floats)\n", n);
        abort();
    }
    AttnScratch s = {.kt = p};
    s.vt = s.kt + KB * g->D, s.p = s.vt + KB * g->E, s.ds = s.p + QB * KB, s.m = s.ds + QB * KB, s.l = s.m + QB;
    s.acc = s.l + QB;
    return s;
}

static inline long min_l(long a, long b) { return a < b ? a : b; }

/* s[j] = exp(s[j] - m) for j < n (and up to the next multiple of 8 when vectorised: the
 * callers' rows have room). exp dominates the kernels otherwise: one per score, in every
 * pass. With AVX2: Cody-Waite reduction x = k ln2 + r, Cephes' degree-6 polynomial for
 * e^r, 2^k into the exponent bits; within 2 ulp of expf for x in [-87.3, 88.7], inputs
 * below that clamped (e^-87.3 ~ 1e-38 for 0: nothing against a softmax's sum, which is at
 * least 1). */
static void exp_sub(float *s, long n, float m) {
    long j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256 mv = _mm256_set1_ps(m), lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f);
    const __m256 log2e = _mm256_set1_ps(1.44269504f), ln2_hi = _mm256_set1_ps(0.693359375f),
                 ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    for (; j < n; j += 8) {
        __m256 x = _mm256_sub_ps(_mm256_loadu_ps(s + j), mv);
        x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
        const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
        r = _mm256_fnmadd_ps(k, ln2_lo, r);
        __m256 p = _mm256_set1_ps(1.9875691500e-4f);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
        p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
        const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
        _mm256_storeu_ps(s + j, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
    }
#endif
    for (; j < n; j++) s[j] = expf(s[j] - m);
}

/* Keys of block j0 (jn of them) that query row i sees; 0 or less: none. */
static inline long keys_seen(const mlc_attn_geom *g, long i, long j0, long jn) {
    return g->causal ? min_l(jn, i + 1 - j0) : jn;
}

/* dst[c][j] = src[j][c] for j < jn, c < w, and 0 for jn <= j < KB: a block of rows
 * transposed, so that the scores of consecutive keys are consecutive lanes. */
static void transpose_block(const float *restrict src, long jn, long w, float *restrict dst) {
    for (long c = 0; c < w; c++) {
        float *restrict d = dst + c * KB;
        for (long j = 0; j < jn; j++) d[j] = src[j * w + c];
        for (long j = jn; j < KB; j++) d[j] = 0.0f;
    }
}

/* s[j] = scale * (x . row j) for j < n rounded up to 32, the rows transposed in xt
 * ([w][KB]): four vectors of 8 keys summed over the width in registers. */
static void dots(const float *restrict x, const float *restrict xt, long w, long n, float scale, float *restrict s) {
    const mlc_f8 sc = MLC_BC8(scale);
    for (long j0 = 0; j0 < n; j0 += 32) {
        mlc_f8 a0 = MLC_BC8(0.0f), a1 = a0, a2 = a0, a3 = a0;
        const float *r = xt + j0;
        for (long c = 0; c < w; c++, r += KB) {
            const mlc_f8 xc = MLC_BC8(x[c]);
            a0 = MLC_FMA8(xc, MLC_LD8(r), a0), a1 = MLC_FMA8(xc, MLC_LD8(r + 8), a1);
            a2 = MLC_FMA8(xc, MLC_LD8(r + 16), a2), a3 = MLC_FMA8(xc, MLC_LD8(r + 24), a3);
        }
        MLC_ST8(s + j0, a0 * sc), MLC_ST8(s + j0 + 8, a1 * sc), MLC_ST8(s + j0 + 16, a2 * sc),
            MLC_ST8(s + j0 + 24, a3 * sc);
    }
}

/* acc[0..w) += sum over t < n of wt[t * ws] * rows[t][0..w), t in order: 32 columns at a
 * time kept in registers across the sum. */
static void wsum(const float *restrict wt, long ws, long n, const float *restrict rows, long w, float *restrict acc) {
    long c = 0;
    for (; c + 32 <= w; c += 32) {
        mlc_f8 a0 = MLC_LD8(acc + c), a1 = MLC_LD8(acc + c + 8), a2 = MLC_LD8(acc + c + 16), a3 = MLC_LD8(acc + c + 24);
        const float *r = rows + c;
        for (long t = 0; t < n; t++, r += w) {
            const mlc_f8 p = MLC_BC8(wt[t * ws]);
            a0 = MLC_FMA8(p, MLC_LD8(r), a0), a1 = MLC_FMA8(p, MLC_LD8(r + 8), a1);
            a2 = MLC_FMA8(p, MLC_LD8(r + 16), a2), a3 = MLC_FMA8(p, MLC_LD8(r + 24), a3);
        }
        MLC_ST8(acc + c, a0), MLC_ST8(acc + c + 8, a1), MLC_ST8(acc + c + 16, a2), MLC_ST8(acc + c + 24, a3);
    }
    for (; c + 8 <= w; c += 8) {
        mlc_f8 a = MLC_LD8(acc + c);
        for (long t = 0; t < n; t++) a = MLC_FMA8(MLC_BC8(wt[t * ws]), MLC_LD8(rows + t * w + c), a);
        MLC_ST8(acc + c, a);
    }
    for (; c < w; c++) {
        float a = acc[c];
        for (long t = 0; t < n; t++) a += wt[t * ws] * rows[t * w + c];
        acc[c] = a;
    }
}

/* max(m, s[0..n)) and, after exp_sub, the sum of s[0..n): 8 lanes at a time, the lanes
 * and the tail combined in a fixed order. */
static float row_max(const float *s, long n, float m) {
    long j = 0;
#if defined(__AVX__)
    if (n >= 8) {
        __m256 a = _mm256_loadu_ps(s);
        for (j = 8; j + 8 <= n; j += 8) a = _mm256_max_ps(a, _mm256_loadu_ps(s + j));
        float t[8];
        _mm256_storeu_ps(t, a);
        for (int x = 0; x < 8; x++) m = t[x] > m ? t[x] : m;
    }
#endif
    for (; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

static float row_sum(const float *s, long n) {
    long j = 0;
    mlc_f8 a = MLC_BC8(0.0f);
    for (; j + 8 <= n; j += 8) a += MLC_LD8(s + j);
    float sum = mlc_hsum8(&a);
    for (; j < n; j++) sum += s[j];
    return sum;
}

/* The online softmax over every key block for query rows [i0, i1) of head h: the running
 * maximum m and sum l per row and, with v, the unnormalised output acc ([rows][E]).
 * A row's first block always holds key 0, which every row sees, so m is finite from then
 * on and exp(m_old - m_new) never meets inf - inf. */
static void online_rows(const mlc_attn_geom *g, long h, long i0, long i1, const float *q, const float *k,
                        const float *v, AttnScratch *w) {
    const long D = g->D, E = g->E, rows = i1 - i0, kend = g->causal ? min_l(i1, g->S) : g->S;
    for (long r = 0; r < rows; r++) w->m[r] = -INFINITY, w->l[r] = 0.0f;
    if (v) mlc_zero_row(w->acc, rows * E);
    for (long j0 = 0; j0 < kend; j0 += KB) {
        const long jn = min_l(kend - j0, KB);
        transpose_block(k + (h * g->S + j0) * D, jn, D, w->kt);
        for (long r = 0; r < rows; r++) {
            const long nk = keys_seen(g, i0 + r, j0, jn);
            if (nk <= 0) continue;
            float *restrict s = w->p;
            dots(q + (h * g->T + i0 + r) * D, w->kt, D, nk, g->scale, s);
            const float mx = row_max(s, nk, w->m[r]), alpha = expf(w->m[r] - mx);
            exp_sub(s, nk, mx);
            w->l[r] = w->l[r] * alpha + row_sum(s, nk), w->m[r] = mx;
            if (!v) continue;
            float *restrict acc = w->acc + r * E;
            for (long e = 0; e < E; e++) acc[e] *= alpha;
            wsum(s, 1, nk, v + (h * g->S + j0) * E, E, acc);
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
            const long h = it / nq, i0 = it % nq * QB, i1 = min_l(i0 + QB, g->T);
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
            const long h = it / nq, i0 = it % nq * QB, i1 = min_l(i0 + QB, g->T);
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

/* Row r of the block's p and ds (KB floats each) for query i against keys [j0, j0 + jn)
 * (transposed in w): p = exp(s - lse) and ds = p (do_i . v_j - delta_i) for the nk keys i
 * sees, 0 for the rest. */
static void grad_row(const mlc_attn_geom *g, long h, long i, long nk, long jn, const float *q, const float *dout,
                     const float *st, AttnScratch *w, long r) {
    float *restrict p = w->p + r * KB, *restrict ds = w->ds + r * KB;
    const long row = h * g->T + i;
    if (nk > 0) {
        dots(q + row * g->D, w->kt, g->D, nk, g->scale, p);
        const float lse = st[2 * row], delta = st[2 * row + 1];
        exp_sub(p, nk, lse);
        dots(dout + row * g->E, w->vt, g->E, nk, 1.0f, ds);
        for (long j = 0; j < nk; j++) ds[j] = p[j] * (ds[j] - delta);
    }
    for (long j = nk > 0 ? nk : 0; j < jn; j++) p[j] = 0.0f, ds[j] = 0.0f;
}

void mlc_attention_bwd_q(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *v,
                         const float *dout, const float *st, float *dq) {
    const long D = g->D, E = g->E, nq = blocks(g->T, QB), items = BH * nq;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * (g->D + g->E) > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nq, i0 = it % nq * QB, i1 = min_l(i0 + QB, g->T);
            const long kend = g->causal ? min_l(i1, g->S) : g->S;
            mlc_zero_row(w.acc, (i1 - i0) * D);
            for (long j0 = 0; j0 < kend; j0 += KB) {
                const long jn = min_l(kend - j0, KB);
                transpose_block(k + (h * g->S + j0) * D, jn, D, w.kt);
                transpose_block(v + (h * g->S + j0) * E, jn, E, w.vt);
                for (long r = 0; r < i1 - i0; r++) {
                    const long nk = keys_seen(g, i0 + r, j0, jn);
                    if (nk <= 0) continue;
                    grad_row(g, h, i0 + r, nk, jn, q, dout, st, &w, r);
                    wsum(w.ds + r * KB, 1, nk, k + (h * g->S + j0) * D, D, w.acc + r * D);
                }
            }
            for (long x = 0; x < (i1 - i0) * D; x++) dq[(h * g->T + i0) * D + x] = w.acc[x] * g->scale;
        }
        free(w.kt);
    }
}

void mlc_attention_bwd_kv(const mlc_attn_geom *g, long BH, const float *q, const float *k, const float *v,
                          const float *dout, const float *st, float *dkv) {
    const long D = g->D, E = g->E, W = D + E, nkb = blocks(g->S, KB), items = BH * nkb;
#pragma omp parallel if (items > 1 && BH * g->T * g->S * (g->D + g->E) > MLC_ATTN_MIN_WORK)
    {
        AttnScratch w = scratch_new(g);
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long h = it / nkb, j0 = it % nkb * KB, jn = min_l(g->S - j0, KB);
            float *restrict out = dkv + (h * g->S + j0) * W; /* [jn][D + E]: dk, dv */
            mlc_zero_row(out, jn * W);
            transpose_block(k + (h * g->S + j0) * D, jn, D, w.kt);
            transpose_block(v + (h * g->S + j0) * E, jn, E, w.vt);
            /* causal: the query blocks before the one holding query j0 see none of these keys */
            for (long i0 = g->causal ? j0 / QB * QB : 0; i0 < g->T; i0 += QB) {
                const long qn = min_l(QB, g->T - i0);
                for (long r = 0; r < qn; r++)
                    grad_row(g, h, i0 + r, keys_seen(g, i0 + r, j0, jn), jn, q, dout, st, &w, r);
                for (long j = 0; j < jn; j++) {
                    wsum(w.ds + j, KB, qn, q + (h * g->T + i0) * D, D, out + j * W);
                    wsum(w.p + j, KB, qn, dout + (h * g->T + i0) * E, E, out + j * W + D);
                }
            }
            for (long j = 0; j < jn; j++)
                for (long c = 0; c < D; c++) out[j * W + c] *= g->scale;
        }
        free(w.kt);
    }
}
