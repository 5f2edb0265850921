/* train_spec.c - the model's name and its train { } section: batch size, epochs, seed,
 * optimizer, learning-rate schedule, gradient clipping, data augmentation and
 * normalisation, frozen parameters and those without weight decay. The optimizer,
 * clipping, freezing and decay exclusion are compiled into the train step; the rest
 * (and the lr) are defaults the generated trainer starts from, which its flags override
 * (runtime/settings.def pairs each key with its flag). Every value is checked here, at
 * the line that sets it. */
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "lower.h"
#include "mlcrt_error.h"

/* A compile-time number: an int or float literal, or a negated one. */
static int literal(const Expr *e, double *out) {
    if (e->kind == EX_INT) return *out = (double)e->ival, 1;
    if (e->kind == EX_FLOAT) return *out = e->fval, 1;
    if (e->kind == EX_UNARY && e->op == '-' && literal(e->lhs, out)) return *out = -*out, 1;
    return 0;
}

static double number(const Expr *e, const char *what, double lo, int lo_open) {
    double x;
    if (!literal(e, &x)) diag_error(&e->loc, "%s must be a number", what);
    if (lo_open ? !(x > lo) : !(x >= lo))
        diag_error(&e->loc, "%s must be %s %g", what, lo_open ? "above" : "at least", lo);
    return x;
}

/* The largest value of an integer setting (batch, epochs, accum, seed): far above any
 * real run, and every count derived from it still fits an int. */
#define SETTING_MAX 1000000000LL

static long long integer(const Expr *e, const char *what, long long lo) {
    if (e->kind != EX_INT) diag_error(&e->loc, "%s must be an integer from %lld to %lld", what, lo, SETTING_MAX);
    if (e->ival < lo || e->ival > SETTING_MAX)
        diag_error(&e->loc, "%s must be an integer from %lld to %lld, found %lld", what, lo, SETTING_MAX,
                   (long long)e->ival);
    return e->ival;
}

static _Noreturn void unknown_key(Arena *a, const SrcLoc *loc, const char *what, const char *key,
                                  const char *const *keys, int n) {
    const char *near = diag_nearest(key, keys, n);
    diag_error_hint(loc, near ? arena_printf(a, "did you mean '%s'?", near) : NULL, "%s has no setting '%s'", what,
                    key);
}

/* adam(lr, beta1, beta2, eps, weight_decay), adamw(... weight_decay = 0.01),
 * sgd(lr = 0.01, momentum, nesterov, weight_decay) */
static void read_optimizer(Arena *a, const Expr *e, ModelSpec *spec) {
    OptimizerSpec *o = &spec->opt;
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
    for (int i = 0; i < e->nargs; i++) {
        const Arg *arg = &e->args[i];
        if (!arg->keyword) diag_error(&arg->value->loc, "%s: give its settings by name, e.g. lr = 1e-3", e->name);
        const char *k = arg->keyword;
        const Expr *v = arg->value;
        if (!strcmp(k, "lr")) o->lr = number(v, "lr", 0, 1);
        else if (!strcmp(k, "weight_decay")) o->weight_decay = number(v, "weight_decay", 0, 0);
        else if (adam && !strcmp(k, "beta1")) o->beta1 = number(v, "beta1", 0, 0);
        else if (adam && !strcmp(k, "beta2")) o->beta2 = number(v, "beta2", 0, 0);
        else if (adam && !strcmp(k, "eps")) o->eps = number(v, "eps", 0, 1);
        else if (!adam && !strcmp(k, "momentum")) o->momentum = number(v, "momentum", 0, 0);
        else if (!adam && !strcmp(k, "nesterov")) {
            if (v->kind != EX_NAME || (strcmp(v->name, "true") && strcmp(v->name, "false")))
                diag_error(&v->loc, "nesterov must be true or false");
            o->nesterov = !strcmp(v->name, "true");
        } else {
            unknown_key(a, &arg->kw_loc, e->name, k, adam ? adam_keys : sgd_keys, adam ? 5 : 4);
        }
        if ((adam && (o->beta1 >= 1 || o->beta2 >= 1)) || o->momentum >= 1)
            diag_error(&v->loc, "%s: '%s' must be below 1", e->name, k);
    }
}

/* constant | cosine | cosine(warmup = E) | step(size = N, gamma = X, warmup = E) | onecycle */
static void read_schedule(Arena *a, const Expr *v, ModelSpec *spec) {
    static const char *kinds[] = {"constant", "cosine", "step", "onecycle"};
    const char *name = v->kind == EX_NAME || v->kind == EX_CALL ? v->name : v->kind == EX_STRING ? v->sval : "";
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, kinds[i])) k = i;
    if (k < 0)
        diag_error_hint(&v->loc, "write constant, cosine, cosine(warmup = 1), step(size = 3, gamma = 0.1) or onecycle",
                        "unknown schedule");
    spec->schedule = kinds[k];
    static const char *keys[] = {"warmup", "size", "gamma"};
    for (int i = 0; v->kind == EX_CALL && i < v->nargs; i++) {
        const Arg *arg = &v->args[i];
        const char *key = arg->keyword ? arg->keyword : "";
        if (!strcmp(key, "warmup") && (k == 1 || k == 2)) spec->warmup = number(arg->value, "warmup", 0, 0);
        else if (!strcmp(key, "size") && k == 2) spec->step_size = (int)integer(arg->value, "size", 1);
        else if (!strcmp(key, "gamma") && k == 2) spec->step_gamma = number(arg->value, "gamma", 0, 1);
        else unknown_key(a, arg->keyword ? &arg->kw_loc : &arg->value->loc, name, key, keys, k == 2 ? 3 : 1);
    }
}

/* mean = 0.286 or mean = [0.49, 0.48, 0.45]: up to 4 channels */
static int read_channels(const Expr *v, const char *what, double *out, int positive) {
    if (v->kind != EX_LIST) return out[0] = number(v, what, 0, positive), 1;
    if (v->nargs < 1 || v->nargs > 4) diag_error(&v->loc, "%s takes 1 to 4 values, one per channel", what);
    for (int i = 0; i < v->nargs; i++) out[i] = number(v->args[i].value, what, 0, positive);
    return v->nargs;
}

/* freeze = "stem.*" or ["stem.*", "fc.bias"]; no_decay also takes "biases_and_norms". */
static void read_patterns(Arena *a, const Expr *v, const char *key, ParamPatterns *out) {
    int n = v->kind == EX_LIST ? v->nargs : 1;
    const char *example = !strcmp(key, "freeze") ? "e.g. freeze = [\"stem.*\", \"fc.bias\"]"
                                                 : "e.g. no_decay = \"biases_and_norms\" or [\"*.bias\"]";
    if (v->kind == EX_LIST && n == 0) diag_error_hint(&v->loc, example, "%s: the list is empty", key);
    out->pattern = ARENA_ARRAY(a, const char *, n);
    out->loc = ARENA_ARRAY(a, const SrcLoc *, n);
    out->n = 0;
    for (int i = 0; i < n; i++) {
        const Expr *e = v->kind == EX_LIST ? v->args[i].value : v;
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
    for (int i = 0; i < p->stmts.n; i++) {
        const Stmt *st = p->stmts.items[i];
        if (st->kind == ST_MODEL) {
            if (have_model) diag_error(&st->loc, "the model is named twice");
            have_model = 1;
            spec->name = st->name;
        }
        if (st->kind != ST_TRAIN) continue;
        double lr = -1;
        for (int k = 0; k < st->settings.n; k++) {
            const Stmt *kv = st->settings.items[k];
            const char *key = kv->name;
            const Expr *v = kv->value;
            if (!strcmp(key, "batch")) spec->batch = (int)integer(v, "batch", 1);
            else if (!strcmp(key, "epochs")) spec->epochs = (int)integer(v, "epochs", 1);
            else if (!strcmp(key, "accum")) spec->accum = (int)integer(v, "accum", 1);
            else if (!strcmp(key, "seed")) spec->seed = (unsigned long long)integer(v, "seed", 0);
            else if (!strcmp(key, "lr")) lr = number(v, "lr", 0, 1);
            else if (!strcmp(key, "optimizer")) read_optimizer(a, v, spec);
            else if (!strcmp(key, "schedule")) read_schedule(a, v, spec);
            else if (!strcmp(key, "clip_norm")) spec->opt.clip_norm = number(v, "clip_norm", 0, 1);
            else if (!strcmp(key, "ema")) {
                spec->opt.ema = number(v, "ema", 0, 1);
                if (!(spec->opt.ema < 1)) diag_error_hint(&v->loc, "e.g. ema = 0.999", "ema must be below 1");
            } else if (!strcmp(key, "freeze")) read_patterns(a, v, "freeze", &spec->freeze);
            else if (!strcmp(key, "no_decay")) read_patterns(a, v, "no_decay", &spec->no_decay);
            else if (!strcmp(key, "augment")) {
                if (v->kind != EX_STRING)
                    diag_error_hint(&v->loc, "e.g. augment = \"crop:4,flip\"", "augment must be a string");
                /* The trainer's own parser: a spec it would reject fails here, not at run
                 * time. Its message names the flag (--augment); this one, the key. */
                mlcrt_augment aug;
                char msg[MLCRT_MSG_SIZE];
                if (mlcrt_augment_parse(v->sval, &aug, msg, sizeof msg) != MLCRT_OK)
                    diag_error(&v->loc, "%s", strncmp(msg, "--", 2) ? msg : msg + 2);
                spec->augment = v->sval;
            } else if (!strcmp(key, "mean")) n_mean = read_channels(v, "mean", spec->norm_mean, 0), mean_at = v;
            else if (!strcmp(key, "std")) n_std = read_channels(v, "std", spec->norm_std, 1), std_at = v;
            else {
                const char *keys[N_TRAIN_ROWS];
                const char *near = diag_nearest(key, keys, key_names(keys));
                diag_error_hint(&kv->loc, near ? arena_printf(a, "did you mean '%s'?", near) : NULL,
                                "unknown train setting '%s'", key);
            }
        }
        if (lr > 0) spec->opt.lr = lr;
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
