/* grad_elementwise.c — backward rules of the elementwise ops.
 *
 * Each rule's comment gives the forward op and the gradient it builds, with
 * y the op's result and dy the gradient arriving at y. Operands of binary
 * ops have equal shapes (ir_binary made broadcasting explicit with
 * BROADCAST nodes, whose own rule sums the gradient back), so these rules
 * never reduce. Unary rules are only called when their input wants a
 * gradient; binary rules build each side only when that input wants it.
 */
#include "ir/op_eval.h"
#include "passes/grad_rules.h"

#define X(k) ad_in(r, k)
#define Y (r->id)
#define DY (r->gy)

/* (x > 0) - (x < 0) as f32: 0 at 0, as torch.sign. */
static int sign_of(AdRule *r, int x) {
  int zero = ad_scalar(r, 0.0);
  int pos = ad_cast(r, ad_binary(r, OP_GT, x, zero), IR_F32);
  int neg = ad_cast(r, ad_binary(r, OP_LT, x, zero), IR_F32);
  return ad_binary(r, OP_SUB, pos, neg);
}

/* y = -x:  dx = -dy */
int grad_neg(AdRule *r) { return ad_give(r, 0, ad_unary(r, OP_NEG, DY)); }

/* y = |x|:  dx = dy * sign(x)  (0 at x = 0, as PyTorch) */
int grad_abs(AdRule *r) { return ad_give(r, 0, ad_binary(r, OP_MUL, DY, sign_of(r, X(0)))); }

/* y = e^x:  dx = dy * y */
int grad_exp(AdRule *r) { return ad_give(r, 0, ad_binary(r, OP_MUL, DY, Y)); }

/* y = log x:  dx = dy / x */
int grad_log(AdRule *r) { return ad_give(r, 0, ad_binary(r, OP_DIV, DY, X(0))); }

/* y = sqrt x:  dx = dy * 0.5 / y */
int grad_sqrt(AdRule *r) { return ad_give(r, 0, ad_binary(r, OP_DIV, ad_binary_k(r, OP_MUL, DY, 0.5), Y)); }

/* y = x^(-1/2):  dx = dy * (-1/2) x^(-3/2) = dy * (-0.5) * y^3 */
int grad_rsqrt(AdRule *r) {
  int y3 = ad_binary(r, OP_MUL, ad_binary(r, OP_MUL, Y, Y), Y);
  return ad_give(r, 0, ad_binary(r, OP_MUL, DY, ad_binary_k(r, OP_MUL, y3, -0.5)));
}

/* y = tanh x:  dx = dy * (1 - y^2) */
int grad_tanh(AdRule *r) {
  int one_minus = ad_binary(r, OP_SUB, ad_scalar(r, 1.0), ad_binary(r, OP_MUL, Y, Y));
  return ad_give(r, 0, ad_binary(r, OP_MUL, DY, one_minus));
}

/* y = 1 / (1 + e^-x):  dx = dy * y * (1 - y) */
int grad_sigmoid(AdRule *r) {
  int one_minus = ad_binary(r, OP_SUB, ad_scalar(r, 1.0), Y);
  return ad_give(r, 0, ad_binary(r, OP_MUL, ad_binary(r, OP_MUL, DY, Y), one_minus));
}

/* y = max(x, 0):  dx = x > 0 ? dy : 0  (0 at x = 0, as PyTorch) */
int grad_relu(AdRule *r) {
  int pos = ad_binary(r, OP_GT, X(0), ad_scalar(r, 0.0));
  return ad_give(r, 0, ad_where(r, pos, DY, ad_scalar(r, 0.0)));
}

/* y = 0.5 x (1 + t), t = tanh(u), u = k (x + c x^3), k and c from ir/op_eval.h:
 * dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2)), t recomputed. */
int grad_gelu(AdRule *r) {
  const double k = OP_EVAL_GELU_K, c = OP_EVAL_GELU_C;
  int x = X(0);
  int x2 = ad_binary(r, OP_MUL, x, x);
  int inner = ad_binary_k(r, OP_ADD, ad_binary_k(r, OP_MUL, x2, c), 1.0);          /* 1 + c x^2 */
  int t = ad_unary(r, OP_TANH, ad_binary_k(r, OP_MUL, ad_binary(r, OP_MUL, x, inner), k));
  int left = ad_binary_k(r, OP_MUL, ad_binary_k(r, OP_ADD, t, 1.0), 0.5);          /* 0.5 (1 + t) */
  int sech2 = ad_binary(r, OP_SUB, ad_scalar(r, 1.0), ad_binary(r, OP_MUL, t, t)); /* 1 - t^2 */
  int du = ad_binary_k(r, OP_ADD, ad_binary_k(r, OP_MUL, x2, 3.0 * c), 1.0);       /* 1 + 3c x^2 */
  int right = ad_binary(r, OP_MUL, ad_binary_k(r, OP_MUL, x, 0.5 * k), ad_binary(r, OP_MUL, sech2, du));
  return ad_give(r, 0, ad_binary(r, OP_MUL, DY, ad_binary(r, OP_ADD, left, right)));
}

/* y = x s, s = sigmoid(x):  dx = dy * s * (1 + x (1 - s)), s recomputed. */
int grad_silu(AdRule *r) {
  int s = ad_unary(r, OP_SIGMOID, X(0));
  int one_minus = ad_binary(r, OP_SUB, ad_scalar(r, 1.0), s);
  int inner = ad_binary_k(r, OP_ADD, ad_binary(r, OP_MUL, X(0), one_minus), 1.0); /* 1 + x (1 - s) */
  return ad_give(r, 0, ad_binary(r, OP_MUL, DY, ad_binary(r, OP_MUL, s, inner)));
}

/* y = cast(x): only f32 -> f32 carries a gradient (an i32 side never wants
 * one), and that cast is the identity:  dx = dy */
int grad_cast(AdRule *r) { return ad_give(r, 0, DY); }

/* y = a + b:  da = dy, db = dy */
int grad_add(AdRule *r) {
  if (ad_give(r, 0, DY)) return -1;
  return ad_give(r, 1, DY);
}

/* y = a - b:  da = dy, db = -dy */
int grad_sub(AdRule *r) {
  if (ad_give(r, 0, DY)) return -1;
  return ad_wants(r, 1) ? ad_give(r, 1, ad_unary(r, OP_NEG, DY)) : 0;
}

/* y = a * b:  da = dy * b, db = dy * a */
int grad_mul(AdRule *r) {
  if (ad_wants(r, 0) && ad_give(r, 0, ad_binary(r, OP_MUL, DY, X(1)))) return -1;
  return ad_wants(r, 1) ? ad_give(r, 1, ad_binary(r, OP_MUL, DY, X(0))) : 0;
}

/* y = a / b:  da = dy / b, db = -dy * a / b^2 = -da * y */
int grad_div(AdRule *r) {
  int da = ad_binary(r, OP_DIV, DY, X(1));
  if (ad_give(r, 0, da)) return -1;
  return ad_wants(r, 1) ? ad_give(r, 1, ad_unary(r, OP_NEG, ad_binary(r, OP_MUL, da, Y))) : 0;
}

/* max and min: the winner takes dy; a tie splits it in halves (as
 * torch.maximum / torch.minimum):  da = dy * w, db = dy - da with
 * w = 1 where a wins ('wins' is GT for max, LT for min), 0.5 on a tie, else 0. */
static int grad_extremum(AdRule *r, IrOp wins) {
  int a = X(0), b = X(1);
  int tie = ad_where(r, ad_binary(r, OP_EQ, a, b), ad_scalar(r, 0.5), ad_scalar(r, 0.0));
  int w = ad_where(r, ad_binary(r, wins, a, b), ad_scalar(r, 1.0), tie);
  int da = ad_binary(r, OP_MUL, DY, w);
  if (ad_give(r, 0, da)) return -1;
  return ad_wants(r, 1) ? ad_give(r, 1, ad_binary(r, OP_SUB, DY, da)) : 0;
}

/* y = max(a, b); see grad_extremum. */
int grad_max(AdRule *r) { return grad_extremum(r, OP_GT); }

/* y = min(a, b); see grad_extremum. */
int grad_min(AdRule *r) { return grad_extremum(r, OP_LT); }

/* y = a^b:  da = dy * b * a^(b-1),  db = dy * y * log a, taken as 0 where
 * a = 0 (as PyTorch, which would otherwise give 0 * -inf). */
int grad_pow(AdRule *r) {
  int a = X(0), b = X(1);
  if (ad_wants(r, 0)) {
    int pw = ad_binary(r, OP_POW, a, ad_binary_k(r, OP_SUB, b, 1.0));
    if (ad_give(r, 0, ad_binary(r, OP_MUL, DY, ad_binary(r, OP_MUL, b, pw)))) return -1;
  }
  if (!ad_wants(r, 1)) return 0;
  int db = ad_binary(r, OP_MUL, ad_binary(r, OP_MUL, DY, Y), ad_unary(r, OP_LOG, a));
  int at_zero = ad_binary(r, OP_EQ, a, ad_scalar(r, 0.0));
  return ad_give(r, 1, ad_where(r, at_zero, ad_scalar(r, 0.0), db));
}

/* y = cond ? a : b:  dcond none (i32), da = cond ? dy : 0, db = cond ? 0 : dy */
int grad_where(AdRule *r) {
  int c = X(0);
  if (ad_wants(r, 1) && ad_give(r, 1, ad_where(r, c, DY, ad_scalar(r, 0.0)))) return -1;
  return ad_wants(r, 2) ? ad_give(r, 2, ad_where(r, c, ad_scalar(r, 0.0), DY)) : 0;
}

/* y = straight_through(hard, soft) = hard:  dhard none, dsoft = dy.
 * The straight-through estimator: differentiate as if y were soft. dsoft is
 * an explicit identity node (a reshape to the same shape) carrying this
 * op's source location, so the gradient graph's dump shows where the
 * estimator sits: one node at its line, fed by dy, feeding soft's side, and
 * nothing at all built for the hard side. Simplification may fold it. */
int grad_straight_through(AdRule *r) {
  if (!ad_wants(r, 1)) return 0;
  IrAttr a = {.shape = r->node.shape};
  return ad_give(r, 1, ad_build(r, OP_RESHAPE, &DY, 1, &a));
}
