/* data.h - in-memory classification datasets and batch assembly for the trainer.
 *
 * A dataset is n samples of sample_numel floats (x, row-major [n, sample...]) with int32
 * labels y in [0, classes). Loading checks that images and labels agree in count, that
 * the image size matches what the model expects and that every label is in range. */
#ifndef MLCRT_DATA_H
#define MLCRT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mlc_model.h"

typedef struct mlc_dataset {
    int64_t n;                              /* samples */
    int sample_rank;                        /* 2 for [rows, cols] images */
    int64_t sample_dims[MLC_MAX_RANK];
    int64_t sample_numel;                   /* floats per sample */
    float *x;                               /* [n, sample_numel] */
    int32_t *y;                             /* [n] */
    int classes;                            /* labels are < classes (0: unchecked) */
} mlc_dataset;

/* Loads an IDX image file and its label file. expect_numel > 0: values per image the
 * model expects; classes > 0: labels must be below it; limit > 0: keep only the first
 * `limit` samples (the counts of the two files must still agree). */
int mlcrt_dataset_load_files(mlc_dataset *ds, const char *images_path,
                             const char *labels_path, int64_t expect_numel, int classes,
                             int64_t limit, char *msg, size_t cap);

/* Loads split "train" or "t10k" of a directory in MNIST layout:
 * DIR/SPLIT-images-idx3-ubyte[.gz] and DIR/SPLIT-labels-idx1-ubyte[.gz] (the .gz name is
 * tried first). */
int mlcrt_dataset_load_dir(mlc_dataset *ds, const char *dir, const char *split,
                           int64_t expect_numel, int classes, int64_t limit, char *msg,
                           size_t cap);

void mlcrt_dataset_free(mlc_dataset *ds);

/* Copies samples perm[start .. start+n) (or start .. start+n when perm is NULL) into
 * contiguous batch buffers bx [n, sample_numel] and by [n]. */
void mlcrt_batch_gather(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n,
                        float *bx, int32_t *by);

#endif
