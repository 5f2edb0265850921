/* mlc_conv_tiles.h - the block tile of the CUDA target's implicit-GEMM convolutions
 * (runtime/kernels/cuda/conv_implicit.cu, --conv-algo implicit), which the kernels launch
 * with and the compiler counts blocks by (compiler/targets/cuda/conv.c: how many ranges a
 * weight gradient's sum is split in), so that the two agree.
 *
 * A block computes a tile of the GEMM's result with 4 warps: the smallest of 16, 32 and 64
 * rows that holds M (a layer of 16 or 32 channels then multiplies no rows of zeros), by
 * 128 columns (16 and 32 rows) or 64 (64 rows). Plain C, header-only. */
#ifndef MLC_CONV_TILES_H
#define MLC_CONV_TILES_H

static inline int mlc_ig_tile_rows(long M) { return M <= 16 ? 16 : M <= 32 ? 32 : 64; }
static inline int mlc_ig_tile_cols(long M) { return mlc_ig_tile_rows(M) == 64 ? 64 : 128; }

#endif
