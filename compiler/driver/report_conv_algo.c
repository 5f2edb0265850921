/* report_conv_algo.c - `--report`'s table of convolutions (C target): the algorithm each
 * conv op of the train step and of inference runs with (targets/c/conv_algo.c), the
 * direct convolution's FLOPs, which the kernel table counts for Winograd too (so a rate
 * from them is an "effective" one, and may pass the machine's SGEMM rate), and the
 * multiplications the algorithm does: F(2x2, 3x3) makes 16 per 2x2 output tile and
 * input-output channel pair where the direct one makes 36, F(4x4, 3x3) 36 per 4x4 tile
 * where the direct one makes 144. */
#include "conv_algo.h"
#include "kernels/mlc_winograd_layout.h"
#include "ops.h"
#include "ops_attrs.h"
#include "report.h"

static void graph_convs(FILE *out, const Graph *g, const char *title) {
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_conv2d && n->op != OP_conv2d_bwd_data && n->op != OP_conv2d_bwd_filter) continue;
        const Geom q = conv_node_geom(g, n);
        const int algo = conv_algo_c(g, n);
        const double direct = op_flops(g, n);
        const int m = mlc_wino_tile(algo);
        const double tiles = (double)((q.Ho + m - 1) / m) * (double)((q.Wo + m - 1) / m) * g->batch;
        const double done =
            algo != MLC_CONV_DIRECT ? 2.0 * (m + 2) * (m + 2) * tiles * (double)q.C * (double)q.O : direct;
        char geom[64];
        snprintf(geom, sizeof geom, "%lldx%lld s%lld %lld->%lld %lldx%lld", (long long)q.KH, (long long)q.KW,
                 (long long)q.sh, (long long)q.C, (long long)q.O, (long long)q.Ho, (long long)q.Wo);
        fprintf(out, "  %-10s %%%-5d %-18s %-28s %-9s %14.0f %14.0f\n", title, id, op_of(n)->name, geom,
                conv_algo_name(algo), direct, done);
    }
}

void conv_algo_report(FILE *out, const ModelIR *m) {
    if (m->target != TARGET_C) return;
    int n = 0;
    for (int id = 0; id < m->train->n; id++) n += m->train->nodes[id].op == OP_conv2d;
    if (!n) return;
    fprintf(out,
            "convolutions (--conv-algo %s; FLOPs: the direct convolution's, as the kernels count them, and "
            "those of the algorithm's products, transforms left out):\n",
            m->conv_algo == CONV_ALGO_DIRECT      ? "direct"
            : m->conv_algo == CONV_ALGO_WINOGRAD  ? "winograd"
            : m->conv_algo == CONV_ALGO_WINOGRAD4 ? "winograd4"
                                                  : "auto");
    fprintf(out, "  %-10s %-6s %-18s %-28s %-9s %14s %14s\n", "graph", "node", "op", "kernel, channels, output",
            "algorithm", "direct FLOPs", "product FLOPs");
    graph_convs(out, m->train, "train");
    graph_convs(out, m->eval, "inference");
}
