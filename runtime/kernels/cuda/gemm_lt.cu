/* gemm_lt.cu - a GEMM with its bias, or bias and ReLU, in cuBLASLt's epilogue
 * (--cublaslt: mlc_kernels_cuda.h), so that the output is written once instead of written,
 * read and written again by an elementwise kernel. Where cuBLASLt has no algorithm for
 * the operands' types and the epilogue, the same values come from mlc_gemm and a bias
 * kernel of our own. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../mlc_kernels_cuda.h"

/* C[i + j*ldc] += bias[i], then max(., 0) with relu: the fallback's epilogue, a thread
 * per element, computed as the generated epilogue kernel computes it. */
static __global__ void mlc_bias_act_kernel(const long m, const long n, const float *bias, float *C, const int ldc,
                                           const int relu) {
    const long count = m * n;
    for (long k = blockIdx.x * (long)blockDim.x + threadIdx.x; k < count; k += (long)gridDim.x * blockDim.x) {
        const long i = k % m, j = k / m;
        const float v = C[i + j * ldc] + bias[i];
        C[i + j * ldc] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

/* The matmul descriptor's attribute `a`, set from value v. */
#define MLC_LT_SET(desc, a, v) cublasLtMatmulDescSetAttribute((desc), (a), &(v), sizeof(v))

/* The largest power of two up to 256 that divides p's address: the alignment cuBLASLt's
 * heuristic is told it may assume (it assumes 256 bytes unless told less, and an
 * algorithm that needs more than a pointer has may fail on it). */
static uint32_t mlc_lt_alignment(const void *p) {
    uint32_t a = 256;
    while (a > 1 && (uintptr_t)p % a) a /= 2;
    return a;
}

/* What the heuristic was asked: everything its answer depends on (zeroed before it is
 * filled, so that memcmp compares no padding). */
typedef struct mlc_lt_problem {
    int device, mode, relu, ta, tb, m, n, k, lda, ldb, ldc;
    uint32_t align[4]; /* A, B, C = D, bias */
    size_t ws_bytes;
} mlc_lt_problem;

/* The heuristic's answers, so that a step launched one by one (no CUDA graph: while
 * data-parallel training's or --sync-bn's host callbacks run between the kernels, or
 * --accum's calls) asks it once per problem, not once per call; the oldest answer makes
 * room. Any model of the process on any thread may ask, hence the lock. */
#define MLC_LT_CACHE 64
static struct {
    mlc_lt_problem key;
    int found;
    cublasLtMatmulAlgo_t algo;
} mlc_lt_cache[MLC_LT_CACHE];
static int mlc_lt_cached, mlc_lt_next;
static pthread_mutex_t mlc_lt_lock = PTHREAD_MUTEX_INITIALIZER;

/* *found and *algo for problem q from the cache: 1, or 0 if it is not there. */
static int mlc_lt_lookup(const mlc_lt_problem *q, int *found, cublasLtMatmulAlgo_t *algo) {
    pthread_mutex_lock(&mlc_lt_lock);
    int hit = 0;
    for (int i = 0; i < mlc_lt_cached && !hit; i++)
        if (!memcmp(&mlc_lt_cache[i].key, q, sizeof *q)) {
            *found = mlc_lt_cache[i].found, *algo = mlc_lt_cache[i].algo;
            hit = 1;
        }
    pthread_mutex_unlock(&mlc_lt_lock);
    return hit;
}

static void mlc_lt_remember(const mlc_lt_problem *q, int found, const cublasLtMatmulAlgo_t *algo) {
    pthread_mutex_lock(&mlc_lt_lock);
    const int i = mlc_lt_cached < MLC_LT_CACHE ? mlc_lt_cached++ : mlc_lt_next++ % MLC_LT_CACHE;
    mlc_lt_cache[i].key = *q;
    mlc_lt_cache[i].found = found;
    mlc_lt_cache[i].algo = *algo;
    pthread_mutex_unlock(&mlc_lt_lock);
}

cublasStatus_t mlc_gemm_bias(cublasHandle_t h, cublasLtHandle_t lt, cudaStream_t stream, int mode, int relu,
                             cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                             const void *B, int ldb, const float *bias, float *C, int ldc, void *ws, size_t ws_bytes) {
    /* the types and compute types of mlc_gemm's modes; TF32 as the handle's math mode
     * gives it to cublasSgemm */
    const cudaDataType_t t = mode == MLC_BF16_STORED ? CUDA_R_16BF : CUDA_R_32F;
    const cublasComputeType_t compute = mode == MLC_BF16_VALUES ? CUBLAS_COMPUTE_32F_FAST_16BF
                                        : mode == MLC_TF32      ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                : CUBLAS_COMPUTE_32F;
    const int32_t opa = ta, opb = tb;
    const uint32_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const uint64_t ws_size = ws_bytes;
    mlc_lt_problem q;
    memset(&q, 0, sizeof q);
    MLC_CUDA_CHECK(cudaGetDevice(&q.device));
    q.mode = mode, q.relu = relu, q.ta = ta, q.tb = tb, q.m = m, q.n = n, q.k = k, q.lda = lda, q.ldb = ldb,
    q.ldc = ldc, q.ws_bytes = ws_bytes;
    q.align[0] = mlc_lt_alignment(A), q.align[1] = mlc_lt_alignment(B), q.align[2] = mlc_lt_alignment(C);
    q.align[3] = mlc_lt_alignment(bias);
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t best;
    memset(&best, 0, sizeof best);
    int found = 0, known = mlc_lt_lookup(&q, &found, &best.algo);
    cublasStatus_t s = cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_TRANSA, opa);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_TRANSB, opb);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    /* column-major layouts: op(A) is m x k, op(B) k x n */
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&la, t, ta ? k : m, ta ? m : k, lda);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&lb, t, tb ? n : k, tb ? k : n, ldb);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc);
    /* the heuristic's first choice: the same for the same problem on the same GPU, so the
     * same algorithm every run (its split-K reductions, if any, add in a fixed order) */
    if (s == CUBLAS_STATUS_SUCCESS && !known) {
        static const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        s = cublasLtMatmulPreferenceCreate(&pref);
        if (s == CUBLAS_STATUS_SUCCESS)
            s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_size,
                                                     sizeof ws_size);
        for (int i = 0; i < 4 && s == CUBLAS_STATUS_SUCCESS; i++) /* D is C */
            s = cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &q.align[i < 3 ? i : 2], sizeof q.align[0]);
        if (s == CUBLAS_STATUS_SUCCESS) {
            s = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &best, &found);
            if (s == CUBLAS_STATUS_NOT_SUPPORTED) s = CUBLAS_STATUS_SUCCESS, found = 0;
        }
        if (s == CUBLAS_STATUS_SUCCESS) mlc_lt_remember(&q, found, &best.algo);
    }
    if (s == CUBLAS_STATUS_SUCCESS && found)
        s = cublasLtMatmul(lt, op, &mlc_one, A, la, B, lb, &mlc_zero, C, lc, C, lc, &best.algo, ws, ws_bytes, stream);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    if (s != CUBLAS_STATUS_SUCCESS || found) return s;
    /* no algorithm for this epilogue and these types: the GEMM, then the epilogue */
    s = mlc_gemm(h, mode == MLC_TF32 ? MLC_FP32 : mode, ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    mlc_bias_act_kernel<<<mlc_grid((long)m * n), MLC_BLOCK, 0, stream>>>(m, n, bias, C, ldc, relu);
    MLC_LAUNCH_CHECK(stream);
    return CUBLAS_STATUS_SUCCESS;
}
