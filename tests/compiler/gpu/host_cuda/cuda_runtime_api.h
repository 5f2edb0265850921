/* tests/compiler/gpu/host_cuda/cuda_runtime_api.h - the part of the CPU stand-in for the
 * CUDA runtime (cuda_runtime.h) that C can include too: its types, and the calls a C
 * source makes (templates/dist_nccl.c, a CUDA trainer's NCCL side, compiled as C as
 * nvcc compiles it), which therefore have C linkage. */
#ifndef MLC_HOST_CUDA_RUNTIME_API_H
#define MLC_HOST_CUDA_RUNTIME_API_H

#include <stddef.h>

typedef enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNotReady = 600,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
} cudaError_t;
typedef cudaError_t cudaError;
typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
} cudaMemcpyKind;
typedef enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
} cudaStreamCaptureMode;
typedef enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1
} cudaStreamCaptureStatus;
typedef struct mlc_host_stream *cudaStream_t;
typedef struct mlc_host_graph *cudaGraph_t;
typedef struct mlc_host_graph *cudaGraphExec_t;
typedef struct mlc_host_event *cudaEvent_t;
#define cudaEventDisableTiming 2
#define cudaStreamNonBlocking 1

#ifdef __cplusplus
extern "C" {
#endif
const char *cudaGetErrorString(cudaError_t e);
/* MLC_HOST_GPUS (default 1): how many GPUs the stand-in says there are, so that ranks
 * under mpirun take the NCCL path (one GPU each) or share (docs/distributed.md) */
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
/* Streams run their work as it is queued: a stream is never busy (a capturing one
 * refuses the query, as a real one does), an event has always passed */
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
#ifdef __cplusplus
}
#endif

#endif
