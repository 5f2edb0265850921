/* bf16_storage.c - which tensors the CUDA target stores as bfloat16, 2 bytes a value
 * instead of a float's 4 (the memory plan's `half`, compiler/passes/memplan.c).
 *
 * Under --precision bf16 the pass precision.c rounds every product's inputs and outputs
 * (round_bf16): those tensors hold bfloat16 values whatever they are stored in, so
 * storing them in 2 bytes loses nothing and halves their memory and the bytes the
 * kernels move for them. A tensor is stored so when it is a round_bf16 with a buffer of
 * its own that the caller does not read (not an output, not the loss) and every piece of
 * code reading it reads through the type mlc_bf16 (runtime/kernels/mlc_bf16.h):
 *
 *   - a fused group's kernel (emit_cuda.c: elementwise ops, expands, reductions, an
 *     epilogue), which reads x[i] as the float it holds;
 *   - a matmul, or a convolution (the launchers' `bf16` mode MLC_BF16_STORED,
 *     mlc_kernels_cuda.h), when all its float operands are stored so: cuBLAS takes
 *     CUDA_R_16BF operands, but not one of them alongside a CUDA_R_32F one;
 *   - batch norm's sums (norm.cu: x of bn_stats and bn_param_grads) and its input
 *     gradient's kernel;
 *   - attention and its backward ops (templates/cuda_attention.cuh), which load tiles
 *     into shared memory as floats.
 *
 * Any other reader (pooling, a layout op, an embedding, ...) keeps the tensor in floats.
 * The matmul's and convolution's rule ties operands together, so the test runs to a
 * fixed point: a tensor dropped can drop its partner, never the reverse. */
#include "cuda_emitters.h"
#include "ops.h"

/* A product that reads half tensors: every float operand must be one. */
static int product_reads(const Graph *g, const char *half, int r) {
    const Node *n = &g->nodes[r];
    for (int k = 0; k < n->nin; k++)
        if (g->nodes[n->in[k]].dtype == DT_F32 && !half[view_owner(g, n->in[k])]) return 0;
    return 1;
}

/* Whether node r's code can read x, its input, as a half tensor. */
static int reads_half(const Graph *g, const FusionPlan *fp, const char *half, int r, int x) {
    if (fp->dup[r] || fp->root[r] < 0) return 0; /* recomputed elsewhere, or no code */
    const Node *n = &g->nodes[r], *root = &g->nodes[fp->root[r]];
    switch (op_of(root)->kind) {
    case K_EWISE:
    case K_REDUCE:
    case K_SHAPE: return 1; /* a fused group's kernel (an expand's, too) */
    case K_CONTRACT: return product_reads(g, half, r);
    default: break;
    }
    switch (n->op) {
    case OP_conv2d:
    case OP_conv2d_bwd_data:
    case OP_conv2d_bwd_filter: return product_reads(g, half, r);
    /* batch norm: its input gradient is a generated kernel over typed buffers (norm.c); its
     * sums (norm.cu) take x either way, dy as floats */
    case OP_bn_bwd:
    case OP_bn_stats: return 1;
    case OP_bn_param_grads: return view_owner(g, n->in[1]) == x && view_owner(g, n->in[0]) != x;
    /* the device functions take each input's type (templates/cuda_attention.cuh) */
    case OP_attention:
    case OP_attention_stats:
    case OP_attention_bwd_q:
    case OP_attention_bwd_kv: return 1;
    default: return 0;
    }
}

void cuda_bf16_storage(const Graph *g, const FusionPlan *fp, char *half) {
    int n = g->n;
    for (int id = 0; id < n; id++) {
        const Node *nd = &g->nodes[id];
        half[id] = nd->op == OP_round_bf16 && nd->dtype == DT_F32 && !(nd->role & ROLE_GRAD) && fp->root[id] >= 0 &&
                   !fp->inl[id] && !fp->dup[id];
    }
    for (int k = 0; k < g->nout; k++) half[view_owner(g, g->outputs[k])] = 0;
    if (g->loss >= 0) half[view_owner(g, g->loss)] = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int r = 0; r < n; r++) {
            const Node *nd = &g->nodes[r];
            if (nd->op == OP_reshape) continue; /* a view: its readers read the owner */
            for (int k = 0; k < nd->nin; k++) {
                int x = view_owner(g, nd->in[k]);
                if (half[x] && !reads_half(g, fp, half, r, x)) half[x] = 0, changed = 1;
            }
        }
    }
}
