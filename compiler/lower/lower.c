/* lower.c - from the AST to the graph IR; see lower.h.
 *
 * A small compile-time evaluator: every expression evaluates to a Value, which is either
 * known now (a number, a string, a list, a boolean) or a tensor (a node of the graph).
 * Calls go to builtins (primitive ops and layer helpers, builtins.c) or to
 * user blocks, whose bodies are evaluated in a fresh scope at each call. */
#include "lower_internal.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "names.h"
#include "ops.h"
#include "rng.h"

static void exec_list(Lower *L, Scope *s, const StmtList *body);

/* ---- locations and errors ---- */

/* The location of an expression as seen from the current block call chain. */
const SrcLoc *loc_at(Lower *L, Scope *s, const SrcLoc *loc) {
    if (!s->call_site) return loc;
    SrcLoc *l = ARENA_NEW(L->a, SrcLoc);
    *l = *loc;
    l->called_from = s->call_site;
    l->block_name = s->block_name;
    return l;
}

void eval_charge(Lower *L, Scope *s, const SrcLoc *loc, long long steps) {
    L->steps += steps;
    if (L->steps > EVAL_BUDGET)
        diag_error_hint(loc_at(L, s, loc),
                        "each statement, loop iteration and call is a step, and so is every item of a list and "
                        "every 16 characters of a string made at compile time",
                        "compile-time evaluation takes more than %d steps (a loop or a recursion that never ends?)",
                        EVAL_BUDGET);
}

void check_known(Lower *L, Scope *s, const Value *v, const SrcLoc *loc, const char *what) {
    if (batch_dependent(v))
        diag_error_hint(loc_at(L, s, loc),
                        "B can be a dimension (f32[B, 4], reshape(x, [B * T, D])) or a factor of tensor "
                        "arithmetic (sum(x, 0) / B)",
                        "%s depends on the batch size B, which is known only when the model runs", what);
}

void check_f32(const SrcLoc *loc, double v) {
    if (fabs(v) > FLT_MAX)
        diag_error(loc, "the number %g does not fit in f32 (whose largest magnitude is %g)", v, (double)FLT_MAX);
    if (v != 0 && fabs(v) < FLT_TRUE_MIN)
        diag_error(loc, "the number %g is too small for f32: it would become 0 (the smallest nonzero f32 is %g)", v,
                   (double)FLT_TRUE_MIN);
}

const char *kind_name(VKind k) {
    static const char *names[] = {"nothing", "an integer", "a number", "a boolean", "a string", "a list", "a tensor"};
    return names[k];
}

/* ---- values ---- */

/* A number used as an operand of a tensor op becomes a scalar constant node; one that
 * depends on B stays a multiple of B or 1/B, evaluated when the step runs. */
static _Noreturn void batch_unfollowable(const SrcLoc *at) {
    diag_error_hint(at, "only products and quotients of B with numbers (2 * B, 1 / B) can be used",
                    "this number depends on the batch size B in a way the compiled code cannot follow");
}

int as_tensor(Lower *L, Scope *s, Value v, const Expr *e, const char *what) {
    if (v.k == V_TENSOR) return v.node;
    if (is_num(&v) && v.bbad) batch_unfollowable(loc_at(L, s, &e->loc));
    if (is_num(&v)) check_f32(loc_at(L, s, &e->loc), v.bpow ? v.bcoef : num(&v));
    if (is_num(&v) && v.bpow) return ir_const(L->g, v.bcoef, v.bpow, loc_at(L, s, &e->loc));
    if (is_num(&v)) return ir_const(L->g, num(&v), 0, loc_at(L, s, &e->loc));
    diag_error(loc_at(L, s, &e->loc), "%s must be a tensor or a number, found %s", what, kind_name(v.k));
}

/* ---- scopes ---- */

void scope_bind(Lower *L, Scope *s, const char *name, Value v) {
    Binding *b = scope_lookup_here(s, name);
    if (b) {
        b->v = v;
        return;
    }
    if (s->nvars == s->capvars) {
        int cap = s->capvars ? 2 * s->capvars : 4;
        s->vars = arena_realloc(L->a, s->vars, sizeof *s->vars * (size_t)s->capvars, sizeof *s->vars * (size_t)cap);
        s->capvars = cap;
    }
    if (!s->index.arena) s->index = names_new(L->a);
    b = ARENA_NEW(L->a, Binding);
    b->name = name;
    b->v = v;
    names_put(&s->index, name, s->nvars);
    s->vars[s->nvars++] = b;
}

/* A name in this scope alone, or NULL. */
Binding *scope_lookup_here(const Scope *s, const char *name) {
    int i = names_get(&s->index, name);
    return i >= 0 ? s->vars[i] : NULL;
}

/* A name in the scope, else at the top level: a block body sees its parameters and
 * locals first, then what the program had bound at the top when the block was called
 * (shared parameters, constants); assigning to such a name in a block makes a local. */
Binding *scope_lookup(Scope *s, const char *name) {
    for (; s; s = s->top) {
        Binding *b = scope_lookup_here(s, name);
        if (b) return b;
    }
    return NULL;
}

/* Names for what a call creates: an explicit name="..." or the kind and a counter. */
const char *scope_name(Lower *L, Scope *s, const char *kind, const char *explicit_name) {
    if (explicit_name) return arena_printf(L->a, "%s%s", s->prefix, explicit_name);
    if (!s->counters.arena) s->counters = names_new(L->a);
    int n = names_get(&s->counters, kind);
    n = n < 0 ? 1 : n + 1;
    names_put(&s->counters, kind, n);
    return arena_printf(L->a, "%s%s%d", s->prefix, kind, n);
}

/* ---- parameters ---- */

int make_param(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, InitKind init, double a,
               double b) {
    int prev = names_get(&L->sources, name);
    if (prev >= 0) {
        const Node *n = &L->g->nodes[prev];
        if (n->loc.file)
            diag_error_hint(loc_at(L, s, loc),
                            arena_printf(L->a, "'%s' was first defined at line %d", name, n->loc.line),
                            "'%s' is defined twice", name);
        diag_error(loc_at(L, s, loc), "'%s' is defined twice", name);
    }
    int id = graph_add_source(L->g, OP_param, shape, DT_F32, name, loc_at(L, s, loc));
    names_put(&L->sources, L->g->nodes[id].name, id);
    attr_set_all(&L->g->nodes[id], ATTRS(AI(A_INIT, init), AF(A_INIT_A, a), AF(A_INIT_B, b)));
    return id;
}

/* ---- argument binding, shared by builtins and blocks ---- */

/* The hint for an unknown keyword: the near name if there is one, else every name there is
 * (`padding` is far from `pad` by spelling, and a list answers what a guess cannot). */
const char *names_hint(Lower *L, const char *key, const char *const *names, int n) {
    const char *near = diag_nearest(key, names, n);
    if (near) return arena_printf(L->a, "did you mean '%s'?", near);
    if (n == 0) return "it takes no keyword arguments";
    const char *list = names[0];
    for (int i = 1; i < n; i++) list = arena_printf(L->a, "%s, %s", list, names[i]);
    return arena_printf(L->a, "the names are: %s", list);
}

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

void bind_args(Lower *L, Scope *s, const Expr *call, const Sig *sig, Args *out) {
    int np = sig_count(sig);
    memset(out, 0, sizeof *out);
    int pos = 0;
    for (int k = 0; k < call->nargs; k++) {
        const Arg *arg = &call->args[k];
        int slot = -1;
        if (!arg->keyword) {
            if (pos >= np)
                diag_error(loc_at(L, s, &arg->value->loc), "%s takes at most %d argument%s, found %d", call->name, np,
                           np == 1 ? "" : "s", call->nargs);
            slot = pos++;
        } else {
            const char *names[MAX_ARGS];
            for (int i = 0; i < np; i++) {
                names[i] = sig_name(L, sig, i);
                if (!strcmp(names[i], arg->keyword)) slot = i;
            }
            if (slot < 0)
                diag_error_hint(loc_at(L, s, &arg->kw_loc), names_hint(L, arg->keyword, names, np),
                                "%s has no argument named '%s'", call->name, arg->keyword);
            if (out->given[slot])
                diag_error(loc_at(L, s, &arg->kw_loc), "%s: argument '%s' is given twice", call->name, arg->keyword);
        }
        out->v[slot] = eval_expr(L, s, arg->value);
        out->e[slot] = arg->value;
        out->given[slot] = 1;
    }
    for (int i = 0; i < np; i++) {
        const char *p = sig->params[i];
        if (!out->given[i] && p[strlen(p) - 1] != '=')
            diag_error(loc_at(L, s, &call->loc), "%s: missing argument '%s'", call->name, p);
    }
}

const SrcLoc *arg_loc(Lower *L, Scope *s, const Expr *call, const Args *a, int i) {
    return loc_at(L, s, a->e[i] ? &a->e[i]->loc : &call->loc);
}

int arg_tensor(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name) {
    if (a->v[i].k == V_TENSOR) return a->v[i].node;
    diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a tensor, found %s", call->name, name,
               kind_name(a->v[i].k));
}

long long arg_int(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, long long dflt,
                  long long lo) {
    if (!a->given[i]) return dflt;
    if (a->v[i].k != V_INT) /* never a boolean: dense(x, true) is a misplaced flag, not 1 unit */
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be an integer, found %s", call->name, name,
                   kind_name(a->v[i].k));
    check_known(L, s, &a->v[i], a->e[i] ? &a->e[i]->loc : &call->loc,
                arena_printf(L->a, "%s: argument '%s'", call->name, name));
    if (a->v[i].i < lo)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be at least %lld, found %lld", call->name, name,
                   lo, a->v[i].i);
    return a->v[i].i;
}

/* A true/false argument (a layer's bias, keepdims), or dflt when not given. Integers are
 * refused, as sgd's nesterov refuses them: bias = 0 reads as "no bias" only by accident, and
 * dense(x, 10, 3) is more likely a misplaced argument than a choice. */
int arg_flag(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, int dflt) {
    if (!a->given[i]) return dflt;
    if (a->v[i].k != V_BOOL)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be true or false, found %s", call->name, name,
                   kind_name(a->v[i].k));
    return a->v[i].i != 0;
}

double arg_num(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, double dflt) {
    if (!a->given[i]) return dflt;
    if (!is_num(&a->v[i]))
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a number, found %s", call->name, name,
                   kind_name(a->v[i].k));
    check_known(L, s, &a->v[i], a->e[i] ? &a->e[i]->loc : &call->loc,
                arena_printf(L->a, "%s: argument '%s'", call->name, name));
    check_f32(arg_loc(L, s, call, a, i), num(&a->v[i])); /* every number argument becomes an f32 */
    return num(&a->v[i]);
}

const char *arg_str(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name) {
    if (!a->given[i]) return NULL;
    if (a->v[i].k != V_STR)
        diag_error(arg_loc(L, s, call, a, i), "%s: argument '%s' must be a string, found %s", call->name, name,
                   kind_name(a->v[i].k));
    return a->v[i].s;
}

/* A layer name becomes part of parameter names, which the generated C and DOT quote and
 * comment as they are and turn into identifiers: letters, digits, '_', '.' and '-' need
 * no escaping in any of them. */
void check_layer_name(Lower *L, Scope *s, const SrcLoc *loc, const char *what, const char *name) {
    if (!name[0]) diag_error(loc_at(L, s, loc), "%s: the name is empty", what);
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_.-", c)) continue;
        unsigned cp = 0;
        int n = c >= 0x80 ? diag_utf8_len(p, strlen(p), &cp) : 0; /* named by code point, as the lexer does */
        const char *shown = c == ' '               ? "a space"
                            : c == '\n'            ? "a newline"
                            : c == '\t'            ? "a tab"
                            : c > 0x20 && c < 0x7f ? arena_printf(L->a, "'%c'", c)
                            : n > 0                ? arena_printf(L->a, "'%.*s' (U+%04X)", n, p, cp)
                                                   : arena_printf(L->a, "byte 0x%02X", c);
        diag_error(loc_at(L, s, loc), "%s: a name may hold only letters, digits, '_', '.' and '-', found %s", what,
                   shown);
    }
}

const char *arg_name(Lower *L, Scope *s, const Expr *call, const Args *a, int i) {
    const char *name = arg_str(L, s, call, a, i, "name");
    if (name) check_layer_name(L, s, &a->e[i]->loc, arena_printf(L->a, "%s: argument 'name'", call->name), name);
    return name;
}

/* ---- calls ---- */

static const Stmt *find_block(Lower *L, const char *name) {
    int i = names_get(&L->blocks, name);
    return i >= 0 ? L->prog->stmts.items[i] : NULL;
}

static _Noreturn void unknown_callee(Lower *L, Scope *s, const Expr *call) {
    const char *cands[nbuiltins + 64];
    int n = 0;
    for (int i = 0; i < nbuiltins; i++) cands[n++] = builtins[i].name;
    for (int i = 0; i < L->prog->stmts.n && n < nbuiltins + 64; i++)
        if (L->prog->stmts.items[i]->kind == ST_BLOCK) cands[n++] = L->prog->stmts.items[i]->name;
    const char *near = diag_nearest(call->name, cands, n);
    diag_error_hint(loc_at(L, s, &call->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                    "unknown op or block '%s'", call->name);
}

/* Every parameter name of a block, for the hint of an unknown keyword (a block has no
 * limit on its parameters, so neither has this list). */
static const char *const *block_param_names(Lower *L, const Stmt *blk) {
    const char **names = ARENA_ARRAY(L->a, const char *, blk->nparams ? blk->nparams : 1);
    for (int i = 0; i < blk->nparams; i++) names[i] = blk->params[i].name;
    return names;
}

static Value call_block(Lower *L, Scope *s, const Expr *call, const Stmt *blk) {
    if (L->depth >= 64) diag_error(loc_at(L, s, &call->loc), "blocks call each other more than 64 deep (recursion?)");
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
            Value v = eval_expr(L, s, arg->value);
            if (v.k != V_STR)
                diag_error(loc_at(L, s, &arg->value->loc), "%s: argument 'name' must be a string, found %s", call->name,
                           kind_name(v.k));
            check_layer_name(L, s, &arg->value->loc, arena_printf(L->a, "%s: argument 'name'", call->name), v.s);
            explicit_name = v.s;
            continue;
        }
        if (!arg->keyword) {
            if (pos >= np)
                diag_error(loc_at(L, s, &arg->value->loc), "block %s takes %d argument%s, found more", blk->name, np,
                           np == 1 ? "" : "s");
            slot = pos++;
        } else {
            for (int i = 0; i < np && slot < 0; i++)
                if (!strcmp(blk->params[i].name, arg->keyword)) slot = i;
            if (slot < 0)
                diag_error_hint(loc_at(L, s, &arg->kw_loc), names_hint(L, arg->keyword, block_param_names(L, blk), np),
                                "block %s has no parameter named '%s'", blk->name, arg->keyword);
            if (given[slot])
                diag_error(loc_at(L, s, &arg->kw_loc), "%s: argument '%s' is given twice", call->name, arg->keyword);
        }
        given[slot] = 1;
        scope_bind(L, &inner, blk->params[slot].name, eval_expr(L, s, arg->value));
    }
    SrcLoc *site = ARENA_NEW(L->a, SrcLoc);
    *site = *loc_at(L, s, &call->loc);
    inner.call_site = site;
    inner.block_name = blk->name;
    /* The defaults are evaluated inside the call: in its scope, so a layer a default creates
     * belongs to the call (q.dense1.weight), and counted towards the depth limit, so a
     * default that calls the block again (n = f(x)) is a recursion like any other. */
    inner.prefix = arena_printf(L->a, "%s.", scope_name(L, s, blk->name, explicit_name));
    L->depth++;
    for (int i = 0; i < np; i++) {
        if (given[i]) continue;
        if (!blk->params[i].default_value)
            diag_error(loc_at(L, s, &call->loc), "block %s: missing argument '%s'", blk->name, blk->params[i].name);
        scope_bind(L, &inner, blk->params[i].name, eval_expr(L, &inner, blk->params[i].default_value));
    }
    exec_list(L, &inner, &blk->body);
    L->depth--;
    if (!inner.has_return) /* the call's note says which call took the path without one */
        diag_error(loc_at(L, &inner, &blk->loc), "block %s ends without a return", blk->name);
    return inner.ret;
}

static Value call(Lower *L, Scope *s, const Expr *e) {
    eval_charge(L, s, &e->loc, 1);
    for (int i = 0; i < nbuiltins; i++)
        if (!strcmp(builtins[i].name, e->name)) {
            Args args;
            bind_args(L, s, e, &builtins[i].sig, &args);
            const char *outer = L->g->call_name;
            if (!outer) L->g->call_name = e->name;
            Value v = builtins[i].fn(L, s, e, &args);
            L->g->call_name = outer;
            return v;
        }
    const Stmt *blk = find_block(L, e->name);
    if (blk) return call_block(L, s, e, blk);
    unknown_callee(L, s, e);
}

/* ---- expressions ---- */

/* Floor division and its remainder on integers, as in Python: -7 // 2 = -4, -7 % 2 = 1
 * (the remainder takes the divisor's sign). r != 0 and not (LLONG_MIN, -1). The remainder
 * is corrected from C's, never rebuilt as l - q * r: near LLONG_MIN that product overflows
 * even though the remainder is small. */
static long long floor_div(long long l, long long r) {
    long long q = l / r;
    return (l % r != 0 && (l < 0) != (r < 0)) ? q - 1 : q;
}

static long long floor_mod(long long l, long long r) {
    long long m = l % r;
    return (m != 0 && (m < 0) != (r < 0)) ? m + r : m;
}

/* An integer operand as the .mdl wrote it: B, or a multiple of it, rather than its value
 * at the compile-time batch, which the user never wrote. */
static const char *int_text(Lower *L, const Value *v) {
    if (v->bpow == 1 && !v->bbad) return v->bcoef == 1 ? "B" : arena_printf(L->a, "%.17g * B", v->bcoef);
    return arena_printf(L->a, "%lld", v->i);
}

static Value track_batch(int op, const Value *l, const Value *r, Value v);

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
        diag_error_hint(loc_at(L, s, &e->loc), "'/' divides numbers", "'%s' takes two integers, found %s and %s",
                        binop_text(op), kind_name(l->k), kind_name(r->k));
    if (op != '+' && op != '-' && op != '*' && y == 0)
        diag_error(loc_at(L, s, &e->loc), op == OP_MOD ? "modulo by zero" : "division by zero");
    if (ints) {
        /* LLONG_MIN / -1 is the one quotient that does not fit */
        int min_by_minus1 = l->i == LLONG_MIN && r->i == -1;
        switch (op) {
        case '+': wrapped = __builtin_add_overflow(l->i, r->i, &v); break;
        case '-': wrapped = __builtin_sub_overflow(l->i, r->i, &v); break;
        case '*': wrapped = __builtin_mul_overflow(l->i, r->i, &v); break;
        case OP_FLOORDIV: wrapped = min_by_minus1, v = wrapped ? 0 : floor_div(l->i, r->i); break;
        case OP_MOD: v = min_by_minus1 ? 0 : floor_mod(l->i, r->i); break;
        default: /* '/' */
            if (min_by_minus1) wrapped = 1;
            else if (l->i % r->i == 0) v = l->i / r->i;
            else ints = 0; /* an inexact quotient is a number, as in 7 / 2 = 3.5 */
            break;
        }
        /* B * B * ... overflows at the compile-time batch, a value the user never wrote;
         * the product is refused whatever its size, so say why */
        if (wrapped && track_batch(op, l, r, vint(0)).bbad) batch_unfollowable(loc_at(L, s, &e->loc));
        if (wrapped)
            diag_error_hint(loc_at(L, s, &e->loc), "sizes and integer arguments must fit in 64 bits",
                            "integer overflow: %s %s %s does not fit in 64 bits", int_text(L, l), binop_text(op),
                            int_text(L, r));
        if (ints) return vint(v);
    }
    double f = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
    if (!isfinite(f))
        diag_error(loc_at(L, s, &e->loc), "the result of %g %s %g is not a finite number", x, binop_text(op), y);
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

/* "layer" + 3 is "layer3": names for what a loop's iterations create. Bounded by
 * MAX_STRING, and charged by its length: a loop that doubles a string stops early. */
static Value concat(Lower *L, Scope *s, const Expr *e, const Value *l, const Value *r) {
    if (r->k == V_INT) check_known(L, s, r, &e->loc, "this string");
    const char *tail = r->k == V_STR ? r->s : arena_printf(L->a, "%lld", r->i);
    size_t n = strlen(l->s) + strlen(tail);
    if (n > MAX_STRING)
        diag_error(loc_at(L, s, &e->loc), "this string would have %zu characters, more than the %d a string may have",
                   n, MAX_STRING);
    eval_charge(L, s, &e->loc, (long long)(n / 16));
    return (Value){.k = V_STR, .s = arena_printf(L->a, "%s%s", l->s, tail)};
}

static Value binary(Lower *L, Scope *s, const Expr *e) {
    if (e->op == OP_AND || e->op == OP_OR) {
        Value l = eval_expr(L, s, e->lhs);
        if (l.k != V_BOOL) diag_error(loc_at(L, s, &e->lhs->loc), "expected a boolean, found %s", kind_name(l.k));
        if ((e->op == OP_AND) != (l.i != 0)) return l; /* short-circuit */
        Value r = eval_expr(L, s, e->rhs);
        if (r.k != V_BOOL) diag_error(loc_at(L, s, &e->rhs->loc), "expected a boolean, found %s", kind_name(r.k));
        return r;
    }
    Value l = eval_expr(L, s, e->lhs), r = eval_expr(L, s, e->rhs);
    if (l.k == V_TENSOR || r.k == V_TENSOR) {
        Op op = e->op == '+'   ? OP_add
                : e->op == '-' ? OP_sub
                : e->op == '*' ? OP_mul
                : e->op == '/' ? OP_div
                               : OP_COUNT;
        if (e->op == OP_FLOORDIV || e->op == OP_MOD)
            diag_error(loc_at(L, s, &e->loc), "'%s' is for compile-time integers, not tensors", binop_text(e->op));
        if (op == OP_COUNT) diag_error(loc_at(L, s, &e->loc), "comparisons are for compile-time values, not tensors");
        int a = as_tensor(L, s, l, e->lhs, "the left operand"), b = as_tensor(L, s, r, e->rhs, "the right operand");
        return vtensor(ir_binary(L->g, op, a, b, loc_at(L, s, &e->loc)));
    }
    if (l.k == V_STR && (r.k == V_STR || r.k == V_INT) && e->op == '+') return concat(L, s, e, &l, &r);
    if ((l.k == V_STR && r.k == V_STR) && (e->op == OP_EQ || e->op == OP_NE))
        return vbool((strcmp(l.s, r.s) == 0) == (e->op == OP_EQ));
    if (l.k == V_BOOL && r.k == V_BOOL && (e->op == OP_EQ || e->op == OP_NE))
        return vbool((l.i == r.i) == (e->op == OP_EQ));
    if (!is_num(&l) || !is_num(&r))
        diag_error(loc_at(L, s, &e->loc), "operator needs numbers, found %s and %s", kind_name(l.k), kind_name(r.k));
    Value v = arith(L, s, e, &l, &r);
    if (v.k != V_NONE) return track_batch(e->op, &l, &r, v);
    /* a comparison decides at compile time: B's value then is only the compile-time batch */
    check_known(L, s, &l, &e->lhs->loc, "this comparison");
    check_known(L, s, &r, &e->rhs->loc, "this comparison");
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

Value eval_expr(Lower *L, Scope *s, const Expr *e) {
    switch (e->kind) {
    case EX_INT: return vint(e->ival);
    case EX_FLOAT: return vfloat(e->fval);
    case EX_STRING: return (Value){.k = V_STR, .s = e->sval};
    case EX_LIST: {
        eval_charge(L, s, &e->loc, e->nargs);
        Value v = {.k = V_LIST, .n = e->nargs};
        v.items = ARENA_ARRAY(L->a, Value, e->nargs ? e->nargs : 1);
        for (int i = 0; i < e->nargs; i++) v.items[i] = eval_expr(L, s, e->args[i].value);
        return v;
    }
    case EX_NAME: {
        Binding *b = scope_lookup(s, e->name);
        if (b) return b->v;
        if (!strcmp(e->name, "B")) return (Value){.k = V_INT, .i = L->g->batch, .bpow = 1, .bcoef = 1};
        if (!strcmp(e->name, "true")) return vbool(1);
        if (!strcmp(e->name, "false")) return vbool(0);
        const char *cands[256];
        int n = 0;
        for (int i = s->nvars - 1; i >= 0 && n < 256; i--) cands[n++] = s->vars[i]->name; /* the latest first */
        const char *near = diag_nearest(e->name, cands, n);
        diag_error_hint(loc_at(L, s, &e->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                        "unknown name '%s'", e->name);
    }
    case EX_CALL: return call(L, s, e);
    case EX_BINARY: return binary(L, s, e);
    case EX_UNARY: {
        Value v = eval_expr(L, s, e->lhs);
        if (e->op == OP_NOT) {
            if (v.k != V_BOOL) diag_error(loc_at(L, s, &e->loc), "'not' needs a boolean, found %s", kind_name(v.k));
            return vbool(!v.i);
        }
        if (v.k == V_INT || v.k == V_FLOAT) {
            if (v.k == V_INT && v.i == LLONG_MIN)
                diag_error(loc_at(L, s, &e->loc), "integer overflow: -(%lld) does not fit in 64 bits", v.i);
            if (v.k == V_INT) v.i = -v.i;
            v.f = -v.f, v.bcoef = -v.bcoef;
            return v;
        }
        if (v.k == V_TENSOR) return vtensor(ir_unary(L->g, OP_neg, v.node, loc_at(L, s, &e->loc)));
        diag_error(loc_at(L, s, &e->loc), "cannot negate %s", kind_name(v.k));
    }
    }
    mlc_die("expression kind %d", e->kind);
}

/* ---- statements ---- */

static Shape type_shape(Lower *L, Scope *s, const TypeExpr *t, int allow_batch, DType *dt) {
    if (!strcmp(t->dtype, "f32")) *dt = DT_F32;
    else if (!strcmp(t->dtype, "i32")) *dt = DT_I32;
    else diag_error(loc_at(L, s, &t->loc), "unknown element type '%s' (expected f32 or i32)", t->dtype);
    if (t->rank > IR_MAX_RANK) diag_error(loc_at(L, s, &t->loc), "at most %d dimensions are supported", IR_MAX_RANK);
    Shape sh = {0};
    sh.rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        const TypeDim *d = &t->dims[i];
        if (d->expr || (d->name && strcmp(d->name, "B"))) {
            /* a compile-time integer: a block argument (f32[1, ch, 1, 1]) or an expression */
            Value v;
            if (d->expr) {
                v = eval_expr(L, s, d->expr);
            } else {
                Binding *b = scope_lookup(s, d->name);
                if (!b)
                    diag_error_hint(loc_at(L, s, &d->loc),
                                    "a dimension is an integer, B for the batch size, or a name "
                                    "or expression with a compile-time integer value",
                                    "unknown dimension '%s'", d->name);
                v = b->v;
            }
            if (batch_dependent(&v)) /* its value at the compile-time batch is no dimension */
                diag_error(loc_at(L, s, &d->loc),
                           "a dimension must be a compile-time integer%s, found a value that depends on the batch "
                           "size B",
                           allow_batch ? " or B alone" : "");
            if (v.k != V_INT)
                diag_error(loc_at(L, s, &d->loc), "a dimension must be a compile-time integer, found %s",
                           kind_name(v.k));
            if (v.i < 1) diag_error(loc_at(L, s, &d->loc), "a dimension must be positive, found %lld", v.i);
            sh.d[i] = v.i;
        } else if (d->name) {
            if (!allow_batch) diag_error(loc_at(L, s, &d->loc), "parameters cannot have the batch dimension B");
            if (sh.bmask) diag_error(loc_at(L, s, &d->loc), "only one dimension can be B");
            sh.bmask |= (uint8_t)(1u << i);
            sh.d[i] = L->g->batch;
        } else {
            if (d->value < 1) diag_error(loc_at(L, s, &d->loc), "a dimension must be positive, found %lld", d->value);
            sh.d[i] = d->value;
        }
    }
    return sh;
}

static void exec_param(Lower *L, Scope *s, const Stmt *st) {
    DType dt;
    Shape sh = type_shape(L, s, st->type, 0, &dt);
    if (dt != DT_F32) diag_error(loc_at(L, s, &st->type->loc), "parameters must be f32");
    InitKind init = INIT_ZERO;
    double a = 0, b = 0;
    const Expr *e = st->value;
    if (e) {
        static const char *inits[] = {"normal", "uniform", "zeros", "ones", "constant"};
        if (e->kind != EX_CALL)
            diag_error_hint(loc_at(L, s, &e->loc),
                            "write normal(mean, std), uniform(lo, hi), zeros(), ones() or constant(v)",
                            "a parameter's initializer must be a call");
        int k = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(e->name, inits[i])) k = i;
        if (k < 0) {
            const char *near = diag_nearest(e->name, inits, 5);
            diag_error_hint(loc_at(L, s, &e->loc), near ? arena_printf(L->a, "did you mean '%s'?", near) : NULL,
                            "unknown initializer '%s'", e->name);
        }
        static const Sig sigs[] = {{{"mean", "std"}}, {{"lo", "hi"}}, {{NULL}}, {{NULL}}, {{"value"}}};
        Args args;
        bind_args(L, s, e, &sigs[k], &args);
        static const InitKind kinds[] = {INIT_NORMAL, INIT_UNIFORM, INIT_ZERO, INIT_CONST, INIT_CONST};
        init = kinds[k];
        if (k == 0 || k == 1)
            a = arg_num(L, s, e, &args, 0, sigs[k].params[0], 0), b = arg_num(L, s, e, &args, 1, sigs[k].params[1], 0);
        if (k == 3) a = 1;
        if (k == 4) a = arg_num(L, s, e, &args, 0, "value", 0);
        if (k == 0 && b < 0) diag_error(loc_at(L, s, &e->loc), "normal: std must not be negative");
        if (k == 1 && b < a) diag_error(loc_at(L, s, &e->loc), "uniform: hi must not be below lo");
    }
    int id = make_param(L, s, &st->name_loc, arena_printf(L->a, "%s%s", s->prefix, st->name), sh, init, a, b);
    scope_bind(L, s, st->name, vtensor(id));
}

static void exec(Lower *L, Scope *s, const Stmt *st) {
    int top = s->call_site == NULL;
    eval_charge(L, s, &st->loc, 1);
    switch (st->kind) {
    case ST_MODEL:
    case ST_TRAIN:
    case ST_BLOCK:
        if (!top) diag_error(loc_at(L, s, &st->loc), "this statement is only allowed at the top level");
        return;
    case ST_INPUT: {
        if (!top) diag_error(loc_at(L, s, &st->loc), "inputs are declared at the top level, not inside a block");
        DType dt;
        Shape sh = type_shape(L, s, st->type, 1, &dt);
        /* said here, in source order, before a use of the input trips over its shape */
        if (sh.bmask != 1)
            diag_error(loc_at(L, s, &st->name_loc), "input '%s' must have the batch dimension B first (and only there)",
                       st->name);
        if (scope_lookup(s, st->name)) {
            int prev = names_get(&L->sources, st->name);
            if (prev >= 0 && L->g->nodes[prev].loc.file)
                diag_error_hint(
                    loc_at(L, s, &st->name_loc),
                    arena_printf(L->a, "'%s' was first defined at line %d", st->name, L->g->nodes[prev].loc.line),
                    "'%s' is defined twice", st->name);
            diag_error(loc_at(L, s, &st->name_loc), "'%s' is defined twice", st->name);
        }
        int id = graph_add_source(L->g, OP_input, sh, dt, st->name, &st->name_loc);
        names_put(&L->sources, st->name, id);
        scope_bind(L, s, st->name, vtensor(id));
        return;
    }
    case ST_PARAM: exec_param(L, s, st); return;
    case ST_ASSIGN: scope_bind(L, s, st->name, eval_expr(L, s, st->value)); return;
    case ST_OUTPUT:
    case ST_LOSS: {
        if (!top)
            diag_error(loc_at(L, s, &st->loc), "'%s' belongs at the top level",
                       st->kind == ST_LOSS ? "loss" : "output");
        Graph *g = L->g;
        if (st->kind == ST_LOSS && g->loss >= 0) diag_error(loc_at(L, s, &st->loc), "the model has more than one loss");
        if (st->kind == ST_OUTPUT && g->nout == IR_MAX_OUTPUTS)
            diag_error(loc_at(L, s, &st->loc), "the model has more than %d outputs", IR_MAX_OUTPUTS);
        L->ce_logits = L->ce_labels = -1;
        Value v = eval_expr(L, s, st->value);
        if (v.k != V_TENSOR)
            diag_error(loc_at(L, s, &st->value->loc), "%s must be a tensor, found %s",
                       st->kind == ST_LOSS ? "the loss" : "the output", kind_name(v.k));
        char sh[96];
        const Node *n = &g->nodes[v.node];
        if (st->kind == ST_LOSS) {
            if (shape_numel(&n->shape) != 1)
                diag_error_hint(loc_at(L, s, &st->value->loc), "reduce it, e.g. with mean(x, axis = 0)",
                                "the loss must be a scalar, found %s", shape_str(&n->shape, n->dtype, sh, sizeof sh));
            /* the scores cross_entropy reads: a classifier's [B, C], a token model's per-token
             * [B, T, V] (the trainer takes its vocabulary and samples from them) */
            int direct = st->value->kind == EX_CALL && !strcmp(st->value->name, "cross_entropy");
            L->loss_logits = direct ? L->ce_logits : -1;
            L->loss_labels = direct ? L->ce_labels : -1;
            if (n->shape.rank != 0) v.node = ir_reshape(g, v.node, shape_scalar(), &n->loc);
            g->loss = v.node;
            g->nodes[v.node].role |= ROLE_LOSS;
            return;
        }
        /* i32 outputs: argmax's predicted classes */
        if (n->shape.rank < 1 || n->shape.bmask != 1)
            diag_error(loc_at(L, s, &st->value->loc),
                       "an output must be f32[B, ...] or i32[B, ...] (the batch first), found %s",
                       shape_str_at(&n->shape, n->dtype, g->batch, sh, sizeof sh));
        if (n->shape.d[0] != g->batch)
            diag_error(
                loc_at(L, s, &st->value->loc),
                "an output must be f32[B, ...] with the batch on its own, found %s: reshape it to [B, %lld, ...]",
                shape_str_at(&n->shape, n->dtype, g->batch, sh, sizeof sh), (long long)(n->shape.d[0] / g->batch));
        /* The API names an output after the tensor it shows; an expression gets "output". */
        const char *name = st->value->kind == EX_NAME ? st->value->name
                           : g->nout                  ? arena_printf(L->a, "output%d", g->nout)
                                                      : "output";
        for (int k = 0; k < g->nout; k++) {
            if (strcmp(g->out_names[k], name)) continue;
            if (st->value->kind != EX_NAME) /* the user never wrote this name: say where it comes from */
                diag_error_hint(loc_at(L, s, &st->loc), "give it a name first: NAME = ..., then output NAME",
                                "this output's automatic name '%s' is already the name of an output", name);
            diag_error(loc_at(L, s, &st->loc), "'%s' is an output twice", name);
        }
        g->out_names[g->nout] = name;
        g->outputs[g->nout++] = v.node;
        g->nodes[v.node].role |= ROLE_OUTPUT;
        return;
    }
    case ST_RETURN:
        if (top) diag_error(loc_at(L, s, &st->loc), "'return' outside a block");
        s->ret = eval_expr(L, s, st->value);
        s->has_return = 1;
        return;
    case ST_IF: {
        Value c = eval_expr(L, s, st->value);
        if (c.k != V_BOOL)
            diag_error(loc_at(L, s, &st->value->loc), "an if condition must be a compile-time boolean, found %s",
                       kind_name(c.k));
        exec_list(L, s, c.i ? &st->body : &st->else_body);
        return;
    }
    case ST_FOR: {
        /* Each item in turn is bound to the loop variable and the body runs in the
         * enclosing scope, so names it assigns (h = f(h)) carry from one iteration to the
         * next and stay bound after the loop, as in Python. */
        Value list = eval_expr(L, s, st->value);
        if (list.k != V_LIST)
            diag_error_hint(loc_at(L, s, &st->value->loc),
                            "write range(n), range(start, stop) or a list like [16, 32, 64]",
                            "a for loop runs over a compile-time list, found %s", kind_name(list.k));
        for (int i = 0; i < list.n && !s->has_return; i++) {
            eval_charge(L, s, &st->loc, 1);
            scope_bind(L, s, st->name, list.items[i]);
            exec_list(L, s, &st->body);
        }
        return;
    }
    case ST_EXPR: diag_error(loc_at(L, s, &st->loc), "this expression's value is not used; assign it to a name");
    }
}

static void exec_list(Lower *L, Scope *s, const StmtList *body) {
    for (int i = 0; i < body->n && !s->has_return; i++) exec(L, s, body->items[i]);
}

/* A call names a builtin or a block: two blocks of one name, or a block named like a
 * builtin, would leave one of them unreachable by any call. */
static void check_blocks(Lower *L) {
    const StmtList *all = &L->prog->stmts;
    for (int i = 0; i < all->n; i++) {
        const Stmt *st = all->items[i];
        if (st->kind != ST_BLOCK) continue;
        for (int k = 0; k < nbuiltins; k++)
            if (!strcmp(builtins[k].name, st->name))
                diag_error(&st->name_loc, "'%s' is a builtin; a block cannot have its name", st->name);
        int j = names_get(&L->blocks, st->name);
        if (j >= 0)
            diag_error_hint(
                &st->name_loc,
                arena_printf(L->a, "'%s' was first defined at line %d", st->name, all->items[j]->name_loc.line),
                "block '%s' is defined twice", st->name);
        names_put(&L->blocks, st->name, i);
    }
}

/* An input neither the loss nor an output depends on is a mistake (a misspelt name, a
 * leftover): the generated trainer must still feed it, and refuses a model whose input
 * matches no field of the data. Warned once, for the train graph. */
static void warn_unused_inputs(Lower *L) {
    const Graph *g = L->g;
    char *used = arena_alloc(L->a, (size_t)g->n);
    memset(used, 0, (size_t)g->n);
    if (g->loss >= 0) used[g->loss] = 1;
    for (int k = 0; k < g->nout; k++) used[g->outputs[k]] = 1;
    for (int i = g->n - 1; i >= 0; i--) /* nodes come after their inputs */
        for (int k = 0; used[i] && k < g->nodes[i].nin; k++) used[g->nodes[i].in[k]] = 1;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_input && !used[i] && g->nodes[i].loc.file)
            diag_warning(&g->nodes[i].loc, "input '%s' is never used", g->nodes[i].name);
}

Graph *lower_program(Arena *a, const Program *p, const ModelSpec *spec, GraphMode mode) {
    Lower L = {.a = a,
               .prog = p,
               .spec = spec,
               .sources = names_new(a),
               .blocks = names_new(a),
               .ce_logits = -1,
               .ce_labels = -1,
               .loss_logits = -1,
               .loss_labels = -1};
    L.g = graph_new(a, mode, spec->batch);
    Scope top = {.prefix = ""};
    L.top = &top;
    check_blocks(&L);
    for (int i = 0; i < p->stmts.n; i++) exec(&L, &top, p->stmts.items[i]);
    if (!L.g->nout && L.g->loss < 0)
        diag_error_file(p->file->name, "the model has neither an 'output' nor a 'loss' statement");
    /* The output the loss's cross_entropy scores against an integer input (a classifier's
     * class scores, or a token model's per-token ones). */
    for (int k = 0; k < L.g->nout && L.loss_labels >= 0; k++)
        if (L.g->outputs[k] == L.loss_logits && L.g->nodes[L.loss_labels].op == OP_input) {
            L.g->cls_output = k;
            L.g->cls_label = L.g->nodes[L.loss_labels].name;
        }
    if (mode == MODE_TRAIN && L.g->loss >= 0) warn_unused_inputs(&L); /* without a loss: that error first */
    return L.g;
}
