/* mlc_conv_tiles.h - what the CUDA target's implicit-GEMM convolutions (runtime/kernels/
 * cuda/conv_implicit.cu, --conv-algo implicit) and the compiler (compiler/targets/cuda/
 * conv.c) must agree on: the block tile, which the kernels launch with and the compiler
 * counts blocks by (how many ranges a weight gradient's sum is split in), and the steps
 * of an epilogue, which the compiler writes and the kernels run.
 *
 * A block computes a tile of the GEMM's result with 4 warps: the smallest of 16, 32 and 64
 * rows that holds M (a layer of 16 or 32 channels then multiplies no rows of zeros), by
 * 128 columns (16 and 32 rows) or 64 (64 rows). Plain C, header-only. */
#ifndef MLC_CONV_TILES_H
#define MLC_CONV_TILES_H

static inline int mlc_ig_tile_rows(long M) { return M <= 16 ? 16 : M <= 32 ? 32 : 64; }
static inline int mlc_ig_tile_cols(long M) { return mlc_ig_tile_rows(M) == 64 ? 64 : 128; }

/* The epilogue of the forward op and of the input gradient: steps done in order on each
 * result in the kernel's store, before it reaches the output (NULL or n = 0: none). It is
 * the elementwise group the compiler fused after the op, when that group is a chain of
 * these steps from the op's value: that value then never reaches memory, and the group
 * has no kernel of its own. A step works on v, the result, or (q = 1) on q, a value per
 * channel that earlier steps build from vectors before a step of v uses it (folded batch
 * norm's shift, bias - mean * scale). Operand p: per_channel, one float per channel of the
 * output (axis 1), element c for channel c; else a tensor of the output's shape and
 * layout, read at the element being stored (it may be the output itself); NULL in a
 * binary step of v: q. MUL_STEP is a ReLU's backward: times 1 where p (the ReLU's input
 * or output) is above 0, else times 0. */
enum {
    MLC_EPI_ADD,        /* r + p */
    MLC_EPI_SUB,        /* r - p */
    MLC_EPI_RSUB,       /* p - r */
    MLC_EPI_MUL,        /* r * p */
    MLC_EPI_MUL_STEP,   /* r * (p > 0 ? 1 : 0) */
    MLC_EPI_RELU,       /* r > 0 ? r : 0 */
    MLC_EPI_ROUND_BF16, /* mlc_round_bf16(r) */
    MLC_EPI_LOAD        /* p (q only) */
};
enum { MLC_EPI_MAX = 8 };
typedef struct mlc_conv_epi_step {
    int op;          /* what the step does to r, the register it works on: v, or q */
    int q;           /* 1: r is q */
    int per_channel; /* p holds one float per channel */
    const float *p;  /* the operand of a binary step and LOAD; NULL: q, or none */
} mlc_conv_epi_step;
typedef struct mlc_conv_epilogue {
    int n;
    mlc_conv_epi_step step[MLC_EPI_MAX];
} mlc_conv_epilogue;

/* The form of epilogue cuDNN fuses into a forward convolution (--conv-algo cudnn,
 * cudnnConvolutionBiasActivationForward: y = act(conv + z + bias)): steps on v alone, one
 * per-channel ADD (the bias), at most one ADD of a tensor of the output's shape (z), in
 * either order, then at most one RELU, last. Fed the steps in order from
 * mlc_conv_epi_cudnn_start(); the epilogue has the form when ok is 1 and bias >= 0 at the
 * end. bias, z: the steps' indices (z -1: none). */
typedef struct mlc_conv_epi_cudnn {
    int ok, bias, z, relu;
} mlc_conv_epi_cudnn;
static inline mlc_conv_epi_cudnn mlc_conv_epi_cudnn_start(void) {
    const mlc_conv_epi_cudnn f = {1, -1, -1, 0};
    return f;
}
static inline void mlc_conv_epi_cudnn_step(mlc_conv_epi_cudnn *f, int k, int op, int q, int per_channel) {
    if (f->relu || q) f->ok = 0; /* nothing after the activation; no q */
    else if (op == MLC_EPI_ADD && per_channel && f->bias < 0) f->bias = k;
    else if (op == MLC_EPI_ADD && !per_channel && f->z < 0) f->z = k;
    else if (op == MLC_EPI_RELU) f->relu = 1;
    else f->ok = 0;
}

#endif
