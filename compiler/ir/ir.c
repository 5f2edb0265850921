/* ir.c - building graphs, shapes, and the graph verifier. Printing lives in ir_print.c. */
#include "ir.h"

#include <stdarg.h>
#include <string.h>

#include "ops.h"

Graph *graph_new(Arena *a, GraphMode mode, int batch) {
    Graph *g = ARENA_NEW(a, Graph);
    g->arena = a;
    g->mode = mode;
    g->batch = batch;
    g->loss = g->cls_output = -1;
    return g;
}

int graph_push(Graph *g, const Node *n) {
    char why[192];
    if (shape_check(&n->shape, n->dtype, why, sizeof why)) {
        const SrcLoc *loc = n->loc.file ? &n->loc : NULL;
        if (n->name) diag_error(loc, "%s '%s': %s", op_info[n->op].name, n->name, why);
        diag_error(loc, "the result of %s: %s", op_info[n->op].name, why);
    }
    if (g->n >= IR_MAX_NODES)
        diag_error(n->loc.file ? &n->loc : NULL,
                   "the %s graph has more than %d nodes (blocks are expanded at every call: look for nested calls "
                   "that multiply)",
                   g->mode == MODE_TRAIN ? "train-step" : "eval", IR_MAX_NODES);
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        g->nodes = arena_realloc(g->arena, g->nodes, sizeof(Node) * (size_t)g->cap, sizeof(Node) * (size_t)cap);
        g->cap = cap;
    }
    g->nodes[g->n] = *n;
    return g->n++;
}

static const char *run_shape_rule(Graph *g, Node *n) {
    const OpInfo *oi = op_of(n);
    if (!oi->rules->shape) return NULL;
    return oi->rules->shape(g, n);
}

void graph_remap_roots(Graph *g, const int *map) {
    g->loss = g->loss >= 0 ? map[g->loss] : -1;
    for (int k = 0; k < g->nout; k++) g->outputs[k] = map[g->outputs[k]];
    for (int i = 0; i < g->n; i++) { /* a value removed (dce: map -1) leaves no name */
        Node *n = &g->nodes[i];
        if (n->grad_of) n->grad_of = map[n->grad_of - 1] >= 0 ? map[n->grad_of - 1] + 1 : 0;
    }
}

int graph_is_output(const Graph *g, int id) {
    for (int k = 0; k < g->nout; k++)
        if (g->outputs[k] == id) return 1;
    return 0;
}

void graph_adopt(Graph *g, const Graph *out, const int *map) {
    g->nodes = out->nodes;
    g->n = out->n;
    g->cap = out->cap;
    graph_remap_roots(g, map);
}

void graph_copy_settings(Graph *to, const Graph *from) {
    to->conv_algo = from->conv_algo;
    to->tf32 = from->tf32;
    to->cublaslt = from->cublaslt;
}

/* A shape rule's error err at loc, prefixed with the builtin the .mdl called when the op
 * is one of its parts (`where: mul: shapes ...`), not the call itself (`abs needs ...`). */
static _Noreturn void shape_error(const Graph *g, const char *err, const SrcLoc *loc) {
    const size_t k = g->call_name ? strlen(g->call_name) : 0;
    if (k && !(strncmp(err, g->call_name, k) == 0 && (err[k] == ':' || err[k] == ' ')))
        diag_error(loc, "%s: %s", g->call_name, err);
    diag_error(loc, "%s", err);
}

static int add_node(Graph *g, Op op, const int *in, int nin, const Node *like, const AttrArg *attrs,
                    const SrcLoc *loc) {
    const OpInfo *oi = &op_info[op];
    if (nin != oi->arity) mlc_die("op %s takes %d inputs, got %d", oi->name, oi->arity, nin);
    Node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.nin = nin;
    for (int i = 0; i < nin; i++) {
        if (in[i] < 0 || in[i] >= g->n) mlc_die("op %s: input %d is node %d of %d", oi->name, i, in[i], g->n);
        n.in[i] = in[i];
    }
    if (like) attr_copy_common(&n, like);
    attr_set_all(&n, attrs);
    if (loc) n.loc = *loc;
    n.dtype = nin ? g->nodes[in[0]].dtype : DT_F32;
    const char *err = run_shape_rule(g, &n);
    if (err) shape_error(g, err, loc);
    return graph_push(g, &n);
}

int graph_add(Graph *g, Op op, const int *in, int nin, const AttrArg *attrs, const SrcLoc *loc) {
    return add_node(g, op, in, nin, NULL, attrs, loc);
}

int graph_add_like(Graph *g, Op op, const int *in, int nin, const Node *like, const AttrArg *attrs, const SrcLoc *loc) {
    return add_node(g, op, in, nin, like, attrs, loc);
}

int graph_add_source(Graph *g, Op op, Shape shape, DType dt, const char *name, const SrcLoc *loc) {
    Node n = {0};
    n.op = op;
    n.shape = shape;
    n.dtype = dt;
    n.name = name;
    if (loc) n.loc = *loc;
    return graph_push(g, &n);
}

int ir_unary(Graph *g, Op op, int x, const SrcLoc *loc) { return graph_add(g, op, &x, 1, NULL, loc); }

int ir_binary(Graph *g, Op op, int a, int b, const SrcLoc *loc) {
    int in[2] = {a, b};
    return graph_add(g, op, in, 2, NULL, loc);
}

int ir_reduce(Graph *g, Op op, int x, int axis, int keepdims, const SrcLoc *loc) {
    return graph_add(g, op, &x, 1, ATTRS(AI(A_AXIS, axis), AI(A_KEEPDIMS, keepdims)), loc);
}

int ir_matmul(Graph *g, int a, int b, int ta, int tb, const SrcLoc *loc) {
    int in[2] = {a, b};
    return graph_add(g, OP_matmul, in, 2, ATTRS(AI(A_TRANS_A, ta), AI(A_TRANS_B, tb)), loc);
}

int ir_slice(Graph *g, int x, int axis, int64_t start, int64_t end, const SrcLoc *loc) {
    return graph_add(g, OP_slice, &x, 1, ATTRS(AI(A_AXIS, axis), AI(A_START, start), AI(A_END, end)), loc);
}

/* reshape/expand carry their target shape in the node itself; the rule checks it. */
static int add_with_shape(Graph *g, Op op, int x, Shape to, const SrcLoc *loc) {
    Node n = {0};
    n.op = op;
    n.nin = 1;
    n.in[0] = x;
    n.shape = to;
    n.dtype = g->nodes[x].dtype;
    if (loc) n.loc = *loc;
    const char *err = run_shape_rule(g, &n);
    if (err) shape_error(g, err, loc);
    return graph_push(g, &n);
}

int ir_reshape(Graph *g, int x, Shape to, const SrcLoc *loc) {
    if (shape_eq(&g->nodes[x].shape, &to)) return x;
    return add_with_shape(g, OP_reshape, x, to, loc);
}

int ir_expand(Graph *g, int x, Shape to, const SrcLoc *loc) {
    if (shape_eq(&g->nodes[x].shape, &to)) return x;
    return add_with_shape(g, OP_expand, x, to, loc);
}

int ir_const(Graph *g, double value, int bpow, const SrcLoc *loc) {
    int id = graph_add_source(g, OP_const, shape_scalar(), DT_F32, NULL, loc);
    attr_set_f(&g->nodes[id], A_VALUE, value);
    attr_set_i(&g->nodes[id], A_BPOW, bpow);
    return id;
}

int ir_sum_to(Graph *g, int x, Shape to, const SrcLoc *loc) {
    Shape s = g->nodes[x].shape;
    int off = s.rank - to.rank;
    if (off < 0) mlc_die("sum_to: rank %d below target rank %d", s.rank, to.rank);
    /* Leading dimensions the target lacks are summed away; dimensions where the target
     * has 1 and x does not are summed and kept. */
    for (int i = 0; i < off; i++) x = ir_reduce(g, OP_sum, x, 0, 0, loc);
    for (int i = 0; i < to.rank; i++) {
        const Shape *cur = &g->nodes[x].shape;
        int is_b = (cur->bmask >> i) & 1, to_b = (to.bmask >> i) & 1;
        if (to.d[i] == 1 && !to_b && (cur->d[i] != 1 || is_b)) x = ir_reduce(g, OP_sum, x, i, 1, loc);
    }
    return ir_reshape(g, x, to, loc);
}

/* ---- shapes ---- */

Shape shape_make(int rank, const int64_t *d, uint8_t bmask) {
    Shape s = {0};
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.d[i] = d[i];
    s.bmask = bmask;
    return s;
}

Shape shape_scalar(void) {
    Shape s = {0};
    return s;
}

int64_t shape_numel(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->d[i];
    return n;
}

const char *shape_check(const Shape *s, DType dt, char *buf, size_t n) {
    char sh[160];     /* the shape's text, written only for an error: every node passes here */
    double total = 1; /* in double: up to six dimensions of 2^31 would overflow int64 */
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] < 1 || s->d[i] > IR_MAX_NUMEL) {
            shape_str(s, dt, sh, sizeof sh);
            snprintf(buf, n, "%s has dimension %d = %lld, outside 1..%lld", sh, i, (long long)s->d[i],
                     (long long)IR_MAX_NUMEL);
            return buf;
        }
        total *= (double)s->d[i];
    }
    if (total > (double)IR_MAX_NUMEL) {
        shape_str(s, dt, sh, sizeof sh);
        snprintf(buf, n, "%s has %.0f elements, more than the %lld a tensor can have", sh, total,
                 (long long)IR_MAX_NUMEL);
        return buf;
    }
    return NULL;
}

int shape_eq(const Shape *a, const Shape *b) {
    if (a->rank != b->rank || a->bmask != b->bmask) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

char *shape_str(const Shape *s, DType dt, char *buf, size_t n) { return shape_str_at(s, dt, 0, buf, n); }

char *shape_str_at(const Shape *s, DType dt, int batch, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s[", dt == DT_I32 ? "i32" : "f32");
    for (int i = 0; i < s->rank && k < n; i++) {
        int64_t scale = batch > 0 ? s->d[i] / batch : 1;
        if (((s->bmask >> i) & 1) && scale != 1)
            k += (size_t)snprintf(buf + k, n - k, "%sB*%lld", i ? ", " : "", (long long)scale);
        else if ((s->bmask >> i) & 1) k += (size_t)snprintf(buf + k, n - k, "%sB", i ? ", " : "");
        else k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int64_t shape_bscale(const Shape *s, int batch) {
    for (int i = 0; i < s->rank; i++)
        if ((s->bmask >> i) & 1) return s->d[i] / batch;
    return 0;
}

char *shape_dim_expr(const Shape *s, int i, int batch, char *buf, size_t n) {
    int64_t scale = s->d[i] / batch;
    if (((s->bmask >> i) & 1) && scale != 1) snprintf(buf, n, "(B*%lld)", (long long)scale);
    else if ((s->bmask >> i) & 1) snprintf(buf, n, "B");
    else snprintf(buf, n, "%lld", (long long)s->d[i]);
    return buf;
}

void shape_numel_affine(const Shape *s, int batch, int64_t *c, int64_t *b) {
    int64_t k = 1;
    int has_b = 0;
    for (int i = 0; i < s->rank; i++) {
        if ((s->bmask >> i) & 1) has_b++, k *= s->d[i] / batch;
        else k *= s->d[i];
    }
    if (has_b > 1) mlc_die("a shape with %d batch dimensions", has_b);
    *c = has_b ? 0 : k;
    *b = has_b ? k : 0;
}

char *shape_numel_expr(const Shape *s, int batch, char *buf, size_t n) {
    int64_t c, b;
    shape_numel_affine(s, batch, &c, &b);
    if (b == 1) snprintf(buf, n, "B");
    else if (b) snprintf(buf, n, "B*%lld", (long long)b);
    else snprintf(buf, n, "%lld", (long long)c);
    return buf;
}

/* ---- verifier ---- */

void ir_verify(const Graph *g, const char *after_pass) {
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if ((unsigned)n->op >= OP_COUNT) mlc_die("after %s: node %%%d has bad op %d", after_pass, id, n->op);
        const OpInfo *oi = op_of(n);
        if (n->nin != oi->arity)
            mlc_die("after %s: %%%d = %s has %d inputs, wants %d", after_pass, id, oi->name, n->nin, oi->arity);
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] < 0 || n->in[i] >= id)
                mlc_die("after %s: %%%d = %s input %d is %%%d (not before it)", after_pass, id, oi->name, i, n->in[i]);
        char why[192];
        if (shape_check(&n->shape, n->dtype, why, sizeof why))
            mlc_die("after %s: %%%d = %s %s", after_pass, id, oi->name, why);
        if (oi->kind == K_SOURCE) {
            for (int i = 0; i < n->shape.rank; i++)
                if (((n->shape.bmask >> i) & 1) &&
                    (n->op == OP_input ? n->shape.d[i] != g->batch : n->shape.d[i] % g->batch))
                    mlc_die("after %s: %%%d's batch dimension is %lld, the graph's batch is %d", after_pass, id,
                            (long long)n->shape.d[i], g->batch);
            if ((n->op == OP_param || n->op == OP_input || n->op == OP_state) && !n->name)
                mlc_die("after %s: %%%d = %s has no name", after_pass, id, oi->name);
            continue;
        }
        int nb = 0;
        for (int i = 0; i < n->shape.rank; i++) {
            nb += (n->shape.bmask >> i) & 1;
            if (((n->shape.bmask >> i) & 1) && n->shape.d[i] % g->batch)
                mlc_die("after %s: %%%d's batch dimension is %lld, not a multiple of the graph's batch %d", after_pass,
                        id, (long long)n->shape.d[i], g->batch);
        }
        if (nb > 1) mlc_die("after %s: %%%d has %d batch dimensions", after_pass, id, nb);
        /* Re-running the shape rule must reproduce the stored shape. */
        Node copy = *n;
        const char *err = oi->rules->shape ? oi->rules->shape((Graph *)g, &copy) : NULL;
        if (err) mlc_die("after %s: %%%d = %s: %s", after_pass, id, oi->name, err);
        if (!shape_eq(&copy.shape, &n->shape) || copy.dtype != n->dtype) {
            char a[96], b[96];
            mlc_die("after %s: %%%d = %s has shape %s, its rule says %s", after_pass, id, oi->name,
                    shape_str(&n->shape, n->dtype, a, sizeof a), shape_str(&copy.shape, copy.dtype, b, sizeof b));
        }
    }
    if (g->loss >= g->n) mlc_die("after %s: loss out of range", after_pass);
    for (int k = 0; k < g->nout; k++)
        if (g->outputs[k] < 0 || g->outputs[k] >= g->n) mlc_die("after %s: output %d out of range", after_pass, k);
    if (g->loss >= 0 && shape_numel(&g->nodes[g->loss].shape) != 1)
        mlc_die("after %s: the loss is not a scalar", after_pass);
}
