/* oracle_dump.c - mlc's side of the PyTorch oracle: runs .mdl cases through the compiler
 * and the reference interpreter (double) and prints what they computed, for
 * check_torch.py to recompute with torch in float64.
 *
 *   oracle_dump [--seed S] [--f32-bias-correction] [--values] CASE.mdl...
 *
 * For each file, one JSON line: the compiled train step's inputs and parameters (filled
 * here from a seeded RNG, so the values are mlc's choice and torch receives them), then
 * for each step the loss, the train-mode output, the gradient each optimizer update
 * consumes (autodiff's, after split_bn and simplify; clipped under clip_norm), named by its
 * parameter, every parameter and state (optimizer moments, batch norm's running
 * statistics) after the updates, and the ops of the compiled train step; then the eval
 * graph's output from the values after the last step. A parameter the loss does not depend
 * on has no update and no gradient.
 * A compile error prints {"file": ..., "error": ...} instead.
 *
 * A case may start with a line `# oracle: classes=K steps=N spe=E` (defaults 2, 1, 1):
 * labels are drawn in [0, K); N train steps are run; E is the steps per epoch the
 * learning-rate schedule is laid out with (as the trainer does for its data set).
 *
 * The interpreter does not evaluate update nodes (interp.h); the updates here follow
 * the emitted kernels (compiler/ops/ops_optim.c: emit_sgd_c, emit_adam_c) in double.
 * The learning rate of each step is the runtime's own mlcrt_schedule_lr, set up as
 * runtime/trainer.c does. --f32-bias-correction computes Adam's 1 - beta^t in float, with
 * the betas rounded to float (also in the moments' weights 1 - beta), as the emitted code
 * did before issue 13's fix, to measure what that costs against torch. (The emitted code
 * itself, in float, is held to torch by check_torch.py's optim_c suite.) --values starts each case from CASE.mdl.vals instead of the RNG
 * (load_values). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest_util.h"
#include "interp.h"
#include "ops.h"
#include "schedule.h"

/* splitmix64: the values every case starts from */
static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unif(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }

typedef struct CaseOpts {
    int classes, steps, spe;
} CaseOpts;

static CaseOpts case_opts(const char *text) {
    CaseOpts o = {2, 1, 1};
    const char *l = strstr(text, "# oracle:");
    if (!l) return o;
    const char *end = strchr(l, '\n');
    for (const char *p = l; p && (!end || p < end); p = strchr(p + 1, ' ')) {
        sscanf(p, " classes=%d", &o.classes);
        sscanf(p, " steps=%d", &o.steps);
        sscanf(p, " spe=%d", &o.spe);
    }
    if (o.classes < 1) o.classes = 1;
    return o;
}

static void put_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if (*s == '\n') printf("\\n");
        else if ((unsigned char)*s >= 32) putchar(*s);
    }
    putchar('"');
}

static void put_vals(const double *v, int64_t n) {
    putchar('[');
    /* non-finite values as Python's json reads them (NaN, Infinity), so they are compared */
    for (int64_t i = 0; i < n; i++) {
        const char *sep = i ? "," : "";
        if (isnan(v[i])) printf("%sNaN", sep);
        else if (isinf(v[i])) printf("%s%sInfinity", sep, v[i] < 0 ? "-" : "");
        else printf("%s%.17g", sep, v[i]);
    }
    putchar(']');
}

/* "name": {"shape": [...], "v": [...]} */
static void put_tensor(const char *name, const Shape *s, const double *v) {
    put_str(name);
    printf(":{\"shape\":[");
    for (int i = 0; i < s->rank; i++) printf("%s%lld", i ? "," : "", (long long)s->d[i]);
    printf("],\"v\":");
    put_vals(v, shape_numel(s));
    putchar('}');
}

/* Sources: parameters by their init range when it is uniform (so a case can keep log's
 * argument positive), otherwise U(-1, 1), so ones/zeros initialisers (batch norm's
 * gamma, beta, biases) do not hide terms; labels in [0, classes). */
static void fill_sources(const Graph *g, Interp *it, int classes) {
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_param && n->op != OP_input) continue;
        int64_t cnt = shape_numel(&n->shape);
        double lo = -1, hi = 1;
        if (n->op == OP_param && attr_i(n, A_INIT) == INIT_UNIFORM) lo = attr_f(n, A_INIT_A), hi = attr_f(n, A_INIT_B);
        for (int64_t i = 0; i < cnt; i++)
            it->vals[id][i] =
                n->dtype == DT_I32 ? (double)(rng_next() % (uint64_t)classes) : lo + (hi - lo) * rng_unif();
    }
}

/* One optimizer update in double, as the emitted C kernel computes it in float. */
static void apply_update(const Node *n, double **vals, int batch, double lr, int64_t t, int f32_bc) {
    int64_t cnt = shape_numel(&n->shape);
    double *p = vals[n->in[0]];
    const double *g = vals[n->in[1]];
    if (n->op == OP_sgd_update) {
        double *v = vals[n->in[2]], mom = attr_f(n, A_MOMENTUM), wd = attr_f(n, A_WEIGHT_DECAY);
        for (int64_t i = 0; i < cnt; i++) {
            double gi = g[i] + wd * p[i];
            v[i] = mom * v[i] + gi;
            p[i] -= lr * (attr_i(n, A_NESTEROV) ? gi + mom * v[i] : v[i]);
        }
    } else if (n->op == OP_sgd_plain_update) {
        double wd = attr_f(n, A_WEIGHT_DECAY);
        for (int64_t i = 0; i < cnt; i++) p[i] -= lr * (g[i] + wd * p[i]);
    } else if (n->op == OP_adam_update) {
        double *m1 = vals[n->in[2]], *m2 = vals[n->in[3]];
        double b1 = attr_f(n, A_BETA1), b2 = attr_f(n, A_BETA2), eps = attr_f(n, A_EPS), wd = attr_f(n, A_WEIGHT_DECAY);
        double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
        if (f32_bc) {
            /* the old kernels' constants were floats (0.999f is 0.99900001287) in the
             * moments and in the corrections alike, and the powers were powf */
            b1 = (float)b1, b2 = (float)b2;
            bc1 = (double)(1.0f - powf((float)b1, (float)t));
            bc2 = (double)(1.0f - powf((float)b2, (float)t));
        }
        for (int64_t i = 0; i < cnt; i++) {
            double gi = attr_i(n, A_DECOUPLED) ? g[i] : g[i] + wd * p[i];
            m1[i] = b1 * m1[i] + (1 - b1) * gi;
            m2[i] = b2 * m2[i] + (1 - b2) * gi * gi;
            double upd = lr / bc1 * m1[i] / (sqrt(m2[i] / bc2) + eps);
            p[i] = (attr_i(n, A_DECOUPLED) ? p[i] * (1 - lr * wd) : p[i]) - upd;
        }
    } else if (n->op == OP_ema_update) {
        /* batch norm's running statistics (emit_ema_c); the variance with n / (n - 1) */
        double *st = vals[n->in[0]], m = attr_f(n, A_MOMENTUM);
        const double *v = vals[n->in[1]];
        double cnt_n = (double)batch * (double)attr_i(n, A_PER_SAMPLE);
        double c = attr_i(n, A_UNBIASED) && cnt_n > 1 ? cnt_n / (cnt_n - 1) : 1.0;
        for (int64_t i = 0; i < cnt; i++) st[i] = (1 - m) * st[i] + m * c * v[i];
    }
}

/* The schedule as runtime/trainer.c sets it up for `spe` steps per epoch. */
static mlcrt_schedule schedule_of(const ModelSpec *sp, int spe) {
    int kind = mlcrt_schedule_parse(sp->schedule ? sp->schedule : "constant");
    int size = sp->step_size > 0 ? sp->step_size : (sp->epochs / 3 > 0 ? sp->epochs / 3 : 1);
    mlcrt_schedule s = {(mlcrt_schedule_kind)(kind < 0 ? 0 : kind),
                        (float)sp->opt.lr,
                        (int64_t)sp->epochs * spe,
                        (int64_t)llround(sp->warmup * spe),
                        (int64_t)size * spe,
                        (float)(sp->step_gamma > 0 ? sp->step_gamma : 0.1)};
    return s;
}

/* --values: CASE.mdl.vals, a generated model's own starting values as the differential
 * driver (check_torch.py's random suite) prints them: `T0 NAME N v...` per parameter and
 * state, `X N v...` the data input, `Y N v...` the labels. Sets every source it names;
 * returns 0, or 1 (with a message) when a count does not match the graph. */
static int load_values(const Graph *g, Interp *it, const char *path) {
    char *text = ct_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "error: %s: cannot read the values\n", path);
        return 1;
    }
    int rc = 0;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char name[256] = "";
        const char *p = line;
        int skip = 0;
        if (!strncmp(line, "T0 ", 3)) {
            if (sscanf(line + 3, "%255s%n", name, &skip) != 1) continue;
            p = line + 3 + skip;
        } else if (!strncmp(line, "X ", 2) || !strncmp(line, "Y ", 2)) {
            p = line + 1;
        } else {
            continue;
        }
        char *end;
        long long cnt = strtoll(p, &end, 10);
        p = end;
        for (int id = 0; id < g->n; id++) {
            const Node *n = &g->nodes[id];
            int hit = name[0] ? (n->op == OP_param || n->op == OP_state) && n->name && !strcmp(n->name, name)
                              : n->op == OP_input && (n->dtype == DT_F32) == (line[0] == 'X');
            if (!hit) continue;
            if (cnt != shape_numel(&n->shape)) {
                fprintf(stderr, "error: %s: %s has %lld values, the graph %lld\n", path,
                        name[0]          ? name
                        : line[0] == 'X' ? "X"
                                         : "Y",
                        cnt, (long long)shape_numel(&n->shape));
                rc = 1;
                break;
            }
            for (long long i = 0; i < cnt; i++) {
                it->vals[id][i] = strtod(p, &end);
                p = end;
            }
            break;
        }
    }
    free(text);
    return rc;
}

/* The eval graph (inference: batch norm's running statistics, fold_bn, no dropout) from
 * the train step's values after its last update: parameters and states by name, the
 * inputs by type. */
static Interp *eval_after(const Graph *ev, const Graph *tr, const Interp *it) {
    Interp *e = interp_new(ev);
    for (int id = 0; id < ev->n; id++) {
        const Node *n = &ev->nodes[id];
        if (n->op != OP_param && n->op != OP_state && n->op != OP_input) continue;
        for (int k = 0; k < tr->n; k++) {
            const Node *t = &tr->nodes[k];
            int same = t->op == n->op && (n->op == OP_input ? t->dtype == n->dtype : !strcmp(t->name, n->name));
            if (same && shape_numel(&t->shape) == shape_numel(&n->shape)) {
                memcpy(e->vals[id], it->vals[k], sizeof(double) * (size_t)shape_numel(&n->shape));
                break;
            }
        }
    }
    interp_run(e);
    return e;
}

static int run_file(const char *path, uint64_t seed, int f32_bc, int values) {
    char *text = ct_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "error: %s: cannot read the case\n", path);
        return 1;
    }
    CaseOpts co = case_opts(text);
    Arena a = {0};
    SrcFile *src = srcfile_from_string(path, text);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    printf("{\"file\":");
    put_str(path);
    if (!r.m) {
        printf(",\"error\":");
        put_str(r.diag ? r.diag : "compile failed");
        printf("}\n");
    } else {
        const Graph *g = r.m->train;
        Interp *it = interp_new(g);
        rng_state = seed * 0x9E3779B97F4A7C15ull + 12345;
        fill_sources(g, it, co.classes);
        char vals[4096];
        snprintf(vals, sizeof vals, "%s.vals", path);
        if (values && load_values(g, it, vals)) {
            interp_free(it);
            ct_compile_free(&r);
            srcfile_free(src);
            arena_free(&a);
            free(text);
            return 1;
        }
        printf(",\"batch\":%d,\"ops\":[", g->batch);
        char seen[OP_COUNT] = {0};
        for (int id = 0; id < g->n; id++) {
            if (seen[g->nodes[id].op]) continue;
            printf("%s\"%s\"", id ? "," : "", op_of(&g->nodes[id])->name);
            seen[g->nodes[id].op] = 1;
        }
        printf("],\"tensors\":{");
        int first = 1;
        for (int id = 0; id < g->n; id++) {
            const Node *n = &g->nodes[id];
            if (n->op != OP_param && n->op != OP_input) continue;
            printf("%s", first ? "" : ",");
            first = 0;
            put_tensor(n->name, &n->shape, it->vals[id]);
        }
        printf("},\"steps\":[");
        mlcrt_schedule sch = schedule_of(&r.m->spec, co.spe);
        for (int s = 0; s < co.steps; s++) {
            double lr = mlcrt_schedule_lr(&sch, s);
            interp_run(it);
            printf("%s{\"lr\":%.17g,\"loss\":%.17g", s ? "," : "", lr, it->vals[g->loss][0]);
            if (g->nout > 0) { /* the first output */
                printf(",\"output\":{");
                put_tensor("y", &g->nodes[g->outputs[0]].shape, it->vals[g->outputs[0]]);
                printf("}");
            }
            printf(",\"grads\":{");
            first = 1;
            for (int id = 0; id < g->n; id++) {
                const Node *n = &g->nodes[id];
                if (op_of(n)->kind != K_UPDATE || n->op == OP_ema_update) continue;
                printf("%s", first ? "" : ",");
                first = 0;
                put_tensor(g->nodes[n->in[0]].name, &n->shape, it->vals[n->in[1]]);
            }
            for (int id = 0; id < g->n; id++)
                if (op_of(&g->nodes[id])->kind == K_UPDATE)
                    apply_update(&g->nodes[id], it->vals, g->batch, lr, s + 1, f32_bc);
            printf("},\"params\":{");
            first = 1;
            for (int id = 0; id < g->n; id++) {
                const Node *n = &g->nodes[id];
                if (n->op != OP_param && n->op != OP_state) continue;
                printf("%s", first ? "" : ",");
                first = 0;
                put_tensor(n->name, &n->shape, it->vals[id]);
            }
            printf("}}");
        }
        printf("]");
        if (r.m->eval->nout > 0) {
            const int eo = r.m->eval->outputs[0];
            Interp *ev = eval_after(r.m->eval, g, it);
            printf(",\"eval\":{");
            put_tensor("y", &r.m->eval->nodes[eo].shape, ev->vals[eo]);
            printf("}");
            interp_free(ev);
        }
        printf("}\n");
        interp_free(it);
    }
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
    free(text);
    return 0;
}

/* Each case's values come from its file name and the seed, never from the other files
 * on the command line, so one case can be rerun alone (FNV-1a). */
static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    uint64_t seed = 1;
    int f32_bc = 0, values = 0, rc = 0, nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end) {
                fprintf(stderr, "error: --seed: expected a non-negative integer, found '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--f32-bias-correction")) {
            f32_bc = 1;
        } else if (!strcmp(argv[i], "--values")) {
            values = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "error: %s: unknown flag (expected --seed S, --f32-bias-correction, --values or .mdl files)\n",
                    argv[i]);
            return 2;
        } else {
            rc |= run_file(argv[i], seed * 1000003ull + name_hash(ct_basename(argv[i])), f32_bc, values);
            nfiles++;
        }
    }
    if (!nfiles) {
        fprintf(
            stderr,
            "error: no .mdl case given (usage: oracle_dump [--seed S] [--f32-bias-correction] [--values] CASE.mdl...)\n");
        return 2;
    }
    fflush(stdout);
    return rc;
}
