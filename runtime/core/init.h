/* init.h — deterministic parameter initialisation.
 *
 * Element i of parameter 'name' is a pure function of (seed, name, i): it
 * comes from Philox4x32-10 (rng.h) with
 *   counter = {(u32)i, (u32)(i >> 32), rt_init_stream(name), RT_INIT_TAG}
 *   key     = {(u32)seed, (u32)(seed >> 32)}
 * so a parameter's values do not depend on which other parameters exist or
 * in what order they are initialised, nor on how the fill is split among
 * threads. With x53(lo, hi) = ((((u64)hi << 32 | lo) >> 11) + 0.5) * 2^-53,
 * strictly inside (0, 1), and w0..w3 the Philox output words:
 *   UNIFORM: low + (high - low) * x53(w0, w1), rounded to f32
 *   NORMAL:  mean + std * sqrt(-2 ln x53(w0, w1)) * cos(2 pi x53(w2, w3))
 *            (Box-Muller in double, one value per element)
 * Module prefix: rt_.
 */
#ifndef DAL_RT_INIT_H
#define DAL_RT_INIT_H

#include <stdint.h>

/* Same order as IrInitKind in ir/ir.h: values convert directly. */
typedef enum {
  RT_INIT_ZEROS,
  RT_INIT_ONES,
  RT_INIT_NORMAL, /* a = mean, b = std */
  RT_INIT_UNIFORM /* a = low,  b = high */
} RtInitKind;

/* Counter word 3 for initialisation. Gumbel noise puts the training step
 * there, and no run reaches this many steps, so the two never share counters. */
#define RT_INIT_TAG 0xFFFFFFFFu

/* The Philox stream of a parameter: the 32-bit FNV-1a hash of 'name'. */
uint32_t rt_init_stream(const char *name);

/* Fills p[0..n) with the values of parameter 'name' (its full name, not
 * NULL) under 'seed'. */
void rt_init_fill(float *p, int64_t n, RtInitKind kind, double a, double b, uint64_t seed, const char *name);
/* The same values from element 'first' on: p[k] = element first + k. */
void rt_init_fill_range(float *p, int64_t first, int64_t n, RtInitKind kind, double a, double b, uint64_t seed,
                        const char *name);

#endif
