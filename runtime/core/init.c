/* init.c — parameter initialisation from Philox streams (see init.h). */
#include "runtime/core/init.h"

#include <math.h>

#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

uint32_t rt_init_stream(const char *name) { return rt_name_hash(name); }

/* A double strictly inside (0, 1) from 53 of the 64 bits {lo, hi}. */
static double unit53(uint32_t lo, uint32_t hi) {
  uint64_t bits = (uint64_t)hi << 32 | lo;
  return ((double)(bits >> 11) + 0.5) * 0x1p-53;
}

void rt_init_fill_range(float *p, int64_t first, int64_t n, RtInitKind kind, double a, double b, uint64_t seed,
                        const char *name) {
  if (kind == RT_INIT_ZEROS || kind == RT_INIT_ONES) {
    float v = kind == RT_INIT_ONES ? 1.0f : 0.0f;
    for (int64_t k = 0; k < n; k++) p[k] = v;
    return;
  }
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t stream = rt_init_stream(name);
  for (int64_t k = 0; k < n; k++) {
    uint64_t i = (uint64_t)(first + k);
    const uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), stream, RT_INIT_TAG};
    uint32_t r[4];
    rt_philox4x32_10(ctr, key, r);
    double u = unit53(r[0], r[1]);
    if (kind == RT_INIT_UNIFORM) {
      p[k] = (float)(a + (b - a) * u);
    } else {
      double z = sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * unit53(r[2], r[3]));
      p[k] = (float)(a + b * z);
    }
  }
}

void rt_init_fill(float *p, int64_t n, RtInitKind kind, double a, double b, uint64_t seed, const char *name) {
  rt_init_fill_range(p, 0, n, kind, a, b, seed, name);
}
