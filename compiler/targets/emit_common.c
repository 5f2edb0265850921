/* emit_common.c - emission helpers shared by the C and CUDA targets: the emission
 * context's printing, buffer and size expressions, loop nests for elementwise ops, and
 * the parts of the output that do not depend on the target (header, tensor table, API). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "ops.h"
#include "target.h"

void emit(EmitCtx *e, const char *fmt, ...) {
    if (e->no_comments && !strncmp(fmt, "/*", 2)) return;
    if (e->line_file && e->line > 0) fprintf(e->body, "#line %d \"%s\"\n", e->line, e->line_file), e->mdl_lines++;
    for (int i = 0; i < e->indent; i++) fputs("    ", e->body);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->body, fmt, ap);
    va_end(ap);
    fputc('\n', e->body);
}

void emit_math(EmitCtx *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    emit(e, "%s", target_math(e, line));
}

void loop_begin(EmitCtx *e, int id, ElemLoop *l) { e->target->loop_begin(e, id, l); }
void loop_end(EmitCtx *e, int id, ElemLoop *l) { e->target->loop_end(e, id, l); }

const char *emit_buf(EmitCtx *e, int id) {
    if (!e->buf[id]) mlc_die("node %%%d (%s) has no buffer", id, op_info[e->g->nodes[id].op].name);
    return e->buf[id];
}

const char *emit_dim(EmitCtx *e, int id, int i) {
    char b[32];
    return arena_strdup(e->arena, shape_dim_expr(&e->g->nodes[id].shape, i, e->g->batch, b, sizeof b));
}

const char *emit_numel(EmitCtx *e, int id) {
    char b[48];
    return arena_strdup(e->arena, shape_numel_expr(&e->g->nodes[id].shape, e->g->batch, b, sizeof b));
}

const char *c_float(Arena *a, double v) {
    if (isinf(v)) return v > 0 ? "INFINITY" : "-INFINITY";
    char b[64];
    snprintf(b, sizeof b, "%.9g", v);
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    return arena_printf(a, "%sf", b);
}

const char *c_double(Arena *a, double v) {
    char b[64];
    for (int prec = 1; prec <= 17; prec++) { /* the shortest text that reads back as v */
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
    if (!strpbrk(b, ".eEn")) strcat(b, ".0");
    return arena_strdup(a, b);
}

const char *emit_float(EmitCtx *e, double v) { return c_float(e->arena, v); }

const char *emit_mdl_name(const Node *n) {
    if (!n->loc.file) return "?";
    const char *f = n->loc.file->name, *slash = strrchr(f, '/');
    return slash ? slash + 1 : f;
}

/* Bytes a string literal takes as they are: printable ASCII but the quote and backslash. */
static int str_plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

const char *c_str(Arena *a, const char *s) {
    const char *q = s;
    while (str_plain((unsigned char)*q) && !(q[0] == '?' && q[1] == '?')) q++;
    if (!*q) return s;                                       /* the usual name or path: nothing to escape */
    char *out = arena_alloc(a, 4 * strlen(s) + 1), *o = out; /* at most \ooo per byte */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') *o++ = '\\', *o++ = (char)c;
        else if (c == '?' && p > s && p[-1] == '?') *o++ = '\\', *o++ = '?'; /* "??/" would be a trigraph */
        else if (!str_plain(c)) o += sprintf(o, "\\%03o", c); /* octal: a digit after it cannot extend it */
        else *o++ = (char)c;
    }
    *o = 0;
    return out;
}

/* The pairs a block comment cannot hold: "*" "/" ends it; "/" "*" nests one, which cc -Wall
 * warns about. */
static int comment_breaks(const char *p, const char *s) {
    return p > s && ((p[0] == '/' && p[-1] == '*') || (p[0] == '*' && p[-1] == '/'));
}

const char *c_comment(Arena *a, const char *s) {
    const char *q = s;
    while (*q && (unsigned char)*q >= 0x20 && *q != 0x7f && !comment_breaks(q, s)) q++;
    if (!*q) return s;
    char *out = arena_alloc(a, 4 * strlen(s) + 1), *o = out; /* at most \ooo per byte */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (comment_breaks(p, s)) *o++ = ' ';
        if (c == '\n') *o++ = '\\', *o++ = 'n'; /* one generated line per emit() */
        else if (c < 0x20 || c == 0x7f) o += sprintf(o, "\\%03o", c);
        else *o++ = (char)c;
    }
    *o = 0;
    return out;
}

void emit_node_comment(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    char sh[128];
    shape_str_at(&n->shape, n->dtype, e->g->batch, sh, sizeof sh);
    char of[160] = ""; /* a backward value: whose gradient it is, a parameter by its name */
    if (n->grad_of) {
        const Node *x = &e->g->nodes[n->grad_of - 1];
        if (x->name) snprintf(of, sizeof of, ", the gradient of %s", c_comment(e->arena, x->name));
        else snprintf(of, sizeof of, ", the gradient of %%%d (%s)", n->grad_of - 1, op_of(x)->name);
    }
    if (n->loc.file) {
        emit(e, "/* %%%d = %s -> %s  (%s:%d)%s */", id, op_of(n)->name, sh, c_comment(e->arena, emit_mdl_name(n)),
             n->loc.line, of);
    } else {
        emit(e, "/* %%%d = %s -> %s%s */", id, op_of(n)->name, sh, of);
    }
}

static const char *prod_expr(Arena *a, const Shape *s, int batch, int from, int to) {
    int64_t k = 1;
    int b = 0;
    for (int i = from; i < to; i++) {
        if ((s->bmask >> i) & 1) b = 1, k *= s->d[i] / batch;
        else k *= s->d[i];
    }
    if (b) return k == 1 ? "B" : arena_printf(a, "B*%lld", (long long)k);
    return arena_printf(a, "%lld", (long long)k);
}

void emit_axis_split(EmitCtx *e, int x, int axis, const char **outer, const char **n, const char **inner) {
    const Shape *s = &e->g->nodes[x].shape;
    *outer = prod_expr(e->arena, s, e->g->batch, 0, axis);
    *n = prod_expr(e->arena, s, e->g->batch, axis, axis + 1);
    *inner = prod_expr(e->arena, s, e->g->batch, axis + 1, s->rank);
}

const char *subst(Arena *a, const char *tmpl, const char *const *args, int nargs) {
    size_t cap = strlen(tmpl) + 1;
    for (int i = 0; i < nargs; i++) cap += 4 * strlen(args[i]);
    char *out = arena_alloc(a, cap), *o = out;
    for (const char *p = tmpl; *p; p++) {
        if (*p == '%' && p[1] >= '0' && p[1] < '0' + nargs) {
            const char *s = args[p[1] - '0'];
            size_t n = strlen(s);
            memcpy(o, s, n);
            o += n;
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

static int ident_char(char c) { return c == '_' || isalnum((unsigned char)c); }

/* The target's spelling of math function `name` (n chars, a name of op_math_names);
 * NULL when name is not one of them. */
static const char *spelling(const Target *t, const char *name, size_t n) {
    for (int i = 0; op_math_names[i]; i++) {
        if (strlen(op_math_names[i]) != n || strncmp(name, op_math_names[i], n)) continue;
        for (const MathName *m = t->math; m->neutral; m++)
            if (!strcmp(m->neutral, op_math_names[i])) return m->spelled;
        mlc_die("target %s has no spelling for %s", t->name, op_math_names[i]);
    }
    return NULL;
}

enum { MAX_SPELLING = 24 };

const char *target_math(EmitCtx *e, const char *text) {
    size_t calls = 0;
    for (const char *p = text; *p; p++) calls += *p == '(';
    char *out = arena_alloc(e->arena, strlen(text) + calls * MAX_SPELLING + 1), *o = out;
    for (const char *p = text; *p;) {
        size_t n = 0;
        if (p == text || !ident_char(p[-1]))
            while (ident_char(p[n])) n++;
        const char *s = n && p[n] == '(' ? spelling(e->target, p, n) : NULL;
        if (!s) {
            size_t k = n ? n : 1;
            memcpy(o, p, k);
            o += k, p += k;
            continue;
        }
        if (strlen(s) > MAX_SPELLING) mlc_die("target %s: the spelling %s is too long", e->target->name, s);
        o = stpcpy(o, s);
        p += n;
    }
    *o = 0;
    return out;
}

const char *ewise_expr(EmitCtx *e, int id, const char *const *args) {
    const Node *n = &e->g->nodes[id];
    const char *t = target_math(e, op_of(n)->rules->expr);
    /* %{name}: the node's float attribute `name`, as a literal */
    size_t cap = strlen(t) * 8 + 64;
    char *pre = arena_alloc(e->arena, cap), *o = pre;
    for (const char *p = t; *p; p++) {
        const char *close = p[0] == '%' && p[1] == '{' ? strchr(p, '}') : NULL;
        if (close) {
            AttrName a = attr_by_name(p + 2, (size_t)(close - p - 2));
            if (a == A_NONE) mlc_die("op %s: scalar text names no attribute: %s", op_of(n)->name, p);
            o += snprintf(o, cap - (size_t)(o - pre), "%s", c_float(e->arena, attr_f(n, a)));
            p = close;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return subst(e->arena, pre, args, n->nin);
}

const char *subst_named(EmitCtx *e, const char *tmpl, const char *acc, const char *x, const char *n, const char *pre) {
    char t[256];
    size_t k = 0;
    tmpl = target_math(e, tmpl);
    for (const char *p = tmpl; *p && k < sizeof t - 3; p++) {
        if (*p == '%' && (p[1] == 'a' || p[1] == 'x' || p[1] == 'n' || (p[1] == 'm' && pre))) {
            t[k++] = '%';
            t[k++] = p[1] == 'a' ? '0' : p[1] == 'x' ? '1' : p[1] == 'n' ? '2' : '3';
            p++;
        } else {
            t[k++] = *p;
        }
    }
    t[k] = 0;
    const char *args[4] = {acc, x, n, pre};
    return subst(e->arena, t, args, pre ? 4 : 3);
}

const char *c_ident(Arena *a, const char *name) {
    char *s = arena_strdup(a, name);
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '_';
    return s;
}

static const char *io_dtype(DType dt) { return dt == DT_I32 ? "i32" : "f32"; }

/* " x 28 x 28" after the batch: the per-sample dimensions of an input or output. */
static void print_sample_dims(FILE *f, const ModelIO *io, const char *sep) {
    for (int i = 1; i < io->shape.rank; i++) fprintf(f, "%s%lld", sep, (long long)io->shape.d[i]);
}

void emit_header(const ModelIR *m, FILE *h) {
    const char *n = m->spec.name;
    fprintf(h, "/* %s.h - generated by mlc from %s. The C API of model '%s'. */\n", n, c_comment(m->arena, m->source),
            n);
    fprintf(h, "#ifndef MLC_GENERATED_%s_H\n#define MLC_GENERATED_%s_H\n\n", n, n);
    fprintf(h, "#include <stdint.h>\n\n#include \"mlc_model.h\"\n\n");
    fprintf(h, "#ifdef __cplusplus\nextern \"C\" { /* the model's functions have C linkage */\n#endif\n\n");
    fprintf(h, "typedef struct %s_model %s_model;\n\n", n, n);
    fprintf(h, "/* Inputs: inputs[i] points at n samples, the batch first (float for f32, int32_t for i32).\n");
    for (int i = 0; i < m->ninputs; i++) {
        const ModelIO *io = &m->inputs[i];
        fprintf(h, " *   %d %s: %s [n", i, c_comment(m->arena, io->name), io_dtype(io->dtype));
        print_sample_dims(h, io, ", ");
        fprintf(h, "]%s\n", io->eval_reads ? "" : "  (train_step and eval_loss only: forward takes NULL)");
    }
    fprintf(h, " * Outputs: outputs[k] is NULL or room for n samples (outputs itself may be NULL).\n");
    int int_outputs = 0;
    for (int k = 0; k < m->noutputs; k++) int_outputs |= m->outputs[k].dtype == DT_I32;
    if (int_outputs) /* the API's slots are float *: argmax's classes sit in them as int32_t */
        fprintf(h, " * An i32 output's slot (a float *, 4 bytes a value) holds int32_t: read (int32_t *)outputs[k].\n");
    for (int k = 0; k < m->noutputs; k++) {
        const ModelIO *io = &m->outputs[k];
        fprintf(h, " *   %d %s: %s [n", k, c_comment(m->arena, io->name), io_dtype(io->dtype));
        print_sample_dims(h, io, ", ");
        fprintf(h, "]");
        if (k == m->cls_output)
            fprintf(h, "  (%s: the loss is cross_entropy(%s, %s))",
                    m->classifier ? "class scores" : "scores per position", c_comment(m->arena, io->name),
                    c_comment(m->arena, m->inputs[m->cls_label].name));
        fprintf(h, "\n");
    }
    int f32_inputs = 0;
    for (int i = 0; i < m->ninputs; i++) f32_inputs |= m->inputs[i].dtype == DT_F32;
    if (f32_inputs) /* the trainer's images: a token model's ids are not normalised */
        fprintf(h,
                " * Inputs are taken as given. The trainer feeds its images scaled to [0, 1] and then\n"
                " * normalised, x' = (x - mean[c]) * (1.0f / std[c]) with %s_api.norm_mean/norm_std (%s_api.n_norm\n"
                " * values; 0: none) or a checkpoint's (--mean, --std: mlcrt_ckpt_norm reads them, %s_load\n"
                " * does not apply them): normalise the same way for the same results.\n",
                n, n, n);
    fprintf(h, " */\n");
    if (m->target == TARGET_CUDA)
        fprintf(h,
                "/* Creates the model with buffers for batches of up to max_batch samples (NULL, after a\n"
                " * line on stderr, for max_batch < 1, out of memory or a GPU it cannot use: the CUDA\n"
                " * call that failed).");
    else
        fprintf(h,
                "/* Creates the model with buffers for batches of up to max_batch samples (NULL, after a\n"
                " * line on stderr, for max_batch < 1 or out of memory), its CPU scratch sized for the\n"
                " * OpenMP threads of the calling thread (set them first: %s_api.set_threads); it sets\n"
                " * OpenBLAS to one thread for the whole process.",
                n);
    fprintf(h,
            " The calls below refuse, with a line on\n"
            " * stderr naming the call (NaN, -1 or nothing done): an n outside 1..max_batch; a NULL\n"
            " * `inputs`, or a NULL input the call reads (forward: those not marked above; the others:\n"
            " * every one); a label outside 0..classes-1 in an input cross_entropy or one_hot reads;\n");
    if (m->min_train_batch > 1)
        fprintf(h, " * in train_step and forward_backward, a batch below %d samples (a batch_norm needs two);\n",
                m->min_train_batch);
    fprintf(h,
            " * in evaluate, a count below 1; in save and load, a NULL path. A few failures inside a\n"
            " * call end the process (docs/trainer.md, \"Linking\"). */\n");
    fprintf(h, "%s_model *%s_create(uint64_t seed, int max_batch);\n", n, n);
    fprintf(h, "void %s_destroy(%s_model *m);\n", n, n);
    fprintf(h, "/* One training step on n samples; returns the mean loss (before the update). */\n");
    fprintf(h, "float %s_train_step(%s_model *m, const void *const *inputs, int n, float lr, float *const *outputs);\n",
            n, n);
    fprintf(h, "/* train_step in two halves (mlc_model.h). Forward, loss and backward: returns the mean\n");
    fprintf(h, " * loss and overwrites the gradient slab (%s_api.grad_numel floats, %s_grads()). */\n", n, n);
    fprintf(h, "float %s_forward_backward(%s_model *m, const void *const *inputs, int n, float *const *outputs);\n", n,
            n);
    fprintf(h, "/* The %s update from the gradient slab; the step counter advances. */\n", m->spec.opt.kind);
    fprintf(h, "void %s_update(%s_model *m, float lr);\n", n, n);
    fprintf(h, "/* The gradient slab, in %s memory. */\n", m->target == TARGET_CUDA ? "device" : "host");
    fprintf(h, "float *%s_grads(%s_model *m);\n", n, n);
    fprintf(h, "/* Inference on n samples (evaluation mode). */\n");
    fprintf(h, "void %s_forward(%s_model *m, const void *const *inputs, int n, float *const *outputs);\n", n, n);
    fprintf(h, "/* The mean loss on n samples in evaluation mode (no update). */\n");
    fprintf(h, "float %s_eval_loss(%s_model *m, const void *const *inputs, int n);\n", n, n);
    fprintf(h,
            "/* Over `count` samples (one array of count samples per input), in batches of at most\n"
            " * max_batch: %s. */\n",
            m->classifier ? "the accuracy of argmax(forward)" : "the mean loss in evaluation mode");
    fprintf(h, "double %s_evaluate(%s_model *m, const void *const *inputs, int count);\n", n, n);
    fprintf(h,
            "/* Checkpoints (the runtime's format): 0 on success, else -1 and a message on stderr\n"
            " * (a NULL path too). Saves of one path from two threads at once do not interfere. A save\n"
            " * records the normalisation the weights go with (%s_api.norm_of(m): the .mdl's, or the\n"
            " * last load's) and replaces only a checkpoint or an empty file. */\n",
            n);
    fprintf(h, "int %s_save(%s_model *m, const char *path);\n", n, n);
    fprintf(h, "int %s_load(%s_model *m, const char *path);\n\n", n, n);
    fprintf(h, "extern const mlc_model_api %s_api;\n\n", n);
    fprintf(h, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* The API's input and output tables (mlc_io_desc NAME_inputs[], NAME_outputs[]). */
static void emit_io_tables(const ModelIR *m, FILE *out) {
    for (int t = 0; t < 2; t++) {
        int count = t ? m->noutputs : m->ninputs;
        const ModelIO *ios = t ? m->outputs : m->inputs;
        fprintf(out, "static const mlc_io_desc %s_%s[%d] = {\n", m->spec.name, t ? "outputs" : "inputs", count);
        for (int i = 0; i < count; i++) {
            const ModelIO *io = &ios[i];
            fprintf(out, "    {\"%s\", %s, %d, {", c_str(m->arena, io->name),
                    io->dtype == DT_I32 ? "MLC_I32" : "MLC_F32", io->shape.rank - 1);
            for (int d = 1; d < io->shape.rank; d++)
                fprintf(out, "%s%lld", d > 1 ? ", " : "", (long long)io->shape.d[d]);
            if (io->shape.rank < 2) fputc('0', out); /* no dimension: {0}, as ISO C has no empty braces */
            fprintf(out, "}, %lld, %d},\n", (long long)io->sample_numel, io->eval_reads);
        }
        fprintf(out, "};\n");
    }
    fputc('\n', out);
}

const char *graph_fn_signature(GraphFn f) {
    switch (f) {
    case FN_FORWARD_BACKWARD:
        return "float api_forward_backward(void *model, const void *const *inputs, int n, float *const *outputs)";
    case FN_UPDATE: return "void api_update(void *model, float lr)";
    case FN_FORWARD: return "void api_forward(void *model, const void *const *inputs, int n, float *const *outputs)";
    case FN_EVAL_LOSS: return "float api_eval_loss(void *model, const void *const *inputs, int n)";
    }
    return NULL;
}

GraphFnParts graph_fn_parts(const ModelIR *m, GraphFn f) {
    switch (f) {
    case FN_FORWARD_BACKWARD:
        return (GraphFnParts){m->train, &m->train_fuse, &m->train_plan,
                              "Forward, loss, backward: the mean loss; the gradients into the gradient slab."};
    case FN_UPDATE:
        return (GraphFnParts){m->train, &m->train_fuse, &m->train_plan, "The optimizer update from the gradient slab."};
    case FN_FORWARD: return (GraphFnParts){m->eval, &m->eval_fuse, &m->eval_plan, "Inference in evaluation mode."};
    case FN_EVAL_LOSS:
        return (GraphFnParts){m->eval_loss, &m->eval_loss_fuse, &m->eval_loss_plan,
                              "The loss in evaluation mode, no update."};
    }
    mlc_die("no graph function %d", (int)f);
}

void emit_copy_outputs(EmitCtx *e, const char *copy_fmt) {
    const Graph *g = e->g;
    if (!g->nout) return;
    emit(e, "if (outputs) {");
    e->indent++;
    for (int k = 0; k < g->nout; k++) {
        int o = g->outputs[k];
        const char *dst = arena_printf(e->arena, "outputs[%d]", k);
        const char *bytes = arena_printf(e->arena, "sizeof(float) * (size_t)(%s)", emit_numel(e, o));
        emit(e, "if (%s) %s; /* %s */", dst, subst(e->arena, copy_fmt, (const char *const[]){dst, e->buf[o], bytes}, 3),
             c_comment(e->arena, g->out_names[k]));
    }
    e->indent--;
    emit(e, "}");
}

void emit_tensor_table(const ModelIR *m, FILE *out) {
    emit_io_tables(m, out);
    fprintf(out, "/* Persistent tensors: parameters, then optimizer state; the last column is the offset\n");
    fprintf(out, " * of a parameter's gradient in the gradient slab (%lld floats). */\n", (long long)m->grad_floats);
    /* ISO C has no empty arrays or braces: a model without tensors has one unused entry
     * (n_tensors stays 0), a scalar's dims are {0} */
    int rows = m->npers ? m->npers : 1;
    fprintf(out, "static const mlc_tensor_desc %s_tensors[%d] = {\n", m->spec.name, rows);
    if (!m->npers) fprintf(out, "    {\"\", MLC_F32, 0, {0}, 0, 0, -1}, /* none: a placeholder */\n");
    for (int i = 0; i < m->npers; i++) {
        const Persistent *p = &m->pers[i];
        fprintf(out, "    {\"%s\", MLC_F32, %d, {", c_str(m->arena, p->name), p->shape.rank);
        for (int k = 0; k < p->shape.rank; k++) fprintf(out, "%s%lld", k ? ", " : "", (long long)p->shape.d[k]);
        if (!p->shape.rank) fputc('0', out);
        fprintf(out, "}, %lld, %d, %lld},\n", (long long)shape_numel(&p->shape), p->is_param,
                (long long)p->grad_offset);
    }
    fprintf(out, "};\nstatic const int64_t %s_offsets[%d] = {", m->spec.name, rows);
    for (int i = 0; i < m->npers; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)m->pers[i].offset);
    if (!m->npers) fputc('0', out);
    fprintf(out, "};\n\n");
}

void emit_param_init(const ModelIR *m, FILE *out, const char *ind, const char *ptr_fmt) {
    for (int i = 0; i < m->npers; i++) {
        const Persistent *p = &m->pers[i];
        char ptr[128];
        snprintf(ptr, sizeof ptr, ptr_fmt, (long long)p->offset);
        long long n = (long long)shape_numel(&p->shape);
        switch (p->init) {
        case INIT_UNIFORM:
            fprintf(out, "%smlc_init_uniform(%s, %lld, %s, %s, seed, \"%s\");\n", ind, ptr, n, c_float(m->arena, p->a),
                    c_float(m->arena, p->b), c_str(m->arena, p->name));
            break;
        case INIT_NORMAL:
            fprintf(out, "%smlc_init_normal(%s, %lld, %s, %s, seed, \"%s\");\n", ind, ptr, n, c_float(m->arena, p->a),
                    c_float(m->arena, p->b), c_str(m->arena, p->name));
            break;
        case INIT_CONST: fprintf(out, "%smlc_init_const(%s, %lld, %s);\n", ind, ptr, n, c_float(m->arena, p->a)); break;
        default: break; /* zeros: the slab starts zeroed */
        }
    }
}

void emit_api_struct(const ModelIR *m, FILE *o, const char *target_name) {
    const char *n = m->spec.name;
    const OptimizerSpec *op = &m->spec.opt;
    fprintf(o, "const mlc_model_api %s_api = {\n", n);
    fprintf(o, "    .api_version = MLC_API_VERSION,\n");
    /* related fields share a line; the order is the struct's (C++, nvcc, demands it) */
    fprintf(o, "    .name = \"%s\", .target = \"%s\",\n", c_str(m->arena, n), target_name);
    fprintf(o, "    .n_inputs = %d, .n_outputs = %d,\n    .inputs = %s_inputs, .outputs = %s_outputs,\n", m->ninputs,
            m->noutputs, n, n);
    fprintf(o, "    .classifier = %d, .cls_output = %d, .cls_label = %d,\n", m->classifier, m->cls_output,
            m->cls_label);
    fprintf(o, "    .default_batch = %d, .default_epochs = %d, .default_accum = %d, .default_seed = %lluu,\n",
            m->spec.batch, m->spec.epochs, m->spec.accum, m->spec.seed);
    Arena *a = m->arena;
    fprintf(o, "    .optimizer = {\"%s\", %s, %s, %s, %s, %s, %s},\n", c_str(a, op->kind), c_float(a, op->lr),
            c_float(a, op->momentum), c_float(a, op->beta1), c_float(a, op->beta2), c_float(a, op->eps),
            c_float(a, op->weight_decay));
    const ModelSpec *sp = &m->spec;
    fprintf(o, "    .schedule = \"%s\",\n", c_str(a, sp->schedule));
    fprintf(o, "    .n_tensors = %d, .tensors = %s_tensors,\n", m->npers, n);
    fprintf(o, "    .create = api_create, .destroy = api_destroy,\n    .train_step = api_train_step,\n");
    fprintf(o, "    .forward_backward = api_forward_backward, .update = api_update,\n");
    fprintf(o, "    .grad_numel = %lld, .grads = api_grads,\n", (long long)m->grad_floats);
    fprintf(o, "    .read_grads = api_read_grads, .write_grads = api_write_grads,\n");
    fprintf(
        o,
        "    .forward = api_forward, .eval_loss = api_eval_loss,\n    .read_tensor = api_read_tensor, .write_tensor = api_write_tensor,\n");
    fprintf(o, "    .get_step = api_get_step, .set_step = api_set_step,\n    .set_threads = api_set_threads,\n");
    fprintf(o, "    .warmup_epochs = %s, .step_size = %d, .step_gamma = %s,\n", c_float(a, sp->warmup), sp->step_size,
            c_float(a, sp->step_gamma));
    if (sp->augment) fprintf(o, "    .augment = \"%s\",\n", c_str(a, sp->augment));
    else fprintf(o, "    .augment = NULL,\n");
    fprintf(o, "    .n_norm = %d,\n    .norm_mean = {", sp->n_norm);
    for (int i = 0; i < 4; i++) fprintf(o, "%s%s", i ? ", " : "", c_float(a, sp->norm_mean[i]));
    fprintf(o, "},\n    .norm_std = {");
    for (int i = 0; i < 4; i++) fprintf(o, "%s%s", i ? ", " : "", c_float(a, sp->norm_std[i]));
    fprintf(o, "},\n    .norm_of = api_norm_of,\n");
    fprintf(o, "    .set_check_finite = %s,\n", strcmp(target_name, "c") ? "NULL" : "api_set_check_finite");
    fprintf(o, "    .set_grad_ready = api_set_grad_ready,\n");
    fprintf(o, "    .set_sample_offset = api_set_sample_offset,\n");
    /* every field, even at its default: C++ (nvcc) warns of a missing one */
    fprintf(o, "    .min_train_batch = %d,\n", m->min_train_batch);
    fprintf(o, "    .set_batch_sync = api_set_batch_sync,\n");
    fprintf(o, "    .device_stream = %s,\n", strcmp(target_name, "cuda") ? "NULL" : "api_device_stream");
    fprintf(o, "};\n\n");
    /* Conveniences over the runtime, the same for every target. */
    fprintf(o, "double %s_evaluate(%s_model *m, const void *const *inputs, int count) {\n", n, n);
    fprintf(o, "    if (count > 0 && (mlcrt_inputs_refused(&%s_api, \"%s_evaluate\", inputs, 1) ||\n", n, n);
    fprintf(o, "                      labels_refused(\"%s_evaluate\", inputs, count)))\n        return NAN;\n", n);
    fprintf(o, "    return mlcrt_evaluate_arrays(&%s_api, m, inputs, count, m->max_batch);\n}\n\n", n);
    fprintf(o, "int %s_save(%s_model *m, const char *path) { return mlcrt_save(&%s_api, m, path); }\n", n, n, n);
    fprintf(o, "int %s_load(%s_model *m, const char *path) { return mlcrt_load(&%s_api, m, path); }\n", n, n, n);
}

/* Node x's buffer is read by code of this function: through views, and through the
 * values a group recomputes from their inputs (fuse.c). */
static void mark_read(const EmitCtx *e, char *used, int x) {
    used[x] = 1;
    while (e->g->nodes[x].op == OP_reshape) x = e->g->nodes[x].in[0], used[x] = 1;
    if (e->fp->dup[x])
        for (int k = 0; k < e->g->nodes[x].nin; k++) mark_read(e, used, e->g->nodes[x].in[k]);
}

/* The gradient slab slot node id writes, if any (the persistent whose gradient it is). */
/* For each node of the train step, the persistent whose gradient slot it writes (the
 * first such, as shared gradients' copies write none), or -1: one pass over the
 * persistents, where a scan per gradient node was quadratic in the layers. */
static const int *grad_slots(Arena *a, const ModelIR *m, int n) {
    int *slot = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++) slot[id] = -1;
    for (int i = 0; i < m->npers; i++) {
        int id = m->pers[i].grad_node;
        if (id >= 0 && id < n && m->pers[i].grad_copy_of < 0 && slot[id] < 0) slot[id] = i;
    }
    return slot;
}

void emit_grad_copies(const ModelIR *m, FILE *out, const char *copy_fmt) {
    for (int i = 0; i < m->npers; i++) {
        const Persistent *p = &m->pers[i];
        if (p->grad_copy_of < 0) continue;
        fprintf(out, "    /* %s's gradient is computed by the node of %s's */\n    ", c_comment(m->arena, p->name),
                c_comment(m->arena, m->pers[p->grad_copy_of].name));
        fprintf(out, copy_fmt, (long long)p->grad_offset, (long long)m->pers[p->grad_copy_of].grad_offset,
                (long long)shape_numel(&p->shape));
        fputc('\n', out);
    }
}

/* The start of every generated graph function: a typed pointer per model input the graph
 * reads, in_NAME, from inputs[i]; on the CUDA target from the model's device buffer
 * self->in[i], which the call's preparation (e->prep) fills from inputs[i] (host
 * memory). Returns the pointer's name per input. */
static const char **emit_bind_inputs(EmitCtx *e, const ModelIR *m, const char *used) {
    const Graph *g = e->g;
    const char **name = ARENA_ARRAY(e->arena, const char *, m->ninputs);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        int i = n->op == OP_input && used[id] ? model_find_input(m, n->name) : -1;
        if (i < 0) continue;
        const char *type = n->dtype == DT_I32 ? "int32_t" : "float";
        char sh[96];
        name[i] = arena_printf(e->arena, "in_%s", c_ident(e->arena, n->name));
        const char *src = arena_printf(e->arena, "inputs[%d]", i);
        if (e->target->kind == TARGET_CUDA) {
            fprintf(e->prep,
                    "    MLC_CUDA_CHECK(cudaMemcpyAsync(self->in[%d], inputs[%d], sizeof(%s) * (size_t)(%s), "
                    "cudaMemcpyHostToDevice, self->stream));\n",
                    i, i, type, emit_numel(e, id));
            src = arena_printf(e->arena, "self->in[%d]", i);
        }
        emit(e, "const %s *const %s = (const %s *)%s; /* %s */", type, name[i], type, src,
             shape_str_at(&n->shape, n->dtype, e->g->batch, sh, sizeof sh));
    }
    return name;
}

/* The identifier of each persistent tensor in the pointer names p_X and g_X: its name made
 * an identifier (c_ident). Names that make the same one ("a-b.weight", "a.b.weight") take
 * _2, _3, ... in slab order, so the generated C never declares one pointer twice, and every
 * graph function names a tensor alike. */
static const char **persistent_idents(Arena *a, const ModelIR *m) {
    const char **ident = ARENA_ARRAY(a, const char *, m->npers + 1);
    NameTable taken = names_new(a);
    for (int i = 0; i < m->npers; i++) {
        const char *base = c_ident(a, m->pers[i].name), *s = base;
        for (int k = 2; names_get(&taken, s) >= 0; k++) s = arena_printf(a, "%s_%d", base, k);
        names_put(&taken, s, i);
        ident[i] = s;
    }
    return ident;
}

const char **emit_name_buffers(EmitCtx *e, const ModelIR *m, const MemPlan *plan) {
    const Graph *g = e->g;
    const char **buf = ARENA_ARRAY(e->arena, const char *, g->n);
    char *half = arena_alloc(e->arena, (size_t)g->n + 1);
    e->half = half;
    const char **ident = persistent_idents(e->arena, m);
    const int *grad_slot = grad_slots(e->arena, m, g->n);
    /* used: this function's code reads or writes the node's buffer */
    char *used = arena_alloc(e->arena, (size_t)g->n);
    for (int id = 0; id < g->n; id++) {
        if (!emit_runs(e, id) || (e->phase_of && e->fp->at[id] < 0)) continue;
        if (e->phase_of) used[id] = 1;
        for (int k = 0; k < g->nodes[id].nin; k++) mark_read(e, used, g->nodes[id].in[k]);
    }
    if (e->copies_outputs)
        for (int k = 0; k < g->nout; k++) mark_read(e, used, g->outputs[k]);
    const char **in_name = emit_bind_inputs(e, m, used);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        int slotted = (n->role & ROLE_GRAD) && n->op != OP_reshape && op_of(n)->kind != K_SOURCE; /* grad_slab.c */
        int gs = slotted ? grad_slot[id] : -1;
        if (slotted && gs < 0) mlc_die("gradient %%%d has no slot in the gradient slab", id);
        if (gs >= 0) {
            buf[id] = arena_printf(e->arena, "g_%s", ident[gs]);
            if (used[id])
                emit(e, "float *const %s = G + %lld; /* the gradient of %s */", buf[id],
                     (long long)m->pers[gs].grad_offset, c_comment(e->arena, m->pers[gs].name));
        } else if (n->op == OP_input) {
            buf[id] = used[id] ? in_name[model_find_input(m, n->name)] : NULL;
        } else if (n->op == OP_param || n->op == OP_state) {
            int p = model_find_persistent(m, n->name);
            if (p < 0) mlc_die("no slab slot for %s", n->name);
            buf[id] = arena_printf(e->arena, "p_%s", ident[p]);
            if (used[id])
                emit(e, "float *const %s = P + %lld; /* %s */", buf[id], (long long)m->pers[p].offset,
                     c_comment(e->arena, n->name));
        } else if (n->op == OP_reshape || op_of(n)->kind == K_UPDATE) {
            buf[id] = buf[n->in[0]];
            half[id] = half[n->in[0]];
        } else if (plan->has_buf[id] && plan->inplace_of[id]) {
            /* In place: the same name as the buffer it takes over. A group that reads x and
             * writes x's buffer at the same element then does so through one pointer, which
             * the C compiler can vectorize without a run-time overlap check (an OpenMP loop
             * body sees two distinct pointers as possibly overlapping, and with the check
             * an exact overlap would fall back to the scalar loop). */
            buf[id] = buf[plan->inplace_of[id] - 1];
            half[id] = half[plan->inplace_of[id] - 1];
        } else if (plan->has_buf[id]) {
            char sh[96];
            buf[id] = arena_printf(e->arena, "t%d", id);
            half[id] = plan->half[id];
            if (e->phase_of && !used[id]) continue;
            if (half[id])
                emit(e, "mlc_bf16 *const %s = (mlc_bf16 *)(A + %lld + %lld * mb); /* %s, stored as bfloat16 */",
                     buf[id], (long long)plan->off_c[id], (long long)plan->off_b[id],
                     shape_str_at(&n->shape, n->dtype, e->g->batch, sh, sizeof sh));
            else if (n->dtype == DT_I32) /* an i32 tensor (argmax) takes its 4 bytes a float in the arena */
                emit(e, "int32_t *const %s = (int32_t *)(A + %lld + %lld * mb); /* %s */", buf[id],
                     (long long)plan->off_c[id], (long long)plan->off_b[id],
                     shape_str_at(&n->shape, n->dtype, e->g->batch, sh, sizeof sh));
            else
                emit(e, "float *const %s = A + %lld + %lld * mb; /* %s */", buf[id], (long long)plan->off_c[id],
                     (long long)plan->off_b[id], shape_str_at(&n->shape, n->dtype, e->g->batch, sh, sizeof sh));
        }
    }
    return buf;
}

void emit_section_marker(EmitCtx *e, int id, int *section) {
    const Graph *g = e->g;
    const Node *n = &g->nodes[id];
    if (g->loss < 0 || *section == 2 || e->fp->at[id] != id || op_of(n)->kind == K_SOURCE || n->op == OP_reshape)
        return;
    if (*section == 0) emit(e, "/* ---- forward and loss ---- */");
    if (id > g->loss) emit(e, "/* ---- backward: the gradients, into the gradient slab ---- */");
    *section = id > g->loss ? 2 : 1;
}

int emit_epilogue_of(const EmitCtx *e, int id) { return e->fp->epilogue[id]; }

int emit_reads_bf16_values(const Graph *g, int id) {
    const Node *n = &g->nodes[id];
    for (int k = 0; k < n->nin; k++) {
        int x = n->in[k];
        if (g->nodes[x].dtype != DT_F32) continue;
        while (g->nodes[x].op == OP_reshape) x = g->nodes[x].in[0];
        if (g->nodes[x].op != OP_round_bf16) return 0;
    }
    return n->nin > 0;
}

int emit_has_code(const EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    /* fused into another node's, the other call's, a source, a view */
    return e->fp->at[id] == id && emit_runs(e, id) && op_of(n)->kind != K_SOURCE && n->op != OP_reshape;
}

const char *text_replace(Arena *a, const char *text, const char *from, const char *to) {
    const char *out = "";
    size_t n = strlen(from);
    for (const char *p = strstr(text, from); p; text = p + n, p = strstr(text, from))
        out = arena_printf(a, "%s%.*s%s", out, (int)(p - text), text, to);
    return arena_printf(a, "%s%s", out, text);
}

void emit_node_by_kind(EmitCtx *e, int id, const KindEmitters *k) {
    const Node *n = &e->g->nodes[id];
    const OpInfo *oi = op_of(n);
    if (!emit_has_code(e, id)) return;
    switch (oi->kind) {
    case K_SOURCE: return; /* (emit_has_code: not reached) */
    case K_SHAPE:
        k->ewise(e, id); /* expand (a reshape is a view, without code): an elementwise copy with broadcasting */
        return;
    case K_EWISE: k->ewise(e, id); return;
    case K_REDUCE: k->reduce(e, id); return;
    case K_CONTRACT:
        emit_node_comment(e, id);
        k->matmul(e, id);
        return;
    case K_SPECIAL:
    case K_UPDATE: {
        void (*emitter)(EmitCtx *, int) = e->target->emitters[n->op].emit;
        if (!emitter) mlc_die("op %s has no %s emitter", oi->name, e->target->name);
        emit_node_comment(e, id);
        emitter(e, id);
        return;
    }
    }
}

void emit_dropout_counter(FILE *o) {
    fprintf(o, "    /* dropout's counter: the step this prepares, and which micro-batch of it (--accum) */\n");
    fprintf(o, "    const int64_t t = self->step + 1 + ((int64_t)self->micro++ << 24);\n    (void)t;\n");
}

void emit_norm_init(const ModelIR *m, FILE *o) {
    const ModelSpec *sp = &m->spec;
    fprintf(o, "    self->norm.n = %d; /* the .mdl's normalisation until a load (norm_of) */\n", sp->n_norm);
    for (int i = 0; i < sp->n_norm; i++)
        fprintf(o, "    self->norm.mean[%d] = %s, self->norm.std[%d] = %s;\n", i, c_float(m->arena, sp->norm_mean[i]),
                i, c_float(m->arena, sp->norm_std[i]));
}

void emit_norm_of(const ModelIR *m, FILE *o) {
    fprintf(o, "static mlcrt_norm *api_norm_of(void *model) { return &((%s_model *)model)->norm; }\n\n", m->spec.name);
}

void emit_set_sample_offset(const ModelIR *m, FILE *o) {
    fprintf(
        o,
        "static void api_set_sample_offset(void *model, int64_t first) { ((%s_model *)model)->sample0 = first; }\n\n",
        m->spec.name);
}

void emit_train_step(const ModelIR *m, FILE *o, int checks) {
    const char *n = m->spec.name;
    fprintf(o, "/* One training step: the two halves back to back. */\n");
    fprintf(
        o,
        "static float api_train_step(void *model, const void *const *inputs, int n, float lr, float *const *outputs) {\n");
    fprintf(o, "    const float loss = api_forward_backward(model, inputs, n, outputs);\n");
    if (checks) {
        fprintf(o, "    %s_model *self = (%s_model *)model;\n", n, n);
        fprintf(
            o,
            "    if (self->check_finite && !isfinite(loss)) return loss; /* --check-finite stopped the backward */\n");
        fprintf(
            o, "    self->nonfinite = 0;\n    api_update(model, lr);\n    return self->nonfinite ? NAN : loss;\n}\n\n");
    } else {
        fprintf(o, "    api_update(model, lr);\n    return loss;\n}\n\n");
    }
}

/* The public calls that take a batch check its size against the buffers (the runtime's
 * calls through the api table are sized by the trainer and skip the check). */
static void emit_batch_check(FILE *o, const char *n, const char *fn, const char *fail) {
    fprintf(o, "    if (mlcrt_batch_refused(\"%s_%s\", n, m->max_batch)) return%s;\n", n, fn, fail);
}

/* Then the inputs: none of those the call reads may be NULL (every one for a call that
 * takes the labels, eval_reads ones for forward), and in a call that reads the labels
 * (labels: 1), no label outside the classes. */
static void emit_input_checks(FILE *o, const char *n, const char *fn, int labels, const char *fail) {
    fprintf(o, "    if (mlcrt_inputs_refused(&%s_api, \"%s_%s\", inputs, %d)", n, n, fn, labels);
    if (labels) fprintf(o, " || labels_refused(\"%s_%s\", inputs, n)", n, fn);
    fprintf(o, ") return%s;\n", fail);
}

/* A model whose batch norm needs two samples refuses training batches of one, as the
 * trainer refuses flags that would make one. */
static void emit_train_checks(const ModelIR *m, FILE *o, const char *fn) {
    const char *n = m->spec.name;
    emit_batch_check(o, n, fn, " NAN");
    if (m->min_train_batch > 1)
        fprintf(o, "    if (mlcrt_train_batch_refused(\"%s_%s\", n, %d)) return NAN;\n", n, fn, m->min_train_batch);
    emit_input_checks(o, n, fn, 1, " NAN");
}

/* The fewest classes a one_hot of graph g gives model input `name` (cross_entropy's
 * labels among them; through reshapes), or 0 when none reads it. */
static int64_t one_hot_classes(const Graph *g, const char *name, int64_t fewest) {
    for (int id = 0; g && id < g->n; id++) {
        if (g->nodes[id].op != OP_one_hot) continue;
        int x = g->nodes[id].in[0];
        while (g->nodes[x].op == OP_reshape) x = g->nodes[x].in[0];
        int64_t c = attr_i(&g->nodes[id], A_CLASSES);
        if (g->nodes[x].op == OP_input && strcmp(g->nodes[x].name, name) == 0 && (!fewest || c < fewest)) fewest = c;
    }
    return fewest;
}

/* labels_refused(call, inputs, n): 1 after a line on stderr when an i32 input that one_hot
 * reads holds a label outside 0..classes-1 in its first n samples. one_hot of such a label
 * matches no class: the loss would be plain logsumexp and train_step would update with it.
 * Checked in the public calls only (the trainer checks its data files whole). */
static void emit_labels_check(const ModelIR *m, FILE *o) {
    fprintf(o, "static int labels_refused(const char *call, const void *const *inputs, int64_t n) {\n");
    fprintf(o, "    (void)call, (void)inputs, (void)n;\n");
    for (int i = 0; i < m->ninputs; i++) {
        const ModelIO *io = &m->inputs[i];
        if (io->dtype != DT_I32) continue;
        int64_t classes = one_hot_classes(m->train, io->name, 0);
        classes = one_hot_classes(m->eval_loss, io->name, classes);
        if (!classes) continue;
        fprintf(o,
                "    if (mlcrt_labels_refused(call, \"%s\", (const int32_t *)inputs[%d], n, %lld, %lld)) return 1;\n",
                c_str(m->arena, io->name), i, (long long)io->sample_numel, (long long)classes);
    }
    fprintf(o, "    return 0;\n}\n\n");
}

void emit_step_wrappers(const ModelIR *m, FILE *o) {
    const char *n = m->spec.name;
    emit_labels_check(m, o);
    /* create says why it returns NULL, as the calls below say why they refuse */
    fprintf(o, "%s_model *%s_create(uint64_t seed, int max_batch) {\n", n, n);
    fprintf(o, "    %s_model *m = (%s_model *)api_create(seed, max_batch);\n", n, n);
    if (m->target == TARGET_CUDA) /* its api_create says why it fails, in one line (a CUDA call, host memory) */
        fprintf(o, "    if (!m && max_batch < 1) mlcrt_create_failed(\"%s_create\", max_batch);\n    return m;\n}\n",
                n);
    else fprintf(o, "    if (!m) mlcrt_create_failed(\"%s_create\", max_batch);\n    return m;\n}\n", n);
    fprintf(o,
            "float %s_train_step(%s_model *m, const void *const *inputs, int n, float lr, float *const *outputs) {\n",
            n, n);
    emit_train_checks(m, o, "train_step");
    fprintf(o, "    if (mlcrt_lr_refused(\"%s_train_step\", lr)) return NAN;\n", n);
    fprintf(o, "    return api_train_step(m, inputs, n, lr, outputs);\n}\n");
    fprintf(o, "float %s_forward_backward(%s_model *m, const void *const *inputs, int n, float *const *outputs) {\n", n,
            n);
    emit_train_checks(m, o, "forward_backward");
    fprintf(o, "    return api_forward_backward(m, inputs, n, outputs);\n}\n");
    fprintf(o, "void %s_update(%s_model *m, float lr) {\n", n, n);
    fprintf(o, "    if (!mlcrt_lr_refused(\"%s_update\", lr)) api_update(m, lr);\n}\n", n);
    fprintf(o, "float *%s_grads(%s_model *m) { return api_grads(m); }\n", n, n);
    fprintf(o, "void %s_forward(%s_model *m, const void *const *inputs, int n, float *const *outputs) {\n", n, n);
    emit_batch_check(o, n, "forward", "");
    emit_input_checks(o, n, "forward", 0, "");
    fprintf(o, "    api_forward(m, inputs, n, outputs);\n}\n");
    fprintf(o, "float %s_eval_loss(%s_model *m, const void *const *inputs, int n) {\n", n, n);
    emit_batch_check(o, n, "eval_loss", " NAN");
    emit_input_checks(o, n, "eval_loss", 1, " NAN");
    fprintf(o, "    return api_eval_loss(m, inputs, n);\n}\n\n");
}
