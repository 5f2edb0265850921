/* vec_width.c - which vectors this build of the kernel library uses (mlc_kernels.h):
 * what simd.h chose when it was compiled, for trainers and tests to report and check. */
#include "mlc_kernels.h"
#include "simd.h"

int mlc_kernels_vec_width(void) { return MLC_VW; }

/* The widest registers the compile-time instruction set has, and its name */
#if defined(__AVX512F__)
#define MLC_ISA "AVX-512F"
#define MLC_ISA_FLOATS 16
#elif defined(__AVX2__)
#define MLC_ISA "AVX2"
#define MLC_ISA_FLOATS 8
#elif defined(__AVX__)
#define MLC_ISA "AVX"
#define MLC_ISA_FLOATS 8
#elif defined(__SSE2__)
#define MLC_ISA "SSE2"
#define MLC_ISA_FLOATS 4
#elif defined(__ARM_NEON)
#define MLC_ISA "NEON"
#define MLC_ISA_FLOATS 4
#else
#define MLC_ISA "generic"
#define MLC_ISA_FLOATS 1
#endif

const char *mlc_kernels_isa(void) { return MLC_VW > MLC_ISA_FLOATS ? MLC_ISA " (emulated)" : MLC_ISA; }
