/* ir_print.c - the stable text form of the IR (what --dump-ir prints and golden tests
 * compare) and its Graphviz form. */
#include <string.h>

#include "ir.h"
#include "ops.h"

static void print_attrs(FILE *out, const Node *n) {
    switch (op_of(n)->kind) {
    case K_REDUCE:
        fprintf(out, " {axis=%lld%s}", (long long)n->iattr[0], n->iattr[1] ? ", keepdims" : "");
        return;
    case K_CONTRACT:
        if (n->iattr[0] || n->iattr[1])
            fprintf(out, " {%s%s%s}", n->iattr[0] ? "ta" : "", n->iattr[0] && n->iattr[1] ? ", " : "",
                    n->iattr[1] ? "tb" : "");
        return;
    default:
        break;
    }
    switch (n->op) {
    case OP_const:
        fprintf(out, " %.9g%s", n->fattr[0], n->iattr[0] == -1 ? "/B" : n->iattr[0] == 1 ? "*B" : "");
        break;
    case OP_param: /* the initialiser as the .mdl writes it */
        fprintf(out, " \"%s\" {init=", n->name);
        switch ((InitKind)n->iattr[0]) {
        case INIT_ZERO: fprintf(out, "zeros()}"); break;
        case INIT_CONST: fprintf(out, "constant(%g)}", n->fattr[0]); break;
        case INIT_UNIFORM: fprintf(out, "uniform(%g, %g)}", n->fattr[0], n->fattr[1]); break;
        case INIT_NORMAL: fprintf(out, "normal(%g, %g)}", n->fattr[0], n->fattr[1]); break;
        case INIT_AWAY: fprintf(out, "away(%g, %g)}", n->fattr[0], n->fattr[1]); break;
        default: fprintf(out, "?%lld}", (long long)n->iattr[0]); break;
        }
        break;
    case OP_input:
    case OP_state:
        fprintf(out, " \"%s\"", n->name);
        break;
    case OP_argmax_mask:
        fprintf(out, " {axis=%lld}", (long long)n->iattr[0]);
        break;
    case OP_one_hot:
        fprintf(out, " {classes=%lld}", (long long)n->iattr[0]);
        break;
    case OP_sgd_update:
        fprintf(out, " {momentum=%g, weight_decay=%g%s}", n->fattr[0], n->fattr[1], n->iattr[0] ? ", nesterov" : "");
        break;
    case OP_adam_update:
        fprintf(out, " {beta1=%g, beta2=%g, eps=%g, weight_decay=%g%s}", n->fattr[0], n->fattr[1], n->fattr[2],
                n->fattr[3], n->iattr[0] ? ", decoupled" : "");
        break;
    default:
        break;
    }
}

void ir_print(FILE *out, const Graph *g) {
    fprintf(out, "graph %s batch=%d nodes=%d\n", g->mode == MODE_TRAIN ? "train" : "eval", g->batch, g->n);
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        char sh[128];
        fprintf(out, "  %%%d = %s", id, op_of(n)->name);
        for (int i = 0; i < n->nin; i++) fprintf(out, "%s%%%d", i ? ", " : " ", n->in[i]);
        print_attrs(out, n);
        fprintf(out, " : %s", shape_str(&n->shape, n->dtype, sh, sizeof sh));
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

