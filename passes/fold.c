/* fold.c — constant folding.
 *
 * A node whose inputs are all constants (CONST, possibly behind RESHAPE /
 * BROADCAST) and whose result is one value repeated becomes a CONST of its
 * own shape. Only splats are ever produced, so folding never materialises a
 * tensor: a huge broadcast of a constant stays one CONST node.
 *
 * Elementwise values come from ir/op_eval.h, as the reference executor's
 * do (the operands are f32 or i32 values held in doubles); sums accumulate
 * in double from 0 (a sum of n copies of v is exactly v*n in double,
 * n < 2^29). Not folded: i32 division by zero (the executor
 * reports it with the op's location), reductions over zero elements, and ops
 * whose result varies along an axis (onehot, gather, matmul...).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ir/op_eval.h"
#include "passes/rewrite.h"
#include "passes/simplify.h"

static double wrap32(uint32_t u) { return (double)(int32_t)u; }

/* i32 binary op; false for division by zero (left to fail at run time). */
static bool binary_i32(IrOp op, double a, double b, double *r) {
  int32_t q;
  if (!op_eval_binary_i32(op, (int32_t)a, (int32_t)b, &q)) return false;
  *r = q;
  return true;
}

static double cast_value(double x, IrDType from, IrDType to) {
  if (from == to) return x;
  if (to == IR_F32) return op_eval_cast_i32_f32((int32_t)x);
  return op_eval_cast_f32_i32((float)x);
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
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_TANH: case OP_SIGMOID: case OP_RELU: case OP_GELU: case OP_SILU:
    if (n->dtype == IR_I32) *r = op_eval_unary_i32(n->op, (int32_t)v[0]);
    else *r = op_eval_unary_f32(n->op, (float)v[0]);
    return true;
  case OP_CAST: *r = cast_value(v[0], in_t, n->dtype); return true;
  case OP_STOP_GRADIENT:
  case OP_STRAIGHT_THROUGH: /* the forward value is the first input's */
  case OP_RESHAPE:
  case OP_BROADCAST:
  case OP_PERMUTE:
  case OP_SLICE: *r = v[0]; return true;
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_MAX: case OP_MIN: case OP_POW:
    if (n->dtype == IR_I32) return binary_i32(n->op, v[0], v[1], r);
    *r = op_eval_binary_f32(n->op, (float)v[0], (float)v[1]);
    return true;
  case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
    *r = op_eval_compare(n->op, v[0], v[1]);
    return true;
  case OP_WHERE: *r = op_eval_where((int32_t)v[0], v[1], v[2]); return true;
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
  /* not folded: leaves (and IOTA, handled by visit), noise, and ops whose
   * result is not one repeated value or that the reference executor would
   * reject at run time */
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL:
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT:
  case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT:
  case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: return false;
  }
  return false;
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
