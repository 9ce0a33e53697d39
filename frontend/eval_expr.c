/* eval_expr.c — expressions: literals, names, operators (on numbers at
 * compile time with Python's rules, on tensors as graph nodes), indexing
 * and calls (see eval.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/eval.h"

/* ---- operators on numbers ---- */

static _Noreturn void overflow(Ev *ev, SrcLoc loc, AstOp op) {
  ev_error(ev, loc, "integer overflow in '%s'", ast_op_text(op));
}

/* Python's floor division and modulo on ints (b != 0). */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q--;
  return q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

/* a ** b for ints, b >= 0. */
static int64_t int_pow(Ev *ev, int64_t a, int64_t b, SrcLoc loc) {
  int64_t r = 1;
  while (b > 0) {
    if ((b & 1) && __builtin_mul_overflow(r, a, &r)) overflow(ev, loc, AST_POW);
    b >>= 1;
    if (b > 0 && __builtin_mul_overflow(a, a, &a)) overflow(ev, loc, AST_POW);
  }
  return r;
}

static Value number_arith(Ev *ev, AstOp op, Value a, Value b, SrcLoc loc) {
  bool ints = a.kind == V_INT && b.kind == V_INT;
  double x = ev_number(a), y = ev_number(b);
  int64_t r;
  switch (op) {
  case AST_ADD:
    if (!ints) return ev_float(x + y);
    if (__builtin_add_overflow(a.i, b.i, &r)) overflow(ev, loc, op);
    return ev_int(r);
  case AST_SUB:
    if (!ints) return ev_float(x - y);
    if (__builtin_sub_overflow(a.i, b.i, &r)) overflow(ev, loc, op);
    return ev_int(r);
  case AST_MUL:
    if (!ints) return ev_float(x * y);
    if (__builtin_mul_overflow(a.i, b.i, &r)) overflow(ev, loc, op);
    return ev_int(r);
  case AST_DIV:
    if (y == 0) ev_error(ev, loc, "division by zero");
    return ev_float(x / y);
  case AST_IDIV:
  case AST_MOD:
    if (y == 0) ev_error(ev, loc, "%s by zero", op == AST_MOD ? "modulo" : "division");
    if (ints) {
      if (a.i == INT64_MIN && b.i == -1) overflow(ev, loc, op);
      return ev_int(op == AST_IDIV ? floor_div(a.i, b.i) : floor_mod(a.i, b.i));
    }
    if (op == AST_IDIV) return ev_float(floor(x / y));
    double m = fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return ev_float(m);
  case AST_POW:
    if (ints && b.i >= 0) return ev_int(int_pow(ev, a.i, b.i, loc));
    if (x == 0 && y < 0) ev_error(ev, loc, "zero to a negative power");
    if (x < 0 && y != floor(y)) ev_error(ev, loc, "a negative number to a fractional power");
    return ev_float(pow(x, y));
  case AST_LT: return ev_bool(ints ? a.i < b.i : x < y);
  case AST_LE: return ev_bool(ints ? a.i <= b.i : x <= y);
  case AST_GT: return ev_bool(ints ? a.i > b.i : x > y);
  case AST_GE: return ev_bool(ints ? a.i >= b.i : x >= y);
  default: ev_error(ev, loc, "'%s' does not apply to numbers", ast_op_text(op));
  }
}

/* == on compile-time values: numbers (and booleans) by value, strings and
 * lists by contents, everything else by identity. Lists built in a loop
 * can nest without bound, so the depth is limited. */
static bool values_equal(Ev *ev, Value a, Value b, SrcLoc loc, int depth) {
  if (depth > FE_MAX_EXPR_DEPTH) ev_error(ev, loc, "'==' on lists nested more than %d deep", FE_MAX_EXPR_DEPTH);
  bool an = ev_is_number(a) || a.kind == V_BOOL, bn = ev_is_number(b) || b.kind == V_BOOL;
  if (an || bn) {
    if (!an || !bn) return false;
    if (a.kind == V_INT && b.kind == V_INT) return a.i == b.i;
    double x = a.kind == V_BOOL ? a.b : ev_number(a), y = b.kind == V_BOOL ? b.b : ev_number(b);
    return x == y;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
  case V_NONE: return true;
  case V_STR: return strcmp(a.s, b.s) == 0;
  case V_DTYPE: return a.dtype == b.dtype;
  case V_FUNC: return a.fn == b.fn;
  case V_BUILTIN: return a.builtin == b.builtin;
  case V_LIST:
    if (a.list->n != b.list->n) return false;
    for (int i = 0; i < a.list->n; i++)
      if (!values_equal(ev, a.list->v[i], b.list->v[i], loc, depth + 1)) return false;
    return true;
  default: return false;
  }
}

static Value concat_lists(Ev *ev, const ValList *a, const ValList *b, SrcLoc loc) {
  ValList *l = ev_list_new(ev, (int64_t)a->n + b->n, loc);
  memcpy(l->v, a->v, (size_t)a->n * sizeof(Value));
  memcpy(l->v + a->n, b->v, (size_t)b->n * sizeof(Value));
  return ev_list(l);
}

static Value repeat_list(Ev *ev, const ValList *a, int64_t k, SrcLoc loc) {
  if (k < 0) k = 0;
  int64_t n;
  if (__builtin_mul_overflow((int64_t)a->n, k, &n) || n > FE_MAX_LIST_LEN)
    ev_error(ev, loc, "list repetition too long (%lld copies of %d elements: a list may have at most %d)",
             (long long)k, a->n, FE_MAX_LIST_LEN);
  ValList *l = ev_list_new(ev, n, loc);
  for (int64_t i = 0; i < k; i++) memcpy(l->v + i * a->n, a->v, (size_t)a->n * sizeof(Value));
  return ev_list(l);
}

/* ---- operators on tensors ---- */

static const IrOp tensor_op[] = {
    [AST_ADD] = OP_ADD, [AST_SUB] = OP_SUB, [AST_MUL] = OP_MUL, [AST_DIV] = OP_DIV, [AST_POW] = OP_POW,
    [AST_EQ] = OP_EQ,   [AST_NE] = OP_NE,   [AST_LT] = OP_LT,   [AST_LE] = OP_LE,   [AST_GT] = OP_GT,
    [AST_GE] = OP_GE,
};

static Value tensor_arith(Ev *ev, AstOp op, Value a, Value b, SrcLoc loc) {
  IrGraph *g = ev_graph(ev, loc, "a tensor operation");
  IrDType t = a.kind == V_TENSOR ? ev_node(ev, a)->dtype : ev_node(ev, b)->dtype;
  switch (op) {
  case AST_MATMUL: {
    if (a.kind != V_TENSOR || b.kind != V_TENSOR)
      ev_error(ev, loc, "'@' needs two tensors, got %s and %s", ev_describe(ev, a), ev_describe(ev, b));
    int in[2] = {a.t, b.t};
    return ev_tensor(ev_check(ev, ir_build(g, OP_MATMUL, in, 2, NULL, loc), loc));
  }
  case AST_DIV:
    if (t == IR_I32) ev_error(ev, loc, "'/' on an i32 tensor: use '//' for integer division, or cast to f32");
    return ev_tensor_binary(ev, OP_DIV, a, b, loc);
  case AST_IDIV:
  case AST_MOD: {
    if (t != IR_I32)
      ev_error(ev, loc, "'%s' on an f32 tensor is not supported (it is for i32 tensors)", ast_op_text(op));
    Value q = ev_tensor_binary(ev, OP_DIV, a, b, loc); /* i32 DIV floors, as Python's // */
    if (op == AST_IDIV) return q;
    /* a % b = a - (a // b) * b */
    Value qb = ev_tensor_binary(ev, OP_MUL, q, b, loc);
    return ev_tensor_binary(ev, OP_SUB, a, qb, loc);
  }
  case AST_POW:
    /* x ** 2 is x * x: exact, and its gradient needs no log. */
    if (a.kind == V_TENSOR && ev_is_number(b) && ev_number(b) == 2) return ev_tensor_binary(ev, OP_MUL, a, a, loc);
    return ev_tensor_binary(ev, OP_POW, a, b, loc);
  case AST_ADD: case AST_SUB: case AST_MUL:
  case AST_EQ: case AST_NE: case AST_LT: case AST_LE: case AST_GT: case AST_GE:
    return ev_tensor_binary(ev, tensor_op[op], a, b, loc);
  default:
    ev_error(ev, loc, "'%s' needs values known at compile time, got %s and %s", ast_op_text(op), ev_describe(ev, a),
             ev_describe(ev, b));
  }
}

Value ev_binary(Ev *ev, AstOp op, Value a, Value b, SrcLoc loc) {
  if (a.kind == V_TENSOR || b.kind == V_TENSOR) return tensor_arith(ev, op, a, b, loc);
  if (op == AST_EQ) return ev_bool(values_equal(ev, a, b, loc, 0));
  if (op == AST_NE) return ev_bool(!values_equal(ev, a, b, loc, 0));
  if (op == AST_AND || op == AST_OR) {
    bool x = ev_to_bool(ev, a, loc, "an operand of 'and'/'or'"), y = ev_to_bool(ev, b, loc, "an operand of 'and'/'or'");
    return ev_bool(op == AST_AND ? x && y : x || y);
  }
  if (ev_is_number(a) && ev_is_number(b)) return number_arith(ev, op, a, b, loc);
  if (op == AST_ADD && a.kind == V_LIST && b.kind == V_LIST) return concat_lists(ev, a.list, b.list, loc);
  if (op == AST_ADD && a.kind == V_STR && b.kind == V_STR) return ev_str(ev_str_concat(ev, a.s, b.s, loc));
  if (op == AST_MUL && a.kind == V_LIST && b.kind == V_INT) return repeat_list(ev, a.list, b.i, loc);
  if (op == AST_MUL && a.kind == V_INT && b.kind == V_LIST) return repeat_list(ev, b.list, a.i, loc);
  ev_error(ev, loc, "'%s' does not apply to %s and %s", ast_op_text(op), ev_describe(ev, a), ev_describe(ev, b));
}

Value ev_unary(Ev *ev, AstOp op, Value a, SrcLoc loc) {
  if (op == AST_NOT) return ev_bool(!ev_to_bool(ev, a, loc, "the operand of 'not'"));
  if (a.kind == V_TENSOR) {
    if (op == AST_POS) return a;
    return ev_tensor(ev_check(ev, ir_unary(ev_graph(ev, loc, "'-'"), OP_NEG, a.t, loc), loc));
  }
  if (!ev_is_number(a))
    ev_error(ev, loc, "unary '%s' needs a number or a tensor, got %s", ast_op_text(op), ev_describe(ev, a));
  if (op == AST_POS) return a;
  if (a.kind == V_FLOAT) return ev_float(-a.f);
  if (a.i == INT64_MIN) overflow(ev, loc, op);
  return ev_int(-a.i);
}

/* ---- indexing ---- */

static int64_t index_int(Ev *ev, const AstExpr *e) {
  Value v = ev_expr(ev, e);
  if (v.kind == V_TENSOR)
    ev_error(ev, e->loc, "a tensor cannot be an index (use embedding() or onehot() to select by tensor values)");
  return ev_to_int(ev, v, e->loc, "an index");
}

static Value index_list(Ev *ev, const ValList *l, const EvIndex *ix, int n, SrcLoc loc) {
  if (n != 1) ev_error(ev, loc, "a list takes one index, got %d", n);
  int64_t len = l->n;
  if (!ix->slice) {
    int64_t k = ix->lo < 0 ? ix->lo + len : ix->lo;
    if (k < 0 || k >= len)
      ev_error(ev, ix->loc, "list index %lld is out of range for a list of %lld", (long long)ix->lo, (long long)len);
    return l->v[k];
  }
  int64_t start = ix->has_lo ? (ix->lo < 0 ? ix->lo + len : ix->lo) : 0;
  int64_t stop = ix->has_hi ? (ix->hi < 0 ? ix->hi + len : ix->hi) : len;
  start = start < 0 ? 0 : start > len ? len : start;
  stop = stop < start ? start : stop > len ? len : stop;
  ValList *r = ev_list_new(ev, stop - start, loc);
  memcpy(r->v, l->v + start, (size_t)(stop - start) * sizeof(Value));
  return ev_list(r);
}

static Value eval_index(Ev *ev, const AstExpr *e) {
  Value x = ev_expr(ev, e->index.x);
  int n = e->index.idx.n;
  EvIndex *ix = fe_arena_alloc(ev->arena, (size_t)n * sizeof *ix);
  for (int i = 0; i < n; i++) {
    const AstIndex *a = &e->index.idx.v[i];
    ix[i] = (EvIndex){.slice = a->slice, .has_lo = a->lo != NULL, .has_hi = a->hi != NULL, .loc = a->loc};
    if (a->lo) ix[i].lo = index_int(ev, a->lo);
    if (a->hi) ix[i].hi = index_int(ev, a->hi);
  }
  if (x.kind == V_LIST) return index_list(ev, x.list, ix, n, e->loc);
  if (x.kind == V_TENSOR) return ev_index_tensor(ev, x, ix, n, e->loc);
  ev_error(ev, e->loc, "%s cannot be indexed", ev_describe(ev, x));
}

/* ---- calls ---- */

void ev_bind_args(Ev *ev, EvCall *c, const char *const *params, int n, int nreq) {
  c->narg = n;
  c->param = params;
  c->arg = fe_arena_alloc(ev->arena, (size_t)(n ? n : 1) * sizeof *c->arg);
  c->given = fe_arena_alloc(ev->arena, (size_t)(n ? n : 1) * sizeof *c->given);
  c->arg_loc = fe_arena_alloc(ev->arena, (size_t)(n ? n : 1) * sizeof *c->arg_loc);
  if (c->npos > n) {
    if (n == nreq)
      ev_error(ev, c->loc, "%s takes %d argument%s, got %d", c->name, n, n == 1 ? "" : "s", c->npos);
    ev_error(ev, c->loc, "%s takes at most %d arguments, got %d", c->name, n, c->npos);
  }
  for (int i = 0; i < n; i++) c->arg_loc[i] = c->loc;
  for (int i = 0; i < c->npos; i++) {
    c->arg[i] = c->pos[i];
    c->given[i] = true;
    c->arg_loc[i] = c->pos_loc[i];
  }
  for (int k = 0; k < c->nkw; k++) {
    int i = 0;
    while (i < n && strcmp(params[i], c->kw_name[k]) != 0) i++;
    if (i == n) ev_error(ev, c->kw_loc[k], "%s has no parameter named '%s'", c->name, c->kw_name[k]);
    if (c->given[i]) ev_error(ev, c->kw_loc[k], "%s got two values for parameter '%s'", c->name, params[i]);
    c->arg[i] = c->kw[k];
    c->given[i] = true;
    c->arg_loc[i] = c->kw_loc[k];
  }
  for (int i = 0; i < nreq; i++)
    if (!c->given[i]) ev_error(ev, c->loc, "%s is missing argument '%s'", c->name, params[i]);
}

Value ev_call_value(Ev *ev, Value fn, EvCall *c) {
  ev_step(ev, c->loc);
  if (fn.kind == V_FUNC) return ev_call_def(ev, fn.fn, c);
  if (fn.kind != V_BUILTIN) ev_error(ev, c->loc, "%s is not a function", ev_describe(ev, fn));
  const EvBuiltin *b = &ev_builtins[fn.builtin];
  if (b->nreq >= 0) {
    int n = 0;
    while (n < (int)(sizeof b->params / sizeof b->params[0]) && b->params[n]) n++;
    ev_bind_args(ev, c, b->params, n, b->nreq);
  }
  return b->fn(ev, c);
}

void ev_eval_args(Ev *ev, const AstExpr *e, EvCall *c) {
  int n = e->call.args.n;
  size_t cap = (size_t)(n ? n : 1);
  c->npos = c->nkw = 0;
  c->pos = fe_arena_alloc(ev->arena, cap * sizeof *c->pos);
  c->pos_loc = fe_arena_alloc(ev->arena, cap * sizeof *c->pos_loc);
  c->kw = fe_arena_alloc(ev->arena, cap * sizeof *c->kw);
  c->kw_loc = fe_arena_alloc(ev->arena, cap * sizeof *c->kw_loc);
  c->kw_name = fe_arena_alloc(ev->arena, cap * sizeof *c->kw_name);
  for (int i = 0; i < n; i++) {
    const AstArg *a = &e->call.args.v[i];
    if (!a->name && c->nkw) ev_error(ev, a->loc, "a positional argument cannot follow keyword arguments");
    for (int k = 0; a->name && k < c->nkw; k++)
      if (strcmp(c->kw_name[k], a->name) == 0) ev_error(ev, a->loc, "keyword argument '%s' repeated", a->name);
    Value v = ev_expr(ev, a->value);
    if (a->name) {
      c->kw_name[c->nkw] = a->name;
      c->kw_loc[c->nkw] = a->loc;
      c->kw[c->nkw++] = v;
    } else {
      c->pos_loc[c->npos] = a->loc;
      c->pos[c->npos++] = v;
    }
  }
}

static Value eval_call(Ev *ev, const AstExpr *e) {
  const AstExpr *f = e->call.fn;
  Value fn = f->kind == EX_NAME ? ev_lookup(ev, f->str, f->loc, "function") : ev_expr(ev, f);
  EvCall c = {.loc = e->loc};
  c.name = fn.kind == V_FUNC      ? fn.fn->name
           : fn.kind == V_BUILTIN ? ev_builtins[fn.builtin].name
           : f->kind == EX_NAME   ? f->str
                                  : "the called value";
  if (fn.kind != V_FUNC && fn.kind != V_BUILTIN)
    ev_error(ev, f->loc, "'%s' is not a function (it is %s)", c.name, ev_describe(ev, fn));
  ev_eval_args(ev, e, &c);
  return ev_call_value(ev, fn, &c);
}

/* m.name: a definition of module m (a function, config key, let or module). */
static Value eval_attr(Ev *ev, const AstExpr *e) {
  Value m = ev_expr(ev, e->attr.x);
  if (m.kind != V_MODULE)
    ev_error(ev, e->loc, "'.%s': only a module (`import \"f.dal\" as m`) has members, not %s", e->attr.name,
             ev_describe(ev, m));
  const EvGlobal *g = ev_global_find(m.module, e->attr.name);
  bool defined = g && (g->kind == G_CONFIG || g->kind == G_LET || g->kind == G_DEF || g->kind == G_MODULE ||
                       g->kind == G_BATCH);
  if (!defined) ev_error(ev, e->loc, "module '%s' has no definition '%s'", m.module->prefix, e->attr.name);
  if (!g->ready)
    ev_error(ev, e->loc, "'%s.%s' has no value (not defined by the module's config?)", m.module->prefix,
             e->attr.name);
  return g->v;
}

/* ---- expressions ---- */

static Value expr(Ev *ev, const AstExpr *e) {
  switch (e->kind) {
  case EX_INT: return ev_int(e->ival);
  case EX_FLOAT: return ev_float(e->fval);
  case EX_BOOL: return ev_bool(e->bval);
  case EX_STR: return ev_str(e->str);
  case EX_NAME: return ev_lookup(ev, e->str, e->loc, "name");
  case EX_LIST: {
    ValList *l = ev_list_new(ev, e->list.n, e->loc);
    for (int i = 0; i < e->list.n; i++) l->v[i] = ev_expr(ev, e->list.v[i]);
    return ev_list(l);
  }
  case EX_UNARY: return ev_unary(ev, e->op.op, ev_expr(ev, e->op.a), e->loc);
  case EX_BINARY:
    if (e->op.op == AST_AND || e->op.op == AST_OR) {
      /* Short-circuit, on compile-time values only. */
      const char *what = e->op.op == AST_AND ? "an operand of 'and'" : "an operand of 'or'";
      bool x = ev_to_bool(ev, ev_expr(ev, e->op.a), e->op.a->loc, what);
      if (x == (e->op.op == AST_OR)) return ev_bool(x);
      return ev_bool(ev_to_bool(ev, ev_expr(ev, e->op.b), e->op.b->loc, what));
    }
    {
      Value a = ev_expr(ev, e->op.a);
      Value b = ev_expr(ev, e->op.b);
      return ev_binary(ev, e->op.op, a, b, e->loc);
    }
  case EX_CALL: return eval_call(ev, e);
  case EX_INDEX: return eval_index(ev, e);
  case EX_ATTR: return eval_attr(ev, e);
  case EX_WITH: return ev_with_expr(ev, e);
  }
  ev_error(ev, e->loc, "internal error: expression kind %d", (int)e->kind);
}

Value ev_expr(Ev *ev, const AstExpr *e) {
  ev_enter(ev, e->loc);
  Value v = expr(ev, e);
  ev_leave(ev);
  return v;
}
