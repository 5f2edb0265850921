/* data.c - dataset loading (MNIST layout IDX files, CIFAR-10/100 binary batches),
 * normalisation, augmentation and batch assembly (see data.h). */
#include "data.h"

#include "file_kind.h"
#include "idx.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "text_data.h"

#include <errno.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mlcrt_dataset_free(mlc_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    mlcrt_text_free(ds->text);
    free(ds->image_file);
    memset(ds, 0, sizeof *ds);
}

void mlcrt_join_path(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    snprintf(out, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* Records where ds's images came from, for mlcrt_dataset_check_dims. */
static int set_source(mlc_dataset *ds, const char *path, int64_t rows_byte, char *msg, size_t cap) {
    if (!(ds->image_file = strdup(path))) return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory", path);
    ds->rows_byte = rows_byte;
    return MLCRT_OK;
}

int mlcrt_dataset_load_files(mlc_dataset *ds, const char *images_path, const char *labels_path, int64_t expect_numel,
                             int classes, int64_t limit, char *msg, size_t cap) {
    memset(ds, 0, sizeof *ds);
    int64_t ni = 0, nl = 0, fi = 0, fl = 0, rows = 0, cols = 0;
    float *x = NULL;
    int32_t *y = NULL;
    int rc = mlcrt_idx_load_images(images_path, limit, expect_numel, &x, &ni, &fi, &rows, &cols, msg, cap);
    if (rc) return rc;
    rc = mlcrt_idx_load_labels(labels_path, limit, classes, &y, &nl, &fl, msg, cap);
    if (rc) {
        free(x);
        return rc;
    }
    if (fi != fl) { /* the labels' count field, bytes 4..7 (after the magic) */
        free(x);
        free(y);
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: byte 4: expected %lld labels (the images' count in %s), found %lld", labels_path,
                          (long long)fi, images_path, (long long)fl);
    }
    if ((rc = set_source(ds, images_path, 8, msg, cap))) {
        free(x);
        free(y);
        return rc;
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

/* Picks DIR/BASE.gz or DIR/BASE, whichever exists. Both is an error: a copy left beside
 * the other (`gunzip -k`, an old download) may hold other data, and reading one of them
 * without a word trained on the wrong one. A name that is there but cannot be looked up
 * (a loop of symbolic links) is reported as itself, not as missing. */
static int find_file(char *out, size_t outcap, const char *dir, const char *base, char *msg, size_t cap) {
    char name[256], found[2][4096];
    int n = 0;
    for (int gz = 1; gz >= 0; gz--) {
        snprintf(name, sizeof name, "%s%s", base, gz ? ".gz" : "");
        mlcrt_join_path(found[n], sizeof found[n], dir, name);
        if (access(found[n], F_OK) == 0) n++;
        else if (errno != ENOENT)
            return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", found[n], strerror(errno));
    }
    if (n == 2)
        return mlcrt_fail(msg, cap, MLCRT_EIO,
                          "%s: both %s and %s.gz exist, and which one to read is not known; remove one", dir, base,
                          base);
    if (n == 0) return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: no %s or %s.gz in this directory", dir, base, base);
    snprintf(out, outcap, "%s", found[0]);
    return MLCRT_OK;
}

int mlcrt_dataset_load_dir(mlc_dataset *ds, const char *dir, const char *split, int64_t expect_numel, int classes,
                           int64_t limit, char *msg, size_t cap) {
    char base[128], ipath[4096], lpath[4096];
    memset(ds, 0, sizeof *ds);
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    int rc = find_file(ipath, sizeof ipath, dir, base, msg, cap);
    if (rc) return rc;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    rc = find_file(lpath, sizeof lpath, dir, base, msg, cap);
    if (rc) return rc;
    return mlcrt_dataset_load_files(ds, ipath, lpath, expect_numel, classes, limit, msg, cap);
}

void mlcrt_batch_gather(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, float *bx, int32_t *by) {
    int64_t k = ds->sample_numel;
    for (int i = 0; i < n; i++) {
        int64_t s = perm ? perm[start + i] : start + i;
        memcpy(bx + (int64_t)i * k, ds->x + s * k, (size_t)k * sizeof(float));
        by[i] = ds->y[s];
    }
}

/* ---- CIFAR ---- */

#define CIFAR_PIXELS 3072

int mlcrt_cifar_load(mlc_dataset *ds, const char *const *paths, int npaths, int label_bytes, int64_t expect_numel,
                     int classes, int64_t limit, char *msg, size_t cap) {
    memset(ds, 0, sizeof *ds);
    const int64_t rec = label_bytes + CIFAR_PIXELS;
    int64_t counts[16], total = 0;
    if (npaths < 1 || npaths > 16 || (label_bytes != 1 && label_bytes != 2))
        return mlcrt_fail(msg, cap, MLCRT_EARG, "mlcrt_cifar_load: bad arguments");
    if (expect_numel > 0 && expect_numel != CIFAR_PIXELS)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: expected %lld values per image, found %d (3 x 32 x 32)",
                          paths[0], (long long)expect_numel, CIFAR_PIXELS);
    for (int f = 0; f < npaths; f++) {
        struct stat st;
        int rc = mlcrt_check_regular(paths[f], "a CIFAR batch file", msg, cap);
        if (rc) return rc;
        if (stat(paths[f], &st) != 0)
            return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", paths[f], strerror(errno));
        int64_t size = (int64_t)st.st_size;
        if (size == 0)
            return mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: byte 0: empty file: expected %lld-byte records", paths[f],
                              (long long)rec);
        if (size % rec != 0)
            return mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                              "%s: byte %lld: file ends inside record %lld: expected a "
                              "multiple of %lld bytes, found %lld",
                              paths[f], (long long)size, (long long)(size / rec), (long long)rec, (long long)size);
        counts[f] = size / rec;
        total += counts[f];
    }
    /* CIFAR-10's training batches hold as many records each (10,000): one with fewer was
     * cut at a record boundary, which its size alone cannot tell, and would train on
     * fewer samples without a word */
    int most = 0;
    for (int f = 1; f < npaths; f++)
        if (counts[f] > counts[most]) most = f;
    for (int f = 0; f < npaths; f++)
        if (counts[f] < counts[most])
            return mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                              "%s: byte %lld: the file ends after %lld record%s, while %s holds %lld: expected as "
                              "many in every batch file (is it cut short?)",
                              paths[f], (long long)(counts[f] * rec), (long long)counts[f], counts[f] == 1 ? "" : "s",
                              paths[most], (long long)counts[most]);
    int64_t n = limit > 0 && limit < total ? limit : total;
    float *x = malloc((size_t)(n > 0 ? n : 1) * CIFAR_PIXELS * sizeof(float));
    int32_t *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    uint8_t *buf = malloc((size_t)rec);
    if (!x || !y || !buf) {
        free(x);
        free(y);
        free(buf);
        return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld images", paths[0], (long long)n);
    }
    int64_t k = 0;
    int rc = MLCRT_OK;
    for (int f = 0; f < npaths && rc == MLCRT_OK; f++) {
        FILE *fp = fopen(paths[f], "rb");
        if (!fp) {
            rc = mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", paths[f], strerror(errno));
            break;
        }
        for (int64_t r = 0; r < counts[f]; r++) {
            if (fread(buf, 1, (size_t)rec, fp) != (size_t)rec) {
                rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: byte %lld: read error in record %lld", paths[f],
                                (long long)(r * rec), (long long)r);
                break;
            }
            int label = buf[label_bytes - 1];
            if (classes > 0 && label >= classes) {
                rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: byte %lld: sample %lld has label %d, expected 0..%d",
                                paths[f], (long long)(r * rec + label_bytes - 1), (long long)r, label, classes - 1);
                break;
            }
            if (k < n) {
                for (int i = 0; i < CIFAR_PIXELS; i++) x[k * CIFAR_PIXELS + i] = (float)buf[label_bytes + i] / 255.0f;
                y[k] = label;
                k++;
            }
        }
        fclose(fp);
    }
    free(buf);
    if (rc) {
        free(x);
        free(y);
        return rc;
    }
    ds->n = n;
    ds->sample_rank = 3;
    ds->sample_dims[0] = 3;
    ds->sample_dims[1] = 32;
    ds->sample_dims[2] = 32;
    ds->sample_numel = CIFAR_PIXELS;
    ds->x = x;
    ds->y = y;
    ds->classes = classes;
    return set_source(ds, paths[0], -1, msg, cap);
}

/* Whether dir/name exists. A file that cannot be looked up (a directory without search
 * permission) or a dangling link is remembered in *why (the first one), so that finding
 * nothing is not reported as "no dataset here". */
static int exists_in(const char *dir, const char *name, char *why, size_t cap) {
    char p[4096], target[1024];
    mlcrt_join_path(p, sizeof p, dir, name);
    if (access(p, F_OK) == 0) return 1;
    if (why[0]) return 0;
    if (errno == ELOOP)
        mlcrt_fail(why, cap, MLCRT_EIO, "%s: cannot open: %s", p, strerror(errno)); /* the file's links */
    else if (errno != ENOENT)
        mlcrt_fail(why, cap, MLCRT_EIO, "%s: cannot open dataset directory: %s", dir, strerror(errno));
    else if (mlcrt_dangling_link(p, target, sizeof target))
        mlcrt_fail(why, cap, MLCRT_EIO, "%s: cannot open: symbolic link to '%s', which does not exist", p, target);
    return 0;
}

/* Every name a dataset directory's files may have: those mlcrt_data_detect and
 * mlcrt_dataset_load_auto below read, and text_data.c's corpora. */
static const char *const data_file_names[] = {"train-images-idx3-ubyte",
                                              "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte",
                                              "t10k-labels-idx1-ubyte",
                                              "data_batch_1.bin",
                                              "data_batch_2.bin",
                                              "data_batch_3.bin",
                                              "data_batch_4.bin",
                                              "data_batch_5.bin",
                                              "test_batch.bin",
                                              "train.bin",
                                              "test.bin",
                                              "val.bin"};

int mlcrt_data_file_of(const char *dir, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0; /* a file yet to be written overwrites nothing */
    for (size_t k = 0; k < sizeof data_file_names / sizeof data_file_names[0]; k++)
        for (int gz = 0; gz < 2; gz++) {
            char p[4096], name[64];
            snprintf(name, sizeof name, "%s%s", data_file_names[k], gz ? ".gz" : "");
            mlcrt_join_path(p, sizeof p, dir, name);
            if (mlcrt_same_file(path, p)) return 1;
        }
    return 0;
}

int mlcrt_data_detect(const char *dir, mlcrt_data_format *fmt, char *msg, size_t cap) {
    struct stat st;
    char target[1024], why[MLCRT_MSG_SIZE] = "";
    if (stat(dir, &st) != 0) {
        if (mlcrt_dangling_link(dir, target, sizeof target))
            return mlcrt_fail(msg, cap, MLCRT_EIO,
                              "%s: cannot open dataset directory: symbolic link to '%s', "
                              "which does not exist",
                              dir, target);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open dataset directory: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: expected a dataset directory, found %s", dir,
                          mlcrt_file_kind_name((unsigned)st.st_mode));
    if (exists_in(dir, "train-images-idx3-ubyte.gz", why, sizeof why) ||
        exists_in(dir, "train-images-idx3-ubyte", why, sizeof why))
        *fmt = MLCRT_DATA_MNIST;
    else if (exists_in(dir, "data_batch_1.bin", why, sizeof why)) *fmt = MLCRT_DATA_CIFAR10;
    else if (exists_in(dir, "train.bin", why, sizeof why)) *fmt = MLCRT_DATA_CIFAR100;
    else if (why[0]) return mlcrt_fail(msg, cap, MLCRT_EIO, "%s", why);
    else
        return mlcrt_fail(msg, cap, MLCRT_EIO,
                          "%s: no dataset here: expected train-images-idx3-ubyte[.gz] (MNIST "
                          "layout), data_batch_1.bin (CIFAR-10) or train.bin (CIFAR-100)",
                          dir);
    return MLCRT_OK;
}

int mlcrt_dataset_load_auto(mlc_dataset *ds, const char *dir, int test, int64_t expect_numel, int classes,
                            int64_t limit, char *msg, size_t cap) {
    mlcrt_data_format fmt;
    memset(ds, 0, sizeof *ds);
    int rc = mlcrt_data_detect(dir, &fmt, msg, cap);
    if (rc) return rc;
    if (fmt == MLCRT_DATA_MNIST)
        return mlcrt_dataset_load_dir(ds, dir, test ? "t10k" : "train", expect_numel, classes, limit, msg, cap);
    char store[5][4096];
    const char *paths[5];
    int np = 0;
    if (fmt == MLCRT_DATA_CIFAR10 && !test) {
        for (int i = 1; i <= 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i);
            mlcrt_join_path(store[np++], sizeof store[0], dir, name);
        }
    } else {
        const char *name = fmt == MLCRT_DATA_CIFAR10 ? "test_batch.bin" : test ? "test.bin" : "train.bin";
        mlcrt_join_path(store[np++], sizeof store[0], dir, name);
    }
    for (int i = 0; i < np; i++) paths[i] = store[i];
    return mlcrt_cifar_load(ds, paths, np, fmt == MLCRT_DATA_CIFAR10 ? 1 : 2, expect_numel, classes, limit, msg, cap);
}

/* ---- normalisation and augmentation ---- */

/* "f32[3, 32, 32]": a sample of in, as messages write it. */
static void input_type(const mlc_io_desc *in, char *t, size_t cap) {
    size_t k = (size_t)snprintf(t, cap, "%s[", in->dtype == MLC_I32 ? "i32" : "f32");
    for (int i = 0; i < in->rank && k < cap; i++)
        k += (size_t)snprintf(t + k, cap - k, "%s%lld", i ? ", " : "", (long long)in->dims[i]);
    if (k < cap) snprintf(t + k, cap - k, "]");
}

/* "32 x 32": an image of an IDX file (its dimensions after the count). */
static void image_dims(const mlcrt_idx *idx, char *t, size_t cap) {
    size_t k = 0;
    t[0] = '\0';
    for (int i = 1; i < idx->ndims && k < cap; i++)
        k += (size_t)snprintf(t + k, cap - k, "%s%lld", i > 1 ? " x " : "", (long long)idx->dims[i]);
}

/* Whether the IDX file idx (3 or 4 dimensions) fits in's sample shape; the message names
 * the field at fault. See mlcrt_dataset_load_images. */
static int check_image_file(const char *path, const mlcrt_idx *idx, const mlc_io_desc *in, char *msg, size_t cap) {
    char t[128], f[128];
    input_type(in, t, sizeof t);
    image_dims(idx, f, sizeof f);
    int64_t numel = idx->nbytes / idx->dims[0];
    if (in->rank < 2 || in->rank > 3) { /* flat (or of a shape images have not): the size alone */
        if (numel == in->numel) return MLCRT_OK;
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: bytes 8..%d: expected images of %lld values (model input '%s', %s), found %lld (%s)",
                          path, 4 + 4 * idx->ndims - 1, (long long)in->numel, in->name, t, (long long)numel, f);
    }
    int64_t channels = in->rank == 3 ? in->dims[0] : 1, file_channels = idx->ndims == 4 ? idx->dims[1] : 1;
    if (idx->ndims == 3 && channels > 1)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: byte 3: model input '%s' (%s) takes %lld-channel images: expected an IDX file "
                          "[n, %lld, %lld, %lld] (4 dimensions), found 3 (images of %s)",
                          path, in->name, t, (long long)channels, (long long)channels, (long long)in->dims[1],
                          (long long)in->dims[2], f);
    if (file_channels != channels)
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s: byte 8: the images have %lld channel%s, model input '%s' (%s) expects %lld", path,
                          (long long)file_channels, file_channels == 1 ? "" : "s", in->name, t, (long long)channels);
    return MLCRT_OK;
}

int mlcrt_dataset_load_images(mlc_dataset *ds, const char *path, const mlc_io_desc *in, char *msg, size_t cap) {
    memset(ds, 0, sizeof *ds);
    mlcrt_idx idx;
    int rc = mlcrt_idx_read(path, 0, &idx, msg, cap);
    if (rc) return rc;
    if (idx.ndims != 3 && idx.ndims != 4) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte 3: expected dimension count 3 ([n, rows, cols]) or 4 ([n, channels, rows, "
                        "cols]), found %d",
                        path, idx.ndims);
        goto done;
    }
    if ((rc = check_image_file(path, &idx, in, msg, cap))) goto done;
    ds->sample_rank = idx.ndims - 1;
    for (int d = 1; d < idx.ndims; d++) ds->sample_dims[d - 1] = idx.dims[d];
    ds->sample_numel = idx.nbytes / idx.dims[0];
    if ((rc = set_source(ds, path, 4 + 4 * (idx.ndims - 2), msg, cap)) ||
        (rc = mlcrt_dataset_check_dims(ds, in, path, msg, cap)) ||
        (rc = mlcrt_idx_images_to_floats(path, &idx, 0, &ds->x, &ds->n, msg, cap)))
        mlcrt_dataset_free(ds);
done:
    mlcrt_idx_free(&idx);
    return rc;
}

int mlcrt_dataset_check_dims(const mlc_dataset *ds, const mlc_io_desc *in, const char *where, char *msg, size_t cap) {
    if (in->rank < 2 || ds->sample_rank < 2) return MLCRT_OK;
    const int64_t *sd = ds->sample_dims + ds->sample_rank - 2, *md = in->dims + in->rank - 2;
    if (sd[0] == md[0] && sd[1] == md[1]) return MLCRT_OK;
    char t[128];
    input_type(in, t, sizeof t);
    char at[48] = "";
    if (ds->image_file && ds->rows_byte >= 0) snprintf(at, sizeof at, " byte %lld:", (long long)ds->rows_byte);
    return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                      "%s:%s the images are %lld x %lld, model input '%s' (%s) expects %lld x %lld",
                      ds->image_file ? ds->image_file : where, at, (long long)sd[0], (long long)sd[1], in->name, t,
                      (long long)md[0], (long long)md[1]);
}

int mlcrt_dataset_check_like(const mlc_dataset *test, const mlc_dataset *train, char *msg, size_t cap) {
    if (test->text || train->text || test->sample_rank != train->sample_rank || test->sample_rank < 2) return MLCRT_OK;
    const int r = test->sample_rank;
    const int64_t *sd = test->sample_dims, *td = train->sample_dims;
    if (!memcmp(sd, td, sizeof *sd * (size_t)r)) return MLCRT_OK;
    char at[48] = "";
    if (test->image_file && test->rows_byte >= 0) snprintf(at, sizeof at, " byte %lld:", (long long)test->rows_byte);
    if (r == 3 && sd[0] != td[0])
        return mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                          "%s:%s the images have %lld channels, the training images (%s) %lld",
                          test->image_file ? test->image_file : "the test split", at, (long long)sd[0],
                          train->image_file ? train->image_file : "the training split", (long long)td[0]);
    return mlcrt_fail(
        msg, cap, MLCRT_EMISMATCH, "%s:%s the images are %lld x %lld, the training images (%s) %lld x %lld",
        test->image_file ? test->image_file : "the test split", at, (long long)sd[r - 2], (long long)sd[r - 1],
        train->image_file ? train->image_file : "the training split", (long long)td[r - 2], (long long)td[r - 1]);
}

int mlcrt_dataset_channels(const mlc_dataset *ds) { return ds->sample_rank == 3 ? (int)ds->sample_dims[0] : 1; }

int mlcrt_dataset_normalize(mlc_dataset *ds, int n, const float *mean, const float *std, char *msg, size_t cap) {
    int c = mlcrt_dataset_channels(ds);
    if (n != 1 && n != c) {
        if (c == 1)
            return mlcrt_fail(msg, cap, MLCRT_EARG,
                              "--mean/--std: expected 1 value (the images have one channel), found %d", n);
        return mlcrt_fail(msg, cap, MLCRT_EARG, "--mean/--std: expected 1 or %d values (one per channel), found %d", c,
                          n);
    }
    for (int i = 0; i < n; i++)
        if (!(std[i] > 0))
            return mlcrt_fail(msg, cap, MLCRT_EARG, "--std: expected positive values, found %g", (double)std[i]);
    if (ds->n == 0) return MLCRT_OK;
    int64_t plane = ds->sample_numel / c;
    for (int64_t s = 0; s < ds->n; s++)
        for (int ch = 0; ch < c; ch++) {
            float m = mean[n == 1 ? 0 : ch], inv = 1.0f / std[n == 1 ? 0 : ch];
            float *p = ds->x + s * ds->sample_numel + (int64_t)ch * plane;
            for (int64_t i = 0; i < plane; i++) p[i] = (p[i] - m) * inv;
        }
    return MLCRT_OK;
}

int mlcrt_augment_parse(const char *spec, mlcrt_augment *aug, char *msg, size_t cap) {
    memset(aug, 0, sizeof *aug);
    if (!spec || strcmp(spec, "none") == 0) return MLCRT_OK; /* NULL: the model sets none */
    const char *p = spec;
    do { /* "" is refused as an empty part: "none" is how to turn augmentation off */
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char part[64];
        if (len >= sizeof part) len = sizeof part - 1;
        memcpy(part, p, len);
        part[len] = '\0';
        char *end;
        int crop = strncmp(part, "crop:", 5) == 0;
        if ((crop && aug->crop_pad) || (!crop && aug->flip && strcmp(part, "flip") == 0)) /* one would be dropped */
            return mlcrt_fail(msg, cap, MLCRT_EARG, "--augment: %s given twice in '%s'", crop ? "crop" : "flip", spec);
        if (strcmp(part, "flip") == 0) aug->flip = 1;
        else if (crop && part[5] >= '0' && part[5] <= '9' && strtol(part + 5, &end, 10) > 0 && *end == '\0' &&
                 strtol(part + 5, NULL, 10) <= 64)
            aug->crop_pad = (int)strtol(part + 5, NULL, 10);
        else
            return mlcrt_fail(msg, cap, MLCRT_EARG,
                              "--augment: expected crop:N (N in 1..64), flip or none, found "
                              "'%s'",
                              part);
        p = e ? e + 1 : p + len;
    } while (*p);
    return MLCRT_OK;
}

/* Writes the augmented version of sample src (the dataset's copy) into x. */
static void augment_sample(float *x, const float *src, int c, int64_t h, int64_t w, const mlcrt_augment *aug,
                           uint64_t seed, uint64_t epoch, uint64_t index) {
    static const uint64_t tag = 0x4155474d454e54ull; /* "AUGMENT" */
    uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)epoch, (uint32_t)(epoch >> 32)};
    uint64_t k = seed ^ tag;
    uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t r[4];
    mlc_philox4x32_10(ctr, key, r);
    int64_t range = 2 * (int64_t)aug->crop_pad + 1;
    int64_t dy = aug->crop_pad ? (int64_t)(r[0] % (uint32_t)range) - aug->crop_pad : 0;
    int64_t dx = aug->crop_pad ? (int64_t)(r[1] % (uint32_t)range) - aug->crop_pad : 0;
    int flip = aug->flip && (r[2] & 1);
    if (dx == 0 && dy == 0 && !flip) return;
    int64_t plane = h * w;
    for (int ch = 0; ch < c; ch++) {
        float pad = aug->pad_value[ch < 4 ? ch : 0];
        for (int64_t i = 0; i < h; i++)
            for (int64_t j = 0; j < w; j++) {
                int64_t si = i + dy, sj = (flip ? w - 1 - j : j) + dx;
                x[ch * plane + i * w + j] =
                    si >= 0 && si < h && sj >= 0 && sj < w ? src[ch * plane + si * w + sj] : pad;
            }
    }
}

int64_t mlcrt_dataset_label_numel(const mlc_dataset *ds) { return ds->text ? ds->sample_numel : 1; }

void mlcrt_dataset_view(const mlc_dataset *ds, int64_t lo, int64_t hi, mlc_dataset *view, struct mlcrt_text *text) {
    *view = *ds;
    view->n = hi - lo;
    if (ds->text) {
        *text = *ds->text;
        text->first += lo;
        view->text = text;
    } else {
        view->x = ds->x + lo * ds->sample_numel;
        view->y = ds->y + lo;
    }
}

void mlcrt_batch_gather_aug(const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, void *bx, int32_t *by,
                            const mlcrt_augment *aug, uint64_t seed, uint64_t epoch) {
    if (ds->text) {
        mlcrt_text_gather(ds->text, perm, start, n, bx, by, seed, epoch);
        return;
    }
    mlcrt_batch_gather(ds, perm, start, n, bx, by);
    if (!aug || (!aug->crop_pad && !aug->flip) || ds->sample_rank < 2) return;
    int c = mlcrt_dataset_channels(ds);
    int64_t h = ds->sample_dims[ds->sample_rank - 2], w = ds->sample_dims[ds->sample_rank - 1];
    for (int i = 0; i < n; i++) {
        int64_t s = perm ? perm[start + i] : start + i;
        augment_sample((float *)bx + (int64_t)i * ds->sample_numel, ds->x + s * ds->sample_numel, c, h, w, aug, seed,
                       epoch, (uint64_t)s);
    }
}
