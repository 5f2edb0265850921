/* gemm_lt.cu - a GEMM with its bias, or bias and ReLU, in cuBLASLt's epilogue
 * (--cublaslt: mlc_kernels_cuda.h), so that the output is written once instead of written,
 * read and written again by an elementwise kernel. Where cuBLASLt has no algorithm for
 * the operands' types and the epilogue, the same values come from mlc_gemm and a bias
 * kernel of our own. */
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
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t best;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulDescCreate(&op, compute, CUDA_R_32F);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_TRANSA, opa);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_TRANSB, opb);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    if (s == CUBLAS_STATUS_SUCCESS) s = MLC_LT_SET(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    /* column-major layouts: op(A) is m x k, op(B) k x n */
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&la, t, ta ? k : m, ta ? m : k, lda);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&lb, t, tb ? n : k, tb ? k : n, ldb);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, m, n, ldc);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceCreate(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_size,
                                                 sizeof ws_size);
    /* the heuristic's first choice: the same for the same shapes on the same GPU, so the
     * same algorithm every run (its split-K reductions, if any, add in a fixed order) */
    if (s == CUBLAS_STATUS_SUCCESS) {
        s = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &best, &found);
        if (s == CUBLAS_STATUS_NOT_SUPPORTED) s = CUBLAS_STATUS_SUCCESS, found = 0;
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
