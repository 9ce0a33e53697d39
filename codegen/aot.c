/* aot.c — cg_aot_build (aot.h): compile every entry, write the objects
 * and the tables, compile and link the executable. */
#include "codegen/aot.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/aot_impl.h"
#include "codegen/llvm/cg_llvm.h"
#include "ir/ref/ref_program.h"
#include "passes/fuse.h"

/* A runtime built with AddressSanitizer (make SAN=1) needs the sanitizers'
 * runtimes in everything it is linked into; such a dalc has one beside it. */
#ifdef __SANITIZE_ADDRESS__
#define SANITIZE "-fsanitize=address,undefined"
#endif

typedef struct {
  const CgAotOptions *o;
  char *dir;          /* the temporary directory */
  int nobj;
  char **obj;         /* (nobj) object files, one per entry */
  char source[PATH_MAX], main_obj[PATH_MAX], lib[PATH_MAX], inc[PATH_MAX];
} Build;

static void add_time(const CgAotOptions *o, const char *name, double seconds) {
  if (o->times) pass_times_add(o->times, name, seconds);
}

/* Fuses and compiles entry i, writes its object file and its tables. */
static int compile_entry(Build *b, CgSession *s, const IrGraph *g, int i, FILE *src, RtErr *e) {
  const CgAotOptions *o = b->o;
  double t0 = pass_now();
  FusePlan *fp = fuse_plan(g, o->fuse ? o->fuse : &(FuseOptions){.enabled = !o->no_fuse});
  if (!fp) return rt_err(e, "%s: out of memory in the fusion pass", g->name);
  add_time(o, "fusion", pass_now() - t0);
  CgModule *m = cg_module_new(s, g, fp, e);
  fuse_plan_free(fp);
  if (!m) return -1;
  size_t n = strlen(b->dir) + 32;
  b->obj[i] = malloc(n);
  snprintf(b->obj[i], n, "%s/entry%d.o", b->dir, i);
  b->nobj = i + 1;
  int rc = cg_module_emit_object(m, b->obj[i], e);
  const CgTimes *t = cg_module_times(m); /* the module is built and optimised for the object (unless cached) */
  add_time(o, "codegen: lowering", t->lower_ms / 1e3);
  add_time(o, "codegen: LLVM IR", t->emit_ms / 1e3);
  add_time(o, "codegen: LLVM optimise", t->opt_ms / 1e3);
  add_time(o, "codegen: object cache", t->cache_ms / 1e3);
  add_time(o, "aot: object emission", t->jit_ms / 1e3);
  t0 = pass_now();
  if (rc == 0) rc = cg_aot_write_plan(src, i, cg_module_plan(m), e);
  add_time(o, "aot: C source", pass_now() - t0);
  cg_module_free(m);
  return rc;
}

/* All entries into objects and one C source file. */
static int compile_all(Build *b, IrGraph **graphs, int n, const RtPlanProgramDesc *d, RtErr *e) {
  CgSession *s = cg_session_new(e);
  if (!s) return -1;
  if (b->o->pipeline) cg_session_set_pipeline(s, b->o->pipeline);
  if (b->o->no_cache) cg_session_set_cache(s, false);
  snprintf(b->source, sizeof b->source, "%s/main.c", b->dir);
  FILE *src = fopen(b->source, "w");
  int rc = src ? 0 : rt_err(e, "cannot write %s: %s", b->source, strerror(errno));
  if (rc == 0) cg_aot_write_prologue(src, d->model, d->config, cg_session_cpu(s), cg_session_features(s));
  for (int i = 0; i < n && rc == 0; i++) rc = compile_entry(b, s, graphs[i], i, src, e);
  if (rc == 0) {
    double t0 = pass_now();
    cg_aot_write_main(src, d);
    add_time(b->o, "aot: C source", pass_now() - t0);
  }
  if (src && (ferror(src) | fclose(src)) && rc == 0) rc = rt_err(e, "cannot write %s", b->source);
  if (b->o->counts) cg_compile_counts_add(b->o->counts, cg_session_counts(s));
  cg_session_free(s);
  return rc;
}

/* The C compiler as words: $CC (or the option) split at blanks like
 * make's $(CC), e.g. "ccache gcc" or "gcc -m64"; "cc" if unset. Fills
 * word[0..n) pointing into buf; returns n. */
#define CC_MAX_WORDS 16
static int cc_words(const CgAotOptions *o, char *buf, size_t size, const char **word) {
  const char *cc = o->cc ? o->cc : getenv("CC");
  snprintf(buf, size, "%s", cc ? cc : "");
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(buf, " \t", &save); w && n < CC_MAX_WORDS; w = strtok_r(NULL, " \t", &save)) word[n++] = w;
  if (n == 0) word[n++] = "cc";
  return n;
}

/* Runs the C compiler with the arguments args[] (NULL-terminated). */
static int run_cc(Build *b, const char *const *args, RtErr *e) {
  int nargs = 0;
  while (args[nargs]) nargs++;
  const char **argv = malloc(sizeof *argv * (size_t)(CC_MAX_WORDS + nargs + 1));
  if (!argv) return rt_err(e, "out of memory");
  char buf[PATH_MAX];
  int k = cc_words(b->o, buf, sizeof buf, argv);
  memcpy(argv + k, args, sizeof *args * (size_t)(nargs + 1));
  int rc = cg_aot_spawn((char *const *)argv, e);
  free(argv);
  return rc;
}

/* main.c -> main.o against the runtime's headers. */
static int compile_main(Build *b, RtErr *e) {
  snprintf(b->main_obj, sizeof b->main_obj, "%s/main.o", b->dir);
  char incflag[PATH_MAX + 4];
  snprintf(incflag, sizeof incflag, "-I%s", b->inc);
  const char *args[] = {"-std=c11", "-O1", "-Wall", "-Wextra", incflag, "-c", b->source, "-o", b->main_obj,
#ifdef SANITIZE
                        SANITIZE,
#endif
                        NULL};
  double t0 = pass_now();
  int rc = run_cc(b, args, e);
  add_time(b->o, "aot: C compile", pass_now() - t0);
  return rc;
}

/* The objects, the runtime and its libraries into OUTPUT.tmp.PID, renamed
 * to OUTPUT once complete. */
static int link_exe(Build *b, RtErr *e) {
  const char *out = b->o->output;
  size_t n = strlen(out) + 32;
  char *tmp = malloc(n);
  snprintf(tmp, n, "%s.tmp.%ld", out, (long)getpid());
  const char **args = calloc((size_t)b->nobj + 32, sizeof *args);
  int k = 0;
  args[k++] = "-o";
  args[k++] = tmp;
  args[k++] = b->main_obj;
  for (int i = 0; i < b->nobj; i++) args[k++] = b->obj[i];
  args[k++] = b->lib;
  args[k++] = "-lopenblas";
  args[k++] = "-lcjson";
  args[k++] = "-lz";
  args[k++] = "-lcairo";      /* the runtime's captioned PNG grids */
  args[k++] = "-lfontconfig"; /* ... and their font */
  args[k++] = "-lm";
  args[k++] = "-lpthread";
#ifdef SANITIZE
  args[k++] = SANITIZE;
#endif
  args[k] = NULL;
  double t0 = pass_now();
  int rc = run_cc(b, args, e);
  add_time(b->o, "aot: link", pass_now() - t0);
  if (rc == 0 && rename(tmp, out) != 0) rc = rt_err(e, "cannot write %s: %s", out, strerror(errno));
  if (rc != 0) unlink(tmp);
  free(tmp);
  free(args);
  return rc;
}

/* Whether the executable can be written, before any compiling: its
 * folder exists and is writable (an existing file there is replaced). */
static int check_output(const char *out, RtErr *e) {
  size_t n = strlen(out) + 32;
  char *probe = malloc(n);
  snprintf(probe, n, "%s.tmp.%ld", out, (long)getpid());
  FILE *f = fopen(probe, "w");
  int rc = f ? 0 : rt_err(e, "cannot write %s: %s", out, strerror(errno));
  if (f) {
    fclose(f);
    unlink(probe);
  }
  free(probe);
  return rc;
}

int cg_aot_build(IrGraph **graphs, int n, const char *model, const char *config, double lr, const CgAotOptions *o,
                 RtErr *e) {
  Build b = {.o = o};
  RtPlanProgramDesc d = {0};
  int rc = 0;
  if (!o->output || !*o->output) rc = rt_err(e, "no executable to write (-o EXE)");
  else if (n <= 0) rc = rt_err(e, "%s has no entry functions (mark one with @train or @infer)", model);
  if (rc == 0) rc = check_output(o->output, e);
  if (rc == 0) rc = cg_program_spec(graphs, n, model, &d, e);
  d.model = model;
  d.config = config;
  d.lr = lr;
  d.source_hash = o->source_hash;
  if (rc == 0) rc = cg_aot_locate(o, b.lib, sizeof b.lib, b.inc, sizeof b.inc, e);
  if (rc == 0 && !(b.dir = cg_aot_tempdir(e))) rc = -1;
  if (rc == 0) {
    b.obj = calloc((size_t)n, sizeof *b.obj);
    rc = compile_all(&b, graphs, n, &d, e);
  }
  if (rc == 0) rc = compile_main(&b, e);
  if (rc == 0) rc = link_exe(&b, e);
  for (int i = 0; i < b.nobj; i++) free(b.obj[i]);
  free(b.obj);
  if (b.dir && o->keep_temps) fprintf(stderr, "dalc: intermediate files kept in %s\n", b.dir);
  else if (b.dir) cg_aot_remove_dir(b.dir);
  free(b.dir);
  cg_program_spec_free(&d);
  for (int i = 0; i < n; i++) ir_graph_free(graphs[i]);
  return rc;
}
