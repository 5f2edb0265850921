/* conv.c - the CUDA target's conv2d and its backward ops: one call into the kernel
 * library's launchers, im2col ones (runtime/kernels/cuda/conv.cu), which take the batch
 * in chunks, or implicit-GEMM ones (conv_implicit.cu, --conv-algo implicit); their
 * scratch. The op's semantics are in ops/ops_conv.c. */
#include <string.h>

#include "cuda_emitters.h"
#include "kernels/mlc_conv_tiles.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* CUDA: the launchers (runtime/kernels/cuda/conv.cu) take the batch in chunks of
 * cuda_chunk samples; a sample needs K * P column floats (none on the direct path: 1x1,
 * stride 1, no padding) and, for the weight gradient, an Og * K slot. A chunk's
 * workspace stays within CUDA_CHUNK_FLOATS, so the workspace does not grow with the
 * batch: a whole batch's columns were the biggest tensor of the CUDA ResNets' arenas
 * (77 MB of resnet20_cifar's 281). Fewer, bigger chunks would launch fewer GEMMs; 8 MiB
 * keeps each GEMM batch big enough to fill the GPU on these networks. */
#define CUDA_CHUNK_FLOATS ((int64_t)1 << 21)

static int64_t cuda_sample_floats(const Geom *q, Op op) {
    int64_t K = q->C / q->G * q->KH * q->KW, P = q->Ho * q->Wo, Og = q->O / q->G;
    int direct = q->KH == 1 && q->KW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 && q->pw == 0;
    return (direct ? 0 : K * P) + (op == OP_conv2d_bwd_filter ? Og * K : 0);
}

static int64_t cuda_chunk(const Geom *q, Op op) {
    int64_t per = cuda_sample_floats(q, op);
    if (per == 0) return (int64_t)1 << 30; /* no workspace: the whole batch at once */
    return CUDA_CHUNK_FLOATS / per > 1 ? CUDA_CHUNK_FLOATS / per : 1;
}

/* --conv-algo implicit (runtime/kernels/cuda/conv_implicit.cu): the weight gradient's sum
 * over K = B*Ho*Wo goes in this many fixed ranges, each into a slot of O*Cg*KH*KW floats,
 * so that its few output tiles (mlc_conv_tiles.h; resnet20_cifar's layers have 1 to 9 per
 * group) still give the GPU IG_SPLIT_BLOCKS blocks (two per SM of an H100); each range
 * keeps at least IG_SPLIT_STEPS of the kernel's 32-deep steps, and the slots stay within
 * the im2col path's CUDA_CHUNK_FLOATS. From the compiled batch size: a run at another
 * size sums in ranges of its own, the same every run at that size. */
enum { IG_STEP = 32, IG_SPLIT_BLOCKS = 264, IG_SPLIT_STEPS = 8, IG_SPLIT_MAX = 64 };

int cuda_conv_splits(const Geom *q, int64_t batch) {
    const int64_t Og = q->O / q->G, N = q->C / q->G * q->KH * q->KW;
    const int64_t rows = mlc_ig_tile_rows(Og), cols = mlc_ig_tile_cols(Og);
    const int64_t tiles = (Og + rows - 1) / rows * ((N + cols - 1) / cols) * q->G;
    const int64_t steps = (batch * q->Ho * q->Wo + IG_STEP - 1) / IG_STEP;
    int64_t s = (IG_SPLIT_BLOCKS + tiles - 1) / tiles;
    if (s > steps / IG_SPLIT_STEPS) s = steps / IG_SPLIT_STEPS;
    if (s > IG_SPLIT_MAX) s = IG_SPLIT_MAX;
    if (s * q->O * N > CUDA_CHUNK_FLOATS) s = CUDA_CHUNK_FLOATS / (q->O * N);
    if (s * q->G > 65535) s = 65535 / q->G; /* the grid's z extent */
    return s > 1 ? (int)s : 1;
}

int cuda_conv_implicit(const Graph *g) { return g->conv_algo == CONV_ALGO_IMPLICIT; }

/* im2col: a chunk's columns and weight-gradient slots (above); implicit: the weight
 * gradient's slots where it splits its sum. */
void ws_conv_cuda(const Graph *g, const Node *n, Workspace *w) {
    Geom q = conv_node_geom(g, n);
    if (cuda_conv_implicit(g)) {
        const int s = n->op == OP_conv2d_bwd_filter ? cuda_conv_splits(&q, g->batch) : 1;
        w->c = s > 1 ? s * q.O * (q.C / q.G * q.KH * q.KW) : 0;
        return;
    }
    int64_t per = cuda_sample_floats(&q, n->op);
    /* + 3: the weight gradient's columns start 16-byte aligned after its slots (conv.cu) */
    w->c = per ? per * cuda_chunk(&q, n->op) + (n->op == OP_conv2d_bwd_filter ? 3 : 0) : 0;
}

/* ---- CUDA emission: one call into the kernel library's launchers: im2col / col2im
 * kernels, strided-batched cuBLAS GEMMs over the samples, per-sample weight-gradient
 * slots summed in sample order (conv.cu); or the implicit GEMMs (conv_implicit.cu) ---- */

void emit_conv_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = conv_node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d            ? "mlc_cuda_conv2d_fwd"
                     : n->op == OP_conv2d_bwd_data ? "mlc_cuda_conv2d_bwd_data"
                                                   : "mlc_cuda_conv2d_bwd_filter";
    /* what the operands hold: floats, or bf16 values, which the GEMMs may multiply on bf16
     * tensor cores */
    const char *mode = cuda_gemm_mode(e, id);
    emit(e, "{");
    e->indent++;
    emit_conv_geom(e, &q);
    if (cuda_conv_implicit(e->g)) {
        /* floats: on the TF32 tensor cores under --tf32, else FP32 FMAs */
        if (!strcmp(mode, "MLC_FP32") && e->g->tf32) mode = "MLC_TF32";
        if (n->op == OP_conv2d_bwd_filter)
            emit(e, "%s_implicit(stream, &geom, B, %s, %s, %s, %s, %d, %s);", fn, emit_buf(e, n->in[0]),
                 emit_buf(e, n->in[1]), emit_buf(e, id), e->ws ? e->ws : "NULL", cuda_conv_splits(&q, e->g->batch),
                 mode);
        else
            emit(e, "%s_implicit(stream, &geom, B, %s, %s, %s, %s);", fn, emit_buf(e, n->in[0]), emit_buf(e, n->in[1]),
                 emit_buf(e, id), mode);
    } else {
        emit(e, "%s(self->cublas, stream, &geom, B, %s, %s, %s, %s, %lld, %s);", fn, emit_buf(e, n->in[0]),
             emit_buf(e, n->in[1]), emit_buf(e, id), e->ws ? e->ws : "NULL", (long long)cuda_chunk(&q, n->op), mode);
    }
    e->indent--;
    emit(e, "}");
    cuda_epilogue(e, id);
}
