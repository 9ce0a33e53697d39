/* ref_ops_leaf.c — executors for the leaves (ops without inputs): bound
 * inputs and parameters, constants, iota and Gumbel noise. */
#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"
#include "runtime/core/rng.h"

/* INPUT and PARAM hand on the caller's tensor, which ref_run has already
 * checked against the node; it is never copied or freed. */
static int exec_bound(RefStep *s, RtErr *e) {
  if (!s->bound) return ref_step_err(s, e, "'%s' has no tensor bound to it", s->node->name ? s->node->name : "?");
  s->out = s->bound;
  s->borrowed = true;
  return 0;
}

int ref_exec_INPUT(RefStep *s, RtErr *e) { return exec_bound(s, e); }
int ref_exec_PARAM(RefStep *s, RtErr *e) { return exec_bound(s, e); }
int ref_exec_STATE(RefStep *s, RtErr *e) { return exec_bound(s, e); }

/* out (attr.shape) = attr.value. The builder has checked that an i32 value
 * is a 32-bit integer. */
int ref_exec_CONST(RefStep *s, RtErr *e) {
  (void)e;
  int64_t n = rt_tensor_numel(s->out);
  if (s->out->dtype == RT_I32) ref_fill_i32(rt_i32(s->out), (int32_t)s->node->attr.value, n);
  else ref_fill_f32(rt_f32(s->out), (float)s->node->attr.value, n);
  return 0;
}

/* out (attr.shape) i32 = the element's index along attr.axis. */
int ref_exec_IOTA(RefStep *s, RtErr *e) {
  (void)e;
  int64_t outer, n, inner;
  ref_split_axis(&s->node->shape, s->node->attr.axis, &outer, &n, &inner);
  ref_iota(rt_i32(s->out), outer, n, inner);
  return 0;
}

/* out (attr.shape) f32 = Gumbel(0, 1) noise from Philox(seed, attr.salt, step, index). */
int ref_exec_GUMBEL(RefStep *s, RtErr *e) {
  (void)e;
  rt_gumbel_fill(rt_f32(s->out), rt_tensor_numel(s->out), s->opt->seed, s->node->attr.salt, s->opt->step);
  return 0;
}
