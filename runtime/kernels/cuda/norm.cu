/* norm.cu - the batch-norm sums per channel of the CUDA target (mlc_kernels_cuda.h):
 * bn_stats' mean and variance and bn_param_grads' sums, in slices of the batch. The
 * elementwise parts of batch norm are generated kernels (compiler/targets/cuda/norm.c);
 * the C target's sums are in runtime/kernels/c/norm.c. */
#include "../mlc_kernels_cuda.h"

/* ---- batch-norm sums per channel over the batch and the spatial axis, in two launches.
 * A channel has only B*S elements and there may be 16 channels, so a block per channel
 * would leave most of the GPU idle: instead block (c, p) sums channel c over the p-th of
 * P fixed slices of the batch (thread t takes the slice's elements t, t + MLC_BN_THREADS,
 * ..., a fixed tree adds the threads' sums) into part (doubles, the op's workspace), and
 * then one thread per channel adds the P slices in order. Fixed slices, fixed order: the
 * same result every run. ---- */
#define MLC_BN_THREADS 256

static __device__ __forceinline__ double mlc_block_sum(double v, double *sh) {
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
 * sum(dy) and sum(dy * (x - mean)), mean = st[c] (bn_param_grads). T: x's element type,
 * float or mlc_bf16 (stored as bfloat16). */
template <typename T>
static __global__ void mlc_bn_part_kernel(const long B, const long C, const long S, const int P, const T *x,
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
static __global__ void mlc_bn_finish_kernel(const long B, const long C, const long S, const int P, const double *part,
                                            const float *st, const float eps, float *out) {
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

/* ---- host launcher ---- */

void mlc_cuda_bn_sums(cudaStream_t stream, long B, long C, long S, int P, const void *x, int x_bf16, const float *dy,
                      const float *st, float eps, double *part, float *out) {
    const dim3 grid((unsigned)C, (unsigned)P);
    const mlc_bf16 *xh = (const mlc_bf16 *)x;
    const float *xf = (const float *)x;
    /* a template's launch names its argument, on one line (tests/compiler/gpu/host_cuda/build.sh) */
    if (x_bf16) mlc_bn_part_kernel<mlc_bf16><<<grid, MLC_BN_THREADS, 0, stream>>>(B, C, S, P, xh, dy, st, part);
    else mlc_bn_part_kernel<float><<<grid, MLC_BN_THREADS, 0, stream>>>(B, C, S, P, xf, dy, st, part);
    MLC_LAUNCH_CHECK(stream);
    mlc_bn_finish_kernel<<<(unsigned)((C + MLC_BLOCK - 1) / MLC_BLOCK), MLC_BLOCK, 0, stream>>>(B, C, S, P, part, st,
                                                                                                eps, out);
    MLC_LAUNCH_CHECK(stream);
}
