/* grad_reduce.c — backward rules of the reductions: sum, reduce_max,
 * softmax and log_softmax (argmax has none).
 *
 * y is the op's result, dy its gradient; "keep" shapes are x's shape with
 * the reduced axes set to 1, in which dy broadcasts back against x. */
#include "passes/grad_rules.h"

/* x's shape with the axes in 'axes' set to 1. */
static IrShape keep_shape(IrShape x, uint32_t axes) {
  for (int i = 0; i < x.rank; i++)
    if (axes >> i & 1u) x.d[i] = 1;
  return x;
}

/* y = sum(x, axes):  dx = broadcast(dy, shape of x) */
int grad_sum(AdRule *r) {
  IrShape xs = ad_shape(r, ad_in(r, 0));
  int dy = ad_reshape(r, r->gy, keep_shape(xs, r->node.attr.axes));
  return ad_give(r, 0, ad_broadcast(r, dy, xs));
}

/* y = max(x, axes):  dx = dy where x equals the maximum, shared evenly
 * among tied maxima (as torch.amax):  dx = (x == y) * dy / count(x == y) */
int grad_reduce_max(AdRule *r) {
  int x = ad_in(r, 0);
  uint32_t axes = r->node.attr.axes;
  IrShape keep = keep_shape(ad_shape(r, x), axes);
  int hit = ad_cast(r, ad_binary(r, OP_EQ, x, ad_reshape(r, r->id, keep)), IR_F32);
  int share = ad_binary(r, OP_DIV, ad_reshape(r, r->gy, keep), ad_sum(r, hit, axes, true));
  return ad_give(r, 0, ad_binary(r, OP_MUL, hit, share));
}

/* y = softmax(x) along axis:  dx = y * (dy - sum(dy * y, axis)) */
int grad_softmax(AdRule *r) {
  uint32_t axis = 1u << r->node.attr.axis;
  int dot = ad_sum(r, ad_binary(r, OP_MUL, r->gy, r->id), axis, true);
  return ad_give(r, 0, ad_binary(r, OP_MUL, r->id, ad_binary(r, OP_SUB, r->gy, dot)));
}

/* y = log_softmax(x) along axis:  dx = dy - exp(y) * sum(dy, axis) */
int grad_log_softmax(AdRule *r) {
  uint32_t axis = 1u << r->node.attr.axis;
  int total = ad_sum(r, r->gy, axis, true);
  return ad_give(r, 0, ad_binary(r, OP_SUB, r->gy, ad_binary(r, OP_MUL, ad_unary(r, OP_EXP, r->id), total)));
}
