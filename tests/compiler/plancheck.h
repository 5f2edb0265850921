/* plancheck.h - an independent check of a memory plan (memplan.c): no two tensors alive
 * at the same time share bytes, every tensor stays inside the arena and clear of the
 * workspace, for several batch sizes. Shared by test_memplan.c and test_recompute.c;
 * header-only (static functions), needs Criterion for its log. */
#ifndef MLC_PLANCHECK_H
#define MLC_PLANCHECK_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>

#include "model.h"
#include "ops.h"

/* Buffer owner of a view chain, as the plan treats reshapes. */
static inline int plancheck_owner(const Graph *g, int id) {
    while (g->nodes[id].op == OP_reshape) id = g->nodes[id].in[0];
    return id;
}

/* Returns the number of overlapping pairs (and reports the first). */
static inline int check_plan(const Graph *g, const MemPlan *p, const char *what) {
    int n = g->n, bad = 0;
    int *last = calloc((size_t)n, sizeof(int));
    for (int id = 0; id < n; id++) last[id] = id;
    for (int id = 0; id < n; id++)
        for (int k = 0; k < g->nodes[id].nin; k++) {
            int o = plancheck_owner(g, g->nodes[id].in[k]);
            if (last[o] < id) last[o] = id;
        }
    if (g->output >= 0) last[plancheck_owner(g, g->output)] = n;
    if (g->loss >= 0) last[plancheck_owner(g, g->loss)] = n;
    static const int batches[] = {1, 3, 64, 1000};
    for (int bi = 0; bi < 4; bi++) {
        int64_t B = batches[bi];
        for (int a = 0; a < n; a++) {
            if (!p->has_buf[a]) continue;
            int64_t ca, ba;
            shape_numel_affine(&g->nodes[a].shape, &ca, &ba);
            int64_t a0 = p->off_c[a] + p->off_b[a] * B, a1 = a0 + ca + ba * B;
            /* inside the arena, and clear of the workspace */
            int64_t ws0 = p->ws_off_c + p->ws_off_b * B;
            if (a1 > p->size_c + p->size_b * B || (a1 > ws0 && a0 < ws0 + p->ws_size_c + p->ws_size_b * B)) {
                if (!bad++) cr_log_error("%s: %%%d [%lld, %lld) leaves its region at B = %lld", what, a, (long long)a0,
                                         (long long)a1, (long long)B);
            }
            for (int b = a + 1; b < n; b++) {
                if (!p->has_buf[b] || b > last[a]) continue; /* b is written after a is dead */
                int64_t cb, bb;
                shape_numel_affine(&g->nodes[b].shape, &cb, &bb);
                int64_t b0 = p->off_c[b] + p->off_b[b] * B, b1 = b0 + cb + bb * B;
                if (a0 < b1 && b0 < a1 && !bad++)
                    cr_log_error("%s: %%%d [%lld, %lld) and %%%d [%lld, %lld) overlap while both live, B = %lld", what, a,
                                 (long long)a0, (long long)a1, b, (long long)b0, (long long)b1, (long long)B);
            }
        }
    }
    free(last);
    return bad;
}

#endif
