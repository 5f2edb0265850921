/* conv_cudnn.cu - the three convolution ops through cuDNN's convolution calls
 * (--conv-algo cudnn: mlc_kernels_cudnn.h), a forward convolution's bias, residual and ReLU
 * in cuDNN's fused call. The legacy calls, not the graph API: they take NCHW floats, groups,
 * strides, padding and dilation as they are, and cudnnConvolutionBiasActivationForward is
 * the fused epilogue the CUDA target's chains of a bias, a residual and a ReLU need. The
 * calls are stream-ordered like our kernels, so a CUDA graph captures them too. */
#include <pthread.h>
#include <string.h>

#include "../mlc_kernels_cudnn.h"

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

static void mlc_dnn_layer_make(mlc_dnn_layer *l, const mlc_conv_geom *g, long B, int mode, int relu) {
    memset(l, 0, sizeof *l);
    if (B > 2147483647L) {
        fprintf(stderr, "mlc: a cuDNN convolution of batch %ld (at most 2^31 - 1)\n", B);
        abort();
    }
    MLC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&l->x));
    MLC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&l->y));
    MLC_CUDNN_CHECK(cudnnCreateFilterDescriptor(&l->w));
    MLC_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&l->conv));
    MLC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(l->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)B, g->C, g->H, g->W));
    MLC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(l->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)B, g->O, g->Ho, g->Wo));
    MLC_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(l->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->O, g->C / g->G, g->KH, g->KW));
    MLC_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(l->conv, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    MLC_CUDNN_CHECK(cudnnSetConvolutionGroupCount(l->conv, g->G));
    /* FP32: FMAs only (cuDNN's default lets FP32 convolutions round their operands to TF32) */
    MLC_CUDNN_CHECK(cudnnSetConvolutionMathType(l->conv, mode == MLC_TF32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
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
        for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && algo == MLC_DNN_NONE; i++)
            if (mlc_dnn_fits(p[i], q->ws_bytes, q->op, q->fused)) algo = (int)p[i].algo;
    } else if (q->op == MLC_DNN_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[WANT];
        st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, l->w, l->y, l->conv, l->x, WANT, &got, p);
        for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && algo == MLC_DNN_NONE; i++)
            if (mlc_dnn_fits(p[i], q->ws_bytes, q->op, q->fused)) algo = (int)p[i].algo;
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[WANT];
        st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, l->x, l->y, l->conv, l->w, WANT, &got, p);
        for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && algo == MLC_DNN_NONE; i++)
            if (mlc_dnn_fits(p[i], q->ws_bytes, q->op, q->fused)) algo = (int)p[i].algo;
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

/* cuDNN runs floats alone here: bf16 operands go to the implicit-GEMM kernels */
static int mlc_dnn_takes(int mode) { return mode == MLC_FP32 || mode == MLC_TF32; }

void mlc_cuda_conv2d_fwd_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const float *x,
                               const float *w, float *y, const mlc_conv_epilogue *ep, void *ws, size_t ws_bytes,
                               int mode) {
    int fused = -1;
    const float *bias = NULL, *z = NULL;
    if (ep && ep->n) {
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
    int algo = MLC_DNN_NONE;
    mlc_dnn_layer l;
    if (mlc_dnn_takes(mode) && B > 0) {
        mlc_dnn_layer_make(&l, g, B, mode, fused);
        MLC_CUDNN_CHECK(cudnnSetStream(h, stream));
        const mlc_dnn_problem q = mlc_dnn_problem_of(MLC_DNN_FWD, g, B, mode, fused, ws_bytes);
        algo = mlc_dnn_choose(h, &l, &q);
        const float zero = 0.0f;
        if (algo != MLC_DNN_NONE && fused < 0 &&
            !mlc_dnn_ran(cudnnConvolutionForward(h, &mlc_one, l.x, x, l.w, w, l.conv, (cudnnConvolutionFwdAlgo_t)algo,
                                                 ws, ws_bytes, &mlc_zero, l.y, y),
                         &q, "cudnnConvolutionForward"))
            algo = MLC_DNN_NONE;
        else if (algo != MLC_DNN_NONE && fused >= 0 && /* act(conv + z + bias); no residual: z is y, weighed 0 */
                 !mlc_dnn_ran(cudnnConvolutionBiasActivationForward(
                                  h, &mlc_one, l.x, x, l.w, w, l.conv, (cudnnConvolutionFwdAlgo_t)algo, ws, ws_bytes,
                                  z ? &mlc_one : &zero, l.y, z ? z : y, l.bias, bias, l.act, l.y, y),
                              &q, "cudnnConvolutionBiasActivationForward"))
            algo = MLC_DNN_NONE;
        mlc_dnn_layer_free(&l);
    }
    if (algo == MLC_DNN_NONE) mlc_cuda_conv2d_fwd_implicit(stream, g, B, x, w, y, ep, mode);
}

/* A gradient on cuDNN: dx from (dy, w), or dw from (x, dy); 0 where no algorithm qualifies
 * (or the operands are bf16) and nothing ran. */
static int mlc_dnn_gradient(int op, cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                            const float *a, const float *b, float *out, void *ws, size_t ws_bytes, int mode) {
    if (!mlc_dnn_takes(mode) || B <= 0) return 0;
    mlc_dnn_layer l;
    mlc_dnn_layer_make(&l, g, B, mode, -1);
    MLC_CUDNN_CHECK(cudnnSetStream(h, stream));
    const mlc_dnn_problem q = mlc_dnn_problem_of(op, g, B, mode, -1, ws_bytes);
    const int algo = mlc_dnn_choose(h, &l, &q);
    int ran = 0;
    if (algo != MLC_DNN_NONE && op == MLC_DNN_BWD_DATA)
        ran = mlc_dnn_ran(cudnnConvolutionBackwardData(h, &mlc_one, l.w, b, l.y, a, l.conv,
                                                       (cudnnConvolutionBwdDataAlgo_t)algo, ws, ws_bytes, &mlc_zero,
                                                       l.x, out),
                          &q, "cudnnConvolutionBackwardData");
    else if (algo != MLC_DNN_NONE)
        ran = mlc_dnn_ran(cudnnConvolutionBackwardFilter(h, &mlc_one, l.x, a, l.y, b, l.conv,
                                                         (cudnnConvolutionBwdFilterAlgo_t)algo, ws, ws_bytes, &mlc_zero,
                                                         l.w, out),
                          &q, "cudnnConvolutionBackwardFilter");
    mlc_dnn_layer_free(&l);
    return ran;
}

void mlc_cuda_conv2d_bwd_data_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                    const float *dy, const float *w, float *dx, void *ws, size_t ws_bytes, int mode) {
    if (!mlc_dnn_gradient(MLC_DNN_BWD_DATA, h, stream, g, B, dy, w, dx, ws, ws_bytes, mode))
        mlc_cuda_conv2d_bwd_data_implicit(stream, g, B, dy, w, dx, NULL, mode);
}

void mlc_cuda_conv2d_bwd_filter_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                      const float *x, const float *dy, float *dw, void *ws, size_t ws_bytes, int mode) {
    /* one range: the implicit weight gradient needs no slots then */
    if (!mlc_dnn_gradient(MLC_DNN_BWD_FILTER, h, stream, g, B, x, dy, dw, ws, ws_bytes, mode))
        mlc_cuda_conv2d_bwd_filter_implicit(stream, g, B, x, dy, dw, NULL, 1, mode);
}
