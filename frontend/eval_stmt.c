/* eval_stmt.c — statements, user-function calls and entry functions (see
 * eval.h). `for` and `if` blocks share their function's locals (as in
 * Python); a `with` block extends the parameter name scope for everything
 * run inside it and is a variable scope: names first bound inside it are
 * local to it, names bound before it stay visible and assignable. */
#include <fnmatch.h>
#include <math.h>
#include <string.h>

#include "frontend/eval.h"

typedef enum { FLOW_NEXT, FLOW_RETURN } Flow;

static Flow exec_block(Ev *ev, const AstBlock *b);
static Flow exec_stmt(Ev *ev, const AstStmt *s);

/* ---- types ---- */

IrShape ev_type_shape(Ev *ev, const AstType *t) {
  if (t->dim.n > IR_MAX_RANK)
    ev_error(ev, t->loc, "the type has %d dimensions; at most %d are supported", t->dim.n, IR_MAX_RANK);
  IrShape s = ir_shape_make(t->dim.n, NULL);
  for (int i = 0; i < t->dim.n; i++) {
    const AstExpr *e = t->dim.v[i];
    Value d = ev_expr(ev, e);
    if (d.kind != V_INT)
      ev_error(ev, e->loc, "dimension %d of the type must be an integer, got %s", i, ev_describe(ev, d));
    if (d.i <= 0) ev_error(ev, e->loc, "dimension %d of the type must be positive, got %lld", i, (long long)d.i);
    s.d[i] = d.i;
  }
  return s;
}

static const char *type_text(Ev *ev, const AstType *t) {
  if (t->kind == TY_INT) return "int";
  if (t->kind == TY_FLOAT) return "float";
  char buf[200];
  IrShape s = ev_type_shape(ev, t);
  return fe_arena_strdup(ev->arena, ev_type_str(t->dtype, &s, buf, sizeof buf));
}

/* Whether a value has a declared type. */
static bool has_type(Ev *ev, const AstType *t, Value v) {
  if (t->kind == TY_INT) return v.kind == V_INT;
  if (t->kind == TY_FLOAT) return ev_is_number(v);
  if (v.kind != V_TENSOR) return false;
  const IrNode *n = ev_node(ev, v);
  IrShape want = ev_type_shape(ev, t);
  return n->dtype == t->dtype && ir_shape_eq(&n->shape, &want);
}

/* ---- parameters ---- */

/* The initialiser of `param w: [..] = init(...)`, resolved to an IR
 * initialiser. kaiming_uniform(fan_in) is PyTorch's default for Linear and
 * Conv weights: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in));
 * xavier_uniform(fan_in, fan_out) is uniform(+-sqrt(6 / (fan_in + fan_out))). */
static void initializer(Ev *ev, const AstExpr *e, IrInitKind *kind, double *a, double *b) {
  static const struct {
    const char *name;
    const char *params[2];
    int n;
  } inits[] = {
      {"zeros", {NULL, NULL}, 0},           {"ones", {NULL, NULL}, 0},
      {"normal", {"mean", "std"}, 2},       {"uniform", {"low", "high"}, 2},
      {"kaiming_uniform", {"fan_in", NULL}, 1}, {"xavier_uniform", {"fan_in", "fan_out"}, 2},
  };
  int k = -1;
  if (e->kind == EX_CALL && e->call.fn->kind == EX_NAME)
    for (int i = 0; i < (int)(sizeof inits / sizeof inits[0]); i++)
      if (strcmp(e->call.fn->str, inits[i].name) == 0) k = i;
  if (k < 0)
    ev_error(ev, e->loc,
             "a param's initialiser must be zeros(), ones(), normal(mean, std), uniform(low, high), "
             "kaiming_uniform(fan_in) or xavier_uniform(fan_in, fan_out)");
  EvCall c = {.loc = e->loc, .name = inits[k].name};
  ev_eval_args(ev, e, &c);
  ev_bind_args(ev, &c, inits[k].params, inits[k].n, inits[k].n);
  double x[2] = {0, 0};
  for (int i = 0; i < inits[k].n; i++) {
    const char *what = fe_arena_printf(ev->arena, "argument '%s' of %s", inits[k].params[i], inits[k].name);
    x[i] = ev_to_number(ev, c.arg[i], c.arg_loc[i], what);
  }
  switch (k) {
  case 0: *kind = IR_INIT_ZEROS, *a = *b = 0; break;
  case 1: *kind = IR_INIT_ONES, *a = *b = 0; break;
  case 2:
    if (x[1] < 0) ev_error(ev, c.arg_loc[1], "normal: std must not be negative, got %g", x[1]);
    *kind = IR_INIT_NORMAL, *a = x[0], *b = x[1];
    break;
  case 3:
    if (x[0] > x[1]) ev_error(ev, e->loc, "uniform: low (%g) is greater than high (%g)", x[0], x[1]);
    *kind = IR_INIT_UNIFORM, *a = x[0], *b = x[1];
    break;
  case 4:
    if (x[0] <= 0) ev_error(ev, c.arg_loc[0], "kaiming_uniform: fan_in must be positive, got %g", x[0]);
    *kind = IR_INIT_UNIFORM, *b = 1 / sqrt(x[0]), *a = -*b;
    break;
  default:
    if (x[0] + x[1] <= 0) ev_error(ev, e->loc, "xavier_uniform: fan_in + fan_out must be positive");
    *kind = IR_INIT_UNIFORM, *b = sqrt(6 / (x[0] + x[1])), *a = -*b;
    break;
  }
}

/* The parameter name scope.NAME, and the graph's PARAM or STATE node of
 * that name (NULL if there is none yet: then the new node must be entered
 * in ev->params). The index keeps declaring N parameters O(N): the
 * graph's own search (ir_param) is linear in the parameters it has. */
static EvGlobal *param_slot(Ev *ev, const AstStmt *s, const char **full) {
  *full = *ev->scope ? fe_arena_printf(ev->arena, "%s.%s", ev->scope, s->name) : s->name;
  ev_charge(ev, (int64_t)strlen(*full), s->loc);
  EvGlobal *slot = ev_global_find(&ev->params, *full);
  if (!slot && ev->g->nparam >= FE_MAX_PARAMS) ev_error(ev, s->loc, FE_MSG_PARAMS, FE_MAX_PARAMS);
  return slot;
}

/* Enters the new PARAM or STATE node 'id' in the index. */
static void param_enter(Ev *ev, const char *full, int id) {
  EvGlobal *slot = ev_global_put(ev->arena, &ev->params, full);
  slot->v = ev_tensor(id);
}

/* param NAME: shape = init — a PARAM node named scope.NAME, bound to NAME. */
static void exec_param(Ev *ev, const AstStmt *s) {
  IrGraph *g = ev_graph(ev, s->loc, "param");
  const char *what = fe_arena_printf(ev->arena, "the shape of param '%s'", s->name);
  IrShape shape = ev_to_shape(ev, ev_expr(ev, s->a), s->a->loc, what);
  IrInitKind kind;
  double a, b;
  initializer(ev, s->b, &kind, &a, &b);
  const char *full;
  const EvGlobal *had = param_slot(ev, s, &full);
  int id = ev_check(ev, ir_param_indexed(g, had ? had->v.t : -1, full, shape, kind, a, b, s->loc), s->loc);
  if (!had) param_enter(ev, full, id);
  ev_local_set(ev, s->name, ev_tensor(id));
}

/* state NAME: shape — a persistent, non-trainable f32 tensor named
 * scope.NAME (zeros at the start, never saved in checkpoints), bound to
 * NAME; `assign` sets what it holds after the entry has run. */
static void exec_state(Ev *ev, const AstStmt *s) {
  IrGraph *g = ev_graph(ev, s->loc, "state");
  const char *what = fe_arena_printf(ev->arena, "the shape of state '%s'", s->name);
  IrShape shape = ev_to_shape(ev, ev_expr(ev, s->a), s->a->loc, what);
  const char *full;
  const EvGlobal *had = param_slot(ev, s, &full);
  int id = ev_check(ev, ir_state_indexed(g, had ? had->v.t : -1, full, shape, s->loc), s->loc);
  if (!had) param_enter(ev, full, id);
  g->node[id].attr.transient = true;
  ev_local_set(ev, s->name, ev_tensor(id));
}

/* ---- statements ---- */

/* A `with` block being run: what to restore at its end. */
typedef struct {
  const char *outer; /* the parameter name scope before it */
  const char *shown; /* its path as evaluated, for messages ("stages[0].down") */
  int mark;          /* the frame's locals before it */
  SrcLoc loc;
} WithScope;

/* Enters `with path`: the parameter name scope grows by "a.b.<i>.c" for
 * `with a.b[i].c`, and a variable scope opens. */
static WithScope with_enter(Ev *ev, const AstPath *p, SrcLoc loc) {
  if (!ev->frame) ev_error(ev, loc, "`with` is only allowed inside a function");
  WithScope w = {.outer = ev->scope, .shown = "", .mark = ev->frame->n, .loc = loc};
  const char *path = ev->scope;
  for (int i = 0; i < p->n; i++) {
    const AstPathPart *part = &p->v[i];
    const char *piece = part->name;
    if (piece) {
      w.shown = fe_arena_printf(ev->arena, "%s%s%s", w.shown, i ? "." : "", piece);
    } else {
      Value v = ev_expr(ev, part->index);
      if (v.kind == V_INT)
        piece = fe_arena_printf(ev->arena, "%lld", (long long)v.i);
      else if (v.kind == V_STR && *v.s)
        piece = v.s;
      else
        ev_error(ev, part->index->loc, "a `with` path index must be an integer or a name string, got %s",
                 ev_describe(ev, v));
      w.shown = fe_arena_printf(ev->arena, v.kind == V_INT ? "%s[%s]" : "%s[\"%s\"]", w.shown, piece);
    }
    path = *path ? fe_arena_printf(ev->arena, "%s.%s", path, piece) : piece;
  }
  size_t len = strlen(path);
  if (len > FE_MAX_STR_LEN) ev_error(ev, loc, FE_MSG_SCOPE_LEN, (long long)len, FE_MAX_STR_LEN);
  ev_charge(ev, (int64_t)(len + strlen(w.shown)), loc);
  ev->scope = path;
  return w;
}

/* Leaves a `with` block: the locals bound inside it are dropped (and
 * remembered for the error if one is used later); assignments to names
 * bound before it stay. */
static void with_leave(Ev *ev, const WithScope *w) {
  EvFrame *f = ev->frame;
  for (int i = w->mark; i < f->n; i++) {
    int n = f->nended;
    FE_PUSH(ev->arena, f->ended, n, ((EvEnded){f->name[i], w->loc, w->shown}));
    f->nended = n;
  }
  f->n = w->mark;
  ev->scope = w->outer;
}

/* with a.b[i].c { ... } as a statement. A `return` inside returns from the
 * function. */
static Flow exec_with(Ev *ev, const AstStmt *s) {
  WithScope w = with_enter(ev, &s->path, s->loc);
  Flow f = exec_block(ev, &s->body);
  with_leave(ev, &w);
  return f;
}

static Value with_value(Ev *ev, const AstPath *path, const AstBlock *body, SrcLoc loc);

/* The value of a `with` block's body: its last statement is an expression
 * or a `with` block (whose value it is); the statements before run first. */
static Value block_value(Ev *ev, const AstBlock *b, SrcLoc with_loc) {
  const AstStmt *last = b->n ? b->v[b->n - 1] : NULL;
  if (!last || (last->kind != ST_EXPR && last->kind != ST_WITH))
    ev_error(ev, last ? last->loc : with_loc,
             "a `with` block used as a value must end with an expression, which is its value");
  for (int i = 0; i + 1 < b->n; i++)
    if (exec_stmt(ev, b->v[i]) == FLOW_RETURN)
      ev_error(ev, b->v[i]->loc, "`return` inside a `with` block used as a value");
  ev_step(ev, last->loc);
  if (last->kind == ST_EXPR) return ev_expr(ev, last->a);
  return with_value(ev, &last->path, &last->body, last->loc);
}

/* `with path { ...; value }` as an expression. */
static Value with_value(Ev *ev, const AstPath *path, const AstBlock *body, SrcLoc loc) {
  WithScope w = with_enter(ev, path, loc);
  Value v = block_value(ev, body, loc);
  with_leave(ev, &w);
  return v;
}

Value ev_with_expr(Ev *ev, const AstExpr *e) { return with_value(ev, &e->with.path, &e->with.body, e->loc); }

/* a, b, c = value: value must be a list of exactly that many elements. */
static void exec_unpack(Ev *ev, const AstStmt *s) {
  Value v = ev_expr(ev, s->a);
  int n = s->targets.n;
  if (v.kind != V_LIST)
    ev_error(ev, s->a->loc, "cannot unpack %s into %d names (it must be a list of %d)", ev_describe(ev, v), n, n);
  if (v.list->n != n)
    ev_error(ev, s->a->loc, "cannot unpack a list of %d element%s into %d names", v.list->n,
             v.list->n == 1 ? "" : "s", n);
  for (int i = 0; i < n; i++) ev_local_set(ev, s->targets.v[i].name, v.list->v[i]);
}

static Flow exec_for(Ev *ev, const AstStmt *s) {
  if (s->b) {
    int64_t lo = ev_to_int(ev, ev_expr(ev, s->a), s->a->loc, "the start of a range");
    int64_t hi = ev_to_int(ev, ev_expr(ev, s->b), s->b->loc, "the end of a range");
    /* Each iteration is a step (an empty body too): a range longer than
     * the steps left is refused before it starts. */
    int64_t n;
    if (hi > lo && (__builtin_sub_overflow(hi, lo, &n) || n > FE_MAX_STEPS - ev->steps))
      ev_error(ev, s->loc, FE_MSG_LOOP_STEPS, (unsigned long long)hi - (unsigned long long)lo, FE_MAX_STEPS);
    for (int64_t i = lo; i < hi; i++) {
      ev_step(ev, s->loc);
      ev_local_set(ev, s->name, ev_int(i));
      if (exec_block(ev, &s->body) == FLOW_RETURN) return FLOW_RETURN;
    }
    return FLOW_NEXT;
  }
  Value l = ev_expr(ev, s->a);
  if (l.kind != V_LIST)
    ev_error(ev, s->a->loc, "`for %s in` needs a list or a range a..b, got %s", s->name, ev_describe(ev, l));
  for (int i = 0; i < l.list->n; i++) {
    ev_step(ev, s->loc);
    ev_local_set(ev, s->name, l.list->v[i]);
    if (exec_block(ev, &s->body) == FLOW_RETURN) return FLOW_RETURN;
  }
  return FLOW_NEXT;
}

static Flow stmt(Ev *ev, const AstStmt *s) {
  switch (s->kind) {
  case ST_ASSIGN: ev_local_set(ev, s->name, ev_expr(ev, s->a)); return FLOW_NEXT;
  case ST_AUG: {
    Value old = ev_lookup(ev, s->name, s->loc, "name");
    Value v = ev_expr(ev, s->a);
    ev_local_set(ev, s->name, ev_binary(ev, s->op, old, v, s->loc));
    return FLOW_NEXT;
  }
  case ST_PARAM: exec_param(ev, s); return FLOW_NEXT;
  case ST_STATE: exec_state(ev, s); return FLOW_NEXT;
  case ST_RETURN:
    ev->frame->ret = ev_expr(ev, s->a);
    ev->frame->ret_loc = s->loc;
    return FLOW_RETURN;
  case ST_FOR: return exec_for(ev, s);
  case ST_IF:
    if (ev_to_bool(ev, ev_expr(ev, s->a), s->a->loc, "an `if` condition")) return exec_block(ev, &s->body);
    return exec_block(ev, &s->orelse);
  case ST_WITH: return exec_with(ev, s);
  case ST_EXPR: ev_expr(ev, s->a); return FLOW_NEXT;
  case ST_UNPACK: exec_unpack(ev, s); return FLOW_NEXT;
  }
  return FLOW_NEXT;
}

static Flow exec_stmt(Ev *ev, const AstStmt *s) {
  ev_step(ev, s->loc);
  ev_enter(ev, s->loc);
  Flow f = stmt(ev, s);
  ev_leave(ev);
  return f;
}

static Flow exec_block(Ev *ev, const AstBlock *b) {
  for (int i = 0; i < b->n; i++)
    if (exec_stmt(ev, b->v[i]) == FLOW_RETURN) return FLOW_RETURN;
  return FLOW_NEXT;
}

/* ---- functions ---- */

/* Makes the call at 'at' the innermost of the graph's calls (IrNode.calls);
 * returns the previous ones, for the caller to put back at the return. */
static const IrCallSite *push_call(Ev *ev, SrcLoc at) {
  if (!ev->g || !ev->keep) return NULL;
  const IrCallSite *outer = ev->g->calls;
  IrCallSite *site = fe_arena_alloc(ev->keep, sizeof *site);
  *site = (IrCallSite){at, outer};
  ev->g->calls = site;
  return outer;
}

Value ev_call_def(Ev *ev, const AstDef *def, EvCall *c) {
  if (ev->depth >= FE_MAX_CALL_DEPTH) ev_error(ev, c->loc, FE_MSG_CALL_DEPTH, FE_MAX_CALL_DEPTH, def->name);
  int n = def->params.n;
  const char **names = fe_arena_alloc(ev->arena, (size_t)(n ? n : 1) * sizeof *names);
  for (int i = 0; i < n; i++) names[i] = def->params.v[i].name;
  int nreq = 0; /* the leading parameters without defaults */
  while (nreq < n && !def->params.v[nreq].dflt) nreq++;
  ev_bind_args(ev, c, names, n, nreq);
  for (int i = 0; i < n; i++)
    if (!c->given[i] && !def->params.v[i].dflt)
      ev_error(ev, c->loc, "%s is missing argument '%s'", def->name, names[i]);

  EvFrame frame = {.def = def, .call = c->loc, .parent = ev->frame};
  ev->frame = &frame;
  const IrCallSite *calls = push_call(ev, c->loc); /* the nodes it makes say where it was called */
  ev->depth++;
  /* A module's function (defaults, types and body) sees its own program's
   * names, and the parameters it declares are named under the module's
   * alias. */
  EvGlobals *outer_globals = ev->globals;
  const char *outer_scope = ev->scope;
  if (def->globals && def->globals != ev->globals) {
    const char *pre = def->globals->prefix;
    ev->globals = def->globals;
    if (pre && *pre) ev->scope = *ev->scope ? fe_arena_printf(ev->arena, "%s.%s", ev->scope, pre) : pre;
  }
  /* Defaults are evaluated at each call, seeing the parameters before them. */
  for (int i = 0; i < n; i++) {
    const AstParam *p = &def->params.v[i];
    ev_local_set(ev, p->name, c->given[i] ? c->arg[i] : ev_expr(ev, p->dflt));
  }
  /* Typed parameters are checked once all are bound (a type's dimensions
   * may name other parameters). A wrong argument is the caller's error, so
   * it is reported without this call in the chain; a wrong default is the
   * function's. */
  for (int i = 0; i < n; i++) {
    const AstParam *p = &def->params.v[i];
    Value v = *ev_local_find(ev, p->name);
    if (!p->type || has_type(ev, p->type, v)) continue;
    const char *type = type_text(ev, p->type), *got = ev_describe(ev, v);
    if (c->given[i]) {
      ev->frame = frame.parent;
      ev->depth--;
    }
    ev_error(ev, c->given[i] ? c->arg_loc[i] : p->dflt->loc, "argument '%s' of %s must be %s, got %s", p->name,
             def->name, type, got);
  }
  exec_block(ev, &def->body);
  if (ev->g) ev->g->calls = calls;
  ev->globals = outer_globals;
  ev->scope = outer_scope;
  ev->depth--;
  ev->frame = frame.parent;
  return frame.ret;
}

void ev_lower_entry(Ev *ev, const AstDef *def) {
  IrGraph *g = ev->g;
  EvFrame frame = {.def = def, .parent = ev->frame};
  ev->frame = &frame;
  for (int i = 0; i < def->params.n; i++) {
    const AstParam *p = &def->params.v[i];
    IrShape s = ev_type_shape(ev, p->type);
    /* The loader checked that the names differ (check_params). */
    int id = ev_check(ev, ir_input_indexed(g, p->name, p->type->dtype, s, p->loc), p->loc);
    ev_local_set(ev, p->name, ev_tensor(id));
  }
  exec_block(ev, &def->body);

  Value r = frame.ret;
  SrcLoc at = frame.ret_loc.line ? frame.ret_loc : def->loc;
  if (r.kind == V_NONE && !frame.ret_loc.line) ev_error(ev, def->loc, "entry '%s' returns nothing", def->name);
  if (r.kind != V_TENSOR) ev_error(ev, at, "entry '%s' must return a tensor, got %s", def->name, ev_describe(ev, r));
  const IrNode *n = ev_node(ev, r);
  char got[200];
  ev_type_str(n->dtype, &n->shape, got, sizeof got);
  if (def->kind == DEF_TRAIN && (n->dtype != IR_F32 || n->shape.rank != 0))
    ev_error(ev, at, "@train entry '%s' must return a scalar f32 loss, but returns %s", def->name, got);
  if (def->ret) {
    IrShape want = ev_type_shape(ev, def->ret);
    if (n->dtype != def->ret->dtype || !ir_shape_eq(&n->shape, &want))
      ev_error(ev, at, "entry '%s' returns %s but is declared to return %s", def->name, got,
               type_text(ev, def->ret));
  }
  ev->frame = frame.parent;
  ir_set_outputs(g, &r.t, &def->name, 1);
  for (int k = 0; k < ev->nfreeze; k++) {
    int matched = 0;
    for (int i = 0; i < g->nparam; i++) {
      IrNode *n = &g->node[g->param[i]];
      if (n->op == OP_PARAM && fnmatch(ev->freeze[k], n->name, 0) == 0) n->attr.frozen = true, matched++;
    }
    if (!matched)
      ev_error(ev, ev->freeze_loc[k], "freeze: no parameter of '%s' matches \"%s\"", def->name, ev->freeze[k]);
  }
}
