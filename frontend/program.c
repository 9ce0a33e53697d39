/* program.c — the frontend's public API (frontend.h): building a program
 * (globals, loading, config selection, constants and global lets) and
 * lowering its entries to graphs. */
#include <limits.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/diag.h"
#include "frontend/program.h"

static const SrcLoc NO_LOC = {NULL, 0, 0};

/* Hands a diagnostic to the caller, or drops it if the caller passed no
 * place for it. */
static void give(char **err, char *msg) {
  if (err)
    *err = msg;
  else
    free(msg);
}

/* The names every program starts with: built-ins, f32, i32, None and B
 * (known once the batch size is). */
static void init_globals(FeProgram *p) {
  for (int i = 0; i < ev_builtin_count; i++) {
    EvGlobal *g = ev_global_put(&p->arena, &p->globals, ev_builtins[i].name);
    g->kind = G_BUILTIN;
    g->ready = true;
    g->v = (Value){.kind = V_BUILTIN, .builtin = i};
  }
  static const struct {
    const char *name;
    Value v;
  } predef[] = {
      {"f32", {.kind = V_DTYPE, .dtype = IR_F32}},
      {"i32", {.kind = V_DTYPE, .dtype = IR_I32}},
      {"None", {.kind = V_NONE}},
      {"inf", {.kind = V_FLOAT, .f = INFINITY}}, /* -inf: unary minus on it */
  };
  for (int i = 0; i < (int)(sizeof predef / sizeof predef[0]); i++) {
    EvGlobal *g = ev_global_put(&p->arena, &p->globals, predef[i].name);
    g->kind = G_PREDEF;
    g->ready = true;
    g->v = predef[i].v;
  }
  ev_global_put(&p->arena, &p->globals, "B")->kind = G_BATCH;
}

static void add_constant(FeProgram *p, const char *name, Value v) {
  int n = p->nconst;
  FE_PUSH(&p->arena, p->const_name, n, name);
  n = p->nconst;
  FE_PUSH(&p->arena, p->const_value, n, v);
  p->nconst = n;
}

typedef struct {
  FeProgram *p;
  int64_t batch; /* > 0: overrides the config */
} GlobalsJob;

static FeProgram *load(const char *path, const char *text, const FeOptions *opt, const FeProgram *parent,
                       char **err);

/* `import "path" as NAME`: the file becomes a program of its own with the
 * importer's config (by name) and batch size, reached as NAME.x; its
 * parameters are named NAME.<their name>. */
static void load_module(Ev *ev, FeProgram *p, const AstItem *it) {
  int depth = 0;
  char real[PATH_MAX];
  const char *want = realpath(it->module_path, real) ? real : it->module_path;
  for (const FeProgram *q = p; q; q = q->parent, depth++)
    if (q->nfiles > 0 && strcmp(q->files[0].real, want) == 0)
      ev_error(ev, it->loc, "module cycle: '%s' imports itself (through its modules)", it->import);
  if (depth > FE_MAX_MODULE_DEPTH) ev_error(ev, it->loc, FE_MSG_MODULE_DEPTH, FE_MAX_MODULE_DEPTH);
  const EvGlobal *b = ev_global_find(ev->globals, "B");
  FeOptions o = {.config = p->selected >= 0 ? p->configs[p->selected]->name : NULL,
                 .batch = b && b->ready ? b->v.i : 0};
  char *msg = NULL;
  FeProgram *m = load(it->module_path, NULL, &o, p, &msg);
  if (!m) {
    FeBuf buf = {0};
    fe_buf_puts(&buf, msg ? msg : "error: cannot load the module\n");
    fe_buf_printf(&buf, "  in module '%s' imported at %s:%d:%d\n", it->alias, it->loc.file, it->loc.line,
                  it->loc.col);
    free(msg);
    free(ev->error);
    ev->error = fe_buf_take(&buf);
    longjmp(*ev->jmp, 1);
  }
  m->globals.prefix = it->alias;
  int n = p->nmodules;
  FE_PUSH(&p->arena, p->modules, n, m);
  p->nmodules = n;
  EvGlobal *g = ev_global_find(ev->globals, it->alias);
  g->v = (Value){.kind = V_MODULE, .module = &m->globals};
  g->ready = true;
}

/* Evaluates the selected config's keys in order (each may use the ones
 * before it), sets B, then the global lets in load order. */
static void eval_globals(Ev *ev, void *ud) {
  GlobalsJob *job = ud;
  FeProgram *p = job->p;
  bool have_batch = false;
  Value batch = ev_int(job->batch);
  if (p->selected >= 0) {
    const AstConfig *c = p->configs[p->selected];
    for (int k = 0; k < c->keys.n; k++) {
      const AstBinding *key = &c->keys.v[k];
      Value v = ev_expr(ev, key->value);
      if (!ev_is_number(v) && v.kind != V_BOOL)
        ev_error(ev, key->value->loc, "config value '%s' must be a number or a boolean, got %s", key->name,
                 ev_describe(ev, v));
      if (strcmp(key->name, "batch") == 0) {
        if (job->batch > 0)
          v = batch;
        else if (v.kind != V_INT || v.i <= 0)
          ev_error(ev, key->value->loc, "config key 'batch' is the batch size: it must be a positive integer, got %s",
                   ev_describe(ev, v));
        batch = v;
        have_batch = true;
      }
      EvGlobal *g = ev_global_put(ev->arena, ev->globals, key->name);
      *g = (EvGlobal){.name = g->name, .kind = G_CONFIG, .ready = true, .v = v, .loc = key->loc, .config = c->name};
      add_constant(p, key->name, v);
    }
  }
  if (have_batch || job->batch > 0) {
    EvGlobal *g = ev_global_find(ev->globals, "B");
    g->ready = true;
    g->v = batch;
    add_constant(p, "B", batch);
  }
  for (int i = 0; i < p->nitems; i++)
    if (p->items[i]->kind == ITEM_IMPORT) load_module(ev, p, p->items[i]);
  for (int i = 0; i < p->nitems; i++) {
    const AstItem *it = p->items[i];
    if (it->kind != ITEM_LET) continue;
    Value v = ev_expr(ev, it->let->value);
    EvGlobal *g = ev_global_find(ev->globals, it->let->name);
    g->v = v;
    g->ready = true;
  }
}

static FeProgram *load(const char *path, const char *text, const FeOptions *opt, const FeProgram *parent,
                       char **err) {
  FeProgram *p = calloc(1, sizeof *p);
  if (!p) {
    give(err, fe_format_diag((SrcLoc){path, 0, 0}, "out of memory"));
    return NULL;
  }
  fe_arena_init(&p->arena);
  p->selected = -1;
  p->parent = parent;
  init_globals(p);
  char *msg = NULL;
  if (!fe_load_sources(p, path, text, &msg)) {
    give(err, msg);
    fe_free(p);
    return NULL;
  }

  const char *want = opt ? opt->config : NULL;
  if (want) {
    for (int i = 0; i < p->nconfigs && p->selected < 0; i++)
      if (strcmp(p->configs[i]->name, want) == 0) p->selected = i;
    if (p->selected < 0) {
      FeBuf b = {0};
      for (int i = 0; i < p->nconfigs; i++) fe_buf_printf(&b, "%s%s", i ? ", " : "", p->configs[i]->name);
      char *names = fe_buf_take(&b);
      if (p->nconfigs)
        give(err, fe_format_diag((SrcLoc){p->files[0].name, 0, 0}, "unknown config '%s' (available: %s)", want, names));
      else
        give(err, fe_format_diag((SrcLoc){p->files[0].name, 0, 0}, "unknown config '%s': the file defines no configs",
                                 want));
      free(names);
      fe_free(p);
      return NULL;
    }
  } else if (p->nconfigs > 0) {
    p->selected = 0;
  }

  GlobalsJob job = {p, opt && opt->batch > 0 ? opt->batch : 0};
  Ev ev = {.arena = &p->arena, .globals = &p->globals, .scope = ""};
  if (!ev_protect(&ev, eval_globals, &job)) {
    give(err, ev.error);
    fe_free(p);
    return NULL;
  }
  return p;
}

FeProgram *fe_load_file(const char *path, const FeOptions *opt, char **err) {
  if (!path) {
    give(err, fe_format_diag(NO_LOC, "no file name given"));
    return NULL;
  }
  return load(path, NULL, opt, NULL, err);
}

FeProgram *fe_load_string(const char *filename, const char *source, const FeOptions *opt, char **err) {
  return load(filename ? filename : "<string>", source ? source : "", opt, NULL, err);
}

void fe_free(FeProgram *p) {
  if (!p) return;
  for (int i = 0; i < p->nmodules; i++) fe_free(p->modules[i]);
  fe_diag_unregister(p);
  fe_arena_free(&p->arena);
  free(p);
}

int fe_config_count(const FeProgram *p) { return p->nconfigs; }

const char *fe_config_name(const FeProgram *p, int i) {
  return i >= 0 && i < p->nconfigs ? p->configs[i]->name : NULL;
}

const char *fe_config_selected(const FeProgram *p) { return p->selected >= 0 ? p->configs[p->selected]->name : ""; }

int fe_constant_count(const FeProgram *p) { return p->nconst; }

bool fe_global_number(const FeProgram *p, const char *name, double *out) {
  const EvGlobal *g = ev_global_find(&p->globals, name);
  if (!g || !g->ready || (g->kind != G_CONFIG && g->kind != G_LET && g->kind != G_BATCH)) return false;
  if (ev_is_number(g->v)) *out = ev_number(g->v);
  else if (g->v.kind == V_BOOL) *out = g->v.b;
  else return false;
  return true;
}

const char *fe_constant_name(const FeProgram *p, int i) { return i >= 0 && i < p->nconst ? p->const_name[i] : NULL; }

char *fe_constant_value(const FeProgram *p, int i) {
  char buf[64] = "";
  if (i >= 0 && i < p->nconst) {
    Value v = p->const_value[i];
    if (v.kind == V_INT) {
      snprintf(buf, sizeof buf, "%lld", (long long)v.i);
    } else if (v.kind == V_BOOL) {
      snprintf(buf, sizeof buf, "%s", v.b ? "true" : "false");
    } else {
      /* The shortest text that reads back as the same double. */
      for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v.f);
        if (strtod(buf, NULL) == v.f) break;
      }
    }
  }
  char *s = malloc(strlen(buf) + 1);
  if (s) strcpy(s, buf);
  return s;
}

static uint64_t hash_files(const FeProgram *p, uint64_t h) {
  for (int i = 0; i < p->nfiles; i++)
    for (const char *c = p->files[i].text;; c++) {
      h = (h ^ (unsigned char)*c) * 1099511628211u; /* the NUL too: files are separated */
      if (!*c) break;
    }
  for (int i = 0; i < p->nmodules; i++) h = hash_files(p->modules[i], h);
  return h;
}

const char *fe_source_hash(FeProgram *p) {
  return fe_arena_printf(&p->arena, "fnv1a64:%016llx", (unsigned long long)hash_files(p, 14695981039346656037u));
}

int fe_entry_count(const FeProgram *p) { return p->nentries; }

const char *fe_entry_name(const FeProgram *p, int i) {
  return i >= 0 && i < p->nentries ? p->entries[i]->name : NULL;
}

bool fe_entry_is_train(const FeProgram *p, int i) {
  return i >= 0 && i < p->nentries && p->entries[i]->kind == DEF_TRAIN;
}

int fe_entry_find(const FeProgram *p, const char *name) {
  for (int i = 0; name && i < p->nentries; i++)
    if (strcmp(p->entries[i]->name, name) == 0) return i;
  return -1;
}

static void lower_job(Ev *ev, void *ud) { ev_lower_entry(ev, ud); }

IrGraph *fe_lower_entry(FeProgram *p, int i, char **err) {
  if (i < 0 || i >= p->nentries) {
    give(err, fe_format_diag(NO_LOC, "there is no entry function number %d (the program has %d)", i, p->nentries));
    return NULL;
  }
  AstDef *def = p->entries[i];
  IrGraph *g = ir_graph_new(def->name);
  if (!g) {
    give(err, fe_format_diag(def->loc, "out of memory"));
    return NULL;
  }
  g->train = def->kind == DEF_TRAIN;
  FeArena arena;
  fe_arena_init(&arena);
  Ev ev = {.arena = &arena, .globals = &p->globals, .g = g, .scope = "", .keep = &p->arena};
  bool ok = ev_protect(&ev, lower_job, def);
  fe_arena_free(&arena);
  if (!ok) {
    ir_graph_free(g);
    give(err, ev.error);
    return NULL;
  }
  return g;
}
