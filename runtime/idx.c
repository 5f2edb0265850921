/* idx.c - IDX file reader (see idx.h). gz_stream.c reads raw and gzip files alike, so one
 * code path handles both train-images-idx3-ubyte and train-images-idx3-ubyte.gz. */
#include "idx.h"

#include "file_kind.h"
#include "gz_stream.h"
#include "mlcrt_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuse anything above 16 GiB of data: a corrupt header, not a real dataset. */
#define IDX_MAX_BYTES (INT64_C(1) << 34)

/* Reads up to len bytes; returns bytes read, or -1 on an error (message in f->err). */
static int64_t read_full(mlcrt_gz_stream *f, void *buf, int64_t len) {
    int64_t got = 0;
    while (got < len) {
        int64_t r = mlcrt_gz_read(f, (char *)buf + got, len - got > (1 << 24) ? 1 << 24 : len - got);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* Reads up to len bytes into *buf, which it allocates and grows as data arrives (from
 * 1 MiB, doubling), so that a header declaring gigabytes in a short file costs no more
 * memory than the file holds. Returns bytes read, -1 on an error (message in f->err),
 * -2 when out of memory; *buf is set either way (free it). */
static int64_t read_growing(mlcrt_gz_stream *f, uint8_t **buf, int64_t len) {
    int64_t cap = len < (1 << 20) ? len : (1 << 20), got = 0;
    *buf = malloc((size_t)(cap > 0 ? cap : 1));
    if (!*buf) return -2;
    for (;;) {
        int64_t r = read_full(f, *buf + got, cap - got);
        if (r < 0) return -1;
        got += r;
        if (got < cap || cap == len) return got;
        int64_t grown = cap > len / 2 ? len : 2 * cap;
        uint8_t *p = realloc(*buf, (size_t)grown);
        if (!p) return -2;
        *buf = p;
        cap = grown;
    }
}

#define GZ_CUT "compressed stream ends early (the .gz file is cut short)"

void mlcrt_idx_free(mlcrt_idx *idx) {
    if (!idx) return;
    free(idx->data);
    idx->data = NULL;
    idx->nbytes = 0;
}

/* Whether a gzip stream that goes on past the data its header declares turns out to be
 * corrupt when read to its end (zlib checks each member's CRC there): a damaged
 * compressed byte can make inflate produce more bytes than were stored, and that is
 * damage to report, not trailing data. */
static int drains_to_corrupt(mlcrt_gz_stream *f) {
    static _Thread_local uint8_t scratch[1 << 16];
    int64_t got;
    while ((got = mlcrt_gz_read(f, scratch, sizeof scratch)) > 0) {
    }
    return got < 0;
}

/* mlcrt_idx_read; with expect_sample > 0, a file of images [n, rows, cols] whose rows x
 * cols is not expect_sample is refused at its header, before its data is read (a flat
 * model's input: 10000-pixel images read in full, up to 16 GiB, to be refused after). */
static int read_idx(const char *path, int expect_ndims, int64_t expect_sample, mlcrt_idx *out, char *msg, size_t cap) {
    memset(out, 0, sizeof *out);
    int rc = mlcrt_check_regular(path, "an IDX file", msg, cap);
    if (rc) return rc;
    mlcrt_gz_stream *f = malloc(sizeof *f);
    if (!f) return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: cannot open: out of memory", path);
    if (mlcrt_gz_open(f, path)) {
        int e = errno;
        free(f);
        return mlcrt_fail(msg, cap, MLCRT_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    const char *zerr = f->err;
    /* a .gz file's offsets past the header are in the data it decompresses to, which a
     * message says, as it says "of the compressed file" for offsets in the file itself */
    const char *in_data = f->gz ? " of the decompressed data" : "";
    uint8_t hdr[4 + 4 * MLCRT_IDX_MAX_DIMS];

    int64_t got = read_full(f, hdr, 4);
    if (got < 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "%s: read error: %s", path, zerr);
        goto done;
    }
    if (got < 4 && f->cut) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: byte %lld: " GZ_CUT " inside the IDX file's 4-byte magic number",
                        path, (long long)got);
        goto done;
    }
    if (got < 4) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC, "%s: byte %lld: file ended inside the 4-byte magic number", path,
                        (long long)got);
        goto done;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 0: expected IDX magic 00 00, found %02x %02x", path, hdr[0],
                        hdr[1]);
        goto done;
    }
    if (hdr[2] != 0x08) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 2: expected data type 0x08 (unsigned byte), found 0x%02x",
                        path, hdr[2]);
        goto done;
    }
    int ndims = hdr[3];
    if (expect_ndims > 0 && ndims != expect_ndims) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 3: expected dimension count %d, found %d", path,
                        expect_ndims, ndims);
        goto done;
    }
    if (ndims < 1 || ndims > MLCRT_IDX_MAX_DIMS) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte 3: expected dimension count 1..%d, found %d", path,
                        MLCRT_IDX_MAX_DIMS, ndims);
        goto done;
    }
    int64_t hdr_len = 4 + 4 * (int64_t)ndims;
    got = read_full(f, hdr + 4, 4 * (int64_t)ndims);
    if (got < 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "%s: read error: %s", path, zerr);
        goto done;
    }
    if (got < 4 * (int64_t)ndims) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                        "%s: byte %lld: %s inside the header: expected %lld header bytes, "
                        "found %lld",
                        path, (long long)(4 + got), f->cut ? GZ_CUT : "file ended", (long long)hdr_len,
                        (long long)(4 + got));
        goto done;
    }
    int64_t total = 1;
    for (int d = 0; d < ndims; d++) {
        const uint8_t *p = hdr + 4 + 4 * d;
        int64_t v = ((int64_t)p[0] << 24) | ((int64_t)p[1] << 16) | ((int64_t)p[2] << 8) | p[3];
        if (v == 0) {
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: byte %d: dimension %d is 0: expected a positive size", path,
                            4 + 4 * d, d);
            goto done;
        }
        out->dims[d] = v;
        total = total > IDX_MAX_BYTES / v ? IDX_MAX_BYTES + 1 : total * v; /* saturates */
    }
    /* two 32-bit sizes: their product fits an unsigned 64-bit integer, not a signed one */
    const unsigned long long pixels =
        ndims == 3 ? (unsigned long long)out->dims[1] * (unsigned long long)out->dims[2] : 0;
    if (expect_sample > 0 && ndims == 3 && pixels != (unsigned long long)expect_sample) {
        rc = mlcrt_fail(msg, cap, MLCRT_EMISMATCH,
                        "%s: byte 8: expected %lld values per image, found %llu (%lld x %lld)", path,
                        (long long)expect_sample, pixels, (long long)out->dims[1], (long long)out->dims[2]);
        goto done;
    }
    if (total > IDX_MAX_BYTES) {
        /* name every dimension: the one that crossed the limit is rarely the culprit
         * (a count of 2^31 images of 28 x 28 crosses it at the 28) */
        char dims[128];
        size_t k = 0;
        for (int d = 0; d < ndims && k < sizeof dims; d++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lld", d ? " x " : "", (long long)out->dims[d]);
        double bytes = 1, sample = 1;
        for (int d = 0; d < ndims; d++) bytes *= (double)out->dims[d];
        for (int d = 1; d < ndims; d++) sample *= (double)out->dims[d];
        if (sample <= (double)IDX_MAX_BYTES) { /* a sane sample size: the count is to blame */
            rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                            "%s: byte 4: sample count %lld is too large: %s = %.0f data bytes, "
                            "more than the %lld an IDX file may hold",
                            path, (long long)out->dims[0], dims, bytes, (long long)IDX_MAX_BYTES);
            goto done;
        }
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: bytes 4..%lld: the header declares %s = %.0f data bytes, more than "
                        "the %lld an IDX file may hold",
                        path, (long long)hdr_len - 1, dims, bytes, (long long)IDX_MAX_BYTES);
        goto done;
    }
    out->ndims = ndims;
    out->nbytes = total;
    got = read_growing(f, &out->data, total);
    if (got == -2) {
        rc = mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld bytes of data", path, (long long)total);
        goto done;
    }
    if (got < 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "%s: read error: %s", path, zerr);
        goto done;
    }
    if (got < total) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                        "%s: byte %lld%s: %s: expected %lld data bytes after the %lld-byte "
                        "header, found %lld",
                        path, (long long)(hdr_len + got), in_data, f->cut ? GZ_CUT : "data ended early",
                        (long long)total, (long long)hdr_len, (long long)got);
        goto done;
    }
    uint8_t extra[1];
    got = read_full(f, extra, 1);
    if (got < 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EIO, "%s: read error: %s", path, zerr);
        goto done;
    }
    if (got > 0 && f->gz && drains_to_corrupt(f)) { /* a damaged stream, not a long file */
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT, "%s: %s", path, zerr);
        goto done;
    }
    if (got > 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte %lld%s: unexpected trailing data after the %lld declared "
                        "data bytes",
                        path, (long long)(hdr_len + total), in_data, (long long)total);
        goto done;
    }
    /* All data arrived, but a gzip stream cut before its trailer (CRC and length) is
     * reported by zlib only as a pending Z_BUF_ERROR: the file is incomplete. */
    if (f->cut) {
        rc = mlcrt_fail(msg, cap, MLCRT_ETRUNC,
                        "%s: byte %lld of the compressed file: " GZ_CUT
                        " after all %lld data bytes, inside a gzip trailer (CRC and length) or a further member",
                        path, (long long)f->in_off, (long long)total);
        goto done;
    }
    /* gzread would not have said this: bytes after the gzip data, like those after a raw
     * file's (refused above), are no part of an IDX file */
    if (f->garbage_at >= 0) {
        rc = mlcrt_fail(msg, cap, MLCRT_EFORMAT,
                        "%s: byte %lld of the compressed file: unexpected data after the end of the gzip stream", path,
                        (long long)f->garbage_at);
        goto done;
    }
done:
    mlcrt_gz_close(f);
    free(f);
    if (rc != MLCRT_OK) mlcrt_idx_free(out);
    return rc;
}

int mlcrt_idx_read(const char *path, int expect_ndims, mlcrt_idx *out, char *msg, size_t cap) {
    return read_idx(path, expect_ndims, 0, out, msg, cap);
}

int mlcrt_idx_load_images(const char *path, int64_t limit, int64_t expect_numel, float **x, int64_t *n,
                          int64_t *in_file, int64_t *rows, int64_t *cols, char *msg, size_t cap) {
    mlcrt_idx idx;
    *x = NULL;
    int rc = read_idx(path, 3, expect_numel, &idx, msg, cap);
    if (rc) return rc;
    int64_t count = idx.dims[0];
    rc = mlcrt_idx_images_to_floats(path, &idx, limit, x, n, msg, cap);
    if (rc == MLCRT_OK && in_file) *in_file = count;
    if (rc == MLCRT_OK && rows) *rows = idx.dims[1];
    if (rc == MLCRT_OK && cols) *cols = idx.dims[2];
    mlcrt_idx_free(&idx);
    return rc;
}

int mlcrt_idx_images_to_floats(const char *path, const mlcrt_idx *idx, int64_t limit, float **x, int64_t *n, char *msg,
                               size_t cap) {
    int64_t count = idx->dims[0], numel = idx->nbytes / idx->dims[0];
    if (limit > 0 && limit < count) count = limit;
    float *buf = malloc((size_t)(count * numel) * sizeof(float));
    if (!buf) return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld images", path, (long long)count);
    for (int64_t i = 0; i < count * numel; i++) buf[i] = (float)idx->data[i] / 255.0f;
    *x = buf;
    *n = count;
    return MLCRT_OK;
}

int mlcrt_idx_load_labels(const char *path, int64_t limit, int classes, int32_t **y, int64_t *n, int64_t *in_file,
                          char *msg, size_t cap) {
    mlcrt_idx idx;
    *y = NULL;
    int rc = mlcrt_idx_read(path, 1, &idx, msg, cap);
    if (rc) return rc;
    int64_t count = idx.dims[0];
    if (limit > 0 && limit < count) count = limit;
    for (int64_t i = 0; i < idx.dims[0]; i++) {
        if (classes > 0 && idx.data[i] >= classes) {
            int v = idx.data[i];
            mlcrt_idx_free(&idx);
            return mlcrt_fail(msg, cap, MLCRT_EMISMATCH, "%s: byte %lld: sample %lld has label %d, expected 0..%d",
                              path, (long long)(8 + i), (long long)i, v, classes - 1);
        }
    }
    int32_t *buf = malloc((size_t)(count > 0 ? count : 1) * sizeof(int32_t));
    if (!buf) {
        mlcrt_idx_free(&idx);
        return mlcrt_fail(msg, cap, MLCRT_ENOMEM, "%s: out of memory for %lld labels", path, (long long)count);
    }
    for (int64_t i = 0; i < count; i++) buf[i] = idx.data[i];
    *y = buf;
    *n = count;
    if (in_file) *in_file = idx.dims[0];
    mlcrt_idx_free(&idx);
    return MLCRT_OK;
}
