/* ref_ops_elementwise.c — executors for elementwise ops: unary, binary,
 * comparisons, where, cast, and the identities stop_gradient and
 * straight_through. Inputs and output all have the node's shape (the
 * builder inserted any broadcasting), so every kernel sees flat (n) buffers. */
#include <string.h>

#include "ir/ref/ref_kernels.h"
#include "ir/ref/ref_step.h"

/* NEG ABS (f32 or i32) and the f32-only unary ops. */
static int exec_unary(RefStep *s, RtErr *e) {
  (void)e;
  int64_t n = rt_tensor_numel(s->out);
  if (s->out->dtype == RT_I32) ref_unary_i32(rt_i32(s->out), rt_i32(s->in[0]), s->node->op, n);
  else ref_unary_f32(rt_f32(s->out), rt_f32(s->in[0]), s->node->op, n);
  return 0;
}

int ref_exec_NEG(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_ABS(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_EXP(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_LOG(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_SQRT(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_RSQRT(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_TANH(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_SIGMOID(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_RELU(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_GELU(RefStep *s, RtErr *e) { return exec_unary(s, e); }
int ref_exec_SILU(RefStep *s, RtErr *e) { return exec_unary(s, e); }

/* out = x converted to attr.dtype (a plain copy when the dtypes agree). */
int ref_exec_CAST(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *x = s->in[0];
  int64_t n = rt_tensor_numel(s->out);
  if (x->dtype == s->out->dtype) memcpy(s->out->data, x->data, rt_tensor_bytes(x));
  else if (x->dtype == RT_F32) ref_cast_f32_i32(rt_i32(s->out), rt_f32(x), n);
  else ref_cast_i32_f32(rt_f32(s->out), rt_i32(x), n);
  return 0;
}

/* The forward value of stop_gradient(x) is x. */
int ref_exec_STOP_GRADIENT(RefStep *s, RtErr *e) {
  (void)e;
  memcpy(s->out->data, s->in[0]->data, rt_tensor_bytes(s->out));
  return 0;
}

/* The forward value of straight_through(hard, soft) is hard, bit for bit. */
int ref_exec_STRAIGHT_THROUGH(RefStep *s, RtErr *e) {
  (void)e;
  memcpy(s->out->data, s->in[0]->data, rt_tensor_bytes(s->out));
  return 0;
}

/* ADD SUB MUL DIV MAX MIN POW; i32 division by zero is an error. */
static int exec_binary(RefStep *s, RtErr *e) {
  const RtTensor *a = s->in[0], *b = s->in[1];
  int64_t n = rt_tensor_numel(s->out);
  if (s->out->dtype == RT_F32) {
    ref_binary_f32(rt_f32(s->out), rt_f32(a), rt_f32(b), s->node->op, n);
    return 0;
  }
  int64_t bad = ref_binary_i32(rt_i32(s->out), rt_i32(a), rt_i32(b), s->node->op, n);
  if (bad >= 0)
    return ref_step_err(s, e, "integer division by zero at element %lld (%d // 0)", (long long)bad,
                        (int)rt_i32(a)[bad]);
  return 0;
}

int ref_exec_ADD(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_SUB(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_MUL(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_DIV(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_MAX(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_MIN(RefStep *s, RtErr *e) { return exec_binary(s, e); }
int ref_exec_POW(RefStep *s, RtErr *e) { return exec_binary(s, e); }

/* LT LE GT GE EQ NE on f32 or i32 operands -> i32 0/1. */
static int exec_compare(RefStep *s, RtErr *e) {
  (void)e;
  const RtTensor *a = s->in[0], *b = s->in[1];
  int64_t n = rt_tensor_numel(s->out);
  if (a->dtype == RT_F32) ref_compare_f32(rt_i32(s->out), rt_f32(a), rt_f32(b), s->node->op, n);
  else ref_compare_i32(rt_i32(s->out), rt_i32(a), rt_i32(b), s->node->op, n);
  return 0;
}

int ref_exec_LT(RefStep *s, RtErr *e) { return exec_compare(s, e); }
int ref_exec_LE(RefStep *s, RtErr *e) { return exec_compare(s, e); }
int ref_exec_GT(RefStep *s, RtErr *e) { return exec_compare(s, e); }
int ref_exec_GE(RefStep *s, RtErr *e) { return exec_compare(s, e); }
int ref_exec_EQ(RefStep *s, RtErr *e) { return exec_compare(s, e); }
int ref_exec_NE(RefStep *s, RtErr *e) { return exec_compare(s, e); }

/* out = cond != 0 ? a : b, with a and b of the output's dtype. */
int ref_exec_WHERE(RefStep *s, RtErr *e) {
  (void)e;
  const int32_t *cond = rt_i32(s->in[0]);
  int64_t n = rt_tensor_numel(s->out);
  if (s->out->dtype == RT_F32) ref_where_f32(rt_f32(s->out), cond, rt_f32(s->in[1]), rt_f32(s->in[2]), n);
  else ref_where_i32(rt_i32(s->out), cond, rt_i32(s->in[1]), rt_i32(s->in[2]), n);
  return 0;
}
