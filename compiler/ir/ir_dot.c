/* ir_dot.c - `--dump-ir=dot`: the compiled graphs as one Graphviz document.
 *
 * One digraph, so `mlc net.mdl --dump-ir=dot | dot -Tsvg > net.svg` is a valid picture:
 * the train step and the eval graph are clusters of it (or one of them alone, or only
 * the forward part of the train step), each fused group a dashed cluster of its own
 * (what runs as one loop nest or kernel), every node labelled with its op, name, shape
 * and the .mdl line it came from. */
#include <string.h>

#include "model.h"
#include "ops.h"

/* User text (a layer's name, the .mdl's name, the model's) inside a quoted DOT string: a
 * backslash before each '"' and '\' (dot reads two backslashes back as one; \n, \l and \N
 * are its own label escapes), a newline as \n, other control bytes as a space. */
static void put_label_text(FILE *out, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fputc('\\', out), fputc(c, out);
        else if (c == '\n') fputs("\\n", out);
        else fputc(c < 0x20 || c == 0x7f ? ' ' : c, out);
    }
}

/* Node ids are unique across the document: graph prefix + id. */
static void node(FILE *out, const Graph *g, char pfx, int id, const char *indent) {
    const Node *n = &g->nodes[id];
    char sh[128];
    const char *color = op_of(n)->kind == K_SOURCE   ? "lightblue"
                        : op_of(n)->kind == K_UPDATE ? "lightsalmon"
                        : (n->role & ROLE_LOSS)      ? "gold"
                                                     : "white";
    fprintf(out, "%s%c%d [label=\"%%%d %s%s", indent, pfx, id, id, op_of(n)->name, n->name ? " " : "");
    if (n->name) put_label_text(out, n->name);
    fprintf(out, "\\n%s", shape_str_at(&n->shape, n->dtype, g->batch, sh, sizeof sh));
    if (n->loc.file) {
        const char *f = n->loc.file->name, *slash = strrchr(f, '/');
        fputs("\\n", out);
        put_label_text(out, slash ? slash + 1 : f);
        fprintf(out, ":%d", n->loc.line);
    }
    fprintf(out, "\", style=filled, fillcolor=%s];\n", color);
}

/* The forward part of a train step: what the loss and the outputs are computed from. */
static char *forward_part(Arena *a, const Graph *g) {
    char *fwd = arena_alloc(a, (size_t)g->n + 1);
    for (int id = 0; id < g->n; id++)
        if (g->nodes[id].role & (ROLE_LOSS | ROLE_OUTPUT)) fwd[id] = 1;
    for (int id = g->n - 1; id >= 0; id--)
        if (fwd[id])
            for (int k = 0; k < g->nodes[id].nin; k++) fwd[g->nodes[id].in[k]] = 1;
    return fwd;
}

static void cluster(FILE *out, Arena *a, const Graph *g, const FusionPlan *fp, char pfx, const char *label,
                    int forward_only) {
    char *keep = forward_only ? forward_part(a, g) : NULL;
    fprintf(out, "  subgraph cluster_%c {\n    label=\"%s\";\n", pfx, label);
    /* nodes outside groups, then one dashed cluster per group of more than one node */
    for (int id = 0; id < g->n; id++) {
        if (keep && !keep[id]) continue;
        int r = fp->root[id];
        int grouped = r >= 0 && (r != id || (fp->lo && fp->lo[id] >= 0 && fp->lo[id] != id));
        if (!grouped) node(out, g, pfx, id, "    ");
    }
    for (int r = 0; r < g->n; r++) {
        if (fp->root[r] != r || !fp->lo || fp->lo[r] < 0 || fp->lo[r] == r || (keep && !keep[r])) continue;
        fprintf(out, "    subgraph cluster_%c%d {\n      label=\"fused: %%%d", pfx, r, r);
        if (fp->at[r] != r) fprintf(out, ", the epilogue of %%%d", fp->at[r]);
        fprintf(out, "\";\n      style=dashed;\n");
        for (int m = fp->lo[r]; m <= r; m++)
            if (fp->root[m] == r && (!keep || keep[m])) node(out, g, pfx, m, "      ");
        fprintf(out, "    }\n");
    }
    for (int id = 0; id < g->n; id++) {
        if (keep && !keep[id]) continue;
        for (int k = 0; k < g->nodes[id].nin; k++)
            fprintf(out, "    %c%d -> %c%d;\n", pfx, g->nodes[id].in[k], pfx, id);
    }
    fprintf(out, "  }\n");
}

void model_print_dot(FILE *out, const ModelIR *m, DotGraphs which) {
    /* quoted: a model may be named like a DOT keyword (node, edge, graph, ...) */
    fputs("digraph \"", out);
    put_label_text(out, m->spec.name);
    fputs("\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n", out);
    if (which == DOT_BOTH || which == DOT_TRAIN) cluster(out, m->arena, m->train, &m->train_fuse, 't', "train step", 0);
    if (which == DOT_FORWARD) cluster(out, m->arena, m->train, &m->train_fuse, 't', "train step, forward part", 1);
    if (which == DOT_BOTH || which == DOT_EVAL) cluster(out, m->arena, m->eval, &m->eval_fuse, 'e', "eval", 0);
    fprintf(out, "}\n");
}
