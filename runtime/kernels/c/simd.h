/* simd.h - internal to the kernel library: the vectors the convolution and norm kernels
 * are written with, at the width chosen when the library is compiled, and the short row
 * copies they are built from. Static inline: they only pay off inlined into the kernels'
 * loops.
 *
 * The width, MLC_VW floats: 8 when compiled for AVX, AVX2 or AVX-512F, 4 otherwise (SSE,
 * NEON, anything GCC's vector extensions map); -DMLC_VEC_WIDTH=4, 8 or 16 overrides it
 * (meson's -Dvec_width). 8 and not 16 with AVX-512F, by measurement: on an AVX-512 Zen 4
 * (bench/results/vector_width.md) 16 wide made resnet's train step 1.18x and
 * resnet20_cifar's 1.23x as long. Such a core does a 512-bit FMA as two 256-bit halves,
 * so the wider vector adds no arithmetic, while its segments of 16 output columns or 32
 * output channels run half empty on the 7- to 16-wide rows and 16-channel layers of these
 * networks. A width the instruction set lacks is emulated by the compiler (16 on AVX2: a
 * pair of registers per vector), with the same arithmetic, so every width can be built
 * and tested on one machine. Results depend on the width (lanes are summed in their own
 * order), never on the thread count. */
#ifndef MLC_KERNELS_SIMD_H
#define MLC_KERNELS_SIMD_H

#include <string.h>
#if defined(__AVX__) || defined(__FMA__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#define MLC_INLINE static inline __attribute__((unused))

#ifndef MLC_VEC_WIDTH
#if defined(__AVX__)
#define MLC_VEC_WIDTH 8
#else
#define MLC_VEC_WIDTH 4
#endif
#endif
#if MLC_VEC_WIDTH != 4 && MLC_VEC_WIDTH != 8 && MLC_VEC_WIDTH != 16
#error "MLC_VEC_WIDTH must be 4, 8 or 16"
#endif
#define MLC_VW MLC_VEC_WIDTH

/* MLC_VW-float vectors: mlc_vf, loaded and stored unaligned with MLC_LD / MLC_ST */
typedef float mlc_vf __attribute__((vector_size(4 * MLC_VW)));
typedef float mlc_vfu __attribute__((vector_size(4 * MLC_VW), aligned(4), __may_alias__));
/* the names from when the kernels were 8 wide, kept for code written against them */
typedef mlc_vf mlc_v8;
typedef mlc_vfu mlc_v8u;
#define MLC_LD(p) (*(const mlc_vfu *)(const void *)(p))
#define MLC_ST(p, v) (*(mlc_vfu *)(void *)(p) = (v))
/* s in every lane. Written s - 0, not 0 + s: s - (+0) is s for every s, so GCC emits a bare
 * broadcast (a memory operand of the FMA); 0 + s turns -0 into +0, so it must really add,
 * a scalar add ahead of every broadcast in the GEMM loops (40 % of resnet's step). */
#define MLC_BC(s) ((float)(s) - (mlc_vf){0})

/* a*b + c rounded once, as the FMA units of the machines the width is meant for do it
 * (so an emulated width gives their bits); a*b + c rounded twice without FMA */
#if MLC_VW == 16 && defined(__AVX512F__)
#define MLC_FMA(a, b, c) ((mlc_vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#elif MLC_VW == 16 && defined(__FMA__)
/* always inlined, so the ABI GCC warns about (64-byte vectors passed without AVX-512)
 * never applies */
#pragma GCC diagnostic ignored "-Wpsabi"
MLC_INLINE mlc_vf mlc_fma_pairs(mlc_vf a, mlc_vf b, mlc_vf c) {
    __m256 x[2], y[2], z[2];
    memcpy(x, &a, sizeof x), memcpy(y, &b, sizeof y), memcpy(z, &c, sizeof z);
    z[0] = _mm256_fmadd_ps(x[0], y[0], z[0]), z[1] = _mm256_fmadd_ps(x[1], y[1], z[1]);
    memcpy(&c, z, sizeof z);
    return c;
}
#define MLC_FMA(a, b, c) mlc_fma_pairs((a), (b), (c))
#elif MLC_VW == 8 && defined(__FMA__)
#define MLC_FMA(a, b, c) ((mlc_vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#elif MLC_VW == 4 && defined(__FMA__)
#define MLC_FMA(a, b, c) ((mlc_vf)_mm_fmadd_ps((__m128)(a), (__m128)(b), (__m128)(c)))
#else
#define MLC_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* The sum of a vector's lanes, in a fixed order: adjacent pairs, then pairs of pairs */
MLC_INLINE float mlc_hsum(const mlc_vf *v) {
    float t[MLC_VW];
    memcpy(t, v, sizeof t);
    for (int n = MLC_VW; n > 1; n /= 2)
        for (int i = 0; i < n / 2; i++) t[i] = t[2 * i] + t[2 * i + 1];
    return t[0];
}

/* Stores the first n lanes of v at p (n = MLC_VW: all of them) */
#define MLC_STN(p, v, n)                                       \
    do {                                                       \
        if ((n) == MLC_VW) MLC_ST((p), (v));                   \
        else {                                                 \
            float t_[MLC_VW];                                  \
            MLC_ST(t_, (v));                                   \
            for (int i_ = 0; i_ < (n); i_++) (p)[i_] = t_[i_]; \
        }                                                      \
    } while (0)

/* 8-float vectors whatever MLC_VW is: for moving data (row copies, transposes, gathers),
 * where the width changes no result, and for the attention kernels, written for 8. */
typedef float mlc_f8 __attribute__((vector_size(32)));
typedef float mlc_f8u __attribute__((vector_size(32), aligned(4), __may_alias__));
#define MLC_LD8(p) (*(const mlc_f8u *)(const void *)(p))
#define MLC_ST8(p, v) (*(mlc_f8u *)(void *)(p) = (v))
#define MLC_BC8(s) ((float)(s) - (mlc_f8){0}) /* s - 0: see MLC_BC */
#if defined(__FMA__) && defined(__AVX__)
#define MLC_FMA8(a, b, c) ((mlc_f8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#else
#define MLC_FMA8(a, b, c) ((a) * (b) + (c))
#endif

/* The sum of an 8-float vector's lanes, in the order of mlc_hsum */
MLC_INLINE float mlc_hsum8(const mlc_f8 *v) {
    float t[8];
    memcpy(t, v, sizeof t);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

/* Hides the value of an index from the optimiser: GCC turns the short copy and zeroing
 * loops below into memcpy / memset calls otherwise, which cost more than the loops for
 * image rows of 8 to 32 floats. It emits no instruction. */
#if defined(__GNUC__) || defined(__clang__)
#define MLC_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define MLC_OPAQUE(v) ((void)0)
#endif

/* d[0..n) = s[0..n) for the short rows of images: inline, no library call; a row of 8
 * or more ends with the 8 floats before its end (some copied twice), not a scalar loop */
MLC_INLINE void mlc_copy_row(float *d, const float *s, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        MLC_OPAQUE(i);
        MLC_ST8(d + i, MLC_LD8(s + i));
    }
    if (i == n) return;
    if (n >= 8) {
        MLC_ST8(d + n - 8, MLC_LD8(s + n - 8));
        return;
    }
    for (; i < n; i++) d[i] = s[i];
}

/* d[0..n) = 0 in whole 8-float vectors, so up to 7 floats past d + n are zeroed too: for
 * padding rows written in address order, where what follows is written afterwards. The
 * border loops a float at a time cost more than copying a 32-float row. */
MLC_INLINE void mlc_zero_spill(float *d, long n) {
    for (long i = 0; i < n; i += 8) {
        MLC_OPAQUE(i);
        MLC_ST8(d + i, MLC_BC8(0.0f));
    }
}

/* Asks for 64-byte lines l0 <= l < l1 from p on: the next sample's data, fetched from
 * memory while the kernels work on this one (rw: 1 to write them) */
#define MLC_PREFETCH_LINES(p, l0, l1, rw)                                                               \
    do {                                                                                                \
        for (long l_ = (l0); l_ < (l1); l_++) __builtin_prefetch((const char *)(p) + l_ * 64, (rw), 3); \
    } while (0)

MLC_INLINE void mlc_zero_row(float *d, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) MLC_ST8(d + i, MLC_BC8(0.0f));
    for (; i < n; i++) d[i] = 0.0f;
}

/* d[j*ldd + i] = s[i*lds + j] for i, j < 8: an 8x8 transpose in registers where the
 * compiler has __builtin_shufflevector (clang, GCC 12 on), else element by element. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define MLC_SHUF(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
MLC_INLINE void mlc_transpose8(const float *s, long lds, float *d, long ldd) {
    const mlc_f8 r0 = MLC_LD8(s), r1 = MLC_LD8(s + lds), r2 = MLC_LD8(s + 2 * lds), r3 = MLC_LD8(s + 3 * lds);
    const mlc_f8 r4 = MLC_LD8(s + 4 * lds), r5 = MLC_LD8(s + 5 * lds), r6 = MLC_LD8(s + 6 * lds),
                 r7 = MLC_LD8(s + 7 * lds);
    /* pairs of rows interleaved within 4-float halves, then pairs of pairs, then halves */
    const mlc_f8 t0 = MLC_SHUF(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13), t1 = MLC_SHUF(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_f8 t2 = MLC_SHUF(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13), t3 = MLC_SHUF(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_f8 t4 = MLC_SHUF(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13), t5 = MLC_SHUF(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_f8 t6 = MLC_SHUF(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13), t7 = MLC_SHUF(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_f8 u0 = MLC_SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), u1 = MLC_SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_f8 u2 = MLC_SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), u3 = MLC_SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_f8 u4 = MLC_SHUF(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13), u5 = MLC_SHUF(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_f8 u6 = MLC_SHUF(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13), u7 = MLC_SHUF(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
    MLC_ST8(d, MLC_SHUF(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST8(d + ldd, MLC_SHUF(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST8(d + 2 * ldd, MLC_SHUF(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST8(d + 3 * ldd, MLC_SHUF(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST8(d + 4 * ldd, MLC_SHUF(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST8(d + 5 * ldd, MLC_SHUF(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST8(d + 6 * ldd, MLC_SHUF(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST8(d + 7 * ldd, MLC_SHUF(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15));
}
#else
MLC_INLINE void mlc_transpose8(const float *s, long lds, float *d, long ldd) {
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) d[j * ldd + i] = s[i * lds + j];
}
#endif

/* d[i] = s[2i] for i < n: a stride-2 phase of an image row, which reads s[0 .. 2n-2] only.
 * Element by element this was a tenth of the strided convolutions' time; here two loads
 * and a shuffle give 8, and the last 8 (n >= 9) are the odd lanes of the 16 floats that
 * end at s[2n-2], so nothing past the row is read. */
MLC_INLINE void mlc_gather2_row(float *d, const float *s, long n) {
    long i = 0;
#ifdef MLC_SHUF
    for (; i + 9 <= n; i += 8)
        MLC_ST8(d + i, MLC_SHUF(MLC_LD8(s + 2 * i), MLC_LD8(s + 2 * i + 8), 0, 2, 4, 6, 8, 10, 12, 14));
    if (i < n && n >= 9) {
        const long t = n - 8;
        MLC_ST8(d + t, MLC_SHUF(MLC_LD8(s + 2 * t - 1), MLC_LD8(s + 2 * t + 7), 1, 3, 5, 7, 9, 11, 13, 15));
        return;
    }
#endif
    for (; i < n; i++) d[i] = s[2 * i];
}

/* d[q][i] = s[4i + q] for q < 4 (d[q] = d0 + q*ld) and i < n, where every s[k] with k < 4n
 * may be read: the four phases of a padded row, 8 at a time from 32 consecutive floats
 * (two rounds of shuffles), then 4 from 16, the rest element by element. */
typedef float mlc_f4 __attribute__((vector_size(16)));
typedef float mlc_f4u __attribute__((vector_size(16), aligned(4), __may_alias__));
MLC_INLINE void mlc_split4_row(float *d0, long ld, const float *s, long n) {
    long i = 0;
#ifdef MLC_SHUF
    for (; i + 8 <= n; i += 8) {
        const float *p = s + 4 * i;
        const mlc_f8 v0 = MLC_LD8(p), v1 = MLC_LD8(p + 8), v2 = MLC_LD8(p + 16), v3 = MLC_LD8(p + 24);
        const mlc_f8 t0 = MLC_SHUF(v0, v1, 0, 4, 8, 12, 1, 5, 9, 13), t1 = MLC_SHUF(v0, v1, 2, 6, 10, 14, 3, 7, 11, 15);
        const mlc_f8 t2 = MLC_SHUF(v2, v3, 0, 4, 8, 12, 1, 5, 9, 13), t3 = MLC_SHUF(v2, v3, 2, 6, 10, 14, 3, 7, 11, 15);
        MLC_ST8(d0 + i, MLC_SHUF(t0, t2, 0, 1, 2, 3, 8, 9, 10, 11));
        MLC_ST8(d0 + ld + i, MLC_SHUF(t0, t2, 4, 5, 6, 7, 12, 13, 14, 15));
        MLC_ST8(d0 + 2 * ld + i, MLC_SHUF(t1, t3, 0, 1, 2, 3, 8, 9, 10, 11));
        MLC_ST8(d0 + 3 * ld + i, MLC_SHUF(t1, t3, 4, 5, 6, 7, 12, 13, 14, 15));
    }
    for (; i + 4 <= n; i += 4) { /* a 4x4 transpose */
        const float *p = s + 4 * i;
        const mlc_f4 v0 = *(const mlc_f4u *)(const void *)p, v1 = *(const mlc_f4u *)(const void *)(p + 4);
        const mlc_f4 v2 = *(const mlc_f4u *)(const void *)(p + 8), v3 = *(const mlc_f4u *)(const void *)(p + 12);
        const mlc_f4 t0 = MLC_SHUF(v0, v1, 0, 4, 1, 5), t1 = MLC_SHUF(v0, v1, 2, 6, 3, 7);
        const mlc_f4 t2 = MLC_SHUF(v2, v3, 0, 4, 1, 5), t3 = MLC_SHUF(v2, v3, 2, 6, 3, 7);
        *(mlc_f4u *)(void *)(d0 + i) = MLC_SHUF(t0, t2, 0, 1, 4, 5);
        *(mlc_f4u *)(void *)(d0 + ld + i) = MLC_SHUF(t0, t2, 2, 3, 6, 7);
        *(mlc_f4u *)(void *)(d0 + 2 * ld + i) = MLC_SHUF(t1, t3, 0, 1, 4, 5);
        *(mlc_f4u *)(void *)(d0 + 3 * ld + i) = MLC_SHUF(t1, t3, 2, 3, 6, 7);
    }
#endif
    for (; i < n; i++)
        for (int q = 0; q < 4; q++) d0[q * ld + i] = s[4 * i + q];
}

#endif
