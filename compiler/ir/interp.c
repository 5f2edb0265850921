/* interp.c - reference evaluation of a graph in double; see interp.h. */
#include "interp.h"

#include <stdlib.h>
#include <string.h>

#include "ops.h"

Interp *interp_new(const Graph *g) {
    Interp *in = calloc(1, sizeof *in);
    in->g = g;
    in->vals = calloc((size_t)g->n, sizeof(double *));
    for (int i = 0; i < g->n; i++) {
        int64_t n = shape_numel(&g->nodes[i].shape);
        in->vals[i] = calloc((size_t)(n ? n : 1), sizeof(double));
        if (!in->vals[i]) mlc_out_of_memory(0);
    }
    return in;
}

void interp_free(Interp *in) {
    if (!in) return;
    for (int i = 0; i < in->g->n; i++) free(in->vals[i]);
    free(in->vals);
    free(in);
}

/* Elementwise with right-aligned broadcasting: each output index maps to an input index
 * by dropping dimensions where the input has size 1. */
static void ewise(const Graph *g, const Node *n, double *const *in, double *out) {
    const OpRules *r = op_of(n)->rules;
    const Shape *t = &n->shape;
    int64_t total = shape_numel(t);
    for (int64_t k = 0; k < total; k++) {
        double v[2] = {0, 0};
        for (int a = 0; a < n->nin; a++) v[a] = in[a][broadcast_index(t, &g->nodes[n->in[a]].shape, k)];
        out[k] = n->nin == 1 ? r->scalar1(v[0], n) : r->scalar2(v[0], v[1], n);
    }
}

void interp_run(Interp *it) {
    const Graph *g = it->g;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        const OpInfo *oi = op_of(n);
        double *in[IR_MAX_IN] = {0};
        for (int k = 0; k < n->nin; k++) in[k] = it->vals[n->in[k]];
        switch (oi->kind) {
        case K_SOURCE:
            if (n->op == OP_const) {
                double v = attr_f(n, A_VALUE);
                if (attr_i(n, A_BPOW) == -1) v /= g->batch;
                if (attr_i(n, A_BPOW) == 1) v *= g->batch;
                it->vals[id][0] = v;
            }
            break;
        case K_EWISE: ewise(g, n, in, it->vals[id]); break;
        case K_UPDATE: break;
        default:
            if (!oi->rules->eval) mlc_die("op %s has no reference evaluation", oi->name);
            oi->rules->eval(g, n, in, it->vals[id]);
        }
    }
}
