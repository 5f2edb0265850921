/* toolchain.c - how `mlc build` compiles the C target's source: the system C compiler,
 * for the machine it runs on, with OpenMP and OpenBLAS. */
#include <stdio.h>

#include "c_emitters.h"

static void find_cc(char *buf, size_t cap) { snprintf(buf, cap, "cc"); }

/* MLC_C_KERNELS: the trainer's main hands the kernel library's vector width to --version.
 * -fno-math-errno: sqrtf/expf need no errno, which lets their loops vectorize.
 * -fno-trapping-math: no code relies on floating-point traps, and without it GCC will not
 * vectorize a loop like a ReLU's backward, (a + b) * (x > 0 ? 1 : 0). Neither changes a
 * result. */
static const char *const flags[] = {"-std=c11",
                                    "-O3",
                                    "-march=native",
                                    "-fno-math-errno",
                                    "-fno-trapping-math",
                                    "-fopenmp",
                                    "-D_POSIX_C_SOURCE=200809L",
                                    "-DMLC_C_KERNELS",
                                    NULL};
/* The C kernels (GEMM, conv, pooling, batch norm: runtime/kernels/), which call OpenBLAS;
 * the runtime's data loader runs in its own thread. */
static const char *const pre_libs[] = {"-lmlckernels", NULL};
static const char *const libs[] = {"-lopenblas", "-lz", "-lm", "-pthread", NULL};

const TargetBuild c_build = {.compiler = find_cc, .flags = flags, .pre_libs = pre_libs, .libs = libs};

/* What runtime/kernels/c/simd.h picks under -march=native here: the library mlc build
 * links is compiled with the flags above on the machine that builds it, at the width
 * meson's -Dvec_width gives both (MLC_VEC_WIDTH) or else at simd.h's choice for the
 * instruction set: 8 floats with AVX and up (AVX-512F too), 4 below. */
int c_native_vec_width(const char **isa) {
    int vw = 4;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) *isa = "AVX-512F", vw = 8;
    else if (__builtin_cpu_supports("avx2")) *isa = "AVX2", vw = 8;
    else if (__builtin_cpu_supports("avx")) *isa = "AVX", vw = 8;
    else *isa = "SSE2";
#elif defined(__ARM_NEON)
    *isa = "NEON";
#else
    *isa = "generic";
#endif
#ifdef MLC_VEC_WIDTH
    vw = MLC_VEC_WIDTH;
#endif
    return vw;
}
