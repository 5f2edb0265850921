/* test_dist_mpi.c - data-parallel training over MPI (docs/distributed.md), end to end:
 * `mlc build --mpi` of data/dist_mlp.mdl, run as `mpirun --oversubscribe -np 2` on small
 * synthetic IDX data written here (100 training samples of 8x8, --batch 33: steps of 33,
 * 33, 33 and 1 sample, so ranks take 16/17 and 0/1).
 *   - after 2 epochs the 2-rank checkpoint agrees with a single process's tensor by tensor
 *     within float rounding (dropout included: the ranks draw the masks one process draws
 *     for their samples), while a doubled gradient (the ranks' sum for their mean) does
 *     not; two 2-rank runs write the same bytes, and so does one with --no-overlap (the
 *     gradients all-reduced after the backward instead of bucket by bucket during it);
 *   - data/dist_conv.mdl, whose dense layers' buckets are all-reduced while its
 *     convolutions' backward runs, writes the bytes of --no-overlap too;
 *   - --resume with 2 ranks gives the uninterrupted run's bytes; 1 process resumes a
 *     2-rank checkpoint and 2 ranks a 1-process one, each within rounding;
 *   - a rank killed mid-run ends the job naming rank 1, a stopped one times out naming
 *     itself, a rank that cannot read its data or starts from other weights stops every
 *     rank at the start with rank 0's message naming it; all within a bounded time, and
 *     the last checkpoint stays loadable;
 *   - ranks given another --batch, --accum or --epochs stop at the start, rank 0 naming
 *     the flag and both values; a rank with a bad command line says why and stops the
 *     others at once; --check-finite's lines start with the rank;
 *   - a trainer built without --mpi does not link MPI; the CUDA trainer with --mpi builds
 *     (nvcc; no GPU needed) and links NCCL and MPI.
 * The whole program exits 77 (skipped) without mpirun or libmlcrt_mpi, and in sanitizer
 * builds (LeakSanitizer reports Open MPI's own allocations). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <time.h>

#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif
#define OPENBLAS_INC "/usr/include/x86_64-linux-gnu/openblas-pthread"
#define MDL MLC_TEST_DIR "/data/dist_mlp.mdl"

/* `drv train ARGS`: one process's trainer (no MPI); `drv dump CKPT`: every persistent
 * tensor of a checkpoint, one line each: name, then the values in %a. */
static const char driver_src[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    if (argc >= 2 && !strcmp(argv[1], \"train\")) return mlcrt_main(argc - 1, argv + 1, api);\n"
    "    if (argc < 3) return 2;\n"
    "    void *m = api->create(1, 1);\n"
    "    if (!m || mlcrt_load(api, m, argv[2])) return 3;\n"
    "    for (int i = 0; i < api->n_tensors; i++) {\n"
    "        const mlc_tensor_desc *t = &api->tensors[i];\n"
    "        float *v = malloc(sizeof(float) * (size_t)t->numel);\n"
    "        api->read_tensor(m, i, v);\n"
    "        printf(\"%s\", t->name);\n"
    "        for (long long j = 0; j < t->numel; j++) printf(\" %a\", v[j]);\n"
    "        printf(\"\\n\");\n"
    "        free(v);\n"
    "    }\n"
    "    api->destroy(m);\n"
    "    return 0;\n"
    "}\n";

static char *dir;
static char net[700], drv[700], data[700];

static char *run_ok(char **argv) {
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_assert_eq(st, 0, "%s %s failed (status %d):\n%.3000s", argv[0], argv[1], st, out);
    return out;
}

static void write_idx(const char *name, int n, int images) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", data, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    unsigned char head[16] = {
        0, 0, 8, (unsigned char)(images ? 3 : 1), 0, 0, (unsigned char)(n >> 8), (unsigned char)n, 0, 0, 0, 8, 0,
        0, 0, 8};
    fwrite(head, 1, images ? 16 : 8, f);
    /* image s of class s % 10: a bright column at the class, over a pattern of s */
    for (int s = 0; s < n; s++) {
        if (!images) {
            fputc(s % 10, f);
            continue;
        }
        for (int p = 0; p < 64; p++)
            fputc((p % 8 == s % 10 % 8 ? 200 : 0) + (s % 10 >= 8 ? 50 : 0) + (p * 7 + s * 13) % 50, f);
    }
    cr_assert_eq(fclose(f), 0);
}

/* Builds data/NAME.mdl as the trainer `net` (--mpi) and the one-process driver `drv`. */
static void build_pair(const char *name) {
    char mdl[800], src[800], drv_c[800], api[100];
    snprintf(mdl, sizeof mdl, "%s/data/%s.mdl", MLC_TEST_DIR, name);
    /* --keep leaves the model's source in net.mlc/, which the driver is built from */
    char *build[] = {MLC_EXE, "build", mdl, "-o", net, "--mpi", "--keep", NULL};
    free(run_ok(build));
    snprintf(src, sizeof src, "%s.mlc/%s.c", net, name);
    snprintf(drv_c, sizeof drv_c, "%s/driver.c", dir);
    snprintf(api, sizeof api, "-DMLC_MODEL_API=%s_api", name);
    cr_assert_eq(ct_write_file(drv_c, driver_src), 0);
    char *cc[] = {"cc",
                  "-std=c11",
                  "-O2",
                  "-fopenmp",
                  "-D_POSIX_C_SOURCE=200809L",
                  "-I" MLC_RUNTIME_INC,
                  "-I" OPENBLAS_INC,
                  api,
                  src,
                  drv_c,
                  "-o",
                  drv,
                  "-L" MLC_RUNTIME_LIB_DIR,
                  "-lmlckernels",
                  "-lmlcrt",
                  "-lopenblas",
                  "-lz",
                  "-lm",
                  "-pthread",
                  NULL};
    free(run_ok(cc));
}

static void setup(void) {
    dir = ct_tmpdir("mpi");
    cr_assert_not_null(dir);
    snprintf(net, sizeof net, "%s/net", dir);
    snprintf(drv, sizeof drv, "%s/drv", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    cr_assert_eq(mkdir(data, 0755), 0);
    write_idx("train-images-idx3-ubyte", 100, 1);
    write_idx("train-labels-idx1-ubyte", 100, 0);
    write_idx("t10k-images-idx3-ubyte", 40, 1);
    write_idx("t10k-labels-idx1-ubyte", 40, 0);
    build_pair("dist_mlp");
}

static void teardown(void) {
    ct_rmdir(dir);
    free(dir);
    dir = NULL;
}

TestSuite(dist, .init = setup, .fini = teardown, .timeout = 300);

/* argv for `mpirun ... -np 2 net` (or `drv train` when ranks is 0: one process without
 * MPI) with the common flags, then `extra` (NULL-terminated), then NULL. */
static int train_argv(char **argv, int ranks, const char *const *extra) {
    static char np[8];
    int n = 0;
    if (ranks) {
        snprintf(np, sizeof np, "%d", ranks);
        const char *mpi[] = {"mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-np", np, net};
        for (int i = 0; i < 8; i++) argv[n++] = (char *)mpi[i];
    } else {
        argv[n++] = drv;
        argv[n++] = "train";
    }
    const char *common[] = {"--data", data, "--batch", "33", "--threads", "1", "--seed", "7", "--quiet"};
    for (int i = 0; i < 9; i++) argv[n++] = (char *)common[i];
    for (int i = 0; extra[i]; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return n;
}

/* Trains with `ranks` (0: one process without MPI) and the extra flags; its output. */
static char *train(int ranks, const char *const *extra) {
    char *argv[48];
    train_argv(argv, ranks, extra);
    return run_ok(argv);
}

static char *path(const char *name) {
    static char bufs[16][800];
    static int k;
    char *b = bufs[k++ % 16];
    snprintf(b, 800, "%s/%s", dir, name);
    return b;
}

typedef struct Tensors {
    int n;
    char names[32][64];
    double *v[32];
    int len[32];
} Tensors;

static Tensors dump(const char *ckpt) {
    char *argv[] = {drv, "dump", (char *)ckpt, NULL};
    char *out = run_ok(argv);
    Tensors t = {0};
    for (char *line = strtok(out, "\n"); line && t.n < 32; line = strtok(NULL, "\n")) {
        char *s = strchr(line, ' ');
        cr_assert_not_null(s);
        snprintf(t.names[t.n], 64, "%.*s", (int)(s - line), line);
        t.v[t.n] = malloc(sizeof(double) * strlen(s));
        char *end;
        for (t.len[t.n] = 0;; s = end, t.len[t.n]++) {
            double x = strtod(s, &end);
            if (end == s) break;
            t.v[t.n][t.len[t.n]] = x;
        }
        t.n++;
    }
    free(out);
    return t;
}

/* The largest difference of any tensor of a and b, as a share of that tensor's largest
 * magnitude in a; the name of the worst in *worst. */
static double worst_diff(const Tensors *a, const Tensors *b, const char **worst) {
    cr_assert_eq(a->n, b->n);
    double w = 0;
    for (int i = 0; i < a->n; i++) {
        cr_assert_str_eq(a->names[i], b->names[i]);
        cr_assert_eq(a->len[i], b->len[i], "%s", a->names[i]);
        double diff = 0, scale = 0;
        for (int j = 0; j < a->len[i]; j++) {
            diff = fmax(diff, fabs(a->v[i][j] - b->v[i][j]));
            scale = fmax(scale, fabs(a->v[i][j]));
        }
        if (scale > 0 && diff / scale > w) {
            w = diff / scale;
            *worst = a->names[i];
        }
    }
    return w;
}

static void tensors_free(Tensors *t) {
    for (int i = 0; i < t->n; i++) free(t->v[i]);
}

static int same_bytes(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = ct_read_file(a, &la), *y = ct_read_file(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

Test(dist, two_ranks_train_as_one_process) {
    const char *one[] = {"--epochs", "2", "--save", path("one.ckpt"), NULL};
    const char *two[] = {"--epochs", "2", "--save", path("two.ckpt"), NULL};
    const char *again[] = {"--epochs", "2", "--save", path("again.ckpt"), NULL};
    const char *sum[] = {"--epochs", "2", "--lr", "0.2", "--save", path("sum.ckpt"), NULL};
    const char *serial[] = {"--epochs", "2", "--no-overlap", "--save", path("serial.ckpt"), NULL};
    char *o1 = train(0, one), *o2 = train(2, two), *o3 = train(2, again);
    free(train(0, sum));
    free(train(2, serial));
    /* one voice: rank 0 prints the result line once, as one process does */
    cr_expect_str_eq(o2, o1);
    cr_expect_str_eq(o3, o1);
    cr_expect(same_bytes(path("two.ckpt"), path("again.ckpt")), "two 2-rank runs wrote different checkpoints");
    cr_expect(same_bytes(path("two.ckpt"), path("serial.ckpt")), "--no-overlap wrote another checkpoint");
    cr_expect(strstr(o2, "test accuracy: ") && !strstr(o2, "test accuracy: 0.1000"), "it learnt nothing: %s", o2);
    Tensors a = dump(path("one.ckpt")), b = dump(path("two.ckpt")), s = dump(path("sum.ckpt"));
    cr_assert_eq(a.n, 6 + 6, "parameters and their momentum: %d tensors", a.n);
    const char *w1 = "", *w2 = "";
    double d = worst_diff(&a, &b, &w1), ds = worst_diff(&a, &s, &w2);
    cr_log_info("2 ranks vs 1 process: %g (%s); doubled gradient: %g (%s)", d, w1, ds, w2);
    /* 8 steps of float sums in another order: a few hundred ulps at most */
    cr_expect_leq(d, 2e-5, "2 ranks differ from 1 process by %g of %s", d, w1);
    cr_expect_gt(ds, 0.05, "a doubled gradient changed the weights by only %g", ds);
    tensors_free(&a), tensors_free(&b), tensors_free(&s);
    free(o1), free(o2), free(o3);
}

Test(dist, conv_overlap_is_exact) {
    snprintf(net, sizeof net, "%s/conv", dir); /* train_argv runs net */
    char *build[] = {MLC_EXE, "build", MLC_TEST_DIR "/data/dist_conv.mdl", "-o", net, "--mpi", NULL};
    free(run_ok(build));
    const char *over[] = {"--epochs", "2", "--save", path("over.ckpt"), NULL};
    const char *serial[] = {"--epochs", "2", "--no-overlap", "--save", path("serial.ckpt"), NULL};
    free(train(2, over));
    free(train(2, serial));
    cr_expect(same_bytes(path("over.ckpt"), path("serial.ckpt")),
              "all-reduced during the backward, the checkpoint differs from --no-overlap's");
}

/* --sync-bn: data/dist_conv.mdl's batch norm normalises over the global batch, so 2 ranks
 * train as one process does (running statistics included, whose unbiased correction
 * counts the global batch); without it each rank's own statistics make another model. The
 * last step has 1 sample: rank 0 takes none and joins the collectives with weight 0. */
Test(dist, sync_bn_trains_as_one_process) {
    snprintf(net, sizeof net, "%s/bn", dir);
    snprintf(drv, sizeof drv, "%s/bn_drv", dir);
    build_pair("dist_conv");
    const char *one[] = {"--epochs", "2", "--save", path("one.ckpt"), NULL};
    const char *sync[] = {"--epochs", "2", "--sync-bn", "--save", path("sync.ckpt"), NULL};
    const char *again[] = {"--epochs", "2", "--sync-bn", "--no-overlap", "--save", path("again.ckpt"), NULL};
    const char *own[] = {"--epochs", "2", "--save", path("own.ckpt"), NULL};
    /* a save inside an epoch (step 3 of 4) writes the ranks' mean statistics, then each
     * rank goes on from its own: the run's bits do not depend on how often it saved */
    const char *saving[] = {"--epochs", "2", "--save-every", "3s", "--save", path("saving.ckpt"), NULL};
    char *o1 = train(0, one), *o2 = train(2, sync);
    free(train(2, again));
    free(train(2, own));
    free(train(2, saving));
    cr_expect_str_eq(o2, o1);
    cr_expect(same_bytes(path("sync.ckpt"), path("again.ckpt")), "two --sync-bn runs wrote different checkpoints");
    cr_expect(same_bytes(path("own.ckpt"), path("saving.ckpt")),
              "per-rank statistics: saving inside the epochs changed the final checkpoint");
    Tensors a = dump(path("one.ckpt")), b = dump(path("sync.ckpt")), c = dump(path("own.ckpt"));
    cr_assert_eq(a.n, 11 + 9, "parameters, running statistics and momentum: %d tensors", a.n);
    const char *w1 = "", *w2 = "";
    double d = worst_diff(&a, &b, &w1), dc = worst_diff(&a, &c, &w2);
    cr_log_info("--sync-bn 2 ranks vs 1 process: %g (%s); per-rank statistics: %g (%s)", d, w1, dc, w2);
    cr_expect_leq(d, 2e-5, "--sync-bn: 2 ranks differ from 1 process by %g of %s", d, w1);
    cr_expect_gt(dc, 1e-3, "per-rank statistics changed the model by only %g", dc);
    tensors_free(&a), tensors_free(&b), tensors_free(&c);
    free(o1), free(o2);
}

Test(dist, resume_with_the_same_ranks_or_one) {
    const char *full[] = {"--epochs", "2", "--save", path("full.ckpt"), NULL};
    const char *half[] = {"--epochs", "2", "--max-steps", "5", "--save", path("half.ckpt"), NULL};
    const char *rest[] = {"--epochs", "2", "--resume", path("half.ckpt"), "--save", path("rest.ckpt"), NULL};
    const char *rest1[] = {"--epochs", "2", "--resume", path("half.ckpt"), "--save", path("rest1.ckpt"), NULL};
    free(train(2, full));
    free(train(2, half));
    free(train(2, rest));
    free(train(0, rest1));
    const char *half1[] = {"--epochs", "2", "--max-steps", "5", "--save", path("half1.ckpt"), NULL};
    const char *rest2[] = {"--epochs", "2", "--resume", path("half1.ckpt"), "--save", path("rest2.ckpt"), NULL};
    free(train(0, half1));
    free(train(2, rest2));
    cr_expect(same_bytes(path("full.ckpt"), path("rest.ckpt")),
              "2 ranks resumed mid-epoch wrote other bytes than the run without a break");
    Tensors a = dump(path("full.ckpt")), b = dump(path("rest1.ckpt")), c = dump(path("rest2.ckpt"));
    const char *w = "";
    double d = worst_diff(&a, &b, &w);
    cr_expect_leq(d, 2e-5, "1 process resuming a 2-rank checkpoint differs by %g of %s", d, w);
    d = worst_diff(&a, &c, &w);
    cr_expect_leq(d, 2e-5, "2 ranks resuming a 1-process checkpoint differ by %g of %s", d, w);
    tensors_free(&a), tensors_free(&b), tensors_free(&c);
}

/* A copy of the data in DIR/other whose last 20 test images (inverted) and labels
 * (shifted) differ from the data's: what rank 0 is given below, to show it reads only
 * the first half. */
static void other_test_split(char *other, size_t cap) {
    snprintf(other, cap, "%s/other", dir);
    cr_assert_eq(mkdir(other, 0755), 0);
    const char *names[] = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                           "train-labels-idx1-ubyte"};
    for (int f = 0; f < 4; f++) {
        char from[900], to[900];
        snprintf(from, sizeof from, "%s/%s", data, names[f]);
        snprintf(to, sizeof to, "%s/%s", other, names[f]);
        size_t len = 0;
        unsigned char *b = (unsigned char *)ct_read_file(from, &len);
        cr_assert_not_null(b);
        size_t head = f == 1 ? 8 : 16, per = f == 1 ? 1 : 64;
        for (size_t k = head + 20 * per; f < 2 && k < len; k++)
            b[k] = f ? (unsigned char)((b[k] + 1) % 10) : (unsigned char)~b[k];
        FILE *o = fopen(to, "wb");
        cr_assert_not_null(o);
        cr_assert_eq(fwrite(b, 1, len, o), len);
        cr_assert_eq(fclose(o), 0);
        free(b);
    }
}

/* `net MODE ARGS...` in one process (`drv train ...`, first0 NULL), or as 2 ranks whose
 * rank 0 has its argument first0 in place of the args' last; the output. */
static char *run_mode(const char *const *args, const char *first0) {
    char *argv[48];
    int n = 0, nargs = 0;
    while (args[nargs]) nargs++;
    if (!first0) {
        argv[n++] = drv;
        argv[n++] = "train";
        for (int i = 0; i < nargs; i++) argv[n++] = (char *)args[i];
    } else {
        const char *mpi[] = {"mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none"};
        for (int i = 0; i < 5; i++) argv[n++] = (char *)mpi[i];
        for (int r = 0; r < 2; r++) {
            if (r) argv[n++] = ":";
            argv[n++] = "-np", argv[n++] = "1", argv[n++] = net;
            for (int i = 0; i < nargs; i++) argv[n++] = (char *)(r == 0 && i == nargs - 1 ? first0 : args[i]);
        }
    }
    argv[n] = NULL;
    return run_ok(argv);
}

/* eval and predict under mpirun: each rank takes a shard of the 40 test images, 20 each,
 * and rank 0 prints what one process prints, byte for byte: the accuracy, per-class
 * accuracy and confusion matrix from the summed counts; the predictions in the file's
 * order, gathered in rank order. Rank 0's data differs from the others' in the second
 * half, which it must not read (an unsharded rank 0 prints the other data's figures).
 * Batches of 7, so shards end in partial batches. */
Test(dist, sharded_eval_and_predict_print_what_one_process_prints) {
    const char *train1[] = {"--epochs", "1", "--save", path("m.ckpt"), NULL};
    free(train(0, train1));
    char other[800], images[900], other_images[900];
    other_test_split(other, sizeof other);
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", data);
    snprintf(other_images, sizeof other_images, "%s/t10k-images-idx3-ubyte", other);
    const char *ev[] = {"eval", path("m.ckpt"), "--batch", "7", "--data", data, NULL};
    const char *ev_other[] = {"eval", path("m.ckpt"), "--batch", "7", "--data", other, NULL};
    const char *pr[] = {"predict", path("m.ckpt"), "--batch", "7", "--top", "2", images, NULL};
    const char *pr_other[] = {"predict", path("m.ckpt"), "--batch", "7", "--top", "2", other_images, NULL};
    char *e1 = run_mode(ev, NULL), *e2 = run_mode(ev, other), *eo = run_mode(ev_other, NULL);
    char *p1 = run_mode(pr, NULL), *p2 = run_mode(pr, other_images), *po = run_mode(pr_other, NULL);
    cr_expect(strstr(e1, "confusion matrix"), "%s", e1);
    cr_expect_str_neq(eo, e1, "the other split's second half changes nothing: the test shows nothing");
    cr_expect_str_eq(e2, e1);
    cr_expect(strstr(p1, "\n39:"), "%s", p1);
    cr_expect_str_neq(po, p1, "the other images change no prediction: the test shows nothing");
    cr_expect_str_eq(p2, p1);
    free(e1), free(e2), free(eo), free(p1), free(p2), free(po);
}

/* ---- faults: a job started in the background, a rank found and hurt ---- */

typedef struct Job {
    pid_t pid;
    char log[800];
} Job;

static Job start(const char *const *extra) {
    Job j;
    snprintf(j.log, sizeof j.log, "%s/job.log", dir);
    char *argv[48];
    train_argv(argv, 2, extra);
    j.pid = fork();
    cr_assert_geq(j.pid, 0);
    if (j.pid == 0) {
        setpgid(0, 0); /* the test can end mpirun and everything it started at once */
        FILE *f = freopen(j.log, "w", stdout);
        if (!f || dup2(1, 2) < 0) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    return j;
}

static void nap(void) {
    struct timespec t = {0, 50000000};
    nanosleep(&t, NULL);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Waits up to `seconds` for the job to end: its exit status, or -1 (then it is killed). */
static int finish(Job *j, double seconds) {
    double t0 = now();
    int st;
    while (now() - t0 < seconds) {
        pid_t r = waitpid(j->pid, &st, WNOHANG);
        if (r == j->pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nap();
    }
    kill(-j->pid, SIGKILL);
    waitpid(j->pid, &st, 0);
    return -1;
}

/* The pid of `rank` of the job's trainer: the process running net whose environment says
 * that rank (Open MPI's OMPI_COMM_WORLD_RANK); 0 when there is none yet. */
static pid_t find_rank(int rank) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char p[300], exe[800];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
        ssize_t n = readlink(p, exe, sizeof exe - 1);
        if (n <= 0) continue;
        exe[n] = 0;
        if (strcmp(exe, net)) continue;
        snprintf(p, sizeof p, "/proc/%s/environ", e->d_name);
        size_t len;
        char *env = ct_read_file(p, &len);
        for (size_t k = 0; env && k < len; k += strlen(env + k) + 1)
            if (!strcmp(env + k, want)) found = (pid_t)atoi(e->d_name);
        free(env);
    }
    if (d) closedir(d);
    return found;
}

/* Starts a long job saving every 2 steps and waits (at most a minute) until its first
 * checkpoint exists: the job is then mid-run. Rank 1's pid. */
static pid_t start_long(Job *j, const char *const *extra) {
    *j = start(extra);
    double t0 = now();
    pid_t r1 = 0;
    while (now() - t0 < 60 && (access(path("run.ckpt"), F_OK) || !(r1 = find_rank(1)))) nap();
    cr_assert_neq(r1, 0, "no checkpoint or no rank 1 within a minute");
    return r1;
}

Test(dist, killed_rank_ends_the_job) {
    const char *extra[] = {"--epochs", "100000", "--save", path("run.ckpt"), "--save-every", "2s", NULL};
    Job j;
    pid_t r1 = start_long(&j, extra);
    double t0 = now();
    cr_assert_eq(kill(r1, SIGKILL), 0);
    int st = finish(&j, 60);
    char *log = ct_read_file(j.log, NULL);
    cr_assert_neq(st, -1, "the job still ran a minute after rank 1 was killed:\n%s", log);
    cr_log_info("ended %.1f s after the kill, status %d", now() - t0, st);
    cr_expect_neq(st, 0);
    cr_expect(strstr(log, "rank 1"), "nothing names rank 1:\n%s", log);
    free(log);
    Tensors t = dump(path("run.ckpt")); /* the last checkpoint loads */
    cr_expect_eq(t.n, 12);
    tensors_free(&t);
}

Test(dist, stopped_rank_times_out) {
    const char *extra[] = {"--epochs",       "100000", "--save", path("run.ckpt"), "--save-every", "2s",
                           "--comm-timeout", "2",      NULL};
    Job j;
    pid_t r1 = start_long(&j, extra);
    cr_assert_eq(kill(r1, SIGSTOP), 0);
    int st = finish(&j, 60);
    kill(r1, SIGKILL);
    char *log = ct_read_file(j.log, NULL);
    cr_assert_neq(st, -1, "the job still ran a minute after rank 1 stopped:\n%s", log);
    cr_expect_neq(st, 0);
    cr_expect(strstr(log, "rank 0: error: the ") && strstr(log,
                                                           " timed out: no word from the other ranks for 2 s "
                                                           "(--comm-timeout); stopping all 2 ranks\n"),
              "no timeout message from rank 0:\n%s", log);
    free(log);
}

/* `mpirun -np 1 net FLAGS RANK0 : -np 1 net FLAGS RANK1` with output; the exit status. */
static int mpmd(const char *const *rank0, const char *const *rank1, char **out) {
    char *argv[64];
    const char *extra0[16];
    int k = 0;
    while (rank0[k]) extra0[k] = rank0[k], k++;
    const char *sep[] = {"--epochs", "1", ":", "-np", "1", net, NULL};
    for (int i = 0; i < 7; i++) extra0[k++] = sep[i];
    int n = train_argv(argv, 1, extra0);
    /* rank 1's flags replace the common ones of the same name (a flag given twice is an error) */
    const char *common[] = {"--data", data, "--batch", "33", "--threads", "1", "--seed", "7", "--epochs", "1"};
    for (int i = 0; i < 10; i += 2) {
        int replaced = 0;
        for (int j = 0; rank1[j]; j++) replaced |= strcmp(rank1[j], common[i]) == 0;
        if (!replaced) argv[n++] = (char *)common[i], argv[n++] = (char *)common[i + 1];
    }
    argv[n++] = "--quiet";
    for (int i = 0; rank1[i]; i++) argv[n++] = (char *)rank1[i];
    argv[n] = NULL;
    return ct_run(argv, out);
}

Test(dist, rank_without_data_stops_the_start) {
    char *out;
    char missing[820], want[900];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    int st = mpmd((const char *const[]){NULL}, (const char *const[]){"--data", missing, NULL}, &out);
    cr_expect_eq(st, 1, "%s", out);
    snprintf(want, sizeof want, "rank 1: error: %s: ", missing);
    cr_expect(strstr(out, want), "rank 1 does not say what it could not read:\n%s", out);
    cr_expect(strstr(out, "rank 0: error: rank 1 failed at the start (its message is above); stopping all 2 ranks\n"),
              "%s", out);
    free(out);
}

/* Ranks given flags that change the sequence of collectives (the steps of an epoch, the
 * micro-batches of a step, the epochs) crashed or corrupted memory once the weights
 * agreed; the start-up agreement compares the settings first, and rank 0 names the first
 * that differs. A rank whose own command line is wrong is named too, at once, where rank
 * 0 used to wait 120 s for it. Each within seconds, without a signal or an abort. */
Test(dist, ranks_with_other_flags_stop_the_start) {
    const struct {
        const char *rank1[3], *want;
        int status;
    } cases[] = {
        {{"--batch", "32"},
         "rank 0: error: rank 1's --batch (32) differs from rank 0's (33); stopping all 2 ranks\n",
         1},
        {{"--accum", "2"}, "rank 0: error: rank 1's --accum (2) differs from rank 0's (1); stopping all 2 ranks\n", 1},
        {{"--epochs", "2"},
         "rank 0: error: rank 1's --epochs (2) differs from rank 0's (1); stopping all 2 ranks\n",
         1},
        /* mpirun's status is the first rank's to end: rank 1's 2 or rank 0's 1 */
        {{"--batch", "x"}, "rank 1: error: --batch: expected a positive integer, found 'x'\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        double t0 = now();
        int st = mpmd((const char *const[]){NULL}, cases[i].rank1, &out);
        double took = now() - t0;
        cr_log_info("%s %s: status %d in %.1f s", cases[i].rank1[0], cases[i].rank1[1], st, took);
        if (cases[i].status)
            cr_expect_eq(st, cases[i].status, "%s %s: status %d:\n%s", cases[i].rank1[0], cases[i].rank1[1], st, out);
        else cr_expect(st == 1 || st == 2, "%s %s: status %d:\n%s", cases[i].rank1[0], cases[i].rank1[1], st, out);
        cr_expect(strstr(out, cases[i].want), "%s %s: no line\n%s in\n%s", cases[i].rank1[0], cases[i].rank1[1],
                  cases[i].want, out);
        cr_expect(!strstr(out, "signal") && !strstr(out, "MPI_ABORT"), "%s %s: crashed or aborted:\n%s",
                  cases[i].rank1[0], cases[i].rank1[1], out);
        cr_expect_lt(took, 60, "%s %s: took %.0f s (the --comm-timeout ended it?)", cases[i].rank1[0],
                     cases[i].rank1[1], took);
        if (!cases[i].status)
            cr_expect(strstr(out,
                             "rank 0: error: rank 1 failed at the start (its message is above); stopping all 2 "
                             "ranks\n"),
                      "%s", out);
        free(out);
    }
}

/* A token corpus has no labels, so ranks given other texts of as many windows compared
 * only their sizes and trained together on two corpora; the tokens' checksum stops them. */
Test(dist, ranks_with_other_texts_stop_the_start) {
    char mdl[800], lm[800], text_a[800], text_b[800];
    snprintf(mdl, sizeof mdl, "%s/bigram.mdl", dir);
    snprintf(lm, sizeof lm, "%s/bigram", dir);
    cr_assert_eq(ct_write_file(mdl,
                               "model bigram\ninput tokens: i32[B, 8]\ninput targets: i32[B, 8]\n"
                               "logits = embedding(tokens, 256, 256)\noutput logits\n"
                               "loss cross_entropy(logits, targets)\n"),
                 0);
    char *build[] = {MLC_EXE, "build", mdl, "-o", lm, "--mpi", NULL};
    free(run_ok(build));
    /* two texts of 4000 bytes: as many windows, other tokens */
    char body_a[4001], body_b[4001];
    for (int i = 0; i < 4000; i++) body_a[i] = (char)('a' + i % 26), body_b[i] = (char)('a' + i % 7);
    body_a[4000] = body_b[4000] = '\0';
    snprintf(text_a, sizeof text_a, "%s/a.txt", dir);
    snprintf(text_b, sizeof text_b, "%s/b.txt", dir);
    cr_assert_eq(ct_write_file(text_a, body_a), 0);
    cr_assert_eq(ct_write_file(text_b, body_b), 0);
    char *argv[] = {"mpirun",
                    "--oversubscribe",
                    "--allow-run-as-root",
                    "--bind-to",
                    "none",
                    "-np",
                    "1",
                    lm,
                    "--data",
                    text_a,
                    "--max-steps",
                    "1",
                    "--threads",
                    "1",
                    "--quiet",
                    ":",
                    "-np",
                    "1",
                    lm,
                    "--data",
                    text_b,
                    "--max-steps",
                    "1",
                    "--threads",
                    "1",
                    "--quiet",
                    NULL};
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect(strstr(out, "rank 0: error: rank 1's training tokens' checksum ("), "%s", out);
    free(out);
}

/* --check-finite's lines come from the model's kernels (mlc_kernels.h), not the runtime:
 * under mpirun they too start with the rank, each rank's with its own. */
Test(dist, check_finite_lines_name_the_rank) {
    char *argv[48], *out = NULL;
    train_argv(argv, 2, (const char *const[]){"--epochs", "1", "--lr", "1e30", "--check-finite", NULL});
    int st = ct_run(argv, &out);
    cr_expect_eq(st, 1, "%s", out);
    for (int r = 0; r < 2; r++) {
        char want[128];
        snprintf(want, sizeof want, "rank %d: error: %%10 = matmul (dist_mlp.mdl:15:10) produced Inf at element 0\n",
                 r);
        cr_expect(strstr(out, want), "no line\n%sin\n%s", want, out);
    }
    cr_expect(strstr(out, "rank 0: error: loss became NaN at epoch 1 step 2\n"), "%s", out);
    cr_expect(strncmp(out, "error: ", 7) && !strstr(out, "\nerror: "), "a line without its rank:\n%s", out);
    free(out);
}

/* The same flags, but each rank fine-tunes another checkpoint (its own --load file):
 * the settings agree, the weights do not. */
Test(dist, ranks_with_other_weights_stop_the_start) {
    char *out;
    free(train(0, (const char *const[]){"--epochs", "1", "--save", path("a.ckpt"), NULL}));
    free(train(0, (const char *const[]){"--epochs", "1", "--lr", "0.2", "--save", path("b.ckpt"), NULL}));
    int st = mpmd((const char *const[]){"--load", path("a.ckpt"), NULL},
                  (const char *const[]){"--load", path("b.ckpt"), NULL}, &out);
    cr_expect_eq(st, 1, "%s", out);
    cr_expect(strstr(out, "rank 0: error: rank 1's weights differ from rank 0's at the start (checksum "), "%s", out);
    free(out);
}

Test(dist, plain_build_needs_no_mpi) {
    char plain[800];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    char *build[] = {MLC_EXE, "build", MDL, "-o", plain, NULL};
    free(run_ok(build));
    char *ldd[] = {"ldd", plain, NULL}, *ldd_mpi[] = {"ldd", net, NULL};
    char *a = run_ok(ldd), *b = run_ok(ldd_mpi);
    cr_expect(!strstr(a, "libmpi"), "a trainer built without --mpi links MPI:\n%s", a);
    cr_expect(strstr(b, "libmpi"), "a trainer built with --mpi does not link MPI:\n%s", b);
    free(a), free(b);
}

Test(dist, cuda_trainer_links_nccl_and_mpi, .timeout = 600) {
    if (access("/usr/local/cuda/bin/nvcc", X_OK)) cr_skip_test("no CUDA toolkit at /usr/local/cuda");
    char cuda[800];
    snprintf(cuda, sizeof cuda, "%s/cuda", dir);
    char *build[] = {MLC_EXE, "build",       MDL,     "-o",    cuda,     "--target",
                     "cuda",  "--cuda-arch", "sm_90", "--mpi", "--keep", NULL};
    free(run_ok(build));
    char *ldd[] = {"ldd", cuda, NULL};
    char *out = run_ok(ldd);
    cr_expect(strstr(out, "libnccl"), "no NCCL:\n%s", out);
    cr_expect(strstr(out, "libmpi"), "no MPI:\n%s", out);
    free(out);
    /* overlap: the backward reports its final prefixes of the slab (fc3's, fc2's, ...) as
     * it queues them, and last the whole slab */
    char src[900];
    snprintf(src, sizeof src, "%s.mlc/dist_mlp.cu", cuda);
    char *cu = ct_read_file(src, NULL);
    cr_assert_not_null(cu, "%s", src);
    int calls = 0;
    for (const char *p = cu; (p = strstr(p, "if (self->grad_ready) self->grad_ready(self->grad_ctx, ")); p++) calls++;
    cr_expect_geq(calls, 3, "the CUDA backward reports %d ready prefixes of the gradient slab", calls);
    free(cu);
}

/* A runtime without libmlcrt_mpi (mlc built where meson found no MPI): one error line. */
Test(dist, build_without_libmlcrt_mpi_says_so) {
    char bare[800], bin[820], want[1200];
    snprintf(bare, sizeof bare, "%s/bare", dir);
    snprintf(bin, sizeof bin, "%s/x", dir);
    cr_assert_eq(mkdir(bare, 0755), 0);
    setenv("MLC_RUNTIME_INCLUDE", MLC_RUNTIME_INC, 1);
    setenv("MLC_RUNTIME_LIB", bare, 1);
    char *build[] = {MLC_EXE, "build", MDL, "-o", bin, "--mpi", NULL}, *out = NULL;
    cr_expect_eq(ct_run(build, &out), 1);
    snprintf(want, sizeof want,
             "mlc: error: --mpi: no %s/libmlcrt_mpi.a: mlc's runtime was built without MPI (install Open MPI, e.g. "
             "Debian's libopenmpi-dev, and rebuild mlc)\n",
             bare);
    cr_expect_str_eq(out, want);
    free(out);
}

static int have_mpirun(void) {
    char *argv[] = {"mpirun", "--version", NULL};
    return ct_run(argv, NULL) == 0;
}

int main(int argc, char **argv) {
#ifdef MLC_SANITIZED
    return 77;
#endif
    if (!have_mpirun() || access(MLC_RUNTIME_LIB_DIR "/libmlcrt_mpi.a", R_OK)) return 77;
    struct criterion_test_set *tests = criterion_initialize();
    int ok = 1;
    if (criterion_handle_args(argc, argv, true)) ok = criterion_run_all_tests(tests);
    criterion_finalize(tests);
    return ok ? 0 : 1;
}
