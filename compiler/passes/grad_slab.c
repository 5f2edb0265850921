/* grad_slab.c - the seam between the backward and the optimizer update.
 *
 * The train step is emitted as two calls: forward_backward (forward, loss, backward,
 * running statistics) and update (what optimizer.c appended: clipping, weight decay,
 * Adam's moments). Between them the parameter gradients sit in one contiguous gradient
 * slab that a caller may read, average over micro-batches or all-reduce between
 * processes. This file says which node belongs to which call and where each gradient
 * sits in the slab; fuse.c keeps the two calls' nodes apart and memplan.c leaves the
 * gradients out of the arena. */
#include <stdlib.h>

#include "model.h"
#include "ops.h"

void grad_owners(Graph *g) {
    for (int id = 0; id < g->n; id++) {
        Node *n = &g->nodes[id];
        if (!(n->role & ROLE_GRAD) || n->op != OP_reshape) continue;
        g->nodes[view_owner(g, id)].role |= ROLE_GRAD;
    }
}

char *update_phase(Arena *a, const Graph *g) {
    int any = 0;
    for (int id = 0; id < g->n && !any; id++) any = (g->nodes[id].role & ROLE_GRAD) != 0;
    if (!any) return NULL;
    /* forward_backward computes what the loss, the output, the gradients and the running
     * statistics (ema_update) need; the update is the rest: the optimizer's nodes and
     * what only they read (clipping). A gradient may also be a step of the backward
     * towards another one (a parameter of the same shape as an activation). */
    char *need = arena_alloc(a, (size_t)g->n + 1), *ph = arena_alloc(a, (size_t)g->n + 1);
    for (int id = g->n - 1; id >= 0; id--) {
        const Node *n = &g->nodes[id];
        if ((n->role & (ROLE_LOSS | ROLE_OUTPUT | ROLE_GRAD)) || n->op == OP_ema_update || id == g->loss ||
            graph_is_output(g, id))
            need[id] = 1;
        if (!need[id]) continue;
        for (int k = 0; k < n->nin; k++) need[n->in[k]] = 1;
    }
    for (int id = 0; id < g->n; id++) ph[id] = !need[id] && op_of(&g->nodes[id])->kind != K_SOURCE;
    /* The update may read only the slab (parameters, state, gradients) and constants:
     * the arena's contents do not survive from one call to the next. */
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (!ph[id]) continue;
        for (int k = 0; k < n->nin; k++) {
            int x = view_owner(g, n->in[k]);
            if (!ph[x] && op_of(&g->nodes[x])->kind != K_SOURCE && !(g->nodes[x].role & ROLE_GRAD))
                mlc_die("update node %%%d reads %%%d (%s) of the forward-backward", id, x, op_of(&g->nodes[x])->name);
        }
    }
    return ph;
}

typedef struct GradSlot {
    int pers, node, at, copy_of;
} GradSlot;

static int by_position(const void *pa, const void *pb) {
    const GradSlot *a = pa, *b = pb;
    if (a->at != b->at) return a->at < b->at ? -1 : 1;
    return (a->pers > b->pers) - (a->pers < b->pers);
}

/* The gradient of each parameter: the input 1 of its update, through the clipping
 * (mul(gradient, factor)) when there is one, to the ROLE_GRAD node, then its owner. */
static int gradient_of_update(const Graph *g, const Node *u) {
    int x = u->in[1];
    while (!(g->nodes[x].role & ROLE_GRAD)) {
        const Node *n = &g->nodes[x];
        if (n->op != OP_mul && n->op != OP_reshape)
            mlc_die("update of %s: cannot find its gradient", g->nodes[u->in[0]].name);
        x = n->in[0];
    }
    return view_owner(g, x);
}

void layout_grad_slab(ModelIR *m) {
    const Graph *g = m->train;
    const FusionPlan *fp = &m->train_fuse;
    GradSlot *s = ARENA_ARRAY(m->arena, GradSlot, m->npers + 1);
    int ns = 0;
    /* owner[gr]: the persistent whose slot gradient node gr writes first (-1: none yet);
     * a later one sharing gr gets a copy. An array, as a search of the slots so far made
     * a model with tens of thousands of parameters quadratic. */
    int *owner = ARENA_ARRAY(m->arena, int, g->n + 1);
    for (int id = 0; id < g->n; id++) owner[id] = -1;
    for (int i = 0; i < m->npers; i++)
        m->pers[i].grad_offset = -1, m->pers[i].grad_node = -1, m->pers[i].grad_copy_of = -1;
    for (int id = 0; id < g->n; id++) {
        const Node *u = &g->nodes[id];
        if (u->op != OP_sgd_update && u->op != OP_sgd_plain_update && u->op != OP_adam_update) continue;
        int p = model_find_persistent(m, g->nodes[u->in[0]].name), gr = gradient_of_update(g, u);
        if (p < 0) mlc_die("update %%%d: no slab slot for %s", id, g->nodes[u->in[0]].name);
        /* A gradient the compiler folded to a constant (the loss is linear in the parameter)
         * is the same in every micro-batch and on every process: the update reads the
         * constant, and the parameter needs no slot in the slab. */
        if (op_of(&g->nodes[gr])->kind == K_SOURCE) continue;
        int copy_of = owner[gr];
        if (copy_of < 0) owner[gr] = p;
        /* a copy is made when forward_backward ends: after every gradient */
        s[ns++] = (GradSlot){p, gr, copy_of >= 0 ? g->n : fp->at[gr] >= 0 ? fp->at[gr] : gr, copy_of};
    }
    qsort(s, (size_t)ns, sizeof *s, by_position);
    int64_t off = 0;
    for (int k = 0; k < ns; k++) {
        Persistent *p = &m->pers[s[k].pers];
        p->grad_offset = off;
        p->grad_node = s[k].node;
        p->grad_copy_of = s[k].copy_of;
        off += (shape_numel(&p->shape) + 15) & ~(int64_t)15;
    }
    m->grad_floats = off;
}
