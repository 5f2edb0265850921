/* test_gradcheck.c - every op's gradient rule against central finite differences.
 *
 * For every op in the op table (ops.def):
 *   - K_SOURCE and K_UPDATE ops are skipped (autodiff never differentiates through them);
 *     they are listed by name in the output.
 *   - every other op must have a gradient rule, a case builder and at least one case;
 *     otherwise the test fails naming the op. Adding an op without its gradient rule or
 *     its test shapes therefore fails here.
 *   - for each case: the case graph (train mode, B = 3) gets a scalar loss
 *         L = sum over all elements of (op(params) * W)
 *     where W is a fixed random tensor of the output's shape (a param of its own,
 *     uniform in [-1, 1], not checked; an op with i32 results, argmax, is read through a
 *     table of 8 such weights first). Autodiff appends the backward; the reference
 *     interpreter (double) evaluates it. Each case param's analytic gradient is compared
 *     with the central difference (L(p + h) - L(p - h)) / 2h, h = 1e-6.
 *
 * Error measure, per element:  rel = |a - n| / max(|a| + |n|, REL_FLOOR), REL_FLOOR = 1e-2.
 *   |a| + |n| makes the measure symmetric and bounded by 1 (0 = identical, 1 = opposite
 *   signs or one of them zero). The floor keeps elements whose true gradient is ~0 from
 *   dividing rounding noise (~1e-9 from the central difference in double) by ~0; with the
 *   floor such elements are held to an absolute error of 1e-8. The case's error is the max
 *   over all elements of all checked params. Smooth ops need rel <= 1e-6.
 * Ops flagged OPF_ZERO_GRAD (piecewise constant) must give no gradient or an all-zero one,
 * and their finite differences must be exactly zero too (cases keep inputs off the kinks).
 * Ops flagged OPF_STOP_GRAD (stop_gradient) must give no gradient while their finite
 * differences are not zero (the value moves; the gradient is cut by definition).
 * Ops flagged OPF_ROUNDS (round_bf16) are piecewise constant, yet their gradient is the
 * identity's, rounded: the finite differences run with the op as the identity, the
 * tolerance is bfloat16's half step (2^-9, relative), and every gradient value must be
 * one the op leaves unchanged (rounded).
 *
 * MLC_GRADCHECK_VERBOSE=1 prints every element (analytic, numeric, rel). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "ops.h"
#include "passes.h"

#define BATCH 3
#define FD_H 1e-6
#define REL_FLOOR 1e-2
#define REL_TOL 1e-6

/* ---- a small seeded RNG (splitmix64) ---- */
static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 12345; }
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unif(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; } /* [0, 1) */

/* Fills a param per its init spec. */
static void fill_param(const Node *n, double *v) {
    int64_t cnt = shape_numel(&n->shape);
    double lo = attr_f(n, A_INIT_A), hi = attr_f(n, A_INIT_B);
    for (int64_t i = 0; i < cnt; i++) {
        switch ((InitKind)attr_i(n, A_INIT)) {
        case INIT_ZERO: v[i] = 0; break;
        case INIT_CONST: v[i] = lo; break;
        case INIT_UNIFORM: v[i] = lo + (hi - lo) * rng_unif(); break;
        case INIT_NORMAL: {
            double u1 = rng_unif() + 1e-12, u2 = rng_unif();
            v[i] = lo + hi * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            break;
        }
        case INIT_AWAY: {
            double m = lo + (hi - lo) * rng_unif();
            v[i] = (rng_next() & 1) ? m : -m;
            break;
        }
        }
    }
}

/* ---- one case ---- */

typedef struct CaseResult {
    int exists;       /* the case builder returned a node */
    int nparams;      /* params of the case (W excluded) */
    char shapes[256]; /* input shapes, for the table */
    double max_abs, max_rel;
    int zero_ok;        /* OPF_ZERO_GRAD: analytic absent/zero and FD zero */
    int rounded_ok;     /* OPF_ROUNDS: every analytic value is a rounded value */
    double max_fd_abs;  /* largest |finite difference| seen */
    double max_ana_abs; /* largest |analytic gradient| seen */
} CaseResult;

static double rel_err(double a, double n) {
    double d = fabs(a) + fabs(n);
    return fabs(a - n) / (d > REL_FLOOR ? d : REL_FLOOR);
}

/* Some case builders write a literal size (2) into dimensions they mark as the batch
 * dimension B, while the graph's B (what `const 1/B` evaluates to) is BATCH. B is symbolic,
 * so rebinding every B dimension of the case graph to BATCH keeps the case's meaning and
 * makes the interpreter's sizes agree with its constants. Without this, mean over a B
 * axis (mean case 4) reports a 1/3-vs-1/2 gradient mismatch. A multiple of BATCH is a merged
 * dimension B*k (reshape case 2) and stays. */
static void bind_batch(Graph *g) {
    for (int id = 0; id < g->n; id++) {
        Shape *s = &g->nodes[id].shape;
        for (int i = 0; i < s->rank; i++)
            if (((s->bmask >> i) & 1) && s->d[i] % g->batch) s->d[i] = g->batch; /* B*k (a multiple): kept */
    }
}

/* Builds the loss sum(y * W) on top of node y; returns the loss node. */
static int add_weighted_sum_loss(Graph *g, int y) {
    if (g->nodes[y].dtype == DT_I32) { /* indices (argmax): read through a table, rows of [8, 1] */
        int64_t td[2] = {8, 1};
        int t = graph_add_source(g, OP_param, shape_make(2, td, 0), DT_F32, "T", NULL);
        attr_set_all(&g->nodes[t], ATTRS(AI(A_INIT, INIT_UNIFORM), AF(A_INIT_A, -1), AF(A_INIT_B, 1)));
        int in[2] = {t, y};
        y = graph_add(g, OP_gather_rows, in, 2, NULL, NULL);
    }
    Shape s = g->nodes[y].shape;
    int w = graph_add_source(g, OP_param, s, DT_F32, "W", NULL);
    attr_set_all(&g->nodes[w], ATTRS(AI(A_INIT, INIT_UNIFORM), AF(A_INIT_A, -1), AF(A_INIT_B, 1)));
    int prod = ir_binary(g, OP_mul, y, w, NULL);
    int l;
    if (!s.bmask) {
        int64_t d[1] = {shape_numel(&s)};
        l = ir_reduce(g, OP_sum, ir_reshape(g, prod, shape_make(1, d, 0), NULL), 0, 0, NULL);
    } else {
        /* reshape cannot merge B with other dimensions: sum the leading axis away instead */
        l = prod;
        for (int r = s.rank; r > 0; r--) l = ir_reduce(g, OP_sum, l, 0, 0, NULL);
    }
    g->loss = l;
    g->nodes[l].role |= ROLE_LOSS;
    return l;
}

/* Every op that appeared in some case's differentiated graph: a backward-only op
 * (OPF_BACKWARD_ONLY) is checked through the forward op whose gradient rule makes it. */
static char ops_in_backward[OP_COUNT];

/* Runs case `ci` of op `op`. perturb != 0: the analytic gradient's first element is
 * multiplied by (1 + perturb) before comparing (to show the checker notices). */
static CaseResult run_case(Op op, int ci, double perturb, uint64_t seed) {
    CaseResult r = {0};
    r.zero_ok = 1;
    r.rounded_ok = 1;
    const OpInfo *oi = &op_info[op];
    Arena arena = {0};
    Graph *g = graph_new(&arena, MODE_TRAIN, BATCH);
    int y = oi->rules->cases(g, ci);
    if (y < 0) {
        arena_free(&arena);
        return r;
    }
    r.exists = 1;
    cr_assert_eq(g->nodes[y].op, op, "%s case %d returned a node of op %s", oi->name, ci, op_of(&g->nodes[y])->name);

    bind_batch(g);
    /* the case's params and the input shapes of the op */
    int n_case_nodes = g->n;
    size_t off = 0;
    for (int k = 0; k < g->nodes[y].nin; k++) {
        const Node *x = &g->nodes[g->nodes[y].in[k]];
        char sh[96];
        off += (size_t)snprintf(r.shapes + off, sizeof r.shapes - off, "%s%s", k ? " " : "",
                                shape_str_at(&x->shape, x->dtype, g->batch, sh, sizeof sh));
        if (off >= sizeof r.shapes) off = sizeof r.shapes - 1;
    }
    add_weighted_sum_loss(g, y);
    GradList gl = autodiff(g, NULL);
    ir_verify(g, "gradcheck autodiff");
    /* The train step's lowering after autodiff (bn_apply -> bn_scale, bn_shift, multiply-add):
     * the finite differences then check the lowered forward against the gradient rule. */
    int *map = split_bn(g);
    ir_verify(g, "gradcheck split_bn");
    for (int k = 0; k < gl.n; k++) {
        gl.param[k] = map[gl.param[k]];
        if (gl.grad[k] >= 0) gl.grad[k] = map[gl.grad[k]];
    }
    for (int id = 0; id < g->n; id++) ops_in_backward[g->nodes[id].op] = 1;

    Interp *it = interp_new(g);
    rng_seed(seed);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op == OP_param) fill_param(n, it->vals[id]);
        if (n->op == OP_input) {
            int64_t cnt = shape_numel(&n->shape);
            int64_t hi = n->dtype == DT_I32 ? attr_i(n, A_RANGE) : 0;
            for (int64_t i = 0; i < cnt; i++)
                it->vals[id][i] = hi > 0 ? (double)(rng_next() % (uint64_t)hi) : 2 * rng_unif() - 1;
        }
    }
    interp_run(it);

    int zero = (oi->rules->flags & OPF_ZERO_GRAD) != 0;
    /* All analytic gradients first: the finite differences below re-run the interpreter
     * with perturbed params, which overwrites every gradient value. */
    double **ana = calloc((size_t)gl.n, sizeof *ana);
    for (int k = 0; k < gl.n; k++) {
        int64_t cnt = shape_numel(&g->nodes[gl.param[k]].shape);
        ana[k] = calloc((size_t)cnt + 1, sizeof **ana);
        if (gl.grad[k] >= 0) memcpy(ana[k], it->vals[gl.grad[k]], sizeof(double) * (size_t)cnt);
    }
    /* a rounding op's finite differences are its identity's (stop_gradient's forward) */
    int rounds = (oi->rules->flags & OPF_ROUNDS) != 0;
    if (rounds) g->nodes[y].op = OP_stop_gradient;
    int first = 1;
    for (int k = 0; k < gl.n; k++) {
        int p = gl.param[k];
        if (p >= n_case_nodes) continue; /* W */
        r.nparams++;
        int64_t cnt = shape_numel(&g->nodes[p].shape);
        double *pv = it->vals[p], *an = ana[k];
        if (first && perturb != 0 && cnt > 0) {
            an[0] = an[0] != 0 ? an[0] * (1 + perturb) : perturb;
            first = 0;
        }
        for (int64_t i = 0; i < cnt; i++) {
            double save = pv[i];
            pv[i] = save + FD_H;
            interp_run(it);
            double lp = it->vals[g->loss][0];
            pv[i] = save - FD_H;
            interp_run(it);
            double lm = it->vals[g->loss][0];
            pv[i] = save;
            double fd = (lp - lm) / (2 * FD_H);
            double e = fabs(an[i] - fd), re = rel_err(an[i], fd);
            if (e > r.max_abs) r.max_abs = e;
            if (re > r.max_rel) r.max_rel = re;
            if (fabs(fd) > r.max_fd_abs) r.max_fd_abs = fabs(fd);
            if (fabs(an[i]) > r.max_ana_abs) r.max_ana_abs = fabs(an[i]);
            if (zero && (fd != 0 || an[i] != 0)) r.zero_ok = 0;
            if (rounds && oi->rules->scalar1(an[i], &g->nodes[y]) != an[i]) r.rounded_ok = 0;
            if (getenv("MLC_GRADCHECK_VERBOSE"))
                printf("  %s case %d param %d [%lld]: analytic %.12g numeric %.12g rel %.3e\n", oi->name, ci, k,
                       (long long)i, an[i], fd, re);
        }
    }
    for (int k = 0; k < gl.n; k++) free(ana[k]);
    free(ana);
    interp_free(it);
    arena_free(&arena);
    return r;
}

static uint64_t case_seed(Op op, int ci) { return 1000003ull * (uint64_t)(op + 1) + (uint64_t)ci; }

/* ---- the sweep over the op table ---- */

Test(gradcheck, every_op, .timeout = 300) {
    int failures = 0, checked = 0;
    char skipped[1024] = "";
    printf(
        "gradient check: L = sum(op(params) * W), B = %d, h = %g, "
        "rel = |a-n| / max(|a|+|n|, %g), tolerance %g\n",
        BATCH, FD_H, REL_FLOOR, REL_TOL);
    printf("%-12s %4s  %-36s %6s %12s %12s  %s\n", "op", "case", "input shapes", "params", "max abs err", "max rel err",
           "result");
    for (int op = 0; op < OP_COUNT; op++) {
        const OpInfo *oi = &op_info[op];
        if (oi->kind == K_SOURCE || oi->kind == K_UPDATE || (oi->rules->flags & OPF_BACKWARD_ONLY)) {
            strncat(skipped, " ", sizeof skipped - strlen(skipped) - 1);
            strncat(skipped, oi->name, sizeof skipped - strlen(skipped) - 1);
            continue;
        }
        if (!oi->rules->grad || !oi->rules->cases) {
            printf("%-12s FAIL: %s\n", oi->name,
                   !oi->rules->grad ? "no gradient rule (OpRules.grad is NULL)"
                                    : "no gradient-check cases (OpRules.cases is NULL)");
            cr_log_error("op %s: %s", oi->name, !oi->rules->grad ? "no gradient rule" : "no gradient-check cases");
            failures++;
            continue;
        }
        int ci = 0;
        for (;; ci++) {
            CaseResult r = run_case((Op)op, ci, 0, case_seed((Op)op, ci));
            if (!r.exists) break;
            checked++;
            int ok;
            const char *why = "";
            if (oi->rules->flags & OPF_ZERO_GRAD) {
                ok = r.zero_ok;
                if (!ok) why = " (piecewise-constant op: gradient or finite difference not zero)";
            } else if (oi->rules->flags & OPF_ROUNDS) {
                ok = r.rounded_ok && r.max_rel <= 0x1p-9 && r.max_fd_abs > 0;
                if (!ok) why = " (rounding op: gradient not rounded, or not the identity's within half a step)";
            } else if (oi->rules->flags & OPF_STOP_GRAD) {
                ok = r.max_ana_abs == 0 && r.max_fd_abs > 0;
                if (!ok) why = " (stop_gradient: a gradient reached its input, or its value does not move with it)";
            } else {
                ok = r.max_rel <= REL_TOL;
                if (!ok) why = " (relative error above tolerance)";
                if (ok && r.nparams > 0 && r.max_fd_abs == 0) {
                    ok = 0; /* a smooth op whose loss does not move: the case tests nothing */
                    why = " (finite differences all zero for a smooth op)";
                }
            }
            printf("%-12s %4d  %-36s %6d %12.3e %12.3e  %s%s\n", oi->name, ci, r.shapes, r.nparams, r.max_abs,
                   r.max_rel, ok ? "ok" : "FAIL", why);
            if (!ok) {
                cr_log_error("op %s case %d [%s]: max abs err %.3e, max rel err %.3e%s", oi->name, ci, r.shapes,
                             r.max_abs, r.max_rel, why);
                failures++;
            }
        }
        if (ci == 0) {
            printf("%-12s FAIL: the case builder has no case 0\n", oi->name);
            cr_log_error("op %s: gradient-check case builder gives no case", oi->name);
            failures++;
        }
    }
    /* Backward-only ops must have been exercised by some forward op's cases above. */
    for (int op = 0; op < OP_COUNT; op++) {
        const OpInfo *oi = &op_info[op];
        if (!(oi->rules->flags & OPF_BACKWARD_ONLY)) continue;
        if (oi->rules->grad || !ops_in_backward[op]) {
            printf("%-12s FAIL: %s\n", oi->name,
                   oi->rules->grad ? "backward-only op with a gradient rule (drop the flag or the rule)"
                                   : "backward-only op that no forward op's gradient check produced");
            cr_log_error("backward-only op %s is not covered", oi->name);
            failures++;
        } else {
            printf("%-12s   checked through the forward op whose gradient it computes\n", oi->name);
        }
    }
    printf("skipped (sources and optimizer updates, not differentiated by autodiff; backward-only ops):%s\n", skipped);
    printf("%d cases checked, %d failures\n", checked, failures);
    fflush(stdout);
    cr_expect_gt(checked, 0);
    cr_assert_eq(failures, 0, "%d gradient-check failures (see the table above)", failures);
}

/* Every op of the table is either skipped by kind or has cases: a guard that the sweep
 * above really looked at everything (e.g. that a new K_* kind is not silently ignored). */
Test(gradcheck, table_is_covered) {
    int n_src = 0, n_upd = 0, n_diff = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        switch (op_info[op].kind) {
        case K_SOURCE: n_src++; break;
        case K_UPDATE: n_upd++; break;
        default: n_diff++; break;
        }
        cr_assert_not_null(op_info[op].rules, "op %s has no rules", op_info[op].name);
        cr_assert_not_null(op_info[op].name);
    }
    cr_assert_eq(n_src + n_upd + n_diff, OP_COUNT);
    cr_assert_gt(n_diff, 10, "expected the differentiable ops of ops.def");
}

/* ---- the checker itself can fail ---- */

/* A gradient that is wrong by 0.1 % in one element must be caught. */
Test(gradcheck, checker_catches_wrong_gradient) {
    Op ops[] = {OP_exp, OP_mul, OP_matmul, OP_logsumexp};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        CaseResult good = run_case(ops[k], 0, 0, case_seed(ops[k], 0));
        CaseResult bad = run_case(ops[k], 0, 1e-3, case_seed(ops[k], 0));
        cr_assert(good.exists && bad.exists);
        cr_expect_leq(good.max_rel, REL_TOL, "%s: the unperturbed gradient should pass", op_info[ops[k]].name);
        cr_expect_gt(bad.max_rel, 100 * REL_TOL, "%s: a 0.1%% error went unnoticed (rel %.3e)", op_info[ops[k]].name,
                     bad.max_rel);
    }
}

/* The finite differences depend on the function: d(sum(exp(x) W)) != d(sum(-x W)) for the
 * same x and W, and d(sum(-x W))/dx = -W exactly (up to rounding). */
static void fd_of(Op op, double *out, int64_t *cnt) {
    Arena arena = {0};
    Graph *g = graph_new(&arena, MODE_TRAIN, BATCH);
    int y = op_info[op].rules->cases(g, 0);
    cr_assert_geq(y, 0);
    bind_batch(g);
    int p = g->nodes[y].in[0];
    add_weighted_sum_loss(g, y);
    Interp *it = interp_new(g);
    rng_seed(42);
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].op == OP_param) {
            /* the same values for both ops, whatever their case's init spec */
            int64_t c = shape_numel(&g->nodes[id].shape);
            for (int64_t i = 0; i < c; i++) it->vals[id][i] = 2 * rng_unif() - 1;
        }
    *cnt = shape_numel(&g->nodes[p].shape);
    for (int64_t i = 0; i < *cnt; i++) {
        double s = it->vals[p][i];
        it->vals[p][i] = s + FD_H;
        interp_run(it);
        double lp = it->vals[g->loss][0];
        it->vals[p][i] = s - FD_H;
        interp_run(it);
        out[i] = (lp - it->vals[g->loss][0]) / (2 * FD_H);
        it->vals[p][i] = s;
    }
    interp_free(it);
    arena_free(&arena);
}

Test(gradcheck, finite_differences_tell_functions_apart) {
    double a[64], b[64];
    int64_t na, nb;
    fd_of(OP_exp, a, &na);
    fd_of(OP_neg, b, &nb);
    cr_assert_eq(na, nb);
    double worst = 0;
    for (int64_t i = 0; i < na; i++)
        if (rel_err(a[i], b[i]) > worst) worst = rel_err(a[i], b[i]);
    /* exp' > 0 everywhere, neg' = -W: they differ in sign wherever W > 0 */
    cr_assert_gt(worst, 0.5, "FD of exp and neg agree (max rel %.3e): the checker would pass anything", worst);
}

/* pow(x, 0) is the constant 1, so its gradient is exactly 0 everywhere, also at x = 0,
 * where the general rule's 0 * x^-1 is 0 * inf = NaN (PyTorch gives 0 there too). The
 * cases above keep x in [0.5, 2), away from that point. */
Test(gradcheck, pow_zero_exponent_at_zero) {
    Arena arena = {0};
    Graph *g = graph_new(&arena, MODE_TRAIN, BATCH);
    static const int64_t d[1] = {4};
    static const double xs[4] = {0, 1, -2, 0.5};
    int x = case_param(g, 1, d, 0, INIT_UNIFORM, -1, 1);
    int y = graph_add(g, OP_pow, &x, 1, ATTRS(AF(A_EXPONENT, 0)), NULL);
    add_weighted_sum_loss(g, y);
    GradList gl = autodiff(g, NULL);
    ir_verify(g, "gradcheck autodiff");
    Interp *it = interp_new(g);
    rng_seed(7);
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].op == OP_param) fill_param(&g->nodes[id], it->vals[id]);
    memcpy(it->vals[x], xs, sizeof xs);
    interp_run(it);
    int found = 0;
    for (int k = 0; k < gl.n; k++) {
        if (gl.param[k] != x) continue;
        found = 1;
        cr_assert_geq(gl.grad[k], 0, "pow(x, 0): no gradient node for x");
        for (int i = 0; i < 4; i++)
            cr_expect(it->vals[gl.grad[k]][i] == 0, "d pow(x, 0)/dx at x = %g is %g, not 0", xs[i],
                      it->vals[gl.grad[k]][i]);
    }
    cr_expect(found, "x is not among the differentiated params");
    interp_free(it);
    arena_free(&arena);
}
