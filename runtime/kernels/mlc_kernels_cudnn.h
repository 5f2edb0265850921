/* mlc_kernels_cudnn.h - convolutions through cuDNN (cuda/conv_cudnn.cu, --conv-algo cudnn):
 * its own header, so that a CUDA model that does not use cuDNN neither includes cudnn.h
 * nor links libcudnn (a toolkit may come without it). NCHW floats, the geometry of
 * mlc_geom.h; cuDNN's legacy convolution calls, each with the first algorithm cuDNN's
 * heuristic ranks for the layer that is deterministic and whose workspace fits ws_bytes,
 * so the same algorithm every run on the same GPU (the heuristic is asked once per layer
 * shape and remembered). mode: MLC_FP32 (FP32 FMAs: CUDNN_FMA_MATH) or MLC_TF32 (TF32
 * tensor cores allowed); the bf16 modes, and a layer for which no algorithm qualifies,
 * run the implicit-GEMM kernels (mlc_kernels_cuda.h) instead, the same on every run. */
#ifndef MLC_KERNELS_CUDNN_H
#define MLC_KERNELS_CUDNN_H

#include <cudnn.h>

#include "mlc_kernels_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = conv(x, w), then epilogue ep (NULL: none). An epilogue must have cuDNN's fused form
 * (mlc_conv_epi_cudnn, mlc_conv_tiles.h): a per-channel add (the bias), optionally an add
 * of a tensor of y's shape (z, which may be y itself), in either order, then optionally a
 * ReLU; it runs as cudnnConvolutionBiasActivationForward's y = act(conv + z + bias). */
void mlc_cuda_conv2d_fwd_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B, const float *x,
                               const float *w, float *y, const mlc_conv_epilogue *ep, void *ws, size_t ws_bytes,
                               int mode);
/* dx = the input gradient of dy. */
void mlc_cuda_conv2d_bwd_data_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                    const float *dy, const float *w, float *dx, void *ws, size_t ws_bytes, int mode);
/* dw = the weight gradient of dy over the batch. */
void mlc_cuda_conv2d_bwd_filter_cudnn(cudnnHandle_t h, cudaStream_t stream, const mlc_conv_geom *g, long B,
                                      const float *x, const float *dy, float *dw, void *ws, size_t ws_bytes, int mode);

#ifdef __cplusplus
}
#endif

#endif
