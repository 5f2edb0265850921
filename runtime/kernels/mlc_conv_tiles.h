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
 * has no kernel of its own. Operand p: per_channel, one float per channel of the output
 * (axis 1), element c for channel c; else a tensor of the output's shape and layout, read
 * at the element being stored (it may be the output itself). MUL_STEP is a ReLU's
 * backward: the gradient times 1 where p (the ReLU's input or output) is above 0, else
 * times 0. */
enum { MLC_EPI_ADD, MLC_EPI_SUB, MLC_EPI_RSUB, MLC_EPI_MUL, MLC_EPI_MUL_STEP, MLC_EPI_RELU, MLC_EPI_ROUND_BF16 };
enum { MLC_EPI_MAX = 6 };
typedef struct mlc_conv_epi_step {
    int op;          /* v + p, v - p, p - v, v * p, v * (p > 0 ? 1 : 0); `v > 0 ? v : 0`; mlc_round_bf16(v) */
    int per_channel; /* p holds one float per output channel */
    const float *p;  /* the operand of ADD, SUB, RSUB, MUL and MUL_STEP; NULL for the others */
} mlc_conv_epi_step;
typedef struct mlc_conv_epilogue {
    int n;
    mlc_conv_epi_step step[MLC_EPI_MAX];
} mlc_conv_epilogue;

#endif
