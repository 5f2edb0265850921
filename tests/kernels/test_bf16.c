/* test_bf16.c - mlc_round_bf16 (runtime/kernels/mlc_bf16.h), the rounding both targets
 * use under --precision bf16, against a reference written another way: the two bf16
 * values around x (x with its low 16 bits cleared, and the next one away from zero),
 * whichever is nearer in double, the one with an even last bit on a tie; past bf16's
 * largest value, infinity where the nearest-even rule would step there. Every float whose
 * top 16 bits take each value, with 40 low halves each (the boundaries, the tie, the
 * values beside them, and random ones), both signs; NaNs, infinities, zeros, subnormals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mlc_bf16.h"

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The reference for a finite or infinite x (not NaN). */
static float reference(float x) {
    uint32_t u = to_bits(x), lo = u & 0xffff0000u;
    if ((u & 0xffffu) == 0) return x;
    uint32_t hi = lo + 0x10000u; /* the next bf16 away from zero (the sign bit is untouched:
                                     the largest finite magnitude's next is infinity) */
    double dl = fabs((double)x - (double)from_bits(lo));
    double dh = (hi & 0x7fffffffu) >= 0x7f800000u ? INFINITY : fabs((double)from_bits(hi) - (double)x);
    if ((hi & 0x7fffffffu) == 0x7f800000u) /* toward infinity: it lies one bf16 step above the largest */
        dh = fabs(ldexp(1.0, 128) - fabs((double)x));
    if (dl < dh) return from_bits(lo);
    if (dh < dl) return from_bits(hi);
    return from_bits((lo >> 16) & 1 ? hi : lo);
}

Test(bf16, rounds_to_nearest_even_everywhere, .timeout = 120) {
    static const uint32_t fixed[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000, 0xc000};
    uint64_t s = 0x9E3779B97F4A7C15ull, checked = 0, rounded_up = 0;
    for (uint32_t top = 0; top < 0x10000u; top++) {
        if ((top & 0x7f80u) == 0x7f80u) continue; /* infinities and NaNs: below */
        for (int k = 0; k < 40; k++) {
            uint32_t low;
            if (k < 8) low = fixed[k];
            else {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                low = (uint32_t)(s >> 20) & 0xffffu;
            }
            float x = from_bits((top << 16) | low), got = mlc_round_bf16(x), want = reference(x);
            cr_assert_eq(to_bits(got), to_bits(want), "x = %a (0x%08x): got %a (0x%08x), want %a (0x%08x)", (double)x,
                         to_bits(x), (double)got, to_bits(got), (double)want, to_bits(want));
            cr_assert_eq(to_bits(got) & 0xffffu, 0u);
            rounded_up += to_bits(got) != (to_bits(x) & 0xffff0000u);
            checked++;
        }
    }
    cr_assert_gt(rounded_up, checked / 4, "the sweep rounds away from zero too: %llu of %llu",
                 (unsigned long long)rounded_up, (unsigned long long)checked);
}

Test(bf16, special_values) {
    cr_assert_eq(to_bits(mlc_round_bf16(INFINITY)), to_bits(INFINITY));
    cr_assert_eq(to_bits(mlc_round_bf16(-INFINITY)), to_bits(-INFINITY));
    cr_assert_eq(to_bits(mlc_round_bf16(0.0f)), 0u);
    cr_assert_eq(to_bits(mlc_round_bf16(-0.0f)), 0x80000000u);
    /* the largest float rounds to infinity; the largest bf16 stays */
    cr_assert_eq(to_bits(mlc_round_bf16(3.4028235e38f)), to_bits(INFINITY));
    cr_assert_eq(to_bits(mlc_round_bf16(from_bits(0x7f7f0000u))), 0x7f7f0000u);
    /* ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7, and goes to the even 1 */
    cr_assert_eq(mlc_round_bf16(1.0f + 0x1p-8f), 1.0f);
    cr_assert_eq(mlc_round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
    cr_assert_eq(mlc_round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
    /* every NaN stays a NaN, even one whose payload is only in the low bits */
    const uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fbfffffu, 0xffffffffu, 0x7f80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float r = mlc_round_bf16(from_bits(nans[i]));
        cr_assert(isnan(r), "0x%08x rounds to 0x%08x, not a NaN", nans[i], to_bits(r));
        cr_assert_eq(to_bits(r) & 0x80000000u, nans[i] & 0x80000000u, "the NaN's sign is kept");
    }
}
