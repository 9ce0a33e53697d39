/* sample.h — drawing a token from a row of logits: what stage 2's
 * sampler does at every image position (MODELS.md section 2: softmax of
 * the logits over the temperature, optionally only the top k).
 *
 * Draws are deterministic: the uniform number behind each comes from
 * Philox4x32-10 (rng.h) keyed by the seed, with the row (which sample of a
 * batch) and the step (which position) as the counter, so a run repeated
 * with the same seed draws the same tokens, whatever the thread count.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SAMPLE_H
#define DAL_RT_SAMPLE_H

#include <stdint.h>

typedef struct {
  float temperature; /* > 0; 0 (or less): greedy, the first largest logit */
  int top_k;         /* > 0: only the k largest logits (ties: lower index first); 0: all */
} RtSampleOptions;

/* The uniform number in [0, 1) for (seed, row, step). */
double rt_sample_uniform(uint64_t seed, uint64_t row, uint64_t step);

/* A token index in [0, n) drawn from logits[0..n) with the uniform u in
 * [0, 1): the first index whose cumulative probability exceeds u times
 * the total. Logits that are NaN or -inf are never drawn; a +inf logit
 * (the first) always is. scratch holds n
 * floats (work space). Returns -1 if no logit can be drawn (n < 1, or every
 * logit NaN or -inf). */
int rt_sample_token(const float *logits, int n, const RtSampleOptions *o, double u, float *scratch);

#endif
