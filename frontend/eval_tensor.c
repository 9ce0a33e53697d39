/* eval_tensor.c — turning values into graph nodes: operands, elementwise
 * ops with numbers, reductions and indexing (see eval.h). */
#include <math.h>
#include <string.h>

#include "frontend/eval.h"

IrGraph *ev_graph(Ev *ev, SrcLoc loc, const char *what) {
  if (!ev->g)
    ev_error(ev, loc,
             "%s makes a tensor, but tensors exist only while tracing an entry function "
             "(not in config values or global lets)",
             what);
  return ev->g;
}

int ev_check(Ev *ev, int id, SrcLoc loc) {
  if (id < 0) ev_error(ev, loc, "%s", ev->g->error[0] ? ev->g->error : "the graph builder refused this operation");
  if (ev->g->n > FE_MAX_NODES) ev_error(ev, loc, FE_MSG_NODES, FE_MAX_NODES);
  return id;
}

int ev_as_tensor(Ev *ev, Value v, IrDType t, SrcLoc loc, const char *what) {
  if (v.kind == V_TENSOR) return v.t;
  double x;
  if (v.kind == V_BOOL)
    x = v.b;
  else if (ev_is_number(v))
    x = ev_number(v);
  else
    ev_error(ev, loc, "%s must be a tensor or a number, got %s", what, ev_describe(ev, v));
  /* A number joins a tensor in the tensor's dtype; only whole numbers fit
   * an i32 tensor (mixing in a fraction would silently truncate it). */
  if (t == IR_I32 && (x != floor(x) || x < -2147483648.0 || x > 2147483647.0))
    ev_error(ev, loc, "%s is %g, which does not fit an i32 tensor (cast the tensor to f32 first)", what, x);
  IrGraph *g = ev_graph(ev, loc, "a number used with a tensor");
  return ev_check(ev, ir_scalar(g, t, x, loc), loc);
}

Value ev_tensor_binary(Ev *ev, IrOp op, Value a, Value b, SrcLoc loc) {
  IrGraph *g = ev_graph(ev, loc, ir_op_name(op));
  IrDType t = a.kind == V_TENSOR ? ev_node(ev, a)->dtype : b.kind == V_TENSOR ? ev_node(ev, b)->dtype : IR_F32;
  int x = ev_as_tensor(ev, a, t, loc, "the left operand");
  int y = ev_as_tensor(ev, b, t, loc, "the right operand");
  return ev_tensor(ev_check(ev, ir_binary(g, op, x, y, loc), loc));
}

uint32_t ev_axes(Ev *ev, Value axis, int rank, SrcLoc loc, const char *what) {
  if (axis.kind == V_NONE) return rank ? (uint32_t)((1u << rank) - 1) : 0;
  if (axis.kind == V_INT) return 1u << ev_to_axis(ev, axis, rank, loc, what);
  if (axis.kind != V_LIST)
    ev_error(ev, loc, "%s must be an int, a list of ints or None, got %s", what, ev_describe(ev, axis));
  uint32_t mask = 0;
  for (int i = 0; i < axis.list->n; i++) {
    uint32_t bit = 1u << ev_to_axis(ev, axis.list->v[i], rank, loc, what);
    if (mask & bit) ev_error(ev, loc, "%s names axis %d twice", what, __builtin_ctz(bit));
    mask |= bit;
  }
  return mask;
}

Value ev_reduce(Ev *ev, IrOp op, int x, uint32_t axes, bool keepdim, SrcLoc loc) {
  if (axes == 0) return ev_tensor(x); /* over no axes: nothing to do */
  return ev_tensor(ev_check(ev, ir_reduce(ev->g, op, x, axes, keepdim, loc), loc));
}

/* mean = sum * (1/n), n the number of elements reduced. */
Value ev_mean(Ev *ev, int x, uint32_t axes, bool keepdim, SrcLoc loc) {
  const IrNode *n = &ev->g->node[x];
  if (n->dtype != IR_F32) ev_error(ev, loc, "mean of an i32 tensor: cast it to f32 first");
  int64_t count = 1;
  for (int i = 0; i < n->shape.rank; i++)
    if (axes & (1u << i)) count *= n->shape.d[i];
  Value s = ev_reduce(ev, OP_SUM, x, axes, keepdim, loc);
  if (count == 1) return s;
  int k = ev_check(ev, ir_scalar(ev->g, IR_F32, 1.0 / (double)count, loc), loc);
  return ev_tensor(ev_check(ev, ir_binary(ev->g, OP_MUL, s.t, k, loc), loc));
}

Value ev_index_tensor(Ev *ev, Value x, const EvIndex *ix, int n, SrcLoc loc) {
  const IrNode *node = ev_node(ev, x);
  IrShape in = node->shape, out = ir_shape_make(0, NULL);
  if (n > in.rank)
    ev_error(ev, loc, "too many indices (%d) for a tensor of rank %d", n, in.rank);
  IrAttr a;
  memset(&a, 0, sizeof a);
  bool whole = true, drop = false;
  for (int i = 0; i < in.rank; i++) {
    int64_t d = in.d[i], start = 0, stop = d;
    if (i < n && !ix[i].slice) {
      /* An integer index keeps one element and then removes the axis. */
      start = ix[i].lo < 0 ? ix[i].lo + d : ix[i].lo;
      if (start < 0 || start >= d)
        ev_error(ev, ix[i].loc, "index %lld is out of range for axis %d of size %lld", (long long)ix[i].lo, i,
                 (long long)d);
      stop = start + 1;
      drop = true;
    } else if (i < n) {
      /* Python's slice rules with step 1: negative bounds count from the
       * end, then both are clamped to [0, d]. */
      if (ix[i].has_lo) start = ix[i].lo < 0 ? ix[i].lo + d : ix[i].lo;
      if (ix[i].has_hi) stop = ix[i].hi < 0 ? ix[i].hi + d : ix[i].hi;
      start = start < 0 ? 0 : start > d ? d : start;
      stop = stop < 0 ? 0 : stop > d ? d : stop;
      if (stop <= start)
        ev_error(ev, ix[i].loc, "the slice of axis %d (size %lld) is empty: it selects [%lld, %lld)", i, (long long)d,
                 (long long)start, (long long)stop);
    }
    a.start[i] = start;
    a.stop[i] = stop;
    whole = whole && start == 0 && stop == d;
    if (!(i < n && !ix[i].slice)) out.d[out.rank++] = stop - start;
  }
  int id = x.t;
  if (!whole) id = ev_check(ev, ir_build(ev->g, OP_SLICE, &id, 1, &a, loc), loc);
  if (drop) id = ev_check(ev, ir_reshape(ev->g, id, out, loc), loc);
  return ev_tensor(id);
}
