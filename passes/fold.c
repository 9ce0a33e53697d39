/* fold.c — constant folding.
 *
 * A node whose inputs are all constants (CONST, possibly behind RESHAPE /
 * BROADCAST) and whose result is one value repeated becomes a CONST of its
 * own shape. Only splats are ever produced, so folding never materialises a
 * tensor: a huge broadcast of a constant stays one CONST node.
 *
 * Values are computed exactly as the reference executor computes them: f32
 * math in double on f32-rounded operands, rounded once; i32 arithmetic wraps
 * and divides by flooring; f32 -> i32 casts truncate, saturate and send NaN
 * to 0; sums accumulate in double from 0 (a sum of n copies of v is exactly
 * v*n in double, n < 2^29). Not folded: i32 division by zero (the executor
 * reports it with the op's location), reductions over zero elements, and ops
 * whose result varies along an axis (onehot, gather, matmul...).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "passes/rewrite.h"
#include "passes/simplify.h"

static double gelu_tanh(double x) {
  const double k = 0.7978845608028654; /* sqrt(2/pi) */
  return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

/* f32 unary op on x; false if op is not one. */
static bool unary_f32(IrOp op, double x, double *r) {
  switch (op) {
  case OP_NEG: *r = -x; break;
  case OP_ABS: *r = fabs(x); break;
  case OP_EXP: *r = exp(x); break;
  case OP_LOG: *r = log(x); break;
  case OP_SQRT: *r = sqrt(x); break;
  case OP_RSQRT: *r = 1.0 / sqrt(x); break;
  case OP_TANH: *r = tanh(x); break;
  case OP_SIGMOID: *r = 1.0 / (1.0 + exp(-x)); break;
  case OP_RELU: *r = isnan(x) || x > 0 ? x : 0.0; break;
  case OP_GELU: *r = gelu_tanh(x); break;
  default: return false;
  }
  *r = (double)(float)*r;
  return true;
}

/* NaN in either operand gives NaN, as the executor's max/min. */
static double max_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
static double min_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }

static bool binary_f32(IrOp op, double a, double b, double *r) {
  switch (op) {
  case OP_ADD: *r = a + b; break;
  case OP_SUB: *r = a - b; break;
  case OP_MUL: *r = a * b; break;
  case OP_DIV: *r = a / b; break;
  case OP_MAX: *r = max_nan(a, b); break;
  case OP_MIN: *r = min_nan(a, b); break;
  case OP_POW: *r = pow(a, b); break;
  default: return false;
  }
  *r = (double)(float)*r;
  return true;
}

static double wrap32(uint32_t u) { return (double)(int32_t)u; }

/* i32 binary op; false for division by zero (left to fail at run time). */
static bool binary_i32(IrOp op, double da, double db, double *r) {
  int32_t a = (int32_t)da, b = (int32_t)db;
  switch (op) {
  case OP_ADD: *r = wrap32((uint32_t)a + (uint32_t)b); return true;
  case OP_SUB: *r = wrap32((uint32_t)a - (uint32_t)b); return true;
  case OP_MUL: *r = wrap32((uint32_t)a * (uint32_t)b); return true;
  case OP_MAX: *r = a > b ? a : b; return true;
  case OP_MIN: *r = a < b ? a : b; return true;
  case OP_DIV:
    if (b == 0) return false;
    if (b == -1) { /* INT32_MIN // -1 wraps */
      *r = wrap32(0u - (uint32_t)a);
      return true;
    }
    *r = a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0); /* floor, as Python's // */
    return true;
  default: return false;
  }
}

static bool compare(IrOp op, double a, double b, double *r) {
  switch (op) {
  case OP_LT: *r = a < b; break;
  case OP_LE: *r = a <= b; break;
  case OP_GT: *r = a > b; break;
  case OP_GE: *r = a >= b; break;
  case OP_EQ: *r = a == b; break;
  case OP_NE: *r = a != b; break;
  default: return false;
  }
  return true;
}

static double cast_value(double x, IrDType from, IrDType to) {
  if (from == to) return x;
  if (to == IR_F32) return (double)(float)x;
  if (isnan(x)) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return trunc(x);
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Elements of 'in' reduced into each output element: the product of the
 * dims whose bits are set in 'axes'. */
static int64_t reduced_count(const IrShape *in, uint32_t axes) {
  int64_t c = 1;
  for (int i = 0; i < in->rank; i++)
    if (axes & (1u << i)) c *= in->d[i];
  return c;
}

/* The value every element of n's result takes, given its inputs' splat
 * values v[]; false if n cannot be folded. */
static bool eval(const PassRewrite *rw, const IrNode *n, const double *v, double *r) {
  IrDType in_t = n->nin > 0 ? pass_rw_node(rw, n->in[0])->dtype : n->dtype;
  switch (n->op) {
  case OP_NEG:
  case OP_ABS:
    if (n->dtype == IR_I32) {
      int32_t x = (int32_t)v[0];
      *r = n->op == OP_ABS && x >= 0 ? x : wrap32(0u - (uint32_t)x);
      return true;
    }
    return unary_f32(n->op, v[0], r);
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_TANH: case OP_SIGMOID: case OP_RELU: case OP_GELU:
    return unary_f32(n->op, v[0], r);
  case OP_CAST: *r = cast_value(v[0], in_t, n->dtype); return true;
  case OP_STOP_GRADIENT:
  case OP_STRAIGHT_THROUGH: /* the forward value is the first input's */
  case OP_RESHAPE:
  case OP_BROADCAST:
  case OP_PERMUTE:
  case OP_SLICE: *r = v[0]; return true;
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_MAX: case OP_MIN: case OP_POW:
    return n->dtype == IR_I32 ? binary_i32(n->op, v[0], v[1], r) : binary_f32(n->op, v[0], v[1], r);
  case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
    return compare(n->op, v[0], v[1], r);
  case OP_WHERE: *r = v[0] != 0 ? v[1] : v[2]; return true;
  case OP_CONCAT:
    *r = v[0];
    return same_bits(v[0], v[1]);
  case OP_SUM: {
    const IrShape *s = &pass_rw_node(rw, n->in[0])->shape;
    int64_t c = reduced_count(s, n->attr.axes);
    if (c == 0 || (n->dtype == IR_F32 && c >= (int64_t)1 << 29)) return false; /* v*c exact below 2^29 */
    if (n->dtype == IR_I32) *r = wrap32((uint32_t)((uint64_t)(int64_t)v[0] * (uint64_t)c));
    else *r = (double)(float)(0.0 + v[0] * (double)c); /* 0.0 + : a sum of -0.0s is +0.0 */
    return true;
  }
  case OP_REDUCE_MAX:
    *r = v[0];
    return reduced_count(&pass_rw_node(rw, n->in[0])->shape, n->attr.axes) > 0;
  case OP_ARGMAX: *r = 0; return true; /* every element is a maximum; the first wins */
  default: return false;
  }
}

static int visit(PassRewrite *rw, const IrNode *n, void *ctx) {
  (void)ctx;
  double v[IR_MAX_IN], r;
  if (n->op == OP_IOTA && n->attr.shape.d[n->attr.axis] == 1) r = 0;
  else {
    if (n->nin == 0) return pass_rw_copy(rw, n);
    for (int k = 0; k < n->nin; k++)
      if (!pass_rw_splat(rw, n->in[k], &v[k])) return pass_rw_copy(rw, n);
    if (!eval(rw, n, v, &r)) return pass_rw_copy(rw, n);
  }
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.shape = n->shape;
  a.dtype = n->dtype;
  a.value = r;
  return ir_build(rw->dst, OP_CONST, NULL, 0, &a, n->loc);
}

int pass_fold(IrGraph *g) { return pass_rewrite(g, "fold", visit, NULL); }
