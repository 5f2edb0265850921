/* pipeline.c - the middle end as one function: lower -> autodiff -> optimizer -> split_bn ->
 * simplify -> relu_pool -> DCE -> (recompute, under --mem-budget) -> fuse -> gradient slab
 * layout -> memory plan for the train step (emitted as two calls, forward_backward and
 * update: grad_slab.c); lower -> simplify -> fold_bn -> DCE -> fuse -> memory plan for
 * evaluation; the verifier after every pass and the dumps the user asked for. */
#include <stdio.h>
#include <string.h>

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

int model_find_persistent(const ModelIR *m, const char *name) {
    return names_get(&m->pers_index, name);
}

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
            names_put(&m->pers_index, n->name, m->npers);
            Persistent *p = &m->pers[m->npers++];
            p->name = n->name;
            p->shape = n->shape;
            p->is_param = n->op == OP_param;
            p->init = (int)n->iattr[0]; /* optimizer state: zeros; running variances: ones */
            p->a = n->fattr[0];
            p->b = n->fattr[1];
            p->offset = off;
            off += (shape_numel(&n->shape) + 15) & ~(int64_t)15;
        }
    m->slab_floats = off;
}

/* The trainer feeds one f32 input [B, ...] (the data) and one i32 input [B] (labels). */
static void find_data_inputs(ModelIR *m, const Program *p) {
    const Graph *g = m->train;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_input) continue;
        if (!(n->shape.bmask & 1))
            diag_error(&n->loc, "input '%s' must have the batch dimension B first", n->name);
        if (n->dtype == DT_F32) {
            if (m->data_name) diag_error(&n->loc, "the trainer takes one f32 input; '%s' is a second", n->name);
            m->data_name = n->name;
            m->data_shape = n->shape;
        } else {
            if (m->label_name) diag_error(&n->loc, "the trainer takes one i32 label input; '%s' is a second", n->name);
            if (n->shape.rank != 1) diag_error(&n->loc, "labels must be i32[B]");
            m->label_name = n->name;
        }
    }
    if (!m->data_name) diag_error_file(p->file->name, "the model has no f32 input (the data)");
    if (!m->label_name) diag_error_file(p->file->name, "the model has no i32 input (the labels)");
    if (g->loss < 0) diag_error_file(p->file->name, "the model has no 'loss' statement, so it cannot be trained");
    if (m->eval->output < 0) diag_error_file(p->file->name, "the model has no 'output' statement");
    m->classes = m->eval->nodes[m->eval->output].shape.d[1];
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
static void fit_budget(ModelIR *m, Graph *g, int64_t budget, const Program *p) {
    RecomputeResult r = recompute(g, budget, m->target, m->threads);
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
                        bytes_str(best, sizeof best, r.after),
                        bytes_str(plain, sizeof plain, r.before));
    }
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
    lower_spec(a, p, &m->spec);
    if (o->batch > 0) m->spec.batch = o->batch;

    /* The train step: forward, backward, update. */
    Graph *g = lower_program(a, p, &m->spec, MODE_TRAIN);
    pass_done(d, PASS_lower, g);
    if (g->loss < 0) diag_error_file(p->file->name, "the model has no 'loss' statement, so it cannot be trained");
    GradList gl = autodiff(g);
    pass_done(d, PASS_autodiff, g);
    add_optimizer(g, &gl, &m->spec.opt);
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
        fit_budget(m, g, mem_budget, p);
        pass_done(d, PASS_recompute, g);
    }
    dump(d, d && d->final, mem_budget > 0 ? "recompute (train step, as emitted)" : "dce (train step, as emitted)", g);
    m->train = g;

    /* Inference: the same model in evaluation mode, output only; batch norms with
     * running statistics fold into the convolutions before them. */
    Graph *e = lower_program(a, p, &m->spec, MODE_EVAL);
    e->loss = -1;
    pass_done(d, PASS_lower, e);
    simplify(e);
    pass_done(d, PASS_simplify, e);
    fold_bn(e);
    pass_done(d, PASS_fold_bn, e);
    dce(e);
    pass_done(d, PASS_dce, e);
    dump(d, d && d->final, "dce (eval, as emitted)", e);
    m->eval = e;

    find_data_inputs(m, p);
    collect_persistents(m);
    /* Fusion decides which nodes run as one loop nest / kernel; it does not change the
     * graphs, so its dump lists the kernels instead. */
    m->train_fuse = fuse_graph(a, m->train);
    m->eval_fuse = fuse_graph(a, m->eval);
    if (d && d->out && (d->after & DUMP_AFTER(PASS_fuse))) {
        fusion_print(d->out, m->train, &m->train_fuse);
        fusion_print(d->out, m->eval, &m->eval_fuse);
    }
    m->update_phase = update_phase(a, m->train);
    layout_grad_slab(m);
    if (d && d->out && d->dot) model_print_dot(d->out, m, d->dot);
    m->train_plan = plan_memory(a, m->train, &m->train_fuse, m->target);
    m->eval_plan = plan_memory(a, m->eval, &m->eval_fuse, m->target);
    m->arena_planned = 4 * plan_floats(&m->train_plan, m->train->batch, m->threads);
    if (!m->mem_budget) m->arena_plain = m->arena_planned;
    return m;
}
