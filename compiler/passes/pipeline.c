/* pipeline.c - the middle end as one function: lower -> (precision, under --precision
 * bf16) -> autodiff -> optimizer -> split_bn ->
 * simplify -> relu_pool -> DCE -> (recompute, under --mem-budget) -> fuse -> gradient slab
 * layout -> memory plan for the train step (emitted as two calls, forward_backward and
 * update: grad_slab.c); lower -> (precision) -> simplify -> fold_bn -> DCE -> fuse -> memory plan for
 * evaluation, twice (the outputs for forward; the outputs and the loss for eval_loss);
 * the model's inputs and outputs as the API shows them; the verifier after every pass and
 * the dumps the user asked for. */
#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "model.h"
#include "ops.h"
#include "passes.h"

static void dump(const DumpOptions *d, int want, const char *stage, const Graph *g) {
    if (!d || !want || !d->out) return;
    fprintf(d->out, "; --- after %s ---\n", stage);
    ir_print(d->out, g);
}

_Static_assert(PASS_COUNT < 32, "DumpOptions.after has one bit per pass");

const char *const pass_names[PASS_COUNT] = {
#define MLC_PASS_NAME(name) #name,
    MLC_PASSES(MLC_PASS_NAME)
#undef MLC_PASS_NAME
};

PassId pass_by_name(const char *name) {
    for (int p = 0; p < PASS_COUNT; p++)
        if (!strcmp(pass_names[p], name)) return (PassId)p;
    return PASS_COUNT;
}

/* After every pass: the verifier, then the dump if the user asked for this pass. */
static void pass_done(const DumpOptions *d, PassId p, const Graph *g) {
    char what[64];
    snprintf(what, sizeof what, "%s (%s)", pass_names[p], g->mode == MODE_TRAIN ? "train step" : "eval");
    ir_verify(g, what);
    dump(d, d && (d->after & DUMP_AFTER(p)), what, g);
}

int model_find_persistent(const ModelIR *m, const char *name) { return names_get(&m->pers_index, name); }

/* Parameters first, in the order the .mdl creates them, then optimizer state. */
static void collect_persistents(ModelIR *m) {
    const Graph *g = m->train;
    m->pers = ARENA_ARRAY(m->arena, Persistent, g->n);
    m->pers_index = names_new(m->arena);
    int64_t off = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int id = 0; id < g->n; id++) {
            const Node *n = &g->nodes[id];
            if ((pass == 0 && n->op != OP_param) || (pass == 1 && n->op != OP_state)) continue;
            /* said now, not when the trainer's first save fails after the training it was to keep */
            size_t len = strlen(n->name);
            if (len > MLCRT_CKPT_MAX_NAME)
                diag_error(&n->loc,
                           "the tensor name '%s' would have %zu bytes, more than the %d a checkpoint can store "
                           "(a shorter layer name?)",
                           n->name, len, MLCRT_CKPT_MAX_NAME);
            names_put(&m->pers_index, n->name, m->npers);
            Persistent *p = &m->pers[m->npers++];
            p->name = n->name;
            p->shape = n->shape;
            p->is_param = n->op == OP_param;
            p->init = (int)attr_i(n, A_INIT); /* optimizer state: zeros; running variances: ones */
            p->a = attr_f(n, A_INIT_A);
            p->b = attr_f(n, A_INIT_B);
            p->offset = off;
            off += (shape_numel(&n->shape) + 15) & ~(int64_t)15;
        }
    m->slab_floats = off;
}

int model_find_input(const ModelIR *m, const char *name) {
    for (int i = 0; i < m->ninputs; i++)
        if (!strcmp(m->inputs[i].name, name)) return i;
    return -1;
}

/* The node of input `name` in g, or -1. */
static int find_input_node(const Graph *g, const char *name) {
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].op == OP_input && !strcmp(g->nodes[id].name, name)) return id;
    return -1;
}

/* The API's view of the model: every input (with whether inference reads it), every
 * output, and whether it is a classifier. */
static void find_io(ModelIR *m, const Program *p) {
    Arena *a = m->arena;
    const Graph *g = m->train, *e = m->eval;
    char *read = arena_alloc(a, (size_t)e->n);
    for (int id = 0; id < e->n; id++)
        for (int k = 0; k < e->nodes[id].nin; k++) read[e->nodes[id].in[k]] = 1;
    m->inputs = ARENA_ARRAY(a, ModelIO, p->stmts.n);
    for (int i = 0; i < p->stmts.n; i++) {
        const Stmt *st = p->stmts.items[i];
        if (st->kind != ST_INPUT) continue;
        int id = find_input_node(g, st->name);
        if (id < 0) mlc_die("input '%s' is not in the train graph", st->name);
        const Node *n = &g->nodes[id];
        MLC_CHECK(n->shape.bmask == 1); /* lower.c refused any other input */
        int ev = find_input_node(e, st->name);
        int64_t c, b;
        shape_numel_affine(&n->shape, g->batch, &c, &b);
        m->inputs[m->ninputs++] = (ModelIO){n->name, n->dtype, n->shape, ev >= 0 && read[ev], b};
    }
    if (g->loss < 0) diag_error_file(p->file->name, "the model has no 'loss' statement, so it cannot be trained");
    if (!e->nout) diag_error_file(p->file->name, "the model has no 'output' statement");
    m->noutputs = e->nout;
    m->outputs = ARENA_ARRAY(a, ModelIO, e->nout);
    for (int k = 0; k < e->nout; k++) {
        const Node *n = &e->nodes[e->outputs[k]];
        int64_t c, b;
        shape_numel_affine(&n->shape, g->batch, &c, &b);
        m->outputs[k] = (ModelIO){e->out_names[k], n->dtype, n->shape, 1, b};
    }
    m->cls_output = g->cls_output;
    m->cls_label = g->cls_output >= 0 ? model_find_input(m, g->cls_label) : -1;
    if (m->cls_label < 0) m->cls_output = -1;
    m->classifier = m->cls_output >= 0 && m->outputs[m->cls_output].shape.rank == 2;
    /* bn_stats reads x as [B, C, S]: with S = 1 its statistics are over the batch alone */
    m->min_train_batch = 1;
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].op == OP_bn_stats && g->nodes[g->nodes[id].in[0]].shape.d[2] == 1) m->min_train_batch = 2;
}

/* "148004160 bytes (141.1 MiB)" */
static const char *bytes_str(char *buf, size_t n, int64_t bytes) {
    const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int k = 0;
    while (v >= 1024 && k < 4) v /= 1024, k++;
    if (k) snprintf(buf, n, "%lld bytes (%.1f %s)", (long long)bytes, v, unit[k]);
    else snprintf(buf, n, "%lld byte%s", (long long)bytes, bytes == 1 ? "" : "s");
    return buf;
}

/* --mem-budget: recompute until the train step fits, or say how close it gets. */
static void fit_budget(ModelIR *m, Graph *g, int64_t budget, int full_search, const Program *p) {
    RecomputeResult r = recompute(g, budget, m->target, m->threads, full_search);
    ir_verify(g, "recompute");
    m->mem_budget = budget;
    m->arena_plain = r.before;
    m->recomputed = r.recomputed;
    if (r.after > budget) {
        char b[64], best[64], plain[64];
        diag_error_file(p->file->name,
                        "the train step does not fit in --mem-budget %s at batch %d on %d thread%s: recomputing "
                        "activations in the backward brings its arena down to %s at best, from %s without "
                        "recomputation",
                        bytes_str(b, sizeof b, budget), g->batch, m->threads, m->threads == 1 ? "" : "s",
                        bytes_str(best, sizeof best, r.after), bytes_str(plain, sizeof plain, r.before));
    }
}

/* The model in evaluation mode: its outputs (with_loss 0), or its loss and no outputs.
 * Only the first is dumped after each pass; both as emitted. */
static Graph *eval_graph(Arena *a, const Program *p, ModelIR *m, const DumpOptions *d, int with_loss) {
    const DumpOptions *pd = with_loss ? NULL : d;
    Graph *e = lower_program(a, p, &m->spec, MODE_EVAL);
    e->conv_algo = m->conv_algo, e->tf32 = m->tf32, e->cublaslt = m->cublaslt;
    /* with the loss, the graph keeps its outputs: the C target runs forward as this
     * graph without its loss-only nodes (emit_c.c) */
    if (!with_loss) e->loss = -1;
    pass_done(pd, PASS_lower, e);
    if (m->bf16) {
        precision_bf16(e);
        pass_done(pd, PASS_precision, e);
    }
    simplify(e);
    pass_done(pd, PASS_simplify, e);
    fold_bn(e);
    pass_done(pd, PASS_fold_bn, e);
    dce(e);
    pass_done(pd, PASS_dce, e);
    dump(d, d && d->final, with_loss ? "dce (eval loss, as emitted)" : "dce (eval, as emitted)", e);
    return e;
}

ModelIR *compile_model(Arena *a, const Program *p, int batch_override, const DumpOptions *d) {
    CompileOptions o = {.batch = batch_override, .target = TARGET_C};
    return compile_model_opts(a, p, &o, d);
}

ModelIR *compile_model_opts(Arena *a, const Program *p, const CompileOptions *o, const DumpOptions *d) {
    const int64_t mem_budget = o->mem_budget;
    ModelIR *m = ARENA_NEW(a, ModelIR);
    m->arena = a;
    m->source = p->file->name;
    m->target = o->target;
    m->threads = o->threads > 0 ? o->threads : 1;
    m->tf32 = o->tf32;
    m->cublaslt = o->cublaslt;
    m->bf16 = o->bf16;
    m->conv_algo = o->conv_algo;
    lower_spec(a, p, &m->spec);
    if (o->batch > 0) m->spec.batch = o->batch;

    /* The train step: forward, backward, update. */
    Graph *g = lower_program(a, p, &m->spec, MODE_TRAIN);
    g->conv_algo = m->conv_algo, g->tf32 = m->tf32, g->cublaslt = m->cublaslt;
    pass_done(d, PASS_lower, g);
    if (g->loss < 0) diag_error_file(p->file->name, "the model has no 'loss' statement, so it cannot be trained");
    if (m->bf16) {
        precision_bf16(g);
        pass_done(d, PASS_precision, g);
    }
    uint8_t *groups = param_groups(g, &m->spec.freeze, &m->spec.no_decay);
    GradList gl = autodiff(g, groups);
    pass_done(d, PASS_autodiff, g);
    add_optimizer(g, &gl, &m->spec.opt, groups);
    pass_done(d, PASS_optimizer, g);
    split_bn(g);
    pass_done(d, PASS_split_bn, g);
    simplify(g);
    pass_done(d, PASS_simplify, g);
    if (!o->no_relu_pool) {
        relu_pool(g);
        pass_done(d, PASS_relu_pool, g);
    }
    dce(g);
    grad_owners(g);
    pass_done(d, PASS_dce, g);
    if (mem_budget > 0) {
        fit_budget(m, g, mem_budget, o->full_search, p);
        pass_done(d, PASS_recompute, g);
    }
    dump(d, d && d->final, mem_budget > 0 ? "recompute (train step, as emitted)" : "dce (train step, as emitted)", g);
    m->train = g;

    /* Inference: the same model in evaluation mode, outputs only; and its loss alone.
     * Batch norms with running statistics fold into the convolutions before them. */
    m->eval = eval_graph(a, p, m, d, 0);
    m->eval_loss = eval_graph(a, p, m, d, 1);

    find_io(m, p);
    collect_persistents(m);
    /* Fusion decides which nodes run as one loop nest / kernel; it does not change the
     * graphs, so its dump lists the kernels instead. */
    m->debug = o->debug;
    FusionPlan (*fuse)(Arena *, const Graph *) = o->debug ? fuse_nothing : fuse_graph;
    m->train_fuse = fuse(a, m->train);
    m->eval_fuse = fuse(a, m->eval);
    m->eval_loss_fuse = fuse(a, m->eval_loss);
    if (d && d->out && (d->after & DUMP_AFTER(PASS_fuse))) {
        fusion_print(d->out, m->train, &m->train_fuse);
        fusion_print(d->out, m->eval, &m->eval_fuse);
    }
    m->update_phase = update_phase(a, m->train);
    /* A model without parameters has no gradients and nothing to update: every node of its
     * train step is forward_backward's, and update is empty (NULL would say "every node",
     * the meaning it has for the eval graphs, and put the forward pass into update). */
    if (!m->update_phase) m->update_phase = arena_alloc(a, (size_t)m->train->n + 1);
    layout_grad_slab(m);
    if (d && d->out && d->dot) model_print_dot(d->out, m, d->dot);
    MemPlan (*plan)(Arena *, const Graph *, const FusionPlan *, TargetKind) =
        o->debug ? plan_memory_no_reuse : plan_memory;
    m->train_plan = plan(a, m->train, &m->train_fuse, m->target);
    m->eval_plan = plan(a, m->eval, &m->eval_fuse, m->target);
    m->eval_loss_plan = plan(a, m->eval_loss, &m->eval_loss_fuse, m->target);
    m->arena_planned = 4 * plan_floats(&m->train_plan, m->train->batch, m->threads);
    if (!m->mem_budget) m->arena_plain = m->arena_planned;
    /* the budget holds for the arena as planned, not only for recomputation's trials */
    if (m->mem_budget && m->arena_planned > m->mem_budget) {
        char b[64], got[64];
        diag_error_file(p->file->name, "the train step does not fit in --mem-budget %s: its arena as planned is %s",
                        bytes_str(b, sizeof b, m->mem_budget), bytes_str(got, sizeof got, m->arena_planned));
    }
    return m;
}
