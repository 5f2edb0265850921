/* tests/compiler/gpu/host_cuda/host_cudnn.cpp - the CPU's cuDNN (cudnn.h says what is
 * played and what is checked): the legacy convolution calls on NCHW floats (and, but for
 * the fused call, bfloat16s), each output element one double sum in a fixed order, run on
 * the handle's stream through mlc_host_submit (so a stream capture records the call, with
 * the descriptors' shapes and the scales as they were at the call, as cuDNN bakes them
 * into the graph). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <vector>

#include "cuda_runtime.h"
#include "cudnn.h"
#include "kernels/mlc_bf16.h" /* a bfloat16 in memory, and its rounding */
#include "mma.h"              /* __float_to_tf32 */

/* ---- failures: a status and one line on stderr naming the call ---- */

__attribute__((format(printf, 3, 4))) static cudnnStatus_t fail(cudnnStatus_t s, const char *fn, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "host_cudnn: %s: ", fn);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return s;
}
#define BAD(fn, ...) fail(CUDNN_STATUS_BAD_PARAM, fn, __VA_ARGS__)
#define UNSUPPORTED(fn, ...) fail(CUDNN_STATUS_NOT_SUPPORTED, fn, __VA_ARGS__)
/* returns the status of a check that failed */
#define CHECK(call)                                \
    do {                                           \
        const cudnnStatus_t s_ = (call);           \
        if (s_ != CUDNN_STATUS_SUCCESS) return s_; \
    } while (0)

/* the codes' names, which the real cudnnGetErrorString returns */
#define NAMED(x) \
    { x, #x }
static const struct {
    cudnnStatus_t status;
    const char *name;
} status_names[] = {
    // clang-format off
    NAMED(CUDNN_STATUS_SUCCESS), NAMED(CUDNN_STATUS_NOT_INITIALIZED), NAMED(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH),
    NAMED(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH), NAMED(CUDNN_STATUS_DEPRECATED),
    NAMED(CUDNN_STATUS_LICENSE_ERROR), NAMED(CUDNN_STATUS_RUNTIME_IN_PROGRESS), NAMED(CUDNN_STATUS_RUNTIME_FP_OVERFLOW),
    NAMED(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED), NAMED(CUDNN_STATUS_BAD_PARAM),
    NAMED(CUDNN_STATUS_BAD_PARAM_NULL_POINTER), NAMED(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER),
    NAMED(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED), NAMED(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND),
    NAMED(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT), NAMED(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH),
    NAMED(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH), NAMED(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES),
    NAMED(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE), NAMED(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH),
    NAMED(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE), NAMED(CUDNN_STATUS_NOT_SUPPORTED),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN), NAMED(CUDNN_STATUS_NOT_SUPPORTED_SHAPE),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE), NAMED(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER), NAMED(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH), NAMED(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT), NAMED(CUDNN_STATUS_NOT_SUPPORTED_PADDING),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM), NAMED(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API),
    NAMED(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE), NAMED(CUDNN_STATUS_INTERNAL_ERROR),
    NAMED(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED), NAMED(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE),
    NAMED(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED),
    NAMED(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED), NAMED(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM),
    NAMED(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED), NAMED(CUDNN_STATUS_EXECUTION_FAILED),
    NAMED(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER), NAMED(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS),
    NAMED(CUDNN_STATUS_EXECUTION_FAILED_CUDART), NAMED(CUDNN_STATUS_EXECUTION_FAILED_CURAND),
    // clang-format on
};
#undef NAMED

const char *cudnnGetErrorString(cudnnStatus_t s) {
    for (const auto &n : status_names)
        if (n.status == s) return n.name;
    return "CUDNN_UNKNOWN_STATUS_FOUND"; /* the real library's answer */
}

/* ---- the handle and the descriptors: each known while it lives ---- */

struct mlc_host_cudnn {
    cudaStream_t stream;
    bool stream_set; /* by cudnnSetStream (0 too): mlc's launcher must always set the stream it runs on */
};
struct mlc_host_cudnn_tensor {
    bool set;
    cudnnDataType_t type; /* CUDNN_DATA_FLOAT or CUDNN_DATA_BFLOAT16 */
    int n, c, h, w;
};
struct mlc_host_cudnn_filter {
    bool set;
    cudnnDataType_t type;
    int k, c, r, s;
};
struct mlc_host_cudnn_conv {
    bool set; /* by cudnnSetConvolution2dDescriptor; the group count and math type have defaults */
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnMathType_t math;
};
struct mlc_host_cudnn_act {
    bool set;
    cudnnActivationMode_t mode;
    cudnnNanPropagation_t nan;
};

enum Kind { HANDLE, TENSOR, FILTER, CONV, ACT };
static const char *const kind_name[] = {"handle", "tensor descriptor", "filter descriptor", "convolution descriptor",
                                        "activation descriptor"};
static std::map<const void *, Kind> live;
/* A destroyed object is freed only after 1024 later ones: until then its address cannot
 * come back as a new object's, so a use after the Destroy is seen as one. */
static std::deque<std::function<void()>> quarantine;

template <class T> static cudnnStatus_t create(T **p, Kind k, const char *fn) {
    if (!p) return BAD(fn, "a null pointer for the new %s", kind_name[k]);
    *p = new T();
    live[*p] = k;
    return CUDNN_STATUS_SUCCESS;
}
/* p, if it is a live object of kind k; else NULL, said on stderr */
template <class T> static T *find(T *p, Kind k, const char *fn, const char *what) {
    const auto it = live.find(p);
    if (it != live.end() && it->second == k) return p;
    BAD(fn, "%s %p is not a %s that was created and not destroyed", what, (const void *)p, kind_name[k]);
    return nullptr;
}
/* Destroying NULL does nothing, as free's. */
template <class T> static cudnnStatus_t destroy(T *p, Kind k, const char *fn) {
    if (!p) return CUDNN_STATUS_SUCCESS;
    if (!find(p, k, fn, "the argument")) return CUDNN_STATUS_BAD_PARAM;
    live.erase(p);
    quarantine.push_back([p]() { delete p; });
    if (quarantine.size() > 1024) {
        quarantine.front()();
        quarantine.pop_front();
    }
    return CUDNN_STATUS_SUCCESS;
}
/* p, if it is live and has been set */
template <class T> static T *set(T *p, Kind k, const char *fn, const char *what) {
    if (!find(p, k, fn, what)) return nullptr;
    if (p->set) return p;
    BAD(fn, "%s %p was never set", what, (const void *)p);
    return nullptr;
}

/* The compute calls run, by kind, printed at exit with MLC_HOST_CUDNN_COUNT=1 (so a test
 * knows the cuDNN path ran, and which calls). */
enum Call { CALL_FWD, CALL_FUSED, CALL_DATA, CALL_FILTER };
static long calls_run[4];
static void print_calls() {
    fprintf(stderr, "host_cudnn: %ld forward, %ld fused forward, %ld input gradient, %ld weight gradient calls\n",
            calls_run[CALL_FWD], calls_run[CALL_FUSED], calls_run[CALL_DATA], calls_run[CALL_FILTER]);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    static bool counting;
    const char *count = getenv("MLC_HOST_CUDNN_COUNT");
    if (!counting && count && !strcmp(count, "1")) counting = true, atexit(print_calls);
    return create(h, HANDLE, "cudnnCreate");
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { return destroy(h, HANDLE, "cudnnDestroy"); }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    if (!find(h, HANDLE, "cudnnSetStream", "handle")) return CUDNN_STATUS_BAD_PARAM;
    h->stream = s;
    h->stream_set = true;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    return create(d, TENSOR, "cudnnCreateTensorDescriptor");
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    return destroy(d, TENSOR, "cudnnDestroyTensorDescriptor");
}
/* NCHW floats or bfloat16s only: the layout every mlc tensor has, and the types it stores */
static cudnnStatus_t dims4(const char *fn, cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c, int h,
                           int w) {
    if (format != CUDNN_TENSOR_NCHW) return UNSUPPORTED(fn, "format %d (only CUDNN_TENSOR_NCHW is played)", format);
    if (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16)
        return UNSUPPORTED(fn, "data type %d (only CUDNN_DATA_FLOAT and CUDNN_DATA_BFLOAT16 are played)", type);
    if (n < 1 || c < 1 || h < 1 || w < 1) return BAD(fn, "dimensions %d x %d x %d x %d, not all positive", n, c, h, w);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
    const char *fn = "cudnnSetTensor4dDescriptor";
    if (!find(d, TENSOR, fn, "tensorDesc")) return CUDNN_STATUS_BAD_PARAM;
    CHECK(dims4(fn, format, type, n, c, h, w));
    *d = mlc_host_cudnn_tensor{true, type, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    return create(d, FILTER, "cudnnCreateFilterDescriptor");
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    return destroy(d, FILTER, "cudnnDestroyFilterDescriptor");
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
    const char *fn = "cudnnSetFilter4dDescriptor";
    if (!find(d, FILTER, fn, "filterDesc")) return CUDNN_STATUS_BAD_PARAM;
    CHECK(dims4(fn, format, type, k, c, h, w));
    *d = mlc_host_cudnn_filter{true, type, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    CHECK(create(d, CONV, "cudnnCreateConvolutionDescriptor"));
    (*d)->groups = 1; /* the real defaults */
    (*d)->math = CUDNN_DEFAULT_MATH;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    return destroy(d, CONV, "cudnnDestroyConvolutionDescriptor");
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
    const char *fn = "cudnnSetConvolution2dDescriptor";
    if (!find(d, CONV, fn, "convDesc")) return CUDNN_STATUS_BAD_PARAM;
    if (pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h < 1 || dilation_w < 1)
        return BAD(fn, "padding %d, %d, stride %d, %d, dilation %d, %d", pad_h, pad_w, u, v, dilation_h, dilation_w);
    if (mode != CUDNN_CROSS_CORRELATION)
        return UNSUPPORTED(fn, "mode %d (only CUDNN_CROSS_CORRELATION is played)", mode);
    if (compute != CUDNN_DATA_FLOAT)
        return UNSUPPORTED(fn, "compute type %d (only CUDNN_DATA_FLOAT is played)", compute);
    d->set = true;
    d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v, d->dil_h = dilation_h, d->dil_w = dilation_w;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
    const char *fn = "cudnnSetConvolutionGroupCount";
    if (!find(d, CONV, fn, "convDesc")) return CUDNN_STATUS_BAD_PARAM;
    if (groups < 1) return BAD(fn, "group count %d", groups);
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}
/* DEFAULT and TENSOR_OP let the products take TF32 operands (the tensor cores' on sm_80 and
 * later), FMA keeps them floats; ALLOW_CONVERSION (FP16 products of floats) mlc never wants. */
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
    const char *fn = "cudnnSetConvolutionMathType";
    if (!find(d, CONV, fn, "convDesc")) return CUDNN_STATUS_BAD_PARAM;
    if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        return UNSUPPORTED(fn, "CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (FP16 products of floats) is not played");
    if (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH && math != CUDNN_FMA_MATH)
        return BAD(fn, "math type %d", math);
    d->math = math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *d) {
    return create(d, ACT, "cudnnCreateActivationDescriptor");
}
cudnnStatus_t cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t d) {
    return destroy(d, ACT, "cudnnDestroyActivationDescriptor");
}
/* coef (a clipped ReLU's ceiling, an ELU's alpha) means nothing to RELU and IDENTITY */
cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d, cudnnActivationMode_t mode,
                                           cudnnNanPropagation_t nan, double coef) {
    const char *fn = "cudnnSetActivationDescriptor";
    (void)coef;
    if (!find(d, ACT, fn, "activationDesc")) return CUDNN_STATUS_BAD_PARAM;
    if (nan != CUDNN_NOT_PROPAGATE_NAN && nan != CUDNN_PROPAGATE_NAN) return BAD(fn, "NaN propagation %d", nan);
    if (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_IDENTITY)
        return UNSUPPORTED(fn, "mode %d (only RELU and IDENTITY are played)", mode);
    *d = mlc_host_cudnn_act{true, mode, nan};
    return CUDNN_STATUS_SUCCESS;
}

/* ---- a convolution's geometry ---- */

/* x [n][c][h][w], the filter [k][cg][r][s] in g groups (c = cg g), the output [n][k][oh][ow];
 * the elements floats or, with bf16, bfloat16s (2 bytes each: size) */
struct Geom {
    int n, c, h, w, k, cg, r, s, g, oh, ow;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    bool tf32; /* float operands rounded to TF32 (the math type is not FMA) */
    bool bf16; /* x's type, which a compute call or query has checked w's and y's are (one_type) */
    size_t size() const { return bf16 ? sizeof(mlc_bf16) : sizeof(float); }
    size_t x_elems() const { return (size_t)n * c * h * w; }
    size_t w_elems() const { return (size_t)k * cg * r * s; }
    size_t y_elems() const { return (size_t)n * k * oh * ow; }
    size_t x_bytes() const { return size() * x_elems(); }
    size_t w_bytes() const { return size() * w_elems(); }
    size_t y_bytes() const { return size() * y_elems(); }
};

/* The geometry of conv(x, w) under convDesc, all three live and set and agreeing; the
 * output's size is cuDNN's, 1 + (in + 2 pad - ((filter - 1) dilation + 1)) / stride. */
static cudnnStatus_t geometry(const char *fn, cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t xd,
                              cudnnFilterDescriptor_t wd, const char *xname, const char *wname, Geom *g) {
    const mlc_host_cudnn_conv *cv = set(cd, CONV, fn, "convDesc");
    const mlc_host_cudnn_tensor *x = set(xd, TENSOR, fn, xname);
    const mlc_host_cudnn_filter *f = set(wd, FILTER, fn, wname);
    if (!cv || !x || !f) return CUDNN_STATUS_BAD_PARAM;
    if (x->c != f->c * cv->groups)
        return BAD(fn, "%s has %d channels, but the filter's %d per group times %d groups is %d", xname, x->c, f->c,
                   cv->groups, f->c * cv->groups);
    if (f->k % cv->groups) return BAD(fn, "the filter's %d outputs do not divide into %d groups", f->k, cv->groups);
    if (x->h + 2 * cv->pad_h < (f->r - 1) * cv->dil_h + 1 || x->w + 2 * cv->pad_w < (f->s - 1) * cv->dil_w + 1)
        return BAD(fn, "the dilated %d x %d filter is larger than the padded %d x %d input", f->r, f->s, x->h, x->w);
    Geom t;
    t.n = x->n, t.c = x->c, t.h = x->h, t.w = x->w;
    t.k = f->k, t.cg = f->c, t.r = f->r, t.s = f->s, t.g = cv->groups;
    t.oh = 1 + (x->h + 2 * cv->pad_h - ((f->r - 1) * cv->dil_h + 1)) / cv->u;
    t.ow = 1 + (x->w + 2 * cv->pad_w - ((f->s - 1) * cv->dil_w + 1)) / cv->v;
    t.pad_h = cv->pad_h, t.pad_w = cv->pad_w, t.u = cv->u, t.v = cv->v, t.dil_h = cv->dil_h, t.dil_w = cv->dil_w;
    t.tf32 = cv->math != CUDNN_FMA_MATH;
    t.bf16 = x->type == CUDNN_DATA_BFLOAT16;
    *g = t;
    return CUDNN_STATUS_SUCCESS;
}

/* A tensor descriptor, live and set, of the shape n x c x h x w. */
static cudnnStatus_t shaped(const char *fn, const char *what, cudnnTensorDescriptor_t d, int n, int c, int h, int w) {
    const mlc_host_cudnn_tensor *t = set(d, TENSOR, fn, what);
    if (!t) return CUDNN_STATUS_BAD_PARAM;
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return BAD(fn, "%s is %d x %d x %d x %d, but the convolution's is %d x %d x %d x %d", what, t->n, t->c, t->h,
                   t->w, n, c, h, w);
    return CUDNN_STATUS_SUCCESS;
}

/* A descriptor's name and data type, for the type checks. */
struct Typed {
    const char *what;
    cudnnDataType_t type;
};
static const char *type_name(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT ? "CUDNN_DATA_FLOAT" : t == CUDNN_DATA_BFLOAT16 ? "CUDNN_DATA_BFLOAT16" : "?";
}
/* A call's x, w and y (dy, dx, dw), live and set, of one data type: the legacy calls take
 * all floats, or all bfloat16s (PSEUDO_BFLOAT16), never a mix. */
static cudnnStatus_t one_type(const char *fn, Typed x, Typed w, Typed y) {
    if (x.type == w.type && x.type == y.type) return CUDNN_STATUS_SUCCESS;
    return UNSUPPORTED(fn, "%s is %s, %s %s, %s %s: the legacy calls take one data type for x, w and y", x.what,
                       type_name(x.type), w.what, type_name(w.type), y.what, type_name(y.type));
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                    const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,
                                                    int *n, int *c, int *h, int *w) {
    const char *fn = "cudnnGetConvolution2dForwardOutputDim";
    Geom g;
    if (!n || !c || !h || !w) return BAD(fn, "a null pointer for a dimension");
    CHECK(geometry(fn, cd, xd, wd, "inputTensorDesc", "filterDesc", &g));
    *n = g.n, *c = g.k, *h = g.oh, *w = g.ow;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the heuristics ---- */

/* What each query answers, best first, for every shape: first what a caller must not take
 * (a non-deterministic algorithm, one not supported, one whose workspace is 1 GiB), then
 * one whose small workspace depends on the shape (so the caller must size it from the
 * entry: a count of elements times their size, so bfloat16's is half float's), then one
 * with none. MLC_HOST_CUDNN_NO_ALGO=1 makes every deterministic entry unsupported, for the
 * callers' fallback when none qualifies. The stand-in computes every algorithm alike; only
 * the forward's IMPLICIT_PRECOMP_GEMM is also the fused call's IDENTITY activation's, as in
 * the real library. */
enum Op { FWD, BWD_DATA, BWD_FILTER };
struct Entry {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
};
static const size_t HUGE_WS = (size_t)1 << 30;

static std::vector<Entry> entries(Op op, const Geom &g) {
    const cudnnStatus_t ok = CUDNN_STATUS_SUCCESS, no = CUDNN_STATUS_NOT_SUPPORTED;
    const cudnnDeterminism_t det = CUDNN_DETERMINISTIC, nondet = CUDNN_NON_DETERMINISTIC;
    const size_t image = g.size() * (size_t)g.c * g.h * g.w; /* one image of x (dx) */
    std::vector<Entry> e;
    if (op == FWD)
        e = {{CUDNN_CONVOLUTION_FWD_ALGO_FFT, no, 0, det},
             {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ok, HUGE_WS, det},
             {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, ok, image, det},
             {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, ok, 0, det}};
    else if (op == BWD_DATA)
        e = {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, ok, 0, nondet},
             {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, no, 0, det},
             {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, ok, HUGE_WS, det},
             {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, ok, 2 * image, det},
             {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, ok, 0, det}};
    else
        e = {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, ok, 0, nondet},
             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, no, 0, det},
             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, ok, HUGE_WS, det},
             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, ok, image + g.w_bytes(), det},
             {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, ok, 0, det}};
    const char *none = getenv("MLC_HOST_CUDNN_NO_ALGO");
    if (none && !strcmp(none, "1"))
        for (Entry &x : e)
            if (x.determinism == det) x.status = no;
    return e;
}

/* The first `requested` entries as the query's perf structs (all three have one layout). */
template <class Perf, class Algo>
static cudnnStatus_t answer(const char *fn, Op op, const Geom &g, cudnnMathType_t math, int requested, int *returned,
                            Perf *perf) {
    if (requested < 1 || !returned || !perf)
        return BAD(fn, "requestedAlgoCount %d, returnedAlgoCount %p, perfResults %p", requested, (void *)returned,
                   (void *)perf);
    const std::vector<Entry> e = entries(op, g);
    *returned = requested < (int)e.size() ? requested : (int)e.size();
    for (int i = 0; i < *returned; i++) {
        memset(&perf[i], 0, sizeof perf[i]);
        perf[i].algo = (Algo)e[i].algo;
        perf[i].status = e[i].status;
        perf[i].time = -1.0f;
        perf[i].memory = e[i].memory;
        perf[i].determinism = e[i].determinism;
        perf[i].mathType = math;
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                     const cudnnFilterDescriptor_t wd,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t yd, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf) {
    const char *fn = "cudnnGetConvolutionForwardAlgorithm_v7";
    Geom g;
    if (!find(h, HANDLE, fn, "handle")) return CUDNN_STATUS_BAD_PARAM;
    CHECK(geometry(fn, cd, xd, wd, "srcDesc", "filterDesc", &g));
    CHECK(shaped(fn, "destDesc", yd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"srcDesc", xd->type}, {"filterDesc", wd->type}, {"destDesc", yd->type}));
    return answer<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(fn, FWD, g, cd->math, requested, returned,
                                                                            perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t wd,
                                                          const cudnnTensorDescriptor_t dyd,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnTensorDescriptor_t dxd, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    const char *fn = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    Geom g;
    if (!find(h, HANDLE, fn, "handle")) return CUDNN_STATUS_BAD_PARAM;
    CHECK(geometry(fn, cd, dxd, wd, "gradDesc", "filterDesc", &g));
    CHECK(shaped(fn, "diffDesc", dyd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"gradDesc", dxd->type}, {"filterDesc", wd->type}, {"diffDesc", dyd->type}));
    return answer<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(fn, BWD_DATA, g, cd->math,
                                                                                    requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t xd,
                                                            const cudnnTensorDescriptor_t dyd,
                                                            const cudnnConvolutionDescriptor_t cd,
                                                            const cudnnFilterDescriptor_t dwd, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    const char *fn = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    Geom g;
    if (!find(h, HANDLE, fn, "handle")) return CUDNN_STATUS_BAD_PARAM;
    CHECK(geometry(fn, cd, xd, dwd, "srcDesc", "gradDesc", &g));
    CHECK(shaped(fn, "diffDesc", dyd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"srcDesc", xd->type}, {"diffDesc", dyd->type}, {"gradDesc", dwd->type}));
    return answer<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(fn, BWD_FILTER, g, cd->math,
                                                                                        requested, returned, perf);
}

/* ---- what a compute call checks ---- */

/* The handle, live and given a stream. */
static cudnnStatus_t ready(const char *fn, cudnnHandle_t h) {
    if (!find(h, HANDLE, fn, "handle")) return CUDNN_STATUS_BAD_PARAM;
    if (!h->stream_set) return BAD(fn, "the handle was never given a stream (cudnnSetStream)");
    return CUDNN_STATUS_SUCCESS;
}

/* A host scale (a float, for float and bfloat16 data), read now, as cuDNN reads it. */
static cudnnStatus_t scale(const char *fn, const char *what, const void *p, float *v) {
    if (!p) return BAD(fn, "%s is a null pointer", what);
    *v = *(const float *)p;
    return CUDNN_STATUS_SUCCESS;
}

/* The algorithm is one the query offers as supported for this geometry, deterministic (mlc
 * refuses the others: the stand-in runs them alike, so only this check can tell), and the
 * workspace holds what it needs (*need bytes). */
static cudnnStatus_t algorithm(const char *fn, Op op, const Geom &g, int algo, const void *ws, size_t ws_bytes,
                               size_t *need) {
    for (const Entry &e : entries(op, g)) {
        if (e.algo != algo) continue;
        if (e.status != CUDNN_STATUS_SUCCESS)
            return BAD(fn, "algorithm %d, which the heuristic ranks as %s for these descriptors", algo,
                       cudnnGetErrorString(e.status));
        if (e.determinism != CUDNN_DETERMINISTIC)
            return BAD(fn, "algorithm %d, which the heuristic marks non-deterministic (mlc takes deterministic ones)",
                       algo);
        if (ws_bytes < e.memory)
            return BAD(fn, "algorithm %d needs %zu bytes of workspace, given %zu", algo, e.memory, ws_bytes);
        if (e.memory && !ws) return BAD(fn, "algorithm %d needs %zu bytes of workspace, given NULL", algo, e.memory);
        *need = e.memory;
        if (ws && ws_bytes) {
            mlc_host_check_device(ws, fn);
            mlc_host_check_device((const char *)ws + ws_bytes - 1, fn); /* its last byte */
        }
        return CUDNN_STATUS_SUCCESS;
    }
    return BAD(fn, "algorithm %d, which the heuristic never offers for these descriptors", algo);
}

/* A data pointer to `elems` elements of `size` bytes (a float's 4, a bfloat16's 2): not
 * null, aligned to an element, its first byte and its last element's last byte in device
 * memory. */
static cudnnStatus_t data(const char *fn, const char *what, const void *p, size_t elems, size_t size) {
    if (!p) return BAD(fn, "%s is a null pointer", what);
    if ((uintptr_t)p % size)
        return BAD(fn, "%s at %p is not aligned to its elements (%s)", what, p, size == 2 ? "bfloat16s" : "floats");
    char where[160];
    snprintf(where, sizeof where, "%s (%s)", fn, what);
    mlc_host_check_device(p, where);
    snprintf(where, sizeof where, "%s (%s's last element)", fn, what);
    mlc_host_check_device((const char *)p + elems * size - 1, where);
    return CUDNN_STATUS_SUCCESS;
}

/* An output must not overlap what the call reads (cuDNN computes nothing in place). */
struct Span {
    const char *what;
    const void *p;
    size_t bytes;
};
static cudnnStatus_t apart(const char *fn, Span out, std::initializer_list<Span> ins) {
    const uintptr_t a = (uintptr_t)out.p;
    for (const Span &in : ins) {
        const uintptr_t b = (uintptr_t)in.p;
        if (in.p && in.bytes && a < b + in.bytes && b < a + out.bytes)
            return BAD(fn, "%s [%p, +%zu bytes) overlaps %s [%p, +%zu bytes)", out.what, out.p, out.bytes, in.what,
                       in.p, in.bytes);
    }
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the arithmetic (run on the stream) ---- */

/* The products' operands as floats: p's floats themselves, or in buf p's floats rounded to
 * TF32 or p's bfloat16s widened (exactly; TF32 rounding would change none of them). */
static const float *operand(const void *p, size_t n, const Geom &g, std::vector<float> &buf) {
    if (g.bf16) {
        buf.assign((const mlc_bf16 *)p, (const mlc_bf16 *)p + n);
        return buf.data();
    }
    if (!g.tf32) return (const float *)p;
    buf.assign((const float *)p, (const float *)p + n);
    for (float &v : buf) v = nvcuda::wmma::__float_to_tf32(v);
    return buf.data();
}

/* conv(x, w) at (n, k, oh, ow): channel, row, column in order */
static double forward_sum(const Geom &g, const float *x, const float *w, int n, int k, int oh, int ow) {
    const int grp = k / (g.k / g.g);
    double acc = 0;
    for (int c = 0; c < g.cg; c++) {
        const float *xc = x + ((size_t)n * g.c + (size_t)grp * g.cg + c) * g.h * g.w;
        const float *wc = w + ((size_t)k * g.cg + c) * g.r * g.s;
        for (int r = 0; r < g.r; r++) {
            const int ih = oh * g.u - g.pad_h + r * g.dil_h;
            if (ih < 0 || ih >= g.h) continue;
            for (int s = 0; s < g.s; s++) {
                const int iw = ow * g.v - g.pad_w + s * g.dil_w;
                if (iw >= 0 && iw < g.w) acc += (double)xc[(size_t)ih * g.w + iw] * (double)wc[r * g.s + s];
            }
        }
    }
    return acc;
}

/* the gradient of x at (n, c, ih, iw): every (k, r, s) whose tap lands there, in order */
static double data_sum(const Geom &g, const float *dy, const float *w, int n, int c, int ih, int iw) {
    const int grp = c / g.cg, kg = g.k / g.g, cl = c % g.cg;
    double acc = 0;
    for (int k = grp * kg; k < (grp + 1) * kg; k++) {
        const float *dyk = dy + ((size_t)n * g.k + k) * g.oh * g.ow;
        const float *wk = w + ((size_t)k * g.cg + cl) * g.r * g.s;
        for (int r = 0; r < g.r; r++) {
            const int th = ih + g.pad_h - r * g.dil_h;
            if (th < 0 || th % g.u || th / g.u >= g.oh) continue;
            for (int s = 0; s < g.s; s++) {
                const int tw = iw + g.pad_w - s * g.dil_w;
                if (tw < 0 || tw % g.v || tw / g.v >= g.ow) continue;
                acc += (double)dyk[(size_t)(th / g.u) * g.ow + tw / g.v] * (double)wk[r * g.s + s];
            }
        }
    }
    return acc;
}

/* the gradient of w at (k, c, r, s), over the batch: image, row, column in order */
static double filter_sum(const Geom &g, const float *x, const float *dy, int k, int c, int r, int s) {
    const int grp = k / (g.k / g.g);
    double acc = 0;
    for (int n = 0; n < g.n; n++) {
        const float *xc = x + ((size_t)n * g.c + (size_t)grp * g.cg + c) * g.h * g.w;
        const float *dyk = dy + ((size_t)n * g.k + k) * g.oh * g.ow;
        for (int oh = 0; oh < g.oh; oh++) {
            const int ih = oh * g.u - g.pad_h + r * g.dil_h;
            if (ih < 0 || ih >= g.h) continue;
            for (int ow = 0; ow < g.ow; ow++) {
                const int iw = ow * g.v - g.pad_w + s * g.dil_w;
                if (iw >= 0 && iw < g.w) acc += (double)dyk[(size_t)oh * g.ow + ow] * (double)xc[(size_t)ih * g.w + iw];
            }
        }
    }
    return acc;
}

/* out[i] = alpha sum + beta out[i] in float, beta 0 not reading out[i] (device memory
 * starts as NaNs); a bfloat16 out[i] is read widened and stored rounded to nearest even
 * (mlc_bf16's assignment, mlc_round_bf16: a NaN stays a NaN). */
static void blend(void *out, size_t i, const Geom &g, double sum, float alpha, float beta) {
    const float v = alpha * (float)sum;
    if (g.bf16) {
        mlc_bf16 &o = ((mlc_bf16 *)out)[i];
        o = beta == 0.0f ? v : v + beta * (float)o;
    } else {
        float &o = ((float *)out)[i];
        o = beta == 0.0f ? v : v + beta * o;
    }
}

/* Runs f on the handle's stream, after NaNs over the `need` bytes of workspace it would use. */
static void run(cudnnHandle_t h, Call call, void *ws, size_t need, std::function<void()> f) {
    mlc_host_submit(h->stream, dim3(1), dim3(1), [=]() {
        if (need) memset(ws, 0xff, need);
        f();
        calls_run[call]++;
    });
}

/* ---- the compute calls ---- */

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws,
                                      size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd, void *y) {
    const char *fn = "cudnnConvolutionForward";
    Geom g;
    float a = 0, b = 0;
    size_t need = 0;
    CHECK(ready(fn, h));
    CHECK(scale(fn, "alpha", alpha, &a));
    CHECK(scale(fn, "beta", beta, &b));
    CHECK(geometry(fn, cd, xd, wd, "xDesc", "wDesc", &g));
    CHECK(shaped(fn, "yDesc", yd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"xDesc", xd->type}, {"wDesc", wd->type}, {"yDesc", yd->type}));
    CHECK(algorithm(fn, FWD, g, algo, ws, ws_bytes, &need));
    CHECK(data(fn, "x", x, g.x_elems(), g.size()));
    CHECK(data(fn, "w", w, g.w_elems(), g.size()));
    CHECK(data(fn, "y", y, g.y_elems(), g.size()));
    CHECK(
        apart(fn, {"y", y, g.y_bytes()}, {{"x", x, g.x_bytes()}, {"w", w, g.w_bytes()}, {"workSpace", ws, ws_bytes}}));
    run(h, CALL_FWD, ws, need, [=]() {
        std::vector<float> bx, bw;
        const float *px = operand(x, g.x_elems(), g, bx);
        const float *pw = operand(w, g.w_elems(), g, bw);
        size_t i = 0;
        for (int n = 0; n < g.n; n++)
            for (int k = 0; k < g.k; k++)
                for (int oh = 0; oh < g.oh; oh++)
                    for (int ow = 0; ow < g.ow; ow++) blend(y, i++, g, forward_sum(g, px, pw, n, k, oh, ow), a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

/* The fused call plays floats only (mlc calls it for no other type): every descriptor
 * given, live and set, is CUDNN_DATA_FLOAT. */
static cudnnStatus_t floats_only(const char *fn, std::initializer_list<Typed> descs) {
    for (const Typed &d : descs)
        if (d.type != CUDNN_DATA_FLOAT)
            return UNSUPPORTED(fn, "%s is %s (this call is played for CUDNN_DATA_FLOAT only)", d.what,
                               type_name(d.type));
    return CUDNN_STATUS_SUCCESS;
}

/* The fused call's own checks: the activation, z either y itself or apart from it (the
 * bias's and z's shapes and types are checked before). */
static cudnnStatus_t fused_args(const char *fn, const Geom &g, cudnnConvolutionFwdAlgo_t algo,
                                cudnnActivationDescriptor_t ad, const void *z, float a2, const void *y) {
    const mlc_host_cudnn_act *act = set(ad, ACT, fn, "activationDesc");
    if (!act) return CUDNN_STATUS_BAD_PARAM;
    if (act->mode == CUDNN_ACTIVATION_IDENTITY && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        return UNSUPPORTED(fn,
                           "CUDNN_ACTIVATION_IDENTITY needs CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, "
                           "not algorithm %d",
                           algo);
    if (a2 == 0.0f && !z) return CUDNN_STATUS_SUCCESS; /* z is not read */
    CHECK(data(fn, "z", z, g.y_elems(), g.size()));
    if (z != y) CHECK(apart(fn, {"y", y, g.y_bytes()}, {{"z", z, g.y_bytes()}}));
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnConvolutionBiasActivationForward(cudnnHandle_t h, const void *alpha1, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws,
                                      size_t ws_bytes, const void *alpha2, const cudnnTensorDescriptor_t zd,
                                      const void *z, const cudnnTensorDescriptor_t bd, const void *bias,
                                      const cudnnActivationDescriptor_t ad, const cudnnTensorDescriptor_t yd, void *y) {
    const char *fn = "cudnnConvolutionBiasActivationForward";
    Geom g;
    float a1 = 0, a2 = 0;
    size_t need = 0;
    CHECK(ready(fn, h));
    /* MLC_HOST_CUDNN_NO_FUSED=1: the fused call turns every problem down, as cuDNN does an
     * algorithm it does not take, so that the caller's fallback runs */
    const char *no_fused = getenv("MLC_HOST_CUDNN_NO_FUSED");
    if (no_fused && *no_fused && strcmp(no_fused, "0")) return CUDNN_STATUS_NOT_SUPPORTED;
    CHECK(scale(fn, "alpha1", alpha1, &a1));
    CHECK(scale(fn, "alpha2", alpha2, &a2));
    CHECK(geometry(fn, cd, xd, wd, "xDesc", "wDesc", &g));
    CHECK(shaped(fn, "yDesc", yd, g.n, g.k, g.oh, g.ow));
    CHECK(shaped(fn, "biasDesc", bd, 1, g.k, 1, 1));
    CHECK(shaped(fn, "zDesc", zd, g.n, g.k, g.oh, g.ow));
    CHECK(floats_only(
        fn,
        {{"xDesc", xd->type}, {"wDesc", wd->type}, {"yDesc", yd->type}, {"biasDesc", bd->type}, {"zDesc", zd->type}}));
    CHECK(algorithm(fn, FWD, g, algo, ws, ws_bytes, &need));
    CHECK(data(fn, "x", x, g.x_elems(), g.size()));
    CHECK(data(fn, "w", w, g.w_elems(), g.size()));
    CHECK(data(fn, "bias", bias, (size_t)g.k, g.size()));
    CHECK(data(fn, "y", y, g.y_elems(), g.size()));
    CHECK(fused_args(fn, g, algo, ad, z, a2, y));
    CHECK(apart(fn, {"y", y, g.y_bytes()},
                {{"x", x, g.x_bytes()},
                 {"w", w, g.w_bytes()},
                 {"bias", bias, g.size() * (size_t)g.k},
                 {"workSpace", ws, ws_bytes}}));
    const bool relu = ad->mode == CUDNN_ACTIVATION_RELU, keep_nan = ad->nan == CUDNN_PROPAGATE_NAN;
    const float *zf = a2 == 0.0f ? nullptr : (const float *)z;
    run(h, CALL_FUSED, ws, need, [=]() {
        std::vector<float> bx, bw;
        const float *px = operand(x, g.x_elems(), g, bx);
        const float *pw = operand(w, g.w_elems(), g, bw);
        float *out = (float *)y;
        size_t i = 0;
        for (int n = 0; n < g.n; n++)
            for (int k = 0; k < g.k; k++)
                for (int oh = 0; oh < g.oh; oh++)
                    for (int ow = 0; ow < g.ow; ow++, i++) {
                        float v = a1 * (float)forward_sum(g, px, pw, n, k, oh, ow);
                        if (zf) v += a2 * zf[i]; /* read before y[i] is written: z may be y */
                        v += ((const float *)bias)[k];
                        /* a NaN is kept only with CUDNN_PROPAGATE_NAN */
                        out[i] = !relu || v > 0.0f || (keep_nan && v != v) ? v : 0.0f;
                    }
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *ws, size_t ws_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx) {
    const char *fn = "cudnnConvolutionBackwardData";
    Geom g;
    float a = 0, b = 0;
    size_t need = 0;
    CHECK(ready(fn, h));
    CHECK(scale(fn, "alpha", alpha, &a));
    CHECK(scale(fn, "beta", beta, &b));
    CHECK(geometry(fn, cd, dxd, wd, "dxDesc", "wDesc", &g));
    CHECK(shaped(fn, "dyDesc", dyd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"dxDesc", dxd->type}, {"wDesc", wd->type}, {"dyDesc", dyd->type}));
    CHECK(algorithm(fn, BWD_DATA, g, algo, ws, ws_bytes, &need));
    CHECK(data(fn, "w", w, g.w_elems(), g.size()));
    CHECK(data(fn, "dy", dy, g.y_elems(), g.size()));
    CHECK(data(fn, "dx", dx, g.x_elems(), g.size()));
    CHECK(apart(fn, {"dx", dx, g.x_bytes()},
                {{"dy", dy, g.y_bytes()}, {"w", w, g.w_bytes()}, {"workSpace", ws, ws_bytes}}));
    run(h, CALL_DATA, ws, need, [=]() {
        std::vector<float> bdy, bw;
        const float *pdy = operand(dy, g.y_elems(), g, bdy);
        const float *pw = operand(w, g.w_elems(), g, bw);
        size_t i = 0;
        for (int n = 0; n < g.n; n++)
            for (int c = 0; c < g.c; c++)
                for (int ih = 0; ih < g.h; ih++)
                    for (int iw = 0; iw < g.w; iw++) blend(dx, i++, g, data_sum(g, pdy, pw, n, c, ih, iw), a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw) {
    const char *fn = "cudnnConvolutionBackwardFilter";
    Geom g;
    float a = 0, b = 0;
    size_t need = 0;
    CHECK(ready(fn, h));
    CHECK(scale(fn, "alpha", alpha, &a));
    CHECK(scale(fn, "beta", beta, &b));
    CHECK(geometry(fn, cd, xd, dwd, "xDesc", "dwDesc", &g));
    CHECK(shaped(fn, "dyDesc", dyd, g.n, g.k, g.oh, g.ow));
    CHECK(one_type(fn, {"xDesc", xd->type}, {"dwDesc", dwd->type}, {"dyDesc", dyd->type}));
    CHECK(algorithm(fn, BWD_FILTER, g, algo, ws, ws_bytes, &need));
    CHECK(data(fn, "x", x, g.x_elems(), g.size()));
    CHECK(data(fn, "dy", dy, g.y_elems(), g.size()));
    CHECK(data(fn, "dw", dw, g.w_elems(), g.size()));
    CHECK(apart(fn, {"dw", dw, g.w_bytes()},
                {{"x", x, g.x_bytes()}, {"dy", dy, g.y_bytes()}, {"workSpace", ws, ws_bytes}}));
    run(h, CALL_FILTER, ws, need, [=]() {
        std::vector<float> bx, bdy;
        const float *px = operand(x, g.x_elems(), g, bx);
        const float *pdy = operand(dy, g.y_elems(), g, bdy);
        size_t i = 0;
        for (int k = 0; k < g.k; k++)
            for (int c = 0; c < g.cg; c++)
                for (int r = 0; r < g.r; r++)
                    for (int s = 0; s < g.s; s++) blend(dw, i++, g, filter_sum(g, px, pdy, k, c, r, s), a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}
