/* optim.c - the C target's optimizer updates: one call per parameter into the kernel
 * library's routine for its kind (runtime/kernels/c/optim.c), rather than the update's
 * loop spelled out once per parameter; the constants of the step (Adam's bias corrections,
 * in double as targets/shared/optim.c computes them for CUDA) are its arguments. The ops'
 * semantics are in ops/ops_optim.c. */
#include <string.h>

#include "c_emitters.h"
#include "emit.h"
#include "ops.h"

void emit_sgd_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "mlc_sgd_update(%s, %s, %s, %s, lr, %s, %s, %d);", emit_numel(e, n->in[0]), emit_buf(e, n->in[0]),
         emit_buf(e, n->in[2]), emit_buf(e, n->in[1]), emit_float(e, attr_f(n, A_MOMENTUM)),
         emit_float(e, attr_f(n, A_WEIGHT_DECAY)), attr_i(n, A_NESTEROV) != 0);
}

void emit_sgd_plain_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    emit(e, "mlc_sgd_plain_update(%s, %s, %s, lr, %s);", emit_numel(e, n->in[0]), emit_buf(e, n->in[0]),
         emit_buf(e, n->in[1]), emit_float(e, attr_f(n, A_WEIGHT_DECAY)));
}

/* The name of Adam's step constants for node id, declared where first needed */
static const char *adam_constants(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int decoupled = attr_i(n, A_DECOUPLED) != 0;
    const char *step, *inv_bc2, *w1, *w2;
    adam_bias_corrections(e, n, &step, &inv_bc2);
    adam_moment_weights(e, n, &w1, &w2);
    const char *init = arena_printf(e->arena,
                                    ".step = %s,\n.inv_bc2 = %s,\n.b1 = %s, .b2 = %s, .w1 = %s, .w2 = %s, .eps = %s, "
                                    ".wd = %s,\n.decay = %s, .decoupled = %d",
                                    step, inv_bc2, emit_float(e, attr_f(n, A_BETA1)), emit_float(e, attr_f(n, A_BETA2)),
                                    w1, w2, emit_float(e, attr_f(n, A_EPS)), emit_float(e, attr_f(n, A_WEIGHT_DECAY)),
                                    decoupled ? adam_decay(e, n) : "1.0f", decoupled);
    return c_shared_const(e, id, "mlc_adam_step", "adam", init, "Adam's step constants (bias corrections at step t)");
}

void emit_adam_c(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *s = adam_constants(e, id);
    emit(e, "mlc_adam_update(%s, %s, %s, %s, %s, &%s);", emit_numel(e, n->in[0]), emit_buf(e, n->in[0]),
         emit_buf(e, n->in[2]), emit_buf(e, n->in[3]), emit_buf(e, n->in[1]), s);
}

/* The updates whose loop is the kernel library's: they share their caller's team. */
static int library_update(const Node *n) {
    return n->op == OP_sgd_update || n->op == OP_sgd_plain_update || n->op == OP_adam_update;
}

/* One team for a run of library updates (nodes with code between them: none) rather than
 * a team per parameter above OMP_MIN_WORK_N floats and one thread for the others: one
 * fork and join, and every parameter split (mlp's step: 7.6 % shorter, bench/README.md).
 * The kernels split each loop without a barrier (runtime/kernels/c/optim.c); the team's
 * end is the one barrier. */
int c_optim_team_begin(EmitCtx *e, int id) {
    const Graph *g = e->g;
    if (!emit_has_code(e, id) || !library_update(&g->nodes[id])) return -1;
    int64_t total = 0;
    int count = 0, end = id;
    for (int j = id; j < g->n; j++) {
        if (!emit_has_code(e, j)) continue;
        if (!library_update(&g->nodes[j])) break;
        total += shape_numel(&g->nodes[j].shape), count++, end = j + 1;
    }
    if (total <= OMP_MIN_WORK_N) return -1; /* one thread does them all */
    /* the step constants before the team: declared inside it, a later run could not see them */
    for (int j = id; j < end; j++)
        if (emit_has_code(e, j) && g->nodes[j].op == OP_adam_update) adam_constants(e, j);
    emit(e, "/* one OpenMP team for the %d update%s below (%lld floats): each thread updates its share of each */",
         count, count == 1 ? "" : "s", (long long)total);
    emit(e, "#pragma omp parallel");
    emit(e, "{");
    e->indent++;
    return end;
}

void c_optim_team_end(EmitCtx *e) {
    e->indent--;
    emit(e, "}");
}

/* The name of a `const type` with this initialiser (designators, a line break after each
 * "\n"), declared at node id the first time the function needs it, after `comment`: the
 * parameters of one optimizer share their step constants rather than repeat them. */
const char *c_shared_const(EmitCtx *e, int id, const char *type, const char *prefix, const char *init,
                           const char *comment) {
    for (int k = 0; k < e->nshared; k++)
        if (!strcmp(e->shared[k].init, init)) return e->shared[k].name;
    const char *name = arena_printf(e->arena, "%s%d", prefix, id);
    int pad = (int)(strlen(type) + strlen(name) + 11); /* under the first designator */
    emit(e, "/* %s */", comment);
    for (const char *line = init, *nl; line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (line == init) emit(e, "const %s %s = {%.*s%s", type, name, len, line, nl ? "" : "};");
        else emit(e, "%*s%.*s%s", pad, "", len, line, nl ? "" : "};");
    }
    if (e->nshared < (int)(sizeof e->shared / sizeof e->shared[0]))
        e->shared[e->nshared++] = (struct SharedConst){init, name};
    return name;
}
