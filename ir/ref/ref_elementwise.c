/* ref_elementwise.c — reference kernels for elementwise ops: unary, binary,
 * comparisons, where and casts. Every buffer is (n). f32 math is done in
 * double and rounded once, so results are as close to correctly rounded as
 * the C library allows. */
#include <math.h>

#include "ir/ref/ref_kernels.h"

/* i32 arithmetic wraps (two's complement), as numpy's int32 does; going
 * through uint32_t keeps the overflow defined in C. */
static int32_t wrap_i32(uint32_t u) { return (int32_t)u; }

static double gelu_tanh(double x) {
  const double k = 0.7978845608028654; /* sqrt(2/pi) */
  return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

static double unary_f64(IrOp op, double x) {
  switch (op) {
  case OP_NEG: return -x;
  case OP_ABS: return fabs(x);
  case OP_EXP: return exp(x);
  case OP_LOG: return log(x);
  case OP_SQRT: return sqrt(x);
  case OP_RSQRT: return 1.0 / sqrt(x);
  case OP_TANH: return tanh(x);
  case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case OP_RELU: return isnan(x) || x > 0 ? x : 0.0; /* NaN passes through, as in PyTorch */
  case OP_GELU: return gelu_tanh(x);
  default: return NAN; /* the caller only passes the ops listed in ref_kernels.h */
  }
}

void ref_unary_f32(float *out, const float *x, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (float)unary_f64(op, (double)x[i]);
}

void ref_unary_i32(int32_t *out, const int32_t *x, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t neg = 0u - (uint32_t)x[i];
    out[i] = (op == OP_ABS && x[i] >= 0) ? x[i] : wrap_i32(neg);
  }
}

/* max/min propagate NaN, like numpy's maximum/minimum and torch.maximum. */
static double max_f64(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
static double min_f64(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }

static double binary_f64(IrOp op, double a, double b) {
  switch (op) {
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  case OP_MAX: return max_f64(a, b);
  case OP_MIN: return min_f64(a, b);
  case OP_POW: return pow(a, b);
  default: return NAN; /* not a binary f32 op; see ref_kernels.h */
  }
}

void ref_binary_f32(float *out, const float *a, const float *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (float)binary_f64(op, (double)a[i], (double)b[i]);
}

/* Python's a // b for b != 0. C's / truncates toward zero, so step down by
 * one when the remainder is nonzero and the signs differ. b == -1 is taken
 * apart because INT32_MIN / -1 overflows (it wraps to INT32_MIN here). */
static int32_t floor_div_i32(int32_t a, int32_t b) {
  if (b == -1) return wrap_i32(0u - (uint32_t)a);
  int32_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
  return q;
}

int64_t ref_binary_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t ua = (uint32_t)a[i], ub = (uint32_t)b[i];
    switch (op) {
    case OP_ADD: out[i] = wrap_i32(ua + ub); break;
    case OP_SUB: out[i] = wrap_i32(ua - ub); break;
    case OP_MUL: out[i] = wrap_i32(ua * ub); break;
    case OP_DIV:
      if (b[i] == 0) return i;
      out[i] = floor_div_i32(a[i], b[i]);
      break;
    case OP_MAX: out[i] = a[i] > b[i] ? a[i] : b[i]; break;
    case OP_MIN: out[i] = a[i] < b[i] ? a[i] : b[i]; break;
    default: out[i] = 0; break; /* not an i32 binary op; see ref_kernels.h */
    }
  }
  return -1;
}

/* Comparisons on doubles are exact for both f32 and i32 values. NaN
 * compares false except with NE, as in IEEE and numpy. */
static int32_t compare_f64(IrOp op, double a, double b) {
  switch (op) {
  case OP_LT: return a < b;
  case OP_LE: return a <= b;
  case OP_GT: return a > b;
  case OP_GE: return a >= b;
  case OP_EQ: return a == b;
  case OP_NE: return a != b;
  default: return 0; /* not a comparison; see ref_kernels.h */
  }
}

void ref_compare_f32(int32_t *out, const float *a, const float *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = compare_f64(op, (double)a[i], (double)b[i]);
}

void ref_compare_i32(int32_t *out, const int32_t *a, const int32_t *b, IrOp op, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = compare_f64(op, (double)a[i], (double)b[i]);
}

void ref_where_f32(float *out, const int32_t *cond, const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = cond[i] != 0 ? a[i] : b[i];
}

void ref_where_i32(int32_t *out, const int32_t *cond, const int32_t *a, const int32_t *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = cond[i] != 0 ? a[i] : b[i];
}

void ref_cast_f32_i32(int32_t *out, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = (double)x[i];
    if (isnan(v)) out[i] = 0;
    else if (v >= 2147483647.0) out[i] = INT32_MAX;
    else if (v <= -2147483648.0) out[i] = INT32_MIN;
    else out[i] = (int32_t)v; /* C truncates toward zero */
  }
}

void ref_cast_i32_f32(float *out, const int32_t *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (float)x[i];
}
