/* test_math.c - mlc_expf and mlc_erff (runtime/kernels/mlc_math.h), the exp and erf of
 * the generated C's elementwise loops, against the correctly rounded values (libm's
 * double exp and erf, rounded to float: both are accurate far below a float's ulp):
 *   - every 61st float (70 million, all exponents and both signs): mlc_expf within 1 ulp,
 *     mlc_erff within 2 (1 for all but a handful where the build has FMA), and almost
 *     all correctly rounded; erf where its value is a normal float (below 2^-126 the
 *     linear x 2/sqrt(pi) underflows in float);
 *   - special values: infinities, zeros of both signs, NaNs, the overflow and underflow
 *     edges of exp;
 *   - a vectorized loop gives the bits a scalar loop gives, element by element (the
 *     loop's vector body and its remainder agree, so a thread's start does not matter).
 * Built as the kernel library is (-O3 -march=native, no errno, no traps). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlc_math.h"

static int64_t ulps(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT32_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia; /* monotonic: -0 and +0 meet */
    if (ib < 0) ib = INT32_MIN - ib;
    return llabs((int64_t)ia - ib);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

Test(math, within_an_ulp_or_two, .timeout = 300) {
    int64_t worst_e = 0, worst_f = 0, off_e = 0, off_f = 0, n_e = 0, n_f = 0;
    float at_e = 0, at_f = 0;
    for (uint64_t b = 0; b < 0x100000000ull; b += 61) {
        const float x = from_bits((uint32_t)b);
        int64_t d = ulps(mlc_expf(x), (float)exp((double)x));
        if (d > worst_e) worst_e = d, at_e = x;
        off_e += d != 0, n_e++;
        const float want = (float)erf((double)x);
        if (!(fabsf(want) >= 0x1p-126f) && !isnan(want)) continue;
        d = ulps(mlc_erff(x), want);
        if (d > worst_f) worst_f = d, at_f = x;
        off_f += d != 0, n_f++;
    }
    printf("mlc_expf: worst %lld ulp (at %a), %lld of %lld not correctly rounded\n", (long long)worst_e, (double)at_e,
           (long long)off_e, (long long)n_e);
    printf("mlc_erff: worst %lld ulp (at %a), %lld of %lld not correctly rounded\n", (long long)worst_f, (double)at_f,
           (long long)off_f, (long long)n_f);
    cr_expect_leq(worst_e, 1, "mlc_expf is %lld ulp off at %a", (long long)worst_e, (double)at_e);
    cr_expect_leq(worst_f, 2, "mlc_erff is %lld ulp off at %a", (long long)worst_f, (double)at_f);
    cr_expect_lt(off_e, n_e / 100, "mlc_expf: %lld of %lld values not correctly rounded", (long long)off_e,
                 (long long)n_e);
#ifdef __FMA__
    cr_expect_lt(off_f, n_f / 100, "mlc_erff: %lld of %lld values not correctly rounded", (long long)off_f,
                 (long long)n_f);
#else
    cr_expect_lt(off_f, n_f / 4, "mlc_erff: %lld of %lld values not correctly rounded", (long long)off_f,
                 (long long)n_f);
#endif
}

static int same_bits(float a, float b) { return !memcmp(&a, &b, 4); }

Test(math, special_values) {
    cr_assert(same_bits(mlc_expf(-INFINITY), 0.0f));
    cr_assert(same_bits(mlc_expf(INFINITY), INFINITY));
    cr_assert(isnan(mlc_expf(NAN)) && isnan(mlc_expf(-NAN)));
    cr_assert(same_bits(mlc_expf(0.0f), 1.0f) && same_bits(mlc_expf(-0.0f), 1.0f));
    cr_assert(ulps(mlc_expf(88.72283f), (float)exp((double)88.72283f)) <= 1 && isfinite(mlc_expf(88.72283f)),
              "near the largest finite result");
    cr_assert(same_bits(mlc_expf(88.7229f), INFINITY), "past it, infinity");
    cr_assert(same_bits(mlc_expf(-103.972f), 0x1p-149f), "the smallest subnormal");
    cr_assert(same_bits(mlc_expf(-104.0f), 0.0f));
    cr_assert(same_bits(mlc_expf(-1000.0f), 0.0f) && same_bits(mlc_expf(1000.0f), INFINITY));
    cr_assert(same_bits(mlc_erff(INFINITY), 1.0f) && same_bits(mlc_erff(-INFINITY), -1.0f));
    cr_assert(same_bits(mlc_erff(0.0f), 0.0f) && same_bits(mlc_erff(-0.0f), -0.0f));
    cr_assert(isnan(mlc_erff(NAN)) && isnan(mlc_erff(-NAN)));
    cr_assert(ulps(mlc_erff(3.92f), (float)erf((double)3.92f)) <= 1 && same_bits(mlc_erff(10.0f), 1.0f));
    cr_assert(same_bits(mlc_erff(-10.0f), -1.0f));
    cr_assert(same_bits(mlc_erff(0x1p-140f), 0.0f) || fabsf(mlc_erff(0x1p-140f)) <= 0x1p-139f,
              "a subnormal input stays near x 2/sqrt(pi)");
}

#define N 1003 /* not a multiple of any vector width: the loop has a scalar remainder */

__attribute__((noinline, optimize("no-tree-vectorize"))) static void scalar_loop(const float *x, float *e, float *f) {
    for (int i = 0; i < N; i++) e[i] = mlc_expf(x[i]), f[i] = mlc_erff(x[i]);
}

__attribute__((noinline)) static void vector_loop(const float *restrict x, float *restrict e, float *restrict f) {
    for (int i = 0; i < N; i++) e[i] = mlc_expf(x[i]), f[i] = mlc_erff(x[i]);
}

Test(math, vector_lanes_equal_the_scalar_code) {
    static float x[N], e1[N], f1[N], e2[N], f2[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i - N / 2) * 0.0137f + (i % 7 == 0 ? 40.0f : 0.0f);
    x[5] = INFINITY, x[6] = -INFINITY, x[7] = NAN, x[8] = -0.0f, x[9] = 1e-40f;
    scalar_loop(x, e1, f1);
    vector_loop(x, e2, f2);
    for (int i = 0; i < N; i++) {
        cr_assert(same_bits(e1[i], e2[i]) || (isnan(e1[i]) && isnan(e2[i])), "exp(%a): scalar %a, vector %a",
                  (double)x[i], (double)e1[i], (double)e2[i]);
        cr_assert(same_bits(f1[i], f2[i]) || (isnan(f1[i]) && isnan(f2[i])), "erf(%a): scalar %a, vector %a",
                  (double)x[i], (double)f1[i], (double)f2[i]);
    }
}
