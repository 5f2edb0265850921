/* mlc_math.h - exp and erf for the generated C's elementwise loops, written so that a
 * loop calling them vectorizes: straight-line float and integer arithmetic, selects in
 * place of branches, no libm call (GCC does not vectorize expf or erff without
 * -ffast-math). GELU's forward (erf) and backward (erf and exp), the largest elementwise
 * work of the transformer samples, run 8 or 16 lanes wide with them.
 *
 * Accuracy against the correctly rounded value (tests/kernels/test_math.c; a sweep of
 * every 7th float here): mlc_expf within 1 ulp, 99.8 % correctly rounded; mlc_erff,
 * where |erf(x)| >= 2^-126, within 2 ulp, with FMA 99.7 % correctly rounded and 2 ulp at
 * one float in the sweep, without FMA (a * b + c) 83 % and 2 ulp at 2,329 of 613
 * million. Special values as libm: exp(-inf) = 0,
 * exp(inf) = inf, overflow to inf past 88.72, gradual underflow to 0 below -103.97;
 * erf(+-inf) = +-1, erf(-0) = -0; NaN in, NaN out.
 *
 * The same code computes a lane of a vector and the scalar remainder of a loop, so
 * results do not depend on where a thread's share of the loop starts. */
#ifndef MLC_MATH_H
#define MLC_MATH_H

#include <stdint.h>

/* a * b + c: one rounding where the machine has FMA (the build's -march), two where not */
#ifdef __FMA__
#define MLC_FMAF(a, b, c) __builtin_fmaf(a, b, c)
#else
#define MLC_FMAF(a, b, c) ((a) * (b) + (c))
#endif

/* 2^n for n in [-126, 127], from the exponent bits */
static inline __attribute__((unused)) float mlc_exp2i(int32_t n) {
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)(n + 127) << 23};
    return v.f;
}

/* e^x = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts: n times the
 * first is exact), |r| <= ln 2 / 2, where the Taylor polynomial of degree 7 is off by
 * less than 2^-27. 2^n in two factors, so that n down to -150 (a subnormal result, one
 * rounding in the last product) and up to 129 (infinity) need no branch. */
static inline __attribute__((unused)) float mlc_expf(float x) {
    float xc = x > -104.0f ? x : -104.0f; /* NaN goes to -104 here, and out as itself below */
    xc = xc < 89.0f ? xc : 89.0f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float k = MLC_FMAF(xc, 1.44269504f, shifter) - shifter;
    float r = MLC_FMAF(k, -0.693359375f, xc);
    r = MLC_FMAF(k, 2.12194440e-4f, r);
    float p = 1.98412698e-4f; /* 1/7! ... 1/2! */
    p = MLC_FMAF(p, r, 1.38888889e-3f);
    p = MLC_FMAF(p, r, 8.33333333e-3f);
    p = MLC_FMAF(p, r, 4.16666667e-2f);
    p = MLC_FMAF(p, r, 1.66666667e-1f);
    p = MLC_FMAF(p, r, 0.5f);
    p = MLC_FMAF(p, r, 1.0f);
    p = MLC_FMAF(p, r, 1.0f);
    const int32_t n = (int32_t)k, n1 = n / 2, n2 = n - n1;
    const float y = p * mlc_exp2i(n1) * mlc_exp2i(n2);
    return x == x ? y : x;
}

/* erf(x): below |x| = 0.921875, x (2/sqrt(pi) + x^2 P(x^2)) (P: degree 5, least squares
 * on Chebyshev nodes, relative error 2e-9), 2/sqrt(pi) in two parts so that its rounding
 * to float does not cost the smallest values an ulp; above, 1 - e^(-x^2) R(t) with
 * t = 1 / (1 + x / 2) and R a polynomial of degree 9 in t fitted to erfc(x) e^(x^2) up to
 * x = 3.92 (relative error 7e-12), past which erf rounds to 1 in float. Both on |x|, the
 * sign copied back. */
static inline __attribute__((unused)) float mlc_erff(float x) {
    const float a = __builtin_fabsf(x), u = x * x;
    float ps = 8.846746107e-05f;
    ps = MLC_FMAF(ps, u, -8.259388742e-04f);
    ps = MLC_FMAF(ps, u, 5.211622885e-03f);
    ps = MLC_FMAF(ps, u, -2.686375375e-02f);
    ps = MLC_FMAF(ps, u, 1.128377427e-01f);
    ps = MLC_FMAF(ps, u, -3.761263870e-01f);
    const float low = MLC_FMAF(ps, u, -5.863538344e-08f); /* 2/sqrt(pi) - its float */
    const float small = MLC_FMAF(a, 1.128379226e+00f, a * low);
    const float t = 1.0f / MLC_FMAF(a, 0.5f, 1.0f);
    float q = -8.218584910e-02f;
    q = MLC_FMAF(q, t, 3.828390964e-01f);
    q = MLC_FMAF(q, t, -6.662735592e-01f);
    q = MLC_FMAF(q, t, 4.607717963e-01f);
    q = MLC_FMAF(q, t, -1.409535001e-01f);
    q = MLC_FMAF(q, t, 2.478488365e-01f);
    q = MLC_FMAF(q, t, 2.319591246e-01f);
    q = MLC_FMAF(q, t, 2.840038381e-01f);
    q = MLC_FMAF(q, t, 2.819629253e-01f);
    q = MLC_FMAF(q, t, 3.365041996e-06f);
    const float large = 1.0f - mlc_expf(-u) * q;
    return __builtin_copysignf(a < 0.921875f ? small : large, x); /* erf is odd: -0 too */
}

#undef MLC_FMAF

#endif
