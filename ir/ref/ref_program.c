/* ref_program.c — IR graphs on the reference executor as an RtProgram
 * (see ref_program.h). */
#include "ir/ref/ref_program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/bind.h"
#include "ir/ref/ref.h"
#include "runtime/sched/state.h"

typedef struct {
  RtProgram pub;        /* pub.ctx points back here */
  IrGraph **g;          /* (n) one graph per entry */
  int n;
  RtTensor ***bound;    /* (n) bound[i][k]: the state tensor of g[i]->param[k] */
  RtPlanProgramDesc d;  /* entries and state rows (cg_program_spec); no plans */
  char *model, *config;
} RefProgram;

static char *dup_str(const char *s) {
  size_t n = strlen(s ? s : "") + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s ? s : "", n);
  return d;
}

static void ref_program_free(RtProgram *p) {
  if (!p) return;
  RefProgram *r = p->ctx;
  for (int i = 0; i < r->n; i++) {
    if (r->bound) free(r->bound[i]);
    ir_graph_free(r->g[i]);
  }
  free(r->g);
  free(r->bound);
  cg_program_spec_free(&r->d);
  free(r->model);
  free(r->config);
  rt_list_free(p->state);
  free(r);
}

static int ref_program_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e; /* filling existing tensors cannot fail */
  RefProgram *r = p->ctx;
  rt_state_init(p->state, r->d.state, r->d.nstate, seed);
  return 0;
}

static int ref_program_run(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed,
                           uint64_t step, RtErr *e) {
  RefProgram *r = p->ctx;
  if (entry < 0 || entry >= r->n) return rt_err(e, "%s: there is no entry number %d", p->model, entry);
  RefOptions opt = {.seed = seed, .step = step};
  return ref_run(r->g[entry], inputs, r->bound[entry], outputs, &opt, e);
}

/* Each graph's persistent nodes bound to the state tensors of their names. */
static int bind_state(RefProgram *r, RtErr *e) {
  r->bound = calloc((size_t)r->n + 1, sizeof *r->bound);
  if (!r->bound) return rt_err(e, "%s: out of memory", r->model);
  for (int i = 0; i < r->n; i++) {
    const IrGraph *g = r->g[i];
    r->bound[i] = calloc((size_t)g->nparam + 1, sizeof *r->bound[i]);
    if (!r->bound[i]) return rt_err(e, "%s: out of memory", r->model);
    for (int k = 0; k < g->nparam; k++) r->bound[i][k] = rt_list_get(r->pub.state, g->node[g->param[k]].name);
  }
  return 0;
}

RtProgram *cg_ref_program(IrGraph **graphs, int n, const char *model, const char *config, double lr,
                          uint64_t seed, RtErr *e) {
  RefProgram *r = calloc(1, sizeof *r);
  IrGraph **g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
  RtTensorList *state = rt_list_new();
  if (!r || !g) {
    for (int i = 0; i < n; i++) ir_graph_free(graphs[i]);
    free(r);
    free(g);
    rt_list_free(state);
    rt_err(e, "%s: out of memory", model ? model : "program");
    return NULL;
  }
  memcpy(g, graphs, (size_t)n * sizeof *g);
  r->g = g;
  r->n = n;
  r->model = dup_str(model);
  r->config = dup_str(config);
  RtProgram *p = &r->pub;
  *p = (RtProgram){.model = r->model, .config = r->config, .state = state, .nentry = n, .lr = lr,
                   .init = ref_program_init, .run = ref_program_run, .free = ref_program_free, .ctx = r};
  if (!r->model || !r->config) {
    rt_err(e, "%s: out of memory", model ? model : "program");
    goto fail;
  }
  /* cg_program_spec checks the graphs and orders the state: parameters,
   * then the state checkpoints keep, then transient state */
  if (cg_program_spec(g, n, r->model, &r->d, e) ||
      rt_state_check(r->d.state, r->d.nstate, r->model, &p->nparam, &p->nsaved, e) ||
      rt_state_alloc(state, r->d.state, r->d.nstate, r->model, e) || bind_state(r, e))
    goto fail;
  p->entry = r->d.entry;
  ref_program_init(p, seed, e);
  return p;
fail:
  ref_program_free(p);
  return NULL;
}
