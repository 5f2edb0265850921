/* test_attrs.c - named, typed op attributes (compiler/ops/attrs.def, compiler/ir/attrs.c):
 *   - the table: rows without repeats, every name used by some op, and every %{name} in
 *     an op's scalar text one of that op's float attributes;
 *   - nodes made with ATTRS(...) read back by name, whatever order the list gives;
 *   - the printer writes each kind of attribute as the goldens show it;
 *   - asking a node for an attribute its op lacks, or (debug builds) as another type, is
 *     an internal error. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "ops.h"

Test(attrs, rows_repeat_no_name_and_every_name_is_used) {
    int used[A_COUNT] = {0};
    for (int op = 0; op < OP_COUNT; op++) {
        const AttrName *a = op_attr_names(op);
        for (int i = 0; a[i] != A_NONE; i++) {
            cr_expect(i < IR_MAX_ATTRS, "%s: more than IR_MAX_ATTRS attributes", op_info[op].name);
            cr_expect_eq(attr_slot(op, a[i]), i, "%s repeats %s", op_info[op].name, attr_info[a[i]].name);
            used[a[i]]++;
        }
    }
    for (int a = 1; a < A_COUNT; a++) cr_expect(used[a], "no op has attribute %s", attr_info[a].name);
    cr_expect_eq(attr_by_name("stride", 6), A_STRIDE);
    cr_expect_eq(attr_by_name("strides", 7), A_NONE);
}

/* %{name} in scalar text is a float attribute of the op (emit_common.c substitutes it). */
Test(attrs, scalar_text_names_the_ops_float_attributes) {
    int seen = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        const char *t = op_info[op].rules->expr;
        for (const char *p = t ? strstr(t, "%{") : NULL; p; p = strstr(p + 1, "%{")) {
            const char *close = strchr(p, '}');
            cr_assert_not_null(close, "%s: unclosed %%{ in %s", op_info[op].name, t);
            AttrName a = attr_by_name(p + 2, (size_t)(close - p - 2));
            cr_expect(a != A_NONE && op_has_attr(op, a) && attr_info[a].type == AT_FLOAT,
                      "%s: %s names no float attribute", op_info[op].name, t);
            seen++;
        }
    }
    cr_expect_eq(seen, 5, "leaky_relu, leaky_step, elu, elu_slope and pow name one each, nothing else any");
}

static char *printed(const Graph *g, int id) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    attr_print(f, &g->nodes[id]);
    fclose(f);
    return buf;
}

Test(attrs, given_by_name_read_by_name_printed_by_name) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 2);
    int64_t xd[4] = {2, 4, 9, 8}, wd[4] = {6, 2, 3, 1};
    int in[2] = {graph_add_source(g, OP_input, shape_make(4, xd, 1), DT_F32, "x", NULL),
                 graph_add_source(g, OP_param, shape_make(4, wd, 0), DT_F32, "w", NULL)};
    /* listed out of the row's order: slots follow the row, not the list */
    int c = graph_add(g, OP_conv2d, in, 2,
                      ATTRS(AI(A_GROUPS, 2), AP(A_PAD, 1, 0), AP(A_STRIDE, 2, 1), AP(A_DILATION, 1, 1)), NULL);
    const Node *n = &g->nodes[c];
    cr_expect_eq(attr_h(n, A_STRIDE), 2);
    cr_expect_eq(attr_w(n, A_STRIDE), 1);
    cr_expect_eq(attr_i(n, A_GROUPS), 2);
    cr_expect_eq(n->shape.d[2], 5);
    cr_expect_eq(n->shape.d[3], 8);
    char *s = printed(g, c);
    cr_expect_str_eq(s, " {stride=[2, 1], pad=[1, 0], dilation=[1, 1], groups=2}");
    free(s);

    /* the backward op takes the forward op's geometry by name, and adds its own */
    int d = graph_add_like(g, OP_conv2d_bwd_data, (int[]){c, in[1]}, 2, n, ATTRS(AP(A_IN_SIZE, 9, 8)), NULL);
    s = printed(g, d);
    cr_expect_str_eq(s, " {stride=[2, 1], pad=[1, 0], dilation=[1, 1], groups=2, in_size=[9, 8]}");
    free(s);

    int r = ir_reduce(g, OP_sum, in[0], -1, 1, NULL); /* axis normalised by the shape rule */
    s = printed(g, r);
    cr_expect_str_eq(s, " {axis=3, keepdims}");
    free(s);
    int m = ir_reduce(g, OP_max, in[0], 1, 0, NULL);
    s = printed(g, m);
    cr_expect_str_eq(s, " {axis=1}", "a false bool is left out");
    free(s);

    AttrVal perm = {.perm = {0, 2, 3, 1}};
    int t = graph_add(g, OP_transpose, in, 1, ATTRS(AV(A_PERM, perm)), NULL);
    s = printed(g, t);
    cr_expect_str_eq(s, " {perm=[0, 2, 3, 1]}");
    free(s);
    cr_expect_eq(g->nodes[t].shape.d[3], 4);

    int k = ir_const(g, 0.1, -1, NULL);
    s = printed(g, k);
    cr_expect_str_eq(s, " {value=0.1, bpow=-1}");
    free(s);
    attr_set_all(&g->nodes[in[1]], ATTRS(AI(A_INIT, INIT_NORMAL), AF(A_INIT_B, 0.02)));
    s = printed(g, in[1]);
    cr_expect_str_eq(s, " {init=normal, init_b=0.02}", "a zero init_a is left out");
    free(s);
    s = printed(g, in[0]);
    cr_expect_str_eq(s, "", "an input without a label range prints nothing");
    free(s);
    arena_free(&a);
}

/* Two nodes equal but for one attribute are different nodes to simplify's CSE: the slots'
 * unused bytes are zero whatever member a list gave. */
Test(attrs, equal_attributes_compare_equal_bytewise) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 2);
    int64_t d[2] = {3, 4};
    int x = graph_add_source(g, OP_param, shape_make(2, d, 0), DT_F32, "x", NULL);
    int s1 = ir_slice(g, x, 1, 0, 2, NULL), s2 = ir_slice(g, x, 1, 0, 2, NULL), s3 = ir_slice(g, x, 1, 1, 3, NULL);
    cr_expect(!memcmp(g->nodes[s1].attr, g->nodes[s2].attr, sizeof g->nodes[s1].attr));
    cr_expect(memcmp(g->nodes[s1].attr, g->nodes[s3].attr, sizeof g->nodes[s1].attr));
    cr_expect(attr_same(&g->nodes[s1], &g->nodes[s2], A_END));
    cr_expect(!attr_same(&g->nodes[s1], &g->nodes[s3], A_END));
    arena_free(&a);
}

static Graph *one_slice(Arena *a, int *id) {
    Graph *g = graph_new(a, MODE_TRAIN, 2);
    int64_t d[2] = {3, 4};
    int x = graph_add_source(g, OP_param, shape_make(2, d, 0), DT_F32, "x", NULL);
    *id = ir_slice(g, x, 1, 0, 2, NULL);
    return g;
}

Test(attrs, an_attribute_the_op_lacks_is_an_internal_error, .signal = SIGABRT) {
    Arena a = {0};
    int id;
    Graph *g = one_slice(&a, &id);
    (void)attr_i(&g->nodes[id], A_GROUPS);
}

Test(attrs, giving_an_op_an_attribute_it_lacks_is_an_internal_error, .signal = SIGABRT) {
    Arena a = {0};
    Graph *g = graph_new(&a, MODE_TRAIN, 2);
    int64_t d[2] = {3, 4};
    int x = graph_add_source(g, OP_param, shape_make(2, d, 0), DT_F32, "x", NULL);
    graph_add(g, OP_relu, &x, 1, ATTRS(AF(A_ALPHA, 0.1)), NULL);
}

#ifndef NDEBUG
Test(attrs, reading_as_another_type_is_an_internal_error_in_debug_builds, .signal = SIGABRT) {
    Arena a = {0};
    int id;
    Graph *g = one_slice(&a, &id);
    (void)attr_f(&g->nodes[id], A_START);
}
#endif
