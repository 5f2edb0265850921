/* tests/compiler/gpu/host_cuda/host_nccl.cpp - the stand-in's NCCL (nccl.h) over MPI: a
 * communicator is a duplicate of MPI_COMM_WORLD, a pre-multiplied sum scales this rank's
 * floats by its weight and sums them over the ranks with MPI_Allreduce, in place. What
 * the real library would refuse or leave undefined stops the program: a buffer outside
 * device memory, a sum not in place, an op not created or already destroyed, ranks that
 * were given different unique ids. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <map>

#include "cuda_runtime.h"
#include "nccl.h"

struct mlc_host_nccl_comm {
    MPI_Comm mpi;
    bool aborted;
};

/* what the ranks summed, printed at exit with MLC_HOST_NCCL_COUNT=1 (so a test knows the
 * NCCL path ran) */
static long sums, floats_summed;
static int my_rank;
static void print_count() {
    fprintf(stderr, "host_nccl: rank %d: %ld sums, %ld floats\n", my_rank, sums, floats_summed);
}

/* the pre-multiplied sums' weights, by op */
static std::map<int, float> weights;
static int next_op = ncclNumOps;

const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "NCCL error (stand-in)"; }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "host-nccl %ld %ld", (long)getpid(), (long)time(NULL));
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int size, me;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != size || rank != me) mlc_host_fail("ncclCommInitRank: rank %d of %d, but MPI has %d of %d", rank, nranks, me, size);
    /* every rank must hold rank 0's id (dist_nccl.c broadcasts it) */
    char first[sizeof id.internal];
    memcpy(first, id.internal, sizeof first);
    MPI_Bcast(first, (int)sizeof first, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (memcmp(first, id.internal, sizeof first)) mlc_host_fail("ncclCommInitRank: rank %d has another unique id than rank 0", me);
    my_rank = me;
    if (getenv("MLC_HOST_NCCL_COUNT") && !strcmp(getenv("MLC_HOST_NCCL_COUNT"), "1")) atexit(print_count);
    *comm = new mlc_host_nccl_comm{MPI_COMM_NULL, false};
    MPI_Comm_dup(MPI_COMM_WORLD, &(*comm)->mpi);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (comm) comm->aborted = true;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async) {
    if (!comm) return ncclInvalidArgument;
    *async = ncclSuccess;
    return ncclSuccess;
}

ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t type,
                                      ncclScalarResidence_t residence, ncclComm_t comm) {
    if (!comm || type != ncclFloat || residence != ncclScalarHostImmediate)
        mlc_host_fail("ncclRedOpCreatePreMulSum: only a float weight given on the host is played");
    weights[next_op] = *(const float *)scalar;
    *op = (ncclRedOp_t)next_op++;
    return ncclSuccess;
}

ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm) {
    (void)comm;
    if (!weights.erase((int)op)) mlc_host_fail("ncclRedOpDestroy: op %d was not created, or was destroyed before", (int)op);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    if (!comm || comm->aborted) mlc_host_fail("ncclAllReduce on a communicator not made or aborted");
    if (type != ncclFloat || send != recv) mlc_host_fail("ncclAllReduce: only an in-place sum of floats is played");
    auto w = weights.find((int)op);
    if (w == weights.end()) mlc_host_fail("ncclAllReduce: op %d is not a live pre-multiplied sum", (int)op);
    cudaStreamCaptureStatus st;
    if (cudaStreamIsCapturing(stream, &st) != cudaSuccess || st != cudaStreamCaptureStatusNone)
        mlc_host_fail("ncclAllReduce on a capturing stream (mlc captures no collective)");
    float *v = (float *)recv;
    sums++, floats_summed += (long)count;
    if (!count) return ncclSuccess;
    mlc_host_check_device(v, "ncclAllReduce");
    mlc_host_check_device(v + count - 1, "ncclAllReduce (its last element)");
    /* the stream runs it now: this rank's part, weighted, then the sum over the ranks */
    for (size_t i = 0; i < count; i++) v[i] *= w->second;
    for (size_t at = 0; at < count; at += (size_t)1 << 28) {
        int c = (int)(count - at < ((size_t)1 << 28) ? count - at : (size_t)1 << 28);
        if (MPI_Allreduce(MPI_IN_PLACE, v + at, c, MPI_FLOAT, MPI_SUM, comm->mpi) != MPI_SUCCESS)
            return ncclSystemError;
    }
    return ncclSuccess;
}
