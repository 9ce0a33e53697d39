/* autodiff_emit.c — the IR helpers backward rules build with: thin wrappers
 * over the builder that stamp the forward node's location on every node and
 * pass a failure (-1) along, plus the few composites rules share (mean,
 * zero padding, slicing, last-axes transpose). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes/grad_rules.h"

int ad_in(const AdRule *r, int k) { return r->node.in[k]; }

IrShape ad_shape(const AdRule *r, int id) { return r->g->node[id].shape; }

int ad_fail(AdRule *r, const char *fmt, ...) {
  int n = snprintf(r->g->error, sizeof r->g->error, "%s: ", ir_op_name(r->node.op));
  if (n >= 0 && (size_t)n < sizeof r->g->error) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->g->error + n, sizeof r->g->error - (size_t)n, fmt, ap);
    va_end(ap);
  }
  r->g->error_loc = r->loc;
  return -1;
}

int ad_build(AdRule *r, IrOp op, const int *in, int nin, const IrAttr *attr) {
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  return ir_build(r->g, op, in, nin, attr, r->loc);
}

int ad_unary(AdRule *r, IrOp op, int x) { return x < 0 ? -1 : ir_unary(r->g, op, x, r->loc); }

int ad_binary(AdRule *r, IrOp op, int a, int b) { return a < 0 || b < 0 ? -1 : ir_binary(r->g, op, a, b, r->loc); }

int ad_binary_k(AdRule *r, IrOp op, int a, double v) { return a < 0 ? -1 : ad_binary(r, op, a, ad_scalar(r, v)); }

int ad_where(AdRule *r, int cond, int a, int b) {
  return cond < 0 || a < 0 || b < 0 ? -1 : ir_where(r->g, cond, a, b, r->loc);
}

int ad_cast(AdRule *r, int x, IrDType t) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = t;
  return ad_build(r, OP_CAST, &x, 1, &a);
}

int ad_scalar(AdRule *r, double v) { return ir_scalar(r->g, IR_F32, v, r->loc); }

int ad_zeros(AdRule *r, IrShape s) { return ir_const(r->g, IR_F32, s, 0.0, r->loc); }

int ad_sum(AdRule *r, int x, uint32_t axes, bool keepdim) {
  if (x < 0) return -1;
  if (!axes) return x;
  return ir_reduce(r->g, OP_SUM, x, axes, keepdim, r->loc);
}

int ad_mean(AdRule *r, int x, uint32_t axes, bool keepdim) {
  if (x < 0) return -1;
  IrShape s = ad_shape(r, x);
  int64_t count = 1;
  for (int i = 0; i < s.rank; i++)
    if (axes >> i & 1u) count *= s.d[i];
  int sum = ad_sum(r, x, axes, keepdim);
  return count == 1 ? sum : ad_binary_k(r, OP_MUL, sum, 1.0 / (double)count);
}

int ad_reshape(AdRule *r, int x, IrShape s) { return x < 0 ? -1 : ir_reshape(r->g, x, s, r->loc); }

int ad_broadcast(AdRule *r, int x, IrShape s) { return x < 0 ? -1 : ir_broadcast_to(r->g, x, s, r->loc); }

int ad_permute(AdRule *r, int x, const int *perm) { return x < 0 ? -1 : ir_permute(r->g, x, perm, r->loc); }

int ad_swap_last(AdRule *r, int x) {
  if (x < 0) return -1;
  int rank = ad_shape(r, x).rank, perm[IR_MAX_RANK];
  for (int i = 0; i < rank; i++) perm[i] = i;
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return ad_permute(r, x, perm);
}

int ad_matmul(AdRule *r, int x, int y, int ta, int tb) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.trans_a = ta;
  a.trans_b = tb;
  return ad_build(r, OP_MATMUL, (int[]){x, y}, 2, &a);
}

/* Concatenates zeros of x's shape but 'n' along 'axis' before (front) or
 * after x. */
static int zeros_beside(AdRule *r, int x, int axis, int64_t n, bool front) {
  IrShape zs = ad_shape(r, x);
  zs.d[axis] = n;
  int z = ad_zeros(r, zs);
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.axis = axis;
  return ad_build(r, OP_CONCAT, front ? (int[]){z, x} : (int[]){x, z}, 2, &a);
}

/* One concat with zeros per side and axis that needs padding: the IR has
 * no pad op, and the zero blocks are CONSTs the executors fill cheaply. */
int ad_pad(AdRule *r, int x, IrShape full, const int64_t *start) {
  for (int i = 0; x >= 0 && i < full.rank; i++) {
    int64_t before = start[i], after = full.d[i] - start[i] - ad_shape(r, x).d[i];
    if (before > 0) x = zeros_beside(r, x, i, before, true);
    if (x >= 0 && after > 0) x = zeros_beside(r, x, i, after, false);
  }
  return x;
}

int ad_slice(AdRule *r, int x, const int64_t *start, IrShape len) {
  if (x < 0) return -1;
  IrShape xs = ad_shape(r, x);
  if (ir_shape_eq(&xs, &len)) return x;
  IrAttr a;
  memset(&a, 0, sizeof a);
  for (int i = 0; i < len.rank; i++) {
    a.start[i] = start[i];
    a.stop[i] = start[i] + len.d[i];
  }
  return ad_build(r, OP_SLICE, &x, 1, &a);
}
