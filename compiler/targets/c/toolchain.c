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
 * links is compiled with the flags above on the machine that builds it. */
int c_native_vec_width(const char **isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return *isa = "AVX-512F", 16;
    if (__builtin_cpu_supports("avx2")) return *isa = "AVX2", 8;
    if (__builtin_cpu_supports("avx")) return *isa = "AVX", 8;
    return *isa = "SSE2", 4;
#elif defined(__ARM_NEON)
    return *isa = "NEON", 4;
#else
    return *isa = "generic", 4;
#endif
}
