/* test_fold_bn.c - the eval-graph pass fold_bn (compiler/passes/fold_bn.c): batch norm with
 * running statistics folded into the convolution before it.
 *
 * Each model is compiled (compile_model runs fold_bn on the eval graph) and its eval graph
 * is also rebuilt without the pass (lower -> simplify -> dce). Both are evaluated by the
 * reference interpreter (double) with the same random parameters and running statistics
 * (means in [-1, 1], variances in [0.1, 2], every parameter in [-1, 1]: far from the
 * initial ones/zeros, so a wrong scale, shift, eps or channel order shows) and the same
 * input; the outputs must agree to 1e-9 relative (the tensor's mean magnitude as the
 * floor, as in test_codegen_c.c). The structural tests count the full-size (batch)
 * nodes before and after, check that what must not fold is left alone, and that new
 * nodes keep the .mdl locations. The C target runs the folded graphs in test_codegen_c
 * (convbn.mdl, convnet.mdl). */
#include <criterion/criterion.h>
#include <math.h>

#include "ctest_util.h"
#include "interp.h"
#include "ops.h"

#define TOL 1e-9

/* A model compiled at a given batch size, with its eval graph also built without fold_bn. */
typedef struct Both {
    Arena arena;
    SrcFile *src;
    ModelIR *m;
    Graph *plain; /* lower -> simplify -> dce, no fold_bn */
    int folds;    /* what fold_bn returned on a copy of the simplified graph */
} Both;

static Graph *graph_copy(Arena *a, const Graph *g) {
    Graph *c = graph_new(a, g->mode, g->batch);
    for (int i = 0; i < g->n; i++) graph_push(c, &g->nodes[i]);
    c->loss = g->loss;
    c->nout = g->nout;
    memcpy(c->outputs, g->outputs, sizeof c->outputs);
    return c;
}

static int compile_both_inner(Both *b, int batch) {
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) return -1;
    Program *p = parse_program(&b->arena, b->src);
    b->m = compile_model(&b->arena, p, batch, NULL);
    Graph *e = lower_program(&b->arena, p, &b->m->spec, MODE_EVAL);
    e->loss = -1;
    simplify(e);
    Graph *f = graph_copy(&b->arena, e);
    b->folds = fold_bn(f);
    ir_verify(f, "fold_bn (test)");
    dce(e);
    b->plain = e;
    return 0;
}

static void compile_both(Both *b, const char *path, int batch) {
    memset(b, 0, sizeof *b);
    b->src = ct_load_src(path);
    cr_assert_not_null(b->src, "cannot read %s", path);
    int st = compile_both_inner(b, batch);
    diag_jmp = NULL;
    cr_assert_eq(st, 0, "%s does not compile", path);
}

static void both_free(Both *b) {
    arena_free(&b->arena);
    srcfile_free(b->src);
}

/* A reproducible value in [lo, hi] for element i of the tensor called `name`. */
static double rnd(const char *name, int64_t i, double lo, double hi) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    h ^= (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 31, h *= 0xbf58476d1ce4e5b9ULL, h ^= h >> 29, h *= 0x94d049bb133111ebULL, h ^= h >> 32;
    return lo + (hi - lo) * (double)(h >> 11) / 9007199254740992.0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static void bind(Interp *it, int64_t classes) {
    const Graph *g = it->g;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        int64_t cnt = shape_numel(&n->shape);
        for (int64_t i = 0; i < cnt; i++) {
            double v;
            if (n->op == OP_state && ends_with(n->name, ".running_var")) v = rnd(n->name, i, 0.1, 2.0);
            else if (n->op == OP_param || n->op == OP_state) v = rnd(n->name, i, -1, 1);
            else if (n->op == OP_input && n->dtype == DT_F32) v = sin(0.37 * (double)i + 0.1);
            else if (n->op == OP_input) v = (double)((i * 7 + 3) % classes);
            else break;
            it->vals[id][i] = v;
        }
    }
}

/* Runs both eval graphs on the same values; returns the worst relative difference. */
static double output_diff(const Both *b) {
    Interp *p = interp_new(b->plain), *f = interp_new(b->m->eval);
    bind(p, b->m->outputs[0].sample_numel);
    bind(f, b->m->outputs[0].sample_numel);
    interp_run(p);
    interp_run(f);
    const Shape *s = &b->plain->nodes[b->plain->outputs[0]].shape;
    cr_assert(shape_eq(s, &b->m->eval->nodes[b->m->eval->outputs[0]].shape));
    int64_t n = shape_numel(s);
    const double *r = p->vals[b->plain->outputs[0]], *c = f->vals[b->m->eval->outputs[0]];
    double scale = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) scale += fabs(r[i]) / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(c[i] - r[i]) / fmax(fmax(fabs(r[i]), scale), 1e-300);
        if (!(e <= worst)) worst = e; /* NaN counts as worst */
    }
    cr_assert_gt(scale, 1e-6, "the output is (nearly) all zeros: the comparison would prove nothing");
    interp_free(p);
    interp_free(f);
    return worst;
}

/* Nodes with the batch dimension, and of those the elementwise ones. */
static void count_batch(const Graph *g, int *batch, int *ewise) {
    *batch = *ewise = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (!n->shape.bmask || op_of(n)->kind == K_SOURCE) continue;
        (*batch)++;
        *ewise += op_of(n)->kind == K_EWISE;
    }
}

static int count_op(const Graph *g, Op op) {
    int k = 0;
    for (int id = 0; id < g->n; id++) k += g->nodes[id].op == op;
    return k;
}

static void check_same_output(const char *path, int batch, int want_folds) {
    Both b;
    compile_both(&b, path, batch);
    cr_assert_eq(b.folds, want_folds, "%s: fold_bn folded %d batch norms, expected %d", path, b.folds, want_folds);
    double worst = output_diff(&b);
    printf("%s: %d folded, eval output max rel diff %.3e\n", ct_basename(path), b.folds, worst);
    fflush(stdout);
    cr_assert_leq(worst, TOL, "%s: folded and unfolded eval outputs differ by %.3e (> %g)", path, worst, TOL);
    both_free(&b);
}

/* conv with bias, grouped conv, pool reading the [B, C, H*W] view; two must stay */
Test(fold_bn, same_output_convbn) { check_same_output(MLC_TEST_DIR "/data/convbn.mdl", 0, 3); }
Test(fold_bn, same_output_convnet) { check_same_output(MLC_TEST_DIR "/data/convnet.mdl", 0, 1); }
/* the bn follows a grouped conv; dropout (identity in eval) elsewhere */
Test(fold_bn, same_output_layers) { check_same_output(MLC_TEST_DIR "/data/layers.mdl", 0, 1); }
/* 21 batch norms, strided 1x1 shortcuts; batch 2 keeps the double-precision conv loops short */
Test(fold_bn, same_output_resnet, .timeout = 300) { check_same_output(MLC_SOURCE_ROOT "/samples/resnet.mdl", 2, 21); }

/* ResNet-20: every batch norm folds; per batch norm the full-size sub, mul, add and the
 * two reshapes around them become one bias add (the conv stays one conv). */
Test(fold_bn, resnet_structure) {
    Both b;
    compile_both(&b, MLC_SOURCE_ROOT "/samples/resnet.mdl", 0);
    int pb, pe, fb, fe;
    count_batch(b.plain, &pb, &pe);
    count_batch(b.m->eval, &fb, &fe);
    printf("resnet eval graph: %d nodes, %d with B (%d elementwise) -> %d nodes, %d with B (%d elementwise)\n",
           b.plain->n, pb, pe, b.m->eval->n, fb, fe);
    cr_assert_eq(b.folds, 21);
    cr_assert_eq(pe - fe, 2 * 21, "elementwise batch nodes: %d before, %d after", pe, fe);
    cr_assert_eq(pb - fb, 4 * 21, "batch nodes: %d before, %d after", pb, fb);
    cr_assert_eq(count_op(b.m->eval, OP_conv2d), count_op(b.plain, OP_conv2d));
    cr_assert_eq(count_op(b.m->eval, OP_rsqrt), 21);
    for (int id = 0; id < b.m->eval->n; id++) {
        const Node *n = &b.m->eval->nodes[id];
        cr_assert(!(n->op == OP_rsqrt && n->shape.bmask), "%%%d: rsqrt over the batch", id);
        cr_assert(!(n->op == OP_sub && n->shape.bmask), "%%%d: a full-size sub is left", id);
    }
    /* the train step keeps its batch-statistics batch norm (split_bn made each bn_apply
     * a multiply-add by bn_scale and bn_shift) */
    cr_assert_eq(count_op(b.m->train, OP_bn_stats), 21);
    cr_assert_eq(count_op(b.m->train, OP_bn_scale), 21);
    cr_assert_eq(count_op(b.m->train, OP_bn_apply), 0);
    cr_assert_eq(fold_bn(b.m->train), 0, "fold_bn must not touch a train graph");
    both_free(&b);
}

/* The batch norm whose conv output is read twice and the one after a relu stay as they
 * were: two full-size subs left; the folded convs keep their locations. */
Test(fold_bn, leaves_non_matching_and_keeps_locations) {
    Both b;
    compile_both(&b, MLC_TEST_DIR "/data/convbn.mdl", 0);
    const Graph *e = b.m->eval;
    int subs = 0;
    for (int id = 0; id < e->n; id++) {
        const Node *n = &e->nodes[id];
        subs += n->op == OP_sub && n->shape.bmask;
        cr_assert_not_null(n->loc.file, "%%%d = %s has no .mdl location", id, op_of(n)->name);
    }
    cr_assert_eq(subs, 2, "expected the two non-matching batch norms left, found %d full-size subs", subs);
    /* same conv2d locations, in the same order, before and after */
    int k = 0;
    for (int id = 0, j = 0; id < e->n; id++) {
        if (e->nodes[id].op != OP_conv2d) continue;
        while (j < b.plain->n && b.plain->nodes[j].op != OP_conv2d) j++;
        cr_assert_lt(j, b.plain->n);
        const SrcLoc *a = &e->nodes[id].loc, *p = &b.plain->nodes[j].loc;
        cr_assert(a->line == p->line && a->col == p->col, "conv2d %d at %d:%d, was %d:%d", k, a->line, a->col, p->line,
                  p->col);
        j++, k++;
    }
    cr_assert_eq(k, 4);
    both_free(&b);
}

/* Folding is all or nothing per batch norm and changes nothing without one. */
Test(fold_bn, no_batch_norm_no_change) {
    Both b;
    compile_both(&b, MLC_SOURCE_ROOT "/samples/lenet.mdl", 0);
    cr_assert_eq(b.folds, 0);
    cr_assert_eq(b.m->eval->n, b.plain->n);
    both_free(&b);
}
