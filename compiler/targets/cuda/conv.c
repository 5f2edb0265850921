/* conv.c - the CUDA target's conv2d and its backward ops: one call into the kernel
 * library's launchers (runtime/kernels/cuda/conv.cu), which take the batch in chunks; the
 * chunks' scratch. The op's semantics are in ops/ops_conv.c. */
#include "cuda_emitters.h"
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

/* A chunk's columns and weight-gradient slots (above). */
void ws_conv_cuda(const Graph *g, const Node *n, Workspace *w) {
    Geom q = conv_node_geom(g, n);
    int64_t per = cuda_sample_floats(&q, n->op);
    w->c = per ? per * cuda_chunk(&q, n->op) : 0;
}

/* ---- CUDA emission: one call into the kernel library's launchers (conv.cu):
 * im2col / col2im kernels, strided-batched cuBLAS GEMMs over the samples, per-sample
 * weight-gradient slots summed in sample order ---- */

void emit_conv_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    Geom q = conv_node_geom(e->g, n);
    const char *fn = n->op == OP_conv2d            ? "mlc_cuda_conv2d_fwd"
                     : n->op == OP_conv2d_bwd_data ? "mlc_cuda_conv2d_bwd_data"
                                                   : "mlc_cuda_conv2d_bwd_filter";
    emit(e, "{");
    e->indent++;
    emit_conv_geom(e, &q);
    /* the last argument: what the operands hold (floats, or bf16 values, which the GEMMs may
     * multiply on bf16 tensor cores) */
    emit(e, "%s(self->cublas, stream, &geom, B, %s, %s, %s, %s, %lld, %s);", fn, emit_buf(e, n->in[0]),
         emit_buf(e, n->in[1]), emit_buf(e, id), e->ws ? e->ws : "NULL", (long long)cuda_chunk(&q, n->op),
         cuda_gemm_mode(e, id));
    e->indent--;
    emit(e, "}");
    cuda_epilogue(e, id);
}
