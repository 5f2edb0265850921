/* ir_print.c - the stable text form of the IR (what --dump-ir prints and golden tests
 * compare) and its Graphviz form. */
#include <string.h>

#include "ir.h"
#include "ops.h"

/* Sources print their name; every op its attributes by name (attrs.def), so the golden
 * files catch a wrong stride or axis as well as a wrong shape. */
static void print_attrs(FILE *out, const Node *n) {
    if (n->name && op_of(n)->kind == K_SOURCE) fprintf(out, " \"%s\"", n->name);
    attr_print(out, n);
}

void ir_print(FILE *out, const Graph *g) {
    fprintf(out, "graph %s batch=%d nodes=%d\n", g->mode == MODE_TRAIN ? "train" : "eval", g->batch, g->n);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        char sh[128];
        fprintf(out, "  %%%d = %s", id, op_of(n)->name);
        for (int i = 0; i < n->nin; i++) fprintf(out, "%s%%%d", i ? ", " : " ", n->in[i]);
        print_attrs(out, n);
        fprintf(out, " : %s", shape_str_at(&n->shape, n->dtype, g->batch, sh, sizeof sh));
        if (n->role & ROLE_LOSS) fprintf(out, " loss");
        if (n->role & ROLE_OUTPUT) fprintf(out, " output");
        if (n->role & ROLE_GRAD) fprintf(out, " grad");
        if (n->role & ROLE_RECOMPUTED) fprintf(out, " recomputed");
        if (n->loc.file) {
            const char *f = n->loc.file->name, *slash = strrchr(f, '/');
            fprintf(out, "  ; %s:%d:%d", slash ? slash + 1 : f, n->loc.line, n->loc.col);
        }
        fputc('\n', out);
    }
}
