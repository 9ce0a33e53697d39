/* rng.c — Philox4x32-10 and Gumbel noise (see rng.h). */
#include "runtime/core/rng.h"

#include <math.h>

/* Round multipliers and Weyl key increments from the Philox paper. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void rt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) { /* the key is bumped between rounds, not before the first */
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void rt_philox4x32_10_x4(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4][4]) {
  uint32_t c0[4], c1[4], c2[4], c3[4];
  for (int j = 0; j < 4; j++) {
    c0[j] = ctr[0] + (uint32_t)j;
    c1[j] = ctr[1];
    c2[j] = ctr[2];
    c3[j] = ctr[3];
  }
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    for (int j = 0; j < 4; j++) { /* rt_philox4x32_10's round on lane j */
      uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j], p1 = (uint64_t)PHILOX_M1 * c2[j];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
      c1[j] = (uint32_t)p1;
      c3[j] = (uint32_t)p0;
      c0[j] = n0;
      c2[j] = n2;
    }
  }
  for (int j = 0; j < 4; j++) {
    out[j][0] = c0[j];
    out[j][1] = c1[j];
    out[j][2] = c2[j];
    out[j][3] = c3[j];
  }
}

void rt_gumbel_fill_range(float *out, int64_t first, int64_t n, uint64_t seed, uint32_t salt, uint64_t step) {
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (int64_t k = 0; k < n; k++) {
    uint64_t i = (uint64_t)(first + k);
    const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), salt, (uint32_t)step};
    uint32_t r[4];
    rt_philox4x32_10(ctr, key, r);
    /* 24 bits, centred in their bucket: never 0 or 1, so both logs are finite. */
    double u = ((double)(r[0] >> 8) + 0.5) * 0x1p-24;
    out[k] = (float)(-log(-log(u)));
  }
}

void rt_gumbel_fill(float *out, int64_t n, uint64_t seed, uint32_t salt, uint64_t step) {
  rt_gumbel_fill_range(out, 0, n, seed, salt, step);
}
