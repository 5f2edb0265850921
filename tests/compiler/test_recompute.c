/* test_recompute.c - --mem-budget (compiler/passes/recompute.c): recomputing activations in the
 * backward (cheap ones first, convolutions and GEMMs only when those cannot fit) shrinks
 * the train step's arena to fit a budget, says clearly when it cannot, keeps the memory
 * plan sound, and leaves training bit-for-bit unchanged.
 *
 *   shrinks_lenet, shrinks_resnet   a budget below the plain arena is met, and the arena
 *                                   is smaller than without it; cheap recomputation
 *                                   alone meets these, so no convolution is recomputed
 *   impossible_budget               --mem-budget 1K fails naming the budget, the smallest
 *                                   arena recomputation reaches and the plain arena; that
 *                                   smallest arena is then a budget that is met exactly
 *   fitting_budget_changes_nothing  a budget the plain plan meets recomputes nothing
 *   lazy_search_ends_as_the_full_one the lazy steps end where trying every candidate at
 *                                   every step does, on four samples at four budgets
 *   plans_do_not_overlap            plancheck.h on every sample and test model recomputed
 *                                   as far as it goes (convolutions included); clones sit
 *                                   in the backward and keep their .mdl location
 *   interpreter_identical           the reference interpreter gives the same loss, output
 *                                   and gradients (exactly, in double) with and without
 *                                   recomputation
 *   generated_losses_identical      generated C trainers built with and without a budget
 *                                   print the same losses (%a) over 5 steps and the same
 *                                   parameters and optimizer state after them
 *   relu_pool_identical             with and without relu_pool.c (the ReLU backward's mask
 *                                   moved in front of the max-pool backward), the same
 *                                   values in the interpreter and the same bits from the
 *                                   generated C trainers, for lenet and poolrelu.mdl
 *   cli                             the mlc command line: suffixes, the error, the report
 *   scratch_arena_rewinds           the trials' arena keeps its memory between trials,
 *                                   handing it out zeroed
 *
 * No per-test .timeout: with tests running in parallel, Criterion's timer leaks 48 bytes
 * that LeakSanitizer reports in the sanitized CI run; meson's test timeout applies. */
#include <criterion/criterion.h>
#include <math.h>

#include "ctest_util.h"
#include "driver.h"
#include "interp.h"
#include "ops.h"
#include "plancheck.h"
#include "target.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif
#ifndef MLC_RUNTIME_INC
#error "MLC_RUNTIME_INC must be defined"
#endif
#ifndef MLC_RUNTIME_LIB_DIR
#error "MLC_RUNTIME_LIB_DIR must be defined"
#endif
#define OPENBLAS_INC "/usr/include/x86_64-linux-gnu/openblas-pthread"

#define LENET MLC_SOURCE_ROOT "/samples/lenet.mdl"
#define RESNET MLC_SOURCE_ROOT "/samples/resnet.mdl"

/* One compilation with everything it needs kept alive. */
typedef struct Compiled {
    Arena arena;
    SrcFile *src;
    CtCompile r;
    ModelIR *m;
} Compiled;

static void compile_file_with(Compiled *c, const char *path, const CompileOptions *o) {
    memset(c, 0, sizeof *c);
    c->src = ct_load_src(path);
    cr_assert_not_null(c->src, "cannot read %s", path);
    c->r = ct_compile_with(&c->arena, c->src, (DumpOptions){0}, o);
    c->m = c->r.m;
}

static void compile_file(Compiled *c, const char *path, int batch, int64_t budget) {
    CompileOptions o = {.batch = batch, .mem_budget = budget, .target = TARGET_C};
    compile_file_with(c, path, &o);
}

static void compiled_free(Compiled *c) {
    ct_compile_free(&c->r);
    arena_free(&c->arena);
    srcfile_free(c->src);
}

/* The train step's arena in bytes at the compile-time batch size, as planned. */
static int64_t arena_of(const ModelIR *m) { return 4 * plan_floats(&m->train_plan, m->train->batch, m->threads); }

static int64_t plain_arena(const char *path, int batch) {
    Compiled c;
    compile_file(&c, path, batch, 0);
    cr_assert_not_null(c.m, "%s:\n%s", path, c.r.diag);
    int64_t a = arena_of(c.m);
    compiled_free(&c);
    return a;
}

/* The smallest arena recomputation reaches: what the error for a 1-byte budget says. */
static int64_t min_arena(const char *path, int batch) {
    Compiled c;
    compile_file(&c, path, batch, 1);
    cr_assert_null(c.m, "%s fits in one byte?", path);
    const char *p = strstr(c.r.diag, "brings its arena down to ");
    cr_assert_not_null(p, "%s: unexpected diagnostic:\n%s", path, c.r.diag);
    int64_t a = strtoll(p + strlen("brings its arena down to "), NULL, 10);
    compiled_free(&c);
    return a;
}

/* Clones: after the loss (in the backward), with a location, never a random op, and a
 * costly one (a convolution, a GEMM: OPF_CHECKPOINT) only where `costly` allows it. Returns
 * the clones; *nc (if not NULL) gets the costly ones. */
static int check_clones(const Graph *g, const char *what, int costly, int *nc) {
    int k = 0;
    int n = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *nd = &g->nodes[id];
        if (!(nd->role & ROLE_RECOMPUTED)) continue;
        n++;
        cr_expect_gt(id, g->loss, "%s: clone %%%d before the loss %%%d", what, id, g->loss);
        cr_expect_not_null(nd->loc.file, "%s: clone %%%d has no .mdl location", what, id);
        int heavy = (op_of(nd)->rules->flags & OPF_CHECKPOINT) != 0;
        k += heavy;
        cr_expect(nd->op != OP_dropout_mask && (costly || !heavy), "%s: clone %%%d recomputes a %s", what, id,
                  op_of(nd)->name);
    }
    if (nc) *nc = k;
    return n;
}

static void shrinks(const char *path, int percent) {
    int64_t plain = plain_arena(path, 0);
    int64_t budget = plain * percent / 100;
    Compiled c;
    compile_file(&c, path, 0, budget);
    cr_assert_not_null(c.m, "%s with a budget of %d%% (%lld bytes):\n%s", path, percent, (long long)budget, c.r.diag);
    int64_t got = arena_of(c.m);
    printf("%s: arena %lld bytes, %lld with --mem-budget %lld (%d tensors recomputed)\n", ct_basename(path),
           (long long)plain, (long long)got, (long long)budget, c.m->recomputed);
    cr_expect_leq(got, budget, "%s: arena %lld over the budget %lld", path, (long long)got, (long long)budget);
    cr_expect_lt(got, plain, "%s: arena did not shrink", path);
    cr_expect_eq(c.m->arena_plain, plain);
    cr_expect_eq(c.m->arena_planned, got);
    cr_expect_eq(c.m->mem_budget, budget);
    cr_expect_gt(c.m->recomputed, 0);
    /* cheap recomputation alone meets these budgets: no convolution is computed twice */
    cr_expect_eq(check_clones(c.m->train, ct_basename(path), 0, NULL) >= c.m->recomputed, 1);
    cr_expect_eq(check_plan(c.m->train, &c.m->train_fuse, &c.m->train_plan, ct_basename(path)), 0,
                 "%s: overlapping live tensors", path);
    compiled_free(&c);
}

/* Measured (1 thread) with first-fit placement: lenet 18492160 -> 17586944 bytes at best
 * (23309056 -> 21678848 before relu_pool.c let its pooling backwards run in place, which
 * took most of what recomputation gained), resnet 82399040 -> 56729408 (what stays: the
 * conv outputs the batch norms' backward reads, and the residual blocks' outputs). The
 * offline placement (memplan.c) plans lenet in 17591040 bytes, 11168512 at best with a
 * convolution recomputed (impossible_budget). */
Test(recompute, shrinks_lenet) { shrinks(LENET, 96); }
Test(recompute, shrinks_resnet) { shrinks(RESNET, 75); }

/* The trials' scratch arena (arena_rewind): after a rewind the same memory serves again,
 * zeroed as arena_alloc promises, and a request larger than every kept chunk still gets
 * memory of its own. Fresh pages for every trial were most of --mem-budget's time. */
Test(recompute, scratch_arena_rewinds) {
    Arena a = {0};
    unsigned char *p = arena_alloc(&a, 1000), *big = arena_alloc(&a, 200000);
    memset(p, 0xAB, 1000);
    memset(big, 0xCD, 200000);
    arena_rewind(&a);
    unsigned char *q = arena_alloc(&a, 200000);
    cr_expect_eq(q, big, "the large chunk is kept for a request it holds");
    unsigned char *r = arena_alloc(&a, 1000);
    cr_expect_eq(r, p, "the small chunk too");
    int zero = 1;
    for (int i = 0; i < 200000; i++) zero &= q[i] == 0;
    for (int i = 0; i < 1000; i++) zero &= r[i] == 0;
    cr_expect(zero, "memory from a rewound arena is zeroed");
    unsigned char *huge = arena_alloc(&a, 1 << 20);
    cr_expect(huge && huge != q && huge != r);
    huge[(1 << 20) - 1] = 1;
    arena_free(&a);
    cr_expect_null(a.head);
    cr_expect_null(a.spare);
}

/* The lazy steps (recompute.c, best_move) end where trying every candidate at every step
 * ends (CompileOptions.full_search): the same arena and the same number of tensors
 * recomputed, or the same floor in the error, at the floor's budget and at budgets
 * between the floor and the plain arena. */
static void lazy_search_ends_as_the_full_one(const char *path) {
    int64_t plain = plain_arena(path, 0), floor = min_arena(path, 0);
    const int64_t budgets[] = {1, floor + (plain - floor) / 4, floor + (plain - floor) / 2,
                               floor + 3 * (plain - floor) / 4};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        Compiled lazy, full;
        CompileOptions o = {.mem_budget = budgets[i], .target = TARGET_C};
        compile_file_with(&lazy, path, &o);
        o.full_search = 1;
        compile_file_with(&full, path, &o);
        cr_assert_eq(lazy.m == NULL, full.m == NULL, "%s at %lld:\n%s\n%s", path, (long long)budgets[i], lazy.r.diag,
                     full.r.diag);
        if (lazy.m) {
            cr_expect_eq(arena_of(lazy.m), arena_of(full.m), "%s at %lld", path, (long long)budgets[i]);
            cr_expect_eq(lazy.m->recomputed, full.m->recomputed, "%s at %lld", path, (long long)budgets[i]);
        } else {
            cr_expect_str_eq(lazy.r.diag, full.r.diag);
        }
        compiled_free(&lazy);
        compiled_free(&full);
    }
}

Test(recompute, lazy_search_ends_as_the_full_one, .timeout = 300) {
    lazy_search_ends_as_the_full_one(LENET);
    lazy_search_ends_as_the_full_one(RESNET);
    lazy_search_ends_as_the_full_one(MLC_SOURCE_ROOT "/samples/mobilenet.mdl");
    lazy_search_ends_as_the_full_one(MLC_SOURCE_ROOT "/samples/unet_ae.mdl");
}

Test(recompute, impossible_budget) {
    int64_t plain = plain_arena(LENET, 0);
    Compiled c;
    compile_file(&c, LENET, 0, 1024);
    cr_assert_null(c.m, "lenet fits in 1K?");
    cr_assert(c.r.errored);
    const char *head =
        "lenet.mdl: error: the train step does not fit in --mem-budget 1024 bytes (1.0 KiB) at batch "
        "64 on 1 thread: recomputing activations in the backward brings its arena down to ";
    cr_assert(!strncmp(c.r.diag, head, strlen(head)), "unexpected message:\n%s", c.r.diag);
    char *end;
    int64_t best = strtoll(c.r.diag + strlen(head), &end, 10);
    char tail[160];
    snprintf(tail, sizeof tail, ", from %lld bytes (%.1f MiB) without recomputation\n", (long long)plain,
             (double)plain / (1 << 20));
    cr_expect(strstr(end, tail) != NULL, "the message does not end with \"%s\":\n%s", tail, c.r.diag);
    cr_expect_gt(best, 0);
    cr_expect_lt(best, plain, "recomputation reaches nothing smaller on lenet");
    /* at most 0.6x PyTorch's allocator peak for the step (22.56 MB, bench/results/
     * summary.md): 11168512 bytes with the offline placement, which finds room for the
     * ReLU outputs recomputed late; first-fit placement stopped at 16018176 */
    cr_expect_leq(best, 13536000, "lenet's smallest arena %lld bytes", (long long)best);
    compiled_free(&c);

    /* The smallest arena reported is reachable: as a budget, it is met exactly. */
    compile_file(&c, LENET, 0, best);
    cr_assert_not_null(c.m, "the reported minimum %lld is not reachable:\n%s", (long long)best, c.r.diag);
    cr_expect_eq(arena_of(c.m), best);
    compiled_free(&c);
}

Test(recompute, fitting_budget_changes_nothing) {
    Compiled a, b;
    compile_file(&a, RESNET, 0, 0);
    cr_assert_not_null(a.m);
    compile_file(&b, RESNET, 0, arena_of(a.m));
    cr_assert_not_null(b.m, "%s", b.r.diag);
    cr_expect_eq(b.m->recomputed, 0);
    cr_expect_eq(b.m->train->n, a.m->train->n);
    cr_expect_eq(arena_of(b.m), arena_of(a.m));
    cr_expect_eq(check_clones(b.m->train, "resnet", 0, NULL), 0);
    compiled_free(&a);
    compiled_free(&b);
}

/* Recomputation's trials are planned for the convolutions that will run: each
 * --conv-algo's own arena is the "without recomputation" figure, a budget of exactly it
 * recomputes nothing, and the planned arena under a smaller one stays within it. (The
 * trials planned auto's workspaces: winograd4 took a budget its arena then exceeded.) */
Test(recompute, budget_follows_the_conv_algo) {
    const ConvAlgo algos[] = {CONV_ALGO_DIRECT, CONV_ALGO_WINOGRAD4, CONV_ALGO_AUTO};
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        Compiled a, b, c;
        CompileOptions o = {.target = TARGET_C, .conv_algo = algos[i]};
        compile_file_with(&a, LENET, &o);
        cr_assert_not_null(a.m, "%s", a.r.diag);
        o.mem_budget = arena_of(a.m);
        compile_file_with(&b, LENET, &o);
        cr_assert_not_null(b.m, "%s", b.r.diag);
        cr_expect_eq(b.m->recomputed, 0, "algo %zu", i);
        cr_expect_eq(b.m->arena_plain, arena_of(a.m), "algo %zu", i);
        o.mem_budget = arena_of(a.m) * 9 / 10;
        compile_file_with(&c, LENET, &o);
        cr_assert_not_null(c.m, "algo %zu: %s", i, c.r.diag);
        cr_expect_leq(arena_of(c.m), o.mem_budget, "algo %zu", i);
        cr_expect_gt(c.m->recomputed, 0, "algo %zu", i);
        compiled_free(&a);
        compiled_free(&b);
        compiled_free(&c);
    }
}

// clang-format off
static const char *const all_models[] = {
    MLC_SOURCE_ROOT "/samples/mlp.mdl",        MLC_SOURCE_ROOT "/samples/lenet.mdl",
    MLC_SOURCE_ROOT "/samples/resnet.mdl",     MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl",
    MLC_TEST_DIR "/data/convnet.mdl",          MLC_TEST_DIR "/data/layers.mdl",
    MLC_TEST_DIR "/data/blocks.mdl",           MLC_TEST_DIR "/data/allops.mdl",
    MLC_TEST_DIR "/data/activations.mdl",      MLC_TEST_DIR "/data/tiny.mdl",
    MLC_TEST_DIR "/data/clip.mdl",             MLC_TEST_DIR "/data/adamw.mdl",
};
// clang-format on

Test(recompute, plans_do_not_overlap) {
    int shrunk = 0;
    for (size_t i = 0; i < sizeof all_models / sizeof all_models[0]; i++) {
        const char *path = all_models[i];
        int64_t best = min_arena(path, 0);
        Compiled c;
        compile_file(&c, path, 0, best);
        cr_assert_not_null(c.m, "%s at its own minimum %lld:\n%s", path, (long long)best, c.r.diag);
        char what[256];
        snprintf(what, sizeof what, "%s train, recomputed", ct_basename(path));
        cr_expect_eq(check_plan(c.m->train, &c.m->train_fuse, &c.m->train_plan, what), 0,
                     "%s: overlapping live tensors", what);
        snprintf(what, sizeof what, "%s eval", ct_basename(path));
        cr_expect_eq(check_plan(c.m->eval, &c.m->eval_fuse, &c.m->eval_plan, what), 0, "%s: overlapping live tensors",
                     what);
        int costly = 0, clones = check_clones(c.m->train, ct_basename(path), 1, &costly);
        shrunk += clones > 0;
        printf("%s: smallest arena %lld bytes of %lld, %d clones (%d convolutions or GEMMs)\n", ct_basename(path),
               (long long)best, (long long)c.m->arena_plain, clones, costly);
        cr_expect_eq(clones > 0, best < c.m->arena_plain, "%s: %d clones, arena %lld of %lld", path, clones,
                     (long long)best, (long long)c.m->arena_plain);
        compiled_free(&c);
    }
    /* lenet, layers, blocks, activations, convnet (by recomputing a convolution) and both
     * ResNets; allops' only cheap saved values were ReLU inputs, which the backward no
     * longer reads */
    cr_expect_geq(shrunk, 7, "only %d models gained from recomputation", shrunk);
}

/* ---- the same numbers ---- */

/* Deterministic values for a source node, from its name and index. */
static void fill(const ModelIR *m, const Node *nd, double *v) {
    int64_t cnt = shape_numel(&nd->shape);
    unsigned h = 5381;
    for (const char *p = nd->name ? nd->name : ""; *p; p++) h = h * 33 + (unsigned char)*p;
    for (int64_t i = 0; i < cnt; i++) {
        if (nd->op == OP_input && nd->dtype == DT_I32) v[i] = (double)((i * 7 + 3) % m->outputs[0].sample_numel);
        else if (nd->op == OP_input) v[i] = (float)sin(0.37 * (double)i + 0.1);
        else v[i] = (float)(0.5 * sin(0.11 * (double)i + (double)(h % 97)));
    }
}

/* The same double, or (bits = 0) the same value: 0 == -0. */
static int same_values(const double *a, const double *b, int64_t n, int bits) {
    if (bits) return !memcmp(a, b, sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* The train graphs of a and b (compiled from path) give the same loss, output and
 * gradients in the reference interpreter, bit for bit or (bits = 0) value for value.
 * Returns how many gradients it compared. */
static int interp_same(const char *path, const Compiled *a, const Compiled *b, int bits) {
    Interp *ia = interp_new(a->m->train), *ib = interp_new(b->m->train);
    for (int id = 0; id < a->m->train->n; id++)
        if (op_of(&a->m->train->nodes[id])->kind == K_SOURCE) fill(a->m, &a->m->train->nodes[id], ia->vals[id]);
    for (int id = 0; id < b->m->train->n; id++)
        if (op_of(&b->m->train->nodes[id])->kind == K_SOURCE) fill(b->m, &b->m->train->nodes[id], ib->vals[id]);
    interp_run(ia);
    interp_run(ib);
    const Graph *ga = a->m->train, *gb = b->m->train;
    cr_expect_eq(ia->vals[ga->loss][0], ib->vals[gb->loss][0], "%s: loss %.17g vs %.17g", path, ia->vals[ga->loss][0],
                 ib->vals[gb->loss][0]);
    int64_t no = shape_numel(&ga->nodes[ga->outputs[0]].shape);
    cr_expect(same_values(ia->vals[ga->outputs[0]], ib->vals[gb->outputs[0]], no, bits), "%s: output differs", path);
    int updates = 0;
    for (int x = 0; x < ga->n; x++) {
        const Node *ux = &ga->nodes[x];
        if (op_of(ux)->kind != K_UPDATE || ux->op == OP_ema_update) continue;
        const char *name = ga->nodes[ux->in[0]].name;
        for (int y = 0; y < gb->n; y++) {
            const Node *uy = &gb->nodes[y];
            if (uy->op != ux->op || strcmp(gb->nodes[uy->in[0]].name, name)) continue;
            int64_t cnt = shape_numel(&ga->nodes[ux->in[1]].shape);
            cr_expect(same_values(ia->vals[ux->in[1]], ib->vals[uy->in[1]], cnt, bits),
                      "%s: the gradient of %s differs", path, name);
            updates++;
        }
    }
    cr_expect_gt(updates, 0);
    printf("%s (batch %d): loss %.17g, %d gradients identical\n", ct_basename(path), ga->batch, ia->vals[ga->loss][0],
           updates);
    interp_free(ia);
    interp_free(ib);
    return updates;
}

/* Values of the train graph's loss, output, and each update's gradient, by parameter. */
static void interp_compare(const char *path, int batch) {
    int64_t best = min_arena(path, batch);
    Compiled a, b;
    compile_file(&a, path, batch, 0);
    compile_file(&b, path, batch, best);
    cr_assert_not_null(a.m, "%s", a.r.diag);
    cr_assert_not_null(b.m, "%s", b.r.diag);
    cr_assert_gt(b.m->recomputed, 0, "%s: nothing recomputed", path);
    interp_same(path, &a, &b, 1);
    printf("%s: %d tensors recomputed\n", ct_basename(path), b.m->recomputed);
    compiled_free(&a);
    compiled_free(&b);
}

Test(recompute, interpreter_identical) {
    interp_compare(MLC_TEST_DIR "/data/layers.mdl", 0);
    interp_compare(MLC_TEST_DIR "/data/blocks.mdl", 0);
    interp_compare(MLC_TEST_DIR "/data/activations.mdl", 0);
    interp_compare(LENET, 2);
    interp_compare(RESNET, 2);
}

/* The driver: 5 train steps on changing data, each loss printed exactly (%a), then every
 * persistent tensor (parameters, optimizer state, running statistics). */
static const char driver_src[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"mlc_model.h\"\n"
    "extern const mlc_model_api MLC_MODEL_API;\n"
    "int main(int argc, char **argv) {\n"
    "    const mlc_model_api *api = &MLC_MODEL_API;\n"
    "    if (argc < 2) return 2;\n"
    "    int n = atoi(argv[1]);\n"
    "    api->set_threads(2);\n"
    "    void *m = api->create(3, n);\n"
    "    if (!m) return 3;\n"
    "    long long ni = api->inputs[0].numel * n, no = api->outputs[0].numel * n;\n"
    "    float *x = malloc(sizeof(float) * (size_t)ni), *out = malloc(sizeof(float) * (size_t)no);\n"
    "    int *y = malloc(sizeof(int) * (size_t)n);\n"
    "    for (int s = 0; s < 5; s++) {\n"
    "        for (long long i = 0; i < ni; i++) x[i] = (float)sin(0.37 * (double)i + 0.1 + s);\n"
    "        for (int i = 0; i < n; i++) y[i] = (int)((i * 7 + 3 + s) % api->outputs[0].numel);\n"
    "        float loss = api->train_step(m, (const void *[]){x, y}, n, 0.05f, (float *[MLC_MAX_OUTPUTS]){out});\n"
    "        printf(\"step %d loss %a\\n\", s, loss);\n"
    "    }\n" CT_DRIVER_PRINT_TENSORS
    "    api->destroy(m);\n"
    "    free(x); free(y); free(out);\n"
    "    return 0;\n"
    "}\n";

/* Emits the model (batch, budget) into dir/tag.c, links it with the driver and runs it;
 * returns its output (malloc'd). */
static char *run_trainer_with(const char *path, const CompileOptions *o, const char *dir, const char *tag,
                              int *recomputed) {
    Compiled c;
    compile_file_with(&c, path, o);
    cr_assert_not_null(c.m, "%s:\n%s", path, c.r.diag);
    *recomputed = c.m->recomputed;
    char src[600], hdr[600], drv[600], exe[600], def[300];
    snprintf(src, sizeof src, "%s/%s.c", dir, tag);
    snprintf(drv, sizeof drv, "%s/driver.c", dir);
    snprintf(exe, sizeof exe, "%s/%s", dir, tag);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%s_api", c.m->spec.name);
    cr_assert_eq(write_model_sources(c.m, &target_c, src, hdr, sizeof hdr), 0);
    cr_assert_eq(ct_write_file(drv, driver_src), 0);
    char san[] = MLC_TEST_SANITIZE, noop[] = "-DMLC_TEST_NO_SANITIZE";
    char *cc_argv[] = {"cc",
                       "-std=c11",
                       "-O2",
                       "-fopenmp",
                       "-D_POSIX_C_SOURCE=200809L",
                       "-I" MLC_RUNTIME_INC,
                       "-I" OPENBLAS_INC,
                       def,
                       san[0] ? san : noop,
                       src,
                       drv,
                       "-o",
                       exe,
                       "-L" MLC_RUNTIME_LIB_DIR,
                       "-lmlckernels",
                       "-lmlcrt",
                       "-lopenblas",
                       "-lz",
                       "-lm",
                       NULL};
    char *log = NULL;
    int st = ct_run(cc_argv, &log);
    cr_assert_eq(st, 0, "%s: building the driver failed:\n%s", path, log);
    free(log);
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%d", c.m->spec.batch);
    char *run_argv[] = {exe, nbuf, NULL};
    char *out = NULL;
    st = ct_run(run_argv, &out);
    cr_assert_eq(st, 0, "%s: the driver failed (status %d):\n%.2000s", path, st, out);
    compiled_free(&c);
    return out;
}

static char *run_trainer(const char *path, int batch, int64_t budget, const char *dir, const char *tag,
                         int *recomputed) {
    CompileOptions o = {.batch = batch, .mem_budget = budget, .target = TARGET_C};
    return run_trainer_with(path, &o, dir, tag, recomputed);
}

/* Two trainers' outputs (losses, then every persistent tensor) are the same bytes; the
 * message shows the first line where they part. */
static void expect_same_output(const char *path, const char *a, const char *b, const char *name_a, const char *name_b) {
    cr_expect(strstr(a, "step 4 loss ") != NULL, "%s: no losses printed:\n%.500s", path, a);
    const char *x = a, *y = b;
    int line = 1;
    while (*x && *x == *y) line += *x++ == '\n', y++;
    cr_expect(!strcmp(a, b), "%s: trainers differ from line %d:\n  %-8s %.120s\n  %-8s %.120s", path, line, name_a, x,
              name_b, y);
}

static void trainers_agree(const char *path, int batch) {
    int64_t best = min_arena(path, batch);
    char *dir = ct_tmpdir("recompute");
    cr_assert_not_null(dir);
    int r0, r1;
    char *plain = run_trainer(path, batch, 0, dir, "plain", &r0);
    char *budget = run_trainer(path, batch, best, dir, "budget", &r1);
    cr_expect_eq(r0, 0);
    cr_expect_gt(r1, 0, "%s: nothing recomputed at budget %lld", path, (long long)best);
    expect_same_output(path, plain, budget, "plain:", "budget:");
    const char *l4 = strstr(plain, "step 4 loss ");
    int l4n = l4 ? (int)strcspn(l4, "\n") : 1;
    printf("%s: 5 steps bit-identical with %d tensors recomputed (%.*s)\n", ct_basename(path), r1, l4n, l4 ? l4 : "?");
    free(plain);
    free(budget);
    ct_rmdir(dir);
    free(dir);
}

Test(recompute, generated_losses_identical) {
    trainers_agree(MLC_TEST_DIR "/data/activations.mdl", 0);
    trainers_agree(MLC_TEST_DIR "/data/blocks.mdl", 0);
    trainers_agree(LENET, 8);                            /* dropout: the mask comes from (seed, step, element) */
    trainers_agree(MLC_TEST_DIR "/data/convnet.mdl", 0); /* two convolutions computed again */
}

/* ---- relu_pool.c: the ReLU backward's mask moved in front of the pooling backward ---- */

/* Pooling backwards whose dy is a mul (a mask relu_pool.c moved there). */
static int masked_dy(const Graph *g) {
    int k = 0;
    for (int id = 0; id < g->n; id++)
        k += g->nodes[id].op == OP_maxpool2d_bwd && g->nodes[g->nodes[id].in[0]].op == OP_mul;
    return k;
}

/* With and without relu_pool: the interpreter's loss, output and gradients are the same
 * values (0 == -0: masking dy, then adding it to dx's 0 gives +0 where the mask of the
 * sum gives -0 for a negative dy), and the generated C trainers print the same bits over
 * 5 steps (its 2x2 path stores dy itself, no sum; poolrelu's general path's signed
 * zeros vanish in the sums after it). */
static void relu_pool_same(const char *path, int batch) {
    CompileOptions with = {.batch = batch, .target = TARGET_C}, without = with;
    without.no_relu_pool = 1;
    Compiled a, b;
    compile_file_with(&a, path, &without);
    compile_file_with(&b, path, &with);
    cr_assert_not_null(a.m, "%s", a.r.diag);
    cr_assert_not_null(b.m, "%s", b.r.diag);
    cr_expect_eq(masked_dy(a.m->train), 0, "%s: relu_pool ran anyway", path);
    cr_expect_gt(masked_dy(b.m->train), 0, "%s: relu_pool rewrote nothing", path);
    interp_same(path, &a, &b, 0);
    compiled_free(&a);
    compiled_free(&b);

    char *dir = ct_tmpdir("relu-pool");
    cr_assert_not_null(dir);
    int r;
    char *plain = run_trainer_with(path, &without, dir, "plain", &r);
    char *moved = run_trainer_with(path, &with, dir, "moved", &r);
    expect_same_output(path, plain, moved, "without:", "with:");
    free(plain);
    free(moved);
    ct_rmdir(dir);
    free(dir);
}

Test(recompute, relu_pool_identical) {
    relu_pool_same(LENET, 8);
    relu_pool_same(MLC_TEST_DIR "/data/poolrelu.mdl", 0);
}

/* ---- the command line ---- */

static int mlc(char **out, const char *a1, const char *a2, const char *a3, const char *a4, const char *a5) {
    char *argv[] = {MLC_EXE, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL};
    return ct_run(argv, out);
}

Test(recompute, cli) {
    char *out = NULL;
    int st = mlc(&out, LENET, "--mem-budget", "1K", NULL, NULL);
    cr_expect_eq(st, 1, "status %d:\n%s", st, out);
    cr_expect(strstr(out, "error: the train step does not fit in --mem-budget 1024 bytes (1.0 KiB) at batch 64") !=
                  NULL,
              "%s", out);
    free(out);

    /* mlc build applies it before compiling anything */
    char *dir = ct_tmpdir("recompute-cli");
    char exe[600];
    snprintf(exe, sizeof exe, "%s/lenet", dir);
    char *argv[] = {MLC_EXE, "build", LENET, "-o", exe, "--mem-budget", "2k", NULL};
    st = ct_run(argv, &out);
    cr_expect_eq(st, 1, "status %d:\n%s", st, out);
    cr_expect(strstr(out, "does not fit in --mem-budget 2048 bytes (2.0 KiB)") != NULL, "%s", out);
    cr_expect(access(exe, F_OK) != 0, "mlc build wrote a trainer despite the error");
    free(out);
    ct_rmdir(dir);
    free(dir);

    static const char *const bad[] = {"12X", "0", "-5", "M", "1.5M", "9999999999G", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = mlc(&out, LENET, "--mem-budget", bad[i], NULL, NULL);
        cr_expect_eq(st, 2, "--mem-budget '%s': status %d:\n%s", bad[i], st, out);
        cr_expect(strstr(out, "--mem-budget: expected a positive byte count") != NULL, "%s", out);
        free(out);
    }
    st = mlc(&out, LENET, "--mem-budget", NULL, NULL, NULL);
    cr_expect_eq(st, 2, "status %d:\n%s", st, out);
    free(out);

    /* 1024-based suffixes; the report names the budget, both arenas and the clones */
    st = mlc(&out, RESNET, "--mem-budget", "64M", "--report", NULL);
    cr_assert_eq(st, 0, "status %d:\n%.2000s", st, out);
    /* The arena sizes follow the ops' workspace rules (the conv routines' scratch, say),
     * so they are not pinned here: the one without recomputation is over the budget,
     * the one with it within. */
    const char *mb = strstr(out, "memory budget: 64.0 MiB (67108864 bytes); train-step arena ");
    long long full = 0, cut = 0;
    cr_expect(mb && sscanf(mb,
                           "memory budget: 64.0 MiB (67108864 bytes); train-step arena %*f MiB (%lld bytes) "
                           "without recomputation, %*f MiB (%lld bytes) with",
                           &full, &cut) == 2,
              "%.3000s", mb ? mb : out);
    cr_expect(full > 67108864LL && cut > 0 && cut <= 67108864LL,
              "arenas %lld and %lld bytes for a 67108864-byte budget", full, cut);
    cr_expect(strstr(out, " recomputed\n") != NULL, "no tensor marked recomputed");
    cr_expect(strstr(out, "saved for backward") != NULL);
    free(out);

    st = mlc(&out, RESNET, "--mem-budget", "64M", "--dump-ir=final", NULL);
    cr_assert_eq(st, 0);
    cr_expect(strstr(out, "; --- after recompute (train step, as emitted) ---") != NULL);
    cr_expect(strstr(out, " recomputed  ; resnet.mdl:") != NULL, "clones are not marked in the dump");
    free(out);
}
