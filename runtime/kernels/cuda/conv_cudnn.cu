/* conv_cudnn.cu - the three convolution ops through cuDNN's convolution calls
 * (--conv-algo cudnn: mlc_kernels_cudnn.h). The legacy calls, not the graph API: they take
 * NCHW tensors, groups, strides, padding and dilation as they are, and
 * cudnnConvolutionBiasActivationForward is the fused epilogue the CUDA target's chains of a
 * bias, a residual and a ReLU need. The calls are stream-ordered like our kernels, so a
 * CUDA graph captures them too.
 *
 * Floats: the output straight from cuDNN, a forward convolution's bias, residual and ReLU
 * in its fused call. bf16 operands (mlc's --precision bf16, which rounds every
 * convolution's output to bf16 too): cuDNN's PSEUDO_BFLOAT16 configuration, bf16 x, w and
 * y with FP32 sums, whose output, rounded once from the FP32 sum, is what mlc's rounding of
 * the FP32 result gives (the compiler sends here only ops whose result is rounded before
 * anything reads it: compiler/targets/cuda/conv.c, cudnn_runs); cuDNN writes it to the workspace, and one kernel widens it into
 * the float output through the op's epilogue (conv_epilogue.cuh), any the implicit kernels
 * take. */
#include <pthread.h>
#include <string.h>

#include "../mlc_kernels_cudnn.h"
#include "conv_epilogue.cuh"

#define MLC_CUDNN_CHECK(call)                                                                                        \
    do {                                                                                                             \
        const cudnnStatus_t mlc_st_ = (call);                                                                        \
        if (mlc_st_ != CUDNN_STATUS_SUCCESS) {                                                                       \
            fprintf(stderr, "%s:%d: cuDNN error: %s (%d) in %s\n", __FILE__, __LINE__, cudnnGetErrorString(mlc_st_), \
                    (int)mlc_st_, #call);                                                                            \
            abort();                                                                                                 \
        }                                                                                                            \
    } while (0)

enum { MLC_DNN_FWD, MLC_DNN_BWD_DATA, MLC_DNN_BWD_FILTER };
enum { MLC_DNN_NONE = -1 }; /* no algorithm qualifies: the implicit-GEMM kernels */

/* One layer's descriptors: x, w, y (dy) and the convolution; bias and z (one per channel,
 * and y's shape) and the activation for the fused forward call. */
typedef struct mlc_dnn_layer {
    cudnnTensorDescriptor_t x, y, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnActivationDescriptor_t act;
} mlc_dnn_layer;

/* The operands are bf16 values (stored so, or in floats) */
static int mlc_dnn_bf16(int mode) { return mode == MLC_BF16_STORED || mode == MLC_BF16_VALUES; }

static void mlc_dnn_layer_make(mlc_dnn_layer *l, const mlc_conv_geom *g, long B, int mode, int relu) {
    const cudnnDataType_t t = mlc_dnn_bf16(mode) ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    memset(l, 0, sizeof *l);
    if (B > 2147483647L) {
        fprintf(stderr, "mlc: a cuDNN convolution of batch %ld (at most 2^31 - 1)\n", B);
        abort();
    }
    MLC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&l->x));
    MLC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&l->y));
    MLC_CUDNN_CHECK(cudnnCreateFilterDescriptor(&l->w));
    MLC_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&l->conv));
    MLC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(l->x, CUDNN_TENSOR_NCHW, t, (int)B, g->C, g->H, g->W));
    MLC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(l->y, CUDNN_TENSOR_NCHW, t, (int)B, g->O, g->Ho, g->Wo));
    MLC_CUDNN_CHECK(cudnnSetFilter4dDescriptor(l->w, t, CUDNN_TENSOR_NCHW, g->O, g->C / g->G, g->KH, g->KW));
    MLC_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(l->conv, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    MLC_CUDNN_CHECK(cudnnSetConvolutionGroupCount(l->conv, g->G));
    /* FP32: FMAs only (cuDNN's default lets FP32 convolutions round their operands to
     * TF32); TF32 and bf16 (whose values TF32 holds exactly): the tensor cores */
    MLC_CUDNN_CHECK(cudnnSetConvolutionMathType(l->conv, mode == MLC_FP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
    if (relu >= 0) { /* the fused forward call's */
        MLC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&l->bias));
        MLC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(l->bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, g->O, 1, 1));
        MLC_CUDNN_CHECK(cudnnCreateActivationDescriptor(&l->act));
        /* mlc's ReLU makes a NaN 0 (x > 0 ? x : 0), as the C target's does */
        MLC_CUDNN_CHECK(cudnnSetActivationDescriptor(l->act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                                     CUDNN_NOT_PROPAGATE_NAN, 0.0));
    }
}

static void mlc_dnn_layer_free(mlc_dnn_layer *l) {
    if (l->act) cudnnDestroyActivationDescriptor(l->act);
    if (l->bias) cudnnDestroyTensorDescriptor(l->bias);
    cudnnDestroyConvolutionDescriptor(l->conv);
    cudnnDestroyFilterDescriptor(l->w);
    cudnnDestroyTensorDescriptor(l->y);
    cudnnDestroyTensorDescriptor(l->x);
}

/* What an algorithm is chosen for: everything the heuristic's answer depends on (zeroed
 * before it is filled, so that memcmp compares no padding). */
typedef struct mlc_dnn_problem {
    int device, op, mode, fused; /* fused: -1 plain call, 0 identity, 1 ReLU */
    long B;
    mlc_conv_geom g;
    size_t ws_bytes;
} mlc_dnn_problem;

/* The chosen algorithms, so that a step launched one by one (no CUDA graph) asks the
 * heuristic once per layer shape, not once per call; the oldest answer makes room. Any
 * model of the process on any thread may ask, hence the lock. */
#define MLC_DNN_CACHE 128
static struct {
    mlc_dnn_problem key;
    int algo;
} mlc_dnn_cache[MLC_DNN_CACHE];
static int mlc_dnn_cached, mlc_dnn_next;
static pthread_mutex_t mlc_dnn_lock = PTHREAD_MUTEX_INITIALIZER;

static int mlc_dnn_lookup(const mlc_dnn_problem *q, int *algo) {
    pthread_mutex_lock(&mlc_dnn_lock);
    int hit = 0;
    for (int i = 0; i < mlc_dnn_cached && !hit; i++)
        if (!memcmp(&mlc_dnn_cache[i].key, q, sizeof *q)) *algo = mlc_dnn_cache[i].algo, hit = 1;
    pthread_mutex_unlock(&mlc_dnn_lock);
    return hit;
}

/* q's algorithm from now on: a new answer, or a correction of the one remembered */
static void mlc_dnn_remember(const mlc_dnn_problem *q, int algo) {
    pthread_mutex_lock(&mlc_dnn_lock);
    int i = -1;
    for (int k = 0; k < mlc_dnn_cached && i < 0; k++)
        if (!memcmp(&mlc_dnn_cache[k].key, q, sizeof *q)) i = k;
    if (i < 0) i = mlc_dnn_cached < MLC_DNN_CACHE ? mlc_dnn_cached++ : mlc_dnn_next++ % MLC_DNN_CACHE;
    mlc_dnn_cache[i].key = *q;
    mlc_dnn_cache[i].algo = algo;
    pthread_mutex_unlock(&mlc_dnn_lock);
}

/* Whether a cuDNN call (the heuristic's query, or a convolution) went through: 1, or 0
 * where cuDNN turned the problem down (a NOT_SUPPORTED status, e.g. from the fused call for
 * an algorithm it does not take; nothing was launched): the problem is remembered as having no algorithm,
 * so that this call and every later one run the implicit kernels, the same every run.
 * Any other failure is fatal. */
static int mlc_dnn_ran(cudnnStatus_t st, const mlc_dnn_problem *q, const char *call) {
    if (st == CUDNN_STATUS_SUCCESS) return 1;
    if ((int)st / 1000 != (int)CUDNN_STATUS_NOT_SUPPORTED / 1000) { /* 3000-3999: the kinds of not supported */
        fprintf(stderr, "mlc: cuDNN error: %s (%d) in %s\n", cudnnGetErrorString(st), (int)st, call);
        abort();
    }
    mlc_dnn_remember(q, MLC_DNN_NONE);
    return 0;
}

/* Whether the heuristic's entry p (any of the three perf structs) qualifies: cuDNN can run
 * it here, it gives the same bits every run (a non-deterministic algorithm is refused
 * however fast: atomics order the weight gradient's or the input gradient's sums
 * differently each run), and its workspace fits. The fused call's identity activation
 * runs on the implicit precomputed GEMM alone (cuDNN's rule). */
template <class Perf> static int mlc_dnn_fits(const Perf &p, size_t ws_bytes, int op, int fused) {
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC || p.memory > ws_bytes) return 0;
    return !(op == MLC_DNN_FWD && fused == 0 && (int)p.algo != (int)CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
}

/* The first of the heuristic's n entries p (any of the three perf structs) that qualifies
 * for problem q, or MLC_DNN_NONE */
template <class Perf> static int mlc_dnn_first(const Perf *p, int n, const mlc_dnn_problem *q) {
    for (int i = 0; i < n; i++)
        if (mlc_dnn_fits(p[i], q->ws_bytes, q->op, q->fused)) return (int)p[i].algo;
    return MLC_DNN_NONE;
}

/* The algorithm for problem q: the heuristic's first that qualifies, in its ranking, or
 * MLC_DNN_NONE. The ranking depends on the layer and the GPU, not on timing, so the same
 * problem gets the same algorithm every run (cudnnFind* would time them: a close race
 * could go either way from run to run). */
static int mlc_dnn_choose(cudnnHandle_t h, const mlc_dnn_layer *l, const mlc_dnn_problem *q) {
    int algo = MLC_DNN_NONE;
    if (mlc_dnn_lookup(q, &algo)) return algo;
    enum { WANT = 16 }; /* more than cuDNN has of any kind */
    int got = 0;
    cudnnStatus_t st;
    if (q->op == MLC_DNN_FWD) {
        cudnnConvolutionFwdAlgoPerf_t p[WANT];
        st = cudnnGetConvolutionForwardAlgorithm_v7(h, l->x, l->w, l->conv, l->y, WANT, &got, p);
        algo = mlc_dnn_first(p, st == CUDNN_STATUS_SUCCESS ? got : 0, q);
    } else if (q->op == MLC_DNN_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[WANT];
        st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, l->w, l->y, l->conv, l->x, WANT, &got, p);
        algo = mlc_dnn_first(p, st == CUDNN_STATUS_SUCCESS ? got : 0, q);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[WANT];
        st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, l->x, l->y, l->conv, l->w, WANT, &got, p);
        algo = mlc_dnn_first(p, st == CUDNN_STATUS_SUCCESS ? got : 0, q);
    }
    if (!mlc_dnn_ran(st, q, "the heuristic's query")) return MLC_DNN_NONE; /* a layer cuDNN does not take */
    mlc_dnn_remember(q, algo);
    return algo;
}

static mlc_dnn_problem mlc_dnn_problem_of(int op, const mlc_conv_geom *g, long B, int mode, int fused,
                                          size_t ws_bytes) {
    mlc_dnn_problem q;
    memset(&q, 0, sizeof q);
    MLC_CUDA_CHECK(cudaGetDevice(&q.device));
    q.op = op, q.mode = mode, q.fused = fused, q.B = B, q.g = *g, q.ws_bytes = ws_bytes;
    return q;
}

/* ---- bf16: cuDNN's output in the workspace, widened through the epilogue ---- */

/* x's bf16 values, stored as floats, as mlc_bf16 (exact) */
static __global__ void mlc_dnn_narrow_kernel(const long n, const float *x, mlc_bf16 *y) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) y[i] = x[i];
}

/* out = the epilogue of cuDNN's bf16 output y, element i of channel (i / P) % C */
static __global__ void mlc_dnn_widen_kernel(const long n, const mlc_bf16 *y, float *out, const int C, const long P,
                                            const mlc_conv_epilogue ep) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        out[i] = mlc_epi_apply(ep, (float)y[i], (int)(i / P % C), i);
}

/* The workspace of a bf16 call: the output's bf16 values, then (operands held in floats)
 * the two operands' copies as mlc_bf16, each from a 256-byte boundary; the rest is cuDNN's.
 * 0 when ws cannot hold them. The compiler plans room for all three at its batch size
 * (compiler/targets/cuda/conv.c). */
typedef struct mlc_dnn_bf16_ws {
    mlc_bf16 *out, *a, *b;
    void *rest;
    size_t rest_bytes;
} mlc_dnn_bf16_ws;

static int mlc_dnn_carve(void *ws, size_t ws_bytes, long n_out, long n_a, long n_b, int copies, mlc_dnn_bf16_ws *c) {
    const long n[3] = {n_out, copies ? n_a : 0, copies ? n_b : 0};
    mlc_bf16 **at[3] = {&c->out, &c->a, &c->b};
    size_t used = 0;
    for (int k = 0; k < 3; k++) {
        *at[k] = n[k] ? (mlc_bf16 *)((char *)ws + used) : NULL;
        used += ((size_t)n[k] * sizeof(mlc_bf16) + 255) / 256 * 256;
    }
    if (!ws || used > ws_bytes) return 0;
    c->rest = (char *)ws + used, c->rest_bytes = ws_bytes - used;
    return 1;
}

/* The operand cuDNN reads: p itself when stored as bf16, else its copy (made now) */
static const void *mlc_dnn_operand(cudaStream_t stream, int mode, const void *p, long n, mlc_bf16 *copy) {
    if (mode == MLC_BF16_STORED) return p;
    mlc_dnn_narrow_kernel<<<mlc_grid(n), MLC_BLOCK, 0, stream>>>(n, (const float *)p, copy);
    MLC_LAUNCH_CHECK(stream);
    return copy;
}

/* out (n floats, channel (i / P) % C) from the bf16 output through ep */
static void mlc_dnn_widen(cudaStream_t stream, const mlc_bf16 *y, float *out, long n, int C, long P,
                          const mlc_conv_epilogue *ep) {
    mlc_dnn_widen_kernel<<<mlc_grid(n), MLC_BLOCK, 0, stream>>>(n, y, out, C, P, mlc_epi_arg(ep));
    MLC_LAUNCH_CHECK(stream);
}

/* ---- the calls ---- */

/* One op's operands and output: a and b as the cuDNN call takes them (x, w; dy, w; x, dy),
 * with their element counts, and the output, n_out floats of channel (i / P) % C */
typedef struct mlc_dnn_args {
    const void *a, *b;
    long n_a, n_b;
    float *out;
    long n_out, P;
    int C;
} mlc_dnn_args;

static mlc_dnn_args mlc_dnn_args_of(int op, const mlc_conv_geom *g, long B, const void *a, const void *b, float *out) {
    const long nx = B * g->C * g->H * g->W, ny = B * g->O * g->Ho * g->Wo,
               nw = (long)g->O * (g->C / g->G) * g->KH * g->KW;
    mlc_dnn_args r;
    r.a = a, r.b = b, r.out = out;
    if (op == MLC_DNN_FWD) r.n_a = nx, r.n_b = nw, r.n_out = ny, r.C = g->O, r.P = (long)g->Ho * g->Wo;
    else if (op == MLC_DNN_BWD_DATA) r.n_a = ny, r.n_b = nw, r.n_out = nx, r.C = g->C, r.P = (long)g->H * g->W;
    else r.n_a = nx, r.n_b = ny, r.n_out = nw, r.C = 1, r.P = 1;
    return r;
}

/* The cuDNN call of op on a layer l with algorithm algo: a, b into out; the forward op's
 * fused form (fused >= 0) with bias and z. */
static cudnnStatus_t mlc_dnn_call(cudnnHandle_t h, int op, const mlc_dnn_layer *l, int algo, const void *a,
                                  const void *b, void *out, void *ws, size_t ws_bytes, int fused, const float *bias,
                                  const float *z) {
    const float zero = 0.0f;
    if (op == MLC_DNN_FWD && fused >= 0) /* act(conv + z + bias); no residual: z is y, weighed 0 */
        return cudnnConvolutionBiasActivationForward(
            h, &mlc_one, l->x, a, l->w, b, l->conv, (cudnnConvolutionFwdAlgo_t)algo, ws, ws_bytes, z ? &mlc_one : &zero,
            l->y, z ? (const void *)z : out, l->bias, bias, l->act, l->y, out);
    if (op == MLC_DNN_FWD)
        return cudnnConvolutionForward(h, &mlc_one, l->x, a, l->w, b, l->conv, (cudnnConvolutionFwdAlgo_t)algo, ws,
                                       ws_bytes, &mlc_zero, l->y, out);
    if (op == MLC_DNN_BWD_DATA)
        return cudnnConvolutionBackwardData(h, &mlc_one, l->w, b, l->y, a, l->conv, (cudnnConvolutionBwdDataAlgo_t)algo,
                                            ws, ws_bytes, &mlc_zero, l->x, out);
    return cudnnConvolutionBackwardFilter(h, &mlc_one, l->x, a, l->y, b, l->conv, (cudnnConvolutionBwdFilterAlgo_t)algo,
                                          ws, ws_bytes, &mlc_zero, l->w, out);
}

static const char *const mlc_dnn_call_names[] = {"a cuDNN forward convolution", "cudnnConvolutionBackwardData",
                                                 "cudnnConvolutionBackwardFilter"};

/* Op on cuDNN: 1, or 0 where it did not run (no algorithm qualifies, cuDNN turned the
 * problem down, or a bf16 workspace too small) and nothing was written. ep: the epilogue,
 * in cuDNN's fused call for floats (fused, bias, z: its form), in the widening kernel for
 * bf16. */
static int mlc_dnn_run(int op, cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                       const mlc_dnn_args *r, const mlc_conv_epilogue *ep, int fused, const float *bias, const float *z,
                       void *ws, size_t ws_bytes, int mode) {
    const int bf16 = mlc_dnn_bf16(mode);
    if (B <= 0 || (!bf16 && mode != MLC_FP32 && mode != MLC_TF32)) return 0;
    mlc_dnn_bf16_ws c;
    if (bf16 && !mlc_dnn_carve(ws, ws_bytes, r->n_out, r->n_a, r->n_b, mode == MLC_BF16_VALUES, &c)) return 0;
    void *const dnn_ws = bf16 ? c.rest : ws;
    const size_t dnn_bytes = bf16 ? c.rest_bytes : ws_bytes;
    mlc_dnn_layer l;
    mlc_dnn_layer_make(&l, g, B, mode, bf16 ? -1 : fused);
    MLC_CUDNN_CHECK(cudnnSetStream(h, stream));
    const mlc_dnn_problem q = mlc_dnn_problem_of(op, g, B, mode, bf16 ? -1 : fused, dnn_bytes);
    const int algo = mlc_dnn_choose(h, &l, &q);
    int ran = 0;
    if (algo != MLC_DNN_NONE) {
        const void *a = bf16 ? mlc_dnn_operand(stream, mode, r->a, r->n_a, c.a) : r->a;
        const void *b = bf16 ? mlc_dnn_operand(stream, mode, r->b, r->n_b, c.b) : r->b;
        void *out = bf16 ? (void *)c.out : (void *)r->out;
        ran = mlc_dnn_ran(mlc_dnn_call(h, op, &l, algo, a, b, out, dnn_ws, dnn_bytes, bf16 ? -1 : fused, bias, z), &q,
                          mlc_dnn_call_names[op]);
        if (ran && bf16) mlc_dnn_widen(stream, c.out, r->out, r->n_out, r->C, r->P, ep);
    }
    mlc_dnn_layer_free(&l);
    return ran;
}

void mlc_cuda_conv2d_fwd_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                               const void *w, float *y, const mlc_conv_epilogue *ep, void *ws, size_t ws_bytes,
                               int mode) {
    int fused = -1;
    const float *bias = NULL, *z = NULL;
    if (ep && ep->n && !mlc_dnn_bf16(mode)) { /* floats: the epilogue in cuDNN's fused call */
        mlc_conv_epi_cudnn f = mlc_conv_epi_cudnn_start();
        for (int k = 0; k < ep->n && k < MLC_EPI_MAX; k++)
            mlc_conv_epi_cudnn_step(&f, k, ep->step[k].op, ep->step[k].q, ep->step[k].per_channel);
        if (!f.ok || f.bias < 0 || ep->n > MLC_EPI_MAX) {
            fprintf(stderr, "mlc: a cuDNN convolution's epilogue of %d steps is not a bias, residual and ReLU\n",
                    ep->n);
            abort();
        }
        fused = f.relu, bias = ep->step[f.bias].p, z = f.z >= 0 ? ep->step[f.z].p : NULL;
    }
    const mlc_dnn_args r = mlc_dnn_args_of(MLC_DNN_FWD, g, B, x, w, y);
    if (!mlc_dnn_run(MLC_DNN_FWD, h, stream, g, B, &r, ep, fused, bias, z, ws, ws_bytes, mode))
        mlc_cuda_conv2d_fwd_implicit(stream, g, B, x, w, y, ep, mode);
}

void mlc_cuda_conv2d_bwd_data_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                    const void *dy, const void *w, float *dx, const mlc_conv_epilogue *ep, void *ws,
                                    size_t ws_bytes, int mode) {
    if (ep && ep->n && !mlc_dnn_bf16(mode)) {
        fprintf(stderr, "mlc: a cuDNN input gradient of floats with an epilogue (only bf16's take one)\n");
        abort();
    }
    const mlc_dnn_args r = mlc_dnn_args_of(MLC_DNN_BWD_DATA, g, B, dy, w, dx);
    if (!mlc_dnn_run(MLC_DNN_BWD_DATA, h, stream, g, B, &r, ep, -1, NULL, NULL, ws, ws_bytes, mode))
        mlc_cuda_conv2d_bwd_data_implicit(stream, g, B, dy, w, dx, ep, mode);
}

void mlc_cuda_conv2d_bwd_filter_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                      const void *x, const void *dy, float *dw, void *ws, size_t ws_bytes, int mode) {
    const mlc_dnn_args r = mlc_dnn_args_of(MLC_DNN_BWD_FILTER, g, B, x, dy, dw);
    /* one range: the implicit weight gradient needs no slots then */
    if (!mlc_dnn_run(MLC_DNN_BWD_FILTER, h, stream, g, B, &r, NULL, -1, NULL, NULL, ws, ws_bytes, mode))
        mlc_cuda_conv2d_bwd_filter_implicit(stream, g, B, x, dy, dw, NULL, 1, mode);
}
