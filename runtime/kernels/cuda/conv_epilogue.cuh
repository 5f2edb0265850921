/* conv_epilogue.cuh - a convolution's epilogue steps (mlc_conv_epilogue, mlc_conv_tiles.h)
 * as CUDA code, for the kernels that run them on each result as they store it: the
 * implicit-GEMM convolutions' (conv_implicit.cu) and the kernel that widens cuDNN's bf16
 * results into floats (conv_cudnn.cu). One definition, so both compute what the fused
 * kernel the compiler would otherwise launch after the op computes. */
#ifndef MLC_CONV_EPILOGUE_CUH
#define MLC_CONV_EPILOGUE_CUH

#include "../mlc_conv_tiles.h"
#include "../mlc_kernels_cuda.h"

/* One step's op on r, operand x */
static __device__ __forceinline__ float mlc_epi_op(int op, float r, float x) {
    switch (op) {
    case MLC_EPI_ADD: return r + x;
    case MLC_EPI_SUB: return r - x;
    case MLC_EPI_RSUB: return x - r;
    case MLC_EPI_MUL: return r * x;
    case MLC_EPI_MUL_STEP: return r * (x > 0.0f ? 1.0f : 0.0f);
    case MLC_EPI_RELU: return r > 0.0f ? r : 0.0f;
    case MLC_EPI_ROUND_BF16: return mlc_round_bf16(r);
    default: return x; /* MLC_EPI_LOAD */
    }
}

/* v through the epilogue's steps: o, v's channel; at, its index in the output. */
static __device__ __forceinline__ float mlc_epi_apply(const mlc_conv_epilogue &ep, float v, int o, long at) {
    float q = 0.0f;
    for (int k = 0; k < ep.n; k++) {
        const mlc_conv_epi_step &st = ep.step[k];
        const float x = st.p ? st.p[st.per_channel ? (long)o : at] : q;
        if (st.q) q = mlc_epi_op(st.op, q, x);
        else v = mlc_epi_op(st.op, v, x);
    }
    return v;
}

/* The epilogue a launcher passes its kernel by value: ep, or none for NULL. */
static inline mlc_conv_epilogue mlc_epi_arg(const mlc_conv_epilogue *ep) {
    mlc_conv_epilogue none;
    none.n = 0;
    if (!ep) return none;
    if (ep->n < 0 || ep->n > MLC_EPI_MAX) {
        fprintf(stderr, "mlc: a convolution epilogue of %d steps (at most %d)\n", ep->n, (int)MLC_EPI_MAX);
        abort();
    }
    return *ep;
}

#endif
