/* relu_pool.c - the ReLU backward's mask moves in front of the max-pool backward:
 *
 *   mul(maxpool2d_bwd(dy, x), step(x))  ->  maxpool2d_bwd(mul(dy, step(p)), x)
 *
 * where p = max_pool2d(x) is the forward pool with the same attributes. The pooling
 * backward routes each dy[w] to the first maximal element of window w, where x equals
 * p[w], so step(x) there is step(p[w]); every other element of dx is 0 either way. Only
 * for windows that do not overlap (stride = kernel, no padding): each element of dx then
 * gets at most one window's value, so no sum of masked terms can differ from the mask of
 * the sum.
 *
 * Why: the mask multiplies a quarter of the elements (dy instead of dx), and the
 * backward no longer reads x after the pooling backward. x (the ReLU's output, the
 * largest activation of a LeNet) then dies in the pooling backward, whose dx can take
 * its bytes over (fuse.c, memplan.c): the train step's memory peak was there.
 *
 * Runs on the train graph after simplify (operands are CSE'd, so "the same x" is the
 * same node); the old pooling backward and step(x) are left for DCE. */
#include "ops.h"
#include "passes.h"

/* Windows that tile without overlap: stride = kernel in both dimensions, no padding. */
static int disjoint_windows(const Node *n) {
    return attr_h(n, A_KERNEL) == attr_h(n, A_STRIDE) && attr_w(n, A_KERNEL) == attr_w(n, A_STRIDE) &&
           attr_h(n, A_PAD) == 0 && attr_w(n, A_PAD) == 0;
}

/* The forward max_pool2d of x with the attributes of pooling backward b, or -1. */
static int forward_pool(const Graph *g, int x, const Node *b) {
    for (int id = x + 1; id < g->n; id++) {
        const Node *p = &g->nodes[id];
        if (p->op == OP_max_pool2d && p->in[0] == x && attr_same(p, b, A_KERNEL) && attr_same(p, b, A_STRIDE) &&
            attr_same(p, b, A_PAD))
            return id;
    }
    return -1;
}

/* mul operand k of n is a pooling backward that only this mul reads, and the other is
 * step of the pooling's x itself (no view of it): the pooling backward's id, or -1. */
static int masked_pool_bwd(const Graph *g, const Node *n, int k, const int *uses) {
    const Node *b = &g->nodes[n->in[k]], *m = &g->nodes[n->in[1 - k]];
    if (b->op != OP_maxpool2d_bwd || uses[n->in[k]] != 1 || !disjoint_windows(b)) return -1;
    if (m->op != OP_step || m->in[0] != b->in[1]) return -1;
    if (!shape_eq(&m->shape, &b->shape)) return -1;
    return n->in[k];
}

/* How many node inputs read each node (the loss and output count as readers). */
static int *count_uses(const Graph *g) {
    int *uses = ARENA_ARRAY(g->arena, int, g->n + 1);
    for (int id = 0; id < g->n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) uses[g->nodes[id].in[k]]++;
    if (g->loss >= 0) uses[g->loss]++;
    for (int k = 0; k < g->nout; k++) uses[g->outputs[k]]++;
    return uses;
}

/* Node id of g rewritten into `out` (map: g's ids to out's, up to id), or -1 when it is
 * no masked pooling backward. Matches on g, where the use counts are. */
static int rewrite(const Graph *g, Graph *out, int id, const int *map, const int *uses) {
    const Node *n = &g->nodes[id];
    if (n->op != OP_mul) return -1;
    for (int k = 0; k < 2; k++) {
        int bid = masked_pool_bwd(g, n, k, uses);
        if (bid < 0) continue;
        const Node *b = &g->nodes[bid];
        int p = forward_pool(g, b->in[1], b);
        /* dy is p's gradient, in p's shape: the mask multiplies it elementwise */
        if (p < 0 || !shape_eq(&g->nodes[b->in[0]].shape, &g->nodes[p].shape)) continue;
        const SrcLoc *loc = &n->loc;
        int mask = ir_unary(out, OP_step, map[p], loc);
        int in[2] = {ir_binary(out, OP_mul, map[b->in[0]], mask, loc), map[b->in[1]]};
        return graph_add_like(out, OP_maxpool2d_bwd, in, 2, b, NULL, &b->loc);
    }
    return -1;
}

int relu_pool(Graph *g) {
    Arena *a = g->arena;
    Graph *out = graph_new(a, g->mode, g->batch);
    int *map = ARENA_ARRAY(a, int, g->n);
    int *uses = count_uses(g);
    int rewritten = 0;
    for (int id = 0; id < g->n; id++) {
        int r = rewrite(g, out, id, map, uses);
        if (r >= 0) {
            out->nodes[r].role = g->nodes[id].role;
            rewritten++;
        } else {
            Node n = g->nodes[id];
            for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
            r = graph_push(out, &n);
        }
        map[id] = r;
    }
    graph_adopt(g, out, map);
    return rewritten;
}
