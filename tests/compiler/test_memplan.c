/* test_memplan.c - the memory plan never lets two tensors that are alive at the same time
 * share bytes, for any batch size, and fusion never reads a value before its group has
 * written it: checked on every sample's train step and inference and on random graphs,
 * by a checker independent of memplan.c's allocator and of fuse.c. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ctest_util.h"
#include "ops.h"

/* Buffer owner of a view chain, as the plan treats reshapes. */
static int owner(const Graph *g, int id) {
    while (g->nodes[id].op == OP_reshape) id = g->nodes[id].in[0];
    return id;
}

/* b took over a's buffer in place: legal when a dies in b's group, which reads it only at
 * the element it writes of b (same shape, same index map), never through a view. */
static int legal_inplace(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at, const int *last, int a,
                         int b) {
    if (p->inplace_of[b] != a + 1 || at[b] != last[a] || !shape_eq(&g->nodes[a].shape, &g->nodes[b].shape)) return 0;
    for (int r = 0; r < g->n; r++)
        for (int k = 0; k < g->nodes[r].nin; k++) {
            if (g->nodes[r].in[k] != a) continue;
            if (g->nodes[r].op == OP_reshape) return 0;
            if (at[r] != at[b]) continue;
            int8_t m[IR_MAX_RANK];
            fusion_operand_map(g, fp, r, k, m);
            if (memcmp(m, fp->map[b], sizeof m)) return 0;
        }
    return 1;
}

/* Returns the number of overlapping pairs and ordering errors (and reports the first).
 * A node's code runs at its group's root (fp); a buffer lives from there to the last
 * position that reads it. */
static int check_plan(const Graph *g, const FusionPlan *fp, const MemPlan *p, const char *what) {
    int n = g->n, bad = 0;
    int *last = calloc((size_t)n, sizeof(int)), *at = calloc((size_t)n, sizeof(int));
    for (int id = 0; id < n; id++) at[id] = fp->at[id] >= 0 ? fp->at[id] : id;
    for (int id = 0; id < n; id++) last[id] = at[id];
    for (int id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) {
            int x = g->nodes[id].in[k], o = owner(g, x);
            if (g->nodes[o].op == OP_const || op_of(&g->nodes[o])->kind == K_SOURCE) continue;
            if (last[o] < at[id]) last[o] = at[id];
            /* read from memory before its group ran, or in the same group through memory */
            int same_group = at[id] == at[o] && fp->root[x] == fp->root[id] && fp->root[o] == fp->root[id];
            if (x == o && fp->epilogue[o] >= 0 && fp->epilogue[o] == fp->root[id]) {
                /* a GEMM's epilogue reads the block the GEMM just wrote, at the same element */
                int8_t m[IR_MAX_RANK];
                fusion_operand_map(g, fp, id, k, m);
                same_group = m[0] == 0 && m[1] == 1 && g->nodes[o].shape.rank == 2;
            }
            if ((at[id] < at[o] || (at[id] == at[o] && !same_group)) && !bad++)
                cr_log_error("%s: %%%d (at %d) reads %%%d (written at %d)", what, id, at[id], o, at[o]);
            if (fp->inl[o] && !same_group && !bad++)
                cr_log_error("%s: %%%d reads %%%d, which is kept in a register of another group", what, id, o);
        }
    static const int batches[] = {1, 3, 64, 1000};
    for (int bi = 0; bi < 4; bi++) {
        int64_t B = batches[bi];
        for (int a = 0; a < n; a++) {
            if (!p->has_buf[a]) continue;
            int64_t ca, ba;
            shape_numel_affine(&g->nodes[a].shape, &ca, &ba);
            int64_t a0 = p->off_c[a] + p->off_b[a] * B, a1 = a0 + ca + ba * B;
            /* inside the arena, and clear of the workspace */
            int64_t ws0 = p->ws_off_c + p->ws_off_b * B;
            if (a1 > p->size_c + p->size_b * B || (a1 > ws0 && a0 < ws0 + p->ws_size_c + p->ws_size_b * B)) {
                if (!bad++) cr_log_error("%s: %%%d [%lld, %lld) leaves its region at B = %lld", what, a, (long long)a0,
                                         (long long)a1, (long long)B);
            }
            for (int b = 0; b < n; b++) {
                if (b == a || !p->has_buf[b] || at[b] > last[a] || at[a] > last[b]) continue; /* never both live */
                int64_t cb, bb;
                shape_numel_affine(&g->nodes[b].shape, &cb, &bb);
                int64_t b0 = p->off_c[b] + p->off_b[b] * B, b1 = b0 + cb + bb * B;
                if (a0 == b0 && a1 == b1 && (legal_inplace(g, fp, p, at, last, a, b) || legal_inplace(g, fp, p, at, last, b, a)))
                    continue;
                if (a0 < b1 && b0 < a1 && !bad++)
                    cr_log_error("%s: %%%d [%lld, %lld) and %%%d [%lld, %lld) overlap while both live, B = %lld", what, a,
                                 (long long)a0, (long long)a1, b, (long long)b0, (long long)b1, (long long)B);
            }
        }
    }
    free(last);
    free(at);
    return bad;
}

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
        MemPlan p = plan_memory(&a, g, &fp);
        char what[64];
        snprintf(what, sizeof what, "random graph %d", trial);
        cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
        arena_free(&a);
    }
}
