/* split_bn.c - after autodiff, every bn_apply becomes a multiply-add by per-channel
 * coefficients:
 *
 *   y = bn_apply(x, stats, gamma, beta)
 *     -> scale = bn_scale(stats, gamma), shift = bn_shift(stats, scale, beta),
 *        y = x * scale + shift      (scale and shift broadcast as [1, C, 1, ...])
 *
 * Autodiff needs bn_apply whole: its gradient rule writes the batch norm's backward as two
 * ops. The forward, though, is elementwise once the coefficients are known, and as
 * elementwise ops it joins the fused group of what reads it: the ReLU, or the residual add
 * and ReLU, after a batch norm run in the same loop, and the normalised activation never
 * reaches memory. That saves one write and one read of the activation per batch norm.
 *
 * bn_apply works on x viewed as [B, C, S]; lowering reshapes a [B, C, H, W] activation to
 * that and the result back. The multiply-add is written in the activation's own shape
 * when x is such a view (same layout: B, then C, then the rest), so simplify folds the
 * two reshapes away and the group reads the activation directly.
 *
 * The arithmetic is what bn_apply's own kernel did (scale and shift, then one multiply and
 * one add per element), so C results did not change when this pass came in. Runs on the
 * train graph right after the optimizer; simplify and DCE follow. */
#include "ops.h"
#include "passes.h"

/* x itself, or the [B, C, ...] tensor x is a reshape of when they share a layout. */
static int activation(const Graph *g, int x) {
    const Node *n = &g->nodes[x];
    if (n->op != OP_reshape) return x;
    const Shape *s = &g->nodes[n->in[0]].shape;
    if (s->rank >= 2 && s->bmask == 1 && s->d[1] == n->shape.d[1]) return n->in[0];
    return x;
}

int *split_bn(Graph *g) {
    Arena *a = g->arena;
    Graph *out = graph_new(a, g->mode, g->batch);
    int *map = ARENA_ARRAY(a, int, g->n);
    for (int id = 0; id < g->n; id++) {
        Node n = g->nodes[id];
        for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
        if (n.op != OP_bn_apply) {
            map[id] = graph_push(out, &n);
            continue;
        }
        const SrcLoc *loc = &n.loc;
        int sin[2] = {n.in[1], n.in[2]};
        int scale = graph_add(out, OP_bn_scale, sin, 2, ATTRS(AF(A_EPS, attr_f(&n, A_EPS))), loc);
        int hin[3] = {n.in[1], scale, n.in[3]};
        int shift = graph_add(out, OP_bn_shift, hin, 3, NULL, loc);
        int x = activation(out, n.in[0]);
        Shape bc = out->nodes[x].shape;
        for (int i = 0; i < bc.rank; i++) bc.d[i] = i == 1 ? bc.d[1] : 1;
        bc.bmask = 0;
        int y = ir_binary(out, OP_mul, x, ir_reshape(out, scale, bc, loc), loc);
        y = ir_binary(out, OP_add, y, ir_reshape(out, shift, bc, loc), loc);
        map[id] = ir_reshape(out, y, n.shape, loc);
        out->nodes[map[id]].role = n.role;
    }
    graph_adopt(g, out, map);
    return map;
}
