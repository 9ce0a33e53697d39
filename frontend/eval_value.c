/* eval_value.c — values, names (locals and globals) and errors of the
 * tracer (see eval.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/diag.h"
#include "frontend/eval.h"

/* ---- errors and limits ---- */

bool ev_protect(Ev *ev, void (*fn)(Ev *ev, void *ud), void *ud) {
  jmp_buf here;
  jmp_buf *outer = ev->jmp;
  ev->jmp = &here;
  if (!ev->stack_base) ev->stack_base = (uintptr_t)__builtin_frame_address(0); /* the outermost call's */
  bool ok = setjmp(here) == 0;
  if (ok) fn(ev, ud);
  ev->jmp = outer;
  return ok;
}

/* At most this many "in call to" lines; a deep recursion shows its start. */
#define MAX_CHAIN 12

void ev_error(Ev *ev, SrcLoc loc, const char *fmt, ...) {
  FeBuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  fe_diag_vappend(&b, "error", loc, fmt, ap);
  va_end(ap);
  int total = 0;
  for (const EvFrame *f = ev->frame; f; f = f->parent)
    if (f->def && f->call.line > 0) {
      if (total < MAX_CHAIN)
        fe_buf_printf(&b, "  in call to %s at %s:%d:%d\n", f->def->name, f->call.file, f->call.line, f->call.col);
      total++;
    }
  if (total > MAX_CHAIN) fe_buf_printf(&b, "  ... and %d more calls\n", total - MAX_CHAIN);
  free(ev->error);
  ev->error = fe_buf_take(&b);
  longjmp(*ev->jmp, 1);
}

void ev_step(Ev *ev, SrcLoc loc) {
  if (++ev->steps > FE_MAX_STEPS) ev_error(ev, loc, FE_MSG_STEPS, FE_MAX_STEPS);
}

void ev_charge(Ev *ev, int64_t bytes, SrcLoc loc) {
  ev->value_bytes += bytes;
  if (ev->value_bytes > FE_MAX_VALUE_BYTES) ev_error(ev, loc, FE_MSG_VALUE_BYTES, FE_MAX_VALUE_BYTES >> 20);
}

void ev_enter(Ev *ev, SrcLoc loc) {
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  uintptr_t used = !ev->stack_base ? 0 : here < ev->stack_base ? ev->stack_base - here : here - ev->stack_base;
  if (++ev->nest > FE_MAX_EVAL_NEST || used > FE_MAX_EVAL_STACK)
    ev_error(ev, loc, FE_MSG_EVAL_NEST, FE_MAX_EVAL_NEST, FE_MAX_EVAL_STACK >> 10);
}

/* ---- values ---- */

Value ev_none(void) { return (Value){.kind = V_NONE}; }
Value ev_bool(bool b) { return (Value){.kind = V_BOOL, .b = b}; }
Value ev_int(int64_t i) { return (Value){.kind = V_INT, .i = i}; }
Value ev_float(double f) { return (Value){.kind = V_FLOAT, .f = f}; }
Value ev_str(const char *s) { return (Value){.kind = V_STR, .s = s}; }
Value ev_tensor(int id) { return (Value){.kind = V_TENSOR, .t = id}; }
Value ev_dtype(IrDType t) { return (Value){.kind = V_DTYPE, .dtype = t}; }
Value ev_list(const ValList *l) { return (Value){.kind = V_LIST, .list = l}; }

ValList *ev_list_new(Ev *ev, int64_t n, SrcLoc loc) {
  if (n > FE_MAX_LIST_LEN) ev_error(ev, loc, FE_MSG_LIST_LEN, (long long)n, FE_MAX_LIST_LEN);
  ev_charge(ev, n * (int64_t)sizeof(Value), loc);
  ValList *l = fe_arena_alloc(ev->arena, sizeof *l + (size_t)n * sizeof(Value));
  l->n = (int)n;
  return l;
}

const char *ev_str_concat(Ev *ev, const char *a, const char *b, SrcLoc loc) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + lb > FE_MAX_STR_LEN) ev_error(ev, loc, FE_MSG_STR_LEN, (long long)(la + lb), FE_MAX_STR_LEN);
  ev_charge(ev, (int64_t)(la + lb + 1), loc);
  char *s = fe_arena_alloc(ev->arena, la + lb + 1);
  memcpy(s, a, la);
  memcpy(s + la, b, lb + 1);
  return s;
}

bool ev_is_number(Value v) { return v.kind == V_INT || v.kind == V_FLOAT; }
double ev_number(Value v) { return v.kind == V_INT ? (double)v.i : v.f; }

const char *ev_kind_name(ValKind k) {
  static const char *const names[] = {
      [V_NONE] = "None",   [V_BOOL] = "bool",    [V_INT] = "int",           [V_FLOAT] = "float",
      [V_STR] = "string",  [V_LIST] = "list",    [V_DTYPE] = "dtype",       [V_FUNC] = "function",
      [V_BUILTIN] = "built-in function",         [V_TENSOR] = "tensor",  [V_MODULE] = "module",
  };
  return names[k];
}

const char *ev_type_str(IrDType t, const IrShape *s, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "%s", t == IR_F32 ? "f32" : "i32");
  if (s->rank > 0 && n < size) {
    char dims[160];
    ir_shape_str(s, dims, sizeof dims);
    snprintf(buf + n, size - n, "%s", dims);
  }
  return buf;
}

const IrNode *ev_node(Ev *ev, Value v) { return &ev->g->node[v.t]; }

static void describe_into(Ev *ev, FeBuf *b, Value v, int depth) {
  switch (v.kind) {
  case V_NONE: fe_buf_puts(b, "None"); break;
  case V_BOOL: fe_buf_puts(b, v.b ? "true" : "false"); break;
  case V_INT: fe_buf_printf(b, "%lld", (long long)v.i); break;
  case V_FLOAT: fe_buf_printf(b, "%g", v.f); break;
  case V_STR: fe_buf_printf(b, "\"%s\"", v.s); break;
  case V_DTYPE: fe_buf_puts(b, v.dtype == IR_F32 ? "f32" : "i32"); break;
  case V_FUNC: fe_buf_puts(b, v.fn->name); break;
  case V_BUILTIN: fe_buf_puts(b, ev_builtins[v.builtin].name); break;
  case V_MODULE: fe_buf_puts(b, v.module->prefix ? v.module->prefix : "?"); break;
  case V_TENSOR: {
    char t[200];
    const IrNode *n = ev_node(ev, v);
    fe_buf_puts(b, ev_type_str(n->dtype, &n->shape, t, sizeof t));
    break;
  }
  case V_LIST:
    fe_buf_puts(b, "[");
    for (int i = 0; i < v.list->n; i++) {
      if (i) fe_buf_puts(b, ", ");
      if (i == 8 || depth > 2) {
        fe_buf_puts(b, "...");
        break;
      }
      describe_into(ev, b, v.list->v[i], depth + 1);
    }
    fe_buf_puts(b, "]");
    break;
  }
}

const char *ev_describe(Ev *ev, Value v) {
  FeBuf b = {0};
  if (v.kind != V_NONE) fe_buf_printf(&b, "%s ", ev_kind_name(v.kind));
  describe_into(ev, &b, v, 0);
  char *s = fe_buf_take(&b);
  const char *r = fe_arena_strdup(ev->arena, s);
  free(s);
  return r;
}

/* ---- globals: open addressing on the name's hash ---- */

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

EvGlobal *ev_global_find(const EvGlobals *gl, const char *name) {
  if (!gl->cap) return NULL;
  for (uint32_t i = hash(name) & (uint32_t)(gl->cap - 1);; i = (i + 1) & (uint32_t)(gl->cap - 1)) {
    EvGlobal *s = &gl->slot[i];
    if (!s->name) return NULL;
    if (strcmp(s->name, name) == 0) return s;
  }
}

EvGlobal *ev_global_put(FeArena *a, EvGlobals *gl, const char *name) {
  EvGlobal *s = ev_global_find(gl, name);
  if (s) return s;
  if ((gl->n + 1) * 2 > gl->cap) { /* keep the table at most half full */
    EvGlobals bigger = {.cap = gl->cap ? gl->cap * 2 : 64, .prefix = gl->prefix};
    bigger.slot = fe_arena_alloc(a, (size_t)bigger.cap * sizeof *bigger.slot);
    for (int i = 0; i < gl->cap; i++)
      if (gl->slot[i].name) *ev_global_put(a, &bigger, gl->slot[i].name) = gl->slot[i];
    *gl = bigger;
  }
  for (uint32_t i = hash(name) & (uint32_t)(gl->cap - 1);; i = (i + 1) & (uint32_t)(gl->cap - 1)) {
    s = &gl->slot[i];
    if (!s->name) {
      s->name = name;
      gl->n++;
      return s;
    }
  }
}

/* ---- locals: a list per frame, indexed by a hash once it is long ---- */

/* Frames with more locals than this get an index (a search of a few is
 * as fast); without one, N locals would cost O(N^2) to bind. */
#define LOCALS_INDEXED 32

static void index_add(EvFrame *f, int i) {
  uint32_t mask = (uint32_t)f->slot_cap - 1;
  uint32_t h = hash(f->name[i]) & mask;
  while (f->slot[h]) h = (h + 1) & mask;
  f->slot[h] = i + 1;
  f->slot_used++;
}

/* (Re)builds f's index of its n locals, with room for as many again. */
static void index_build(Ev *ev, EvFrame *f) {
  int cap = 64;
  while (cap < 4 * (f->n + 1)) cap *= 2;
  f->slot = fe_arena_alloc(ev->arena, (size_t)cap * sizeof *f->slot);
  memset(f->slot, 0, (size_t)cap * sizeof *f->slot);
  f->slot_cap = cap;
  f->slot_used = 0;
  for (int i = 0; i < f->n; i++) index_add(f, i);
}

Value *ev_local_find(Ev *ev, const char *name) {
  EvFrame *f = ev->frame;
  if (!f) return NULL;
  if (!f->slot) {
    for (int i = f->n - 1; i >= 0; i--)
      if (strcmp(f->name[i], name) == 0) return &f->val[i];
    return NULL;
  }
  uint32_t mask = (uint32_t)f->slot_cap - 1;
  for (uint32_t h = hash(name) & mask; f->slot[h]; h = (h + 1) & mask) {
    int i = f->slot[h] - 1;
    if (i < f->n && strcmp(f->name[i], name) == 0) return &f->val[i];
  }
  return NULL;
}

void ev_local_set(Ev *ev, const char *name, Value v) {
  Value *p = ev_local_find(ev, name);
  if (p) {
    *p = v;
    return;
  }
  EvFrame *f = ev->frame;
  int n = f->n;
  FE_PUSH(ev->arena, f->name, n, name);
  n = f->n;
  FE_PUSH(ev->arena, f->val, n, v);
  f->n = n;
  if (f->slot && 2 * (f->slot_used + 1) <= f->slot_cap)
    index_add(f, n - 1);
  else if (f->slot || n > LOCALS_INDEXED)
    index_build(ev, f);
}

/* Edit distance, for "did you mean". */
static int distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return 99;
  int row[41];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static bool is_callable(Value v) { return v.kind == V_FUNC || v.kind == V_BUILTIN; }

/* The known name nearest to 'name', or NULL if none is close. For a call
 * ('callable'), only names of functions: never None, f32 or a number. */
static const char *suggest(Ev *ev, const char *name, bool callable) {
  int limit = strlen(name) <= 3 ? 1 : 2, best = limit + 1;
  const char *pick = NULL;
  if (ev->frame)
    for (int i = 0; i < ev->frame->n; i++) {
      if (callable && !is_callable(ev->frame->val[i])) continue;
      int d = distance(name, ev->frame->name[i]);
      if (d < best) best = d, pick = ev->frame->name[i];
    }
  for (int i = 0; i < ev->globals->cap; i++) {
    const EvGlobal *g = &ev->globals->slot[i];
    if (!g->name || (g->kind == G_CONFIG && !g->ready)) continue;
    if (callable && !(g->ready && is_callable(g->v))) continue;
    int d = distance(name, g->name);
    if (d < best || (d == best && pick && strcmp(g->name, pick) < 0)) best = d, pick = g->name;
  }
  return pick;
}

Value ev_lookup(Ev *ev, const char *name, SrcLoc loc, const char *what) {
  Value *local = ev_local_find(ev, name);
  if (local) return *local;
  const EvGlobal *g = ev_global_find(ev->globals, name);
  if (g && g->ready) return g->v;
  if (g && g->kind == G_CONFIG)
    ev_error(ev, loc, "'%s' is not defined by the selected config (config '%s' defines it)", name, g->config);
  if (g && g->kind == G_LET)
    ev_error(ev, loc, "global '%s' is used before its value is known (lets are evaluated in order, after the config)",
             name);
  if (g && g->kind == G_MODULE)
    ev_error(ev, loc, "module '%s' is used before it is loaded (modules load after the config, before the lets)",
             name);
  if (g && g->kind == G_BATCH)
    ev_error(ev, loc, "'B' is unknown: the selected config has no `batch` key and no batch size was given (--batch)");
  for (int i = ev->frame ? ev->frame->nended - 1 : -1; i >= 0; i--) {
    const EvEnded *e = &ev->frame->ended[i];
    if (strcmp(e->name, name) == 0)
      ev_error(ev, loc,
               "'%s' was bound inside `with %s` (line %d) and is local to that block; bind it before the block, "
               "or take the block's value: %s = with %s { ... }",
               name, e->path, e->with.line, name, e->path);
  }
  const char *near = suggest(ev, name, strcmp(what, "function") == 0);
  if (near) ev_error(ev, loc, "unknown %s '%s' (did you mean '%s'?)", what, name, near);
  ev_error(ev, loc, "unknown %s '%s'", what, name);
}

/* ---- conversions ---- */

int64_t ev_to_int(Ev *ev, Value v, SrcLoc loc, const char *what) {
  if (v.kind == V_INT) return v.i;
  ev_error(ev, loc, "%s must be an integer, got %s", what, ev_describe(ev, v));
}

double ev_to_number(Ev *ev, Value v, SrcLoc loc, const char *what) {
  if (ev_is_number(v)) return ev_number(v);
  ev_error(ev, loc, "%s must be a number, got %s", what, ev_describe(ev, v));
}

bool ev_to_bool(Ev *ev, Value v, SrcLoc loc, const char *what) {
  if (v.kind == V_BOOL) return v.b;
  if (ev_is_number(v)) return ev_number(v) != 0;
  if (v.kind == V_TENSOR)
    ev_error(ev, loc, "%s must be known at compile time, got a %s (use where() to select between tensors)", what,
             ev_describe(ev, v));
  ev_error(ev, loc, "%s must be a boolean, got %s", what, ev_describe(ev, v));
}

IrShape ev_to_shape(Ev *ev, Value v, SrcLoc loc, const char *what) {
  if (v.kind != V_LIST) ev_error(ev, loc, "%s must be a list of dimensions, got %s", what, ev_describe(ev, v));
  if (v.list->n > IR_MAX_RANK)
    ev_error(ev, loc, "%s has %d dimensions; at most %d are supported", what, v.list->n, IR_MAX_RANK);
  IrShape s = ir_shape_make(v.list->n, NULL);
  for (int i = 0; i < v.list->n; i++) {
    Value d = v.list->v[i];
    if (d.kind != V_INT)
      ev_error(ev, loc, "%s: dimension %d must be an integer, got %s", what, i, ev_describe(ev, d));
    if (d.i <= 0) ev_error(ev, loc, "%s: dimension %d must be positive, got %lld", what, i, (long long)d.i);
    s.d[i] = d.i;
  }
  return s;
}

int ev_to_axis(Ev *ev, Value v, int rank, SrcLoc loc, const char *what) {
  int64_t a = ev_to_int(ev, v, loc, what);
  if (a < -rank || a >= rank)
    ev_error(ev, loc, "%s is %lld, out of range for a tensor of rank %d", what, (long long)a, rank);
  return (int)(a < 0 ? a + rank : a);
}
