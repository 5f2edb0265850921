/* emit_c.c - the C target: C11 with OpenBLAS for GEMMs and OpenMP for large loops.
 *
 * Each graph becomes one function (train step, forward) that runs its nodes in order:
 * elementwise ops and expands as loop nests, reductions as loops over outer x axis x
 * inner, matmuls as cblas_sgemm calls, and special ops and optimizer updates through
 * their hooks in the op rules. Every block is preceded by a comment naming the IR node
 * and the .mdl line it came from. */
#include <string.h>

#include "ops.h"
#include "target.h"

/* Loops below this many elements run on one thread: waking the team costs more. */
#define OMP_MIN_WORK "32768"

static void emit_loop_body(EmitCtx *e, const LoopNest *ln, int id, int depth) {
    const Node *n = &e->g->nodes[id];
    /* index expression of each operand */
    const char *idx[IR_MAX_IN + 1];
    for (int k = 0; k < ln->nops; k++) {
        const char *s = NULL;
        for (int d = 0; d < ln->nd; d++) {
            if (!ln->stride[k][d]) continue;
            const char *term = !strcmp(ln->stride[k][d], "1") ? arena_printf(e->arena, "i%d", d)
                                                              : arena_printf(e->arena, "i%d*%s", d, ln->stride[k][d]);
            s = s ? arena_printf(e->arena, "%s + %s", s, term) : term;
        }
        idx[k] = s ? s : "0";
    }
    (void)depth;
    const char *args[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) args[k] = ewise_operand(e, id, k, idx[k + 1]);
    const char *expr = n->op == OP_expand ? args[0] : ewise_expr(e, id, args);
    emit(e, "%s[%s] = %s;", emit_buf(e, id), idx[0], expr);
}

static void emit_ewise(EmitCtx *e, int id) {
    LoopNest ln;
    loop_nest(e, id, &ln);
    if (ln.nd == 0) {
        emit_loop_body(e, &ln, id, 0);
        return;
    }
    emit(e, "#pragma omp parallel for if ((%s) > " OMP_MIN_WORK ")", ln.total);
    for (int d = 0; d < ln.nd; d++) {
        emit(e, "for (long i%d = 0; i%d < (long)(%s); i%d++)", d, d, ln.size[d], d);
        e->indent++;
    }
    emit_loop_body(e, &ln, id, ln.nd);
    e->indent -= ln.nd;
}

static void emit_reduce(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const OpRules *r = op_of(n)->rules;
    const char *outer, *len, *inner;
    emit_axis_split(e, n->in[0], (int)n->iattr[0], &outer, &len, &inner);
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    int has_fin = strcmp(r->red_fin, "%a") != 0;
    emit(e, "#pragma omp parallel for if ((%s) * (%s) > " OMP_MIN_WORK ")", outer, len);
    emit(e, "for (long o = 0; o < (long)(%s); o++) {", outer);
    e->indent++;
    if (!strcmp(inner, "1")) {
        emit(e, "const float *xo = %s + o * (%s);", x, len);
        emit(e, "float acc = %s;", r->red_init);
        emit(e, "for (long j = 0; j < (long)(%s); j++) %s;", len, subst_named(e->arena, r->red_step, "acc", "xo[j]", len));
        emit(e, "%s[o] = %s;", y, subst_named(e->arena, r->red_fin, "acc", "", len));
    } else {
        emit(e, "const float *xo = %s + o * (%s) * (%s);", x, len, inner);
        emit(e, "float *yo = %s + o * (%s);", y, inner);
        emit(e, "for (long i = 0; i < (long)(%s); i++) yo[i] = %s;", inner, r->red_init);
        emit(e, "for (long j = 0; j < (long)(%s); j++)", len);
        emit(e, "    for (long i = 0; i < (long)(%s); i++) %s;", inner,
             subst_named(e->arena, r->red_step, "yo[i]", arena_printf(e->arena, "xo[j * (%s) + i]", inner), len));
        if (has_fin)
            emit(e, "for (long i = 0; i < (long)(%s); i++) yo[i] = %s;", inner,
                 subst_named(e->arena, r->red_fin, "yo[i]", "", len));
    }
    e->indent--;
    emit(e, "}");
}

/* Row-major C[M,N] = op(A) op(B) through mlc_sgemm (templates/c_prologue.h), which
 * splits large products across the OpenMP team and calls cblas_sgemm. */
static void emit_matmul(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int a = n->in[0], b = n->in[1];
    int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
    const char *M = emit_dim(e, id, 0), *N = emit_dim(e, id, 1), *K = emit_dim(e, a, ta ? 0 : 1);
    emit(e, "mlc_sgemm(%d, %d, (int)(%s), (int)(%s), (int)(%s), %s, %s, %s, %s, %s, %s);", ta, tb, M, N, K,
         emit_buf(e, a), emit_dim(e, a, 1), emit_buf(e, b), emit_dim(e, b, 1), emit_buf(e, id), N);
}

static const KindEmitters c_kinds = {emit_ewise, emit_reduce, emit_matmul};

/* Every node with a buffer, then (when --check-finite turned it on) a scan of what it
 * wrote: the first NaN/Inf names the op and the .mdl line, and the function returns. */
static void emit_node(EmitCtx *e, int id, const char *bail) {
    emit_node_by_kind(e, id, &c_kinds);
    const Node *n = &e->g->nodes[id];
    OpKind k = op_of(n)->kind;
    if (k == K_SOURCE || n->op == OP_reshape || !e->buf[id] || n->dtype != DT_F32) return;
    const char *f = n->loc.file ? n->loc.file->name : "?", *slash = strrchr(f, '/');
    emit(e, "if (self->check_finite && mlc_check_finite(%s, (long)(%s), \"%%%d = %s\", \"%s:%d:%d\")) %s;", e->buf[id],
         emit_numel(e, id), id, op_of(n)->name, slash ? slash + 1 : f, n->loc.line, n->loc.col, bail);
}

static void emit_graph_function(const ModelIR *m, FILE *out, const Graph *g, const MemPlan *plan, int train) {
    Arena *a = m->arena;
    const char *name = m->spec.name;
    EmitCtx e = {.arena = a, .g = g, .target = TARGET_C, .body = out, .decls = out, .indent = 1};
    if (train) {
        fprintf(out, "/* One training step: forward, loss, backward, %s update. */\n", m->spec.opt.kind);
        fprintf(out, "static float api_train_step(void *model, const float *x, const int32_t *y, int n, float lr, "
                     "float *out) {\n");
    } else {
        fprintf(out, "/* Inference in evaluation mode. */\n");
        fprintf(out, "static void api_forward(void *model, const float *x, int n, float *out) {\n");
    }
    fprintf(out, "    %s_model *self = model;\n    const long B = n;\n    const size_t mb = (size_t)self->max_batch;\n", name);
    fprintf(out, "    float *const P = self->slab;\n    float *const A = self->arena;\n");
    fprintf(out, "    (void)mb, (void)P, (void)A, (void)B;\n");
    if (train) fprintf(out, "    const int64_t t = ++self->step;\n    (void)t, (void)lr, (void)y;\n");
    e.buf = emit_name_buffers(&e, m, plan);
    if (plan->ws_size_c || plan->ws_size_b) {
        fprintf(out, "    float *const ws = A + %lld + %lld * mb; /* scratch: %lld + %lld * B floats */\n",
                (long long)plan->ws_off_c, (long long)plan->ws_off_b, (long long)plan->ws_size_c,
                (long long)plan->ws_size_b);
        e.ws = "ws";
    }
    fputc('\n', out);
    for (int id = 0; id < g->n; id++) emit_node(&e, id, train ? "return NAN" : "return");
    int o = g->output;
    if (train) {
        if (o >= 0) fprintf(out, "    if (out) memcpy(out, %s, sizeof(float) * (size_t)(%s));\n", e.buf[o], emit_numel(&e, o));
        else fprintf(out, "    (void)out;\n");
        fprintf(out, "    return %s[0];\n}\n\n", e.buf[g->loss]);
    } else {
        fprintf(out, "    memcpy(out, %s, sizeof(float) * (size_t)(%s));\n}\n\n", e.buf[o], emit_numel(&e, o));
    }
}

static void emit_source_c(const ModelIR *m, FILE *out, const char *hdr_name) {
    const char *n = m->spec.name;
    fprintf(out, "/* %s.c - generated by mlc from %s; do not edit.\n", n, m->source);
    fprintf(out, " * Target: C11 + OpenBLAS + OpenMP. Parameters and optimizer state live in one slab,\n");
    fprintf(out, " * everything else in one arena at offsets fixed at compile time (c + b * max_batch). */\n");
    fputs(tmpl_c_prologue_h, out);
    fprintf(out, "#include \"%s\"\n\n", hdr_name);
    fprintf(out, "struct %s_model {\n    int max_batch;\n    int64_t step; /* optimizer steps taken */\n", n);
    fprintf(out, "    uint64_t seed; /* of initialisation and dropout */\n");
    fprintf(out, "    int check_finite; /* --check-finite */\n");
    fprintf(out, "    float *slab;  /* %lld floats: parameters, optimizer state */\n", (long long)m->slab_floats);
    fprintf(out, "    float *arena; /* activations, gradients, temporaries */\n};\n\n");
    emit_tensor_table(m, out);

    fprintf(out, "static void *api_create(uint64_t seed, int max_batch) {\n");
    fprintf(out, "    if (max_batch < 1) return NULL;\n");
    fprintf(out, "    openblas_set_num_threads(1); /* threads come from OpenMP: see mlc_sgemm */\n");
    fprintf(out, "    %s_model *self = calloc(1, sizeof *self);\n    if (!self) return NULL;\n", n);
    fprintf(out, "    const size_t mb = (size_t)max_batch;\n");
    fprintf(out, "    const size_t train_floats = %lld + %lld * mb, eval_floats = %lld + %lld * mb;\n",
            (long long)m->train_plan.size_c, (long long)m->train_plan.size_b, (long long)m->eval_plan.size_c,
            (long long)m->eval_plan.size_b);
    fprintf(out, "    self->max_batch = max_batch;\n    self->seed = seed;\n");
    fprintf(out, "    self->slab = mlcrt_alloc_floats(%lld);\n", (long long)m->slab_floats);
    fprintf(out, "    self->arena = mlcrt_alloc_floats(train_floats > eval_floats ? train_floats : eval_floats);\n");
    fprintf(out, "    if (!self->slab || !self->arena) {\n        free(self->slab);\n        free(self->arena);\n");
    fprintf(out, "        free(self);\n        return NULL;\n    }\n");
    emit_param_init(m, out, "    ", "self->slab + %lld");
    fprintf(out, "    return self;\n}\n\n");
    fprintf(out, "static void api_destroy(void *model) {\n    %s_model *self = model;\n    if (!self) return;\n", n);
    fprintf(out, "    free(self->slab);\n    free(self->arena);\n    free(self);\n}\n\n");

    emit_graph_function(m, out, m->train, &m->train_plan, 1);
    emit_graph_function(m, out, m->eval, &m->eval_plan, 0);

    fprintf(out, "static void api_read_tensor(void *model, int i, void *dst) {\n");
    fprintf(out, "    %s_model *self = model;\n", n);
    fprintf(out, "    memcpy(dst, self->slab + %s_offsets[i], sizeof(float) * (size_t)%s_tensors[i].numel);\n}\n\n", n, n);
    fprintf(out, "static void api_write_tensor(void *model, int i, const void *src) {\n");
    fprintf(out, "    %s_model *self = model;\n", n);
    fprintf(out, "    memcpy(self->slab + %s_offsets[i], src, sizeof(float) * (size_t)%s_tensors[i].numel);\n}\n\n", n, n);
    fprintf(out, "static int64_t api_get_step(void *model) { return ((%s_model *)model)->step; }\n", n);
    fprintf(out, "static void api_set_step(void *model, int64_t step) { ((%s_model *)model)->step = step; }\n", n);
    fprintf(out, "static void api_set_threads(int n) { mlc_c_set_threads(n); }\n");
    fprintf(out, "static void api_set_check_finite(void *model, int on) { ((%s_model *)model)->check_finite = on; }\n\n", n);

    fprintf(out, "%s_model *%s_create(uint64_t seed, int max_batch) { return api_create(seed, max_batch); }\n", n, n);
    fprintf(out, "void %s_destroy(%s_model *m) { api_destroy(m); }\n", n, n);
    fprintf(out, "float %s_train_step(%s_model *m, const float *x, const int32_t *y, int n, float lr, float *out) {\n", n, n);
    fprintf(out, "    return api_train_step(m, x, y, n, lr, out);\n}\n");
    fprintf(out, "void %s_forward(%s_model *m, const float *x, int n, float *out) { api_forward(m, x, n, out); }\n\n", n, n);
    emit_api_struct(m, out, "c");
}

const Target target_c = {.name = "c", .src_ext = ".c", .emit_source = emit_source_c};

const Target *target_by_name(const char *name) {
    if (!strcmp(name, "c")) return &target_c;
    if (!strcmp(name, "cuda")) return &target_cuda;
    return NULL;
}
