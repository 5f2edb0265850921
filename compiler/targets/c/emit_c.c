/* emit_c.c - the C target: C11 with OpenBLAS for GEMMs and OpenMP for large loops.
 *
 * The train graph becomes two functions, forward_backward and update (grad_slab.c says
 * which nodes each runs; train_step calls both), the eval-loss graph one, evaluate. The
 * two train functions have --check-finite copies, so the fast ones check nothing:
 * forward_backward_checked runs each fused group's checked variant and scans every other
 * op's output that could hold a new NaN/Inf; update_checked runs update, then scans the
 * parameters it wrote. The runtime's entry points (api_forward_backward, api_update) call
 * one or the other. Each function runs its nodes in order:
 * elementwise ops and expands as loop nests, reductions as loops over outer x axis x
 * inner, matmuls as cblas_sgemm calls, and special ops and optimizer updates through
 * the emitter table (emitters.c). A GEMM's or conv2d's epilogue (fuse.c) runs inside the
 * op's parallel region, on each thread's block or sample right after it is computed.
 * Every block is preceded by a comment naming the IR node and the .mdl line it came from. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c_emitters.h"
#include "ops.h"
#include "target.h"

/* Opens the loops from..to-1 of a fused group; with `block` the innermost body is a
 * { block } (also when there is no loop). */
static void loops_open(EmitCtx *e, const FusedLoop *fl, int from, int to, int block) {
    for (int L = from; L < to; L++) {
        const char *v = fl->var[L];
        emit(e, "for (long %s = 0; %s < (long)(%s); %s++)%s", v, v, fl->size[L], v, block && L == to - 1 ? " {" : "");
        e->indent++;
    }
    if (block && from == to) emit(e, "{"), e->indent++;
}

static void loops_close(EmitCtx *e, int n, int block) {
    if (!block) {
        e->indent -= n;
        return;
    }
    e->indent--;
    emit(e, "}");
    e->indent -= n > 0 ? n - 1 : 0;
}

/* In a checked function (e->bail set): the scan of node id's output, which names the op
 * and its .mdl position at the first NaN/Inf and runs e->bail. An op that keeps finite
 * values finite is not scanned: its inputs were. */
static void emit_check_output(EmitCtx *e, int id) {
    const Node *r = &e->g->nodes[id];
    if (op_of(r)->rules->flags & OPF_KEEPS_FINITE) return;
    emit(e, "if (mlc_check_finite(%s, (long)(%s), \"%%%d = %s%s%s\", \"%s:%d:%d\")) %s;", emit_buf(e, id),
         emit_numel(e, id), id, op_of(r)->name, r->op == OP_input ? " " : "",
         r->op == OP_input ? c_str(e->arena, r->name) : "", c_str(e->arena, emit_mdl_name(r)), r->loc.line, r->loc.col,
         e->bail);
}

/* An elementwise group: one loop nest; the members as locals, the kept ones and the root
 * stored. `check` (--check-finite) writes the sequential variant that checks every value
 * as it is made: a NaN can vanish inside a group (relu(NaN) = 0) before reaching memory. */
static void emit_ewise_loops(EmitCtx *e, const FusedLoop *fl, int check) {
    int block = fused_statements(fl, e->g) > 0 || check;
    if (fl->nd && !check) emit(e, "#pragma omp parallel for if ((%s) > " OMP_MIN_WORK ")", fl->total);
    loops_open(e, fl, 0, fl->nd, block);
    const char *v = fused_body(e, fl, check ? e->bail : NULL);
    emit(e, "%s[%s] = %s;", emit_buf(e, fl->root), fused_out_index(e, fl), v);
    loops_close(e, fl->nd, block);
}

/* A two-pass reduction (logsumexp; fuse.c gives it no members): per output element, the
 * first pass over the axis, then the second, into locals. */
static void emit_two_pass_loops(EmitCtx *e, const FusedLoop *fl) {
    const OpRules *r = op_of(&e->g->nodes[fl->root])->rules;
    const char *y = emit_buf(e, fl->root), *out = fused_out_index(e, fl), *len = fl->size[fl->axis];
    const char *ax = fl->var[fl->axis];
    int outer = 0;
    for (int L = 0; L < fl->nd; L++) {
        if (L == fl->axis) continue;
        if (!outer++) emit(e, "#pragma omp parallel for if ((%s) > " OMP_MIN_WORK ")", fl->total);
        emit(e, "for (long %s = 0; %s < (long)(%s); %s++)", fl->var[L], fl->var[L], fl->size[L], fl->var[L]);
        e->indent++;
    }
    emit(e, "{");
    e->indent++;
    emit(e, "float pre = %s;", r->red_pre_init);
    emit(e, "for (long %s = 0; %s < (long)(%s); %s++)", ax, ax, len, ax);
    emit(e, "    %s;", subst_named(e, r->red_pre_step, "pre", fused_body(e, fl, NULL), len, NULL));
    emit(e, "float acc = %s;", r->red_init);
    emit(e, "for (long %s = 0; %s < (long)(%s); %s++)", ax, ax, len, ax);
    emit(e, "    %s;", subst_named(e, r->red_step, "acc", fused_body(e, fl, NULL), len, "pre"));
    emit(e, "%s[%s] = %s;", y, out, subst_named(e, r->red_fin, "acc", "", len, "pre"));
    e->indent--;
    emit(e, "}");
    e->indent -= outer;
}

/* A reduction and the elementwise group feeding it: outer loops (parallel), the axis in
 * order (so the sum's rounding does not depend on the thread count), inner loops. */
static void emit_reduce_loops(EmitCtx *e, const FusedLoop *fl, int check) {
    const Node *n = &e->g->nodes[fl->root];
    const OpRules *r = op_of(n)->rules;
    if (r->red_pre_step) {
        emit_two_pass_loops(e, fl);
        return;
    }
    const char *y = emit_buf(e, fl->root), *out = fused_out_index(e, fl), *len = fl->size[fl->axis];
    const char *bail = check ? e->bail : NULL;
    int block = fused_statements(fl, e->g) > 0 || check;
    int outer = fl->axis, inner = fl->nd - fl->axis - 1;
    if (outer && !check) emit(e, "#pragma omp parallel for if ((%s) > " OMP_MIN_WORK ")", fl->total);
    loops_open(e, fl, 0, outer, 1);
    const char *ax = fl->var[fl->axis];
    if (!inner) {
        emit(e, "float acc = %s;", r->red_init);
        loops_open(e, fl, fl->axis, fl->axis + 1, block);
        const char *v = fused_body(e, fl, bail);
        emit(e, "%s;", subst_named(e, r->red_step, "acc", v, len, NULL));
        loops_close(e, 1, block);
        emit(e, "%s[%s] = %s;", y, out, subst_named(e, r->red_fin, "acc", "", len, NULL));
    } else {
        const char *yo = arena_printf(e->arena, "%s[%s]", y, out);
        loops_open(e, fl, fl->axis + 1, fl->nd, 0);
        emit(e, "%s = %s;", yo, r->red_init);
        loops_close(e, inner, 0);
        emit(e, "for (long %s = 0; %s < (long)(%s); %s++)", ax, ax, len, ax);
        e->indent++;
        loops_open(e, fl, fl->axis + 1, fl->nd, block);
        const char *v = fused_body(e, fl, bail);
        emit(e, "%s;", subst_named(e, r->red_step, yo, v, len, NULL));
        loops_close(e, inner, block);
        e->indent--;
        if (strcmp(r->red_fin, "%a")) {
            loops_open(e, fl, fl->axis + 1, fl->nd, 0);
            emit(e, "%s = %s;", yo, subst_named(e, r->red_fin, yo, "", len, NULL));
            loops_close(e, inner, 0);
        }
    }
    loops_close(e, outer, 1);
}

/* A group's code. In a checked function a group of one is checked after it runs, and a
 * larger one runs its checked variant (a reduction's result is checked after it). */
static void emit_group(EmitCtx *e, int root) {
    FusedLoop fl;
    fused_loop(e, e->fp, root, 1, &fl);
    fused_comment(e, &fl);
    int reduce = op_of(&e->g->nodes[root])->kind == K_REDUCE;
    int variant = e->bail && fused_statements(&fl, e->g) > 0;
    (reduce ? emit_reduce_loops : emit_ewise_loops)(e, &fl, variant);
    if (e->bail && (!variant || reduce)) emit_check_output(e, root);
}

/* A matmul with batch axes [S..., M, N] (emit_common.c's batched_gemm says how it is
 * called): one mlc_sgemm_batched call (runtime/kernels/c/gemm.c), or one mlc_sgemm when the
 * entries fold into the rows of a single product. No epilogue (fuse.c: 2-D outputs only). */
static void emit_batched_matmul(EmitCtx *e, int id) {
    BatchedGemm q = batched_gemm(e, id);
    const Node *n = &e->g->nodes[id];
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    if (q.fold)
        emit(e, "mlc_sgemm(0, %d, (int)(%s), (int)(%s), (int)(%s), %s, %s, %s, %s, %s, %s);", tb, q.M, q.N, q.K, q.A,
             q.lda, q.B, q.ldb, q.C, q.N);
    else
        emit(e, "mlc_sgemm_batched(%d, %d, (int)(%s), (int)(%s), (int)(%s), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);",
             ta, tb, q.M, q.N, q.K, q.A, q.lda, q.sa, q.B, q.ldb, q.sb, q.C, q.N, q.sc, q.count);
    if (e->bail) emit_check_output(e, id);
}

/* Row-major C[M,N] = op(A) op(B) through mlc_sgemm (runtime/kernels/c/gemm.c), which
 * splits large products across the OpenMP team and calls cblas_sgemm. With an epilogue
 * (fuse.c) each thread runs the group on the block its GEMM call just wrote; a checked
 * function runs the plain GEMM, checks it, then the group's checked variant. */
static void emit_matmul(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    if (n->shape.rank > 2) {
        emit_batched_matmul(e, id);
        return;
    }
    int a = n->in[0], b = n->in[1];
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    const char *M = emit_dim(e, id, 0), *N = emit_dim(e, id, 1), *K = emit_dim(e, a, ta ? 0 : 1);
    const char *args =
        arena_printf(e->arena, "%d, %d, (int)(%s), (int)(%s), (int)(%s), %s, %s, %s, %s, %s, %s", ta, tb, M, N, K,
                     emit_buf(e, a), emit_dim(e, a, 1), emit_buf(e, b), emit_dim(e, b, 1), emit_buf(e, id), N);
    int ep = e->fp->epilogue[id];
    if (ep < 0) {
        emit(e, "mlc_sgemm(%s);", args);
        if (e->bail) emit_check_output(e, id);
        return;
    }
    FusedLoop fl;
    fused_loop(e, e->fp, ep, 0, &fl);
    emit(e, "/* epilogue: */");
    fused_comment(e, &fl);
    if (e->bail) {
        emit(e, "mlc_sgemm(%s);", args);
        emit_check_output(e, id);
        emit_ewise_loops(e, &fl, 1);
        return;
    }
    emit(e, "#pragma omp parallel if (mlc_sgemm_parallel((int)(%s), (int)(%s), (int)(%s)))", M, N, K);
    emit(e, "{");
    e->indent++;
    emit(e, "long r0, r1, c0, c1; /* this thread's block of the output */");
    emit(e, "mlc_sgemm_block(%s, &r0, &r1, &c0, &c1);", args);
    emit(e, "for (long %s = r0; %s < r1; %s++)", fl.var[0], fl.var[0], fl.var[0]);
    emit(e, "    for (long %s = c0; %s < c1; %s++) {", fl.var[1], fl.var[1], fl.var[1]);
    e->indent += 2;
    const char *v = fused_body(e, &fl, NULL);
    emit(e, "%s[%s] = %s;", emit_buf(e, ep), fused_out_index(e, &fl), v);
    e->indent--;
    emit(e, "}");
    e->indent -= 2;
    emit(e, "}");
}

/* A conv2d's epilogue (c_emitters.h): its emitter (conv.c) gives the calls, this writes
 * the loop over the samples with the group's loops inside, restricted to the sample. */
void c_sample_epilogue(EmitCtx *e, int id, const char *prepare, const char *team, const char *sample, const char *whole,
                       const char *step) {
    FusedLoop fl;
    fused_loop(e, e->fp, e->fp->epilogue[id], FUSED_PER_SAMPLE, &fl);
    const char *n = fl.var[0]; /* loop 0: the batch dimension */
    int block = fused_statements(&fl, e->g) > 0;
    emit(e, "/* epilogue, on each sample's output: */");
    fused_comment(e, &fl);
    if (e->bail) {
        emit(e, "%s;", whole);
        emit_check_output(e, id);
        emit_ewise_loops(e, &fl, 1);
        return;
    }
    emit(e, "%s;", prepare);
    if (step) { /* pieces of `step` samples: each computed, then its samples finished */
        emit(e, "const long step = %s, pieces = (B + step - 1) / step;", step);
        emit(e, "#pragma omp parallel for schedule(dynamic, 1) num_threads(%s)", team);
        emit(e, "for (long piece = 0; piece < pieces; piece++) {");
        e->indent++;
        const char *first = "piece * step";
        emit(e, "%s;", subst(e->arena, sample, &first, 1));
        emit(e, "for (long %s = piece * step; %s < B && %s < (piece + 1) * step; %s++) {", n, n, n, n);
        e->indent++;
    } else {
        emit(e, "#pragma omp parallel for schedule(dynamic, 1) num_threads(%s)", team);
        emit(e, "for (long %s = 0; %s < B; %s++) {", n, n, n);
        e->indent++;
        emit(e, "%s;", subst(e->arena, sample, &n, 1));
    }
    loops_open(e, &fl, 1, fl.nd, block);
    const char *v = fused_body(e, &fl, NULL);
    emit(e, "%s[%s] = %s;", emit_buf(e, fl.root), fused_out_index(e, &fl), v);
    loops_close(e, fl.nd - 1, block);
    if (step) {
        e->indent--;
        emit(e, "}");
    }
    e->indent--;
    emit(e, "}");
}

static const KindEmitters c_kinds = {emit_group, emit_group, emit_matmul};

/* Every node with a buffer, then (in a checked function) a scan of what it wrote: the
 * first NaN/Inf names the op and the .mdl line, and the function returns. The f32 inputs
 * are scanned too: a NaN in the data is named as such, not by the first op it reaches. */
static void emit_node(EmitCtx *e, int id) {
    emit_node_by_kind(e, id, &c_kinds);
    const Node *n = &e->g->nodes[id];
    OpKind k = op_of(n)->kind;
    if (!e->bail || !emit_runs(e, id) || (k == K_SOURCE && n->op != OP_input) || n->op == OP_reshape || !e->buf[id] ||
        n->dtype != DT_F32)
        return;
    if (k == K_EWISE || k == K_REDUCE || k == K_CONTRACT || n->op == OP_expand) return; /* they check themselves */
    if (e->fp->epilogue[id] >= 0) return; /* with its epilogue: c_sample_epilogue checks it */
    emit_check_output(e, id);
}

/* The eval graph's nodes with code that only the loss needs: forward (with_loss = 0)
 * skips them. Fusion keeps the loss's phase apart (loss_phase, model.h), so a group's
 * root is loss-only exactly when its phase is; a graph without outputs is all loss. */
static const char *loss_only_code(const ModelIR *m, const Graph *g) {
    const char *phase = loss_phase(m->arena, g);
    if (phase) return phase;
    char *all = ARENA_ARRAY(m->arena, char, g->n + 1);
    memset(all, 1, (size_t)g->n + 1);
    return all;
}

/* mlc --debug: after a node's code, a directive back to the generated file's own lines;
 * emit_source_c replaces it with `#line N "net.c"` once the line numbers are known. */
#define C_LINE_BACK "#line MLC_BACK_TO_C"

/* The .mdl a node came from, as an absolute path where it exists, for #line: gdb then
 * finds the source from any directory. Escaped for the directive's string literal (the
 * compiler reads the escapes back, so gdb sees the path as it is). */
static const char *debug_path(const ModelIR *m, const Node *n) {
    if (!n->loc.file) return NULL;
    const char *name = n->loc.file->name;
    char cwd[PATH_MAX];
    if (name[0] == '/' || !getcwd(cwd, sizeof cwd)) return c_str(m->arena, name);
    return c_str(m->arena, arena_printf(m->arena, "%s/%s", cwd, name[0] == '.' && name[1] == '/' ? name + 2 : name));
}

/* Copies the generated text to out, each C_LINE_BACK made `#line N "c_name"` (N: the
 * number of the line after it) or dropped where another #line follows at once. */
static void copy_resolving_lines(const char *text, FILE *out, const char *c_name) {
    long line = 1;
    for (const char *p = text; *p; line++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int back = len == strlen(C_LINE_BACK) && !strncmp(p, C_LINE_BACK, len);
        if (!back) fprintf(out, "%.*s\n", (int)len, p);
        else if (nl && strncmp(nl + 1, "#line ", 6)) fprintf(out, "#line %ld \"%s\"\n", line + 1, c_name);
        else line--; /* the next node's #line follows: nothing to go back to */
        if (!nl) break;
        p = nl + 1;
    }
}

/* The C function graph function fn becomes: graph_fn_signature's without the api_
 * prefix (forward_backward, update; FN_EVAL_LOSS: evaluate, which api_forward and
 * api_eval_loss call), and "_checked" after the name of the --check-finite copy. */
static const char *c_fn_signature(Arena *a, GraphFn fn, int checked) {
    const char *sig =
        fn == FN_EVAL_LOSS
            ? "float api_evaluate(void *model, const void *const *inputs, int n, float *const *outputs, int with_loss)"
            : graph_fn_signature(fn);
    const char *name = strstr(sig, "api_") + 4, *paren = strchr(name, '(');
    return arena_printf(a, "%.*s%.*s%s%s", (int)(name - 4 - sig), sig, (int)(paren - name), name,
                        checked ? "_checked" : "", paren);
}

/* The slab offset of the parameter an optimizer update (node id) writes in place. */
static int64_t updated_param_offset(const ModelIR *m, const Graph *g, int id) {
    const Node *n = &g->nodes[id];
    while (n->op != OP_param && n->op != OP_state && n->nin > 0) n = &g->nodes[n->in[0]]; /* through reshapes */
    int p = n->nin == 0 ? model_find_persistent(m, n->name) : -1;
    if (p < 0) mlc_die("update %%%d writes no parameter", id);
    return m->pers[p].offset;
}

/* --check-finite's update: the fast one, then each parameter it wrote scanned in the order
 * it wrote them. An update writes only its own parameter and state, so the first update
 * found this way is the first that made a NaN/Inf. */
static void emit_update_checked(const ModelIR *m, FILE *out, EmitCtx *e) {
    fprintf(out,
            "/* --check-finite's update: update, then each parameter it wrote, scanned in that order; the first\n"
            " * NaN/Inf is named with its op and .mdl position. */\n");
    fprintf(out, "static %s {\n", c_fn_signature(m->arena, FN_UPDATE, 1));
    /* (void)self: a model without parameters updates none */
    fprintf(out, "    %s_model *self = model;\n    (void)self;\n    update(model, lr);\n", m->spec.name);
    for (int id = 0; id < e->g->n; id++) {
        const Node *n = &e->g->nodes[id];
        if (!emit_runs(e, id) || op_of(n)->kind != K_UPDATE) continue;
        fprintf(out, "    if (mlc_check_finite(self->slab + %lld, %lld, \"%%%d = %s\", \"%s:%d:%d\")) %s\n",
                (long long)updated_param_offset(m, e->g, id), (long long)shape_numel(&n->shape), id, op_of(n)->name,
                c_str(m->arena, emit_mdl_name(n)), n->loc.line, n->loc.col, "{ self->nonfinite = 1; return; }");
    }
    fprintf(out, "}\n\n");
}

/* Graph function fn, fast (checked 0: no check at all) or its --check-finite copy. */
static void emit_graph_function(const ModelIR *m, FILE *out, GraphFn fn, int checked) {
    Arena *a = m->arena;
    const char *name = m->spec.name;
    GraphFnParts gp = graph_fn_parts(m, fn);
    const Graph *g = gp.g;
    const MemPlan *plan = gp.plan;
    int train = fn == FN_FORWARD_BACKWARD || fn == FN_UPDATE;
    const char *bail = checked ? "return NAN" : NULL;
    EmitCtx e = {.arena = a,
                 .g = g,
                 .target = &target_c,
                 .body = out,
                 .decls = out,
                 .indent = 1,
                 .fp = gp.fp,
                 .bail = bail,
                 .phase_of = train ? m->update_phase : NULL,
                 .phase = fn == FN_UPDATE,
                 .copies_outputs = fn != FN_UPDATE,
                 .no_comments = checked};
    if (checked && fn == FN_UPDATE) {
        emit_update_checked(m, out, &e);
        return;
    }
    const char *what =
        fn == FN_EVAL_LOSS ? "Evaluation mode: the outputs; with_loss (labels given): the mean loss too." : gp.comment;
    const char *sig = c_fn_signature(a, fn, 0), *name_of = strchr(sig, ' ') + 1;
    if (checked)
        fprintf(
            out,
            "/* --check-finite's copy of %.*s (whose comments say what each node is): every value checked as it is\n"
            " * made; the first NaN/Inf is named with its op and .mdl position, and the function returns. */\n",
            (int)strcspn(name_of, "("), name_of);
    else fprintf(out, "/* %s */\n", what);
    fprintf(out, "static %s {\n", c_fn_signature(a, fn, checked));
    fprintf(out, "    %s_model *self = model;\n", name);
    if (fn != FN_UPDATE) fprintf(out, "    const long B = n;\n");
    fprintf(out, "    const size_t mb = (size_t)self->max_batch;\n");
    fprintf(out, "    float *const P = self->slab;\n    float *const A = self->arena;\n");
    if (train) fprintf(out, "    float *const G = self->grads;\n");
    fprintf(out, "    (void)mb, (void)P, (void)A%s%s;\n", train ? ", (void)G" : "",
            fn != FN_UPDATE ? ", (void)B, (void)inputs" : "");
    if (fn == FN_FORWARD_BACKWARD) emit_dropout_counter(out);
    if (fn == FN_UPDATE)
        fprintf(out, "    const int64_t t = ++self->step;\n    self->micro = 0;\n    (void)t, (void)lr;\n");
    e.buf = emit_name_buffers(&e, m, plan);
    if (fn != FN_UPDATE && (plan->ws_size_c || plan->ws_size_b || plan->ws_per_thread)) {
        fprintf(out,
                "    float *const ws = A + %lld + %lld * mb; /* scratch: %lld + %lld * B + %lld * slots floats */\n",
                (long long)plan->ws_off_c, (long long)plan->ws_off_b, (long long)plan->ws_size_c,
                (long long)plan->ws_size_b, (long long)plan->ws_per_thread);
        e.ws = "ws";
    }
    fputc('\n', out);
    /* the checked copy says its gradients are ready once, at its end: it finds NaNs, it
     * does not race the all-reduce */
    const int64_t *ready = fn == FN_FORWARD_BACKWARD && !checked ? grad_ready_after(m, gp.fp) : NULL;
    const char *loss_only = fn == FN_EVAL_LOSS ? loss_only_code(m, g) : NULL;
    int in_loss = 0;                                             /* inside the `if (with_loss)` block */
    int section = fn == FN_FORWARD_BACKWARD && !checked ? 0 : 2; /* the checked copy has no comments */
    int team_end = -1; /* the end of the run of optimizer updates in one team (c/optim.c) */
    for (int id = 0; id < g->n; id++) {
        emit_section_marker(&e, id, &section);
        if (fn == FN_UPDATE && team_end < 0) team_end = c_optim_team_begin(&e, id);
        if (loss_only && gp.fp->at[id] == id && loss_only[id] != in_loss) {
            e.indent -= in_loss;
            emit(&e, in_loss ? "}" : "if (with_loss) {");
            e.indent += !in_loss;
            in_loss = !in_loss;
        }
        if (m->debug) e.line = g->nodes[id].loc.line, e.line_file = debug_path(m, &g->nodes[id]), e.mdl_lines = 0;
        emit_node(&e, id);
        if (m->debug && e.mdl_lines) fprintf(out, "%s\n", C_LINE_BACK);
        e.line = 0;
        emit_grad_ready_call(&e, m, ready, id);
        if (id + 1 == team_end) c_optim_team_end(&e), team_end = -1;
    }
    if (in_loss) e.indent--, emit(&e, "}");
    if (fn == FN_FORWARD_BACKWARD) {
        emit_grad_copies(m, out, "memcpy(G + %lld, G + %lld, sizeof(float) * %lld);");
        fprintf(out, "    if (self->grad_ready) self->grad_ready(self->grad_ctx, %lld);\n", (long long)m->grad_floats);
    }
    if (fn != FN_UPDATE) {
        if (g->nout) emit_copy_outputs(&e, "memcpy(%0, %1, %2)");
        else emit(&e, "(void)outputs;");
    }
    if (fn == FN_EVAL_LOSS) fprintf(out, "    return with_loss ? %s[0] : NAN;\n", e.buf[g->loss]);
    else if (fn != FN_UPDATE && g->loss >= 0) fprintf(out, "    return %s[0];\n", e.buf[g->loss]);
    fprintf(out, "}\n\n");
}

static void emit_source_c_text(const ModelIR *m, FILE *out, const char *hdr_name);

/* The train step's two calls as the runtime makes them: the fast functions, or with
 * --check-finite on (set_check_finite) their checked copies. */
static void emit_entry_points(const ModelIR *m, FILE *out) {
    const char *n = m->spec.name;
    fprintf(out, "/* The runtime's calls: the checked copies while --check-finite is on. */\n");
    fprintf(out, "static %s {\n", graph_fn_signature(FN_FORWARD_BACKWARD));
    fprintf(
        out,
        "    const int blas = mlc_blas_enter(); /* the GEMMs on one OpenBLAS thread, whatever the program set */\n");
    fprintf(
        out,
        "    const float loss = (((%s_model *)model)->check_finite ? forward_backward_checked : forward_backward)(model, inputs, n, outputs);\n",
        n);
    fprintf(out, "    mlc_blas_leave(blas);\n    return loss;\n}\n");
    fprintf(out, "static %s {\n", graph_fn_signature(FN_UPDATE));
    fprintf(out, "    (((%s_model *)model)->check_finite ? update_checked : update)(model, lr);\n}\n\n", n);
}

/* With --debug the text goes through a buffer first: the #line directives back to the
 * C file need the line numbers of the finished file. */
static void emit_source_c(const ModelIR *m, FILE *out, const char *hdr_name) {
    if (!m->debug) {
        emit_source_c_text(m, out, hdr_name);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *buf = open_memstream(&text, &len);
    if (!buf) mlc_out_of_memory(0);
    emit_source_c_text(m, buf, hdr_name);
    if (fclose(buf)) mlc_out_of_memory(0);
    /* net.h -> net.c: the file this text becomes (write_model_sources names them so) */
    size_t stem = strlen(hdr_name) > 2 ? strlen(hdr_name) - 2 : strlen(hdr_name);
    copy_resolving_lines(text, out, c_str(m->arena, arena_printf(m->arena, "%.*s.c", (int)stem, hdr_name)));
    free(text);
}

static void emit_source_c_text(const ModelIR *m, FILE *out, const char *hdr_name) {
    const char *n = m->spec.name;
    fprintf(out, "/* %s.c - generated by mlc from %s; do not edit.\n", n, c_comment(m->arena, m->source));
    fprintf(out, " * Target: C11 + OpenBLAS + OpenMP. Parameters and optimizer state live in one slab,\n");
    fprintf(out, " * everything else in one arena at offsets fixed at compile time (c + b * max_batch).%s\n",
            m->bf16 ? "" : " */");
    if (m->bf16)
        fprintf(out,
                " * --precision bf16: the products' inputs and outputs rounded to bfloat16 (mlc_round_bf16). */\n");
    fprintf(out, "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    fprintf(out, "#include \"kernels/mlc_kernels.h\" /* libmlckernels */\n#include \"mlcrt.h\"\n");
    fprintf(out, "#include \"%s\"\n\n", hdr_name);
    fprintf(out, "struct %s_model {\n    int max_batch;\n    int64_t step; /* optimizer steps taken */\n", n);
    fprintf(out, "    uint64_t seed; /* of initialisation and dropout */\n");
    fprintf(out, "    int check_finite; /* --check-finite */\n");
    fprintf(out, "    int slots; /* per-thread scratch slots in the arena's workspace */\n");
    fprintf(out, "    float *slab;  /* %lld floats: parameters, optimizer state */\n", (long long)m->slab_floats);
    fprintf(out, "    float *grads; /* %lld floats: the gradient slab (forward_backward -> update) */\n",
            (long long)m->grad_floats);
    fprintf(out, "    float *arena; /* activations, backward values, temporaries */\n");
    fprintf(out, "    int micro; /* forward_backward calls since the last update (dropout's counter) */\n");
    fprintf(out, "    int64_t sample0; /* set_sample_offset: the first sample's place in the step's batch */\n");
    fprintf(out, "    int nonfinite; /* --check-finite found a NaN/Inf in the update */\n");
    fprintf(out, "    mlcrt_norm norm; /* norm_of: the input normalisation its weights go with */\n");
    fprintf(out, "    void (*grad_ready)(void *ctx, int64_t done); /* set_grad_ready */\n    void *grad_ctx;\n");
    emit_batch_sync_fields(out);
    fprintf(out, "};\n\n");
    emit_tensor_table(m, out);

    fprintf(out, "static void *api_create(uint64_t seed, int max_batch) {\n");
    fprintf(out, "    if (max_batch < 1) return NULL;\n");
    fprintf(out, "    mlc_kernels_init();\n");
    fprintf(out, "    %s_model *self = calloc(1, sizeof *self);\n    if (!self) return NULL;\n", n);
    fprintf(out, "    const size_t mb = (size_t)max_batch;\n");
    fprintf(out, "    self->slots = mlc_scratch_slots();\n    const size_t slots = (size_t)self->slots;\n");
    fprintf(out, "    size_t arena_floats = 0; /* the largest of the graphs' arenas */\n");
    for (int f = 0; f < GRAPH_FN_COUNT; f++) {
        if (f == FN_FORWARD || f == FN_UPDATE) continue; /* api_evaluate runs forward; update shares the train plan */
        const MemPlan *p = graph_fn_parts(m, (GraphFn)f).plan;
        fprintf(
            out,
            "    if (%lld + %lld * mb + %lld * slots > arena_floats) arena_floats = %lld + %lld * mb + %lld * slots;\n",
            (long long)p->size_c, (long long)p->size_b, (long long)p->ws_per_thread, (long long)p->size_c,
            (long long)p->size_b, (long long)p->ws_per_thread);
    }
    fprintf(out, "    self->max_batch = max_batch;\n    self->seed = seed;\n");
    emit_norm_init(m, out);
    fprintf(out, "    self->slab = mlcrt_alloc_floats(%lld);\n", (long long)m->slab_floats);
    fprintf(out, "    self->arena = mlcrt_alloc_floats((int64_t)arena_floats);\n");
    fprintf(out, "    self->grads = mlcrt_alloc_floats(%lld);\n", (long long)(m->grad_floats ? m->grad_floats : 1));
    fprintf(
        out,
        "    if (!self->slab || !self->arena || !self->grads) {\n        free(self->slab);\n        free(self->arena);\n");
    fprintf(out, "        free(self->grads);\n");
    fprintf(out, "        free(self);\n        return NULL;\n    }\n");
    emit_param_init(m, out, "    ", "self->slab + %lld");
    fprintf(out, "    return self;\n}\n\n");
    fprintf(out, "static void api_destroy(void *model) {\n    %s_model *self = model;\n    if (!self) return;\n", n);
    fprintf(out, "    free(self->slab);\n    free(self->arena);\n    free(self->grads);\n    free(self);\n}\n\n");

    for (int checked = 0; checked < 2; checked++) emit_graph_function(m, out, FN_FORWARD_BACKWARD, checked);
    for (int checked = 0; checked < 2; checked++) emit_graph_function(m, out, FN_UPDATE, checked);
    emit_entry_points(m, out);
    emit_train_step(m, out, 1);
    /* --check-finite checks the train step only: evaluation runs the forward's ops on
     * parameters the step has checked */
    emit_graph_function(m, out, FN_EVAL_LOSS, 0);
    fprintf(out, "/* Inference in evaluation mode. */\nstatic %s {\n", graph_fn_signature(FN_FORWARD));
    fprintf(out, "    const int blas = mlc_blas_enter();\n    evaluate(model, inputs, n, outputs, 0);\n");
    fprintf(out, "    mlc_blas_leave(blas);\n}\n\n");
    fprintf(out, "/* The loss in evaluation mode, no update. */\nstatic %s {\n", graph_fn_signature(FN_EVAL_LOSS));
    fprintf(out,
            "    const int blas = mlc_blas_enter();\n    const float loss = evaluate(model, inputs, n, NULL, 1);\n");
    fprintf(out, "    mlc_blas_leave(blas);\n    return loss;\n}\n\n");

    fprintf(out, "static void api_read_tensor(void *model, int i, void *dst) {\n");
    fprintf(out, "    %s_model *self = model;\n", n);
    fprintf(out, "    memcpy(dst, self->slab + %s_offsets[i], sizeof(float) * (size_t)%s_tensors[i].numel);\n}\n\n", n,
            n);
    fprintf(out, "static void api_write_tensor(void *model, int i, const void *src) {\n");
    fprintf(out, "    %s_model *self = model;\n", n);
    fprintf(out, "    memcpy(self->slab + %s_offsets[i], src, sizeof(float) * (size_t)%s_tensors[i].numel);\n}\n\n", n,
            n);
    fprintf(out, "static float *api_grads(void *model) { return ((%s_model *)model)->grads; }\n", n);
    fprintf(out, "static void api_read_grads(void *model, float *dst) {\n");
    fprintf(out, "    memcpy(dst, ((%s_model *)model)->grads, sizeof(float) * %lld);\n}\n", n,
            (long long)m->grad_floats);
    fprintf(out, "static void api_write_grads(void *model, const float *src) {\n");
    fprintf(out, "    memcpy(((%s_model *)model)->grads, src, sizeof(float) * %lld);\n}\n\n", n,
            (long long)m->grad_floats);
    fprintf(out, "static int64_t api_get_step(void *model) { return ((%s_model *)model)->step; }\n", n);
    fprintf(out, "static void api_set_step(void *model, int64_t step) { ((%s_model *)model)->step = step; }\n", n);
    fprintf(out, "static void api_set_threads(int n) { mlc_c_set_threads(n); }\n");
    fprintf(out, "static void api_set_check_finite(void *model, int on) { ((%s_model *)model)->check_finite = on; }\n",
            n);
    emit_grad_ready_setter(m, out);
    emit_set_sample_offset(m, out);
    emit_norm_of(m, out);
    emit_batch_sync_setter(m, out, 0);

    fprintf(out, "void %s_destroy(%s_model *m) { api_destroy(m); }\n", n, n);
    emit_step_wrappers(m, out);
    emit_api_struct(m, out, "c");
}

const Target target_c = {.name = "c",
                         .src_ext = ".c",
                         .kind = TARGET_C,
                         .emitters = c_emitters,
                         .math = c_math,
                         .loop_begin = c_loop_begin,
                         .loop_end = c_loop_end,
                         .emit_source = emit_source_c,
                         .build = &c_build};
