/* fold_bn.c - folds evaluation-mode batch norm into the convolution before it.
 *
 * In the eval graph, batch_norm(conv2d(x, w [, bias])) lowers (lower.c, b_batch_norm)
 * to, after simplify:
 *
 *     c    = conv2d x, w                                   [B, C, H, W]
 *     c    = add c, reshape(bias -> [C, 1, 1])             (conv2d with bias = true)
 *     xr   = reshape c                                     [B, C, H*W]
 *     sc   = mul rsqrt(add(reshape(running_var), eps)), reshape(gamma)     [1, C, 1]
 *     y    = add mul(sub(xr, reshape(running_mean)), sc), reshape(beta)    [B, C, H*W]
 *     out  = reshape y                                     [B, C, H, W]
 *
 * three full-size elementwise passes over the convolution's output (four with the
 * conv's bias). With s = gamma * rsqrt(var + eps) per channel it is the same function as
 *
 *     out = conv2d(x, w * s[:, None, None, None]) + (beta + (bias - mean) * s)[:, None, None]
 *
 * (bias = 0 without one): a few ops on the weights, which have no batch dimension, and one
 * bias add on the output.
 *
 * The pattern is matched by structure: op kinds, which operands are running-statistics
 * state and which are parameters, per-channel shapes, and that each full-size
 * intermediate before y has no live reader but the next op of the pattern. Anything else
 * is left as it is. The pass rebuilds the graph with the folded form in place of y (and
 * of the reshape back to [B, C, H, W]); the old nodes become dead and DCE drops them. New
 * nodes carry the .mdl location of the batch_norm, the new conv2d that of the conv2d. */
#include "ops.h"
#include "passes.h"

typedef struct Match {
    int x, w, conv;  /* conv2d's input and weight, the conv2d node */
    int bias;        /* conv2d's bias parameter [C], or -1 */
    int mean, var;   /* running statistics (state) [C] */
    int eps;         /* scalar constant */
    int gamma, beta; /* parameters [C] */
} Match;

typedef struct Folder {
    const Graph *g;
    int *uses; /* live readers of each node */
} Folder;

static Shape shape3(int64_t a, int64_t b, int64_t c) {
    int64_t d[3] = {a, b, c};
    return shape_make(3, d, 0);
}

/* A full-size intermediate the fold bypasses: one live reader, no role. */
static int private_to_pattern(const Folder *f, int id) {
    const Node *n = &f->g->nodes[id];
    return f->uses[id] == 1 && !n->role && !graph_is_output(f->g, id) && id != f->g->loss;
}

/* Whether `id` is the binary op `op`; its operands in *a, *b. */
static int is_binary(const Graph *g, int id, Op op, int *a, int *b) {
    const Node *n = &g->nodes[id];
    if (n->op != op) return 0;
    *a = n->in[0];
    *b = n->in[1];
    return 1;
}

/* The per-channel source behind `id` when `id` is reshape(src -> want) and src is an f32
 * node of kind `op` (param or state) of shape [C]; else -1. */
static int chan_view(const Graph *g, int id, Op op, int64_t C, const Shape *want) {
    const Node *n = &g->nodes[id];
    if (n->op != OP_reshape || !shape_eq(&n->shape, want)) return -1;
    const Node *s = &g->nodes[n->in[0]];
    Shape c = shape_make(1, &C, 0);
    if (s->op != op || s->dtype != DT_F32 || !shape_eq(&s->shape, &c)) return -1;
    return n->in[0];
}

static int is_scalar_const(const Graph *g, int id) {
    const Node *n = &g->nodes[id];
    return n->op == OP_const && n->shape.rank == 0 && attr_i(n, A_BPOW) == 0;
}

/* Matches the pattern whose last op is y = add(..., reshape(beta)) [B, C, H*W]. */
static int match(const Folder *f, int y, Match *m) {
    const Graph *g = f->g;
    const Node *Y = &g->nodes[y];
    if (Y->op != OP_add || Y->dtype != DT_F32 || Y->shape.rank != 3 || Y->shape.bmask != 1) return 0;
    int64_t C = Y->shape.d[1];
    Shape bc = shape3(1, C, 1), cb = shape3(C, 1, 1);
    int a = Y->in[0], b = Y->in[1];

    /* y = add(mul(...), reshape(beta)), either order */
    int mm;
    if ((m->beta = chan_view(g, b, OP_param, C, &bc)) >= 0) mm = a;
    else if ((m->beta = chan_view(g, a, OP_param, C, &bc)) >= 0) mm = b;
    else return 0;

    /* mul(sub(xr, reshape(mean)), scale), either order */
    int d, sc;
    if (!private_to_pattern(f, mm) || !is_binary(g, mm, OP_mul, &a, &b)) return 0;
    if (g->nodes[a].op == OP_sub) d = a, sc = b;
    else if (g->nodes[b].op == OP_sub) d = b, sc = a;
    else return 0;
    if (!private_to_pattern(f, d)) return 0;

    /* scale = mul(rsqrt(add(reshape(var), eps)), reshape(gamma)), either order, either
     * order inside the add */
    int inv;
    if (!is_binary(g, sc, OP_mul, &a, &b)) return 0;
    if ((m->gamma = chan_view(g, b, OP_param, C, &bc)) >= 0) inv = a;
    else if ((m->gamma = chan_view(g, a, OP_param, C, &bc)) >= 0) inv = b;
    else return 0;
    if (g->nodes[inv].op != OP_rsqrt || !is_binary(g, g->nodes[inv].in[0], OP_add, &a, &b)) return 0;
    if ((m->var = chan_view(g, a, OP_state, C, &bc)) >= 0 && is_scalar_const(g, b)) m->eps = b;
    else if ((m->var = chan_view(g, b, OP_state, C, &bc)) >= 0 && is_scalar_const(g, a)) m->eps = a;
    else return 0;

    /* sub(xr, reshape(mean)) with xr = reshape(c -> [B, C, H*W]) */
    int xr = g->nodes[d].in[0];
    if ((m->mean = chan_view(g, g->nodes[d].in[1], OP_state, C, &bc)) < 0) return 0;
    const Node *X = &g->nodes[xr];
    if (X->op != OP_reshape || !private_to_pattern(f, xr) || !shape_eq(&X->shape, &Y->shape)) return 0;

    /* c = conv2d(x, w), or add(conv2d(x, w), reshape(bias -> [C, 1, 1])), either order */
    int c = X->in[0];
    m->bias = -1;
    if (g->nodes[c].op == OP_add) {
        if (!private_to_pattern(f, c)) return 0;
        is_binary(g, c, OP_add, &a, &b);
        if (g->nodes[a].op == OP_conv2d && (m->bias = chan_view(g, b, OP_param, C, &cb)) >= 0) c = a;
        else if (g->nodes[b].op == OP_conv2d && (m->bias = chan_view(g, a, OP_param, C, &cb)) >= 0) c = b;
        else return 0;
    }
    const Node *conv = &g->nodes[c];
    if (conv->op != OP_conv2d || !private_to_pattern(f, c) || conv->dtype != DT_F32 || conv->shape.d[1] != C ||
        shape_numel(&conv->shape) != shape_numel(&Y->shape))
        return 0;
    m->conv = c;
    m->x = conv->in[0];
    m->w = conv->in[1];
    return 1;
}

/* Appends the folded form to `o` (inputs through rep) and returns its output, shaped like
 * the conv2d: [B, C, H, W]. */
static int emit_folded(Graph *o, const Graph *g, const Match *m, const int *rep, int y) {
    const Node *conv = &g->nodes[m->conv];
    const SrcLoc *lb = &g->nodes[y].loc, *lc = &conv->loc;
    int64_t C = conv->shape.d[1];
    int64_t wd[4] = {C, 1, 1, 1};
    /* s = rsqrt(var + eps) * gamma, [C] */
    int inv = ir_unary(o, OP_rsqrt, ir_binary(o, OP_add, rep[m->var], rep[m->eps], lb), lb);
    int s = ir_binary(o, OP_mul, inv, rep[m->gamma], lb);
    /* w' = w * s, per output channel */
    int w = ir_binary(o, OP_mul, rep[m->w], ir_reshape(o, s, shape_make(4, wd, 0), lb), lb);
    /* b' = beta - mean * s, or beta + (bias - mean) * s */
    int shift = m->bias >= 0
                    ? ir_binary(o, OP_add, rep[m->beta],
                                ir_binary(o, OP_mul, ir_binary(o, OP_sub, rep[m->bias], rep[m->mean], lb), s, lb), lb)
                    : ir_binary(o, OP_sub, rep[m->beta], ir_binary(o, OP_mul, rep[m->mean], s, lb), lb);
    int in[2] = {rep[m->x], w};
    int c = graph_add_like(o, OP_conv2d, in, 2, conv, NULL, lc);
    return ir_binary(o, OP_add, c, ir_reshape(o, shift, shape3(C, 1, 1), lb), lb);
}

int fold_bn(Graph *g) {
    if (g->mode != MODE_EVAL) return 0;
    Arena *a = g->arena;
    char *live = dce_live(g);
    Folder f = {g, ARENA_ARRAY(a, int, g->n)}; /* zeroed */
    for (int id = 0; id < g->n; id++)
        if (live[id])
            for (int k = 0; k < g->nodes[id].nin; k++) f.uses[g->nodes[id].in[k]]++;

    Graph *o = graph_new(a, g->mode, g->batch);
    int *rep = ARENA_ARRAY(a, int, g->n);
    int *folded = ARENA_ARRAY(a, int, g->n); /* y -> 1 + the folded [B, C, H, W] output */
    int count = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        Match m;
        if (live[id] && match(&f, id, &m)) {
            int out = emit_folded(o, g, &m, rep, id);
            folded[id] = out + 1;
            rep[id] = ir_reshape(o, out, n->shape, &n->loc); /* for readers of the [B, C, H*W] view */
            o->nodes[rep[id]].role |= n->role;
            count++;
            continue;
        }
        /* The reshape back to the conv2d's shape reads the folded output directly. */
        if (n->op == OP_reshape && folded[n->in[0]] && shape_eq(&n->shape, &o->nodes[folded[n->in[0]] - 1].shape)) {
            rep[id] = folded[n->in[0]] - 1;
            o->nodes[rep[id]].role |= n->role;
            continue;
        }
        Node copy = *n;
        for (int k = 0; k < copy.nin; k++) copy.in[k] = rep[copy.in[k]];
        rep[id] = graph_push(o, &copy);
    }
    if (count) graph_adopt(g, o, rep);
    return count;
}
