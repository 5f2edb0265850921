/* ops.c - the op table, assembled from ops.def, and the shape helpers its rules share. */
#include "ops.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define OP(name, arity, kind, rules) {#name, arity, kind, &rules},
#include "ops.def"
#undef OP
};

Op op_by_name(const char *name) {
    for (int i = 0; i < OP_COUNT; i++)
        if (!strcmp(op_info[i].name, name)) return (Op)i;
    return OP_COUNT;
}

const char *const op_math_names[] = {"exp", "log", "sqrt", "tanh",        "erf",        "pow",
                                     "sin", "cos", "fabs", "rng_uniform", "round_bf16", NULL};

/* fabs and round_bf16 (bit operations and a select: mlc_bf16.h) compile without a
 * branch; the other math functions run code that branches on the argument's range. */
static int branch_free(const char *name) { return !strcmp(name, "fabs") || !strcmp(name, "round_bf16"); }

/* Whether text t calls one of op_math_names (all, or only those that branch). */
static int text_calls(const char *t, int branching) {
    for (const char *p = t; p && *p; p++) {
        if (p > t && (p[-1] == '_' || isalnum((unsigned char)p[-1]))) continue;
        for (int i = 0; op_math_names[i]; i++) {
            size_t n = strlen(op_math_names[i]);
            if (!strncmp(p, op_math_names[i], n) && p[n] == '(' && !(branching && branch_free(op_math_names[i])))
                return 1;
        }
    }
    return 0;
}

int op_text_calls_math(const char *t) { return text_calls(t, 0); }
int op_text_calls_branching_math(const char *t) { return text_calls(t, 1); }

const char *shape_err(Graph *g, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return arena_strdup(g->arena, buf);
}

int64_t broadcast_index(const Shape *out, const Shape *in, int64_t k) {
    int off = out->rank - in->rank;
    int64_t src = 0, stride = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int64_t idx = k % out->d[i];
        k /= out->d[i];
        int si = i - off;
        if (si >= 0) {
            if (in->d[si] != 1) src += idx * stride;
            stride *= in->d[si];
        }
    }
    return src;
}

/* Not (len - span) / stride + 1 alone: C's division truncates toward zero, so a window
 * up to stride - 1 elements longer than the input would count as one that fits. */
int64_t window_count(int64_t len, int64_t span, int64_t stride) {
    if (stride < 1 || span > len) return 0;
    return (len - span) / stride + 1;
}

int axis_norm(int axis, int rank) {
    if (axis < 0) axis += rank;
    return axis >= 0 && axis < rank ? axis : -1;
}

/* The elementwise ops' scalar text and the loops fuse.c builds from it are written for
 * floats: fuse.c leaves an i32 node out of every group, and the lone loop the targets
 * then emit for it writes only element 0. So an i32 operand is refused here, by name,
 * instead of compiling to wrong code. */
const char *shape_need_f32(Graph *g, const Node *n) {
    for (int i = 0; i < n->nin; i++) {
        const Node *x = &g->nodes[n->in[i]];
        if (x->dtype == DT_F32) continue;
        char s[96];
        return shape_err(g, "%s needs an f32 tensor, found %s", op_of(n)->name,
                         shape_str_at(&x->shape, x->dtype, g->batch, s, sizeof s));
    }
    return NULL;
}

/* The unary elementwise ops (their only users): f32 in, the same shape out. */
const char *shape_rule_same(Graph *g, Node *n) {
    const char *err = shape_need_f32(g, n);
    if (err) return err;
    n->shape = g->nodes[n->in[0]].shape;
    n->dtype = g->nodes[n->in[0]].dtype;
    return NULL;
}

/* numpy broadcasting, right-aligned. A batch dimension B matches only B or a literal 1:
 * its size is not known until run time, so it may never broadcast against a literal. */
const char *shape_rule_broadcast(Graph *g, Node *n) {
    const Node *a = &g->nodes[n->in[0]], *b = &g->nodes[n->in[1]];
    if (a->dtype != DT_F32 || b->dtype != DT_F32)
        return shape_err(g, "%s needs f32 operands, found %s and %s", op_of(n)->name,
                         a->dtype == DT_I32 ? "i32" : "f32", b->dtype == DT_I32 ? "i32" : "f32");
    const Shape *sa = &a->shape, *sb = &b->shape;
    int r = sa->rank > sb->rank ? sa->rank : sb->rank;
    Shape out = {0};
    out.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - sa->rank), ib = i - (r - sb->rank);
        int64_t da = ia >= 0 ? sa->d[ia] : 1, db = ib >= 0 ? sb->d[ib] : 1;
        int ba = ia >= 0 && ((sa->bmask >> ia) & 1), bb = ib >= 0 && ((sb->bmask >> ib) & 1);
        if (ba && bb) {
            if (da != db) goto mismatch; /* B against B*k */
            out.d[i] = da, out.bmask |= (uint8_t)(1u << i);
        } else if (ba || bb) {
            int64_t other = ba ? db : da;
            if (other != 1) goto mismatch;
            out.d[i] = ba ? da : db, out.bmask |= (uint8_t)(1u << i);
        } else if (da == db || db == 1) {
            out.d[i] = da;
        } else if (da == 1) {
            out.d[i] = db;
        } else {
            goto mismatch;
        }
    }
    n->shape = out;
    n->dtype = DT_F32;
    return NULL;
mismatch:;
    char x[96], y[96];
    return shape_err(g, "%s: shapes %s and %s cannot be broadcast together", op_of(n)->name,
                     shape_str_at(sa, a->dtype, g->batch, x, sizeof x),
                     shape_str_at(sb, b->dtype, g->batch, y, sizeof y));
}

const char *shape_rule_reduce(Graph *g, Node *n) {
    const Node *x = &g->nodes[n->in[0]];
    int axis = axis_norm((int)attr_i(n, A_AXIS), x->shape.rank);
    if (axis < 0) {
        char s[96];
        return shape_err(g, "%s: axis %lld is out of range for %s", op_of(n)->name, (long long)attr_i(n, A_AXIS),
                         shape_str(&x->shape, x->dtype, s, sizeof s));
    }
    attr_set_i(n, A_AXIS, axis);
    Shape out = {0};
    for (int i = 0; i < x->shape.rank; i++) {
        int isb = (x->shape.bmask >> i) & 1;
        if (i == axis) {
            if (!attr_i(n, A_KEEPDIMS)) continue;
            out.d[out.rank++] = 1;
            continue;
        }
        if (isb) out.bmask |= (uint8_t)(1u << out.rank);
        out.d[out.rank++] = x->shape.d[i];
    }
    n->shape = out;
    n->dtype = DT_F32;
    return NULL;
}

int case_param(Graph *g, int rank, const int64_t *d, uint8_t bmask, InitKind init, double a, double b) {
    static const char *names[] = {"a", "b", "c", "d"};
    int k = 0;
    for (int i = 0; i < g->n; i++) k += g->nodes[i].op == OP_param;
    Shape sh = shape_make(rank, d, bmask);
    for (int i = 0; i < rank; i++)
        if ((bmask >> i) & 1) sh.d[i] = g->batch; /* a batch dimension is B, whatever the case wrote */
    int id = graph_add_source(g, OP_param, sh, DT_F32, names[k % 4], NULL);
    attr_set_all(&g->nodes[id], ATTRS(AI(A_INIT, init), AF(A_INIT_A, a), AF(A_INIT_B, b)));
    return id;
}

double op_flops(const Graph *g, const Node *n) {
    const OpInfo *oi = op_of(n);
    if (oi->rules->flops) return oi->rules->flops(g, n);
    switch (oi->kind) {
    case K_SOURCE:
    case K_SHAPE: return 0;
    case K_EWISE: return (double)shape_numel(&n->shape);
    case K_UPDATE: return 8.0 * (double)shape_numel(&n->shape); /* a few ops per element */
    default: return n->nin ? (double)shape_numel(&g->nodes[n->in[0]].shape) : 0;
    }
}
