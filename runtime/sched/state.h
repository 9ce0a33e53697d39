/* state.h — a program's persistent tensors described as rows (RtStateSpec)
 * and made from them: checked, allocated and initialised the same way by
 * every kind of program (the reference program of ir/ref, the JIT's and an
 * executable's plan programs of plan_program.h).
 *
 * Module prefix: rt_.
 */
#ifndef DAL_RT_STATE_H
#define DAL_RT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/init.h"
#include "runtime/core/tensor.h"

/* One persistent tensor. Parameters (param true) are f32 and start from
 * rt_init_fill(kind, a, b) under the program's seed; other state starts
 * at zero. */
typedef struct {
  const char *name;
  RtDType dtype;
  int rank;
  int64_t dim[RT_MAX_RANK];
  bool param;
  bool transient;  /* scratch kept between runs (a KV cache), after all other state; never saved */
  RtInitKind init; /* parameters: the initialiser and its two numbers */
  double init_a, init_b;
} RtStateSpec;

/* Checks s[0..n): names present and distinct, ranks in range, parameters
 * f32 with a known initialiser and before any other state, transient state
 * last. *nparam and *nsaved get the counts of parameters and of the state
 * a checkpoint keeps. 'model' names the program in messages. */
int rt_state_check(const RtStateSpec *s, int n, const char *model, int *nparam, int *nsaved, RtErr *e);

/* Allocates one tensor per row, in order and under its name, into 'state'
 * (not initialised), after checking that the parameters fit in memory
 * (runtime/sched/memfit.h). On failure the list keeps what was made. */
int rt_state_alloc(RtTensorList *state, const RtStateSpec *s, int n, const char *model, RtErr *e);

/* Parameters from their initialisers under 'seed' (the same values for the
 * same name and seed in any program), everything else zero. */
void rt_state_init(RtTensorList *state, const RtStateSpec *s, int n, uint64_t seed);

/* Makes the pages of the non-parameter, non-transient state (the optimizer
 * moments) resident now, on the calling thread, contents unchanged. A
 * training step writes all of them; left to it, the lazily zeroed pages
 * (rt_state_init) fault twice each inside its kernels (the read maps the
 * zero page, the write copies it: ~5 us a page, and 1-16 ms for a
 * 262K-parameter AdamW kernel when two threads fault at once on this VM),
 * against ~0.6 us a page here. Transient state (a KV cache the step never
 * writes) stays out of the resident set. */
void rt_state_make_resident(RtTensorList *state, const RtStateSpec *s, int n);

#endif
