/* report_conv.c - `--report`'s lines about the C target's convolutions: which kernel
 * variant each conv2d, input gradient and weight gradient of the train step runs, at
 * which vector width. The width is the one the kernel library gets from -march=native
 * on this machine (mlc build compiles it and the model that way), read from its cpuid,
 * or the one meson's -Dvec_width gave the library and the compiler alike (the trainer's
 * --version says which the library has). */
#include "c_emitters.h"
#include "ops.h"
#include "ops_attrs.h"
#include "report.h"

void conv_report(FILE *out, const ModelIR *m) {
    const Graph *g = m->train;
    int n = 0;
    for (int id = 0; id < g->n; id++) {
        const Op op = g->nodes[id].op;
        n += op == OP_conv2d || op == OP_conv2d_bwd_data || op == OP_conv2d_bwd_filter;
    }
    if (!n || m->target != TARGET_C) return;
    const char *isa;
    const int vw = c_native_vec_width(&isa);
#ifdef MLC_VEC_WIDTH /* meson -Dvec_width: the library's width was chosen, not derived */
    const char *whence = "the width set when mlc was configured (-Dvec_width)";
#else
    const char *whence = "from this machine's cpuid";
#endif
    fprintf(out,
            "convolutions: %d, C kernels (libmlckernels) with %d-float vectors: %s, %s, which mlc build compiles "
            "for (-march=native)\n",
            n, vw, isa, whence);
    fprintf(out, "  %-6s %-18s %-34s %s\n", "node", "op", "geometry", "kernel");
    for (int id = 0; id < g->n; id++) {
        const Node *nd = &g->nodes[id];
        if (nd->op != OP_conv2d && nd->op != OP_conv2d_bwd_data && nd->op != OP_conv2d_bwd_filter) continue;
        const Geom q = conv_node_geom(g, nd);
        char geom[96], kernel[160];
        snprintf(geom, sizeof geom, "%lldx%lldx%lld -> %lldx%lldx%lld k%lldx%lld s%lld", (long long)q.C, (long long)q.H,
                 (long long)q.W, (long long)q.O, (long long)q.Ho, (long long)q.Wo, (long long)q.KH, (long long)q.KW,
                 (long long)q.sh);
        c_conv_variant(g, nd, vw, kernel, sizeof kernel);
        fprintf(out, "  %%%-5d %-18s %-34s %s\n", id, op_of(nd)->name, geom, kernel);
    }
}
