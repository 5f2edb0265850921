/* data.h - in-memory classification datasets and batch assembly for the trainer.
 *
 * A dataset is n samples of sample_numel floats (x, row-major [n, sample...]) with int32
 * labels y in [0, classes). Loading checks that images and labels agree in count, that
 * the image size matches what the model expects and that every label is in range. A
 * language model's token windows travel in the same struct (its `text` member,
 * text_data.h), so the trainer's loop, loader and evaluation serve both. */
#ifndef MLCRT_DATA_H
#define MLCRT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mlc_model.h"

typedef struct mlc_dataset {
    int64_t n;       /* samples */
    int sample_rank; /* 2 for [rows, cols] images */
    int64_t sample_dims[MLC_MAX_RANK];
    int64_t sample_numel; /* floats per sample */
    float *x;             /* [n, sample_numel] */
    int32_t *y;           /* [n] */
    int classes;          /* labels are < classes (0: unchecked) */
    /* A token split (text_data.h) instead of images: samples are windows of
     * sample_numel tokens, their labels the next sample_numel tokens; x and y are NULL. */
    struct mlcrt_text *text;
    /* For messages: the image file read (malloc'ed; NULL for tokens) and the byte of its
     * header's rows field (-1 for CIFAR, which has no header). */
    char *image_file;
    int64_t rows_byte;
} mlc_dataset;

/* dir/name into out (cap bytes), without a second '/' when dir ends in one. */
void mlcrt_join_path(char *out, size_t cap, const char *dir, const char *name);

/* i32 labels per sample in a batch: 1, or a token window's T targets. */
int64_t mlcrt_dataset_label_numel(const mlc_dataset *ds);

/* Samples [lo, hi) of ds as *view, sharing ds's memory (valid while ds is; never freed):
 * a shard or a held-out part. A token split's view needs a struct of its own, *text,
 * which the caller provides (NULL is fine for images). */
void mlcrt_dataset_view(const mlc_dataset *ds, int64_t lo, int64_t hi, mlc_dataset *view, struct mlcrt_text *text);

/* Loads an IDX image file and its label file. expect_numel > 0: values per image the
 * model expects; classes > 0: labels must be below it; limit > 0: keep only the first
 * `limit` samples (the counts of the two files must still agree). */
int mlcrt_dataset_load_files(mlc_dataset *ds, const char *images_path, const char *labels_path, int64_t expect_numel,
                             int classes, int64_t limit, char *msg, size_t cap);

/* Loads split "train" or "t10k" of a directory in MNIST layout:
 * DIR/SPLIT-images-idx3-ubyte[.gz] and DIR/SPLIT-labels-idx1-ubyte[.gz]; a file present
 * both raw and as .gz is refused (which one is meant is not known). */
int mlcrt_dataset_load_dir(mlc_dataset *ds, const char *dir, const char *split, int64_t expect_numel, int classes,
                           int64_t limit, char *msg, size_t cap);

void mlcrt_dataset_free(mlc_dataset *ds);

/* CIFAR binary batches: each file is a sequence of records of label_bytes label bytes
 * (1 for CIFAR-10; 2 for CIFAR-100: coarse then fine, the fine label is used) and 3072
 * pixel bytes (3 x 32 x 32, channel-major as stored), scaled to [0,1]. The files are
 * concatenated in order, and must hold as many records each (a file with fewer was cut
 * short); limit > 0 keeps the first `limit` samples. expect_numel and classes are
 * checked as for IDX (the offending file, byte and sample are named). */
int mlcrt_cifar_load(mlc_dataset *ds, const char *const *paths, int npaths, int label_bytes, int64_t expect_numel,
                     int classes, int64_t limit, char *msg, size_t cap);

typedef enum mlcrt_data_format {
    MLCRT_DATA_MNIST = 0,   /* IDX files in MNIST layout (MNIST, EMNIST, Fashion-MNIST) */
    MLCRT_DATA_CIFAR10 = 1, /* data_batch_1.bin .. data_batch_5.bin, test_batch.bin */
    MLCRT_DATA_CIFAR100 = 2 /* train.bin, test.bin */
} mlcrt_data_format;

/* Recognises the layout of dir (MNIST if train-images-idx3-ubyte[.gz] exists, else
 * CIFAR-10 if data_batch_1.bin does, else CIFAR-100 if train.bin does). */
/* 1 when path is an existing file that --data DIR's formats read from dir (an MNIST-layout
 * IDX file, a CIFAR batch, a token corpus's train.bin or val.bin), so that an output
 * given that name would overwrite the data. */
int mlcrt_data_file_of(const char *dir, const char *path);

int mlcrt_data_detect(const char *dir, mlcrt_data_format *fmt, char *msg, size_t cap);
/* Loads the training (test = 0) or test (test = 1) split of dir, whatever its layout. */
int mlcrt_dataset_load_auto(mlc_dataset *ds, const char *dir, int test, int64_t expect_numel, int classes,
                            int64_t limit, char *msg, size_t cap);

/* Whether the samples' image dimensions fit model input `in`: equal element counts are
 * not enough when the input has a shape (rank 2 or more): its last two dimensions must
 * be the images' rows and columns, so that [N, 14, 56] images do not feed a [1, 28, 28]
 * input. A rank-1 input takes any image of its size, flattened. MLCRT_EMISMATCH with
 *   WHERE: the images are 14 x 56, model input 'image' (f32[1, 28, 28]) expects 28 x 28
 * (where: the data's directory or file). */
int mlcrt_dataset_check_dims(const mlc_dataset *ds, const mlc_io_desc *in, const char *where, char *msg, size_t cap);

/* Whether the test split's images have the training split's shape (rows, columns,
 * channels): a rank-1 input takes any image of its size, but a model trained on 28 x 28
 * images measures nothing on 14 x 56 ones. MLCRT_EMISMATCH with
 *   FILE: byte 8: the images are 14 x 56, the training images (FILE) 28 x 28
 * MLCRT_OK for token splits and for samples without rows and columns. */
int mlcrt_dataset_check_like(const mlc_dataset *test, const mlc_dataset *train, char *msg, size_t cap);

/* predict's images: an IDX file [n, rows, cols] or [n, channels, rows, cols] (u8) for
 * model input `in`, whose per-sample shape it must have: a [C, H, W] input with C > 1
 * takes only the 4-dimensional form, [H, W] or [1, H, W] either, a flat [K] input any
 * image of K values. Each refusal names the file and the byte of the field at fault. */
int mlcrt_dataset_load_images(mlc_dataset *ds, const char *path, const mlc_io_desc *in, char *msg, size_t cap);

/* Channels of a sample: sample_dims[0] for rank-3 (C, H, W) samples, otherwise 1. */
int mlcrt_dataset_channels(const mlc_dataset *ds);
/* x' = (x - mean[c]) / std[c] in place, c the sample's channel; n is 1 (all channels) or
 * the channel count. MLCRT_EARG with a message when n fits neither or a std is <= 0. */
int mlcrt_dataset_normalize(mlc_dataset *ds, int n, const float *mean, const float *std, char *msg, size_t cap);

/* On-the-fly augmentation of training samples. */
typedef struct mlcrt_augment {
    int crop_pad;       /* > 0: random crop of the original size from the image zero-padded by
                   * crop_pad pixels on every side (shifts in [-pad, pad] both ways) */
    int flip;           /* horizontal flip with probability 1/2 */
    float pad_value[4]; /* value of a padded pixel per channel: 0 mapped through the
                         * normalisation, (0 - mean) / std (set by the trainer) */
} mlcrt_augment;

/* Parses "crop:N,flip" (either part alone, or "none"); 0 or MLCRT_EARG with
 * msg "expected crop:N, flip or none, found 'X'". */
int mlcrt_augment_parse(const char *spec, mlcrt_augment *aug, char *msg, size_t cap);

/* mlcrt_batch_gather, then (aug not NULL and active) augments each sample: its shifts and
 * flip are drawn from Philox with the key derived from seed and the counter from
 * (dataset index of the sample, epoch), so they depend on nothing else (not on the batch
 * size, the position in the batch or threads). A token dataset's windows are gathered
 * instead (mlcrt_text_gather, seeded alike; no augmentation): bx receives int32 ids. */
void mlcrt_batch_gather_aug(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, void *bx, int32_t *by,
                            const mlcrt_augment *aug, uint64_t seed, uint64_t epoch);

/* Copies samples perm[start .. start+n) (or start .. start+n when perm is NULL) into
 * contiguous batch buffers bx [n, sample_numel] and by [n]. */
void mlcrt_batch_gather(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, float *bx, int32_t *by);

#endif
