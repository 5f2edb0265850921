/* mlc_geom.h - what the compiler and the kernels must agree on about a convolution and a
 * pooling window: their geometry, and how a C convolution's work and scratch are cut.
 * The compiler (compiler/ops/ops_conv.c, ops_pool.c) writes these structs into generated
 * code with designated initialisers; the C kernels (runtime/kernels/c/) and the CUDA
 * kernels (runtime/kernels/cuda/, through mlc_kernels_cuda.h) read them.
 *
 * Plain C with no includes and nothing but types, so that C compilers and nvcc both take
 * it as it is. The layout functions over these types are in mlc_conv_layout.h. */
#ifndef MLC_GEOM_H
#define MLC_GEOM_H

/* A 2-D convolution over NCHW tensors: x [B][C][H][W], w [O][C/G][KH][KW],
 * y [B][O][Ho][Wo], Ho = (H + 2ph - dh(KH-1) - 1) / sh + 1 (likewise Wo). */
typedef struct mlc_conv_geom {
    int C, H, W;                   /* input channels and size */
    int O, KH, KW;                 /* output channels, kernel */
    int sh, sw, ph, pw, dh, dw, G; /* stride, padding, dilation, groups */
    int Ho, Wo;                    /* output size */
} mlc_conv_geom;

/* How one C convolution's work is cut (mlc_conv_plan_for in mlc_conv_layout.h picks the
 * numbers from the geometry, and the same numbers size its workspace): `slots` scratch
 * slots of `slot` floats (one per thread: at most that many threads work on the op; the
 * model makes one per thread of the team it is created under, mlc_scratch_slots), then a
 * part the threads share (mlc_conv_shared_floats).
 *
 * All three ops go through the same vector kernels, without column matrices: each
 * sample's input (for the input gradient: dy) is zero-padded, split into stride phases
 * where the convolution is strided, and the GEMM reads the column matrix's rows in place
 * as shifted views of it. A sample is a piece of work.
 *
 * Every output element is computed by one thread in an order that does not depend on
 * the thread count, so neither do the results: the weight gradient is summed in min(B,
 * red) fixed chunks of samples, one thread each, and the chunks' sums are added in
 * chunk order. */
typedef struct mlc_conv_plan {
    int spt;   /* weight gradient: samples per step; Winograd F(4x4, 3x3): samples per piece of work */
    int slots; /* scratch slots */
    int red;   /* weight gradient: at most this many chunks */
    long slot; /* floats per slot */
} mlc_conv_plan;

/* Max or average pooling over NCHW planes: x [planes][H][W] -> y [planes][Ho][Wo], a
 * KH x KW window every (sh, sw), the plane padded by (ph, pw). */
typedef struct mlc_pool_geom {
    int H, W, KH, KW, sh, sw, ph, pw, Ho, Wo;
} mlc_pool_geom;

#endif
