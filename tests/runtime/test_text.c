/* test_text.c - token corpora and language-model training with the hand-written bigram
 * model (tiny_lm.c): windows and splits at exact token positions, determinism, uint16
 * token files, every bad-input message, --max-steps as the run length, --eval-every,
 * bits per character, and the sample mode (top-k 1 is the argmax; a trained bigram
 * writes its corpus). Asserts texts and values, never timings. */
#include <criterion/criterion.h>

#include <math.h>
#include <unistd.h>

#include "data.h"
#include "io_bind.h"
#include "mlcrt_error.h"
#include "sample.h"
#include "testutil.h"
#include "text_data.h"
#include "tiny_lm.h"
#include "tiny_model.h"

static void run(run_result *r, const mlc_model_api *api, const char *const *args) { tu_run(r, api, "net", args); }

/* A text file of n bytes repeating `period`. */
static char *text_file(const char *dir, const char *name, const char *period, size_t n) {
    char *p = tu_path(dir, name), *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) b[i] = period[i % strlen(period)];
    tu_write(p, b, n);
    free(b);
    return p;
}

/* DIR/name of uint16 ids first, first + 1, ... (n of them), little-endian. */
static void token_file(const char *dir, const char *name, unsigned first, size_t n) {
    uint8_t *b = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        b[2 * i] = (uint8_t)((first + i) & 0xff);
        b[2 * i + 1] = (uint8_t)((first + i) >> 8);
    }
    tu_write(tu_path(dir, name), b, 2 * n);
    free(b);
}

static double field(const char *line, const char *name) {
    const char *p = strstr(line, name);
    cr_assert_not_null(p, "no %s in %s", name, line);
    return strtod(p + strlen(name), NULL);
}

static int count_lines(const char *s, const char *prefix) {
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

/* ---- corpora ---- */

Test(text, text_file_split_and_validation_windows) {
    char *d = tu_tmpdir(), msg[MLCRT_MSG_SIZE];
    /* byte i is 32 + i % 200: a window's first byte tells where it starts */
    char *b = malloc(1000);
    for (int i = 0; i < 1000; i++) b[i] = (char)(32 + i % 200);
    char *p = tu_path(d, "c.txt");
    tu_write(p, b, 1000);
    free(b);
    mlcrt_lm_shape s = {16, 256, 0};
    mlc_dataset tr, va;
    cr_assert_eq(mlcrt_text_load(&tr, p, 0, &s, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(mlcrt_text_load(&va, p, 1, &s, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    /* training: the first 900 bytes, (900 - 1) / 16 windows an epoch */
    cr_assert_eq(tr.text->n_ids, 900);
    cr_assert_eq(tr.n, 56);
    cr_assert_eq(tr.sample_numel, 16);
    cr_assert_eq(mlcrt_dataset_label_numel(&tr), 16);
    /* validation: the last 100, (100 - 1) / 16 = 6 windows evenly spaced over 0..83 */
    cr_assert_eq(va.text->n_ids, 100);
    cr_assert_eq(va.n, 6);
    int64_t want[6] = {0, 16, 33, 49, 66, 83};
    int32_t x[6 * 16], y[6 * 16];
    mlcrt_batch_gather_aug(&va, NULL, 0, 6, x, y, NULL, 0, 0);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 16; j++) {
            cr_assert_eq(x[i * 16 + j], 32 + (900 + want[i] + j) % 200, "window %d", i);
            cr_assert_eq(y[i * 16 + j], 32 + (900 + want[i] + j + 1) % 200);
        }
    /* --test-limit / --train-limit cap the windows */
    mlcrt_dataset_free(&va);
    cr_assert_eq(mlcrt_text_load(&va, p, 1, &s, 4, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(va.n, 4);
    cr_assert_eq(va.text->starts[3], 83);
    mlcrt_dataset_free(&va);
    mlcrt_dataset_free(&tr);
    tu_rmrf(d);
}

Test(text, token_files_and_random_windows) {
    char *d = tu_tmpdir(), msg[MLCRT_MSG_SIZE];
    token_file(d, "train.bin", 0, 10000); /* id i at position i */
    token_file(d, "val.bin", 20000, 300);
    mlcrt_lm_shape s = {16, 65535, 0};
    mlc_dataset tr, va;
    cr_assert_eq(mlcrt_text_load(&tr, d, 0, &s, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(mlcrt_text_load(&va, d, 1, &s, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(tr.n, 9999 / 16);
    cr_assert_eq(va.n, 299 / 16);
    cr_assert_eq(va.text->ids[0], 20000);
    /* training windows: seeded starts, independent of the batch and of the order */
    int32_t x[4 * 16], y[4 * 16], x2[16], y2[16];
    mlcrt_batch_gather_aug(&tr, NULL, 0, 4, x, y, NULL, 7, 0);
    const int64_t want[4] = {mlcrt_text_window_start(7, 0, 0, 10000 - 16), mlcrt_text_window_start(7, 0, 1, 10000 - 16),
                             mlcrt_text_window_start(7, 0, 2, 10000 - 16),
                             mlcrt_text_window_start(7, 0, 3, 10000 - 16)};
    const int64_t golden[4] = {8480, 8000, 3469, 9845}; /* Philox's: a change shows here */
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(want[i], golden[i], "window %d starts at %lld", i, (long long)want[i]);
        for (int j = 0; j < 16; j++) {
            cr_assert_eq(x[i * 16 + j], want[i] + j);
            cr_assert_eq(y[i * 16 + j], want[i] + j + 1);
        }
    }
    int64_t perm[4] = {3, 2, 1, 0};
    mlcrt_batch_gather_aug(&tr, perm, 1, 1, x2, y2, NULL, 7, 0);
    cr_assert_eq(x2[0], want[2]);
    mlcrt_batch_gather_aug(&tr, NULL, 0, 1, x2, y2, NULL, 7, 1); /* another epoch */
    cr_assert_neq(x2[0], want[0]);
    mlcrt_batch_gather_aug(&tr, NULL, 0, 1, x2, y2, NULL, 8, 0); /* another seed */
    cr_assert_neq(x2[0], want[0]);
    /* views (a shard, a held-out part): their samples are the dataset's from lo on */
    mlc_dataset v;
    mlcrt_text vt;
    mlcrt_dataset_view(&tr, 2, 4, &v, &vt);
    cr_assert_eq(v.n, 2);
    mlcrt_batch_gather_aug(&v, NULL, 0, 1, x2, y2, NULL, 7, 0);
    cr_assert_eq(x2[0], want[2]);
    mlcrt_dataset_view(&va, 3, 5, &v, &vt);
    mlcrt_batch_gather_aug(&v, NULL, 1, 1, x2, y2, NULL, 0, 0);
    cr_assert_eq(x2[0], 20000 + va.text->starts[4]);
    cr_assert_eq(va.text->first, 0);
    float ix[12];
    int32_t iy[6];
    mlc_dataset img = {6, 1, {2}, 2, ix, iy, 10, NULL, NULL, 0};
    mlcrt_dataset_view(&img, 2, 5, &v, NULL);
    cr_assert(v.n == 3 && v.x == ix + 4 && v.y == iy + 2 && !v.text);
    mlcrt_dataset_free(&tr);
    mlcrt_dataset_free(&va);
    tu_rmrf(d);
}

Test(text, bad_corpora_say_what_is_wrong) {
    char *d = tu_tmpdir(), *tok = tu_path(d, "tok"), *none = tu_path(d, "none");
    char *empty = text_file(d, "empty.txt", "a", 0), *shrt = text_file(d, "short.txt", "ab", 100);
    char *z = tu_path(d, "z.txt"), *dangling = tu_path(d, "dangling.txt");
    cr_assert_eq(symlink("gone.txt", dangling), 0);
    char buf[400];
    memset(buf, 'a', sizeof buf);
    buf[5] = 'z';
    tu_write(z, buf, sizeof buf);
    cr_assert_eq(system(NULL) != 0, 1);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s'", tok, none);
    cr_assert_eq(system(cmd), 0);
    static char want[12][512];
    // clang-format off
    struct {
        const mlc_model_api *api;
        const char *data;
        const char *extra;
        const char *fmt;
    } cases[] = {
        {&tiny_lm_api, "/nonexistent/c.txt", NULL, "error: /nonexistent/c.txt: cannot open: No such file or directory\n"},
        {&tiny_lm_api, empty, NULL, "error: %s: empty file, expected text\n"},
        {&tiny_lm_api, shrt, NULL, "error: %s: 100 bytes, expected at least 170 (its last 10 %% is the validation split, which needs a window of T+1 = 17 tokens)\n"},
        {&tiny_lm100_api, z, NULL, "error: %s: byte 5 is 122, expected ids below the model's vocabulary of 100\n"},
        {&tiny_lm_api, none, NULL, "error: %s: no token corpus here: expected a text file, or a directory with train.bin and val.bin (uint16 token ids)\n"},
        /* a device is refused unread (/dev/zero never ended), a dangling link named */
        {&tiny_lm_api, "/dev/zero", NULL, "error: %s: expected a text file, found a character device\n"},
        {&tiny_lm_api, dangling, NULL, "error: %s: cannot open: symbolic link to 'gone.txt', which does not exist\n"},
        {&tiny_lm_api, z, "--val", "error: --val: model 'tiny_lm' reads tokens; its validation windows come from the corpus (the last 10 %% of a text file, or val.bin)\n"},
        {&tiny_lm_api, z, "--mean", "error: --mean/--std: model 'tiny_lm' reads tokens, which are not normalised\n"},
        {&tiny_lm_api, z, "--augment", "error: --augment: model 'tiny_lm' reads tokens, which are not augmented\n"},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want[i], sizeof want[i], cases[i].fmt, cases[i].data);
        const char *val[] = {"--data", cases[i].data, "--val", "5", NULL};
        const char *mean[] = {"--data", cases[i].data, "--mean", "0.5", "--std", "1", NULL};
        const char *aug[] = {"--data", cases[i].data, "--augment", "flip", NULL};
        const char *plain[] = {"--data", cases[i].data, NULL};
        run_result r;
        run(&r, cases[i].api,
            !cases[i].extra                         ? plain
            : strcmp(cases[i].extra, "--val") == 0  ? val
            : strcmp(cases[i].extra, "--mean") == 0 ? mean
                                                    : aug);
        /* an image-only flag is one the token model refuses: status 1, as the docs class it
         * (it was 2, a command line unreadable on its own, while predict gave 1) */
        cr_assert_eq(r.status, 1, "case %zu", i);
        cr_assert_str_eq(r.err, want[i], "case %zu", i);
        cr_assert_str_eq(r.out, "");
    }
    /* uint16 files: odd size, too short, empty, ids beyond the vocabulary */
    struct {
        unsigned first;
        size_t n_train, n_val;
        int odd;
        const char *fmt;
    } bins[] = {
        {0, 100, 30, 1, "error: %s/train.bin: 201 bytes, expected uint16 token ids (an even size)\n"},
        {0, 100, 10, 0, "error: %s/val.bin: 10 tokens, expected at least a window of T+1 = 17\n"},
        {0, 100, 0, 0, "error: %s/val.bin: empty file, expected uint16 token ids\n"},
        {200, 100, 30, 0, "error: %s/train.bin: token 56 is 256, expected ids below the model's vocabulary of 256\n"},
    };
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        token_file(tok, "train.bin", bins[i].first, bins[i].n_train);
        token_file(tok, "val.bin", 0, bins[i].n_val);
        if (bins[i].odd) {
            FILE *f = fopen(tu_path(tok, "train.bin"), "ab");
            fputc(0, f);
            fclose(f);
        }
        char w[512];
        snprintf(w, sizeof w, bins[i].fmt, tok);
        run_result r;
        run(&r, &tiny_lm_api, (const char *[]){"--data", tok, NULL});
        cr_assert_eq(r.status, 1, "bin case %zu", i);
        cr_assert_str_eq(r.err, w, "bin case %zu", i);
    }
    /* val.bin a directory: refused by what it is, not as a read error */
    token_file(tok, "train.bin", 0, 100);
    char cmd2[600], w[600];
    snprintf(cmd2, sizeof cmd2, "rm -f '%s/val.bin' && mkdir '%s/val.bin'", tok, tok);
    cr_assert_eq(system(cmd2), 0);
    snprintf(w, sizeof w, "error: %s/val.bin: expected a file of uint16 token ids, found a directory\n", tok);
    run_result r;
    run(&r, &tiny_lm_api, (const char *[]){"--data", tok, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, w);
    tu_rmrf(d);
}

/* A checkpoint of api's freshly created model in dir. */
static char *fresh_ckpt(const mlc_model_api *api, const char *dir, const char *name) {
    char *p = tu_path(dir, name);
    void *m = api->create(1, 1);
    cr_assert_eq(mlcrt_save(api, m, p), 0);
    api->destroy(m);
    return p;
}

Test(text, modes_and_flags_that_do_not_fit_the_model) {
    char *d = tu_tmpdir(), *ti = fresh_ckpt(&tiny_api, d, "tiny.ckpt"), *lm = fresh_ckpt(&tiny_lm_api, d, "lm.ckpt");
    run_result r;
    run(&r, &tiny_api, (const char *[]){"--eval-every", "5", "--quiet", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: --eval-every: model 'tiny' has no validation set; hold out "
                     "training samples with --val N\n");
    run(&r, &tiny_api, (const char *[]){"sample", ti, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "error: sample: model 'tiny' does not read tokens (it has no input i32[T])\n");
    run(&r, &tiny_lm_api, (const char *[]){"predict", lm, "y", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: predict: model 'tiny_lm' reads tokens, not images; generate "
                     "text with `sample CHECKPOINT`\n");
    run(&r, &tiny_lm_api, (const char *[]){"sample", "x.ckpt", "--temperature", "0", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "error: --temperature: expected a positive number, found '0'\n");
    run(&r, &tiny_lm_api, (const char *[]){"sample", "x.ckpt", "--top-k", "-1", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "error: --top-k: expected a positive integer, found '-1'\n");
    /* --top-k beyond the vocabulary was taken as all of it without a word */
    run(&r, &tiny_lm_api, (const char *[]){"sample", "x.ckpt", "--top-k", "300", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "error: --top-k: expected 1 to 256 (model 'tiny_lm' has a vocabulary of 256), found 300\n");
    /* the default prompt, a newline, is no token of a vocabulary of 5: said so, not blamed on --prompt */
    run(&r, &tiny_lm5_api, (const char *[]){"sample", fresh_ckpt(&tiny_lm5_api, d, "lm5.ckpt"), NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: sample: the default prompt (a newline, id 10) is outside the model's vocabulary of "
                     "5; give --prompt with ids below it\n");
    run(&r, &tiny_lm_api, (const char *[]){"sample", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "error: sample: expected a checkpoint path (usage: net sample CHECKPOINT [flags])\n");
    tu_rmrf(d);
}

/* ---- training ---- */

Test(text, trains_with_bits_per_char_eval_every_and_max_steps) {
    char *d = tu_tmpdir(), *logp = tu_path(d, "log.csv"), *ck = tu_path(d, "a.ckpt");
    /* 2000 bytes: 1800 to train, (1800 - 1) / 16 = 112 windows an epoch, 14 steps of 8 */
    char *p = text_file(d, "c.txt", "abcd", 2000);
    const char *args[] = {"--data",     p,        "--max-steps", "20", "--eval-every", "10",
                          "--schedule", "cosine", "--log",       logp, "--save",       ck,
                          NULL};
    run_result r;
    run(&r, &tiny_lm_api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.err, "");
    /* --max-steps alone is the length: two epochs, the second of 6 steps */
    char lines[6][256];
    int n = 0;
    for (const char *q = r.out; *q && n < 6; q = strchr(q, '\n') + 1, n++)
        snprintf(lines[n], sizeof lines[n], "%.*s", (int)(strchr(q, '\n') - q), q);
    cr_assert_eq(n, 5, "%s", r.out);
    cr_assert(strncmp(lines[0], "step 10  val_loss ", 18) == 0, "%s", r.out);
    cr_assert(strncmp(lines[1], "epoch 1/2  loss ", 16) == 0, "%s", r.out);
    cr_assert(strncmp(lines[2], "step 20  val_loss ", 18) == 0, "%s", r.out);
    cr_assert(strncmp(lines[3], "epoch 2/2  loss ", 16) == 0, "%s", r.out);
    cr_assert(strncmp(lines[4], "val loss: ", 10) == 0, "%s", r.out);
    /* bits per character: the loss over ln 2, to the printed digits */
    for (int i = 0; i < 5; i++) {
        const char *lk = i == 4 ? "val loss: " : i % 2 ? "  loss " : "val_loss ";
        const char *bk = i == 4 ? "val bpc: " : i % 2 ? "  bpc " : "val_bpc ";
        double loss = field(lines[i], lk), bpc = field(lines[i], bk);
        cr_assert(fabs(bpc - loss / log(2.0)) < 6e-5, "%s", lines[i]);
    }
    cr_assert(field(lines[1], "val_bpc ") < 1.0, "a bigram learns abcd: %s", lines[1]);
    /* the last evaluation is the model the run ends with */
    cr_assert_eq(field(lines[2], "val_loss "), field(lines[3], "val_loss "));
    cr_assert_eq(field(lines[3], "val_loss "), field(lines[4], "val loss: "));
    cr_assert(strstr(lines[1], " tokens/s"));
    size_t len;
    char *csv = (char *)tu_read(logp, &len);
    csv[len] = '\0'; /* tu_read leaves room for it */
    cr_assert(strncmp(csv, "kind,epoch,step,loss,lr,bpc,val_loss,val_bpc,seconds\n", 53) == 0, "%s", csv);
    cr_assert_eq(count_lines(csv, "step,"), 20);
    cr_assert_eq(count_lines(csv, "eval,"), 2);
    cr_assert_eq(count_lines(csv, "epoch,"), 2);
    cr_assert_not_null(strstr(csv, "\neval,1,10,,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\nstep,2,20,"), "%s", csv);
    /* cosine over the 20 steps: the last step's lr is 20 (1 + cos(19 pi / 20)) / 2 */
    const char *last = strstr(csv, "\nstep,2,20,");
    double loss, lr, bpc;
    cr_assert_eq(sscanf(last, "\nstep,2,20,%lf,%lf,%lf,,", &loss, &lr, &bpc), 3, "%s", last);
    cr_assert(fabs(lr - 20 * (1 + cos(19 * acos(-1.0) / 20)) / 2) < 1e-4 * lr, "lr %g", lr);
    cr_assert(fabs(bpc - loss / log(2.0)) < 6e-5);
    tu_rmrf(d);
}

Test(text, same_seed_same_run_jsonl_and_eval) {
    char *d = tu_tmpdir(), *a = tu_path(d, "a.ckpt"), *b = tu_path(d, "b.ckpt");
    char *la = tu_path(d, "a.jsonl"), *lb = tu_path(d, "b.jsonl");
    char *p = text_file(d, "c.txt", "the cat sat on the mat\n", 3000);
    const char *ra[] = {"--data", p,  "--epochs",     "2",     "--seed",       "9", "--save", a,
                        "--log",  la, "--log-format", "jsonl", "--eval-every", "7", NULL};
    const char *rb[] = {"--data", p,  "--epochs",     "2",     "--seed",       "9", "--save",        b,
                        "--log",  lb, "--log-format", "jsonl", "--eval-every", "7", "--no-prefetch", NULL};
    run_result r1, r2;
    run(&r1, &tiny_lm_api, ra);
    run(&r2, &tiny_lm_api, rb);
    cr_assert_eq(r1.status, 0, "%s", r1.err);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    static char s1[32768], s2[32768];
    tu_strip_times(r1.out, s1, sizeof s1);
    tu_strip_times(r2.out, s2, sizeof s2);
    cr_assert_str_eq(s1, s2);
    size_t na, nb;
    uint8_t *fa = tu_read(a, &na), *fb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(fa, fb, na, "checkpoints differ");
    char *j = (char *)tu_read(la, &na);
    j[na] = '\0';
    cr_assert_not_null(strstr(j, "{\"kind\":\"eval\",\"epoch\":1,\"step\":7,\"lr\":20,\"val_loss\":"), "%s", j);
    cr_assert_not_null(strstr(j, ",\"val_bpc\":"));
    cr_assert_not_null(strstr(j, "{\"kind\":\"step\",\"epoch\":1,\"step\":1,\"loss\":"));
    /* another seed draws other windows */
    const char *rc[] = {"--data", p, "--epochs", "1", "--seed", "10", "--quiet", NULL};
    const char *rd[] = {"--data", p, "--epochs", "1", "--seed", "9", "--quiet", NULL};
    run(&r1, &tiny_lm_api, rc);
    run(&r2, &tiny_lm_api, rd);
    cr_assert_eq(r1.status, 0, "%s", r1.err);
    cr_assert(strncmp(r1.out, "val loss: ", 10) == 0, "%s", r1.out);
    cr_assert_str_neq(r1.out, r2.out);
    /* eval CHECKPOINT measures the same validation windows */
    const char *ev[] = {"eval", a, "--data", p, NULL};
    run(&r2, &tiny_lm_api, ev);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    cr_assert_str_eq(r2.out, strstr(s1, "val loss: "));
    tu_rmrf(d);
}

/* ---- sample ---- */

Test(text, sample_token_ranks_and_draws) {
    mlcrt_scored rank[4];
    const float s[4] = {1, 3, 3, 2};
    for (int i = 0; i < 3; i++) /* top-k 1: the first maximum, whatever u and temperature */
        cr_assert_eq(mlcrt_sample_token(s, 4, i ? 0.1 : 5.0, 1, (double[]){0, 0.5, 0.999}[i], rank), 1);
    cr_assert_eq(mlcrt_sample_token(s, 4, 1.0, 2, 0.0, rank), 1);
    cr_assert_eq(mlcrt_sample_token(s, 4, 1.0, 2, 0.49, rank), 1);
    cr_assert_eq(mlcrt_sample_token(s, 4, 1.0, 2, 0.51, rank), 2);
    /* scores 0 and ln 3: probabilities 1/4 and 3/4, the likelier first */
    const float t[2] = {0, (float)log(3.0)};
    cr_assert_eq(mlcrt_sample_token(t, 2, 1.0, 0, 0.74, rank), 1);
    cr_assert_eq(mlcrt_sample_token(t, 2, 1.0, 0, 0.76, rank), 0);
    /* temperature 0.5 squares the odds: 1/10 and 9/10 */
    cr_assert_eq(mlcrt_sample_token(t, 2, 0.5, 0, 0.89, rank), 1);
    cr_assert_eq(mlcrt_sample_token(t, 2, 0.5, 0, 0.91, rank), 0);
}

Test(text, a_trained_bigram_writes_its_corpus) {
    char *d = tu_tmpdir(), *ck = tu_path(d, "lm.ckpt");
    char *p = text_file(d, "c.txt", "abcd", 2000);
    run_result r;
    run(&r, &tiny_lm_api, (const char *[]){"--data", p, "--epochs", "3", "--save", ck, "--quiet", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&r, &tiny_lm_api, (const char *[]){"sample", ck, "--prompt", "cd", "--tokens", "10", "--top-k", "1", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "cdabcdabcdab\n");
    /* a prompt longer than the window: its last T = 16 bytes are the context */
    run(&r, &tiny_lm_api,
        (const char *[]){"sample", ck, "--prompt", "xyzabcdabcdabcdabcdab", "--tokens", "3", "--top-k", "1", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "xyzabcdabcdabcdabcdabcda\n");
    /* drawn: the same seed the same text, and only the corpus's letters */
    const char *s7[] = {"sample", ck, "--prompt", "a", "--tokens", "40", "--seed", "7", NULL};
    run(&r, &tiny_lm_api, s7);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_result r2;
    run(&r2, &tiny_lm_api, s7);
    cr_assert_str_eq(r.out, r2.out);
    cr_assert_eq(strlen(r.out), 42);
    cr_assert_eq(strspn(r.out, "abcd"), 41, "%s", r.out);
    /* a high temperature flattens the scores: other bytes appear */
    run(&r2, &tiny_lm_api,
        (const char *[]){"sample", ck, "--prompt", "a", "--tokens", "40", "--seed", "7", "--temperature", "50", NULL});
    cr_assert_lt(strspn(r2.out, "abcd"), 41, "%s", r2.out);
    run(&r2, &tiny_lm100_api,
        (const char *[]){"sample", fresh_ckpt(&tiny_lm100_api, d, "lm100.ckpt"), "--prompt", "az", NULL});
    cr_assert_eq(r2.status, 1);
    cr_assert_str_eq(r2.err, "error: --prompt: byte 1 is 122, expected ids below the model's vocabulary of 100\n");
    tu_rmrf(d);
}

/* The vocabulary and the sampled scores are the output the loss scores, not the first
 * output of shape [T, *]: with a feature output f32[T, 300] first, ids up to 299 passed
 * the corpus check and reached the 256-way cross_entropy, and sample drew from the
 * (all-zero) features. A model whose loss names no output of several is refused. */
Test(text, the_scores_are_the_output_the_loss_scores) {
    const mlc_model_api feat = tiny_lm_feat_api(), unscored = tiny_lm_feat_unscored_api();
    mlcrt_lm_shape lm;
    char msg[MLCRT_MSG_SIZE];
    cr_assert_eq(mlcrt_lm_shape_of(&feat, &lm, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(lm.logits_output, 1);
    cr_assert_eq(lm.vocab, 256);
    char *d = tu_tmpdir(), *tok = tu_path(d, "tok"), *ck = tu_path(d, "f.ckpt");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tok);
    cr_assert_eq(system(cmd), 0);
    token_file(tok, "train.bin", 200, 100); /* ids 200 .. 299 */
    token_file(tok, "val.bin", 0, 30);
    char want[600];
    snprintf(want, sizeof want,
             "error: %s/train.bin: token 56 is 256, expected ids below the model's vocabulary of 256\n", tok);
    run_result r;
    run(&r, &feat, (const char *[]){"--data", tok, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, want);
    /* trained on a text, greedy sampling writes it (the features would give id 0) */
    char *p = text_file(d, "c.txt", "abcd", 2000);
    run(&r, &feat, (const char *[]){"--data", p, "--epochs", "3", "--save", ck, "--quiet", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&r, &feat, (const char *[]){"sample", ck, "--prompt", "cd", "--tokens", "6", "--top-k", "1", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "cdabcdab\n");
    run(&r, &unscored, (const char *[]){"--data", p, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: model 'tiny_lm_feat' has 2 outputs f32[16, *] and its loss is no cross_entropy of one "
                     "of them: which holds the per-token scores is unknown\n");
    tu_rmrf(d);
}

/* A checkpoint whose weights hold NaN (a diverged run's) sampled id 0 every time (NUL
 * bytes, exit 0) and evaluated to `val loss: -nan` with exit 0: both are errors now. */
Test(text, non_finite_weights_are_refused_by_sample_and_eval) {
    char *d = tu_tmpdir(), *ck = tu_path(d, "nan.ckpt"), *p = text_file(d, "c.txt", "abcd", 2000);
    void *m = tiny_lm_api.create(1, 1);
    float *table = malloc(sizeof(float) * 256 * 256);
    tiny_lm_api.read_tensor(m, 0, table);
    table['a' * 256 + 3] = NAN;
    tiny_lm_api.write_tensor(m, 0, table);
    cr_assert_eq(mlcrt_save(&tiny_lm_api, m, ck), 0);
    tiny_lm_api.destroy(m);
    free(table);
    char want[600];
    run_result r;
    run(&r, &tiny_lm_api, (const char *[]){"sample", ck, "--prompt", "a", "--tokens", "5", NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: the model's score of id 3 for token 1 is NaN, expected a finite number (its weights are not "
             "finite: a diverged run's checkpoint?)\n",
             ck);
    cr_assert_str_eq(r.err, want);
    run(&r, &tiny_lm_api, (const char *[]){"eval", ck, "--data", p, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: the validation loss is NaN, expected a finite number (the weights are not finite?)\n", ck);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    tu_rmrf(d);
}

/* sample and a token model's eval on a full device (`> /dev/full`) name the reason, as the
 * other modes do, where they said "an earlier write failed" (an earlier flush had taken
 * the errno); sample stops at the first token it cannot write. */
Test(text, sample_and_eval_on_a_full_device) {
    char *d = tu_tmpdir(), *ck = tu_path(d, "m.ckpt"), *p = text_file(d, "c.txt", "abcd", 2000);
    void *m = tiny_lm_api.create(1, 1);
    cr_assert_eq(mlcrt_save(&tiny_lm_api, m, ck), 0);
    tiny_lm_api.destroy(m);
    const char *modes[2][8] = {{"net", "sample", ck, "--prompt", "a", "--tokens", "100000", NULL},
                               {"net", "eval", ck, "--data", p, NULL}};
    for (int k = 0; k < 2; k++) {
        FILE *full = fopen("/dev/full", "w"), *err = tmpfile();
        cr_assert(full && err);
        int argc = 0;
        while (modes[k][argc]) argc++;
        int status = mlcrt_main_io(argc, (char **)modes[k], &tiny_lm_api, full, err);
        fclose(full);
        char text[1024];
        tu_slurp(err, text, sizeof text);
        cr_assert_eq(status, 1, "%s: %s", modes[k][1], text);
        cr_assert_str_eq(text, "error: cannot write output to '/dev/full': No space left on device\n", "%s: %s",
                         modes[k][1], text);
    }
    tu_rmrf(d);
}

/* An input beside `tokens` and `targets` was called ambiguous, and the advice (name the
 * inputs tokens and targets) was already followed: it matches no field. */
Test(text, an_extra_token_input_matches_no_field) {
    static const mlc_io_desc three[3] = {
        {"tokens", MLC_I32, 1, {16}, 16, 1}, {"extra", MLC_I32, 1, {16}, 16, 1}, {"targets", MLC_I32, 1, {16}, 16, 0}};
    mlc_model_api a = tiny_lm_api;
    a.n_inputs = 3;
    a.inputs = three;
    mlcrt_binding b;
    char msg[MLCRT_MSG_SIZE];
    cr_assert_eq(mlcrt_bind_inputs(&a, &b, msg, sizeof msg), MLCRT_EMISMATCH);
    cr_assert_str_eq(msg,
                     "model input 'extra' (i32[16]) matches no field of the token data: inputs 'tokens' and "
                     "'targets' take both (tokens, targets)");
}

/* ---- the loop's other paths with token windows ---- */

Test(text, resumed_and_accumulated_runs) {
    char *d = tu_tmpdir(), *a = tu_path(d, "a.ckpt"), *b = tu_path(d, "b.ckpt");
    char *p = text_file(d, "c.txt", "the cat sat on the mat\n", 3000);
    const char *full[] = {"--data", p, "--epochs", "2", "--save", a, "--quiet", NULL};
    const char *part[] = {"--data", p, "--epochs", "2", "--save", b, "--max-steps", "5", "--quiet", NULL};
    const char *rest[] = {"--data", p, "--epochs", "2", "--save", b, "--resume", b, "--quiet", NULL};
    run_result r;
    run(&r, &tiny_lm_api, full);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_result r0 = r;
    run(&r, &tiny_lm_api, part);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&r, &tiny_lm_api, rest);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, r0.out);
    size_t na, nb;
    uint8_t *fa = tu_read(a, &na), *fb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(fa, fb, na, "the resumed run's checkpoint differs");
    /* --accum 2 --batch 4: the steps of --batch 8 (the mean over the same windows) */
    const char *acc[] = {"--data", p, "--epochs", "2", "--batch", "4", "--accum", "2", "--quiet", NULL};
    run(&r, &tiny_lm_api, acc);
    cr_assert_eq(r.status, 0, "%s", r.err);
    double l0 = field(r0.out, "val loss: "), l1 = field(r.out, "val loss: ");
    cr_assert(fabs(l0 - l1) < 1e-5, "%f vs %f", l0, l1);
    tu_rmrf(d);
}
