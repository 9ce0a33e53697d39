/* op_eval.c — the scalar meaning of each elementwise op, the one place its
 * formula is written (op_eval.h states precision and NaN rules). Every
 * switch here lists every IrOp and has no `default:`, so an op added to
 * ops.def without a meaning here fails the build under -Wswitch. */
#include "ir/op_eval.h"

#include <math.h>

/* The ops that are not PAT_ELEMWISE, as case labels: none of them has a
 * scalar meaning. */
#define CASES_NOT_ELEMENTWISE                                                                                   \
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_SUM:        \
  case OP_REDUCE_MAX: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE:   \
  case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT:    \
  case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: \
  case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT

#define CASES_UNARY                                                                                   \
  case OP_NEG: case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: \
  case OP_SIGMOID: case OP_RELU: case OP_GELU: case OP_SILU
#define CASES_BINARY case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW
#define CASES_COMPARE case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE
#define CASES_OTHER_ELEMENTWISE case OP_WHERE: case OP_CAST: case OP_STOP_GRADIENT: case OP_STRAIGHT_THROUGH

OpEvalKind op_eval_kind(IrOp op) {
  switch (op) {
  CASES_UNARY: return OP_EVAL_UNARY;
  CASES_BINARY: return OP_EVAL_BINARY;
  CASES_COMPARE: return OP_EVAL_COMPARE;
  case OP_WHERE: return OP_EVAL_WHERE;
  case OP_CAST: return OP_EVAL_CAST;
  case OP_STOP_GRADIENT:
  case OP_STRAIGHT_THROUGH: return OP_EVAL_IDENTITY;
  CASES_NOT_ELEMENTWISE: return OP_EVAL_NONE;
  }
  return OP_EVAL_NONE;
}

int op_eval_ulp_bound(IrOp op) {
  switch (op) {
  case OP_EXP: case OP_LOG: case OP_TANH: case OP_SIGMOID: case OP_GELU: case OP_SILU: return OP_EVAL_ULP_BOUND;
  case OP_NEG: case OP_ABS: case OP_SQRT: case OP_RSQRT: case OP_RELU:
  CASES_BINARY:
  CASES_COMPARE:
  CASES_OTHER_ELEMENTWISE:
  CASES_NOT_ELEMENTWISE: return 0;
  }
  return 0;
}

/* 1 / (1 + e^-x); exp(-x) overflowing to inf gives the right limit 0. */
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* x sigmoid(2 K (x + C x^3)): gelu's tanh approximation (op_eval.h). */
static double gelu_tanh(double x) {
  return x * sigmoid(2.0 * OP_EVAL_GELU_K * (x + OP_EVAL_GELU_C * x * x * x));
}

double op_eval_unary_f64(IrOp op, double x) {
  switch (op) {
  case OP_NEG: return -x;
  case OP_ABS: return fabs(x);
  case OP_EXP: return exp(x);
  case OP_LOG: return log(x);
  case OP_SQRT: return sqrt(x);
  case OP_RSQRT: return 1.0 / sqrt(x);
  case OP_TANH: return tanh(x);
  case OP_SIGMOID: return sigmoid(x);
  case OP_RELU: return isnan(x) || x > 0 ? x : 0.0; /* NaN propagates */
  case OP_GELU: return gelu_tanh(x);
  case OP_SILU: return x * sigmoid(x);
  CASES_BINARY:
  CASES_COMPARE:
  CASES_OTHER_ELEMENTWISE:
  CASES_NOT_ELEMENTWISE: return NAN;
  }
  return NAN;
}

float op_eval_unary_f32(IrOp op, float x) { return (float)op_eval_unary_f64(op, (double)x); }

/* max/min propagate NaN, like torch.maximum and numpy's maximum. */
static double max_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
static double min_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }

double op_eval_binary_f64(IrOp op, double a, double b) {
  switch (op) {
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  case OP_MAX: return max_nan(a, b);
  case OP_MIN: return min_nan(a, b);
  case OP_POW: return pow(a, b);
  CASES_UNARY:
  CASES_COMPARE:
  CASES_OTHER_ELEMENTWISE:
  CASES_NOT_ELEMENTWISE: return NAN;
  }
  return NAN;
}

float op_eval_binary_f32(IrOp op, float a, float b) {
  return (float)op_eval_binary_f64(op, (double)a, (double)b);
}

/* i32 arithmetic wraps; going through uint32_t keeps overflow defined in C. */
static int32_t wrap(uint32_t u) { return (int32_t)u; }

int32_t op_eval_unary_i32(IrOp op, int32_t x) {
  int32_t neg = wrap(0u - (uint32_t)x);
  return op == OP_ABS && x >= 0 ? x : op == OP_NEG || op == OP_ABS ? neg : 0;
}

/* Python's a // b for b != 0. C's / truncates toward zero, so step down by
 * one when the remainder is nonzero and the signs differ. b == -1 is taken
 * apart because INT32_MIN / -1 overflows (it wraps to INT32_MIN here). */
static int32_t floor_div(int32_t a, int32_t b) {
  if (b == -1) return wrap(0u - (uint32_t)a);
  int32_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q -= 1;
  return q;
}

bool op_eval_binary_i32(IrOp op, int32_t a, int32_t b, int32_t *out) {
  uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
  switch (op) {
  case OP_ADD: *out = wrap(ua + ub); return true;
  case OP_SUB: *out = wrap(ua - ub); return true;
  case OP_MUL: *out = wrap(ua * ub); return true;
  case OP_DIV:
    if (b == 0) return false;
    *out = floor_div(a, b);
    return true;
  case OP_MAX: *out = a > b ? a : b; return true;
  case OP_MIN: *out = a < b ? a : b; return true;
  case OP_POW: /* f32 only (shape rule binary_f32) */
  CASES_UNARY:
  CASES_COMPARE:
  CASES_OTHER_ELEMENTWISE:
  CASES_NOT_ELEMENTWISE: return false;
  }
  return false;
}

/* Comparisons on doubles are exact for both f32 and i32 values. NaN
 * compares false except with NE, as in IEEE and numpy. */
int32_t op_eval_compare(IrOp op, double a, double b) {
  switch (op) {
  case OP_LT: return a < b;
  case OP_LE: return a <= b;
  case OP_GT: return a > b;
  case OP_GE: return a >= b;
  case OP_EQ: return a == b;
  case OP_NE: return a != b;
  CASES_UNARY:
  CASES_BINARY:
  CASES_OTHER_ELEMENTWISE:
  CASES_NOT_ELEMENTWISE: return 0;
  }
  return 0;
}

double op_eval_where(int32_t cond, double a, double b) { return cond != 0 ? a : b; }

int32_t op_eval_cast_f32_i32(float x) {
  double v = (double)x;
  if (isnan(v)) return 0;
  if (v >= 2147483647.0) return INT32_MAX;
  if (v <= -2147483648.0) return INT32_MIN;
  return (int32_t)v; /* C truncates toward zero */
}

float op_eval_cast_i32_f32(int32_t x) { return (float)x; }
