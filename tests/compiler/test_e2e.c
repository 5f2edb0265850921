/* test_e2e.c - end to end: `mlc build samples/mlp.mdl -o DIR/mlp` with the mlc built in
 * this tree, then the trainer on a slice of Fashion-MNIST:
 *     DIR/mlp --epochs 1 --train-limit 12800 --test-limit 2000 --threads 2 --seed 1
 * (200 Adam steps). Checks: the epoch's mean loss is well below the initial ln(10) = 2.303
 * (< 1.0), the final `test accuracy:` is above 0.70, and a second run with the same seed
 * prints the same epoch line apart from its time and samples/s fields (determinism).
 * samples/autoencoder.mdl, a model without labels, likewise: its loss falls, and predict
 * prints its reconstructions. Skipped when the data set is not installed. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif
#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static char *dir;
static char exe[700];

/* `mlc build MDL -o BIN` with the trainer written in folder d; in a sanitizer build mlc
 * links the instrumented libmlcrt.a, so the trainer needs the same -fsanitize flag (--cc
 * takes one word, hence a wrapper script in d). */
static void build_trainer(const char *d, const char *mdl, const char *bin) {
    char *argv[] = {MLC_EXE, "build", (char *)mdl, "-o", (char *)bin, NULL, NULL, NULL};
    char wrapper[720];
    if (MLC_TEST_SANITIZE[0]) {
        snprintf(wrapper, sizeof wrapper, "%s/cc-san", d);
        cr_assert_eq(ct_write_file(wrapper, "#!/bin/sh\nexec cc " MLC_TEST_SANITIZE " \"$@\"\n"), 0);
        cr_assert_eq(chmod(wrapper, 0755), 0);
        argv[5] = "--cc";
        argv[6] = wrapper;
    }
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_assert_eq(st, 0, "mlc build %s failed (status %d):\n%s", mdl, st, out);
    free(out);
}

static void build_once(void) {
    dir = ct_tmpdir("e2e");
    cr_assert_not_null(dir);
    snprintf(exe, sizeof exe, "%s/mlp", dir);
    build_trainer(dir, MLC_SOURCE_ROOT "/samples/mlp.mdl", exe);
}

static void cleanup(void) {
    ct_rmdir(dir);
    free(dir);
    dir = NULL;
}

TestSuite(e2e, .fini = cleanup);

static char *train(void) {
    char *argv[] = {exe,      "--epochs", "1",      "--train-limit", "12800", "--test-limit", "2000", "--threads", "2",
                    "--seed", "1",        "--data", DATA_DIR,        NULL};
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_assert_eq(st, 0, "the trainer failed (status %d):\n%s", st, out);
    return out;
}

/* The `epoch ...` lines with the time and samples/s fields cut off. */
static char *epoch_lines(const char *out) {
    size_t cap = strlen(out) + 1, o = 0;
    char *r = malloc(cap);
    r[0] = 0;
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!strncmp(p, "epoch ", 6)) {
            const char *t = strstr(p, "  time ");
            size_t keep = t && t < p + l ? (size_t)(t - p) : l;
            memcpy(r + o, p, keep);
            o += keep;
            r[o++] = '\n';
            r[o] = 0;
        }
        p += l + (e ? 1 : 0);
    }
    return r;
}

static int data_present(void) { return access(DATA_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0; }

Test(e2e, mlp_trains_and_is_deterministic, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    build_once();
    char *out1 = train();
    printf("%s", out1);
    fflush(stdout);

    /* epoch 1/1  loss 0.6679  train_acc 0.7666  test_acc 0.8290  time 1.0s  12866 samples/s */
    const char *ep = strstr(out1, "epoch 1/1");
    cr_assert_not_null(ep, "no epoch line in:\n%s", out1);
    const char *lp = strstr(ep, "loss ");
    cr_assert_not_null(lp);
    double loss = strtod(lp + 5, NULL);
    cr_expect(loss > 0 && loss < 1.0, "first-epoch mean loss %.4f is not well below ln(10) = 2.303", loss);
    const char *ap = strstr(out1, "test accuracy:");
    cr_assert_not_null(ap, "no 'test accuracy:' line in:\n%s", out1);
    double acc = strtod(ap + strlen("test accuracy:"), NULL);
    cr_expect_gt(acc, 0.70, "test accuracy %.4f after one epoch on 12800 samples", acc);

    char *out2 = train();
    char *e1 = epoch_lines(out1), *e2 = epoch_lines(out2);
    cr_expect_neq(strlen(e1), 0);
    cr_expect_str_eq(e1, e2, "two runs with --seed 1 differ:\n%s---\n%s", e1, e2);
    const char *ap2 = strstr(out2, "test accuracy:");
    cr_expect(ap2 && !strcmp(ap2, ap), "final lines differ: '%s' vs '%s'", ap, ap2 ? ap2 : "(none)");
    free(e1);
    free(e2);
    free(out1);
    free(out2);
}

/* A different seed gives a different run: the determinism check above can fail. */
Test(e2e, seed_changes_the_run, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    build_once();
    char *outs[2];
    for (int k = 0; k < 2; k++) {
        char *argv[] = {exe,         "--epochs", "1",      "--train-limit", "1280",   "--test-limit", "500",
                        "--threads", "2",        "--seed", k ? "2" : "1",   "--data", DATA_DIR,       NULL};
        int st = ct_run(argv, &outs[k]);
        cr_assert_eq(st, 0, "the trainer failed:\n%s", outs[k]);
    }
    char *e1 = epoch_lines(outs[0]), *e2 = epoch_lines(outs[1]);
    cr_expect_neq(strlen(e1), 0);
    cr_expect_str_neq(e1, e2, "seeds 1 and 2 gave identical epochs:\n%s", e1);
    free(e1);
    free(e2);
    free(outs[0]);
    free(outs[1]);
}

/* --check-finite stops at the op that made the first NaN and names its .mdl line. */
Test(e2e, check_finite_names_the_op_and_line, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST is not installed at " DATA_DIR);
    char *d = ct_tmpdir("e2e-nan");
    cr_assert_not_null(d);
    char bin[700];
    snprintf(bin, sizeof bin, "%s/nan", d);
    build_trainer(d, MLC_TEST_DIR "/data/nan.mdl", bin);
    char *run[] = {bin,        "--data", DATA_DIR,         "--train-limit", "64", "--test-limit", "64",
                   "--epochs", "1",      "--check-finite", "--no-prefetch", NULL};
    char *out = NULL;
    int st = ct_run(run, &out);
    cr_expect_eq(st, 1, "exit status %d:\n%s", st, out);
    cr_expect(strstr(out, "= log (nan.mdl:8:47) produced NaN at element 0\n") != NULL, "output:\n%s", out);
    free(out);
    /* without the flag the trainer only sees the loss, and says which flag finds more */
    char *plain[] = {bin, "--data", DATA_DIR, "--train-limit", "64", "--test-limit", "64", "--epochs", "1", NULL};
    st = ct_run(plain, &out);
    cr_expect_eq(st, 1);
    cr_expect(strstr(out,
                     "error: loss became NaN at epoch 1 step 1 (--check-finite names the op and .mdl line that "
                     "made the first one)\n") != NULL,
              "output:\n%s", out);
    free(out);
    ct_rmdir(d);
    free(d);
}

/* The autoencoder (no label input, loss mse(recon, image)) on 6400 images, 100 Adam steps:
 * the loss falls from about 0.20 at the first step to an epoch mean of 0.073 and a test
 * loss of 0.050 (measured; 1.4x margins below); predict prints 784 values in (0, 1)
 * per image. */
Test(e2e, autoencoder_trains_without_labels, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    char *d = ct_tmpdir("e2e-ae");
    cr_assert_not_null(d);
    char bin[700], ckpt[720], log[720], imgs[720];
    snprintf(bin, sizeof bin, "%s/ae", d);
    snprintf(ckpt, sizeof ckpt, "%s/ae.ckpt", d);
    snprintf(log, sizeof log, "%s/ae.csv", d);
    snprintf(imgs, sizeof imgs, "%s/two-images", d);
    build_trainer(d, MLC_SOURCE_ROOT "/samples/autoencoder.mdl", bin);
    char *run[] = {
        bin, "--epochs", "1",      "--train-limit", "6400", "--test-limit", "1000", "--threads",  "2",     "--seed",
        "1", "--data",   DATA_DIR, "--save",        ckpt,   "--log",        log,    "--progress", "never", NULL};
    char *out = NULL;
    int st = ct_run(run, &out);
    cr_assert_eq(st, 0, "the trainer failed (status %d):\n%s", st, out);
    printf("%s", out);
    /* epoch 1/1  loss 0.072946  test_loss 0.049881  time 0.3s  19297 samples/s */
    const char *ep = strstr(out, "epoch 1/1  loss ");
    cr_assert_not_null(ep, "no epoch line in:\n%s", out);
    double loss = strtod(ep + strlen("epoch 1/1  loss "), NULL);
    cr_expect(loss > 0 && loss < 0.10, "epoch mean loss %.6f", loss);
    cr_expect(strstr(out, "train_acc") == NULL && strstr(out, "test_loss ") != NULL, "%s", out);
    const char *tp = strstr(out, "test loss: ");
    cr_assert_not_null(tp, "no 'test loss:' line in:\n%s", out);
    double test_loss = strtod(tp + strlen("test loss: "), NULL);
    cr_expect(test_loss > 0 && test_loss < 0.07, "test loss %.6f", test_loss);
    free(out);
    char *csv = ct_read_file(log, NULL);
    cr_assert_not_null(csv);
    cr_expect(!strncmp(csv, "kind,epoch,step,loss,lr,val_loss,test_loss,seconds\nstep,1,1,", 58), "%.200s", csv);
    double first = strtod(csv + 58, NULL);
    cr_expect(first > 0.15 && first > 2 * test_loss, "first step's loss %.6f, test loss %.6f", first, test_loss);
    free(csv);

    /* two 28x28 images: black, and a horizontal ramp */
    unsigned char idx[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    for (int i = 0; i < 784; i++) idx[16 + 784 + i] = (unsigned char)(9 * (i % 28));
    FILE *f = fopen(imgs, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(idx, 1, sizeof idx, f), sizeof idx);
    fclose(f);
    char *pred[] = {bin, "predict", ckpt, imgs, NULL};
    st = ct_run(pred, &out);
    cr_assert_eq(st, 0, "predict failed (status %d):\n%.500s", st, out);
    const char *line = out;
    for (int s = 0; s < 2; s++) {
        char head[8];
        snprintf(head, sizeof head, "%d:", s);
        cr_assert(!strncmp(line, head, strlen(head)), "%.300s", line);
        char *p = (char *)line + strlen(head);
        for (int i = 0; i < 784; i++) {
            double v = strtod(p, &p);
            cr_assert(v > 0 && v < 1, "image %d value %d: %g", s, i, v);
        }
        cr_assert_eq(*p, '\n', "image %d: more than 784 values", s);
        line = p + 1;
    }
    cr_assert_eq(*line, '\0');
    free(out);
    ct_rmdir(d);
    free(d);
}

/* train { ema } in the trainer (issue 14): the averages ride in the checkpoint (a run
 * stopped after 5 of 10 steps and resumed ends in the same bytes as one run of 10), and
 * eval / predict use them only under --ema, which train refuses. The runs use --seed 5
 * and the resume none: it keeps the checkpoint's seed, dropout's included (the model's
 * own is 1). */
Test(e2e, ema_is_saved_resumed_and_evaluated, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    char *d = ct_tmpdir("e2e-ema");
    cr_assert_not_null(d);
    char bin[700], a[720], b[720], c[720], imgs[720];
    snprintf(bin, sizeof bin, "%s/ema", d);
    snprintf(a, sizeof a, "%s/a.ckpt", d);
    snprintf(b, sizeof b, "%s/b.ckpt", d);
    snprintf(c, sizeof c, "%s/c.ckpt", d);
    snprintf(imgs, sizeof imgs, "%s/t10k-images-idx3-ubyte.gz", DATA_DIR);
    build_trainer(d, MLC_TEST_DIR "/data/ema_dropout.mdl", bin);
#define EMA_RUN(...)                                                                                            \
    {                                                                                                           \
        bin, "--train-limit", "640", "--test-limit", "200", "--threads", "1", "--data", DATA_DIR, "--progress", \
            "never", __VA_ARGS__, NULL                                                                          \
    }
    char *whole[] = EMA_RUN("--save", a, "--seed", "5"),
         *half[] = EMA_RUN("--save", b, "--max-steps", "5", "--seed", "5"),
         *rest[] = EMA_RUN("--save", c, "--resume", b);
    char *runs[3][20];
    memcpy(runs[0], whole, sizeof whole), memcpy(runs[1], half, sizeof half), memcpy(runs[2], rest, sizeof rest);
    for (int k = 0; k < 3; k++) {
        char *out = NULL;
        int st = ct_run(runs[k], &out);
        cr_assert_eq(st, 0, "run %d failed (status %d):\n%s", k, st, out);
        if (k == 2)
            cr_expect(strstr(out,
                             "note: --resume: the run keeps the seed it started with, 5 (the checkpoint's), in "
                             "place of 1\n"),
                      "%s", out);
        free(out);
    }
    size_t na = 0, nc = 0;
    char *ca = ct_read_file(a, &na), *cc = ct_read_file(c, &nc);
    cr_assert(ca && cc);
    cr_assert(na == nc && !memcmp(ca, cc, na), "a resumed run's checkpoint differs from the whole run's");
    free(ca), free(cc);

    /* fine-tuning from a (--load carries the step counter, 10, over; the schedule starts
     * at 0), stopped after 5 of 20 steps and resumed: the same bytes as the whole of it,
     * the resumed cosine schedule taken at the run's position, not at the counter */
#define FT_RUN(...) EMA_RUN("--epochs", "2", "--schedule", "cosine", __VA_ARGS__)
    char *ft_whole[] = FT_RUN("--load", a, "--save", b),
         *ft_half[] = FT_RUN("--load", a, "--save", c, "--max-steps", "5"),
         *ft_rest[] = FT_RUN("--resume", c, "--save", c);
    char *ft[3][24];
    memcpy(ft[0], ft_whole, sizeof ft_whole), memcpy(ft[1], ft_half, sizeof ft_half),
        memcpy(ft[2], ft_rest, sizeof ft_rest);
    for (int k = 0; k < 3; k++) {
        char *out = NULL;
        int st = ct_run(ft[k], &out);
        cr_assert_eq(st, 0, "fine-tuning run %d failed (status %d):\n%s", k, st, out);
        free(out);
    }
    char *cb = ct_read_file(b, &na);
    cc = ct_read_file(c, &nc);
    cr_assert(cb && cc);
    cr_assert(na == nc && !memcmp(cb, cc, na), "a resumed fine-tuning run's checkpoint differs from the whole run's");
    free(cb), free(cc);

    char *ev[] = {bin, "eval", a, "--data", DATA_DIR, "--test-limit", "200", NULL, NULL};
    char *pr[] = {bin, "predict", a, imgs, "--top", "1", NULL, NULL};
    char *res[4];
    for (int k = 0; k < 4; k++) {
        char **argv = k < 2 ? ev : pr;
        argv[k < 2 ? 7 : 6] = k % 2 ? "--ema" : NULL;
        int st = ct_run(argv, &res[k]);
        cr_assert_eq(st, 0, "%s%s failed (status %d):\n%.500s", argv[1], k % 2 ? " --ema" : "", st, res[k]);
    }
    cr_assert(!strncmp(res[0], "test accuracy: 0.", 17) && !strncmp(res[1], "test accuracy: 0.", 17), "%s\n%s", res[0],
              res[1]);
    /* averaged weights give other logits: the first image's top class keeps its place, its
     * value moves */
    cr_assert(strchr(res[2], '\n') && strchr(res[3], '\n'));
    *strchr(res[2], '\n') = 0, *strchr(res[3], '\n') = 0;
    cr_assert_str_neq(res[2], res[3], "predict gives the same first line with and without --ema: %s", res[2]);
    for (int k = 0; k < 4; k++) free(res[k]);

    char *bad[] = {bin, "--ema", "--data", DATA_DIR, NULL}, *out = NULL;
    int st = ct_run(bad, &out);
    cr_assert_eq(st, 2);
    cr_assert_str_eq(out, "error: --ema applies to eval and predict (training updates the parameters themselves)\n");
    free(out);
    ct_rmdir(d);
    free(d);
}

/* The samples that show the language's breadth (issue 14): a VGG, a MobileNet (depthwise
 * separable convolutions, ReLU6), a DenseNet built with `for` and concat, and a U-Net
 * autoencoder (upsample, skips, no labels) each build and learn on a slice: 1,280 images,
 * 20 Adam steps. Measured: test accuracy 0.740, 0.328, 0.462 (chance is 0.10) and a test
 * loss of 0.068 (about 0.17 before training); the bounds leave room for other BLAS
 * rounding. About a minute of CPU: the sanitizer build, which checks the same generated
 * code paths through the models above, skips it. */
Test(e2e, breadth_samples_learn, .timeout = 900) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    if (MLC_TEST_SANITIZE[0]) cr_skip_test("the breadth samples train in the plain build only");
    static const struct {
        const char *name;
        double bound; /* accuracy above it, or (autoencoder) loss below it */
    } samples[] = {{"vgg", 0.25}, {"mobilenet", 0.25}, {"densenet", 0.25}, {"unet_ae", 0.10}};
    char *d = ct_tmpdir("e2e-breadth");
    cr_assert_not_null(d);
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char mdl[700], bin[700];
        snprintf(mdl, sizeof mdl, "%s/samples/%s.mdl", MLC_SOURCE_ROOT, samples[i].name);
        snprintf(bin, sizeof bin, "%s/%s", d, samples[i].name);
        build_trainer(d, mdl, bin);
        char *run[] = {bin, "--epochs", "1", "--train-limit", "1280",   "--test-limit", "500",   "--threads",
                       "2", "--seed",   "1", "--data",        DATA_DIR, "--progress",   "never", NULL};
        char *out = NULL;
        int st = ct_run(run, &out);
        cr_assert_eq(st, 0, "%s: the trainer failed (status %d):\n%s", samples[i].name, st, out);
        printf("%s: %s", samples[i].name, out);
        const char *acc = strstr(out, "test accuracy: "), *loss = strstr(out, "test loss: ");
        if (!strcmp(samples[i].name, "unet_ae")) {
            cr_assert_not_null(loss, "%s", out);
            double v = strtod(loss + strlen("test loss: "), NULL);
            cr_expect(v > 0 && v < samples[i].bound, "%s: test loss %.6f", samples[i].name, v);
        } else {
            cr_assert_not_null(acc, "%s", out);
            double v = strtod(acc + strlen("test accuracy: "), NULL);
            cr_expect_gt(v, samples[i].bound, "%s: test accuracy %.4f", samples[i].name, v);
        }
        free(out);
    }
    ct_rmdir(d);
    free(d);
}

/* The attention samples learn, end to end. samples/vit.mdl on 1,280 Fashion-MNIST images
 * (20 AdamW steps of 64); samples/gpt.mdl on a text corpus made here (docs/language.md,
 * bytes), 30 steps of 8 windows: its validation loss per byte falls well below the
 * ln(256) = 5.55 of a uniform guess, two runs print the same lines, and `sample` writes
 * the same text twice for a seed. The sanitizer build skips it (minutes under ASan). */
Test(e2e, attention_samples_learn, .timeout = 900) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    if (MLC_TEST_SANITIZE[0]) cr_skip_test("the attention samples train in the plain build only");
    char *d = ct_tmpdir("e2e-attn");
    cr_assert_not_null(d);
    char vit[700], gpt[700], ckpt[720];
    snprintf(vit, sizeof vit, "%s/vit", d);
    snprintf(gpt, sizeof gpt, "%s/gpt", d);
    snprintf(ckpt, sizeof ckpt, "%s/gpt.ckpt", d);
    build_trainer(d, MLC_SOURCE_ROOT "/samples/vit.mdl", vit);
    char *vrun[] = {vit, "--epochs", "1", "--train-limit", "1280",   "--test-limit", "500",   "--threads",
                    "2", "--seed",   "1", "--data",        DATA_DIR, "--progress",   "never", NULL};
    char *out = NULL;
    int st = ct_run(vrun, &out);
    cr_assert_eq(st, 0, "vit: the trainer failed (status %d):\n%s", st, out);
    printf("vit: %s", out);
    const char *acc = strstr(out, "test accuracy: ");
    cr_assert_not_null(acc, "%s", out);
    double v = strtod(acc + strlen("test accuracy: "), NULL);
    cr_expect_gt(v, 0.25, "vit: test accuracy %.4f after 20 steps", v);
    free(out);

    build_trainer(d, MLC_SOURCE_ROOT "/samples/gpt.mdl", gpt);
    char *grun[] = {gpt,
                    "--max-steps",
                    "30",
                    "--batch",
                    "8",
                    "--threads",
                    "2",
                    "--seed",
                    "1",
                    "--progress",
                    "never",
                    "--data",
                    MLC_SOURCE_ROOT "/docs/language.md",
                    "--save",
                    ckpt,
                    NULL};
    char *out2 = NULL;
    for (int run = 0; run < 2; run++) {
        char *o = NULL;
        st = ct_run(grun, &o);
        cr_assert_eq(st, 0, "gpt: the trainer failed (status %d):\n%s", st, o);
        printf("gpt: %s", o);
        if (run == 0) {
            out = o;
            continue;
        }
        out2 = o;
    }
    const char *vl = strstr(out, "val loss: ");
    cr_assert_not_null(vl, "%s", out);
    double loss = strtod(vl + strlen("val loss: "), NULL);
    cr_expect(loss > 0 && loss < 4.0, "gpt: validation loss %.4f after 30 steps", loss);
    char *e1 = epoch_lines(out), *e2 = epoch_lines(out2);
    cr_expect_str_eq(e1, e2, "two gpt runs with --seed 1 differ");
    free(e1);
    free(e2);
    free(out);
    free(out2);
    char *samp[] = {gpt,  "sample",        ckpt,  "--prompt", "The ", "--tokens",
                    "40", "--temperature", "0.8", "--seed",   "7",    NULL};
    char *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    cr_assert_eq(ct_run_n(samp, &s1, &n1), 0, "%s", s1);
    cr_assert_eq(ct_run_n(samp, &s2, &n2), 0, "%s", s2);
    printf("gpt sample: %s\n", s1);
    /* bytes, not strlen: 30 steps leave every byte likely enough, NUL too (the sample of
     * docs/language.md as it was on 2026-12-07 held one at its 8th byte) */
    cr_expect(n1 >= 40, "sample printed %zu bytes: '%s'", n1, s1);
    cr_expect(n1 == n2 && !memcmp(s1, s2, n1), "two samples with --seed 7 differ");
    free(s1);
    free(s2);
    ct_rmdir(d);
    free(d);
}

/* The OpenMP team's waiting policy (runtime/wait_policy.c, docs/trainer.md "Threads
 * under load"): without a setting of the user's, a bounded spin where the CPUs are free
 * for the team beside the runnable threads /proc/loadavg counts (MLCRT_LOADAVG points the
 * trainer at a file of that form, so that both answers show on any machine), sleeping at
 * once otherwise; a setting of the user's wins; and no policy changes a bit of the run:
 * libgomp's old default (3 ms of spinning), the trainer's, and a bounded spin give the
 * same epoch line and test accuracy. OMP_DISPLAY_ENV=verbose makes libgomp print what it
 * uses. */
/* The value after the last "GOMP_SPINCOUNT = " in OMP_DISPLAY_ENV's output, or NULL */
static const char *last_spincount(const char *out) {
    const char *last = NULL;
    for (const char *p = out; (p = strstr(p, "  GOMP_SPINCOUNT = ")); p++) last = p + strlen("  GOMP_SPINCOUNT = ");
    return last;
}

/* The spin count the trainer runs with for --threads `threads` beside a machine whose
 * /proc/loadavg reads `loadavg` (NULL: the real one) */
static char *spincount_with(const char *dir, const char *threads, const char *loadavg) {
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/loadavg", dir);
    if (loadavg) {
        cr_assert_eq(ct_write_file(path, loadavg), 0);
        setenv("MLCRT_LOADAVG", path, 1);
    }
    char *help[] = {exe, "--threads", (char *)threads, "--help", NULL};
    cr_assert_eq(ct_run(help, &out), 0);
    unsetenv("MLCRT_LOADAVG");
    const char *v = last_spincount(out);
    cr_assert(v, "no GOMP_SPINCOUNT in:\n%s", out);
    char *r = strndup(v, strcspn(v, "\n"));
    free(out);
    return r;
}

Test(e2e, wait_policy_spins_on_free_cores_and_changes_no_bits, .timeout = 600) {
    if (!data_present()) cr_skip_test("Fashion-MNIST not installed at " DATA_DIR);
    build_once();
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    setenv("OMP_DISPLAY_ENV", "verbose", 1);
    char *d = ct_tmpdir("waitpolicy"), *v;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* libgomp shows its settings as it starts: the last time is the trainer that runs */
    v = spincount_with(d, "2", "0.10 0.20 0.30 1/200 4242\n"); /* only the trainer runs */
    cr_expect_str_eq(v, cpus >= 2 ? "'1000'" : "'0'", "2 threads on an idle machine of %ld CPUs", cpus);
    free(v);
    char busy[64]; /* the count holds the trainer's own threads (a BLAS pool spinning as it starts) */
    snprintf(busy, sizeof busy, "3.00 3.00 3.00 %ld/300 4242\n", cpus + 64);
    v = spincount_with(d, "2", busy);
    cr_expect_str_eq(v, "'0'", "2 threads beside %ld running threads on %ld CPUs", cpus + 64, cpus);
    free(v);
    v = spincount_with(d, "1", "0.10 0.20 0.30 1/200 4242\n"); /* no team: nothing to wait for */
    cr_expect_str_eq(v, "'0'");
    free(v);
    v = spincount_with(d, "2", "garbled\n"); /* unreadable: sleep at once */
    cr_expect_str_eq(v, "'0'");
    free(v);
    v = spincount_with(d, "2", NULL); /* the real machine: either */
    cr_expect(!strcmp(v, "'0'") || !strcmp(v, "'1000'"), "the trainer's default: %s", v);
    free(v);
    setenv("GOMP_SPINCOUNT", "7", 1);
    v = spincount_with(d, "2", "0.10 0.20 0.30 1/200 4242\n");
    cr_expect_str_eq(v, "'7'", "the user's GOMP_SPINCOUNT");
    free(v);
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("OMP_DISPLAY_ENV");
    ct_rmdir(d);
    free(d);

    char *out = NULL;
    const char *spins[] = {"300000", NULL, "1000"};
    char *lines[3], *acc[3];
    for (int k = 0; k < 3; k++) {
        if (spins[k]) setenv("GOMP_SPINCOUNT", spins[k], 1);
        else unsetenv("GOMP_SPINCOUNT");
        char *argv[] = {exe,      "--epochs",  "1", "--train-limit", "1280", "--test-limit",
                        "500",    "--threads", "2", "--seed",        "1",    "--data",
                        DATA_DIR, NULL};
        cr_assert_eq(ct_run(argv, &out), 0, "the trainer failed:\n%s", out);
        lines[k] = epoch_lines(out);
        acc[k] = strdup(strstr(out, "test accuracy:") ? strstr(out, "test accuracy:") : "(none)");
        free(out);
    }
    unsetenv("GOMP_SPINCOUNT");
    cr_expect_neq(strlen(lines[0]), 0);
    for (int k = 1; k < 3; k++) {
        cr_expect_str_eq(lines[k], lines[0], "policy %d's epoch differs:\n%s---\n%s", k, lines[k], lines[0]);
        cr_expect_str_eq(acc[k], acc[0]);
    }
    for (int k = 0; k < 3; k++) free(lines[k]), free(acc[k]);
}

/* ---- the mlc command line: what it refuses before it reads or writes ---- */

/* Runs mlc with argv[1..] (NULL-terminated); expects exit status `status` and exactly the
 * output `want` (one error line). */
static void expect_mlc(int status, const char *want, char *const *args) {
    char *argv[16] = {MLC_EXE};
    for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_expect_eq(st, status, "%s %s: exit %d, not %d:\n%s", args[0], args[1] ? args[1] : "", st, status, out);
    cr_expect_str_eq(out, want);
    free(out);
}
#define MLC_EXPECT(status, want, ...) expect_mlc(status, want, (char *const[]){__VA_ARGS__, NULL})

/* The source must be a regular file of at most 16 MiB: a directory, a FIFO and /dev/zero
 * (read without end before) are refused by what they are, before they are opened; a
 * larger file by its size. */
Test(driver, sources_that_are_not_regular_files_are_refused, .timeout = 60) {
    char *d = ct_tmpdir("driver"), fifo[600], big[600], want[1400];
    cr_assert_not_null(d);
    snprintf(want, sizeof want, "%s: error: expected a regular file (a .mdl source), found a directory\n", d);
    MLC_EXPECT(1, want, d, "-o", "x.c");
    MLC_EXPECT(1, "/dev/zero: error: expected a regular file (a .mdl source), found a character device\n", "/dev/zero",
               "-o", "x.c");
    snprintf(fifo, sizeof fifo, "%s/net.mdl", d);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(want, sizeof want, "%s: error: expected a regular file (a .mdl source), found a FIFO (named pipe)\n",
             fifo);
    MLC_EXPECT(1, want, fifo);
    snprintf(big, sizeof big, "%s/big.mdl", d);
    cr_assert_eq(ct_write_file(big, "model big\n"), 0);
    cr_assert_eq(truncate(big, (16 << 20) + 1), 0);
    snprintf(want, sizeof want, "%s: error: the source is 16777217 bytes; expected at most 16777216 (16 MiB)\n", big);
    MLC_EXPECT(1, want, big);
    ct_rmdir(d);
    free(d);
}

/* -o never destroys the input or another output of the run: not the input itself (plain
 * or mlc build), nor through a link, nor as the header beside the source; a source named
 * .h would be overwritten by its own header; a header name with a '"' cannot be
 * #included; --keep's work files stay off the input. Each is one line before anything is
 * written, and the input is unchanged. */
Test(driver, outputs_never_overwrite_the_input, .timeout = 120) {
    char *d = ct_tmpdir("driver"), self[600], link[600], hdr[600], out_h[600], quote[600], keep[600], kept[700];
    char want[3000];
    cr_assert_not_null(d);
    char *mlp = ct_read_file(MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL);
    cr_assert_not_null(mlp);
    snprintf(self, sizeof self, "%s/self.mdl", d);
    cr_assert_eq(ct_write_file(self, mlp), 0);

    snprintf(want, sizeof want, "mlc: error: -o '%s' is the input file '%s'; give the output another name\n", self,
             self);
    MLC_EXPECT(2, want, self, "-o", self);
    MLC_EXPECT(2, want, "build", self, "-o", self);
    snprintf(link, sizeof link, "%s/link.c", d);
    cr_assert_eq(symlink("self.mdl", link), 0);
    snprintf(want, sizeof want, "mlc: error: -o '%s' is the input file '%s'; give the output another name\n", link,
             self);
    MLC_EXPECT(2, want, self, "-o", link);

    snprintf(hdr, sizeof hdr, "%s/self.h", d);
    cr_assert_eq(ct_write_file(hdr, mlp), 0);
    snprintf(want, sizeof want, "mlc: error: -o '%s/self.c': its header '%s' would overwrite the input file '%s'\n", d,
             hdr, hdr);
    char src_c[600];
    snprintf(src_c, sizeof src_c, "%s/self.c", d);
    MLC_EXPECT(2, want, hdr, "-o", src_c);

    snprintf(out_h, sizeof out_h, "%s/out.h", d);
    snprintf(want, sizeof want,
             "mlc: error: -o '%s': the header (the source's name with .h) would overwrite the source; expected a "
             "name like '%s/out.c'\n",
             out_h, d);
    MLC_EXPECT(2, want, self, "-o", out_h);
    cr_expect_neq(access(out_h, F_OK), 0, "%s was written", out_h);

    snprintf(quote, sizeof quote, "%s/q\"x.c", d);
    snprintf(want, sizeof want,
             "mlc: error: -o '%s': the source #includes its header 'q\"x.h' by name, which cannot hold '\"', '\\' or "
             "control characters\n",
             quote);
    MLC_EXPECT(2, want, self, "-o", quote);
    cr_expect_neq(access(quote, F_OK), 0, "%s was written", quote);

    snprintf(keep, sizeof keep, "%s/k.mlc", d);
    cr_assert_eq(mkdir(keep, 0755), 0);
    snprintf(kept, sizeof kept, "%s/mlp.c", keep);
    cr_assert_eq(ct_write_file(kept, mlp), 0);
    snprintf(want, sizeof want,
             "mlc: error: --keep would overwrite the input file '%s' (as '%s'); expected the input outside '%s'\n",
             kept, kept, keep);
    snprintf(keep, sizeof keep, "%s/k", d);
    MLC_EXPECT(1, want, "build", kept, "-o", keep, "--keep");

    const char *inputs[] = {self, hdr, kept};
    for (int i = 0; i < 3; i++) {
        char *now = ct_read_file(inputs[i], NULL);
        cr_expect_str_eq(now, mlp, "%s changed", inputs[i]);
        free(now);
    }
    free(mlp);
    ct_rmdir(d);
    free(d);
}

/* The header goes beside a regular -o only: -o /dev/null (or a link to it, or any other
 * device or FIFO, or a path under /dev) writes the source alone, and no `/dev/null.h`. */
Test(driver, a_special_output_gets_no_header, .timeout = 120) {
    char *d = ct_tmpdir("driver"), path[600];
    cr_assert_not_null(d);
    const char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    int had_null_h = access("/dev/null.h", F_OK) == 0;
    MLC_EXPECT(0, "", (char *)mlp, "-o", "/dev/null");
    cr_expect(had_null_h || access("/dev/null.h", F_OK) != 0, "mlc wrote /dev/null.h");
    snprintf(path, sizeof path, "%s/out.c", d);
    cr_assert_eq(symlink("/dev/null", path), 0);
    MLC_EXPECT(0, "", (char *)mlp, "-o", path);
    snprintf(path, sizeof path, "%s/out.h", d);
    cr_expect_neq(access(path, F_OK), 0, "%s was written beside a link to /dev/null", path);
    snprintf(path, sizeof path, "%s/net.c", d);
    MLC_EXPECT(0, "", (char *)mlp, "-o", path);
    snprintf(path, sizeof path, "%s/net.h", d);
    cr_expect_eq(access(path, F_OK), 0, "a regular -o got no header");
    ct_rmdir(d);
    free(d);
}

/* Every integer option says its range when a number is past it, and asks for a positive
 * integer otherwise (as the trainer's flags do). */
Test(driver, integer_options_state_their_range) {
    const char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    MLC_EXPECT(2, "mlc: error: --threads: expected an integer from 1 to 4096, found '65536'\n", (char *)mlp,
               "--threads", "65536");
    MLC_EXPECT(2, "mlc: error: --threads: expected a positive integer, found '0'\n", (char *)mlp, "--threads", "0");
    MLC_EXPECT(2, "mlc: error: --batch: expected an integer from 1 to 1048576, found '2000000'\n", (char *)mlp,
               "--batch", "2000000");
    MLC_EXPECT(2, "mlc: error: --batch: expected a positive integer, found '-3'\n", (char *)mlp, "--batch", "-3");
    MLC_EXPECT(2, "mlc: error: --ranks: expected an integer from 1 to 1048576, found '1048577'\n", (char *)mlp,
               "--report", "--ranks", "1048577");
    MLC_EXPECT(2, "mlc: error: --tp: expected an integer from 1 to 1048576, found '99999999999'\n", (char *)mlp,
               "--report", "--ranks", "4", "--tp", "99999999999");
    MLC_EXPECT(2,
               "mlc: error: --mem-budget: expected a positive byte count like 65536, 64K, 64M or 2G (at most 2^63 - 1 "
               "bytes), found '99999999999999999999'\n",
               (char *)mlp, "--mem-budget", "99999999999999999999");
    MLC_EXPECT(2,
               "mlc: error: --mem-budget: expected a positive byte count like 65536, 64K, 64M or 2G (at most 2^63 - 1 "
               "bytes), found '9999999999G'\n",
               (char *)mlp, "--mem-budget", "9999999999G");
    /* an option given twice would silently keep one; dot stages would make two documents */
    MLC_EXPECT(2, "mlc: error: -o given twice ('a.c', then 'b.c'; give it once)\n", (char *)mlp, "-o", "a.c", "-o",
               "b.c");
    MLC_EXPECT(2, "mlc: error: --report given twice (give it once)\n", (char *)mlp, "--report", "--report");
    MLC_EXPECT(2,
               "mlc: error: --dump-ir=dot:eval: one dot stage per run (one Graphviz document), found dot:train before "
               "it\n",
               (char *)mlp, "--dump-ir=dot:train", "--dump-ir=dot:eval");
}

/* A model named trainer_main: its source used to be the file the trainer's main() was
 * written to, so mlc build overwrote it and the link failed. */
Test(driver, a_model_named_trainer_main_builds, .timeout = 300) {
    char *d = ct_tmpdir("driver"), mdl[600], bin[600];
    cr_assert_not_null(d);
    char *text = ct_read_file(MLC_TEST_DIR "/data/tiny.mdl", NULL);
    cr_assert_not_null(text);
    char *renamed = ct_replace_first(text, "model tiny\n", "model trainer_main\n");
    cr_assert_not_null(renamed);
    snprintf(mdl, sizeof mdl, "%s/tm.mdl", d);
    cr_assert_eq(ct_write_file(mdl, renamed), 0);
    snprintf(bin, sizeof bin, "%s/tm", d);
    build_trainer(d, mdl, bin);
    cr_expect_eq(access(bin, X_OK), 0, "no trainer at %s", bin);
    free(renamed);
    free(text);
    ct_rmdir(d);
    free(d);
}

/* The names in directory d, sorted, one a line (what a failed write may have left). */
static char *dir_listing(const char *d) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s'", d);
    char *argv[] = {"sh", "-c", cmd, NULL}, *out = NULL;
    cr_assert_eq(ct_run(argv, &out), 0, "%s", out);
    return out;
}

/* The source and header are written to temporary files beside them and renamed only when
 * both are complete: a header that cannot be written (a directory of that name) leaves
 * the old source byte for byte and no temporary file; a successful run replaces both and
 * leaves nothing else, through a link too (the link stays, its target is replaced). */
Test(driver, outputs_are_replaced_whole_or_not_at_all, .timeout = 120) {
    char *d = ct_tmpdir("driver"), src[600], hdr[600], link[600], want[1400];
    cr_assert_not_null(d);
    char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    snprintf(src, sizeof src, "%s/x2.c", d);
    snprintf(hdr, sizeof hdr, "%s/x2.h", d);
    cr_assert_eq(ct_write_file(src, "precious\n"), 0);
    cr_assert_eq(mkdir(hdr, 0755), 0);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s': expected a regular file, found a directory\n", hdr);
    MLC_EXPECT(1, want, mlp, "-o", src);
    char *now = ct_read_file(src, NULL);
    cr_expect_str_eq(now, "precious\n", "the old source changed");
    free(now);
    char *names = dir_listing(d);
    cr_expect_str_eq(names, "x2.c\nx2.h\n", "a temporary file was left");
    free(names);

    cr_assert_eq(rmdir(hdr), 0);
    snprintf(link, sizeof link, "%s/l.c", d);
    cr_assert_eq(symlink("x2.c", link), 0);
    MLC_EXPECT(0, "", mlp, "-o", link);
    now = ct_read_file(src, NULL);
    cr_expect(now && !strncmp(now, "/* mlp.c - generated by mlc", 27), "the link's target was not written");
    free(now);
    struct stat st;
    cr_expect(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by a file");
    names = dir_listing(d);
    cr_expect_str_eq(names, "l.c\nl.h\nx2.c\n", "a temporary file was left");
    free(names);
    ct_rmdir(d);
    free(d);
}

/* -o through a dangling link creates the link's target and keeps the link; a loop of
 * links has no target: refused in one line, the links left as they were (the rename
 * replaced the first one with a regular file). */
Test(driver, outputs_follow_a_dangling_link_and_refuse_a_loop, .timeout = 60) {
    char *d = ct_tmpdir("driver"), link[600], loop[600], want[1400];
    cr_assert_not_null(d);
    char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    snprintf(link, sizeof link, "%s/l.c", d);
    cr_assert_eq(symlink("new.c", link), 0);
    MLC_EXPECT(0, "", mlp, "-o", link);
    struct stat st;
    cr_expect(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by a file");
    char *names = dir_listing(d);
    cr_expect_str_eq(names, "l.c\nl.h\nnew.c\n", "the link's target was not written");
    free(names);

    snprintf(loop, sizeof loop, "%s/loop2", d);
    cr_assert_eq(symlink("loop1", loop), 0);
    snprintf(loop, sizeof loop, "%s/loop1", d);
    cr_assert_eq(symlink("loop2", loop), 0);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s': Too many levels of symbolic links\n", loop);
    MLC_EXPECT(1, want, mlp, "-o", loop);
    cr_expect(lstat(loop, &st) == 0 && S_ISLNK(st.st_mode), "the loop's link was replaced by a file");
    names = dir_listing(d);
    cr_expect_str_eq(names, "l.c\nl.h\nloop1\nloop2\nnew.c\n", "a file was left");
    free(names);
    ct_rmdir(d);
    free(d);
}

/* A compiler that fails as GNU ld does on a full disk: it removes its output, writes part
 * of one and exits 1. */
static const char failing_ld[] =
    "#!/bin/sh\n"
    "while [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
    "rm -f \"$out\"; echo partial > \"$out\"; exit 1\n";

/* mlc build links into a temporary file beside -o and renames it over -o only when the
 * link succeeded: a failed link leaves the old trainer whole and no temporary file (cc -o
 * BIN removed it); an output that cannot be written is one line before anything is
 * compiled (ld's lines after the whole compile, and a work directory left); through a
 * link the target is replaced and the link stays. */
Test(driver, a_trainer_is_replaced_whole_or_not_at_all, .timeout = 120) {
    char *d = ct_tmpdir("driver"), tmp[600], cc[600], bin[600], loop[600], lnk[600], want[2000];
    cr_assert_not_null(d);
    char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    snprintf(tmp, sizeof tmp, "%s/tmp", d);
    cr_assert_eq(mkdir(tmp, 0755), 0);
    setenv("TMPDIR", tmp, 1);
    snprintf(cc, sizeof cc, "%s/failing-ld", d);
    cr_assert_eq(ct_write_file(cc, failing_ld), 0);
    cr_assert_eq(chmod(cc, 0755), 0);
    snprintf(bin, sizeof bin, "%s/net", d);
    cr_assert_eq(ct_write_file(bin, "the old trainer\n"), 0);

    char *argv[] = {MLC_EXE, "build", mlp, "-o", bin, "--cc", cc, NULL}, *out = NULL;
    cr_expect_eq(ct_run(argv, &out), 1, "%s", out);
    snprintf(want, sizeof want, "mlc: error: %s failed (exit 1) building '%s'; sources kept in %s/mlc-build-", cc, bin,
             tmp);
    cr_expect(!strncmp(out, want, strlen(want)), "%s", out);
    free(out);
    char *now = ct_read_file(bin, NULL);
    cr_expect_str_eq(now, "the old trainer\n", "a failed link replaced the trainer");
    free(now);
    char *names = dir_listing(d);
    cr_expect_str_eq(names, "failing-ld\nnet\ntmp\n", "a temporary file was left");
    free(names);
    ct_rmdir(tmp);
    cr_assert_eq(mkdir(tmp, 0755), 0);

    snprintf(want, sizeof want, "mlc: error: cannot write '%s': expected a regular file, found a directory\n", d);
    MLC_EXPECT(1, want, "build", mlp, "-o", d, "--cc", cc);
    snprintf(bin, sizeof bin, "%s/missing/net", d);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s': No such file or directory\n", bin);
    MLC_EXPECT(1, want, "build", mlp, "-o", bin, "--cc", cc);
    MLC_EXPECT(1, "mlc: error: cannot write '': No such file or directory\n", "build", mlp, "-o", "", "--cc", cc);
    snprintf(loop, sizeof loop, "%s/loop", d);
    cr_assert_eq(symlink("loop", loop), 0);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s': Too many levels of symbolic links\n", loop);
    MLC_EXPECT(1, want, "build", mlp, "-o", loop, "--cc", cc);
    names = dir_listing(tmp);
    cr_expect_str_eq(names, "", "a refused output left a work directory");
    free(names);

    snprintf(lnk, sizeof lnk, "%s/lnk", d);
    cr_assert_eq(symlink("net", lnk), 0);
    build_trainer(d, mlp, lnk);
    struct stat st;
    cr_expect(lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode), "the link was replaced by a file");
    snprintf(bin, sizeof bin, "%s/net", d);
    cr_expect_eq(access(bin, X_OK), 0, "the link's target is no trainer");
    names = dir_listing(d);
    cr_expect(strstr(names, ".tmp.") == NULL, "a temporary file was left:\n%s", names);
    free(names);
    ct_rmdir(d);
    free(d);
}

/* `BEFORE mlc ARGS REDIRECT` through sh (ARGS: words without quotes); its status, its
 * stderr into *err. */
static int mlc_sh(const char *before, const char *args, const char *redirect, char **err) {
    char cmd[3200];
    snprintf(cmd, sizeof cmd, "%s '%s' %s %s", before, MLC_EXE, args, redirect);
    char *argv[] = {"sh", "-c", cmd, NULL};
    return ct_run(argv, err);
}

/* What mlc prints to stdout (--report, --dump-ir, --help) reaching no file is exit 1 and
 * one line naming it (exit 0 and an empty file before); a closed stdout that mlc prints
 * nothing to is no error. */
Test(driver, output_that_cannot_be_written_to_stdout_fails, .timeout = 60) {
    /* the reason: ENOSPC, or "an earlier write failed" where the buffer filled up before the end */
    const char *full = "mlc: error: cannot write output to '/dev/full': ";
    const char *runs[] = {MLC_SOURCE_ROOT "/samples/mlp.mdl --report",
                          MLC_SOURCE_ROOT "/samples/mlp.mdl --dump-ir=final", "--help"};
    char *err = NULL;
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(mlc_sh("", runs[i], ">/dev/full", &err), 1, "%s: %s", runs[i], err);
        cr_expect(!strncmp(err, full, strlen(full)) && strchr(err, '\n') == err + strlen(err) - 1, "%s: %s", runs[i],
                  err);
        free(err);
    }
    cr_expect_eq(mlc_sh("", MLC_SOURCE_ROOT "/samples/mlp.mdl --report", ">&-", &err), 1, "%s", err);
    cr_expect_str_eq(err, "mlc: error: cannot write output to 'standard output': Bad file descriptor\n");
    free(err);
    cr_expect_eq(mlc_sh("", MLC_SOURCE_ROOT "/samples/mlp.mdl", ">&-", &err), 0, "%s", err);
    cr_expect_str_eq(err, "");
    free(err);
}

/* Past `ulimit -f` a write fails with EFBIG: the one-line error, exit 1 and no temporary
 * file or work directory left (SIGXFSZ killed mlc without a word, status 153, and left
 * them). */
Test(driver, a_file_size_limit_is_a_failed_write, .timeout = 60) {
    char *d = ct_tmpdir("driver"), args[1400], want[1400], *err = NULL;
    cr_assert_not_null(d);
    snprintf(args, sizeof args, "%s/samples/mlp.mdl -o %s/net.c", MLC_SOURCE_ROOT, d);
    cr_expect_eq(mlc_sh("ulimit -f 1; exec", args, "", &err), 1, "%s", err);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s/net.c': File too large\n", d);
    cr_expect_str_eq(err, want);
    free(err);
    snprintf(args, sizeof args, "build %s/samples/mlp.mdl -o %s/net", MLC_SOURCE_ROOT, d);
    setenv("TMPDIR", d, 1);
    cr_expect_eq(mlc_sh("ulimit -f 1; exec", args, "", &err), 1, "%s", err);
    snprintf(want, sizeof want, "mlc: error: cannot write '%s/mlc-build-", d);
    cr_expect(!strncmp(err, want, strlen(want)) && strstr(err, "/mlp.c': File too large\n"), "%s", err);
    free(err);
    char *names = dir_listing(d);
    cr_expect_str_eq(names, "", "a file was left");
    free(names);
    snprintf(args, sizeof args, "%s/samples/mlp.mdl --report", MLC_SOURCE_ROOT);
    snprintf(want, sizeof want, ">%s/report.txt", d);
    cr_expect_eq(mlc_sh("ulimit -f 1; exec", args, want, &err), 1, "%s", err);
    snprintf(want, sizeof want, "mlc: error: cannot write output to '%s/report.txt': ", d);
    cr_expect(!strncmp(err, want, strlen(want)), "%s", err);
    free(err);
    ct_rmdir(d);
    free(d);
}

/* mlc -o ended by a signal while it writes its temporary files removes them (they stayed,
 * one pair a run). The source's temporary name is made a FIFO that the test reads a
 * little of, which holds mlc in the middle of writing it. */
Test(driver, a_signal_leaves_no_temporary_file, .timeout = 60) {
    char *d = ct_tmpdir("driver"), out[600], fifo[700];
    cr_assert_not_null(d);
    snprintf(out, sizeof out, "%s/net.c", d);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        snprintf(fifo, sizeof fifo, "%s.tmp.%ld", out, (long)getpid());
        if (mkfifo(fifo, 0600)) _exit(127);
        execl(MLC_EXE, MLC_EXE, MLC_SOURCE_ROOT "/samples/vgg.mdl", "-o", out, (char *)NULL);
        _exit(127);
    }
    snprintf(fifo, sizeof fifo, "%s.tmp.%ld", out, (long)pid);
    for (int i = 0; i < 2000 && access(fifo, F_OK); i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    int fd = open(fifo, O_RDONLY); /* until mlc opens it to write */
    cr_assert_geq(fd, 0);
    char c;
    cr_assert_eq(read(fd, &c, 1), 1); /* mlc is writing; the source is larger than the pipe holds */
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close(fd);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "mlc did not end by its SIGTERM (status %d)", st);
    char *names = dir_listing(d);
    cr_expect_str_eq(names, "", "a temporary file was left");
    free(names);
    ct_rmdir(d);
    free(d);
}

/* mlc build's work directory under $TMPDIR goes when the build stops before the
 * compiler runs (here: --mpi against a runtime without libmlcrt_mpi). */
Test(driver, an_early_build_error_leaves_no_work_directory, .timeout = 120) {
    char *d = ct_tmpdir("driver"), tmp[600], lib[600], bin[600], want[1400];
    cr_assert_not_null(d);
    snprintf(tmp, sizeof tmp, "%s/tmp", d);
    snprintf(lib, sizeof lib, "%s/lib", d);
    snprintf(bin, sizeof bin, "%s/bin", d);
    cr_assert_eq(mkdir(tmp, 0755), 0);
    cr_assert_eq(mkdir(lib, 0755), 0);
    setenv("TMPDIR", tmp, 1);
    setenv("MLC_RUNTIME_LIB", lib, 1);
    setenv("MLC_RUNTIME_INCLUDE", lib, 1);
    snprintf(want, sizeof want,
             "mlc: error: --mpi: no %s/libmlcrt_mpi.a: mlc's runtime was built without MPI (install Open MPI, e.g. "
             "Debian's libopenmpi-dev, and rebuild mlc)\n",
             lib);
    MLC_EXPECT(1, want, "build", MLC_SOURCE_ROOT "/samples/mlp.mdl", "-o", bin, "--mpi");
    char *names = dir_listing(tmp);
    cr_expect_str_eq(names, "", "the work directory was left in %s", tmp);
    free(names);
    ct_rmdir(d);
    free(d);
}

/* Options that do not apply are refused, not ignored: --mem-budget under --debug (its
 * arena keeps every value, so the budget would not hold), the build-only options
 * without build, a C-target --conv-algo with cuda; numbers are digits only. */
Test(driver, options_that_would_be_ignored_are_refused) {
    char *mlp = MLC_SOURCE_ROOT "/samples/mlp.mdl";
    MLC_EXPECT(2, "mlc: error: --mem-budget does not apply with --debug, whose arena reuses no buffers\n", mlp,
               "--debug", "--mem-budget", "12M");
    MLC_EXPECT(2, "mlc: error: --mem-budget does not apply with --debug, whose arena reuses no buffers\n", "build", mlp,
               "-o", "/nonexistent/x", "--mem-budget", "12M", "--debug");
    MLC_EXPECT(2, "mlc: error: --cc is for mlc build (it names the compiler mlc build runs)\n", mlp, "--cc", "gcc",
               "-o", "/dev/null");
    MLC_EXPECT(2,
               "mlc: error: --keep is for mlc build (it keeps the trainer's sources; the emitted ones stay anyway)\n",
               mlp, "--keep");
    MLC_EXPECT(2, "mlc: error: -v is for mlc build (it prints the compiler commands)\n", mlp, "-v");
    MLC_EXPECT(2, "mlc: error: --batch: expected a positive integer, found ' 4'\n", mlp, "--batch", " 4");
    MLC_EXPECT(2, "mlc: error: --threads: expected a positive integer, found '+4'\n", mlp, "--threads", "+4");
    MLC_EXPECT(2, "mlc: error: --mem-budget: expected a positive byte count like 65536, 64K, 64M or 2G, found ' 64M'\n",
               mlp, "--mem-budget", " 64M");
    MLC_EXPECT(2, "mlc: error: --mem-budget: expected a positive byte count like 65536, 64K, 64M or 2G, found '+64M'\n",
               mlp, "--mem-budget", "+64M");
    MLC_EXPECT(2, "mlc: error: --dump-ir takes its stage after '=': expected --dump-ir=final\n", mlp, "--dump-ir",
               "final");
}

/* The header states each output's real type: argmax's classes are i32, and a line says
 * how the float * slot holds them. A model with f32 outputs only gets no such line. */
Test(driver, the_header_gives_integer_outputs_their_type, .timeout = 60) {
    char *d = ct_tmpdir("driver"), mdl[600], out[600], hdr[600];
    cr_assert_not_null(d);
    snprintf(mdl, sizeof mdl, "%s/multi.mdl", d);
    cr_assert_eq(ct_write_file(mdl,
                               "model multi\n"
                               "input image: f32[B, 16]\n"
                               "input label: i32[B]\n"
                               "logits = dense(image, 4, name = \"fc\")\n"
                               "pred = argmax(logits, axis = 1)\n"
                               "output logits\n"
                               "output pred\n"
                               "loss cross_entropy(logits, label)\n"
                               "train { batch = 5\n optimizer = sgd(lr = 0.1) }\n"),
                 0);
    snprintf(out, sizeof out, "%s/multi.c", d);
    snprintf(hdr, sizeof hdr, "%s/multi.h", d);
    MLC_EXPECT(0, "", mdl, "-o", out);
    char *h = ct_read_file(hdr, NULL);
    cr_assert_not_null(h);
    cr_expect(strstr(h,
                     " * Outputs: outputs[k] is NULL or room for n samples (outputs itself may be NULL).\n"
                     " * An i32 output's slot (a float *, 4 bytes a value) holds int32_t: read (int32_t "
                     "*)outputs[k].\n"
                     " *   0 logits: f32 [n, 4]  (class scores: the loss is cross_entropy(logits, label))\n"
                     " *   1 pred: i32 [n]\n") != NULL,
              "%s", h);
    free(h);
    MLC_EXPECT(0, "", MLC_SOURCE_ROOT "/samples/mlp.mdl", "-o", out);
    h = ct_read_file(hdr, NULL);
    cr_expect(h && !strstr(h, "int32_t: read"), "an f32-only model got the i32 line");
    free(h);
    ct_rmdir(d);
    free(d);
}

/* --report names the .mdl as the generated code's comments do: a newline in the path is
 * \n, so the first line stays one line; one recomputed tensor is "1 tensor". */
Test(driver, the_report_escapes_the_path_and_counts_in_words, .timeout = 60) {
    char *d = ct_tmpdir("driver"), mdl[600], want[700];
    cr_assert_not_null(d);
    snprintf(mdl, sizeof mdl, "%s/we\nird.mdl", d);
    char *text = ct_read_file(MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL);
    cr_assert_not_null(text);
    cr_assert_eq(ct_write_file(mdl, text), 0);
    free(text);
    char *argv[] = {MLC_EXE, mdl, "--report", NULL}, *out = NULL;
    cr_assert_eq(ct_run(argv, &out), 0, "%s", out);
    snprintf(want, sizeof want, "model mlp (%s/we\\nird.mdl): ", d);
    cr_expect(!strncmp(out, want, strlen(want)), "%.300s", out);
    free(out);
    char *argv2[] = {MLC_EXE, MLC_TEST_DIR "/data/activations.mdl", "--mem-budget", "155584", "--report", NULL};
    cr_assert_eq(ct_run(argv2, &out), 0, "%s", out);
    cr_expect(strstr(out, " with 1 tensor recomputed in the backward,") != NULL, "%s", out);
    free(out);
    ct_rmdir(d);
    free(d);
}

/* The processes whose command line names a file under dir and whose program's name ends
 * in `prog` (e.g. "/cc1"). */
static int procs_on(const char *dir, const char *prog) {
    DIR *proc = opendir("/proc");
    cr_assert_not_null(proc);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(proc))) {
        char path[300], cmd[8192];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "rb") : NULL;
        size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
        if (f) fclose(f);
        cmd[n] = 0;
        size_t first = strlen(cmd), plen = strlen(prog);
        for (size_t i = 0; i < n; i++) cmd[i] = cmd[i] ? cmd[i] : ' ';
        found += first >= plen && !strncmp(cmd + first - plen, prog, plen) && strstr(cmd, dir) != NULL;
    }
    closedir(proc);
    return found;
}

/* mlc build ended by a signal (Ctrl-C, timeout's SIGTERM) while its compiler runs removes
 * its work directory under $TMPDIR, with the sources in it: each killed build left one;
 * and the temporary file the trainer is linked into, beside -o; and it ends the whole
 * compiler (SIGTERM to the cc driver alone left its cc1 compiling on as an orphan). */
Test(e2e, build_killed_leaves_no_work_directory, .timeout = 120) {
    char *d = ct_tmpdir("e2e-kill");
    cr_assert_not_null(d);
    char out[700];
    snprintf(out, sizeof out, "%s/net", d);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("TMPDIR", d, 1);
        execl(MLC_EXE, MLC_EXE, "build", MLC_SOURCE_ROOT "/samples/resnet.mdl", "-o", out, (char *)NULL);
        _exit(127);
    }
    /* once the work directory holds the model's source, the compiler is at it */
    int seen = 0;
    for (int i = 0; i < 2000 && !seen; i++) {
        DIR *dir = opendir(d);
        cr_assert_not_null(dir);
        struct dirent *e;
        while ((e = readdir(dir)))
            if (!strncmp(e->d_name, "mlc-build-", 10)) {
                char src[1400];
                snprintf(src, sizeof src, "%s/%s/resnet.c", d, e->d_name);
                seen = access(src, F_OK) == 0;
            }
        closedir(dir);
        if (!seen) nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    cr_assert(seen, "no work directory with the source appeared under %s", d);
    for (int i = 0; i < 2000 && !procs_on(d, "/cc1"); i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    cr_assert(procs_on(d, "/cc1"), "no cc1 compiling under %s", d);
    /* past its reading of the sources, which the handler removes (a cc1 still reading them
     * would stop by itself) */
    nanosleep(&(struct timespec){1, 500000000}, NULL);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "mlc build did not end by its SIGTERM (status %d)", st);
    DIR *dir = opendir(d);
    cr_assert_not_null(dir);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(dir)))
        if (!strncmp(e->d_name, "mlc-build-", 10) || strstr(e->d_name, ".tmp.")) left++;
    closedir(dir);
    cr_expect_eq(left, 0, "a killed mlc build left %d work directories or temporary files under %s", left, d);
    for (int i = 0; i < 300 && procs_on(d, "/cc1"); i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
    cr_expect_eq(procs_on(d, "/cc1"), 0, "a killed mlc build left its cc1 running");
    ct_rmdir(d);
    free(d);
}
