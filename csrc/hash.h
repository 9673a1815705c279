/* The hashes behind dropout's masks (internal to csrc/): shared by the per-ISA kernels and the
 * dispatcher, so every ISA path draws the same masks. */
#ifndef PYNN_HASH_H
#define PYNN_HASH_H

#include <stdint.h>

/* SplitMix64's finalizer: a bijective mix of 64 bits (Steele, Lea & Flood 2014); it turns
 * (key, counter) into a step's 64-bit stream. */
static inline uint64_t pn_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A 32-bit integer hash with low bias (C. Wellons' "lowbias32"): 32-bit lanes, so the
 * per-element hash vectorises (8 elements per AVX2 instruction). */
static inline uint32_t pn_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Element i's 32 random bits in the stream (s0, s1): two rounds, the stream's halves entering
 * each, so the masks of two steps are not shifted copies of one another. */
static inline uint32_t pn_element_bits(uint32_t s0, uint32_t s1, uint64_t i) {
    return pn_mix32(pn_mix32((uint32_t)i + s0) ^ (s1 + (uint32_t)(i >> 32)));
}

#endif /* PYNN_HASH_H */
