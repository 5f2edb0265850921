/* autodiff.c - reverse-mode symbolic differentiation.
 *
 * Walks the forward graph from the loss back to the parameters, calling each op's
 * gradient rule (ops_*.c). Rules emit ordinary forward ops, so the backward graph is
 * plain IR that every later pass and both targets handle like the forward one. A value
 * used several times gets the sum of the gradients flowing back along each use. */
#include <string.h>

#include "ops.h"
#include "passes.h"

/* A parameter the loss does not depend on is never trained: usually a layer whose result
 * is not used, or used only by an `output`. One warning per layer (the parameters one
 * call created share its location). */
static void warn_untrained(const Graph *g, const int *gsum, const uint8_t *groups, int n0) {
    for (int i = 0; i < n0; i++) {
        const Node *n = &g->nodes[i];
        /* graphs built without a source (the gradient checker's) have nobody to tell */
        if (n->op != OP_param || gsum[i] >= 0 || !n->loc.file || (groups && (groups[i] & PARAM_FROZEN))) continue;
        const char *names = arena_printf(g->arena, "'%s'", n->name);
        int j = i + 1, k = 1;
        for (; j < n0; j++) { /* the rest of the same call's untrained parameters */
            const Node *m = &g->nodes[j];
            if (m->op != OP_param || (groups && (groups[j] & PARAM_FROZEN))) continue;
            if (gsum[j] >= 0 || m->loc.line != n->loc.line || m->loc.col != n->loc.col || m->loc.file != n->loc.file)
                break;
            names = arena_printf(g->arena, "%s, '%s'", names, m->name);
            k++;
        }
        diag_warning(n->loc.file ? &n->loc : NULL, "the loss does not depend on %s, so training never changes %s",
                     names, k > 1 ? "them" : "it");
        i = j - 1;
    }
}

GradList autodiff(Graph *g, const uint8_t *groups) {
    if (g->loss < 0) mlc_die("autodiff: the graph has no loss");
    int n0 = g->n;
    Arena *a = g->arena;

    /* needs[i]: node i depends on some parameter, so its gradient is worth computing. */
    char *needs = arena_alloc(a, (size_t)n0);
    for (int i = 0; i < n0; i++) {
        const Node *n = &g->nodes[i];
        /* a frozen parameter is a constant here: nothing is computed for its gradient */
        if (n->op == OP_param) needs[i] = !(groups && (groups[i] & PARAM_FROZEN));
        for (int k = 0; k < n->nin; k++) needs[i] |= needs[n->in[k]];
    }

    int *gsum = ARENA_ARRAY(a, int, n0);
    for (int i = 0; i < n0; i++) gsum[i] = -1;
    gsum[g->loss] = ir_const(g, 1.0, 0, &g->nodes[g->loss].loc);

    for (int id = g->loss; id >= 0; id--) {
        if (gsum[id] < 0 || !needs[id]) continue;
        Node n = g->nodes[id]; /* a copy: rules append nodes and may move the array */
        const OpInfo *oi = &op_info[n.op];
        if (oi->kind == K_SOURCE) continue;
        if (!oi->rules->grad) mlc_die("op %s has no gradient rule", oi->name);
        int gx[IR_MAX_IN];
        for (int k = 0; k < IR_MAX_IN; k++) gx[k] = -1;
        oi->rules->grad(g, id, gsum[id], gx);
        for (int k = 0; k < n.nin; k++) {
            int x = n.in[k];
            if (gx[k] < 0 || !needs[x]) continue;
            if (!shape_eq(&g->nodes[gx[k]].shape, &g->nodes[x].shape))
                mlc_die("gradient rule of %s gives input %d shape that differs from the input's", oi->name, k);
            gsum[x] = gsum[x] < 0 ? gx[k] : ir_binary(g, OP_add, gsum[x], gx[k], &n.loc);
        }
    }

    /* each new gradient value names the first forward value it is the gradient of (one
     * value can be several's: an add passes its gradient to both inputs) */
    for (int i = 0; i < n0; i++)
        if (gsum[i] >= n0 && !g->nodes[gsum[i]].grad_of) g->nodes[gsum[i]].grad_of = i + 1;
    warn_untrained(g, gsum, groups, n0);
    GradList gl = {0};
    for (int i = 0; i < n0; i++) gl.n += g->nodes[i].op == OP_param;
    gl.param = ARENA_ARRAY(a, int, gl.n);
    gl.grad = ARENA_ARRAY(a, int, gl.n);
    int k = 0;
    for (int i = 0; i < n0; i++)
        if (g->nodes[i].op == OP_param) {
            gl.param[k] = i;
            gl.grad[k] = gsum[i];
            if (gsum[i] >= 0) g->nodes[gsum[i]].role |= ROLE_GRAD;
            k++;
        }
    return gl;
}
