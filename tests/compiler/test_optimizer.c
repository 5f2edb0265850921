/* test_optimizer.c - what the optimizer pass appends, checked with the reference
 * interpreter: clipping by global norm really bounds the gradients the updates use. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ctest_util.h"
#include "interp.h"
#include "ops.h"

/* Evaluates tests/compiler/data/clip.mdl's train step, with its loss scaled by
 * `loss_scale` instead of 10, on fixed data; returns the global L2 norm of the gradients
 * its updates consume and of the raw gradients. */
static void clip_norms(const char *loss_scale, double *clipped, double *raw) {
    Arena a = {0};
    char *text = ct_read_file(MLC_TEST_DIR "/data/clip.mdl", NULL);
    cr_assert_not_null(text);
    char *at = strstr(text, "* 10.0");
    cr_assert_not_null(at);
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s* %s%s", (int)(at - text), text, loss_scale, at + 6);
    free(text);
    SrcFile *src = srcfile_from_string("clip.mdl", buf);
    CtCompile r = ct_compile(&a, src, (DumpOptions){0});
    cr_assert_not_null(r.m, "%s", r.diag);
    const Graph *g = r.m->train;
    Interp *it = interp_new(g);
    unsigned s = 7;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        int64_t cnt = shape_numel(&n->shape);
        for (int64_t i = 0; i < cnt && (n->op == OP_param || n->op == OP_input); i++) {
            s = s * 1103515245u + 12345u;
            double u = (double)((s >> 8) & 0xffff) / 65536.0;
            it->vals[id][i] = n->dtype == DT_I32 ? (double)((s >> 16) % 3) : 2 * u - 1;
        }
    }
    interp_run(it);
    double c2 = 0, r2 = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_sgd_plain_update) continue;
        const Node *gr = &g->nodes[n->in[1]]; /* mul(raw gradient, factor) */
        cr_assert_eq(gr->op, OP_mul, "the update's gradient is not the clipped one");
        int64_t cnt = shape_numel(&gr->shape);
        for (int64_t i = 0; i < cnt; i++) {
            c2 += it->vals[n->in[1]][i] * it->vals[n->in[1]][i];
            r2 += it->vals[gr->in[0]][i] * it->vals[gr->in[0]][i];
        }
    }
    *clipped = sqrt(c2), *raw = sqrt(r2);
    interp_free(it);
    ct_compile_free(&r);
    srcfile_free(src);
    arena_free(&a);
}

Test(optimizer, clip_norm_bounds_large_gradients) {
    double c, raw;
    clip_norms("10.0", &c, &raw);
    cr_assert_gt(raw, 0.5, "the data should give a gradient norm above the clip (found %g)", raw);
    cr_assert_float_eq(c, 0.5, 1e-5, "clipped norm %g, expected 0.5 (raw %g)", c, raw);
}

Test(optimizer, clip_norm_keeps_small_gradients) {
    double c, raw;
    clip_norms("0.001", &c, &raw);
    cr_assert_lt(raw, 0.5, "the data should give a gradient norm below the clip (found %g)", raw);
    cr_assert_float_eq(c, raw, 1e-12, "a gradient below the clip changed: %g -> %g", raw, c);
}
