/* rng.h — counter-based random numbers: Philox4x32-10 and Gumbel noise.
 *
 * Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011) maps a 128-bit counter and a 64-bit key to 128 random bits with
 * no state, so element i of any random tensor is a pure function of its
 * inputs and i: any split of the work among threads, in any order, gives
 * the same numbers.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_RNG_H
#define DAL_RT_RNG_H

#include <stdint.h>

/* Philox4x32 with 10 rounds, as in Random123: out = philox(ctr, key). */
void rt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Four consecutive counters at once: out[j] = philox(ctr with word 0
 * = ctr[0] + j (mod 2^32), key) for j = 0..3, the same words as four
 * rt_philox4x32_10 calls, about three times as fast (the four are
 * independent, so their rounds overlap in the pipeline). */
void rt_philox4x32_10_x4(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4][4]);

/* Gumbel(0, 1) noise: out[0..n) = elements 0..n-1 of the stream given by
 * (seed, salt, step). Element i uses
 *   counter = {(u32)i, (u32)(i >> 32), salt, (u32)step}
 *   key     = {(u32)seed, (u32)(seed >> 32)}
 *   u       = ((word0 >> 8) + 0.5) * 2^-24        (strictly inside (0, 1))
 *   value   = (float)(-log(-log(u)))              (computed in double)
 * so it depends only on (seed, salt, step, i): the result is the same on
 * any number of threads. Only the low 32 bits of 'step' are used. */
void rt_gumbel_fill(float *out, int64_t n, uint64_t seed, uint32_t salt, uint64_t step);
/* The same stream from element 'first' on: out[k] = element first + k for
 * k in [0, n). For splitting a fill among threads. */
void rt_gumbel_fill_range(float *out, int64_t first, int64_t n, uint64_t seed, uint32_t salt, uint64_t step);

#endif
