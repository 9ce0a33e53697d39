/* sched_check.c — structural checks of a plan before it runs
 * (rt_plan_check in rt_sched.h), so a bad plan is an error message, never an
 * out-of-bounds write. */
#include <stddef.h>

#include "runtime/sched/gemm_small.h"
#include "runtime/sched/rt_sched.h"

#define ALIGN 64

static int64_t numel(const RtBuffer *b) {
  int64_t n = 1;
  for (int i = 0; i < b->rank; i++) n *= b->dim[i];
  return n;
}

static const char *plan_name(const RtPlan *p) { return p->name ? p->name : "?"; }
static const char *step_name(const RtStep *s) { return s->name ? s->name : "?"; }

static int check_buffer(const RtPlan *p, int i, RtErr *e) {
  const RtBuffer *b = &p->buf[i];
  const char *nm = b->name ? b->name : "";
  if (b->dtype != RT_F32 && b->dtype != RT_I32)
    return rt_err(e, "plan '%s': buffer %d '%s' has an unknown dtype %d", plan_name(p), i, nm, (int)b->dtype);
  if (b->rank < 0 || b->rank > RT_MAX_RANK)
    return rt_err(e, "plan '%s': buffer %d '%s' has rank %d (at most %d)", plan_name(p), i, nm, b->rank, RT_MAX_RANK);
  for (int d = 0; d < b->rank; d++)
    if (b->dim[d] < 0) return rt_err(e, "plan '%s': buffer %d '%s' has a negative dimension", plan_name(p), i, nm);
  if (b->bytes != numel(b) * (int64_t)rt_dtype_size(b->dtype))
    return rt_err(e, "plan '%s': buffer %d '%s' has %lld bytes for %lld elements of %s", plan_name(p), i, nm,
                  (long long)b->bytes, (long long)numel(b), rt_dtype_name(b->dtype));
  switch (b->kind) {
  case RT_BUF_ARENA:
    if (b->offset < 0 || b->offset % ALIGN || b->offset + b->bytes > p->arena_bytes)
      return rt_err(e, "plan '%s': buffer %d '%s' at arena offset %lld (%lld bytes) is misaligned or outside the "
                    "arena of %lld bytes", plan_name(p), i, nm, (long long)b->offset, (long long)b->bytes,
                    (long long)p->arena_bytes);
    return 0;
  case RT_BUF_INPUT:
  case RT_BUF_OUTPUT: {
    int n = b->kind == RT_BUF_INPUT ? p->ninput : p->noutput;
    if (b->index < 0 || b->index >= n)
      return rt_err(e, "plan '%s': buffer %d '%s' is %s %d of %d", plan_name(p), i, nm,
                    b->kind == RT_BUF_INPUT ? "input" : "output", b->index, n);
    return 0;
  }
  case RT_BUF_STATE:
    if (!b->name) return rt_err(e, "plan '%s': state buffer %d has no name", plan_name(p), i);
    return 0;
  case RT_BUF_CONST:
    if (!b->data && b->bytes) return rt_err(e, "plan '%s': constant buffer %d '%s' has no data", plan_name(p), i, nm);
    return 0;
  }
  return rt_err(e, "plan '%s': buffer %d '%s' has an unknown kind %d", plan_name(p), i, nm, (int)b->kind);
}

/* The operand: rows x cols with leading dimension ld, 'batch' times 'stride'
 * apart from element off on, must lie inside buffer b. */
static int check_operand(const RtPlan *p, int s, char which, const RtBuffer *b, int rows, int cols, int ld,
                         int64_t stride, int64_t off, int batch, RtErr *e) {
  const RtStep *st = &p->step[s];
  if (b->dtype != RT_F32)
    return rt_err(e, "plan '%s': step %d '%s': GEMM operand %c is not f32", plan_name(p), s, step_name(st), which);
  if (ld < cols || stride < 0 || off < 0)
    return rt_err(e, "plan '%s': step %d '%s': GEMM operand %c has leading dimension %d for %d columns (stride %lld)",
                  plan_name(p), s, step_name(st), which, ld, cols, (long long)stride);
  int64_t extent = off + (int64_t)(batch - 1) * stride + (int64_t)(rows - 1) * ld + cols;
  if (extent > numel(b))
    return rt_err(e, "plan '%s': step %d '%s': GEMM operand %c reaches element %lld of buffer '%s' (%lld elements)",
                  plan_name(p), s, step_name(st), which, (long long)extent, b->name ? b->name : "",
                  (long long)numel(b));
  return 0;
}

static int check_gemm(const RtPlan *p, int s, RtErr *e) {
  const RtStep *st = &p->step[s];
  const RtGemm *g = &st->gemm;
  if (st->narg != (g->ln ? 5 : 3))
    return rt_err(e, "plan '%s': step %d '%s': GEMM takes %s, not %d buffers", plan_name(p), s, step_name(st),
                  g->ln ? "5 buffers (a, b, c, gamma, beta)" : "3 buffers (a, b, c)", st->narg);
  if (g->ln && (g->batch != 1 || g->trans_a || g->lda != g->k))
    return rt_err(e, "plan '%s': step %d '%s': a layer-norm prologue needs one untransposed block of rows "
                  "(batch %d, trans_a %d, lda %d, k %d)", plan_name(p), s, step_name(st), g->batch, g->trans_a,
                  g->lda, g->k);
  if (g->ln && (int64_t)g->m * g->k > RT_GEMM_LN_MAX_ELEMS)
    return rt_err(e, "plan '%s': step %d '%s': a layer-norm prologue of %d x %d elements (at most %d)", plan_name(p),
                  s, step_name(st), g->m, g->k, RT_GEMM_LN_MAX_ELEMS);
  for (int i = 3; i < st->narg; i++)
    if (check_operand(p, s, i == 3 ? 'g' : 'e', &p->buf[st->arg[i]], 1, g->k, g->k, 0, 0, 1, e)) return -1;
  if (g->batch < 1 || g->m < 1 || g->n < 1 || g->k < 1)
    return rt_err(e, "plan '%s': step %d '%s': GEMM sizes batch %d m %d n %d k %d must be positive", plan_name(p), s,
                  step_name(st), g->batch, g->m, g->n, g->k);
  const RtBuffer *a = &p->buf[st->arg[0]], *b = &p->buf[st->arg[1]], *c = &p->buf[st->arg[2]];
  if (check_operand(p, s, 'a', a, g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k, g->lda, g->stride_a, g->off_a,
                    g->batch, e) ||
      check_operand(p, s, 'b', b, g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n, g->ldb, g->stride_b, g->off_b,
                    g->batch, e) ||
      check_operand(p, s, 'c', c, g->m, g->n, g->ldc, g->stride_c, g->off_c, g->batch, e))
    return -1;
  return 0;
}

static int check_step(const RtPlan *p, int s, RtErr *e) {
  const RtStep *st = &p->step[s];
  if (st->narg < 0 || (st->narg > 0 && !st->arg))
    return rt_err(e, "plan '%s': step %d '%s' has no argument list", plan_name(p), s, step_name(st));
  for (int k = 0; k < st->narg; k++)
    if (st->arg[k] < 0 || st->arg[k] >= p->nbuf)
      return rt_err(e, "plan '%s': step %d '%s': argument %d is buffer %d of %d", plan_name(p), s, step_name(st), k,
                    st->arg[k], p->nbuf);
  if (st->nwrite < 0 || (st->nwrite > 0 && !st->write))
    return rt_err(e, "plan '%s': step %d '%s' has no list of written buffers", plan_name(p), s, step_name(st));
  for (int k = 0; k < st->nwrite; k++)
    if (st->write[k] < 0 || st->write[k] >= p->nbuf)
      return rt_err(e, "plan '%s': step %d '%s': written buffer %d is buffer %d of %d", plan_name(p), s,
                    step_name(st), k, st->write[k], p->nbuf);
  switch (st->kind) {
  case RT_STEP_KERNEL:
    if (st->kernel < 0 || st->kernel >= p->nkernel || !p->kernel || !p->kernel[st->kernel])
      return rt_err(e, "plan '%s': step %d '%s': kernel %d of %d is missing", plan_name(p), s, step_name(st),
                    st->kernel, p->nkernel);
    if (st->range < 1)
      return rt_err(e, "plan '%s': step %d '%s': parallel range %lld (at least 1)", plan_name(p), s, step_name(st),
                    (long long)st->range);
    return 0;
  case RT_STEP_GEMM: return check_gemm(p, s, e);
  case RT_STEP_COPY:
    if (st->narg != 2)
      return rt_err(e, "plan '%s': step %d '%s': copy takes 2 buffers, not %d", plan_name(p), s, step_name(st),
                    st->narg);
    if (p->buf[st->arg[0]].bytes != p->buf[st->arg[1]].bytes)
      return rt_err(e, "plan '%s': step %d '%s': copy of %lld bytes into %lld", plan_name(p), s, step_name(st),
                    (long long)p->buf[st->arg[0]].bytes, (long long)p->buf[st->arg[1]].bytes);
    return 0;
  }
  return rt_err(e, "plan '%s': step %d '%s' has an unknown kind %d", plan_name(p), s, step_name(st), (int)st->kind);
}

int rt_plan_check(const RtPlan *p, RtErr *e) {
  if (!p) return rt_err(e, "no plan");
  if (p->nbuf < 0 || p->nstep < 0 || p->nkernel < 0 || p->ninput < 0 || p->noutput < 0 || p->arena_bytes < 0 ||
      (p->nbuf && !p->buf) || (p->nstep && !p->step))
    return rt_err(e, "plan '%s': negative counts or missing buffer/step arrays", plan_name(p));
  for (int i = 0; i < p->nbuf; i++)
    if (check_buffer(p, i, e)) return -1;
  for (int s = 0; s < p->nstep; s++)
    if (check_step(p, s, e)) return -1;
  if (p->ncheck < 0 || (p->ncheck && !p->check)) return rt_err(e, "plan '%s': bad index checks", plan_name(p));
  for (int c = 0; c < p->ncheck; c++)
    if (p->check[c].input < 0 || p->check[c].input >= p->ninput || p->check[c].limit < 0)
      return rt_err(e, "plan '%s': index check %d names input %d of %d (limit %lld)", plan_name(p), c,
                    p->check[c].input, p->ninput, (long long)p->check[c].limit);
  return 0;
}
