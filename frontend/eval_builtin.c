/* eval_builtin.c — the built-in functions of .dal (docs/language.md,
 * "Built-in functions"). Each takes its bound arguments in c->arg (V_NONE
 * where not given; defaults are applied here) and returns a value; tensor
 * functions add one or a few nodes to the graph. */
#include <math.h>
#include <string.h>

#include "frontend/eval.h"
#include "ir/op_eval.h"

/* ---- argument helpers ---- */

static const char *arg_what(Ev *ev, const EvCall *c, int i) {
  return fe_arena_printf(ev->arena, "argument '%s' of %s", c->param[i], c->name);
}

static bool given(const EvCall *c, int i) { return c->given[i] && c->arg[i].kind != V_NONE; }

/* Argument i as a tensor (numbers are refused: the function needs a shape). */
static int arg_tensor(Ev *ev, const EvCall *c, int i) {
  Value v = c->arg[i];
  if (v.kind != V_TENSOR)
    ev_error(ev, c->arg_loc[i], "%s must be a tensor, got %s", arg_what(ev, c, i), ev_describe(ev, v));
  ev_graph(ev, c->loc, c->name);
  return v.t;
}

static int64_t arg_int(Ev *ev, const EvCall *c, int i, int64_t dflt) {
  return given(c, i) ? ev_to_int(ev, c->arg[i], c->arg_loc[i], arg_what(ev, c, i)) : dflt;
}

static double arg_number(Ev *ev, const EvCall *c, int i, double dflt) {
  return given(c, i) ? ev_to_number(ev, c->arg[i], c->arg_loc[i], arg_what(ev, c, i)) : dflt;
}

static bool arg_bool(Ev *ev, const EvCall *c, int i, bool dflt) {
  if (!given(c, i)) return dflt;
  if (c->arg[i].kind != V_BOOL)
    ev_error(ev, c->arg_loc[i], "%s must be true or false, got %s", arg_what(ev, c, i), ev_describe(ev, c->arg[i]));
  return c->arg[i].b;
}

static IrShape arg_shape(Ev *ev, const EvCall *c, int i) {
  return ev_to_shape(ev, c->arg[i], c->arg_loc[i], arg_what(ev, c, i));
}

static int arg_axis(Ev *ev, const EvCall *c, int i, int rank, int dflt) {
  if (!given(c, i)) return dflt < 0 ? dflt + rank : dflt;
  return ev_to_axis(ev, c->arg[i], rank, c->arg_loc[i], arg_what(ev, c, i));
}

static IrDType arg_dtype(Ev *ev, const EvCall *c, int i, IrDType dflt) {
  if (!given(c, i)) return dflt;
  if (c->arg[i].kind != V_DTYPE)
    ev_error(ev, c->arg_loc[i], "%s must be f32 or i32, got %s", arg_what(ev, c, i), ev_describe(ev, c->arg[i]));
  return c->arg[i].dtype;
}

static const IrShape *shape_of(Ev *ev, int id) { return &ev->g->node[id].shape; }

/* Builds one node from tensor inputs and attributes, checked. */
static Value build(Ev *ev, const EvCall *c, IrOp op, const int *in, int nin, const IrAttr *a) {
  return ev_tensor(ev_check(ev, ir_build(ev->g, op, in, nin, a, c->loc), c->loc));
}

static IrAttr no_attr(void) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  return a;
}

/* ---- elementwise ---- */

/* The op's value on a number, for exp(2) and friends at compile time: the
 * integer cases stay integers, everything else is op_eval's formula
 * (ir/op_eval.h) in double, after the domain checks a model wants as
 * errors rather than NaN. */
static Value unary_number(Ev *ev, const EvCall *c, IrOp op, Value v) {
  double x = ev_number(v);
  if (v.kind == V_INT && op == OP_ABS) { /* an int stays one; |INT64_MIN| does not fit, as -INT64_MIN does not */
    if (v.i == INT64_MIN) ev_error(ev, c->arg_loc[0], "integer overflow in 'abs'");
    return ev_int(v.i < 0 ? -v.i : v.i);
  }
  if (v.kind == V_INT && op == OP_RELU) return ev_int(v.i > 0 ? v.i : 0);
  if (op == OP_LOG && x <= 0) ev_error(ev, c->arg_loc[0], "log of %g: the argument must be positive", x);
  if (op == OP_SQRT && x < 0) ev_error(ev, c->arg_loc[0], "sqrt of %g: the argument must not be negative", x);
  if (op == OP_RSQRT && x <= 0) ev_error(ev, c->arg_loc[0], "rsqrt of %g: the argument must be positive", x);
  if (op_eval_kind(op) != OP_EVAL_UNARY) ev_error(ev, c->loc, "%s needs a tensor", c->name);
  return ev_float(op_eval_unary_f64(op, x));
}

static Value unary(Ev *ev, EvCall *c, IrOp op) {
  Value v = c->arg[0];
  if (ev_is_number(v)) return unary_number(ev, c, op, v);
  int x = arg_tensor(ev, c, 0);
  return ev_tensor(ev_check(ev, ir_unary(ev->g, op, x, c->loc), c->loc));
}

#define UNARY(fn, op) \
  static Value bi_##fn(Ev *ev, EvCall *c) { return unary(ev, c, op); }
UNARY(exp, OP_EXP)
UNARY(log, OP_LOG)
UNARY(sqrt, OP_SQRT)
UNARY(rsqrt, OP_RSQRT)
UNARY(tanh, OP_TANH)
UNARY(sigmoid, OP_SIGMOID)
UNARY(relu, OP_RELU)
UNARY(gelu, OP_GELU)
UNARY(silu, OP_SILU)
UNARY(abs, OP_ABS)
#undef UNARY

static Value bi_stop_gradient(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  return ev_tensor(ev_check(ev, ir_unary(ev->g, OP_STOP_GRADIENT, x, c->loc), c->loc));
}

static Value bi_straight_through(Ev *ev, EvCall *c) {
  int in[2] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1)};
  IrAttr a = no_attr();
  return build(ev, c, OP_STRAIGHT_THROUGH, in, 2, &a);
}

/* assign(s, value): after the entry has run, state s (declared with
 * `state`) holds value (same shape; numbers and i32 are converted). */
static Value bi_assign(Ev *ev, EvCall *c) {
  int s = arg_tensor(ev, c, 0);
  const IrNode *n = &ev->g->node[s];
  if (n->op != OP_STATE || !n->attr.transient)
    ev_error(ev, c->arg_loc[0], "assign: the first argument must be a tensor declared with `state`, got %s",
             ev_describe(ev, c->arg[0]));
  int v = ev_as_tensor(ev, c->arg[1], IR_F32, c->arg_loc[1], "argument 'value' of assign");
  if (ev->g->node[v].dtype != IR_F32)
    v = ev_check(ev, ir_build(ev->g, OP_CAST, &v, 1, &(IrAttr){.dtype = IR_F32}, c->loc), c->loc);
  if (ev->g->node[v].shape.rank == 0 && ev->g->node[s].shape.rank > 0) /* a number fills the state */
    v = ev_check(ev, ir_broadcast_to(ev->g, v, ev->g->node[s].shape, c->loc), c->loc);
  ev_check(ev, ir_add_update(ev->g, s, v, c->loc), c->loc);
  return ev_none();
}

/* freeze(pattern): the entry's parameters whose names match the shell
 * pattern (fnmatch: "vae.*") are not trained: no gradient, no optimizer
 * state, no weight decay. Applies to parameters declared before and after. */
static Value bi_freeze(Ev *ev, EvCall *c) {
  ev_graph(ev, c->loc, "freeze");
  if (c->arg[0].kind != V_STR || !*c->arg[0].s)
    ev_error(ev, c->arg_loc[0], "freeze: the pattern must be a non-empty string such as \"vae.*\", got %s",
             ev_describe(ev, c->arg[0]));
  int n = ev->nfreeze;
  FE_PUSH(ev->arena, ev->freeze, n, c->arg[0].s);
  n = ev->nfreeze;
  FE_PUSH(ev->arena, ev->freeze_loc, n, c->loc);
  ev->nfreeze = n;
  return ev_none();
}

/* maximum(a, b) / minimum(a, b): numbers at compile time, else a node. */
static Value extremum(Ev *ev, EvCall *c, bool max) {
  Value a = c->arg[0], b = c->arg[1];
  if (ev_is_number(a) && ev_is_number(b)) {
    if (a.kind == V_INT && b.kind == V_INT) return (max ? a.i >= b.i : a.i <= b.i) ? a : b;
    double r = op_eval_binary_f64(max ? OP_MAX : OP_MIN, ev_number(a), ev_number(b)); /* NaN propagates */
    if (isnan(r)) return ev_float(r);
    bool is_a = r == ev_number(a) && signbit(r) == signbit(ev_number(a)); /* max(0.0, -0.0) is -0.0 */
    return is_a ? a : b; /* the chosen argument, int or float as given */
  }
  if (a.kind != V_TENSOR && b.kind != V_TENSOR)
    ev_error(ev, c->loc, "%s needs numbers or tensors, got %s and %s", c->name, ev_describe(ev, a), ev_describe(ev, b));
  return ev_tensor_binary(ev, max ? OP_MAX : OP_MIN, a, b, c->loc);
}

static Value bi_maximum(Ev *ev, EvCall *c) { return extremum(ev, c, true); }
static Value bi_minimum(Ev *ev, EvCall *c) { return extremum(ev, c, false); }
static Value bi_pow(Ev *ev, EvCall *c) { return ev_binary(ev, AST_POW, c->arg[0], c->arg[1], c->loc); }

static Value bi_where(Ev *ev, EvCall *c) {
  Value cond = c->arg[0], a = c->arg[1], b = c->arg[2];
  if (cond.kind != V_TENSOR) return ev_to_bool(ev, cond, c->arg_loc[0], arg_what(ev, c, 0)) ? a : b;
  IrGraph *g = ev_graph(ev, c->loc, "where");
  IrDType t = a.kind == V_TENSOR   ? ev_node(ev, a)->dtype
              : b.kind == V_TENSOR ? ev_node(ev, b)->dtype
              : (a.kind == V_FLOAT || b.kind == V_FLOAT) ? IR_F32
                                                          : IR_I32;
  int x = ev_as_tensor(ev, a, t, c->arg_loc[1], arg_what(ev, c, 1));
  int y = ev_as_tensor(ev, b, t, c->arg_loc[2], arg_what(ev, c, 2));
  return ev_tensor(ev_check(ev, ir_where(g, cond.t, x, y, c->loc), c->loc));
}

/* ---- reductions ---- */

typedef enum { FOLD_SUM, FOLD_MEAN, FOLD_MAX, FOLD_MIN } Fold;

/* sum / mean / max / min of a list ('at' locates it): numbers at compile
 * time, tensors as nodes. */
static Value fold_list(Ev *ev, const EvCall *c, const ValList *l, SrcLoc at, Fold how) {
  if (l->n == 0) ev_error(ev, at, "%s of an empty list", c->name);
  Value acc = l->v[0];
  for (int i = 0; i < l->n; i++) {
    Value v = l->v[i];
    if (!ev_is_number(v) && v.kind != V_TENSOR)
      ev_error(ev, at, "%s of a list needs numbers or tensors, got %s", c->name, ev_describe(ev, v));
    if (i == 0) continue;
    if (how == FOLD_SUM || how == FOLD_MEAN) {
      acc = ev_binary(ev, AST_ADD, acc, v, c->loc);
    } else if (ev_is_number(acc) && ev_is_number(v)) {
      if (how == FOLD_MAX ? ev_number(v) > ev_number(acc) : ev_number(v) < ev_number(acc)) acc = v;
    } else {
      acc = ev_tensor_binary(ev, how == FOLD_MAX ? OP_MAX : OP_MIN, acc, v, c->loc);
    }
  }
  if (how == FOLD_MEAN) acc = ev_binary(ev, AST_DIV, acc, ev_int(l->n), c->loc);
  return acc;
}

/* sum(x, axis=None, keepdim=false) and mean(...) */
static Value sum_or_mean(Ev *ev, EvCall *c, bool mean) {
  if (c->arg[0].kind == V_LIST) {
    if (given(c, 1) || given(c, 2)) ev_error(ev, c->loc, "%s of a list takes no axis or keepdim", c->name);
    return fold_list(ev, c, c->arg[0].list, c->arg_loc[0], mean ? FOLD_MEAN : FOLD_SUM);
  }
  int x = arg_tensor(ev, c, 0);
  uint32_t axes = ev_axes(ev, c->arg[1], shape_of(ev, x)->rank, c->arg_loc[1], arg_what(ev, c, 1));
  bool keep = arg_bool(ev, c, 2, false);
  return mean ? ev_mean(ev, x, axes, keep, c->loc) : ev_reduce(ev, OP_SUM, x, axes, keep, c->loc);
}

static Value bi_sum(Ev *ev, EvCall *c) { return sum_or_mean(ev, c, false); }
static Value bi_mean(Ev *ev, EvCall *c) { return sum_or_mean(ev, c, true); }

/* max and min: of a tensor (x, axis=None, keepdim=false), of a list, or of
 * two or more numbers. min of a tensor is -max(-x). */
static Value max_or_min(Ev *ev, EvCall *c, bool max) {
  static const char *const params[] = {"x", "axis", "keepdim"};
  if ((c->npos >= 1 && c->pos[0].kind == V_TENSOR) || (c->npos == 0 && c->nkw > 0)) {
    ev_bind_args(ev, c, params, 3, 1);
    int x = arg_tensor(ev, c, 0);
    uint32_t axes = ev_axes(ev, c->arg[1], shape_of(ev, x)->rank, c->arg_loc[1], arg_what(ev, c, 1));
    bool keep = arg_bool(ev, c, 2, false);
    if (max) return ev_reduce(ev, OP_REDUCE_MAX, x, axes, keep, c->loc);
    Value neg = ev_unary(ev, AST_NEG, ev_tensor(x), c->loc);
    return ev_unary(ev, AST_NEG, ev_reduce(ev, OP_REDUCE_MAX, neg.t, axes, keep, c->loc), c->loc);
  }
  if (c->nkw) ev_error(ev, c->kw_loc[0], "%s of numbers takes no keyword arguments", c->name);
  if (c->npos == 1 && c->pos[0].kind == V_LIST)
    return fold_list(ev, c, c->pos[0].list, c->pos_loc[0], max ? FOLD_MAX : FOLD_MIN);
  if (c->npos < 2)
    ev_error(ev, c->loc, "%s needs a tensor, a list, or two or more numbers", c->name);
  Value best = c->pos[0];
  for (int i = 0; i < c->npos; i++) {
    Value v = c->pos[i];
    if (!ev_is_number(v)) ev_error(ev, c->pos_loc[i], "%s of numbers got %s", c->name, ev_describe(ev, v));
    if (max ? ev_number(v) > ev_number(best) : ev_number(v) < ev_number(best)) best = v;
  }
  return best;
}

static Value bi_max(Ev *ev, EvCall *c) { return max_or_min(ev, c, true); }
static Value bi_min(Ev *ev, EvCall *c) { return max_or_min(ev, c, false); }

/* argmax(x, axis, keepdim=false) */
static Value bi_argmax(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  IrAttr a = no_attr();
  a.axis = arg_axis(ev, c, 1, shape_of(ev, x)->rank, 0);
  a.keepdim = arg_bool(ev, c, 2, false);
  return build(ev, c, OP_ARGMAX, &x, 1, &a);
}

/* softmax(x, axis=-1), log_softmax(x, axis=-1) */
static Value softmax_like(Ev *ev, EvCall *c, IrOp op) {
  int x = arg_tensor(ev, c, 0);
  IrAttr a = no_attr();
  a.axis = arg_axis(ev, c, 1, shape_of(ev, x)->rank, -1);
  return build(ev, c, op, &x, 1, &a);
}

static Value bi_softmax(Ev *ev, EvCall *c) { return softmax_like(ev, c, OP_SOFTMAX); }
static Value bi_log_softmax(Ev *ev, EvCall *c) { return softmax_like(ev, c, OP_LOG_SOFTMAX); }

/* ---- data movement ---- */

/* reshape(x, shape): one dimension may be -1 (inferred). */
static Value bi_reshape(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  Value l = c->arg[1];
  const char *what = arg_what(ev, c, 1);
  if (l.kind != V_LIST) ev_error(ev, c->arg_loc[1], "%s must be a list of dimensions, got %s", what, ev_describe(ev, l));
  if (l.list->n > IR_MAX_RANK)
    ev_error(ev, c->arg_loc[1], "%s has %d dimensions; at most %d are supported", what, l.list->n, IR_MAX_RANK);
  IrShape s = ir_shape_make(l.list->n, NULL);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.rank; i++) {
    Value d = l.list->v[i];
    if (d.kind != V_INT)
      ev_error(ev, c->arg_loc[1], "%s: dimension %d must be an integer, got %s", what, i, ev_describe(ev, d));
    if (d.i == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (d.i <= 0)
      ev_error(ev, c->arg_loc[1], "%s: dimension %d must be positive (or one -1), got %lld", what, i, (long long)d.i);
    s.d[i] = d.i;
    /* No tensor has more than 2^48 elements; stopping there keeps the
     * product from overflowing (to 0, which the -1 would divide by). */
    if (__builtin_mul_overflow(known, d.i, &known) || known > ((int64_t)1 << 48))
      ev_error(ev, c->arg_loc[1], "reshape: the target shape %s has more than 2^48 elements", ev_describe(ev, l));
  }
  if (infer >= 0) {
    int64_t total = ir_numel(shape_of(ev, x));
    if (total % known != 0) {
      char b[200];
      ev_error(ev, c->loc, "reshape: cannot infer the -1 dimension: %s has %lld elements, not a multiple of %lld",
               ev_type_str(ev->g->node[x].dtype, shape_of(ev, x), b, sizeof b), (long long)total, (long long)known);
    }
    s.d[infer] = total / known;
  }
  return ev_tensor(ev_check(ev, ir_reshape(ev->g, x, s, c->loc), c->loc));
}

static Value bi_permute(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  int rank = shape_of(ev, x)->rank;
  Value l = c->arg[1];
  const char *what = arg_what(ev, c, 1);
  if (l.kind != V_LIST || l.list->n != rank)
    ev_error(ev, c->arg_loc[1], "%s must list all %d axes, got %s", what, rank, ev_describe(ev, l));
  int perm[IR_MAX_RANK];
  for (int i = 0; i < rank; i++) perm[i] = ev_to_axis(ev, l.list->v[i], rank, c->arg_loc[1], what);
  return ev_tensor(ev_check(ev, ir_permute(ev->g, x, perm, c->loc), c->loc));
}

/* transpose(x, a, b): swaps two axes. */
static Value bi_transpose(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  int rank = shape_of(ev, x)->rank;
  int a = arg_axis(ev, c, 1, rank, 0), b = arg_axis(ev, c, 2, rank, 0);
  int perm[IR_MAX_RANK];
  for (int i = 0; i < rank; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return ev_tensor(ev_check(ev, ir_permute(ev->g, x, perm, c->loc), c->loc));
}

static Value bi_broadcast_to(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  IrShape s = arg_shape(ev, c, 1);
  return ev_tensor(ev_check(ev, ir_broadcast_to(ev->g, x, s, c->loc), c->loc));
}

/* concat([x, y, ...], axis=0): CONCAT is binary, so a chain of them. */
static Value bi_concat(Ev *ev, EvCall *c) {
  Value l = c->arg[0];
  if (l.kind != V_LIST || l.list->n == 0)
    ev_error(ev, c->arg_loc[0], "%s must be a non-empty list of tensors, got %s", arg_what(ev, c, 0),
             ev_describe(ev, l));
  for (int i = 0; i < l.list->n; i++)
    if (l.list->v[i].kind != V_TENSOR)
      ev_error(ev, c->arg_loc[0], "%s: element %d is %s, not a tensor", arg_what(ev, c, 0), i,
               ev_describe(ev, l.list->v[i]));
  ev_graph(ev, c->loc, "concat");
  int acc = l.list->v[0].t;
  IrAttr a = no_attr();
  a.axis = arg_axis(ev, c, 1, shape_of(ev, acc)->rank, 0);
  for (int i = 1; i < l.list->n; i++) {
    int in[2] = {acc, l.list->v[i].t};
    acc = build(ev, c, OP_CONCAT, in, 2, &a).t;
  }
  return ev_tensor(acc);
}

/* split(x, parts, axis=-1): x cut along 'axis' into a list of tensors,
 * 'parts' equal pieces (an int that divides the axis) or pieces of the
 * sizes listed (positive ints that add up to the axis). Each piece is the
 * slice x[:, ..., lo:hi] of that axis. */
static Value bi_split(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  const IrShape *s = shape_of(ev, x);
  if (s->rank == 0) ev_error(ev, c->arg_loc[0], "split: %s is a scalar", ev_describe(ev, c->arg[0]));
  int axis = arg_axis(ev, c, 2, s->rank, -1);
  int64_t len = s->d[axis];
  Value parts = c->arg[1];
  int n;
  int64_t *size;
  if (parts.kind == V_LIST) {
    n = parts.list->n;
    if (n == 0) ev_error(ev, c->arg_loc[1], "split: the list of sizes is empty");
    size = fe_arena_alloc(ev->arena, (size_t)n * sizeof *size);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
      Value v = parts.list->v[i];
      if (v.kind != V_INT || v.i <= 0)
        ev_error(ev, c->arg_loc[1], "split: size %d must be a positive integer, got %s", i, ev_describe(ev, v));
      if (v.i > len)
        ev_error(ev, c->arg_loc[1], "split: size %d is %lld, more than axis %d of %s holds (%lld)", i,
                 (long long)v.i, axis, ev_describe(ev, c->arg[0]), (long long)len);
      size[i] = v.i;
      total += v.i; /* each at most len: no overflow */
    }
    if (total != len)
      ev_error(ev, c->arg_loc[1], "split: the sizes %s add up to %lld, but axis %d of %s has size %lld",
               ev_describe(ev, parts), (long long)total, axis, ev_describe(ev, c->arg[0]), (long long)len);
  } else {
    int64_t k = ev_to_int(ev, parts, c->arg_loc[1], arg_what(ev, c, 1));
    if (k < 1) ev_error(ev, c->arg_loc[1], "split: the number of parts must be positive, got %lld", (long long)k);
    if (len % k != 0)
      ev_error(ev, c->arg_loc[1], "split: axis %d of %s has size %lld, which does not divide into %lld equal parts",
               axis, ev_describe(ev, c->arg[0]), (long long)len, (long long)k);
    n = (int)k;
    size = fe_arena_alloc(ev->arena, (size_t)n * sizeof *size);
    for (int i = 0; i < n; i++) size[i] = len / k;
  }
  ValList *out = ev_list_new(ev, n, c->loc);
  EvIndex ix[IR_MAX_RANK];
  for (int i = 0; i <= axis; i++) ix[i] = (EvIndex){.slice = true, .loc = c->loc};
  int64_t lo = 0;
  for (int i = 0; i < n; i++) {
    ix[axis].has_lo = ix[axis].has_hi = true;
    ix[axis].lo = lo;
    ix[axis].hi = lo + size[i];
    out->v[i] = ev_index_tensor(ev, ev_tensor(x), ix, axis + 1, c->loc);
    lo += size[i];
  }
  return ev_list(out);
}

/* embedding(table, ids): rows of table at ids (GATHER). */
static Value bi_embedding(Ev *ev, EvCall *c) {
  int in[2] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1)};
  IrAttr a = no_attr();
  return build(ev, c, OP_GATHER, in, 2, &a);
}

/* onehot(ids, depth, axis=-1): the new axis counts in the result's rank. */
static Value bi_onehot(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  IrAttr a = no_attr();
  a.depth = arg_int(ev, c, 1, 0);
  if (a.depth < 1) ev_error(ev, c->arg_loc[1], "%s must be positive, got %lld", arg_what(ev, c, 1), (long long)a.depth);
  a.axis = arg_axis(ev, c, 2, shape_of(ev, x)->rank + 1, -1);
  return build(ev, c, OP_ONEHOT, &x, 1, &a);
}

static Value bi_cast(Ev *ev, EvCall *c) {
  IrDType t = arg_dtype(ev, c, 1, IR_F32);
  Value v = c->arg[0];
  if (ev_is_number(v)) {
    /* On numbers: i32 truncates toward zero, as the CAST op does. */
    if (t == IR_F32) return ev_float(ev_number(v));
    double x = trunc(ev_number(v));
    if (!(x >= -9.2e18 && x <= 9.2e18)) ev_error(ev, c->arg_loc[0], "cast: %g does not fit an integer", x);
    return ev_int((int64_t)x);
  }
  int x = arg_tensor(ev, c, 0);
  if (ev->g->node[x].dtype == t) return v;
  IrAttr a = no_attr();
  a.dtype = t;
  return build(ev, c, OP_CAST, &x, 1, &a);
}

/* ---- compute-heavy ---- */

/* matmul(a, b, ta=false, tb=false) */
static Value bi_matmul(Ev *ev, EvCall *c) {
  int in[2] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1)};
  IrAttr a = no_attr();
  a.trans_a = arg_bool(ev, c, 2, false);
  a.trans_b = arg_bool(ev, c, 3, false);
  return build(ev, c, OP_MATMUL, in, 2, &a);
}

/* conv2d / conv_transpose2d (x, w, stride=1, pad=0) */
static Value conv(Ev *ev, EvCall *c, IrOp op) {
  int in[2] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1)};
  IrAttr a = no_attr();
  int64_t stride = arg_int(ev, c, 2, 1), pad = arg_int(ev, c, 3, 0);
  if (stride < 1 || stride > 1 << 20) ev_error(ev, c->arg_loc[2], "%s must be positive, got %lld", arg_what(ev, c, 2), (long long)stride);
  if (pad < 0 || pad > 1 << 20) ev_error(ev, c->arg_loc[3], "%s must not be negative, got %lld", arg_what(ev, c, 3), (long long)pad);
  a.stride = (int)stride;
  a.pad = (int)pad;
  return build(ev, c, op, in, 2, &a);
}

static Value bi_conv2d(Ev *ev, EvCall *c) { return conv(ev, c, OP_CONV2D); }
static Value bi_conv_transpose2d(Ev *ev, EvCall *c) { return conv(ev, c, OP_CONV_TRANSPOSE2D); }

/* group_norm(x, groups, gamma, beta, eps=1e-5) */
static Value bi_group_norm(Ev *ev, EvCall *c) {
  int in[3] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 2), arg_tensor(ev, c, 3)};
  IrAttr a = no_attr();
  int64_t groups = arg_int(ev, c, 1, 1);
  if (groups < 1 || groups > 1 << 30) ev_error(ev, c->arg_loc[1], "%s must be positive, got %lld", arg_what(ev, c, 1), (long long)groups);
  a.groups = (int)groups;
  a.eps = (float)arg_number(ev, c, 4, 1e-5);
  return build(ev, c, OP_GROUP_NORM, in, 3, &a);
}

/* layer_norm(x, gamma, beta, eps=1e-5) */
static Value bi_layer_norm(Ev *ev, EvCall *c) {
  int in[3] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1), arg_tensor(ev, c, 2)};
  IrAttr a = no_attr();
  a.eps = (float)arg_number(ev, c, 3, 1e-5);
  return build(ev, c, OP_LAYER_NORM, in, 3, &a);
}

/* cross_entropy(logits, targets, weights=None): per position, times weights. */
static Value bi_cross_entropy(Ev *ev, EvCall *c) {
  int in[2] = {arg_tensor(ev, c, 0), arg_tensor(ev, c, 1)};
  IrAttr a = no_attr();
  Value ce = build(ev, c, OP_CROSS_ENTROPY, in, 2, &a);
  if (!given(c, 2)) return ce;
  return ev_tensor_binary(ev, OP_MUL, ce, c->arg[2], c->arg_loc[2]);
}

/* ---- constants ---- */

/* gumbel(shape): the salt numbers the GUMBEL nodes of the graph in order,
 * so each call draws independent noise within a step. */
static Value bi_gumbel(Ev *ev, EvCall *c) {
  ev_graph(ev, c->loc, "gumbel");
  IrAttr a = no_attr();
  a.shape = arg_shape(ev, c, 0);
  a.salt = ev->ngumbel; /* the GUMBEL nodes of g so far: counted, not searched (g may be large) */
  Value v = build(ev, c, OP_GUMBEL, NULL, 0, &a);
  ev->ngumbel++;
  return v;
}

static Value bi_iota(Ev *ev, EvCall *c) {
  ev_graph(ev, c->loc, "iota");
  IrAttr a = no_attr();
  a.shape = arg_shape(ev, c, 0);
  a.axis = arg_axis(ev, c, 1, a.shape.rank, 0);
  return build(ev, c, OP_IOTA, NULL, 0, &a);
}

/* full(shape, value, dtype=f32), zeros(shape), ones(shape) */
static Value fill(Ev *ev, EvCall *c, double value, IrDType t) {
  IrGraph *g = ev_graph(ev, c->loc, c->name);
  IrShape s = arg_shape(ev, c, 0);
  return ev_tensor(ev_check(ev, ir_const(g, t, s, value, c->loc), c->loc));
}

static Value bi_full(Ev *ev, EvCall *c) {
  double v = arg_number(ev, c, 1, 0);
  IrDType t = arg_dtype(ev, c, 2, IR_F32);
  if (t == IR_I32 && !(v == floor(v) && fabs(v) <= 2147483647.0))
    ev_error(ev, c->arg_loc[1], "full: %g is not a whole number, so it cannot fill an i32 tensor", v);
  return fill(ev, c, v, t);
}

static Value bi_zeros(Ev *ev, EvCall *c) { return fill(ev, c, 0, IR_F32); }
static Value bi_ones(Ev *ev, EvCall *c) { return fill(ev, c, 1, IR_F32); }

/* causal_mask(n): i32 [n, n], 1 where column <= row: row index >= column index. */
static Value bi_causal_mask(Ev *ev, EvCall *c) {
  IrGraph *g = ev_graph(ev, c->loc, "causal_mask");
  int64_t n = arg_int(ev, c, 0, 0);
  if (n < 1) ev_error(ev, c->arg_loc[0], "%s must be positive, got %lld", arg_what(ev, c, 0), (long long)n);
  IrAttr a = no_attr();
  a.shape = ir_shape_make(2, (int64_t[]){n, n});
  a.axis = 0;
  int row = build(ev, c, OP_IOTA, NULL, 0, &a).t;
  a.axis = 1;
  int col = build(ev, c, OP_IOTA, NULL, 0, &a).t;
  return ev_tensor(ev_check(ev, ir_binary(g, OP_GE, row, col, c->loc), c->loc));
}

/* ---- compile-time facts ---- */

static Value bi_shape(Ev *ev, EvCall *c) {
  int x = arg_tensor(ev, c, 0);
  const IrShape *s = shape_of(ev, x);
  ValList *l = ev_list_new(ev, s->rank, c->loc);
  for (int i = 0; i < s->rank; i++) l->v[i] = ev_int(s->d[i]);
  return ev_list(l);
}

static Value bi_rank(Ev *ev, EvCall *c) { return ev_int(shape_of(ev, arg_tensor(ev, c, 0))->rank); }

static Value bi_len(Ev *ev, EvCall *c) {
  Value v = c->arg[0];
  if (v.kind == V_LIST) return ev_int(v.list->n);
  if (v.kind == V_STR) return ev_int((int64_t)strlen(v.s));
  if (v.kind == V_TENSOR) return ev_int(shape_of(ev, v.t)->rank ? shape_of(ev, v.t)->d[0] : 0);
  ev_error(ev, c->arg_loc[0], "len needs a list, a string or a tensor, got %s", ev_describe(ev, v));
}

/* range(stop) / range(start, stop) / range(start, stop, step): a list of ints. */
static Value bi_range(Ev *ev, EvCall *c) {
  int64_t start = 0, stop, step = arg_int(ev, c, 2, 1);
  if (given(c, 1)) {
    start = arg_int(ev, c, 0, 0);
    stop = arg_int(ev, c, 1, 0);
  } else {
    stop = arg_int(ev, c, 0, 0);
  }
  if (step == 0) ev_error(ev, c->arg_loc[2], "range: step must not be zero");
  double count = ceil(((double)stop - (double)start) / (double)step);
  if (count > FE_MAX_LIST_LEN)
    ev_error(ev, c->loc, "range of %.0f elements is too long (a list may have at most %d)", count, FE_MAX_LIST_LEN);
  int n = count > 0 ? (int)count : 0;
  ValList *l = ev_list_new(ev, n, c->loc);
  for (int i = 0; i < n; i++) l->v[i] = ev_int(start + i * step);
  return ev_list(l);
}

static Value bi_int(Ev *ev, EvCall *c) {
  Value v = c->arg[0];
  if (v.kind == V_BOOL) return ev_int(v.b);
  double x = trunc(ev_to_number(ev, v, c->arg_loc[0], arg_what(ev, c, 0)));
  if (!(x >= -9.2e18 && x <= 9.2e18)) ev_error(ev, c->arg_loc[0], "int: %g does not fit an integer", x);
  return v.kind == V_INT ? v : ev_int((int64_t)x);
}

static Value bi_float(Ev *ev, EvCall *c) {
  Value v = c->arg[0];
  if (v.kind == V_BOOL) return ev_float(v.b);
  return ev_float(ev_to_number(ev, v, c->arg_loc[0], arg_what(ev, c, 0)));
}

/* ---- the table ---- */

#define P(...) {__VA_ARGS__, NULL}

const EvBuiltin ev_builtins[] = {
    {"exp", P("x"), 1, bi_exp},
    {"log", P("x"), 1, bi_log},
    {"sqrt", P("x"), 1, bi_sqrt},
    {"rsqrt", P("x"), 1, bi_rsqrt},
    {"tanh", P("x"), 1, bi_tanh},
    {"sigmoid", P("x"), 1, bi_sigmoid},
    {"relu", P("x"), 1, bi_relu},
    {"gelu", P("x"), 1, bi_gelu},
    {"silu", P("x"), 1, bi_silu},
    {"abs", P("x"), 1, bi_abs},
    {"maximum", P("a", "b"), 2, bi_maximum},
    {"minimum", P("a", "b"), 2, bi_minimum},
    {"pow", P("a", "b"), 2, bi_pow},
    {"where", P("cond", "a", "b"), 3, bi_where},
    {"sum", P("x", "axis", "keepdim"), 1, bi_sum},
    {"mean", P("x", "axis", "keepdim"), 1, bi_mean},
    {"max", {NULL}, -1, bi_max},
    {"min", {NULL}, -1, bi_min},
    {"argmax", P("x", "axis", "keepdim"), 2, bi_argmax},
    {"softmax", P("x", "axis"), 1, bi_softmax},
    {"log_softmax", P("x", "axis"), 1, bi_log_softmax},
    {"reshape", P("x", "shape"), 2, bi_reshape},
    {"permute", P("x", "perm"), 2, bi_permute},
    {"transpose", P("x", "a", "b"), 3, bi_transpose},
    {"broadcast_to", P("x", "shape"), 2, bi_broadcast_to},
    {"concat", P("xs", "axis"), 1, bi_concat},
    {"split", P("x", "parts", "axis"), 2, bi_split},
    {"matmul", P("a", "b", "ta", "tb"), 2, bi_matmul},
    {"conv2d", P("x", "w", "stride", "pad"), 2, bi_conv2d},
    {"conv_transpose2d", P("x", "w", "stride", "pad"), 2, bi_conv_transpose2d},
    {"group_norm", P("x", "groups", "gamma", "beta", "eps"), 4, bi_group_norm},
    {"layer_norm", P("x", "gamma", "beta", "eps"), 3, bi_layer_norm},
    {"embedding", P("table", "ids"), 2, bi_embedding},
    {"onehot", P("ids", "depth", "axis"), 2, bi_onehot},
    {"cross_entropy", P("logits", "targets", "weights"), 2, bi_cross_entropy},
    {"gumbel", P("shape"), 1, bi_gumbel},
    {"stop_gradient", P("x"), 1, bi_stop_gradient},
    {"assign", P("state", "value"), 2, bi_assign},
    {"freeze", P("pattern"), 1, bi_freeze},
    {"straight_through", P("hard", "soft"), 2, bi_straight_through},
    {"iota", P("shape", "axis"), 2, bi_iota},
    {"full", P("shape", "value", "dtype"), 2, bi_full},
    {"zeros", P("shape"), 1, bi_zeros},
    {"ones", P("shape"), 1, bi_ones},
    {"causal_mask", P("n"), 1, bi_causal_mask},
    {"cast", P("x", "dtype"), 2, bi_cast},
    {"shape", P("x"), 1, bi_shape},
    {"rank", P("x"), 1, bi_rank},
    {"len", P("x"), 1, bi_len},
    {"range", P("start", "stop", "step"), 1, bi_range},
    {"int", P("x"), 1, bi_int},
    {"float", P("x"), 1, bi_float},
};

const int ev_builtin_count = (int)(sizeof ev_builtins / sizeof ev_builtins[0]);
