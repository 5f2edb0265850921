/* test_memplan.c - the memory plan never lets two tensors that are alive at the same time
 * share bytes, for any batch size, and fusion never reads a value before its group has
 * written it: checked on every sample's train step and inference and on random graphs,
 * by a checker independent of memplan.c's placement and of fuse.c. The offline placement
 * is never bigger than first-fit in program order, and fills the holes it leaves. The
 * gradient slab holds every gradient once, in the order the backward finishes them. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ctest_util.h"
#include "ops.h"
#include "plancheck.h"

/* The gradient slab (grad_slab.c): every parameter the loss depends on has a slot of its
 * own, 16-float aligned, inside grad_floats, and the slots come in the order the backward
 * finishes the gradients (where their code runs), the first done first. */
static void check_grad_slab(const ModelIR *m, const char *what) {
    int64_t end = 0;
    int prev_at = -1, slots = 0;
    for (int64_t off = 0; off < m->grad_floats;) { /* walk the slots in slab order */
        int p = -1;
        for (int i = 0; i < m->npers; i++)
            if (m->pers[i].grad_offset == off) p = i;
        cr_assert_geq(p, 0, "%s: no gradient at slab offset %lld", what, (long long)off);
        const Persistent *ps = &m->pers[p];
        int g = ps->grad_node, at = m->train_fuse.at[g] >= 0 ? m->train_fuse.at[g] : g;
        cr_assert(m->train->nodes[g].role & ROLE_GRAD, "%s: %s's gradient %%%d is no gradient", what, ps->name, g);
        if (ps->grad_copy_of >= 0) { /* copied at the end: after all others */
            cr_assert_eq(m->pers[ps->grad_copy_of].grad_node, g, "%s", what);
            at = m->train->n;
        }
        cr_assert_geq(at, prev_at, "%s: %s's gradient (done at %d) after one done at %d", what, ps->name, at, prev_at);
        prev_at = at;
        slots++;
        end = off + shape_numel(&ps->shape);
        off = (end + 15) & ~(int64_t)15;
    }
    cr_assert_eq((end + 15) & ~(int64_t)15, m->grad_floats, "%s", what);
    int params = 0;
    for (int i = 0; i < m->npers; i++) params += m->pers[i].is_param && m->pers[i].grad_offset >= 0;
    cr_assert_eq(slots, params, "%s: %d slots for %d parameters with gradients", what, slots, params);
}

Test(memplan, grad_slab_mlp_last_layer_first) {
    Arena a = {0};
    SrcFile *src = ct_load_src(MLC_SOURCE_ROOT "/samples/mlp.mdl");
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s", r.diag);
    static const char *const order[] = {"fc3.bias", "fc3.weight", "fc2.bias", "fc2.weight", "fc1.bias", "fc1.weight"};
    static const int64_t offsets[] = {0, 16, 1296, 1424, 34192, 34448};
    for (int k = 0; k < 6; k++) {
        int p = model_find_persistent(r.m, order[k]);
        cr_assert_geq(p, 0);
        cr_expect_eq(r.m->pers[p].grad_offset, offsets[k], "%s at %lld", order[k], (long long)r.m->pers[p].grad_offset);
    }
    cr_expect_eq(r.m->grad_floats, 34448 + 784 * 256);
    for (int i = 0; i < r.m->npers; i++)
        if (!r.m->pers[i].is_param) cr_expect_eq(r.m->pers[i].grad_offset, -1, "%s", r.m->pers[i].name);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

static void check_model(const char *path) {
    Arena a = {0};
    SrcFile *src = ct_load_src(path);
    cr_assert_not_null(src, "cannot read %s", path);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s:\n%s", path, r.diag);
    char what[256];
    snprintf(what, sizeof what, "%s train", ct_basename(path));
    check_grad_slab(r.m, what);
    cr_expect_eq(check_plan(r.m->train, &r.m->train_fuse, &r.m->train_plan, what), 0, "%s: overlapping live tensors",
                 what);
    snprintf(what, sizeof what, "%s eval", ct_basename(path));
    cr_expect_eq(check_plan(r.m->eval, &r.m->eval_fuse, &r.m->eval_plan, what), 0, "%s: overlapping live tensors",
                 what);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

/* Both regions of plan p no bigger than first-fit's (q), and the same plan again when
 * planned again (r): offsets and sizes. */
static void expect_no_worse(const Graph *g, const MemPlan *p, const MemPlan *q, const MemPlan *r, const char *what) {
    cr_expect_leq(p->size_b, q->size_b, "%s: %lld floats a sample, first-fit %lld", what, (long long)p->size_b,
                  (long long)q->size_b);
    cr_expect_leq(p->size_c, q->size_c, "%s: %lld floats, first-fit %lld", what, (long long)p->size_c,
                  (long long)q->size_c);
    size_t n = (size_t)g->n;
    cr_expect(!memcmp(p->off_b, r->off_b, sizeof(int64_t) * n) && !memcmp(p->off_c, r->off_c, sizeof(int64_t) * n) &&
                  p->size_b == r->size_b && p->size_c == r->size_c,
              "%s: planned twice, two plans", what);
}

Test(memplan, samples) {
    // clang-format off
    static const char *const paths[] = {
        MLC_SOURCE_ROOT "/samples/mlp.mdl",         MLC_SOURCE_ROOT "/samples/lenet.mdl",
        MLC_SOURCE_ROOT "/samples/resnet.mdl",      MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl",
        MLC_TEST_DIR "/data/convnet.mdl",           MLC_TEST_DIR "/data/layers.mdl",
        MLC_TEST_DIR "/data/blocks.mdl",            MLC_TEST_DIR "/data/allops.mdl",
        MLC_TEST_DIR "/data/rows.mdl",              MLC_TEST_DIR "/data/convwide.mdl",
        MLC_TEST_DIR "/data/convepi.mdl",           MLC_TEST_DIR "/data/densesq.mdl",
        MLC_TEST_DIR "/data/poolov.mdl",           MLC_TEST_DIR "/data/poolrelu.mdl",
        MLC_TEST_DIR "/data/accum_mlp.mdl",        MLC_TEST_DIR "/data/accum_conv.mdl",
    };
    // clang-format on
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) check_model(paths[i]);
}

/* Random DAGs of elementwise ops, reductions (with and without keepdims, logsumexp
 * among them: row reductions fuse into their readers' loops) and matmuls over [B, k] and
 * [k] tensors and one_hot of labels (recomputed where read), with values used many
 * times, late and never, differentiated and planned. */
static unsigned rnd_state = 2024;
static int rnd(int n) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (int)((rnd_state >> 16) % (unsigned)n);
}
#define RND(n) rnd(n)

Test(memplan, random_graphs) {
    int rows = 0, nested = 0, recomputed = 0, smaller = 0; /* what the graphs exercised */
    for (int trial = 0; trial < 200; trial++) {
        Arena a = {0};
        Graph *g = graph_new(&a, MODE_TRAIN, 8);
        int64_t d[2] = {8, 6}, w[2] = {6, 6}, v[1] = {6};
        int pool[64], np = 0;
        pool[np++] = graph_add_source(g, OP_input, shape_make(2, d, 1), DT_F32, "x", NULL);
        pool[np++] = graph_add_source(g, OP_param, shape_make(2, w, 0), DT_F32, "w", NULL);
        pool[np++] = graph_add_source(g, OP_param, shape_make(1, v, 0), DT_F32, "b", NULL);
        if (RND(2)) {
            int lbl = graph_add_source(g, OP_input, shape_make(1, d, 1), DT_I32, "label", NULL);
            pool[np++] = graph_add(g, OP_one_hot, &lbl, 1, ATTRS(AI(A_CLASSES, 6)), NULL);
        }
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
            case 2: {
                Op red[] = {OP_sum, OP_mean, OP_max, OP_logsumexp};
                if (sx->rank == 2) r = ir_reduce(g, red[RND(4)], x, RND(2), RND(2), NULL);
                else r = ir_unary(g, OP_tanh, x, NULL);
                break;
            }
            default: {
                Op ops[] = {OP_add, OP_mul, OP_sub};
                /* only shapes that broadcast: equal, or a [k] / [1, k] against [B, k] */
                Node probe = {0};
                probe.op = OP_add, probe.nin = 2, probe.in[0] = x, probe.in[1] = y;
                if (shape_rule_broadcast(g, &probe) == NULL) r = ir_binary(g, ops[RND(3)], x, y, NULL);
                else r = ir_unary(g, OP_sigmoid, x, NULL);
            }
            }
            pool[np++] = r;
        }
        /* loss: the mean of the last value, whatever its shape, over the first or the last
         * axis first (a per-sample reduction under the mean over the batch) */
        int l = pool[np - 1], last_first = RND(2);
        while (g->nodes[l].shape.rank > 0)
            l = ir_reduce(g, OP_mean, l, last_first ? g->nodes[l].shape.rank - 1 : 0, 0, NULL);
        g->loss = l;
        g->nodes[l].role |= ROLE_LOSS;
        GradList gl = autodiff(g, NULL);
        OptimizerSpec opt = {.kind = "sgd", .lr = 0.1, .momentum = 0.9};
        add_optimizer(g, &gl, &opt, NULL);
        simplify(g);
        dce(g);
        ir_verify(g, "random graph");
        FusionPlan fp = fuse_graph(&a, g);
        MemPlan p = plan_memory(&a, g, &fp, TARGET_C);
        char what[64];
        snprintf(what, sizeof what, "random graph %d", trial);
        cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
        MemPlan ff = plan_memory_in_order(&a, g, &fp, TARGET_C), again = plan_memory(&a, g, &fp, TARGET_C);
        expect_no_worse(g, &p, &ff, &again, what);
        smaller += p.size_b < ff.size_b || p.size_c < ff.size_c;
        for (int id = 0; id < g->n; id++) {
            rows += op_of(&g->nodes[id])->kind == K_REDUCE && fp.root[id] >= 0 && fp.root[id] != id;
            nested += fp.nest[id] >= 0;
            recomputed += fp.dup[id];
        }
        arena_free(&a);
    }
    cr_log_info(
        "random graphs: %d row reductions, %d nested members, %d recomputed values, %d plans smaller than "
        "first-fit's",
        rows, nested, recomputed, smaller);
    cr_expect_gt(rows, 20, "the random graphs hardly exercise row reductions (%d)", rows);
    cr_expect_gt(nested, 20, "the random graphs hardly exercise nested loops (%d)", nested);
    cr_expect_gt(recomputed, 20, "the random graphs hardly exercise recomputed values (%d)", recomputed);
}

/* The checker itself fails on plans that break the new rules: a value no group
 * recomputes that has no buffer, and a register read outside the loop that made it. */
Test(memplan, checker_catches_bad_plans) {
    Arena a = {0};
    SrcFile *src = ct_load_src(MLC_SOURCE_ROOT "/samples/mlp.mdl");
    cr_assert_not_null(src);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s", r.diag);
    const Graph *g = r.m->train;
    int n = g->n, oh = -1, nested = -1;
    for (int id = 0; id < n; id++) {
        if (g->nodes[id].op == OP_one_hot) oh = id;
        if (r.m->train_fuse.nest[id] >= 0 && nested < 0) nested = id;
    }
    cr_assert(oh >= 0 && r.m->train_fuse.dup[oh], "mlp's one_hot is not recomputed where it is read");
    cr_assert_geq(nested, 0, "mlp's loss has no member in a row reduction's loop");
    cr_expect_eq(check_plan(g, &r.m->train_fuse, &r.m->train_plan, "mlp train"), 0);

    plancheck_quiet = 1;
    FusionPlan bad = r.m->train_fuse;
    bad.dup = arena_alloc(&a, (size_t)n);
    memcpy(bad.dup, r.m->train_fuse.dup, (size_t)n);
    bad.dup[oh] = 0; /* read from memory, where it has no buffer */
    cr_expect_gt(check_plan(g, &bad, &r.m->train_plan, "one_hot not recomputed"), 0);

    bad = r.m->train_fuse;
    bad.nest = ARENA_ARRAY(&a, int, n);
    memcpy(bad.nest, r.m->train_fuse.nest, sizeof(int) * (size_t)n);
    bad.nest[nested] = -1; /* made in the group's loop, read in the row reduction's */
    cr_expect_gt(check_plan(g, &bad, &r.m->train_plan, "member out of its loop"), 0);
    plancheck_quiet = 0;

    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
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
        cr_expect_eq(check_plan(m->train, &m->train_fuse, &m->train_plan, what), 0, "%s: overlapping live tensors",
                     what);
        arena_free(&a);
    }
    cr_expect_gt(plans[0].ws_per_thread, 0, "C: no per-thread conv scratch");
    cr_expect_eq(plans[0].ws_size_b, 0, "C: %lld floats per sample of workspace", (long long)plans[0].ws_size_b);
    cr_expect_eq(plans[1].ws_per_thread, 0, "CUDA: %lld floats per thread", (long long)plans[1].ws_per_thread);
    /* CUDA: a chunk of the batch's columns at a time (targets/cuda/conv.c), at most 8 MiB of them,
     * however big the batch */
    cr_expect_eq(plans[1].ws_size_b, 0, "CUDA: %lld floats per sample of workspace", (long long)plans[1].ws_size_b);
    cr_expect_gt(plans[1].ws_size_c, 0, "CUDA: no conv columns");
    cr_expect_leq(plans[1].ws_size_c, (1 << 21) + 16, "CUDA: %lld floats of columns", (long long)plans[1].ws_size_c);
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

/* ---- the 2x2 max-pool backward in place (fuse.c, relu_pool.c) ---- */

static CtCompile compile_with(Arena *a, SrcFile *src, TargetKind t, int no_relu_pool) {
    CompileOptions o = {.target = t, .no_relu_pool = no_relu_pool};
    CtCompile r = ct_compile_with(a, src, (DumpOptions){0}, &o);
    cr_assert_not_null(r.m, "%s", r.diag);
    return r;
}

/* Pooling backwards whose dx took their x's bytes over. */
static int pools_in_place(const Graph *g, const MemPlan *p) {
    int k = 0;
    for (int id = 0; id < g->n; id++)
        k += g->nodes[id].op == OP_maxpool2d_bwd && p->inplace_of[id] == g->nodes[id].in[1] + 1;
    return k;
}

/* LeNet's train step peaked where its first max-pool backward wrote dx beside x, the ReLU
 * output, which the ReLU backward read after it. With relu_pool.c the pooling backward is
 * x's last reader and both 2x2 pooling backwards write dx over x, on both targets (the
 * CUDA kernel takes a window per thread): the C arena went from 23.3 MB to 18.5 MB, and
 * the checker accepts the plans. */
Test(memplan, lenet_pool_backward_in_place) {
    SrcFile *src = ct_load_src(MLC_SOURCE_ROOT "/samples/lenet.mdl");
    cr_assert_not_null(src);
    for (int t = 0; t < 2; t++) {
        Arena a = {0}, b = {0};
        TargetKind tk = t ? TARGET_CUDA : TARGET_C;
        CtCompile with = compile_with(&a, src, tk, 0), without = compile_with(&b, src, tk, 1);
        const ModelIR *m = with.m;
        char what[64];
        snprintf(what, sizeof what, "lenet train (%s)", t ? "cuda" : "c");
        cr_expect_eq(check_plan(m->train, &m->train_fuse, &m->train_plan, what), 0, "%s: the checker refuses it", what);
        cr_expect_eq(pools_in_place(m->train, &m->train_plan), 2, "%s: not both pooling backwards in place", what);
        cr_expect_eq(pools_in_place(without.m->train, &without.m->train_plan), 0);
        int64_t before = 4 * plan_floats(&without.m->train_plan, 64, 1), after = 4 * plan_floats(&m->train_plan, 64, 1);
        cr_expect_lt(after, before, "%s: arena %lld bytes, %lld without relu_pool", what, (long long)after,
                     (long long)before);
        /* 23309056 bytes before relu_pool.c and the in-place pooling backward */
        if (!t) cr_expect_lt(after, 19000000, "%s: arena %lld bytes", what, (long long)after);
        ct_compile_free(&with);
        ct_compile_free(&without);
        arena_free(&a);
        arena_free(&b);
    }
    srcfile_free(src);
}

/* poolrelu.mdl: relu_pool.c leaves the overlapping 3x3 / stride 2 windows alone (their
 * gradients add up in dx) and moves the mask of the disjoint 3x3 / stride 3 ones, but
 * neither pooling backward runs in place (the general path zeroes dx first); a plan
 * that puts the 3x3 one in place anyway, where x dies, is refused by the checker. */
Test(memplan, pool_in_place_only_2x2) {
    Arena a = {0};
    SrcFile *src = ct_load_src(MLC_TEST_DIR "/data/poolrelu.mdl");
    cr_assert_not_null(src);
    CtCompile r = compile_with(&a, src, TARGET_C, 0);
    const Graph *g = r.m->train;
    int overlapping = -1, disjoint = -1;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_maxpool2d_bwd) continue;
        cr_expect_eq(r.m->train_fuse.inplace[id], -1, "%%%d: a %lldx%lld pooling backward in place", id,
                     (long long)attr_h(n, A_KERNEL), (long long)attr_w(n, A_KERNEL));
        cr_expect_eq(r.m->train_plan.inplace_of[id], 0);
        int k3 = attr_h(n, A_KERNEL) == 3 && attr_w(n, A_KERNEL) == 3;
        if (k3 && attr_h(n, A_STRIDE) == 2 && attr_w(n, A_STRIDE) == 2) overlapping = id;
        if (k3 && attr_h(n, A_STRIDE) == 3 && attr_w(n, A_STRIDE) == 3) disjoint = id;
    }
    cr_assert(overlapping >= 0 && disjoint >= 0, "poolrelu's pooling backwards are missing");
    /* the overlapping one: still masked after, by step of its x */
    int masked_after = 0;
    for (int id = overlapping + 1; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_mul) continue;
        for (int k = 0; k < 2; k++) {
            const Node *o = &g->nodes[n->in[1 - k]];
            masked_after |= n->in[k] == overlapping && o->op == OP_step && o->in[0] == g->nodes[overlapping].in[1];
        }
    }
    cr_expect(masked_after, "the overlapping windows' mask moved");
    cr_expect_eq(g->nodes[g->nodes[disjoint].in[0]].op, OP_mul, "the disjoint windows' mask did not move to dy");
    cr_expect_eq(check_plan(g, &r.m->train_fuse, &r.m->train_plan, "poolrelu train"), 0);

    /* the disjoint one's x dies there: only its geometry forbids taking x over */
    int x = g->nodes[disjoint].in[1];
    MemPlan bad = r.m->train_plan;
    size_t n = (size_t)g->n + 1;
    bad.off_b = ARENA_ARRAY(&a, int64_t, n), bad.off_c = ARENA_ARRAY(&a, int64_t, n);
    bad.inplace_of = ARENA_ARRAY(&a, int, n);
    memcpy(bad.off_b, r.m->train_plan.off_b, sizeof(int64_t) * n);
    memcpy(bad.off_c, r.m->train_plan.off_c, sizeof(int64_t) * n);
    memcpy(bad.inplace_of, r.m->train_plan.inplace_of, sizeof(int) * n);
    bad.off_b[disjoint] = bad.off_b[x], bad.off_c[disjoint] = bad.off_c[x];
    bad.inplace_of[disjoint] = x + 1;
    plancheck_quiet = 1;
    cr_expect_gt(check_plan(g, &r.m->train_fuse, &bad, "3x3 pooling backward in place"), 0);
    plancheck_quiet = 0;
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
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
                    r = graph_add(g, OP_conv2d, in, 2,
                                  ATTRS(AP(A_STRIDE, 1, 1), AP(A_PAD, 1, 1), AP(A_DILATION, 1, 1), AI(A_GROUPS, 1)),
                                  NULL);
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
                GradList gl = autodiff(g, NULL);
                OptimizerSpec opt = {.kind = "sgd", .lr = 0.1};
                add_optimizer(g, &gl, &opt, NULL);
            }
            simplify(g);
            dce(g);
            ir_verify(g, "random conv graph");
            FusionPlan fp = fuse_graph(&a, g);
            MemPlan p = plan_memory(&a, g, &fp, TARGET_C);
            for (int id = 0; id < g->n; id++) epilogues += g->nodes[id].op == OP_conv2d && fp.epilogue[id] >= 0;
            char what[64];
            snprintf(what, sizeof what, "random conv graph %d%s", trial, train ? " (train)" : "");
            cr_assert_eq(check_plan(g, &fp, &p, what), 0, "%s: overlapping live tensors", what);
            MemPlan ff = plan_memory_in_order(&a, g, &fp, TARGET_C), again = plan_memory(&a, g, &fp, TARGET_C);
            expect_no_worse(g, &p, &ff, &again, what);
        }
        arena_free(&a);
    }
    cr_expect_gt(epilogues, 100, "only %d conv epilogues in 400 graphs", epilogues);
    cr_log_info("%d conv epilogues in 400 graphs", epilogues);
}

/* ---- offline placement (memplan.c): never worse than first-fit in program order ---- */

/* A plan of g without fusion that plancheck.h can read: every node with code is a group
 * of its own, run at its own position, stored, and in place of nothing. */
static FusionPlan unfused(Arena *a, const Graph *g) {
    int n = g->n;
    FusionPlan fp = {0};
    fp.root = ARENA_ARRAY(a, int, n), fp.at = ARENA_ARRAY(a, int, n), fp.inplace = ARENA_ARRAY(a, int, n);
    fp.epilogue = ARENA_ARRAY(a, int, n), fp.nest = ARENA_ARRAY(a, int, n);
    fp.inl = arena_alloc(a, (size_t)n), fp.dup = arena_alloc(a, (size_t)n);
    fp.map = arena_alloc(a, sizeof *fp.map * (size_t)n);
    for (int id = 0; id < n; id++) {
        int code = op_of(&g->nodes[id])->kind != K_SOURCE;
        fp.root[id] = fp.at[id] = code ? id : -1;
        fp.inplace[id] = fp.epilogue[id] = fp.nest[id] = -1;
    }
    return fp;
}

/* Where first-fit leaves a hole: a (16 floats a sample) dies before d (32) is written,
 * but L (32) and c (16) sit on either side of its bytes, so d and then f go on top.
 *
 *     node  a = -x   L = -y   c = sum(a)   d = y + c   f = L + d   m = mean(f)
 *     live  2..4     3..6     4..5         5..6        6..7        7..8
 *
 * First-fit in order: a 0, L 16, c 48, d 64, f 96: 128 floats a sample. At most 96 are
 * live at once (L, d and f at node 6); placed biggest first, L 0, d 32, f 64, and a and c
 * fill in below f: 96. */
Test(memplan, offline_fills_first_fit_hole) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 4);
    int64_t d16[2] = {4, 16}, d32[2] = {4, 32};
    int x = graph_add_source(g, OP_input, shape_make(2, d16, 1), DT_F32, "x", NULL);
    int y = graph_add_source(g, OP_input, shape_make(2, d32, 1), DT_F32, "y", NULL);
    int na = ir_unary(g, OP_neg, x, NULL), nl = ir_unary(g, OP_neg, y, NULL);
    int nc = ir_reduce(g, OP_sum, na, 1, 1, NULL);
    int nd = ir_binary(g, OP_add, y, nc, NULL);
    int nf = ir_binary(g, OP_add, nl, nd, NULL);
    g->loss = ir_reduce(g, OP_mean, ir_reduce(g, OP_mean, nf, 1, 0, NULL), 0, 0, NULL);
    cr_assert_eq(na, 2);
    cr_assert_eq(nf, 6);
    FusionPlan fp = unfused(&a, g);
    MemPlan ff = plan_memory_in_order(&a, g, &fp, TARGET_C), p = plan_memory(&a, g, &fp, TARGET_C);
    cr_expect_eq(check_plan(g, &fp, &ff, "first-fit"), 0);
    cr_expect_eq(check_plan(g, &fp, &p, "offline"), 0);
    cr_expect_eq(ff.size_b, 128, "first-fit: %lld floats a sample", (long long)ff.size_b);
    cr_expect_eq(p.size_b, 96, "offline: %lld floats a sample", (long long)p.size_b);
    cr_expect_eq(p.off_b[nl], 0);
    cr_expect_eq(p.off_b[nd], 32);
    cr_expect_eq(p.off_b[nf], 64);
    cr_expect_eq(p.size_c, ff.size_c);
    arena_free(&a);
}

/* Every sample and test model, train step and inference, on both targets: the plan is
 * no bigger than first-fit's in either region, deterministic, and first-fit's own plan
 * still passes the checker. LeNet's train step shrinks (59984 -> 56464 floats a sample,
 * the most live at once): first-fit left the dense layers' small tensors above the
 * pooling output's bytes, so conv2's backward found that hole 3536 floats wide, too
 * narrow for its 6272-float dx, and went on top. */
Test(memplan, never_worse_than_first_fit) {
    // clang-format off
    static const char *const paths[] = {
        MLC_SOURCE_ROOT "/samples/mlp.mdl", MLC_SOURCE_ROOT "/samples/lenet.mdl",
        MLC_SOURCE_ROOT "/samples/resnet.mdl", MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl",
        MLC_TEST_DIR "/data/convnet.mdl", MLC_TEST_DIR "/data/layers.mdl",
        MLC_TEST_DIR "/data/convwide.mdl", MLC_TEST_DIR "/data/convseg.mdl",
        MLC_TEST_DIR "/data/convbn.mdl", MLC_TEST_DIR "/data/poolrelu.mdl",
    };
    // clang-format on
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        SrcFile *src = ct_load_src(paths[i]);
        cr_assert_not_null(src, "cannot read %s", paths[i]);
        for (int t = 0; t < 2; t++) {
            Arena a = {0};
            CtCompile r = compile_with(&a, src, t ? TARGET_CUDA : TARGET_C, 0);
            for (int train = 0; train < 2; train++) {
                const Graph *g = train ? r.m->train : r.m->eval;
                const FusionPlan *fp = train ? &r.m->train_fuse : &r.m->eval_fuse;
                const MemPlan *p = train ? &r.m->train_plan : &r.m->eval_plan;
                MemPlan ff = plan_memory_in_order(&a, g, fp, r.m->target), again = plan_memory(&a, g, fp, r.m->target);
                char what[256];
                snprintf(what, sizeof what, "%s %s (%s)", ct_basename(paths[i]), train ? "train" : "eval",
                         t ? "cuda" : "c");
                expect_no_worse(g, p, &ff, &again, what);
                cr_expect_eq(check_plan(g, fp, &ff, what), 0, "%s: first-fit's plan overlaps", what);
                if (i == 1 && train)
                    cr_expect_lt(p->size_b, ff.size_b, "%s: %lld floats a sample, as first-fit", what,
                                 (long long)p->size_b);
            }
            ct_compile_free(&r);
            arena_free(&a);
        }
        srcfile_free(src);
    }
}
