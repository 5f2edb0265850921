/* memplan.c - places every tensor of a graph that needs a buffer of its own in one arena,
 * at an offset fixed at compile time, reusing space between tensors whose lifetimes do
 * not overlap.
 *
 * A tensor's size is either k floats or k*B floats (B, the batch size, is chosen when the
 * model is created: shapes have at most one batch dimension). So the arena has two
 * regions planned separately, each the same way (Placement, below):
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
    if (n->role & ROLE_GRAD) return 0; /* in the gradient slab (grad_slab.c) */
    switch (op_of(n)->kind) {
    case K_SOURCE: return 0;                  /* params/state in the slab, inputs are arguments, consts inline */
    case K_UPDATE: return 0;                  /* writes its state in place */
    case K_SHAPE: return n->op != OP_reshape; /* a reshape is a view of its input */
    default: return 1;
    }
}

/* Code at position pos reads x: its buffer lives until then. A recomputed value (fuse.c)
 * has none: the code computes it there, reading x's inputs instead. */
static void read_at(const Graph *g, const FusionPlan *fp, int *last, int x, int pos) {
    int o = view_owner(g, x);
    if (fp && fp->dup[o]) {
        for (int k = 0; k < g->nodes[o].nin; k++) read_at(g, fp, last, g->nodes[o].in[k], pos);
        return;
    }
    if (last[o] < pos) last[o] = pos;
}

#define ALIGN(x) (((x) + 15) & ~(int64_t)15)

/* Placement. Every lifetime is known here, so the plan can be made offline rather than
 * by an allocator that sees one request at a time: a block is placed at the lowest offset
 * where it overlaps, in bytes and in lifetime, no block placed before it. Placed in
 * program order that is first-fit, which leaves holes: a short-lived tensor between two
 * long-lived ones frees bytes that a bigger tensor written later cannot use, and it goes
 * on top. Placing the big, the crowded or the long-lived blocks first usually packs
 * tighter, often down to the most floats live at one position, but no order always
 * wins, so each region keeps the order that gives it the smallest peak: never worse than
 * first-fit. --mem-budget plans thousands of variants of a graph, hence the early stops. */

/* A block of the arena: one buffer, or an in-place chain of them (each taking over the
 * previous one's bytes where that one dies), at one offset. It is live from its first
 * member's position to its members' last read, both included: a buffer read at k is
 * freed after the code at k, which writes the buffers defined at k. */
typedef struct Block {
    int64_t size; /* floats: per sample in the batch region */
    int first, last;
    int batch;   /* 1: in the batch region */
    int64_t off; /* as placed */
} Block;

/* A block's rank in a placement order: key, then size, descending; ties go to the
 * earlier block, so the order (and the plan) is the same on every run. */
typedef struct Ranked {
    int64_t key, size;
    int idx;
} Ranked;

static int by_rank(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    if (a->key != b->key) return a->key > b->key ? -1 : 1;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Places the blocks in `order` one after the other, each at the lowest offset clear of
 * the placed blocks live with it; off[b]: block b's offset. Returns the peak, or any
 * value >= give_up as soon as the peak reaches it (that order cannot win). by_off:
 * room for the placed blocks, kept sorted by offset so that one pass finds the gap. */
static int64_t place(const Block *bl, const int *order, int nb, int64_t give_up, int64_t *off, int *by_off) {
    int64_t peak = 0;
    for (int i = 0; i < nb && peak < give_up; i++) {
        const Block *b = &bl[order[i]];
        int64_t at = 0;
        for (int j = 0; j < i; j++) {
            const Block *c = &bl[by_off[j]];
            int64_t lo = off[by_off[j]];
            if (c->first > b->last || b->first > c->last) continue; /* never live together */
            if (lo >= at + b->size) break;                          /* b fits below c */
            if (lo + c->size > at) at = lo + c->size;
        }
        off[order[i]] = at;
        int k = i;
        while (k > 0 && off[by_off[k - 1]] > at) by_off[k] = by_off[k - 1], k--;
        by_off[k] = order[i];
        if (at + b->size > peak) peak = at + b->size;
    }
    return peak;
}

/* The orders tried after program order (first-fit, which wins ties: plans stay as they
 * were where nothing is gained). Each wins somewhere: size on most regions, breadth
 * and lifetime on some, and LeNet's --mem-budget floor needs lifetime. */
enum { BY_SIZE, BY_BREADTH, BY_LENGTH, NORDERS };

/* Ranks the region's blocks (ids, in program order) for one order: by size; by breadth,
 * the most floats live at any position the block spans (the crowded stretches first);
 * or by lifetime (the long-lived blocks first). order gets the ranked block ids. */
static void rank_blocks(const Block *bl, const int *ids, int nb, int how, const int64_t *live, Ranked *r, int *order) {
    for (int i = 0; i < nb; i++) {
        const Block *b = &bl[ids[i]];
        int64_t key = b->size;
        if (how == BY_BREADTH)
            for (int pos = b->first; pos <= b->last; pos++) key = live[pos] > key ? live[pos] : key;
        if (how == BY_LENGTH) key = b->last - b->first;
        r[i] = (Ranked){key, b->size, ids[i]};
    }
    qsort(r, (size_t)nb, sizeof *r, by_rank);
    for (int i = 0; i < nb; i++) order[i] = r[i].idx;
}

/* Places the blocks of one region (batch or not) and returns its size: the smallest
 * peak among the orders (offline = 0: program order only). No order can go below the
 * most floats live at one position, so the search stops at the first plan reaching
 * that. npos: positions (blocks live within [0, npos]). */
static int64_t place_region(Arena *a, Block *bl, int nblocks, int batch, int npos, int offline) {
    int *ids = ARENA_ARRAY(a, int, nblocks + 1), *order = ARENA_ARRAY(a, int, nblocks + 1);
    int nb = 0;
    for (int i = 0; i < nblocks; i++)
        if (bl[i].batch == batch) ids[nb++] = i;
    /* floats live at each position */
    int64_t *live = ARENA_ARRAY(a, int64_t, npos + 2), bound = 0;
    for (int i = 0; i < nb; i++) {
        live[bl[ids[i]].first] += bl[ids[i]].size;
        live[bl[ids[i]].last + 1] -= bl[ids[i]].size;
    }
    for (int pos = 0; pos <= npos; pos++) {
        if (pos) live[pos] += live[pos - 1];
        if (live[pos] > bound) bound = live[pos];
    }
    int64_t *off = ARENA_ARRAY(a, int64_t, nblocks + 1);
    int *by_off = ARENA_ARRAY(a, int, nb + 1);
    Ranked *r = ARENA_ARRAY(a, Ranked, nb + 1);
    int64_t peak = place(bl, ids, nb, INT64_MAX, off, by_off);
    for (int i = 0; i < nb; i++) bl[ids[i]].off = off[ids[i]];
    for (int how = 0; offline && how < NORDERS && peak > bound; how++) {
        rank_blocks(bl, ids, nb, how, live, r, order);
        int64_t p = place(bl, order, nb, peak, off, by_off);
        if (p >= peak) continue;
        peak = p;
        for (int i = 0; i < nb; i++) bl[ids[i]].off = off[ids[i]];
    }
    return peak;
}

/* The positions each buffer lives over: at[id], where node id's code runs (a fused
 * member runs with its group's root), to last[id], its last read. */
static void lifetimes(const Graph *g, const FusionPlan *fp, int *at, int *last) {
    int n = g->n;
    for (int id = 0; id < n; id++) at[id] = fp && fp->at[id] >= 0 ? fp->at[id] : id;
    for (int id = 0; id < n; id++) {
        if (last[id] < at[id]) last[id] = at[id];
        if (fp && fp->dup[id]) continue; /* no code of its own: its readers read its inputs */
        for (int k = 0; k < g->nodes[id].nin; k++) read_at(g, fp, last, g->nodes[id].in[k], at[id]);
    }
    for (int k = 0; k < g->nout; k++) last[view_owner(g, g->outputs[k])] = n;
    if (g->loss >= 0) last[view_owner(g, g->loss)] = n;
}

/* The workspace node nd needs while it runs: one region of the largest serves all. */
static void add_workspace(MemPlan *p, const Graph *g, const Node *nd, TargetKind target) {
    Workspace w = {0};
    target_workspace(target, g, nd, &w);
    /* A C convolution's slot holds a padded sample ([C, H + 2 pad, W + 2 pad]), which no
     * tensor limit bounds: a dilated, padded layer of small tensors asked for 69 GB. */
    if (w.per_thread > IR_MAX_NUMEL)
        diag_error(&nd->loc,
                   "%s: its scratch for each thread (a padded copy of a sample) would hold %lld floats, more than "
                   "the %lld a tensor can have (a smaller pad?)",
                   op_of(nd)->name, (long long)w.per_thread, (long long)IR_MAX_NUMEL);
    if (ALIGN(w.c) > p->ws_size_c) p->ws_size_c = ALIGN(w.c);
    if (ALIGN(w.b) > p->ws_size_b) p->ws_size_b = ALIGN(w.b);
    if (ALIGN(w.per_thread) > p->ws_per_thread) p->ws_per_thread = ALIGN(w.per_thread);
}

/* The blocks of the buffers, made in the order their code runs (a group's members at
 * its root's position, in node order): each buffer a block of its own, or joining the
 * block of the input it takes over in place. Fills p's has_buf and inplace_of, and
 * blk[id], node id's block; returns the number of blocks. */
static int make_blocks(Arena *a, const Graph *g, const FusionPlan *fp, const int *at, const int *last, MemPlan *p,
                       Block *bl, int *blk) {
    int n = g->n, nblocks = 0;
    int *order = ARENA_ARRAY(a, int, n + 1), *count = ARENA_ARRAY(a, int, n + 2);
    for (int id = 0; id < n; id++) count[at[id] + 1]++;
    for (int pos = 1; pos <= n; pos++) count[pos] += count[pos - 1];
    for (int id = 0; id < n; id++) order[count[at[id]]++] = id; /* stable: node order within a position */
    for (int i = 0; i < n; i++) {
        int id = order[i], pos = at[id];
        const Node *nd = &g->nodes[id];
        if (!needs_buffer(nd) || (fp && (fp->inl[id] || fp->dup[id]))) continue;
        int64_t c, b;
        shape_numel_affine(&nd->shape, g->batch, &c, &b);
        int64_t size = b ? b : c;
        if (p->half[id]) size = (size + 1) / 2; /* 2 bytes a value: per sample, so B * that covers the batch */
        size = ALIGN(size);
        p->has_buf[id] = 1;
        int x = fp ? fp->inplace[id] : -1;
        /* in place only between buffers of one element type: an element written at i
         * would land on bytes of another thread's element */
        if (x >= 0 && p->has_buf[x] && last[x] == pos && bl[blk[x]].batch == (b != 0) && p->half[x] == p->half[id]) {
            /* in place: take over x's bytes, which die here (fuse.c says why it is safe) */
            blk[id] = blk[x];
            p->inplace_of[id] = x + 1;
        } else {
            blk[id] = nblocks;
            bl[nblocks++] = (Block){.size = size, .first = pos, .last = pos, .batch = b != 0};
        }
        Block *k = &bl[blk[id]];
        if (k->size < size) k->size = size;
        if (k->last < last[id]) k->last = last[id];
    }
    return nblocks;
}

/* reuse = 0 (mlc --debug): every buffer lives to the end, so none shares bytes with
 * another and a debugger sees every value the step made. */
static MemPlan plan(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target, int offline, int reuse,
                    int halves) {
    MemPlan p = {0};
    int n = g->n;
    int *at = ARENA_ARRAY(a, int, n + 1), *last = ARENA_ARRAY(a, int, n + 1);
    lifetimes(g, fp, at, last);
    if (!reuse)
        for (int id = 0; id < n; id++) last[id] = n;
    p.has_buf = arena_alloc(a, (size_t)n + 1);
    p.off_c = ARENA_ARRAY(a, int64_t, n + 1);
    p.off_b = ARENA_ARRAY(a, int64_t, n + 1);
    p.inplace_of = ARENA_ARRAY(a, int, n + 1);
    p.half = arena_alloc(a, (size_t)n + 1);
    if (halves) target_half_storage(target, g, fp, p.half);
    for (int id = 0; id < n; id++) add_workspace(&p, g, &g->nodes[id], target);
    Block *bl = ARENA_ARRAY(a, Block, n + 1);
    int *blk = ARENA_ARRAY(a, int, n + 1);
    int nblocks = make_blocks(a, g, fp, at, last, &p, bl, blk);
    int64_t size_b = place_region(a, bl, nblocks, 1, n, offline), size_c = place_region(a, bl, nblocks, 0, n, offline);
    /* Constant-region tensors sit after the batch region: offset c + size_b * B. */
    for (int id = 0; id < n; id++) {
        if (!p.has_buf[id]) continue;
        const Block *k = &bl[blk[id]];
        p.off_b[id] = k->batch ? k->off : size_b;
        p.off_c[id] = k->batch ? 0 : k->off;
    }
    p.size_b = size_b + p.ws_size_b;
    p.size_c = size_c + p.ws_size_c;
    /* The workspace starts after both regions. */
    p.ws_off_c = size_c;
    p.ws_off_b = size_b;
    return p;
}

/* Tensors stored as bfloat16 take half the bytes, but a buffer cannot take over one of the
 * other element type in place, so the plan can come out bigger (a graph with few of them):
 * then the plan in floats, which is never bigger, is the plan. */
static MemPlan plan_smaller(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target, int offline, int reuse) {
    MemPlan p = plan(a, g, fp, target, offline, reuse, 1);
    int any = 0;
    for (int id = 0; id < g->n && !any; id++) any = p.half[id];
    if (!any) return p;
    MemPlan f = plan(a, g, fp, target, offline, reuse, 0);
    return plan_floats(&f, g->batch, 1) < plan_floats(&p, g->batch, 1) ? f : p;
}

MemPlan plan_memory(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target) {
    return plan_smaller(a, g, fp, target, 1, 1);
}

MemPlan plan_memory_in_order(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target) {
    return plan_smaller(a, g, fp, target, 0, 1);
}

MemPlan plan_memory_no_reuse(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target) {
    return plan_smaller(a, g, fp, target, 1, 0);
}

MemPlan plan_memory_in_floats(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target) {
    return plan(a, g, fp, target, 1, 1, 0);
}
