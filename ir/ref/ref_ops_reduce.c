/* ref_ops_reduce.c — executors for reductions: sum and reduce_max over an
 * axis mask, argmax, softmax and log_softmax along one axis. */
#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"

/* SUM REDUCE_MAX: x (dims) -> out with the attr.axes dims reduced; keepdim
 * only changes the output's shape, not its element order. */
static int exec_reduce(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  uint32_t axes = s->node->attr.axes;
  bool sum = s->node->op == OP_SUM;
  if (x->dtype == RT_F32) {
    if (sum) ref_sum_f32(rt_f32(s->out), rt_f32(x), x->dim, x->rank, axes);
    else ref_reduce_max_f32(rt_f32(s->out), rt_f32(x), x->dim, x->rank, axes);
  } else {
    if (sum) ref_sum_i32(rt_i32(s->out), rt_i32(x), x->dim, x->rank, axes);
    else ref_reduce_max_i32(rt_i32(s->out), rt_i32(x), x->dim, x->rank, axes);
  }
  return 0;
}

int ref_exec_SUM(RefStep *s, RtErr *e) { return exec_reduce(s, e); }
int ref_exec_REDUCE_MAX(RefStep *s, RtErr *e) { return exec_reduce(s, e); }

/* ARGMAX: x (outer, n, inner) around attr.axis -> i32 (outer, inner). */
int ref_exec_ARGMAX(RefStep *s, RtErr *e) {
  (void)e;
  IrShape xs = ref_in_shape(s, 0);
  int64_t outer, n, inner;
  ref_split_axis(&xs, s->node->attr.axis, &outer, &n, &inner);
  if (s->in[0]->dtype == RT_F32) ref_argmax_f32(rt_i32(s->out), rt_f32(s->in[0]), outer, n, inner);
  else ref_argmax_i32(rt_i32(s->out), rt_i32(s->in[0]), outer, n, inner);
  return 0;
}

/* SOFTMAX LOG_SOFTMAX: x, out (outer, n, inner) around attr.axis. */
static int exec_softmax(RefStep *s, RtErr *e) {
  (void)e;
  int64_t outer, n, inner;
  ref_split_axis(&s->node->shape, s->node->attr.axis, &outer, &n, &inner);
  if (s->node->op == OP_SOFTMAX) ref_softmax(rt_f32(s->out), rt_f32(s->in[0]), outer, n, inner);
  else ref_log_softmax(rt_f32(s->out), rt_f32(s->in[0]), outer, n, inner);
  return 0;
}

int ref_exec_SOFTMAX(RefStep *s, RtErr *e) { return exec_softmax(s, e); }
int ref_exec_LOG_SOFTMAX(RefStep *s, RtErr *e) { return exec_softmax(s, e); }
