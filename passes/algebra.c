/* algebra.c — algebraic identities.
 *
 * One sweep in id order; each rule looks at the node's inputs as already
 * rewritten, so chains (neg(neg(neg x)), reshape(reshape(reshape x))) reach
 * their simplest form in one run and a second run finds nothing to do.
 * "c" below is a splat: a CONST, possibly behind RESHAPE/BROADCAST nodes.
 *
 *   x + 0, 0 + x, x - 0     -> x   (0 of either sign)
 *   x * 1, 1 * x, x / 1     -> x
 *   pow(x, 1)               -> x
 *   x * 0, 0 * x            -> 0   only if x is i32 or provably finite (see
 *                                  below): for f32, inf*0 and NaN*0 are NaN,
 *                                  and hiding a NaN would hide a diverging
 *                                  run. Gradient graphs rarely prove this, so
 *                                  in practice it fires on masks and one-hots.
 *   max(x, x), min(x, x)    -> x
 *   neg(neg x)              -> x
 *   permute(x, identity)    -> x
 *   permute(permute(x, p), q) -> permute(x, p∘q), or x if that is the identity
 *   reshape(x) to x's shape -> x
 *   reshape(reshape(x))     -> reshape(x), or x if the shapes agree
 *   reshape(broadcast(s)) with s of one element -> broadcast(reshape(s))
 *   broadcast(x) to x's shape -> x
 *   broadcast(broadcast(x)) -> broadcast(x)
 *   sum / reduce_max over no axes, or only over axes of length 1
 *                           -> x (keepdim or no axes) or reshape(x)
 *   slice covering every axis entirely -> x
 *   cast to x's own dtype   -> x
 *   stop_gradient(x), x a splat or i32 (nothing to stop) -> x
 *   stop_gradient(stop_gradient x) -> stop_gradient x
 *   where(c, a, b) with a splat condition -> a or b;  where(c, a, a) -> a
 *
 * Values are unchanged bit for bit except for the sign of a zero: x + 0,
 * x - (-0) and a sum over one element turn -0 into +0, and x * 0 (finite x)
 * gives +0 where IEEE gives -0 for negative x. Nothing in dal distinguishes
 * the two zeros, so these count as identities.
 *
 * Provably finite (for x * 0): i32 values; f32 CONSTs with a finite value;
 * onehot; casts from i32; and reshape, broadcast, permute, slice,
 * stop_gradient, neg, abs, relu, sigmoid, tanh, softmax of a provably
 * finite value; concat and where (both branches) of provably finite values.
 */
#include <math.h>
#include <string.h>

#include "passes/rewrite.h"
#include "passes/simplify.h"

/* How deep is_finite looks before giving up (answering "unknown"). */
#define FINITE_DEPTH 8

static bool splat_is(const PassRewrite *rw, int id, double want) {
  double v;
  return pass_rw_splat(rw, id, &v) && v == want;
}

static bool is_finite(const PassRewrite *rw, int id, int depth) {
  const IrNode *n = pass_rw_node(rw, id);
  if (n->dtype == IR_I32) return true;
  if (depth == 0) return false;
  switch (n->op) {
  case OP_CONST: return isfinite((float)n->attr.value);
  case OP_ONEHOT: return true;
  case OP_CAST: return pass_rw_node(rw, n->in[0])->dtype == IR_I32;
  case OP_RESHAPE: case OP_BROADCAST: case OP_PERMUTE: case OP_SLICE: case OP_STOP_GRADIENT:
  case OP_NEG: case OP_ABS: case OP_RELU: case OP_SIGMOID: case OP_TANH: case OP_SOFTMAX:
    return is_finite(rw, n->in[0], depth - 1);
  case OP_CONCAT: return is_finite(rw, n->in[0], depth - 1) && is_finite(rw, n->in[1], depth - 1);
  case OP_WHERE: return is_finite(rw, n->in[1], depth - 1) && is_finite(rw, n->in[2], depth - 1);
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_IOTA: case OP_GUMBEL: case OP_EXP: case OP_LOG:
  case OP_SQRT: case OP_RSQRT: case OP_GELU: case OP_SILU: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAX:
  case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
  case OP_STRAIGHT_THROUGH: case OP_SUM: case OP_REDUCE_MAX: case OP_ARGMAX: case OP_LOG_SOFTMAX:
  case OP_GATHER: case OP_GATHER_BACKWARD: case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D:
  case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY:
  case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return false;
}

/* Builds 'op' on 'in' with attrs 'a' into the new graph. */
static int emit(PassRewrite *rw, IrOp op, const int *in, int nin, const IrAttr *a, SrcLoc loc) {
  return ir_build(rw->dst, op, in, nin, a, loc);
}

/* x reshaped to s, looking through reshape chains: x's first non-reshape
 * ancestor if it already has shape s, else one RESHAPE of it. */
static int reshape_to(PassRewrite *rw, int x, IrShape s, SrcLoc loc) {
  while (pass_rw_node(rw, x)->op == OP_RESHAPE) x = pass_rw_node(rw, x)->in[0];
  if (ir_shape_eq(&pass_rw_node(rw, x)->shape, &s)) return x;
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.shape = s;
  return emit(rw, OP_RESHAPE, &x, 1, &a, loc);
}

/* A zero CONST of n's shape and dtype (for x * 0). */
static int zeros_like(PassRewrite *rw, const IrNode *n) {
  IrAttr z;
  memset(&z, 0, sizeof z);
  z.shape = n->shape;
  z.dtype = n->dtype;
  return emit(rw, OP_CONST, NULL, 0, &z, n->loc);
}

/* Binary elementwise identities: the input n reduces to, or -1 if none. */
static int binary_operand(const PassRewrite *rw, const IrNode *n) {
  int a = n->in[0], b = n->in[1];
  switch (n->op) {
  case OP_ADD:
    if (splat_is(rw, b, 0)) return a;
    return splat_is(rw, a, 0) ? b : -1;
  case OP_MUL:
    if (splat_is(rw, b, 1)) return a;
    return splat_is(rw, a, 1) ? b : -1;
  case OP_SUB: return splat_is(rw, b, 0) ? a : -1;
  case OP_DIV:
  case OP_POW: return splat_is(rw, b, 1) ? a : -1;
  case OP_MAX:
  case OP_MIN: return a == b ? a : -1;
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SUM:
  case OP_REDUCE_MAX: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_PERMUTE:
  case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT:
  case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT:
  case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return -1;
}

static int binary_rule(PassRewrite *rw, const IrNode *n) {
  int to = binary_operand(rw, n);
  if (to >= 0) return to;
  int a = n->in[0], b = n->in[1];
  if (n->op == OP_MUL && ((splat_is(rw, b, 0) && is_finite(rw, a, FINITE_DEPTH)) ||
                          (splat_is(rw, a, 0) && is_finite(rw, b, FINITE_DEPTH))))
    return zeros_like(rw, n);
  return pass_rw_copy(rw, n);
}

static bool identity_perm(const int *p, int rank) {
  for (int i = 0; i < rank; i++)
    if (p[i] != i) return false;
  return true;
}

/* permute(x, identity) -> x; permute(permute(y, p), q) -> permute(y, p∘q). */
static int permute_rule(PassRewrite *rw, const IrNode *n) {
  int x = n->in[0], rank = n->shape.rank;
  if (identity_perm(n->attr.perm, rank)) return x;
  const IrNode *inner = pass_rw_node(rw, x);
  if (inner->op != OP_PERMUTE) return pass_rw_copy(rw, n);
  /* out.d[i] = mid.d[q[i]] = y.d[p[q[i]]] */
  IrAttr a = n->attr;
  for (int i = 0; i < rank; i++) a.perm[i] = inner->attr.perm[n->attr.perm[i]];
  int y = inner->in[0]; /* a copy: building may move the node array */
  if (identity_perm(a.perm, rank)) return y;
  return emit(rw, OP_PERMUTE, &y, 1, &a, n->loc);
}

static int64_t numel_of(const PassRewrite *rw, int id) { return ir_numel(&pass_rw_node(rw, id)->shape); }

static int reshape_rule(PassRewrite *rw, const IrNode *n) {
  const IrNode *x = pass_rw_node(rw, n->in[0]);
  if (x->op == OP_BROADCAST && numel_of(rw, x->in[0]) == 1) {
    /* One element spread out, then reshaped: spread it to the new shape directly. */
    IrShape ones = ir_shape_make(n->shape.rank, NULL);
    for (int i = 0; i < ones.rank; i++) ones.d[i] = 1;
    int r = reshape_to(rw, x->in[0], ones, n->loc);
    if (r < 0) return -1;
    IrAttr a;
    memset(&a, 0, sizeof a);
    a.shape = n->shape;
    return ir_shape_eq(&ones, &n->shape) ? r : emit(rw, OP_BROADCAST, &r, 1, &a, n->loc);
  }
  if (x->op == OP_RESHAPE || ir_shape_eq(&x->shape, &n->shape)) return reshape_to(rw, n->in[0], n->shape, n->loc);
  return pass_rw_copy(rw, n);
}

static int broadcast_rule(PassRewrite *rw, const IrNode *n) {
  const IrNode *x = pass_rw_node(rw, n->in[0]);
  if (ir_shape_eq(&x->shape, &n->shape)) return n->in[0];
  if (x->op == OP_BROADCAST) {
    int y = x->in[0]; /* a copy: building may move the node array */
    return emit(rw, OP_BROADCAST, &y, 1, &n->attr, n->loc);
  }
  return pass_rw_copy(rw, n);
}

/* sum / reduce_max reducing nothing but length-1 axes. */
static int reduce_rule(PassRewrite *rw, const IrNode *n) {
  const IrShape *s = &pass_rw_node(rw, n->in[0])->shape;
  for (int i = 0; i < s->rank; i++)
    if ((n->attr.axes & (1u << i)) && s->d[i] != 1) return pass_rw_copy(rw, n);
  return reshape_to(rw, n->in[0], n->shape, n->loc);
}

static int slice_rule(PassRewrite *rw, const IrNode *n) {
  const IrShape *s = &pass_rw_node(rw, n->in[0])->shape;
  for (int i = 0; i < s->rank; i++)
    if (n->attr.start[i] != 0 || n->attr.stop[i] != s->d[i]) return pass_rw_copy(rw, n);
  return n->in[0];
}

static int stop_gradient_rule(PassRewrite *rw, const IrNode *n) {
  int x = n->in[0];
  double v;
  const IrNode *xn = pass_rw_node(rw, x);
  if (xn->op == OP_STOP_GRADIENT || xn->dtype == IR_I32 || pass_rw_splat(rw, x, &v))
    return x;
  return pass_rw_copy(rw, n);
}

static int where_rule(PassRewrite *rw, const IrNode *n) {
  double c;
  if (n->in[1] == n->in[2]) return n->in[1];
  if (pass_rw_splat(rw, n->in[0], &c)) return c != 0 ? n->in[1] : n->in[2];
  return pass_rw_copy(rw, n);
}

static int visit(PassRewrite *rw, const IrNode *n, void *ctx) {
  (void)ctx;
  switch (n->op) {
  case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_POW: case OP_MAX: case OP_MIN:
    return binary_rule(rw, n);
  case OP_NEG: {
    const IrNode *x = pass_rw_node(rw, n->in[0]);
    return x->op == OP_NEG ? x->in[0] : pass_rw_copy(rw, n);
  }
  case OP_CAST:
    return pass_rw_node(rw, n->in[0])->dtype == n->dtype ? n->in[0] : pass_rw_copy(rw, n);
  case OP_PERMUTE: return permute_rule(rw, n);
  case OP_RESHAPE: return reshape_rule(rw, n);
  case OP_BROADCAST: return broadcast_rule(rw, n);
  case OP_SUM:
  case OP_REDUCE_MAX: return reduce_rule(rw, n);
  case OP_SLICE: return slice_rule(rw, n);
  case OP_STOP_GRADIENT: return stop_gradient_rule(rw, n);
  case OP_WHERE: return where_rule(rw, n);
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_ABS:
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID: case OP_RELU:
  case OP_GELU: case OP_SILU: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
  case OP_STRAIGHT_THROUGH: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CONCAT:
  case OP_GATHER: case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM:
  case OP_CROSS_ENTROPY: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return pass_rw_copy(rw, n);
}

int pass_algebra(IrGraph *g) { return pass_rewrite(g, "algebra", visit, NULL); }
