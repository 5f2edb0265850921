/* toolchain.c - how `mlc build` compiles the C target's source: the system C compiler,
 * for the machine it runs on, with OpenMP and OpenBLAS. */
#include <stdio.h>

#include "c_emitters.h"

static void find_cc(char *buf, size_t cap) { snprintf(buf, cap, "cc"); }

/* -fno-math-errno: sqrtf/expf need no errno, which lets their loops vectorize.
 * -fno-trapping-math: no code relies on floating-point traps, and without it GCC will not
 * vectorize a loop like a ReLU's backward, (a + b) * (x > 0 ? 1 : 0). Neither changes a
 * result. */
static const char *const flags[] = {"-std=c11", "-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math",
                                    "-fopenmp", "-D_POSIX_C_SOURCE=200809L", NULL};
/* The C kernels (GEMM, conv, pooling, batch norm: runtime/kernels/), which call OpenBLAS;
 * the runtime's data loader runs in its own thread. */
static const char *const pre_libs[] = {"-lmlckernels", NULL};
static const char *const libs[] = {"-lopenblas", "-lz", "-lm", "-pthread", NULL};

const TargetBuild c_build = {.compiler = find_cc, .flags = flags, .pre_libs = pre_libs, .libs = libs};
