/* test_fusion.c - what elementwise fusion (fuse.c) makes of the samples, pinned: how
 * many loop nests / kernels each train step and inference become, that fused values never
 * reach memory, that the cross-entropy forward and its backward are one group each, and
 * which GEMMs and convs get epilogues. A change that fuses less fails here and has to
 * update the numbers on purpose. */
#include <criterion/criterion.h>

#include "ctest_util.h"
#include "ops.h"

typedef struct Counts {
    const char *path;
    int train_nodes, train_kernels, eval_kernels;
} Counts;

static void compile_or_die(Arena *a, const char *path, CtCompile *r, SrcFile **src) {
    *src = ct_load_src(path);
    cr_assert_not_null(*src, "cannot read %s", path);
    *r = ct_compile(a, *src, (DumpOptions){0});
    cr_assert_not_null(r->m, "%s:\n%s", path, r->diag);
}

/* Frees what compile_or_die made. */
static void release(Arena *a, CtCompile *r, SrcFile *src) {
    ct_compile_free(r);
    srcfile_free(src);
    arena_free(a);
}

/* Nodes that would be a loop nest, a call or a kernel each without fusion. */
static int unfused_kernels(const Graph *g) { return fusion_kernels(g, NULL); }

static const Counts samples[] = {
    /* path, nodes with code unfused, after fusion: train step, inference */
    /* cross_entropy's shift of the logits (builtins.c, shifted_by_max) adds the row max, its
     * stop_gradient and the subtraction: two loops, the max's taking in the last bias add */
    {MLC_SOURCE_ROOT "/samples/mlp.mdl", 44, 20, 3},
    /* lenet: relu_pool.c masks each pooling backward's dy, not its dx: the second stage's
     * mask reads a GEMM's output through a reshape (no epilogue), so it is a loop of its
     * own where the mask of dx was stored from the bias gradient's sum (34 -> 35); the
     * first stage's runs as an epilogue of conv2d_bwd_data */
    {MLC_SOURCE_ROOT "/samples/lenet.mdl", 65, 37, 6},
    {MLC_SOURCE_ROOT "/samples/resnet.mdl", 501, 387, 65},
    {MLC_SOURCE_ROOT "/samples/resnet20_cifar.mdl", 501, 387, 65},
};

Test(fusion, sample_kernel_counts) {
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const Counts *c = &samples[i];
        Arena a = {0};
        CtCompile r;
        SrcFile *src;
        compile_or_die(&a, c->path, &r, &src);
        const char *name = ct_basename(c->path);
        cr_expect_eq(unfused_kernels(r.m->train), c->train_nodes, "%s: %d nodes with code (the graph changed?)", name,
                     unfused_kernels(r.m->train));
        cr_expect_eq(fusion_kernels(r.m->train, &r.m->train_fuse), c->train_kernels,
                     "%s: train step: %d kernels, expected %d", name, fusion_kernels(r.m->train, &r.m->train_fuse),
                     c->train_kernels);
        cr_expect_eq(fusion_kernels(r.m->eval, &r.m->eval_fuse), c->eval_kernels,
                     "%s: inference: %d kernels, expected %d", name, fusion_kernels(r.m->eval, &r.m->eval_fuse),
                     c->eval_kernels);
        /* values kept in registers take no arena space, but a group reads its inputs where
         * its root runs, which can hold them a little longer, and the placement shifts:
         * the fused plan may not grow by more than 1% */
        MemPlan unfused = plan_memory(&a, r.m->train, NULL, TARGET_C);
        int64_t B = r.m->train->batch;
        int64_t fused_floats = plan_floats(&r.m->train_plan, B, 1);
        int64_t unfused_floats = plan_floats(&unfused, B, 1);
        cr_expect_leq(fused_floats * 100, unfused_floats * 101, "%s: fusion grew the arena: %lld floats, unfused %lld",
                      name, (long long)fused_floats, (long long)unfused_floats);
        cr_log_info("%s: arena %lld floats fused, %lld unfused", name, (long long)fused_floats,
                    (long long)unfused_floats);
        release(&a, &r, src);
    }
}

/* The softmax cross-entropy backward of the mlp: every elementwise node the gradient of
 * the loss creates runs in one loop nest, which stores only what the GEMMs read. */
/* The C target runs the eval graph with its loss as forward too, without the loss-only
 * code, where the labels are not given: no value an output depends on may be computed
 * inside a group of the loss alone. mse over a summed output fused the output into the
 * loss's mean, and predict read a NULL label (a segfault). */
Test(fusion, outputs_are_not_computed_in_the_loss_code) {
    static const char *const models[] = {
        "model g\ninput image: f32[B, 784]\ninput label: i32[B]\nh = relu(dense(image, 32))\n"
        "s = sum(dense(h, 1), 1)\noutput s\nloss mse(s, sum(reshape(label, [B, 1]), 1))\n",
        "model i\ninput image: f32[B, 784]\ninput label: i32[B]\nh = relu(dense(image, 32))\n"
        "s = dense(h, 10)\noutput s\nloss mse(s, one_hot(label, 10))\n",
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        Arena a = {0};
        SrcFile *src = srcfile_from_string("m.mdl", models[i]);
        CtCompile r = ct_compile(&a, src, (DumpOptions){0});
        cr_assert_not_null(r.m, "%s", r.diag);
        const Graph *g = r.m->eval_loss;
        const FusionPlan *fp = &r.m->eval_loss_fuse;
        char *need = calloc((size_t)g->n, 1);
        for (int k = 0; k < g->nout; k++) need[g->outputs[k]] = 1;
        for (int id = g->n - 1; id >= 0; id--)
            if (need[id])
                for (int k = 0; k < g->nodes[id].nin; k++) need[g->nodes[id].in[k]] = 1;
        for (int id = 0; id < g->n; id++)
            if (need[id] && fp->at[id] >= 0)
                cr_expect(need[fp->at[id]], "model %zu: %%%d, which an output needs, runs in %%%d's code, the loss's",
                          i, id, fp->at[id]);
        free(need);
        release(&a, &r, src);
    }
}

Test(fusion, cross_entropy_backward_is_one_group) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/mlp.mdl", &r, &src);
    const Graph *g = r.m->train;
    const FusionPlan *fp = &r.m->train_fuse;
    int root = -1, members = 0, stored = 0;
    for (int id = g->loss + 1; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->loc.line != 13 || !(op_of(n)->kind == K_EWISE || n->op == OP_expand)) continue;
        if (root < 0) root = fp->root[id];
        cr_expect_eq(fp->root[id], root, "%%%d (%s) is not in the group of %%%d", id, op_of(n)->name, root);
        members++;
        stored += !fp->inl[id];
    }
    cr_expect_geq(members, 6, "only %d elementwise nodes in the cross-entropy backward", members);
    cr_expect_eq(stored, 1, "%d stored values (only the logits' gradient should be)", stored);
    cr_expect_eq(op_of(&g->nodes[root])->kind, K_REDUCE, "the group's root is not the bias gradient's sum");
    release(&a, &r, src);
}

/* The nodes of a cross_entropy call that shift its logits by their row max (the max, its
 * stop_gradient, the subtraction: builtins.c, shifted_by_max), which run before the loss's
 * group: the max a reduction of its own, the shift one loop that stores z. */
static int ce_shift_node(const Graph *g, int id, int lse) {
    const Node *n = &g->nodes[id];
    return n->op == OP_max || n->op == OP_stop_gradient || id == g->nodes[lse].in[0];
}

/* The softmax cross-entropy forward of every sample: the logits' row max, z = logits - max
 * (stored: the logsumexp reads it twice, the backward once), then one loop nest / kernel,
 * the loss's group, for one_hot, logsumexp, the label dot and the mean over the batch:
 * one_hot is recomputed from the labels where it is read, the logsumexp (which the
 * backward reads) is its only stored value besides the loss, and the group holds two row
 * reductions. */
Test(fusion, cross_entropy_forward_is_one_group) {
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        Arena a = {0};
        CtCompile r;
        SrcFile *src;
        compile_or_die(&a, samples[i].path, &r, &src);
        const char *name = ct_basename(samples[i].path);
        const Graph *g = r.m->train;
        const FusionPlan *fp = &r.m->train_fuse;
        int oh = -1, lse = -1;
        for (int id = 0; id <= g->loss; id++) {
            if (g->nodes[id].op == OP_one_hot) oh = id;
            if (g->nodes[id].op == OP_logsumexp) lse = id;
        }
        cr_assert_geq(oh, 0, "%s: no one_hot", name);
        cr_assert_geq(lse, 0, "%s: no logsumexp", name);
        int line = g->nodes[oh].loc.line, kernels = 0, members = 0, stored = 0, rows = 0, shift = 0;
        cr_expect(fp->dup[oh] && !r.m->train_plan.has_buf[oh] && fp->at[oh] < 0,
                  "%s: one_hot %%%d is not recomputed where it is read", name, oh);
        const int z = g->nodes[lse].in[0];
        cr_expect(g->nodes[z].op == OP_sub && fp->at[z] == z && !fp->inl[z], "%s: z %%%d is not a stored loop", name,
                  z);
        for (int id = 0; id <= g->loss; id++) {
            const Node *n = &g->nodes[id];
            if (n->loc.line != line || n->op == OP_reshape || op_of(n)->kind == K_SOURCE || fp->dup[id]) continue;
            if (ce_shift_node(g, id, lse)) {
                cr_expect_eq(fp->at[id], n->op == OP_max ? id : z, "%s: %%%d (%s) runs at %d", name, id, op_of(n)->name,
                             fp->at[id]);
                shift++;
                continue;
            }
            cr_expect_eq(fp->at[id], g->loss, "%s: %%%d (%s) runs at %d, not in the loss's group %%%d", name, id,
                         op_of(n)->name, fp->at[id], g->loss);
            kernels += fp->at[id] == id;
            members += id != g->loss;
            stored += id != g->loss && !fp->inl[id];
            rows += op_of(n)->kind == K_REDUCE && id != g->loss;
        }
        cr_expect_eq(shift, 3, "%s: %d nodes shift the logits (max, stop_gradient, sub expected)", name, shift);
        cr_expect_eq(kernels, 1, "%s: the cross-entropy loss is %d kernels", name, kernels);
        cr_expect_eq(members, 4, "%s: %d members (logsumexp, mul, sum, sub expected)", name, members);
        cr_expect_eq(stored, 1, "%s: %d stored members (only the logsumexp should be)", name, stored);
        cr_expect_eq(rows, 2, "%s: %d row reductions (logsumexp and the label dot expected)", name, rows);
        release(&a, &r, src);
    }
}

/* The same for the test models, whose losses add other terms to the cross-entropy or
 * smooth its labels: the nodes the cross_entropy call made in the forward (those at its
 * logsumexp's .mdl line and column) after the shift of its logits run in one kernel, and its one_hot (with label
 * smoothing, the smoothed labels too) is recomputed where it is read. */
Test(fusion, cross_entropy_forward_is_one_group_in_test_models) {
    static const char *const models[] = {"tiny",   "decoupled", "convnet",  "allops", "adamw",       "convb1", "blocks",
                                         "layers", "convbn",    "convwide", "clip",   "activations", "nan",    "rows"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/data/%s.mdl", MLC_TEST_DIR, models[i]);
        Arena a = {0};
        CtCompile r;
        SrcFile *src;
        compile_or_die(&a, path, &r, &src);
        const Graph *g = r.m->train;
        const FusionPlan *fp = &r.m->train_fuse;
        int lse = -1;
        for (int id = 0; id <= g->loss; id++)
            if (g->nodes[id].op == OP_logsumexp) lse = id;
        cr_assert_geq(lse, 0, "%s: no logsumexp", models[i]);
        SrcLoc loc = g->nodes[lse].loc;
        int at = fp->at[lse], nodes = 0, recomputed = 0;
        for (int id = 0; id <= g->loss; id++) {
            const Node *n = &g->nodes[id];
            if (n->loc.line != loc.line || n->loc.col != loc.col || n->op == OP_reshape || op_of(n)->kind == K_SOURCE ||
                ce_shift_node(g, id, lse))
                continue;
            if (fp->dup[id]) {
                recomputed++;
                continue;
            }
            nodes++;
            cr_expect_eq(fp->at[id], at, "%s: %%%d (%s) runs at %d, the logsumexp at %d", models[i], id, op_of(n)->name,
                         fp->at[id], at);
            if (n->op == OP_one_hot) cr_expect(0, "%s: one_hot %%%d is not recomputed where it is read", models[i], id);
        }
        cr_expect_geq(nodes, 5, "%s: %d cross-entropy nodes", models[i], nodes);
        cr_expect_geq(recomputed, 1, "%s: no recomputed one_hot", models[i]);
        release(&a, &r, src);
    }
}

/* Reductions that keep the batch dimension run in their readers' loops, also inside
 * another row reduction's loop; reductions over the batch stay roots (rows.mdl). */
Test(fusion, row_reductions_nest) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_TEST_DIR "/data/rows.mdl", &r, &src);
    const Graph *g = r.m->train;
    const FusionPlan *fp = &r.m->train_fuse;
    int rows = 0, deep = 0, kept_deep = 0;
    for (int id = 0; id <= g->loss; id++) {
        const Node *n = &g->nodes[id];
        /* cross_entropy's row max (builtins.c, shifted_by_max) is read by the shift's loop
         * over [B, C]: a root */
        if (op_of(n)->kind != K_REDUCE || n->op == OP_max) continue;
        int row = fp->root[id] != id;
        cr_expect_eq(row, n->shape.bmask != 0, "%%%d (%s) is %sa row reduction", id, op_of(n)->name, row ? "" : "not ");
        rows += row;
        deep += fp->nest[id] >= 0;
        kept_deep += fp->nest[id] >= 0 && !fp->inl[id];
    }
    cr_expect_eq(rows, 5, "%d row reductions (sum, keepdims sum, sum, logsumexp, label dot expected)", rows);
    cr_expect_eq(deep, 1, "%d row reductions in a row reduction's loop", deep);
    cr_expect_eq(kept_deep, 1, "the nested keepdims sum is not stored for the backward");
    release(&a, &r, src);
}

/* A node read outside its group is stored; one read only inside is not; nothing in a
 * group is read from memory before the group runs (test_memplan checks the latter on
 * every sample and random graphs). */
Test(fusion, kept_and_inlined) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/mlp.mdl", &r, &src);
    const Graph *g = r.m->train;
    const FusionPlan *fp = &r.m->train_fuse;
    for (int id = 0; id < g->n; id++) {
        int r0 = fp->root[id];
        if (r0 < 0 || r0 == id || g->nodes[id].op == OP_reshape) continue;
        int outside = (g->nodes[id].role & (ROLE_OUTPUT | ROLE_LOSS)) != 0;
        for (int j = id + 1; j < g->n; j++)
            for (int k = 0; k < g->nodes[j].nin; k++)
                if (g->nodes[j].in[k] == id && fp->root[j] != r0) outside = 1;
        cr_expect_eq(fp->inl[id], !outside, "%%%d: read outside its group %d, kept in a register %d", id, outside,
                     fp->inl[id]);
        cr_expect_eq(r.m->train_plan.has_buf[id], outside, "%%%d: has a buffer %d, read outside %d", id,
                     r.m->train_plan.has_buf[id], outside);
    }
    release(&a, &r, src);
}

/* Every dense layer's bias add (and activation) runs as its GEMM's epilogue: in the mlp's
 * inference the three layers are three GEMMs and nothing else. In the train step the
 * logits' bias add runs in the loop that takes their row max (cross_entropy's shift)
 * instead: one pass over them either way. */
Test(fusion, dense_layers_are_gemm_epilogues) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/mlp.mdl", &r, &src);
    const Graph *e = r.m->eval;
    cr_expect_eq(r.m->eval_fuse.nepilogues, 3);
    cr_expect_eq(r.m->train_fuse.nepilogues, 2);
    for (int id = 0; id < e->n; id++) {
        if (e->nodes[id].op != OP_matmul) continue;
        int ep = r.m->eval_fuse.epilogue[id];
        cr_assert_geq(ep, 0, "%%%d: no epilogue", id);
        cr_expect_eq(r.m->eval_fuse.at[ep], id, "the epilogue %%%d does not run with its GEMM %%%d", ep, id);
    }
    release(&a, &r, src);
}

/* How many of group `root`'s nodes are `op` nodes. */
static int count_members(const Graph *g, const FusionPlan *fp, int root, Op op) {
    int k = 0;
    for (int m = 0; m <= root; m++) k += fp->root[m] == root && g->nodes[m].op == op;
    return k;
}

/* LeNet's conv bias add and relu run as the conv's epilogue, on each sample's output, in
 * the train step and in inference: the conv and its epilogue are one kernel. */
Test(fusion, lenet_conv_bias_relu_is_a_conv_epilogue) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/lenet.mdl", &r, &src);
    const Graph *gs[2] = {r.m->train, r.m->eval};
    const FusionPlan *fps[2] = {&r.m->train_fuse, &r.m->eval_fuse};
    for (int j = 0; j < 2; j++) {
        const Graph *g = gs[j];
        const FusionPlan *fp = fps[j];
        int convs = 0;
        for (int id = 0; id < g->n; id++) {
            if (g->nodes[id].op != OP_conv2d) continue;
            convs++;
            int ep = fp->epilogue[id];
            cr_assert_geq(ep, 0, "%s: conv %%%d has no epilogue", j ? "eval" : "train", id);
            cr_expect_eq(g->nodes[ep].op, OP_relu, "%%%d: the epilogue's root is %s", id,
                         op_info[g->nodes[ep].op].name);
            cr_expect_eq(count_members(g, fp, ep, OP_add), 1, "%%%d: the bias add is not in the epilogue", id);
            cr_expect_eq(fp->at[ep], id, "the epilogue %%%d does not run with its conv %%%d", ep, id);
            cr_expect_eq(fp->at[g->nodes[ep].in[0]], id, "the bias add of %%%d does not run with it", id);
        }
        cr_expect_eq(convs, 2);
        /* the train step's ReLU backward mask of the first stage (relu_pool.c) runs with the
         * conv2d_bwd_data that makes its dy */
        /* (in the train step the logits' bias add runs in their row max's loop, as in mlp) */
        cr_expect_eq(fp->nepilogues, 4, "%s: %d conv and %d GEMM epilogues expected, %d", j ? "eval" : "train",
                     j ? 2 : 3, j ? 2 : 1, fp->nepilogues);
    }
    release(&a, &r, src);
}

/* ResNet's inference after fold_bn: each conv is followed by the folded batch norm's
 * shift (an add), in 9 blocks the residual add, then a relu. That chain is the epilogue
 * of the conv that runs last before it: 19 of the 21 convs; in the two downsampling
 * blocks the second 3x3 conv's output is read by the epilogue of the shortcut's 1x1 conv
 * that follows it. The train step's batch norms use batch statistics (bn_stats, not
 * elementwise): its convs have no epilogue. */
Test(fusion, resnet_eval_conv_add_relu_is_a_conv_epilogue) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/resnet.mdl", &r, &src);
    const Graph *g = r.m->eval;
    const FusionPlan *fp = &r.m->eval_fuse;
    int convs = 0, with = 0, residual = 0;
    for (int id = 0; id < g->n; id++) {
        if (g->nodes[id].op != OP_conv2d) continue;
        convs++;
        int ep = fp->epilogue[id];
        if (ep < 0) { /* read by the next conv's epilogue */
            int next = id + 1;
            while (next < g->n && g->nodes[next].op != OP_conv2d) next++;
            cr_assert_lt(next, g->n, "the last conv %%%d has no epilogue", id);
            int nep = fp->epilogue[next], reads = 0;
            cr_assert_geq(nep, 0, "neither %%%d nor the next conv %%%d has an epilogue", id, next);
            for (int m = 0; m <= nep; m++)
                for (int k = 0; k < g->nodes[m].nin; k++) reads += fp->root[m] == nep && g->nodes[m].in[k] == id;
            cr_expect_gt(reads, 0, "%%%d has no epilogue and the next conv's does not read it", id);
            continue;
        }
        with++;
        cr_expect_eq(g->nodes[ep].op, OP_relu, "%%%d: the epilogue's root is %s", id, op_info[g->nodes[ep].op].name);
        int adds = count_members(g, fp, ep, OP_add);
        cr_expect(adds >= 1 && adds <= 3, "%%%d: %d adds in the epilogue", id, adds);
        residual += adds >= 2;
    }
    cr_expect_eq(convs, 21);
    cr_expect_eq(with, 19, "%d conv epilogues, expected 19", with);
    cr_expect_eq(residual, 9, "%d epilogues hold a residual add, expected 9", residual);
    release(&a, &r, src);
}

/* resnet's train step, forward: each batch norm's normalised activation x * scale + shift
 * (split_bn) is computed in registers in the loop of the ReLU after it, with the residual
 * add where there is one, so it is never stored (21 batch norms, 9 residual adds).
 * Backward: the ReLU's backward, with the gradient sum of a residual block where there is
 * one, runs on each sample's input gradient right after conv2d_bwd_data computes it, for
 * 18 of the 20 input gradients (the two projection shortcuts' are summed in the epilogue
 * of the main path's conv, which comes later). */
Test(fusion, resnet_train_batch_norm_and_relu_backward) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_SOURCE_ROOT "/samples/resnet.mdl", &r, &src);
    const Graph *g = r.m->train;
    const FusionPlan *fp = &r.m->train_fuse;
    int bns = 0, residual = 0, grads = 0, with = 0, sums = 0;
    char *seen = ARENA_ARRAY(&a, char, g->n);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op == OP_mul && g->nodes[n->in[1]].op == OP_reshape &&
            g->nodes[g->nodes[n->in[1]].in[0]].op == OP_bn_scale) {
            bns++;
            cr_expect(g->nodes[n->in[0]].op == OP_conv2d, "%%%d: normalises %s, not a conv output", id,
                      op_info[g->nodes[n->in[0]].op].name);
            int root = fp->root[id];
            cr_expect(root != id && fp->inl[id], "%%%d: the normalised activation is stored", id);
            cr_expect_eq(g->nodes[root].op, OP_relu, "%%%d: its group's root is %s", id,
                         op_info[g->nodes[root].op].name);
            /* a group with k batch norms (2 on a projection shortcut) and a residual add */
            if (!seen[root]) residual += count_members(g, fp, root, OP_add) == count_members(g, fp, root, OP_mul) + 1;
            seen[root] = 1;
        }
        if (n->op == OP_conv2d_bwd_data) {
            grads++;
            int ep = fp->epilogue[id];
            if (ep < 0) continue;
            with++;
            cr_expect_eq(g->nodes[ep].op, OP_mul, "%%%d: the epilogue's root is %s", id, op_info[g->nodes[ep].op].name);
            cr_expect_eq(count_members(g, fp, ep, OP_step), 1, "%%%d: no ReLU slope in the epilogue", id);
            cr_expect_eq(fp->at[ep], id, "the epilogue %%%d does not run with %%%d", ep, id);
            sums += count_members(g, fp, ep, OP_add) > 0;
        }
    }
    cr_expect_eq(bns, 21, "%d split batch norms, expected 21", bns);
    cr_expect_eq(residual, 9, "%d residual adds share their loop with batch norms, expected 9", residual);
    cr_expect_eq(grads, 20);
    cr_expect_eq(with, 18, "%d input-gradient epilogues, expected 18", with);
    cr_expect_eq(sums, 9, "%d epilogues add a residual block's two gradients, expected 9", sums);
    /* (the dense head's bias add runs in the logits' row max loop: cross_entropy's shift) */
    cr_expect_eq(fp->nepilogues, 18, "%d epilogues, expected 18", fp->nepilogues);
    release(&a, &r, src);
}

/* causal_mask(T) under where(mask, scores, -1e9) takes no memory: in the train step and
 * in inference the mask, and the (1 - mask) of where, are computed from the indices in
 * the loops that read them, so no [T, T] tensor (8 x 8 in seqops.mdl) has a buffer; only
 * the mask a matmul reads ([12, 12], for sums over columns) is stored. */
Test(fusion, causal_mask_takes_no_memory) {
    Arena a = {0};
    CtCompile r;
    SrcFile *src;
    compile_or_die(&a, MLC_TEST_DIR "/data/seqops.mdl", &r, &src);
    for (int k = 0; k < 2; k++) {
        const char *fn = k ? "eval" : "train";
        const Graph *g = k ? r.m->eval : r.m->train;
        const FusionPlan *fp = k ? &r.m->eval_fuse : &r.m->train_fuse;
        const MemPlan *plan = k ? &r.m->eval_plan : &r.m->train_plan;
        int fused = 0, stored = 0, tt = 0;
        for (int id = 0; id < g->n; id++) {
            const Node *n = &g->nodes[id];
            int by_matmul = 0;
            for (int u = id + 1; u < g->n; u++)
                for (int i = 0; i < g->nodes[u].nin; i++)
                    by_matmul |= g->nodes[u].in[i] == id && g->nodes[u].op == OP_matmul;
            if (n->op == OP_causal_mask && by_matmul) {
                stored++;
                cr_expect(!fp->dup[id] && plan->has_buf[id], "%s: the mask %%%d a matmul reads is not stored", fn, id);
            } else if (n->op == OP_causal_mask) {
                fused++;
                cr_expect(fp->dup[id] && !plan->has_buf[id], "%s: causal_mask %%%d has a buffer", fn, id);
            }
            if (n->shape.rank == 2 && n->shape.d[0] == 8 && n->shape.d[1] == 8 && !n->shape.bmask && !by_matmul) {
                tt++;
                cr_expect(!plan->has_buf[id], "%s: %%%d (%s) is a [8, 8] buffer", fn, id, op_of(n)->name);
            }
        }
        cr_expect_eq(fused, 1, "%s: %d causal_mask nodes under where", fn, fused);
        cr_expect_eq(stored, 1, "%s: %d causal_mask nodes read by a matmul", fn, stored);
        cr_expect_geq(tt, 2, "%s: the mask and its complement: %d [8, 8] nodes", fn, tt);
    }
    release(&a, &r, src);
}
