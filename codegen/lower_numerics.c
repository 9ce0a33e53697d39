/* lower_numerics.c — what --check-numerics needs from lowering
 * (runtime/sched/plan.h, RtStep.src, .backward, .write): each step's .dal
 * source and the buffers it writes. */
#include <stdio.h>
#include <string.h>

#include "codegen/lower_impl.h"

/* Whether node v of g was made by autodiff: in a differentiated graph (a
 * training step, or an entry with "grad:" outputs) the gradient nodes come
 * after the loss, output 0 (they carry the forward op's location). */
static bool is_backward(const IrGraph *g, int v) {
  if (g->noutput < 1) return false;
  bool grads = g->train;
  for (int k = 1; k < g->noutput && !grads; k++)
    grads = g->output_name && g->output_name[k] && strncmp(g->output_name[k], "grad:", 5) == 0;
  return grads && v > g->output[0];
}

/* "file:line:col, file:line:col": the calls, innermost first (at most 8). */
static const char *calls_str(Lower *L, const IrCallSite *c) {
  if (!c) return NULL;
  char buf[1200];
  size_t at = 0;
  for (int k = 0; c && k < 8 && at < sizeof buf; c = c->up, k++)
    at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%s:%d:%d", k ? ", " : "", c->at.file ? c->at.file : "?",
                           c->at.line, c->at.col);
  if (c && at < sizeof buf) snprintf(buf + at, sizeof buf - at, ", ...");
  return cg_pool_strdup(L->pool, buf);
}

void cg_low_set_src(Lower *L, int node) {
  L->src = NULL;
  L->calls = NULL;
  L->backward = 0;
  if (node < 0 || node >= L->g->n) return;
  const SrcLoc *loc = &L->g->node[node].loc;
  if (!loc->file) return;
  char buf[1100];
  if (loc->line > 0) snprintf(buf, sizeof buf, "%s:%d:%d", loc->file, loc->line, loc->col);
  else snprintf(buf, sizeof buf, "%s", loc->file); /* e.g. "<adamw>": made by a pass, not from source */
  L->src = cg_pool_strdup(L->pool, buf);
  L->calls = calls_str(L, L->g->node[node].calls);
  L->backward = loc->line > 0 && is_backward(L->g, node);
}

static bool has_arg(const CgNodeArg *v, int n, int a) {
  for (int i = 0; i < n; i++)
    if (v[i].arg == a) return true;
  return false;
}

/* Whether kernel k writes its argument a: a LOOP kernel its stores, any
 * other whatever it does not load except the arguments it only reads by
 * their role (sources, indices, gradients to scatter, a col2im's col). */
static bool kernel_writes(const CgKernel *k, int a) {
  if (k->kind == CG_KERNEL_LOOP) return has_arg(k->store, k->nstore, a);
  if (has_arg(k->store, k->nstore, a)) return true;
  if (has_arg(k->load, k->nload, a)) return false;
  if (a == k->x_arg || a == k->src_arg || a == k->idx_arg || a == k->grad_arg || a == k->base_arg) return false;
  if (k->kind == CG_KERNEL_COL2IM && a == k->col_arg) return false;
  return true;
}

void cg_low_writes(Lower *L) {
  for (int si = 0; si < L->nstep; si++) {
    RtStep *s = &L->step[si];
    int *w = cg_pool_alloc(L->pool, sizeof(int) * (size_t)(s->narg + 1)), n = 0;
    for (int a = 0; a < s->narg; a++) {
      bool writes = s->kind == RT_STEP_COPY ? a == 1
                    : s->kind == RT_STEP_GEMM ? a == 2
                                              : kernel_writes(&L->kern[s->kernel], a);
      const RtBuffer *b = &L->buf[s->arg[a]];
      if (writes && b->dtype == RT_F32 && b->kind != RT_BUF_INPUT && b->kind != RT_BUF_CONST) w[n++] = s->arg[a];
    }
    s->nwrite = n;
    s->write = w;
  }
}
