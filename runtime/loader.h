/* loader.h - a background thread that assembles the next training batch (gather,
 * augmentation) while the current step runs. It computes exactly what
 * mlcrt_batch_gather_aug computes on the calling thread, so prefetching never changes
 * results. */
#ifndef MLCRT_LOADER_H
#define MLCRT_LOADER_H

#include <stdint.h>

#include "data.h"

typedef struct mlcrt_loader mlcrt_loader;

/* Starts the thread; NULL when it cannot be started (the caller then gathers inline). */
mlcrt_loader *mlcrt_loader_start(void);
/* Hands the thread one batch to assemble (the arguments of mlcrt_batch_gather_aug); at
 * most one job is outstanding. Everything pointed to must stay valid until _wait. */
void mlcrt_loader_post(mlcrt_loader *l, const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, void *bx,
                       int32_t *by, const mlcrt_augment *aug, uint64_t seed, uint64_t epoch);
/* Waits until the posted batch is complete (returns at once when none is pending). */
void mlcrt_loader_wait(mlcrt_loader *l);
/* Waits for any pending job, stops and joins the thread, frees l (NULL is fine). */
void mlcrt_loader_stop(mlcrt_loader *l);

#endif
