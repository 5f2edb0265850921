/* train_spec.c - the model's name and its train { } section: batch size, epochs, seed,
 * optimizer, learning-rate schedule, gradient clipping, data augmentation and
 * normalisation, frozen parameters and those without weight decay. The optimizer,
 * clipping, freezing and decay exclusion are compiled into the train step; the rest
 * (and the lr) are defaults the generated trainer starts from, which its flags override
 * (runtime/settings.def pairs each key with its flag). Every value is checked here, at
 * the line that sets it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ckpt.h"
#include "data.h"
#include "lower_internal.h"
#include "mlcrt_error.h"

/* Settings are compile-time expressions (`batch = 2 * 32`, `lr = base_lr / 10`), which
 * the model's evaluator (lower.c) computes, in a scope of the constants the program binds
 * at the top level before its train section: names assigned there outside if and for, to
 * expressions of numbers and earlier constants. The scope is made at the first name a
 * setting uses. */
typedef struct SpecCtx {
    Arena *a;
    const Program *p;
    int upto; /* the train section's index among the top-level statements */
    Lower L;
    Scope consts;
    int have_consts;
} SpecCtx;

/* What a name not bound to a constant is bound to in the scope: it is a tensor, or it
 * has no single value before the train section. */
static const Value not_constant = {.k = V_NONE};

/* Whether e is made of numbers, strings, booleans and constants only (no call, no B, no
 * tensor); reports why not at the culprit when `what` is given (else only answers). */
static int is_constant(SpecCtx *c, const Expr *e, const char *what) {
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT:
    case EX_STRING: return 1;
    case EX_NAME: {
        if (!strcmp(e->name, "true") || !strcmp(e->name, "false")) return 1;
        int batch = !strcmp(e->name, "B");
        Binding *b = scope_lookup(&c->consts, e->name);
        int tensor_or_varying = b && b->v.k == V_NONE;
        if (!what) return !batch && b && !tensor_or_varying;
        if (batch) diag_error(&e->loc, "%s depends on the batch size B, which is known only when the model runs", what);
        if (tensor_or_varying)
            diag_error_hint(&e->loc, "a setting may use numbers and the names of constants bound before train { }",
                            "%s: '%s' is not a constant at the top level (a tensor, or assigned in an if or a loop)",
                            what, e->name);
        return 1; /* or unbound, which the evaluator reports with the names near it */
    }
    case EX_CALL:
        if (what) diag_error(&e->loc, "%s must be a compile-time number, not a call", what);
        return 0;
    case EX_BINARY: return is_constant(c, e->lhs, what) && is_constant(c, e->rhs, what);
    case EX_UNARY: return is_constant(c, e->lhs, what);
    case EX_LIST:
        for (int i = 0; i < e->nargs; i++)
            if (!is_constant(c, e->args[i].value, what)) return 0;
        return 1;
    }
    return 0;
}

/* Marks every name that a statement list assigns (an if's or loop's body) as no constant. */
static void mark_assigned(SpecCtx *c, const StmtList *body) {
    for (int i = 0; i < body->n; i++) {
        const Stmt *st = body->items[i];
        if (st->kind == ST_ASSIGN || st->kind == ST_FOR) scope_bind(&c->L, &c->consts, st->name, not_constant);
        mark_assigned(c, &st->body);
        mark_assigned(c, &st->else_body);
    }
}

/* The constants bound before the train section, in the order the program binds them. */
static void bind_constants(SpecCtx *c) {
    c->have_consts = 1;
    for (int i = 0; i < c->upto; i++) {
        const Stmt *st = c->p->stmts.items[i];
        if (st->kind == ST_ASSIGN)
            scope_bind(&c->L, &c->consts, st->name,
                       is_constant(c, st->value, NULL) ? eval_expr(&c->L, &c->consts, st->value) : not_constant);
        else if (st->kind == ST_INPUT || st->kind == ST_PARAM) scope_bind(&c->L, &c->consts, st->name, not_constant);
        else if (st->kind == ST_FOR) scope_bind(&c->L, &c->consts, st->name, not_constant);
        if (st->kind == ST_IF || st->kind == ST_FOR) mark_assigned(c, &st->body), mark_assigned(c, &st->else_body);
    }
}

/* Whether e names anything but true and false: only then are the constants needed. */
static int uses_names(const Expr *e) {
    if (e->kind == EX_NAME) return strcmp(e->name, "true") && strcmp(e->name, "false");
    if ((e->lhs && uses_names(e->lhs)) || (e->rhs && uses_names(e->rhs))) return 1;
    for (int i = 0; i < e->nargs; i++)
        if (uses_names(e->args[i].value)) return 1;
    return 0;
}

/* The value of setting `what`, written e: a compile-time expression, evaluated. */
static Value setting(SpecCtx *c, const Expr *e, const char *what) {
    if (!c->have_consts && uses_names(e)) bind_constants(c);
    is_constant(c, e, what);
    return eval_expr(&c->L, &c->consts, e);
}

/* Where a setting's value is written: the whole expression when it is on one line (an
 * operator's own location is the operator). */
static SrcLoc span(const Expr *e) {
    const Expr *l = e, *r = e;
    while (l->kind == EX_BINARY) l = l->lhs;
    while (r->kind == EX_BINARY || (r->kind == EX_UNARY && r->lhs)) r = r->kind == EX_BINARY ? r->rhs : r->lhs;
    SrcLoc loc = l->loc;
    if (r->loc.line == l->loc.line && r->loc.col >= l->loc.col) loc.len = r->loc.col + r->loc.len - l->loc.col;
    return loc;
}

static double number(SpecCtx *c, const Expr *e, const char *what, double lo, int lo_open) {
    Value v = setting(c, e, what);
    SrcLoc at = span(e);
    if (!is_num(&v)) diag_error(&at, "%s must be a number, found %s", what, kind_name(v.k));
    double x = num(&v);
    if (lo_open ? !(x > lo) : !(x >= lo)) diag_error(&at, "%s must be %s %g", what, lo_open ? "above" : "at least", lo);
    check_f32(&at, x); /* the generated trainer holds every setting as a float */
    return x;
}

/* The largest value of an integer setting (epochs, seed, a step schedule's size): far
 * above any real run, and every count derived from it still fits an int. batch and
 * accum have their own (settings.def). */
#define SETTING_MAX 1000000000LL

/* An integer setting in [lo, hi]; why (or NULL) says where hi comes from, as a hint. */
static long long integer(SpecCtx *c, const Expr *e, const char *what, long long lo, long long hi, const char *why) {
    Value v = setting(c, e, what);
    SrcLoc at = span(e);
    if (v.k == V_FLOAT) { /* batch = 10 / 4: the value it came to, as the range errors below say */
        /* ... with a point where it is whole (32.0), which "found 32" would hide */
        const char *point = isfinite(v.f) && v.f == floor(v.f) && fabs(v.f) < 1e15 ? ".0" : "";
        diag_error_hint(&at, why, "%s must be an integer from %lld to %lld, found the number %.15g%s", what, lo, hi,
                        v.f, point);
    }
    if (v.k != V_INT)
        diag_error_hint(&at, why, "%s must be an integer from %lld to %lld, found %s", what, lo, hi, kind_name(v.k));
    if (v.i < lo || v.i > hi)
        diag_error_hint(&at, why, "%s must be an integer from %lld to %lld, found %lld", what, lo, hi, v.i);
    return v.i;
}

static _Noreturn void unknown_key(Arena *a, const SrcLoc *loc, const char *what, const char *key,
                                  const char *const *keys, int n) {
    const char *near = diag_nearest(key, keys, n), *hint = NULL;
    if (near) hint = arena_printf(a, "did you mean '%s'?", near);
    else if (n > 0) { /* nothing close: the settings there are */ hint = arena_printf(a, "%s takes %s", what, keys[0]);
        for (int k = 1; k < n; k++) hint = arena_printf(a, "%s%s%s", hint, k == n - 1 ? " and " : ", ", keys[k]);
    }
    diag_error_hint(loc, hint, "%s has no setting '%s'", what, key);
}

/* adam(lr, beta1, beta2, eps, weight_decay), adamw(... weight_decay = 0.01),
 * sgd(lr = 0.01, momentum, nesterov, weight_decay) */
static void read_optimizer(SpecCtx *c, const Expr *e, ModelSpec *spec) {
    OptimizerSpec *o = &spec->opt;
    /* `adam` or "adam": known, but an optimizer is always a call (unlike a schedule) */
    const char *known = (e->kind == EX_NAME || e->kind == EX_STRING) ? (e->kind == EX_NAME ? e->name : e->sval) : "";
    if (!strcmp(known, "adam") || !strcmp(known, "adamw") || !strcmp(known, "sgd"))
        diag_error_hint(&e->loc, arena_printf(c->a, "write %s() or %s(lr = ...)", known, known),
                        "optimizer must be a call, found %s", e->kind == EX_NAME ? "a name" : "a string");
    if (e->kind != EX_CALL || (strcmp(e->name, "adam") && strcmp(e->name, "adamw") && strcmp(e->name, "sgd")))
        diag_error_hint(&e->loc,
                        "write adam(lr = 1e-3), adamw(lr = 1e-3, weight_decay = 0.01) or sgd(lr = 0.1, momentum = 0.9)",
                        "unknown optimizer");
    o->kind = !strcmp(e->name, "adam") ? "adam" : !strcmp(e->name, "adamw") ? "adamw" : "sgd";
    if (!strcmp(o->kind, "adamw")) o->weight_decay = 0.01; /* PyTorch's default */
    if (!strcmp(o->kind, "sgd")) o->lr = 0.01;
    int adam = strcmp(o->kind, "sgd") != 0;
    static const char *adam_keys[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
    static const char *sgd_keys[] = {"lr", "momentum", "nesterov", "weight_decay"};
    const Expr *nesterov_at = NULL;
    for (int i = 0; i < e->nargs; i++) {
        const Arg *arg = &e->args[i];
        if (!arg->keyword) diag_error(&arg->value->loc, "%s: give its settings by name, e.g. lr = 1e-3", e->name);
        const char *k = arg->keyword;
        const Expr *v = arg->value;
        if (!strcmp(k, "lr")) o->lr = number(c, v, "lr", 0, 1);
        else if (!strcmp(k, "weight_decay")) o->weight_decay = number(c, v, "weight_decay", 0, 0);
        else if (adam && !strcmp(k, "beta1")) o->beta1 = number(c, v, "beta1", 0, 0);
        else if (adam && !strcmp(k, "beta2")) o->beta2 = number(c, v, "beta2", 0, 0);
        else if (adam && !strcmp(k, "eps")) o->eps = number(c, v, "eps", 0, 1);
        else if (!adam && !strcmp(k, "momentum")) o->momentum = number(c, v, "momentum", 0, 0);
        else if (!adam && !strcmp(k, "nesterov")) {
            if (v->kind != EX_NAME || (strcmp(v->name, "true") && strcmp(v->name, "false")))
                diag_error(&v->loc, "nesterov must be true or false");
            o->nesterov = !strcmp(v->name, "true");
            nesterov_at = v;
        } else {
            unknown_key(c->a, &arg->kw_loc, e->name, k, adam ? adam_keys : sgd_keys, adam ? 5 : 4);
        }
        if ((adam && (o->beta1 >= 1 || o->beta2 >= 1)) || o->momentum >= 1)
            diag_error(&v->loc, "%s: '%s' must be below 1", e->name, k);
    }
    /* Nesterov's look-ahead is along the momentum: without one it would be plain SGD
     * under another name (PyTorch refuses it too) */
    if (o->nesterov && !(o->momentum > 0))
        diag_error_hint(&nesterov_at->loc, "write sgd(momentum = 0.9, nesterov = true)",
                        "sgd: nesterov = true needs a momentum above 0");
}

/* constant | cosine | cosine(warmup = E) | step(size = N, gamma = X, warmup = E) | onecycle */
static void read_schedule(SpecCtx *c, const Expr *v, ModelSpec *spec) {
    static const char *kinds[] = {"constant", "cosine", "step", "onecycle"};
    if (v->kind == EX_STRING) /* the docs say name or call, as optimizer = adam(...) */
        diag_error_hint(&v->loc, "write it without quotes, e.g. schedule = cosine",
                        "schedule is a name or a call, not a string");
    const char *name = v->kind == EX_NAME || v->kind == EX_CALL ? v->name : "";
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, kinds[i])) k = i;
    if (k < 0)
        diag_error_hint(&v->loc, "write constant, cosine, cosine(warmup = 1), step(size = 3, gamma = 0.1) or onecycle",
                        "unknown schedule");
    spec->schedule = kinds[k];
    /* the settings each kind takes: cosine the first one, step all three */
    static const char *keys[] = {"warmup", "size", "gamma"};
    static const int n_keys[] = {0, 1, 3, 0};
    for (int i = 0; v->kind == EX_CALL && i < v->nargs; i++) {
        const Arg *arg = &v->args[i];
        const char *key = arg->keyword;
        if (!n_keys[k]) diag_error(key ? &arg->kw_loc : &arg->value->loc, "%s takes no settings", name);
        if (!key)
            diag_error(&arg->value->loc, "%s: give its settings by name, e.g. %s", name,
                       k == 2 ? "size = 3" : "warmup = 1");
        if (!strcmp(key, "warmup")) spec->warmup = number(c, arg->value, "warmup", 0, 0);
        else if (!strcmp(key, "size") && k == 2)
            spec->step_size = (int)integer(c, arg->value, "size", 1, SETTING_MAX, NULL);
        else if (!strcmp(key, "gamma") && k == 2) spec->step_gamma = number(c, arg->value, "gamma", 0, 1);
        else unknown_key(c->a, &arg->kw_loc, name, key, keys, n_keys[k]);
    }
}

/* Lists and strings are read as written, each item at its own place; a name in a setting
 * stands for a number only. A name bound to a constant of kind k (`L = [0.5]` then `mean =
 * L`) is refused here, where the error would otherwise deny it is a list at all. */
static void no_named(SpecCtx *c, const Expr *e, VKind k, const char *what, const char *written, const char *example) {
    if (e->kind != EX_NAME) return;
    if (!c->have_consts) bind_constants(c);
    const Binding *b = scope_lookup(&c->consts, e->name);
    if (b && b->v.k == k)
        diag_error_hint(&e->loc, example, "%s: write the %s here: in train { }, a name may stand only for a number",
                        what, written);
}

/* mean = 0.286 or mean = [0.49, 0.48, 0.45]: up to 4 channels */
static int read_channels(SpecCtx *c, const Expr *v, const char *what, double *out, int positive) {
    /* std above 0; mean any number, as --mean takes (data centred at a negative value) */
    const double lo = positive ? 0 : -HUGE_VAL;
    no_named(c, v, V_LIST, what, "list", arena_printf(c->a, "e.g. %s = [0.5, 0.5, 0.5]", what));
    if (v->kind != EX_LIST) return out[0] = number(c, v, what, lo, positive), 1;
    if (v->nargs < 1 || v->nargs > 4) diag_error(&v->loc, "%s takes 1 to 4 values, one per channel", what);
    for (int i = 0; i < v->nargs; i++) out[i] = number(c, v->args[i].value, what, lo, positive);
    return v->nargs;
}

/* freeze = "stem.*" or ["stem.*", "fc.bias"]; no_decay also takes "biases_and_norms". */
static void read_patterns(SpecCtx *c, Arena *a, const Expr *v, const char *key, ParamPatterns *out) {
    int n = v->kind == EX_LIST ? v->nargs : 1;
    const char *example = !strcmp(key, "freeze") ? "e.g. freeze = [\"stem.*\", \"fc.bias\"]"
                                                 : "e.g. no_decay = \"biases_and_norms\" or [\"*.bias\"]";
    if (v->kind == EX_LIST && n == 0) diag_error_hint(&v->loc, example, "%s: the list is empty", key);
    out->pattern = ARENA_ARRAY(a, const char *, n);
    out->loc = ARENA_ARRAY(a, const SrcLoc *, n);
    out->n = 0;
    for (int i = 0; i < n; i++) {
        const Expr *e = v->kind == EX_LIST ? v->args[i].value : v;
        no_named(c, e, V_STR, key, "strings", example);
        if (e->kind != EX_STRING)
            diag_error_hint(&e->loc, example, "%s takes parameter names or patterns, as strings", key);
        if (!strcmp(key, "no_decay") && !strcmp(e->sval, "biases_and_norms")) {
            out->rank1 = 1;
            continue;
        }
        out->pattern[out->n] = e->sval;
        out->loc[out->n++] = &e->loc;
    }
}

/* The train { } keys and their defaults come from the runtime's table of settings
 * (runtime/settings.def), which also gives the trainer's flags: a key's default here and
 * its flag's default in the trainer are one value. An argument of a key's value
 * ("schedule(warmup)") is read with the key, not listed as a key. */
static const char *const train_keys[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) KEY,
#define MLC_KEY(KEY, DEFAULT, HELP) KEY,
#include "settings.def"
};
enum { N_TRAIN_ROWS = sizeof train_keys / sizeof train_keys[0] };

/* The default of key in the table (as written in a .mdl). */
static const char *key_default(const char *key) {
    static const struct {
        const char *key, *def;
    } rows[] = {
#define MLC_FLAG(FIELD, FLAG, KIND, ARG, CHOICES, DEFAULT, KEY, SECTION, HELP) {KEY, DEFAULT},
#define MLC_KEY(KEY, DEFAULT, HELP) {KEY, DEFAULT},
#include "settings.def"
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!strcmp(rows[i].key, key)) return rows[i].def;
    mlc_die("settings.def has no train key '%s'", key);
}

/* The keys a train { } section takes (no empty ones, no arguments), for "did you mean". */
static int key_names(const char **out) {
    int n = 0;
    for (int i = 0; i < N_TRAIN_ROWS; i++)
        if (train_keys[i][0] && !strchr(train_keys[i], '(')) out[n++] = train_keys[i];
    return n;
}

/* Name families of the libraries a trainer links (the C library, POSIX, C11 threads,
 * OpenMP, OpenBLAS, MPI). The generated C defines global functions NAME_create,
 * NAME_destroy, NAME_update, NAME_save, NAME_load, NAME_forward, ...; for a name of these
 * families some of them are those libraries' own functions (pthread_create,
 * pthread_mutex_destroy, sem_destroy, timer_create, mtx_destroy, acc_create), which the
 * model's would replace in the trainer: it then hangs or crashes. A whole family is refused,
 * not just today's clashes, since each header reserves its prefix for more functions.
 * `any`: every name that starts with the prefix; otherwise the prefix alone or before '_'.
 * Compared ignoring case, as some families (GOMP_, MPI_) are upper case. */
static const struct {
    const char *prefix;
    int any;
    const char *what;
} library_families[] = {
    {"pthread", 1, "POSIX threads (pthread_*)"},
    {"posix", 1, "the POSIX library (posix_*)"},
    {"sem", 0, "POSIX semaphores (sem_*)"},
    {"timer", 0, "POSIX timers (timer_*)"},
    {"timerfd", 0, "the C library (timerfd_*)"},
    {"mtx", 0, "C11 threads (mtx_*)"},
    {"cnd", 0, "C11 threads (cnd_*)"},
    {"thrd", 0, "C11 threads (thrd_*)"},
    {"tss", 0, "C11 threads (tss_*)"},
    {"epoll", 0, "the C library (epoll_*)"},
    {"memfd", 0, "the C library (memfd_*)"},
    {"argz", 0, "the C library (argz_*)"},
    {"clnt", 1, "the C library's Sun RPC (clnt*_create)"},
    {"svc", 1, "the C library's Sun RPC (svc*_create)"},
    {"xdr", 1, "the C library's Sun RPC (xdr*_create)"},
    {"authdes", 0, "the C library's Sun RPC (authdes_create)"},
    {"authnone", 0, "the C library's Sun RPC (authnone_create)"},
    {"authunix", 0, "the C library's Sun RPC (authunix_create)"},
    {"omp", 1, "OpenMP (omp_*)"},
    {"gomp", 1, "OpenMP (GOMP_*)"},
    {"kmp", 1, "OpenMP (kmp_*)"},
    {"acc", 0, "OpenACC in the OpenMP library (acc_create)"},
    {"goacc", 1, "OpenACC in the OpenMP library (GOACC_*)"},
    {"cblas", 1, "BLAS (cblas_*)"},
    {"openblas", 1, "OpenBLAS (openblas_*)"},
    {"lapack", 1, "LAPACK (LAPACKE_*, lapack_*)"},
    {"mpi", 0, "MPI (MPI_*)"},
    {"pmpi", 0, "MPI (PMPI_*)"},
};

/* Why `name` belongs to a library's family (library_families), or NULL. */
static const char *library_family(const char *name) {
    for (size_t i = 0; i < sizeof library_families / sizeof library_families[0]; i++) {
        size_t n = strlen(library_families[i].prefix);
        if (strncasecmp(name, library_families[i].prefix, n)) continue;
        if (library_families[i].any || !name[n] || name[n] == '_') return library_families[i].what;
    }
    return NULL;
}

/* Why `name` cannot name a model, or NULL. The generated C and CUDA name the model's API
 * NAME_create, NAME_model, ... beside their own file-scope names (api_create, the CUDA
 * kernels k<N>_<op>) and those of the runtime and kernels they include (mlcrt_*, mlc_*,
 * and the header mlcrt.h that a generated NAME.h would shadow): a model name whose
 * NAME_... can be one of those makes C that does not compile. */
static const char *reserved_model_name(const char *name) {
    if (!strcmp(name, "api")) return "the generated code names its own functions api_*";
    if (!strncasecmp(name, "mlc", 3) &&
        (!name[3] || name[3] == '_' || !strcasecmp(name + 3, "rt") || !strncasecmp(name + 3, "rt_", 3)))
        return "mlc's runtime and kernels use the names mlc, mlcrt, mlc_* and mlcrt_*";
    if (name[0] == 'k' && name[1] >= '0' && name[1] <= '9') {
        const char *p = name + 1;
        while (*p >= '0' && *p <= '9') p++;
        if (!*p || *p == '_') return "the generated CUDA names its kernels k<N>_<op>";
    }
    if (name[0] == '_') return "C reserves names that begin with '_' for its implementation";
    return NULL;
}

/* One train { } section's settings into spec; each key at most once. */
static void read_train(SpecCtx *c, const Stmt *st, ModelSpec *spec, int *n_mean, int *n_std, const Expr **mean_at,
                       const Expr **std_at) {
    Arena *a = c->a;
    double lr = -1;
    for (int k = 0; k < st->settings.n; k++) {
        const Stmt *kv = st->settings.items[k];
        const char *key = kv->name;
        const Expr *v = kv->value;
        for (int j = 0; j < k; j++)
            if (!strcmp(st->settings.items[j]->name, key))
                diag_error_hint(
                    &kv->loc,
                    arena_printf(a, "'%s' was first defined at line %d", key, st->settings.items[j]->loc.line),
                    "'%s' is defined twice", key);
        if (!strcmp(key, "batch"))
            spec->batch = (int)integer(c, v, "batch", 1, MLC_MAX_BATCH, "the largest batch mlc plans memory for");
        else if (!strcmp(key, "epochs")) spec->epochs = (int)integer(c, v, "epochs", 1, SETTING_MAX, NULL);
        else if (!strcmp(key, "accum"))
            spec->accum =
                (int)integer(c, v, "accum", 1, MLC_MAX_ACCUM, "dropout tells no more micro-batches of a step apart");
        else if (!strcmp(key, "seed")) spec->seed = (unsigned long long)integer(c, v, "seed", 0, SETTING_MAX, NULL);
        else if (!strcmp(key, "lr")) lr = number(c, v, "lr", 0, 1);
        else if (!strcmp(key, "optimizer")) read_optimizer(c, v, spec);
        else if (!strcmp(key, "schedule")) read_schedule(c, v, spec);
        else if (!strcmp(key, "clip_norm")) spec->opt.clip_norm = number(c, v, "clip_norm", 0, 1);
        else if (!strcmp(key, "ema")) {
            spec->opt.ema = number(c, v, "ema", 0, 1);
            SrcLoc at = span(v);
            if (!(spec->opt.ema < 1)) diag_error_hint(&at, "e.g. ema = 0.999", "ema must be below 1");
        } else if (!strcmp(key, "freeze")) read_patterns(c, a, v, "freeze", &spec->freeze);
        else if (!strcmp(key, "no_decay")) read_patterns(c, a, v, "no_decay", &spec->no_decay);
        else if (!strcmp(key, "augment")) {
            no_named(c, v, V_STR, "augment", "string", "e.g. augment = \"crop:4,flip\"");
            if (v->kind != EX_STRING)
                diag_error_hint(&v->loc, "e.g. augment = \"crop:4,flip\"", "augment must be a string");
            /* The trainer's own parser: a spec it would reject fails here, not at run
             * time. Its message names the flag (--augment); this one, the key. */
            mlcrt_augment aug;
            char msg[MLCRT_MSG_SIZE];
            if (mlcrt_augment_parse(v->sval, &aug, msg, sizeof msg) != MLCRT_OK)
                diag_error(&v->loc, "%s", strncmp(msg, "--", 2) ? msg : msg + 2);
            spec->augment = v->sval;
        } else if (!strcmp(key, "mean")) *n_mean = read_channels(c, v, "mean", spec->norm_mean, 0), *mean_at = v;
        else if (!strcmp(key, "std")) *n_std = read_channels(c, v, "std", spec->norm_std, 1), *std_at = v;
        else {
            const char *keys[N_TRAIN_ROWS];
            const char *near = diag_nearest(key, keys, key_names(keys));
            diag_error_hint(&kv->loc, near ? arena_printf(a, "did you mean '%s'?", near) : NULL,
                            "unknown train setting '%s'", key);
        }
    }
    if (lr > 0) spec->opt.lr = lr;
}

void lower_spec(Arena *a, const Program *p, ModelSpec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->name = "model";
    spec->batch = atoi(key_default("batch"));
    spec->epochs = atoi(key_default("epochs"));
    spec->seed = strtoull(key_default("seed"), NULL, 10);
    spec->schedule = key_default("schedule");
    spec->accum = atoi(key_default("accum"));
    spec->opt = (OptimizerSpec){.kind = "adam", .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    int have_model = 0, n_mean = 0, n_std = 0;
    const Expr *std_at = NULL, *mean_at = NULL;
    const Stmt *train = NULL;
    for (int i = 0; i < p->stmts.n; i++) {
        const Stmt *st = p->stmts.items[i];
        if (st->kind == ST_MODEL) {
            if (have_model) diag_error(&st->loc, "the model is named twice");
            const char *why = reserved_model_name(st->name), *lib = library_family(st->name);
            if (lib)
                why = arena_printf(
                    a, "its functions %s_create, %s_destroy, ... would clash with %s, which a trainer links", st->name,
                    st->name, lib);
            if (why) diag_error_hint(&st->name_loc, why, "the model name '%s' is reserved", st->name);
            if (strlen(st->name) > MLCRT_CKPT_MAX_NAME)
                diag_error(&st->name_loc, "the model name has %zu bytes, more than the %d a checkpoint can store",
                           strlen(st->name), MLCRT_CKPT_MAX_NAME);
            have_model = 1;
            spec->name = st->name;
        }
        if (st->kind != ST_TRAIN) continue;
        if (train)
            diag_error_hint(&st->loc, arena_printf(a, "it was first defined at line %d", train->loc.line),
                            "the train { } section is defined twice");
        train = st;
        SpecCtx c = {.a = a, .p = p, .upto = i, .L = {.a = a, .prog = p, .spec = spec}, .consts = {.prefix = ""}};
        read_train(&c, st, spec, &n_mean, &n_std, &mean_at, &std_at);
    }
    if (n_mean != n_std) {
        if (!n_std)
            diag_error_hint(&mean_at->loc, "e.g. mean = 0.286 with std = 0.353",
                            "mean needs std, one value per channel");
        if (!n_mean)
            diag_error_hint(&std_at->loc, "e.g. mean = 0.286 with std = 0.353",
                            "std needs mean, one value per channel");
        diag_error(&std_at->loc, "mean and std must give the same number of channels (%d and %d)", n_mean, n_std);
    }
    spec->n_norm = n_mean;
}
