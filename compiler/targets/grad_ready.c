/* grad_ready.c - where forward_backward tells the runtime that a longer prefix of the
 * gradient slab is final (set_grad_ready, runtime/mlc_model.h), on every target: the C
 * model after the code that finishes it, the CUDA model once the kernels that finish it
 * are queued on its stream (the runtime orders its all-reduce after them with an event).
 * That lets the data-parallel runtime all-reduce the front of the slab while the rest of
 * the backward runs (docs/distributed.md). */
#include "emit.h"
#include "target.h"

/* For each position of forward_backward's code, how long a prefix of the gradient slab
 * is final once it has run: the slab is laid out in the order the backward finishes the
 * gradients (grad_slab.c), so the prefix ends at the first slot whose node has not run
 * yet. A gradient runs where its fused group or GEMM does (fp->at); the shared
 * gradients' copies run at the very end.
 *
 * ready[id] is the smallest offset among the gradients that run after id: the least
 * offset finished at each position, then a running minimum from the end. One pass over
 * the nodes and one over the persistents, where a scan of every persistent per node made
 * a 16,000-layer compile take minutes. */
const int64_t *grad_ready_after(const ModelIR *m, const FusionPlan *fp) {
    const Graph *g = m->train;
    /* least_at[a]: the least offset of a gradient that runs at a (g->n: at the end) */
    int64_t *least_at = ARENA_ARRAY(m->arena, int64_t, (size_t)g->n + 1);
    for (int a = 0; a <= g->n; a++) least_at[a] = m->grad_floats;
    for (int i = 0; i < m->npers; i++) {
        const Persistent *p = &m->pers[i];
        if (p->grad_offset < 0 || p->grad_offset >= m->grad_floats) continue;
        int at = p->grad_copy_of >= 0 ? g->n : fp->at[p->grad_node] >= 0 ? fp->at[p->grad_node] : p->grad_node;
        if (at < 0) continue; /* runs before every node: never holds a prefix back */
        if (at > g->n) at = g->n;
        if (p->grad_offset < least_at[at]) least_at[at] = p->grad_offset;
    }
    int64_t *ready = ARENA_ARRAY(m->arena, int64_t, g->n);
    int64_t first_open = least_at[g->n];
    for (int id = g->n - 1; id >= 0; id--) {
        ready[id] = first_open; /* the gradients at positions id + 1 .. g->n */
        if (least_at[id] < first_open) first_open = least_at[id];
    }
    return ready;
}

void emit_grad_ready_call(EmitCtx *e, const ModelIR *m, const int64_t *ready, int id) {
    if (ready && ready[id] > (id ? ready[id - 1] : 0) && ready[id] < m->grad_floats)
        emit(
            e,
            "if (self->grad_ready) self->grad_ready(self->grad_ctx, %lld); /* the slab's first %lld floats are final */",
            (long long)ready[id], (long long)ready[id]);
}

void emit_grad_ready_setter(const ModelIR *m, FILE *out) {
    const char *n = m->spec.name;
    fprintf(out, "static void api_set_grad_ready(void *model, void (*ready)(void *ctx, int64_t done), void *ctx) {\n");
    fprintf(out,
            "    %s_model *self = (%s_model *)model;\n    self->grad_ready = ready;\n    self->grad_ctx = ctx;\n}\n\n",
            n, n);
}
