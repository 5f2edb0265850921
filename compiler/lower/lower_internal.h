/* lower_internal.h - what the evaluator (lower.c) and the builtins (builtins.c) share.
 *
 * lower.c evaluates expressions and statements; builtins.c holds the primitive ops and
 * layer helpers a .mdl can call, one function per builtin and the table `builtins` that
 * names them with their signatures. Adding a builtin = its function (builtins.c or a file
 * of its own) + one row in the table. */
#ifndef MLC_LOWER_INTERNAL_H
#define MLC_LOWER_INTERNAL_H

#include "lower.h"
#include "names.h"
#include "ops.h"

typedef enum VKind { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_LIST, V_TENSOR } VKind;

typedef struct Value {
    VKind k;
    long long i; /* V_INT, V_BOOL */
    double f;    /* V_FLOAT */
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
} Binding;

/* A scope's names: in the order they were first bound (a rebinding keeps its place), with
 * a hash index, as a program with tens of thousands of names made a list search quadratic. */
typedef struct Scope {
    Binding **vars;
    int nvars, capvars;
    NameTable index;         /* name -> its position in vars */
    const char *prefix;      /* parameter-name prefix: "" or "stage1.block2." */
    NameTable counters;      /* kind of layer or block -> how many this scope named so far */
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
    int depth;         /* block-call nesting, to stop runaway recursion */
    NameTable sources; /* parameter and input names -> their nodes */
    NameTable blocks;  /* block names -> their statements' indices (check_blocks) */
    struct Scope *top; /* the program's top-level scope */
    /* The operands of the last cross_entropy lowered (-1: none), and those of the loss
     * when the loss is a cross_entropy call itself: what makes the model a classifier. */
    int ce_logits, ce_labels;
    int loss_logits, loss_labels;
    long long steps; /* evaluation steps so far (eval_charge), against EVAL_BUDGET */
} Lower;

static inline Value vint(long long i) { return (Value){.k = V_INT, .i = i}; }
static inline Value vfloat(double f) { return (Value){.k = V_FLOAT, .f = f}; }
static inline Value vbool(int b) { return (Value){.k = V_BOOL, .i = b != 0}; }
static inline Value vtensor(int node) { return (Value){.k = V_TENSOR, .node = node}; }

static inline int is_num(const Value *v) { return v->k == V_INT || v->k == V_FLOAT; }
static inline double num(const Value *v) { return v->k == V_INT ? (double)v->i : v->f; }

enum { MAX_ARGS = 12 };

/* Bounds on compile-time evaluation, which creates no tensor and so no graph node that the
 * node limit would count: a loop or a recursion that only computes numbers or strings
 * stops with an error at the statement or call that crosses them. A step is a statement,
 * a loop iteration, a call, an item of a list or 16 characters of a string made at
 * compile time; a layer of a real model takes a few. MAX_STRING (ast.h) bounds one string. */
enum { EVAL_BUDGET = 1000000 };
void eval_charge(Lower *L, Scope *s, const SrcLoc *loc, long long steps);

/* B and the numbers computed from it (2 * B, B + 1) are known only when the step runs: a
 * dimension or an operand of tensor arithmetic, never a compile-time count, size, choice
 * or name. check_known stops at loc when v depends on B; `what` names the use. */
static inline int batch_dependent(const Value *v) { return is_num(v) && (v->bpow || v->bbad); }
void check_known(Lower *L, Scope *s, const Value *v, const SrcLoc *loc, const char *what);

/* A number that becomes an f32 value (a constant, an attribute, an initializer, a train
 * setting) must be one: out of float's range it would be inf, or 0 below its smallest
 * nonzero value, and C refuses such a literal. loc is where it is written. */
void check_f32(const SrcLoc *loc, double v);

typedef struct Sig {
    const char *params[MAX_ARGS]; /* "x", "units", "bias=", ...: a trailing '=' marks optional */
} Sig;

typedef struct Args {
    Value v[MAX_ARGS];
    const Expr *e[MAX_ARGS]; /* the argument expressions (NULL when defaulted) */
    int given[MAX_ARGS];
} Args;

typedef Value (*BuiltinFn)(Lower *L, Scope *s, const Expr *call, Args *a);

typedef struct Builtin {
    const char *name;
    BuiltinFn fn;
    Sig sig;
} Builtin;

extern const Builtin builtins[];
extern const int nbuiltins;

Value eval_expr(Lower *L, Scope *s, const Expr *e);
const SrcLoc *loc_at(Lower *L, Scope *s, const SrcLoc *loc);
const char *kind_name(VKind k);
int as_tensor(Lower *L, Scope *s, Value v, const Expr *e, const char *what);
void scope_bind(Lower *L, Scope *s, const char *name, Value v);
Binding *scope_lookup(Scope *s, const char *name);
Binding *scope_lookup_here(const Scope *s, const char *name);
const char *scope_name(Lower *L, Scope *s, const char *kind, const char *explicit_name);
int make_param(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, InitKind init, double a, double b);
const char *names_hint(Lower *L, const char *key, const char *const *names, int n);
void bind_args(Lower *L, Scope *s, const Expr *call, const Sig *sig, Args *out);
const SrcLoc *arg_loc(Lower *L, Scope *s, const Expr *call, const Args *a, int i);
int arg_tensor(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name);
long long arg_int(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, long long dflt,
                  long long lo);
int arg_flag(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, int dflt);
double arg_num(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name, double dflt);
const char *arg_str(Lower *L, Scope *s, const Expr *call, const Args *a, int i, const char *name);
/* The `name = "..."` of a layer (NULL when not given), checked by check_layer_name. */
const char *arg_name(Lower *L, Scope *s, const Expr *call, const Args *a, int i);
void check_layer_name(Lower *L, Scope *s, const SrcLoc *loc, const char *what, const char *name);
int make_state(Lower *L, Scope *s, const SrcLoc *loc, const char *name, Shape shape, double value);

/* Builtins in files of their own (builtins_<family>.c). */
Value b_full(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_broadcast_to(Lower *L, Scope *s, const Expr *call, Args *a);
/* The builtins of sequence models (builtins_seq.c). */
Value b_layer_norm(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_rms_norm(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_embedding(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_where(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_causal_mask(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_stop_gradient(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_round_bf16(Lower *L, Scope *s, const Expr *call, Args *a);
Value b_attention(Lower *L, Scope *s, const Expr *call, Args *a); /* builtins_attention.c */
/* builtins_resample.c: argmax, and upsample's bilinear mode (-1 when the mode is nearest) */
Value b_argmax(Lower *L, Scope *s, const Expr *call, Args *a);
int upsample_mode_bilinear(Lower *L, Scope *s, const Expr *call, const Args *a, int mode_arg, int x,
                           const int64_t f[2]);

/* In a builtin: the call's location, and tensor argument i. */
#define LOCE loc_at(L, s, &call->loc)
#define T(i, name) arg_tensor(L, s, call, a, i, name)

#endif
