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
/* sgd with momentum 0: p -= lr * (g + wd p). No velocity: with momentum 0 it would only
 * hold the last gradient, a buffer the size of the parameters that nothing reads (as
 * PyTorch's SGD keeps none). */
const OpRules rules_sgd_plain_update = {.shape = s_update};
const OpRules rules_adam_update = {.shape = s_update};

/* ema_update(state, value): state = (1 - m) state + m c value, the running statistics of
 * batch_norm. m = momentum; per_sample = elements per sample behind each value (H*W);
 * unbiased: the correction c = n / (n - 1), n = B * per_sample. */
const OpRules rules_ema_update = {.shape = s_update};

/* param_ema(ema, updated param): ema = d ema + (1 - d) param after each optimizer step
 * (train { ema = d }), in the update function after the parameter's own update, which it
 * reads. On the first step (t = 1) d counts as 0: the average starts at the parameter
 * rather than at the zeros state starts from, so it is never pulled towards 0. attribute decay = d. */
const OpRules rules_param_ema = {.shape = s_update};
