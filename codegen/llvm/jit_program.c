/* jit_program.c — an RtProgram whose entries run JIT-compiled plans (see
 * jit_program.h): the plans, compiled in memory, run by the runtime's plan
 * program (runtime/sched/plan_program.h), the same code an AOT executable runs
 * from its static tables. */
#include "codegen/llvm/jit_program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/aot.h"
#include "codegen/llvm/cg_llvm.h"
#include "ir/ref/ref_program.h"
#include "passes/fuse.h"
#include "runtime/sched/plan_program.h"

typedef struct {
  RtProgram pub;         /* the plan program's, with this file's free; pub.ctx points here */
  RtProgram *prog;       /* the plan program */
  RtPlanProgramDesc d;   /* its tables: names point into the graphs, plans into the modules */
  const RtPlan **plan;   /* (n) d.plan */
  IrGraph **g;           /* (n) owned: the modules' lowered plans refer to them */
  int n;
  CgSession *s;
  CgModule **m;          /* (n) one per entry, NULL until compiled */
  char *model, *config;  /* d's, copied: the caller's may go first */
  CgJitOptions o;        /* for entries compiled later */
} JitProgram;

static void jit_free(RtProgram *p) {
  if (!p) return;
  JitProgram *j = p->ctx;
  rt_program_free(j->prog);
  for (int i = 0; i < j->n; i++) cg_module_free(j->m[i]);
  free(j->m);
  cg_session_free(j->s);
  cg_program_spec_free(&j->d);
  free(j->plan);
  free(j->model);
  free(j->config);
  for (int i = 0; i < j->n; i++) ir_graph_free(j->g[i]);
  free(j->g);
  free(j);
}

static int jit_init(RtProgram *p, uint64_t seed, RtErr *e) {
  JitProgram *j = p->ctx;
  return j->prog->init(j->prog, seed, e);
}

static int jit_run(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed,
                   uint64_t step, RtErr *e) {
  JitProgram *j = p->ctx;
  return j->prog->run(j->prog, entry, inputs, outputs, seed, step, e);
}

static int jit_prepare(RtProgram *p, int entry, RtErr *e) {
  JitProgram *j = p->ctx;
  return rt_program_prepare(j->prog, entry, e);
}

static void add_time(PassTimes *t, const char *name, double ms) {
  if (t) pass_times_add(t, name, ms / 1e3);
}

/* Fuses, lowers, compiles and JITs graph g into *m. */
static int compile(JitProgram *j, IrGraph *g, const CgJitOptions *o, CgModule **m, RtErr *e) {
  double t0 = pass_now();
  FusePlan *fp = fuse_plan(g, o->fuse ? o->fuse : &(FuseOptions){.enabled = !o->no_fuse});
  if (!fp) return rt_err(e, "%s: out of memory in the fusion pass", g->name);
  add_time(o->times, "fusion", (pass_now() - t0) * 1e3);
  *m = cg_module_new(j->s, g, fp, e);
  fuse_plan_free(fp);
  CgCompileCounts before = *cg_session_counts(j->s);
  int rc = *m && cg_module_jit(*m, e) == 0 ? 0 : -1;
  if (o->counts) { /* this module's share of the session's counts */
    CgCompileCounts d = *cg_session_counts(j->s);
    d.kernels -= before.kernels;
    d.deduplicated -= before.deduplicated;
    d.cache_hits -= before.cache_hits;
    d.cache_misses -= before.cache_misses;
    d.cache_bad -= before.cache_bad;
    d.compiled -= before.compiled;
    cg_compile_counts_add(o->counts, &d);
  }
  if (!*m) return -1;
  const CgTimes *t = cg_module_times(*m);
  add_time(o->times, "codegen: lowering", t->lower_ms);
  add_time(o->times, "codegen: LLVM IR + cache keys", t->emit_ms);
  add_time(o->times, "codegen: object cache", t->cache_ms);
  add_time(o->times, "codegen: LLVM optimise + codegen", t->opt_ms);
  add_time(o->times, "codegen: JIT load + link", t->jit_ms);
  return rc;
}

/* The plan maker of a lazy program (runtime/sched/plan_program.h). */
static const RtPlan *make_plan(void *ctx, int entry, RtErr *e) {
  JitProgram *j = ctx;
  cg_module_free(j->m[entry]); /* what a failed attempt left */
  j->m[entry] = NULL;
  if (compile(j, j->g[entry], &j->o, &j->m[entry], e)) return NULL;
  return j->plan[entry] = cg_module_plan(j->m[entry]);
}

RtProgram *cg_jit_program(IrGraph **graphs, int n, const char *model, const char *config, double lr, uint64_t seed,
                          const CgJitOptions *o, RtErr *e) {
  CgJitOptions none = {0};
  if (!o) o = &none;
  JitProgram *j = calloc(1, sizeof *j);
  IrGraph **g = calloc((size_t)n + 1, sizeof *g);
  if (!j || !g) {
    for (int i = 0; i < n; i++) ir_graph_free(graphs[i]);
    free(j);
    free(g);
    rt_err(e, "%s: out of memory", model ? model : "program");
    return NULL;
  }
  for (int i = 0; i < n; i++) g[i] = graphs[i];
  j->g = g;
  j->n = n;
  j->pub.ctx = j;
  j->m = calloc((size_t)n + 1, sizeof *j->m);
  j->plan = calloc((size_t)n + 1, sizeof *j->plan);
  int rc = j->m && j->plan ? 0 : rt_err(e, "%s: out of memory", model ? model : "program");
  /* the entries and state an executable of these graphs would have */
  if (rc == 0) rc = cg_program_spec(g, n, model ? model : "program", &j->d, e);
  if (rc == 0 && !(j->s = cg_session_new(e))) rc = -1;
  if (rc == 0 && o->pipeline) cg_session_set_pipeline(j->s, o->pipeline);
  if (rc == 0 && o->no_cache) cg_session_set_cache(j->s, false);
  if (rc == 0) cg_session_set_compile_threads(j->s, o->threads); /* as many as the pool will have */
  j->o = *o;
  for (int i = 0; i < n && rc == 0 && !o->lazy; i++) {
    rc = compile(j, g[i], o, &j->m[i], e);
    if (rc == 0) j->plan[i] = cg_module_plan(j->m[i]);
  }
  if (rc == 0) {
    j->d.model = j->model = strdup(model ? model : "");
    j->d.config = j->config = strdup(config ? config : "");
    j->d.lr = lr;
    j->d.plan = j->plan;
    j->d.threads = o->threads;
    if (o->lazy) {
      j->d.make_plan = make_plan;
      j->d.make_ctx = j;
    }
    if (!(j->prog = rt_plan_program_new(&j->d, seed, e))) rc = -1;
  }
  if (rc < 0) {
    jit_free(&j->pub);
    return NULL;
  }
  j->pub = *j->prog;
  j->pub.init = jit_init;
  j->pub.run = jit_run;
  j->pub.prepare = j->prog->prepare ? jit_prepare : NULL;
  j->pub.free = jit_free;
  j->pub.ctx = j;
  return &j->pub;
}
