/* emit_fused.c - the code of a fused group (fuse.c), shared by the C and CUDA targets:
 * the loops over the group's domain, the index of every buffer the group reads or
 * writes, and the body that evaluates the members as locals.
 *
 * The domain's dimensions become loops; adjacent dimensions merge into one loop when
 * every access walks them as one (a [B, 256] bias add: B x 256 loops, the bias read at
 * i1; a [B, 784] relu: one loop of B*784). A reduction keeps its axis as a loop of its
 * own between the outer and the inner loops.
 *
 * A row reduction (a member that is a reduction) becomes a loop over its axis inside the
 * body (`for (long j17 ...)`, two of them for logsumexp), accumulating into a local; the
 * members it reads are computed in that loop, indexed by its variable and by the
 * indices of the domain's dimensions its output runs along. Recomputed values (one_hot
 * of the labels) are written out as expressions where a member reads them. */
#include <string.h>

#include "model.h"
#include "ops.h"
#include "target.h"

/* A size or stride: k * B^b (a shape has at most one batch dimension). */
typedef struct Ext {
    int64_t k;
    int b;
} Ext;

static int real_dim(const Shape *s, int i) { return s->d[i] != 1 || ((s->bmask >> i) & 1); }

/* batch: the graph's, so a merged batch dimension B*k is (Ext){k, 1} */
static Ext dim_ext(const Shape *s, int i, int batch) {
    return (s->bmask >> i) & 1 ? (Ext){s->d[i] / batch, 1} : (Ext){s->d[i], 0};
}

static Ext ext_mul(Ext x, Ext y) { return (Ext){x.k * y.k, x.b + y.b}; }

static const char *ext_str(Arena *a, Ext x) {
    if (!x.b) return arena_printf(a, "%lld", (long long)x.k);
    return x.k == 1 ? "B" : arena_printf(a, "B*%lld", (long long)x.k);
}

/* Strides, along each domain dimension, of a buffer of shape s read or written through
 * `map` (0 where it is broadcast). */
static void strides(const Shape *dom, const Shape *s, int batch, const int8_t *map, Ext *st) {
    for (int d = 0; d < dom->rank; d++) {
        st[d] = (Ext){0, 0};
        if (map[d] < 0) continue;
        Ext x = {1, 0};
        for (int j = map[d] + 1; j < s->rank; j++) x = ext_mul(x, dim_ext(s, j, batch));
        st[d] = x;
    }
}

static int is_member(const FusedLoop *fl, int x) { return x >= 0 && fl->fp->root[x] == fl->root; }

/* The node a chain of views leads to, if it is a constant. */
static const Node *const_of(const Graph *g, int x) {
    const Node *n = &g->nodes[x];
    while (n->op == OP_reshape) n = &g->nodes[n->in[0]];
    return n->op == OP_const ? n : NULL;
}

/* Reads of buffers outside the group, stores of kept members and of the root. */
typedef struct Access {
    int node; /* the buffer's node */
    int8_t map[IR_MAX_RANK];
    int write;
} Access;

static int reduce_out_map(const Graph *g, int root, int8_t *map) {
    const Node *r = &g->nodes[root];
    const Shape *dom = fusion_domain(g, root);
    int axis = (int)attr_i(r, A_AXIS);
    memset(map, -1, IR_MAX_RANK);
    for (int d = 0; d < dom->rank; d++) {
        if (d == axis) continue;
        int j = attr_i(r, A_KEEPDIMS) ? d : d < axis ? d : d - 1;
        if (real_dim(&r->shape, j)) map[d] = (int8_t)j;
    }
    return axis;
}

/* Where a member is computed: the group's loop (nest -1, the domain), or the loop of a
 * row reduction (nest: its node; the space is its input). dom[d]: the domain dimension
 * that dimension d of the space runs along (-1: a row reduction's axis, or size 1);
 * idx[d]: the index of dimension d at the point of the code (while emitting). */
typedef struct Space {
    int nest;
    const Shape *shape;
    int dom[IR_MAX_RANK];
    const char *idx[IR_MAX_RANK];
} Space;

/* The space of row reduction r, nested in space `in` (dimension d of its input runs along
 * the dimension of `in` that its output's matching dimension is mapped to). */
static void nest_space(const Graph *g, const FusionPlan *fp, const Space *in, int r, Space *sp) {
    const Node *rn = &g->nodes[r];
    int axis = (int)attr_i(rn, A_AXIS);
    memset(sp, 0, sizeof *sp);
    sp->nest = r;
    sp->shape = &g->nodes[rn->in[0]].shape;
    for (int d = 0; d < sp->shape->rank; d++) {
        sp->dom[d] = -1;
        if (d == axis) continue;
        int j = attr_i(rn, A_KEEPDIMS) ? d : d < axis ? d : d - 1;
        for (int p = 0; p < in->shape->rank; p++)
            if (fp->map[r][p] == j) sp->dom[d] = in->dom[p], sp->idx[d] = in->idx[p];
    }
}

/* The group's own space: the domain. */
static void domain_space(const Graph *g, const FusedLoop *fl, Space *sp) {
    memset(sp, 0, sizeof *sp);
    sp->nest = -1;
    sp->shape = fusion_domain(g, fl->root);
    for (int d = 0; d < sp->shape->rank; d++) sp->dom[d] = d;
}

/* The space of every row reduction of the group (indexed by node), outermost first. */
static Space *nest_spaces(const Graph *g, const FusedLoop *fl, Arena *a, const Space *top) {
    Space *sp = ARENA_ARRAY(a, Space, fl->root - fl->lo + 1); /* sp[r - lo]: r in lo..root */
    for (int r = fl->root - 1; r >= fl->lo; r--)
        if (is_member(fl, r) && op_of(&g->nodes[r])->kind == K_REDUCE)
            nest_space(g, fl->fp, fl->fp->nest[r] >= 0 ? &sp[fl->fp->nest[r] - fl->lo] : top, r, &sp[r - fl->lo]);
    return sp;
}

typedef struct Accesses {
    Access *a;
    int n, cap;
} Accesses;

/* An access through `map` over space sp, as a map over the domain (what merging loops and
 * kernel parameter lists need; a row reduction's axis is its own loop). */
static void add_access(Arena *ar, Accesses *acc, int node, const Space *sp, const int8_t *map, int write) {
    if (acc->n == acc->cap) {
        int cap = acc->cap ? 2 * acc->cap : 16;
        Access *na = ARENA_ARRAY(ar, Access, cap);
        if (acc->n) memcpy(na, acc->a, sizeof *na * (size_t)acc->n);
        acc->a = na, acc->cap = cap;
    }
    Access *x = &acc->a[acc->n++];
    *x = (Access){.node = node, .write = write};
    memset(x->map, -1, IR_MAX_RANK);
    for (int d = 0; d < sp->shape->rank; d++)
        if (map[d] >= 0 && sp->dom[d] >= 0) x->map[sp->dom[d]] = map[d];
}

/* The buffers a recomputed value x, read through map, reads. */
static void recomputed_accesses(Arena *ar, const Graph *g, const FusionPlan *fp, Accesses *acc, const Space *sp, int x,
                                const int8_t *map) {
    const Node *n = &g->nodes[x];
    for (int k = 0; k < n->nin; k++) {
        int y = n->in[k];
        if (const_of(g, y)) continue;
        int8_t m[IR_MAX_RANK];
        fusion_input_map(g, x, k, map, m);
        if (fp->dup[y]) recomputed_accesses(ar, g, fp, acc, sp, y, m);
        else add_access(ar, acc, y, sp, m, 0);
    }
}

/* Collects the group's accesses. */
static Accesses group_accesses(EmitCtx *e, const FusedLoop *fl) {
    const Graph *g = e->g;
    const FusionPlan *fp = fl->fp;
    Accesses acc = {0};
    Space top;
    domain_space(g, fl, &top);
    Space *nests = nest_spaces(g, fl, e->arena, &top);
    for (int m = fl->lo; m <= fl->root; m++) {
        if (!is_member(fl, m)) continue;
        const Node *nd = &g->nodes[m];
        const Space *sp = fp->nest[m] >= 0 ? &nests[fp->nest[m] - fl->lo] : &top;
        if (nd->op == OP_reshape) { /* a view: of a member (no access), or read from memory */
            if (!is_member(fl, nd->in[0]) && !const_of(g, m)) {
                if (fp->dup[nd->in[0]]) {
                    int8_t map[IR_MAX_RANK];
                    fusion_operand_map(g, fp, m, 0, map);
                    recomputed_accesses(e->arena, g, fp, &acc, sp, nd->in[0], map);
                } else {
                    add_access(e->arena, &acc, m, sp, fp->map[m], 0);
                }
            }
            continue;
        }
        int reduce = op_of(nd)->kind == K_REDUCE;
        const Space *in_sp = reduce && m != fl->root ? &nests[m - fl->lo] : sp; /* where its operands are read */
        for (int k = 0; k < nd->nin; k++) {
            int x = nd->in[k];
            if (is_member(fl, x) || const_of(g, x)) continue;
            int8_t map[IR_MAX_RANK];
            fusion_operand_map(g, fp, m, k, map);
            if (fp->dup[x]) recomputed_accesses(e->arena, g, fp, &acc, in_sp, x, map);
            else add_access(e->arena, &acc, x, in_sp, map, 0);
        }
        if (m == fl->root && reduce) {
            int8_t map[IR_MAX_RANK];
            reduce_out_map(g, m, map);
            add_access(e->arena, &acc, m, &top, map, 1);
        } else if (m == fl->root || !fp->inl[m]) {
            add_access(e->arena, &acc, m, sp, fp->map[m], 1);
        }
    }
    return acc;
}

void fused_loop(EmitCtx *e, const FusionPlan *fp, int root, int merge_dims, FusedLoop *fl) {
    const Graph *g = e->g;
    memset(fl, 0, sizeof *fl);
    fl->fp = fp;
    fl->root = root;
    fl->axis = -1;
    fl->lo = fp->lo ? fp->lo[root] : 0;
    const Node *r = &g->nodes[root];
    const Shape *dom = fusion_domain(g, root);
    int axis = op_of(r)->kind == K_REDUCE ? (int)attr_i(r, A_AXIS) : -1;
    for (int m = fl->lo; m < root; m++) fl->nrows += is_member(fl, m) && op_of(&g->nodes[m])->kind == K_REDUCE;
    Accesses all = group_accesses(e, fl);
    int na = all.n;
    Access *acc = all.a;
    Ext(*st)[IR_MAX_RANK] = arena_alloc(e->arena, sizeof *st * (size_t)(na + 1));
    for (int i = 0; i < na; i++) strides(dom, &g->nodes[acc[i].node].shape, g->batch, acc[i].map, st[i]);
    /* Merge each real dimension into the loop before it when every access agrees. */
    Ext size[IR_MAX_RANK];
    int prev = -1;
    for (int d = 0; d < dom->rank; d++) {
        if (!real_dim(dom, d) && d != axis) continue;
        int merge = merge_dims && prev >= 0 && d != axis && prev != axis;
        if (merge_dims == FUSED_PER_SAMPLE && prev == 0) merge = 0; /* the batch keeps its loop */
        for (int i = 0; merge && i < na; i++) {
            Ext p = st[i][prev], c = ext_mul(st[i][d], dim_ext(dom, d, g->batch));
            if ((p.k == 0) != (st[i][d].k == 0)) merge = 0;
            else if (p.k && (p.k != c.k || p.b != c.b)) merge = 0;
        }
        if (merge) {
            int L = fl->nd - 1;
            size[L] = ext_mul(size[L], dim_ext(dom, d, g->batch));
            fl->last[L] = d;
        } else {
            int L = fl->nd++;
            fl->first[L] = fl->last[L] = d;
            size[L] = dim_ext(dom, d, g->batch);
            if (d == axis) fl->axis = L;
        }
        prev = d;
    }
    Ext total = {1, 0};
    for (int L = 0; L < fl->nd; L++) {
        fl->size[L] = ext_str(e->arena, size[L]);
        fl->var[L] = arena_printf(e->arena, "i%d", L);
        total = ext_mul(total, size[L]);
    }
    fl->total = ext_str(e->arena, total);
}

/* The index of an access at the loop variables. */
static const char *index_expr(EmitCtx *e, const FusedLoop *fl, int node, const int8_t *map) {
    const Shape *dom = fusion_domain(e->g, fl->root);
    Ext st[IR_MAX_RANK];
    strides(dom, &e->g->nodes[node].shape, e->g->batch, map, st);
    const char *s = NULL;
    for (int L = 0; L < fl->nd; L++) {
        Ext x = st[fl->last[L]];
        if (!x.k) continue;
        const char *term =
            x.k == 1 && !x.b ? fl->var[L] : arena_printf(e->arena, "%s*%s", fl->var[L], ext_str(e->arena, x));
        s = s ? arena_printf(e->arena, "%s + %s", s, term) : term;
    }
    return s ? s : "0";
}

const char *fused_out_index(EmitCtx *e, const FusedLoop *fl) {
    int8_t map[IR_MAX_RANK];
    if (op_of(&e->g->nodes[fl->root])->kind == K_REDUCE) reduce_out_map(e->g, fl->root, map);
    else memcpy(map, fl->fp->map[fl->root], IR_MAX_RANK);
    return index_expr(e, fl, fl->root, map);
}

void fused_buffers(EmitCtx *e, const FusedLoop *fl, void (*add)(void *ctx, int node, int write), void *ctx) {
    Accesses acc = group_accesses(e, fl);
    for (int i = 0; i < acc.n; i++)
        if (acc.a[i].write) add(ctx, acc.a[i].node, 1);
    for (int i = 0; i < acc.n; i++)
        if (!acc.a[i].write) add(ctx, acc.a[i].node, 0);
}

int fused_statements(const FusedLoop *fl, const Graph *g) {
    int k = 0;
    for (int m = fl->lo; m < fl->root; m++)
        if (is_member(fl, m) && g->nodes[m].op != OP_reshape) k++;
    return k;
}

/* The index of domain dimension d at the loop variables (in a merged loop: divided out). */
static const char *dom_index(EmitCtx *e, const FusedLoop *fl, int d) {
    const Shape *dom = fusion_domain(e->g, fl->root);
    for (int L = 0; L < fl->nd; L++) {
        if (d < fl->first[L] || d > fl->last[L]) continue;
        Ext inner = {1, 0};
        for (int j = d + 1; j <= fl->last[L]; j++) inner = ext_mul(inner, dim_ext(dom, j, e->g->batch));
        const char *s = fl->var[L];
        if (inner.k != 1 || inner.b) s = arena_printf(e->arena, "(%s / (%s))", s, ext_str(e->arena, inner));
        if (d > fl->first[L])
            s = arena_printf(e->arena, "(%s %% (%s))", s, ext_str(e->arena, dim_ext(dom, d, e->g->batch)));
        return s;
    }
    return "0"; /* size 1: no loop */
}

/* The index of node's element that `map` (space dimension -> node dimension) gives at
 * this point of the code: in the domain from the loop variables (index_expr), in a row
 * reduction's loop from the indices of its space. */
static const char *space_index(EmitCtx *e, const FusedLoop *fl, const Space *sp, int node, const int8_t *map) {
    if (sp->nest < 0) return index_expr(e, fl, node, map);
    const Shape *s = &e->g->nodes[node].shape;
    const char *r = NULL;
    for (int d = 0; d < sp->shape->rank; d++) {
        if (map[d] < 0 || !sp->idx[d] || !strcmp(sp->idx[d], "0")) continue;
        Ext x = {1, 0};
        for (int j = map[d] + 1; j < s->rank; j++) x = ext_mul(x, dim_ext(s, j, e->g->batch));
        const char *term =
            x.k == 1 && !x.b ? sp->idx[d] : arena_printf(e->arena, "%s*%s", sp->idx[d], ext_str(e->arena, x));
        r = r ? arena_printf(e->arena, "%s + %s", r, term) : term;
    }
    return r ? r : "0";
}

static const char *const_text(EmitCtx *e, const Node *c) {
    const char *v = emit_float(e, attr_f(c, A_VALUE));
    return attr_i(c, A_BPOW) == -1  ? arena_printf(e->arena, "(%s / (float)B)", v)
           : attr_i(c, A_BPOW) == 1 ? arena_printf(e->arena, "(%s * (float)B)", v)
                                    : v;
}

/* A recomputed value (fuse.c) x at the element `map` (space -> x's dimensions) gives: an
 * expression of the labels, read from memory, and constants. */
static const char *recomputed(EmitCtx *e, const FusedLoop *fl, const Space *sp, int x, const int8_t *map) {
    const Graph *g = e->g;
    const Node *n = &g->nodes[x];
    const char *args[IR_MAX_IN];
    for (int k = 0; k < n->nin; k++) {
        int y = n->in[k];
        const Node *c = const_of(g, y);
        if (c) {
            args[k] = const_text(e, c);
            continue;
        }
        int8_t m[IR_MAX_RANK];
        fusion_input_map(g, x, k, map, m);
        args[k] = fl->fp->dup[y] ? recomputed(e, fl, sp, y, m)
                                 : arena_printf(e->arena, "%s[%s]", emit_buf(e, y), space_index(e, fl, sp, y, m));
    }
    const char *gen = op_of(n)->rules->gen_expr;
    if (gen) { /* %i, %j: the indices along its last and next-to-last dimensions */
        const char *i = "0", *j = "0";
        for (int d = 0; d < sp->shape->rank; d++) {
            if (map[d] == n->shape.rank - 1 && sp->idx[d]) i = sp->idx[d];
            if (map[d] == n->shape.rank - 2 && sp->idx[d]) j = sp->idx[d];
        }
        return text_replace(
            e->arena, text_replace(e->arena, subst(e->arena, target_math(e, gen), args, n->nin), "%i", i), "%j", j);
    }
    if (n->op == OP_reshape || n->op == OP_expand) return args[0];
    return ewise_expr(e, x, args);
}

/* What fused_body writes with: the values of the members so far. */
typedef struct Body {
    EmitCtx *e;
    const FusedLoop *fl;
    const char **val;
    const char *bail;
} Body;

/* The value of input k of member m where m is computed (space sp). */
static const char *operand(Body *b, const Space *sp, int m, int k) {
    EmitCtx *e = b->e;
    const Graph *g = e->g;
    int x = g->nodes[m].in[k];
    const Node *c = const_of(g, x);
    if (c) return const_text(e, c);
    if (is_member(b->fl, x)) return b->val[x - b->fl->lo];
    int8_t map[IR_MAX_RANK];
    fusion_operand_map(g, b->fl->fp, m, k, map);
    if (b->fl->fp->dup[x]) return recomputed(e, b->fl, sp, x, map);
    return arena_printf(e->arena, "%s[%s]", emit_buf(e, x), space_index(e, b->fl, sp, x, map));
}

static void eval_member(Body *b, const Space *sp, int m);

/* The members row reduction r's loop computes, and the value it accumulates. */
static const char *nest_value(Body *b, const Space *in, int r) {
    for (int m = b->fl->lo; m < r; m++)
        if (is_member(b->fl, m) && b->fl->fp->nest[m] == r) eval_member(b, in, m);
    return operand(b, in, r, 0);
}

/* A value made at this point: checked (--check-finite) unless its op keeps finite values
 * finite, and stored if it is kept. */
static void made(Body *b, const Space *sp, int m) {
    EmitCtx *e = b->e;
    const Node *nd = &e->g->nodes[m];
    const int8_t *map = b->fl->fp->map[m];
    if (b->bail && !(op_of(nd)->rules->flags & OPF_KEEPS_FINITE))
        emit(e, "if (mlc_nonfinite(v%d, %s, \"%%%d = %s\", \"%s:%d:%d\")) %s;", m, space_index(e, b->fl, sp, m, map), m,
             op_of(nd)->name, c_str(e->arena, emit_mdl_name(nd)), nd->loc.line, nd->loc.col, b->bail);
    if (m != b->fl->root && !b->fl->fp->inl[m])
        emit(e, "%s[%s] = v%d;", emit_buf(e, m), space_index(e, b->fl, sp, m, map), m);
}

/* One pass of row reduction r over its axis (variable j, length len): its members are
 * computed in the loop, and `step` accumulates each element into acc (%m: the first
 * pass's result pre, if any). */
static void axis_pass(Body *b, const Space *in, int r, const char *j, const char *len, const char *step,
                      const char *acc, const char *pre) {
    EmitCtx *e = b->e;
    emit(e, "for (long %s = 0; %s < (long)(%s); %s++) {", j, j, len, j);
    e->indent++;
    emit(e, "%s;", subst_named(e, step, acc, nest_value(b, in, r), len, pre));
    e->indent--;
    emit(e, "}");
}

/* A row reduction r computed in space sp: a loop over its axis (two for a two-pass one)
 * accumulating into a local, its members computed inside. */
static void row_reduction(Body *b, const Space *sp, int r) {
    EmitCtx *e = b->e;
    const Node *rn = &e->g->nodes[r];
    const OpRules *ru = op_of(rn)->rules;
    Space in;
    nest_space(e->g, b->fl->fp, sp, r, &in);
    int axis = (int)attr_i(rn, A_AXIS);
    const char *j = arena_printf(e->arena, "j%d", r), *len = ext_str(e->arena, dim_ext(in.shape, axis, e->g->batch));
    const char *acc = arena_printf(e->arena, "a%d", r), *pre = NULL;
    in.idx[axis] = j;
    if (ru->red_pre_step) {
        pre = arena_printf(e->arena, "m%d", r);
        emit(e, "float %s = %s; /* %%%d = %s, first pass */", pre, ru->red_pre_init, r, op_of(rn)->name);
        axis_pass(b, &in, r, j, len, ru->red_pre_step, pre, NULL);
    }
    emit(e, "float %s = %s; /* %%%d = %s */", acc, ru->red_init, r, op_of(rn)->name);
    axis_pass(b, &in, r, j, len, ru->red_step, acc, pre);
    emit(e, "const float v%d = %s;", r, subst_named(e, ru->red_fin, acc, "", len, pre));
    b->val[r - b->fl->lo] = arena_printf(e->arena, "v%d", r);
    made(b, sp, r);
}

/* Member m (not the root), computed in space sp. */
static void eval_member(Body *b, const Space *sp, int m) {
    EmitCtx *e = b->e;
    const Graph *g = e->g;
    const FusionPlan *fp = b->fl->fp;
    const Node *nd = &g->nodes[m];
    if (nd->op == OP_reshape) { /* a view of a member, of a recomputed value, or of a buffer read here */
        int x = nd->in[0];
        int8_t map[IR_MAX_RANK];
        if (const_of(g, m) || is_member(b->fl, x)) {
            /* a view of a constant outside the group has no value here: its readers print
             * the constant itself (operand) */
            b->val[m - b->fl->lo] = is_member(b->fl, x) ? b->val[x - b->fl->lo] : NULL;
        } else if (fp->dup[x]) {
            fusion_operand_map(g, fp, m, 0, map);
            b->val[m - b->fl->lo] = recomputed(e, b->fl, sp, x, map);
        } else {
            b->val[m - b->fl->lo] =
                arena_printf(e->arena, "%s[%s]", emit_buf(e, m), space_index(e, b->fl, sp, m, fp->map[m]));
        }
        return;
    }
    if (op_of(nd)->kind == K_REDUCE) {
        row_reduction(b, sp, m);
        return;
    }
    const char *args[IR_MAX_IN];
    for (int k = 0; k < nd->nin; k++) args[k] = operand(b, sp, m, k);
    emit(e, "const float v%d = %s;", m, nd->op == OP_expand ? args[0] : ewise_expr(e, m, args));
    b->val[m - b->fl->lo] = arena_printf(e->arena, "v%d", m);
    made(b, sp, m);
}

const char *fused_body(EmitCtx *e, const FusedLoop *fl, const char *check_bail) {
    const Graph *g = e->g;
    /* val[m - lo]: the value of member m (lo..root) */
    Body b = {e, fl, ARENA_ARRAY(e->arena, const char *, fl->root - fl->lo + 1), check_bail};
    Space top;
    domain_space(g, fl, &top);
    for (int d = 0; d < top.shape->rank; d++) top.idx[d] = dom_index(e, fl, d);
    for (int m = fl->lo; m < fl->root; m++)
        if (is_member(fl, m) && fl->fp->nest[m] < 0) eval_member(&b, &top, m);
    const Node *nd = &g->nodes[fl->root];
    if (op_of(nd)->kind == K_REDUCE) return operand(&b, &top, fl->root, 0); /* the value to accumulate */
    const char *args[IR_MAX_IN];
    for (int k = 0; k < nd->nin; k++) args[k] = operand(&b, &top, fl->root, k);
    const char *expr = nd->op == OP_expand ? args[0] : ewise_expr(e, fl->root, args);
    if (!check_bail) return expr;
    emit(e, "const float v%d = %s;", fl->root, expr);
    made(&b, &top, fl->root);
    return arena_printf(e->arena, "v%d", fl->root);
}

/* The recomputed values (fp->dup) the group computes from their inputs: those its members
 * read, directly or through other recomputed values (what fusion_recomputes says, found
 * from the members instead of by scanning the graph). Ascending, into *out. */
static int group_dups(EmitCtx *e, const FusedLoop *fl, int **out) {
    const Graph *g = e->g;
    int n = 0, cap = 8, *d = ARENA_ARRAY(e->arena, int, cap);
    for (int m = fl->lo; m <= fl->root; m++) {
        if (!is_member(fl, m)) continue;
        int done = n; /* d[done..n) are still to be walked */
        for (int k = 0, x = m;; x = d[done++]) {
            for (k = 0; k < g->nodes[x].nin; k++) {
                int y = g->nodes[x].in[k], seen = 0;
                if (!fl->fp->dup[y]) continue;
                for (int i = 0; i < n && !seen; i++) seen = d[i] == y;
                if (seen) continue;
                if (n == cap) {
                    int *big = ARENA_ARRAY(e->arena, int, 2 * cap);
                    memcpy(big, d, sizeof *d * (size_t)n);
                    d = big, cap *= 2;
                }
                d[n++] = y;
            }
            if (done == n) break;
        }
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
        for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
            int t = d[j];
            d[j] = d[j - 1], d[j - 1] = t;
        }
    *out = d;
    return n;
}

void fused_comment(EmitCtx *e, const FusedLoop *fl) {
    emit_node_comment(e, fl->root);
    int *dups, ndups = group_dups(e, fl, &dups), next = 0;
    while (next < ndups && e->g->nodes[dups[next]].op == OP_reshape) next++;
    int from = ndups && dups[0] < fl->lo ? dups[0] : fl->lo;
    for (int m = from; m < fl->root; m++) {
        const Node *nd = &e->g->nodes[m];
        if (next < ndups && dups[next] == m) {
            emit(e, "/*   recomputed: %%%d = %s (%s:%d), from its inputs */", m, op_of(nd)->name,
                 c_comment(e->arena, emit_mdl_name(nd)), nd->loc.line);
            while (++next < ndups && e->g->nodes[dups[next]].op == OP_reshape) {
            }
            continue;
        }
        if (m < fl->lo) { /* before the members: skip to the next recomputed value */
            m = (next < ndups && dups[next] < fl->lo ? dups[next] : fl->lo) - 1;
            continue;
        }
        if (!is_member(fl, m) || nd->op == OP_reshape) continue;
        const char *how = "";
        if (op_of(nd)->kind == K_REDUCE)
            how = arena_printf(e->arena, ", a loop over axis %lld", (long long)attr_i(nd, A_AXIS));
        if (fl->fp->nest[m] >= 0) how = arena_printf(e->arena, "%s, in the loop of %%%d", how, fl->fp->nest[m]);
        if (fl->fp->inl[m])
            emit(e, "/*   fused: %%%d = %s (%s:%d)%s, in a register */", m, op_of(nd)->name,
                 c_comment(e->arena, emit_mdl_name(nd)), nd->loc.line, how);
        else
            emit(e, "/*   fused: %%%d = %s (%s:%d)%s, stored to %s */", m, op_of(nd)->name,
                 c_comment(e->arena, emit_mdl_name(nd)), nd->loc.line, how, emit_buf(e, m));
    }
}
