/* dist.h - what the trainer needs from a data-parallel communicator (docs/distributed.md).
 *
 * libmlcrt holds no MPI: a trainer built with `mlc build --mpi` also links libmlcrt_mpi
 * (dist_mpi.c), whose mlcrt_mpi_main fills an mlcrt_dist over MPI_COMM_WORLD and calls
 * mlcrt_main_dist. A trainer built without it runs with no communicator (dist NULL) and
 * needs no MPI installed.
 *
 * Every collective is bounded: a rank that has heard nothing from the others for
 * timeout_s seconds prints a message naming itself and what it waited for, and ends the
 * whole job (abort), so a dead or hung rank never leaves the others waiting forever. */
#ifndef MLCRT_DIST_H
#define MLCRT_DIST_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"
#include "mlc_model.h"

typedef struct mlcrt_dist {
    int rank, size;
    /* How long a collective may wait for the other ranks (--comm-timeout). */
    double timeout_s;
    /* Seconds spent in collectives so far: communication the computation did not hide,
     * and waiting for slower ranks. */
    double comm_s;
    /* Sums n values over the ranks in place; every rank gets the same bits. `what` names
     * the collective in a timeout message ("the gradient all-reduce"). 0 on success; on a
     * failure the job ends before this returns. */
    int (*sum_f32)(struct mlcrt_dist *d, float *v, int64_t n, const char *what);
    int (*sum_f64)(struct mlcrt_dist *d, double *v, int64_t n, const char *what);
    /* Starts summing n floats over the ranks in place and returns at once (a bucket of
     * the gradient slab, while the backward runs); `finish` waits (bounded) for every
     * sum started. Every rank must start the same sequence of sums. */
    int (*start_sum_f32)(struct mlcrt_dist *d, float *v, int64_t n);
    int (*finish)(struct mlcrt_dist *d, const char *what);
    /* Each rank's v, in rank order, into all[size] on every rank. */
    int (*gather_u64)(struct mlcrt_dist *d, uint64_t v, uint64_t *all, const char *what);
    /* Rank 0 writes every rank's n bytes of text to out, in rank order (the others' out
     * is unused): a sharded predict's lines in the original order. */
    int (*gather_text)(struct mlcrt_dist *d, const char *text, size_t n, FILE *out, const char *what);
    /* Sums n floats of device memory (a CUDA model's gradient slab, api->grads) over the
     * ranks in place, each rank's multiplied by its `weight` first; NULL where the
     * gradients go through host memory (the C target; CUDA ranks sharing a GPU). Set by
     * the CUDA trainer's NCCL setup (templates/dist_nccl.c). */
    int (*sum_device_f32)(struct mlcrt_dist *d, float *dev, int64_t n, float weight, const char *what);
    /* The same for one bucket while the backward runs, returning at once: queued after
     * the work already queued on `stream` (the model's, api->device_stream);
     * finish_device waits (bounded) for every sum started. Set with sum_device_f32. */
    int (*start_sum_device_f32)(struct mlcrt_dist *d, float *dev, int64_t n, float weight, void *stream);
    int (*finish_device)(struct mlcrt_dist *d, const char *what);
    /* Ends every rank of the job now with `status`: for a fault only this rank saw
     * (after its message). Does not return. */
    void (*abort)(struct mlcrt_dist *d, int status);
    /* Where the trainer writes this rank's command-line errors (trainer.c): held until
     * the start-up agreement, where each different message is printed once
     * (mlcrt_dist_join_failed). NULL: rank 0's go to err, the others' nowhere. */
    FILE *cli_err;
    /* 1 once this rank has taken part in the start-up agreement, having started or not. */
    int joined_start;
} mlcrt_dist;

/* mlcrt_main_io for one rank of a data-parallel job: --batch is the global batch, split
 * over d->size ranks; rank 0 alone writes to out, logs and checkpoints. err gets every
 * rank's errors (dist_mpi.c prefixes them with the rank). */
int mlcrt_main_dist(int argc, char **argv, const mlc_model_api *api, mlcrt_dist *d, FILE *out, FILE *err);

/* The trainer of a `mlc build --mpi` binary (templates/trainer_main.c calls it): MPI_Init,
 * setup_device(d, the rank's index among the ranks of its node, their count) when not
 * NULL (a CUDA trainer: its GPU and NCCL; nonzero: it failed, after a message),
 * mlcrt_main_dist over MPI_COMM_WORLD, MPI_Finalize. In libmlcrt_mpi. */
int mlcrt_mpi_main(int argc, char **argv, const mlc_model_api *api,
                   int (*setup_device)(mlcrt_dist *d, int local_rank, int local_size));
/* The CUDA trainer's setup_device (templates/dist_nccl.c, compiled into the trainer). */
int mlcrt_cuda_setup(mlcrt_dist *d, int local_rank, int local_size);

/* Every rank says whether its part worked (ok), then the ranks compare their weights'
 * checksums (persistent tensors and optimizer step). 0 when all worked and agree;
 * otherwise -1 on every rank, after rank 0 has printed which rank failed or differs
 * `when` ("after epoch 3"; a failure "at the start"). A collective: every rank calls it.
 * Rank 0 names a failed rank only when it has not failed itself (its own message says
 * why then). */
int mlcrt_dist_agree(mlcrt_dist *d, int ok, const mlc_model_api *api, void *model, const char *when, FILE *err);

struct trainer_opts;      /* trainer_flags.h */
struct mlcrt_train_state; /* ckpt.h */

/* The start-up agreement, before a rank's first collective in any mode: mlcrt_dist_agree
 * "at the start", and between its two rounds the ranks compare the settings that shape
 * the run (the sequence of collectives included): the mode, the model, every flag of
 * settings.def but the per-rank ones, and the data's figures (docs/distributed.md
 * lists them). A rank whose settings differ from rank 0's stops every rank, rank 0
 * naming the first that differs:
 *   rank 1's --batch (32) differs from rank 0's (64); stopping all 2 ranks
 * o: this rank's options (after a checkpoint's normalisation is adopted); train: the
 * training split (its size after --val, its sample shape and labels), or NULL;
 * eval_set: the test split, predict's images, or NULL; resumed: train's starting point
 * (epoch, sample, data seed), or NULL; model: NULL where no weights are compared (sample
 * mode, --help). Only ok ranks need any of them. */
int mlcrt_dist_agree_start(mlcrt_dist *d, int ok, const struct trainer_opts *o, const mlc_dataset *train,
                           const mlc_dataset *eval_set, const struct mlcrt_train_state *resumed,
                           const mlc_model_api *api, void *model, FILE *err);

/* For a rank that stops before the start-up agreement (its command line, data that does
 * not load): takes part in it as failed, so that the others stop too instead of waiting
 * for it. held: a message not printed yet (a bad command line's, d->cli_err's), or
 * NULL: the lowest rank holding a given message prints it, so N ranks given the same
 * bad command line print it once. */
void mlcrt_dist_join_failed(mlcrt_dist *d, const char *held, FILE *err);

/* Makes the ranks' state tensors (not parameters) the same again: one that differs across
 * ranks (batch norm's running statistics, which each rank updates from its own samples)
 * becomes its mean over the ranks; one that does not (optimizer state) is left alone.
 * Running statistics are moving averages, linear in the batch statistics, so their mean
 * is the moving average of the ranks' mean statistics. A collective; 0 on success.
 * kept (api->n_tensors entries, or NULL): receives each averaged tensor's own values
 * (NULL for the others), for mlcrt_dist_restore_state to put back: a save or an
 * evaluation inside an epoch then leaves the training as it was, so that a run's bits do
 * not depend on how often it saved or evaluated. */
int mlcrt_dist_sync_state(mlcrt_dist *d, const mlc_model_api *api, void *model, float **kept, FILE *err);
/* Writes back and frees what mlcrt_dist_sync_state kept; not a collective. */
void mlcrt_dist_restore_state(const mlc_model_api *api, void *model, float **kept);

/* mlcrt_evaluate (trainer.h) with each rank taking a contiguous shard of ds
 * (mlcrt_dist_slice) and the results summed over the ranks: a classifier's correct
 * count exactly, a loss weighted by the shards' sizes. d NULL: mlcrt_evaluate. */
double mlcrt_dist_evaluate(mlcrt_dist *d, const mlc_model_api *api, void *model, const mlc_dataset *ds, int batch);

/* Sums n counts over the ranks in place (as doubles: exact below 2^53); 0 on success. */
int mlcrt_dist_sum_counts(mlcrt_dist *d, int64_t *v, int64_t n, const char *what);

/* Overlap: the gradient slab all-reduced in buckets as the backward finishes them
 * (api->set_grad_ready). Buckets are fixed runs of MLCRT_BUCKET floats from the slab's
 * start (the last one shorter), so every rank starts the same sums whatever it computes.
 * Each is multiplied by the rank's weight (its share of the step's samples) first: on
 * the host for a C model (start_sum_f32); for a CUDA model (stream set: its slab is in
 * device memory) by NCCL, on its stream (start_sum_device_f32). */
#define MLCRT_BUCKET ((int64_t)1 << 14)
typedef struct mlcrt_overlap {
    mlcrt_dist *d;
    float *slab;
    int64_t total, launched;
    float weight;
    void *stream; /* a CUDA model's stream; NULL: a host slab */
} mlcrt_overlap;
/* The set_grad_ready callback: starts every whole bucket below `done` (all that is left
 * when done == total). ctx: the mlcrt_overlap. */
void mlcrt_overlap_ready(void *ctx, int64_t done);
/* Before a forward_backward whose gradient has `weight`; empty: this rank has no samples
 * in the step, so its slab is zeroed (a host slab; the caller zeroes a device one) and
 * forward_backward is not called. stream: NULL, or a CUDA model's (device slab). */
void mlcrt_overlap_begin(mlcrt_overlap *ov, mlcrt_dist *d, float *slab, int64_t total, float weight, int empty,
                         void *stream);
/* After it: starts what the callback has not (all of an empty rank's slab). The sums
 * are complete after d->finish. */
void mlcrt_overlap_end(mlcrt_overlap *ov);

/* --sync-bn: batch norm's figures combined over the ranks (api->set_batch_sync). The
 * trainer sets weight, the rank's share of the micro-batch's samples, before each
 * forward_backward; a rank without samples runs one with weight 0, so that every rank
 * makes the same collectives. Combined in double: the global mean is the weighted sum of
 * the ranks' means, the global variance the weighted sum of each rank's variance plus its
 * mean's squared distance from the global one (two all-reduces, so no E[x^2] - mean^2
 * cancellation); the backward's sums are weighted sums. Every rank gets the same bits. */
typedef struct mlcrt_batch_sync {
    mlcrt_dist *d;
    double weight;
} mlcrt_batch_sync;
/* The set_batch_sync callback; ctx: the mlcrt_batch_sync. */
void mlcrt_batch_sync_ready(void *ctx, float *v, int64_t n, int moments);

/* The samples [lo, hi) of a global batch of n that `rank` of `size` takes: contiguous
 * slices in rank order whose sizes differ by at most one, the larger ones last (rank r
 * starts at floor(n * r / size)). */
static inline void mlcrt_dist_slice(int64_t n, int rank, int size, int64_t *lo, int64_t *hi) {
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

#endif
