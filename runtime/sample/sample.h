/* sample.h — drawing a token from a row of logits: what stage 2's
 * sampler does at every image position (MODELS.md section 2: softmax of
 * the logits over the temperature, optionally only the top k).
 *
 * Two samplers draw from the same distribution:
 *
 *   Gumbel-max (RT_SAMPLER_GUMBEL, the default):
 *       token = argmax_i (logits[i] / T + G_i),  G_i = -log(-log U_i),
 *     one uniform U_i per class from Philox4x32-10 (rng.h) keyed by the
 *     seed with the counter (class i / 4, row, tag, position); word i % 4
 *     of that block is class i's. A draw is a pure function of (seed, row,
 *     position) and the logits: the same on any thread count and in any
 *     call order.
 *   Inverse CDF (RT_SAMPLER_CDF, the older one):
 *     one uniform u per (seed, row, step) and the first index whose
 *     cumulative probability exceeds u times the total.
 *
 * Both: T <= 0 is greedy (the first largest logit); top-k keeps the k
 * largest logits (ties: the lower index first) and never draws another;
 * NaN and -inf logits are never drawn; a +inf logit (the first) always is;
 * -1 when nothing can be drawn (n < 1 or every logit NaN or -inf).
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SAMPLE_H
#define DAL_RT_SAMPLE_H

#include <stdint.h>

/* Which draw rt_sample_draw makes. The order matters: 0 is the default. */
typedef enum {
  RT_SAMPLER_GUMBEL, /* Gumbel-max: rt_sample_gumbel (default) */
  RT_SAMPLER_CDF     /* inverse CDF: rt_sample_token with rt_sample_uniform */
} RtSamplerKind;

typedef struct {
  float temperature;     /* > 0; 0 (or less, or NaN): greedy, the first largest logit */
  int top_k;             /* > 0: only the k largest logits (ties: lower index first); 0: all */
  RtSamplerKind sampler; /* for rt_sample_draw; zero-initialised: Gumbel-max */
} RtSampleOptions;

/* The token for (seed, row, position) with o->sampler's method. scratch
 * holds n floats (work space). The default sampler: call this one. */
int rt_sample_draw(const float *logits, int n, const RtSampleOptions *o, uint64_t seed, uint64_t row,
                   uint64_t position, float *scratch);

/* ---- Gumbel-max -------------------------------------------------------- */

/* The token argmax_i (logits[i] / T + G_i) over the kept classes, with
 * G_i = rt_sample_gumbel_noise(seed, row, position, i); ties (probability
 * ~0) go to the lower index. o->sampler is ignored. scratch holds n floats
 * (used by top-k only). Exact but lazy: a class whose logit / T plus an
 * upper bound of its noise (from the bits of U_i, no logarithm) cannot beat
 * the best so far gets no logarithm, and a block of 4 classes none of which
 * could win with the largest possible noise gets no Philox call; the
 * result is the full argmax's. */
int rt_sample_gumbel(const float *logits, int n, const RtSampleOptions *o, uint64_t seed, uint64_t row,
                     uint64_t position, float *scratch);

/* G_i for class 'cls' at (seed, row, position): -log(-log U) with
 * U = (w + 0.5) * 2^-32 from the 32-bit Philox word w, so U is strictly
 * inside (0, 1) and G lies in about [-3.1, 22.9]. The counter is
 *   {cls / 4, (u32)row, GUMBEL_TAG ^ (u32)(row >> 32) ^ rotl16((u32)(position >> 32)), (u32)position}
 * (GUMBEL_TAG = "GMBL"; the inverse-CDF stream's word 2 is "SMPL" ^ ...),
 * key {(u32)seed, (u32)(seed >> 32)}, word cls % 4. Rows and positions
 * below 2^32 give distinct streams. */
double rt_sample_gumbel_noise(uint64_t seed, uint64_t row, uint64_t position, int cls);

/* ---- inverse CDF --------------------------------------------------------- */

/* The uniform number in [0, 1) for (seed, row, step). */
double rt_sample_uniform(uint64_t seed, uint64_t row, uint64_t step);

/* A token index in [0, n) drawn from logits[0..n) with the uniform u in
 * [0, 1): the first index whose cumulative probability exceeds u times
 * the total. o->sampler is ignored. scratch holds n floats (work space). */
int rt_sample_token(const float *logits, int n, const RtSampleOptions *o, double u, float *scratch);

#endif
