/* test_memplan.c - the memory plan never lets two tensors that are alive at the same time
 * share bytes, for any batch size, and fusion never reads a value before its group has
 * written it: checked on every sample's train step and inference and on random graphs,
 * by a checker independent of memplan.c's allocator and of fuse.c. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ctest_util.h"
#include "ops.h"
#include "plancheck.h"

static void check_model(const char *path) {
    Arena a = {0};
    SrcFile *src = ct_load_src(path);
    cr_assert_not_null(src, "cannot read %s", path);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s:\n%s", path, r.diag);
    char what[256];
    snprintf(what, sizeof what, "%s train", ct_basename(path));
    cr_expect_eq(check_plan(r.m->train, &r.m->train_fuse, &r.m->train_plan, what), 0, "%s: overlapping live tensors", what);
    snprintf(what, sizeof what, "%s eval", ct_basename(path));
    cr_expect_eq(check_plan(r.m->eval, &r.m->eval_fuse, &r.m->eval_plan, what), 0, "%s: overlapping live tensors", what);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

Test(memplan, samples) {
    static const char *const paths[] = {
        MLC_SOURCE_ROOT "/samples/mlp.mdl",         MLC_SOURCE_ROOT "/samples/lenet.mdl",
        MLC_SOURCE_ROOT "/samples/resnet.mdl",      MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl",
        MLC_TEST_DIR "/data/convnet.mdl",           MLC_TEST_DIR "/data/layers.mdl",
        MLC_TEST_DIR "/data/blocks.mdl",            MLC_TEST_DIR "/data/allops.mdl",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) check_model(paths[i]);
}

/* Random DAGs of elementwise ops, reductions and matmuls over [B, k] and [k] tensors,
 * with values used many times, late and never, differentiated and planned. */
static unsigned rnd_state = 2024;
static int rnd(int n) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (int)((rnd_state >> 16) % (unsigned)n);
}
#define RND(n) rnd(n)

Test(memplan, random_graphs) {
    for (int trial = 0; trial < 200; trial++) {
        Arena a = {0};
        Graph *g = graph_new(&a, MODE_TRAIN, 8);
        int64_t d[2] = {8, 6}, w[2] = {6, 6}, v[1] = {6};
        int pool[64], np = 0;
        pool[np++] = graph_add_source(g, OP_input, shape_make(2, d, 1), DT_F32, "x", NULL);
        pool[np++] = graph_add_source(g, OP_param, shape_make(2, w, 0), DT_F32, "w", NULL);
        pool[np++] = graph_add_source(g, OP_param, shape_make(1, v, 0), DT_F32, "b", NULL);
        int steps = 5 + RND(30);
        for (int i = 0; i < steps && np < 64; i++) {
            int x = pool[RND(np)], y = pool[RND(np)];
            const Shape *sx = &g->nodes[x].shape, *sy = &g->nodes[y].shape;
            int r;
            switch (RND(5)) {
            case 0:
                if (sx->rank == 2 && sy->rank == 2 && !sy->bmask && sx->d[1] == sy->d[0] && !(sx->bmask & 2))
                    r = ir_matmul(g, x, y, 0, 0, NULL);
                else r = ir_unary(g, OP_relu, x, NULL);
                break;
            case 1: r = ir_unary(g, RND(2) ? OP_exp : OP_neg, x, NULL); break;
            case 2:
                if (sx->rank == 2) r = ir_reduce(g, RND(2) ? OP_sum : OP_mean, x, RND(2), 1, NULL);
                else r = ir_unary(g, OP_tanh, x, NULL);
                break;
            default: {
                Op ops[] = {OP_add, OP_mul, OP_sub};
                /* only shapes that broadcast: equal, or a [k] / [1, k] against [B, k] */
                Node probe = {0};
                probe.op = OP_add, probe.nin = 2, probe.in[0] = x, probe.in[1] = y;
                if (shape_rule_broadcast(g, &probe) == NULL)
                    r = ir_binary(g, ops[RND(3)], x, y, NULL);
                else
                    r = ir_unary(g, OP_sigmoid, x, NULL);
            }
            }
            pool[np++] = r;
        }
        /* loss: the mean of the last value, whatever its shape */
        int l = pool[np - 1];
        while (g->nodes[l].shape.rank > 0) l = ir_reduce(g, OP_mean, l, 0, 0, NULL);
        g->loss = l;
        g->nodes[l].role |= ROLE_LOSS;
        GradList gl = autodiff(g);
        OptimizerSpec opt = {.kind = "sgd", .lr = 0.1, .momentum = 0.9};
        add_optimizer(g, &gl, &opt);
        simplify(g);
        dce(g);
        ir_verify(g, "random graph");
        FusionPlan fp = fuse_graph(&a, g);
        MemPlan p = plan_memory(&a, g, &fp, TARGET_C);
        char what[64];
        snprintf(what, sizeof what, "random graph %d", trial);
        cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
        arena_free(&a);
    }
}

/* The workspace is the target's own: the C convs take a padded sample per thread and
 * nothing per batch element; the CUDA convs take per-sample columns and nothing per
 * thread. Neither target's arena carries the other's scratch. */
Test(memplan, workspace_per_target) {
    SrcFile *src = ct_load_src(MLC_SOURCE_ROOT "/samples/lenet.mdl");
    cr_assert_not_null(src);
    MemPlan plans[2];
    for (int t = 0; t < 2; t++) {
        Arena a = {0};
        jmp_buf on_error;
        if (!DIAG_TRY(on_error)) cr_assert_fail("lenet.mdl does not compile");
        CompileOptions o = {.target = t ? TARGET_CUDA : TARGET_C};
        ModelIR *m = compile_model_opts(&a, parse_program(&a, src), &o, NULL);
        diag_jmp = NULL;
        plans[t] = m->train_plan;
        char what[64];
        snprintf(what, sizeof what, "lenet train (%s)", t ? "cuda" : "c");
        cr_expect_eq(check_plan(m->train, &m->train_fuse, &m->train_plan, what), 0, "%s: overlapping live tensors", what);
        arena_free(&a);
    }
    cr_expect_gt(plans[0].ws_per_thread, 0, "C: no per-thread conv scratch");
    cr_expect_eq(plans[0].ws_size_b, 0, "C: %lld floats per sample of workspace", (long long)plans[0].ws_size_b);
    cr_expect_eq(plans[1].ws_per_thread, 0, "CUDA: %lld floats per thread", (long long)plans[1].ws_per_thread);
    cr_expect_gt(plans[1].ws_size_b, 0, "CUDA: no per-sample columns");
    /* a thread more adds one slot to the C arena and nothing to the CUDA one */
    cr_expect_eq(plan_floats(&plans[0], 64, 3) - plan_floats(&plans[0], 64, 2), plans[0].ws_per_thread);
    cr_expect_eq(plan_floats(&plans[1], 64, 3), plan_floats(&plans[1], 64, 2));
    srcfile_free(src);
}

/* A ReLU's backward reads its output, which the next layer keeps anyway: its input is
 * not saved for backward, so in mlp's train step the bias add before each ReLU stays in
 * a register of the ReLU's group. */
Test(memplan, relu_input_not_saved) {
    Arena a = {0};
    SrcFile *src = ct_load_src(MLC_SOURCE_ROOT "/samples/mlp.mdl");
    cr_assert_not_null(src);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s", r.diag);
    const Graph *g = r.m->train;
    int relus = 0;
    for (int id = 0; id < g->n; id++) {
        if (g->nodes[id].op != OP_relu) continue;
        relus++;
        int x = g->nodes[id].in[0];
        for (int u = g->loss + 1; u < g->n; u++)
            for (int k = 0; k < g->nodes[u].nin; k++)
                cr_expect_neq(g->nodes[u].in[k], x, "%%%d (relu %%%d's input) is read by backward node %%%d", x, id, u);
        cr_expect(r.m->train_fuse.inl[x], "relu %%%d's input %%%d is not kept in a register", id, x);
    }
    cr_expect_eq(relus, 2);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}
