/* plancheck.h - an independent check of a memory plan (memplan.c) and of the order fusion
 * (fuse.c) runs nodes in: no value is read from memory before its group wrote it, no two
 * tensors alive at the same time share bytes (except a legal in-place update: a fused
 * elementwise loop's, or a 2x2 max-pool backward's over its x), every
 * tensor stays inside the arena and clear of the workspace, for several batch sizes.
 * Shared by test_memplan.c and test_recompute.c; header-only (static functions), needs
 * Criterion for its log. Values a group recomputes (FusionPlan.dup) are no reads of
 * memory: their readers read their inputs; registers are read only in the loop that made
 * them (a row reduction's nested loop or the group's own). */
#ifndef MLC_PLANCHECK_H
#define MLC_PLANCHECK_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"

/* Set by tests of the checker itself, whose plans are meant to fail: Criterion fails a
 * run that logged an error. */
static int plancheck_quiet;
#define PLAN_ERROR(...)                                  \
    do {                                                 \
        if (!plancheck_quiet) cr_log_error(__VA_ARGS__); \
    } while (0)

/* Buffer owner of a view chain, as the plan treats reshapes. */
static inline int owner(const Graph *g, int id) {
    while (g->nodes[id].op == OP_reshape) id = g->nodes[id].in[0];
    return id;
}

/* The loop of its group in which node r reads its inputs: a row reduction's own loop
 * over its axis, else the loop r is computed in (FusionPlan.nest; -1: the group's). */
static inline int reader_loop(const Graph *g, const FusionPlan *fp, int r) {
    return op_of(&g->nodes[r])->kind == K_REDUCE && fp->root[r] >= 0 && fp->root[r] != r ? r : fp->nest[r];
}

/* An epilogue's member reads the output of the op it runs with (its domain has that
 * output's shape) through map m: legal at the element it computes only, and only for a
 * GEMM's [M, N] (a thread's block of rows or columns) or the [B, C, H, W] of an op that
 * writes it sample by sample (OPF_SAMPLE_EPILOGUE: conv2d, conv2d_bwd_data; dimension 0). */
static inline int epilogue_reads_element(const Node *op, const int8_t *m) {
    const Shape *s = &op->shape;
    if (op->op == OP_matmul) {
        if (s->rank != 2) return 0;
    } else if (!(op_of(op)->rules->flags & OPF_SAMPLE_EPILOGUE) || s->rank != 4 || s->bmask != 1) {
        return 0;
    }
    for (int d = 0; d < IR_MAX_RANK; d++) {
        int real = d < s->rank && (s->d[d] != 1 || ((s->bmask >> d) & 1));
        if (m[d] != (real ? d : -1)) return 0;
    }
    return 1;
}

/* b took over a's buffer in place: legal when a dies in b's group, which reads it only at
 * the element it writes of b (same shape, same index map), never through a view, and
 * only in the group's own loop (a nested loop over a row reduction's axis reads other
 * elements; a two-pass root reads its input twice), and only in members up to b: a
 * group's members run in node order for each element, and b stores its value where it
 * is computed, so a later member would read b's value. */
static inline int legal_inplace(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at, const int *last,
                                int a, int b) {
    if (p->inplace_of[b] != a + 1 || at[b] != last[a] || !shape_eq(&g->nodes[a].shape, &g->nodes[b].shape)) return 0;
    if (fp->nest[b] >= 0 || fp->root[b] < 0 || op_of(&g->nodes[fp->root[b]])->rules->red_pre_step) return 0;
    /* only a fused loop's statement reads its input at just the element it writes: not a
     * GEMM (BLAS: C may not alias A or B), a conv, a pooling backward, a batch norm... */
    if (op_of(&g->nodes[b])->kind != K_EWISE && g->nodes[b].op != OP_expand) return 0;
    for (int r = 0; r < g->n; r++)
        for (int k = 0; k < g->nodes[r].nin; k++) {
            if (g->nodes[r].in[k] != a) continue;
            if (g->nodes[r].op == OP_reshape || fp->dup[r]) return 0;
            if (at[r] != at[b]) continue;
            if (r > b) return 0;
            if (reader_loop(g, fp, r) >= 0) return 0;
            int8_t m[IR_MAX_RANK];
            fusion_operand_map(g, fp, r, k, m);
            if (memcmp(m, fp->map[b], sizeof m)) return 0;
        }
    return 1;
}

/* b, a max-pool backward, took over the bytes of its x (a): legal for the 2x2, stride 2
 * pooling of an even-sized plane only, whose C loop and CUDA kernel take one window at a
 * time and read its four x values before they write its four dx values, when a dies
 * there, b reads it as x only (not as dy), and nothing else reads it where b runs or
 * through a view. Overlapping windows, or the general path's zeroing of dx, would write
 * x's bytes before another window reads them. */
static inline int legal_pool_inplace(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at,
                                     const int *last, int a, int b) {
    const Node *bn = &g->nodes[b];
    if (bn->op != OP_maxpool2d_bwd || bn->in[1] != a || bn->in[0] == a) return 0;
    if (attr_h(bn, A_KERNEL) != 2 || attr_w(bn, A_KERNEL) != 2 || attr_h(bn, A_STRIDE) != 2 ||
        attr_w(bn, A_STRIDE) != 2 || attr_h(bn, A_PAD) != 0 || attr_w(bn, A_PAD) != 0)
        return 0;
    if (g->nodes[a].shape.d[2] % 2 || g->nodes[a].shape.d[3] % 2) return 0;
    if (p->inplace_of[b] != a + 1 || at[b] != last[a] || !shape_eq(&g->nodes[a].shape, &bn->shape)) return 0;
    for (int r = 0; r < g->n; r++)
        for (int k = 0; k < g->nodes[r].nin; k++) {
            if (g->nodes[r].in[k] != a) continue;
            if (g->nodes[r].op == OP_reshape || fp->dup[r]) return 0;
            if (r != b && at[r] == at[b]) return 0;
        }
    return 1;
}

/* b holds a's bytes through a chain of legal in-place takeovers a -> ... -> b, all where
 * b runs (an epilogue over its GEMM's or conv's output, itself in place of a value). */
static inline int legal_inplace_chain(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at,
                                      const int *last, int a, int b) {
    for (int cur = b; p->inplace_of[cur];) {
        int prev = p->inplace_of[cur] - 1;
        if (!legal_inplace(g, fp, p, at, last, prev, cur) && !legal_pool_inplace(g, fp, p, at, last, prev, cur))
            return 0;
        if (prev == a) return 1;
        cur = prev;
    }
    return 0;
}

/* A value every group reading it recomputes (FusionPlan.dup) must be one the emitters can
 * write as an expression: a generator (one_hot), an elementwise op, expand or view. */
static inline int recomputable(const Node *n) {
    const OpInfo *oi = op_of(n);
    return oi->rules->gen_expr || oi->kind == K_EWISE || n->op == OP_expand || n->op == OP_reshape;
}

/* Node r's code (at its position) reads x: checks the order, registers and loops, and
 * extends x's buffer's life to the read. A recomputed x is no read of memory: r computes
 * it in registers and reads its inputs instead. Returns the errors found. */
static inline int check_read(const Graph *g, const FusionPlan *fp, const MemPlan *p, const int *at, int *last, int r,
                             int x, int via_recomputed, const char *what) {
    int o = owner(g, x), bad = 0;
    const Node *rn = &g->nodes[r];
    if (g->nodes[o].op == OP_const || op_of(&g->nodes[o])->kind == K_SOURCE) return 0;
    if (fp->dup[o]) {
        int fused_code = fp->root[r] >= 0 && (op_of(rn)->kind == K_EWISE || op_of(rn)->kind == K_REDUCE ||
                                              rn->op == OP_expand || rn->op == OP_reshape);
        if (!fused_code || !recomputable(&g->nodes[o]) || p->has_buf[o] || fp->at[o] >= 0 || fp->root[o] >= 0) {
            PLAN_ERROR("%s: %%%d reads %%%d, recomputed where it is read, but one of them cannot do that", what, r, o);
            return 1;
        }
        for (int k = 0; k < g->nodes[o].nin; k++) bad += check_read(g, fp, p, at, last, r, g->nodes[o].in[k], 1, what);
        return bad;
    }
    if (last[o] < at[r]) last[o] = at[r];
    /* read from memory before its group ran, or in the same group through memory */
    int in_group = !via_recomputed && at[r] == at[o] && fp->root[x] == fp->root[r] && fp->root[o] == fp->root[r];
    int same_group = in_group;
    if (!via_recomputed && x == o && fp->epilogue[o] >= 0 && fp->epilogue[o] == fp->root[r] &&
        reader_loop(g, fp, r) < 0) {
        /* a GEMM's epilogue reads the block the GEMM just wrote, a conv2d's the sample it
         * just computed: at the same element */
        int8_t m[IR_MAX_RANK];
        memset(m, -1, sizeof m);
        for (int k = 0; k < rn->nin; k++)
            if (rn->in[k] == x) fusion_operand_map(g, fp, r, k, m);
        same_group = epilogue_reads_element(&g->nodes[o], m);
    }
    if (at[r] < at[o] || (at[r] == at[o] && !same_group)) {
        PLAN_ERROR("%s: %%%d (at %d) reads %%%d (written at %d)", what, r, at[r], o, at[o]);
        bad++;
    }
    if ((g->nodes[o].role & ROLE_GRAD) && (fp->inl[o] || p->has_buf[o])) {
        PLAN_ERROR("%s: gradient %%%d is not stored in the gradient slab", what, o);
        bad++;
    }
    if (fp->inl[o] && !same_group) {
        PLAN_ERROR("%s: %%%d reads %%%d, which is kept in a register of another group", what, r, o);
        bad++;
    }
    /* a parameter's gradient is stored in the gradient slab (grad_slab.c), not the arena */
    if (!same_group && !fp->inl[o] && !p->has_buf[o] && !(g->nodes[o].role & ROLE_GRAD)) {
        PLAN_ERROR("%s: %%%d reads %%%d from memory, where it has no buffer", what, r, o);
        bad++;
    }
    /* a register is read in the loop that made it: a member of a row reduction's loop only
     * by that loop's members and the reduction, the reduction by its own loop's readers */
    if (in_group && (fp->nest[x] != reader_loop(g, fp, r) || fp->nest[o] != reader_loop(g, fp, r))) {
        PLAN_ERROR("%s: %%%d (in the loop of %%%d) reads %%%d (made in the loop of %%%d)", what, r,
                   reader_loop(g, fp, r), x, fp->nest[x]);
        bad++;
    }
    return bad;
}

/* Returns the number of overlapping pairs and ordering errors (and reports them).
 * A node's code runs at its group's root (fp); a buffer lives from there to the last
 * position that reads it. */
static inline int check_plan(const Graph *g, const FusionPlan *fp, const MemPlan *p, const char *what) {
    int n = g->n, bad = 0;
    int *last = calloc((size_t)n, sizeof(int)), *at = calloc((size_t)n, sizeof(int));
    for (int id = 0; id < n; id++) at[id] = fp->at[id] >= 0 ? fp->at[id] : id;
    for (int id = 0; id < n; id++) last[id] = at[id];
    for (int id = 0; id < n; id++) {
        if (fp->dup[id]) continue; /* no code: its readers compute it (check_read) */
        for (int k = 0; k < g->nodes[id].nin; k++)
            bad += check_read(g, fp, p, at, last, id, g->nodes[id].in[k], 0, what);
    }
    static const int batches[] = {1, 3, 64, 1000};
    for (int bi = 0; bi < 4; bi++) {
        int64_t B = batches[bi];
        for (int a = 0; a < n; a++) {
            if (!p->has_buf[a]) continue;
            int64_t ca, ba;
            shape_numel_affine(&g->nodes[a].shape, g->batch, &ca, &ba);
            int64_t a0 = p->off_c[a] + p->off_b[a] * B, a1 = a0 + ca + ba * B;
            /* inside the arena, and clear of the workspace */
            int64_t ws0 = p->ws_off_c + p->ws_off_b * B;
            if (a1 > p->size_c + p->size_b * B ||
                (a1 > ws0 && a0 < ws0 + p->ws_size_c + p->ws_size_b * B + p->ws_per_thread)) {
                if (!bad++)
                    PLAN_ERROR("%s: %%%d [%lld, %lld) leaves its region at B = %lld", what, a, (long long)a0,
                               (long long)a1, (long long)B);
            }
            for (int b = 0; b < n; b++) {
                if (b == a || !p->has_buf[b] || at[b] > last[a] || at[a] > last[b]) continue; /* never both live */
                int64_t cb, bb;
                shape_numel_affine(&g->nodes[b].shape, g->batch, &cb, &bb);
                int64_t b0 = p->off_c[b] + p->off_b[b] * B, b1 = b0 + cb + bb * B;
                if (a0 == b0 && a1 == b1 &&
                    (legal_inplace_chain(g, fp, p, at, last, a, b) || legal_inplace_chain(g, fp, p, at, last, b, a)))
                    continue;
                if (a0 < b1 && b0 < a1 && !bad++)
                    PLAN_ERROR("%s: %%%d [%lld, %lld) and %%%d [%lld, %lld) overlap while both live, B = %lld", what, a,
                               (long long)a0, (long long)a1, b, (long long)b0, (long long)b1, (long long)B);
            }
        }
    }
    free(last);
    free(at);
    return bad;
}

#endif
