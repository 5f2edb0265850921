/* mlc_kernels_cudnn.h - convolutions through cuDNN (cuda/conv_cudnn.cu, --conv-algo cudnn):
 * its own header, so that a CUDA model that does not use cuDNN neither includes cudnn.h
 * nor links libcudnn (a toolkit may come without it). NCHW, the geometry of mlc_geom.h;
 * cuDNN's legacy convolution calls, each with the first algorithm cuDNN's heuristic ranks
 * for the layer that is deterministic and whose workspace fits, so the same algorithm
 * every run on the same GPU (the heuristic is asked once per layer shape and remembered).
 * mode (mlc_kernels_cuda.h): MLC_FP32 (FP32 FMAs: CUDNN_FMA_MATH), MLC_TF32 (TF32 tensor
 * cores allowed), or the bf16 modes: bf16 x, w and y with FP32 sums on the tensor cores,
 * the bf16 output (rounded once, as mlc rounds every convolution's output under
 * --precision bf16) widened into the float output through the epilogue. A layer for which
 * no algorithm qualifies, or a bf16 call whose workspace cannot hold its bf16 tensors,
 * runs the implicit-GEMM kernels (mlc_kernels_cuda.h) instead, the same on every run.
 * ws: ws_bytes of workspace; in the bf16 modes it holds the output's bf16 values and, for
 * MLC_BF16_VALUES, the operands' bf16 copies first (compiler/targets/cuda/conv.c plans
 * them), cuDNN's own after. */
#ifndef MLC_KERNELS_CUDNN_H
#define MLC_KERNELS_CUDNN_H

#include <cudnn.h>

#include "mlc_kernels_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = conv(x, w), then epilogue ep (NULL: none). Floats: an epilogue must have cuDNN's
 * fused form (mlc_conv_epi_cudnn, mlc_conv_tiles.h): a per-channel add (the bias),
 * optionally an add of a tensor of y's shape (z, which may be y itself), in either order,
 * then optionally a ReLU; it runs as cudnnConvolutionBiasActivationForward's y = act(conv
 * + z + bias). bf16: any epilogue, run as the output is widened. */
void mlc_cuda_conv2d_fwd_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const void *x,
                               const void *w, float *y, const mlc_conv_epilogue *ep, void *ws, size_t ws_bytes,
                               int mode);
/* dx = the input gradient of dy, then epilogue ep (bf16 only; NULL: none). */
void mlc_cuda_conv2d_bwd_data_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                    const void *dy, const void *w, float *dx, const mlc_conv_epilogue *ep, void *ws,
                                    size_t ws_bytes, int mode);
/* dw = the weight gradient of dy over the batch. */
void mlc_cuda_conv2d_bwd_filter_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                      const void *x, const void *dy, float *dw, void *ws, size_t ws_bytes, int mode);

#ifdef __cplusplus
}
#endif

#endif
