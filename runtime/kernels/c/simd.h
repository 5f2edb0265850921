/* simd.h - internal to the kernel library: 8-float vectors and the short row copies the
 * convolution and batch-norm kernels are built from. Static inline: they only pay off
 * inlined into the kernels' loops. */
#ifndef MLC_KERNELS_SIMD_H
#define MLC_KERNELS_SIMD_H

#include <string.h>
#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
#endif

#define MLC_INLINE static inline __attribute__((unused))

/* 8-float vectors (GCC vector extensions: one AVX register with -march=native, a pair of
 * SSE registers without), for the convolution kernels and batch norm's sums. */
typedef float mlc_v8 __attribute__((vector_size(32)));
typedef float mlc_v8u __attribute__((vector_size(32), aligned(4), __may_alias__));
#define MLC_LD(p) (*(const mlc_v8u *)(const void *)(p))
#define MLC_ST(p, v) (*(mlc_v8u *)(void *)(p) = (v))
#define MLC_BC(s) ((mlc_v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#if defined(__FMA__) && defined(__AVX__)
#define MLC_FMA(a, b, c) ((mlc_v8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#else
#define MLC_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* The sum of a vector's lanes, in a fixed order */
MLC_INLINE float mlc_hsum8(const mlc_v8 *v) {
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
        MLC_ST(d + i, MLC_LD(s + i));
    }
    if (i == n) return;
    if (n >= 8) {
        MLC_ST(d + n - 8, MLC_LD(s + n - 8));
        return;
    }
    for (; i < n; i++) d[i] = s[i];
}

/* d[0..n) = 0 in whole vectors, so up to 7 floats past d + n are zeroed too: for padding
 * rows written in address order, where what follows is written afterwards. The border
 * loops a float at a time cost more than copying a 32-float row. */
MLC_INLINE void mlc_zero_spill(float *d, long n) {
    for (long i = 0; i < n; i += 8) {
        MLC_OPAQUE(i);
        MLC_ST(d + i, MLC_BC(0.0f));
    }
}

/* Asks for 64-byte lines l0 <= l < l1 from p on: the next sample's data, fetched from
 * memory while the kernels work on this one (rw: 1 to write them) */
#define MLC_PREFETCH_LINES(p, l0, l1, rw)                                                                      \
    do {                                                                                                       \
        for (long l_ = (l0); l_ < (l1); l_++) __builtin_prefetch((const char *)(p) + l_ * 64, (rw), 3);        \
    } while (0)

MLC_INLINE void mlc_zero_row(float *d, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) MLC_ST(d + i, MLC_BC(0.0f));
    for (; i < n; i++) d[i] = 0.0f;
}

/* d[j*ldd + i] = s[i*lds + j] for i, j < 8: an 8x8 transpose in registers where the
 * compiler has __builtin_shufflevector (clang, GCC 12 on), else element by element. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define MLC_SHUF(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
MLC_INLINE void mlc_transpose8(const float *s, long lds, float *d, long ldd) {
    const mlc_v8 r0 = MLC_LD(s), r1 = MLC_LD(s + lds), r2 = MLC_LD(s + 2 * lds), r3 = MLC_LD(s + 3 * lds);
    const mlc_v8 r4 = MLC_LD(s + 4 * lds), r5 = MLC_LD(s + 5 * lds), r6 = MLC_LD(s + 6 * lds), r7 = MLC_LD(s + 7 * lds);
    /* pairs of rows interleaved within 4-float halves, then pairs of pairs, then halves */
    const mlc_v8 t0 = MLC_SHUF(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13), t1 = MLC_SHUF(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t2 = MLC_SHUF(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13), t3 = MLC_SHUF(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t4 = MLC_SHUF(r4, r5, 0, 8, 1, 9, 4, 12, 5, 13), t5 = MLC_SHUF(r4, r5, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 t6 = MLC_SHUF(r6, r7, 0, 8, 1, 9, 4, 12, 5, 13), t7 = MLC_SHUF(r6, r7, 2, 10, 3, 11, 6, 14, 7, 15);
    const mlc_v8 u0 = MLC_SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), u1 = MLC_SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u2 = MLC_SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), u3 = MLC_SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u4 = MLC_SHUF(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13), u5 = MLC_SHUF(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
    const mlc_v8 u6 = MLC_SHUF(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13), u7 = MLC_SHUF(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
    MLC_ST(d, MLC_SHUF(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + ldd, MLC_SHUF(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 2 * ldd, MLC_SHUF(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 3 * ldd, MLC_SHUF(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11));
    MLC_ST(d + 4 * ldd, MLC_SHUF(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 5 * ldd, MLC_SHUF(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 6 * ldd, MLC_SHUF(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15));
    MLC_ST(d + 7 * ldd, MLC_SHUF(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15));
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
        MLC_ST(d + i, MLC_SHUF(MLC_LD(s + 2 * i), MLC_LD(s + 2 * i + 8), 0, 2, 4, 6, 8, 10, 12, 14));
    if (i < n && n >= 9) {
        const long t = n - 8;
        MLC_ST(d + t, MLC_SHUF(MLC_LD(s + 2 * t - 1), MLC_LD(s + 2 * t + 7), 1, 3, 5, 7, 9, 11, 13, 15));
        return;
    }
#endif
    for (; i < n; i++) d[i] = s[2 * i];
}

/* Stores the first n lanes of v at p (n = 8: all of them) */
#define MLC_STN(p, v, n)                                                                                       \
    do {                                                                                                       \
        if ((n) == 8)                                                                                          \
            MLC_ST((p), (v));                                                                                  \
        else {                                                                                                 \
            float t_[8];                                                                                       \
            MLC_ST(t_, (v));                                                                                   \
            for (int i_ = 0; i_ < (n); i_++) (p)[i_] = t_[i_];                                                 \
        }                                                                                                      \
    } while (0)

#endif
