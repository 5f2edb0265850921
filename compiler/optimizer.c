/* optimizer.c - appends the optimizer's update to the train step: one update node per
 * parameter (ops_optim.c) and the state it needs, named after the parameter so that
 * checkpoints can say which tensor is which. */
#include <string.h>

#include "ops.h"
#include "passes.h"

static int state(Graph *g, int param, const char *suffix) {
    const Node *p = &g->nodes[param];
    return graph_add_source(g, OP_state, p->shape, DT_F32, arena_printf(g->arena, "%s.%s", p->name, suffix), &p->loc);
}

void add_optimizer(Graph *g, const GradList *gl, const OptimizerSpec *opt) {
    int adam = !strcmp(opt->kind, "adam");
    for (int i = 0; i < gl->n; i++) {
        int p = gl->param[i], gr = gl->grad[i];
        if (gr < 0) continue; /* the loss does not depend on it: nothing to update */
        SrcLoc loc = g->nodes[p].loc;
        if (adam) {
            int m = state(g, p, "adam_m"), v = state(g, p, "adam_v");
            int in[4] = {p, gr, m, v};
            double fa[4] = {opt->beta1, opt->beta2, opt->eps, opt->weight_decay};
            graph_add(g, OP_adam_update, in, 4, NULL, fa, &loc);
        } else {
            int v = state(g, p, "momentum");
            int in[3] = {p, gr, v};
            double fa[4] = {opt->momentum, opt->weight_decay, 0, 0};
            int64_t ia[4] = {opt->nesterov, 0, 0, 0};
            graph_add(g, OP_sgd_update, in, 3, ia, fa, &loc);
        }
    }
}
