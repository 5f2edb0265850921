/* idx.h - reader for IDX files (the MNIST / Fashion-MNIST format), gzipped or raw.
 *
 * An IDX file is: 0x00 0x00 <type> <ndims>, then ndims big-endian u32 sizes, then the
 * data. Only type 0x08 (unsigned byte) is accepted. The reader checks the magic, the
 * dimension count, dimension sizes (non-zero, no overflow), that the data is complete
 * and that nothing follows it. Byte offsets in messages are 0-based offsets into the
 * uncompressed stream. */
#ifndef MLCRT_IDX_H
#define MLCRT_IDX_H

#include <stddef.h>
#include <stdint.h>

#define MLCRT_IDX_MAX_DIMS 8

typedef struct mlcrt_idx {
    int ndims;
    int64_t dims[MLCRT_IDX_MAX_DIMS];
    int64_t nbytes; /* product of dims */
    uint8_t *data;  /* nbytes bytes, malloc'ed */
} mlcrt_idx;

/* Reads a u8 IDX file with exactly expect_ndims dimensions (any count when <= 0).
 * On success fills *out (free with mlcrt_idx_free) and returns MLCRT_OK. */
int mlcrt_idx_read(const char *path, int expect_ndims, mlcrt_idx *out, char *msg, size_t cap);
void mlcrt_idx_free(mlcrt_idx *idx);

/* Reads an image file ([n, rows, cols] u8) and converts the first `limit` images (all
 * when limit <= 0) to floats x/255 in [0,1]. *x is [*n, rows*cols], malloc'ed; *in_file
 * (may be NULL) receives the image count of the file. When expect_numel > 0 the image
 * size must equal it. */
int mlcrt_idx_load_images(const char *path, int64_t limit, int64_t expect_numel, float **x, int64_t *n,
                          int64_t *in_file, int64_t *rows, int64_t *cols, char *msg, size_t cap);
/* The first `limit` images (all when limit <= 0) of idx, read from path, as floats x/255
 * in [0,1]: *x is [*n, the product of dims 1..], malloc'ed. */
int mlcrt_idx_images_to_floats(const char *path, const mlcrt_idx *idx, int64_t limit, float **x, int64_t *n, char *msg,
                               size_t cap);
/* Reads a label file ([n] u8) into int32 (first `limit` labels; all when limit <= 0).
 * When classes > 0 every label in the file must be < classes. */
int mlcrt_idx_load_labels(const char *path, int64_t limit, int classes, int32_t **y, int64_t *n, int64_t *in_file,
                          char *msg, size_t cap);

#endif
