/* ---- templates/cuda_device.cuh: device helpers, the start of every CUDA kernel section ---- */
/* Compiles after runtime/kernels/mlc_geom.h and mlc_philox.h alone (NVRTC: no headers),
 * so the kernel section of a model, which starts with the three, does too.
 * Convolution and pooling kernels take their geometry by value; the host launchers at
 * the end (nvcc only) are what the generated code calls, like the C target's
 * mlc_conv2d_* and mlc_*pool2d_*. Every kernel is a grid-stride loop, a thread per output
 * element: sums run in a fixed order, each written by one thread, so results do not
 * depend on scheduling. */

/* Models use only some of the helpers. */
#define MLC_DEV_HELPER static __attribute__((unused))

/* ---- convolution (NCHW): mlc_conv_geom and mlc_pool_geom come from runtime/kernels/mlc_geom.h,
 * which the emitter pastes in front of this file (the C kernels include it) ---- */

/* col[n][(c*KH + kh)*KW + kw][oh*Wo + ow] = x[n][grp*Cg + c][ih][iw] (0 outside) for the
 * samples n < B of group grp: K*P floats per sample. The launchers pass a chunk of the
 * batch at a time, small enough (B*K*P < 2^31) for 32-bit index arithmetic: 64-bit
 * divisions by these run-time sizes cost tens of instructions each. */
MLC_DEV_HELPER __global__ void mlc_im2col_kernel(const mlc_conv_geom g, const long B, const int grp, const float *x,
                                         float *col) {
    const unsigned Cg = (unsigned)(g.C / g.G), P = (unsigned)(g.Ho * g.Wo), K = Cg * g.KH * g.KW,
                   count = (unsigned)B * K * P;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        const unsigned q = i / P, p = i - q * P, n = q / K, k = q - n * K;
        const int oh = (int)(p / (unsigned)g.Wo), ow = (int)p - oh * g.Wo;
        const int c = (int)(k / (unsigned)(g.KW * g.KH)), r = (int)k - c * g.KW * g.KH, kh = r / g.KW, kw = r - kh * g.KW;
        const int ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
        col[i] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W
                     ? x[(((long)n * g.C + (long)grp * Cg + c) * g.H + ih) * g.W + iw]
                     : 0.0f;
    }
}

/* The adjoint of im2col, as a gather: each dx element of group grp sums the column
 * entries that came from it, taps (kh, kw) in row-major order (the C target's order).
 * 32-bit index arithmetic, as in im2col (B*Cg*H*W < 2^31 for the chunks it is given). */
MLC_DEV_HELPER __global__ void mlc_col2im_kernel(const mlc_conv_geom g, const long B, const int grp, const float *col,
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
MLC_DEV_HELPER __global__ void mlc_sum_slots_kernel(const long B, const long len, const float *part, float *y,
                                                    const int acc) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < len; i += (long)gridDim.x * blockDim.x) {
        float s = acc ? y[i] : 0.0f;
        for (long n = 0; n < B; n++) s += part[n * len + i];
        y[i] = s;
    }
}

/* ---- pooling (NCHW) ---- */

/* The flat in-plane index of window (oh, ow)'s first maximal in-bounds element (-1: none). */
MLC_DEV_HELPER __device__ __forceinline__ int mlc_pool_argmax(const mlc_pool_geom &g, const float *xp, int oh, int ow) {
    int best = -1;
    for (int kh = 0; kh < g.KH; kh++) {
        const int ih = oh * g.sh - g.ph + kh;
        if (ih < 0 || ih >= g.H) continue;
        for (int kw = 0; kw < g.KW; kw++) {
            const int iw = ow * g.sw - g.pw + kw;
            if (iw < 0 || iw >= g.W) continue;
            if (best < 0 || xp[ih * g.W + iw] > xp[best]) best = ih * g.W + iw;
        }
    }
    return best;
}

/* Max over each window's in-bounds elements (padding never wins). */
MLC_DEV_HELPER __global__ void mlc_maxpool2d_fwd_kernel(const mlc_pool_geom g, const long planes, const float *x, float *y) {
    const long PO = (long)g.Ho * g.Wo, count = planes * PO;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % g.Wo), oh = (int)((i / g.Wo) % g.Ho);
        const float *xp = x + (i / PO) * g.H * g.W;
        float m = -__int_as_float(0x7f800000);
        for (int kh = 0; kh < g.KH; kh++) {
            const int ih = oh * g.sh - g.ph + kh;
            if (ih < 0 || ih >= g.H) continue;
            for (int kw = 0; kw < g.KW; kw++) {
                const int iw = ow * g.sw - g.pw + kw;
                if (iw >= 0 && iw < g.W && xp[ih * g.W + iw] > m) m = xp[ih * g.W + iw];
            }
        }
        y[i] = m;
    }
}

/* The windows containing input row ih: oh in [*lo, *hi]. */
MLC_DEV_HELPER __device__ __forceinline__ void mlc_pool_range(int i, int k, int s, int p, int n_out, int *lo, int *hi) {
    const int t = i + p; /* oh*s <= t <= oh*s + k - 1 */
    *lo = t - k + 1 <= 0 ? 0 : (t - k + s) / s;
    *hi = t / s < n_out - 1 ? t / s : n_out - 1;
}

/* Each window's gradient goes to its first maximal element in row-major order; each dx
 * element gathers the windows that chose it, in window order. */
MLC_DEV_HELPER __global__ void mlc_maxpool2d_bwd_kernel(const mlc_pool_geom g, const long planes, const float *dy,
                                                const float *x, float *dx) {
    const long PI = (long)g.H * g.W, count = planes * PI;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        const int iw = (int)(i % g.W), ih = (int)((i / g.W) % g.H);
        const long p = i / PI;
        const float *xp = x + p * PI, *dyp = dy + p * g.Ho * g.Wo;
        int oh0, oh1, ow0, ow1;
        mlc_pool_range(ih, g.KH, g.sh, g.ph, g.Ho, &oh0, &oh1);
        mlc_pool_range(iw, g.KW, g.sw, g.pw, g.Wo, &ow0, &ow1);
        float s = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++)
                if (mlc_pool_argmax(g, xp, oh, ow) == ih * g.W + iw) s += dyp[oh * g.Wo + ow];
        dx[i] = s;
    }
}

/* The 2x2, stride 2 pooling of an even-sized plane, whose windows tile it: a thread per
 * window reads the window's four x values, then writes its four dx values, so dx may be
 * x's own bytes (fuse.c lets it take them over; the kernel above would race: a thread
 * reads x its neighbours write). The same first maximum as above, and dy itself where
 * the kernel above adds it to 0, as the C target's 2x2 path does. */
MLC_DEV_HELPER __global__ void mlc_maxpool2d_bwd_2x2_kernel(const mlc_pool_geom g, const long planes, const float *dy,
                                                    const float *x, float *dx) {
    const long count = planes * g.Ho * g.Wo;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        const long at = 2 * (i / g.Wo) * g.W + 2 * (i % g.Wo); /* row 2*oh of its plane, column 2*ow */
        const float a = x[at], b = x[at + 1], c = x[at + g.W], d = x[at + g.W + 1];
        int best = 0; /* 0..3 in row-major order; the first maximum wins */
        float m = a;
        if (b > m) m = b, best = 1;
        if (c > m) m = c, best = 2;
        if (d > m) best = 3;
        const float v = dy[i];
        dx[at] = best == 0 ? v : 0.0f;
        dx[at + 1] = best == 1 ? v : 0.0f;
        dx[at + g.W] = best == 2 ? v : 0.0f;
        dx[at + g.W + 1] = best == 3 ? v : 0.0f;
    }
}

/* Average over the window, padding counted as zeros (divisor KH*KW). */
MLC_DEV_HELPER __global__ void mlc_avgpool2d_fwd_kernel(const mlc_pool_geom g, const long planes, const float *x, float *y) {
    const float inv = 1.0f / (float)(g.KH * g.KW);
    const long PO = (long)g.Ho * g.Wo, count = planes * PO;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % g.Wo), oh = (int)((i / g.Wo) % g.Ho);
        const float *xp = x + (i / PO) * g.H * g.W;
        float s = 0.0f;
        for (int kh = 0; kh < g.KH; kh++) {
            const int ih = oh * g.sh - g.ph + kh;
            if (ih < 0 || ih >= g.H) continue;
            for (int kw = 0; kw < g.KW; kw++) {
                const int iw = ow * g.sw - g.pw + kw;
                if (iw >= 0 && iw < g.W) s += xp[ih * g.W + iw];
            }
        }
        y[i] = s * inv;
    }
}

/* Each dx element gathers dy * inv from the windows containing it, in window order. */
MLC_DEV_HELPER __global__ void mlc_avgpool2d_bwd_kernel(const mlc_pool_geom g, const long planes, const float *dy, float *dx) {
    const float inv = 1.0f / (float)(g.KH * g.KW);
    const long PI = (long)g.H * g.W, count = planes * PI;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        const int iw = (int)(i % g.W), ih = (int)((i / g.W) % g.H);
        const float *dyp = dy + (i / PI) * g.Ho * g.Wo;
        int oh0, oh1, ow0, ow1;
        mlc_pool_range(ih, g.KH, g.sh, g.ph, g.Ho, &oh0, &oh1);
        mlc_pool_range(iw, g.KW, g.sw, g.pw, g.Wo, &ow0, &ow1);
        float s = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) s += dyp[oh * g.Wo + ow] * inv;
        dx[i] = s;
    }
}

/* ---- fused reductions over rows (emit_cuda.c): a block of MLC_ROW_THREADS per output
 * element; its threads make the values of MLC_ROW_THREADS axis elements at a time, thread
 * 0 adds them in order. ---- */
#define MLC_ROW_THREADS 256

/* ---- batch-norm sums per channel over the batch and the spatial axis, in two launches.
 * A channel has only B*S elements and there may be 16 channels, so a block per channel
 * would leave most of the GPU idle: instead block (c, p) sums channel c over the p-th of
 * P fixed slices of the batch (thread t takes the slice's elements t, t + MLC_BN_THREADS,
 * ..., a fixed tree adds the threads' sums) into part (doubles, the op's workspace), and
 * then one thread per channel adds the P slices in order. Fixed slices, fixed order: the
 * same result every run. ---- */
#define MLC_BN_THREADS 256

MLC_DEV_HELPER __device__ __forceinline__ double mlc_block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = MLC_BN_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

/* part[2 (p C + c) + 0, 1] for channel c = blockIdx.x over samples [B p / P, B (p + 1) / P),
 * p = blockIdx.y, of x [B, C, S]: without dy, sum(x) and sum(x * x) (bn_stats); with dy,
 * sum(dy) and sum(dy * (x - mean)), mean = st[c] (bn_param_grads). */
MLC_DEV_HELPER __global__ void mlc_bn_part_kernel(const long B, const long C, const long S, const int P, const float *x,
                                                  const float *dy, const float *st, double *part) {
    __shared__ double sh[MLC_BN_THREADS];
    const long c = blockIdx.x, p = blockIdx.y, n0 = B * p / P, n1 = B * (p + 1) / P;
    const unsigned len = (unsigned)((n1 - n0) * S), us = (unsigned)S;
    const float mean = dy ? st[c] : 0.0f;
    double a = 0.0, b = 0.0;
    for (unsigned j = threadIdx.x; j < len; j += MLC_BN_THREADS) {
        const unsigned n = j / us;
        const long k = ((n0 + n) * C + c) * S + (j - n * us);
        const float v = x[k];
        if (dy) {
            const float d = dy[k];
            a += d, b += d * (v - mean);
        } else {
            a += v, b += (double)v * v;
        }
    }
    a = mlc_block_sum(a, sh);
    b = mlc_block_sum(b, sh);
    if (threadIdx.x == 0) part[2 * (p * C + c)] = a, part[2 * (p * C + c) + 1] = b;
}

/* Adds the P slices of each channel in order. stats: st[c] = mean, st[C + c] = biased
 * variance (E[x^2] - mean^2 in double: no cancellation worth a second pass over x).
 * Otherwise pg[c] = sum(dy) (beta's gradient), pg[C + c] = sum(dy * xhat) (gamma's). */
MLC_DEV_HELPER __global__ void mlc_bn_finish_kernel(const long B, const long C, const long S, const int P,
                                                    const double *part, const float *st, const float eps, float *out) {
    for (long c = blockIdx.x * (long)blockDim.x + threadIdx.x; c < C; c += (long)gridDim.x * blockDim.x) {
        double a = 0.0, b = 0.0;
        for (int p = 0; p < P; p++) a += part[2 * (p * C + c)], b += part[2 * (p * C + c) + 1];
        if (!st) {
            const double N = (double)(B * S), mean = a / N, var = b / N - mean * mean;
            out[c] = (float)mean, out[C + c] = (float)(var > 0.0 ? var : 0.0);
        } else {
            out[c] = (float)a, out[C + c] = (float)b * (1.0f / sqrtf(st[C + c] + eps));
        }
    }
}

#if !defined(__CUDACC_RTC__) && !defined(MLC_DEVICE_ONLY)
/* ---- host launchers (nvcc only; MLC_DEVICE_ONLY leaves them out): what conv2d and the pooling ops emit a call to ---- */

MLC_DEV_HELPER inline int mlc_conv_direct(const mlc_conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* The launchers take the batch in chunks of at most nc samples (the compiler sizes nc so
 * that a chunk's columns fit an 8 MiB workspace, targets/cuda/conv.c): the workspace no longer
 * grows with the batch, and the index arithmetic of a chunk fits 32 bits. Chunks change
 * no result: samples are independent, and the weight gradient's slots are still added in
 * sample order. */
MLC_DEV_HELPER inline void mlc_conv_check_chunk(long count) {
    if (count >= 2147483647L) {
        fprintf(stderr, "mlc: a convolution chunk of %ld elements does not fit 32-bit indexing\n", count);
        abort();
    }
}

/* The columns a GEMM reads for group grp of the nb samples at xc: im2col into buf, or on
 * the direct path the input itself; *stride: floats from one sample's columns to the next. */
MLC_DEV_HELPER inline const float *mlc_conv_cols(cudaStream_t stream, const mlc_conv_geom *g, long nb, int grp,
                                                 const float *xc, float *buf, long long *stride) {
    const int Cg = g->C / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    if (mlc_conv_direct(g)) {
        *stride = (long long)g->C * HW;
        return xc + (long)grp * Cg * HW;
    }
    mlc_conv_check_chunk(nb * K * P);
    mlc_im2col_kernel<<<mlc_grid(nb * K * P), MLC_BLOCK, 0, stream>>>(*g, nb, grp, xc, buf);
    MLC_LAUNCH_CHECK(stream);
    *stride = K * P;
    return buf;
}

/* y[n] = w . im2col(x[n]): per chunk and group, im2col of the chunk into ws (nb*K*P
 * floats; none on the direct path), then one strided-batched GEMM over its samples.
 * Row-major Y[Og,P] = W[Og,K] Col[K,P] is column-major Y^T = Col^T W^T. */
MLC_DEV_HELPER inline void mlc_cuda_conv2d_fwd(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                       const float *x, const float *w, float *y, float *ws, long nc) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const float *xc = x + n0 * g->C * HW;
        float *yc = y + n0 * g->O * P;
        for (int grp = 0; grp < g->G; grp++) {
            long long col_stride;
            const float *cols = mlc_conv_cols(stream, g, nb, grp, xc, ws, &col_stride);
            MLC_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, Og, (int)K, &mlc_one, cols,
                                                       (int)P, col_stride, w + (long)grp * Og * K, (int)K, 0, &mlc_zero,
                                                       yc + (long)grp * Og * P, (int)P, (long long)g->O * P, (int)nb));
        }
    }
}

/* dx[n] = col2im(w^T . dy[n]): per chunk and group, Col[K,P] = W^T[K,Og] dY[Og,P] for
 * each of its samples into ws (nb*K*P floats), then the col2im gather. The direct path
 * writes dx. */
MLC_DEV_HELPER inline void mlc_cuda_conv2d_bwd_data(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                            const float *dy, const float *w, float *dx, float *ws, long nc) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    const int direct = mlc_conv_direct(g);
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const float *dyc = dy + n0 * g->O * P;
        float *dxc = dx + n0 * g->C * HW;
        for (int grp = 0; grp < g->G; grp++) {
            float *cols = direct ? dxc + (long)grp * Cg * HW : ws;
            const long long col_stride = direct ? (long long)g->C * HW : (long long)K * P;
            MLC_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)P, (int)K, Og, &mlc_one,
                                                       dyc + (long)grp * Og * P, (int)P, (long long)g->O * P,
                                                       w + (long)grp * Og * K, (int)K, 0, &mlc_zero, cols, (int)P,
                                                       col_stride, (int)nb));
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
 * then nb*K*P column floats (none when direct). */
MLC_DEV_HELPER inline void mlc_cuda_conv2d_bwd_filter(cublasHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                              const float *x, const float *dy, float *dw, float *ws, long nc) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const long K = (long)Cg * g->KH * g->KW, P = (long)g->Ho * g->Wo, HW = (long)g->H * g->W;
    for (long n0 = 0; n0 < B; n0 += nc) {
        const long nb = B - n0 < nc ? B - n0 : nc;
        const float *xc = x + n0 * g->C * HW, *dyc = dy + n0 * g->O * P;
        float *part = ws, *colbuf = ws + nb * Og * K;
        for (int grp = 0; grp < g->G; grp++) {
            long long col_stride;
            const float *cols = mlc_conv_cols(stream, g, nb, grp, xc, colbuf, &col_stride);
            MLC_CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)K, Og, (int)P, &mlc_one, cols,
                                                       (int)P, col_stride, dyc + (long)grp * Og * P, (int)P,
                                                       (long long)g->O * P, &mlc_zero, part, (int)K, (long long)Og * K,
                                                       (int)nb));
            mlc_sum_slots_kernel<<<mlc_grid(Og * K), MLC_BLOCK, 0, stream>>>(nb, Og * K, part, dw + (long)grp * Og * K,
                                                                              n0 > 0);
            MLC_LAUNCH_CHECK(stream);
        }
    }
}

MLC_DEV_HELPER inline void mlc_cuda_maxpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x,
                                          float *y) {
    mlc_maxpool2d_fwd_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, x, y);
    MLC_LAUNCH_CHECK(stream);
}

MLC_DEV_HELPER inline void mlc_cuda_maxpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy,
                                          const float *x, float *dx) {
    /* the C target's mlc_pool_2x2: the geometry dx may share x's bytes in */
    if (g->KH == 2 && g->KW == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->H % 2 == 0 &&
        g->W % 2 == 0)
        mlc_maxpool2d_bwd_2x2_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, dy, x, dx);
    else
        mlc_maxpool2d_bwd_kernel<<<mlc_grid(planes * g->H * g->W), MLC_BLOCK, 0, stream>>>(*g, planes, dy, x, dx);
    MLC_LAUNCH_CHECK(stream);
}

MLC_DEV_HELPER inline void mlc_cuda_avgpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x,
                                          float *y) {
    mlc_avgpool2d_fwd_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, x, y);
    MLC_LAUNCH_CHECK(stream);
}

MLC_DEV_HELPER inline void mlc_cuda_avgpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy,
                                          float *dx) {
    mlc_avgpool2d_bwd_kernel<<<mlc_grid(planes * g->H * g->W), MLC_BLOCK, 0, stream>>>(*g, planes, dy, dx);
    MLC_LAUNCH_CHECK(stream);
}
#endif /* host launchers */
/* ---- end of device helpers ---- */
