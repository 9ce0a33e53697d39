/* shape.c — shape helpers and shape inference: one rule per rule name in
 * ops.def, dispatched through a table generated from it.
 *
 * Every rule validates its inputs' dtypes and ranks and the attributes its op
 * reads, then writes the result's dtype and shape. Arity and the basic
 * validity of input shapes are checked once, in ir_infer, before any rule
 * runs. Axes must already be normalised to 0..rank-1 (ir_build does that
 * for negative axes); a rule rejects anything else. Messages start with the
 * op's text name and quote the shapes involved. */
#include "ir/ir.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* No tensor may have more elements than this (2^48): keeps every size
 * computation far from int64 overflow. */
#define NUMEL_MAX ((int64_t)1 << 48)

int64_t ir_numel(const IrShape *s) {
  if (!s || s->rank < 0 || s->rank > IR_MAX_RANK) return -1;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->d[i];
  return n;
}

bool ir_shape_eq(const IrShape *a, const IrShape *b) {
  if (a->rank != b->rank || a->rank < 0 || a->rank > IR_MAX_RANK) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->d[i] != b->d[i]) return false;
  return true;
}

/* A shape of 'rank' dims d[0..rank). A rank outside 0..IR_MAX_RANK is kept
 * as given (with no dims copied) so that the shape rule using it can report
 * it; dims past the rank are zero. */
IrShape ir_shape_make(int rank, const int64_t *d) {
  IrShape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  if (d && rank > 0 && rank <= IR_MAX_RANK) memcpy(s.d, d, (size_t)rank * sizeof *d);
  return s;
}

char *ir_shape_str(const IrShape *s, char *buf, size_t size) {
  if (!size) return buf;
  if (s->rank < 0 || s->rank > IR_MAX_RANK) {
    snprintf(buf, size, "<rank %d>", s->rank);
    return buf;
  }
  size_t len = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < s->rank && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, i ? ", " : "", s->d[i]);
  if (len < size) snprintf(buf + len, size - len, "]");
  return buf;
}

/* ---- rule context and helpers ---- */

/* One inference problem: the op, its inputs and attributes, and the answer. */
typedef struct {
  IrOp op;
  int nin;
  const IrDType *dt;   /* dt[nin]: input dtypes */
  const IrShape *sh;   /* sh[nin]: input shapes */
  const IrAttr *a;
  IrDType dtype;       /* result */
  IrShape shape;
  char *err;
  size_t size;
} Infer;

/* A shape as text, usable inline in one printf call (the temporary lives
 * until the end of the full expression). */
typedef struct {
  char s[IR_MAX_RANK * 22 + 16];
} ShapeText;

static ShapeText shp(const IrShape *s) {
  ShapeText t;
  ir_shape_str(s, t.s, sizeof t.s);
  return t;
}

/* Writes "<op>: <message>" into c->err; returns false. */
__attribute__((format(printf, 2, 3))) static bool fail(Infer *c, const char *fmt, ...) {
  if (!c->err || !c->size) return false;
  int n = snprintf(c->err, c->size, "%s: ", ir_op_name(c->op));
  if (n >= 0 && (size_t)n < c->size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->size - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return false;
}

static bool dtype_ok(IrDType t) { return t == IR_F32 || t == IR_I32; }

/* A dtype for messages, also when it is not a valid IrDType. */
static const char *dname(IrDType t) { return dtype_ok(t) ? ir_dtype_name(t) : "<invalid dtype>"; }

/* Checks that 's' (called 'what' in messages) is a shape a tensor may have:
 * rank 0..IR_MAX_RANK, every dim >= 1, at most NUMEL_MAX elements. */
/* check_shape's test without its message (ir_infer runs on every node
 * built, and a message per input would be formatted for nothing). */
static bool shape_ok(const IrShape *s) {
  if (s->rank < 0 || s->rank > IR_MAX_RANK) return false;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->d[i] < 1 || s->d[i] > NUMEL_MAX / n) return false;
    n *= s->d[i];
  }
  return true;
}

static bool check_shape(Infer *c, const IrShape *s, const char *what) {
  if (shape_ok(s)) return true;
  if (s->rank < 0 || s->rank > IR_MAX_RANK)
    return fail(c, "%s has rank %d; ranks go from 0 to %d", what, s->rank, IR_MAX_RANK);
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->d[i] < 1) return fail(c, "%s %s has dimension %d < 1", what, shp(s).s, i);
    if (s->d[i] > NUMEL_MAX / n)
      return fail(c, "%s %s has more than 2^48 elements", what, shp(s).s);
    n *= s->d[i];
  }
  return true;
}

/* Checks 0 <= axis < rank. */
static bool check_axis(Infer *c, int axis, int rank) {
  if (rank == 0) return fail(c, "axis %d is out of range: a scalar has no axes", axis);
  if (axis < 0 || axis >= rank)
    return fail(c, "axis %d is out of range for rank %d (expected 0..%d)", axis, rank, rank - 1);
  return true;
}

/* Checks a 0/1 flag attribute. */
static bool check_flag(Infer *c, int v, const char *what) {
  if (v != 0 && v != 1) return fail(c, "%s must be 0 or 1, got %d", what, v);
  return true;
}

static bool need_rank_at_least(Infer *c, int i, int rank, const char *what) {
  if (c->sh[i].rank < rank)
    return fail(c, "%s must have rank >= %d, got %s", what, rank, shp(&c->sh[i]).s);
  return true;
}

/* Input 'i' (called 'what') must be dtype 't'. */
static bool need_dtype(Infer *c, int i, IrDType t, const char *what) {
  if (c->dt[i] != t) return fail(c, "%s must be %s, got %s", what, ir_dtype_name(t), dname(c->dt[i]));
  return true;
}

/* Every input has the shape and dtype of input 0 (the elementwise contract). */
static bool same_operands(Infer *c) {
  for (int i = 1; i < c->nin; i++) {
    if (!ir_shape_eq(&c->sh[0], &c->sh[i]))
      return fail(c, "shapes differ: %s and %s (ir_binary broadcasts; ir_build does not)",
                  shp(&c->sh[0]).s, shp(&c->sh[i]).s);
    if (c->dt[0] != c->dt[i]) return fail(c, "dtypes differ: %s and %s", dname(c->dt[0]), dname(c->dt[i]));
  }
  return true;
}

/* The result is input 0's dtype and shape. */
static bool like_input(Infer *c) {
  c->dtype = c->dt[0];
  c->shape = c->sh[0];
  return true;
}

/* ---- leaves ---- */

static bool check_init(Infer *c) {
  const IrAttr *a = c->a;
  switch (a->init) {
  case IR_INIT_ZEROS:
  case IR_INIT_ONES: return true;
  case IR_INIT_NORMAL:
    if (!isfinite(a->init_a) || !isfinite(a->init_b) || a->init_b < 0)
      return fail(c, "normal init needs a finite mean and a finite std >= 0, got normal(%g, %g)", a->init_a,
                  a->init_b);
    return true;
  case IR_INIT_UNIFORM:
    if (!isfinite(a->init_a) || !isfinite(a->init_b) || a->init_a > a->init_b)
      return fail(c, "uniform init needs finite bounds with low <= high, got uniform(%g, %g)", a->init_a,
                  a->init_b);
    return true;
  }
  return fail(c, "unknown init kind %d", (int)a->init);
}

/* INPUT PARAM CONST: dtype and shape come from the attributes. */
static bool infer_leaf(Infer *c) {
  const IrAttr *a = c->a;
  if (!check_shape(c, &a->shape, "shape")) return false;
  if (!dtype_ok(a->dtype)) return fail(c, "unknown dtype %d", (int)a->dtype);
  if (c->op == OP_STATE && a->dtype != IR_F32) return fail(c, "state is f32, got %s", dname(a->dtype));
  if (c->op == OP_PARAM) {
    if (a->dtype != IR_F32) return fail(c, "parameters are f32, got %s", dname(a->dtype));
    if (!check_init(c)) return false;
  }
  if (c->op == OP_CONST && a->dtype == IR_I32 &&
      !(a->value == floor(a->value) && a->value >= INT32_MIN && a->value <= INT32_MAX))
    return fail(c, "i32 value %g is not a 32-bit integer", a->value);
  c->dtype = a->dtype;
  c->shape = a->shape;
  return true;
}

/* IOTA: i32 of attr.shape, element = its index along attr.axis. */
static bool infer_iota(Infer *c) {
  if (!check_shape(c, &c->a->shape, "shape") || !check_axis(c, c->a->axis, c->a->shape.rank)) return false;
  c->dtype = IR_I32;
  c->shape = c->a->shape;
  return true;
}

/* GUMBEL: f32 noise of attr.shape. */
static bool infer_gumbel(Infer *c) {
  if (!check_shape(c, &c->a->shape, "shape")) return false;
  c->dtype = IR_F32;
  c->shape = c->a->shape;
  return true;
}

/* ---- elementwise ---- */

/* NEG ABS: x f32 or i32 -> same. */
static bool infer_unary_num(Infer *c) { return like_input(c); }

/* EXP LOG ...: x f32 -> f32. */
static bool infer_unary_f32(Infer *c) { return need_dtype(c, 0, IR_F32, "the input") && like_input(c); }

/* CAST: x -> attr.dtype, same shape. */
static bool infer_cast(Infer *c) {
  if (!dtype_ok(c->a->dtype)) return fail(c, "unknown target dtype %d", (int)c->a->dtype);
  c->dtype = c->a->dtype;
  c->shape = c->sh[0];
  return true;
}

/* STOP_GRADIENT: any x -> same. */
static bool infer_unary_any(Infer *c) { return like_input(c); }

/* ADD SUB ...: a, b same shape and dtype -> same. */
static bool infer_binary_num(Infer *c) { return same_operands(c) && like_input(c); }

/* POW: a, b f32, same shape -> f32. */
static bool infer_binary_f32(Infer *c) {
  if (!same_operands(c)) return false;
  if (c->dt[0] != IR_F32) return fail(c, "expects f32 operands, got %s", dname(c->dt[0]));
  return like_input(c);
}

/* LT LE ...: a, b same shape and dtype -> i32 0/1. */
static bool infer_compare(Infer *c) {
  if (!same_operands(c)) return false;
  c->dtype = IR_I32;
  c->shape = c->sh[0];
  return true;
}

/* WHERE: cond i32, a, b same dtype; all the same shape -> a's dtype. */
static bool infer_where(Infer *c) {
  if (!need_dtype(c, 0, IR_I32, "the condition")) return false;
  if (c->dt[1] != c->dt[2])
    return fail(c, "branches have different dtypes: %s and %s", dname(c->dt[1]), dname(c->dt[2]));
  if (!ir_shape_eq(&c->sh[0], &c->sh[1]) || !ir_shape_eq(&c->sh[0], &c->sh[2]))
    return fail(c, "shapes differ: condition %s, a %s, b %s (ir_where broadcasts; ir_build does not)",
                shp(&c->sh[0]).s, shp(&c->sh[1]).s, shp(&c->sh[2]).s);
  c->dtype = c->dt[1];
  c->shape = c->sh[1];
  return true;
}

/* STRAIGHT_THROUGH: hard, soft f32, same shape -> f32. */
static bool infer_straight_through(Infer *c) {
  if (!same_operands(c)) return false;
  if (c->dt[0] != IR_F32) return fail(c, "expects f32 operands, got %s", dname(c->dt[0]));
  return like_input(c);
}

/* ---- reductions ---- */

/* Input 0's shape with the axes in 'axes' removed (or kept as 1 if keepdim). */
static IrShape reduced_shape(const IrShape *in, uint32_t axes, int keepdim) {
  IrShape s;
  memset(&s, 0, sizeof s);
  for (int i = 0; i < in->rank; i++) {
    if (!(axes >> i & 1u)) s.d[s.rank++] = in->d[i];
    else if (keepdim) s.d[s.rank++] = 1;
  }
  return s;
}

/* SUM REDUCE_MAX: x -> x's dtype, over the axes in the attr.axes mask. */
static bool infer_reduce(Infer *c) {
  int r = c->sh[0].rank;
  uint32_t axes = c->a->axes;
  if (axes >> r) {
    int top = 31;
    while (!(axes >> top & 1u)) top--;
    return fail(c, "axes mask 0x%" PRIx32 " names axis %d but the input %s has rank %d", axes, top,
                shp(&c->sh[0]).s, r);
  }
  if (!check_flag(c, c->a->keepdim, "keepdim")) return false;
  c->dtype = c->dt[0];
  c->shape = reduced_shape(&c->sh[0], axes, c->a->keepdim);
  return true;
}

/* ARGMAX: x [..., n, ...] along attr.axis -> i32 indices. */
static bool infer_argmax(Infer *c) {
  if (!check_axis(c, c->a->axis, c->sh[0].rank) || !check_flag(c, c->a->keepdim, "keepdim")) return false;
  c->dtype = IR_I32;
  c->shape = reduced_shape(&c->sh[0], 1u << c->a->axis, c->a->keepdim);
  return true;
}

/* SOFTMAX LOG_SOFTMAX: x f32 along attr.axis -> same. */
static bool infer_softmax(Infer *c) {
  return need_dtype(c, 0, IR_F32, "the input") && check_axis(c, c->a->axis, c->sh[0].rank) && like_input(c);
}

/* ---- data movement ---- */

/* RESHAPE: x -> attr.shape with the same element count. */
static bool infer_reshape(Infer *c) {
  const IrShape *to = &c->a->shape;
  if (!check_shape(c, to, "target shape")) return false;
  int64_t n = ir_numel(&c->sh[0]), m = ir_numel(to);
  if (n != m)
    return fail(c, "cannot reshape %s (%" PRId64 " elements) to %s (%" PRId64 " elements)", shp(&c->sh[0]).s,
                n, shp(to).s, m);
  c->dtype = c->dt[0];
  c->shape = *to;
  return true;
}

/* PERMUTE: out.d[i] = in.d[attr.perm[i]]; perm a permutation of 0..rank-1. */
static bool infer_permute(Infer *c) {
  const IrShape *in = &c->sh[0];
  const int *p = c->a->perm;
  unsigned seen = 0;
  for (int i = 0; i < in->rank; i++) {
    if (p[i] < 0 || p[i] >= in->rank || (seen >> p[i] & 1u)) {
      char list[IR_MAX_RANK * 14 + 4];
      size_t len = 0;
      for (int j = 0; j < in->rank && len < sizeof list; j++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", j ? ", " : "", p[j]);
      return fail(c, "perm [%s] is not a permutation of 0..%d for input %s", list, in->rank - 1, shp(in).s);
    }
    seen |= 1u << p[i];
  }
  c->dtype = c->dt[0];
  c->shape.rank = in->rank;
  for (int i = 0; i < in->rank; i++) c->shape.d[i] = in->d[p[i]];
  return true;
}

/* BROADCAST: x -> attr.shape of the same rank; each input dim is 1 or equal. */
static bool infer_broadcast(Infer *c) {
  const IrShape *in = &c->sh[0], *to = &c->a->shape;
  if (!check_shape(c, to, "target shape")) return false;
  if (to->rank != in->rank)
    return fail(c, "target %s has rank %d but the input %s has rank %d (reshape first)", shp(to).s, to->rank,
                shp(in).s, in->rank);
  for (int i = 0; i < in->rank; i++)
    if (in->d[i] != 1 && in->d[i] != to->d[i])
      return fail(c, "cannot broadcast %s to %s: dimension %d is %" PRId64 ", not 1 or %" PRId64, shp(in).s,
                  shp(to).s, i, in->d[i], to->d[i]);
  c->dtype = c->dt[0];
  c->shape = *to;
  return true;
}

/* SLICE: out = in[start[i]:stop[i]] on every axis; 0 <= start < stop <= dim. */
static bool infer_slice(Infer *c) {
  const IrShape *in = &c->sh[0];
  for (int i = 0; i < in->rank; i++) {
    int64_t b = c->a->start[i], e = c->a->stop[i];
    if (b < 0 || b >= e || e > in->d[i])
      return fail(c,
                  "axis %d: [%" PRId64 ":%" PRId64 "] of %s is empty or out of range"
                  " (need 0 <= start < stop <= %" PRId64 ")",
                  i, b, e, shp(in).s, in->d[i]);
    c->shape.d[i] = e - b;
  }
  c->dtype = c->dt[0];
  c->shape.rank = in->rank;
  return true;
}

/* CONCAT: a, b same dtype and rank, equal dims except attr.axis -> summed along it. */
static bool infer_concat(Infer *c) {
  const IrShape *a = &c->sh[0], *b = &c->sh[1];
  int ax = c->a->axis;
  if (c->dt[0] != c->dt[1]) return fail(c, "dtypes differ: %s and %s", dname(c->dt[0]), dname(c->dt[1]));
  if (a->rank != b->rank) return fail(c, "ranks differ: %s and %s", shp(a).s, shp(b).s);
  if (!check_axis(c, ax, a->rank)) return false;
  for (int i = 0; i < a->rank; i++)
    if (i != ax && a->d[i] != b->d[i])
      return fail(c, "dimension %d differs: %s and %s (concatenating along axis %d)", i, shp(a).s, shp(b).s, ax);
  c->dtype = c->dt[0];
  c->shape = *a;
  c->shape.d[ax] = a->d[ax] + b->d[ax];
  return true;
}

/* GATHER: table f32 [V, D...], idx i32 [...] -> f32 [..., D...]. */
static bool infer_gather(Infer *c) {
  const IrShape *t = &c->sh[0], *idx = &c->sh[1];
  if (!need_rank_at_least(c, 0, 1, "the table") || !need_dtype(c, 0, IR_F32, "the table") ||
      !need_dtype(c, 1, IR_I32, "the indices"))
    return false;
  int r = idx->rank + t->rank - 1;
  if (r > IR_MAX_RANK)
    return fail(c, "result rank %d (indices %s, table %s) exceeds the maximum %d", r, shp(idx).s, shp(t).s,
                IR_MAX_RANK);
  c->dtype = IR_F32;
  c->shape = *idx;
  for (int i = 1; i < t->rank; i++) c->shape.d[c->shape.rank++] = t->d[i];
  return true;
}

/* GATHER_BACKWARD: idx i32 [...], grad f32 [..., D...] -> f32 attr.shape = [V, D...]. */
static bool infer_gather_backward(Infer *c) {
  const IrShape *idx = &c->sh[0], *g = &c->sh[1], *to = &c->a->shape;
  if (!need_dtype(c, 0, IR_I32, "the indices") || !need_dtype(c, 1, IR_F32, "the gradient") ||
      !check_shape(c, to, "table shape"))
    return false;
  if (to->rank < 1) return fail(c, "table shape must have rank >= 1, got a scalar");
  IrShape want = *idx;
  if (idx->rank + to->rank - 1 > IR_MAX_RANK)
    return fail(c, "gradient rank %d (indices %s, table %s) exceeds the maximum %d", idx->rank + to->rank - 1,
                shp(idx).s, shp(to).s, IR_MAX_RANK);
  for (int i = 1; i < to->rank; i++) want.d[want.rank++] = to->d[i];
  if (!ir_shape_eq(g, &want))
    return fail(c, "gradient %s does not match indices %s and table %s (expected %s)", shp(g).s, shp(idx).s,
                shp(to).s, shp(&want).s);
  c->dtype = IR_F32;
  c->shape = *to;
  return true;
}

/* ONEHOT: idx i32 [...] -> f32 with a new axis attr.axis of size attr.depth. */
static bool infer_onehot(Infer *c) {
  const IrShape *in = &c->sh[0];
  if (!need_dtype(c, 0, IR_I32, "the indices")) return false;
  if (c->a->depth < 1) return fail(c, "depth must be >= 1, got %" PRId64, c->a->depth);
  if (in->rank + 1 > IR_MAX_RANK)
    return fail(c, "result rank %d exceeds the maximum %d (indices %s)", in->rank + 1, IR_MAX_RANK, shp(in).s);
  int ax = c->a->axis;
  if (!check_axis(c, ax, in->rank + 1)) return false;
  c->dtype = IR_F32;
  c->shape.rank = in->rank + 1;
  for (int i = 0, j = 0; i < c->shape.rank; i++) c->shape.d[i] = i == ax ? c->a->depth : in->d[j++];
  return true;
}

/* ---- compute-heavy ---- */

/* MATMUL: a [..., M, K] (trans_a: [..., K, M]), b [..., K, N] (trans_b:
 * [..., N, K]) -> [..., M, N]; b is rank 2 or has a's batch dims. */
static bool infer_matmul(Infer *c) {
  const IrShape *a = &c->sh[0], *b = &c->sh[1];
  int ta = c->a->trans_a, tb = c->a->trans_b;
  if (c->dt[0] != IR_F32 || c->dt[1] != IR_F32)
    return fail(c, "expects f32 operands, got %s @ %s", dname(c->dt[0]), dname(c->dt[1]));
  if (!need_rank_at_least(c, 0, 2, "a") || !need_rank_at_least(c, 1, 2, "b")) return false;
  if (!check_flag(c, ta, "trans_a") || !check_flag(c, tb, "trans_b")) return false;
  if (b->rank != 2 && b->rank != a->rank)
    return fail(c, "b %s must be rank 2 or have a's rank %d (a is %s)", shp(b).s, a->rank, shp(a).s);
  for (int i = 0; i < b->rank - 2; i++)
    if (a->d[i] != b->d[i]) return fail(c, "batch dimensions differ: %s @ %s", shp(a).s, shp(b).s);
  int ra = a->rank, rb = b->rank;
  int64_t m = ta ? a->d[ra - 1] : a->d[ra - 2], ka = ta ? a->d[ra - 2] : a->d[ra - 1];
  int64_t kb = tb ? b->d[rb - 1] : b->d[rb - 2], n = tb ? b->d[rb - 2] : b->d[rb - 1];
  if (ka != kb)
    return fail(c, "inner dimensions differ: %s @ %s%s", shp(a).s, shp(b).s,
                ta && tb ? " (ta=1, tb=1)" : ta ? " (ta=1)" : tb ? " (tb=1)" : "");
  c->dtype = IR_F32;
  c->shape = *a;
  c->shape.d[ra - 2] = m;
  c->shape.d[ra - 1] = n;
  return true;
}

/* Checks the f32 [N, C, H, W] input, the rank-4 weight, stride and pad of a
 * convolution; 'wlayout' names the weight layout for messages. */
static bool check_conv(Infer *c, const char *wlayout) {
  if (c->dt[0] != IR_F32 || c->dt[1] != IR_F32)
    return fail(c, "expects f32 input and weight, got %s and %s", dname(c->dt[0]), dname(c->dt[1]));
  if (c->sh[0].rank != 4) return fail(c, "input must be [N, C, H, W], got %s", shp(&c->sh[0]).s);
  if (c->sh[1].rank != 4) return fail(c, "weight must be %s, got %s", wlayout, shp(&c->sh[1]).s);
  if (c->a->stride < 1) return fail(c, "stride must be >= 1, got %d", c->a->stride);
  if (c->a->pad < 0) return fail(c, "pad must be >= 0, got %d", c->a->pad);
  return true;
}

/* CONV2D: x [N, C, H, W], w [O, C, kh, kw] -> [N, O, (H + 2p - kh)/s + 1, (W + 2p - kw)/s + 1]. */
static bool infer_conv2d(Infer *c) {
  if (!check_conv(c, "[O, C, kh, kw]")) return false;
  const int64_t *x = c->sh[0].d, *w = c->sh[1].d;
  int64_t s = c->a->stride, p = c->a->pad;
  if (x[1] != w[1])
    return fail(c, "input has %" PRId64 " channels but weight expects %" PRId64 " (input %s, weight %s)", x[1],
                w[1], shp(&c->sh[0]).s, shp(&c->sh[1]).s);
  if (x[2] + 2 * p < w[2] || x[3] + 2 * p < w[3])
    return fail(c, "kernel %" PRId64 "x%" PRId64 " is larger than the padded input %" PRId64 "x%" PRId64 " (pad %d)",
                w[2], w[3], x[2] + 2 * p, x[3] + 2 * p, c->a->pad);
  c->dtype = IR_F32;
  c->shape = ir_shape_make(4, (int64_t[]){x[0], w[0], (x[2] + 2 * p - w[2]) / s + 1, (x[3] + 2 * p - w[3]) / s + 1});
  return true;
}

/* *out = (n - 1)s - 2p + k, the transposed convolution's output size (may be
 * < 1); false if it would exceed NUMEL_MAX. */
static bool tconv_size(int64_t n, int64_t s, int64_t p, int64_t k, int64_t *out) {
  if (n - 1 > NUMEL_MAX / s) return false;
  *out = (n - 1) * s - 2 * p + k;
  return *out <= NUMEL_MAX;
}

/* CONV_TRANSPOSE2D: x [N, C, H, W], w [C, O, kh, kw] -> [N, O, (H - 1)s - 2p + kh, (W - 1)s - 2p + kw]. */
static bool infer_conv_transpose2d(Infer *c) {
  if (!check_conv(c, "[C, O, kh, kw]")) return false;
  const int64_t *x = c->sh[0].d, *w = c->sh[1].d;
  int64_t s = c->a->stride, p = c->a->pad;
  if (x[1] != w[0])
    return fail(c, "input has %" PRId64 " channels but weight expects %" PRId64 " (input %s, weight %s)", x[1],
                w[0], shp(&c->sh[0]).s, shp(&c->sh[1]).s);
  int64_t oh, ow;
  if (!tconv_size(x[2], s, p, w[2], &oh) || !tconv_size(x[3], s, p, w[3], &ow))
    return fail(c, "output of input %s with stride %d is too large", shp(&c->sh[0]).s, c->a->stride);
  if (oh < 1 || ow < 1)
    return fail(c,
                "output would be %" PRId64 "x%" PRId64 " (input %s, kernel %" PRId64 "x%" PRId64
                ", stride %d, pad %d)",
                oh, ow, shp(&c->sh[0]).s, w[2], w[3], c->a->stride, c->a->pad);
  c->dtype = IR_F32;
  c->shape = ir_shape_make(4, (int64_t[]){x[0], w[1], oh, ow});
  return true;
}

/* CONV2D_BACKWARD_WEIGHT: x [N, C, H, W], grad [N, O, OH, OW] -> f32 attr.shape
 * = [O, C, kh, kw], where grad is what conv2d(x, w) with attr.stride and
 * attr.pad makes: OH = (H + 2p - kh)/s + 1, likewise OW. */
static bool infer_conv2d_backward_weight(Infer *c) {
  const IrShape *xs = &c->sh[0], *gs = &c->sh[1], *to = &c->a->shape;
  if (c->dt[0] != IR_F32 || c->dt[1] != IR_F32)
    return fail(c, "expects f32 input and gradient, got %s and %s", dname(c->dt[0]), dname(c->dt[1]));
  if (xs->rank != 4) return fail(c, "input must be [N, C, H, W], got %s", shp(xs).s);
  if (gs->rank != 4) return fail(c, "gradient must be [N, O, OH, OW], got %s", shp(gs).s);
  if (!check_shape(c, to, "weight shape")) return false;
  if (to->rank != 4) return fail(c, "weight shape must be [O, C, kh, kw], got %s", shp(to).s);
  if (c->a->stride < 1) return fail(c, "stride must be >= 1, got %d", c->a->stride);
  if (c->a->pad < 0) return fail(c, "pad must be >= 0, got %d", c->a->pad);
  const int64_t *x = xs->d, *g = gs->d, *w = to->d;
  int64_t s = c->a->stride, p = c->a->pad;
  if (x[0] != g[0] || x[1] != w[1] || g[1] != w[0] || x[2] + 2 * p < w[2] || x[3] + 2 * p < w[3] ||
      g[2] != (x[2] + 2 * p - w[2]) / s + 1 || g[3] != (x[3] + 2 * p - w[3]) / s + 1)
    return fail(c, "gradient %s is not what conv2d of input %s with weight %s, stride %d, pad %d gives", shp(gs).s,
                shp(xs).s, shp(to).s, c->a->stride, c->a->pad);
  c->dtype = IR_F32;
  c->shape = *to;
  return true;
}

/* Checks eps and that gamma and beta (inputs 1, 2) are f32 [ch]. */
static bool check_norm_affine(Infer *c, int64_t ch) {
  if (!need_dtype(c, 0, IR_F32, "the input") || !need_dtype(c, 1, IR_F32, "gamma") ||
      !need_dtype(c, 2, IR_F32, "beta"))
    return false;
  IrShape want = ir_shape_make(1, &ch);
  if (!ir_shape_eq(&c->sh[1], &want)) return fail(c, "gamma must be %s, got %s", shp(&want).s, shp(&c->sh[1]).s);
  if (!ir_shape_eq(&c->sh[2], &want)) return fail(c, "beta must be %s, got %s", shp(&want).s, shp(&c->sh[2]).s);
  if (!(c->a->eps >= 0) || !isfinite(c->a->eps)) return fail(c, "eps must be finite and >= 0, got %g", c->a->eps);
  return true;
}

/* GROUP_NORM: x [N, C, ...], gamma [C], beta [C]; attr.groups divides C -> x's shape. */
static bool infer_group_norm(Infer *c) {
  if (c->sh[0].rank < 2) return fail(c, "input must be [N, C, ...], got %s", shp(&c->sh[0]).s);
  int64_t ch = c->sh[0].d[1];
  if (!check_norm_affine(c, ch)) return false;
  if (c->a->groups < 1) return fail(c, "groups must be >= 1, got %d", c->a->groups);
  if (ch % c->a->groups)
    return fail(c, "%" PRId64 " channels are not divisible into %d groups", ch, c->a->groups);
  return like_input(c);
}

/* LAYER_NORM: x [..., C], gamma [C], beta [C] -> x's shape. */
static bool infer_layer_norm(Infer *c) {
  if (c->sh[0].rank < 1) return fail(c, "input must be [..., C], got a scalar");
  return check_norm_affine(c, c->sh[0].d[c->sh[0].rank - 1]) && like_input(c);
}

/* Checks attention's q [..., n, d], k [..., m, d], v (k's shape), mask i32
 * [n, m] and a finite scale; *n, *m, *d get the sizes. */
static bool check_attention(Infer *c, int64_t *n, int64_t *m, int64_t *d) {
  const IrShape *q = &c->sh[0], *k = &c->sh[1], *v = &c->sh[2], *mask = &c->sh[3];
  if (!need_dtype(c, 0, IR_F32, "q") || !need_dtype(c, 1, IR_F32, "k") || !need_dtype(c, 2, IR_F32, "v") ||
      !need_dtype(c, 3, IR_I32, "the mask") || !need_rank_at_least(c, 0, 3, "q"))
    return false;
  int r = q->rank;
  if (k->rank != r) return fail(c, "k %s must have q's rank (q is %s)", shp(k).s, shp(q).s);
  for (int i = 0; i < r - 2; i++)
    if (k->d[i] != q->d[i]) return fail(c, "leading dimensions differ: q %s, k %s", shp(q).s, shp(k).s);
  if (k->d[r - 1] != q->d[r - 1]) return fail(c, "q %s and k %s differ in their last dimension", shp(q).s, shp(k).s);
  if (!ir_shape_eq(v, k)) return fail(c, "v %s must have k's shape %s", shp(v).s, shp(k).s);
  *n = q->d[r - 2];
  *m = k->d[r - 2];
  *d = q->d[r - 1];
  if (mask->rank != 2 || mask->d[0] != *n || mask->d[1] != *m)
    return fail(c, "the mask %s must be [n, m] = [%" PRId64 ", %" PRId64 "]", shp(mask).s, *n, *m);
  if (!isfinite(c->a->value)) return fail(c, "scale must be finite, got %g", c->a->value);
  return true;
}

/* ATTENTION: q [..., n, d], k, v [..., m, d], mask i32 [n, m] -> [..., n, d + 1]. */
static bool infer_attention(Infer *c) {
  int64_t n, m, d;
  if (!check_attention(c, &n, &m, &d)) return false;
  c->dtype = IR_F32;
  c->shape = c->sh[0];
  c->shape.d[c->shape.rank - 1] = d + 1;
  return true;
}

/* ATTENTION_BACKWARD: q, k, v, mask, y [..., n, d + 1], dy (y's shape) -> [..., n + 2m, d]. */
static bool infer_attention_backward(Infer *c) {
  int64_t n, m, d;
  if (!check_attention(c, &n, &m, &d)) return false;
  IrShape y = c->sh[0];
  y.d[y.rank - 1] = d + 1;
  for (int i = 4; i < 6; i++) {
    if (!need_dtype(c, i, IR_F32, i == 4 ? "the output" : "the gradient")) return false;
    if (!ir_shape_eq(&c->sh[i], &y))
      return fail(c, "%s %s must be attention's output shape %s", i == 4 ? "the output" : "the gradient",
                  shp(&c->sh[i]).s, shp(&y).s);
  }
  c->dtype = IR_F32;
  c->shape = c->sh[0];
  c->shape.d[c->shape.rank - 2] = n + 2 * m;
  return true;
}

/* CROSS_ENTROPY: logits f32 [..., V], target i32 [...] -> f32 [...]. */
static bool infer_cross_entropy(Infer *c) {
  const IrShape *l = &c->sh[0], *t = &c->sh[1];
  if (!need_dtype(c, 0, IR_F32, "logits") || !need_dtype(c, 1, IR_I32, "the target") ||
      !need_rank_at_least(c, 0, 1, "logits"))
    return false;
  IrShape want = *l;
  want.rank--;
  if (!ir_shape_eq(t, &want))
    return fail(c, "target shape %s does not match logits %s without its last axis (%s)", shp(t).s, shp(l).s,
                shp(&want).s);
  c->dtype = IR_F32;
  c->shape = want;
  return true;
}

/* ---- dispatch ---- */

typedef bool (*ShapeRule)(Infer *c);

static const ShapeRule rules[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) infer_##rule,
#include "ir/ops.def"
#undef OP
};

bool ir_infer(IrOp op, const IrDType *in_dtype, const IrShape *in_shape, int nin, const IrAttr *attr,
              IrDType *out_dtype, IrShape *out_shape, char *err, size_t size) {
  static const IrAttr no_attr;
  Infer c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.nin = nin;
  c.dt = in_dtype;
  c.sh = in_shape;
  c.a = attr ? attr : &no_attr;
  c.err = err;
  c.size = size;
  if (err && size) err[0] = 0;
  if ((unsigned)op >= (unsigned)OP_COUNT) return fail(&c, "unknown op %d", (int)op);
  if (nin != ir_op_arity(op))
    return fail(&c, "expects %d input%s, got %d", ir_op_arity(op), ir_op_arity(op) == 1 ? "" : "s", nin);
  if (nin > 0 && (!in_dtype || !in_shape)) return fail(&c, "input dtypes or shapes missing");
  for (int i = 0; i < nin; i++) {
    if (!dtype_ok(in_dtype[i])) return fail(&c, "input %d has unknown dtype %d", i, (int)in_dtype[i]);
    if (!shape_ok(&in_shape[i])) {
      char what[32];
      snprintf(what, sizeof what, "input %d", i);
      return check_shape(&c, &in_shape[i], what);
    }
  }
  if (!rules[op](&c)) return false;
  /* Guards the rules themselves (and caps derived sizes, e.g. gather's). */
  if (!check_shape(&c, &c.shape, "the result")) return false;
  if (out_dtype) *out_dtype = c.dtype;
  if (out_shape) *out_shape = ir_shape_make(c.shape.rank, c.shape.d);
  return true;
}
