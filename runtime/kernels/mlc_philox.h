/* mlc_philox.h - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1,
 * 2, 3", SC'11), defined once for the runtime (rng.c: initialisers, shuffles), generated
 * C (dropout masks, inlined into the mask's loop through mlc_kernels.h) and the CUDA
 * device code (the emitter pastes this file in front of the device helpers: NVRTC has
 * no include path). Plain C without includes; under nvcc and NVRTC the functions are
 * __host__ __device__, which lets the tests compare the device build with the runtime's
 * on the host.
 *
 * Counter layout for tensors: ctr = {block lo, block hi, stream lo, stream hi},
 * key = {seed lo, seed hi}; uniforms take the four words of block index/4 in order. */
#ifndef MLC_PHILOX_H
#define MLC_PHILOX_H

#ifdef __CUDACC__
#define MLC_PHILOX_FN static __host__ __device__ __forceinline__ __attribute__((unused))
#else
#define MLC_PHILOX_FN static inline __attribute__((unused))
#endif

/* c = Philox(c, key {k0, k1}), ten rounds. Constant indices only, so compilers keep c in
 * registers once this is inlined. */
MLC_PHILOX_FN void mlc_philox_rounds(unsigned c[4], unsigned k0, unsigned k1) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
        const unsigned long long p0 = (unsigned long long)0xD2511F53u * c[0];
        const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c[2];
        const unsigned n0 = (unsigned)(p1 >> 32) ^ c[1] ^ k0, n2 = (unsigned)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = n0, c[1] = (unsigned)p1, c[2] = n2, c[3] = (unsigned)p0;
    }
}

/* Word index&3 of block index>>2 of (seed, stream) */
MLC_PHILOX_FN unsigned mlc_philox_word(unsigned long long seed, unsigned long long stream, unsigned long long index) {
    const unsigned long long b = index >> 2;
    unsigned c[4] = {(unsigned)b, (unsigned)(b >> 32), (unsigned)stream, (unsigned)(stream >> 32)};
    mlc_philox_rounds(c, (unsigned)seed, (unsigned)(seed >> 32));
    const unsigned w = (unsigned)(index & 3);
    return w == 0 ? c[0] : w == 1 ? c[1] : w == 2 ? c[2] : c[3];
}

/* A word's top 24 bits as a float in [0, 1), exact */
MLC_PHILOX_FN float mlc_philox_unit(unsigned x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* The index-th uniform float in [0, 1) of (seed, stream). mlc_rng_uniform (rng.h) is
 * this. */
MLC_PHILOX_FN float mlc_philox_uniform(unsigned long long seed, unsigned long long stream, unsigned long long index) {
    return mlc_philox_unit(mlc_philox_word(seed, stream, index));
}

#endif
