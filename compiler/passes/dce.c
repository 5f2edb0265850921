/* dce.c - dead-code elimination: drops every node no root needs and renumbers the rest,
 * keeping topological order. */
#include "ops.h"
#include "passes.h"

char *dce_live(const Graph *g) {
    char *live = arena_alloc(g->arena, (size_t)g->n);
    for (int i = 0; i < g->n; i++) {
        const Node *n = &g->nodes[i];
        if (op_of(n)->kind == K_UPDATE || (n->name && op_of(n)->kind == K_SOURCE)) live[i] = 1;
    }
    if (g->loss >= 0) live[g->loss] = 1;
    for (int k = 0; k < g->nout; k++) live[g->outputs[k]] = 1;
    for (int i = g->n - 1; i >= 0; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) live[g->nodes[i].in[k]] = 1;
    return live;
}

void dce(Graph *g) {
    char *live = dce_live(g);
    int *map = ARENA_ARRAY(g->arena, int, g->n);
    int m = 0;
    for (int i = 0; i < g->n; i++) {
        map[i] = -1;
        if (!live[i]) continue;
        Node n = g->nodes[i];
        for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
        map[i] = m;
        g->nodes[m++] = n;
    }
    g->n = m;
    graph_remap_roots(g, map);
}
