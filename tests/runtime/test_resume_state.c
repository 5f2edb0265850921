/* test_resume_state.c - a checkpoint whose CRC is valid but whose training state is
 * impossible (negative or out-of-range position, epoch, step, sums) is refused by
 * --resume with one line naming the file, the field and what was expected: never a
 * crash, a hang, or exit 0 with wrong results. The tests edit a real checkpoint's
 * fields and recompute its CRC. */
#include <criterion/criterion.h>
#include <zlib.h>

#include <math.h>

#include "ckpt.h"
#include "mlcrt_error.h"
#include "synth_data.h"
#include "testutil.h"
#include "tiny_model.h"

/* Byte offsets of the state fields for the model named "tiny" (docs/checkpoint.md:
 * 16-byte preamble, u16 name length, 4 name bytes, then the fields). */
enum { AT_STEP = 22, AT_EPOCH = 30, AT_POS = 38, AT_TRAIN_N = 54, AT_LOSS = 62, AT_CORRECT = 70 };

static void put_i64(uint8_t *p, int64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* Writes base with the 8-byte field at `at` set to v and the CRC made valid again. */
static void write_with(const char *path, const uint8_t *base, size_t n, int at, int64_t v) {
    uint8_t *f = malloc(n);
    memcpy(f, base, n);
    put_i64(f + at, v);
    uLong c = crc32(crc32(0L, Z_NULL, 0), f, (uInt)(n - 4));
    for (int i = 0; i < 4; i++) f[n - 4 + i] = (uint8_t)(c >> (8 * i));
    tu_write(path, f, n);
    free(f);
}

typedef struct bad_state {
    int at;
    int64_t v;
    const char *want; /* after "error: PATH: " */
} bad_state;

Test(resume_state, impossible_fields_refused) {
    char *d = mnist_dir(), *p = tu_path(d, "run.ckpt"), *q = tu_path(d, "bad.ckpt");
    run_result r;
    /* 200 samples in batches of 40: stopped after 3 steps, at sample 120 of epoch 1 */
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "3", "--quiet", "--save", p,
                            NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n;
    uint8_t *base = tu_read(p, &n);
    cr_assert_eq(base[AT_STEP], 3);
    cr_assert_eq(base[AT_POS], 120);
    cr_assert_eq(base[AT_TRAIN_N], 200);

    // clang-format off
    const bad_state cases[] = {
        {AT_POS, -1, "byte 38: epoch_pos: expected a count of at least 0, found -1"},
        {AT_POS, -64, "byte 38: epoch_pos: expected a count of at least 0, found -64"},
        {AT_POS, 201,
         "byte 38: epoch_pos: expected 0 to 200 (train_n, the samples of an epoch), found 201"},
        {AT_POS, INT64_MAX,
         "byte 38: epoch_pos: expected 0 to 200 (train_n, the samples of an epoch), found "
         "9223372036854775807"},
        {AT_EPOCH, -(INT64_C(1) << 62),
         "byte 30: epoch: expected a count of at least 0, found -4611686018427387904"},
        {AT_STEP, -5, "byte 22: step: expected a count of at least 0, found -5"},
        {AT_STEP, INT64_MAX, "byte 22: step: expected a count of at most 2^62, found 9223372036854775807"},
        {AT_TRAIN_N, -200, "byte 54: train_n: expected a count of at least 0, found -200"},
        {AT_CORRECT, 121,
         "byte 70: correct: expected 0 to 120 (epoch_pos, the samples trained on in this "
         "epoch), found 121"},
        {AT_LOSS, INT64_C(0x7ff8000000000000), "byte 62: loss_sum: expected a finite number, found nan"},
        /* against the run: --epochs 2, 200 samples */
        {AT_EPOCH, 3, "epoch: expected 0 to 2 (this run's --epochs), found 3 epochs completed"},
        {AT_EPOCH, INT64_C(1) << 62,
         "epoch: expected 0 to 2 (this run's --epochs), found 4611686018427387904 epochs "
         "completed"},
        {AT_STEP, 0,
         "step: expected at least 1 optimizer steps for 0 epochs and 120 samples, found 0"},
        {AT_TRAIN_N, 1000,
         "train_n: expected 200 training samples per epoch (this run's --data, --train-limit "
         "and --val), found 1000"},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_with(q, base, n, cases[i].at, cases[i].v);
        tu_run(&r, &tiny_api, "net",
               (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--quiet", "--resume", q, NULL});
        char want[1024];
        snprintf(want, sizeof want, "error: %s: %s\n", q, cases[i].want);
        cr_assert_eq(r.status, 1, "case %zu: %s", i, r.err);
        cr_assert_str_eq(r.err, want, "case %zu", i);
        cr_assert_str_eq(r.out, "", "case %zu", i);
    }
    /* the same file, state untouched, resumes; a step counter beyond the minimum (a run
     * continued from --load) is accepted too */
    write_with(q, base, n, AT_STEP, 50);
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--quiet", "--resume", q, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(strncmp(r.out, "test accuracy: ", 15), 0, "%s", r.out);
    tu_rmrf(d);
}

/* The lr field of the first `epoch,1,` row of a CSV log. */
static double epoch1_lr(const char *path) {
    size_t n;
    char *csv = (char *)tu_read(path, &n);
    csv[n] = '\0';
    const char *row = strstr(csv, "\nepoch,1,");
    cr_assert_not_null(row, "%s", csv);
    double lr = -1;
    long long step = 0;
    double loss = 0;
    cr_assert_eq(sscanf(row, "\nepoch,1,%lld,%lf,%lf,", &step, &loss, &lr), 3, "%s", row);
    return lr;
}

/* A --save-every checkpoint of an epoch's last step holds the epoch open (position at
 * train_n): a run killed right after it ends that epoch on resume, and its row logs the
 * rate of the last step taken, as the uninterrupted run's does, not the initial one. */
Test(resume_state, epoch_closed_on_resume_logs_the_last_rate) {
    char *d = mnist_dir(), *p = tu_path(d, "e.ckpt"), *q = tu_path(d, "open.ckpt");
    char *full = tu_path(d, "full.csv"), *res = tu_path(d, "res.csv");
    run_result r;
    /* 200 samples in batches of 40: five steps an epoch, under a cosine schedule */
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--schedule", "cosine", "--quiet", "--log",
                            full, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--schedule", "cosine", "--max-steps", "5",
                            "--save-every", "5s", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n;
    uint8_t *base = tu_read(p, &n);
    /* stopped at the epoch's end: saved again once the epoch closed, after its row */
    cr_assert_eq(base[AT_EPOCH], 1);
    cr_assert_eq(base[AT_POS], 0);
    uint8_t *open = tu_track(malloc(n), free);
    memcpy(open, base, n);
    put_i64(open + AT_EPOCH, 0);
    tu_write(q, open, n);
    write_with(q, open, n, AT_POS, 200); /* as --save-every 5s wrote it before the epoch row */
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--schedule", "cosine", "--quiet",
                            "--resume", q, "--log", res, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    double want = epoch1_lr(full), got = epoch1_lr(res);
    cr_assert(want < 0.09 && got == want, "epoch 1's row: lr %g, the uninterrupted run's %g", got, want);
    tu_rmrf(d);
}

/* The loader's own checks hold for every use of the file (eval, --load), not only
 * --resume: an impossible state is a corrupt checkpoint. */
Test(resume_state, load_refuses_impossible_state) {
    char *d = tu_tmpdir(), *p = tu_path(d, "s.ckpt");
    char msg[MLCRT_MSG_SIZE] = "", want[512];
    void *m = tu_track(tiny_api.create(1, 4), tiny_api.destroy);
    mlcrt_train_state st = {1, 10, 7, 100, 2.5, 4, 1, 0, {0}, {0}, 1, 0};
    cr_assert_eq(mlcrt_ckpt_save_state(&tiny_api, m, &st, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    size_t n;
    uint8_t *base = tu_read(p, &n);
    write_with(p, base, n, AT_POS, -64);
    cr_assert_eq(mlcrt_ckpt_load_state(&tiny_api, m, NULL, p, msg, sizeof msg), MLCRT_EFORMAT);
    snprintf(want, sizeof want, "%s: byte 38: epoch_pos: expected a count of at least 0, found -64", p);
    cr_assert_str_eq(msg, want);
    write_with(p, base, n, AT_POS, 100); /* the whole epoch: possible */
    cr_assert_eq(mlcrt_ckpt_load_state(&tiny_api, m, NULL, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    tu_rmrf(d);
}

/* --batch may change at --resume: the resumed epoch's remaining samples are then cut into
 * batches of the new size, and a batch_norm model's last one must hold 2 too. 200
 * samples stopped at 120 in batches of 40 leave 80, which batches of 79 end with 1,
 * while 200 % 79 = 42 passes the whole-epoch check; that step trained silently. */
Test(resume_state, batch_norm_refuses_a_one_sample_batch_in_the_resumed_epoch) {
    char *d = mnist_dir(), *p = tu_path(d, "bn.ckpt"), want[512];
    mlc_model_api bn = tiny_api;
    bn.min_train_batch = 2;
    run_result r;
    tu_run(&r, &bn, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "3", "--quiet", "--save", p,
                            NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_run(&r, &bn, "net",
           (const char *[]){"--data", d, "--batch", "79", "--epochs", "2", "--quiet", "--resume", p, NULL});
    snprintf(want, sizeof want,
             "error: model 'tiny' has a batch_norm with one value per channel and sample, which needs batches of at "
             "least 2 samples: the last batch of the resumed epoch 1 has 1 (the 80 samples it has left after the "
             "checkpoint's 120, in batches of 79); change --batch\n");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    /* --accum 2 --batch 39: steps of 78, the last of 80 is 2 samples: trains */
    tu_run(&r, &bn, "net",
           (const char *[]){"--data", d, "--batch", "39", "--accum", "2", "--epochs", "2", "--quiet", "--resume", p,
                            NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_rmrf(d);
}

/* A checkpoint inside epoch 2 resumed with --epochs 1 trained nothing and exited 0, as if
 * the run were complete: it is refused in one line, before the log or the checkpoint is
 * touched. */
Test(resume_state, checkpoint_past_the_requested_epochs_refused) {
    char *d = mnist_dir(), *p = tu_path(d, "e2.ckpt"), *log = tu_path(d, "e2.csv"), want[512];
    run_result r;
    /* 200 samples in batches of 40: five steps an epoch; 7 stops 80 samples into epoch 2 */
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "7", "--quiet", "--save", p,
                            "--log", log, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t nc, nl, nc2, nl2;
    uint8_t *ckpt = tu_read(p, &nc), *before = tu_read(log, &nl);
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "1", "--quiet", "--save", p, "--log", log,
                            "--resume", p, NULL});
    snprintf(want, sizeof want,
             "error: %s: the checkpoint is 80 samples into epoch 2, beyond this run's 1 epoch; resume with --epochs 2 "
             "or more to finish it\n",
             p);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    uint8_t *ckpt2 = tu_read(p, &nc2), *after = tu_read(log, &nl2);
    cr_assert(nc2 == nc && memcmp(ckpt, ckpt2, nc) == 0, "the checkpoint changed");
    cr_assert(nl2 == nl && memcmp(before, after, nl) == 0, "the log changed");
    tu_rmrf(d);
}

/* The kind and step of every row of a CSV log, as "step 1,epoch 3,...". */
static void row_steps(const char *path, char *out, size_t cap) {
    size_t n, k = 0;
    char *csv = (char *)tu_read(path, &n), kind[16];
    csv[n] = '\0';
    out[0] = '\0';
    long long step;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n'))
        if (sscanf(line + 1, "%15[a-z],%*d,%lld,", kind, &step) == 2 && k < cap)
            k += (size_t)snprintf(out + k, cap - k, "%s%s %lld", k ? "," : "", kind, step);
}

/* --batch changed at --resume: the log is cut back to the checkpoint's step counter, and
 * --max-steps counts the steps taken, not the position in steps of the new size. 200
 * samples stopped after 3 steps of 40 (at sample 120); at --batch 100 that position is
 * step 2: the log lost the real step 3 and kept the partial epoch row, and --max-steps 4
 * let 2 more steps run, "stopped after 4" with 5 taken. */
Test(resume_state, batch_change_keeps_the_steps_taken) {
    char *d = mnist_dir(), *p = tu_path(d, "b.ckpt"), *log = tu_path(d, "b.csv"), rows[256];
    run_result r;
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "3", "--quiet", "--save", p,
                            "--log", log, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    row_steps(log, rows, sizeof rows);
    cr_assert_str_eq(rows, "step 1,step 2,step 3,epoch 3");
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "100", "--epochs", "2", "--max-steps", "4", "--save", p, "--log",
                            log, "--progress", "never", "--resume", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\nstopped after 4 optimizer steps (--max-steps 4) of a 2-epoch run\n"), "%s",
                       r.out);
    row_steps(log, rows, sizeof rows);
    cr_assert_str_eq(rows, "step 1,step 2,step 3,step 4,epoch 4");
    size_t n;
    uint8_t *ck = tu_read(p, &n);
    cr_assert_eq(ck[AT_STEP], 4);
    tu_rmrf(d);
}

/* A --load run's own steps count from 0 (the model's counter goes on from the loaded one,
 * for Adam's bias correction): --max-steps, the log's step column. The checkpoint records
 * where the run began, so a resume of it with another --batch counts them still: after 3
 * steps loaded and 2 of the fine-tune at --batch 40 (sample 80), --batch 100 resumes at
 * position step 1, and --max-steps 3 takes one step more, not two. */
Test(resume_state, load_counts_its_own_steps_across_a_resume) {
    char *d = mnist_dir(), *p = tu_path(d, "l.ckpt"), *q = tu_path(d, "f.ckpt"), *log = tu_path(d, "f.csv"), rows[256];
    run_result r;
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "3", "--quiet", "--save", p,
                            NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "40", "--epochs", "2", "--max-steps", "2", "--load", p, "--save", q,
                            "--log", log, "--progress", "never", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\nstopped after 2 optimizer steps (--max-steps 2) of a 2-epoch run\n"), "%s",
                       r.out);
    row_steps(log, rows, sizeof rows);
    cr_assert_str_eq(rows, "step 1,step 2,epoch 2");
    size_t n;
    uint8_t *ck = tu_read(q, &n);
    cr_assert_eq(ck[AT_STEP], 5, "the model's counter goes on from the loaded 3");
    tu_run(&r, &tiny_api, "net",
           (const char *[]){"--data", d, "--batch", "100", "--epochs", "2", "--max-steps", "3", "--save", q, "--log",
                            log, "--progress", "never", "--resume", q, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "\nstopped after 3 optimizer steps (--max-steps 3) of a 2-epoch run\n"), "%s",
                       r.out);
    row_steps(log, rows, sizeof rows);
    cr_assert_str_eq(rows, "step 1,step 2,step 3,epoch 3");
    ck = tu_read(q, &n);
    cr_assert_eq(ck[AT_STEP], 6);
    tu_rmrf(d);
}
