/* memplan.c - places every tensor of a graph that needs a buffer of its own in one arena,
 * at an offset fixed at compile time, reusing space between tensors whose lifetimes do
 * not overlap.
 *
 * A tensor's size is either k floats or k*B floats (B, the batch size, is chosen when the
 * model is created: shapes have at most one batch dimension). So the arena has two
 * regions planned separately, each with the same greedy first-fit over live intervals:
 *
 *     [ batch region: size_b * B ][ constant region: size_c ][ workspace ]
 *
 * The workspace holds the largest of each part any op needs: c + b * B + per_thread * T
 * (T threads; the trainer knows T only when it runs, so the arena is sized then).
 *
 * A tensor lives from the node that writes it to its last reader (through views: a
 * reshape shares its input's buffer); the output and the loss live to the end, since the
 * caller reads them after the step. With fusion (fuse.c) a node's code runs at its
 * group's root: that is where it is written and where its inputs are read, and a member
 * kept in registers gets no buffer, nor does a value every group reading it recomputes
 * (its inputs are read where those groups run). Workspace (scratch an op needs while it
 * runs, e.g. conv2d's im2col columns) lives only during its node, so one region of the
 * largest size serves all nodes. */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"

static int needs_buffer(const Node *n) {
    switch (op_of(n)->kind) {
    case K_SOURCE: return 0;  /* params/state in the slab, inputs are arguments, consts inline */
    case K_UPDATE: return 0;  /* writes its state in place */
    case K_SHAPE: return n->op != OP_reshape; /* a reshape is a view of its input */
    default: return 1;
    }
}

/* The node whose buffer node id uses (itself, or what a view chain points at). */
static int owner(const Graph *g, int id) {
    while (g->nodes[id].op == OP_reshape) id = g->nodes[id].in[0];
    return id;
}

/* Code at position pos reads x: its buffer lives until then. A recomputed value (fuse.c)
 * has none: the code computes it there, reading x's inputs instead. */
static void read_at(const Graph *g, const FusionPlan *fp, int *last, int x, int pos) {
    int o = owner(g, x);
    if (fp && fp->dup[o]) {
        for (int k = 0; k < g->nodes[o].nin; k++) read_at(g, fp, last, g->nodes[o].in[k], pos);
        return;
    }
    if (last[o] < pos) last[o] = pos;
}

#define ALIGN(x) (((x) + 15) & ~(int64_t)15)

/* First-fit over the free gaps between live blocks. */
typedef struct Block {
    int64_t off, size;
    int id;
} Block;

typedef struct Region {
    Block *live;
    int n;
    int64_t peak;
} Region;

static int64_t region_alloc(Region *r, int64_t size, int id) {
    int64_t at = 0;
    int pos = 0;
    for (; pos < r->n; pos++) {
        if (r->live[pos].off - at >= size) break;
        at = r->live[pos].off + r->live[pos].size;
    }
    memmove(&r->live[pos + 1], &r->live[pos], sizeof(Block) * (size_t)(r->n - pos));
    r->live[pos] = (Block){at, size, id};
    r->n++;
    if (at + size > r->peak) r->peak = at + size;
    return at;
}

static void region_rename(Region *r, int from, int to) {
    for (int i = 0; i < r->n; i++)
        if (r->live[i].id == from) r->live[i].id = to;
}

static void region_free(Region *r, int id) {
    for (int i = 0; i < r->n; i++)
        if (r->live[i].id == id) {
            memmove(&r->live[i], &r->live[i + 1], sizeof(Block) * (size_t)(r->n - i - 1));
            r->n--;
            return;
        }
}

MemPlan plan_memory(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target) {
    MemPlan p = {0};
    int n = g->n;
    /* where each node's code runs: a fused member runs with its group's root */
    int *at = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++) at[id] = fp && fp->at[id] >= 0 ? fp->at[id] : id;
    p.has_buf = arena_alloc(a, (size_t)n + 1);
    p.off_c = ARENA_ARRAY(a, int64_t, n + 1);
    p.off_b = ARENA_ARRAY(a, int64_t, n + 1);
    p.inplace_of = ARENA_ARRAY(a, int, n + 1);
    int *last = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++) {
        if (last[id] < at[id]) last[id] = at[id];
        if (fp && fp->dup[id]) continue; /* no code of its own: its readers read its inputs */
        for (int k = 0; k < g->nodes[id].nin; k++) read_at(g, fp, last, g->nodes[id].in[k], at[id]);
    }
    if (g->output >= 0) last[owner(g, g->output)] = n;
    if (g->loss >= 0) last[owner(g, g->loss)] = n;

    Region rb = {ARENA_ARRAY(a, Block, n + 1), 0, 0}, rc = {ARENA_ARRAY(a, Block, n + 1), 0, 0};
    int64_t *bpart = ARENA_ARRAY(a, int64_t, n + 1);
    /* frees[k]: the buffers whose last reader runs at position k, released after it */
    int *next_free = ARENA_ARRAY(a, int, n + 1), *head = ARENA_ARRAY(a, int, n + 2);
    /* defs[k]: the nodes whose code runs at position k (a group's members, in order) */
    int *next_def = ARENA_ARRAY(a, int, n + 1), *defs = ARENA_ARRAY(a, int, n + 1), *tail = ARENA_ARRAY(a, int, n + 1);
    for (int i = 0; i <= n; i++) head[i] = defs[i] = tail[i] = -1;
    for (int id = 0; id < n; id++) {
        next_def[id] = -1;
        if (tail[at[id]] < 0) defs[at[id]] = id;
        else next_def[tail[at[id]]] = id;
        tail[at[id]] = id;
    }
    for (int pos = 0; pos < n; pos++) {
        for (int id = defs[pos]; id >= 0; id = next_def[id]) {
            const Node *nd = &g->nodes[id];
            const OpRules *r = op_of(nd)->rules;
            if (r->workspace) {
                Workspace w = {0};
                r->workspace(g, nd, target, &w);
                if (ALIGN(w.c) > p.ws_size_c) p.ws_size_c = ALIGN(w.c);
                if (ALIGN(w.b) > p.ws_size_b) p.ws_size_b = ALIGN(w.b);
                if (ALIGN(w.per_thread) > p.ws_per_thread) p.ws_per_thread = ALIGN(w.per_thread);
            }
            if (needs_buffer(nd) && !(fp && (fp->inl[id] || fp->dup[id]))) {
                int64_t c, b;
                shape_numel_affine(&nd->shape, &c, &b);
                p.has_buf[id] = 1;
                bpart[id] = b != 0;
                int x = fp ? fp->inplace[id] : -1;
                if (x >= 0 && p.has_buf[x] && last[x] == pos && bpart[x] == bpart[id]) {
                    /* in place: take over x's block, which dies here (fuse.c says why it is safe) */
                    region_rename(bpart[id] ? &rb : &rc, x, id);
                    p.off_b[id] = p.off_b[x], p.off_c[id] = p.off_c[x];
                    p.inplace_of[id] = x + 1;
                } else if (b) {
                    p.off_b[id] = region_alloc(&rb, ALIGN(b), id);
                } else {
                    p.off_c[id] = region_alloc(&rc, ALIGN(c), id);
                }
                next_free[id] = head[last[id]];
                head[last[id]] = id;
            }
        }
        for (int f = head[pos]; f >= 0; f = next_free[f]) region_free(bpart[f] ? &rb : &rc, f);
    }
    /* Constant-region tensors sit after the batch region: offset c + size_b * B. */
    for (int id = 0; id < n; id++)
        if (p.has_buf[id] && !bpart[id]) p.off_b[id] = rb.peak;
    p.size_b = rb.peak + p.ws_size_b;
    p.size_c = rc.peak + p.ws_size_c;
    /* The workspace starts after both regions. */
    p.ws_off_c = rc.peak;
    p.ws_off_b = rb.peak;
    return p;
}
