/* simplify.c - common-subexpression elimination, constant folding and algebraic
 * simplification, in one forward walk that rebuilds the graph.
 *
 * Autodiff writes every rule literally, so the backward graph repeats itself (the same
 * reshape of a gradient for several uses, `1 * x` where the loss seeds the chain, an
 * expand of a constant). Each node is first rewritten by the rules below, then looked
 * up among the nodes already kept: an identical one (same op, inputs, attributes,
 * shape) replaces it. Nodes with effects (optimizer updates) and named sources are
 * never merged. DCE afterwards drops what became dead. */
#include <string.h>

#include "ops.h"
#include "passes.h"

typedef struct Simplifier {
    Graph *g;   /* the graph being built */
    int *table; /* open-addressing hash of kept node ids, -1 empty */
    int cap;
} Simplifier;

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t node_hash(const Node *n) {
    uint64_t h = (uint64_t)n->op;
    for (int i = 0; i < n->nin; i++) h = mix(h, (uint64_t)n->in[i]);
    for (size_t i = 0; i < sizeof n->attr / (sizeof(uint64_t));
         i++) { /* the slots' bytes: attr_set_all zeroes the rest */
        uint64_t bits;
        memcpy(&bits, (const char *)n->attr + i * sizeof bits, sizeof bits);
        h = mix(h, bits);
    }
    h = mix(h, (uint64_t)n->shape.rank);
    for (int i = 0; i < n->shape.rank; i++) h = mix(h, (uint64_t)n->shape.d[i]);
    return mix(h, n->shape.bmask);
}

static int same(const Node *a, const Node *b) {
    return a->op == b->op && a->nin == b->nin && !memcmp(a->in, b->in, sizeof(int) * (size_t)a->nin) &&
           !memcmp(a->attr, b->attr, sizeof a->attr) && shape_eq(&a->shape, &b->shape) && a->dtype == b->dtype;
}

/* Nodes that must stay themselves: they write state, or they are an interface. */
static int mergeable(const Node *n) {
    OpKind k = op_of(n)->kind;
    if (k == K_UPDATE) return 0;
    if (k == K_SOURCE) return n->op == OP_const;
    return 1;
}

/* Adds n unless an identical node exists; returns the id that stands for it. */
static int keep(Simplifier *s, const Node *n) {
    if (!mergeable(n)) return graph_push(s->g, n);
    uint64_t h = node_hash(n);
    int slot = (int)(h % (uint64_t)s->cap);
    for (; s->table[slot] >= 0; slot = (slot + 1) % s->cap)
        if (same(&s->g->nodes[s->table[slot]], n)) return s->table[slot];
    int id = graph_push(s->g, n);
    s->table[slot] = id;
    return id;
}

/* The scalar constant behind x (through reshapes and expands of it), or -1. */
static int const_source(const Graph *g, int x) {
    while (g->nodes[x].op == OP_reshape || g->nodes[x].op == OP_expand) x = g->nodes[x].in[0];
    return g->nodes[x].op == OP_const ? x : -1;
}

static int is_const(const Graph *g, int x, double v) {
    int c = const_source(g, x);
    return c >= 0 && attr_i(&g->nodes[c], A_BPOW) == 0 && attr_f(&g->nodes[c], A_VALUE) == v;
}

/* Rewrites node n (inputs already in the new graph) and returns the id of an existing
 * node it reduces to, or -1 to keep it (possibly with its inputs changed). */
static int rewrite(Graph *g, Node *n) {
    const OpInfo *oi = op_of(n);
    /* An elementwise op reads a broadcast constant as well as the expanded tensor:
     * drop the expand when the result's shape does not depend on it. */
    if (oi->kind == K_EWISE) {
        for (int k = 0; k < n->nin; k++) {
            int c = const_source(g, n->in[k]);
            if (c < 0 || c == n->in[k]) continue;
            Node t = *n;
            t.in[k] = c;
            if (oi->rules->shape(g, &t) == NULL && shape_eq(&t.shape, &n->shape)) n->in[k] = c;
        }
    }
    const Shape *s = &n->shape;
    switch (n->op) {
    case OP_mul: /* x * 1 = x */
        for (int k = 0; k < 2; k++)
            if (is_const(g, n->in[k], 1.0) && shape_eq(&g->nodes[n->in[1 - k]].shape, s)) return n->in[1 - k];
        break;
    case OP_add: /* x + 0 = x */
        for (int k = 0; k < 2; k++)
            if (is_const(g, n->in[k], 0.0) && shape_eq(&g->nodes[n->in[1 - k]].shape, s)) return n->in[1 - k];
        break;
    case OP_sub: /* x - 0 = x */
        if (is_const(g, n->in[1], 0.0) && shape_eq(&g->nodes[n->in[0]].shape, s)) return n->in[0];
        break;
    case OP_neg: /* -(-x) = x */
        if (g->nodes[n->in[0]].op == OP_neg) return g->nodes[n->in[0]].in[0];
        break;
    case OP_reshape: /* a reshape of a reshape reads the original */
        if (g->nodes[n->in[0]].op == OP_reshape) n->in[0] = g->nodes[n->in[0]].in[0];
        if (shape_eq(&g->nodes[n->in[0]].shape, s)) return n->in[0];
        break;
    default: break;
    }
    /* Scalar constant arithmetic folds, keeping track of powers of B. */
    if ((n->op == OP_mul || n->op == OP_div) && s->rank == 0) {
        const Node *a = &g->nodes[n->in[0]], *b = &g->nodes[n->in[1]];
        if (a->op == OP_const && b->op == OP_const) {
            int mul = n->op == OP_mul;
            int64_t pa = attr_i(a, A_BPOW), pb = attr_i(b, A_BPOW);
            double va = attr_f(a, A_VALUE), vb = attr_f(b, A_VALUE);
            int64_t p = mul ? pa + pb : pa - pb;
            if (p >= -1 && p <= 1 && (mul || vb != 0)) {
                double v = mul ? va * vb : va / vb;
                n->op = OP_const;
                n->nin = 0;
                memset(n->attr, 0, sizeof n->attr);
                attr_set_f(n, A_VALUE, v);
                attr_set_i(n, A_BPOW, p);
            }
        }
    }
    return -1;
}

void simplify(Graph *g) {
    Arena *a = g->arena;
    Graph *out = graph_new(a, g->mode, g->batch);
    Simplifier s = {out, ARENA_ARRAY(a, int, 2 * g->n + 1), 2 * g->n + 1};
    for (int i = 0; i < s.cap; i++) s.table[i] = -1;
    int *rep = ARENA_ARRAY(a, int, g->n);
    for (int id = 0; id < g->n; id++) {
        Node n = g->nodes[id];
        for (int k = 0; k < n.nin; k++) n.in[k] = rep[n.in[k]];
        int r = rewrite(out, &n);
        rep[id] = r >= 0 ? r : keep(&s, &n);
        out->nodes[rep[id]].role |= n.role;
    }
    graph_adopt(g, out, rep);
}
