/* builder.c — convenience builders over ir_build: leaves, numpy-style
 * broadcasting for elementwise ops, reshapes, permutes, reductions.
 *
 * A builder that emits several nodes (a broadcast and then the op) undoes
 * the ones it made if a later step fails, so every call either succeeds or
 * leaves the graph unchanged. Nothing here keeps state outside the graph. */
#include "ir/graph_internal.h"

#include <string.h>

/* Checks that 'id' is a node of g; 'what' names the caller for the message. */
static bool check_id(IrGraph *g, int id, const char *what, SrcLoc loc) {
  if (ir_graph_has(g, id)) return true;
  ir_graph_fail(g, loc, "%s: operand %%%d is not a node of this graph (it has %d)", what, id, g->n);
  return false;
}

/* numpy broadcasting of a and b: align on the right, size-1 dims stretch.
 * False if some aligned pair differs with neither being 1. */
static bool broadcast_shapes(const IrShape *a, const IrShape *b, IrShape *out) {
  const IrShape *lo = a->rank < b->rank ? a : b, *hi = lo == a ? b : a;
  *out = ir_shape_make(hi->rank, hi->d);
  int off = hi->rank - lo->rank;
  for (int i = 0; i < lo->rank; i++) {
    int64_t x = lo->d[i], y = hi->d[off + i];
    if (x != y && x != 1 && y != 1) return false;
    out->d[off + i] = x == 1 ? y : x;
  }
  return true;
}

/* An INPUT: 'indexed' skips the search for a duplicate name. */
static int input(IrGraph *g, const char *name, IrDType t, IrShape s, SrcLoc loc, bool indexed) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = t;
  a.shape = s;
  return indexed ? ir_build_copied(g, OP_INPUT, NULL, 0, &a, loc, name)
                 : ir_build_named(g, OP_INPUT, NULL, 0, &a, loc, name);
}

int ir_input(IrGraph *g, const char *name, IrDType t, IrShape s, SrcLoc loc) {
  return input(g, name, t, s, loc, false);
}

int ir_input_indexed(IrGraph *g, const char *name, IrDType t, IrShape s, SrcLoc loc) {
  if (!name) return ir_input(g, name, t, s, loc); /* its error */
  return input(g, name, t, s, loc, true);
}

/* The PARAM or STATE (op) called 'name' in g: node 'had' if it is one
 * already (the shapes must agree), else a new node. 'indexed': the caller
 * found 'had' by its own index, so g is not searched. */
static int leaf(IrGraph *g, IrOp op, int had, const char *name, IrShape s, const IrAttr *a, SrcLoc loc,
                bool indexed) {
  if (!g) return -1;
  for (int i = 0; !indexed && name && i < g->nparam && had < 0; i++)
    if (strcmp(g->node[g->param[i]].name, name) == 0) had = g->param[i];
  if (had >= 0) {
    if (!ir_graph_has(g, had)) return ir_graph_fail(g, loc, "%s \"%s\": %%%d is not a node", ir_op_name(op), name, had);
    const IrNode *p = &g->node[had];
    char was[160], now[160];
    if (op == OP_PARAM && ir_shape_eq(&p->shape, &s)) return had;
    if (op == OP_PARAM)
      return ir_graph_fail(g, loc, "param \"%s\": shape %s differs from its earlier use as %s", name,
                           ir_shape_str(&s, now, sizeof now), ir_shape_str(&p->shape, was, sizeof was));
    if (p->op == OP_STATE && ir_shape_eq(&p->shape, &s)) return had;
    return ir_graph_fail(g, loc, "state \"%s\": %s %s clashes with the earlier %s %s", name, "shape",
                         ir_shape_str(&s, now, sizeof now), ir_op_name(p->op), ir_shape_str(&p->shape, was, sizeof was));
  }
  if (indexed && name) return ir_build_copied(g, op, NULL, 0, a, loc, name);
  return ir_build_named(g, op, NULL, 0, a, loc, name);
}

static IrAttr param_attr(IrShape s, IrInitKind init, double lo, double hi) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = IR_F32;
  a.shape = s;
  a.init = init;
  a.init_a = lo;
  a.init_b = hi;
  return a;
}

int ir_param(IrGraph *g, const char *name, IrShape s, IrInitKind init, double lo, double hi, SrcLoc loc) {
  IrAttr a = param_attr(s, init, lo, hi);
  return leaf(g, OP_PARAM, -1, name, s, &a, loc, false);
}

int ir_param_indexed(IrGraph *g, int had, const char *name, IrShape s, IrInitKind init, double lo, double hi,
                     SrcLoc loc) {
  IrAttr a = param_attr(s, init, lo, hi);
  return leaf(g, OP_PARAM, had, name, s, &a, loc, true);
}

int ir_state(IrGraph *g, const char *name, IrShape s, SrcLoc loc) {
  IrAttr a = param_attr(s, IR_INIT_ZEROS, 0, 0);
  return leaf(g, OP_STATE, -1, name, s, &a, loc, false);
}

int ir_state_indexed(IrGraph *g, int had, const char *name, IrShape s, SrcLoc loc) {
  IrAttr a = param_attr(s, IR_INIT_ZEROS, 0, 0);
  return leaf(g, OP_STATE, had, name, s, &a, loc, true);
}

int ir_const(IrGraph *g, IrDType t, IrShape s, double value, SrcLoc loc) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = t;
  a.shape = s;
  a.value = value;
  return ir_build(g, OP_CONST, NULL, 0, &a, loc);
}

int ir_scalar(IrGraph *g, IrDType t, double value, SrcLoc loc) {
  return ir_const(g, t, ir_shape_make(0, NULL), value, loc);
}

/* Elementwise unary ops only (CAST needs a dtype: use ir_build). */
int ir_unary(IrGraph *g, IrOp op, int x, SrcLoc loc) {
  if (!g) return -1;
  if (ir_op_arity(op) != 1 || ir_op_pattern(op) != PAT_ELEMWISE || op == OP_CAST)
    return ir_graph_fail(g, loc, "%s: not an elementwise unary op without attributes (ir_unary)", ir_op_name(op));
  return ir_build(g, op, &x, 1, NULL, loc);
}

/* Broadcasts x to s by numpy rules: a RESHAPE adds leading 1s if x's rank is
 * smaller, then a BROADCAST stretches size-1 dims. Returns x itself if it
 * already has shape s. */
int ir_broadcast_to(IrGraph *g, int x, IrShape s, SrcLoc loc) {
  if (!g || !check_id(g, x, "broadcast", loc)) return -1;
  IrShape xs = g->node[x].shape, joined;
  char a[160], b[160];
  if (s.rank < 0 || s.rank > IR_MAX_RANK || xs.rank > s.rank || !broadcast_shapes(&xs, &s, &joined) ||
      !ir_shape_eq(&joined, &s))
    return ir_graph_fail(g, loc, "broadcast: cannot broadcast %s to %s", ir_shape_str(&xs, a, sizeof a),
                         ir_shape_str(&s, b, sizeof b));
  if (ir_shape_eq(&xs, &s)) return x;
  int mark = g->n, id = x;
  if (xs.rank < s.rank) {
    IrShape padded = ir_shape_make(s.rank, NULL);
    int off = s.rank - xs.rank;
    for (int i = 0; i < s.rank; i++) padded.d[i] = i < off ? 1 : xs.d[i - off];
    IrAttr ra;
    memset(&ra, 0, sizeof ra);
    ra.shape = padded;
    id = ir_build(g, OP_RESHAPE, &id, 1, &ra, loc);
    if (id < 0 || ir_shape_eq(&padded, &s)) return id;
  }
  IrAttr ba;
  memset(&ba, 0, sizeof ba);
  ba.shape = s;
  id = ir_build(g, OP_BROADCAST, &id, 1, &ba, loc);
  if (id < 0) ir_graph_truncate(g, mark);
  return id;
}

/* Builds op on operands ids[0..n) after broadcasting them to 'shape'; undoes
 * the broadcasts if the op itself is refused. */
static int build_broadcast(IrGraph *g, IrOp op, const int *ids, int n, IrShape shape, SrcLoc loc) {
  int mark = g->n, b[IR_MAX_IN];
  for (int i = 0; i < n; i++) {
    b[i] = ir_broadcast_to(g, ids[i], shape, loc);
    if (b[i] < 0) {
      ir_graph_truncate(g, mark);
      return -1;
    }
  }
  int id = ir_build(g, op, b, n, NULL, loc);
  if (id < 0) ir_graph_truncate(g, mark);
  return id;
}

int ir_binary(IrGraph *g, IrOp op, int a, int b, SrcLoc loc) {
  if (!g) return -1;
  const char *name = ir_op_name(op);
  if (ir_op_arity(op) != 2 || ir_op_pattern(op) != PAT_ELEMWISE)
    return ir_graph_fail(g, loc, "%s: not an elementwise binary op (ir_binary)", name);
  if (!check_id(g, a, name, loc) || !check_id(g, b, name, loc)) return -1;
  IrShape out;
  const IrShape *sa = &g->node[a].shape, *sb = &g->node[b].shape;
  if (!broadcast_shapes(sa, sb, &out)) {
    char x[160], y[160];
    return ir_graph_fail(g, loc, "%s: cannot broadcast %s with %s", name, ir_shape_str(sa, x, sizeof x),
                         ir_shape_str(sb, y, sizeof y));
  }
  return build_broadcast(g, op, (int[]){a, b}, 2, out, loc);
}

int ir_where(IrGraph *g, int cond, int a, int b, SrcLoc loc) {
  if (!g || !check_id(g, cond, "where", loc) || !check_id(g, a, "where", loc) || !check_id(g, b, "where", loc))
    return -1;
  const IrShape *sc = &g->node[cond].shape, *sa = &g->node[a].shape, *sb = &g->node[b].shape;
  IrShape ab, out;
  if (!broadcast_shapes(sa, sb, &ab) || !broadcast_shapes(sc, &ab, &out)) {
    char x[160], y[160], z[160];
    return ir_graph_fail(g, loc, "where: cannot broadcast condition %s, a %s and b %s together",
                         ir_shape_str(sc, x, sizeof x), ir_shape_str(sa, y, sizeof y), ir_shape_str(sb, z, sizeof z));
  }
  return build_broadcast(g, OP_WHERE, (int[]){cond, a, b}, 3, out, loc);
}

/* Returns x itself when it already has shape s. */
int ir_reshape(IrGraph *g, int x, IrShape s, SrcLoc loc) {
  if (!g || !check_id(g, x, "reshape", loc)) return -1;
  if (ir_shape_eq(&g->node[x].shape, &s)) return x;
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.shape = s;
  return ir_build(g, OP_RESHAPE, &x, 1, &a, loc);
}

/* perm has one entry per axis of x (negative ones count from the end).
 * Returns x itself for the identity permutation. */
int ir_permute(IrGraph *g, int x, const int *perm, SrcLoc loc) {
  if (!g || !check_id(g, x, "permute", loc)) return -1;
  int rank = g->node[x].shape.rank;
  if (rank > 0 && !perm) return ir_graph_fail(g, loc, "permute: perm missing");
  IrAttr a;
  memset(&a, 0, sizeof a);
  bool identity = true;
  for (int i = 0; i < rank; i++) {
    a.perm[i] = perm[i];
    identity = identity && (perm[i] == i || perm[i] == i - rank);
  }
  if (identity) return x;
  return ir_build(g, OP_PERMUTE, &x, 1, &a, loc);
}

/* SUM or REDUCE_MAX over the axes whose bits are set in 'axes'. */
int ir_reduce(IrGraph *g, IrOp op, int x, uint32_t axes, bool keepdim, SrcLoc loc) {
  if (!g) return -1;
  if (op != OP_SUM && op != OP_REDUCE_MAX)
    return ir_graph_fail(g, loc, "%s: ir_reduce builds sum and reduce_max only", ir_op_name(op));
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.axes = axes;
  a.keepdim = keepdim;
  return ir_build(g, op, &x, 1, &a, loc);
}
