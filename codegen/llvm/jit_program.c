/* jit_program.c — an RtProgram whose entries run JIT-compiled plans (see
 * jit_program.h). The reference program underneath keeps the graphs, the
 * state and the entry specs; this one replaces its run. */
#include "codegen/llvm/jit_program.h"

#include <stdio.h>
#include <stdlib.h>

#include "codegen/llvm/cg_llvm.h"
#include "codegen/ref_program.h"
#include "passes/fuse.h"
#include "runtime/rt_sched.h"

typedef struct {
  RtProgram pub;   /* pub.ctx points back here */
  RtProgram *ref;  /* owns the graphs and the state */
  CgSession *s;
  CgModule **m;    /* (n) one per entry */
  int n;
  RtPool *pool;
  void *arena;     /* the largest entry's arena, shared: entries run one at a time */
} JitProgram;

static void jit_free(RtProgram *p) {
  if (!p) return;
  JitProgram *j = p->ctx;
  for (int i = 0; i < j->n; i++) cg_module_free(j->m[i]);
  free(j->m);
  cg_session_free(j->s);
  rt_pool_free(j->pool);
  rt_arena_free(j->arena);
  if (j->ref) j->ref->free(j->ref);
  free(j);
}

static int jit_init(RtProgram *p, uint64_t seed, RtErr *e) {
  JitProgram *j = p->ctx;
  return j->ref->init(j->ref, seed, e);
}

static int jit_run(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed,
                   uint64_t step, RtErr *e) {
  JitProgram *j = p->ctx;
  if (entry < 0 || entry >= j->n) return rt_err(e, "%s: there is no entry number %d", p->model, entry);
  for (int k = 0; k < p->entry[entry].noutput; k++) outputs[k] = NULL;
  RtRunCtx ctx = {seed, step};
  return rt_plan_run(cg_module_plan(j->m[entry]), j->pool, j->arena, inputs, outputs, p->state, &ctx, e);
}

static void add_time(PassTimes *t, const char *name, double ms) {
  if (t) pass_times_add(t, name, ms / 1e3);
}

/* Fuses, lowers, compiles and JITs graph g into *m. */
static int compile(JitProgram *j, IrGraph *g, const CgJitOptions *o, CgModule **m, RtErr *e) {
  double t0 = pass_now();
  FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = !o->no_fuse});
  if (!fp) return rt_err(e, "%s: out of memory in the fusion pass", g->name);
  add_time(o->times, "fusion", (pass_now() - t0) * 1e3);
  *m = cg_module_new(j->s, g, fp, e);
  fuse_plan_free(fp);
  if (!*m || cg_module_jit(*m, e) < 0) return -1;
  const CgTimes *t = cg_module_times(*m);
  add_time(o->times, "codegen: lowering", t->lower_ms);
  add_time(o->times, "codegen: LLVM IR", t->emit_ms);
  add_time(o->times, "codegen: LLVM optimise", t->opt_ms);
  add_time(o->times, "codegen: LLVM JIT", t->jit_ms);
  return 0;
}

RtProgram *cg_jit_program(IrGraph **graphs, int n, const char *model, const char *config, double lr, uint64_t seed,
                          const CgJitOptions *o, RtErr *e) {
  CgJitOptions none = {0};
  if (!o) o = &none;
  JitProgram *j = calloc(1, sizeof *j);
  j->m = calloc((size_t)n + 1, sizeof *j->m);
  j->n = n;
  j->pub.ctx = j;
  int rc = (j->s = cg_session_new(e)) ? 0 : -1;
  if (rc == 0 && o->pipeline) cg_session_set_pipeline(j->s, o->pipeline);
  int64_t arena = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    rc = compile(j, graphs[i], o, &j->m[i], e);
    if (rc == 0 && cg_module_plan(j->m[i])->arena_bytes > arena) arena = cg_module_plan(j->m[i])->arena_bytes;
  }
  if (rc == 0 && !(j->pool = rt_pool_new(o->threads, e))) rc = -1;
  if (rc == 0 && !(j->arena = rt_arena_new(arena, e))) rc = -1;
  if (rc < 0) { /* the graphs are ours to free, as cg_ref_program would have */
    for (int i = 0; i < n; i++) ir_graph_free(graphs[i]);
    jit_free(&j->pub);
    return NULL;
  }
  j->ref = cg_ref_program(graphs, n, model, config, lr, seed, e); /* takes the graphs */
  if (!j->ref) {
    jit_free(&j->pub);
    return NULL;
  }
  RtProgram *r = j->ref;
  j->pub = (RtProgram){.model = r->model, .config = r->config, .state = r->state, .nparam = r->nparam,
                       .nentry = r->nentry, .entry = r->entry, .lr = r->lr, .init = jit_init, .run = jit_run,
                       .free = jit_free, .ctx = j};
  return &j->pub;
}
