/* ref_elementwise.c — reference kernels for elementwise ops: unary, binary,
 * comparisons, where and casts, as loops over flat (n) buffers. The value
 * of each element is op_eval's (ir/op_eval.h), the one definition of what
 * an elementwise op computes. */
#include "ir/op_eval.h"
#include "ir/ref/ref_kernels.h"

void ref_unary_f32(float *out, const float *x, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_unary_f32(op, x[i]);
}

void ref_unary_i32(int32_t *out, const int32_t *x, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_unary_i32(op, x[i]);
}

void ref_binary_f32(float *out, const float *a, const float *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_binary_f32(op, a[i], b[i]);
}

int64_t ref_binary_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!op_eval_binary_i32(op, a[i], b[i], &out[i])) return i; /* only DIV by zero fails */
  return -1;
}

void ref_compare_f32(int32_t *out, const float *a, const float *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_compare(op, (double)a[i], (double)b[i]);
}

void ref_compare_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_compare(op, (double)a[i], (double)b[i]);
}

void ref_where_f32(float *out, const int32_t *cond, const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = cond[i] != 0 ? a[i] : b[i];
}

void ref_where_i32(int32_t *out, const int32_t *cond, const int32_t *a, const int32_t *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = cond[i] != 0 ? a[i] : b[i];
}

void ref_cast_f32_i32(int32_t *out, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_cast_f32_i32(x[i]);
}

void ref_cast_i32_f32(float *out, const int32_t *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = op_eval_cast_i32_f32(x[i]);
}
