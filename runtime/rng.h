/* rng.h - Philox4x32-10 counter-based random numbers and the initialisers generated
 * code calls.
 *
 * Every random value is a pure function of (seed, stream, index): a tensor's stream is
 * a hash of its name, so its initial values depend only on the seed, the name and the
 * element index, never on the order tensors are created in or on thread scheduling.
 * The dataset shuffle uses its own stream and the epoch number in the counter. */
#ifndef MLCRT_RNG_H
#define MLCRT_RNG_H

#include <stddef.h>
#include <stdint.h>

/* One Philox4x32-10 block: out = Philox(ctr, key), 10 rounds. */
void mlc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* 64-bit FNV-1a of a NUL-terminated name (the stream id of a tensor). */
uint64_t mlc_hash_name(const char *name);
/* FNV-1a of n bytes, continuing from h (MLC_HASH_START to begin): the digests the
 * data-parallel ranks compare (dist.c). */
#define MLC_HASH_START 0xcbf29ce484222325ull
uint64_t mlc_hash_bytes(uint64_t h, const void *p, size_t n);

/* The index-th uniform float in [0,1) of (seed, stream); 24 random bits. */
float mlc_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* The index-th standard normal of (seed, stream) (Box-Muller, cosine branch). */
float mlc_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* Parameter initialisers used by generated code. p[i] depends only on (seed, name, i). */
void mlc_init_uniform(float *p, int64_t n, float lo, float hi, uint64_t seed, const char *name);
void mlc_init_normal(float *p, int64_t n, float mean, float std, uint64_t seed, const char *name);
void mlc_init_const(float *p, int64_t n, float v);

/* Fills perm[0..n) with a permutation of 0..n-1 (seeded Fisher-Yates); the result
 * depends only on (n, seed, epoch). */
void mlc_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);

#endif
