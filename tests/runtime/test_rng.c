/* test_rng.c - Philox4x32-10 known-answer vectors (Random123), FNV-1a, uniform / normal
 * statistics, independence of initialisation from creation order, permutations. */
#include <criterion/criterion.h>

#include <math.h>

#include "rng.h"

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, uint32_t e0, uint32_t e1,
                uint32_t e2, uint32_t e3) {
    uint32_t ctr[4] = {c0, c1, c2, c3}, key[2] = {k0, k1}, out[4];
    mlc_philox4x32_10(ctr, key, out);
    cr_assert_eq(out[0], e0, "word 0: %08x", out[0]);
    cr_assert_eq(out[1], e1, "word 1: %08x", out[1]);
    cr_assert_eq(out[2], e2, "word 2: %08x", out[2]);
    cr_assert_eq(out[3], e3, "word 3: %08x", out[3]);
}

Test(philox, kat_zero) { kat(0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8); }

Test(philox, kat_ones) {
    kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
        0x6d5451fd);
}

Test(philox, kat_pi) {
    kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
        0x24126ea1);
}

Test(rng, fnv1a) {
    cr_assert_eq(mlc_hash_name(""), 0xcbf29ce484222325ull);
    cr_assert_eq(mlc_hash_name("a"), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(mlc_hash_name("foobar"), 0x85944171f73967e8ull);
}

Test(rng, uniform_derivation) {
    /* uniform index i of (seed 0, stream 0) is word i%4 of Philox(ctr={i/4,0,0,0}, 0)
     * scaled by its top 24 bits */
    cr_assert_eq(mlc_rng_uniform(0, 0, 0), (float)(0x6627e8d5u >> 8) / 16777216.0f);
    cr_assert_eq(mlc_rng_uniform(0, 0, 3), (float)(0x9b00dbd8u >> 8) / 16777216.0f);
}

Test(rng, uniform_statistics) {
    enum { N = 100000 };
    static float p[N];
    mlc_init_uniform(p, N, 0.0f, 1.0f, 1234, "stats.uniform");
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(p[i] >= 0.0f && p[i] < 1.0f);
        s += p[i];
    }
    double mean = s / N;
    for (int i = 0; i < N; i++) s2 += (p[i] - mean) * (p[i] - mean);
    double var = s2 / (N - 1);
    /* std error of the mean is 0.00091; of the variance about 0.00024 */
    cr_assert(fabs(mean - 0.5) < 0.005, "mean %f", mean);
    cr_assert(fabs(var - 1.0 / 12) < 0.0015, "variance %f", var);

    mlc_init_uniform(p, N, -3.0f, -1.0f, 1234, "stats.uniform");
    for (int i = 0; i < N; i++) cr_assert(p[i] >= -3.0f && p[i] < -1.0f);
}

Test(rng, normal_statistics) {
    enum { N = 100000 };
    static float p[N];
    mlc_init_normal(p, N, 0.0f, 1.0f, 99, "stats.normal");
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(isfinite(p[i]));
        s += p[i];
    }
    double mean = s / N;
    for (int i = 0; i < N; i++) s2 += (p[i] - mean) * (p[i] - mean);
    double var = s2 / (N - 1);
    cr_assert(fabs(mean) < 0.02, "mean %f", mean);
    cr_assert(fabs(var - 1.0) < 0.03, "variance %f", var);

    mlc_init_normal(p, 1000, 5.0f, 0.0f, 99, "x");
    for (int i = 0; i < 1000; i++) cr_assert_eq(p[i], 5.0f);
}

Test(rng, init_independent_of_order) {
    float a1[100], b1[37], a2[100], b2[37], a3[10];
    mlc_init_uniform(a1, 100, -1, 1, 7, "layer.a");
    mlc_init_normal(b1, 37, 0, 1, 7, "layer.b");
    /* the other order */
    mlc_init_normal(b2, 37, 0, 1, 7, "layer.b");
    mlc_init_uniform(a2, 100, -1, 1, 7, "layer.a");
    cr_assert_arr_eq(a1, a2, sizeof a1);
    cr_assert_arr_eq(b1, b2, sizeof b1);
    /* element i does not depend on the tensor length */
    mlc_init_uniform(a3, 10, -1, 1, 7, "layer.a");
    cr_assert_arr_eq(a3, a1, sizeof a3);
    for (int i = 0; i < 37; i++) cr_assert_eq(b1[i], mlc_rng_normal(7, mlc_hash_name("layer.b"), (uint64_t)i));
    /* different names and seeds give different values */
    mlc_init_uniform(a2, 100, -1, 1, 7, "layer.c");
    cr_assert(memcmp(a1, a2, sizeof a1) != 0);
    mlc_init_uniform(a2, 100, -1, 1, 8, "layer.a");
    cr_assert(memcmp(a1, a2, sizeof a1) != 0);
}

Test(rng, init_const) {
    float p[5];
    mlc_init_const(p, 5, 0.25f);
    for (int i = 0; i < 5; i++) cr_assert_eq(p[i], 0.25f);
}

Test(rng, permutation) {
    enum { N = 1000 };
    static int64_t p[N], q[N];
    static int seen[N];
    mlc_permutation(p, N, 5, 0);
    for (int i = 0; i < N; i++) {
        cr_assert(p[i] >= 0 && p[i] < N);
        cr_assert_eq(seen[p[i]], 0, "%lld twice", (long long)p[i]);
        seen[p[i]] = 1;
    }
    mlc_permutation(q, N, 5, 0);
    cr_assert_arr_eq(p, q, sizeof p);
    mlc_permutation(q, N, 5, 1);
    cr_assert(memcmp(p, q, sizeof p) != 0);
    mlc_permutation(q, N, 6, 0);
    cr_assert(memcmp(p, q, sizeof p) != 0);
    int fixed = 0;
    for (int i = 0; i < N; i++) fixed += p[i] == i;
    cr_assert(fixed < 10, "%d fixed points: not shuffled", fixed);
    mlc_permutation(q, 1, 5, 0);
    cr_assert_eq(q[0], 0);
    mlc_permutation(q, 0, 5, 0);
}
