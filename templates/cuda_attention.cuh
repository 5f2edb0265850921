/* ---- templates/cuda_attention.cuh: fused scaled-dot-product attention (ops_attention.c) ---- */
/* Device functions a block runs; the emitter (compiler/targets/cuda/attention.c) writes a
 * kernel per node that calls one with the node's widths D (q, k) and E (v) as template
 * arguments, so each thread's rows live in registers. Flash-attention style: a thread per
 * query row (or, for dk and dv, per key row) of a block of MLC_ATTN_THREADS rows, the
 * other operand streamed through shared memory a tile at a time, the scores of a tile
 * only in registers: no T x S matrix in memory, forward or backward. Each output row is
 * one thread's, summed in a fixed order: the same bits on every run. The inputs' element
 * types are template parameters too (deduced from the pointers): float, or mlc_bf16 for
 * a tensor stored as bfloat16 (compiler/targets/cuda/bf16_storage.c), read as the float
 * it holds; the tiles in shared memory and the outputs are floats.
 * Compiles alone (NVRTC: no headers), before the device template. */

#define MLC_ATTN_THREADS 64

#if !defined(__CUDACC_RTC__)
/* Blocks for `rows` rows of each of BH heads (never none). Only models with attention
 * launch its kernels, and nvcc -Werror rejects an unreferenced static function. */
[[maybe_unused]] static inline unsigned mlc_attn_grid(long BH, long rows) {
    const long n = BH * ((rows + MLC_ATTN_THREADS - 1) / MLC_ATTN_THREADS);
    return n < 1 ? 1u : (unsigned)n;
}
#endif

/* Rows of the streamed operand per shared-memory tile: at most 32, and at most 32 KiB of
 * shared memory for a tile of w floats per row. */
template <int W> struct mlc_attn_tile {
    static constexpr int rows = 8192 / W < 1 ? 1 : 8192 / W > 32 ? 32 : 8192 / W;
};

/* The block's rows: head h, first row r0 of rows n split into blocks of MLC_ATTN_THREADS;
 * 0 when the block is past the last head (never, with the emitter's grid). */
__device__ __forceinline__ int mlc_attn_block(long BH, long n, long *h, long *r0) {
    const long nb = (n + MLC_ATTN_THREADS - 1) / MLC_ATTN_THREADS;
    *h = (long)blockIdx.x / nb, *r0 = (long)blockIdx.x % nb * MLC_ATTN_THREADS;
    return *h < BH;
}

/* Copies rows [j0, j0 + jn) of a [.., w] matrix into the tile, the block's threads
 * together. */
template <int W, class T>
__device__ __forceinline__ void mlc_attn_load(const T *src, long j0, int jn, float *tile) {
    for (int x = threadIdx.x; x < jn * W; x += MLC_ATTN_THREADS) tile[x] = src[j0 * W + x];
}

/* How many of the jn rows from j0 query row i sees. */
__device__ __forceinline__ int mlc_attn_seen(int causal, long i, long j0, int jn) {
    if (!causal) return jn;
    const long n = i + 1 - j0;
    return n < jn ? (int)n : jn;
}

/* The online softmax over the key tiles for the thread's query row i. FWD: out_i = o_i =
 * sum_j p_ij v_j; else the backward's statistics from o and dout, out_i = (logsumexp_j
 * s_ij, do_i . o_i). */
template <int D, int E, bool FWD, class TQ, class TK, class TV, class TO, class TD>
__device__ __forceinline__ void mlc_attention_rows(const long BH, const long T, const long S, const float scale,
                                                   const int causal, const TQ *q, const TK *k, const TV *v,
                                                   const TO *o, const TD *dout, float *out) {
    constexpr int BK = mlc_attn_tile<D + E>::rows;
    __shared__ float ks[BK * D], vs[FWD ? BK * E : 1];
    long h, i0;
    if (!mlc_attn_block(BH, T, &h, &i0)) return;
    const long i = i0 + threadIdx.x;
    const bool row = i < T;
    float qr[D], acc[FWD ? E : 1], m = -3.402823466e38f, l = 0.0f;
#pragma unroll
    for (int d = 0; d < D; d++) qr[d] = row ? q[(h * T + i) * D + d] : 0.0f;
#pragma unroll
    for (int e = 0; e < (FWD ? E : 1); e++) acc[e] = 0.0f;
    const long i1 = i0 + MLC_ATTN_THREADS < T ? i0 + MLC_ATTN_THREADS : T;
    const long kend = causal && i1 < S ? i1 : S;
    for (long j0 = 0; j0 < kend; j0 += BK) {
        const int jn = kend - j0 < BK ? (int)(kend - j0) : BK;
        __syncthreads(); /* the last tile is read */
        mlc_attn_load<D>(k + h * S * D, j0, jn, ks);
        if (FWD) mlc_attn_load<E>(v + h * S * E, j0, jn, vs);
        __syncthreads();
        const int nk = row ? mlc_attn_seen(causal, i, j0, jn) : 0;
        if (nk <= 0) continue;
        float s[BK], mx = m;
        for (int j = 0; j < nk; j++) {
            float t = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) t += qr[d] * ks[j * D + d];
            s[j] = t * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        const float alpha = expf(m - mx);
        float sum = 0.0f;
        for (int j = 0; j < nk; j++) s[j] = expf(s[j] - mx), sum += s[j];
        l = l * alpha + sum, m = mx;
        if (FWD) {
#pragma unroll
            for (int e = 0; e < E; e++) acc[e] *= alpha;
            for (int j = 0; j < nk; j++)
#pragma unroll
                for (int e = 0; e < E; e++) acc[e] += s[j] * vs[j * E + e];
        }
    }
    if (!row) return;
    if (FWD) {
        const float inv = 1.0f / l;
#pragma unroll
        for (int e = 0; e < E; e++) out[(h * T + i) * E + e] = acc[e] * inv;
    } else {
        float delta = 0.0f;
        for (int e = 0; e < E; e++) delta += dout[(h * T + i) * E + e] * o[(h * T + i) * E + e];
        out[2 * (h * T + i)] = m + logf(l), out[2 * (h * T + i) + 1] = delta;
    }
}

/* dq_i = scale sum_j p_ij (do_i . v_j - delta_i) k_j, p_ij = exp(s_ij - lse_i): a thread
 * per query row, k and v streamed. */
template <int D, int E, class TQ, class TK, class TV, class TD, class TS>
__device__ __forceinline__ void mlc_attention_bwd_q_rows(const long BH, const long T, const long S, const float scale,
                                                         const int causal, const TQ *q, const TK *k, const TV *v,
                                                         const TD *dout, const TS *st, float *dq) {
    constexpr int BK = mlc_attn_tile<D + E>::rows;
    __shared__ float ks[BK * D], vs[BK * E];
    long h, i0;
    if (!mlc_attn_block(BH, T, &h, &i0)) return;
    const long i = i0 + threadIdx.x, r = h * T + i;
    const bool row = i < T;
    float qr[D], dr[E], acc[D];
#pragma unroll
    for (int d = 0; d < D; d++) qr[d] = row ? q[r * D + d] : 0.0f, acc[d] = 0.0f;
#pragma unroll
    for (int e = 0; e < E; e++) dr[e] = row ? dout[r * E + e] : 0.0f;
    const float lse = row ? st[2 * r] : 0.0f, delta = row ? st[2 * r + 1] : 0.0f;
    const long i1 = i0 + MLC_ATTN_THREADS < T ? i0 + MLC_ATTN_THREADS : T;
    const long kend = causal && i1 < S ? i1 : S;
    for (long j0 = 0; j0 < kend; j0 += BK) {
        const int jn = kend - j0 < BK ? (int)(kend - j0) : BK;
        __syncthreads();
        mlc_attn_load<D>(k + h * S * D, j0, jn, ks);
        mlc_attn_load<E>(v + h * S * E, j0, jn, vs);
        __syncthreads();
        const int nk = row ? mlc_attn_seen(causal, i, j0, jn) : 0;
        for (int j = 0; j < nk; j++) {
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) s += qr[d] * ks[j * D + d];
#pragma unroll
            for (int e = 0; e < E; e++) dp += dr[e] * vs[j * E + e];
            const float p = expf(s * scale - lse), ds = p * (dp - delta);
#pragma unroll
            for (int d = 0; d < D; d++) acc[d] += ds * ks[j * D + d];
        }
    }
    if (!row) return;
#pragma unroll
    for (int d = 0; d < D; d++) dq[r * D + d] = acc[d] * scale;
}

/* dk_j = scale sum_i p_ij (do_i . v_j - delta_i) q_i and dv_j = sum_i p_ij do_i, side by
 * side in out [.., S, D + E]: a thread per key row j, the queries (q, do and their
 * statistics) streamed in order. */
template <int D, int E, class TQ, class TK, class TV, class TD, class TS>
__device__ __forceinline__ void mlc_attention_bwd_kv_rows(const long BH, const long T, const long S, const float scale,
                                                          const int causal, const TQ *q, const TK *k, const TV *v,
                                                          const TD *dout, const TS *st, float *out) {
    constexpr int BQ = mlc_attn_tile<D + E + 2>::rows;
    __shared__ float qs[BQ * D], ds_[BQ * E], ss[BQ * 2];
    long h, j0;
    if (!mlc_attn_block(BH, S, &h, &j0)) return;
    const long j = j0 + threadIdx.x, r = h * S + j;
    const bool row = j < S;
    float kr[D], vr[E], dk[D], dv[E];
#pragma unroll
    for (int d = 0; d < D; d++) kr[d] = row ? k[r * D + d] : 0.0f, dk[d] = 0.0f;
#pragma unroll
    for (int e = 0; e < E; e++) vr[e] = row ? v[r * E + e] : 0.0f, dv[e] = 0.0f;
    /* causal: queries before the block's first key see none of its keys */
    for (long q0 = causal ? j0 : 0; q0 < T; q0 += BQ) {
        const int qn = T - q0 < BQ ? (int)(T - q0) : BQ;
        __syncthreads();
        mlc_attn_load<D>(q + h * T * D, q0, qn, qs);
        mlc_attn_load<E>(dout + h * T * E, q0, qn, ds_);
        mlc_attn_load<2>(st + h * T * 2, q0, qn, ss);
        __syncthreads();
        if (!row) continue;
        for (int x = causal && j > q0 ? (int)(j - q0) : 0; x < qn; x++) {
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int d = 0; d < D; d++) s += qs[x * D + d] * kr[d];
#pragma unroll
            for (int e = 0; e < E; e++) dp += ds_[x * E + e] * vr[e];
            const float p = expf(s * scale - ss[2 * x]), g = p * (dp - ss[2 * x + 1]);
#pragma unroll
            for (int d = 0; d < D; d++) dk[d] += g * qs[x * D + d];
#pragma unroll
            for (int e = 0; e < E; e++) dv[e] += p * ds_[x * E + e];
        }
    }
    if (!row) return;
#pragma unroll
    for (int d = 0; d < D; d++) out[r * (D + E) + d] = dk[d] * scale;
#pragma unroll
    for (int e = 0; e < E; e++) out[r * (D + E) + D + e] = dv[e];
}
