/* memplan.c - places every tensor of a graph that needs a buffer of its own in one arena,
 * at an offset fixed at compile time.
 *
 * Offsets are affine in the batch size (c + b * max_batch floats), because the trainer
 * chooses its batch at run time. This first plan gives each tensor its own range; letting
 * tensors with disjoint lifetimes share space is a later pass. */
#include "model.h"
#include "ops.h"

static int needs_buffer(const Node *n) {
    switch (op_of(n)->kind) {
    case K_SOURCE: return 0;  /* params/state in the slab, inputs are arguments, consts inline */
    case K_UPDATE: return 0;  /* writes its parameter in place */
    case K_SHAPE: return n->op != OP_reshape; /* a reshape is a view of its input */
    default: return 1;
    }
}

MemPlan plan_memory(Arena *a, const Graph *g) {
    MemPlan p = {0};
    p.has_buf = arena_alloc(a, (size_t)g->n + 1);
    p.off_c = ARENA_ARRAY(a, int64_t, g->n + 1);
    p.off_b = ARENA_ARRAY(a, int64_t, g->n + 1);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (!needs_buffer(n)) continue;
        int64_t c, b;
        shape_numel_affine(&n->shape, &c, &b);
        p.has_buf[id] = 1;
        p.off_c[id] = p.size_c;
        p.off_b[id] = p.size_b;
        /* 16-float (64-byte) alignment for vector loads, whatever the batch size. */
        p.size_c += (c + 15) & ~(int64_t)15;
        p.size_b += (b + 15) & ~(int64_t)15;
    }
    return p;
}
