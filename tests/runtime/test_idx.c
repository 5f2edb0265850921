/* test_idx.c - IDX reader and dataset loading: good files (raw and gzip), bad magic,
 * truncation, trailing data, count mismatch, label range, image size, directory layout. */
#include <criterion/criterion.h>

#include <sys/resource.h>
#include <zlib.h>

#include "data.h"
#include "idx.h"
#include "mlcrt_error.h"
#include "testutil.h"

/* Writes an IDX file: magic 00 00 type ndims, big-endian dims, then `len` data bytes.
 * gz: write through gzopen. */
static void write_idx(const char *path, int gz, uint8_t type, int ndims, const uint32_t *dims, const uint8_t *data,
                      size_t len) {
    uint8_t buf[4096];
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = type;
    buf[n++] = (uint8_t)ndims;
    for (int d = 0; d < ndims; d++) {
        buf[n++] = (uint8_t)(dims[d] >> 24);
        buf[n++] = (uint8_t)(dims[d] >> 16);
        buf[n++] = (uint8_t)(dims[d] >> 8);
        buf[n++] = (uint8_t)dims[d];
    }
    cr_assert(n + len <= sizeof buf);
    memcpy(buf + n, data, len);
    n += len;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert(f);
        cr_assert_eq(gzwrite(f, buf, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        tu_write(path, buf, n);
    }
}

static const uint8_t pix[12] = {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8};

static void check_good(int gz) {
    char *dir = tu_tmpdir();
    char *ip = tu_path(dir, gz ? "i.gz" : "i"), *lp = tu_path(dir, gz ? "l.gz" : "l");
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    uint8_t labels[3] = {9, 0, 4};
    write_idx(ip, gz, 0x08, 3, idims, pix, 12);
    write_idx(lp, gz, 0x08, 1, ldims, labels, 3);
    char msg[MLCRT_MSG_SIZE] = "";
    mlc_dataset ds;
    int rc = mlcrt_dataset_load_files(&ds, ip, lp, 4, 10, 0, msg, sizeof msg);
    cr_assert_eq(rc, MLCRT_OK, "%s", msg);
    cr_assert_eq(ds.n, 3);
    cr_assert_eq(ds.sample_numel, 4);
    cr_assert_eq(ds.sample_dims[0], 2);
    cr_assert_eq(ds.sample_dims[1], 2);
    for (int i = 0; i < 12; i++) cr_assert_eq(ds.x[i], (float)pix[i] / 255.0f, "pixel %d", i);
    cr_assert_eq(ds.x[0], 0.0f);
    cr_assert_eq(ds.x[1], 1.0f);
    cr_assert_eq(ds.y[0], 9);
    cr_assert_eq(ds.y[1], 0);
    cr_assert_eq(ds.y[2], 4);
    mlcrt_dataset_free(&ds);

    /* limit keeps the first samples */
    rc = mlcrt_dataset_load_files(&ds, ip, lp, 4, 10, 2, msg, sizeof msg);
    cr_assert_eq(rc, MLCRT_OK, "%s", msg);
    cr_assert_eq(ds.n, 2);
    cr_assert_eq(ds.y[1], 0);
    cr_assert_eq(ds.x[7], 4.0f / 255.0f);
    mlcrt_dataset_free(&ds);
    tu_rmrf(dir);
}

Test(idx, good_raw) { check_good(0); }
Test(idx, good_gz) { check_good(1); }

Test(idx, wrong_type_byte) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "x");
    uint32_t dims[1] = {3};
    write_idx(p, 0, 0x09, 1, dims, pix, 3);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 1, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 2: expected data type 0x08 (unsigned byte), found 0x09", p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, wrong_leading_magic) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "x");
    tu_write(p, "\x1f\x00\x08\x01\x00\x00\x00\x01\x05", 9);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 1, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 0: expected IDX magic 00 00, found 1f 00", p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, wrong_dimension_count) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "train-images-idx3-ubyte.gz");
    uint32_t dims[1] = {3};
    write_idx(p, 1, 0x08, 1, dims, pix, 3);
    char msg[MLCRT_MSG_SIZE], want[512];
    float *x;
    int64_t n;
    cr_assert_eq(mlcrt_idx_load_images(p, 0, 0, &x, &n, NULL, NULL, NULL, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 3: expected dimension count 3, found 1", p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, truncated_data_raw_and_gz) {
    for (int gz = 0; gz < 2; gz++) {
        char *dir = tu_tmpdir(), *p = tu_path(dir, "imgs");
        uint32_t dims[3] = {3, 2, 2};
        write_idx(p, gz, 0x08, 3, dims, pix, 10); /* 12 declared */
        char msg[MLCRT_MSG_SIZE], want[512];
        mlcrt_idx idx;
        cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_ETRUNC);
        snprintf(want, sizeof want,
                 "%s: byte 26%s: data ended early: expected 12 data bytes after the 16-byte "
                 "header, found 10",
                 p, gz ? " of the decompressed data" : "");
        cr_assert_str_eq(msg, want);
        tu_rmrf(dir);
    }
}

Test(idx, truncated_header) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "h");
    tu_write(p, "\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00", 10);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_ETRUNC);
    snprintf(want, sizeof want, "%s: byte 10: file ended inside the header: expected 16 header bytes, found 10", p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, trailing_garbage) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "t");
    uint32_t dims[3] = {2, 2, 2};
    write_idx(p, 0, 0x08, 3, dims, pix, 9); /* 8 declared + 1 extra */
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 24: unexpected trailing data after the 8 declared data bytes", p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, zero_and_huge_dims) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "z");
    uint32_t zero[3] = {2, 0, 2};
    write_idx(p, 0, 0x08, 3, zero, pix, 0);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 8: dimension 1 is 0: expected a positive size", p);
    cr_assert_str_eq(msg, want);

    uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 2};
    write_idx(p, 0, 0x08, 3, huge, pix, 0);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want,
             "%s: byte 4: sample count 4294967295 is too large: 4294967295 x 4294967295 x 2 = "
             "36893488130239234048 data bytes, more than the 17179869184 an IDX file may hold",
             p);
    cr_assert_str_eq(msg, want);
    /* samples too large on their own: no dimension is to blame more than another */
    uint32_t wide[3] = {1, 0x40000u, 0x40000u};
    write_idx(p, 0, 0x08, 3, wide, pix, 0);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want,
             "%s: bytes 4..15: the header declares 1 x 262144 x 262144 = 68719476736 data "
             "bytes, more than the 17179869184 an IDX file may hold",
             p);
    cr_assert_str_eq(msg, want);

    /* a count of 2^31 images of 28 x 28: every dimension is named, not only the 28 at
     * which the product crosses the limit */
    uint32_t many[3] = {0x80000000u, 28, 28};
    write_idx(p, 0, 0x08, 3, many, pix, 0);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want,
             "%s: byte 4: sample count 2147483648 is too large: 2147483648 x 28 x 28 = "
             "1683627180032 data bytes, more than the 17179869184 an IDX file may hold",
             p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, missing_file) {
    char msg[MLCRT_MSG_SIZE];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read("/nonexistent/x-idx1-ubyte", 1, &idx, msg, sizeof msg), MLCRT_EIO);
    cr_assert_str_eq(msg, "/nonexistent/x-idx1-ubyte: cannot open: No such file or directory");
}

Test(idx, count_mismatch) {
    char *dir = tu_tmpdir();
    char *ip = tu_path(dir, "i"), *lp = tu_path(dir, "l");
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {2};
    uint8_t labels[2] = {1, 2};
    write_idx(ip, 0, 0x08, 3, idims, pix, 12);
    write_idx(lp, 1, 0x08, 1, ldims, labels, 2);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_files(&ds, ip, lp, 4, 10, 0, msg, sizeof msg), MLCRT_EMISMATCH);
    /* named at the labels' count field, with what the images make it */
    snprintf(want, sizeof want, "%s: byte 4: expected 3 labels (the images' count in %s), found 2", lp, ip);
    cr_assert_str_eq(msg, want);
    /* a limit does not hide the disagreement */
    cr_assert_eq(mlcrt_dataset_load_files(&ds, ip, lp, 4, 10, 1, msg, sizeof msg), MLCRT_EMISMATCH);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, label_out_of_range) {
    char *dir = tu_tmpdir();
    char *lp = tu_path(dir, "labels");
    uint32_t ldims[1] = {4};
    uint8_t labels[4] = {1, 9, 10, 2};
    write_idx(lp, 0, 0x08, 1, ldims, labels, 4);
    char msg[MLCRT_MSG_SIZE], want[512];
    int32_t *y;
    int64_t n;
    cr_assert_eq(mlcrt_idx_load_labels(lp, 0, 10, &y, &n, NULL, msg, sizeof msg), MLCRT_EMISMATCH);
    snprintf(want, sizeof want, "%s: byte 10: sample 2 has label 10, expected 0..9", lp);
    cr_assert_str_eq(msg, want);
    /* with enough classes it loads */
    cr_assert_eq(mlcrt_idx_load_labels(lp, 0, 11, &y, &n, NULL, msg, sizeof msg), MLCRT_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(y[2], 10);
    free(y);
    tu_rmrf(dir);
}

Test(idx, image_size_mismatch) {
    char *dir = tu_tmpdir();
    char *ip = tu_path(dir, "train-images-idx3-ubyte"), *lp = tu_path(dir, "train-labels-idx1-ubyte");
    static uint8_t big[1024];
    uint32_t idims[3] = {1, 32, 32}, ldims[1] = {1};
    uint8_t labels[1] = {3};
    write_idx(ip, 0, 0x08, 3, idims, big, 0);
    /* write_idx's buffer is 4 KiB: append the 1024 data bytes by hand */
    FILE *f = fopen(ip, "ab");
    cr_assert(f);
    cr_assert_eq(fwrite(big, 1, sizeof big, f), sizeof big);
    fclose(f);
    write_idx(lp, 0, 0x08, 1, ldims, labels, 1);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, dir, "train", 784, 10, 0, msg, sizeof msg), MLCRT_EMISMATCH);
    snprintf(want, sizeof want, "%s: byte 8: expected 784 values per image, found 1024 (32 x 32)", ip);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, dir, "train", 1024, 10, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(ds.n, 1);
    cr_assert_eq(ds.y[0], 3);
    mlcrt_dataset_free(&ds);
    /* the size is refused at the header, before the data is read: a file of a million
     * such images, holding only the first, says so and not that its data ended early */
    idims[0] = 1000000;
    write_idx(ip, 0, 0x08, 3, idims, big, 0);
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, dir, "train", 784, 10, 0, msg, sizeof msg), MLCRT_EMISMATCH);
    cr_assert_str_eq(msg, want);
    /* rows and columns of 2^32 - 1: their product, 2^64 - 2^33 + 1, is said, not wrapped */
    idims[1] = idims[2] = 0xffffffffu;
    write_idx(ip, 0, 0x08, 3, idims, big, 0);
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, dir, "train", 784, 10, 0, msg, sizeof msg), MLCRT_EMISMATCH);
    snprintf(want, sizeof want,
             "%s: byte 8: expected 784 values per image, found 18446744065119617025 (4294967295 x 4294967295)", ip);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(idx, dir_layout_missing_file) {
    char *dir = tu_tmpdir();
    char msg[MLCRT_MSG_SIZE], want[512];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, dir, "t10k", 784, 10, 0, msg, sizeof msg), MLCRT_EIO);
    snprintf(want, sizeof want, "%s: no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz in this directory", dir);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

Test(data, batch_gather) {
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int32_t y[4] = {10, 11, 12, 13};
    mlc_dataset ds = {.n = 4, .sample_numel = 2, .x = x, .y = y};
    int64_t perm[4] = {3, 0, 2, 1};
    float bx[4];
    int32_t by[2];
    mlcrt_batch_gather(&ds, perm, 1, 2, bx, by);
    cr_assert_eq(bx[0], 0.0f);
    cr_assert_eq(bx[1], 1.0f);
    cr_assert_eq(bx[2], 4.0f);
    cr_assert_eq(bx[3], 5.0f);
    cr_assert_eq(by[0], 10);
    cr_assert_eq(by[1], 12);
    mlcrt_batch_gather(&ds, NULL, 3, 1, bx, by);
    cr_assert_eq(bx[0], 6.0f);
    cr_assert_eq(by[0], 13);
}

Test(idx, gzip_without_trailer) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "cut.gz");
    uint32_t dims[3] = {3, 2, 2};
    write_idx(p, 1, 0x08, 3, dims, pix, 12);
    size_t n = 0;
    uint8_t *gz = tu_read(p, &n);
    tu_write(p, gz, n - 8); /* drop the CRC32 and ISIZE trailer */
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_ETRUNC);
    snprintf(want, sizeof want,
             "%s: byte %zu of the compressed file: compressed stream ends early (the .gz file is cut short) after all "
             "12 data bytes, inside a gzip trailer (CRC and length) or a further member",
             p, n - 8);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}

/* A gzip stream that holds more than its IDX header declares is read to its end before
 * the extra bytes are blamed: a damaged stream (its CRC says so) is named as damaged,
 * not as a file with trailing data. */
Test(idx, gzip_damage_is_no_trailing_data) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "long.gz"), msg[MLCRT_MSG_SIZE], want[512];
    uint32_t dims[3] = {3, 2, 2};
    uint8_t data[16];
    memcpy(data, pix, 12);
    memset(data + 12, 7, 4);
    write_idx(p, 1, 0x08, 3, dims, data, 16);
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want,
             "%s: byte 28 of the decompressed data: unexpected trailing data after the 12 declared data bytes", p);
    cr_assert_str_eq(msg, want); /* intact: the bytes are really there */
    size_t n = 0;
    uint8_t *gz = tu_read(p, &n);
    gz[n - 8] ^= 0x5a; /* the CRC no longer matches the data */
    tu_write(p, gz, n);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    cr_assert(strstr(msg, "corrupt gzip data at byte") && strstr(msg, "incorrect data check"), "%s", msg);
    tu_rmrf(dir);
}

/* Bytes after the gzip data are refused like bytes after a raw file's (gzread ignored
 * them); gzip members one after another are one stream, as gzip -d reads them; corrupt
 * compressed data is named with where it is in the file. */
Test(idx, gzip_trailing_data_members_and_corruption) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "i.gz"), msg[MLCRT_MSG_SIZE], want[512];
    uint32_t dims[3] = {3, 2, 2};
    write_idx(p, 1, 0x08, 3, dims, pix, 12);
    size_t n = 0;
    uint8_t *gz = tu_read(p, &n), *more = tu_track(malloc(2 * n + 8), free);
    mlcrt_idx idx;
    memcpy(more, gz, n);
    memcpy(more + n, "garbage\n", 8);
    tu_write(p, more, n + 8);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte %zu of the compressed file: unexpected data after the end of the gzip stream",
             p, n);
    cr_assert_str_eq(msg, want);
    memset(more + n, 0, 8); /* zero padding is no gzip member either */
    tu_write(p, more, n + 8);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EFORMAT);
    cr_assert_str_eq(msg, want);
    /* the header in one member, the pixels in another: the same file as one */
    char *h = tu_path(dir, "h.gz"), *d = tu_path(dir, "d.gz");
    uint8_t raw[16 + 12] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(raw + 16, pix, 12);
    gzFile g = gzopen(h, "wb");
    cr_assert_eq(gzwrite(g, raw, 16), 16);
    gzclose(g);
    g = gzopen(d, "wb");
    cr_assert_eq(gzwrite(g, raw + 16, 12), 12);
    gzclose(g);
    size_t nh, nd;
    uint8_t *bh = tu_read(h, &nh), *bd = tu_read(d, &nd), *both = tu_track(malloc(nh + nd), free);
    memcpy(both, bh, nh);
    memcpy(both + nh, bd, nd);
    tu_write(p, both, nh + nd);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(idx.nbytes, 12);
    cr_assert_arr_eq(idx.data, pix, 12);
    mlcrt_idx_free(&idx);
    /* a flipped bit in the CRC */
    gz[n - 8] ^= 1;
    tu_write(p, gz, n);
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_EIO);
    snprintf(want, sizeof want, "%s: read error: corrupt gzip data at byte ", p);
    cr_assert(strncmp(msg, want, strlen(want)) == 0 && strstr(msg, " of the compressed file: incorrect data check"),
              "%s", msg);
    tu_rmrf(dir);
}

/* A header may declare up to 16 GiB; a short file that declares 8 GiB is reported as
 * truncated without allocating the 8 GiB first (found by fuzz/fuzz_idx: the reader
 * malloc'ed what the header said). The address space is capped below that where no
 * sanitizer needs it, so an allocation of the declared size fails the test. */
Test(idx, declared_size_not_allocated_up_front) {
#ifndef __SANITIZE_ADDRESS__
    struct rlimit lim = {INT64_C(2) << 30, INT64_C(2) << 30};
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
#endif
    char *dir = tu_tmpdir(), *p = tu_path(dir, "big");
    uint32_t dims[3] = {0x20000, 0x100, 0x100}; /* 2^33 bytes */
    write_idx(p, 0, 0x08, 3, dims, pix, 11);
    char msg[MLCRT_MSG_SIZE], want[512];
    mlcrt_idx idx;
    cr_assert_eq(mlcrt_idx_read(p, 3, &idx, msg, sizeof msg), MLCRT_ETRUNC);
    snprintf(want, sizeof want,
             "%s: byte 27: data ended early: expected 8589934592 data bytes after the 16-byte "
             "header, found 11",
             p);
    cr_assert_str_eq(msg, want);
    tu_rmrf(dir);
}
