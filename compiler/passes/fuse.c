/* fuse.c - elementwise fusion: which nodes of a graph run together as one loop nest (C)
 * or one kernel (CUDA), and which of their values never reach memory.
 *
 * A fused group has a root, the node whose code runs the group: an elementwise op or
 * expand (the group loops over the root's shape), or a reduction (the group loops over
 * the reduction's input; the root accumulates). That index space is the group's domain.
 * The other members are elementwise ops, expands and size-1 reshapes feeding the root,
 * evaluated per domain element as locals in the same loop:
 *
 *   - inlined members are read only inside the group: they get no buffer at all;
 *     a member smaller than the domain (a [B] value broadcast over [B, 10]) is recomputed
 *     for each element it is broadcast to, which costs less than a store and a load;
 *   - kept members are also read outside the group (by a matmul, by the backward, ...):
 *     they cover the whole domain and are stored from the same loop.
 *
 * Each member has a map from the domain's dimensions to its own (-1 where it is
 * broadcast), so its operands are indexed from the group's loop variables directly.
 *
 * Row reductions: a reduction whose output keeps the batch dimension and has one element
 * per element of the domain (cross-entropy's logsumexp and label dot, [B], under the mean
 * over the batch) is a member too. Per domain element it runs its own loop over its axis,
 * nested in the group's loop, and its members (mul(logits, one_hot)) are computed in that
 * loop, with maps over the reduction's input instead of the domain (FusionPlan.nest). A
 * reduction over the batch stays a root: it adds the rows in order, and the rows' work
 * belongs in the parallel loops of other groups. A two-pass reduction (logsumexp) reads
 * its input from memory, as root or row reduction: it takes no members, which it would
 * have to compute twice.
 *
 * Recomputed values: one_hot of the labels, and elementwise ops of it and of constants
 * (label smoothing), are a few instructions from an input that is always in memory.
 * When only groups read such a value, it has no code and no buffer: every group that
 * reads it computes it where it reads it (FusionPlan.dup), the forward's loss and the
 * backward's gradient alike.
 *
 * Groups are grown greedily from the end of the graph: a node joins the group that all
 * of its elementwise readers belong to. The group runs at its root's position, so a kept
 * member's outside readers must all come after the root, and its inputs, which come
 * before the node, come before the root as well. */
#include <limits.h>
#include <string.h>

#include "model.h"
#include "ops.h"

/* A dimension that takes part in indexing: size > 1, or the batch dimension. */
static int real_dim(const Shape *s, int i) { return s->d[i] != 1 || ((s->bmask >> i) & 1); }

static int is_ewise_like(const Node *n) {
    return n->dtype == DT_F32 && (op_of(n)->kind == K_EWISE || n->op == OP_expand);
}

static int is_reduce(const Node *n) { return op_of(n)->kind == K_REDUCE; }

/* The most buffers (inputs read and values stored, counted per node: a buffer several
 * members read counts for each) one group takes: a CUDA kernel takes its buffers as
 * parameters, MAX_KPARAMS (256) at most (emit_cuda.c), and a conv epilogue adds the
 * conv's own. A chain of 3,000 additions of parameters was one group, and the CUDA target
 * died on it; past the limit a node starts a group of its own. No group of the samples
 * or the test models comes near it (activations.mdl's largest: about 60). */
#define GROUP_MAX_BUFFERS 192

/* Reads its input twice (logsumexp): takes no members (see the header). */
static int two_pass(const Node *n) { return op_of(n)->rules->red_pre_step != NULL; }

/* The constant a chain of views leads to, if any (its value is inlined where read). */
static int is_const(const Graph *g, int x) {
    while (g->nodes[x].op == OP_reshape) x = g->nodes[x].in[0];
    return g->nodes[x].op == OP_const;
}

/* The inputs of node id that are buffers: all but constants, whose values are inlined. */
static int buffer_inputs(const Graph *g, int id) {
    int k = 0;
    for (int i = 0; i < g->nodes[id].nin; i++) k += !is_const(g, g->nodes[id].in[i]);
    return k;
}

const Shape *fusion_domain(const Graph *g, int root) {
    const Node *r = &g->nodes[root];
    return op_of(r)->kind == K_REDUCE ? &g->nodes[r->in[0]].shape : &r->shape;
}

/* Right-aligned broadcasting: the map of an operand of shape `in` read by a node of shape
 * `out` whose map is m. */
static void map_broadcast(const Shape *out, const Shape *in, const int8_t *m, int8_t *res) {
    int off = out->rank - in->rank;
    for (int d = 0; d < IR_MAX_RANK; d++) {
        int j = m[d] < 0 ? -1 : m[d] - off;
        res[d] = (int8_t)(j >= 0 && real_dim(in, j) ? j : -1);
    }
}

/* A reshape that only adds or drops size-1 dimensions keeps its input's real dimensions
 * in order; any other reshape cannot be a member. 0 when it is not such a reshape. */
static int map_unit_reshape(const Shape *out, const Shape *in, const int8_t *m, int8_t *res) {
    int ro[IR_MAX_RANK], ri[IR_MAX_RANK], no = 0, ni = 0;
    for (int i = 0; i < out->rank; i++)
        if (real_dim(out, i)) ro[no++] = i;
    for (int i = 0; i < in->rank; i++)
        if (real_dim(in, i)) ri[ni++] = i;
    if (no != ni) return 0;
    for (int k = 0; k < no; k++)
        if (out->d[ro[k]] != in->d[ri[k]] || ((out->bmask >> ro[k]) & 1) != ((in->bmask >> ri[k]) & 1)) return 0;
    for (int d = 0; d < IR_MAX_RANK; d++) {
        res[d] = -1;
        for (int k = 0; k < no && m[d] >= 0; k++)
            if (ro[k] == m[d]) res[d] = (int8_t)ri[k];
    }
    return 1;
}

void fusion_input_map(const Graph *g, int node, int k, const int8_t *map, int8_t *res) {
    const Node *n = &g->nodes[node];
    const Shape *in = &g->nodes[n->in[k]].shape;
    if (n->op == OP_reshape) {
        if (!map_unit_reshape(&n->shape, in, map, res)) mlc_die("fused reshape %%%d is not a size-1 reshape", node);
        return;
    }
    if (op_of(n)->rules->gen_map) {
        op_of(n)->rules->gen_map(&n->shape, in, map, res);
        return;
    }
    map_broadcast(&n->shape, in, map, res);
}

void fusion_operand_map(const Graph *g, const FusionPlan *fp, int member, int k, int8_t *res) {
    const Node *n = &g->nodes[member];
    if (is_reduce(n)) { /* its input spans the space of its loop */
        const Shape *s = fusion_domain(g, member);
        for (int d = 0; d < IR_MAX_RANK; d++) res[d] = (int8_t)(d < s->rank && real_dim(s, d) ? d : -1);
        return;
    }
    fusion_input_map(g, member, k, fp->map[member], res);
}

/* The map that reader r (a member) gives its input x; 0 when r reads x in two ways. */
static int map_from_reader(const Graph *g, const FusionPlan *fp, int r, int x, int8_t *res) {
    const Node *n = &g->nodes[r];
    int found = 0;
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] != x) continue;
        int8_t m[IR_MAX_RANK];
        if (n->op == OP_reshape) {
            if (!map_unit_reshape(&n->shape, &g->nodes[x].shape, fp->map[r], m)) return 0;
        } else {
            fusion_operand_map(g, fp, r, k, m);
        }
        if (found && memcmp(m, res, sizeof m)) return 0;
        memcpy(res, m, sizeof m);
        found = 1;
    }
    return found;
}

/* The space a member of group `root` is computed in: the domain, or the input of the row
 * reduction whose loop computes it. */
static const Shape *space_of(const Graph *g, int root, int nest) {
    return nest >= 0 ? &g->nodes[g->nodes[nest].in[0]].shape : fusion_domain(g, root);
}

/* The loop of its group that reader r (a member or the root) reads its inputs in: a row
 * reduction's own loop, or the loop r is computed in. */
static int nest_of_reader(const Graph *g, const FusionPlan *fp, int r) {
    return is_reduce(&g->nodes[r]) && fp->root[r] != r ? r : fp->nest[r];
}

/* The member covers its whole space, one element per element of the space: it can be
 * stored, or (a row reduction) run once per element. */
static int covers_space(const Graph *g, const Shape *dom, const Node *n, const int8_t *map) {
    int64_t c1, b1, c2, b2;
    shape_numel_affine(dom, g->batch, &c1, &b1);
    shape_numel_affine(&n->shape, g->batch, &c2, &b2);
    if (c1 != c2 || b1 != b2) return 0;
    int mapped = 0, real = 0;
    for (int d = 0; d < IR_MAX_RANK; d++) mapped += map[d] >= 0;
    for (int i = 0; i < n->shape.rank; i++) real += real_dim(&n->shape, i);
    return mapped == real;
}

/* A member smaller than its group's domain is evaluated once per domain element. That
 * is cheaper than a store and a load for arithmetic, not for a libm call (exp, rsqrt,
 * erf, ...: their scalar text calls a math function) broadcast over many elements: such a
 * value is computed once, by its own loop, instead. */
static int calls_libm(const Node *n) { return op_text_calls_math(op_of(n)->rules->expr); }

/* calls_libm of each op kind, found once per fuse (0: not yet, 1: no, 2: yes): scanning
 * the op's text for every node was a third of --mem-budget's time, which fuses the
 * graph once for each trial. */
static int calls_libm_cached(signed char *libm, const Node *n) {
    if (!libm[n->op]) libm[n->op] = (signed char)(calls_libm(n) ? 2 : 1);
    return libm[n->op] == 2;
}

static int recompute_costs(const Graph *g, signed char *libm, const Shape *space, const Node *n) {
    if (!calls_libm_cached(libm, n)) return 0;
    int64_t c1, b1, c2, b2;
    shape_numel_affine(space, g->batch, &c1, &b1);
    shape_numel_affine(&n->shape, g->batch, &c2, &b2);
    return (c2 + b2 * g->batch) * 4 <= c1 + b1 * g->batch;
}

/* A reshape that does more than add or drop size-1 dimensions ([B, 8, 16] -> [B*8, 16]):
 * a group can read a buffer through it (by the flat index), but cannot compute the value
 * it views element by element, so that value is not recomputed in such a reader. */
static int merges_dims(const Graph *g, int r) {
    const Node *n = &g->nodes[r];
    if (n->op != OP_reshape) return 0;
    int8_t m[IR_MAX_RANK], res[IR_MAX_RANK];
    for (int d = 0; d < IR_MAX_RANK; d++) m[d] = (int8_t)(d < n->shape.rank ? d : -1);
    return !map_unit_reshape(&n->shape, &g->nodes[n->in[0]].shape, m, res);
}

/* A reader that evaluates its inputs in registers: a group's member or root. */
static int fusible_reader(const Graph *g, const FusionPlan *fp, int r) {
    const Node *n = &g->nodes[r];
    return fp->root[r] >= 0 && (is_ewise_like(n) || n->op == OP_reshape || is_reduce(n));
}

/* The loss, the output, a parameter's gradient: read after the step, so always stored
 * and never overwritten in place. (A value recomputed in the backward is none of them.) */
static int visible(const Node *n) { return (n->role & ~ROLE_RECOMPUTED) != 0; }

/* Values a group can compute where it reads them (the header's recomputed values): a
 * generator of inputs and constants (one_hot of the labels, causal_mask), and elementwise ops without a libm call,
 * expands and size-1 reshapes of such values and constants. Computed in graph order. */
static void find_label_functions(const Graph *g, signed char *libm, char *fn) {
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        fn[id] = 0;
        if (visible(n)) continue;
        if (op_of(n)->rules->gen_expr) {
            int ok = n->nin > 0;
            for (int k = 0; k < n->nin; k++) ok &= g->nodes[n->in[k]].op == OP_input || is_const(g, n->in[k]);
            fn[id] = (char)ok;
            continue;
        }
        if (n->op == OP_reshape) {
            int8_t m[IR_MAX_RANK], res[IR_MAX_RANK];
            for (int d = 0; d < IR_MAX_RANK; d++) m[d] = (int8_t)(d < n->shape.rank ? d : -1);
            fn[id] = fn[n->in[0]] && map_unit_reshape(&n->shape, &g->nodes[n->in[0]].shape, m, res);
            continue;
        }
        if (!is_ewise_like(n) || calls_libm_cached(libm, n)) continue;
        int ok = 1, any = 0;
        for (int k = 0; k < n->nin; k++) {
            int x = n->in[k];
            if (fn[x]) any = 1;
            else if (!is_const(g, x)) ok = 0;
        }
        fn[id] = (char)(ok && any);
    }
}

/* The position where node x's value is in memory (a view: its owner's). */
static int written_at(const Graph *g, const FusionPlan *fp, int x) {
    while (g->nodes[x].op == OP_reshape) x = g->nodes[x].in[0];
    if (op_of(&g->nodes[x])->kind == K_SOURCE) return -1; /* there from the start */
    return fp->at[x] >= 0 ? fp->at[x] : x;
}

/* A node whose output can have an epilogue: a matmul's [M, N] (each thread finishes its
 * block), or an op that writes its [B, ...] output sample by sample (conv2d and its input
 * gradient). */
static int takes_epilogue(const Node *n) {
    if (op_of(n)->kind == K_CONTRACT) return n->shape.rank == 2 && real_dim(&n->shape, 0) && real_dim(&n->shape, 1);
    return (op_of(n)->rules->flags & OPF_SAMPLE_EPILOGUE) && n->shape.bmask == 1 && n->dtype == DT_F32;
}

/* The map reads an operand of shape s, the group's domain, at the element it computes. */
static int identity_map(const Shape *s, const int8_t *map) {
    for (int d = 0; d < IR_MAX_RANK; d++)
        if (map[d] != (d < s->rank && real_dim(s, d) ? d : -1)) return 0;
    return 1;
}

/* Epilogues: an elementwise group over a matmul's [M, N] output or a conv2d's [B, O, Ho,
 * Wo] output, reading it only at the element it computes, whose other inputs are ready
 * before that op runs, moves to the op: each thread runs it on the block of rows (or
 * columns) its GEMM call produced, or on the sample whose convolution it just finished. */
static void find_epilogues(const Graph *g, FusionPlan *fp, const int *next, const int *rd, const int *start,
                           const int *fill, const char *phase) {
    for (int mm = 0; mm < g->n; mm++) {
        const Node *mn = &g->nodes[mm];
        if (!takes_epilogue(mn)) continue;
        /* the earliest elementwise group reading it */
        int grp = -1;
        for (int i = start[mm]; i < start[mm] + fill[mm]; i++) {
            int r = fp->root[rd[i]];
            if (r >= 0 && is_ewise_like(&g->nodes[rd[i]]) && (grp < 0 || r < grp) && (!phase || phase[r] == phase[mm]))
                grp = r;
        }
        if (grp < 0 || !is_ewise_like(&g->nodes[grp]) || fp->at[grp] != grp ||
            !shape_eq(&g->nodes[grp].shape, &mn->shape))
            continue;
        int ok = 1;
        for (int m = fp->lo[grp]; m >= 0 && m <= grp && ok; m = next[m]) {
            const Node *n = &g->nodes[m];
            /* a row reduction reads a whole row, which one GEMM block may not hold */
            if (is_reduce(n) || fp->nest[m] >= 0) ok = 0;
            for (int k = 0; k < n->nin && ok; k++) {
                int x = n->in[k];
                if (fp->root[x] == grp || op_of(&g->nodes[x])->kind == K_SOURCE || fp->dup[x]) continue;
                if (x == mm) { /* the op's output: at the element the group computes */
                    int8_t map[IR_MAX_RANK];
                    fusion_operand_map(g, fp, m, k, map);
                    ok = identity_map(&mn->shape, map);
                } else {
                    int w = written_at(g, fp, x);
                    ok = w < mm; /* ready before the op (views of constants are sources) */
                    if (g->nodes[x].op == OP_reshape) {
                        int o = x;
                        while (g->nodes[o].op == OP_reshape) o = g->nodes[o].in[0];
                        if (o == mm) ok = 0; /* the op's output through a view */
                    }
                }
            }
        }
        if (!ok) continue;
        fp->epilogue[mm] = grp;
        fp->nepilogues++;
        for (int m = fp->lo[grp]; m >= 0 && m <= grp; m = next[m]) fp->at[m] = mm;
    }
}

/* In place: a stored value of a group may take the buffer of an input the group reads at
 * exactly the element it writes (same shape, same map), when nothing reads that input
 * after the group (memplan.c decides that). Each iteration reads the element before it
 * writes it, and no other iteration touches it. Gradient sums (add(g1, g2)) and the
 * chains of the backward mostly qualify. */
static int inplace_ok(const Graph *g, const FusionPlan *fp, int o, int x, const int *rd, const int *start,
                      const int *fill) {
    const Node *xn = &g->nodes[x], *on = &g->nodes[o];
    if (op_of(xn)->kind == K_SOURCE || xn->op == OP_reshape || visible(xn) || xn->dtype != DT_F32 || fp->dup[x])
        return 0;
    if (fp->root[x] == fp->root[o] || !shape_eq(&xn->shape, &on->shape)) return 0;
    for (int i = start[x]; i < start[x] + fill[x]; i++) {
        int r = rd[i];
        if (g->nodes[r].op == OP_reshape && fp->root[r] != fp->root[o]) return 0; /* read through a view */
        /* read at the same position outside the group: by the GEMM or conv that o's group is
         * the epilogue of, or by the epilogue of o; one thread may still read it while
         * another writes its block or sample */
        if (fp->at[r] == fp->at[o] && fp->root[r] != fp->root[o]) return 0;
        if (fp->root[r] != fp->root[o]) continue;
        /* members run in node order for each element and o is stored where it is
         * computed: a member after o would read o's value instead of x's */
        if (r > o) return 0;
        /* a nested loop reads other elements than the one the group's loop writes */
        if (nest_of_reader(g, fp, r) >= 0) return 0;
        const Node *rn = &g->nodes[r];
        for (int k = 0; k < rn->nin; k++) {
            if (rn->in[k] != x) continue;
            int8_t m[IR_MAX_RANK];
            fusion_operand_map(g, fp, r, k, m);
            if (memcmp(m, fp->map[o], sizeof m)) return 0;
        }
    }
    return 1;
}

/* The 2x2, stride 2 max-pool backward of an even-sized plane (mlc_pool_2x2): C and CUDA
 * alike read a window's four x values before they write its four dx values (C does four
 * windows at a time, all their x first), and windows tile the plane, so dx may take x's
 * bytes over. The general path
 * zeroes dx before it searches x, and overlapping windows read x where another window
 * already wrote dx: never in place. relu_pool.c makes x die here in a LeNet. */
static int pool_bwd_2x2(const Graph *g, const Node *n) {
    const Shape *x = &g->nodes[n->in[1]].shape;
    return n->op == OP_maxpool2d_bwd && attr_h(n, A_KERNEL) == 2 && attr_w(n, A_KERNEL) == 2 &&
           attr_h(n, A_STRIDE) == 2 && attr_w(n, A_STRIDE) == 2 && attr_h(n, A_PAD) == 0 && attr_w(n, A_PAD) == 0 &&
           x->d[2] % 2 == 0 && x->d[3] % 2 == 0;
}

static int pool_inplace_ok(const Graph *g, const FusionPlan *fp, int o, int x, const int *rd, const int *start,
                           const int *fill) {
    const Node *xn = &g->nodes[x];
    if (op_of(xn)->kind == K_SOURCE || xn->op == OP_reshape || visible(xn) || xn->dtype != DT_F32 || fp->dup[x])
        return 0;
    if (g->nodes[o].in[0] == x) return 0;
    for (int i = start[x]; i < start[x] + fill[x]; i++) {
        int r = rd[i];
        if (g->nodes[r].op == OP_reshape || fp->dup[r]) return 0; /* read through a view */
        if (r != o && fp->at[r] == fp->at[o]) return 0;           /* another reader where o runs */
    }
    return 1;
}

/* Nothing reads x after o's group runs (visible x were refused by inplace_ok): memplan.c
 * lets o take x's bytes only then. */
static int dies_at(const FusionPlan *fp, int o, int x, const int *rd, const int *start, const int *fill) {
    for (int i = start[x]; i < start[x] + fill[x]; i++) {
        int r = rd[i], at = fp->at[r] >= 0 ? fp->at[r] : r;
        if (at > fp->at[o]) return 0;
    }
    return 1;
}

static void find_inplace(const Graph *g, FusionPlan *fp, const int *next, const int *rd, const int *start,
                         const int *fill) {
    char *taken = arena_alloc(g->arena, (size_t)g->n + 1);
    for (int o = 0; o < g->n; o++) {
        fp->inplace[o] = -1;
        int r = fp->root[o];
        const Node *on = &g->nodes[o];
        if (pool_bwd_2x2(g, on)) {
            int x = on->in[1];
            if (!taken[x] && pool_inplace_ok(g, fp, o, x, rd, start, fill)) fp->inplace[o] = x, taken[x] = 1;
            continue;
        }
        if (r < 0 || on->op == OP_reshape || fp->inl[o] || is_reduce(on) || fp->nest[o] >= 0) continue;
        /* Only a fused loop's statement reads its inputs at the element it writes and
         * nowhere else: a GEMM (BLAS: no aliasing), a conv, a general pooling backward
         * (which zeroes dx before it searches x), a batch norm... may read an input
         * element after writing the output element that shares its bytes. */
        if (!is_ewise_like(on)) continue;
        /* an input that dies here first: the ReLU mask's x of a conv's epilogue
         * (dx * (x > 0)) is still read by the weight gradient, the conv's output is not */
        for (int dying = 1; dying >= 0 && fp->inplace[o] < 0; dying--)
            for (int m = fp->lo[r]; m >= 0 && m <= r && fp->inplace[o] < 0; m = next[m]) {
                const Node *mn = &g->nodes[m];
                for (int k = 0; k < mn->nin; k++) {
                    int x = mn->in[k];
                    if (taken[x] || !inplace_ok(g, fp, o, x, rd, start, fill)) continue;
                    if (dying && !dies_at(fp, o, x, rd, start, fill)) continue;
                    fp->inplace[o] = x;
                    taken[x] = 1;
                    break;
                }
            }
    }
}

/* model.h: 0 for what an output needs, 1 for what only the loss does. */
char *loss_phase(Arena *a, const Graph *g) {
    if (g->mode == MODE_TRAIN || g->loss < 0 || g->nout == 0) return NULL;
    char *ph = arena_alloc(a, (size_t)g->n + 1);
    memset(ph, 1, (size_t)g->n);
    for (int k = 0; k < g->nout; k++) ph[g->outputs[k]] = 0;
    for (int id = g->n - 1; id >= 0; id--)
        if (!ph[id])
            for (int k = 0; k < g->nodes[id].nin; k++) ph[g->nodes[id].in[k]] = 0;
    return ph;
}

/* Each group's members in ascending order: fp->lo[r] is the first, next[m] the one after
 * m (-1: the last). The passes that visit a group's members walk this chain; scanning
 * every node for each group made a compile quadratic in the layers. */
static const int *group_members(Arena *a, FusionPlan *fp, int n) {
    int *next = ARENA_ARRAY(a, int, n + 1), *last = ARENA_ARRAY(a, int, n + 1);
    fp->lo = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++) fp->lo[id] = next[id] = -1;
    for (int id = 0; id < n; id++) { /* ascending ids: the first member seen is the lowest */
        int r = fp->root[id];
        if (r < 0) continue;
        if (fp->lo[r] < 0) fp->lo[r] = id;
        else next[last[r]] = id;
        last[r] = id;
    }
    return next;
}

/* fusing = 0 (mlc --debug): every node with code is a group of its own, no epilogues. */
static FusionPlan fuse(Arena *a, const Graph *g, int fusing) {
    int n = g->n;
    FusionPlan fp = {0};
    fp.root = ARENA_ARRAY(a, int, n + 1);
    fp.inl = arena_alloc(a, (size_t)n + 1);
    fp.inplace = ARENA_ARRAY(a, int, n + 1);
    fp.at = ARENA_ARRAY(a, int, n + 1);
    fp.epilogue = ARENA_ARRAY(a, int, n + 1);
    fp.nest = ARENA_ARRAY(a, int, n + 1);
    fp.dup = arena_alloc(a, (size_t)n + 1);
    fp.map = arena_alloc(a, sizeof *fp.map * (size_t)(n + 1));
    memset(fp.map, -1, sizeof *fp.map * (size_t)(n + 1));
    /* readers of each node (CSR) */
    int *cnt = ARENA_ARRAY(a, int, n + 1), *start = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) cnt[g->nodes[id].in[k]]++;
    int total = 0;
    for (int id = 0; id < n; id++) start[id] = total, total += cnt[id];
    start[n] = total;
    int *rd = ARENA_ARRAY(a, int, total + 1), *fill = ARENA_ARRAY(a, int, n + 1);
    for (int id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) {
            int x = g->nodes[id].in[k];
            if (k > 0 && g->nodes[id].in[k - 1] == x) continue; /* mul(x, x): one reader */
            rd[start[x] + fill[x]++] = id;
        }
    /* pos[id]: where the node's value is first read from memory, as far as a group ahead
     * is concerned: its code's position, or for a view the first position of its readers. */
    int *pos = ARENA_ARRAY(a, int, n + 1);
    /* bufs[root]: at least the buffers its group reads and stores (GROUP_MAX_BUFFERS) */
    int *bufs = ARENA_ARRAY(a, int, n + 1);

    char *fn = arena_alloc(a, (size_t)n + 1);
    signed char *libm = arena_alloc(a, OP_COUNT);
    find_label_functions(g, libm, fn);
    const char *phase = update_phase(a, g); /* groups never span two phases */
    if (!phase) phase = loss_phase(a, g);

    for (int id = n - 1; id >= 0; id--) {
        const Node *nd = &g->nodes[id];
        OpKind kind = op_of(nd)->kind;
        fp.root[id] = id;
        fp.nest[id] = -1;
        pos[id] = id;
        bufs[id] = buffer_inputs(g, id) + 1;
        if (kind == K_SOURCE || (!fusing && nd->op == OP_reshape)) {
            fp.root[id] = -1;
            continue;
        }
        if (!fusing) {
            const Shape *s = kind == K_REDUCE ? fusion_domain(g, id) : &nd->shape;
            for (int d = 0; d < s->rank; d++) fp.map[id][d] = (int8_t)(real_dim(s, d) ? d : -1);
            continue;
        }
        /* The group to join: the earliest one that reads it. Readers in other groups and
         * readers that are not elementwise read it from memory, where they run. */
        int group = INT_MAX, all_fusible = fill[id] > 0;
        for (int i = start[id]; i < start[id] + fill[id]; i++) {
            int r = rd[i];
            /* the optimizer update is a call of its own (grad_slab.c): it reads the
             * gradients from their slab */
            if (fusible_reader(g, &fp, r) && fp.root[r] < group && (!phase || phase[r] == phase[id]))
                group = fp.root[r];
            all_fusible &= fp.dup[r] || (fusible_reader(g, &fp, r) && !merges_dims(g, r));
        }
        int first_outside = visible(nd) ? n : INT_MAX, first_read = first_outside;
        for (int i = start[id]; i < start[id] + fill[id]; i++) {
            int r = rd[i], p = fp.root[r] >= 0 ? fp.root[r] : pos[r];
            if (p < first_read) first_read = p;
            if (fp.root[r] != group && p < first_outside) first_outside = p;
        }
        if (group == INT_MAX) group = -1;
        if (fn[id] && all_fusible) { /* recomputed by each group that reads it */
            fp.root[id] = -1;
            fp.dup[id] = 1;
            pos[id] = first_read;
            continue;
        }
        int view = nd->op == OP_reshape, reduce = kind == K_REDUCE;
        if (!view && !reduce && !is_ewise_like(nd)) continue;

        /* Every reader in the group must index it the same way, in the same loop. */
        int8_t map[IR_MAX_RANK];
        memset(map, -1, sizeof map);
        int ok = group >= 0, have = 0, nest = -1;
        for (int i = start[id]; ok && i < start[id] + fill[id]; i++) {
            int r = rd[i];
            if (fp.root[r] != group) continue;
            int8_t m[IR_MAX_RANK];
            int nr = nest_of_reader(g, &fp, r);
            if (!map_from_reader(g, &fp, r, id, m) || (have && (memcmp(m, map, sizeof m) || nr != nest))) ok = 0;
            memcpy(map, m, sizeof m);
            nest = nr;
            have = 1;
        }
        if (ok && two_pass(&g->nodes[nest >= 0 ? nest : group])) ok = 0; /* it takes no members */
        /* joining, it is no longer a buffer the group reads; its own inputs are, and, kept,
         * its value one the group stores */
        if (ok && bufs[group] + buffer_inputs(g, id) > GROUP_MAX_BUFFERS) ok = 0;
        const Shape *space = ok ? space_of(g, group, nest) : NULL;
        if (reduce) {
            /* a row reduction: it keeps the batch dimension, and its readers' loop runs it
             * once per element; else a root, whose domain is its input */
            if (ok && nd->shape.bmask && first_outside > group && covers_space(g, space, nd, map)) {
                fp.root[id] = group;
                bufs[group] += buffer_inputs(g, id) - (first_outside == INT_MAX);
                fp.nest[id] = nest;
                fp.inl[id] = first_outside == INT_MAX;
                memcpy(fp.map[id], map, sizeof map);
                continue;
            }
            const Shape *s = fusion_domain(g, id);
            for (int d = 0; d < s->rank; d++) fp.map[id][d] = (int8_t)(real_dim(s, d) ? d : -1);
            continue;
        }
        if (ok && first_outside == INT_MAX && !recompute_costs(g, libm, space, nd)) { /* read only inside the group */
            fp.root[id] = group;
            bufs[group] += buffer_inputs(g, id) - 1;
            fp.nest[id] = nest;
            fp.inl[id] = 1;
            memcpy(fp.map[id], map, sizeof map);
            continue;
        }
        if (view) { /* a view read from memory: at its first reader's position */
            fp.root[id] = -1;
            pos[id] = first_read;
            continue;
        }
        if (ok && nest < 0 && first_outside > group && covers_space(g, space, nd, map)) { /* kept */
            fp.root[id] = group;
            bufs[group] += buffer_inputs(g, id);
            memcpy(fp.map[id], map, sizeof map);
            continue;
        }
        /* its own group */
        for (int d = 0; d < nd->shape.rank; d++) fp.map[id][d] = (int8_t)(real_dim(&nd->shape, d) ? d : -1);
    }
    for (int id = 0; id < n; id++) fp.at[id] = fp.root[id], fp.epilogue[id] = -1;
    const int *next = group_members(a, &fp, n);
    if (fusing) find_epilogues(g, &fp, next, rd, start, fill, phase);
    find_inplace(g, &fp, next, rd, start, fill);
    if (!fusing)
        for (int id = 0; id < n; id++) fp.inplace[id] = -1;
    /* groups with more than one node of code */
    char *multi = arena_alloc(a, (size_t)n + 1);
    for (int id = 0; id < n; id++) {
        int r = fp.root[id];
        if (r < 0 || r == id || g->nodes[id].op == OP_reshape) continue;
        fp.nfused++;
        if (!multi[r]) multi[r] = 1, fp.ngroups++;
    }
    return fp;
}

FusionPlan fuse_graph(Arena *a, const Graph *g) { return fuse(a, g, 1); }
FusionPlan fuse_nothing(Arena *a, const Graph *g) { return fuse(a, g, 0); }

int fusion_kernels(const Graph *g, const FusionPlan *fp) {
    int k = 0;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (op_of(n)->kind == K_SOURCE || n->op == OP_reshape) continue;
        if (!fp || fp->at[id] == id) k++;
    }
    return k;
}

int fusion_recomputes(const Graph *g, const FusionPlan *fp, int root, int x) {
    for (int r = x + 1; r <= root; r++) {
        int reads = 0;
        for (int k = 0; k < g->nodes[r].nin; k++) reads |= g->nodes[r].in[k] == x;
        if (reads && (fp->root[r] == root || (fp->dup[r] && fusion_recomputes(g, fp, root, r)))) return 1;
    }
    return 0;
}

void fusion_print(FILE *out, const Graph *g, const FusionPlan *fp) {
    fprintf(out, "; --- after fuse (%s) ---\n", g->mode == MODE_TRAIN ? "train step" : "eval");
    fprintf(out, "; %d kernels; %d groups hold %d fused nodes; %d epilogues\n", fusion_kernels(g, fp), fp->ngroups,
            fp->nfused, fp->nepilogues);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (fp->root[id] != id) continue;
        char sh[96];
        fprintf(out, "  %%%d = %s : %s", id, op_of(n)->name,
                shape_str_at(&n->shape, n->dtype, g->batch, sh, sizeof sh));
        int ep = fp->at[id] != id, ip = fp->inplace[id] >= 0;
        if (ep) fprintf(out, " (epilogue of %%%d %s", fp->at[id], op_of(&g->nodes[fp->at[id]])->name);
        if (ip) fprintf(out, "%smay overwrite %%%d", ep ? ", " : " (", fp->inplace[id]);
        if (ep || ip) fputc(')', out);
        if (n->loc.file) fprintf(out, "  ; %s:%d", n->loc.file->name, n->loc.line);
        fputc('\n', out);
        for (int m = 0; m < id; m++) {
            const Node *mn = &g->nodes[m];
            if (fp->dup[m] && mn->op != OP_reshape && fusion_recomputes(g, fp, id, m)) {
                fprintf(out, "      + %%%d = %s, recomputed from its inputs\n", m, op_of(mn)->name);
                continue;
            }
            if (fp->root[m] != id || mn->op == OP_reshape) continue;
            fprintf(out, "      + %%%d = %s, %s", m, op_of(mn)->name, fp->inl[m] ? "in a register" : "stored");
            if (is_reduce(mn)) fprintf(out, ", a loop over axis %lld", (long long)attr_i(mn, A_AXIS));
            if (fp->nest[m] >= 0) fprintf(out, ", in the loop of %%%d", fp->nest[m]);
            if (fp->inplace[m] >= 0) fprintf(out, ", may overwrite %%%d", fp->inplace[m]);
            fputc('\n', out);
        }
    }
}
