/* test_data_messages.c - the trainer's exact message for each kind of bad --data that
 * used to be misreported: a dangling symbolic link or a file as the directory, an
 * unreadable directory, a dangling link, FIFO or device as a data file (no hang on the
 * FIFO), a .gz cut short, a batch size past its limit. */
#include <criterion/criterion.h>
#include <zlib.h>

#include <sys/stat.h>
#include <unistd.h>

#include "mlcrt_error.h"
#include "synth_data.h"
#include "testutil.h"
#include "tiny_model.h"

/* Runs the trainer on --data dir and asserts exit 1 with exactly "error: WANT\n". */
static void expect_error_of(const mlc_model_api *api, const char *dir, const char *want) {
    run_result r;
    tu_run(&r, api, "net", (const char *[]){"--data", dir, "--quiet", NULL});
    char line[2048];
    snprintf(line, sizeof line, "error: %s\n", want);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_str_eq(r.err, line);
    cr_assert_str_eq(r.out, "");
}

static void expect_error(const char *dir, const char *want) { expect_error_of(&tiny_api, dir, want); }

Test(data_messages, data_directory_itself) {
    char *d = tu_tmpdir(), want[1024];
    char *link = tu_path(d, "link"), *file = tu_path(d, "file");
    cr_assert_eq(symlink("nowhere", link), 0);
    snprintf(want, sizeof want,
             "%s: cannot open dataset directory: symbolic link to 'nowhere', which does not "
             "exist",
             link);
    expect_error(link, want);
    tu_write(file, "x", 1);
    snprintf(want, sizeof want, "%s: expected a dataset directory, found a regular file", file);
    expect_error(file, want);
    /* a loop of links is said as one, not as a link to nothing */
    char *la = tu_path(d, "la"), *lb = tu_path(d, "lb");
    cr_assert_eq(symlink("lb", la), 0);
    cr_assert_eq(symlink("la", lb), 0);
    snprintf(want, sizeof want, "%s: cannot open dataset directory: Too many levels of symbolic links", la);
    expect_error(la, want);
    if (geteuid() != 0) { /* root reads any directory */
        char *locked = tu_path(d, "locked");
        cr_assert_eq(mkdir(locked, 0), 0);
        snprintf(want, sizeof want, "%s: cannot open dataset directory: Permission denied", locked);
        expect_error(locked, want);
        chmod(locked, 0755);
    }
    tu_rmrf(d);
}

Test(data_messages, data_files_that_are_no_files) {
    char *d = tu_tmpdir(), want[1024];
    char *img = tu_path(d, "train-images-idx3-ubyte");
    write_idx_labels(tu_path(d, "train-labels-idx1-ubyte"), 200, -1);
    cr_assert_eq(symlink("gone", img), 0);
    snprintf(want, sizeof want, "%s: cannot open: symbolic link to 'gone', which does not exist", img);
    expect_error(d, want);
    unlink(img);
    cr_assert_eq(mkfifo(img, 0644), 0); /* opening it would wait for a writer forever */
    snprintf(want, sizeof want, "%s: expected an IDX file, found a FIFO (named pipe)", img);
    expect_error(d, want);
    unlink(img);
    cr_assert_eq(symlink("/dev/zero", img), 0);
    snprintf(want, sizeof want, "%s: expected an IDX file, found a character device", img);
    expect_error(d, want);
    /* a loop of links is the file's fault, not the directory's: named as the file */
    unlink(img);
    cr_assert_eq(symlink("loop_a", img), 0);
    cr_assert_eq(symlink("loop_b", tu_path(d, "loop_a")), 0);
    cr_assert_eq(symlink("loop_a", tu_path(d, "loop_b")), 0);
    snprintf(want, sizeof want, "%s: cannot open: Too many levels of symbolic links", img);
    expect_error(d, want);
    /* likewise a file looked for after the directory was recognised */
    unlink(img);
    write_idx_images(img, 200, 28, 28, 1);
    write_idx_images(tu_path(d, "t10k-images-idx3-ubyte"), 50, 28, 28, 2);
    char *tl = tu_path(d, "t10k-labels-idx1-ubyte");
    cr_assert_eq(symlink("loop_a", tl), 0);
    snprintf(want, sizeof want, "%s: cannot open: Too many levels of symbolic links", tl);
    expect_error(d, want);

    char *c = tu_tmpdir(), *batch = tu_path(c, "data_batch_1.bin");
    cr_assert_eq(symlink("/dev/zero", batch), 0);
    snprintf(want, sizeof want, "%s: expected a CIFAR batch file, found a character device", batch);
    expect_error_of(&tiny_c10_api, c, want);
    unlink(batch);
    cr_assert_eq(mkfifo(batch, 0644), 0);
    snprintf(want, sizeof want, "%s: expected a CIFAR batch file, found a FIFO (named pipe)", batch);
    expect_error_of(&tiny_c10_api, c, want);
    unlink(batch);
    cr_assert_eq(symlink("data_batch_1.bin", batch), 0);
    snprintf(want, sizeof want, "%s: cannot open: Too many levels of symbolic links", batch);
    expect_error_of(&tiny_c10_api, c, want);
    tu_rmrf(c);
    /* a training batch cut at a record boundary: fewer records than the others */
    c = cifar10_dir();
    batch = tu_path(c, "data_batch_3.bin");
    write_cifar(batch, 1, 1, 10, 3);
    snprintf(want, sizeof want,
             "%s: byte 3073: the file ends after 1 record, while %s holds 8: expected as many in every batch file (is "
             "it cut short?)",
             batch, tu_path(c, "data_batch_1.bin"));
    expect_error_of(&tiny_c10_api, c, want);
    tu_rmrf(c);
    tu_rmrf(d);
}

/* A .gz cut inside its own header decompresses to nothing: that is a cut file, not a
 * file "ended inside the magic number"; cut in the data it says so too. */
Test(data_messages, gz_cut_short) {
    char *d = mnist_dir(), want[1024];
    char *raw = tu_path(d, "train-images-idx3-ubyte"), *gz = tu_path(d, "train-images-idx3-ubyte.gz");
    size_t n;
    uint8_t *f = tu_read(raw, &n);
    gzFile z = gzopen(gz, "wb");
    cr_assert(z);
    cr_assert_eq(gzwrite(z, f, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(z), Z_OK);
    unlink(raw);
    size_t zn;
    uint8_t *zf = tu_read(gz, &zn);
    tu_write(gz, zf, 7); /* inside the 10-byte gzip header */
    snprintf(want, sizeof want,
             "%s: byte 0: compressed stream ends early (the .gz file is cut short) inside the "
             "IDX file's 4-byte magic number",
             gz);
    expect_error(d, want);
    tu_write(gz, zf, zn - 8 - 200); /* inside the compressed data */
    run_result r;
    tu_run(&r, &tiny_api, "net", (const char *[]){"--data", d, "--quiet", NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: byte ", gz);
    cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "%s", r.err);
    cr_assert_not_null(strstr(r.err,
                              ": compressed stream ends early (the .gz file is cut short): "
                              "expected 156800 data bytes after the 16-byte header, found "),
                       "%s", r.err);
    tu_rmrf(d);
}

Test(data_messages, batch_past_its_limit) {
    run_result r;
    tu_run(&r, &tiny_api, "net", (const char *[]){"--batch", "2147483648", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "error: --batch: expected an integer from 1 to 2147483647, found '2147483648'\n");
    tu_run(&r, &tiny_api, "net", (const char *[]){"--batch", "-4", NULL});
    cr_assert_str_eq(r.err, "error: --batch: expected a positive integer, found '-4'\n");
}

/* A model whose batch_norm has one value per channel and sample (min_train_batch 2) is
 * not trained on a batch of one: flags that would make one are refused before training
 * (docs/trainer.md), and those that do not train as usual. */
Test(data_messages, batch_norm_needs_two_samples) {
    char *d = mnist_dir(); /* 200 training samples */
    mlc_model_api bn = tiny_api;
    bn.min_train_batch = 2;
    run_result r;
    tu_run(&r, &bn, "net", (const char *[]){"--data", d, "--batch", "3", "--train-limit", "199", "--quiet", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: model 'tiny' has a batch_norm with one value per channel and sample, which "
                     "needs batches of at least 2 samples: the last batch of each epoch has 1 (199 "
                     "training samples in batches of 3); change --batch or --train-limit\n");
    cr_assert_str_eq(r.out, "");
    tu_run(&r, &bn, "net", (const char *[]){"--data", d, "--batch", "1", "--quiet", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: model 'tiny' has a batch_norm with one value per channel and sample, which "
                     "needs batches of at least 2 samples: --batch 1\n");
    /* --accum 2 --batch 4: steps of 8, the last of 200 % 8 = 0: fine; of 197: 5 = 4 + 1 */
    tu_run(&r, &bn, "net",
           (const char *[]){"--data", d, "--batch", "4", "--accum", "2", "--train-limit", "197", "--quiet", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: model 'tiny' has a batch_norm with one value per channel and sample, which "
                     "needs batches of at least 2 samples: the last batch of each epoch has 1 (197 "
                     "training samples in batches of 4); change --batch or --train-limit\n");
    tu_run(&r, &bn, "net", (const char *[]){"--data", d, "--batch", "3", "--val", "2", "--quiet", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err); /* 198 = 66 x 3 */
    cr_assert_eq(strncmp(r.out, "test accuracy: ", 15), 0, "%s", r.out);
    tu_rmrf(d);
}

/* IDX images are checked dimension by dimension against an input with a shape: 784
 * values of 14 x 56 do not feed a [1, 28, 28] input (a flat [784] input takes them). */
Test(data_messages, image_dims_against_a_shaped_input) {
    char *d = mnist_dir(), want[1024];
    char *img = tu_path(d, "train-images-idx3-ubyte");
    write_idx_images(img, 200, 14, 56, 1);
    static const mlc_io_desc grid[2] = {{"image", MLC_F32, 3, {1, 28, 28}, 784, 1}, {"label", MLC_I32, 0, {0}, 1, 0}};
    mlc_model_api shaped = tiny_api;
    shaped.inputs = grid;
    snprintf(want, sizeof want,
             "%s: byte 8: the images are 14 x 56, model input 'image' (f32[1, 28, 28]) expects 28 x 28", img);
    expect_error_of(&shaped, d, want);
    /* tiny's input is f32[784]: any image of 784 pixels, but the test images must have
     * the training images' rows and columns (a model trained on 14 x 56 measures nothing
     * on 28 x 28) */
    char *t10k = tu_path(d, "t10k-images-idx3-ubyte");
    snprintf(want, sizeof want, "%s: byte 8: the images are 28 x 28, the training images (%s) 14 x 56", t10k, img);
    expect_error(d, want);
    run_result r;
    write_idx_images(t10k, 50, 14, 56, 2);
    tu_run(&r, &tiny_api, "net", (const char *[]){"--data", d, "--epochs", "1", "--quiet", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    write_idx_images(t10k, 50, 28, 28, 2);
    /* predict names the image file */
    char *p = tu_path(d, "m.ckpt");
    write_idx_images(img, 200, 28, 28, 1);
    tu_run(&r, &shaped, "net", (const char *[]){"--data", d, "--epochs", "1", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* the test split's file is named, not the directory, with the byte of its rows */
    char *test_img = tu_path(d, "t10k-images-idx3-ubyte");
    write_idx_images(test_img, 50, 14, 56, 1);
    snprintf(want, sizeof want,
             "%s: byte 8: the images are 14 x 56, model input 'image' (f32[1, 28, 28]) expects 28 x 28", test_img);
    expect_error_of(&shaped, d, want);
    write_idx_images(img, 3, 14, 56, 1);
    tu_run(&r, &shaped, "net", (const char *[]){"predict", p, img, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: byte 8: the images are 14 x 56, model input 'image' (f32[1, 28, 28]) expects 28 x 28\n", img);
    cr_assert_str_eq(r.err, want);
    tu_rmrf(d);
}

/* A u8 IDX file of images [n, ...dims] (3 or 4 dimensions in all). */
static void write_idx_nd(const char *path, int ndims, const uint32_t *dims) {
    size_t numel = 1;
    for (int d = 0; d < ndims; d++) numel *= dims[d];
    uint8_t *b = calloc(1, 4 + 4 * (size_t)ndims + numel);
    b[2] = 8;
    b[3] = (uint8_t)ndims;
    for (int d = 0; d < ndims; d++)
        for (int i = 0; i < 4; i++) b[4 + 4 * d + i] = (uint8_t)(dims[d] >> (24 - 8 * i));
    for (size_t i = 0; i < numel; i++) b[4 + 4 * ndims + i] = (uint8_t)(i * 7 % 251);
    tu_write(path, b, 4 + 4 * (size_t)ndims + numel);
    free(b);
}

/* predict reads a multi-channel model's images from a 4-dimensional IDX file [n, C, H, W];
 * a 3-dimensional one ([n, H, W], one channel) or another channel count is refused at its
 * field (each message used to point to another file that was refused as well). */
Test(data_messages, predict_reads_channels_from_a_4d_idx) {
    char *d = cifar10_dir(), *p = tu_path(d, "c.ckpt"), *img = tu_path(d, "img"), want[1024];
    run_result r;
    tu_run(&r, &tiny_c10_api, "net", (const char *[]){"--data", d, "--epochs", "1", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    write_idx_nd(img, 4, (const uint32_t[]){3, 3, 32, 32});
    tu_run(&r, &tiny_c10_api, "net", (const char *[]){"predict", p, img, "--top", "1", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strncmp(r.out, "0:  ", 4) == 0 && strstr(r.out, "\n1:  ") && strstr(r.out, "\n2:  "), "%s", r.out);
    cr_assert_null(strstr(r.out, "\n3:"), "%s", r.out);
    static const struct {
        int ndims;
        uint32_t dims[4];
        const char *err;
    } bad[] = {
        {3,
         {3, 32, 32},
         "byte 3: model input 'image' (f32[3, 32, 32]) takes 3-channel images: expected an IDX file [n, 3, 32, 32] (4 dimensions), found 3 (images of 32 x 32)"},
        {4, {3, 1, 32, 32}, "byte 8: the images have 1 channel, model input 'image' (f32[3, 32, 32]) expects 3"},
        {4, {3, 3, 32, 16}, "byte 12: the images are 32 x 16, model input 'image' (f32[3, 32, 32]) expects 32 x 32"},
        {2,
         {3, 3072},
         "byte 3: expected dimension count 3 ([n, rows, cols]) or 4 ([n, channels, rows, cols]), found 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_idx_nd(img, bad[i].ndims, bad[i].dims);
        tu_run(&r, &tiny_c10_api, "net", (const char *[]){"predict", p, img, NULL});
        cr_assert_eq(r.status, 1, "case %zu", i);
        snprintf(want, sizeof want, "error: %s: %s\n", img, bad[i].err);
        cr_assert_str_eq(r.err, want, "case %zu", i);
    }
    tu_rmrf(d);
}

/* A file there both raw and as .gz is refused (a stale copy of other data was read
 * without a word); a --data ending in '/' names its files with one slash. */
Test(data_messages, raw_and_gz_copies_and_trailing_slash) {
    char *d = mnist_dir(), want[1024], slashed[1024];
    char *raw = tu_path(d, "train-labels-idx1-ubyte");
    size_t n;
    uint8_t *b = tu_read(raw, &n);
    tu_write(tu_path(d, "train-labels-idx1-ubyte.gz"), b, n);
    snprintf(want, sizeof want,
             "%s: both train-labels-idx1-ubyte and train-labels-idx1-ubyte.gz exist, and which one to read is not "
             "known; remove one",
             d);
    expect_error(d, want);
    unlink(tu_path(d, "train-labels-idx1-ubyte.gz"));
    write_idx_labels(raw, 199, -1);
    snprintf(slashed, sizeof slashed, "%s/", d);
    snprintf(want, sizeof want, "%s: byte 4: expected 200 labels (the images' count in %s), found 199", raw,
             tu_path(d, "train-images-idx3-ubyte"));
    expect_error(slashed, want);
    tu_rmrf(d);
}
