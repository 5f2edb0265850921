/* optimizer.c - appends the optimizer's update to the train step: one update node per
 * parameter (ops_optim.c) and the state it needs, named after the parameter so that
 * checkpoints can say which tensor is which; with train { ema }, each parameter's moving
 * average after its update. */
#include <string.h>

#include "ops.h"
#include "passes.h"

static int state(Graph *g, int param, const char *suffix) {
    const Node *p = &g->nodes[param];
    return graph_add_source(g, OP_state, p->shape, DT_F32, arena_printf(g->arena, "%s.%s", p->name, suffix), &p->loc);
}

/* Sum of squares of all elements of x, as a scalar. */
static int sum_squares(Graph *g, int x, const SrcLoc *loc) {
    int sq = ir_binary(g, OP_mul, x, x, loc);
    while (g->nodes[sq].shape.rank > 0) sq = ir_reduce(g, OP_sum, sq, 0, 0, loc);
    return sq;
}

/* Clipping by global norm: every gradient times min(1, clip / (||all gradients|| + 1e-6)),
 * written with ordinary ops so both targets get it for free. */
static void clip_gradients(Graph *g, int *grads, int n, double clip) {
    int total = -1;
    SrcLoc loc = {0};
    for (int i = 0; i < n; i++) {
        if (grads[i] < 0) continue;
        loc = g->nodes[grads[i]].loc;
        int s = sum_squares(g, grads[i], &loc);
        total = total < 0 ? s : ir_binary(g, OP_add, total, s, &loc);
    }
    if (total < 0) return;
    int norm = ir_binary(g, OP_add, ir_unary(g, OP_sqrt, total, &loc), ir_const(g, 1e-6, 0, &loc), &loc);
    int factor = ir_binary(g, OP_minimum, ir_const(g, 1.0, 0, &loc),
                           ir_binary(g, OP_div, ir_const(g, clip, 0, &loc), norm, &loc), &loc);
    for (int i = 0; i < n; i++)
        if (grads[i] >= 0) grads[i] = ir_binary(g, OP_mul, grads[i], factor, &g->nodes[grads[i]].loc);
}

/* train { ema = d }: after the update of parameter p (node upd), its moving average
 * "<p>.ema" = d * ema + (1 - d) * p, which starts as p itself on the first step
 * (ops_optim.c). Reading the update node orders it after the update. */
static void add_param_ema(Graph *g, int p, int upd, double decay) {
    int in[2] = {state(g, p, "ema"), upd};
    graph_add(g, OP_param_ema, in, 2, ATTRS(AF(A_DECAY, decay)), &g->nodes[p].loc);
}

void add_optimizer(Graph *g, const GradList *gl, const OptimizerSpec *opt, const uint8_t *groups) {
    int adam = strcmp(opt->kind, "sgd") != 0;
    int64_t decoupled = !strcmp(opt->kind, "adamw"); /* AdamW: weight decay apart from the gradient */
    int *grads = ARENA_ARRAY(g->arena, int, gl->n ? gl->n : 1);
    for (int i = 0; i < gl->n; i++) grads[i] = gl->grad[i];
    if (opt->clip_norm > 0) clip_gradients(g, grads, gl->n, opt->clip_norm);
    for (int i = 0; i < gl->n; i++) {
        int p = gl->param[i], gr = grads[i];
        if (gr < 0) continue; /* the loss does not depend on it: nothing to update */
        SrcLoc loc = g->nodes[p].loc;
        double decay = groups && (groups[p] & PARAM_NO_DECAY) ? 0 : opt->weight_decay;
        if (adam) {
            int m = state(g, p, "adam_m"), v = state(g, p, "adam_v");
            int in[4] = {p, gr, m, v};
            graph_add(g, OP_adam_update, in, 4,
                      ATTRS(AF(A_BETA1, opt->beta1), AF(A_BETA2, opt->beta2), AF(A_EPS, opt->eps),
                            AF(A_WEIGHT_DECAY, decay), AI(A_DECOUPLED, decoupled)),
                      &loc);
        } else if (opt->momentum == 0) { /* nesterov needs a momentum (train_spec.c) */
            int in[2] = {p, gr};
            graph_add(g, OP_sgd_plain_update, in, 2, ATTRS(AF(A_WEIGHT_DECAY, decay)), &loc);
        } else {
            int v = state(g, p, "momentum");
            int in[3] = {p, gr, v};
            graph_add(g, OP_sgd_update, in, 3,
                      ATTRS(AF(A_MOMENTUM, opt->momentum), AF(A_WEIGHT_DECAY, decay), AI(A_NESTEROV, opt->nesterov)),
                      &loc);
        }
        if (opt->ema > 0) add_param_ema(g, p, g->n - 1, opt->ema);
    }
}
