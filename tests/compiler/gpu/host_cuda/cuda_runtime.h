/* tests/compiler/gpu/host_cuda/cuda_runtime.h - the CUDA runtime as the CPU plays it, so
 * that a generated .cu (and runtime/kernels/cuda/) runs and is checked on a machine
 * without a GPU (run_cuda_vs_c.sh --on-host). Only what mlc's code uses.
 *
 * A translation unit is compiled as C++17 by the host compiler with this directory first
 * on the include path, after `NAME<<<cfg>>>(` has become `mlc_host_launch((NAME), cfg)(`
 * (run_cuda_vs_c.sh does that with sed). A launch runs the kernel at once on this thread:
 * every block in turn, its threads as fibers that switch at __syncthreads(), so block
 * cooperation (shared arrays, barriers) behaves as on the device. "Device memory" is host
 * memory the emulator hands out and tracks, filled with NaNs so that a read of a value
 * never written shows; a kernel or cuBLAS call given a pointer outside it (host memory
 * passed where the GPU reads), or a stream capture doing what a real capture refuses (a
 * copy from pageable host memory, a synchronisation), is reported and aborts. Stream
 * capture records the launches and copies with their arguments as given, and a graph
 * launch replays them: a value baked into a graph shows as a wrong result. */
#ifndef MLC_HOST_CUDA_RUNTIME_H
#define MLC_HOST_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cuda_runtime_api.h"

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- the language's built-ins ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* one block runs at a time: a block's threads share the kernel's static arrays */
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads();
/* the bit casts between 32-bit ints and floats */
template <class To, class From> static inline To mlc_host_bits(From x) {
    static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the size");
    To y;
    memcpy(&y, &x, sizeof y);
    return y;
}
static inline float __int_as_float(int i) { return mlc_host_bits<float>(i); }
static inline int __float_as_int(float f) { return mlc_host_bits<int>(f); }
static inline unsigned __float_as_uint(float f) { return mlc_host_bits<unsigned>(f); }
static inline float __uint_as_float(unsigned i) { return mlc_host_bits<float>(i); }

/* ---- the runtime API (the types, and what C calls too: cuda_runtime_api.h) ---- */
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaMallocHost(void **p, size_t bytes);
template <class T> static inline cudaError_t cudaMallocHost(T **p, size_t bytes) {
    return cudaMallocHost((void **)p, bytes);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t g);

/* ---- launches ---- */
/* Runs (or, while s captures, records) f for every thread of a grid x block launch. */
void mlc_host_submit(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> f);
/* Prints "host_cuda: " and the message on stderr, and aborts: what the real runtime would
 * refuse, or leave undefined, ends the program here. */
[[noreturn]] void mlc_host_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Aborts, naming `what`, unless p is null or inside emulated device memory. */
void mlc_host_check_device(const void *p, const char *what);

template <class T> static inline void mlc_host_check_arg(const T &v, const char *kernel) {
    if constexpr (std::is_pointer<T>::value) mlc_host_check_device((const void *)v, kernel);
    (void)v, (void)kernel;
}

/* kernel<<<grid, block, shared, stream>>>(args...): the arguments converted to the
 * kernel's parameter types and copied, as a launch does. */
template <class... P> struct mlc_host_launcher {
    void (*kernel)(P...);
    const char *name;
    dim3 grid, block;
    cudaStream_t stream;
    void operator()(P... args) const {
        (mlc_host_check_arg(args, name), ...);
        void (*k)(P...) = kernel;
        mlc_host_submit(stream, grid, block, [=]() { k(args...); });
    }
};
template <class... P>
static inline mlc_host_launcher<P...> mlc_host_make_launcher(void (*k)(P...), const char *name, dim3 grid, dim3 block,
                                                             size_t shared = 0, cudaStream_t s = 0) {
    (void)shared;
    return mlc_host_launcher<P...>{k, name, grid, block, s};
}
#define mlc_host_launch(kernel, ...) mlc_host_make_launcher(kernel, #kernel, __VA_ARGS__)

#endif
