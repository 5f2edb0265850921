/* lower.c - from the AST to the graph IR; see lower.h.
 *
 * A small compile-time evaluator: every expression evaluates to a Value, which is either
 * known now (a number, a string, a list, a boolean) or a tensor (a node of the graph).
 * Calls go to builtins (primitive ops and layer helpers, table `builtins` below) or to
 * user blocks, whose bodies are evaluated in a fresh scope at each call. */
#include "lower.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "names.h"
#include "ops.h"
#include "rng.h"

typedef enum VKind { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_LIST, V_TENSOR } VKind;

typedef struct Value {
    VKind k;
    long long i;   /* V_INT, V_BOOL */
    double f;      /* V_FLOAT */
    /* Numbers that depend on the batch size: the value is bcoef * B^bpow, known exactly
     * only at run time (i / f hold it at the compile-time B). bbad: it depends on B in a
     * way a constant cannot follow (B + 1, B * B). */
    int bpow;
    double bcoef;
    int bbad;
    const char *s; /* V_STR */
    struct Value *items;
    int n;    /* V_LIST */
    int node; /* V_TENSOR */
} Value;

typedef struct Binding {
    const char *name;
    Value v;
    struct Binding *next;
} Binding;

typedef struct Counter {
    const char *kind;
    int n;
    struct Counter *next;
} Counter;

typedef struct Scope {
    Binding *vars;
    const char *prefix; /* parameter-name prefix: "" or "stage1.block2." */
    Counter *counters;
    const SrcLoc *call_site; /* for block bodies: where the block was called */
    const char *block_name;
    struct Scope *top; /* a block body's fallback for names: the top-level scope; NULL there */
    int has_return;
    Value ret;
} Scope;

typedef struct Lower {
    Arena *a;
    const Program *prog;
    const ModelSpec *spec;
    Graph *g;
    int depth; /* block-call nesting, to stop runaway recursion */
    NameTable sources; /* parameter and input names -> their nodes */
    struct Scope *top; /* the program's top-level scope */
    /* The operands of the last cross_entropy lowered (-1: none), and those of the loss
     * when the loss is a cross_entropy call itself: what makes the model a classifier. */
    int ce_logits, ce_labels;
    int loss_logits, loss_labels;
} Lower;

static Value eval(Lower *L, Scope *s, const Expr *e);
static void exec_list(Lower *L, Scope *s, const StmtList *body);

/* ---- locations and errors ---- */

/* The location of an expression as seen from the current block call chain. */
static const SrcLoc *at(Lower *L, Scope *s, const SrcLoc *loc) {
    if (!s->call_site) return loc;
    SrcLoc *l = ARENA_NEW(L->a, SrcLoc);
    *l = *loc;
    l->called_from = s->call_site;
    l->block_name = s->block_name;
    return l;
}

static const char *kind_name(VKind k) {
    static const char *names[] = {"nothing", "an integer", "a number", "a boolean", "a string", "a list", "a tensor"};
    return names[k];
}

/* ---- values ---- */

static Value vint(long long i) { return (Value){.k = V_INT, .i = i}; }
static Value vfloat(double f) { return (Value){.k = V_FLOAT, .f = f}; }
static Value vbool(int b) { return (Value){.k = V_BOOL, .i = b != 0}; }
static Value vtensor(int node) { return (Value){.k = V_TENSOR, .node = node}; }

static int is_num(const Value *v) { return v->k == V_INT || v->k == V_FLOAT; }
static double num(const Value *v) { return v->k == V_INT ? (double)v->i : v->f; }

/* A number used as an operand of a tensor op becomes a scalar constant node; one that
 * depends on B stays a multiple of B or 1/B, evaluated when the step runs. */
static int as_tensor(Lower *L, Scope *s, Value v, const Expr *e, const char *what) {
    if (v.k == V_TENSOR) return v.node;
    if (is_num(&v) && v.bbad)
        diag_error_hint(at(L, s, &e->loc), "only products and quotients of B with numbers (2 * B, 1 / B) can be used",
                        "this number depends on the batch size B in a way the compiled code cannot follow");
    if (is_num(&v) && v.bpow) return ir_const(L->g, v.bcoef, v.bpow, at(L, s, &e->loc));
    if (is_num(&v)) return ir_const(L->g, num(&v), 0, at(L, s, &e->loc));
    diag_error(at(L, s, &e->loc), "%s must be a tensor or a number, found %s", what, kind_name(v.k));
}

/* ---- scopes ---- */

static void bind(Lower *L, Scope *s, const char *name, Value v) {
    for (Binding *b = s->vars; b; b = b->next)
        if (!strcmp(b->name, name)) {
            b->v = v;
            return;
        }
    Binding *b = ARENA_NEW(L->a, Binding);
    b->name = name;
    b->v = v;
    b->next = s->vars;
    s->vars = b;
}

/* A name in the scope, else at the top level: a block body sees its parameters and
 * locals first, then what the program had bound at the top when the block was called
 * (shared parameters, constants); assigning to such a name in a block makes a local. */
static Binding *lookup(Scope *s, const char *name) {
    for (; s; s = s->top) {
        for (Binding *b = s->vars; b; b = b->next)
            if (!strcmp(b->name, name)) return b;
    }
    return NULL;
}

/* Names for what a call creates: an explicit name="..." or the kind and a counter. */
static const char *scope_name(Lower *L, Scope *s, const char *kind, const char *explicit_name) {
    if (explicit_name) return arena_printf(L->a, "%s%s", s->prefix, explicit_name);
    Counter *c = s->counters;
    while (c && strcmp(c->kind, kind)) c = c->next;
    if (!c) {
        c = ARENA_NEW(L->a, Counter);
        c->kind = kind;
        c->next = s->counters;
        s->counters = c;
    }
    return arena_printf(L->a, "%s%s%d", s->prefix, kind, ++c->n);
}

/* ---- parameters ---- */

static int make_param(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, InitKind init,
                      double a, double b) {
    int prev = names_get(&L->sources, name);
    if (prev >= 0) {
        const Node *n = &L->g->nodes[prev];
        if (n->loc.file)
            diag_error_hint(at(L, s, loc), arena_printf(L->a, "'%s' was first defined at line %d", name, n->loc.line),
                            "'%s' is defined twice", name);
        diag_error(at(L, s, loc), "'%s' is defined twice", name);
    }
    int id = graph_add_source(L->g, OP_param, shape, DT_F32, name, at(L, s, loc));
    names_put(&L->sources, L->g->nodes[id].name, id);
    L->g->nodes[id].iattr[0] = init;
    L->g->nodes[id].fattr[0] = a;
    L->g->nodes[id].fattr[1] = b;
    return id;
}

/* ---- argument binding, shared by builtins and blocks ---- */

/* The hint for an unknown keyword: the near name if there is one, else every name there is
 * (`padding` is far from `pad` by spelling, and a list answers what a guess cannot). */
static const char *names_hint(Lower *L, const char *key, const char *const *names, int n) {
    const char *near = diag_nearest(key, names, n);
    if (near) return arena_printf(L->a, "did you mean '%s'?", near);
    if (n == 0) return "it takes no keyword arguments";
    const char *list = names[0];
    for (int i = 1; i < n; i++) list = arena_printf(L->a, "%s, %s", list, names[i]);
    return arena_printf(L->a, "the names are: %s", list);
}

enum { MAX_ARGS = 12 };

typedef struct Sig {
    const char *params[MAX_ARGS]; /* "x", "units", "bias=", ...: a trailing '=' marks optional */
} Sig;

typedef struct Args {
    Value v[MAX_ARGS];
    const Expr *e[MAX_ARGS]; /* the argument expressions (NULL when defaulted) */
    int given[MAX_ARGS];
} Args;

static int sig_count(const Sig *sig) {
    int n = 0;
    while (n < MAX_ARGS && sig->params[n]) n++;
    return n;
}

static const char *sig_name(Lower *L, const Sig *sig, int i) {
    const char *p = sig->params[i];
    size_t n = strlen(p);
    return p[n - 1] == '=' ? arena_strndup(L->a, p, n - 1) : p;
}

static void bind_args(Lower *L, Scope *s, const Expr *call, const Sig *sig, Args *out) {
    int np = sig_count(sig);
    memset(out, 0, sizeof *out);
    int pos = 0;
    for (int k = 0; k < call->nargs; k++) {
        const Arg *arg = &call->args[k];
        int slot = -1;
        if (!arg->keyword) {
            if (pos >= np)
                diag_error(at(L, s, &arg->value->loc), "%s takes at most %d argument%s, found %d", call->name, np,
                           np == 1 ? "" : "s", call->nargs);
            slot = pos++;
        } else {
            const char *names[MAX_ARGS];
            for (int i = 0; i < np; i++) {
                names[i] = sig_name(L, sig, i);
                if (!strcmp(names[i], arg->keyword)) slot = i;
            }
            if (slot < 0)
                diag_error_hint(at(L, s, &arg->kw_loc), names_hint(L, arg->keyword, names, np),
                                "%s has no argument named '%s'", call->name, arg->keyword);
            if (out->given[slot])
                diag_error(at(L, s, &arg->kw_loc), "%s: argument '%s' is given twice", call->name, arg->keyword);
        }
        out->v[slot] = eval(L, s, arg->value);
        out->e[slot] = arg->value;
        out->given[slot] = 1;
    }
    for (int i = 0; i < np; i++) {
        const char *p = sig->params[i];
        if (!out->given[i] && p[strlen(p) - 1] != '=')
            diag_error(at(L, s, &call->loc), "%s: missing argument '%s'", call->name, p);
    }
}

static const SrcLoc *arg_loc(Lower *L, Scope *s, const Expr *call, const Args *a, int i) {
    return at(L, s, a->e[i] ? &a->e[i]->loc : &call->loc);
}

static int arg_tensor(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name) {
    if (a->v[i].k == V_TENSOR) return a->v[i].node;
    diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a tensor, found %s", call->name, name,
               kind_name(a->v[i].k));
}

static long long arg_int(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, long long dflt,
                         long long lo) {
    if (!a->given[i]) return dflt;
    if (a->v[i].k != V_INT && a->v[i].k != V_BOOL)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be an integer, found %s", call->name, name,
                   kind_name(a->v[i].k));
    if (a->v[i].i < lo)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be at least %lld, found %lld", call->name, name,
                   lo, a->v[i].i);
    return a->v[i].i;
}

static double arg_num(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, double dflt) {
    if (!a->given[i]) return dflt;
    if (!is_num(&a->v[i]))
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a number, found %s", call->name, name,
                   kind_name(a->v[i].k));
    return num(&a->v[i]);
}

static const char *arg_str(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name) {
    if (!a->given[i]) return NULL;
    if (a->v[i].k != V_STR)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a string, found %s", call->name, name,
                   kind_name(a->v[i].k));
    return a->v[i].s;
}

/* ---- builtins: primitive ops and layer helpers ---- */

typedef Value (*BuiltinFn)(Lower *L, Scope *s, const Expr *call, Args *a);

#define LOCE at(L, s, &call->loc)
#define T(i, name) arg_tensor(L, s, call, a, i, name)

static Value b_unary(Lower *L, Scope *s, const Expr *call, Args *a) {
    return vtensor(ir_unary(L->g, op_by_name(call->name), T(0, "x"), LOCE));
}

/* leaky_relu(x, alpha = 0.01), elu(x, alpha = 1.0): unary ops with one float attribute. */
static Value b_unary_alpha(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double dflt = !strcmp(call->name, "elu") ? 1.0 : 0.01;
    double fa[4] = {arg_num(L, s, call, a, 1, "alpha", dflt), 0, 0, 0};
    return vtensor(graph_add(L->g, op_by_name(call->name), &x, 1, NULL, fa, LOCE));
}

/* maximum / minimum: either operand may be a number (maximum(x, 0)), as with + - * /. */
static Value b_binary(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = as_tensor(L, s, a->v[0], a->e[0], "maximum's and minimum's first argument");
    int y = as_tensor(L, s, a->v[1], a->e[1], "maximum's and minimum's second argument");
    return vtensor(ir_binary(L->g, op_by_name(call->name), x, y, LOCE));
}

/* pow(x, exponent): elementwise x^exponent, a number known at compile time. */
static Value b_pow(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double fa[4] = {arg_num(L, s, call, a, 1, "exponent", 1), 0, 0, 0};
    return vtensor(graph_add(L->g, OP_pow, &x, 1, NULL, fa, LOCE));
}

/* The activations built from primitive ops, PyTorch's definitions:
 *   clamp(x, lo, hi) = minimum(maximum(x, lo), hi)    hardtanh(x, min_val = -1, max_val = 1)
 *   relu6(x) = clamp(x, 0, 6)                        silu(x) = swish(x) = x * sigmoid(x)
 *   hardsigmoid(x) = clamp(x / 6 + 1/2, 0, 1)        hardswish(x) = x * hardsigmoid(x)
 * Each is one fused loop in the generated code, and its gradient comes from those of the
 * primitives (at a kink, the one maximum and minimum give: to their first operand). */
static int clamp_of(Lower *L, Scope *s, const Expr *call, int x, double lo, double hi) {
    if (lo > hi) diag_error(LOCE, "%s: the lower bound %g is above the upper bound %g", call->name, lo, hi);
    int y = ir_binary(L->g, OP_maximum, x, ir_const(L->g, lo, 0, LOCE), LOCE);
    return ir_binary(L->g, OP_minimum, y, ir_const(L->g, hi, 0, LOCE), LOCE);
}
static Value b_activation(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    const char *f = call->name;
    if (!strcmp(f, "clamp"))
        return vtensor(clamp_of(L, s, call, x, arg_num(L, s, call, a, 1, "min", 0), arg_num(L, s, call, a, 2, "max", 0)));
    if (!strcmp(f, "hardtanh"))
        return vtensor(clamp_of(L, s, call, x, arg_num(L, s, call, a, 1, "min_val", -1), arg_num(L, s, call, a, 2, "max_val", 1)));
    if (!strcmp(f, "relu6")) return vtensor(clamp_of(L, s, call, x, 0, 6));
    if (!strcmp(f, "silu") || !strcmp(f, "swish")) return vtensor(ir_binary(g, OP_mul, x, ir_unary(g, OP_sigmoid, x, LOCE), LOCE));
    /* x / 6, not x * (1/6): 6 is exact in float, so the gradient is PyTorch's to the bit */
    int hs = clamp_of(L, s, call, ir_binary(g, OP_add, ir_binary(g, OP_div, x, ir_const(g, 6, 0, LOCE), LOCE),
                                           ir_const(g, 0.5, 0, LOCE), LOCE), 0, 1);
    if (!strcmp(f, "hardsigmoid")) return vtensor(hs);
    return vtensor(ir_binary(g, OP_mul, x, hs, LOCE)); /* hardswish */
}

static Value b_matmul(Lower *L, Scope *s, const Expr *call, Args *a) {
    return vtensor(ir_matmul(L->g, T(0, "a"), T(1, "b"), 0, 0, LOCE));
}

static Value b_reduce(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    long long axis = arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int keep = (int)arg_int(L, s, call, a, 2, "keepdims", 0, 0);
    return vtensor(ir_reduce(L->g, op_by_name(call->name), x, (int)axis, keep, LOCE));
}

/* reshape(x, [B, 1, 28, 28]): B keeps the batch dimension; one -1 is inferred. */
static Value b_reshape(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Value *sh = &a->v[1];
    if (sh->k != V_LIST || sh->n < 1 || sh->n > IR_MAX_RANK)
        diag_error(arg_loc(L, s, call, a, 1), "reshape: the shape must be a list of 1 to %d dimensions",
                   IR_MAX_RANK);
    Shape to = {0};
    to.rank = sh->n;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < sh->n; i++) {
        const Value *d = &sh->items[i];
        if (d->k != V_INT || (d->i < 1 && d->i != -1))
            diag_error(arg_loc(L, s, call, a, 1), "reshape: dimension %d must be a positive integer, B or -1", i);
        if (d->i == -1) {
            if (infer >= 0) diag_error(arg_loc(L, s, call, a, 1), "reshape: only one dimension can be -1");
            infer = i;
            continue;
        }
        if (d->i > IR_MAX_NUMEL || known > IR_MAX_NUMEL / d->i)
            diag_error(arg_loc(L, s, call, a, 1), "reshape: the shape has more than the %lld elements a tensor can have",
                       (long long)IR_MAX_NUMEL);
        to.d[i] = d->i;
        if (d->bpow == 1 && d->bcoef == 1) to.bmask |= (uint8_t)(1u << i);
        known *= d->i;
    }
    if (infer >= 0) {
        int64_t total = shape_numel(&L->g->nodes[x].shape);
        if (known == 0 || total % known)
            diag_error(arg_loc(L, s, call, a, 1), "reshape: cannot infer the -1 dimension from %lld elements",
                       (long long)total);
        to.d[infer] = total / known;
    }
    return vtensor(ir_reshape(L->g, x, to, LOCE));
}

/* flatten(x): [B, d1, d2, ...] -> [B, d1*d2*...] */
static Value b_flatten(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Shape sh = L->g->nodes[x].shape;
    if (sh.rank < 1) diag_error(LOCE, "flatten needs a tensor of rank 1 or more, found a scalar");
    Shape to = {0};
    to.rank = 2;
    to.d[0] = sh.d[0];
    to.bmask = sh.bmask & 1;
    to.d[1] = 1;
    for (int i = 1; i < sh.rank; i++) to.d[1] *= sh.d[i];
    return vtensor(ir_reshape(L->g, x, to, LOCE));
}

static Value b_one_hot(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "labels");
    int64_t ia[4] = {arg_int(L, s, call, a, 1, "classes", 0, 1), 0, 0, 0};
    return vtensor(graph_add(L->g, OP_one_hot, &x, 1, ia, NULL, LOCE));
}

/* softmax(x, axis) = exp(x - logsumexp(x, axis)) */
static Value b_softmax(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int axis = (int)arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int lse = ir_reduce(L->g, OP_logsumexp, x, axis, 1, LOCE);
    return vtensor(ir_unary(L->g, OP_exp, ir_binary(L->g, OP_sub, x, lse, LOCE), LOCE));
}

/* log_softmax(x, axis) = x - logsumexp(x, axis) */
static Value b_log_softmax(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int axis = (int)arg_int(L, s, call, a, 1, "axis", -1, -IR_MAX_RANK);
    int lse = ir_reduce(L->g, OP_logsumexp, x, axis, 1, LOCE);
    return vtensor(ir_binary(L->g, OP_sub, x, lse, LOCE));
}

/* The mean of all elements of x, as a scalar. */
static int mean_all(Graph *g, int x, const SrcLoc *loc) {
    while (g->nodes[x].shape.rank > 0) x = ir_reduce(g, OP_mean, x, 0, 0, loc);
    return x;
}

/* mse(prediction, target) = mean((prediction - target)^2) over all elements. */
static Value b_mse(Lower *L, Scope *s, const Expr *call, Args *a) {
    int d = ir_binary(L->g, OP_sub, T(0, "prediction"), T(1, "target"), LOCE);
    return vtensor(mean_all(L->g, ir_binary(L->g, OP_mul, d, d, LOCE), LOCE));
}

/* cross_entropy(logits [B, C], labels i32[B], label_smoothing = 0): mean over the batch of
 * logsumexp(logits) - sum_k q_k logits_k, with q = (1 - eps) one_hot + eps / C; stable for
 * any logit size. */
static Value b_cross_entropy(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "logits"), y = T(1, "labels");
    L->ce_logits = x, L->ce_labels = y;
    double eps = arg_num(L, s, call, a, 2, "label_smoothing", 0.0);
    if (eps < 0 || eps >= 1) diag_error(arg_loc(L, s, call, a, 2), "cross_entropy: label_smoothing must be in [0, 1)");
    Graph *g = L->g;
    const Node *xn = &g->nodes[x], *yn = &g->nodes[y];
    char s1[96], s2[96];
    if (xn->shape.rank != 2 || yn->shape.rank != 1 || yn->dtype != DT_I32 || xn->dtype != DT_F32 ||
        xn->shape.d[0] != yn->shape.d[0] || (xn->shape.bmask & 1) != (yn->shape.bmask & 1))
        diag_error(LOCE, "cross_entropy needs logits f32[N, C] and labels i32[N], found %s and %s",
                   shape_str(&xn->shape, xn->dtype, s1, sizeof s1), shape_str(&yn->shape, yn->dtype, s2, sizeof s2));
    const SrcLoc *loc = LOCE;
    int64_t ia[4] = {g->nodes[x].shape.d[1], 0, 0, 0};
    int oh = graph_add(g, OP_one_hot, &y, 1, ia, NULL, loc);
    if (eps > 0) {
        double c = (double)g->nodes[x].shape.d[1];
        oh = ir_binary(g, OP_add, ir_binary(g, OP_mul, oh, ir_const(g, 1 - eps, 0, loc), loc), ir_const(g, eps / c, 0, loc), loc);
    }
    int lse = ir_reduce(g, OP_logsumexp, x, 1, 0, loc);
    int picked = ir_reduce(g, OP_sum, ir_binary(g, OP_mul, x, oh, loc), 1, 0, loc);
    return vtensor(ir_reduce(g, OP_mean, ir_binary(g, OP_sub, lse, picked, loc), 0, 0, loc));
}

/* dense(x [B, in], units): x @ weight [in, units] + bias [units]. He-uniform weights
 * (suited to the ReLU layers it usually feeds), zero bias. */
static Value b_dense(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int64_t units = arg_int(L, s, call, a, 1, "units", 0, 1);
    int bias = (int)arg_int(L, s, call, a, 2, "bias", 1, 0);
    const char *scope = scope_name(L, s, "dense", arg_str(L, s, call, a, 3, "name"));
    Graph *g = L->g;
    const Shape *xs = &g->nodes[x].shape;
    char sh[96];
    if (xs->rank != 2 || (xs->bmask & 2))
        diag_error(LOCE, "dense needs an input of shape [N, features], found %s; use flatten(x) first",
                   shape_str(xs, g->nodes[x].dtype, sh, sizeof sh));
    int64_t fan_in = xs->d[1];
    int64_t wd[2] = {fan_in, units};
    double lim = sqrt(6.0 / (double)fan_in);
    int w = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(2, wd, 0), INIT_UNIFORM,
                       -lim, lim);
    int y = ir_matmul(g, x, w, 0, 0, LOCE);
    if (bias) {
        int b = make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), shape_make(1, &units, 0), INIT_ZERO,
                           0, 0);
        y = ir_binary(g, OP_add, y, b, LOCE);
    }
    return vtensor(y);
}

/* An int, or a list [h, w] of two: kernel sizes, strides, paddings. */
static void arg_pair(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, int64_t dflt,
                     int64_t lo, int64_t out[2]) {
    out[0] = out[1] = dflt;
    if (!a->given[i]) return;
    const Value *v = &a->v[i];
    if (v->k == V_INT && v->i >= lo && v->i < 65536) {
        out[0] = out[1] = v->i;
        return;
    }
    if (v->k == V_LIST && v->n == 2 && v->items[0].k == V_INT && v->items[1].k == V_INT && v->items[0].i >= lo &&
        v->items[1].i >= lo && v->items[0].i < 65536 && v->items[1].i < 65536) {
        out[0] = v->items[0].i, out[1] = v->items[1].i;
        return;
    }
    diag_error(arg_loc(L, s, call, a, i), "%s: '%s' must be an integer from %lld to 65535, or a list [h, w] of two",
               call->name, name, (long long)lo);
}

static int64_t pack(const int64_t p[2]) { return p[0] | p[1] << 16; }

/* conv2d(x [B, C, H, W], channels, kernel, stride = 1, pad = 0, dilation = 1, groups = 1,
 * bias = true): creates <name>.weight [channels, C/groups, kh, kw] (He-uniform) and
 * <name>.bias [channels] (zeros). */
static Value b_conv2d(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    const Shape *xs = &g->nodes[x].shape;
    char sh[96];
    if (xs->rank != 4 || xs->bmask != 1)
        diag_error(LOCE, "conv2d needs an input of shape [B, C, H, W], found %s",
                   shape_str(xs, g->nodes[x].dtype, sh, sizeof sh));
    int64_t C = xs->d[1];
    int64_t O = arg_int(L, s, call, a, 1, "channels", 0, 1);
    int64_t k[2], st[2], pd[2], dl[2];
    arg_pair(L, s, call, a, 2, "kernel", 1, 1, k);
    arg_pair(L, s, call, a, 3, "stride", 1, 1, st);
    arg_pair(L, s, call, a, 4, "pad", 0, 0, pd);
    arg_pair(L, s, call, a, 5, "dilation", 1, 1, dl);
    int64_t G = arg_int(L, s, call, a, 6, "groups", 1, 1);
    int bias = (int)arg_int(L, s, call, a, 7, "bias", 1, 0);
    if (C % G || O % G)
        diag_error(LOCE, "conv2d: %lld input and %lld output channels are not divisible by groups = %lld",
                   (long long)C, (long long)O, (long long)G);
    const char *scope = scope_name(L, s, "conv", arg_str(L, s, call, a, 8, "name"));
    int64_t wd[4] = {O, C / G, k[0], k[1]};
    double lim = sqrt(6.0 / (double)(C / G * k[0] * k[1]));
    int w = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), shape_make(4, wd, 0), INIT_UNIFORM,
                       -lim, lim);
    int in[2] = {x, w};
    int64_t ia[4] = {pack(st), pack(pd), pack(dl), G};
    int y = graph_add(g, OP_conv2d, in, 2, ia, NULL, LOCE);
    if (bias) {
        int b = make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), shape_make(1, &O, 0), INIT_ZERO, 0, 0);
        int64_t bd[3] = {O, 1, 1};
        y = ir_binary(g, OP_add, y, ir_reshape(g, b, shape_make(3, bd, 0), LOCE), LOCE);
    }
    return vtensor(y);
}

/* max_pool2d / avg_pool2d(x, kernel, stride = kernel, pad = 0) */
static Value b_pool(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int64_t k[2], st[2], pd[2];
    arg_pair(L, s, call, a, 1, "kernel", 1, 1, k);
    arg_pair(L, s, call, a, 2, "stride", 0, 1, st);
    if (!a->given[2]) st[0] = k[0], st[1] = k[1];
    arg_pair(L, s, call, a, 3, "pad", 0, 0, pd);
    int64_t ia[4] = {pack(k), pack(st), pack(pd), 0};
    return vtensor(graph_add(L->g, op_by_name(call->name), &x, 1, ia, NULL, LOCE));
}

/* global_avg_pool(x [B, C, H, W]) -> [B, C]: the mean of each channel */
static Value b_global_avg_pool(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    Graph *g = L->g;
    Shape xs = g->nodes[x].shape;
    char sh[96];
    if (xs.rank != 4 || xs.bmask != 1)
        diag_error(LOCE, "global_avg_pool needs an input of shape [B, C, H, W], found %s",
                   shape_str(&xs, g->nodes[x].dtype, sh, sizeof sh));
    int64_t d[3] = {xs.d[0], xs.d[1], xs.d[2] * xs.d[3]};
    int r = ir_reshape(g, x, shape_make(3, d, 1), LOCE);
    return vtensor(ir_reduce(g, OP_mean, r, 2, 0, LOCE));
}

/* transpose(x, axes = reversed) */
static Value b_transpose(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int r = L->g->nodes[x].shape.rank;
    int64_t perm = 0;
    if (!a->given[1]) {
        for (int i = 0; i < r; i++) perm |= (int64_t)(r - 1 - i) << (3 * i);
    } else {
        const Value *v = &a->v[1];
        if (v->k != V_LIST || v->n != r)
            diag_error(arg_loc(L, s, call, a, 1), "transpose: 'axes' must list all %d axes", r);
        for (int i = 0; i < r; i++) {
            if (v->items[i].k != V_INT || axis_norm((int)v->items[i].i, r) < 0)
                diag_error(arg_loc(L, s, call, a, 1), "transpose: axis %d is not an axis of a rank-%d tensor", i, r);
            perm |= (int64_t)axis_norm((int)v->items[i].i, r) << (3 * i);
        }
    }
    int64_t ia[4] = {perm, 0, 0, 0};
    return vtensor(graph_add(L->g, OP_transpose, &x, 1, ia, NULL, LOCE));
}

/* slice(x, axis, start, end) */
static Value b_slice(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    int64_t ia[4] = {arg_int(L, s, call, a, 1, "axis", 0, -IR_MAX_RANK), arg_int(L, s, call, a, 2, "start", 0, 0),
                     arg_int(L, s, call, a, 3, "end", 0, 1), 0};
    return vtensor(graph_add(L->g, OP_slice, &x, 1, ia, NULL, LOCE));
}

/* pad(x, [[before, after], ...]): zeros, one pair per leading axis */
static Value b_pad(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    const Value *v = &a->v[1];
    int r = L->g->nodes[x].shape.rank;
    if (v->k != V_LIST || v->n > r)
        diag_error(arg_loc(L, s, call, a, 1), "pad: 'widths' must be a list of at most %d [before, after] pairs", r);
    for (int i = 0; i < v->n; i++) {
        const Value *p = &v->items[i];
        if (p->k != V_LIST || p->n != 2 || p->items[0].k != V_INT || p->items[1].k != V_INT || p->items[0].i < 0 ||
            p->items[1].i < 0)
            diag_error(arg_loc(L, s, call, a, 1), "pad: width %d must be a pair [before, after] of integers >= 0", i);
        if (!p->items[0].i && !p->items[1].i) continue;
        int64_t ia[4] = {i, p->items[0].i, p->items[1].i, 0};
        x = graph_add(L->g, OP_pad, &x, 1, ia, NULL, LOCE);
    }
    return vtensor(x);
}

/* concat([a, b, ...], axis) */
static Value b_concat(Lower *L, Scope *s, const Expr *call, Args *a) {
    const Value *v = &a->v[0];
    if (v->k != V_LIST || v->n < 1)
        diag_error(arg_loc(L, s, call, a, 0), "concat: 'tensors' must be a list of tensors");
    int64_t ia[4] = {arg_int(L, s, call, a, 1, "axis", 0, -IR_MAX_RANK), 0, 0, 0};
    for (int i = 0; i < v->n; i++)
        if (v->items[i].k != V_TENSOR)
            diag_error(arg_loc(L, s, call, a, 0), "concat: item %d is %s, not a tensor", i, kind_name(v->items[i].k));
    int y = v->items[0].node;
    for (int i = 1; i < v->n; i++) {
        int in[2] = {y, v->items[i].node};
        y = graph_add(L->g, OP_concat, in, 2, ia, NULL, LOCE);
    }
    return vtensor(y);
}

static int make_state(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, double value) {
    int id = graph_add_source(L->g, OP_state, shape, DT_F32, name, at(L, s, loc));
    L->g->nodes[id].iattr[0] = value != 0 ? INIT_CONST : INIT_ZERO;
    L->g->nodes[id].fattr[0] = value;
    return id;
}

/* batch_norm(x [B, C, ...], momentum = 0.1, eps = 1e-5): per channel, over the batch and
 * the spatial positions. Training normalises with the batch's statistics and updates the
 * running mean and (unbiased) variance, state tensors <name>.running_mean / running_var;
 * evaluation uses the running statistics. Scale <name>.weight (ones) and shift
 * <name>.bias (zeros) are trained. */
static Value b_batch_norm(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double mom = arg_num(L, s, call, a, 1, "momentum", 0.1), eps = arg_num(L, s, call, a, 2, "eps", 1e-5);
    if (mom < 0 || mom > 1 || eps <= 0) diag_error(LOCE, "batch_norm: momentum must be in [0, 1] and eps positive");
    Graph *g = L->g;
    const SrcLoc *loc = LOCE;
    Shape xs = g->nodes[x].shape;
    char sh[96];
    if (xs.rank < 2 || !(xs.bmask & 1))
        diag_error(loc, "batch_norm needs an input [B, C, ...], found %s", shape_str(&xs, g->nodes[x].dtype, sh, sizeof sh));
    int64_t C = xs.d[1], HW = 1;
    for (int i = 2; i < xs.rank; i++) HW *= xs.d[i];
    const char *scope = scope_name(L, s, "bn", arg_str(L, s, call, a, 3, "name"));
    int64_t d3[3] = {xs.d[0], C, HW}, c3[3] = {1, C, 1};
    Shape chan = shape_make(1, &C, 0), bcast = shape_make(3, c3, 0);
    int xr = ir_reshape(g, x, shape_make(3, d3, 1), loc);
    int gamma = make_param(L, s, &call->loc, arena_printf(L->a, "%s.weight", scope), chan, INIT_CONST, 1, 0);
    int beta = make_param(L, s, &call->loc, arena_printf(L->a, "%s.bias", scope), chan, INIT_ZERO, 0, 0);
    int rmean = make_state(L, s, &call->loc, arena_printf(L->a, "%s.running_mean", scope), chan, 0);
    int rvar = make_state(L, s, &call->loc, arena_printf(L->a, "%s.running_var", scope), chan, 1);
    double fe[4] = {eps, 0, 0, 0};
    if (g->mode == MODE_TRAIN) {
        /* Fused: statistics in one op, normalise-scale-shift in another (ops_norm.c). */
        int st = graph_add(g, OP_bn_stats, &xr, 1, NULL, NULL, loc);
        int in[4] = {xr, st, gamma, beta};
        int y = graph_add(g, OP_bn_apply, in, 4, NULL, fe, loc);
        double fa[4] = {mom, 0, 0, 0};
        for (int r = 0; r < 2; r++) {
            int64_t sl[4] = {0, r, r + 1, 0}, ia[4] = {HW, r, 0, 0}; /* the variance: unbiased */
            int row = ir_reshape(g, graph_add(g, OP_slice, &st, 1, sl, NULL, loc), chan, loc);
            int upd[2] = {r ? rvar : rmean, row};
            graph_add(g, OP_ema_update, upd, 2, ia, fa, loc);
        }
        return vtensor(ir_reshape(g, y, xs, loc));
    }
    /* Evaluation: the running statistics, a few small ops on [C]. */
    int mu = ir_reshape(g, rmean, bcast, loc), var = ir_reshape(g, rvar, bcast, loc);
    int inv = ir_unary(g, OP_rsqrt, ir_binary(g, OP_add, var, ir_const(g, eps, 0, loc), loc), loc);
    int scale = ir_binary(g, OP_mul, inv, ir_reshape(g, gamma, bcast, loc), loc);
    int y = ir_binary(g, OP_mul, ir_binary(g, OP_sub, xr, mu, loc), scale, loc);
    y = ir_binary(g, OP_add, y, ir_reshape(g, beta, bcast, loc), loc);
    (void)fe;
    return vtensor(ir_reshape(g, y, xs, loc));
}

/* dropout(x, p = 0.5): in training, zeroes each element with probability p and scales
 * the rest by 1/(1-p); in evaluation, the identity. */
static Value b_dropout(Lower *L, Scope *s, const Expr *call, Args *a) {
    int x = T(0, "x");
    double p = arg_num(L, s, call, a, 1, "p", 0.5);
    if (p < 0 || p >= 1) diag_error(arg_loc(L, s, call, a, 1), "dropout: p must be in [0, 1), found %g", p);
    /* Each dropout draws from its own stream, named like a parameter would be. */
    const char *scope = scope_name(L, s, "dropout", NULL);
    if (L->g->mode != MODE_TRAIN || p == 0) return vtensor(x);
    double fa[4] = {p, 0, 0, 0};
    int64_t ia[4] = {(int64_t)(mlc_hash_name(scope) & 0x7fffffffffffffffULL), 0, 0, 0};
    int mask = graph_add(L->g, OP_dropout_mask, &x, 1, ia, fa, LOCE);
    return vtensor(ir_binary(L->g, OP_mul, x, mask, LOCE));
}

/* range(n) or range(start, stop, step = 1): the integers from start up to (not including)
 * stop, as in Python; what a `for` loop usually runs over. At most MAX_RANGE of them:
 * every iteration expands its body again. */
enum { MAX_RANGE = 65536 };
static Value b_range(Lower *L, Scope *s, const Expr *call, Args *a) {
    long long start = arg_int(L, s, call, a, 0, "start", 0, LLONG_MIN), stop = start, step = 1;
    if (a->given[1]) stop = arg_int(L, s, call, a, 1, "stop", 0, LLONG_MIN);
    else start = 0;
    if (a->given[2]) step = arg_int(L, s, call, a, 2, "step", 1, LLONG_MIN);
    if (step == 0) diag_error(arg_loc(L, s, call, a, 2), "range: step must not be 0");
    /* the count in double first: stop - start may not fit in 64 bits */
    double count = ((double)stop - (double)start) / (double)step;
    if (count > MAX_RANGE)
        diag_error(LOCE, "range: %.0f items, more than the %d a loop may have", ceil(count), MAX_RANGE);
    Value v = {.k = V_LIST};
    v.items = ARENA_ARRAY(L->a, Value, count > 0 ? (size_t)ceil(count) : 1);
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) {
        v.items[v.n++] = vint(i);
        if ((step > 0 && i > LLONG_MAX - step) || (step < 0 && i < LLONG_MIN - step)) break; /* the last one */
    }
    return v;
}

static const struct Builtin {
    const char *name;
    BuiltinFn fn;
    Sig sig;
} builtins[] = {
    {"relu", b_unary, {{"x"}}},
    {"exp", b_unary, {{"x"}}},
    {"log", b_unary, {{"x"}}},
    {"sqrt", b_unary, {{"x"}}},
    {"rsqrt", b_unary, {{"x"}}},
    {"tanh", b_unary, {{"x"}}},
    {"sigmoid", b_unary, {{"x"}}},
    {"gelu", b_unary, {{"x"}}},
    {"abs", b_unary, {{"x"}}},
    {"sin", b_unary, {{"x"}}},
    {"cos", b_unary, {{"x"}}},
    {"softplus", b_unary, {{"x"}}},
    {"pow", b_pow, {{"x", "exponent"}}},
    {"clamp", b_activation, {{"x", "min", "max"}}},
    {"hardtanh", b_activation, {{"x", "min_val=", "max_val="}}},
    {"relu6", b_activation, {{"x"}}},
    {"silu", b_activation, {{"x"}}},
    {"swish", b_activation, {{"x"}}},
    {"hardsigmoid", b_activation, {{"x"}}},
    {"hardswish", b_activation, {{"x"}}},
    {"leaky_relu", b_unary_alpha, {{"x", "alpha="}}},
    {"elu", b_unary_alpha, {{"x", "alpha="}}},
    {"maximum", b_binary, {{"a", "b"}}},
    {"minimum", b_binary, {{"a", "b"}}},
    {"log_softmax", b_log_softmax, {{"x", "axis="}}},
    {"mse", b_mse, {{"prediction", "target"}}},
    {"matmul", b_matmul, {{"a", "b"}}},
    {"sum", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"mean", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"max", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"logsumexp", b_reduce, {{"x", "axis=", "keepdims="}}},
    {"reshape", b_reshape, {{"x", "shape"}}},
    {"flatten", b_flatten, {{"x"}}},
    {"one_hot", b_one_hot, {{"labels", "classes"}}},
    {"softmax", b_softmax, {{"x", "axis="}}},
    {"cross_entropy", b_cross_entropy, {{"logits", "labels", "label_smoothing="}}},
    {"dense", b_dense, {{"x", "units", "bias=", "name="}}},
    {"conv2d", b_conv2d, {{"x", "channels", "kernel", "stride=", "pad=", "dilation=", "groups=", "bias=", "name="}}},
    {"max_pool2d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"avg_pool2d", b_pool, {{"x", "kernel", "stride=", "pad="}}},
    {"global_avg_pool", b_global_avg_pool, {{"x"}}},
    {"transpose", b_transpose, {{"x", "axes="}}},
    {"slice", b_slice, {{"x", "axis", "start", "end"}}},
    {"pad", b_pad, {{"x", "widths"}}},
    {"concat", b_concat, {{"tensors", "axis"}}},
    {"batch_norm", b_batch_norm, {{"x", "momentum=", "eps=", "name="}}},
    {"dropout", b_dropout, {{"x", "p="}}},
    {"range", b_range, {{"start", "stop=", "step="}}},
};
enum { NBUILTINS = sizeof builtins / sizeof builtins[0] };

/* ---- calls ---- */

static const Stmt *find_block(Lower *L, const char *name) {
    for (int i = 0; i < L->prog->stmts.n; i++) {
        const Stmt *st = L->prog->stmts.items[i];
        if (st->kind == ST_BLOCK && !strcmp(st->name, name)) return st;
    }
    return NULL;
}

static _Noreturn void unknown_callee(Lower *L, Scope *s, const Expr *call) {
    const char *cands[NBUILTINS + 64];
    int n = 0;
    for (int i = 0; i < NBUILTINS; i++) cands[n++] = builtins[i].name;
    for (int i = 0; i < L->prog->stmts.n && n < NBUILTINS + 64; i++)
        if (L->prog->stmts.items[i]->kind == ST_BLOCK) cands[n++] = L->prog->stmts.items[i]->name;
    const char *near = diag_nearest(call->name, cands, n);
    diag_error_hint(at(L, s, &call->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                    "unknown op or block '%s'", call->name);
}

static Value call_block(Lower *L, Scope *s, const Expr *call, const Stmt *blk) {
    if (L->depth >= 64) diag_error(at(L, s, &call->loc), "blocks call each other more than 64 deep (recursion?)");
    /* Parameters, plus the reserved `name` that names the call's scope. */
    Scope inner = {.top = L->top};
    const char *explicit_name = NULL;
    int np = blk->nparams;
    char *given = arena_alloc(L->a, (size_t)np + 1);
    int pos = 0;
    for (int k = 0; k < call->nargs; k++) {
        const Arg *arg = &call->args[k];
        int slot = -1;
        if (arg->keyword && !strcmp(arg->keyword, "name")) {
            Value v = eval(L, s, arg->value);
            if (v.k != V_STR)
                diag_error(at(L, s, &arg->value->loc), "%s: argument 'name' must be a string, found %s", call->name,
                           kind_name(v.k));
            explicit_name = v.s;
            continue;
        }
        if (!arg->keyword) {
            if (pos >= np)
                diag_error(at(L, s, &arg->value->loc), "block %s takes %d argument%s, found more", blk->name, np,
                           np == 1 ? "" : "s");
            slot = pos++;
        } else {
            const char *names[64];
            for (int i = 0; i < np && i < 64; i++) {
                names[i] = blk->params[i].name;
                if (!strcmp(names[i], arg->keyword)) slot = i;
            }
            if (slot < 0)
                diag_error_hint(at(L, s, &arg->kw_loc), names_hint(L, arg->keyword, names, np < 64 ? np : 64),
                                "block %s has no parameter named '%s'", blk->name, arg->keyword);
            if (given[slot])
                diag_error(at(L, s, &arg->kw_loc), "%s: argument '%s' is given twice", call->name, arg->keyword);
        }
        given[slot] = 1;
        bind(L, &inner, blk->params[slot].name, eval(L, s, arg->value));
    }
    SrcLoc *site = ARENA_NEW(L->a, SrcLoc);
    *site = *at(L, s, &call->loc);
    inner.call_site = site;
    inner.block_name = blk->name;
    for (int i = 0; i < np; i++) {
        if (given[i]) continue;
        if (!blk->params[i].default_value)
            diag_error(at(L, s, &call->loc), "block %s: missing argument '%s'", blk->name, blk->params[i].name);
        bind(L, &inner, blk->params[i].name, eval(L, &inner, blk->params[i].default_value));
    }
    inner.prefix = arena_printf(L->a, "%s.", scope_name(L, s, blk->name, explicit_name));
    L->depth++;
    exec_list(L, &inner, &blk->body);
    L->depth--;
    if (!inner.has_return) diag_error(&blk->loc, "block %s ends without a return", blk->name);
    return inner.ret;
}

static Value call(Lower *L, Scope *s, const Expr *e) {
    for (int i = 0; i < NBUILTINS; i++)
        if (!strcmp(builtins[i].name, e->name)) {
            Args args;
            bind_args(L, s, e, &builtins[i].sig, &args);
            return builtins[i].fn(L, s, e, &args);
        }
    const Stmt *blk = find_block(L, e->name);
    if (blk) return call_block(L, s, e, blk);
    unknown_callee(L, s, e);
}

/* ---- expressions ---- */

/* Floor division and its remainder on integers, as in Python: -7 // 2 = -4, -7 % 2 = 1
 * (the remainder takes the divisor's sign). r != 0 and not (LLONG_MIN, -1). */
static long long floor_div(long long l, long long r) {
    long long q = l / r;
    return (l % r != 0 && (l < 0) != (r < 0)) ? q - 1 : q;
}

/* + - * / // % on two compile-time numbers (V_NONE for other operators). Integer results
 * that do not fit 64 bits are errors at the operator, not wrapped values that later
 * become sizes; a float result that is not finite is one too. */
static Value arith(Lower *L, Scope *s, const Expr *e, const Value *l, const Value *r) {
    int ints = l->k == V_INT && r->k == V_INT;
    double x = num(l), y = num(r);
    long long v = 0;
    int wrapped = 0, op = e->op;
    if (op != '+' && op != '-' && op != '*' && op != '/' && op != OP_FLOORDIV && op != OP_MOD)
        return (Value){.k = V_NONE};
    if ((op == OP_FLOORDIV || op == OP_MOD) && !ints)
        diag_error_hint(at(L, s, &e->loc), "'/' divides numbers", "'%s' takes two integers, found %s and %s",
                        binop_text(op), kind_name(l->k), kind_name(r->k));
    if (op != '+' && op != '-' && op != '*' && y == 0)
        diag_error(at(L, s, &e->loc), op == OP_MOD ? "modulo by zero" : "division by zero");
    if (ints) {
        /* LLONG_MIN / -1 is the one quotient that does not fit */
        int min_by_minus1 = l->i == LLONG_MIN && r->i == -1;
        switch (op) {
        case '+': wrapped = __builtin_add_overflow(l->i, r->i, &v); break;
        case '-': wrapped = __builtin_sub_overflow(l->i, r->i, &v); break;
        case '*': wrapped = __builtin_mul_overflow(l->i, r->i, &v); break;
        case OP_FLOORDIV: wrapped = min_by_minus1, v = wrapped ? 0 : floor_div(l->i, r->i); break;
        case OP_MOD: v = min_by_minus1 ? 0 : l->i - floor_div(l->i, r->i) * r->i; break;
        default: /* '/' */
            if (min_by_minus1) wrapped = 1;
            else if (l->i % r->i == 0) v = l->i / r->i;
            else ints = 0; /* an inexact quotient is a number, as in 7 / 2 = 3.5 */
            break;
        }
        if (wrapped)
            diag_error_hint(at(L, s, &e->loc), "sizes and integer arguments must fit in 64 bits",
                            "integer overflow: %lld %s %lld does not fit in 64 bits", l->i, binop_text(op), r->i);
        if (ints) return vint(v);
    }
    double f = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
    if (!isfinite(f))
        diag_error(at(L, s, &e->loc), "the result of %g %s %g is not a finite number", x, binop_text(op), y);
    return vfloat(f);
}

/* Follows the batch size through arithmetic: B * 2 is 2 * B^1, 1 / B is 1 * B^-1. */
static Value track_batch(int op, const Value *l, const Value *r, Value v) {
    if (!l->bpow && !r->bpow && !l->bbad && !r->bbad) return v;
    double lc = l->bpow ? l->bcoef : num(l), rc = r->bpow ? r->bcoef : num(r);
    v.bbad = l->bbad || r->bbad;
    if (op == OP_FLOORDIV || op == OP_MOD) { /* B // 2 is no multiple of B */
        v.bbad = 1;
    } else if (op == '*' || op == '/') {
        v.bpow = op == '*' ? l->bpow + r->bpow : l->bpow - r->bpow;
        v.bcoef = op == '*' ? lc * rc : lc / rc;
        if (v.bpow < -1 || v.bpow > 1) v.bbad = 1;
    } else if (l->bpow == r->bpow) { /* B + B, 3 * B - B */
        v.bpow = l->bpow;
        v.bcoef = op == '+' ? lc + rc : lc - rc;
    } else {
        v.bbad = 1;
    }
    if (v.bbad) v.bpow = 0;
    return v;
}

static Value binary(Lower *L, Scope *s, const Expr *e) {
    if (e->op == OP_AND || e->op == OP_OR) {
        Value l = eval(L, s, e->lhs);
        if (l.k != V_BOOL) diag_error(at(L, s, &e->lhs->loc), "expected a boolean, found %s", kind_name(l.k));
        if ((e->op == OP_AND) != (l.i != 0)) return l; /* short-circuit */
        Value r = eval(L, s, e->rhs);
        if (r.k != V_BOOL) diag_error(at(L, s, &e->rhs->loc), "expected a boolean, found %s", kind_name(r.k));
        return r;
    }
    Value l = eval(L, s, e->lhs), r = eval(L, s, e->rhs);
    if (l.k == V_TENSOR || r.k == V_TENSOR) {
        Op op = e->op == '+' ? OP_add : e->op == '-' ? OP_sub : e->op == '*' ? OP_mul : e->op == '/' ? OP_div : OP_COUNT;
        if (e->op == OP_FLOORDIV || e->op == OP_MOD)
            diag_error(at(L, s, &e->loc), "'%s' is for compile-time integers, not tensors", binop_text(e->op));
        if (op == OP_COUNT)
            diag_error(at(L, s, &e->loc), "comparisons are for compile-time values, not tensors");
        int a = as_tensor(L, s, l, e->lhs, "the left operand"), b = as_tensor(L, s, r, e->rhs, "the right operand");
        return vtensor(ir_binary(L->g, op, a, b, at(L, s, &e->loc)));
    }
    /* "layer" + 3 is "layer3": names for what a loop's iterations create */
    if (l.k == V_STR && (r.k == V_STR || r.k == V_INT) && e->op == '+')
        return r.k == V_STR ? (Value){.k = V_STR, .s = arena_printf(L->a, "%s%s", l.s, r.s)}
                            : (Value){.k = V_STR, .s = arena_printf(L->a, "%s%lld", l.s, r.i)};
    if ((l.k == V_STR && r.k == V_STR) && (e->op == OP_EQ || e->op == OP_NE))
        return vbool((strcmp(l.s, r.s) == 0) == (e->op == OP_EQ));
    if (l.k == V_BOOL && r.k == V_BOOL && (e->op == OP_EQ || e->op == OP_NE))
        return vbool((l.i == r.i) == (e->op == OP_EQ));
    if (!is_num(&l) || !is_num(&r))
        diag_error(at(L, s, &e->loc), "operator needs numbers, found %s and %s", kind_name(l.k), kind_name(r.k));
    Value v = arith(L, s, e, &l, &r);
    if (v.k != V_NONE) return track_batch(e->op, &l, &r, v);
    double x = num(&l), y = num(&r);
    switch (e->op) {
    case '<': return vbool(x < y);
    case '>': return vbool(x > y);
    case OP_LE: return vbool(x <= y);
    case OP_GE: return vbool(x >= y);
    case OP_EQ: return vbool(x == y);
    case OP_NE: return vbool(x != y);
    default: mlc_die("binary operator %d", e->op);
    }
}

static Value eval(Lower *L, Scope *s, const Expr *e) {
    switch (e->kind) {
    case EX_INT: return vint(e->ival);
    case EX_FLOAT: return vfloat(e->fval);
    case EX_STRING: return (Value){.k = V_STR, .s = e->sval};
    case EX_LIST: {
        Value v = {.k = V_LIST, .n = e->nargs};
        v.items = ARENA_ARRAY(L->a, Value, e->nargs ? e->nargs : 1);
        for (int i = 0; i < e->nargs; i++) v.items[i] = eval(L, s, e->args[i].value);
        return v;
    }
    case EX_NAME: {
        Binding *b = lookup(s, e->name);
        if (b) return b->v;
        if (!strcmp(e->name, "B")) return (Value){.k = V_INT, .i = L->g->batch, .bpow = 1, .bcoef = 1};
        if (!strcmp(e->name, "true")) return vbool(1);
        if (!strcmp(e->name, "false")) return vbool(0);
        const char *cands[256];
        int n = 0;
        for (Binding *c = s->vars; c && n < 256; c = c->next) cands[n++] = c->name;
        const char *near = diag_nearest(e->name, cands, n);
        diag_error_hint(at(L, s, &e->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                        "unknown name '%s'", e->name);
    }
    case EX_CALL: return call(L, s, e);
    case EX_BINARY: return binary(L, s, e);
    case EX_UNARY: {
        Value v = eval(L, s, e->lhs);
        if (e->op == OP_NOT) {
            if (v.k != V_BOOL) diag_error(at(L, s, &e->loc), "'not' needs a boolean, found %s", kind_name(v.k));
            return vbool(!v.i);
        }
        if (v.k == V_INT || v.k == V_FLOAT) {
            if (v.k == V_INT && v.i == LLONG_MIN)
                diag_error(at(L, s, &e->loc), "integer overflow: -(%lld) does not fit in 64 bits", v.i);
            if (v.k == V_INT) v.i = -v.i;
            v.f = -v.f, v.bcoef = -v.bcoef;
            return v;
        }
        if (v.k == V_TENSOR) return vtensor(ir_unary(L->g, OP_neg, v.node, at(L, s, &e->loc)));
        diag_error(at(L, s, &e->loc), "cannot negate %s", kind_name(v.k));
    }
    }
    mlc_die("expression kind %d", e->kind);
}

/* ---- statements ---- */

static Shape type_shape(Lower *L, Scope *s, const TypeExpr *t, int allow_batch, DType *dt) {
    if (!strcmp(t->dtype, "f32"))
        *dt = DT_F32;
    else if (!strcmp(t->dtype, "i32"))
        *dt = DT_I32;
    else
        diag_error(at(L, s, &t->loc), "unknown element type '%s' (expected f32 or i32)", t->dtype);
    if (t->rank > IR_MAX_RANK) diag_error(at(L, s, &t->loc), "at most %d dimensions are supported", IR_MAX_RANK);
    Shape sh = {0};
    sh.rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        const TypeDim *d = &t->dims[i];
        if (d->expr || (d->name && strcmp(d->name, "B"))) {
            /* a compile-time integer: a block argument (f32[1, ch, 1, 1]) or an expression */
            Value v;
            if (d->expr) {
                v = eval(L, s, d->expr);
            } else {
                Binding *b = lookup(s, d->name);
                if (!b)
                    diag_error_hint(at(L, s, &d->loc), "a dimension is an integer, B for the batch size, or a name "
                                                       "or expression with a compile-time integer value",
                                    "unknown dimension '%s'", d->name);
                v = b->v;
            }
            if (v.k != V_INT || v.bpow || v.bbad)
                diag_error(at(L, s, &d->loc), "a dimension must be a compile-time integer%s, found %s",
                           v.bpow || v.bbad ? " (B can only stand alone)" : "", kind_name(v.k));
            if (v.i < 1) diag_error(at(L, s, &d->loc), "a dimension must be positive, found %lld", v.i);
            sh.d[i] = v.i;
        } else if (d->name) {
            if (!allow_batch) diag_error(at(L, s, &d->loc), "parameters cannot have the batch dimension B");
            if (sh.bmask) diag_error(at(L, s, &d->loc), "only one dimension can be B");
            sh.bmask |= (uint8_t)(1u << i);
            sh.d[i] = L->g->batch;
        } else {
            if (d->value < 1) diag_error(at(L, s, &d->loc), "a dimension must be positive, found %lld", d->value);
            sh.d[i] = d->value;
        }
    }
    return sh;
}

static void exec_param(Lower *L, Scope *s, const Stmt *st) {
    DType dt;
    Shape sh = type_shape(L, s, st->type, 0, &dt);
    if (dt != DT_F32) diag_error(at(L, s, &st->type->loc), "parameters must be f32");
    InitKind init = INIT_ZERO;
    double a = 0, b = 0;
    const Expr *e = st->value;
    if (e) {
        static const char *inits[] = {"normal", "uniform", "zeros", "ones", "constant"};
        if (e->kind != EX_CALL)
            diag_error_hint(at(L, s, &e->loc), "write normal(mean, std), uniform(lo, hi), zeros(), ones() or constant(v)",
                            "a parameter's initializer must be a call");
        int k = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(e->name, inits[i])) k = i;
        if (k < 0) {
            const char *near = diag_nearest(e->name, inits, 5);
            diag_error_hint(at(L, s, &e->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                            "unknown initializer '%s'", e->name);
        }
        static const Sig sigs[] = {{{"mean", "std"}}, {{"lo", "hi"}}, {{NULL}}, {{NULL}}, {{"value"}}};
        Args args;
        bind_args(L, s, e, &sigs[k], &args);
        static const InitKind kinds[] = {INIT_NORMAL, INIT_UNIFORM, INIT_ZERO, INIT_CONST, INIT_CONST};
        init = kinds[k];
        if (k == 0 || k == 1) a = arg_num(L, s, e, &args, 0, sigs[k].params[0], 0), b = arg_num(L, s, e, &args, 1, sigs[k].params[1], 0);
        if (k == 3) a = 1;
        if (k == 4) a = arg_num(L, s, e, &args, 0, "value", 0);
        if (k == 0 && b < 0) diag_error(at(L, s, &e->loc), "normal: std must not be negative");
        if (k == 1 && b < a) diag_error(at(L, s, &e->loc), "uniform: hi must not be below lo");
    }
    int id = make_param(L, s, &st->name_loc, arena_printf(L->a, "%s%s", s->prefix, st->name), sh, init, a, b);
    bind(L, s, st->name, vtensor(id));
}

static void exec(Lower *L, Scope *s, const Stmt *st) {
    int top = s->call_site == NULL;
    switch (st->kind) {
    case ST_MODEL:
    case ST_TRAIN:
    case ST_BLOCK:
        if (!top) diag_error(at(L, s, &st->loc), "this statement is only allowed at the top level");
        return;
    case ST_INPUT: {
        if (!top) diag_error(at(L, s, &st->loc), "inputs are declared at the top level, not inside a block");
        DType dt;
        Shape sh = type_shape(L, s, st->type, 1, &dt);
        if (lookup(s, st->name)) diag_error(at(L, s, &st->name_loc), "'%s' is defined twice", st->name);
        int id = graph_add_source(L->g, OP_input, sh, dt, st->name, &st->name_loc);
        names_put(&L->sources, st->name, id);
        bind(L, s, st->name, vtensor(id));
        return;
    }
    case ST_PARAM: exec_param(L, s, st); return;
    case ST_ASSIGN: bind(L, s, st->name, eval(L, s, st->value)); return;
    case ST_OUTPUT:
    case ST_LOSS: {
        if (!top) diag_error(at(L, s, &st->loc), "'%s' belongs at the top level", st->kind == ST_LOSS ? "loss" : "output");
        Graph *g = L->g;
        if (st->kind == ST_LOSS && g->loss >= 0) diag_error(at(L, s, &st->loc), "the model has more than one loss");
        if (st->kind == ST_OUTPUT && g->nout == IR_MAX_OUTPUTS)
            diag_error(at(L, s, &st->loc), "the model has more than %d outputs", IR_MAX_OUTPUTS);
        L->ce_logits = L->ce_labels = -1;
        Value v = eval(L, s, st->value);
        if (v.k != V_TENSOR)
            diag_error(at(L, s, &st->value->loc), "%s must be a tensor, found %s", st->kind == ST_LOSS ? "the loss" : "the output",
                       kind_name(v.k));
        char sh[96];
        const Node *n = &g->nodes[v.node];
        if (st->kind == ST_LOSS) {
            if (shape_numel(&n->shape) != 1)
                diag_error_hint(at(L, s, &st->value->loc), "reduce it, e.g. with mean(x, axis = 0)",
                                "the loss must be a scalar, found %s", shape_str(&n->shape, n->dtype, sh, sizeof sh));
            int direct = st->value->kind == EX_CALL && !strcmp(st->value->name, "cross_entropy");
            L->loss_logits = direct ? L->ce_logits : -1;
            L->loss_labels = direct ? L->ce_labels : -1;
            if (n->shape.rank != 0) v.node = ir_reshape(g, v.node, shape_scalar(), &n->loc);
            g->loss = v.node;
            g->nodes[v.node].role |= ROLE_LOSS;
            return;
        }
        if (n->shape.rank < 1 || n->shape.bmask != 1 || n->dtype != DT_F32)
            diag_error(at(L, s, &st->value->loc), "an output must be f32[B, ...] (the batch first), found %s",
                       shape_str(&n->shape, n->dtype, sh, sizeof sh));
        /* The API names an output after the tensor it shows; an expression gets "output". */
        const char *name = st->value->kind == EX_NAME ? st->value->name
                           : g->nout ? arena_printf(L->a, "output%d", g->nout) : "output";
        for (int k = 0; k < g->nout; k++)
            if (!strcmp(g->out_names[k], name)) diag_error(at(L, s, &st->loc), "'%s' is an output twice", name);
        g->out_names[g->nout] = name;
        g->outputs[g->nout++] = v.node;
        g->nodes[v.node].role |= ROLE_OUTPUT;
        return;
    }
    case ST_RETURN:
        if (top) diag_error(at(L, s, &st->loc), "'return' outside a block");
        s->ret = eval(L, s, st->value);
        s->has_return = 1;
        return;
    case ST_IF: {
        Value c = eval(L, s, st->value);
        if (c.k != V_BOOL)
            diag_error(at(L, s, &st->value->loc), "an if condition must be a compile-time boolean, found %s",
                       kind_name(c.k));
        exec_list(L, s, c.i ? &st->body : &st->else_body);
        return;
    }
    case ST_FOR: {
        /* Each item in turn is bound to the loop variable and the body runs in the
         * enclosing scope, so names it assigns (h = f(h)) carry from one iteration to the
         * next and stay bound after the loop, as in Python. */
        Value list = eval(L, s, st->value);
        if (list.k != V_LIST)
            diag_error_hint(at(L, s, &st->value->loc), "write range(n), range(start, stop) or a list like [16, 32, 64]",
                            "a for loop runs over a compile-time list, found %s", kind_name(list.k));
        for (int i = 0; i < list.n && !s->has_return; i++) {
            bind(L, s, st->name, list.items[i]);
            exec_list(L, s, &st->body);
        }
        return;
    }
    case ST_EXPR:
        diag_error(at(L, s, &st->loc), "this expression's value is not used; assign it to a name");
    }
}

static void exec_list(Lower *L, Scope *s, const StmtList *body) {
    for (int i = 0; i < body->n && !s->has_return; i++) exec(L, s, body->items[i]);
}

Graph *lower_program(Arena *a, const Program *p, const ModelSpec *spec, GraphMode mode) {
    Lower L = {.a = a, .prog = p, .spec = spec, .sources = names_new(a), .ce_logits = -1, .ce_labels = -1,
             .loss_logits = -1, .loss_labels = -1};
    L.g = graph_new(a, mode, spec->batch);
    Scope top = {.prefix = ""};
    L.top = &top;
    for (int i = 0; i < p->stmts.n; i++) exec(&L, &top, p->stmts.items[i]);
    if (!L.g->nout && L.g->loss < 0)
        diag_error_file(p->file->name, "the model has neither an 'output' nor a 'loss' statement");
    /* A classifier: its loss is cross_entropy of one of its outputs and an integer input. */
    for (int k = 0; k < L.g->nout && L.loss_labels >= 0; k++)
        if (L.g->outputs[k] == L.loss_logits && L.g->nodes[L.loss_labels].op == OP_input) {
            L.g->cls_output = k;
            L.g->cls_label = L.g->nodes[L.loss_labels].name;
        }
    return L.g;
}
