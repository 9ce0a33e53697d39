/* load.c — reading a program's files: imports (resolved relative to the
 * importing file, each file loaded once, cycles refused), then the checks
 * that need every file: duplicate definitions and entry signatures (see
 * program.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/diag.h"
#include "frontend/parse.h"
#include "frontend/program.h"

typedef struct {
  FeProgram *p;
  const char **stack; /* canonical paths of the files being loaded, outermost first */
  const char **shown; /* and their names as shown */
  int depth;
  char *err;
} Loader;

/* Sets the loader's error (the first one wins); an optional note follows. */
static bool fail(Loader *L, SrcLoc loc, SrcLoc note, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool fail(Loader *L, SrcLoc loc, SrcLoc note, const char *fmt, ...) {
  if (L->err) return false;
  FeBuf b = {0};
  va_list ap;
  va_start(ap, fmt);
  fe_diag_vappend(&b, "error", loc, fmt, ap);
  va_end(ap);
  if (note.file) fe_diag_append(&b, "note", note, "first defined here");
  L->err = fe_buf_take(&b);
  return false;
}

static const SrcLoc NO_LOC = {NULL, 0, 0};

/* The whole file in the arena; NULL with *why saying what went wrong if it
 * cannot be read, is not a regular file, is too large or is not text.
 * The file is opened without blocking (a FIFO would wait for a writer)
 * and checked with fstat before anything is read from it. */
static char *read_text(FeArena *a, const char *path, const char **why) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *why = strerror(errno);
    return NULL;
  }
  struct stat st;
  const char *refuse = NULL;
  if (fstat(fd, &st) != 0)
    refuse = strerror(errno);
  else if (!S_ISREG(st.st_mode))
    refuse = FE_MSG_NOT_REGULAR;
  else if (st.st_size > FE_MAX_SOURCE_BYTES)
    refuse = fe_arena_printf(a, FE_MSG_SOURCE_BYTES, (long long)st.st_size, FE_MAX_SOURCE_BYTES >> 20);
  if (refuse) {
    close(fd);
    *why = refuse;
    return NULL;
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    *why = strerror(errno);
    close(fd);
    return NULL;
  }
  FeBuf b = {0};
  char chunk[4096];
  size_t n;
  /* The size was checked, but a file may grow while it is read. */
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n <= FE_MAX_SOURCE_BYTES) fe_buf_putn(&b, chunk, n);
  bool bad = ferror(f);
  int e = errno;
  fclose(f);
  size_t len = b.n;
  char *text = fe_buf_take(&b);
  char *copy = NULL;
  if (bad) {
    *why = strerror(e);
  } else if (len > FE_MAX_SOURCE_BYTES) {
    *why = fe_arena_printf(a, FE_MSG_SOURCE_BYTES, (long long)len, FE_MAX_SOURCE_BYTES >> 20);
  } else if (memchr(text, 0, len)) {
    *why = "the file contains a NUL byte (is it a text file?)";
  } else {
    copy = fe_arena_strndup(a, text, len);
  }
  free(text);
  return copy;
}

/* 'rel' as seen from the file 'from': joined to from's directory. */
static const char *resolve(FeArena *a, const char *from, const char *rel) {
  const char *slash = strrchr(from, '/');
  if (rel[0] == '/' || !slash) return fe_arena_strdup(a, rel);
  return fe_arena_printf(a, "%.*s/%s", (int)(slash - from), from, rel);
}

static bool load_file(Loader *L, const char *shown, const char *text, SrcLoc import_loc);

/* Loads the items of one parsed file; imports recurse. */
static bool load_items(Loader *L, const AstFile *f) {
  FeProgram *p = L->p;
  for (int i = 0; i < f->items.n; i++) {
    AstItem *it = f->items.v[i];
    if (it->kind == ITEM_IMPORT && it->alias) { /* a module: loaded once the config is known */
      it->module_path = resolve(&p->arena, f->file, it->import);
      FE_PUSH(&p->arena, p->items, p->nitems, it);
      continue;
    }
    if (it->kind == ITEM_IMPORT) {
      const char *path = resolve(&p->arena, f->file, it->import);
      if (!load_file(L, path, NULL, it->loc)) return false;
      continue;
    }
    FE_PUSH(&p->arena, p->items, p->nitems, it);
  }
  return true;
}

static bool load_file(Loader *L, const char *shown, const char *text, SrcLoc import_loc) {
  FeProgram *p = L->p;
  char buf[PATH_MAX];
  const char *real = realpath(shown, buf) ? fe_arena_strdup(&p->arena, buf) : shown;
  for (int i = 0; i < L->depth; i++) {
    if (strcmp(L->stack[i], real) != 0) continue;
    FeBuf chain = {0};
    for (int k = i; k < L->depth; k++) fe_buf_printf(&chain, "%s -> ", L->shown[k]);
    fe_buf_puts(&chain, L->shown[i]);
    char *c = fe_buf_take(&chain);
    fail(L, import_loc, NO_LOC, "import cycle: %s", c);
    free(c);
    return false;
  }
  for (int i = 0; i < p->nfiles; i++)
    if (strcmp(p->files[i].real, real) == 0) return true; /* imported before */

  const char *name = fe_arena_strdup(&p->arena, shown);
  if (!text) {
    const char *why = NULL;
    text = read_text(&p->arena, shown, &why);
    if (!text) {
      if (import_loc.file) return fail(L, import_loc, NO_LOC, "cannot open imported file '%s': %s", shown, why);
      return fail(L, (SrcLoc){name, 0, 0}, NO_LOC, "cannot open file: %s", why);
    }
  } else {
    text = fe_arena_strdup(&p->arena, text);
  }
  FeFile file = {name, real, text};
  FE_PUSH(&p->arena, p->files, p->nfiles, file);
  fe_diag_register(name, text, p);

  char *err = NULL;
  AstFile *ast = parse_source(&p->arena, name, text, &err);
  if (!ast) {
    L->err = err;
    return false;
  }
  int d = L->depth;
  FE_PUSH(&p->arena, L->stack, d, real);
  d = L->depth;
  FE_PUSH(&p->arena, L->shown, d, name);
  L->depth = d;
  bool ok = load_items(L, ast);
  L->depth--;
  return ok;
}

/* ---- checks over all files ---- */

/* Names that are defined by the language itself. */
static bool reserved(Loader *L, const char *name, SrcLoc loc) {
  if (strcmp(name, "B") != 0) return false;
  fail(L, loc, NO_LOC, "'B' is reserved for the batch size (set it with the config's `batch` key or --batch)");
  return true;
}

/* Enters a let or def name, refusing duplicates of other user definitions
 * (built-ins may be shadowed). */
static bool define(Loader *L, const char *name, SrcLoc loc, EvGlobalKind kind, Value v) {
  FeProgram *p = L->p;
  if (reserved(L, name, loc)) return false;
  EvGlobal *g = ev_global_put(&p->arena, &p->globals, name);
  if (g->kind == G_CONFIG || g->kind == G_LET || g->kind == G_DEF)
    return fail(L, loc, g->loc, "duplicate definition of '%s'", name);
  *g = (EvGlobal){.name = g->name, .kind = kind, .ready = kind == G_DEF, .v = v, .loc = loc};
  return true;
}

static bool check_config(Loader *L, AstConfig *c) {
  FeProgram *p = L->p;
  for (int i = 0; i < p->nconfigs; i++)
    if (strcmp(p->configs[i]->name, c->name) == 0)
      return fail(L, c->loc, p->configs[i]->loc, "duplicate config '%s'", c->name);
  FE_PUSH(&p->arena, p->configs, p->nconfigs, c);
  for (int k = 0; k < c->keys.n; k++) {
    const AstBinding *key = &c->keys.v[k];
    if (reserved(L, key->name, key->loc)) return false;
    for (int j = 0; j < k; j++)
      if (strcmp(c->keys.v[j].name, key->name) == 0)
        return fail(L, key->loc, c->keys.v[j].loc, "duplicate key '%s' in config '%s'", key->name, c->name);
    EvGlobal *g = ev_global_put(&p->arena, &p->globals, key->name);
    if (g->kind == G_LET || g->kind == G_DEF)
      return fail(L, key->loc, g->loc, "duplicate definition of '%s'", key->name);
    if (g->kind != G_CONFIG) /* the first config that defines it */
      *g = (EvGlobal){.name = g->name, .kind = G_CONFIG, .loc = key->loc, .config = c->name};
  }
  return true;
}

static bool check_params(Loader *L, const AstDef *d) {
  EvGlobals seen = {0}; /* by name: N parameters in O(N) */
  for (int i = 0; i < d->params.n; i++) {
    EvGlobal *g = ev_global_put(&L->p->arena, &seen, d->params.v[i].name);
    if (g->ready)
      return fail(L, d->params.v[i].loc, NO_LOC, "parameter '%s' of '%s' is declared twice", d->params.v[i].name,
                  d->name);
    g->ready = true;
  }
  return true;
}

/* Entry functions: every parameter a typed tensor without a default, and
 * a declared return type a tensor type (a scalar f32 for @train). */
static bool check_entry(Loader *L, const AstDef *d) {
  const char *deco = d->kind == DEF_TRAIN ? "@train" : "@infer";
  for (int i = 0; i < d->params.n; i++) {
    const AstParam *p = &d->params.v[i];
    if (!p->type)
      return fail(L, p->loc, NO_LOC, "parameter '%s' of %s entry '%s' needs a tensor type, e.g. '%s: f32[B, 16]'",
                  p->name, deco, d->name, p->name);
    if (p->type->kind != TY_TENSOR)
      return fail(L, p->type->loc, NO_LOC, "parameter '%s' of %s entry '%s' must be a tensor (f32[...] or i32[...])",
                  p->name, deco, d->name);
    if (p->dflt) return fail(L, p->dflt->loc, NO_LOC, "entry parameters cannot have default values");
  }
  if (d->ret && d->ret->kind != TY_TENSOR)
    return fail(L, d->ret->loc, NO_LOC, "entry '%s' must return a tensor type (f32[...] or i32[...])", d->name);
  if (d->kind == DEF_TRAIN && d->ret && (d->ret->dtype != IR_F32 || d->ret->dim.n != 0))
    return fail(L, d->ret->loc, NO_LOC, "@train entry '%s' must return a scalar loss: declare it '-> f32'", d->name);
  return true;
}

static bool check_items(Loader *L) {
  FeProgram *p = L->p;
  for (int i = 0; i < p->nitems; i++) {
    AstItem *it = p->items[i];
    bool ok = true;
    switch (it->kind) {
    case ITEM_CONFIG: ok = check_config(L, it->config); break;
    case ITEM_LET: ok = define(L, it->let->name, it->let->loc, G_LET, ev_none()); break;
    case ITEM_DEF:
      it->def->globals = &p->globals;
      ok = define(L, it->def->name, it->def->loc, G_DEF, (Value){.kind = V_FUNC, .fn = it->def}) &&
           check_params(L, it->def);
      if (ok && it->def->kind != DEF_PLAIN) {
        ok = check_entry(L, it->def);
        FE_PUSH(&p->arena, p->entries, p->nentries, it->def);
      }
      break;
    case ITEM_IMPORT: ok = define(L, it->alias, it->loc, G_MODULE, ev_none()); break; /* only modules get here */
    }
    if (!ok) return false;
  }
  return true;
}

bool fe_load_sources(FeProgram *p, const char *path, const char *text, char **err) {
  Loader L = {.p = p};
  bool ok = load_file(&L, path, text, NO_LOC) && check_items(&L);
  if (!ok) *err = L.err ? L.err : fe_format_diag((SrcLoc){path, 0, 0}, "could not load the program");
  return ok;
}
