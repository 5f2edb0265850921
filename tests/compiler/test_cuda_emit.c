/* test_cuda_emit.c - the CUDA target, checked without a GPU.
 *
 * For samples/mlp.mdl and tests/compiler/data/allops.mdl (every op kind: elementwise,
 * broadcasting, reductions over each axis position with and without keepdims, softmax,
 * reshape, matmul, one_hot, cross-entropy, max's argmax_mask, SGD with Nesterov momentum
 * and weight decay), tests/compiler/data/activations.mdl (the other elementwise ops, whose
 * C text takes the node's float attributes; Adam with weight decay; mse),
 * tests/compiler/data/layers.mdl (transpose, slice, pad, concat, both poolings with
 * padding, conv2d with stride, dilation, groups and the direct 1x1 path, batch_norm's
 * running statistics, dropout), tests/compiler/data/rows.mdl (reductions fused into
 * their readers' loops, two levels deep), tests/compiler/data/convepi.mdl (conv
 * epilogues: bias, activations, residual adds, folded batch norm), tests/compiler/data/
 * multiout.mdl (three outputs), samples/autoencoder.mdl (no label input),
 * tests/compiler/data/token_mlp.mdl, token_attn.mdl and token_merged.mdl (i32[B, T]
 * inputs, matmuls with batch axes: folded and strided-batched, a shared operand; layout
 * ops and reductions on B*T dimensions), tests/compiler/data/seqops.mdl (layer_norm,
 * rms_norm, embedding and their gradients, causal_mask fused into where) and
 * samples/lenet.mdl, resnet.mdl, resnet20_cifar.mdl and tests/compiler/data/attention.mdl
 * (fused attention: a kernel per node, launched with mlc_attn_grid):
 *   - structure (always runs): every kernel is launched exactly once and checked, every
 *     kernel and launch is preceded by its node comment, one cublasSgemm per matmul node
 *     (cublasSgemmStridedBatched for one with batch axes that do not fold into rows),
 *     the API has C linkage;
 *   - the kernels alone (emit_cuda_kernels) compile with NVRTC for compute_90, with an
 *     empty log (no warnings); the log is printed on failure;
 *   - the whole .cu compiles with `nvcc -c -arch=sm_90 -Werror all-warnings` (host side
 *     with -Wall -Wextra);
 *   - `mlc build --target cuda --cublaslt` links a trainer for lenet (not in sanitizer builds:
 *     the runtime library there is instrumented and nvcc links without the sanitizers);
 *   - the kernel library (runtime/kernels/cuda/) builds with nvcc for sm_80 and sm_90, each
 *     of its kernels for both, and a generated trainer (lenet) links against it;
 *   - --cuda-arch: the nvcc flags a list gives, the default without a visible GPU, the
 *     one-line errors, and mlp compiled by nvcc for sm_80, sm_89 and sm_90 at once;
 *   - attention's device functions run on the CPU (tests/compiler/gpu/attention_on_host.cpp,
 *     g++) and agree with the C kernels;
 *   - the Philox of runtime/kernels/mlc_philox.h built by nvcc as device code (also
 *     host-callable) draws the same bits as the runtime's mlc_rng_uniform, built by cc
 *     from the same header, so CUDA dropout masks are the C target's; likewise
 *     mlc_bf16.h's rounding, and --precision bf16 models (mlp, lenet, attention) round in
 *     their kernels and compile with NVRTC and nvcc.
 * The kernel section starts with mlc_philox.h, attention's block functions and the device template; the per-node
 * checks look at what follows it. Convolutions, poolings and batch-norm sums call the kernel library
 * (runtime/kernels/cuda/, mlc_kernels_cuda.h), which kernel_library_builds_and_links builds for sm_80 and sm_90.
 * The NVRTC and nvcc checks skip when the CUDA toolkit (/usr/local/cuda) is absent. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_emitters.h"
#include "diag.h"
#include "model.h"
#include "ops.h"
#include "kernels/mlc_bf16.h"
#include "rng.h"
#include "target.h"

#ifdef MLC_HAVE_NVRTC
#include <nvrtc.h>
#endif

#define CUDA_HOME "/usr/local/cuda"
#define NVCC CUDA_HOME "/bin/nvcc"

static const char *const models[] = {MLC_SOURCE_ROOT "/samples/mlp.mdl",
                                     MLC_TEST_DIR "/data/allops.mdl",
                                     MLC_TEST_DIR "/data/activations.mdl",
                                     MLC_TEST_DIR "/data/layers.mdl",
                                     MLC_SOURCE_ROOT "/samples/lenet.mdl",
                                     MLC_TEST_DIR "/data/rows.mdl",
                                     MLC_TEST_DIR "/data/convepi.mdl",
                                     MLC_TEST_DIR "/data/multiout.mdl",
                                     MLC_SOURCE_ROOT "/samples/autoencoder.mdl",
                                     MLC_TEST_DIR "/data/token_mlp.mdl",
                                     MLC_TEST_DIR "/data/token_attn.mdl",
                                     MLC_TEST_DIR "/data/token_merged.mdl",
                                     MLC_TEST_DIR "/data/seqops.mdl",
                                     MLC_SOURCE_ROOT "/samples/resnet.mdl",
                                     MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl",
                                     MLC_SOURCE_ROOT "/samples/vgg.mdl",
                                     MLC_SOURCE_ROOT "/samples/mobilenet.mdl",
                                     MLC_SOURCE_ROOT "/samples/densenet.mdl",
                                     MLC_SOURCE_ROOT "/samples/unet_ae.mdl",
                                     MLC_TEST_DIR "/data/convt.mdl",
                                     MLC_TEST_DIR "/data/conv1d.mdl",
                                     MLC_TEST_DIR "/data/tokens_cls.mdl",
                                     MLC_SOURCE_ROOT "/samples/vit.mdl",
                                     MLC_SOURCE_ROOT "/samples/gpt.mdl",
                                     MLC_TEST_DIR "/data/attention.mdl",
                                     MLC_TEST_DIR "/data/resample.mdl",
                                     MLC_TEST_DIR "/data/ema.mdl",
                                     MLC_TEST_DIR "/data/noparams.mdl",
                                     MLC_TEST_DIR "/data/onehot_view.mdl"};
enum { NMODELS = sizeof models / sizeof models[0] };
/* nvcc takes minutes over the ResNets' thousand kernels: they get tests of their own, so
 * criterion runs them beside the others; so do the breadth samples and layer tests after
 * them (BREADTH..: vgg, mobilenet, densenet, unet_ae, convt, conv1d, tokens_cls, vit, gpt). */
enum {
    NSMALL = 13,
    RESNET = 13,
    RESNET20 = 14,
    BREADTH = 15,
    ATTENTION = 24,
    RESAMPLE = 25 /* argmax, bilinear */,
    EMA = 26,
    NOPARAMS = 27 /* no parameters; an output that is an input */,
    ONEHOT_VIEW = 28 /* one_hot read through a merging reshape: stored */
};

static int have_nvcc(void) { return access(NVCC, X_OK) == 0; }

/* ---- compiling a .mdl ---- */

typedef struct Compiled {
    Arena arena;
    SrcFile *src;
    ModelIR *m;
} Compiled;

/* Compiles src (`path` names it in messages) with options o (for the CUDA target); c owns
 * src. */
static void compile_src_with(Compiled *c, SrcFile *src, const char *path, CompileOptions o) {
    memset(c, 0, sizeof *c);
    c->src = src;
    cr_assert_not_null(c->src, "cannot read %s", path);
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) cr_assert_fail("%s does not compile", path);
    Program *p = parse_program(&c->arena, c->src);
    DumpOptions dump = {0};
    o.target = TARGET_CUDA; /* the CUDA target's workspaces */
    c->m = compile_model_opts(&c->arena, p, &o, &dump);
    diag_jmp = NULL;
}

static void compile_src_algo(Compiled *c, SrcFile *src, const char *path, int tf32, int bf16, ConvAlgo algo) {
    compile_src_with(c, src, path, (CompileOptions){.tf32 = tf32, .bf16 = bf16, .conv_algo = algo});
}

static void compile_src_opts(Compiled *c, SrcFile *src, const char *path, int tf32, int bf16) {
    compile_src_algo(c, src, path, tf32, bf16, CONV_ALGO_AUTO);
}

static void compile_path_opts(Compiled *c, const char *path, int tf32, int bf16) {
    compile_src_opts(c, srcfile_read(path), path, tf32, bf16);
}

static void compile_path(Compiled *c, const char *path) { compile_path_opts(c, path, 0, 0); }

static void compiled_free(Compiled *c) {
    arena_free(&c->arena);
    srcfile_free(c->src);
}

/* What an emitter writes, read back from a temporary file (NUL-terminated; free() it). */
static char *read_back(FILE *f) {
    long len = ftell(f);
    cr_assert_geq(len, 0);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    cr_assert_eq(fread(text, 1, (size_t)len, f), (size_t)len);
    text[len] = 0;
    fclose(f);
    return text;
}

static char *capture_source(const ModelIR *m, const char *hdr_name) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    target_cuda.emit_source(m, f, hdr_name);
    return read_back(f);
}

static char *capture_kernels(const ModelIR *m) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    emit_cuda_kernels(m, f);
    return read_back(f);
}

/* What the emitter wrote after the device template: the per-node kernels and host code. */
#define DEVICE_END "/* ---- end of device helpers ---- */"
static const char *generated_part(const char *s) {
    const char *p = strstr(s, DEVICE_END);
    cr_assert_not_null(p, "no device template in the kernel section");
    return p + strlen(DEVICE_END);
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static int count_op(const Graph *g, Op op) {
    int n = 0;
    for (int i = 0; i < g->n; i++) n += g->nodes[i].op == op;
    return n;
}

/* Matmuls that run as one strided-batched GEMM: batch axes that do not fold into the rows
 * of a single GEMM (A batched and not transposed, B a matrix: batched_gemm.c). */
static int count_batched_matmuls(const Graph *g) {
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *m = &g->nodes[i];
        if (m->op != OP_matmul || m->shape.rank <= 2) continue;
        int fold = g->nodes[m->in[0]].shape.rank > 2 && g->nodes[m->in[1]].shape.rank == 2 && !attr_i(m, A_TRANS_A);
        n += !fold;
    }
    return n;
}

/* The line before the one containing position p. */
static const char *prev_line(const char *text, const char *p) {
    while (p > text && p[-1] != '\n') p--;
    if (p == text) return NULL;
    p--;
    while (p > text && p[-1] != '\n') p--;
    return p;
}

/* A fused group's comment lists its members under the root's comment. */
static int is_fused_member_comment(const char *line) {
    while (*line == ' ') line++;
    return !strncmp(line, "/*   fused: ", 12) || !strncmp(line, "/*   recomputed: ", 17);
}

/* Reductions whose group holds row reductions (the cross-entropy loss): a block per
 * output element, launched with mlc_blocks. */
static int per_block_groups(const Graph *g, const FusionPlan *fp) {
    int n = 0;
    for (int r = 0; r < g->n; r++) {
        if (fp->root[r] != r || op_of(&g->nodes[r])->kind != K_REDUCE) continue;
        int rows = 0;
        for (int m = 0; m < r; m++) rows += fp->root[m] == r && op_of(&g->nodes[m])->kind == K_REDUCE;
        n += rows > 0;
    }
    return n;
}

static int starts_with_node_comment(const char *line) {
    while (*line == ' ') line++;
    return !strncmp(line, "/* %", 4);
}

/* Whether the line at `line` holds `needle`. */
static int line_has(const char *line, const char *needle) {
    const char *end = strchr(line, '\n'), *at = strstr(line, needle);
    return at && (!end || at < end);
}

/* A line of a multi-tensor update's table: its struct, or its value at the launch. */
static int is_table_line(const char *line) {
    while (*line == ' ') line++;
    return *line == '{' || *line == '}' || !strncmp(line, "struct ", 7) || line_has(line, "tab") ||
           line_has(line, "long end[") || line_has(line, "float *");
}

/* The tensors the multi-tensor updates of src cover beyond one each (their kernels stand
 * for that many update nodes more): the sum of N - 1 over "N tensors, one launch". */
static int merged_updates(const char *src) {
    int extra = 0;
    for (const char *p = strstr(src, " tensors, one launch"); p; p = strstr(p + 1, " tensors, one launch")) {
        const char *d = p;
        while (d[-1] >= '0' && d[-1] <= '9') d--;
        extra += atoi(d) - 1;
    }
    return extra;
}

/* ---- structure ---- */

Test(cuda_emit, structure) {
    for (int k = 0; k < NMODELS; k++) {
        Compiled c;
        compile_path(&c, models[k]);
        char *src_all = capture_source(c.m, "model.h");
        char *kern_all = capture_kernels(c.m);
        cr_assert(strstr(src_all, kern_all + strlen("/* ---- kernels ---- */")) != NULL,
                  "%s: the kernels-only text is not the .cu's kernel section", models[k]);
        const char *src = generated_part(src_all), *kern = generated_part(kern_all);

        int nk = count(kern, "__global__ void ");
        cr_assert_gt(nk, 0, "%s: no kernels", models[k]);
        cr_assert_eq(count(src, "__global__ void "), nk, "%s: the kernel section differs from the file's", models[k]);
        int nblock = per_block_groups(c.m->train, &c.m->train_fuse) + per_block_groups(c.m->eval, &c.m->eval_fuse) +
                     per_block_groups(c.m->eval_loss, &c.m->eval_loss_fuse);
        cr_assert_eq(count(src, "<<<mlc_blocks("), nblock, "%s: %d reductions over rows, %d launches of a block each",
                     models[k], nblock, count(src, "<<<mlc_blocks("));
        /* attention's kernels: a block per MLC_ATTN_THREADS rows of a head, one per node */
        int nattn = 0;
        for (Op op = OP_attention; op <= OP_attention_bwd_kv; op++)
            nattn += count_op(c.m->train, op) + count_op(c.m->eval, op) + count_op(c.m->eval_loss, op);
        cr_assert_eq(count(src, "<<<mlc_attn_grid("), nattn, "%s: %d attention nodes, %d launches", models[k], nattn,
                     count(src, "<<<mlc_attn_grid("));
        cr_assert_eq(count(src, "<<<mlc_grid(") + nblock + nattn, nk, "%s: %d kernels, %d launches", models[k], nk,
                     count(src, "<<<mlc_grid(") + nblock + nattn);
        if (c.m->cls_output >= 0 && strstr(models[k], "samples/"))
            cr_assert_geq(nblock, 1, "%s: the cross-entropy loss is not a block-per-row kernel", models[k]);
        /* the kernel library's launchers check their own launches */
        int nbn = count_op(c.m->train, OP_bn_stats) + count_op(c.m->train, OP_bn_param_grads);
        cr_assert_eq(count(src, "MLC_LAUNCH_CHECK(stream);"), nk, "%s: a launch is unchecked", models[k]);

        /* each kernel: its own name, launched once, preceded by its node comment */
        for (const char *p = strstr(src, "__global__ void "); p; p = strstr(p + 1, "__global__ void ")) {
            char name[64];
            cr_assert_eq(sscanf(p, "__global__ void %63[A-Za-z0-9_]", name), 1);
            char def[80], launch[80];
            snprintf(def, sizeof def, "void %s(", name);
            snprintf(launch, sizeof launch, "%s<<<", name);
            cr_assert_eq(count(src, def), 1, "%s: kernel %s defined more than once", models[k], name);
            cr_assert_eq(count(src, launch), 1, "%s: kernel %s launched %d times", models[k], name, count(src, launch));
            const char *line = prev_line(src, p);
            while (line && (is_fused_member_comment(line) || is_table_line(line))) line = prev_line(src, line);
            cr_assert(line && starts_with_node_comment(line), "%s: kernel %s has no node comment", models[k], name);
            const char *l = strstr(src, launch);
            line = prev_line(src, l);
            while (line && (is_fused_member_comment(line) || is_table_line(line))) line = prev_line(src, line);
            /* Adam's launch sits in a block after its scalars; the comment opens that block */
            while (line && !starts_with_node_comment(line) && strstr(line, "const float")) line = prev_line(src, line);
            if (line && !starts_with_node_comment(line) && strstr(line, "{")) line = prev_line(src, line);
            cr_assert(line && starts_with_node_comment(line), "%s: the launch of %s has no node comment", models[k],
                      name);
        }

        /* GEMMs through cuBLAS, one call each (a strided-batched one with batch axes), each
         * checked */
        int nmm =
            count_op(c.m->train, OP_matmul) + count_op(c.m->eval, OP_matmul) + count_op(c.m->eval_loss, OP_matmul);
        int nbmm = count_batched_matmuls(c.m->train) + count_batched_matmuls(c.m->eval) +
                   count_batched_matmuls(c.m->eval_loss);
        cr_assert_eq(count(src, "cublasSgemmStridedBatched("), nbmm, "%s: %d batched matmuls, %d strided-batched calls",
                     models[k], nbmm, count(src, "cublasSgemmStridedBatched("));
        cr_assert_eq(count(src, "cublasSgemm(") + nbmm, nmm, "%s: %d matmuls, %d cublasSgemm calls", models[k], nmm,
                     count(src, "cublasSgemm("));
        cr_assert_eq(count(src, "MLC_CUBLAS_CHECK(cublasSgemm(") +
                         count(src, "MLC_CUBLAS_CHECK(cublasSgemmStridedBatched("),
                     nmm);
        if (strstr(models[k], "token_attn")) cr_assert_gt(nbmm, 0, "token_attn.mdl has no strided-batched GEMM");
        /* every runtime call checked */
        cr_assert_eq(count(src, "cudaMemcpyAsync("), count(src, "MLC_CUDA_CHECK(cudaMemcpyAsync("));
        /* C linkage for what the C runtime and trainer reference; no atomics */
        cr_assert(strstr(src, "extern \"C\" {") != NULL);
        cr_assert(strstr(src, "const mlc_model_api ") != NULL);
        cr_assert(strstr(src, ".target = \"cuda\"") != NULL);
        cr_assert_null(strstr(src_all, "atomic"), "%s: atomics make results depend on scheduling", models[k]);
        /* convolutions and poolings: one launcher call per node */
        // clang-format off
        static const struct { Op op; const char *fn; } calls[] = {
            {OP_conv2d, "mlc_cuda_conv2d_fwd("},         {OP_conv2d_bwd_data, "mlc_cuda_conv2d_bwd_data("},
            {OP_conv2d_bwd_filter, "mlc_cuda_conv2d_bwd_filter("}, {OP_max_pool2d, "mlc_cuda_maxpool2d_fwd("},
            {OP_maxpool2d_bwd, "mlc_cuda_maxpool2d_bwd("}, {OP_avg_pool2d, "mlc_cuda_avgpool2d_fwd("},
            {OP_avgpool2d_bwd, "mlc_cuda_avgpool2d_bwd("},
            /* bn_stats: the batch-norm sums without dy, statistics or eps */
            {OP_bn_stats, ", NULL, NULL, 0.0f, (double *)ws, "},
        };
        // clang-format on
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
            int nodes = count_op(c.m->train, calls[i].op) + count_op(c.m->eval, calls[i].op) +
                        count_op(c.m->eval_loss, calls[i].op);
            cr_assert_eq(count(src, calls[i].fn), nodes, "%s: %d %s nodes, %d calls", models[k], nodes,
                         op_info[calls[i].op].name, count(src, calls[i].fn));
        }
        cr_assert_eq(count(src, "mlc_cuda_bn_sums(stream, "), nbn, "%s: %d batch-norm sums, %d calls", models[k], nbn,
                     count(src, "mlc_cuda_bn_sums(stream, "));

        free(src_all);
        free(kern_all);
        compiled_free(&c);
    }
}

/* An epilogue (fuse.c) is launched right after its GEMM or conv: in the host code the
 * op's call is followed by the epilogue group's comment and launch, with no other call
 * between them. */
Test(cuda_emit, epilogues_follow_their_op) {
    for (int k = 0; k < NMODELS; k++) {
        Compiled c;
        compile_path(&c, models[k]);
        char *src_all = capture_source(c.m, "model.h");
        const char *fwd = strstr(src_all, "static void forward_launch(");
        cr_assert_not_null(fwd);
        const Graph *g = c.m->eval;
        const FusionPlan *fp = &c.m->eval_fuse;
        for (int id = 0; id < g->n; id++) {
            int ep = fp->epilogue[id];
            if (ep < 0) continue;
            char op[64], group[64];
            snprintf(op, sizeof op, "/* %%%d = %s ", id, op_info[g->nodes[id].op].name);
            snprintf(group, sizeof group, "/* %%%d = %s ", ep, op_info[g->nodes[ep].op].name);
            const char *at = strstr(fwd, op);
            cr_assert_not_null(at, "%s: no code for %%%d", models[k], id);
            Op o = g->nodes[id].op;
            const char *call = strstr(at, o == OP_conv2d            ? "mlc_cuda_conv2d_fwd("
                                          : o == OP_conv2d_bwd_data ? "mlc_cuda_conv2d_bwd_data(" /* conv_transpose2d */
                                                                    : "cublasSgemm(");
            cr_assert_not_null(call, "%s: %%%d's call is missing", models[k], id);
            const char *next = strstr(call + 1, "\n    /* %");
            cr_assert_not_null(next, "%s: nothing follows %%%d", models[k], id);
            cr_expect_eq(strncmp(next + 5, group, strlen(group)), 0, "%s: %%%d is not followed by its epilogue %%%d",
                         models[k], id, ep);
            const char *launch = strstr(next, "<<<"), *other = strstr(next, "mlc_cuda_");
            cr_expect(launch && (!other || launch < other), "%s: the epilogue of %%%d is not launched next", models[k],
                      id);
        }
        free(src_all);
        compiled_free(&c);
    }
}

/* The kernel counts are part of what the target promises to look like: one kernel per
 * elementwise op, expand, reduction and special op or update, except convolutions and
 * poolings, which call the device template's launchers. */
static int is_launcher_op(Op op) {
    return op == OP_conv2d || op == OP_conv2d_bwd_data || op == OP_conv2d_bwd_filter || op == OP_max_pool2d ||
           op == OP_maxpool2d_bwd || op == OP_avg_pool2d || op == OP_avgpool2d_bwd || op == OP_bn_stats ||
           op == OP_bn_param_grads;
}

/* Optimizer updates alike (one op, the same attributes), one after another, are one
 * kernel over a table of their tensors, at most 64 a launch; updates that alternate with
 * others keep their order and their kernels. */
Test(cuda_emit, updates_alike_share_a_launch) {
    static const struct {
        const char *path;
        const char *launches; /* the "N tensors, one launch" comments, in order */
        int singles;          /* update kernels of one tensor */
    } cases[] = {
        {MLC_SOURCE_ROOT "/samples/mlp.mdl", "6", 0},
        {MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl", "64", 1}, /* 65 parameters: 64, then one */
        {MLC_TEST_DIR "/data/ema.mdl", "", 8},                    /* sgd and param_ema alternate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Compiled c;
        compile_path(&c, cases[i].path);
        char *src = capture_source(c.m, "model.h");
        const char *upd = strstr(src, "static void update_launch(");
        cr_assert_not_null(upd);
        const char *end = strstr(upd, "\n}\n");
        char seen[256] = "";
        int single = 0;
        for (const char *p = strstr(upd, "<<<"); p && p < end; p = strstr(p + 1, "<<<")) {
            const char *line = prev_line(upd, p), *t = strstr(line, " tensors, one launch");
            for (int up = 0; up < 6 && line && !(t && t < p); up++) /* the block's comment, above the table */
                line = prev_line(upd, line), t = line ? strstr(line, " tensors, one launch") : NULL;
            if (t && t < p) {
                const char *d = t;
                while (d[-1] >= '0' && d[-1] <= '9') d--;
                snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%.*s", *seen ? "," : "", (int)(t - d), d);
            } else {
                single++;
            }
        }
        cr_expect_str_eq(seen, cases[i].launches, "%s: multi-tensor launches %s, expected %s", cases[i].path, seen,
                         cases[i].launches);
        cr_expect_eq(single, cases[i].singles, "%s: %d single-tensor update launches, expected %d", cases[i].path,
                     single, cases[i].singles);
        free(src);
        compiled_free(&c);
    }
}

/* --tf32 sets the cuBLAS handle's math mode when the model is created, and nothing else;
 * without it the GEMMs stay in full FP32 (cuBLAS's default). */
Test(cuda_emit, tf32_math_mode) {
    for (int tf32 = 0; tf32 < 2; tf32++) {
        Compiled c;
        compile_path_opts(&c, MLC_SOURCE_ROOT "/samples/lenet.mdl", tf32, 0);
        char *src = capture_source(c.m, "model.h");
        int n = count(src, "cublasSetMathMode(self->cublas, CUBLAS_TF32_TENSOR_OP_MATH)");
        cr_assert_eq(n, tf32, "--tf32 %s: %d calls setting the TF32 math mode", tf32 ? "on" : "off", n);
        free(src);
        compiled_free(&c);
    }
}

Test(cuda_emit, kernel_counts) {
    for (int k = 0; k < NMODELS; k++) {
        Compiled c;
        compile_path(&c, models[k]);
        int expect = 0;
        const Graph *gs[3] = {c.m->train, c.m->eval, c.m->eval_loss};
        const FusionPlan *fps[3] = {&c.m->train_fuse, &c.m->eval_fuse, &c.m->eval_loss_fuse};
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < gs[j]->n; i++) {
                const Node *n = &gs[j]->nodes[i];
                if (fps[j]->root[i] != i) continue; /* fused into a later node's kernel */
                OpKind kind = op_of(n)->kind;
                expect += (kind == K_EWISE || kind == K_REDUCE || kind == K_SPECIAL || kind == K_UPDATE ||
                           n->op == OP_expand) &&
                          !is_launcher_op(n->op);
            }
        char *kern = capture_kernels(c.m);
        int nk = count(generated_part(kern), "__global__ void ");
        char *src = capture_source(c.m, "model.h");
        expect -= merged_updates(src);
        free(src);
        cr_assert_eq(nk, expect, "%s: %d kernels, expected %d", models[k], nk, expect);
        char tail[64];
        snprintf(tail, sizeof tail, "end of kernels (%d)", nk);
        cr_assert(strstr(kern, tail) != NULL, "%s: the kernel section's count is not %d", models[k], nk);
        free(kern);
        compiled_free(&c);
    }
}

/* ---- NVRTC: the kernels alone ---- */

#ifdef MLC_HAVE_NVRTC
/* m's kernels alone compile with NVRTC, without a warning (path: what m came from). */
static void nvrtc_check(const ModelIR *m, const char *path) {
    char *kern = capture_kernels(m);
#ifdef MLC_SANITIZED
    /* NVRTC compiles the kernels, not mlc: the plain build's run covers that; here the
     * emitter alone runs, instrumented */
    (void)path;
    free(kern);
    return;
#endif
    nvrtcProgram prog;
    cr_assert_eq(nvrtcCreateProgram(&prog, kern, "kernels.cu", 0, NULL, NULL), NVRTC_SUCCESS);
    /* 177: "declared but never referenced": the kernels are static, and the host code
     * launching them is not part of this unit */
    const char *opts[] = {"--gpu-architecture=compute_90", "--std=c++17", "--diag-suppress=177"};
    nvrtcResult r = nvrtcCompileProgram(prog, 3, opts);
    size_t log_len = 0;
    nvrtcGetProgramLogSize(prog, &log_len);
    char *log = malloc(log_len + 1);
    nvrtcGetProgramLog(prog, log);
    log[log_len] = 0;
    if (r != NVRTC_SUCCESS || strlen(log) > 0) {
        fprintf(stderr, "---- %s: kernels ----\n%s\n---- NVRTC log ----\n%s\n", path, kern, log);
    }
    cr_expect_eq(r, NVRTC_SUCCESS, "%s: NVRTC: %s", path, nvrtcGetErrorString(r));
    cr_expect_eq(strlen(log), 0, "%s: NVRTC warnings (printed above)", path);
    if (r == NVRTC_SUCCESS) {
        size_t ptx_len = 0;
        nvrtcGetPTXSize(prog, &ptx_len);
        cr_expect_gt(ptx_len, 1, "%s: no PTX", path);
    }
    free(log);
    nvrtcDestroyProgram(&prog);
    free(kern);
}

static void nvrtc_compile(const char *path, int bf16) {
    Compiled c;
    compile_path_opts(&c, path, 0, bf16);
    nvrtc_check(c.m, path);
    compiled_free(&c);
}
#endif

#ifdef MLC_HAVE_NVRTC
/* The PTX of m's kernels, by NVRTC for compute_90 (free() it). */
static char *kernels_ptx(const ModelIR *m) {
    char *kern = capture_kernels(m);
    nvrtcProgram prog;
    cr_assert_eq(nvrtcCreateProgram(&prog, kern, "kernels.cu", 0, NULL, NULL), NVRTC_SUCCESS);
    const char *opts[] = {"--gpu-architecture=compute_90", "--std=c++17", "--diag-suppress=177"};
    cr_assert_eq(nvrtcCompileProgram(prog, 3, opts), NVRTC_SUCCESS);
    size_t n = 0;
    nvrtcGetPTXSize(prog, &n);
    char *ptx = malloc(n + 1);
    nvrtcGetPTX(prog, ptx);
    ptx[n] = 0;
    nvrtcDestroyProgram(&prog);
    free(kern);
    return ptx;
}
#endif

/* Elementwise groups whose last loop comes in runs of 4 give a thread 4 neighbours (a
 * quarter of the grid) and, compiled, read and write them as 16-byte vectors; a last loop
 * of 10 keeps a thread per element. */
Test(cuda_emit, elementwise_runs_of_4_are_vectors) {
    Compiled c;
    compile_path(&c, MLC_SOURCE_ROOT "/samples/mlp.mdl");
    char *src = capture_source(c.m, "model.h");
    cr_assert(strstr(src, "_relu<<<mlc_grid((B*256) / 4), MLC_BLOCK, 0, stream>>>(B, t3, p_fc1_bias);") != NULL,
              "fc1's bias and relu: not a thread per 4 elements");
    cr_assert(strstr(src, "_add<<<mlc_grid(B*10), MLC_BLOCK, 0, stream>>>(B, t13, p_fc3_bias);") != NULL,
              "fc3's bias over 10 columns: not a thread per element");
    cr_assert_geq(count(src, "float v_[4];"), 3);
    free(src);
#ifdef MLC_HAVE_NVRTC
    char *ptx = kernels_ptx(c.m);
    /* the first relu kernel: its loads and stores of the activations are vectors */
    const char *k = strstr(ptx, "_relu"), *end = k ? strstr(k, "\n}\n") : NULL;
    cr_assert(k && end);
    char *body = strndup(k, (size_t)(end - k));
    cr_expect(strstr(body, "ld.global.v4.f32") && strstr(body, "st.global.v4.f32"),
              "the relu kernel's accesses are not float4 vectors in its PTX");
    free(body);
    free(ptx);
#endif
    compiled_free(&c);
}

/* The same under --precision bf16, where nearly every group rounds (mlc_round_bf16, which
 * does not branch, so it keeps the neighbours a thread's), and a group with a bfloat16
 * buffer gives a thread 8 of them: fc1's bias, relu and rounding reads the GEMM's floats
 * and the bias as two 16-byte vectors each, and stores the relu (kept for the backward,
 * in place of the GEMM's output: a member stored after the loop) as two 16-byte vectors
 * and its 8 bfloat16s as one. */
Test(cuda_emit, bf16_runs_of_8_are_vectors) {
    Compiled c;
    compile_path_opts(&c, MLC_SOURCE_ROOT "/samples/mlp.mdl", 0, 1);
    char *src = capture_source(c.m, "model.h");
    const char *k = strstr(src, "(const long B, float *t5, mlc_bf16 *t11, const float *p_fc1_bias) {");
    cr_assert(k, "no kernel of fc1's bias, relu and rounding:\n%s", src);
    cr_assert(strstr(k, "float v_[8];") && strstr(k, "float v_[8];") < strstr(k, "\n}\n"),
              "fc1's rounding kernel: not a thread per 8 elements");
    free(src);
#ifdef MLC_HAVE_NVRTC
    char *ptx = kernels_ptx(c.m);
    const char *e = strstr(ptx, "lPfP8mlc_bf16PKf("), *end = e ? strstr(e, "\n}\n") : NULL;
    cr_assert(e && end, "no kernel (B, float *, mlc_bf16 *, const float *) in the PTX");
    char *body = strndup(e, (size_t)(end - e));
    cr_expect(count(body, "ld.global.v4") == 4 && count(body, "st.global.v4.f32") == 2 &&
                  count(body, "st.global.v4.u32") == 1 && !strstr(body, "ld.global.f32") &&
                  !strstr(body, "st.global.f32") && !strstr(body, "u16"),
              "fc1's rounding kernel: not all its accesses are vectors in its PTX:\n%s", body);
    free(body);
    free(ptx);
#endif
    compiled_free(&c);
}

Test(cuda_emit, kernels_compile_with_nvrtc) {
#ifndef MLC_HAVE_NVRTC
    cr_skip_test("built without NVRTC (no CUDA toolkit at " CUDA_HOME ")");
#else
    for (int k = 0; k < NMODELS; k++) nvrtc_compile(models[k], 0);
#endif
}

/* ---- nvcc: the whole file ---- */

static char *make_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    char *d = malloc(4096);
    snprintf(d, 4096, "%s/mlc-cuda-test-XXXXXX", t && *t ? t : "/tmp");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static void write_sources(const ModelIR *m, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.cu", dir, m->spec.name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "%s.h", m->spec.name);
    target_cuda.emit_source(m, f, hdr);
    cr_assert_eq(fclose(f), 0);
    snprintf(path, sizeof path, "%s/%s.h", dir, m->spec.name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    emit_header(m, f);
    cr_assert_eq(fclose(f), 0);
}

static void remove_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static int nvcc_bf16; /* --precision bf16 for the models nvcc_compile compiles */

/* m's whole .cu and its header, written to a temp dir, compile with nvcc -Werror (what: the
 * .mdl m came from, for messages); the sources stay there when they do not. */
static void nvcc_check(const ModelIR *m, const char *what) {
    char *dir = make_tmpdir();
    write_sources(m, dir);
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             NVCC
             " -c -arch=sm_90 -std=c++17 -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror"
             " -I'%s/runtime' -I'%s' '%s/%s.cu' -o '%s/%s.o' 2>&1",
             MLC_SOURCE_ROOT, dir, dir, m->spec.name, dir, m->spec.name);
    int st = system(cmd);
    cr_expect_eq(st, 0, "%s: nvcc failed (exit %d): %s", what, st, cmd);
    if (st == 0) remove_tree(dir);
    else fprintf(stderr, "%s: sources kept in %s\n", what, dir);
    free(dir);
}

static void nvcc_compile(int from, int to) {
#ifdef MLC_SANITIZED
    /* nvcc compiles the generated file, not mlc: the unsanitized run already covers it,
     * and the ResNet files take minutes each. */
    cr_skip_test("sanitizer build: the whole-file nvcc compiles run in the plain build");
#endif
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    for (int k = from; k < to; k++) {
        Compiled c;
        compile_path_opts(&c, models[k], 0, nvcc_bf16);
        nvcc_check(c.m, models[k]);
        compiled_free(&c);
    }
}

Test(cuda_emit, whole_file_compiles_with_nvcc, .timeout = 600) { nvcc_compile(0, NSMALL); }
Test(cuda_emit, attention_compiles_with_nvcc, .timeout = 600) { nvcc_compile(ATTENTION, ATTENTION + 1); }
Test(cuda_emit, resample_compiles_with_nvcc, .timeout = 600) {
    nvcc_compile(RESAMPLE, ONEHOT_VIEW + 1);
} /* and train { ema }, no parameters, one_hot through a view */

/* The attention block functions (templates/cuda_attention.cuh) run on the CPU with the
 * CUDA built-ins stood in for, against the C kernels: tests/compiler/gpu/
 * attention_on_host.cpp, built by g++ and run here. Without a GPU this is what checks the
 * device code's arithmetic and its tiling, not only that it compiles. */
Test(cuda_emit, attention_device_code_runs_on_the_host, .timeout = 300) {
#ifdef MLC_SANITIZED
    cr_skip_test("sanitizer build: libmlckernels.a is instrumented; the plain build runs this");
#endif
    if (access("/usr/bin/g++", X_OK) != 0) cr_skip_test("no g++");
    char *dir = make_tmpdir();
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "g++ -std=c++17 -O1 -pthread -Wall -Wno-unknown-pragmas -I'%s/runtime/kernels' -I'%s/templates'"
             " -I/usr/include/x86_64-linux-gnu/openblas-pthread '%s/tests/compiler/gpu/attention_on_host.cpp'"
             " -L'%s' -lmlckernels -lopenblas -fopenmp -lm -o '%s/attention_on_host' 2>&1 && '%s/attention_on_host'",
             MLC_SOURCE_ROOT, MLC_SOURCE_ROOT, MLC_SOURCE_ROOT, MLC_KERNELS_LIB_DIR, dir, dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[8192];
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = 0;
    int st = pclose(p);
    cr_expect_eq(st, 0, "the device functions differ from the C kernels (exit %d):\n%s", st, out);
    cr_expect_not_null(strstr(out, "\nok\n"), "%s", out);
    remove_tree(dir);
    free(dir);
}
Test(cuda_emit, resnet_compiles_with_nvcc, .timeout = 600) { nvcc_compile(RESNET, RESNET + 1); }
Test(cuda_emit, resnet20_cifar_compiles_with_nvcc, .timeout = 600) { nvcc_compile(RESNET20, RESNET20 + 1); }
Test(cuda_emit, breadth_samples_compile_with_nvcc, .timeout = 600) { nvcc_compile(BREADTH, ATTENTION); }

/* ---- --precision bf16 ---- */

/* The same round_bf16 nodes as on the C target (the pass is the middle end's), each a
 * call to mlc_round_bf16 in a kernel; the kernels compile with NVRTC and the whole file
 * with nvcc, for a dense, a convolutional and an attention model. Every GEMM and
 * convolution reads rounded operands, so each runs on bf16 tensor cores (mlc_gemm, the
 * conv launchers' last argument: MLC_BF16_VALUES, or MLC_BF16_STORED where its operands
 * are stored as bfloat16); without --precision bf16 none does. */
Test(cuda_emit, bf16_rounds_in_kernels_that_compile, .timeout = 600) {
    const char *const paths[] = {models[0], models[4], models[ATTENTION]};
    for (int k = 0; k < 3; k++) {
        Compiled c;
        compile_path_opts(&c, paths[k], 0, 1);
        int nodes = 0;
        for (int i = 0; i < c.m->train->n; i++) nodes += c.m->train->nodes[i].op == OP_round_bf16;
        cr_assert_gt(nodes, 0, "%s: no round_bf16 in the train step", paths[k]);
        char *kern = capture_kernels(c.m);
        cr_assert_geq(count(generated_part(kern), "mlc_round_bf16("), 1, "%s: no kernel rounds", paths[k]);
        free(kern);
        int products = 0;
        const Graph *gs[3] = {c.m->train, c.m->eval, c.m->eval_loss};
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < gs[j]->n; i++) {
                Op o = gs[j]->nodes[i].op;
                products += o == OP_matmul || o == OP_conv2d || o == OP_conv2d_bwd_data || o == OP_conv2d_bwd_filter;
            }
        char *src = capture_source(c.m, "model.h");
        int on_bf16 =
            count(src, "mlc_gemm(self->cublas, MLC_BF16_") + count(src, "mlc_gemm_strided(self->cublas, MLC_BF16_");
        for (const char *p = src; (p = strstr(p, "mlc_cuda_conv2d_")); p++) {
            const char *end = strchr(p, ')');
            on_bf16 += !strncmp(end - 17, ", MLC_BF16_VALUES)", 18) || !strncmp(end - 17, ", MLC_BF16_STORED)", 18);
        }
        cr_assert_eq(on_bf16, products, "%s: %d of %d products on bf16 tensor cores", paths[k], on_bf16, products);
        cr_assert_eq(count(src, "cublasSgemm"), 0, "%s: an FP32 SGEMM under --precision bf16", paths[k]);
        free(src);
        compiled_free(&c);
        compile_path(&c, paths[k]);
        src = capture_source(c.m, "model.h");
        cr_assert_eq(count(src, "mlc_gemm("), 0, "%s: bf16 GEMMs without --precision bf16", paths[k]);
        free(src);
        compiled_free(&c);
#ifdef MLC_HAVE_NVRTC
        nvrtc_compile(paths[k], 1);
#endif
    }
    nvcc_bf16 = 1;
    nvcc_compile(0, 1);
    nvcc_compile(4, 5);
    nvcc_compile(ATTENTION, ATTENTION + 1);
    nvcc_bf16 = 0;
}

/* bf16 storage (compiler/targets/cuda/bf16_storage.c), checked on the plans of a dense, a
 * convolutional, a residual and an attention model's three graphs, by rules written here
 * again: only round_bf16 tensors the caller does not read are stored as bfloat16; every
 * reader of one (through views) is a fused group's kernel, batch norm, attention, or a
 * product all of whose float operands are stored so; no buffer takes over one of the other element type in place;
 * the train step's arena is smaller than the same plan in floats. Each stored tensor is
 * declared as an mlc_bf16 array, and every product reads its operands as CUDA_R_16BF
 * (MLC_BF16_STORED). The C target stores nothing so. */
static void check_half_plan(const char *path, const Graph *g, const FusionPlan *fp, const MemPlan *p) {
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (p->inplace_of[id])
            cr_assert_eq(p->half[id], p->half[p->inplace_of[id] - 1], "%s: %%%d in place across element types", path,
                         id);
        if (p->half[id]) {
            cr_assert_eq(n->op, OP_round_bf16, "%s: %%%d (%s) stored as bf16", path, id, op_of(n)->name);
            cr_assert(p->has_buf[id]);
            for (int k = 0; k < g->nout; k++) cr_assert_neq(view_owner(g, g->outputs[k]), id, "%s: an output", path);
            cr_assert_neq(g->loss >= 0 ? view_owner(g, g->loss) : -1, id);
        }
        if (n->op == OP_reshape) continue;
        for (int k = 0; k < n->nin; k++) {
            int x = view_owner(g, n->in[k]);
            if (!p->half[x]) continue;
            const Node *root = &g->nodes[fp->root[id]];
            OpKind kind = op_of(root)->kind;
            int product = n->op == OP_matmul || n->op == OP_conv2d || n->op == OP_conv2d_bwd_data ||
                          n->op == OP_conv2d_bwd_filter;
            int bn = n->op == OP_bn_stats || n->op == OP_bn_bwd || (n->op == OP_bn_param_grads && k == 1);
            int attn = n->op == OP_attention || n->op == OP_attention_stats || n->op == OP_attention_bwd_q ||
                       n->op == OP_attention_bwd_kv;
            cr_assert(kind == K_EWISE || kind == K_REDUCE || kind == K_SHAPE || product || bn || attn,
                      "%s: %%%d (%s) reads the bf16 tensor %%%d", path, id, op_of(n)->name, x);
            for (int j = 0; product && j < n->nin; j++)
                cr_assert(g->nodes[n->in[j]].dtype != DT_F32 || p->half[view_owner(g, n->in[j])],
                          "%s: %%%d (%s) mixes bf16 and float operands", path, id, op_of(n)->name);
        }
    }
}

Test(cuda_emit, bf16_storage_halves_rounded_tensors) {
    const char *const paths[] = {models[0], models[4], MLC_SOURCE_ROOT "/samples/resnet.mdl", models[ATTENTION]};
    for (int k = 0; k < 4; k++) {
        Compiled c;
        compile_path_opts(&c, paths[k], 0, 1);
        const ModelIR *m = c.m;
        check_half_plan(paths[k], m->train, &m->train_fuse, &m->train_plan);
        check_half_plan(paths[k], m->eval, &m->eval_fuse, &m->eval_plan);
        check_half_plan(paths[k], m->eval_loss, &m->eval_loss_fuse, &m->eval_loss_plan);
        int halves = 0;
        for (int id = 0; id < m->train->n; id++) halves += m->train_plan.half[id];
        cr_assert_gt(halves, 0, "%s: nothing stored as bf16", paths[k]);
        MemPlan f = plan_memory_in_floats(c.m->arena, m->train, &m->train_fuse, TARGET_CUDA);
        cr_assert_lt(plan_floats(&m->train_plan, 64, 1), plan_floats(&f, 64, 1), "%s: the arena is no smaller",
                     paths[k]);
        char *src = capture_source(m, "model.h");
        cr_assert_geq(count(src, "mlc_bf16 *const t"), halves, "%s: %d tensors stored as bf16, %d declared", paths[k],
                      halves, count(src, "mlc_bf16 *const t"));
        cr_assert_eq(count(src, "MLC_BF16_VALUES"), 0, "%s: a product on float operands", paths[k]);
        cr_assert_gt(count(src, "MLC_BF16_STORED"), 0);
        free(src);
        compiled_free(&c);
    }
    Compiled c;
    compile_path_opts(&c, models[0], 0, 1);
    MemPlan p = plan_memory(c.m->arena, c.m->train, &c.m->train_fuse, TARGET_C);
    for (int id = 0; id < c.m->train->n; id++) cr_assert_eq(p.half[id], 0, "the C target stores %%%d as bf16", id);
    compiled_free(&c);
}

/* runtime/kernels/mlc_bf16.h built by nvcc (host-callable device code) rounds as the C
 * build of the same header does (tests/kernels/test_bf16.c checks that one against a
 * reference), over a sweep of bit patterns: NaNs, infinities, ties, overflow. */
/* Builds `source` (a main() over host-callable device code) with nvcc, extra flags
 * `flags`, in a temporary dir, runs it, and returns what it printed, opened for reading
 * (*dir: the dir, for remove_tree once read). */
static FILE *nvcc_host_run(const char *source, const char *flags, char **dir) {
    *dir = make_tmpdir();
    char path[4200], cmd[16384];
    snprintf(path, sizeof path, "%s/prog.cu", *dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(source, f);
    cr_assert_eq(fclose(f), 0);
    snprintf(cmd, sizeof cmd,
             NVCC " %s -std=c++17 -Werror all-warnings '%s' -o '%s/prog' 2>&1 && '%s/prog' > '%s/out.txt'", flags, path,
             *dir, *dir, *dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(path, sizeof path, "%s/out.txt", *dir);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    return f;
}

Test(cuda_emit, device_bf16_matches_c, .timeout = 300) {
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    char src[16384], *dir;
    snprintf(src, sizeof src,
             "#include <stdio.h>\n#include <string.h>\n%s\n"
             "__global__ void round_all(float *x, int n) {\n"
             "    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)\n"
             "        x[i] = mlc_round_bf16(x[i]);\n}\n"
             "int main(void) {\n    (void)round_all;\n"
             "    for (unsigned long long k = 0; k < 0x100000000ull; k += 65521) {\n"
             "        unsigned u = (unsigned)k, r;\n        float x;\n        memcpy(&x, &u, 4);\n"
             "        float y = mlc_round_bf16(x);\n        memcpy(&r, &y, 4);\n"
             "        printf(\"%%08x\\n\", r);\n    }\n    return 0;\n}\n",
             tmpl_mlc_bf16_h);
    FILE *f = nvcc_host_run(src, "-arch=sm_90", &dir);
    int n = 0;
    for (unsigned long long k = 0; k < 0x100000000ull; k += 65521) {
        unsigned got, u = (unsigned)k, want;
        float x;
        memcpy(&x, &u, 4);
        float y = mlc_round_bf16(x);
        memcpy(&want, &y, 4);
        cr_assert_eq(fscanf(f, "%x", &got), 1, "the nvcc build printed only %d values", n);
        cr_assert_eq(got, want, "0x%08x: nvcc build 0x%08x, C build 0x%08x", u, got, want);
        n++;
    }
    fclose(f);
    remove_tree(dir);
    free(dir);
}

/* ---- the device Philox against the runtime's, on the host ---- */

Test(cuda_emit, device_philox_matches_runtime, .timeout = 300) {
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    static const uint64_t seeds[] = {0, 1, 3, 0xdeadbeefcafef00dull};
    static const uint64_t streams[] = {0, 7, 8808227809812662035ull, 0xffffffffffffffffull};
    static const uint64_t steps[] = {0, 1, 2, 1000, 0xfffffffful};
    enum { PER = 37 };
    char src[16384], *dir;
    snprintf(src, sizeof src,
             "#include <stdio.h>\n#include <string.h>\n%s\n"
             "int main(void) {\n"
             "    static const unsigned long long seeds[] = {0, 1, 3, 0xdeadbeefcafef00dull};\n"
             "    static const unsigned long long streams[] = {0, 7, 8808227809812662035ull, 0xffffffffffffffffull};\n"
             "    static const unsigned long long steps[] = {0, 1, 2, 1000, 0xffffffffull};\n"
             "    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) for (int c = 0; c < 5; c++)\n"
             "        for (unsigned long long i = 0; i < %d; i++) {\n"
             "            float u = mlc_philox_uniform(seeds[a], streams[b], steps[c] << 32 | i);\n"
             "            unsigned bits;\n            memcpy(&bits, &u, 4);\n            printf(\"%%08x\\n\", bits);\n"
             "        }\n    return 0;\n}\n",
             tmpl_mlc_philox_h, PER);
    FILE *f = nvcc_host_run(src, "", &dir);
    int n = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 5; c++)
                for (uint64_t i = 0; i < PER; i++) {
                    unsigned got;
                    cr_assert_eq(fscanf(f, "%x", &got), 1, "the device Philox printed only %d values", n);
                    float u = mlc_rng_uniform(seeds[a], streams[b], steps[c] << 32 | i);
                    unsigned want;
                    memcpy(&want, &u, 4);
                    cr_assert_eq(got, want, "seed %llx stream %llx step %llu element %llu: device %08x, runtime %08x",
                                 (unsigned long long)seeds[a], (unsigned long long)streams[b],
                                 (unsigned long long)steps[c], (unsigned long long)i, got, want);
                    n++;
                }
    fclose(f);
    remove_tree(dir);
    free(dir);
}

/* ---- mlc build --target cuda ---- */

/* What a command printed (stdout and stderr; free() it) and its exit status. */
static char *run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 22, n = 0;
    char *out = malloc(cap);
    for (size_t k; (k = fread(out + n, 1, cap - 1 - n, p)) > 0;) n += k;
    out[n] = 0;
    *status = pclose(p);
    return out;
}

/* lenet's trainer, with --cublaslt (so also cuBLASLt's calls and library) and, where the
 * toolkit has cuDNN, --conv-algo cudnn (conv_cudnn.cu compiled with it, libcudnn linked);
 * nvcc compiles the kernel library with it, which takes most of a minute: one model is
 * enough */
Test(cuda_emit, mlc_build_links_a_trainer, .timeout = 600) {
#ifdef MLC_SANITIZED
    cr_skip_test("sanitizer build: libmlcrt is instrumented and nvcc links without the sanitizers");
#else
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    const int dnn = access(CUDA_HOME "/include/cudnn.h", R_OK) == 0;
    char *dir = make_tmpdir();
    char cmd[16384], bin[4200];
    snprintf(bin, sizeof bin, "%s/trainer", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' build '%s' -o '%s' --target cuda --cublaslt %s --cuda-arch sm_90 --cc " NVCC " 2>&1", MLC_EXE,
             models[4], bin, dnn ? "--conv-algo cudnn" : "");
    int st = system(cmd);
    cr_assert_eq(st, 0, "mlc build failed (exit %d): %s", st, cmd);
    cr_assert_eq(access(bin, X_OK), 0, "no trainer at %s", bin);
    if (dnn) { /* the trainer calls cuDNN's convolutions */
        snprintf(cmd, sizeof cmd, "nm -D '%s' 2>&1", bin);
        char *out = run_capture(cmd, &st);
        cr_expect(strstr(out, "cudnnConvolutionBiasActivationForward") && strstr(out, "cudnnCreate"),
                  "no cuDNN calls in the trainer:\n%s", out);
        free(out);
    }
    remove_tree(dir);
    free(dir);
#endif
}

/* ---- --cuda-arch ---- */

/* The flags of an architecture list, as `mlc build` passes them to nvcc (space-separated;
 * NULL when the list is refused). */
static const char *arch_flags(Arena *a, const char *arch) {
    const char *argv[32];
    int n = target_cuda.build->arch_flags(a, arch, argv, 0, 32);
    if (n < 0) return NULL;
    const char *s = "";
    for (int i = 0; i < n; i++) s = arena_printf(a, "%s%s%s", s, i ? " " : "", argv[i]);
    return s;
}

Test(cuda_emit, cuda_arch_flags) {
    Arena a = {0};
    cr_assert_str_eq(arch_flags(&a, "sm_90"), "-gencode=arch=compute_90,code=[sm_90,compute_90]");
    /* repeats dropped, the newest (not the last) also as PTX */
    cr_assert_str_eq(arch_flags(&a, "sm_90,sm_80,sm_89,sm_80"),
                     "-gencode=arch=compute_90,code=[sm_90,compute_90] -gencode=arch=compute_80,code=sm_80 "
                     "-gencode=arch=compute_89,code=sm_89");
    cr_assert_str_eq(arch_flags(&a, "sm_120"), "-gencode=arch=compute_120,code=[sm_120,compute_120]");
    int cc[4];
    cr_assert_eq(cuda_arch_parse("sm_80,sm_90", cc, 4), 2);
    cr_assert(cc[0] == 80 && cc[1] == 90);
    static const char *const bad[] = {"",       "sm_8",         "sm_1234", "sm_40", "compute_90",  "sm_90,",
                                      ",sm_90", "sm_80,,sm_90", "sm_90a",  "SM_90", "sm_80 sm_90", "native"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_lt(cuda_arch_parse(bad[i], cc, 4), 0, "'%s' was accepted", bad[i]);
    cr_expect_lt(cuda_arch_parse("sm_70,sm_75,sm_80,sm_86,sm_90", cc, 4), 0, "more than max");
    arena_free(&a);
}

/* What mlc prints (stdout and stderr) and its exit status for a command line. */
static char *run_mlc(const char *args, int *status) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", MLC_EXE, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = calloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    out[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* A command line mlc refuses (exit 2) and its one-line message. */
typedef struct MlcError {
    const char *args, *want;
} MlcError;

static void expect_errors(const MlcError *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int st;
        char *out = run_mlc(c[i].args, &st);
        cr_expect_eq(st, 2, "%s: exit %d", c[i].args, st);
        cr_expect_str_eq(out, c[i].want, "%s", c[i].args);
        free(out);
    }
}

Test(cuda_emit, cuda_arch_errors) {
    static const MlcError c[] = {
        {"build " MLC_SOURCE_ROOT "/samples/mlp.mdl -o /nonexistent/x --target cuda --cuda-arch sm_9",
         "mlc: error: --cuda-arch: expected sm_XY or a list like sm_80,sm_90 (XY: the GPU's compute capability), "
         "found 'sm_9'\n"},
        {"build " MLC_SOURCE_ROOT "/samples/mlp.mdl -o /nonexistent/x --target cuda --cuda-arch sm_80,ampere",
         "mlc: error: --cuda-arch: expected sm_XY or a list like sm_80,sm_90 (XY: the GPU's compute capability), "
         "found 'sm_80,ampere'\n"},
        {"build " MLC_SOURCE_ROOT "/samples/mlp.mdl -o /nonexistent/x --cuda-arch sm_90",
         "mlc: error: --cuda-arch is for --target cuda\n"},
        {MLC_SOURCE_ROOT "/samples/mlp.mdl --target cuda --cuda-arch sm_90",
         "mlc: error: --cuda-arch is for mlc build (the emitted .cu builds for any GPU; give nvcc the architecture)\n"},
        {"build " MLC_SOURCE_ROOT "/samples/mlp.mdl -o /nonexistent/x --target cuda --cuda-arch",
         "mlc: error: --cuda-arch needs a value\n"},
    };
    expect_errors(c, sizeof c / sizeof c[0]);
}

/* --conv-algo implicit, cudnn and im2col: CUDA only (implicit and cudnn, whose fallback
 * is the implicit kernels, for sm_80 and newer); direct, winograd and winograd4 are the C
 * target's (direct with cuda ran im2col silently). */
Test(cuda_emit, conv_algo_errors) {
    static const MlcError c[] = {
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --conv-algo implicit --precision bf16",
         "mlc: error: --conv-algo implicit is for --target cuda (the C target's are direct, winograd, winograd4 or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --conv-algo im2col",
         "mlc: error: --conv-algo im2col is for --target cuda (the C target's are direct, winograd, winograd4 or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --target cuda --conv-algo winograd",
         "mlc: error: --conv-algo winograd is for --target c (the CUDA target's are im2col, implicit, cudnn or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --target cuda --conv-algo direct",
         "mlc: error: --conv-algo direct is for --target c (the CUDA target's are im2col, implicit, cudnn or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --target cuda --conv-algo winograd4",
         "mlc: error: --conv-algo winograd4 is for --target c (the CUDA target's are im2col, implicit, cudnn or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --conv-algo cudnn",
         "mlc: error: --conv-algo cudnn is for --target cuda (the C target's are direct, winograd, winograd4 or "
         "auto)\n"},
        {MLC_SOURCE_ROOT "/samples/lenet.mdl --target cuda --conv-algo fft",
         "mlc: error: --conv-algo: expected direct, winograd, winograd4 (c), im2col, implicit, cudnn (cuda) or auto, "
         "found 'fft'\n"},
        {"build " MLC_SOURCE_ROOT "/samples/lenet.mdl -o /nonexistent/x --target cuda --tf32 --conv-algo implicit "
         "--cuda-arch sm_90,sm_75",
         "mlc: error: --cuda-arch: sm_75 is older than the sm_80 that the implicit-GEMM convolutions (--conv-algo "
         "implicit, and cudnn's fallback) are built for\n"},
    };
    expect_errors(c, sizeof c / sizeof c[0]);
}

/* --conv-algo implicit: every conv op of lenet's train step and inference calls the
 * implicit-GEMM launchers, in the mode its operands take (bf16 stored, TF32, FP32), none the
 * im2col ones; the weight gradients split their sums as cuda_conv_splits says (a
 * workspace for the slots); --report's table names the algorithm of each. */
Test(cuda_emit, conv_algo_implicit) {
    static const char *const modes[] = {"--precision bf16", "--tf32", ""}, *const want[] = {"MLC_BF16_STORED",
                                                                                            "MLC_TF32", "MLC_FP32"};
    for (int k = 0; k < 3; k++) {
        const char *args = modes[k];
        Compiled c;
        compile_src_algo(&c, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", k == 1, k == 0,
                         CONV_ALGO_IMPLICIT);
        char *src = capture_source(c.m, "model.h");
        compiled_free(&c);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_fwd("), 0, "%s: an im2col launch", args);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_bwd_filter("), 0, "%s: an im2col launch", args);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_fwd_implicit(stream"), 6, "%s: forward convs (train, eval, forward)",
                     args);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_bwd_data_implicit(stream"), 1, "%s: input gradients", args);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_bwd_filter_implicit(stream"), 2, "%s: weight gradients", args);
        char mode[64];
        snprintf(mode, sizeof mode, ", %s);", want[k]);
        cr_expect_eq(count(src, mode), 9, "%s: every conv call in mode %s", args, want[k]);
        cr_expect_eq(count(src, "ws, 49, "), 1, "%s: conv2's weight gradient in 49 ranges", args);
        cr_expect_eq(count(src, "ws, 64, "), 1, "%s: conv1's weight gradient in 64 ranges", args);
        free(src);
        for (int implicit = 0; implicit < 2; implicit++) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, MLC_SOURCE_ROOT "/samples/lenet.mdl --target cuda %s --conv-algo %s --report",
                     modes[k], implicit ? "implicit" : "im2col");
            int st;
            char *rep = run_mlc(cmd, &st);
            cr_assert_eq(st, 0, "%s: exit %d", cmd, st);
            cr_expect_eq(count(rep, implicit ? "  implicit (" : "  im2col+cuBLAS ("), 7, "%s: the conv table", cmd);
            free(rep);
        }
    }
}

/* --conv-algo implicit: the epilogue group of a forward conv or an input gradient runs in
 * the kernel's store when it is a chain of steps the kernel knows (cuda_conv_epilogue).
 * lenet: both convs' bias and ReLU in all three functions (train step, eval loss,
 * forward), after bf16's rounding in bf16, with the group's buffer as the output and no
 * kernel of their own. convimpl_epi (its comment says which): 7 fused forward convs in
 * the train step and 8 in each of the others, 2 left to a kernel in the train step and 1
 * in the others; the per-channel product subtracted from a parameter only outside the
 * train step; c7's result in the residual's bytes outside the train step; c8's folded
 * batch norm, its shift built per channel in q; 3 of its 8 input gradients with their
 * ReLU masks, one after adding the block's other gradient.
 * --report says the same, and nvcc compiles the file (the conv's own buffer is then
 * unused). Under im2col nothing names an epilogue. */
Test(cuda_emit, conv_epilogue_in_store, .timeout = 300) {
    static const char *const modes[] = {"MLC_FP32", "MLC_TF32", "MLC_BF16_STORED"};
    for (int k = 0; k < 3; k++) {
        Compiled c;
        compile_src_algo(&c, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", k == 1, k == 2,
                         CONV_ALGO_IMPLICIT);
        char *src = capture_source(c.m, "model.h");
        char want[160];
        snprintf(want, sizeof want, ", &ep, %s);", modes[k]);
        cr_expect_eq(count(src, want), 6 + 1, "%s: the forward convs and conv2's input gradient", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_ADD, 0, 1, p_conv1_bias},"), 3, "%s: conv1's bias", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_ADD, 0, 1, p_conv2_bias},"), 3, "%s: conv2's bias", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_RELU, 0, 0, NULL},"), 6, "%s", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_MUL_STEP, 0, 0, "), 1, "%s: the ReLU mask of conv2's input", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_ROUND_BF16, 0, 0, NULL},"), k == 2 ? 6 + 1 : 0, "%s: bf16's rounding",
                     modes[k]);
        cr_expect_null(strstr(src, "const float *p_conv1_bias) {"), "%s: conv1's epilogue still has a kernel",
                       modes[k]);
        free(src);
        compiled_free(&c);
    }
    static const char *const path = MLC_SOURCE_ROOT "/tests/compiler/data/convimpl_epi.mdl";
    Compiled c;
    compile_src_algo(&c, srcfile_read(path), path, 0, 0, CONV_ALGO_IMPLICIT);
    char *src = capture_source(c.m, "model.h");
    cr_expect_eq(count(src, ", &ep, MLC_FP32);"), 7 + 8 + 8 + 3, "fused convs and input gradients");
    cr_expect_eq(count(src, ", NULL, MLC_FP32);"), 2 + 1 + 1 + 5, "those whose epilogue is a kernel, or none");
    cr_expect_eq(count(src, "{MLC_EPI_MUL_STEP, 0, 0, "), 3, "the input gradients' ReLU masks");
    cr_expect_eq(count(src, "{MLC_EPI_RSUB, 0, 1, p_shift},"), 2, "shift - conv * scale, outside the train step");
    cr_expect_eq(count(src, "{MLC_EPI_SUB, 0, 1, p_scale},"), 3, "conv - scale");
    cr_expect_eq(count(src, "{MLC_EPI_MUL, 0, 1, p_scale},"), 2, "conv * scale");
    cr_expect_eq(count(src, "{MLC_EPI_ADD, 0, 0, "), 3 + 3 + 3 + 1, "the residual adds of c2, c7, c9; c9's gradients");
    cr_expect_eq(count(src, "p_c7_weight, t12, &ep, MLC_FP32);"), 2, "c7 into its residual's bytes");
    /* bn8 folded into c8 outside the train step: q = (c8.bias - mean) * scale + bn8.bias, then v + q */
    cr_expect_eq(count(src, "{MLC_EPI_LOAD, 1, 1, p_c8_bias},\n            {MLC_EPI_SUB, 1, 1, p_bn8_running_mean},"),
                 2, "bn8's shift built in q");
    cr_expect_eq(count(src, "{MLC_EPI_ADD, 1, 1, p_bn8_bias},\n            {MLC_EPI_ADD, 0, 1, NULL},"), 2,
                 "bn8's shift added from q");
    cr_expect_eq(count(src, "the conv2d's own buffer, unused"), 2, "c7's own buffer unused");
#ifndef MLC_SANITIZED /* nvcc compiles the file, not mlc: the plain build's run covers it */
    if (have_nvcc()) nvcc_check(c.m, path);
#endif
    free(src);
    compiled_free(&c);
    int st;
    char *rep = run_mlc(MLC_SOURCE_ROOT
                        "/tests/compiler/data/convimpl_epi.mdl --target cuda --conv-algo implicit "
                        "--report",
                        &st);
    cr_assert_eq(st, 0);
    cr_expect_eq(count(rep, " in its store: "), 7 + 3 + 8, "the report's fused convs:\n%s", rep);
    cr_expect_eq(count(rep, " in its store: * %2 per channel, subtracted from %3 per channel\n"), 1, "%s", rep);
    free(rep);
    compile_src_algo(&c, srcfile_read(path), path, 0, 0, CONV_ALGO_IM2COL);
    src = capture_source(c.m, "model.h");
    cr_expect_null(strstr(src, "mlc_conv_epilogue"), "im2col with an epilogue struct");
    free(src);
    compiled_free(&c);
}

/* --conv-algo cudnn: every conv op with float operands is one call into the cuDNN launchers
 * (conv_cudnn.cu) on the model's cuDNN handle, with an 8 MiB workspace, in FP32 or TF32
 * mode, and a step's CUDA graph is captured at its second call; a forward conv whose epilogue is a bias, then perhaps a residual add, then perhaps
 * a ReLU (cuDNN's fused form) passes it and has no epilogue kernel; any other epilogue
 * stays a kernel, an input gradient's ReLU mask included. Under --precision bf16 cuDNN's
 * bf16 calls run every conv, with any epilogue the implicit kernels take, and a
 * workspace for the bf16 tensors. convimpl_epi: c1 (bias,
 * ReLU), c2 (bias, residual, ReLU) and c6 (bias, ReLU, strided) fused in all three
 * functions, c8's bias alone in the train step (outside it its batch norm is folded in,
 * which cuDNN's form has not). --report says the same; nvcc compiles both files. */
Test(cuda_emit, conv_algo_cudnn, .timeout = 300) {
    static const char *const modes[] = {"MLC_FP32", "MLC_TF32"};
    for (int k = 0; k < 2; k++) {
        Compiled c;
        compile_src_algo(&c, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", k, 0, CONV_ALGO_CUDNN);
        char *src = capture_source(c.m, "model.h");
        compiled_free(&c);
        char want[200];
        snprintf(want, sizeof want, ", &ep, ws, sizeof(float) * (size_t)2097152, %s);", modes[k]);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_fwd_cudnn(self->cudnn, stream, &geom, B, "), 6, "%s", modes[k]);
        cr_expect_eq(count(src, want), 6, "%s: the forward convs with bias and ReLU", modes[k]);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_bwd_data_cudnn(self->cudnn, stream, &geom, B, "), 1, "%s", modes[k]);
        cr_expect_eq(count(src, "mlc_cuda_conv2d_bwd_filter_cudnn(self->cudnn, stream, &geom, B, "), 2, "%s", modes[k]);
        snprintf(want, sizeof want, ", ws, sizeof(float) * (size_t)2097152, %s);", modes[k]);
        cr_expect_eq(count(src, want), 9, "%s: every call's workspace and mode", modes[k]);
        cr_expect_eq(count(src, "_implicit("), 0, "%s", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_ADD, 0, 1, p_conv1_bias},\n            {MLC_EPI_RELU, 0, 0, NULL},"), 3,
                     "%s: conv1's bias and ReLU", modes[k]);
        cr_expect_eq(count(src, "{MLC_EPI_MUL_STEP"), 0, "%s: cuDNN's input gradient has no epilogue", modes[k]);
        cr_expect_null(strstr(src, "const float *p_conv1_bias) {"), "%s: conv1's epilogue still has a kernel",
                       modes[k]);
        cr_expect(strstr(src, "#include \"kernels/mlc_kernels_cudnn.h\"") && strstr(src, "cudnnHandle_t cudnn;") &&
                      strstr(src, "cudnnCreate(&self->cudnn)") && strstr(src, "cudnnDestroy(self->cudnn)"),
                  "%s: the handle", modes[k]);
        cr_expect(strstr(src, "self->graphs.warmup = 1;"), "%s: a step run one by one before its capture", modes[k]);
        free(src);
    }
    Compiled c;
    compile_src_algo(&c, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", 0, 1, CONV_ALGO_CUDNN);
    char *src = capture_source(c.m, "model.h");
    compiled_free(&c);
    /* bf16: cuDNN's bf16 calls, every epilogue the implicit kernels take run as the output
     * is widened (the rounding first), the output's and the operands' bf16 values in the
     * workspace, their per-sample part at the call's batch */
    cr_expect_eq(count(src, "_cudnn(self->cudnn, stream, &geom, B, "), 9, "bf16: every conv on cuDNN");
    cr_expect_eq(count(src, "_implicit("), 0, "bf16");
    cr_expect_eq(count(src, ", MLC_BF16_STORED);"), 9, "bf16: the mode");
    cr_expect_eq(count(src, "{MLC_EPI_ROUND_BF16, 0, 0, NULL},\n            {MLC_EPI_ADD, 0, 1, p_conv1_bias},"), 3,
                 "bf16: conv1's rounding and bias");
    cr_expect_eq(count(src, "{MLC_EPI_MUL_STEP, 0, 0, "), 1, "bf16: conv2's input gradient's ReLU mask");
    cr_expect_eq(count(src, "as cuDNN's bf16 output is widened"), 7, "bf16: the fused epilogues");
    cr_expect_eq(count(src, "ws, sizeof(float) * ((size_t)2097489 + (size_t)12936 * (size_t)B), MLC_BF16_STORED);"),
                 3 + 1, "bf16: conv1's workspace (28x28, 1 and 32 channels)");
    cr_expect(strstr(src, "self->graphs.warmup = 1;"), "bf16: a step run one by one before its capture");
    free(src);
    static const char *const path = MLC_SOURCE_ROOT "/tests/compiler/data/convimpl_epi.mdl";
    compile_src_algo(&c, srcfile_read(path), path, 0, 0, CONV_ALGO_CUDNN);
    src = capture_source(c.m, "model.h");
    cr_expect_eq(count(src, ", &ep, ws, sizeof(float) * (size_t)2097152, MLC_FP32);"), 4 + 3 + 3, "fused convs");
    cr_expect_eq(count(src, "as cuDNN's bf16 output is widened"), 0, "FP32: only cuDNN's fused form");
    cr_expect_eq(count(src, "mlc_cuda_conv2d_fwd_cudnn("), 9 + 9 + 9, "forward convs");
    cr_expect_eq(count(src,
                       "{MLC_EPI_ADD, 0, 1, p_c2_bias},\n            {MLC_EPI_ADD, 0, 0, t6},\n"
                       "            {MLC_EPI_RELU, 0, 0, NULL},"),
                 3, "c2's bias, residual and ReLU");
    cr_expect_eq(count(src, "{MLC_EPI_ADD, 0, 1, p_c8_bias},\n        }};"), 1, "c8's bias alone, in the train step");
#ifndef MLC_SANITIZED /* nvcc compiles the file, not mlc: the plain build's run covers it */
    if (have_nvcc()) nvcc_check(c.m, path);
#endif
    free(src);
    compiled_free(&c);
    int st;
    char *rep =
        run_mlc(MLC_SOURCE_ROOT "/tests/compiler/data/convimpl_epi.mdl --target cuda --conv-algo cudnn --report", &st);
    cr_assert_eq(st, 0);
    cr_expect_eq(count(rep, "  cuDNN (FP32 products)"), 9 + 8 + 9 + 9, "the conv table's rows:\n%s", rep);
    cr_expect_eq(count(rep, " in its fused call: "), 4 + 3, "the report's fused convs:\n%s", rep);
    cr_expect_eq(count(rep, " in its fused call: + %14 per channel, + %10, relu\n"), 2, "c2:\n%s", rep);
    free(rep);
#ifndef MLC_SANITIZED
    if (have_nvcc()) {
        compile_src_algo(&c, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", 1, 0, CONV_ALGO_CUDNN);
        nvcc_check(c.m, "lenet, --tf32 --conv-algo cudnn");
        compiled_free(&c);
    }
#endif
}

/* --cublaslt: the matmuls of ltepi.mdl whose epilogue is a bias, or a bias and ReLU, each
 * one mlc_gemm_bias call (train step, eval loss, forward: 3 each), with the operands and
 * mode mlc_gemm would take and the group's buffer as the output; the two whose epilogue
 * must stay a kernel (the matmul's value read again; no bias) stay cublasSgemm. In bf16
 * the groups round their results, which cuBLASLt's epilogue does not: no call. Without
 * the flag nothing names cuBLASLt; the FP32 file compiles with nvcc -Werror; the C target
 * refuses the flag. */
Test(cuda_emit, cublaslt_epilogues, .timeout = 300) {
    static const char *const path = MLC_SOURCE_ROOT "/tests/compiler/data/ltepi.mdl";
    static const struct {
        CompileOptions o;
        const char *mode;
        int calls;
    } cases[] = {{{.cublaslt = 1}, "MLC_FP32", 9},
                 {{.cublaslt = 1, .tf32 = 1}, "MLC_TF32", 9},
                 {{.cublaslt = 1, .bf16 = 1}, "MLC_BF16_STORED", 0},
                 {{0}, "MLC_FP32", 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Compiled c;
        compile_src_with(&c, srcfile_read(path), path, cases[k].o);
        char *src = capture_source(c.m, "model.h");
        /* h1, h2 and the logits in each of the 3 graphs, but for the train step's logits,
         * whose bias add runs in the loop of their row max (cross_entropy's shift) */
        const int calls = cases[k].calls ? cases[k].calls - 1 : 0, per_graph = cases[k].calls / 3;
        cr_expect_eq(count(src, "mlc_gemm_bias("), calls, "case %zu: mlc_gemm_bias calls", k);
        char want[160];
        snprintf(want, sizeof want,
                 "mlc_gemm_bias(self->cublas, self->cublaslt, stream, %s, 1, CUBLAS_OP_N, CUBLAS_OP_N,", cases[k].mode);
        cr_expect_eq(count(src, want), per_graph, "case %zu: h1's bias and ReLU", k);
        snprintf(want, sizeof want,
                 "mlc_gemm_bias(self->cublas, self->cublaslt, stream, %s, 0, CUBLAS_OP_T, CUBLAS_OP_N,", cases[k].mode);
        cr_expect_eq(count(src, want), per_graph, "case %zu: h2's bias, w2 transposed", k);
        cr_expect_eq(count(src, "p_b1, t"), per_graph, "case %zu: b1 the bias of h1's call", k);
        if (cases[k].calls) {
            cr_expect_eq(count(src, "MLC_CUBLAS_CHECK(cublasSgemm("), 3 * 2 + 9 + 1,
                         "case %zu: m3 and h4 (3 calls), the backward, the train step's logits", k);
            cr_expect(strstr(src, "cublasLtCreate(&self->cublaslt)") && strstr(src, "cublasLtDestroy(self->cublaslt)"));
        }
        if (!cases[k].o.cublaslt) cr_expect_null(strstr(src, "cublaslt"), "no --cublaslt, yet the source names it");
        else {
            /* --report's table: a row for each 2-D product the source calls, cuBLASLt's as such */
            char *rep = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&rep, &len);
            cr_assert_not_null(f);
            cuda_lt_report(f, c.m);
            fclose(f);
            cr_expect_eq(count(rep, "cuBLASLt, "), calls, "case %zu: cuBLASLt rows:\n%s", k, rep);
            cr_expect_eq(count(rep, "cuBLASLt, RELU_BIAS epilogue (bias %3)"), per_graph, "case %zu", k);
            const int rows =
                count(rep, "\n  train step ") + count(rep, "\n  inference  ") + count(rep, "\n  eval loss  ");
            cr_expect_eq(rows, count(src, "mlc_gemm_bias(") + count(src, "cublasSgemm(") + count(src, "mlc_gemm("),
                         "case %zu: a row for each product call:\n%s", k, rep);
            free(rep);
        }
#ifndef MLC_SANITIZED /* nvcc compiles the file, not mlc: the plain build's run covers it */
        if (k == 0 && have_nvcc()) nvcc_check(c.m, path);
#endif
        free(src);
        compiled_free(&c);
    }
    static const MlcError e[] = {{MLC_SOURCE_ROOT "/samples/mlp.mdl --cublaslt",
                                  "mlc: error: --cublaslt is for --target cuda (the C target runs a GEMM's epilogue on "
                                  "each block of its output already)\n"}};
    expect_errors(e, 1);
}

/* `mlc build` hands nvcc the list, or without --cuda-arch and without a visible GPU (no
 * nvidia-smi on PATH) the documented default; /bin/echo stands in for nvcc. */
Test(cuda_emit, mlc_build_passes_the_architectures) {
    // clang-format off
    static const struct {
        const char *arch, *want;
    } c[] = {
        {"--cuda-arch sm_86", " -gencode=arch=compute_86,code=[sm_86,compute_86] "},
        {"", " -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_89,code=sm_89 "
             "-gencode=arch=compute_90,code=[sm_90,compute_90] "},
    };
    // clang-format on
    char *dir = make_tmpdir(); /* -o must be writable: mlc build checks it before compiling */
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char cmd[8192], out[16384];
        snprintf(cmd, sizeof cmd,
                 "env PATH=/nonexistent '%s' build '%s/samples/mlp.mdl' -o '%s/x' --target cuda "
                 "%s --cc /bin/echo 2>&1",
                 MLC_EXE, MLC_SOURCE_ROOT, dir, c[i].arch);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        cr_assert_eq(pclose(p), 0, "%s: %s", cmd, out);
        cr_expect_not_null(strstr(out, c[i].want), "%s: no '%s' in: %s", cmd, c[i].want, out);
        cr_expect_null(strstr(out, "-arch="), "%s: a fixed -arch in: %s", cmd, out);
    }
    remove_tree(dir);
    free(dir);
}

/* One .cu for three generations: nvcc's assembler reports each kernel for each. */
Test(cuda_emit, cuda_arch_compiles_for_each_generation, .timeout = 600) {
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    Compiled c;
    compile_path(&c, models[0]); /* mlp: few kernels */
    char *dir = make_tmpdir();
    write_sources(c.m, dir);
    const char *flags = arch_flags(&c.arena, "sm_80,sm_89,sm_90");
    cr_assert_not_null(flags);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, NVCC " -c -std=c++17 -Xptxas -v %s -I'%s/runtime' -I'%s' '%s/%s.cu' -o '%s/%s.o' 2>&1",
             flags, MLC_SOURCE_ROOT, dir, dir, c.m->spec.name, dir, c.m->spec.name);
    int st;
    char *out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "%s: %s", cmd, out);
    static const char *const gens[] = {"for 'sm_80'", "for 'sm_89'", "for 'sm_90'"};
    for (int i = 0; i < 3; i++) cr_expect_not_null(strstr(out, gens[i]), "no kernel compiled %s:\n%s", gens[i], out);
    free(out);
    remove_tree(dir);
    free(dir);
    compiled_free(&c);
}

/* ---- the kernel library (runtime/kernels/cuda/, libmlckernels_cuda) ---- */

/* (Only the unsanitized build runs the library test below: this helper is its own.) */
#ifndef MLC_SANITIZED

/* A line of `text` holding both a and b. */
static int line_with_both(const char *text, const char *a, const char *b) {
    for (const char *l = text; *l;) {
        const char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        char *line = strndup(l, len);
        int hit = strstr(line, a) && strstr(line, b);
        free(line);
        if (hit) return 1;
        if (!end) break;
        l = end + 1;
    }
    return 0;
}
#endif

/* nvcc builds the library's sources (the list `mlc build` compiles with a model, and
 * --conv-algo cudnn's launchers) as one archive for sm_80 and sm_90, and ptxas reports
 * each of its kernels for both; then a generated trainer (lenet: convolutions, poolings)
 * links against that archive and the runtime, the launchers coming from the library,
 * without cuDNN. */
Test(cuda_emit, kernel_library_builds_and_links, .timeout = 600) {
#ifdef MLC_SANITIZED
    cr_skip_test("sanitizer build: libmlcrt is instrumented and nvcc links without the sanitizers");
#else
    if (!have_nvcc()) cr_skip_test("no CUDA toolkit at " CUDA_HOME);
    Arena a = {0};
    const char *flags = arch_flags(&a, "sm_80,sm_90");
    cr_assert_not_null(flags);
    char *dir = make_tmpdir();
    const char *srcs = "";
    /* the kernels the sources define, each "static __global__ void NAME(" */
    const char *names[64];
    int nkernels = 0;
    for (const char *const *k = target_cuda.build->kernel_srcs; *k; k++) {
        const char *path = arena_printf(&a, "%s/runtime/%s", MLC_SOURCE_ROOT, *k);
        srcs = arena_printf(&a, "%s '%s'", srcs, path);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "no %s", path);
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            char name[128];
            if (sscanf(line, "static __global__ void %127[A-Za-z0-9_](", name) == 1 && nkernels < 64)
                names[nkernels++] = arena_strdup(&a, name);
        }
        fclose(f);
    }
    cr_assert_eq(nkernels, 15, "the library's sources define %d kernels", nkernels);
    /* every source of the folder is in the list mlc build compiles, or is the one a model
     * built with --conv-algo cudnn compiles besides (and links cuDNN for), which the
     * library holds too */
    int nsrcs = 0, nfiles = 0;
    while (target_cuda.build->kernel_srcs[nsrcs]) nsrcs++;
    Compiled dc;
    compile_src_algo(&dc, srcfile_read(MLC_SOURCE_ROOT "/samples/lenet.mdl"), "lenet.mdl", 0, 0, CONV_ALGO_CUDNN);
    const char *xsrc = NULL, *xlib = NULL;
    target_cuda.build->model_extras(dc.m, &xsrc, &xlib);
    compiled_free(&dc);
    cr_assert(xsrc && xlib && !strcmp(xsrc, "kernels/cuda/conv_cudnn.cu") && !strcmp(xlib, "-lcudnn"),
              "--conv-algo cudnn's extras: %s %s", xsrc ? xsrc : "(none)", xlib ? xlib : "(none)");
    srcs = arena_printf(&a, "%s '%s/runtime/%s'", srcs, MLC_SOURCE_ROOT, xsrc);
    nsrcs++;
    DIR *d = opendir(MLC_SOURCE_ROOT "/runtime/kernels/cuda");
    cr_assert_not_null(d);
    for (struct dirent *de; (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        nfiles += len > 3 && !strcmp(de->d_name + len - 3, ".cu");
    }
    closedir(d);
    cr_assert_eq(nfiles, nsrcs, "runtime/kernels/cuda/ holds %d .cu files, toolchain.c's kernel_srcs %d", nfiles,
                 nsrcs);
    const char *cmd = arena_printf(&a,
                                   NVCC
                                   " -lib -O3 -std=c++17 -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror"
                                   " -Xptxas -v %s%s -o '%s/libmlckernels_cuda.a' 2>&1",
                                   flags, srcs, dir);
    int st;
    char *out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "%s:\n%s", cmd, out);
    static const char *const gens[] = {"for 'sm_80'", "for 'sm_90'"};
    for (int i = 0; i < nkernels; i++)
        for (int j = 0; j < 2; j++)
            cr_expect(line_with_both(out, names[i], gens[j]), "kernel %s not compiled %s:\n%s", names[i], gens[j], out);
    free(out);

    Compiled c;
    compile_path(&c, models[4]); /* lenet */
    target_cuda.build->model_extras(c.m, &xsrc, &xlib);
    cr_expect(!xsrc && !xlib, "lenet without --conv-algo cudnn compiles or links more: %s %s", xsrc ? xsrc : "",
              xlib ? xlib : "");
    write_sources(c.m, dir);
    const char *mainc = arena_printf(&a, "%s/trainer_main.c", dir);
    FILE *f = fopen(mainc, "w");
    cr_assert_not_null(f);
    cr_assert_geq(fputs(tmpl_trainer_main_c, f), 0);
    cr_assert_eq(fclose(f), 0);
    cmd = arena_printf(
        &a,
        NVCC
        " -O3 -std=c++17 %s '%s/lenet.cu' '%s' -I'%s/runtime' -I'%s' -DMLC_MODEL_API=lenet_api"
        " -o '%s/lenet' -L'%s' -lmlckernels_cuda -L'%s' -lmlcrt -lcublasLt -lcublas -lz -lm -Xcompiler=-pthread 2>&1",
        flags, dir, mainc, MLC_SOURCE_ROOT, dir, dir, dir, MLC_KERNELS_LIB_DIR);
    out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "the trainer does not link against the library: %s:\n%s", cmd, out);
    free(out);
    cmd = arena_printf(&a, "nm '%s/lenet' 2>&1", dir);
    out = run_capture(cmd, &st);
    cr_assert_eq(st, 0, "%s", out);
    static const char *const launchers[] = {" T mlc_cuda_conv2d_fwd\n", " T mlc_cuda_conv2d_bwd_filter\n",
                                            " T mlc_cuda_maxpool2d_fwd\n", " T mlc_cuda_maxpool2d_bwd\n"};
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++)
        cr_expect_not_null(strstr(out, launchers[i]), "the trainer lacks%s", launchers[i]);
    free(out);
    compiled_free(&c);
    remove_tree(dir);
    free(dir);
    arena_free(&a);
#endif
}

/* A .mdl path may hold '"', '\' and "*" "/": the .cu's header comment and its kernels'
 * node comments name it as comment text, and the file still compiles (its kernels with
 * NVRTC, the whole with nvcc -Werror) where the toolkit is installed. */
Test(cuda_emit, weird_source_path_is_escaped, .timeout = 600) {
    SrcFile *mlp = srcfile_read(MLC_SOURCE_ROOT "/samples/mlp.mdl");
    cr_assert_not_null(mlp);
    const char *path = "d*/we\"ird\\x.mdl";
    Compiled c;
    compile_src_opts(&c, srcfile_from_string(path, mlp->text), path, 0, 0);
    srcfile_free(mlp);
    char *cu = capture_source(c.m, "mlp.h");
    cr_expect(strstr(cu, "/* mlp.cu - generated by mlc from d* /we\"ird\\x.mdl; do not edit.\n"), "%.200s", cu);
    cr_expect(strstr(cu, "(we\"ird\\x.mdl:8)"), "no node comment names the .mdl line");
    free(cu);
#ifdef MLC_HAVE_NVRTC
    nvrtc_check(c.m, path);
#endif
#ifndef MLC_SANITIZED
    if (have_nvcc()) nvcc_check(c.m, path);
#endif
    compiled_free(&c);
}
