/* tests/compiler/gpu/host_cuda/host_cuda.cpp - the CPU's CUDA runtime and cuBLAS (the
 * headers here say what is played and what is checked). Everything runs at once on the
 * calling thread, in the order it was issued: one stream's order, which is all mlc's
 * generated code relies on. */
#undef _FORTIFY_SOURCE /* its longjmp check refuses the jumps between fiber stacks */
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <map>
#include <vector>

#include "cublasLt.h"
#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "mma.h" /* __float_to_tf32 */

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

[[noreturn]] void mlc_host_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "host_cuda: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- memory: device allocations (NaN-filled) and pinned host allocations ---- */

struct Alloc {
    size_t bytes;
    bool pinned;
};
static std::map<uintptr_t, Alloc> allocs;

/* The allocation holding p, or NULL. */
static const Alloc *alloc_of(const void *p, uintptr_t *base) {
    uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (a >= it->first + (it->second.bytes ? it->second.bytes : 1)) return nullptr;
    *base = it->first;
    return &it->second;
}

static bool device_range(const void *p, size_t bytes) {
    uintptr_t base;
    const Alloc *a = alloc_of(p, &base);
    return a && !a->pinned && (uintptr_t)p + bytes <= base + a->bytes;
}

static bool pinned(const void *p) {
    uintptr_t base;
    const Alloc *a = alloc_of(p, &base);
    return a && a->pinned;
}

void mlc_host_check_device(const void *p, const char *what) {
    uintptr_t base;
    if (p && !alloc_of(p, &base)) mlc_host_fail("%s was given %p, which is not device (or pinned) memory", what, p);
}

/* Device bytes held now and at most; with MLC_HOST_CUDA_PEAK set, the most is printed on
 * stderr at exit, for run_cuda_vs_c.sh to hold mlc --report's device memory to. */
static size_t device_now, device_peak;
static void print_peak() { fprintf(stderr, "host_cuda: peak device memory %zu bytes\n", device_peak); }

static cudaError_t allocate(void **p, size_t bytes, bool pin) {
    /* 256-byte aligned, as cudaMalloc's */
    void *m = aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    if (!m) return cudaErrorMemoryAllocation;
    memset(m, pin ? 0 : 0xff, bytes); /* 0xffffffff: a NaN in every float */
    allocs[(uintptr_t)m] = Alloc{bytes, pin};
    if (!pin && (device_now += bytes) > device_peak) {
        if (!device_peak && getenv("MLC_HOST_CUDA_PEAK")) atexit(print_peak);
        device_peak = device_now;
    }
    *p = m;
    return cudaSuccess;
}

static cudaError_t release(void *p, bool pin) {
    if (!p) return cudaSuccess;
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.pinned != pin)
        mlc_host_fail("cudaFree%s of %p, not allocated so", pin ? "Host" : "", p);
    if (!pin) device_now -= it->second.bytes;
    allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) { return allocate(p, bytes, false); }
cudaError_t cudaMallocHost(void **p, size_t bytes) { return allocate(p, bytes, true); }
cudaError_t cudaFree(void *p) { return release(p, false); }
cudaError_t cudaFreeHost(void *p) { return release(p, true); }

/* ---- streams and graphs ---- */

struct mlc_host_graph {
    std::vector<std::function<void()>> ops;
};
struct mlc_host_stream {
    mlc_host_graph *capture; /* non-null while capturing */
    bool invalidated;
};

static cudaError_t last_error = cudaSuccess;

static cudaError_t error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

/* What a capture cannot record: the capture is invalidated, the call fails. */
static cudaError_t refuse_in_capture(cudaStream_t s, const char *what) {
    fprintf(stderr, "host_cuda: note: %s during a stream capture (a real capture refuses it)\n", what);
    s->invalidated = true;
    return error(cudaErrorStreamCaptureUnsupported);
}

static void submit(cudaStream_t s, std::function<void()> op) {
    if (s && s->capture) s->capture->ops.push_back(std::move(op));
    else op();
}

/* MLC_HOST_NO_DRIVER=1: the first call a model makes fails as on a machine without a
 * usable driver (create_fails_on_host.sh) */
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    if (getenv("MLC_HOST_NO_DRIVER") && !strcmp(getenv("MLC_HOST_NO_DRIVER"), "1"))
        return error(cudaErrorInsufficientDriver);
    *s = new mlc_host_stream{nullptr, false};
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    return cudaStreamCreate(s);
}
cudaError_t cudaStreamQuery(cudaStream_t s) {
    if (s && s->capture) return refuse_in_capture(s, "cudaStreamQuery");
    return cudaSuccess;
}
struct mlc_host_event {
    int unused;
};
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    *e = new mlc_host_event{0};
    return cudaSuccess;
}
/* streams run their work as it comes, so an event has always passed (in a replayed
 * capture too) */
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s;
    return e ? cudaSuccess : error(cudaErrorInvalidValue);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)s, (void)flags;
    return e ? cudaSuccess : error(cudaErrorInvalidValue);
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (s) delete s->capture;
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->capture) return refuse_in_capture(s, "cudaStreamSynchronize");
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)mode;
    if (!s || s->capture) return error(cudaErrorInvalidValue); /* the legacy stream cannot capture */
    s->capture = new mlc_host_graph;
    s->invalidated = false;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    if (!s || !s->capture) return error(cudaErrorInvalidValue);
    mlc_host_graph *graph = s->capture;
    s->capture = nullptr;
    if (s->invalidated) {
        delete graph;
        *g = nullptr;
        return error(cudaErrorStreamCaptureInvalidated);
    }
    *g = graph;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    *status = s && s->capture ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    if (!g) return error(cudaErrorInvalidValue);
    *exec = new mlc_host_graph(*g);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return error(cudaErrorInvalidValue);
    submit(s, [exec]() {
        for (auto &op : exec->ops) op();
    });
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}

/* ---- copies ---- */

static cudaError_t copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s, bool async) {
    const char *names[] = {"host to host", "host to device", "device to host", "device to device", "default"};
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return error(cudaErrorInvalidValue);
    bool dev_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool dev_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (bytes && dev_dst && !device_range(dst, bytes))
        mlc_host_fail("cudaMemcpy (%s) of %zu bytes to %p, not inside one device allocation", names[kind], bytes, dst);
    if (bytes && dev_src && !device_range(src, bytes))
        mlc_host_fail("cudaMemcpy (%s) of %zu bytes from %p, not inside one device allocation", names[kind], bytes, src);
    if (s && s->capture) {
        if (!async) return refuse_in_capture(s, "cudaMemcpy (synchronous)");
        const void *host = dev_dst ? (dev_src ? nullptr : src) : dst;
        if (host && !pinned(host)) return refuse_in_capture(s, "a cudaMemcpyAsync with pageable host memory");
    }
    submit(s, [=]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    return copy(dst, src, bytes, kind, nullptr, false);
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    return copy(dst, src, bytes, kind, s, true);
}
cudaError_t cudaMemset(void *dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t s) {
    if (bytes && !device_range(dst, bytes)) mlc_host_fail("cudaMemset of %zu bytes at %p, not device memory", bytes, dst);
    submit(s, [=]() { memset(dst, value, bytes); });
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    }
    return "unknown error";
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    }
    return "cudaErrorUnknown";
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
static int device_count() {
    const char *g = getenv("MLC_HOST_GPUS");
    int n = g ? atoi(g) : 1;
    return n >= 1 ? n : 1;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = device_count();
    return cudaSuccess;
}
static int current_device;
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= device_count()) return error(cudaErrorInvalidValue);
    current_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
    *d = current_device;
    return cudaSuccess;
}

/* ---- kernels: a block's threads as fibers, switched at __syncthreads ---- */

enum { STACK_BYTES = 256 << 10, MAX_THREADS = 1024 };

/* A fiber starts through makecontext and swapcontext; after that the switches are
 * _setjmp / _longjmp, which save no signal mask: swapcontext's sigprocmask system call on
 * every switch took half the time of models with many barriers (batch norm's sums). */
struct Fiber {
    ucontext_t ctx;
    jmp_buf at; /* where it waits at a barrier */
    char *stack;
    bool started, done;
};
static Fiber fibers[MAX_THREADS];
static ucontext_t scheduler;
static jmp_buf scheduler_at;
static int current;
static const std::function<void()> *body;

static void fiber_main() {
    (*body)();
    fibers[current].done = true;
    _longjmp(scheduler_at, 1);
}

void __syncthreads() {
    if (!_setjmp(fibers[current].at)) _longjmp(scheduler_at, 1);
}

/* MLC_HOST_REVERSE=1: the blocks of a grid, and the threads of a block between two
 * barriers, run in the reverse order. A kernel whose result depends on the order (a race:
 * two threads or blocks writing one place, or one reading what another writes without a
 * barrier between) then gives other bits; run_cuda_vs_c.sh compares the two orders. */
static const bool reverse = getenv("MLC_HOST_REVERSE") && !strcmp(getenv("MLC_HOST_REVERSE"), "1");

static void run_block(unsigned nthreads) {
    for (unsigned i = 0; i < nthreads; i++) {
        Fiber *f = &fibers[i];
        if (!f->stack && !(f->stack = (char *)malloc(STACK_BYTES))) mlc_host_fail("out of memory for a thread's stack");
        getcontext(&f->ctx);
        f->ctx.uc_stack.ss_sp = f->stack;
        f->ctx.uc_stack.ss_size = STACK_BYTES;
        f->ctx.uc_link = &scheduler;
        makecontext(&f->ctx, fiber_main, 0);
        f->started = f->done = false;
    }
    /* rounds: every live thread runs to its next barrier or its end; a barrier opens when
     * every thread has reached it (or finished) */
    for (bool live = true; live;) {
        live = false;
        for (unsigned k = 0; k < nthreads; k++) {
            unsigned i = reverse ? nthreads - 1 - k : k;
            if (fibers[i].done) continue;
            current = (int)i;
            threadIdx.x = i % blockDim.x;
            threadIdx.y = i / blockDim.x % blockDim.y;
            threadIdx.z = i / (blockDim.x * blockDim.y);
            if (!_setjmp(scheduler_at)) {
                if (fibers[i].started) _longjmp(fibers[i].at, 1);
                fibers[i].started = true;
                swapcontext(&scheduler, &fibers[i].ctx);
            }
            if (!fibers[i].done) live = true;
        }
    }
}

static void run_grid(dim3 grid, dim3 block, const std::function<void()> &f) {
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (threads == 0 || threads > MAX_THREADS) mlc_host_fail("a launch of %llu threads per block", threads);
    if (!grid.x || !grid.y || !grid.z || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        mlc_host_fail("a launch of grid %u x %u x %u", grid.x, grid.y, grid.z);
    gridDim = grid, blockDim = block;
    body = &f;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx.x = reverse ? grid.x - 1 - x : x;
                blockIdx.y = reverse ? grid.y - 1 - y : y;
                blockIdx.z = reverse ? grid.z - 1 - z : z;
                run_block((unsigned)threads);
            }
}

void mlc_host_submit(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> f) {
    submit(s, [=]() { run_grid(grid, block, f); });
}

/* ---- cuBLAS ---- */

struct mlc_host_cublas {
    cudaStream_t stream;
    bool tf32; /* CUBLAS_TF32_TENSOR_OP_MATH: float products on TF32 tensor cores */
};

const char *cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "success" : "error"; }
cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new mlc_host_cublas{nullptr, false};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    h->tf32 = mode == CUBLAS_TF32_TENSOR_OP_MATH;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    (void)h;
    if (bytes && !device_range(ws, bytes)) mlc_host_fail("cublasSetWorkspace: %p is not device memory", ws);
    return CUBLAS_STATUS_SUCCESS;
}

/* A bf16 product's operand must already be a bfloat16 value (or a NaN): the device
 * converts its operands to bf16, and mlc relies on that changing none of them
 * (--precision bf16 rounds every product's inputs first: mlc_kernels_cuda.h's mlc_gemm).
 * Here nothing would be converted, so a rounding the generated code left out would go
 * unseen: it stops the program instead. */
static void check_bf16(float v, char which, int row, int col) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0xffffu) && v == v)
        mlc_host_fail("cuBLAS bf16 GEMM: operand %c's element (%d, %d) is %.9g, which bfloat16 cannot hold: the rounding "
             "before the product is missing",
             which, row, col, (double)v);
}

/* Element i of an operand: a float, or a bfloat16 (CUDA_R_16BF, 2 bytes: the float with
 * those top 16 bits). */
static float operand(const void *p, bool half, long i) {
    if (!half) return ((const float *)p)[i];
    uint16_t b;
    memcpy(&b, (const char *)p + 2 * i, sizeof b);
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* C = alpha op(A) op(B) + beta C, column-major, `count` times at strides sa, sb, sc
 * (elements); bf16: the float operands must be bfloat16 values (check_bf16); half: A and
 * B are bfloat16 arrays. */
static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           float alpha, const void *A, int lda, long long sa, const void *B, int ldb, long long sb,
                           float beta, float *C, int ldc, long long sc, int count, bool bf16 = false,
                           bool half = false) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0 || count < 0 || ldc < (m > 1 ? m : 1) || lda < ((ta ? k : m) > 1 ? (ta ? k : m) : 1) ||
        ldb < ((tb ? n : k) > 1 ? (tb ? n : k) : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    mlc_host_check_device(A, "cuBLAS (A)"), mlc_host_check_device(B, "cuBLAS (B)");
    mlc_host_check_device(C, "cuBLAS (C)");
    /* --tf32's math mode: float operands rounded to TF32 as the tensor cores take them */
    const bool tf32 = h->tf32 && !bf16 && !half;
    submit(h->stream, [=]() {
        /* op(A) by rows and op(B) by columns, each contiguous: every element a dot product */
        std::vector<float> ra((size_t)m * k), cb((size_t)n * k);
        for (int e = 0; e < count; e++) {
            const long a = e * sa, b = e * sb;
            float *c = C + e * sc;
            for (int i = 0; i < m; i++)
                for (int p = 0; p < k; p++)
                    ra[(size_t)i * k + p] = operand(A, half, a + (ta ? p + (long)i * lda : i + (long)p * lda));
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++)
                    cb[(size_t)j * k + p] = operand(B, half, b + (tb ? j + (long)p * ldb : p + (long)j * ldb));
            if (tf32) {
                for (float &v : ra) v = nvcuda::wmma::__float_to_tf32(v);
                for (float &v : cb) v = nvcuda::wmma::__float_to_tf32(v);
            }
            if (bf16 && !half) {
                for (int i = 0; i < m; i++)
                    for (int p = 0; p < k; p++) check_bf16(ra[(size_t)i * k + p], 'A', i, p);
                for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++) check_bf16(cb[(size_t)j * k + p], 'B', p, j);
            }
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    const float *x = &ra[(size_t)i * k], *y = &cb[(size_t)j * k];
                    double acc[4] = {0, 0, 0, 0}; /* four chains: the sum's latency, not its order, matters */
                    int p = 0;
                    for (; p + 4 <= k; p += 4)
                        for (int q = 0; q < 4; q++) acc[q] += (double)x[p + q] * (double)y[p + q];
                    for (; p < k; p++) acc[0] += (double)x[p] * (double)y[p];
                    float v = alpha * (float)(acc[0] + acc[1] + acc[2] + acc[3]);
                    c[i + (long)j * ldc] = beta == 0.0f ? v : v + beta * c[i + (long)j * ldc];
                }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm(h, ta, tb, m, n, k, *alpha, A, lda, 0, B, ldb, 0, *beta, C, ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sa,
                                         const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                                         long long sc, int count) {
    return gemm(h, ta, tb, m, n, k, *alpha, A, lda, sa, B, ldb, sb, *beta, C, ldc, sc, count);
}
/* A and B both floats or both bfloat16 (cuBLAS takes no mix of the two), C floats; the
 * bf16 compute type on float operands checks them (check_bf16). */
static bool bf16_compute(cublasComputeType_t c) { return c == CUBLAS_COMPUTE_32F_FAST_16BF; }
static bool ex_types(cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct) {
    return at == bt && (at == CUDA_R_32F || at == CUDA_R_16BF) && ct == CUDA_R_32F;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *beta, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    if (!ex_types(at, bt, ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(h, ta, tb, m, n, k, *(const float *)alpha, A, lda, 0, B, ldb, 0, *(const float *)beta, (float *)C, ldc,
                0, 1, bf16_compute(compute), at == CUDA_R_16BF);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType_t at, int lda,
                                          long long sa, const void *B, cudaDataType_t bt, int ldb, long long sb,
                                          const void *beta, void *C, cudaDataType_t ct, int ldc, long long sc,
                                          int count, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    if (!ex_types(at, bt, ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    return gemm(h, ta, tb, m, n, k, *(const float *)alpha, A, lda, sa, B, ldb, sb, *(const float *)beta, (float *)C,
                ldc, sc, count, bf16_compute(compute), at == CUDA_R_16BF);
}

/* ---- cuBLASLt: a GEMM with a bias (and ReLU) epilogue, mlc_gemm_bias's calls ---- */

struct mlc_host_lt {
    int unused;
};
struct mlc_host_lt_desc {
    cublasComputeType_t compute;
    int32_t ta, tb;
    uint32_t epilogue;
    const float *bias;
};
struct mlc_host_lt_layout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
struct mlc_host_lt_pref {
    uint64_t ws_bytes;
    uint32_t align[4]; /* the least alignment of A, B, C and D the caller promises */
};

/* The descriptors' and the handle's Destroy calls. */
template <typename T> static cublasStatus_t destroyed(T *p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t *lt) {
    *lt = new mlc_host_lt{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t lt) { return destroyed(lt); }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    if (scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = new mlc_host_lt_desc{compute, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { return destroyed(d); }
/* Each attribute with the size of its documented type, as the real call checks. */
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *buf, size_t size) {
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(a == CUBLASLT_MATMUL_DESC_TRANSA ? &d->ta : &d->tb, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->epilogue, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->bias, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new mlc_host_lt_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { return destroyed(l); }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new mlc_host_lt_pref{0, {256, 256, 256, 256}};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { return destroyed(p); }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *buf,
                                                    size_t size) {
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && size == sizeof(uint64_t)) {
        memcpy(&p->ws_bytes, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES &&
        size == sizeof(uint32_t)) {
        memcpy(&p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
        return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

/* The shapes the layouts give op(A) (m x k), op(B) (k x n) and C = D (m x n); false if
 * they do not agree. */
static bool lt_shapes(const mlc_host_lt_desc *d, const mlc_host_lt_layout *a, const mlc_host_lt_layout *b,
                      const mlc_host_lt_layout *c, int *m, int *n, int *k) {
    const uint64_t am = d->ta ? a->cols : a->rows, ak = d->ta ? a->rows : a->cols;
    const uint64_t bk = d->tb ? b->cols : b->rows, bn = d->tb ? b->rows : b->cols;
    if (ak != bk || am != c->rows || bn != c->cols || a->type != b->type || c->type != CUDA_R_32F) return false;
    *m = (int)am, *n = (int)bn, *k = (int)ak;
    return true;
}

/* One algorithm for every problem, unless MLC_HOST_LT_NO_ALGO=1 in the environment: then
 * none, as cuBLASLt answers for an epilogue and types it has no kernel for (so that the
 * caller's fallback runs). The algorithm holds the alignments the preference promised
 * (data[0..3]); cublasLtMatmul checks its pointers against them. */
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lt, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned) {
    int m, n, k;
    if (!lt || !p || requested < 1 || c != dl || !lt_shapes(d, a, b, c, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
    const char *none = getenv("MLC_HOST_LT_NO_ALGO");
    *returned = none && !strcmp(none, "1") ? 0 : 1;
    if (*returned) {
        memset(&results[0], 0, sizeof results[0]);
        results[0].state = CUBLAS_STATUS_SUCCESS;
        for (int i = 0; i < 4; i++) results[0].algo.data[i] = p->align[i];
    }
    return *returned ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}

/* D = epilogue(alpha op(A) op(B) + beta C): mlc calls it with beta 0 and D = C, and with
 * a bias epilogue; the GEMM is cublas_v2's, then the bias (and ReLU) added to each
 * element as the generated epilogue kernel adds it. */
cublasStatus_t cublasLtMatmul(cublasLtHandle_t lt, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t la, const void *B, cublasLtMatrixLayout_t lb, const void *beta,
                              const void *C, cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t stream) {
    int m, n, k;
    if (!lt || !algo || lc != ld || C != D || !lt_shapes(d, la, lb, lc, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
    if (*(const float *)beta != 0.0f) mlc_host_fail("cublasLtMatmul: beta is not 0 (mlc never accumulates into D)");
    if (d->epilogue != CUBLASLT_EPILOGUE_BIAS && d->epilogue != CUBLASLT_EPILOGUE_RELU_BIAS)
        mlc_host_fail("cublasLtMatmul: epilogue %u, not a bias epilogue", d->epilogue);
    if (!d->bias) mlc_host_fail("cublasLtMatmul: a bias epilogue without a bias pointer");
    mlc_host_check_device(d->bias, "cuBLASLt (bias)");
    if (ws_bytes && !device_range(ws, ws_bytes)) mlc_host_fail("cublasLtMatmul: workspace %p is not device memory", ws);
    if (!device_range(d->bias, sizeof(float) * (size_t)m))
        mlc_host_fail("cublasLtMatmul: the bias's %d floats at %p are not device memory", m, (const void *)d->bias);
    const void *const ptr[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
        if (!algo->data[i] || (uintptr_t)ptr[i] % algo->data[i])
            mlc_host_fail("cublasLtMatmul: matrix %c at %p is not aligned to the %llu bytes the heuristic was told",
                          "ABCD"[i], ptr[i], (unsigned long long)algo->data[i]);
    const bool half = la->type == CUDA_R_16BF;
    if (la->type != CUDA_R_32F && !half) return CUBLAS_STATUS_NOT_SUPPORTED;
    mlc_host_cublas h{stream, d->compute == CUBLAS_COMPUTE_32F_FAST_TF32};
    const cublasStatus_t s = gemm(&h, (cublasOperation_t)d->ta, (cublasOperation_t)d->tb, m, n, k,
                                  *(const float *)alpha, A, (int)la->ld, 0, B, (int)lb->ld, 0, 0.0f, (float *)D,
                                  (int)ld->ld, 0, 1, d->compute == CUBLAS_COMPUTE_32F_FAST_16BF, half);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const float *bias = d->bias;
    const bool relu = d->epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
    float *out = (float *)D;
    const long ldd = (long)ld->ld;
    submit(stream, [=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const float v = out[i + j * ldd] + bias[i];
                out[i + j * ldd] = relu && !(v > 0.0f) ? 0.0f : v;
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}
