/* test_bounds.c - compiles stay bounded (issue: "nothing gets in, nothing breaks").
 *
 * Models written to exhaust the compiler: a chain of 2,000 dense layers, a ResNet of 600
 * basic blocks, and blocks nested 20 deep (2^20 inlined calls); and models that made a
 * pass quadratic (25,000 parameters, 160,000 names, 60,000 blocks), which must compile. The first two must compile
 * in a bounded amount of memory (peak resident set of the mlc process, from getrusage: memory
 * is a property of the code, unlike time on a shared machine, which is never asserted);
 * the third must stop with the documented node-limit error, not exhaust memory.
 *
 * And what the op rules let in: every op whose loops are written for floats refuses an
 * i32 operand, and a window counts as fitting only when it fits (window_count). */
#include <criterion/criterion.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "ctest_util.h"
#include "ops.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif

/* Runs mlc on path (output to /dev/null), its address space limited to as_mib MiB unless
 * 0; returns the exit status, the peak RSS in MiB and the start of stderr. */
static int run_mlc_limited(const char *path, long as_mib, long *rss_mib, char *err, size_t cap) {
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        struct rlimit lim = {(rlim_t)as_mib << 20, (rlim_t)as_mib << 20};
        if (as_mib && setrlimit(RLIMIT_AS, &lim) != 0) _exit(126);
        execl(MLC_EXE, MLC_EXE, path, "-o", "/dev/null", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t n;
    char sink[4096];
    while ((n = read(pfd[0], sink, sizeof sink)) > 0)
        for (ssize_t i = 0; i < n && len + 1 < cap; i++) err[len++] = sink[i];
    err[len] = 0;
    close(pfd[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    /* each Criterion test runs in a process of its own, whose only child is this mlc */
    struct rusage ru;
    cr_assert_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
    *rss_mib = ru.ru_maxrss / 1024;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_mlc(const char *path, long *rss_mib, char *err, size_t cap) {
    return run_mlc_limited(path, 0, rss_mib, err, cap);
}

static char *write_model(const char *dir, const char *name, void (*body)(FILE *)) {
    char *p = malloc(1024);
    snprintf(p, 1024, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    body(f);
    fclose(f);
    return p;
}

static void dense_chain(FILE *f) {
    fprintf(f, "model deep\ninput image: f32[B, 784]\ninput label: i32[B]\nh = relu(dense(image, 64))\n");
    for (int i = 0; i < 2000; i++) fprintf(f, "h = relu(dense(h, 64))\n");
    fprintf(f, "logits = dense(h, 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

static void resnet600(FILE *f) {
    fprintf(f,
            "model deep\ninput image: f32[B, 784]\ninput label: i32[B]\n"
            "block basic(x, c) {\n"
            "    h = relu(batch_norm(conv2d(x, c, 3, pad = 1, bias = false)))\n"
            "    h = batch_norm(conv2d(h, c, 3, pad = 1, bias = false))\n"
            "    return relu(h + x)\n}\n"
            "x = reshape(image, [B, 1, 28, 28])\nx = relu(conv2d(x, 16, 3, pad = 1))\n");
    for (int i = 0; i < 600; i++) fprintf(f, "x = basic(x, 16)\n");
    fprintf(f, "logits = dense(global_avg_pool(x), 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

static void nested(FILE *f) {
    fprintf(f,
            "model deep\ninput image: f32[B, 16]\ninput label: i32[B]\n"
            "block b0(x) {\n    return relu(x) * 0.5\n}\n");
    for (int k = 1; k <= 20; k++) fprintf(f, "block b%d(x) {\n    return b%d(b%d(x))\n}\n", k, k - 1, k - 1);
    fprintf(f, "logits = dense(b20(image), 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

/* 25,000 parameters, each added to the input once: the train step has about 125,000
 * nodes and 75,000 persistent tensors. Where the gradient slab's ready prefix scanned
 * every persistent for every node, and names were looked up in lists, this took 45 s of
 * CPU (70 s on this shared machine); about 1 s of CPU now. */
static void many_params(FILE *f) {
    fprintf(f, "model wide\ninput image: f32[B, 64]\ninput label: i32[B]\nh = image\n");
    for (int i = 0; i < 25000; i++) fprintf(f, "param p%d: f32[64] = normal(0, 0.01)\n", i);
    for (int i = 0; i < 25000; i++) fprintf(f, "h = h + p%d\n", i);
    fprintf(f, "logits = dense(h, 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

/* 160,000 distinct names (2.5 MB of source): a scope searched as a list took 4 minutes. */
static void many_names(FILE *f) {
    fprintf(f, "model names\ninput image: f32[B, 64]\ninput label: i32[B]\n");
    for (int i = 0; i < 160000; i++) fprintf(f, "y%d = %d\n", i, i);
    fprintf(f, "logits = dense(image, 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

/* 60,000 blocks, each called once: blocks found by name in a list, and a call counter per
 * block name in a list, made this take a minute and a half of CPU. */
static void many_blocks(FILE *f) {
    fprintf(f, "model blocks\ninput image: f32[B, 64]\ninput label: i32[B]\n");
    for (int i = 0; i < 60000; i++) fprintf(f, "block b%d(x) {\n    return x\n}\n", i);
    fprintf(f, "h = image\n");
    for (int i = 0; i < 60000; i++) fprintf(f, "h = b%d(h)\n", i);
    fprintf(f, "logits = dense(h, 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

/* Sanitizers multiply memory (shadow, redzones, quarantine): a looser bound there. */
static long mib_limit(void) { return MLC_TEST_SANITIZE[0] ? 2000 : 500; }

Test(bounds, dense_chain_2000) {
    char *dir = ct_tmpdir("bounds"), err[4096];
    char *p = write_model(dir, "deep.mdl", dense_chain);
    long mib;
    cr_assert_eq(run_mlc(p, &mib, err, sizeof err), 0, "%s", err);
    cr_expect_leq(mib, mib_limit(), "a 2,000-layer dense chain took %ld MiB (it took 5 GB before emission was fixed)",
                  mib);
    ct_rmdir(dir);
    free(p), free(dir);
}

Test(bounds, resnet_600_blocks) {
    char *dir = ct_tmpdir("bounds"), err[4096];
    char *p = write_model(dir, "res.mdl", resnet600);
    long mib;
    cr_assert_eq(run_mlc(p, &mib, err, sizeof err), 0, "%s", err);
    cr_expect_leq(mib, mib_limit(), "a 600-block ResNet took %ld MiB", mib);
    ct_rmdir(dir);
    free(p), free(dir);
}

Test(bounds, nested_blocks_hit_the_node_limit) {
    char *dir = ct_tmpdir("bounds"), err[4096];
    char *p = write_model(dir, "nest.mdl", nested);
    long mib;
    cr_assert_eq(run_mlc(p, &mib, err, sizeof err), 1, "%s", err);
    cr_expect(strstr(err, "error: the train-step graph has more than 262144 nodes (blocks are expanded at every call"),
              "%s", err);
    cr_expect_leq(mib, mib_limit(), "blocks nested 20 deep took %ld MiB before the node limit stopped them", mib);
    ct_rmdir(dir);
    free(p), free(dir);
}

/* Compile time must stay about linear in the model's size. Time is not asserted (the
 * machine is shared), but each of these took a minute or more where a pass was
 * quadratic and takes seconds now, so the timeout catches a relapse. */
static void compiles_within(const char *name, void (*body)(FILE *), long mib_max) {
    char *dir = ct_tmpdir("bounds"), err[4096];
    char *p = write_model(dir, name, body);
    long mib;
    cr_assert_eq(run_mlc(p, &mib, err, sizeof err), 0, "%s", err);
    cr_expect_leq(mib, mib_max, "%s took %ld MiB", name, mib);
    ct_rmdir(dir);
    free(p), free(dir);
}

Test(bounds, params_25000, .timeout = 45) {
    compiles_within("params.mdl", many_params, MLC_TEST_SANITIZE[0] ? 4000 : 1400);
}

Test(bounds, distinct_names_160000, .timeout = 45) { compiles_within("names.mdl", many_names, mib_limit()); }

Test(bounds, blocks_60000, .timeout = 45) { compiles_within("blocks.mdl", many_blocks, mib_limit()); }

/* A model larger than the memory there is: an error line and exit status 1, not an
 * "internal error" and a core dump. (Not under sanitizers, which reserve terabytes of
 * address space before main.) */
Test(bounds, out_of_memory_is_an_error_not_a_crash) {
    if (MLC_TEST_SANITIZE[0]) cr_skip_test("a sanitized mlc cannot run in a limited address space");
    char *dir = ct_tmpdir("bounds"), err[4096];
    char *p = write_model(dir, "res.mdl", resnet600);
    long mib;
    cr_assert_eq(run_mlc_limited(p, 120, &mib, err, sizeof err), 1, "%s", err);
    cr_expect(strncmp(err, "mlc: error: out of memory", 25) == 0 && !strstr(err, "internal error"), "%s", err);
    ct_rmdir(dir);
    free(p), free(dir);
}

/* Every elementwise op (K_EWISE) and expand: fuse.c leaves i32 nodes out of its groups, and
 * the lone loop the targets wrote for one stored only element 0, so each shape rule must
 * refuse an i32 operand, naming f32. A new elementwise op gets this check by its kind. */
Test(bounds, f32_only_ops_refuse_i32) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 4);
    int64_t d[2] = {4, 3};
    int x = graph_add_source(g, OP_input, shape_make(2, d, 1), DT_I32, "ids", NULL);
    int checked = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        const OpInfo *oi = &op_info[op];
        if (oi->kind != K_EWISE && op != OP_expand) continue;
        Node n = {0};
        n.op = (Op)op;
        n.nin = oi->arity;
        for (int i = 0; i < oi->arity; i++) n.in[i] = x;
        n.shape = g->nodes[x].shape; /* expand's target: the same shape */
        n.dtype = DT_I32;
        const char *err = oi->rules->shape(g, &n);
        cr_expect(err && strstr(err, "f32"), "%s accepted an i32 operand", oi->name);
        checked++;
    }
    cr_expect_geq(checked, 30, "only %d elementwise ops in the table", checked);
    arena_free(&a);
}

/* Windows of a convolution or pooling: (len - span) / stride + 1 truncates toward zero,
 * so a window longer than the input by less than the stride counted as one. */
Test(bounds, window_count_is_zero_when_the_window_does_not_fit) {
    cr_expect_eq(window_count(8, 9, 9), 0);   /* max_pool2d(x, 9) on 8x8: the default stride */
    cr_expect_eq(window_count(8, 9, 1), 0);   /* the same window, stride 1 */
    cr_expect_eq(window_count(8, 11, 20), 0); /* a 3x3 kernel with dilation 5, stride 20 */
    cr_expect_eq(window_count(10, 11, 4), 0); /* 8 padded by 1 on each side, an 11-wide kernel */
    cr_expect_eq(window_count(8, 8, 5), 1);   /* exactly fits */
    cr_expect_eq(window_count(10, 7, 3), 2);  /* windows at 0 and 3 */
    cr_expect_eq(window_count(8, 3, 0), 0);   /* no stride: no window */
}

/* A fused group takes at most fuse.c's GROUP_MAX_BUFFERS buffers: a chain of 1,000
 * parameter additions was one group of 1,001 buffers, and the CUDA target, whose kernels
 * take their buffers as parameters, died with an internal error. */
static void param_chain(FILE *f) {
    fprintf(f, "model chain\ninput image: f32[B, 64]\ninput label: i32[B]\nh = image\n");
    for (int i = 0; i < 1000; i++) fprintf(f, "param p%d: f32[64] = normal(0, 0.01)\n", i);
    for (int i = 0; i < 1000; i++) fprintf(f, "h = h + p%d\n", i);
    fprintf(f, "logits = dense(h, 10)\noutput logits\nloss cross_entropy(logits, label)\n");
}

Test(bounds, wide_groups_fit_a_cuda_kernel, .timeout = 60) {
    char *dir = ct_tmpdir("bounds"), *p = write_model(dir, "chain.mdl", param_chain), out[1100];
    snprintf(out, sizeof out, "%s/chain.cu", dir);
    char *argv[] = {MLC_EXE, p, "-o", out, "--target", "cuda", NULL}, *text = NULL;
    int st = ct_run(argv, &text);
    cr_assert_eq(st, 0, "%.2000s", text);
    free(text);
    /* no kernel's parameter list longer than 256 pointers */
    char *src = ct_read_file(out, NULL);
    cr_assert_not_null(src);
    int worst = 0;
    for (const char *k = strstr(src, "__global__"); k; k = strstr(k + 1, "__global__")) {
        int commas = 0;
        for (const char *c = k; *c && *c != ')'; c++) commas += *c == ',';
        if (commas > worst) worst = commas;
    }
    cr_expect_leq(worst, 256 + 8, "a kernel takes %d parameters", worst + 1);
    cr_expect_gt(worst, 0);
    free(src);
    ct_rmdir(dir);
    free(p), free(dir);
}
