/* mlc_bf16.h - rounding a float to bfloat16 (1 sign, 8 exponent, 7 mantissa bits) and
 * back, for `--precision bf16` (compiler/passes/precision.c): the value a bf16 tensor
 * would hold, kept in a float. Defined once for the generated C (through mlc_kernels.h)
 * and the CUDA device code (the emitter pastes this file, as it does mlc_philox.h), so
 * both targets round to the same bits. Plain C without includes; __host__ __device__
 * under nvcc and NVRTC.
 *
 * Round to nearest, ties to even, as __float2bfloat16_rn and PyTorch's .to(bfloat16)
 * do: finite values past the largest bf16 (about 3.39e38) become infinities, infinities
 * stay, NaNs stay NaN (made quiet: a signalling NaN's payload could round to infinity). */
#ifndef MLC_BF16_H
#define MLC_BF16_H

#ifdef __CUDACC__
#define MLC_BF16_FN static __host__ __device__ __forceinline__ __attribute__((unused))
#else
#define MLC_BF16_FN static inline __attribute__((unused))
#endif

MLC_BF16_FN float mlc_round_bf16(float x) {
    union {
        float f;
        unsigned u;
    } v;
    v.f = x;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) { /* NaN: keep it a NaN whatever its low bits */
        v.u = (v.u | 0x00400000u) & 0xffff0000u;
        return v.f;
    }
    /* adding 0x7fff rounds up past halfway; the kept part's lowest bit breaks the tie */
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    v.u &= 0xffff0000u;
    return v.f;
}

#ifdef __cplusplus
/* A bfloat16 in memory: the CUDA target stores a tensor of --precision bf16's rounded
 * values in 2 bytes each where every kernel reading it takes this type (the memory plan
 * decides which: compiler/targets/cuda/bf16_storage.c). Read, it is the float it holds;
 * assigned a float, it holds that float rounded (mlc_round_bf16; the values stored are
 * rounded already, so nothing changes). No constructor from float, so that `c ? x[i] :
 * 0.0f` has one reading: the float. cuBLAS reads arrays of it as CUDA_R_16BF. */
#ifdef __CUDACC__
#define MLC_BF16_MEMBER __host__ __device__ __forceinline__
#else
#define MLC_BF16_MEMBER inline
#endif
struct mlc_bf16 {
    unsigned short bits;
    MLC_BF16_MEMBER operator float() const {
        union {
            unsigned u;
            float f;
        } v;
        v.u = (unsigned)bits << 16;
        return v.f;
    }
    MLC_BF16_MEMBER mlc_bf16 &operator=(float x) {
        union {
            float f;
            unsigned u;
        } v;
        v.f = mlc_round_bf16(x);
        bits = (unsigned short)(v.u >> 16);
        return *this;
    }
};
#endif

#endif
