/* tests/compiler/gpu/host_cuda/cuda_bf16.h - CUDA's bfloat16 type as the CPU stand-in plays
 * it (cuda_runtime.h): what runtime/kernels/cuda/ uses of it. */
#ifndef MLC_HOST_CUDA_BF16_H
#define MLC_HOST_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

#include "kernels/mlc_bf16.h"

struct __nv_bfloat16 {
    uint16_t x;
};

/* round to nearest, ties to even: mlc_round_bf16's rounding, as the device's */
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    const float r = mlc_round_bf16(f);
    uint32_t u;
    memcpy(&u, &r, sizeof u);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}

static inline float __bfloat162float(__nv_bfloat16 h) {
    const uint32_t u = (uint32_t)h.x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
