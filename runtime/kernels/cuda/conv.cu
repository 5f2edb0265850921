/* conv.cu - the CUDA convolution (mlc_kernels_cuda.h), NCHW: im2col and col2im gathers
 * around strided-batched cuBLAS GEMMs over the samples, and the weight gradient's
 * per-sample slots summed in sample order. The C target's convolutions are in
 * runtime/kernels/c/conv_*.c; the compiler's side (the chunk size, the workspace) is
 * compiler/targets/cuda/conv.c. */
#include "../mlc_kernels_cuda.h"

/* col[n][(c*KH + kh)*KW + kw][oh*Wo + ow] = x[n][grp*Cg + c][ih][iw] (0 outside) for the
 * samples n < B of group grp: K*P floats per sample. The launchers pass a chunk of the
 * batch at a time, small enough (B*K*P < 2^31) for 32-bit index arithmetic: 64-bit
 * divisions by these run-time sizes cost tens of instructions each. T: float, or mlc_bf16
 * for tensors stored as bfloat16 (the columns then too, for a GEMM on CUDA_R_16BF). */
template <typename T>
static __global__ void mlc_im2col_kernel(const mlc_conv_geom g, const long B, const int grp, const T *x, T *col) {
    const unsigned Cg = (unsigned)(g.C / g.G), P = (unsigned)(g.Ho * g.Wo), K = Cg * g.KH * g.KW,
                   count = (unsigned)B * K * P;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        const unsigned q = i / P, p = i - q * P, n = q / K, k = q - n * K;
        const int oh = (int)(p / (unsigned)g.Wo), ow = (int)p - oh * g.Wo;
        const int c = (int)(k / (unsigned)(g.KW * g.KH)), r = (int)k - c * g.KW * g.KH, kh = r / g.KW,
                  kw = r - kh * g.KW;
        const int ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
        col[i] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W
                     ? (float)x[(((long)n * g.C + (long)grp * Cg + c) * g.H + ih) * g.W + iw]
                     : 0.0f;
    }
}

/* The adjoint of im2col, as a gather: each dx element of group grp sums the column
 * entries that came from it, taps (kh, kw) in row-major order (the C target's order).
 * 32-bit index arithmetic, as in im2col (B*Cg*H*W < 2^31 for the chunks it is given). */
static __global__ void mlc_col2im_kernel(const mlc_conv_geom g, const long B, const int grp, const float *col,
                                         float *dx) {
    const unsigned Cg = (unsigned)(g.C / g.G), HW = (unsigned)(g.H * g.W), count = (unsigned)B * Cg * HW;
    const long P = (long)g.Ho * g.Wo, K = (long)Cg * g.KH * g.KW;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        const unsigned q = i / HW, hw = i - q * HW, n = q / Cg, c = q - n * Cg;
        const int ih = (int)(hw / (unsigned)g.W), iw = (int)hw - ih * g.W;
        const float *cn = col + (long)n * K * P;
        float s = 0.0f;
        for (int kh = 0; kh < g.KH; kh++) {
            const int th = ih + g.ph - kh * g.dh;
            if (th < 0 || th % g.sh) continue;
            const int oh = th / g.sh;
            if (oh >= g.Ho) continue;
            for (int kw = 0; kw < g.KW; kw++) {
                const int tw = iw + g.pw - kw * g.dw;
                if (tw < 0 || tw % g.sw) continue;
                const int ow = tw / g.sw;
                if (ow >= g.Wo) continue;
                s += cn[((long)(c * g.KH + kh) * g.KW + kw) * P + (long)oh * g.Wo + ow];
            }
        }
        dx[((long)n * g.C + (long)grp * Cg + c) * HW + hw] = s;
    }
}

/* y[i] (+)= sum over n < B of part[n*len + i], in sample order; with acc, added to what
 * y holds (the chunks before, summed the same way: the order is the whole batch's). */
static __global__ void mlc_sum_slots_kernel(const long B, const long len, const float *part, float *y, const int acc) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < len; i += (long)gridDim.x * blockDim.x) {
        float s = acc ? y[i] : 0.0f;
        for (long n = 0; n < B; n++) s += part[n * len + i];
        y[i] = s;
    }
}

/* ---- host launchers ---- */

static int mlc_conv_direct(const mlc_conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* The launchers take the batch in chunks of at most nc samples (the compiler sizes nc so
 * that a chunk's columns fit an 8 MiB workspace, targets/cuda/conv.c): the workspace no longer
 * grows with the batch, and the index arithmetic of a chunk fits 32 bits. Chunks change
 * no result: samples are independent, and the weight gradient's slots are still added in
 * sample order. */
static void mlc_conv_check_chunk(long count) {
    if (count >= 2147483647L) {
        fprintf(stderr, "mlc: a convolution chunk of %ld elements does not fit 32-bit indexing\n", count);
        abort();
    }
}

/* The columns a GEMM reads for group grp of the nb samples at xc: im2col into buf, or on
 * the direct path the input itself; *stride: elements from one sample's columns to the next. */
template <typename T>
static const T *mlc_conv_cols(cudaStream_t stream, const mlc_conv_geom *g, long nb, int grp, const T *xc, T *buf,
                              long long *stride) {
    const int Cg = g->C / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    if (mlc_conv_direct(g)) {
        *stride = (long long)g->C * HW;
        return xc + (long)grp * Cg * HW;
    }
    mlc_conv_check_chunk(nb * K * P);
    mlc_im2col_kernel<T><<<mlc_grid(nb * K * P), MLC_BLOCK, 0, stream>>>(*g, nb, grp, xc, buf);
    MLC_LAUNCH_CHECK(stream);
    *stride = K * P;
    return buf;
}

/* y[n] = w . im2col(x[n]): per chunk and group, im2col of the chunk into ws (nb*K*P
 * floats; none on the direct path), then one strided-batched GEMM over its samples.
 * Row-major Y[Og,P] = W[Og,K] Col[K,P] is column-major Y^T = Col^T W^T. T: the operands'
 * element type (the columns' too). */
template <typename T>
static void conv2d_fwd(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const T *x, const T *w,
                       float *y, T *ws, long nc, int bf16) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const T *xc = x + n0 * g->C * HW;
        float *yc = y + n0 * g->O * P;
        for (int grp = 0; grp < g->G; grp++) {
            long long col_stride;
            const T *cols = mlc_conv_cols(stream, g, nb, grp, xc, ws, &col_stride);
            MLC_CUBLAS_CHECK(mlc_gemm_strided(h, bf16, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, Og, (int)K, cols, (int)P,
                                              col_stride, w + (long)grp * Og * K, (int)K, 0, yc + (long)grp * Og * P,
                                              (int)P, (long long)g->O * P, (int)nb));
        }
    }
}

/* dx[n] = col2im(w^T . dy[n]): per chunk and group, Col[K,P] = W^T[K,Og] dY[Og,P] for
 * each of its samples into ws (nb*K*P floats), then the col2im gather. The direct path
 * writes dx. T: dy's and w's element type (the GEMM's output is floats). */
template <typename T>
static void conv2d_bwd_data(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const T *dy,
                            const T *w, float *dx, float *ws, long nc, int bf16) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    const int direct = mlc_conv_direct(g);
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const T *dyc = dy + n0 * g->O * P;
        float *dxc = dx + n0 * g->C * HW;
        for (int grp = 0; grp < g->G; grp++) {
            float *cols = direct ? dxc + (long)grp * Cg * HW : ws;
            const long long col_stride = direct ? (long long)g->C * HW : (long long)K * P;
            MLC_CUBLAS_CHECK(mlc_gemm_strided(h, bf16, CUBLAS_OP_N, CUBLAS_OP_T, (int)P, (int)K, Og,
                                              dyc + (long)grp * Og * P, (int)P, (long long)g->O * P,
                                              w + (long)grp * Og * K, (int)K, 0, cols, (int)P, col_stride, (int)nb));
            if (!direct) {
                mlc_conv_check_chunk(nb * (K * P > Cg * HW ? K * P : Cg * HW));
                mlc_col2im_kernel<<<mlc_grid(nb * Cg * HW), MLC_BLOCK, 0, stream>>>(*g, nb, grp, ws, dxc);
                MLC_LAUNCH_CHECK(stream);
            }
        }
    }
}

/* dw = sum_n dy[n] . im2col(x[n])^T: per chunk and group, each sample's product
 * dW_n[Og,K] = dY[Og,P] Col^T[P,K] into its own slot of ws, then the slots added to dw in
 * sample order (deterministic; the first chunk starts the sum). ws: nb*Og*K slot floats,
 * then, from the next 16 bytes, nb*K*P column elements (none when direct). T: x's and dy's element type (the
 * columns' too; the slots are floats). */
template <typename T>
static void conv2d_bwd_filter(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const T *x,
                              const T *dy, float *dw, float *ws, long nc, int bf16) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const T *xc = x + n0 * g->C * HW, *dyc = dy + n0 * g->O * P;
        float *part = ws;
        /* the columns start 16 bytes in (cuBLAS's tensor-core kernels want it for bfloat16
         * operands; the workspace has the 3 floats this may take, targets/cuda/conv.c) */
        T *colbuf = (T *)(ws + ((nb * Og * K + 3) & ~3L));
        for (int grp = 0; grp < g->G; grp++) {
            long long col_stride;
            const T *cols = mlc_conv_cols(stream, g, nb, grp, xc, colbuf, &col_stride);
            MLC_CUBLAS_CHECK(mlc_gemm_strided(h, bf16, CUBLAS_OP_T, CUBLAS_OP_N, (int)K, Og, (int)P, cols, (int)P,
                                              col_stride, dyc + (long)grp * Og * P, (int)P, (long long)g->O * P, part,
                                              (int)K, (long long)Og * K, (int)nb));
            mlc_sum_slots_kernel<<<mlc_grid(Og * K), MLC_BLOCK, 0, stream>>>(nb, Og * K, part, dw + (long)grp * Og * K,
                                                                             n0 > 0);
            MLC_LAUNCH_CHECK(stream);
        }
    }
}

/* ---- the launchers: the operands' element type from the mode ---- */

void mlc_cuda_conv2d_fwd(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                         const void *w, float *y, float *ws, long nc, int bf16) {
    if (bf16 == MLC_BF16_STORED)
        conv2d_fwd(h, stream, g, B, (const mlc_bf16 *)x, (const mlc_bf16 *)w, y, (mlc_bf16 *)ws, nc, bf16);
    else conv2d_fwd(h, stream, g, B, (const float *)x, (const float *)w, y, ws, nc, bf16);
}

void mlc_cuda_conv2d_bwd_data(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *dy,
                              const void *w, float *dx, float *ws, long nc, int bf16) {
    if (bf16 == MLC_BF16_STORED)
        conv2d_bwd_data(h, stream, g, B, (const mlc_bf16 *)dy, (const mlc_bf16 *)w, dx, ws, nc, bf16);
    else conv2d_bwd_data(h, stream, g, B, (const float *)dy, (const float *)w, dx, ws, nc, bf16);
}

void mlc_cuda_conv2d_bwd_filter(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                                const void *dy, float *dw, float *ws, long nc, int bf16) {
    if (bf16 == MLC_BF16_STORED)
        conv2d_bwd_filter(h, stream, g, B, (const mlc_bf16 *)x, (const mlc_bf16 *)dy, dw, ws, nc, bf16);
    else conv2d_bwd_filter(h, stream, g, B, (const float *)x, (const float *)dy, dw, ws, nc, bf16);
}
