/* ops_optim.c - rules of the optimizer updates, appended to the train step after
 * autodiff (compiler/passes/optimizer.c). Each writes its parameter (input 0) and its state in
 * place, in one loop: reading a parameter, its gradient and its state once per step is
 * what makes the update cheap. `lr` and the step count t are run-time values. */
#include "ops.h"

#define X(id) (&g->nodes[id])

/* All inputs have the parameter's shape; the node stands for the updated parameter. */
static const char *s_update(Graph *g, Node *n) {
    const Node *p = X(n->in[0]);
    for (int i = 1; i < n->nin; i++)
        if (!shape_eq(&X(n->in[i])->shape, &p->shape))
            return shape_err(g, "%s: input %d's shape differs from the parameter's", op_of(n)->name, i);
    n->shape = p->shape;
    n->dtype = DT_F32;
    return NULL;
}

const OpRules rules_sgd_update = {.shape = s_update};
const OpRules rules_adam_update = {.shape = s_update};

/* ema_update(state, value): state = (1 - m) state + m c value, the running statistics of
 * batch_norm. m = momentum; per_sample = elements per sample behind each value (H*W);
 * unbiased: the correction c = n / (n - 1), n = B * per_sample. */
const OpRules rules_ema_update = {.shape = s_update};
