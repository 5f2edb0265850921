/* toolchain.c - how `mlc build` compiles the CUDA target's source: nvcc, its flags, the
 * kernel library compiled with it (libmlckernels_cuda's sources), and the GPU
 * architectures the binary carries (--cuda-arch).
 *
 * Without --cuda-arch the binary is for the GPUs of the machine that builds it
 * (nvidia-smi's compute capabilities), or, where none is visible, a fat binary for
 * CUDA_ARCH_DEFAULT. The newest architecture of the list is also embedded as PTX, which
 * the driver compiles for GPUs newer than any in the list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cuda_emitters.h"

/* Ampere (A100), Ada (L4, RTX 40xx), Hopper (H100, H200). */
#define CUDA_ARCH_DEFAULT "sm_80,sm_89,sm_90"

int cuda_arch_parse(const char *spec, int *cc, int max) {
    int n = 0;
    for (const char *p = spec;;) {
        if (strncmp(p, "sm_", 3)) return -1;
        p += 3;
        int v = 0, digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++) v = v * 10 + (*p - '0');
        if (digits < 2 || digits > 3 || v < 50 || n == max) return -1;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= cc[i] == v;
        if (!seen) cc[n++] = v;
        if (!*p) return n;
        if (*p++ != ',') return -1;
    }
}

int cuda_arch_check(const char *spec, int oldest) {
    int cc[16], n = cuda_arch_parse(spec, cc, 16);
    if (n <= 0) {
        fprintf(stderr,
                "mlc: error: --cuda-arch: expected sm_XY or a list like sm_80,sm_90 (XY: the GPU's compute "
                "capability), found '%s'\n",
                spec);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (cc[i] < oldest) {
            fprintf(stderr,
                    "mlc: error: --cuda-arch: sm_%d is older than the sm_80 that the implicit-GEMM convolutions "
                    "(--conv-algo implicit, and cudnn's fallback) are built for\n",
                    cc[i]);
            return -1;
        }
    return 0;
}

/* The compute capabilities of the visible GPUs ("9.0" -> 90), as a --cuda-arch list in
 * buf; 0 when there is no GPU or no nvidia-smi. */
static int detect(char *buf, size_t cap) {
    FILE *p = popen("nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null", "r");
    if (!p) return 0;
    char line[64];
    size_t used = 0;
    buf[0] = 0;
    while (fgets(line, sizeof line, p)) {
        int major, minor;
        if (sscanf(line, "%d.%d", &major, &minor) != 2 || major < 1 || minor < 0 || minor > 9) continue;
        char item[16];
        snprintf(item, sizeof item, "sm_%d%d", major, minor);
        if (strstr(buf, item) || used + strlen(item) + 2 > cap) continue;
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "," : "", item);
    }
    int st = pclose(p);
    return st == 0 && used > 0;
}

static int cuda_arch_flags(Arena *a, const char *arch, const char **argv, int n, int max) {
    char found[256];
    if (!arch) arch = detect(found, sizeof found) ? found : CUDA_ARCH_DEFAULT;
    if (cuda_arch_check(arch, 0)) return -1;
    int cc[16];
    int k = cuda_arch_parse(arch, cc, 16);
    if (n + k > max) mlc_die("too many --cuda-arch entries");
    int newest = 0;
    for (int i = 0; i < k; i++)
        if (cc[i] > cc[newest]) newest = i;
    for (int i = 0; i < k; i++)
        argv[n++] = arena_printf(
            a, i == newest ? "-gencode=arch=compute_%d,code=[sm_%d,compute_%d]" : "-gencode=arch=compute_%d,code=sm_%d",
            cc[i], cc[i], cc[i]);
    return n;
}

/* nvcc from $CUDA_HOME/bin, else the toolkit's usual home (often not on PATH), else PATH. */
static void find_nvcc(char *buf, size_t cap) {
    const char *home = getenv("CUDA_HOME");
    snprintf(buf, cap, "%s/bin/nvcc", home && *home ? home : "/usr/local/cuda");
    struct stat st;
    if (stat(buf, &st)) snprintf(buf, cap, "nvcc");
}

/* The model runs on the GPU alone, so no OpenMP. nvcc goes by the extensions: the .cu is
 * CUDA C++, the trainer's main() is C for the host compiler. The runtime's data loader
 * runs in its own thread. */
static const char *const flags[] = {"-O3", "-std=c++17", NULL};
static const char *const libs[] = {"-lcublasLt", "-lcublas", "-lz", "-lm", "-Xcompiler=-pthread", NULL};

/* libmlckernels_cuda (runtime/kernels/mlc_kernels_cuda.h), compiled with each model: one
 * fat binary for the architectures of its --cuda-arch, whatever the library was built
 * for by meson. */
static const char *const kernel_srcs[] = {"kernels/cuda/conv.cu",
                                          "kernels/cuda/conv_implicit.cu",
                                          "kernels/cuda/pool.cu",
                                          "kernels/cuda/norm.cu",
                                          "kernels/cuda/graph.cu",
                                          "kernels/cuda/gemm_lt.cu",
                                          NULL};

/* --conv-algo cudnn: the launchers over cuDNN, and cuDNN (cuda_uses_cudnn) */
static void cuda_model_extras(const ModelIR *m, const char **src, const char **lib) {
    const int dnn = cuda_uses_cudnn(m);
    *src = dnn ? "kernels/cuda/conv_cudnn.cu" : NULL;
    *lib = dnn ? "-lcudnn" : NULL;
}

const TargetBuild cuda_build = {.compiler = find_nvcc,
                                .model_extras = cuda_model_extras,
                                .flags = flags,
                                .libs = libs,
                                .kernel_srcs = kernel_srcs,
                                .arch_flags = cuda_arch_flags,
                                .arch_check = cuda_arch_check};
