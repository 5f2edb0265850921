/* templates/dist_nccl.c - the CUDA trainer's side of data parallelism, compiled into a
 * trainer built with `mlc build --target cuda --mpi` (it needs nccl.h and libnccl from
 * the CUDA toolkit, and MPI): each rank's GPU, and the gradient all-reduce over NCCL on a
 * stream of its own, bootstrapped through MPI, in buckets while the backward runs
 * (runtime/dist.h, docs/distributed.md).
 *
 * NCCL wants a GPU per rank. Where a node runs more ranks than it has GPUs, or with
 * MLC_NO_NCCL set, the ranks share GPUs round-robin and the gradients go through host
 * memory over MPI (the trainer's read_grads / write_grads path) instead. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, whatever C dialect compiles this */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dist.h"

static ncclComm_t nccl_comm;
static cudaStream_t nccl_stream;

static void nccl_fail(mlcrt_dist *d, const char *what, const char *why)
{
    fprintf(stderr, "rank %d: error: %s %s; stopping all %d ranks\n", d->rank, what, why, d->size);
    if (nccl_comm)
        ncclCommAbort(nccl_comm);
    nccl_comm = NULL;
    d->abort(d, 1);
}

/* Waits, at most --comm-timeout, for everything queued on the NCCL stream, polling the
 * stream and NCCL's asynchronous error so that a dead or hung rank ends the job. */
static void nccl_wait(mlcrt_dist *d, const char *what)
{
    double t0 = MPI_Wtime();
    for (long polls = 0;; polls++) {
        cudaError_t e = cudaStreamQuery(nccl_stream);
        if (e == cudaSuccess)
            break;
        if (e != cudaErrorNotReady)
            nccl_fail(d, what, cudaGetErrorString(e));
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(nccl_comm, &async) != ncclSuccess ||
            (async != ncclSuccess && async != ncclInProgress))
            nccl_fail(d, what, ncclGetErrorString(async));
        if (MPI_Wtime() - t0 > d->timeout_s)
            nccl_fail(d, what, "timed out: no word from the other ranks (--comm-timeout)");
        if (polls > 200) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    d->comm_s += MPI_Wtime() - t0;
}

/* Queues on the NCCL stream the sum of n floats of device memory over the ranks, in
 * place, rank r's times its weight (NCCL's pre-multiplied sum, whose op is kept in
 * *op until the sum is done). */
static void nccl_queue_sum(mlcrt_dist *d, float *dev, int64_t n, float weight, ncclRedOp_t *op, const char *what)
{
    if (ncclRedOpCreatePreMulSum(op, &weight, ncclFloat, ncclScalarHostImmediate, nccl_comm) != ncclSuccess)
        nccl_fail(d, what, "failed in NCCL (ncclRedOpCreatePreMulSum)");
    ncclResult_t r = ncclAllReduce(dev, dev, (size_t)n, ncclFloat, *op, nccl_comm, nccl_stream);
    if (r != ncclSuccess)
        nccl_fail(d, what, ncclGetErrorString(r));
}

/* The whole slab after the backward (--no-overlap, --accum): queued and waited for. */
static int nccl_sum(mlcrt_dist *d, float *dev, int64_t n, float weight, const char *what)
{
    ncclRedOp_t op;
    nccl_queue_sum(d, dev, n, weight, &op, what);
    nccl_wait(d, what);
    ncclRedOpDestroy(op, nccl_comm);
    return 0;
}

/* Overlap: the buckets started while the backward runs, each ordered after the kernels
 * the model had queued on its stream when the bucket became final (an event recorded
 * there, which the NCCL stream waits on), so the NCCL stream sums the front of the slab
 * while the compute stream runs the rest of the backward. Their ops are destroyed, and
 * the events reused, once nccl_finish has waited for them all. */
static ncclRedOp_t *bucket_ops;
static cudaEvent_t *bucket_events;
static int nbuckets, nevents, cap_buckets;

static int nccl_start_sum(mlcrt_dist *d, float *dev, int64_t n, float weight, void *stream)
{
    const char *what = "the gradient all-reduce";
    if (nbuckets == cap_buckets) {
        int cap = cap_buckets ? 2 * cap_buckets : 64;
        ncclRedOp_t *ops = realloc(bucket_ops, (size_t)cap * sizeof *ops);
        if (ops)
            bucket_ops = ops;
        cudaEvent_t *evs = realloc(bucket_events, (size_t)cap * sizeof *evs);
        if (evs)
            bucket_events = evs;
        if (!ops || !evs)
            nccl_fail(d, what, "ran out of memory");
        cap_buckets = cap;
    }
    if (nbuckets == nevents) {
        if (cudaEventCreateWithFlags(&bucket_events[nevents], cudaEventDisableTiming) != cudaSuccess)
            nccl_fail(d, what, "cannot create a CUDA event");
        nevents++;
    }
    cudaEvent_t ev = bucket_events[nbuckets];
    if (cudaEventRecord(ev, (cudaStream_t)stream) != cudaSuccess || cudaStreamWaitEvent(nccl_stream, ev, 0) != cudaSuccess)
        nccl_fail(d, what, "cannot order it after the backward's kernels (CUDA event)");
    nccl_queue_sum(d, dev, n, weight, &bucket_ops[nbuckets++], what);
    return 0;
}

/* Before the update, which the model then queues on its stream: every bucket summed. */
static int nccl_finish(mlcrt_dist *d, const char *what)
{
    nccl_wait(d, what);
    for (int i = 0; i < nbuckets; i++)
        ncclRedOpDestroy(bucket_ops[i], nccl_comm);
    nbuckets = 0;
    return 0;
}

int mlcrt_cuda_setup(mlcrt_dist *d, int local_rank, int local_size)
{
    int gpus = 0;
    if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus < 1) {
        fprintf(stderr, "rank %d: error: no CUDA GPU visible\n", d->rank);
        return -1;
    }
    if (cudaSetDevice(local_rank % gpus) != cudaSuccess) {
        fprintf(stderr, "rank %d: error: cannot use GPU %d\n", d->rank, local_rank % gpus);
        return -1;
    }
    const char *no = getenv("MLC_NO_NCCL");
    int own = local_size <= gpus && !(no && *no), all_own = 0;
    if (MPI_Allreduce(&own, &all_own, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return -1;
    if (!all_own)
        return 0; /* host-staged over MPI */
    ncclUniqueId id;
    ncclResult_t r = d->rank == 0 ? ncclGetUniqueId(&id) : ncclSuccess;
    if (r != ncclSuccess)
        nccl_fail(d, "NCCL's start", ncclGetErrorString(r));
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return -1;
    if ((r = ncclCommInitRank(&nccl_comm, d->size, id, d->rank)) != ncclSuccess)
        nccl_fail(d, "NCCL's start", ncclGetErrorString(r));
    if (cudaStreamCreateWithFlags(&nccl_stream, cudaStreamNonBlocking) != cudaSuccess)
        nccl_fail(d, "NCCL's start", "cannot create its stream");
    d->sum_device_f32 = nccl_sum;
    d->start_sum_device_f32 = nccl_start_sum;
    d->finish_device = nccl_finish;
    return 0;
}
