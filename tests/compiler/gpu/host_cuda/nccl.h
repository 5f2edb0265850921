/* tests/compiler/gpu/host_cuda/nccl.h - NCCL as the CPU stand-in plays it (host_nccl.cpp):
 * the calls templates/dist_nccl.c makes, over MPI, on the stand-in's device memory, so
 * that a CUDA trainer built with --mpi runs its NCCL path under mpirun on a machine
 * without GPUs. C and C++ alike. */
#ifndef MLC_HOST_NCCL_H
#define MLC_HOST_NCCL_H

#include <stddef.h>

#include "cuda_runtime_api.h"

typedef enum ncclResult_t {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7
} ncclResult_t;
typedef enum ncclDataType_t { ncclFloat32 = 7, ncclFloat = 7 } ncclDataType_t;
typedef enum ncclRedOp_t { ncclSum = 0, ncclNumOps = 5, ncclMaxRedOp = 0x7fffffff } ncclRedOp_t;
typedef enum ncclScalarResidence_t { ncclScalarDevice = 0, ncclScalarHostImmediate = 1 } ncclScalarResidence_t;
typedef struct mlc_host_nccl_comm *ncclComm_t;
typedef struct ncclUniqueId {
    char internal[128];
} ncclUniqueId;

#ifdef __cplusplus
extern "C" {
#endif
const char *ncclGetErrorString(ncclResult_t r);
ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async);
ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t type,
                                      ncclScalarResidence_t residence, ncclComm_t comm);
ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
#ifdef __cplusplus
}
#endif

#endif
