/* rng.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11) and the derived uniform / normal / permutation helpers (see rng.h).
 *
 * Counter layout used for tensors: ctr = {block lo, block hi, stream lo, stream hi},
 * key = {seed lo, seed hi}. Uniforms take the four words of block i/4 in order; a
 * normal uses block i (words 0 and 1) so every element costs one block. */
#include "rng.h"

#include <math.h>
#include <string.h>

#include "kernels/mlc_philox.h" /* the one Philox: runtime, generated C, CUDA */

void mlc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    unsigned c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    mlc_philox_rounds(c, key[0], key[1]);
    for (int i = 0; i < 4; i++) out[i] = c[i];
}

uint64_t mlc_hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t k = 0; k < n; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    return h;
}

uint64_t mlc_hash_name(const char *name) { return mlc_hash_bytes(MLC_HASH_START, name, name ? strlen(name) : 0); }

static void block(uint64_t seed, uint64_t stream, uint64_t b, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    mlc_philox4x32_10(ctr, key, out);
}

float mlc_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return mlc_philox_uniform(seed, stream, index);
}

float mlc_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t out[4];
    block(seed, stream, index, out);
    double u1 = ((double)out[0] + 1.0) * (1.0 / 4294967296.0); /* (0,1]: log is finite */
    double u2 = (double)out[1] * (1.0 / 4294967296.0);         /* [0,1) */
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2));
}

void mlc_init_uniform(float *p, int64_t n, float lo, float hi, uint64_t seed, const char *name) {
    uint64_t stream = mlc_hash_name(name);
    uint32_t out[4];
    for (int64_t i = 0; i < n; i++) {
        if ((i & 3) == 0) block(seed, stream, (uint64_t)i >> 2, out);
        p[i] = lo + (hi - lo) * mlc_philox_unit(out[i & 3]);
    }
}

void mlc_init_normal(float *p, int64_t n, float mean, float std, uint64_t seed, const char *name) {
    uint64_t stream = mlc_hash_name(name);
    for (int64_t i = 0; i < n; i++) p[i] = mean + std * mlc_rng_normal(seed, stream, (uint64_t)i);
}

void mlc_init_const(float *p, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) p[i] = v;
}

/* Uniform integer in [0, bound] for position i of the shuffle of `epoch`: unbiased by
 * rejection over the block's four words (falling back to modulo in the astronomically
 * unlikely case all four are rejected, which keeps it deterministic). */
static uint64_t shuffle_pick(uint64_t seed, uint64_t epoch, uint64_t i, uint64_t bound) {
    static const uint64_t stream_tag = 0x53485546464c45ull; /* "SHUFFLE" */
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)epoch, (uint32_t)(epoch >> 32)};
    uint64_t k = seed ^ stream_tag;
    uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t out[4];
    mlc_philox4x32_10(ctr, key, out);
    uint64_t range = bound + 1;
    if (range > 0xFFFFFFFFull) { /* huge n: combine two words */
        uint64_t x = ((uint64_t)out[0] << 32) | out[1];
        return x % range;
    }
    uint64_t limit = (0x100000000ull / range) * range; /* accept x < limit */
    for (int w = 0; w < 4; w++)
        if (out[w] < limit) return out[w] % range;
    return out[0] % range;
}

void mlc_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)shuffle_pick(seed, epoch, (uint64_t)i, (uint64_t)i);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
