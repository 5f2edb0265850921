/* pool.cu - CUDA max and average pooling and their gradients (mlc_kernels_cuda.h), NCHW,
                                                               * a thread per output element (the backward ops: per input element, gathering the
 * windows that contain it). The C target's are in runtime/kernels/c/pool.c. */
#include "../mlc_kernels_cuda.h"

/* The flat in-plane index of window (oh, ow)'s first maximal in-bounds element (-1: none). */
static __device__ __forceinline__ int mlc_pool_argmax(const mlc_pool_geom &g, const float *xp, int oh, int ow) {
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
static __global__ void mlc_maxpool2d_fwd_kernel(const mlc_pool_geom g, const long planes, const float *x, float *y) {
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
static __device__ __forceinline__ void mlc_pool_range(int i, int k, int s, int p, int n_out, int *lo, int *hi) {
    const int t = i + p; /* oh*s <= t <= oh*s + k - 1 */
    *lo = t - k + 1 <= 0 ? 0 : (t - k + s) / s;
    *hi = t / s < n_out - 1 ? t / s : n_out - 1;
}

/* Each window's gradient goes to its first maximal element in row-major order; each dx
 * element gathers the windows that chose it, in window order. */
static __global__ void mlc_maxpool2d_bwd_kernel(const mlc_pool_geom g, const long planes, const float *dy,
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
static __global__ void mlc_maxpool2d_bwd_2x2_kernel(const mlc_pool_geom g, const long planes, const float *dy,
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
static __global__ void mlc_avgpool2d_fwd_kernel(const mlc_pool_geom g, const long planes, const float *x, float *y) {
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
static __global__ void mlc_avgpool2d_bwd_kernel(const mlc_pool_geom g, const long planes, const float *dy, float *dx) {
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

/* ---- host launchers ---- */

void mlc_cuda_maxpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x, float *y) {
    mlc_maxpool2d_fwd_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, x, y);
    MLC_LAUNCH_CHECK(stream);
}

void mlc_cuda_maxpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy, const float *x,
                            float *dx) {
    /* the C target's mlc_pool_2x2: the geometry dx may share x's bytes in */
    if (g->KH == 2 && g->KW == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->H % 2 == 0 &&
        g->W % 2 == 0)
        mlc_maxpool2d_bwd_2x2_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, dy, x, dx);
    else mlc_maxpool2d_bwd_kernel<<<mlc_grid(planes * g->H * g->W), MLC_BLOCK, 0, stream>>>(*g, planes, dy, x, dx);
    MLC_LAUNCH_CHECK(stream);
}

void mlc_cuda_avgpool2d_fwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *x, float *y) {
    mlc_avgpool2d_fwd_kernel<<<mlc_grid(planes * g->Ho * g->Wo), MLC_BLOCK, 0, stream>>>(*g, planes, x, y);
    MLC_LAUNCH_CHECK(stream);
}

void mlc_cuda_avgpool2d_bwd(cudaStream_t stream, const mlc_pool_geom *g, long planes, const float *dy, float *dx) {
    mlc_avgpool2d_bwd_kernel<<<mlc_grid(planes * g->H * g->W), MLC_BLOCK, 0, stream>>>(*g, planes, dy, dx);
    MLC_LAUNCH_CHECK(stream);
}
