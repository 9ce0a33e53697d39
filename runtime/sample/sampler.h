/* sampler.h — stage 2's sampling loop: the image tokens of a batch of
 * texts, drawn one position at a time from a compiled GPT.
 *
 * With the KV cache (the default), the program's entry "prefill" runs the
 * text once, filling every layer's K/V state and giving the logits of
 * image token 0, then "decode_step" runs once per further position: it
 * takes the token just drawn and its sequence position, appends its key and
 * value to the cache and gives the next logits (O(N d) per position). The
 * cache-free path reruns "image_logits" on the whole sequence at every
 * position (O(N^2 d)): the reference the cache is tested against.
 *
 *   prefill(text: i32[B, Lt]) -> f32[B, K]
 *   decode_step(token: i32[B], pos: i32) -> f32[B, K]      pos = Lt + j - 1 for token j
 *   image_logits(text: i32[B, Lt], image: i32[B, T]) -> f32[B, T, K]
 *
 * Each token is drawn by runtime/sample/sample.h from the logits of its row and
 * position with noise keyed by (seed, row, position), so the same seed
 * draws the same tokens on any thread count and on either path.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SAMPLER_H
#define DAL_RT_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/sched/program.h"
#include "runtime/sample/sample.h"

#define RT_ENTRY_PREFILL "prefill"
#define RT_ENTRY_DECODE_STEP "decode_step"
#define RT_ENTRY_IMAGE_LOGITS "image_logits"

typedef struct {
  RtSampleOptions draw; /* temperature, top-k, Gumbel-max (default) or inverse CDF */
  bool no_cache;        /* rerun image_logits at every position */
  uint64_t seed;        /* the sampling noise's seed */
  uint64_t row0;        /* the batch's first row in the noise stream: row b draws as row0 + b */
  bool progress;        /* a progress line on stderr (positions, tokens/s, ETA) */
  RtTensor *logits;     /* if not NULL, f32 [B, T, K]: gets the logits each token was drawn from */
} RtSamplerOptions;

typedef struct {
  double seconds;       /* wall time of the loop (entries made ready before it starts) */
  int64_t tokens;       /* B * T image tokens drawn */
} RtSamplerStats;

/* Whether p has what the chosen path needs (an error naming the missing or
 * ill-typed entry if not; image_logits always, for the sizes), and its
 * sizes: B rows, Lt text ids, T image tokens, K image vocabulary. Makes
 * the entries ready (compiles them). */
int rt_sampler_prepare(RtProgram *p, bool no_cache, int64_t *B, int64_t *Lt, int64_t *T, int64_t *K, RtErr *e);

/* Draws tokens (i32 [B, T], or [B, g, g] with g*g = T) for text (i32
 * [B, Lt]) from p's current parameters. st may be NULL. */
int rt_sampler_run(RtProgram *p, const RtTensor *text, RtTensor *tokens, const RtSamplerOptions *o,
                   RtSamplerStats *st, RtErr *e);

#endif
