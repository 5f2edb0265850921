/* test_dump_ir.c - `--dump-ir`: after:PASS for every pass in the pass table (passes.h),
 * labelled per graph; all; the older stage names; the errors for unknown names; how
 * after:fuse and --report show epilogues.
 * Through compile_model's DumpOptions, and through the mlc executable for the option
 * parsing and messages. */
#include <criterion/criterion.h>

#include "c_emitters.h"
#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif

#define CONVBN MLC_TEST_DIR "/data/convbn.mdl"

/* The "; --- after ... ---" headers of a dump, one per line, in order (malloc'd). */
static char *headers(const char *dump) {
    size_t cap = strlen(dump) + 1, k = 0;
    char *h = malloc(cap);
    h[0] = 0;
    for (const char *p = dump; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!strncmp(p, "; --- ", 6) || !strncmp(p, "// --- ", 7)) {
            memcpy(h + k, p, len);
            k += len;
            h[k++] = '\n';
            h[k] = 0;
        }
        p = e ? e + 1 : NULL;
    }
    return h;
}

static char *dump_headers(const char *path, DumpOptions want) {
    SrcFile *src = ct_load_src(path);
    cr_assert_not_null(src, "cannot read %s", path);
    Arena arena = {0};
    CtCompile r = ct_compile(&arena, src, want);
    cr_assert_not_null(r.m, "%s does not compile:\n%s", path, r.diag);
    char *h = headers(r.dump);
    ct_compile_free(&r);
    arena_free(&arena);
    srcfile_free(src);
    return h;
}

/* Runs mlc with the given arguments; returns its exit status, output in *out. */
static int mlc(char **out, const char *a1, const char *a2, const char *a3) {
    char *argv[] = {MLC_EXE, (char *)a1, (char *)a2, (char *)a3, NULL};
    return ct_run(argv, out);
}

Test(dump_ir, after_a_pass_on_both_graphs) {
    char *h = dump_headers(CONVBN, (DumpOptions){.after = DUMP_AFTER(PASS_simplify)});
    cr_assert_str_eq(h, "; --- after simplify (train step) ---\n; --- after simplify (eval) ---\n");
    free(h);
}

Test(dump_ir, after_an_eval_only_pass) {
    char *h = dump_headers(CONVBN, (DumpOptions){.after = DUMP_AFTER(PASS_fold_bn)});
    cr_assert_str_eq(h, "; --- after fold_bn (eval) ---\n");
    free(h);
}

/* every pass in the table, in the order compile_model runs them */
Test(dump_ir, all_passes_in_order) {
    char *h = dump_headers(CONVBN, (DumpOptions){.after = DUMP_AFTER_ALL});
    cr_assert_str_eq(h,
                     "; --- after lower (train step) ---\n"
                     "; --- after autodiff (train step) ---\n"
                     "; --- after optimizer (train step) ---\n"
                     "; --- after split_bn (train step) ---\n"
                     "; --- after simplify (train step) ---\n"
                     "; --- after relu_pool (train step) ---\n"
                     "; --- after dce (train step) ---\n"
                     "; --- after lower (eval) ---\n"
                     "; --- after simplify (eval) ---\n"
                     "; --- after fold_bn (eval) ---\n"
                     "; --- after dce (eval) ---\n"
                     "; --- after fuse (train step) ---\n"
                     "; --- after fuse (eval) ---\n");
    for (int p = 0; p < PASS_COUNT; p++) {
        if (p == PASS_recompute || p == PASS_precision) continue; /* only under --mem-budget, --precision bf16 */
        char want[96];
        snprintf(want, sizeof want, "; --- after %s (", pass_names[p]);
        cr_assert_not_null(strstr(h, want), "no dump after pass %s", pass_names[p]);
    }
    free(h);
}

/* --precision bf16: its pass runs right after lowering, on both graphs; each conv2d and
 * matmul reads rounded inputs and is read rounded. convbn.mdl, per graph: c1, c2, c5 and
 * fc round their input, weight and output (3 each), c3 reads c2's rounded input (2). */
Test(dump_ir, precision_pass_under_bf16) {
    char *out = NULL;
    char *argv[] = {MLC_EXE, CONVBN, "--precision", "bf16", "--dump-ir=after:precision", NULL};
    cr_assert_eq(ct_run(argv, &out), 0, "%s", out);
    char *h = headers(out);
    cr_assert_str_eq(h, "; --- after precision (train step) ---\n; --- after precision (eval) ---\n");
    int convs = 0, rounds = 0;
    for (const char *p = out; (p = strstr(p, " = conv2d ")); p++) convs++;
    for (const char *p = out; (p = strstr(p, " = round_bf16 ")); p++) rounds++;
    cr_assert_eq(convs, 2 * 4);
    cr_assert_eq(rounds, 2 * (3 * 3 + 2 + 3), "%d round_bf16:\n%s", rounds, out);
    free(h);
    free(out);
    /* --report counts them: the 14 forward ones, and the gradients of all but the image's */
    char *argv3[] = {MLC_EXE, CONVBN, "--precision", "bf16", "--report", NULL};
    cr_assert_eq(ct_run(argv3, &out), 0, "%s", out);
    cr_assert(strstr(out, "precision: bf16, 27 values rounded in the train step"), "%s", out);
    free(out);
    char *argv2[] = {MLC_EXE, CONVBN, "--precision", "fp16", NULL};
    cr_assert_eq(ct_run(argv2, &out), 2);
    cr_assert(strstr(out, "mlc: error: --precision: expected fp32 or bf16, found 'fp16'"), "%s", out);
    free(out);
}

Test(dump_ir, pass_table_names) {
    for (int p = 0; p < PASS_COUNT; p++) cr_assert_eq(pass_by_name(pass_names[p]), (PassId)p);
    cr_assert_eq(pass_by_name("fold_bn"), PASS_fold_bn);
    cr_assert_eq(pass_by_name("nope"), PASS_COUNT);
    cr_assert_eq(pass_by_name(""), PASS_COUNT);
}

/* The graph printed after fold_bn is the folded one; after simplify it is not yet. */
Test(dump_ir, dump_shows_the_graph_at_that_point) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:simplify", NULL), 0, "%s", out);
    cr_assert_null(strstr(out, "f32[4, 1, 1, 1]"), "the weight scale appears before fold_bn ran");
    free(out);
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:fold_bn", NULL), 0, "%s", out);
    cr_assert_not_null(strstr(out, "graph eval"));
    cr_assert_not_null(strstr(out, "f32[4, 1, 1, 1]"), "no per-channel weight scale after fold_bn:\n%s", out);
    free(out);
}

Test(dump_ir, cli_after_and_repeated) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:optimizer", "--dump-ir=after:dce"), 0, "%s", out);
    char *h = headers(out);
    cr_assert_str_eq(h,
                     "; --- after optimizer (train step) ---\n; --- after dce (train step) ---\n"
                     "; --- after dce (eval) ---\n");
    free(h);
    free(out);
}

/* The stage names from before after:PASS still work. */
Test(dump_ir, cli_older_stage_names) {
    // clang-format off
    static const struct {
        const char *arg, *headers;
    } cases[] = {
        {"--dump-ir=lower", "; --- after lower (train step) ---\n; --- after lower (eval) ---\n"},
        {"--dump-ir=autodiff", "; --- after autodiff (train step) ---\n"},
        {"--dump-ir=final", "; --- after dce (train step, as emitted) ---\n; --- after dce (eval, as emitted) ---\n"
                             "; --- after dce (eval loss, as emitted) ---\n"},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        cr_assert_eq(mlc(&out, CONVBN, cases[i].arg, NULL), 0, "%s: %s", cases[i].arg, out);
        char *h = headers(out);
        cr_assert_str_eq(h, cases[i].headers, "%s", cases[i].arg);
        free(h);
        free(out);
    }
}

/* A pass that does not run in this configuration has nothing to dump: a note on stderr
 * says why (an empty dump looked broken), and the run succeeds; with the option that runs
 * it, no note. */
Test(dump_ir, a_pass_that_does_not_run_gets_a_note) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:precision", NULL), 0, "%s", out);
    cr_expect_str_eq(out,
                     "mlc: note: --dump-ir=after:precision: the precision pass runs only with --precision bf16; "
                     "nothing to dump\n");
    free(out);
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:recompute", NULL), 0, "%s", out);
    cr_expect_str_eq(out,
                     "mlc: note: --dump-ir=after:recompute: the recompute pass runs only with --mem-budget; "
                     "nothing to dump\n");
    free(out);
    char *argv[] = {MLC_EXE, CONVBN, "--precision", "bf16", "--dump-ir=after:precision", NULL};
    cr_assert_eq(ct_run(argv, &out), 0, "%s", out);
    cr_expect_null(strstr(out, "mlc: note:"), "%.300s", out);
    free(out);
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=all", NULL), 0, "%s", out);
    cr_expect_null(strstr(out, "mlc: note:"), "--dump-ir=all asked for no pass by name");
    free(out);
}

static void expect_pass_list(const char *out) {
    for (int p = 0; p < PASS_COUNT; p++)
        cr_assert_not_null(strstr(out, pass_names[p]), "the message does not list pass %s:\n%s", pass_names[p], out);
}

Test(dump_ir, cli_unknown_pass) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:simplfy", NULL), 2, "%s", out);
    cr_assert_not_null(strstr(out, "mlc: error: --dump-ir=after:simplfy: no pass named 'simplfy'"), "%s", out);
    cr_assert_not_null(strstr(out, "did you mean 'simplify'?"), "%s", out);
    expect_pass_list(out);
    cr_assert_null(strstr(out, "; ---"), "dumped despite the error:\n%s", out);
    free(out);
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=after:", NULL), 2, "%s", out);
    expect_pass_list(out);
    free(out);
}

Test(dump_ir, cli_unknown_stage) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, CONVBN, "--dump-ir=everything", NULL), 2, "%s", out);
    cr_assert_not_null(strstr(out, "mlc: error: unknown IR stage 'everything'"), "%s", out);
    cr_assert_not_null(strstr(out, "after:PASS"), "%s", out);
    expect_pass_list(out);
    free(out);
}

Test(dump_ir, help_lists_the_passes) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, "--help", NULL, NULL), 0, "%s", out);
    cr_assert_not_null(strstr(out, "--dump-ir=after:PASS"), "%s", out);
    expect_pass_list(out);
    free(out);
}

/* after:fuse marks each epilogue with the op it runs with and counts them; --report
 * counts them by kind: lenet's two convs and two dense layers each have one. */
Test(dump_ir, fuse_shows_epilogues) {
    char *out = NULL;
    const char *lenet = MLC_SOURCE_ROOT "/samples/lenet.mdl";
    cr_assert_eq(mlc(&out, lenet, "--dump-ir=after:fuse", NULL), 0, "%s", out);
    cr_expect_not_null(strstr(out, "; 6 kernels; 3 groups hold 3 fused nodes; 4 epilogues\n"), "%s", out);
    cr_expect_not_null(strstr(out, "  %8 = relu : f32[B, 32, 28, 28] (epilogue of %4 conv2d, may overwrite %4)  ;"),
                       "%s", out);
    cr_expect_not_null(strstr(out, "  %22 = relu : f32[B, 128] (epilogue of %19 matmul, may overwrite %19)  ;"), "%s",
                       out);
    free(out);
    cr_assert_eq(mlc(&out, lenet, "--report", NULL), 0, "%s", out);
    cr_expect_not_null(strstr(out, "never reach memory; 4 epilogues (2 GEMM, 2 conv)\n"), "%s", out);
    free(out);
}

/* --report lists each attention of the train step: it keeps nothing extra for the
 * backward, whose statistics are [B, 2, 32, 2] (8192 bytes at B = 16), against the
 * [B, 2, 32, 32] probabilities an unfused attention keeps (attention.mdl). */
Test(dump_ir, report_shows_attention_memory) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, MLC_TEST_DIR "/data/attention.mdl", "--report", NULL), 0, "%s", out);
    cr_expect_not_null(strstr(out, "\nattention: 3 fused, no T x S matrix stored, forward or backward;"), "%s", out);
    cr_expect_not_null(strstr(out,
                              "\n  %12    f32[B, 2, 32, 6]           32     32 yes               0             8192"
                              "             131072\n"),
                       "%s", out);
    cr_expect_not_null(strstr(out,
                              "\n  %18    f32[B, 2, 32, 9]           32     20 no                0             8192"
                              "              81920\n"),
                       "%s", out);
    free(out);
}

/* --report names each convolution's kernel variant at the vector width the kernel
 * library gets on this machine: under --conv-algo auto lenet's second conv (32 -> 64
 * channels, 14x14 out, 3x3 stride 1) runs Winograd, F(4x4, 3x3) forward (in sample
 * groups, or rows of tiles when the step runs with more threads than groups) and F(2x2,
 * 3x3) for its weight gradient (in groups of 8 samples: 8 chunks of its batch of 64); the first one's weight gradient (1 input channel) the direct
 * kernel. */
Test(dump_ir, report_names_each_conv_kernel_and_width) {
    char *out = NULL;
    const char *isa;
    const int vw = c_native_vec_width(&isa);
    char want[512];
    cr_assert_eq(mlc(&out, MLC_SOURCE_ROOT "/samples/lenet.mdl", "--report", NULL), 0, "%s", out);
    snprintf(want, sizeof want,
             "\nconvolutions: 5, C kernels (libmlckernels) with %d-float vectors: %s, from this machine's cpuid, which "
             "mlc build compiles for (-march=native)\n",
             vw, isa);
    cr_expect_not_null(strstr(out, want), "%s", out);
    snprintf(want, sizeof want,
             "\n  %%11    conv2d             32x14x14 -> 64x14x14 k3x3 s1       Winograd F(4x4, 3x3): 36 products "
             "of 6x6 tiles, groups of 8 samples in the lanes (else segments of %d tiles)\n",
             vw);
    cr_expect_not_null(strstr(out, want), "%s", out);
    snprintf(want, sizeof want,
             "\n  %%71    conv2d_bwd_filter  32x14x14 -> 64x14x14 k3x3 s1       Winograd F(2x2, 3x3): 16 products of "
             "4x4 tiles, 6 input channels x %d output channels (2 vectors of %d), 8 partial sums of groups of 8 "
             "samples\n",
             2 * vw, vw);
    cr_expect_not_null(strstr(out, want), "%s", out);
    snprintf(
        want, sizeof want,
        "\n  %%79    conv2d_bwd_filter  1x28x28 -> 32x28x28 k3x3 s1        shift-GEMM on dy transposed, 6 taps x %d "
        "channels (2 vectors of %d), 16 partial sums\n",
        2 * vw, vw);
    cr_expect_not_null(strstr(out, want), "%s", out);
    free(out);
}

/* `//` and `%` on integers: floor division and remainder as in Python (intdiv.mdl). */
Test(dump_ir, integer_floor_division_and_remainder) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, MLC_TEST_DIR "/data/intdiv.mdl", "--dump-ir=after:lower", NULL), 0, "%s", out);
    cr_expect(strstr(out, "conv2d %0, %2 {stride=[1, 1], pad=[1, 1], dilation=[1, 1], groups=1} : f32[B, 4, 28, 28]"),
              "pad = 3 // 2 is 1 and keeps 28 x 28:\n%s", out);
    cr_expect(strstr(out, "conv2d %7, %8 {stride=[1, 1], pad=[2, 2], dilation=[1, 1], groups=1} : f32[B, 4, 28, 28]"),
              "pad = 5 // 2 is 2 and keeps 28 x 28:\n%s", out);
    cr_expect(strstr(out, ": f32[3136, 100]"), "17 // 4 + (-7 // 2) + (-7 %% 2) * 100 + 7 %% -2 * 10 + 10 is 100:\n%s",
              out);
    free(out);
}

/* for loops over range() and a list, with names from the index (loops.mdl). */
Test(dump_ir, for_loops_expand_with_indexed_names) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, MLC_TEST_DIR "/data/loops.mdl", "--dump-ir=after:lower", NULL), 0, "%s", out);
    static const char *const want[] = {
        "param \"layer0.conv1.weight\" {init=uniform, init_a=-0.288675135, init_b=0.288675135} : f32[4, 8, 3, 3]",
        "param \"layer1.conv1.weight\" {init=uniform, init_a=-0.23570226, init_b=0.23570226} : f32[4, 12, 3, 3]",
        "param \"layer2.conv1.weight\" {init=uniform, init_a=-0.204124145, init_b=0.204124145} : f32[4, 16, 3, 3]",
        "concat %43, %60 {axis=1} : f32[B, 20, 28, 28]",
        "param \"conv1.weight\" {init=uniform, init_a=-0.182574186, init_b=0.182574186} : f32[16, 20, 3, 3]",
        "param \"conv2.weight\" {init=uniform, init_a=-0.204124145, init_b=0.204124145} : f32[32, 16, 3, 3]",
        "param \"fc.weight\" {init=uniform, init_a=-0.433012702, init_b=0.433012702} : f32[32, 10]",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(out, want[i]), "no %s in:\n%s", want[i], out);
    cr_expect_null(strstr(out, "layer3."), "range(3) runs 0, 1, 2");
    free(out);
}

/* Parameter shapes from block arguments and expressions; top-level names (a constant, a
 * shared parameter) read inside blocks (scoping.mdl). */
Test(dump_ir, param_shapes_and_top_level_names_in_blocks) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, MLC_TEST_DIR "/data/scoping.mdl", "--dump-ir=after:lower", NULL), 0, "%s", out);
    char *train = strstr(out, "(train step)"), *eval = train ? strstr(train, "(eval)") : NULL;
    cr_assert(train && eval, "%s", out);
    *eval = 0; /* the train graph alone */
    cr_expect(strstr(train, "param \"scaled1.g\" {init=constant, init_a=0.5} : f32[1, 8, 1, 1]"), "%s", train);
    cr_expect(strstr(train, "param \"v\" {init=constant, init_a=1} : f32[5, 2]"), "%s", train);
    /* both calls of proj read the one top-level parameter */
    int reads = 0;
    for (const char *p = train; (p = strstr(p, "matmul %0, %2 ")); p++) reads++;
    cr_expect_eq(reads, 2, "%s", train);
    cr_expect_null(strstr(train, "proj1."), "proj creates no parameter of its own");
    free(out);
}

/* Layers a block's default argument creates belong to the call's scope, explicit or
 * counted (default_scope.mdl); they once had no prefix at all ("(null)dense1.weight"). */
Test(dump_ir, layers_in_defaults_take_the_call_scope) {
    char *out = NULL;
    cr_assert_eq(mlc(&out, MLC_TEST_DIR "/data/default_scope.mdl", "--dump-ir=after:lower", NULL), 0, "%s", out);
    static const char *const want[] = {"param \"q.dense1.weight\"", "param \"q.d.bias\"", "param \"f1.dense1.weight\"",
                                       "param \"f1.d.bias\""};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(out, want[i]), "no %s in:\n%s", want[i], out);
    cr_expect_null(strstr(out, "(null)"), "%s", out);
    free(out);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

/* --dump-ir=dot is one Graphviz document (the README pipes it into `dot -Tsvg`): one
 * digraph, the graphs as clusters, fused groups as dashed clusters, .mdl lines on nodes;
 * dot:train / dot:eval / dot:forward draw one graph or the forward part alone. When
 * Graphviz is installed (.ci/setup installs it), it must accept every form. */
Test(dump_ir, dot_is_one_valid_document) {
    static const struct {
        const char *arg;
        int train, eval, updates;
    } cases[] = {
        {"--dump-ir=dot", 1, 1, 1},
        {"--dump-ir=dot:train", 1, 0, 1},
        {"--dump-ir=dot:eval", 0, 1, 0},
        {"--dump-ir=dot:forward", 1, 0, 0},
    };
    const char *lenet = MLC_SOURCE_ROOT "/samples/lenet.mdl";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        cr_assert_eq(mlc(&out, lenet, cases[i].arg, NULL), 0, "%s: %s", cases[i].arg, out);
        cr_expect_eq(count(out, "digraph "), 1, "%s: one digraph", cases[i].arg);
        cr_expect_eq(count(out, "subgraph cluster_t {"), cases[i].train, "%s", cases[i].arg);
        cr_expect_eq(count(out, "subgraph cluster_e {"), cases[i].eval, "%s", cases[i].arg);
        cr_expect_eq(count(out, "adam_update") > 0, cases[i].updates, "%s: the optimizer's updates", cases[i].arg);
        cr_expect(strstr(out, "lenet.mdl:11"), "%s: nodes carry their .mdl line", cases[i].arg);
        if (cases[i].train)
            cr_expect(strstr(out, "label=\"fused: %8, the epilogue of %4\";"), "%s: conv1's bias + ReLU epilogue",
                      cases[i].arg);
        if (access("/usr/bin/dot", X_OK) == 0) {
            char *dir = ct_tmpdir("dot"), path[1024], *res = NULL;
            snprintf(path, sizeof path, "%s/g.dot", dir);
            FILE *f = fopen(path, "w");
            fputs(out, f);
            fclose(f);
            char *argv[] = {"/usr/bin/dot", "-Tsvg", "-o", "/dev/null", path, NULL};
            cr_expect_eq(ct_run(argv, &res), 0, "%s: Graphviz refuses it: %s", cases[i].arg, res);
            free(res);
            ct_rmdir(dir);
            free(dir);
        }
        free(out);
    }
}

/* Graphviz's verdict on a document: 0 when `dot -Tsvg` accepts it (or is not installed),
 * else its exit status, its messages in *msg. */
static int dot_refuses(const char *doc, char **msg) {
    *msg = NULL;
    if (access("/usr/bin/dot", X_OK) != 0) return 0;
    char *dir = ct_tmpdir("dot"), path[1024];
    snprintf(path, sizeof path, "%s/g.dot", dir);
    cr_assert_eq(ct_write_file(path, doc), 0);
    char *argv[] = {"/usr/bin/dot", "-Tsvg", "-o", "/dev/null", path, NULL};
    int st = ct_run(argv, msg);
    ct_rmdir(dir);
    free(dir);
    return st;
}

/* A .mdl path may hold anything: its name goes into the DOT labels and the text dump
 * escaped ('"' and '\' after a backslash), so Graphviz still reads the document and the
 * dump keeps one line per node; a model named like a DOT keyword (node) is quoted. */
Test(dump_ir, dumps_escape_the_file_name_and_quote_the_model_name) {
    char *text = ct_read_file(MLC_SOURCE_ROOT "/samples/mlp.mdl", NULL);
    cr_assert_not_null(text);
    char *dir = ct_tmpdir("dumpname"), path[1024], *out = NULL, *msg = NULL;
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/we\"ird\\x.mdl", dir);
    cr_assert_eq(ct_write_file(path, text), 0);
    cr_assert_eq(mlc(&out, path, "--dump-ir=dot", NULL), 0, "%s", out);
    cr_expect(strstr(out, "digraph \"mlp\" {\n"), "%.200s", out);
    cr_expect(strstr(out, "[label=\"%0 input image\\nf32[B, 784]\\nwe\\\"ird\\\\x.mdl:5\", "), "%.600s", out);
    cr_expect_eq(dot_refuses(out, &msg), 0, "Graphviz refuses it: %s", msg);
    free(msg);
    free(out);
    cr_assert_eq(mlc(&out, path, "--dump-ir=lower", NULL), 0, "%s", out);
    cr_expect(strstr(out, "\n  %0 = input \"image\" : f32[B, 784]  ; we\\\"ird\\\\x.mdl:5:7\n"), "%.400s", out);
    free(out);

    /* the same network as `model node` */
    char *renamed = ct_replace_first(text, "model mlp\n", "model node\n");
    cr_assert_not_null(renamed);
    snprintf(path, sizeof path, "%s/node.mdl", dir);
    cr_assert_eq(ct_write_file(path, renamed), 0);
    cr_assert_eq(mlc(&out, path, "--dump-ir=dot", NULL), 0, "%s", out);
    cr_expect(strstr(out, "digraph \"node\" {\n"), "%.200s", out);
    cr_expect_eq(dot_refuses(out, &msg), 0, "Graphviz refuses it: %s", msg);
    free(msg);
    free(out);
    free(renamed);
    free(text);
    ct_rmdir(dir);
    free(dir);
}
