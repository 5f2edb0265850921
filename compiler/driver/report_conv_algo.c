/* report_conv_algo.c - `--report`'s table of convolutions. C target: the algorithm each
 * conv op of the train step and of inference runs with (targets/c/conv_algo.c), the
 * direct convolution's FLOPs, which the kernel table counts for Winograd too (so a rate
 * from them is an "effective" one, and may pass the machine's SGEMM rate), and the
 * multiplications the algorithm does: F(2x2, 3x3) makes 16 per 2x2 output tile and
 * input-output channel pair where the direct one makes 36, F(4x4, 3x3) 36 per 4x4 tile
 * where the direct one makes 144. CUDA target: im2col around cuBLAS, implicit GEMMs or
 * cuDNN (targets/cuda/conv.c), and the products' precision. */
#include <stdlib.h>

#include "conv_algo.h"
#include "cuda_emitters.h"
#include "kernels/mlc_conv_tiles.h"
#include "kernels/mlc_winograd_layout.h"
#include "ops.h"
#include "ops_attrs.h"
#include "report.h"

/* "KHxKW sS C->O HoxWo" */
static void geom_text(const Geom *q, char *buf, size_t cap) {
    snprintf(buf, cap, "%lldx%lld s%lld %lld->%lld %lldx%lld", (long long)q->KH, (long long)q->KW, (long long)q->sh,
             (long long)q->C, (long long)q->O, (long long)q->Ho, (long long)q->Wo);
}

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
        geom_text(&q, geom, sizeof geom);
        fprintf(out, "  %-10s %%%-5d %-18s %-28s %-9s %14.0f %14.0f\n", title, id, op_of(n)->name, geom,
                conv_algo_name(algo), direct, done);
    }
}

/* CUDA: im2col around cuBLAS, cuDNN, or implicit GEMMs (targets/cuda/conv.c) with their block
 * tile (mlc_conv_tiles.h: by the GEMM's rows, the input channels for the input gradient,
 * else the output channels), for the weight gradient the ranges its sum is split in, and
 * for the forward op and the input gradient the epilogue they run in their store (or
 * cuDNN's fused call), decided as the emitter decides. */
static void graph_convs_cuda(FILE *out, const ModelIR *m, GraphFn fn, const char *title, const char *products) {
    char *sink_text = NULL;
    size_t sink_len = 0;
    FILE *sink = open_memstream(&sink_text, &sink_len);
    if (!sink) mlc_out_of_memory(0);
    const EmitCtx e = cuda_report_ctx(m, fn, sink);
    const Graph *g = e.g;
    for (int id = 0; id < g->n; id++) {
        const Node *n = &g->nodes[id];
        if (n->op != OP_conv2d && n->op != OP_conv2d_bwd_data && n->op != OP_conv2d_bwd_filter) continue;
        const Geom q = conv_node_geom(g, n);
        char geom[64], algo[320];
        geom_text(&q, geom, sizeof geom);
        const long rows = n->op == OP_conv2d_bwd_data ? (long)(q.C / q.G) : (long)(q.O / q.G);
        const int dnn = cuda_conv_cudnn(&e, id);
        CudaConvEpi ep;
        char steps[240] = "";
        if (cuda_conv_epilogue(&e, id, &ep)) {
            char text[200];
            cuda_conv_epilogue_text(&ep, text, sizeof text);
            snprintf(steps, sizeof steps, ", epilogue %%%d in its %s: %s", e.fp->epilogue[id],
                     dnn && cuda_conv_cudnn_floats(&e, id) ? "fused call" : "store", text);
        }
        if (dnn) snprintf(algo, sizeof algo, "cuDNN (%s)%s", products, steps);
        else if (!cuda_conv_implicit(g, id)) snprintf(algo, sizeof algo, "im2col+cuBLAS (%s)", products);
        else {
            const int s = n->op == OP_conv2d_bwd_filter ? cuda_conv_splits(&q, g->batch) : 1;
            char splits[24] = "";
            if (s > 1) snprintf(splits, sizeof splits, ", %d splits", s);
            /* --conv-algo cudnn leaves a bf16 op whose FP32 result is summed before rounding */
            const char *why =
                g->conv_algo == CONV_ALGO_CUDNN ? ", not cuDNN: its FP32 result is added to before it is rounded" : "";
            snprintf(algo, sizeof algo, "implicit (%s), %dx%d tiles%s%s%s", products, mlc_ig_tile_rows(rows),
                     mlc_ig_tile_cols(rows), splits, steps, why);
        }
        fprintf(out, "  %-10s %%%-5d %-18s %-28s %s\n", title, id, op_of(n)->name, geom, algo);
    }
    fclose(sink);
    free(sink_text);
}

static const char *algo_name(ConvAlgo a) {
    static const char *const names[] = CONV_ALGO_NAMES;
    return names[a];
}

void conv_algo_report(FILE *out, const ModelIR *m) {
    int n = 0;
    for (int id = 0; id < m->train->n; id++) n += m->train->nodes[id].op == OP_conv2d;
    if (!n || (m->target != TARGET_C && m->target != TARGET_CUDA)) return;
    if (m->target == TARGET_CUDA) {
        const char *products = m->bf16 ? "bf16 products" : m->tf32 ? "TF32 products" : "FP32 products";
        fprintf(out,
                "convolutions (--conv-algo %s: im2col+cuBLAS gathers columns for cuBLAS GEMMs, implicit gathers "
                "the tiles of tensor-core GEMMs itself, cudnn calls cuDNN's deterministic algorithms):\n",
                algo_name(m->conv_algo));
        fprintf(out, "  %-10s %-6s %-18s %-28s %s\n", "graph", "node", "op", "kernel, channels, output", "algorithm");
        graph_convs_cuda(out, m, FN_FORWARD_BACKWARD, "train", products);
        graph_convs_cuda(out, m, FN_FORWARD, "inference", products);
        return;
    }
    fprintf(out,
            "convolutions (--conv-algo %s; FLOPs: the direct convolution's, as the kernels count them, and "
            "those of the algorithm's products, transforms left out):\n",
            algo_name(m->conv_algo));
    fprintf(out, "  %-10s %-6s %-18s %-28s %-9s %14s %14s\n", "graph", "node", "op", "kernel, channels, output",
            "algorithm", "direct FLOPs", "product FLOPs");
    graph_convs(out, m->train, "train");
    graph_convs(out, m->eval, "inference");
}
