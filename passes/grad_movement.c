/* grad_movement.c — backward rules of data movement: each sends dy back to
 * where its elements came from (the transpose of the forward's linear map).
 * onehot has none: its input is i32. */
#include "passes/grad_rules.h"

/* y = reshape(x):  dx = reshape(dy, shape of x) */
int grad_reshape(AdRule *r) { return ad_give(r, 0, ad_reshape(r, r->gy, ad_shape(r, ad_in(r, 0)))); }

/* y.d[i] = x.d[perm[i]]:  dx = permute(dy, inverse of perm) */
int grad_permute(AdRule *r) {
  int inv[IR_MAX_RANK];
  for (int i = 0; i < r->node.shape.rank; i++) inv[r->node.attr.perm[i]] = i;
  return ad_give(r, 0, ad_permute(r, r->gy, inv));
}

/* y = x stretched along its size-1 axes (same rank):  dx = sum of dy over
 * the stretched axes, kept as size 1. This is where all of numpy
 * broadcasting's gradients are reduced back. */
int grad_broadcast(AdRule *r) {
  IrShape xs = ad_shape(r, ad_in(r, 0));
  uint32_t axes = 0;
  for (int i = 0; i < xs.rank; i++)
    if (xs.d[i] != r->node.shape.d[i]) axes |= 1u << i;
  return ad_give(r, 0, ad_sum(r, r->gy, axes, true));
}

/* y = x[start:stop]:  dx = zeros of x's shape with dy at [start:stop] */
int grad_slice(AdRule *r) { return ad_give(r, 0, ad_pad(r, r->gy, ad_shape(r, ad_in(r, 0)), r->node.attr.start)); }

/* y = concat(a, b) along axis:  da = dy[.., :na, ..], db = dy[.., na:, ..] */
int grad_concat(AdRule *r) {
  int axis = r->node.attr.axis;
  int64_t start[IR_MAX_RANK] = {0};
  if (ad_wants(r, 0) && ad_give(r, 0, ad_slice(r, r->gy, start, ad_shape(r, ad_in(r, 0))))) return -1;
  if (!ad_wants(r, 1)) return 0;
  start[axis] = ad_shape(r, ad_in(r, 0)).d[axis];
  return ad_give(r, 1, ad_slice(r, r->gy, start, ad_shape(r, ad_in(r, 1))));
}

/* y[i...] = table[idx[i...]]:  dtable[v] = sum of dy[i...] over idx[i...] = v
 * (gather_backward, a scatter-add); the i32 indices get none. */
int grad_gather(AdRule *r) {
  IrAttr a = {.shape = ad_shape(r, ad_in(r, 0))};
  return ad_give(r, 0, ad_build(r, OP_GATHER_BACKWARD, (int[]){ad_in(r, 1), r->gy}, 2, &a));
}
