/* param_groups.c - the parameters train { } names in `freeze` and `no_decay` (passes.h).
 *
 * Matching happens after lowering, on the parameters' full names ("stage1.block2.conv1.weight"),
 * so a pattern can name a whole block's parameters ("stage1.*") as the dumps print them. */
#include <fnmatch.h>

#include "passes.h"

static void mark(const Graph *g, const ParamPatterns *pp, const char *key, uint8_t flag, uint8_t *out) {
    for (int k = 0; k < pp->n; k++) {
        int hits = 0;
        for (int i = 0; i < g->n; i++) {
            const Node *n = &g->nodes[i];
            if (n->op != OP_param || fnmatch(pp->pattern[k], n->name, 0) != 0) continue;
            out[i] |= flag;
            hits++;
        }
        if (!hits) {
            /* a misspelt name: the nearest parameter's, else how the names are written */
            const char **names = ARENA_ARRAY(g->arena, const char *, g->n + 1);
            int np = 0;
            for (int i = 0; i < g->n; i++)
                if (g->nodes[i].op == OP_param) names[np++] = g->nodes[i].name;
            const char *near = diag_nearest(pp->pattern[k], names, np);
            diag_error_hint(
                pp->loc[k],
                near ? arena_printf(g->arena, "did you mean '%s'?", near)
                     : "parameter names are as `mlc --dump-ir=lower` prints them, e.g. \"fc1.weight\" or \"fc1.*\"",
                "%s: '%s' matches no parameter", key, pp->pattern[k]);
        }
    }
}

uint8_t *param_groups(const Graph *g, const ParamPatterns *freeze, const ParamPatterns *no_decay) {
    uint8_t *out = arena_alloc(g->arena, (size_t)g->n + 1);
    for (int i = 0; i < g->n; i++) out[i] = 0;
    mark(g, freeze, "freeze", PARAM_FROZEN, out);
    /* every parameter frozen: a run that trains nothing (and `ema` averages nothing) */
    int params = 0, frozen = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_param) params++, frozen += (out[i] & PARAM_FROZEN) != 0;
    if (freeze->n && params && frozen == params)
        diag_warning(freeze->loc[0], "freeze: every parameter is frozen, so training changes none of them");
    mark(g, no_decay, "no_decay", PARAM_NO_DECAY, out);
    if (no_decay->rank1)
        for (int i = 0; i < g->n; i++)
            if (g->nodes[i].op == OP_param && g->nodes[i].shape.rank <= 1) out[i] |= PARAM_NO_DECAY;
    return out;
}
