/* ref_program.c — IR graphs on the reference executor as an RtProgram
 * (see ref_program.h). */
#include "ir/ref/ref_program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/bind.h"
#include "ir/ref/ref.h"
#include "runtime/core/init.h"

typedef struct {
  RtProgram pub;      /* pub.ctx points back here */
  IrGraph **g;        /* (n) one graph per entry */
  int n;
  RtTensor ***bound;  /* (n) bound[i][k]: the state tensor of g[i]->param[k] */
  RtEntrySpec *entry; /* (n) */
  RtArgSpec *args;    /* every entry's inputs then outputs, one block */
  const IrNode **origin; /* (state->n) the node that first declared state tensor i */
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
  free(r->entry);
  free(r->args);
  free(r->origin);
  free(r->model);
  free(r->config);
  rt_list_free(p->state);
  free(r);
}

static int ref_program_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e; /* filling existing tensors cannot fail */
  RefProgram *r = p->ctx;
  for (int i = 0; i < p->state->n; i++) {
    const IrNode *n = r->origin[i];
    RtTensor *t = p->state->tensor[i];
    if (n->op == OP_PARAM)
      rt_init_fill(rt_f32(t), rt_tensor_numel(t), (RtInitKind)n->attr.init, n->attr.init_a, n->attr.init_b, seed,
                   n->name);
    else
      memset(t->data, 0, rt_tensor_bytes(t));
  }
  return 0;
}

static int ref_program_run(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed,
                           uint64_t step, RtErr *e) {
  RefProgram *r = p->ctx;
  if (entry < 0 || entry >= r->n) return rt_err(e, "%s: there is no entry number %d", p->model, entry);
  RefOptions opt = {.seed = seed, .step = step};
  return ref_run(r->g[entry], inputs, r->bound[entry], outputs, &opt, e);
}

static void spec_of_node(RtArgSpec *a, const IrNode *n, const char *name) {
  a->name = name;
  a->dtype = n->dtype == IR_I32 ? RT_I32 : RT_F32;
  a->rank = n->shape.rank;
  for (int k = 0; k < n->shape.rank; k++) a->dim[k] = n->shape.d[k];
}

static const char *kind_name(const IrNode *n) { return n->op == OP_PARAM ? "parameter" : "state"; }

/* Adds graph gi's persistent nodes of kind 'op' to the state (or checks them
 * against an entry of the same name). */
static int collect_state(RefProgram *r, int gi, IrOp op, bool transient, RtErr *e) {
  const IrGraph *g = r->g[gi];
  RtTensorList *st = r->pub.state;
  for (int k = 0; k < g->nparam; k++) {
    const IrNode *n = &g->node[g->param[k]];
    if (n->op != OP_PARAM && n->op != OP_STATE)
      return rt_err(e, "graph '%s': persistent node '%s' is neither a parameter nor state", g->name, n->name);
    for (int i = 0; i < st->n; i++) {
      if (strcmp(st->name[i], n->name) != 0) continue;
      const IrNode *o = r->origin[i];
      if (o->op != n->op || o->dtype != n->dtype || !ir_shape_eq(&o->shape, &n->shape)) {
        char a[128], b[128];
        return rt_err(e, "%s: entries disagree on '%s': %s %s%s in '%s', %s %s%s in an earlier entry", r->model,
                      n->name, kind_name(n), ir_dtype_name(n->dtype),
                      ir_shape_str(&n->shape, a, sizeof a), g->name, kind_name(o), ir_dtype_name(o->dtype),
                      ir_shape_str(&o->shape, b, sizeof b));
      }
      goto next;
    }
    if (n->op == op && (op != OP_STATE || n->attr.transient == transient)) {
      RtTensor *t = cg_tensor_for_node(g, g->param[k], e);
      if (!t) return -1;
      rt_list_put(st, n->name, t);
      const IrNode **o = realloc(r->origin, (size_t)st->n * sizeof *o);
      if (!o) return rt_err(e, "%s: out of memory", r->model);
      r->origin = o;
      o[st->n - 1] = n;
    }
  next:;
  }
  return 0;
}

/* Entry specs for every graph, and each graph's persistent nodes bound to
 * the state by name. */
static int describe_entries(RefProgram *r, RtErr *e) {
  int nargs = 0;
  for (int i = 0; i < r->n; i++) nargs += r->g[i]->ninput + r->g[i]->noutput;
  r->entry = calloc((size_t)r->n + 1, sizeof *r->entry);
  r->args = calloc((size_t)nargs + 1, sizeof *r->args);
  r->bound = calloc((size_t)r->n + 1, sizeof *r->bound);
  if (!r->entry || !r->args || !r->bound) return rt_err(e, "%s: out of memory", r->model);
  RtArgSpec *a = r->args;
  for (int i = 0; i < r->n; i++) {
    const IrGraph *g = r->g[i];
    RtEntrySpec *en = &r->entry[i];
    en->name = g->name;
    en->train = g->train;
    en->ninput = g->ninput;
    en->input = a;
    for (int k = 0; k < g->ninput; k++) spec_of_node(a++, &g->node[g->input[k]], g->node[g->input[k]].name);
    en->noutput = g->noutput;
    en->output = a;
    for (int k = 0; k < g->noutput; k++) spec_of_node(a++, &g->node[g->output[k]], g->output_name[k]);
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
  for (int i = 0; i < n; i++) {
    char why[512];
    if (!g[i] || !ir_verify(g[i], why, sizeof why)) {
      rt_err(e, "%s: graph %d ('%s') is invalid: %s", r->model, i, g[i] && g[i]->name ? g[i]->name : "?",
             g[i] ? why : "missing");
      goto fail;
    }
    for (int k = 0; k < i; k++)
      if (strcmp(g[k]->name, g[i]->name) == 0) {
        rt_err(e, "%s: two entries are called '%s'", r->model, g[i]->name);
        goto fail;
      }
  }
  /* parameters, then the state checkpoints keep, then transient state */
  for (int i = 0; i < n; i++)
    if (collect_state(r, i, OP_PARAM, false, e)) goto fail;
  p->nparam = state->n;
  for (int i = 0; i < n; i++)
    if (collect_state(r, i, OP_STATE, false, e)) goto fail;
  p->nsaved = state->n;
  for (int i = 0; i < n; i++)
    if (collect_state(r, i, OP_STATE, true, e)) goto fail;
  if (describe_entries(r, e)) goto fail;
  p->entry = r->entry;
  ref_program_init(p, seed, e);
  return p;
fail:
  ref_program_free(p);
  return NULL;
}
