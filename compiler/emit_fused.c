/* emit_fused.c - the code of a fused group (fuse.c), shared by the C and CUDA targets:
 * the loops over the group's domain, the index of every buffer the group reads or
 * writes, and the body that evaluates the members as locals.
 *
 * The domain's dimensions become loops; adjacent dimensions merge into one loop when
 * every access walks them as one (a [B, 256] bias add: B x 256 loops, the bias read at
 * i1; a [B, 784] relu: one loop of B*784). A reduction keeps its axis as a loop of its
 * own between the outer and the inner loops. */
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

static Ext dim_ext(const Shape *s, int i) { return (s->bmask >> i) & 1 ? (Ext){1, 1} : (Ext){s->d[i], 0}; }

static Ext ext_mul(Ext x, Ext y) { return (Ext){x.k * y.k, x.b + y.b}; }

static const char *ext_str(Arena *a, Ext x) {
    if (!x.b) return arena_printf(a, "%lld", (long long)x.k);
    return x.k == 1 ? "B" : arena_printf(a, "B*%lld", (long long)x.k);
}

/* Strides, along each domain dimension, of a buffer of shape s read or written through
 * `map` (0 where it is broadcast). */
static void strides(const Shape *dom, const Shape *s, const int8_t *map, Ext *st) {
    for (int d = 0; d < dom->rank; d++) {
        st[d] = (Ext){0, 0};
        if (map[d] < 0) continue;
        Ext x = {1, 0};
        for (int j = map[d] + 1; j < s->rank; j++) x = ext_mul(x, dim_ext(s, j));
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
    int axis = (int)r->iattr[0];
    memset(map, -1, IR_MAX_RANK);
    for (int d = 0; d < dom->rank; d++) {
        if (d == axis) continue;
        int j = r->iattr[1] ? d : d < axis ? d : d - 1;
        if (real_dim(&r->shape, j)) map[d] = (int8_t)j;
    }
    return axis;
}

/* Collects the group's accesses; returns how many. */
static int accesses(EmitCtx *e, const FusedLoop *fl, Access *acc) {
    const Graph *g = e->g;
    const FusionPlan *fp = fl->fp;
    int n = 0;
    for (int m = 0; m <= fl->root; m++) {
        if (!is_member(fl, m)) continue;
        const Node *nd = &g->nodes[m];
        if (nd->op == OP_reshape) { /* a view: of a member (no access), or read from memory */
            if (!is_member(fl, nd->in[0]) && !const_of(g, m)) {
                acc[n] = (Access){.node = m};
                memcpy(acc[n].map, fp->map[m], IR_MAX_RANK);
                n++;
            }
            continue;
        }
        for (int k = 0; k < nd->nin; k++) {
            int x = nd->in[k];
            if (is_member(fl, x) || const_of(g, x)) continue;
            acc[n] = (Access){.node = x};
            fusion_operand_map(g, fp, m, k, acc[n].map);
            n++;
        }
        if (m == fl->root && op_of(nd)->kind == K_REDUCE) {
            acc[n] = (Access){.node = m, .write = 1};
            reduce_out_map(g, m, acc[n].map);
            n++;
        } else if (m == fl->root || !fp->inl[m]) {
            acc[n] = (Access){.node = m, .write = 1};
            memcpy(acc[n].map, fp->map[m], IR_MAX_RANK);
            n++;
        }
    }
    return n;
}

static Access *group_accesses(EmitCtx *e, const FusedLoop *fl, int *count) {
    int cap = 1;
    for (int m = 0; m <= fl->root; m++)
        if (is_member(fl, m)) cap += e->g->nodes[m].nin + 1;
    Access *acc = ARENA_ARRAY(e->arena, Access, cap);
    *count = accesses(e, fl, acc);
    return acc;
}

void fused_loop(EmitCtx *e, const FusionPlan *fp, int root, int merge_dims, FusedLoop *fl) {
    const Graph *g = e->g;
    memset(fl, 0, sizeof *fl);
    fl->fp = fp;
    fl->root = root;
    fl->axis = -1;
    const Node *r = &g->nodes[root];
    const Shape *dom = fusion_domain(g, root);
    int axis = op_of(r)->kind == K_REDUCE ? (int)r->iattr[0] : -1;
    int na;
    Access *acc = group_accesses(e, fl, &na);
    Ext (*st)[IR_MAX_RANK] = arena_alloc(e->arena, sizeof *st * (size_t)(na + 1));
    for (int i = 0; i < na; i++) strides(dom, &g->nodes[acc[i].node].shape, acc[i].map, st[i]);
    /* Merge each real dimension into the loop before it when every access agrees. */
    Ext size[IR_MAX_RANK];
    int prev = -1;
    for (int d = 0; d < dom->rank; d++) {
        if (!real_dim(dom, d) && d != axis) continue;
        int merge = merge_dims && prev >= 0 && d != axis && prev != axis;
        if (merge_dims == FUSED_PER_SAMPLE && prev == 0) merge = 0; /* the batch keeps its loop */
        for (int i = 0; merge && i < na; i++) {
            Ext p = st[i][prev], c = ext_mul(st[i][d], dim_ext(dom, d));
            if ((p.k == 0) != (st[i][d].k == 0)) merge = 0;
            else if (p.k && (p.k != c.k || p.b != c.b)) merge = 0;
        }
        if (merge) {
            int L = fl->nd - 1;
            size[L] = ext_mul(size[L], dim_ext(dom, d));
            fl->last[L] = d;
        } else {
            int L = fl->nd++;
            fl->first[L] = fl->last[L] = d;
            size[L] = dim_ext(dom, d);
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
    strides(dom, &e->g->nodes[node].shape, map, st);
    const char *s = NULL;
    for (int L = 0; L < fl->nd; L++) {
        Ext x = st[fl->last[L]];
        if (!x.k) continue;
        const char *term = x.k == 1 && !x.b ? fl->var[L] : arena_printf(e->arena, "%s*%s", fl->var[L], ext_str(e->arena, x));
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
    int na;
    Access *acc = group_accesses(e, fl, &na);
    for (int i = 0; i < na; i++)
        if (acc[i].write) add(ctx, acc[i].node, 1);
    for (int i = 0; i < na; i++)
        if (!acc[i].write) add(ctx, acc[i].node, 0);
}

int fused_statements(const FusedLoop *fl, const Graph *g) {
    int k = 0;
    for (int m = 0; m < fl->root; m++)
        if (is_member(fl, m) && g->nodes[m].op != OP_reshape) k++;
    return k;
}

static const char *where(const Node *n) {
    if (!n->loc.file) return "?";
    const char *f = n->loc.file->name, *slash = strrchr(f, '/');
    return slash ? slash + 1 : f;
}

const char *fused_body(EmitCtx *e, const FusedLoop *fl, const char *check_bail) {
    const Graph *g = e->g;
    const FusionPlan *fp = fl->fp;
    const char **val = ARENA_ARRAY(e->arena, const char *, fl->root + 1);
    for (int m = 0; m <= fl->root; m++) {
        if (!is_member(fl, m)) continue;
        const Node *nd = &g->nodes[m];
        if (nd->op == OP_reshape) { /* a view of a member, or of a buffer read here */
            if (!const_of(g, m) && !is_member(fl, nd->in[0]))
                val[m] = arena_printf(e->arena, "%s[%s]", emit_buf(e, m), index_expr(e, fl, m, fp->map[m]));
            else
                val[m] = val[nd->in[0]];
            continue;
        }
        const char *args[IR_MAX_IN];
        for (int k = 0; k < nd->nin; k++) {
            int x = nd->in[k];
            const Node *c = const_of(g, x);
            if (c) {
                const char *v = emit_float(e, c->fattr[0]);
                args[k] = c->iattr[0] == -1 ? arena_printf(e->arena, "(%s / (float)B)", v)
                          : c->iattr[0] == 1 ? arena_printf(e->arena, "(%s * (float)B)", v)
                                             : v;
            } else if (is_member(fl, x)) {
                args[k] = val[x];
            } else {
                int8_t map[IR_MAX_RANK];
                fusion_operand_map(g, fp, m, k, map);
                args[k] = arena_printf(e->arena, "%s[%s]", emit_buf(e, x), index_expr(e, fl, x, map));
            }
        }
        if (op_of(nd)->kind == K_REDUCE) return args[0]; /* the root: the value to accumulate */
        const char *expr = nd->op == OP_expand ? args[0] : ewise_expr(e, m, args);
        if (m == fl->root && !check_bail) return expr;
        emit(e, "const float v%d = %s;", m, expr);
        val[m] = arena_printf(e->arena, "v%d", m);
        if (check_bail)
            emit(e, "if (mlc_nonfinite(v%d, %s, \"%%%d = %s\", \"%s:%d:%d\")) %s;", m, index_expr(e, fl, m, fp->map[m]), m,
                 op_of(nd)->name, where(nd), nd->loc.line, nd->loc.col, check_bail);
        if (m == fl->root) return val[m];
        if (!fp->inl[m]) emit(e, "%s[%s] = v%d;", emit_buf(e, m), index_expr(e, fl, m, fp->map[m]), m);
    }
    mlc_die("fused group %%%d has no root", fl->root);
}

void fused_comment(EmitCtx *e, const FusedLoop *fl) {
    emit_node_comment(e, fl->root);
    for (int m = 0; m < fl->root; m++) {
        if (!is_member(fl, m) || e->g->nodes[m].op == OP_reshape) continue;
        const Node *nd = &e->g->nodes[m];
        if (fl->fp->inl[m])
            emit(e, "/*   fused: %%%d = %s (%s:%d), in a register */", m, op_of(nd)->name, where(nd), nd->loc.line);
        else
            emit(e, "/*   fused: %%%d = %s (%s:%d), stored to %s */", m, op_of(nd)->name, where(nd), nd->loc.line,
                 emit_buf(e, m));
    }
}
