/* data.c - dataset loading (MNIST directory layout) and batch assembly (see data.h). */
#include "data.h"

#include "idx.h"
#include "mlcrt_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mlcrt_dataset_free(mlc_dataset *ds)
{
    if (!ds)
        return;
    free(ds->x);
    free(ds->y);
    memset(ds, 0, sizeof *ds);
}

int mlcrt_dataset_load_files(mlc_dataset *ds, const char *images_path,
                             const char *labels_path, int64_t expect_numel, int classes,
                             int64_t limit, char *msg, size_t cap)
{
    memset(ds, 0, sizeof *ds);
    int64_t ni = 0, nl = 0, fi = 0, fl = 0, rows = 0, cols = 0;
    float *x = NULL;
    int32_t *y = NULL;
    int rc = mlcrt_idx_load_images(images_path, limit, expect_numel, &x, &ni, &fi, &rows,
                                   &cols, msg, cap);
    if (rc)
        return rc;
    rc = mlcrt_idx_load_labels(labels_path, limit, classes, &y, &nl, &fl, msg, cap);
    if (rc) {
        free(x);
        return rc;
    }
    if (fi != fl) {
        free(x);
        free(y);
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s has %lld images but %s has %lld labels", images_path,
                          (long long)fi, labels_path, (long long)fl);
    }
    ds->n = ni;
    ds->sample_rank = 2;
    ds->sample_dims[0] = rows;
    ds->sample_dims[1] = cols;
    ds->sample_numel = rows * cols;
    ds->x = x;
    ds->y = y;
    ds->classes = classes;
    return MLCRT_OK;
}

/* Picks DIR/BASE.gz if it exists, else DIR/BASE. */
static int find_file(char *out, size_t outcap, const char *dir, const char *base, char *msg,
                     size_t cap)
{
    snprintf(out, outcap, "%s/%s.gz", dir, base);
    if (access(out, F_OK) == 0)
        return MLCRT_OK;
    snprintf(out, outcap, "%s/%s", dir, base);
    if (access(out, F_OK) == 0)
        return MLCRT_OK;
    return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: no %s or %s.gz in this directory", dir, base,
                      base);
}

int mlcrt_dataset_load_dir(mlc_dataset *ds, const char *dir, const char *split,
                           int64_t expect_numel, int classes, int64_t limit, char *msg,
                           size_t cap)
{
    char base[128], ipath[4096], lpath[4096];
    memset(ds, 0, sizeof *ds);
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    int rc = find_file(ipath, sizeof ipath, dir, base, msg, cap);
    if (rc)
        return rc;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    rc = find_file(lpath, sizeof lpath, dir, base, msg, cap);
    if (rc)
        return rc;
    return mlcrt_dataset_load_files(ds, ipath, lpath, expect_numel, classes, limit, msg,
                                    cap);
}

void mlcrt_batch_gather(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n,
                        float *bx, int32_t *by)
{
    int64_t k = ds->sample_numel;
    for (int i = 0; i < n; i++) {
        int64_t s = perm ? perm[start + i] : start + i;
        memcpy(bx + (int64_t)i * k, ds->x + s * k, (size_t)k * sizeof(float));
        by[i] = ds->y[s];
    }
}
