/* ir_print.c - the stable text form of the IR (what --dump-ir prints and golden tests
 * compare) and its Graphviz form. */
#include <string.h>

#include "ir.h"
#include "ops.h"

/* A name or file name as the dump prints it: one line per node whatever the text holds,
 * '"' and '\' after a backslash, a newline as \n and other control bytes as \ooo. */
static void put_text(FILE *out, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fputc('\\', out), fputc(c, out);
        else if (c == '\n') fputs("\\n", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\%03o", c);
        else fputc(c, out);
    }
}

/* Sources print their name; every op its attributes by name (attrs.def), so the golden
 * files catch a wrong stride or axis as well as a wrong shape. */
static void print_attrs(FILE *out, const Node *n) {
    if (n->name && op_of(n)->kind == K_SOURCE) {
        fputs(" \"", out);
        put_text(out, n->name);
        fputc('"', out);
    }
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
            fputs("  ; ", out);
            put_text(out, slash ? slash + 1 : f);
            fprintf(out, ":%d:%d", n->loc.line, n->loc.col);
        }
        fputc('\n', out);
    }
}
