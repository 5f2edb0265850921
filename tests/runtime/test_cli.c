/* test_cli.c - the trainer's newer features on small data written by the tests: lr
 * schedules, exact resume, prefetch determinism, validation split, CIFAR-10/100,
 * normalisation and augmentation, eval and predict modes, logs, progress bar, and one
 * clear message for every kind of bad input. Asserts texts and values, never timings. */
#include <criterion/criterion.h>

#include <math.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "data.h"
#include "idx.h"
#include "mlcrt_error.h"
#include "schedule.h"
#include "synth_data.h"
#include "testutil.h"
#include "build_info.h"
#include "tiny_model.h"
#include "trainer.h"
#include "trainer_flags.h"

static void run(run_result *r, const mlc_model_api *api, const char *const *args) { tu_run(r, api, "net", args); }

static int count_lines(const char *s, const char *prefix) {
    int n = 0;
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

/* ---- schedules ---- */

Test(schedule, formulas) {
    mlcrt_schedule s = {MLCRT_SCHED_CONSTANT, 0.1f, 100, 0, 10, 0.5f};
    cr_assert_eq(mlcrt_schedule_lr(&s, 57), 0.1f);
    s.kind = MLCRT_SCHED_STEP;
    cr_assert_eq(mlcrt_schedule_lr(&s, 0), 0.1f);
    cr_assert_eq(mlcrt_schedule_lr(&s, 9), 0.1f);
    cr_assert_eq(mlcrt_schedule_lr(&s, 10), 0.05f);
    cr_assert_eq(mlcrt_schedule_lr(&s, 35), (float)(0.1 * 0.125));
    s.warmup_steps = 4; /* warm-up, then steps counted after it */
    cr_assert_eq(mlcrt_schedule_lr(&s, 0), (float)(0.1 * 1 / 4));
    cr_assert_eq(mlcrt_schedule_lr(&s, 3), 0.1f);
    cr_assert_eq(mlcrt_schedule_lr(&s, 13), 0.1f);
    cr_assert_eq(mlcrt_schedule_lr(&s, 14), 0.05f);
    s.kind = MLCRT_SCHED_COSINE;
    s.warmup_steps = 0;
    cr_assert_eq(mlcrt_schedule_lr(&s, 0), 0.1f);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 50), 0.05f, 1e-7);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 100), 0.0f, 1e-9);
    s.warmup_steps = 20;
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 9), 0.05f, 1e-7);
    cr_assert_eq(mlcrt_schedule_lr(&s, 20), 0.1f);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 60), 0.05f, 1e-7);
    s.kind = MLCRT_SCHED_ONECYCLE;
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 0), 0.004f, 1e-8);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 15), 0.052f, 1e-7);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 30), 0.1f, 1e-7);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 65), 0.00001f + (0.1f - 0.00001f) / 2, 1e-7);
    cr_assert_float_eq(mlcrt_schedule_lr(&s, 100), 0.00001f, 1e-9);
    cr_assert_eq(mlcrt_schedule_parse("onecycle"), MLCRT_SCHED_ONECYCLE);
    cr_assert_eq(mlcrt_schedule_parse("linear"), -1);
}

/* The schedule reaches the model: lr per step recorded from the log. */
Test(schedule, step_lrs_in_log) {
    char *d = mnist_dir(), *log = tu_path(d, "log.csv");
    const char *args[] = {"--data",  d,     "--batch",    "50",    "--epochs",    "4",
                          "--lr",    "0.2", "--schedule", "step",  "--step-size", "1",
                          "--gamma", "0.5", "--quiet",    "--log", log,           NULL};
    run_result r;
    run(&r, &tiny_api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n;
    char *csv = (char *)tu_read(log, &n);
    csv[n] = '\0';
    const char *hdr = "kind,epoch,step,loss,lr,train_acc,val_acc,test_acc,seconds\n";
    cr_assert(strncmp(csv, hdr, strlen(hdr)) == 0, "%s", csv);
    cr_assert_eq(count_lines(csv, "step,"), 16);
    cr_assert_eq(count_lines(csv, "epoch,"), 4);
    cr_assert(strstr(csv, "\nstep,1,1,"));
    cr_assert(strstr(csv, ",0.2,"));
    cr_assert(strstr(csv, "\nstep,2,5,") && strstr(strstr(csv, "\nstep,2,5,"), ",0.1,"));
    cr_assert(strstr(csv, "\nstep,4,16,") && strstr(strstr(csv, "\nstep,4,16,"), ",0.025,"));
    cr_assert(strstr(csv, "\nepoch,4,16,"), "%s", csv);
    tu_rmrf(d);
}

/* ---- resume ---- */

/* s with the last comma-separated field of each line (a log's seconds) removed, in place. */
static char *strip_last_field(char *s) {
    char *out = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        char *comma = end;
        while (comma > line && *comma != ',') comma--;
        size_t keep = (size_t)((comma > line ? comma : end) - line);
        memmove(out, line, keep);
        out += keep;
        if (nl) *out++ = '\n';
        line = nl ? nl + 1 : end;
    }
    *out = '\0';
    return s;
}

Test(resume, interrupted_run_matches_uninterrupted) {
    char *d = mnist_dir(), *a = tu_path(d, "a.ckpt"), *b = tu_path(d, "b.ckpt");
    /* 180 training samples (20 held out) in batches of 32: 6 steps per epoch */
    char *la = tu_path(d, "a.csv"), *lb = tu_path(d, "b.csv");
    const char *full[] = {"--data",     d,        "--batch",  "32",  "--epochs",  "3",           "--val",  "20",
                          "--schedule", "cosine", "--warmup", "0.5", "--augment", "crop:2,flip", "--seed", "5",
                          "--save",     a,        "--log",    la,    NULL};
    const char *part1[] = {
        "--data",      d,          "--batch", "32",        "--epochs",    "3",      "--val", "20",     "--schedule",
        "cosine",      "--warmup", "0.5",     "--augment", "crop:2,flip", "--seed", "5",     "--save", b,
        "--max-steps", "8",        "--log",   lb,          NULL};
    const char *part2[] = {"--data",     d,        "--batch",  "32",  "--epochs",  "3",           "--val",  "20",
                           "--schedule", "cosine", "--warmup", "0.5", "--augment", "crop:2,flip", "--save", b,
                           "--resume",   b,        "--log",    lb,    NULL};
    run_result r0, r1, r2;
    run(&r0, &tiny_api, full);
    cr_assert_eq(r0.status, 0, "%s", r0.err);
    run(&r1, &tiny_api, part1);
    cr_assert_eq(r1.status, 0, "%s", r1.err);
    cr_assert_eq(count_lines(r1.out, "epoch "), 2, "%s", r1.out); /* 1 and a partial 2 */
    char msg[MLCRT_MSG_SIZE];
    mlcrt_train_state st;
    void *m = tiny_api.create(0, 1);
    cr_assert_eq(mlcrt_ckpt_load_state(&tiny_api, m, &st, b, msg, sizeof msg), MLCRT_OK, "%s", msg);
    tiny_api.destroy(m);
    cr_assert_eq(st.epoch, 1);
    cr_assert_eq(st.epoch_pos, 64);
    cr_assert_eq(st.seed, 5);
    cr_assert_eq(st.train_samples, 180);
    run(&r2, &tiny_api, part2);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    char s0[4096], s2[4096], s1[4096];
    tu_strip_times(r0.out, s0, sizeof s0);
    tu_strip_times(r2.out, s2, sizeof s2);
    tu_strip_times(r1.out, s1, sizeof s1);
    /* the resumed run prints epochs 2 and 3 exactly as the uninterrupted one did */
    const char *e2 = strstr(s0, "epoch 2/3");
    cr_assert_not_null(e2);
    cr_assert_str_eq(s2, e2);
    cr_assert(strncmp(s1, s0, (size_t)(e2 - s0)) == 0); /* and the first part epoch 1 */
    size_t na, nb;
    uint8_t *fa = tu_read(a, &na), *fb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(fa, fb, na, "final checkpoints differ");
    /* and the logs hold the same rows, but for the seconds: the partial epoch-2 row that
     * --max-steps wrote at the checkpoint's step was dropped on resume */
    char *ca = (char *)tu_read(la, &na), *cb = (char *)tu_read(lb, &nb);
    ca[na] = cb[nb] = '\0';
    cr_assert_str_eq(strip_last_field(ca), strip_last_field(cb));

    /* resuming the finished run trains nothing and reports the same accuracy */
    run(&r2, &tiny_api, part2);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    cr_assert_str_eq(r2.out, strstr(r0.out, "test accuracy:"));
    tu_rmrf(d);
}

/* A resumed run's log that is a pipe cannot be cut back: it is appended to, not opened
 * for reading first (which waited forever for a writer), nor replaced by a file. */
Test(resume, log_to_a_fifo, .timeout = 120) {
    char *d = mnist_dir(), *p = tu_path(d, "r.ckpt"), *fifo = tu_path(d, "log.fifo");
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "3", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    pid_t reader = fork();
    if (reader == 0) { /* reads the log until the trainer closes it */
        char buf[4096];
        int fd = open(fifo, O_RDONLY);
        while (fd >= 0 && read(fd, buf, sizeof buf) > 0) continue;
        _exit(fd >= 0 ? 0 : 1);
    }
    run(&r, &tiny_api, (const char *[]){"--data", d, "--batch", "40", "--quiet", "--resume", p, "--log", fifo, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    int status = 0;
    cr_assert_eq(waitpid(reader, &status, 0), reader);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    cr_assert_eq(stat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the log FIFO was replaced");
    tu_rmrf(d);
}

/* A resumed run's log must be a log of this run's format: one written as JSON lines
 * (resumed without --log-format jsonl), or a file that is no log at all, is refused and
 * left as it was, where cutting it back dropped every line it could not read. */
Test(resume, log_of_another_format_is_refused) {
    char *d = mnist_dir(), *p = tu_path(d, "r.ckpt"), *log = tu_path(d, "r.log"), *text = tu_path(d, "notes.txt");
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "2", "--quiet", "--save", p, "--log", log,
                         "--log-format", "jsonl", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n0, n1;
    uint8_t *before = tu_read(log, &n0);
    run(&r, &tiny_api, (const char *[]){"--data", d, "--batch", "40", "--quiet", "--resume", p, "--log", log, NULL});
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "r.log: line 1: expected this model's CSV log header"), "%s", r.err);
    uint8_t *after = tu_read(log, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "the refused log was changed");
    /* a text file that is no log: not one line of it goes */
    FILE *f = fopen(text, "w");
    fputs("hello\nthis is not a log\n", f);
    fclose(f);
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--quiet", "--resume", p, "--log", text, "--log-format", "jsonl",
                         NULL});
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "notes.txt: line 1: expected a JSON log row"), "%s", r.err);
    const char *kept = "hello\nthis is not a log\n";
    char *t = (char *)tu_read(text, &n1);
    cr_assert(n1 == strlen(kept) && strncmp(t, kept, n1) == 0, "the refused file was changed");
    /* the JSON log itself, resumed as JSON: cut back and appended to */
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--quiet", "--resume", p, "--log", log, "--log-format", "jsonl",
                         NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_rmrf(d);
}

/* Outputs that name one file, or a file the run reads, would overwrite it: --log into
 * the checkpoint being resumed, --save renamed over the log, either over a data file. */
Test(resume, outputs_naming_one_file_are_refused) {
    char *d = mnist_dir(), *p = tu_path(d, "r.ckpt"), *out = tu_path(d, "both.out"),
         *data = tu_path(d, "train-labels-idx1-ubyte");
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "2", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n0, n1;
    uint8_t *ck = tu_read(p, &n0);
    run(&r, &tiny_api, (const char *[]){"--data", d, "--batch", "40", "--quiet", "--resume", p, "--log", p, NULL});
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "--log") && strstr(r.err, "names the file --resume reads"), "%s", r.err);
    uint8_t *ck1 = tu_read(p, &n1);
    cr_assert(n0 == n1 && memcmp(ck, ck1, n0) == 0, "the checkpoint was changed");
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--save", out, "--log", out,
                         NULL});
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "--log and --save name the same file"), "%s", r.err);
    /* through a link whose target does not exist yet, both ways round: the log would be
     * written through the link and the save renamed onto its target */
    char *lnk = tu_path(d, "L.log"), *tgt = tu_path(d, "S.ckpt");
    for (int way = 0; way < 2; way++) {
        unlink(lnk), unlink(tgt);
        cr_assert_eq(way ? symlink("L.log", tgt) : symlink("S.ckpt", lnk), 0);
        run(&r, &tiny_api,
            (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--save", tgt, "--log", lnk,
                             NULL});
        cr_assert_neq(r.status, 0);
        cr_assert(strstr(r.err, "--log and --save name the same file"), "%s", r.err);
    }
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--log", data, NULL});
    cr_assert_neq(r.status, 0);
    cr_assert(strstr(r.err, "names a data file of --data"), "%s", r.err);
    /* --save over the checkpoint it resumes is the usual way to go on */
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "3", "--quiet", "--resume", p, "--save", p,
                         NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_rmrf(d);
}

/* --save and a fresh run's --log replace what their path holds: a checkpoint or a log,
 * not a source file or program a mistyped path names; both are refused before anything
 * is written, and the file stays as it was. */
Test(resume, outputs_replace_only_their_own_kind) {
    char *d = mnist_dir(), *src = tu_path(d, "net.mdl"), *log = tu_path(d, "run.csv"), *ck = tu_path(d, "r.ckpt");
    const char text[] = "model net\ninput image: f32[B, 784]\n";
    tu_write(src, text, sizeof text - 1);
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--save", src, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "is no mlc checkpoint (it begins 'model ne') and a save would replace it"), "%s", r.err);
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--log", src, NULL});
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "is no mlc log (its first line begins 'model net')"), "%s", r.err);
    size_t n;
    char *now = (char *)tu_read(src, &n);
    cr_assert(n == sizeof text - 1 && memcmp(now, text, n) == 0, "the source was changed");
    /* a log and a checkpoint of an earlier run are replaced, in either log format */
    for (int again = 0; again < 2; again++) {
        run(&r, &tiny_api,
            (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--save", ck, "--log", log,
                             "--log-format", again ? "jsonl" : "csv", NULL});
        cr_assert_eq(r.status, 0, "%s", r.err);
    }
    tu_rmrf(d);
}

/* A warm-up longer than any run is a learning rate near 0 from its first step, not
 * (its step count wrapped) none at all. */
Test(schedule, endless_warmup_stays_a_warmup) {
    char *d = mnist_dir(), *log = tu_path(d, "w.csv");
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--batch", "50", "--max-steps", "2", "--schedule", "cosine", "--warmup", "1e30",
                         "--quiet", "--log", log, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n;
    char *csv = (char *)tu_read(log, &n);
    csv[n] = '\0';
    const char *row = strstr(csv, "\nstep,1,1,");
    cr_assert_not_null(row, "%s", csv);
    double loss = 0, lr = 1;
    cr_assert_eq(sscanf(row, "\nstep,1,1,%lf,%lf,", &loss, &lr), 2, "%s", row);
    cr_assert(lr >= 0 && lr < 1e-15, "step 1 ran at lr %g", lr);
    tu_rmrf(d);
}

Test(resume, save_every_steps_and_mismatches) {
    char *d = mnist_dir(), *a = tu_path(d, "a.ckpt"), *b = tu_path(d, "b.ckpt");
    const char *full[] = {"--data", d, "--batch", "40", "--epochs", "2", "--save", a, "--quiet", NULL};
    const char *steps[] = {"--data",       d,    "--batch",     "40", "--epochs", "2", "--save", b,
                           "--save-every", "3s", "--max-steps", "7",  "--quiet",  NULL};
    const char *rest[] = {"--data", d, "--batch", "40", "--epochs", "2", "--save", b, "--resume", b, "--quiet", NULL};
    run_result r;
    run(&r, &tiny_api, full);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&r, &tiny_api, steps);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&r, &tiny_api, rest);
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t na, nb;
    uint8_t *fa = tu_read(a, &na), *fb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(fa, fb, na);

    /* another training set size */
    const char *other[] = {"--data", d, "--train-limit", "100", "--resume", b, NULL};
    run(&r, &tiny_api, other);
    cr_assert_eq(r.status, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "error: %s: train_n: expected 100 training samples per epoch (this run's --data, "
             "--train-limit and --val), found 200\n",
             b);
    cr_assert_str_eq(r.err, want);
    /* another model */
    mlc_model_api lenet = tiny_api;
    lenet.name = "lenet";
    const char *res[] = {"--data", d, "--resume", b, NULL};
    run(&r, &lenet, res);
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: checkpoint is for model 'tiny', this model is 'lenet'\n", b);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    tu_rmrf(d);
}

/* ---- determinism ---- */

Test(determinism, prefetch_changes_nothing) {
    char *d = mnist_dir(), *a = tu_path(d, "a.ckpt"), *b = tu_path(d, "b.ckpt");
    const char *pf[] = {"--data",      d,        "--batch", "16",     "--epochs", "2", "--augment",
                        "crop:3,flip", "--seed", "9",       "--save", a,          NULL};
    const char *nopf[] = {"--data", d,   "--batch", "16", "--epochs",      "2", "--augment", "crop:3,flip",
                          "--seed", "9", "--save",  b,    "--no-prefetch", NULL};
    run_result r1, r2;
    run(&r1, &tiny_api, pf);
    run(&r2, &tiny_api, nopf);
    cr_assert_eq(r1.status, 0, "%s", r1.err);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    char s1[4096], s2[4096];
    tu_strip_times(r1.out, s1, sizeof s1);
    tu_strip_times(r2.out, s2, sizeof s2);
    cr_assert_str_eq(s1, s2);
    size_t na, nb;
    uint8_t *fa = tu_read(a, &na), *fb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(fa, fb, na);
    tu_rmrf(d);
}

/* ---- augmentation and normalisation ---- */

Test(augment, parse_and_reproducible_per_sample) {
    char msg[256];
    mlcrt_augment aug;
    cr_assert_eq(mlcrt_augment_parse("crop:4,flip", &aug, msg, sizeof msg), MLCRT_OK);
    cr_assert_eq(aug.crop_pad, 4);
    cr_assert_eq(aug.flip, 1);
    cr_assert_eq(mlcrt_augment_parse("none", &aug, msg, sizeof msg), MLCRT_OK);
    cr_assert_eq(aug.crop_pad + aug.flip, 0);
    cr_assert_eq(mlcrt_augment_parse("crop:4,rotate", &aug, msg, sizeof msg), MLCRT_EARG);
    cr_assert_str_eq(msg, "--augment: expected crop:N (N in 1..64), flip or none, found 'rotate'");
    /* "" used to turn augmentation off silently; the docs' way is "none" */
    cr_assert_eq(mlcrt_augment_parse("", &aug, msg, sizeof msg), MLCRT_EARG);
    cr_assert_str_eq(msg, "--augment: expected crop:N (N in 1..64), flip or none, found ''");

    /* 6 samples of 1 x 4 x 5 with distinct values; flip only: every sample comes out
     * unchanged or mirrored, the same whatever batch or position it is gathered in */
    float x[6 * 20];
    int32_t y[6] = {0, 1, 2, 3, 4, 5};
    for (int i = 0; i < 120; i++) x[i] = (float)i;
    mlc_dataset ds = {6, 2, {4, 5}, 20, x, y, 10, NULL, NULL, 0};
    mlcrt_augment_parse("flip", &aug, msg, sizeof msg);
    int64_t perm[6] = {5, 4, 3, 2, 1, 0};
    float b1[120], b2[20];
    int32_t y1[6], y2[1];
    int flipped = 0;
    mlcrt_batch_gather_aug(&ds, perm, 0, 6, b1, y1, &aug, 3, 1);
    for (int i = 0; i < 6; i++) {
        int s = (int)perm[i], same = 1, mirror = 1;
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 5; c++) {
                same &= b1[i * 20 + r * 5 + c] == x[s * 20 + r * 5 + c];
                mirror &= b1[i * 20 + r * 5 + c] == x[s * 20 + r * 5 + 4 - c];
            }
        cr_assert(same || mirror);
        flipped += mirror;
        mlcrt_batch_gather_aug(&ds, NULL, s, 1, b2, y2, &aug, 3, 1);
        cr_assert_arr_eq(b2, b1 + i * 20, sizeof b2);
    }
    cr_assert(flipped > 0 && flipped < 6, "%d of 6 flipped", flipped);
    /* crop: shifted copies with the pad value where the shift leaves the image */
    mlcrt_augment_parse("crop:1", &aug, msg, sizeof msg);
    aug.pad_value[0] = -7.0f;
    int shifted = 0;
    for (uint64_t e = 0; e < 4; e++) {
        mlcrt_batch_gather_aug(&ds, NULL, 0, 6, b1, y1, &aug, 3, e);
        for (int i = 0; i < 6; i++) {
            int found = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int ok = 1;
                    for (int r = 0; r < 4; r++)
                        for (int c = 0; c < 5; c++) {
                            int sr = r + dy, sc = c + dx;
                            float want = sr >= 0 && sr < 4 && sc >= 0 && sc < 5 ? x[i * 20 + sr * 5 + sc] : -7.0f;
                            ok &= b1[i * 20 + r * 5 + c] == want;
                        }
                    found |= ok;
                    shifted += ok && (dx || dy);
                }
            cr_assert(found, "sample %d epoch %d", i, (int)e);
        }
    }
    cr_assert(shifted > 0);
}

Test(normalize, per_channel) {
    char msg[256];
    float x[2 * 3 * 2] = {0, 1, 0.5f, 0.5f, 1, 0, 0, 1, 0.5f, 0.5f, 1, 0};
    int32_t y[2] = {0, 1};
    mlc_dataset ds = {2, 3, {3, 1, 2}, 6, x, y, 10, NULL, NULL, 0};
    float mean[3] = {0.5f, 0.5f, 0.0f}, std[3] = {0.5f, 0.25f, 2.0f};
    cr_assert_eq(mlcrt_dataset_normalize(&ds, 3, mean, std, msg, sizeof msg), MLCRT_OK);
    float want[6] = {-1, 1, 0, 0, 0.5f, 0};
    cr_assert_arr_eq(x, want, sizeof want);
    cr_assert_arr_eq(x + 6, want, sizeof want);
    cr_assert_eq(mlcrt_dataset_normalize(&ds, 2, mean, std, msg, sizeof msg), MLCRT_EARG);
    cr_assert_str_eq(msg, "--mean/--std: expected 1 or 3 values (one per channel), found 2");
    mlc_dataset grey = {2, 2, {3, 2}, 6, x, y, 10, NULL, NULL, 0}; /* one channel: "1 or 1" says nothing */
    cr_assert_eq(mlcrt_dataset_normalize(&grey, 2, mean, std, msg, sizeof msg), MLCRT_EARG);
    cr_assert_str_eq(msg, "--mean/--std: expected 1 value (the images have one channel), found 2");
}

/* ---- validation split ---- */

Test(trainer2, val_split_and_too_large) {
    char *d = mnist_dir();
    const char *args[] = {"--data", d, "--epochs", "1", "--val", "50", "--mean", "0.2", "--std", "0.3", NULL};
    run_result r;
    run(&r, &tiny_api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    double loss, tr, va, te;
    cr_assert_eq(
        sscanf(r.out, "epoch 1/1  loss %lf  train_acc %lf  val_acc %lf  test_acc %lf  time ", &loss, &tr, &va, &te), 4,
        "%s", r.out);
    const char *big[] = {"--data", d, "--val", "200", NULL};
    run(&r, &tiny_api, big);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "error: --val 200: expected fewer than the 200 training samples\n");
    tu_rmrf(d);
}

/* ---- CIFAR ---- */

Test(cifar, ten_trains_and_hundred_loads) {
    char *d = cifar10_dir();
    const char *args[] = {"--data",      d,       "--epochs",       "2",         "--batch",     "8", "--mean",
                          "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--augment", "crop:4,flip", NULL};
    run_result r;
    run(&r, &tiny_c10_api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out, "epoch "), 2, "%s", r.out);
    cr_assert(strstr(r.out, "\ntest accuracy: 0."));

    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_auto(&ds, d, 0, 3072, 10, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(ds.n, 40);
    cr_assert_eq(ds.sample_rank, 3);
    cr_assert_eq(ds.y[9], 1); /* record 1 of data_batch_2 */
    mlcrt_dataset_free(&ds);

    char *h = tu_tmpdir();
    write_cifar(tu_path(h, "train.bin"), 30, 2, 100, 1);
    write_cifar(tu_path(h, "test.bin"), 5, 2, 100, 2);
    mlcrt_data_format fmt;
    cr_assert_eq(mlcrt_data_detect(h, &fmt, msg, sizeof msg), MLCRT_OK);
    cr_assert_eq(fmt, MLCRT_DATA_CIFAR100);
    cr_assert_eq(mlcrt_dataset_load_auto(&ds, h, 0, 3072, 100, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(ds.n, 30);
    cr_assert_eq(ds.y[29], 29); /* the fine label, not the coarse 99 */
    cr_assert_float_eq(ds.x[29 * 3072 + 29 * 100], 1.0f, 0);
    mlcrt_dataset_free(&ds);
    /* 100 fine classes do not fit a 10-class model */
    run(&r, &tiny_c10_api, (const char *[]){"--data", h, NULL});
    cr_assert_eq(r.status, 1);
    char want[1024];
    snprintf(want, sizeof want, "error: %s/train.bin: byte 3075: sample 1 has label 10, expected 0..9\n", h);
    cr_assert_str_neq(r.err, ""); /* label 10 first appears in sample 10 */
    snprintf(want, sizeof want, "error: %s/train.bin: byte 30741: sample 10 has label 10, expected 0..9\n", h);
    cr_assert_str_eq(r.err, want);
    tu_rmrf(h);
    tu_rmrf(d);
}

Test(cifar, bad_files) {
    char *d = cifar10_dir(), want[1024];
    run_result r;
    /* images of another size than the model's input */
    run(&r, &tiny_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s/data_batch_1.bin: expected 784 values per image, found 3072 (3 x 32 x "
             "32)\n",
             d);
    cr_assert_str_eq(r.err, want);
    /* truncated batch */
    char *p3 = tu_path(d, "data_batch_3.bin");
    size_t n;
    uint8_t *f = tu_read(p3, &n);
    tu_write(p3, f, n - 10);
    run(&r, &tiny_c10_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: byte 24574: file ends inside record 7: expected a multiple of 3073 "
             "bytes, found 24574\n",
             p3);
    cr_assert_str_eq(r.err, want);
    /* missing batch */
    unlink(p3);
    run(&r, &tiny_c10_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: cannot open: No such file or directory\n", p3);
    cr_assert_str_eq(r.err, want);
    /* empty directory */
    char *e = tu_tmpdir();
    run(&r, &tiny_c10_api, (const char *[]){"--data", e, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: no dataset here: expected train-images-idx3-ubyte[.gz] (MNIST "
             "layout), data_batch_1.bin (CIFAR-10) or train.bin (CIFAR-100)\n",
             e);
    cr_assert_str_eq(r.err, want);
    tu_rmrf(e);
    tu_rmrf(d);
}

/* ---- bad IDX input through the trainer ---- */

Test(trainer2, bad_idx_files) {
    char *d = mnist_dir(), want[1024];
    char *img = tu_path(d, "train-images-idx3-ubyte"), *lab = tu_path(d, "train-labels-idx1-ubyte");
    run_result r;
    size_t n;
    uint8_t *f = tu_read(img, &n);
    f[2] = 0x0d;
    tu_write(img, f, n);
    run(&r, &tiny_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: byte 2: expected data type 0x08 (unsigned byte), found 0x0d\n", img);
    cr_assert_str_eq(r.err, want);
    f[2] = 8;
    tu_write(img, f, n - 5);
    run(&r, &tiny_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: byte 156811: data ended early: expected 156800 data bytes after the "
             "16-byte header, found 156795\n",
             img);
    cr_assert_str_eq(r.err, want);
    tu_write(img, f, n);
    write_idx_labels(lab, 200, 17);
    run(&r, &tiny_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: byte 25: sample 17 has label 10, expected 0..9\n", lab);
    cr_assert_str_eq(r.err, want);
    write_idx_labels(lab, 200, -1);
    write_idx_images(img, 200, 14, 14, 1);
    run(&r, &tiny_api, (const char *[]){"--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: byte 8: expected 784 values per image, found 196 (14 x 14)\n", img);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    tu_rmrf(d);
}

/* ---- checkpoints through the trainer ---- */

Test(trainer2, bad_checkpoints_and_save_paths) {
    char *d = mnist_dir(), *p = tu_path(d, "m.ckpt"), want[1024];
    run_result r;
    run(&r, &tiny_api, (const char *[]){"--data", d, "--epochs", "1", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    size_t n;
    uint8_t *f = tu_read(p, &n);
    char *bad = tu_path(d, "bad.ckpt");
    tu_write(bad, f, n / 2);
    run(&r, &tiny_api, (const char *[]){"--data", d, "--load", bad, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: %s: byte %zu: file ends early: expected %zu bytes (2 tensors and a 4-byte "
             "CRC)\n",
             bad, n / 2, n);
    cr_assert_str_eq(r.err, want);
    f[3] = 'x';
    tu_write(bad, f, n);
    run(&r, &tiny_api, (const char *[]){"eval", bad, "--data", d, NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: %s: byte 0: expected magic \"MLCCKPT\\0\": not an mlc checkpoint\n", bad);
    cr_assert_str_eq(r.err, want);
    run(&r, &tiny_api, (const char *[]){"--data", d, "--resume", tu_path(d, "none.ckpt"), NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: cannot read checkpoint '%s/none.ckpt': No such file or directory\n", d);
    cr_assert_str_eq(r.err, want);

    /* an unwritable save path is reported before any training; the file is untouched */
    mkdir(tu_path(d, "dir.ckpt"), 0755);
    run(&r, &tiny_api, (const char *[]){"--data", d, "--save", tu_path(d, "dir.ckpt"), NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want,
             "error: cannot write checkpoint '%s/dir.ckpt': expected a regular file, found a directory\n", d);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    run(&r, &tiny_api, (const char *[]){"--data", d, "--save", tu_path(d, "no/x.ckpt"), NULL});
    cr_assert_eq(r.status, 1);
    snprintf(want, sizeof want, "error: cannot write checkpoint '%s/no/x.ckpt': No such file or directory\n", d);
    cr_assert_str_eq(r.err, want);
    size_t n2;
    uint8_t *g = tu_read(p, &n2);
    f[3] = 'C';
    cr_assert_eq(n, n2);
    cr_assert_arr_eq(f, g, n);
    tu_rmrf(d);
}

/* ---- eval and predict ---- */

/* A model without labels (tiny_ae: input "pixels", bound to the images by type) is
 * reported by its loss: epoch lines, log columns, `test loss:`, eval; predict prints its
 * output values. */
Test(modes, model_without_labels) {
    char *d = mnist_dir(), *p = tu_path(d, "ae.ckpt"), *log = tu_path(d, "ae.csv");
    run_result r, e;
    run(&r, &tiny_ae_api,
        (const char *[]){"--data", d, "--val", "40", "--progress", "never", "--save", p, "--log", log, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, "acc"), "%s", r.out);
    double l1, v1, t1, l2, v2, t2;
    cr_assert_eq(sscanf(r.out, "epoch 1/2  loss %lf  val_loss %lf  test_loss %lf", &l1, &v1, &t1), 3, "%s", r.out);
    const char *e2 = strstr(r.out, "\nepoch 2/2  ");
    cr_assert_not_null(e2, "%s", r.out);
    cr_assert_eq(sscanf(e2 + 1, "epoch 2/2  loss %lf  val_loss %lf  test_loss %lf", &l2, &v2, &t2), 3, "%s", r.out);
    cr_assert(l2 < l1 && v2 < v1 && t2 < t1, "the loss does not fall:\n%s", r.out);

    /* the final line: the eval-mode loss over the test split, in the trainer's batches */
    char msg[MLCRT_MSG_SIZE], want[128];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, d, "t10k", 784, 0, 0, msg, sizeof msg), MLCRT_OK, "%s", msg);
    void *m = tiny_ae_api.create(0, 32);
    cr_assert_eq(mlcrt_ckpt_load(&tiny_ae_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    double sum = 0;
    for (int s = 0; s < 50; s += 32) {
        int nb = 50 - s < 32 ? 50 - s : 32;
        sum += (double)tiny_ae_api.eval_loss(m, (const void *[]){ds.x + (size_t)s * 784}, nb) * nb;
    }
    snprintf(want, sizeof want, "test loss: %.6f\n", sum / 50);
    cr_assert_str_eq(strstr(r.out, "test loss: "), want);
    run(&e, &tiny_ae_api, (const char *[]){"eval", p, "--data", d, NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    cr_assert_str_eq(e.out, want);

    size_t csv_len = 0;
    char *csv = (char *)tu_read(log, &csv_len);
    cr_assert_not_null(csv);
    csv[csv_len] = '\0';
    cr_assert(strncmp(csv, "kind,epoch,step,loss,lr,val_loss,test_loss,seconds\nstep,1,1,", 58) == 0, "%s", csv);
    snprintf(want, sizeof want, "epoch,2,10,%.6f,50,%.6f,%.6f,", l2, v2, t2);
    cr_assert_not_null(strstr(csv, want), "%s\n---\n%s", want, csv);

    /* predict: 784 output values per image (the model's parameter here); run_result keeps
     * the first 32 KiB of the 50 lines */
    float mean[784];
    tiny_ae_api.read_tensor(m, 0, mean);
    run(&e, &tiny_ae_api, (const char *[]){"predict", p, tu_path(d, "t10k-images-idx3-ubyte"), NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    snprintf(want, sizeof want, "0: %.6g %.6g ", (double)mean[0], (double)mean[1]);
    cr_assert(strncmp(e.out, want, strlen(want)) == 0, "%s---\n%.200s", want, e.out);
    const char *nl = strchr(e.out, '\n');
    int values = 0;
    for (const char *q = e.out; q < nl; q++) values += *q == ' ';
    cr_assert_eq(values, 784);
    tiny_ae_api.destroy(m);
    mlcrt_dataset_free(&ds);
}

/* predict prints an i32 output (argmax's) as integers after the float ones. */
Test(modes, predict_prints_integer_outputs_as_integers) {
    char *d = mnist_dir(), *p = tu_path(d, "aei.ckpt");
    run_result r, e;
    run(&r, &tiny_ae_argmax_api,
        (const char *[]){"--data", d, "--epochs", "1", "--progress", "never", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    char msg[MLCRT_MSG_SIZE], want[32];
    void *m = tiny_ae_argmax_api.create(0, 32);
    cr_assert_eq(mlcrt_ckpt_load(&tiny_ae_argmax_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    float mean[784];
    tiny_ae_argmax_api.read_tensor(m, 0, mean);
    int best = 0;
    for (int j = 1; j < 784; j++)
        if (mean[j] > mean[best]) best = j;
    tiny_ae_argmax_api.destroy(m);
    run(&e, &tiny_ae_argmax_api, (const char *[]){"predict", p, tu_path(d, "t10k-images-idx3-ubyte"), NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    const char *nl = strchr(e.out, '\n');
    cr_assert_not_null(nl);
    snprintf(want, sizeof want, " %d\n", best);
    cr_assert(nl - e.out > (long)strlen(want) && !strncmp(nl + 1 - strlen(want), want, strlen(want)),
              "the first line does not end in%s: %.80s", want, nl - 60);
    int values = 0;
    for (const char *q = e.out; q < nl; q++) values += *q == ' ';
    cr_assert_eq(values, 785);
}

/* The checkpoint remembers --mean/--std: eval and predict without them see what training
 * saw; flags that differ are an error naming both. */
Test(modes, checkpoint_keeps_normalisation) {
    char *d = mnist_dir(), *p = tu_path(d, "n.ckpt"), *q = tu_path(d, "plain.ckpt");
    char *img = tu_path(d, "t10k-images-idx3-ubyte");
    run_result r, e, f;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--epochs", "2", "--quiet", "--mean", "0.2", "--std", "0.3", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&e, &tiny_api, (const char *[]){"eval", p, "--data", d, NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    cr_assert(strncmp(e.out, r.out, strlen(r.out)) == 0, "%s\n---\n%s", e.out, r.out);
    run(&e, &tiny_api, (const char *[]){"predict", p, img, NULL});
    run(&f, &tiny_api, (const char *[]){"predict", p, img, "--mean", "0.2", "--std", "0.3", NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    cr_assert_eq(f.status, 0, "%s", f.err);
    cr_assert_str_eq(e.out, f.out);

    char want[1024];
    run(&e, &tiny_api, (const char *[]){"predict", p, img, "--mean", "0.5", "--std", "0.3", NULL});
    cr_assert_eq(e.status, 1);
    snprintf(want, sizeof want,
             "error: %s: the model was trained with --mean 0.2 --std 0.3, the command line says "
             "--mean 0.5 --std 0.3 (leave out --mean and --std to use the checkpoint's)\n",
             p);
    cr_assert_str_eq(e.err, want);

    run(&r, &tiny_api, (const char *[]){"--data", d, "--epochs", "1", "--quiet", "--save", q, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    run(&e, &tiny_api, (const char *[]){"eval", q, "--data", d, "--mean", "0.2", "--std", "0.3", NULL});
    cr_assert_eq(e.status, 1);
    snprintf(want, sizeof want,
             "error: %s: the model was trained with no normalisation, the command line says "
             "--mean 0.2 --std 0.3 (leave out --mean and --std to use the checkpoint's)\n",
             q);
    cr_assert_str_eq(e.err, want);
}

/* Inputs named otherwise bind by dtype and size when that is unambiguous; a third input
 * the data cannot feed is an error naming it and the fields. */
Test(modes, inputs_bind_by_name_or_type) {
    char *d = mnist_dir();
    run_result a, b;
    run(&a, &tiny_api, (const char *[]){"--data", d, "--epochs", "1", "--progress", "never", NULL});
    cr_assert_eq(a.status, 0, "%s", a.err);
    static const mlc_io_desc renamed[2] = {{"pixels", MLC_F32, 1, {784}, 784, 1}, {"target", MLC_I32, 0, {0}, 1, 0}};
    mlc_model_api api = tiny_api;
    api.inputs = renamed;
    run(&b, &api, (const char *[]){"--data", d, "--epochs", "1", "--progress", "never", NULL});
    cr_assert_eq(b.status, 0, "%s", b.err);
    char sa[4096], sb[4096];
    tu_strip_times(a.out, sa, sizeof sa);
    tu_strip_times(b.out, sb, sizeof sb);
    cr_assert_str_eq(sa, sb);
    cr_assert(strstr(sa, "test accuracy: "), "%s", sa);

    // clang-format off
    static const mlc_io_desc three[3] = {{"image", MLC_F32, 1, {784}, 784, 1},
                                         {"label", MLC_I32, 0, {0}, 1, 0},
                                         {"mask", MLC_F32, 2, {28, 28}, 784, 1}};
    // clang-format on
    api.inputs = three;
    api.n_inputs = 3;
    run(&b, &api, (const char *[]){"--data", d, "--epochs", "1", NULL});
    cr_assert_eq(b.status, 1);
    cr_assert_str_eq(b.err,
                     "error: model input 'mask' (f32[28, 28]) matches no field of the data "
                     "(image: f32 per sample, label: i32); name it image or label\n");
    static const mlc_io_desc two_f32[2] = {{"a", MLC_F32, 1, {784}, 784, 1}, {"b", MLC_F32, 1, {784}, 784, 1}};
    api.inputs = two_f32;
    api.n_inputs = 2;
    run(&b, &api, (const char *[]){"--data", d, "--epochs", "1", NULL});
    cr_assert_eq(b.status, 1);
    cr_assert_str_eq(b.err,
                     "error: model input 'a' (f32[784]) matches no field of the data "
                     "(image: f32 per sample, label: i32); name it image or label\n");
}

Test(modes, eval_and_predict) {
    char *d = mnist_dir(), *p = tu_path(d, "m.ckpt");
    run_result r, e;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--epochs", "2", "--test-limit", "30", "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* --ema needs the moving averages of train { ema }, which tiny keeps none of */
    run(&e, &tiny_api, (const char *[]){"eval", p, "--data", d, "--ema", NULL});
    cr_assert_eq(e.status, 1);
    cr_assert_str_eq(e.err,
                     "error: --ema: model 'tiny' keeps no moving average of its parameters (train { ema = 0.999 } "
                     "adds one for each parameter it trains)\n");
    run(&e, &tiny_api, (const char *[]){"eval", p, "--data", d, "--test-limit", "30", NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    /* same accuracy line as the trainer's */
    cr_assert(strncmp(e.out, r.out, strlen(r.out)) == 0, "%s\n---\n%s", e.out, r.out);
    const char *pc = e.out + strlen(r.out);
    cr_assert(strncmp(pc, "per-class accuracy:\n  class 0  1.0000  (3/3)\n", 42) == 0, "%s", pc);
    cr_assert_eq(count_lines(pc, "  class "), 10);
    cr_assert(strstr(pc, "  class 9  "));
    const char *cm = strstr(pc, "confusion matrix (rows: true class, columns: predicted class):\n");
    cr_assert_not_null(cm);
    cm = strchr(cm, '\n') + 1;
    /* columns as wide as the largest count or class number (here 1 digit) */
    cr_assert(strncmp(cm, "     0  1  2  3  4  5  6  7  8  9\n", 34) == 0, "%s", cm);
    /* rows sum to the per-class totals: 3 samples of each class among the first 30 */
    const char *row = strchr(cm, '\n') + 1;
    for (int c = 0; c < 10; c++) {
        int label, sum = 0, v;
        cr_assert_eq(sscanf(row, " %d", &label), 1);
        cr_assert_eq(label, c);
        const char *q = row + 3;
        for (int j = 0; j < 10; j++) {
            cr_assert_eq(sscanf(q, "%d", &v), 1);
            sum += v;
            q += 3;
        }
        cr_assert_eq(sum, 3, "row %d: %s", c, row);
        row = strchr(row, '\n') + 1;
    }
    cr_assert_eq(*row, '\0');

    run(&e, &tiny_api, (const char *[]){"predict", p, tu_path(d, "t10k-images-idx3-ubyte"), "--top", "2", NULL});
    cr_assert_eq(e.status, 0, "%s", e.err);
    cr_assert_eq(count_lines(e.out, ""), 50);
    int idx, c1, c2;
    double p1, p2;
    cr_assert_eq(sscanf(e.out, "%d:  %d %lf  %d %lf\n", &idx, &c1, &p1, &c2, &p2), 5, "%s", e.out);
    cr_assert_eq(idx, 0);
    /* the model's own output values (logits: tiny computes no softmax), best first */
    {
        char msg[MLCRT_MSG_SIZE];
        float *x = NULL, logits[10], *outs[1] = {logits};
        int64_t n = 0, rows = 0, cols = 0;
        cr_assert_eq(mlcrt_idx_load_images(tu_path(d, "t10k-images-idx3-ubyte"), 1, 784, &x, &n, NULL, &rows, &cols,
                                           msg, sizeof msg),
                     MLCRT_OK, "%s", msg);
        void *m = tiny_api.create(1, 1);
        cr_assert_eq(mlcrt_ckpt_load(&tiny_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
        tiny_api.forward(m, (const void *[]){x, NULL}, 1, outs);
        char want[64];
        snprintf(want, sizeof want, "0:  %d %.4f  %d %.4f\n", c1, (double)logits[c1], c2, (double)logits[c2]);
        cr_assert(strncmp(e.out, want, strlen(want)) == 0, "%s---\n%s", want, e.out);
        for (int j = 0; j < 10; j++) cr_assert(logits[j] <= logits[c1] && (j == c1 || logits[j] <= logits[c2]));
        tiny_api.destroy(m);
        free(x);
    }
    cr_assert(p1 >= p2 && c1 != c2);
    cr_assert(strncmp(strstr(e.out, "\n49:"), "\n49:  ", 6) == 0);

    /* images of the wrong size; missing positional arguments */
    write_idx_images(tu_path(d, "small"), 3, 10, 10, 4);
    run(&e, &tiny_api, (const char *[]){"predict", p, tu_path(d, "small"), NULL});
    cr_assert_eq(e.status, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "error: %s/small: bytes 8..15: expected images of 784 values (model input 'image', f32[784]), found 100 "
             "(10 x 10)\n",
             d);
    cr_assert_str_eq(e.err, want);
    run(&e, &tiny_api, (const char *[]){"predict", p, NULL});
    cr_assert_eq(e.status, 2);
    cr_assert_str_eq(e.err,
                     "error: predict: expected a checkpoint and an IDX image file (usage: net "
                     "predict CHECKPOINT IMAGES [flags])\n");
    run(&e, &tiny_api, (const char *[]){"eval", NULL});
    cr_assert_eq(e.status, 2);
    cr_assert_str_eq(e.err, "error: eval: expected a checkpoint path (usage: net eval CHECKPOINT [flags])\n");
    tu_rmrf(d);
}

/* ---- output: log formats, progress bar, flags ---- */

Test(output, jsonl_log_and_progress_bar) {
    char *d = mnist_dir(), *log = tu_path(d, "log.jsonl");
    run_result r;
    run(&r, &tiny_api,
        (const char *[]){"--data", d, "--epochs", "1", "--batch", "100", "--val", "20", "--log", log, "--log-format",
                         "jsonl", "--progress", "always", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strncmp(r.out, "\r\033[Kepoch 1/1 [", 15) == 0, "%s", r.out);
    cr_assert(strstr(r.out, "180/180  "));
    cr_assert(strstr(r.out, " samples/s  ETA "));
    cr_assert(strstr(r.out, "\r\033[Kepoch 1/1  loss "));
    size_t n;
    char *j = (char *)tu_read(log, &n);
    j[n] = '\0';
    const char *first = "{\"kind\":\"step\",\"epoch\":1,\"step\":1,\"loss\":";
    cr_assert(strncmp(j, first, strlen(first)) == 0, "%s", j);
    const char *ep = strstr(j, "{\"kind\":\"epoch\",\"epoch\":1,\"step\":2,");
    cr_assert_not_null(ep, "%s", j);
    cr_assert(strstr(ep, ",\"val_acc\":") && strstr(ep, ",\"test_acc\":") && strstr(ep, ",\"seconds\":"));
    cr_assert_eq(count_lines(j, "{"), 3);
    tu_rmrf(d);
}

Test(output, new_bad_flags_and_help) {
    // clang-format off
    static const struct {
        const char *args[7];
        const char *err;
    } cases[] = {
        {{"--schedule", "linear", NULL}, "error: --schedule: expected constant, step, cosine or onecycle, found 'linear'\n"},
        {{"--augment", "crop:0", NULL}, "error: --augment: expected crop:N (N in 1..64), flip or none, found 'crop:0'\n"},
        {{"--save-every", "3x", NULL}, "error: --save-every: expected N, Ne (epochs) or Ns (steps) with N >= 1, found '3x'\n"},
        {{"--warmup", "-1", NULL}, "error: --warmup: expected a non-negative number, found '-1'\n"},
        {{"--gamma", "0", NULL}, "error: --gamma: expected a positive number, found '0'\n"},
        {{"--std", "0.3,0", NULL}, "error: --std: expected 1 to 4 comma-separated positive numbers, found '0.3,0'\n"},
        {{"--mean", "0.1,0.2", "--std", "0.3", NULL}, "error: --mean and --std: expected the same number of values, found 2 and 1\n"},
        {{"--log-format", "xml", NULL}, "error: --log-format: expected csv or jsonl, found 'xml'\n"},
        {{"--progress", "maybe", NULL}, "error: --progress: expected auto, always or never, found 'maybe'\n"},
        {{"--load", "a", "--resume", "b", NULL}, "error: --load and --resume cannot be combined (--resume also loads the weights)\n"},
        {{"--val", "0", NULL}, "error: --val: expected a positive integer, found '0'\n"},
        {{"train", "x", NULL}, "error: unexpected argument 'x' (see --help)\n"},
        {{"eval", "a", "b", NULL}, "error: unexpected argument 'b' (see --help)\n"},
        {{"--quiet=1", NULL}, "error: --quiet: takes no value, found '1'\n"},
        {{"--threads", "5000", NULL}, "error: --threads: expected an integer from 1 to 4096, found '5000'\n"},
        {{"--mean", "0.1,,0.2", "--std", "1", NULL}, "error: --mean: expected 1 to 4 comma-separated numbers, found '0.1,,0.2'\n"},
        {{"--data=", NULL}, "error: --data: expected a path, found ''\n"},
        /* a float flag reads what a float holds: 1e-50 would train at lr 0 */
        {{"--lr", "1e-50", NULL}, "error: --lr: expected a positive number from 1.2e-38 to 3e+38, found '1e-50'\n"},
        {{"--lr", "1e39", NULL}, "error: --lr: expected a positive number from 1.2e-38 to 3e+38, found '1e39'\n"},
        {{"--temperature", "1e-400", NULL}, "error: --temperature: expected a positive number from 1.2e-38 to 3e+38, found '1e-400'\n"},
        {{"--warmup", "1e300", NULL}, "error: --warmup: expected 0 or a number from 1.2e-38 to 3e+38, found '1e300'\n"},
        {{"--mean", "0.5,1e-45", "--std", "1,1", NULL}, "error: --mean: expected 1 to 4 comma-separated numbers, each 0 or from 1.2e-38 to 3e+38 in magnitude, found '0.5,1e-45'\n"},
        /* the second of a flag would silently replace the first */
        {{"--epochs", "1", "--epochs", "2", NULL}, "error: --epochs: given twice ('1', then '2'; give it once)\n"},
        {{"--save", "a", "--save=b", NULL}, "error: --save: given twice ('a', then 'b'; give it once)\n"},
        {{"--quiet", "--quiet", NULL}, "error: --quiet: given twice (give it once)\n"},
        /* a flag of another mode would be ignored without a word */
        {{"eval", "a.ckpt", "--epochs", "2", NULL}, "error: --epochs applies to train, not eval\n"},
        {{"--prompt", "x", NULL}, "error: --prompt applies to sample, not train\n"},
        {{"predict", "a", "b", "--log", NULL}, "error: --log: missing value\n"},
        {{"sample", "a", "--top", "3", NULL}, "error: --top applies to predict, not sample\n"},
        /* training's flags in eval and predict, eval's data in predict: each was ignored */
        {{"eval", "a", "--lr", "0.1", NULL}, "error: --lr applies to train, not eval\n"},
        {{"predict", "a", "b", "--augment", "flip", NULL}, "error: --augment applies to train, not predict\n"},
        {{"predict", "a", "b", "--data", "d", NULL}, "error: --data applies to train or eval, not predict\n"},
        {{"predict", "a", "b", "--test-limit", "2", NULL}, "error: --test-limit applies to train or eval, not predict\n"},
        {{"eval", "a", "--check-finite", NULL}, "error: --check-finite applies to train, not eval\n"},
        {{"eval", "a", "--seed", "3", NULL}, "error: --seed applies to train or sample, not eval\n"},
        {{"sample", "a", "--batch", "3", NULL}, "error: --batch applies to train, eval or predict, not sample\n"},
        {{"eval", "a", "--quiet", NULL}, "error: --quiet applies to train, not eval\n"},
        /* an integer flag is decimal digits: no blank or sign before them, as none after */
        {{"--epochs", " 1", NULL}, "error: --epochs: expected a positive integer, found ' 1'\n"},
        {{"--epochs", "+1", NULL}, "error: --epochs: expected a positive integer, found '+1'\n"},
        {{"--max-steps", "\t5", NULL}, "error: --max-steps: expected a positive integer, found '\t5'\n"},
        /* --top beyond the classes was cut to them without a word */
        {{"predict", "a", "b", "--top", "11", NULL}, "error: --top: expected 1 to 10 (model 'tiny' has 10 classes), found '11'\n"},
        /* a schedule's setting for a schedule that has no use for it was taken and ignored */
        {{"--schedule", "constant", "--warmup", "1", NULL}, "error: --warmup: the schedule is constant, which does not use it (step and cosine do; --schedule chooses)\n"},
        {{"--schedule", "onecycle", "--warmup", "1", NULL}, "error: --warmup: the schedule is onecycle, which does not use it (step and cosine do; --schedule chooses)\n"},
        {{"--schedule", "cosine", "--gamma", "0.5", NULL}, "error: --gamma: the schedule is cosine, which does not use it (step does; --schedule chooses)\n"},
        {{"--step-size", "2", NULL}, "error: --step-size: the schedule is constant, which does not use it (step does; --schedule chooses)\n"},
        {{"--comm-timeout", "1e-6", NULL}, "error: --comm-timeout: expected at least 0.01 seconds, found '1e-6'\n"},
        {{"--save-every", "3", NULL}, "error: --save-every: needs --save, the checkpoint it writes\n"},
        /* dropout's counter holds 256 micro-batches: a 257th drew the first one's masks */
        {{"--accum", "257", NULL}, "error: --accum: expected 1 to 256 micro-batches a step (dropout tells no more apart), found 257\n"},
        {{"--augment", "crop:2,crop:3", NULL}, "error: --augment: crop given twice in 'crop:2,crop:3'\n"},
        {{"--augment", "flip,crop:2,flip", NULL}, "error: --augment: flip given twice in 'flip,crop:2,flip'\n"},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r;
        run(&r, &tiny_api, cases[i].args);
        cr_assert_eq(r.status, 2, "case %zu", i);
        cr_assert_str_eq(r.err, cases[i].err);
        cr_assert_str_eq(r.out, "");
    }
    run_result r;
    run(&r, &tiny_api, (const char *[]){"--help", NULL});
    cr_assert_eq(r.status, 0);
    const char *flags[] = {"--data",
                           "--train-limit",
                           "--test-limit",
                           "--val",
                           "--mean",
                           "--std",
                           "--augment",
                           "--no-prefetch",
                           "--epochs",
                           "--batch",
                           "--lr",
                           "--schedule",
                           "--warmup",
                           "--step-size",
                           "--gamma",
                           "--seed",
                           "--threads",
                           "--max-steps",
                           "--save",
                           "--save-every",
                           "--resume",
                           "--load",
                           "--log",
                           "--log-format",
                           "--log-every",
                           "--progress",
                           "--top",
                           "--quiet",
                           "--help",
                           " eval CHECKPOINT",
                           " predict CHECKPOINT"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(r.out, flags[i]), "help lacks %s", flags[i]);
}

/* Every flag of settings.def has its modes in the mode table, so that none is taken and
 * ignored where it means nothing; --top is refused for a model without classes. */
Test(output, every_flag_has_its_modes) {
    for (int i = 0; i < mlcrt_n_flags; i++)
        cr_expect_neq(mlcrt_flag_modes(mlcrt_flags[i].flag), 0u, "%s has no row in trainer_flags.c's mode table",
                      mlcrt_flags[i].flag);
    cr_assert_eq(mlcrt_flag_modes("--nonexistent"), 0u);
    cr_assert_eq(mlcrt_flag_modes("--lr"), 1u << MODE_train);
    run_result r;
    run(&r, &tiny_ae_api, (const char *[]){"predict", "a", "b", "--top", "2", NULL});
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err,
                     "error: --top: model 'tiny_ae' is no classifier (predict prints every value of its outputs)\n");
}

/* --version names the model, its target and API version, and the kernels the trainer's
 * main handed over (build_info.h): a C trainer's main says which vector width its
 * libmlckernels has; without it, that is said too. */
Test(output, version_names_the_model_and_its_kernels) {
    run_result r;
    run(&r, &tiny_api, (const char *[]){"--version", NULL});
    cr_assert_eq(r.status, 0);
    char want[256];
    snprintf(want, sizeof want, "model 'tiny', target c, mlc_model.h API %d\n%s", MLC_API_VERSION,
             "kernels: libmlckernels, vector width not handed over (a main() other than mlc build's)\n");
    cr_assert_str_eq(r.out, want);
    mlcrt_set_kernels(16, "AVX-512F");
    run(&r, &tiny_api, (const char *[]){"--version", NULL});
    cr_assert_eq(r.status, 0);
    snprintf(want, sizeof want, "model 'tiny', target c, mlc_model.h API %d\n%s", MLC_API_VERSION,
             "kernels: libmlckernels, 16-float vectors (AVX-512F)\n");
    cr_assert_str_eq(r.out, want);
    cr_assert_str_eq(r.err, "");
}

/* --help comes from runtime/settings.def: modes first, then each section's flags, the
 * help wrapped at 80 columns, and the model's train { } values as the defaults. */
Test(output, help_shows_the_models_defaults) {
    mlc_model_api api = tiny_api;
    api.schedule = "cosine";
    api.warmup_epochs = 0.5f;
    api.augment = "crop:2,flip";
    api.n_norm = 2;
    api.norm_mean[0] = 0.5f, api.norm_mean[1] = 0.25f;
    api.norm_std[0] = 0.2f, api.norm_std[1] = 0.1f;
    run_result r;
    run(&r, &api, (const char *[]){"-h", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    static const char *const want[] = {
        "usage: net [train] [flags]\n"
        "       net eval CHECKPOINT [flags]\n"
        "       net predict CHECKPOINT IMAGES [flags]\n"
        "       net sample CHECKPOINT [flags]\n"
        "\n"
        "modes (model 'tiny'):\n"
        "  train               train, then print `test accuracy: 0.XXXX` (a classifier),\n"
        "                      `test loss: X` (another model) or `val loss: X val bpc: X`\n"
        "                      (a token model) (the default mode)\n",
        "  predict CHECKPOINT IMAGES\n"
        "                      the outputs for every image of an IDX file (a classifier's\n"
        "                      top classes); not for a token model\n"
        "  sample CHECKPOINT   generate text with a token model: its continuation of\n"
        "                      --prompt\n"
        "\n"
        "data:\n",
        "  --mean X[,X..]      per-channel mean subtracted from inputs in [0,1] (default\n"
        "                      0.5,0.25)\n"
        "  --std X[,X..]       per-channel std inputs are divided by (with --mean)\n"
        "                      (default 0.2,0.1)\n"
        "  --augment SPEC      training augmentation: crop:N (zero padding N, random\n"
        "                      crop), flip (horizontal), comma-separated, or none\n"
        "                      (default crop:2,flip)\n",
        "  --epochs N          epochs to train (default 2)\n",
        "  --schedule S        learning-rate schedule: constant, step, cosine or onecycle\n"
        "                      (default cosine)\n"
        "  --warmup X          linear warm-up epochs for step and cosine (may be\n"
        "                      fractional) (default 0.5)\n",
        "  --threads N         CPU threads for the model's kernels (default: OpenMP's,\n"
        "                      OMP_NUM_THREADS or else one per core)\n",
        "\noutput:\n  --log FILE ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(r.out, want[i]), "--help lacks:\n%s\nin:\n%s", want[i], r.out);
}
