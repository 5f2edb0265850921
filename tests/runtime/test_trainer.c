/* test_trainer.c - mlcrt_main / mlcrt_evaluate with the hand-written tiny model on a
 * slice of Fashion-MNIST: output format, accuracy, determinism, flags, NaN detection,
 * checkpoints through the trainer. Asserts texts and values, never timings. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <math.h>
#include <unistd.h>

#include "ckpt.h"
#include "data.h"
#include "mlcrt_error.h"
#include "testutil.h"
#include "tiny_model.h"
#include "trainer.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

static void run(run_result *r, const mlc_model_api *api, const char *const *args) { tu_run(r, api, "trainer", args); }

static const char *last_line(const char *s) {
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n') n--;
    while (n > 0 && s[n - 1] != '\n') n--;
    return s + n;
}

static const char *slice[] = {"--data",  FMNIST, "--train-limit", "2000", "--test-limit", "500", "--epochs", "2",
                              "--batch", "32",   "--lr",          "0.1",  "--seed",       "7",   NULL};

Test(trainer, trains_fashion_mnist_slice) {
    run_result r;
    run(&r, &tiny_api, slice);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.err, "");
    /* two epoch lines, then the result */
    const char *l1 = r.out, *l2 = strchr(l1, '\n') + 1;
    cr_assert(strncmp(l1, "epoch 1/2  loss ", 16) == 0, "%s", r.out);
    cr_assert(strncmp(l2, "epoch 2/2  loss ", 16) == 0, "%s", r.out);
    const char *last = last_line(r.out);
    cr_assert_eq(last, strchr(l2, '\n') + 1);
    double acc = -1;
    char tail[8] = "";
    cr_assert_eq(sscanf(last, "test accuracy: %lf%7s", &acc, tail), 1, "%s", last);
    cr_assert_eq(strlen(last), strlen("test accuracy: 0.XXXX\n"), "%s", last);
    cr_assert(acc > 0.6, "accuracy %f", acc);
    /* the last line equals the second epoch's test_acc, and matches mlcrt_evaluate */
    double eacc = -1, loss = -1, tracc = -1;
    cr_assert_eq(sscanf(l2, "epoch 2/2  loss %lf  train_acc %lf  test_acc %lf", &loss, &tracc, &eacc), 3);
    cr_assert_eq(eacc, acc);
    cr_assert(loss > 0 && loss < 2.3, "loss %f", loss);
    cr_assert(tracc > 0.5 && tracc <= 1.0);
}

Test(trainer, same_seed_same_loss_curve) {
    run_result a, b, c;
    run(&a, &tiny_api, slice);
    run(&b, &tiny_api, slice);
    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, 0);
    char sa[4096], sb[4096], sc[4096];
    tu_strip_times(a.out, sa, sizeof sa);
    tu_strip_times(b.out, sb, sizeof sb);
    cr_assert_str_eq(sa, sb);
    /* another seed gives another curve */
    const char *other[] = {"--data",  FMNIST, "--train-limit", "2000", "--test-limit", "500", "--epochs", "2",
                           "--batch", "32",   "--lr",          "0.1",  "--seed",       "8",   NULL};
    run(&c, &tiny_api, other);
    tu_strip_times(c.out, sc, sizeof sc);
    cr_assert_str_neq(sa, sc);
}

Test(trainer, evaluate_whole_test_set_including_partial_batch) {
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, FMNIST, "t10k", 784, 10, 103, msg, sizeof msg), MLCRT_OK, "%s", msg);
    void *m = tiny_api.create(1, 64);
    /* argmax of the logits, computed sample by sample, is the reference */
    int correct = 0;
    for (int i = 0; i < 103; i++) {
        float o[10], *outs[1] = {o};
        const void *in[2] = {ds.x + i * 784, NULL}; /* forward reads no labels */
        tiny_api.forward(m, in, 1, outs);
        int best = 0;
        for (int j = 1; j < 10; j++)
            if (o[j] > o[best]) best = j;
        correct += best == ds.y[i];
    }
    cr_assert_eq(mlcrt_evaluate(&tiny_api, m, &ds, 64), correct / 103.0);
    cr_assert_eq(mlcrt_evaluate(&tiny_api, m, &ds, 1), correct / 103.0);
    cr_assert_eq(mlcrt_evaluate(&tiny_api, m, &ds, 0), -1.0);
    tiny_api.destroy(m);
    mlcrt_dataset_free(&ds);
}

Test(trainer, bad_flag_values) {
    static const struct {
        const char *args[4];
        const char *err;
    } cases[] = {
        {{"--epochs", "abc", NULL}, "error: --epochs: expected a positive integer, found 'abc'\n"},
        {{"--batch", "0", NULL}, "error: --batch: expected a positive integer, found '0'\n"},
        {{"--accum", "0", NULL}, "error: --accum: expected a positive integer, found '0'\n"},
        {{"--epochs=-3", NULL, NULL}, "error: --epochs: expected a positive integer, found '-3'\n"},
        {{"--lr", "fast", NULL}, "error: --lr: expected a positive number, found 'fast'\n"},
        {{"--lr", "nan", NULL}, "error: --lr: expected a positive number, found 'nan'\n"},
        {{"--seed", "-1", NULL}, "error: --seed: expected a non-negative integer, found '-1'\n"},
        {{"--threads", "2x", NULL}, "error: --threads: expected a positive integer, found '2x'\n"},
        {{"--max-steps", NULL, NULL}, "error: --max-steps: missing value\n"},
        /* a forgotten value: the next flag is not taken for it */
        {{"--data", "--epochs", "1", NULL}, "error: --data: missing value (found the flag '--epochs')\n"},
        {{"--save", "--epochs=2", NULL}, "error: --save: missing value (found the flag '--epochs')\n"},
        {{"--frobnicate", "1", NULL}, "error: unknown flag '--frobnicate' (see --help)\n"},
        {{"extra", NULL, NULL}, "error: unexpected argument 'extra' (see --help)\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r;
        run(&r, &tiny_api, cases[i].args);
        cr_assert_eq(r.status, 2, "case %zu", i);
        cr_assert_str_eq(r.err, cases[i].err);
        cr_assert_str_eq(r.out, "");
    }
}

Test(trainer, help_lists_flags) {
    run_result r;
    const char *args[] = {"--help", NULL};
    run(&r, &tiny_api, args);
    cr_assert_eq(r.status, 0);
    const char *flags[] = {"--data",       "--epochs",    "--batch", "--lr",   "--seed",  "--threads", "--train-limit",
                           "--test-limit", "--max-steps", "--save",  "--load", "--accum", "--quiet",   "--help"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(r.out, flags[i]), "help lacks %s", flags[i]);
    cr_assert(strncmp(r.out, "usage: trainer [train] [flags]\n", 31) == 0, "%s", r.out);
}

Test(trainer, missing_data_dir) {
    run_result r;
    const char *args[] = {"--data", "/nonexistent-data", NULL};
    run(&r, &tiny_api, args);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err,
                     "error: /nonexistent-data: cannot open dataset directory: No such "
                     "file or directory\n");
}

static float nan_step(void *m, const void *const *in, int n, float lr, float *const *out) {
    float l = tiny_api.train_step(m, in, n, lr, out);
    return tiny_api.get_step(m) == 3 ? NAN : l;
}

Test(trainer, nan_loss_stops) {
    mlc_model_api api = tiny_api;
    api.train_step = nan_step;
    run_result r;
    const char *args[] = {"--data", FMNIST, "--train-limit", "100", "--test-limit", "10", "--quiet", NULL};
    run(&r, &api, args);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "error: loss became NaN at epoch 1 step 3\n");
    cr_assert_str_eq(r.out, "");
}

/* eval of a classifier whose weights hold a NaN (a diverged run's checkpoint) printed an
 * accuracy, every NaN row's argmax class 0, with exit 0: it is an error now. */
Test(trainer, eval_refuses_non_finite_scores) {
    char *d = tu_tmpdir(), *ck = tu_path(d, "nan.ckpt");
    void *m = tiny_api.create(1, 1);
    float b[10];
    tiny_api.read_tensor(m, 1, b);
    b[3] = NAN; /* fc.bias: class 3's score of every sample */
    tiny_api.write_tensor(m, 1, b);
    cr_assert_eq(mlcrt_save(&tiny_api, m, ck), 0);
    tiny_api.destroy(m);
    run_result r;
    run(&r, &tiny_api, (const char *[]){"eval", ck, "--data", FMNIST, "--test-limit", "10", NULL});
    cr_assert_eq(r.status, 1, "%s", r.out);
    char want[512];
    snprintf(want, sizeof want,
             "error: %s: the model's scores are not finite for 10 of the 10 test samples, expected finite numbers "
             "(the weights are not finite?)\n",
             ck);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    tu_rmrf(d);
}

static int threads_set;
static void record_threads(int n) { threads_set = n; }

Test(trainer, max_steps_quiet_threads_partial_batch) {
    mlc_model_api api = tiny_api;
    api.set_threads = record_threads;
    run_result r;
    /* 100 samples in batches of 32: 4 steps per epoch (32, 32, 32, 4) */
    const char *args[] = {"--data",   FMNIST, "--train-limit", "100", "--test-limit", "10", "--batch", "32",
                          "--epochs", "5",    "--max-steps",   "6",   "--threads",    "3",  NULL};
    run(&r, &api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(threads_set, 3);
    /* epoch 2 stops after its 2nd step; the epoch count stays as requested, and a line
     * says the run stopped early */
    const char *l2 = strchr(r.out, '\n') + 1;
    cr_assert(strncmp(l2, "epoch 2/5  loss", 15) == 0, "%s", r.out);
    const char *l3 = strchr(l2, '\n') + 1;
    const char *want = "stopped after 6 optimizer steps (--max-steps 6) of a 5-epoch run\n";
    cr_assert(strncmp(l3, want, strlen(want)) == 0, "%s", r.out);
    cr_assert(strncmp(last_line(r.out), "test accuracy: ", 15) == 0);
    cr_assert_eq(strchr(strchr(l3, '\n') + 1, '\n'), r.out + strlen(r.out) - 1);

    const char *quiet[] = {"--data",   FMNIST, "--train-limit", "100", "--test-limit", "10",
                           "--epochs", "1",    "--quiet",       NULL};
    run(&r, &tiny_api, quiet);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "test accuracy: 0.", 17) == 0, "%s", r.out);
    cr_assert_eq(strlen(r.out), strlen("test accuracy: 0.XXXX\n"));
}

static int created_for;
static void *record_create(uint64_t seed, int max_batch) {
    created_for = max_batch;
    return tiny_api.create(seed, max_batch);
}

/* A --batch beyond every set is cut to the largest one (train's 100 samples, eval's 10):
 * the model was created for 2e9 samples (gigabytes of arena, zeroed) that never came. The
 * run is the one of --batch 100: every batch holds what it would have held. */
Test(trainer, batch_beyond_the_data_is_cut_to_it) {
    mlc_model_api api = tiny_api;
    api.create = record_create;
    run_result r, whole;
    const char *huge[] = {
        "--data", FMNIST,     "--train-limit", "100", "--test-limit", "10",    "--batch", "2000000000", "--epochs", "2",
        "--save", "cut.ckpt", "--seed",        "3",   "--progress",   "never", NULL};
    run(&r, &api, huge);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(created_for, 100);
    const char *hundred[] = {"--data",   FMNIST, "--train-limit", "100", "--test-limit", "10",    "--batch", "100",
                             "--epochs", "2",    "--seed",        "3",   "--progress",   "never", NULL};
    run(&whole, &api, hundred);
    cr_assert_eq(whole.status, 0, "%s", whole.err);
    /* the same lines but for each epoch's seconds and samples/s */
    const char *a = strstr(r.out, "test_acc"), *b = strstr(whole.out, "test_acc");
    cr_assert(a && b);
    cr_expect_eq(strncmp(a, b, 15), 0, "%s\n%s", r.out, whole.out);
    cr_expect_str_eq(last_line(r.out), last_line(whole.out));
    const char *ev[] = {"eval", "cut.ckpt", "--data", FMNIST, "--test-limit", "10", "--batch", "2000000000", NULL};
    run(&r, &api, ev);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(created_for, 10);
    unlink("cut.ckpt");
}

/* --max-steps without --epochs is the run's length; --eval-every measures --val's samples */
Test(trainer, max_steps_alone_and_eval_every) {
    char *dir = tu_tmpdir(), *log = tu_path(dir, "log.csv");
    run_result r;
    /* 80 training samples in batches of 32: 3 steps an epoch, 10 steps in 4 epochs */
    const char *args[] = {
        "--data",      FMNIST, "--train-limit", "100", "--val",      "20",     "--test-limit", "10", "--batch", "32",
        "--max-steps", "10",   "--eval-every",  "2",   "--schedule", "cosine", "--log",        log,  NULL};
    run(&r, &tiny_api, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *l = r.out;
    int evals = 0, epochs = 0;
    for (; *l; l = strchr(l, '\n') + 1) {
        if (strncmp(l, "step ", 5) == 0) {
            int step = -1;
            double acc = -1;
            cr_assert_eq(sscanf(l, "step %d  val_acc %lf", &step, &acc), 2, "%s", l);
            cr_assert_eq(step, 2 * ++evals);
            if (step == 6) { /* the end of epoch 2: its line measures the same model */
                const char *e2 = strstr(r.out, "epoch 2/4  ");
                cr_assert_not_null(e2, "%s", r.out);
                char want[32];
                snprintf(want, sizeof want, "val_acc %.4f", acc);
                cr_assert(strncmp(strstr(e2, "val_acc "), want, strlen(want)) == 0, "%s", r.out);
            }
        } else if (strncmp(l, "epoch ", 6) == 0) {
            char want[32];
            snprintf(want, sizeof want, "epoch %d/4  ", ++epochs);
            cr_assert(strncmp(l, want, strlen(want)) == 0, "%s", r.out);
        }
    }
    cr_assert_eq(evals, 5);
    cr_assert_eq(epochs, 4);
    size_t n;
    char *csv = (char *)tu_read(log, &n);
    csv[n] = '\0';
    /* cosine over the 10 steps: the last one's lr is 0.1 (1 + cos(9 pi / 10)) / 2 = 0.00245 */
    cr_assert_not_null(strstr(csv, "\nstep,4,10,"), "%s", csv);
    cr_assert_not_null(strstr(strstr(csv, "\nstep,4,10,"), ",0.00244717,"), "%s", csv);
    cr_assert_not_null(strstr(csv, "\neval,4,10,,0.00244717,,0."), "%s", csv);
    tu_rmrf(dir);
}

Test(trainer, save_and_load_checkpoint) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "run.ckpt");
    const char *save[] = {
        "--data", FMNIST, "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet", "--save", p, NULL};
    run_result r1, r2;
    run(&r1, &tiny_api, save);
    cr_assert_eq(r1.status, 0, "%s", r1.err);
    /* loading the checkpoint reproduces the trained model's state */
    char msg[MLCRT_MSG_SIZE];
    void *m = tiny_api.create(0, 32);
    cr_assert_eq(mlcrt_ckpt_load(&tiny_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(tiny_api.get_step(m), 10); /* ceil(300 / 32) */
    mlc_dataset ds;
    cr_assert_eq(mlcrt_dataset_load_dir(&ds, FMNIST, "t10k", 784, 10, 200, msg, sizeof msg), MLCRT_OK);
    char want[64];
    snprintf(want, sizeof want, "test accuracy: %.4f\n", mlcrt_evaluate(&tiny_api, m, &ds, 32));
    cr_assert_str_eq(r1.out, want);

    /* the trainer can start from it; a mismatching checkpoint is refused */
    const char *load[] = {
        "--data", FMNIST, "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet", "--load", p, NULL};
    run(&r2, &tiny_api, load);
    cr_assert_eq(r2.status, 0, "%s", r2.err);
    mlc_model_api other = tiny_api;
    other.name = "other";
    run(&r2, &other, load);
    cr_assert_eq(r2.status, 1);
    char werr[512];
    snprintf(werr, sizeof werr, "error: %s: checkpoint is for model 'tiny', this model is 'other'\n", p);
    cr_assert_str_eq(r2.err, werr);

    const char *bad_save[] = {"--data",   FMNIST, "--train-limit", "100",    "--test-limit",        "10",
                              "--epochs", "1",    "--quiet",       "--save", "/nonexistent/x.ckpt", NULL};
    run(&r2, &tiny_api, bad_save);
    cr_assert_eq(r2.status, 1);
    cr_assert_str_eq(r2.err,
                     "error: cannot write checkpoint '/nonexistent/x.ckpt': No such "
                     "file or directory\n");
    mlcrt_dataset_free(&ds);
    tiny_api.destroy(m);
    tu_rmrf(dir);
}

/* The parameters of the model a run saved in `path` (weight then bias). */
static void saved_params(const char *path, float *w, float *b) {
    char msg[MLCRT_MSG_SIZE];
    void *m = tiny_api.create(0, 1);
    cr_assert_eq(mlcrt_ckpt_load(&tiny_api, m, path, msg, sizeof msg), MLCRT_OK, "%s", msg);
    tiny_api.read_tensor(m, 0, w);
    tiny_api.read_tensor(m, 1, b);
    tiny_api.destroy(m);
}

/* --accum 2 --batch 16 on 40 samples: two optimizer steps, of 32 samples (two
 * micro-batches averaged) and of the last 8 (a partial group of one): the same math as
 * --batch 32, up to float rounding (1e-5 of the largest weight change is ~80 float
 * epsilons), and not the same as three steps of --batch 16. Step counts, the log's step
 * rows and the epoch's mean loss follow optimizer steps. */
Test(trainer, accum_averages_micro_batches) {
    char *dir = tu_tmpdir();
    const char *tags[3] = {"accum", "big", "small"};
    const char *batch[3] = {"16", "32", "16"}, *accum[3] = {"2", "1", "1"};
    static float w[3][784 * 10], b[3][10], w0[784 * 10], b0[10];
    char lines[3][256];
    for (int k = 0; k < 3; k++) {
        char *ckpt = tu_path(dir, tags[k]), *log = tu_path(dir, "log.csv");
        const char *args[] = {"--data",   FMNIST, "--train-limit", "40",     "--test-limit", "50",
                              "--epochs", "1",    "--batch",       batch[k], "--accum",      accum[k],
                              "--seed",   "5",    "--no-prefetch", "--save", ckpt,           "--log",
                              log,        NULL};
        run_result r;
        run(&r, &tiny_api, args);
        cr_assert_eq(r.status, 0, "%s", r.err);
        tu_strip_times(r.out, lines[k], sizeof lines[k]);
        saved_params(ckpt, w[k], b[k]);
        char msg[MLCRT_MSG_SIZE];
        void *m = tiny_api.create(0, 1);
        cr_assert_eq(mlcrt_ckpt_load(&tiny_api, m, ckpt, msg, sizeof msg), MLCRT_OK);
        cr_assert_eq(tiny_api.get_step(m), k == 2 ? 3 : 2, "%s: %lld steps", tags[k], (long long)tiny_api.get_step(m));
        tiny_api.destroy(m);
        size_t len;
        char *text = (char *)tu_read(log, &len); /* freed at exit */
        cr_assert_not_null(text);
        text[len] = '\0';
        int rows = 0;
        for (char *p = text; (p = strstr(p, "\nstep,")); p++) rows++;
        cr_assert_eq(rows, k == 2 ? 3 : 2, "%s: %d step rows:\n%s", tags[k], rows, text);
    }
    /* the epoch line's loss and train_acc are over the same 40 samples */
    cr_assert_str_eq(lines[0], lines[1]);
    void *m0 = tiny_api.create(5, 1);
    tiny_api.read_tensor(m0, 0, w0);
    tiny_api.read_tensor(m0, 1, b0);
    tiny_api.destroy(m0);
    double step = 0, d_accum = 0, d_small = 0;
    for (int i = 0; i < 7850; i++) {
        float a = i < 7840 ? w[0][i] : b[0][i - 7840], g = i < 7840 ? w[1][i] : b[1][i - 7840];
        float s = i < 7840 ? w[2][i] : b[2][i - 7840], z = i < 7840 ? w0[i] : b0[i - 7840];
        step = fmax(step, fabs((double)g - z));
        d_accum = fmax(d_accum, fabs((double)a - g));
        d_small = fmax(d_small, fabs((double)s - g));
    }
    cr_assert_gt(step, 0);
    cr_log_info("accum %g, small steps %g (of the step)", d_accum / step, d_small / step);
    cr_expect_leq(d_accum / step, 1e-5, "--accum 2 --batch 16 is %g of a step from --batch 32", d_accum / step);
    cr_expect_gt(d_small / step, 0.01, "three steps of 16 came within %g of --batch 32", d_small / step);
    tu_rmrf(dir);
}

Test(trainer, refuses_other_api_version) {
    mlc_model_api old = tiny_api;
    old.api_version = MLC_API_VERSION - 1;
    const char *args[] = {"--help", NULL};
    run_result r;
    run(&r, &old, args);
    cr_assert_eq(r.status, 2);
    char want[256];
    snprintf(want, sizeof want,
             "error: model 'tiny' was built against mlc_model.h API version %d, this runtime has "
             "version %d: rebuild the model with this mlc\n",
             MLC_API_VERSION - 1, MLC_API_VERSION);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
}

/* --resume of a checkpoint that a library's save wrote (weights, no run: train_n 0) says
 * so in one line and names --load; it printed a note about a seed the run never had,
 * then "train_n: expected 100 ..., found 0". --load of it trains. */
Test(trainer, resume_of_a_library_save_names_load) {
    char *dir = tu_tmpdir(), *p = tu_path(dir, "lib.ckpt");
    char msg[MLCRT_MSG_SIZE] = "";
    void *m = tu_track(tiny_api.create(1, 4), tiny_api.destroy);
    cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    run_result r;
    const char *resume[] = {
        "--data", FMNIST, "--train-limit", "100", "--test-limit", "10", "--epochs", "1", "--quiet", "--resume",
        p,        NULL};
    run(&r, &tiny_api, resume);
    cr_assert_eq(r.status, 1, "%s", r.err);
    char want[1024];
    snprintf(want, sizeof want,
             "error: %s: the checkpoint records no training run to resume (a library's tiny_save writes the weights "
             "alone): --load %s starts a run from them\n",
             p, p);
    cr_expect_str_eq(r.err, want);
    const char *load[] = {
        "--data", FMNIST, "--train-limit", "100", "--test-limit", "10", "--epochs", "1", "--quiet", "--load", p, NULL};
    run(&r, &tiny_api, load);
    cr_expect_eq(r.status, 0, "%s", r.err);
    tu_rmrf(dir);
}

/* A run killed after its last checkpoint logged steps the resumed run trains again: on
 * --resume the log is cut back to the checkpoint's step (a line the kill cut short goes
 * too), so every step has one row, as in a run never interrupted. */
Test(trainer, resumed_log_has_no_duplicate_rows) {
    char *dir = tu_tmpdir(), *log = tu_path(dir, "log.csv"), *c4 = tu_path(dir, "c4.ckpt"),
         *c6 = tu_path(dir, "c6.ckpt");
    run_result r;
    /* 100 samples in batches of 32: 4 steps an epoch */
#define LOG_RUN(...)                                                                                    \
    const char *args_##__LINE__[] = {                                                                   \
        "--data", FMNIST,    "--train-limit", "100", "--test-limit", "10", "--batch", "32", "--epochs", \
        "2",      "--quiet", "--log",         log,   __VA_ARGS__,    NULL};                             \
    run(&r, &tiny_api, args_##__LINE__);                                                                \
    cr_assert_eq(r.status, 0, "%s", r.err)
    { LOG_RUN("--max-steps", "4", "--save", c4); }
    /* the run goes on to step 6, then "dies" in the middle of writing a row */
    { LOG_RUN("--max-steps", "6", "--resume", c4, "--save", c6); }
    FILE *f = fopen(log, "a");
    cr_assert_not_null(f);
    fputs("step,2,7,0.12", f);
    fclose(f);
    /* resumed from the checkpoint at step 4: steps 5 and 6 are trained and logged again */
    { LOG_RUN("--resume", c4); }
#undef LOG_RUN
    f = fopen(log, "r");
    cr_assert_not_null(f);
    char line[256];
    int seen[9] = {0}, rows = 0, epochs = 0;
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert(strncmp(line, "kind,epoch,step,", 16) == 0, "%s", line);
    while (fgets(line, sizeof line, f)) {
        int epoch, step;
        char kind[16];
        cr_assert_eq(sscanf(line, "%15[a-z],%d,%d,", kind, &epoch, &step), 3, "%s", line);
        cr_assert(step >= 1 && step <= 8, "%s", line);
        if (!strcmp(kind, "step")) seen[step]++, rows++;
        else epochs++;
    }
    fclose(f);
    for (int s = 1; s <= 8; s++) cr_expect_eq(seen[s], 1, "step %d has %d rows", s, seen[s]);
    cr_expect_eq(rows, 8);
    cr_expect_eq(epochs, 2, "epoch rows: %d", epochs);
    tu_rmrf(dir);
}

/* A resumed run's step rows go on counting seconds from the last row it kept (they
 * started again at 0, a break in a curve plotted against time). The first run's rows are
 * given 100 s and more here, so that the test sees the difference on any machine. */
Test(trainer, resumed_log_seconds_go_on) {
    char *dir = tu_tmpdir(), *log = tu_path(dir, "log.csv"), *c4 = tu_path(dir, "c4.ckpt");
    run_result r;
    const char *first[] = {
        "--data", FMNIST,    "--train-limit", "100", "--test-limit", "10", "--batch", "32", "--epochs",
        "2",      "--quiet", "--log",         log,   "--max-steps",  "4",  "--save",  c4,   NULL};
    run(&r, &tiny_api, first);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char text[4096] = "", line[256];
    FILE *f = fopen(log, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f)) {
        int step;
        if (sscanf(line, "step,%*d,%d,", &step) == 1)
            *strrchr(line, ',') = 0, sprintf(line + strlen(line), ",%d.000\n", 100 + step);
        strcat(text, line);
    }
    fclose(f);
    f = fopen(log, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    const char *resume[] = {
        "--data", FMNIST,    "--train-limit", "100", "--test-limit", "10", "--batch", "32", "--epochs",
        "2",      "--quiet", "--log",         log,   "--resume",     c4,   NULL};
    run(&r, &tiny_api, resume);
    cr_assert_eq(r.status, 0, "%s", r.err);
    f = fopen(log, "r");
    cr_assert_not_null(f);
    int resumed = 0;
    while (fgets(line, sizeof line, f)) {
        int step;
        if (sscanf(line, "step,%*d,%d,", &step) != 1 || step <= 4) continue;
        resumed++;
        cr_expect_geq(strtod(strrchr(line, ',') + 1, NULL), 104.0, "%s", line);
    }
    fclose(f);
    cr_expect_eq(resumed, 4);
    tu_rmrf(dir);
}

/* An out-of-memory message after a create says how much the allocation that failed asked
 * for (mlcrt_oom_size, once): "out of memory creating model 'm' for batch 100000" alone
 * did not say whether the batch or the machine was at fault. */
Test(trainer, oom_message_names_the_allocation) {
#ifdef __SANITIZE_ADDRESS__
    cr_skip_test("ASan stops the process at an allocation this large");
#endif
    char size[96];
    cr_expect_str_eq(mlcrt_oom_size(size, sizeof size), "");
    cr_assert_null(mlcrt_alloc_floats(INT64_C(1) << 60));
    cr_expect_str_eq(mlcrt_oom_size(size, sizeof size),
                     " (an allocation of 4611686018427387904 bytes, 4294967296.0 GiB, failed)");
    cr_expect_str_eq(mlcrt_oom_size(size, sizeof size), "", "reported once");
}

/* The library's label check (model_helpers.c): a per-token input names the sample and
 * the position; labels in range, or an input the call does not read (NULL), pass. */
Test(library_checks, labels_outside_the_classes, .init = cr_redirect_stderr) {
    const int32_t tokens[6] = {0, 255, 7, 3, 256, 1};
    cr_assert_eq(mlcrt_labels_refused("gpt_eval_loss", "targets", tokens, 2, 3, 256), 1);
    cr_assert_eq(mlcrt_labels_refused("gpt_eval_loss", "targets", tokens, 1, 3, 256), 0);
    cr_assert_eq(mlcrt_labels_refused("gpt_eval_loss", "targets", NULL, 2, 3, 256), 0);
    const int32_t labels[2] = {9, -2};
    cr_assert_eq(mlcrt_labels_refused("mlp_train_step", "label", labels, 2, 1, 10), 1);
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "error: gpt_eval_loss: input 'targets': sample 1, position 1 has label 256, expected "
        "0..255\n"
        "error: mlp_train_step: input 'label': sample 1 has label -2, expected 0..9\n");
}
