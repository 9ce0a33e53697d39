/* program_spec.c — a program's entries and state from its graphs
 * (cg_program_spec in ref_program.h): one description for the reference
 * program, the JIT's and an executable's tables, so `EXE info` and
 * checkpoints match whichever backend made them. It describes the state
 * without allocating it (runtime/sched/state.h does that). */
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref_program.h"
#include "runtime/core/tensor.h"

static const char *kind_name(IrOp op) { return op == OP_PARAM ? "parameter" : "state"; }

static void arg_of_node(RtArgSpec *a, const IrNode *n, const char *name) {
  a->name = name;
  a->dtype = n->dtype == IR_I32 ? RT_I32 : RT_F32;
  a->rank = n->shape.rank;
  for (int k = 0; k < n->shape.rank; k++) a->dim[k] = n->shape.d[k];
}

/* The names of st[0..ns) by hash (open addressing; slot = 1 + an index
 * into st, 0 empty): a program with N parameters is described in O(N),
 * where a search of st for each would take O(N^2). */
typedef struct {
  int *slot;
  uint32_t mask;
} NameIndex;

/* The slot where 'name' is in ix, or the empty one where it would go. */
static int *name_slot(const NameIndex *ix, const RtStateSpec *st, const char *name) {
  uint32_t h = rt_name_hash(name) & ix->mask;
  while (ix->slot[h] && strcmp(st[ix->slot[h] - 1].name, name) != 0) h = (h + 1) & ix->mask;
  return &ix->slot[h];
}

/* Adds graph g's persistent nodes of kind 'op' to st[0..*ns) (origin[i]:
 * the node that declared st[i]); checks repeated names against the first. */
static int collect(const IrGraph *g, IrOp op, bool transient, const char *model, RtStateSpec *st,
                   const IrNode **origin, int *ns, const NameIndex *ix, RtErr *e) {
  for (int k = 0; k < g->nparam; k++) {
    const IrNode *n = &g->node[g->param[k]];
    if (n->op != OP_PARAM && n->op != OP_STATE)
      return rt_err(e, "graph '%s': persistent node '%s' is neither a parameter nor state", g->name, n->name);
    int *slot = name_slot(ix, st, n->name);
    int found = *slot - 1;
    if (found >= 0) {
      const IrNode *o = origin[found];
      if (o->op != n->op || o->dtype != n->dtype || !ir_shape_eq(&o->shape, &n->shape)) {
        char a[128], b[128];
        return rt_err(e, "%s: entries disagree on '%s': %s %s%s in '%s', %s %s%s in an earlier entry", model, n->name,
                      kind_name(n->op), ir_dtype_name(n->dtype), ir_shape_str(&n->shape, a, sizeof a), g->name,
                      kind_name(o->op), ir_dtype_name(o->dtype), ir_shape_str(&o->shape, b, sizeof b));
      }
      continue;
    }
    if (n->op != op || (op == OP_STATE && n->attr.transient != transient)) continue;
    RtStateSpec *s = &st[*ns];
    *slot = *ns + 1;
    origin[(*ns)++] = n;
    RtArgSpec a;
    arg_of_node(&a, n, n->name);
    *s = (RtStateSpec){.name = n->name, .dtype = a.dtype, .rank = a.rank, .param = op == OP_PARAM,
                        .transient = op == OP_STATE && transient};
    memcpy(s->dim, a.dim, sizeof s->dim);
    if (op == OP_PARAM) {
      s->init = (RtInitKind)n->attr.init; /* the enums share their order (init.h) */
      s->init_a = n->attr.init_a;
      s->init_b = n->attr.init_b;
    }
  }
  return 0;
}

static int describe_entry(const IrGraph *g, RtEntrySpec *en, RtErr *e) {
  RtArgSpec *in = calloc((size_t)g->ninput + 1, sizeof *in), *out = calloc((size_t)g->noutput + 1, sizeof *out);
  *en = (RtEntrySpec){.name = g->name, .train = g->train, .ninput = g->ninput, .input = in, .noutput = g->noutput,
                      .output = out};
  if (!in || !out) return rt_err(e, "%s: out of memory", g->name);
  for (int k = 0; k < g->ninput; k++) arg_of_node(&in[k], &g->node[g->input[k]], g->node[g->input[k]].name);
  for (int k = 0; k < g->noutput; k++) arg_of_node(&out[k], &g->node[g->output[k]], g->output_name[k]);
  return 0;
}

int cg_program_spec(IrGraph *const *graphs, int n, const char *model, RtPlanProgramDesc *d, RtErr *e) {
  memset(d, 0, sizeof *d);
  int total = 0;
  for (int i = 0; i < n; i++) {
    char why[512];
    if (!graphs[i] || !ir_verify(graphs[i], why, sizeof why))
      return rt_err(e, "%s: graph %d ('%s') is invalid: %s", model, i,
                    graphs[i] && graphs[i]->name ? graphs[i]->name : "?", graphs[i] ? why : "missing");
    for (int k = 0; k < i; k++)
      if (strcmp(graphs[k]->name, graphs[i]->name) == 0)
        return rt_err(e, "%s: two entries are called '%s'", model, graphs[i]->name);
    total += graphs[i]->nparam;
  }
  RtEntrySpec *entry = calloc((size_t)n + 1, sizeof *entry);
  RtStateSpec *state = calloc((size_t)total + 1, sizeof *state);
  const IrNode **origin = calloc((size_t)total + 1, sizeof *origin);
  NameIndex ix = {.mask = 15};
  while (ix.mask + 1 < 2 * (uint32_t)total) ix.mask = 2 * ix.mask + 1;
  ix.slot = calloc((size_t)ix.mask + 1, sizeof *ix.slot);
  d->entry = entry;
  d->state = state;
  int rc = entry && state && origin && ix.slot ? 0 : rt_err(e, "%s: out of memory", model);
  int ns = 0;
  /* parameters, then the state checkpoints keep, then transient state */
  for (int i = 0; i < n && rc == 0; i++) rc = collect(graphs[i], OP_PARAM, false, model, state, origin, &ns, &ix, e);
  for (int i = 0; i < n && rc == 0; i++) rc = collect(graphs[i], OP_STATE, false, model, state, origin, &ns, &ix, e);
  for (int i = 0; i < n && rc == 0; i++) rc = collect(graphs[i], OP_STATE, true, model, state, origin, &ns, &ix, e);
  free(ix.slot);
  d->nstate = ns;
  for (int i = 0; i < n && rc == 0; i++) {
    rc = describe_entry(graphs[i], &entry[i], e);
    d->nentry = i + 1; /* so that cg_program_spec_free frees what this one got */
  }
  free(origin);
  if (rc) cg_program_spec_free(d);
  return rc;
}

void cg_program_spec_free(RtPlanProgramDesc *d) {
  for (int i = 0; i < d->nentry; i++) {
    free((void *)d->entry[i].input);
    free((void *)d->entry[i].output);
  }
  free((void *)d->entry);
  free((void *)d->state);
  memset(d, 0, sizeof *d);
}
