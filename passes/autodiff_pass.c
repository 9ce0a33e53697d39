/* autodiff_pass.c — the "grad" pass: a training entry's graph becomes one
 * that returns its loss and the gradient of every trainable parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"
#include "passes/grad_rules.h"

/* "grad:" + name in a malloc'd string (NULL if out of memory). */
static char *grad_name(const char *name) {
  size_t n = strlen(name) + 6;
  char *s = malloc(n);
  if (s) snprintf(s, n, "grad:%s", name);
  return s;
}

/* Sets the outputs to ids[0..n) named names[0..n); false if that failed
 * (ir_set_outputs reports through g->error and leaves the outputs alone). */
static bool set_outputs(IrGraph *g, const int *ids, char **names, int n) {
  ir_set_outputs(g, ids, (const char *const *)names, n);
  if (g->noutput != n) return false;
  for (int i = 0; i < n; i++)
    if (g->output[i] != ids[i] || strcmp(g->output_name[i], names[i]) != 0) return false;
  return true;
}

static bool trainable(const IrNode *n) { return n->op == OP_PARAM && !n->attr.frozen; }

int ad_grad_pass(IrGraph *g) {
  SrcLoc none = {0};
  if (!g->train)
    return ir_graph_fail(g, none, "grad: entry '%s' is not a training entry (the grad pass needs its loss as output 0)",
                         g->name);
  if (g->noutput < 1)
    return ir_graph_fail(g, none, "grad: training entry '%s' returns nothing; output 0 must be the loss", g->name);
  int loss = g->output[0], mark = g->n, np = 0;
  /* Frozen parameters (freeze() in the entry) get no gradient. */
  for (int i = 0; i < g->nparam; i++) np += trainable(&g->node[g->param[i]]);
  int *ids = malloc((size_t)(np + 1) * sizeof *ids);
  char **names = calloc((size_t)(np + 1), sizeof *names);
  int rc = -1;
  if (!ids || !names) {
    ir_graph_fail(g, none, "grad: out of memory");
    goto done;
  }
  ids[0] = loss;
  names[0] = strdup(g->output_name[0]);
  for (int i = 0, k = 1; i < g->nparam; i++) {
    const IrNode *p = &g->node[g->param[i]];
    if (!trainable(p)) continue;
    ids[k] = g->param[i];
    names[k] = grad_name(p->name);
    if (names[k] && strcmp(names[k], names[0]) == 0) {
      ir_graph_fail(g, g->node[loss].loc, "grad: the loss output is named '%s', which is the name of a gradient output",
                    names[0]);
      goto done;
    }
    k++;
  }
  for (int i = 0; i <= np; i++)
    if (!names[i]) {
      ir_graph_fail(g, none, "grad: out of memory");
      goto done;
    }
  if (ad_gradients(g, loss, ids + 1, np, ids + 1)) goto done;
  if (!set_outputs(g, ids, names, np + 1)) {
    ad_rollback(g, mark);
    goto done;
  }
  rc = 0;
done:
  for (int i = 0; names && i <= np; i++) free(names[i]);
  free(names);
  free(ids);
  return rc;
}
