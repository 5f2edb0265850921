/* optim.c - the C target's optimizer updates: one call per parameter into the kernel
 * library's routine for its kind (runtime/kernels/c/optim.c), rather than the update's
 * loop spelled out once per parameter; the constants of the step (Adam's bias corrections,
 * in double as targets/shared/optim.c computes them for CUDA) are its arguments. The ops'
 * semantics are in ops/ops_optim.c. */
#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_sgd_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "mlc_sgd_update(%s, %s, %s, %s, lr, %s, %s, %d);", emit_numel(e, n->in[0]), emit_buf(e, n->in[0]),
         emit_buf(e, n->in[2]), emit_buf(e, n->in[1]), emit_float(e, attr_f(n, A_MOMENTUM)), emit_float(e, attr_f(n, A_WEIGHT_DECAY)),
         attr_i(n, A_NESTEROV) != 0);
}

void emit_adam_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int decoupled = attr_i(n, A_DECOUPLED) != 0;
    const char *step, *inv_bc2;
    adam_bias_corrections(e, n, &step, &inv_bc2);
    emit(e, "{");
    e->indent++;
    emit(e, "const mlc_adam_step s = {.step = %s,", step);
    emit(e, "                         .inv_bc2 = %s,", inv_bc2);
    emit(e, "                         .b1 = %s, .b2 = %s, .eps = %s, .wd = %s, .decay = %s, .decoupled = %d};",
         emit_float(e, attr_f(n, A_BETA1)), emit_float(e, attr_f(n, A_BETA2)), emit_float(e, attr_f(n, A_EPS)), emit_float(e, attr_f(n, A_WEIGHT_DECAY)),
         decoupled ? arena_printf(e->arena, "1.0f - lr * %s", emit_float(e, attr_f(n, A_WEIGHT_DECAY))) : "1.0f", decoupled);
    emit(e, "mlc_adam_update(%s, %s, %s, %s, %s, &s);", emit_numel(e, n->in[0]), emit_buf(e, n->in[0]),
         emit_buf(e, n->in[2]), emit_buf(e, n->in[3]), emit_buf(e, n->in[1]));
    e->indent--;
    emit(e, "}");
}
