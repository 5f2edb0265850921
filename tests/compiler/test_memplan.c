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
        MLC_TEST_DIR "/data/convwide.mdl",          MLC_TEST_DIR "/data/convepi.mdl",
        MLC_TEST_DIR "/data/densesq.mdl",
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
        MemPlan p = plan_memory(&a, g, &fp);
        char what[64];
        snprintf(what, sizeof what, "random graph %d", trial);
        cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
        arena_free(&a);
    }
}

/* Random DAGs of 3x3 convolutions ([B, 2, 4, 4] -> [B, 2, 4, 4]), elementwise ops with
 * per-channel and per-sample broadcasts, and residual adds: conv epilogues, in place or
 * not, beside the convs' own inputs. Planned as they are (as an inference graph would
 * be) and differentiated (as a train step). */
Test(memplan, random_conv_graphs) {
    int epilogues = 0;
    for (int trial = 0; trial < 200; trial++) {
        Arena a = {0};
        Graph *g = graph_new(&a, MODE_TRAIN, 5);
        int64_t d[4] = {5, 2, 4, 4}, w[4] = {2, 2, 3, 3}, c[3] = {2, 1, 1}, s[4] = {5, 1, 1, 1};
        int pool[64], np = 0;
        pool[np++] = graph_add_source(g, OP_input, shape_make(4, d, 1), DT_F32, "x", NULL);
        int wt = graph_add_source(g, OP_param, shape_make(4, w, 0), DT_F32, "w", NULL);
        pool[np++] = graph_add_source(g, OP_param, shape_make(3, c, 0), DT_F32, "b", NULL);
        pool[np++] = graph_add_source(g, OP_input, shape_make(4, s, 1), DT_F32, "s", NULL);
        int steps = 5 + RND(25);
        for (int i = 0; i < steps && np < 64; i++) {
            int x = pool[np - 1 - RND(np < 3 ? np : 3)], y = pool[RND(np)]; /* chains, and reads of older values */
            int r;
            switch (RND(5)) {
            case 0:
            case 1:
                if (shape_eq(&g->nodes[x].shape, &g->nodes[pool[0]].shape)) {
                    int in[2] = {x, wt};
                    int64_t ia[4] = {1 | 1 << 16, 1 | 1 << 16, 1 | 1 << 16, 1};
                    r = graph_add(g, OP_conv2d, in, 2, ia, NULL, NULL);
                } else {
                    r = ir_unary(g, OP_tanh, x, NULL);
                }
                break;
            case 2: r = ir_unary(g, RND(2) ? OP_relu : OP_neg, x, NULL); break;
            default: {
                Op ops[] = {OP_add, OP_mul, OP_sub};
                Node probe = {0};
                probe.op = OP_add, probe.nin = 2, probe.in[0] = x, probe.in[1] = y;
                if (shape_rule_broadcast(g, &probe) == NULL) r = ir_binary(g, ops[RND(3)], x, y, NULL);
                else r = ir_unary(g, OP_sigmoid, x, NULL);
            }
            }
            pool[np++] = r;
        }
        int l = pool[np - 1];
        while (g->nodes[l].shape.rank > 0) l = ir_reduce(g, OP_mean, l, 0, 0, NULL);
        g->loss = l;
        g->nodes[l].role |= ROLE_LOSS;
        for (int train = 0; train < 2; train++) {
            if (train) {
                GradList gl = autodiff(g);
                OptimizerSpec opt = {.kind = "sgd", .lr = 0.1};
                add_optimizer(g, &gl, &opt);
            }
            simplify(g);
            dce(g);
            ir_verify(g, "random conv graph");
            FusionPlan fp = fuse_graph(&a, g);
            MemPlan p = plan_memory(&a, g, &fp);
            for (int id = 0; id < g->n; id++) epilogues += g->nodes[id].op == OP_conv2d && fp.epilogue[id] >= 0;
            char what[64];
            snprintf(what, sizeof what, "random conv graph %d%s", trial, train ? " (train)" : "");
            cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
        }
        arena_free(&a);
    }
    cr_expect_gt(epilogues, 100, "only %d conv epilogues in 400 graphs", epilogues);
    cr_log_info("%d conv epilogues in 400 graphs", epilogues);
}
