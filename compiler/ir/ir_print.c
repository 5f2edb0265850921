/* ir_print.c - the stable text form of the IR (what --dump-ir prints and golden tests
 * compare) and its Graphviz form. */
#include <string.h>

#include "ir.h"
#include "ops.h"
#include "ops_attrs.h"

/* "3x3" or "3" when both are equal: kernel, stride, padding and dilation pairs. */
static void pair(FILE *out, const char *name, int64_t h, int64_t w, const char *sep) {
    if (h == w) fprintf(out, "%s%s=%lld", sep, name, (long long)h);
    else fprintf(out, "%s%s=%lldx%lld", sep, name, (long long)h, (long long)w);
}

/* Every attribute an op has, decoded and named (ops.def documents the packing), so the
 * golden files catch a wrong stride or axis as well as a wrong shape. */
static void print_attrs(FILE *out, const Graph *g, const Node *n) {
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
    case OP_leaky_relu:
    case OP_leaky_step:
    case OP_elu:
    case OP_elu_slope:
        fprintf(out, " {alpha=%g}", n->fattr[0]);
        break;
    case OP_pow:
        fprintf(out, " {p=%g}", n->fattr[0]);
        break;
    case OP_transpose:
        fprintf(out, " {perm=[");
        for (int i = 0; i < n->shape.rank; i++) fprintf(out, "%s%d", i ? ", " : "", transpose_perm_at(n, i));
        fprintf(out, "]}");
        break;
    case OP_slice:
        fprintf(out, " {axis=%lld, start=%lld, end=%lld}", (long long)n->iattr[0], (long long)n->iattr[1],
                (long long)n->iattr[2]);
        break;
    case OP_pad:
        fprintf(out, " {axis=%lld, before=%lld, after=%lld}", (long long)n->iattr[0], (long long)n->iattr[1],
                (long long)n->iattr[2]);
        break;
    case OP_concat:
        fprintf(out, " {axis=%lld}", (long long)n->iattr[0]);
        break;
    case OP_conv2d:
    case OP_conv2d_bwd_data:
    case OP_conv2d_bwd_filter: {
        Geom q = conv_node_geom(g, n);
        pair(out, "kernel", q.KH, q.KW, " {");
        pair(out, "stride", q.sh, q.sw, ", ");
        pair(out, "pad", q.ph, q.pw, ", ");
        pair(out, "dilation", q.dh, q.dw, ", ");
        fprintf(out, ", groups=%lld}", (long long)q.G);
        break;
    }
    case OP_max_pool2d:
    case OP_avg_pool2d:
    case OP_maxpool2d_bwd:
    case OP_avgpool2d_bwd: {
        PGeom q = pool_node_geom(g, n);
        pair(out, "kernel", q.KH, q.KW, " {");
        pair(out, "stride", q.sh, q.sw, ", ");
        pair(out, "pad", q.ph, q.pw, ", ");
        fprintf(out, "}");
        break;
    }
    case OP_bn_apply: /* the ops that divide by sqrt(var + eps) */
    case OP_bn_param_grads:
    case OP_bn_bwd:
    case OP_bn_scale:
        fprintf(out, " {eps=%g}", n->fattr[0]);
        break;
    case OP_dropout_mask:
        fprintf(out, " {p=%g, stream=%llu}", n->fattr[0], (unsigned long long)n->iattr[0]);
        break;
    /* lang (issue 14) */
    case OP_argmax:
        fprintf(out, " {axis=%lld}", (long long)n->iattr[0]);
        break;
    case OP_upsample_bilinear:
    case OP_upsample_bilinear_bwd:
        fprintf(out, " {fh=%lld, fw=%lld}", (long long)n->iattr[0], (long long)n->iattr[1]);
        break;
    case OP_param_ema:
        fprintf(out, " {decay=%g}", n->fattr[0]);
        break;
    case OP_ema_update:
        fprintf(out, " {momentum=%g%s%s}", n->fattr[0], n->iattr[0] ? ", per_sample" : "", n->iattr[1] ? ", unbiased" : "");
        break;
    case OP_sgd_update:
        fprintf(out, " {momentum=%g, weight_decay=%g%s}", n->fattr[0], n->fattr[1], n->iattr[0] ? ", nesterov" : "");
        break;
    case OP_adam_update:
        fprintf(out, " {beta1=%g, beta2=%g, eps=%g, weight_decay=%g%s}", n->fattr[0], n->fattr[1], n->fattr[2],
                n->fattr[3], n->iattr[0] ? ", decoupled" : "");
        break;
    /* sequence models */
    case OP_layer_norm:
    case OP_rms_norm:
        fprintf(out, " {eps=%g}", n->fattr[0]);
        break;
    case OP_row_norm_stats:
    case OP_row_norm_bwd:
    case OP_row_norm_param_grads:
        fprintf(out, " {%s, eps=%g}", n->iattr[0] ? "layer" : "rms", n->fattr[0]);
        break;
    case OP_scatter_rows:
        fprintf(out, " {rows=%lld}", (long long)n->iattr[0]);
        break;
    case OP_causal_mask:
        fprintf(out, " {T=%lld}", (long long)n->iattr[0]);
        break;
    case OP_attention: /* attention and its backward ops */
    case OP_attention_stats:
    case OP_attention_bwd_q:
    case OP_attention_bwd_kv:
        fprintf(out, " {scale=%g%s}", n->fattr[0], n->iattr[0] ? ", causal" : "");
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
        print_attrs(out, g, n);
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

