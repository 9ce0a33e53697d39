/* sched_numerics.c — --check-numerics in rt_plan_run (see rt_sched.h and
 * runtime/core/numerics.h): the buffers a step wrote, checked after it. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "runtime/core/numerics.h"
#include "runtime/sched/rt_sched.h"

static int64_t buf_numel(const RtBuffer *b) {
  int64_t n = 1;
  for (int d = 0; d < b->rank; d++) n *= b->dim[d];
  return n;
}

/* ", reading NAME, NAME": the parameters (state) step st reads, which
 * place it in the model better than a library function's line does. */
static void reads_state(const RtPlan *p, const RtStep *st, char *out, size_t size) {
  size_t at = 0;
  int n = 0;
  for (int a = 0; a < st->narg && at < size; a++) {
    const RtBuffer *B = &p->buf[st->arg[a]];
    bool written = false;
    for (int w = 0; w < st->nwrite; w++) written |= st->write[w] == st->arg[a];
    if (B->kind != RT_BUF_STATE || written || !B->name) continue;
    at += (size_t)snprintf(out + at, size - at, "%s%s", n++ ? ", " : ", reading ", B->name);
  }
}

void rt_sched_numerics_begin(const RtPlan *p, void *arena, void *const *addr) {
  /* Steps may write a buffer in pieces (a convolution's chunks): zeroed
   * memory keeps the parts not yet written finite, so what a step's check
   * finds is always that step's doing. */
  if (arena && p->arena_bytes > 0) memset(arena, 0, (size_t)p->arena_bytes);
  for (int i = 0; i < p->nbuf; i++)
    if (p->buf[i].kind == RT_BUF_OUTPUT) memset(addr[i], 0, (size_t)p->buf[i].bytes);
}

int rt_sched_numerics_step(const RtPlan *p, int s, void *const *addr, RtErr *e) {
  const RtStep *st = &p->step[s];
  for (int w = 0; w < st->nwrite; w++) {
    int b = st->write[w];
    const RtBuffer *B = &p->buf[b];
    if (B->dtype != RT_F32 || B->kind == RT_BUF_INPUT || B->kind == RT_BUF_CONST) continue;
    int64_t first;
    const float *x = addr[b];
    if (rt_all_finite(x, buf_numel(B), &first)) continue;
    char buf[300];
    static const char *kind[] = {"intermediate", "input", "output", "state tensor", "constant"};
    if (B->name) snprintf(buf, sizeof buf, "%s '%s'", kind[B->kind], B->name);
    else snprintf(buf, sizeof buf, "%s b%d", kind[B->kind], b);
    const char *op = st->name; /* a kernel step's own kernel (deduplicated kernels share a function name) */
    char detail[300];
    int at = snprintf(detail, sizeof detail, "plan step %d of %d", s, p->nstep);
    if (st->kind != RT_STEP_KERNEL)
      at += snprintf(detail + at, sizeof detail - (size_t)at, ", a %s", st->kind == RT_STEP_GEMM ? "GEMM" : "copy");
    reads_state(p, st, detail + at, sizeof detail - (size_t)at);
    return rt_numerics_fail(e, st->src, st->calls, st->backward, op, detail, p->name, buf, B->rank, B->dim, first, x[first]);
  }
  return 0;
}
