/* train_step.c — a training entry becomes one training step: forward,
 * backward (autodiff) and the AdamW update, in one graph. */
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff.h"
#include "passes/optimizer.h"

int opt_train_step(IrGraph *g, const AdamWOptions *o) {
  if (!g->train || g->noutput < 1) {
    snprintf(g->error, sizeof g->error, "%s is not a training entry (it must return a scalar loss)", g->name);
    return -1;
  }
  if (ad_grad_pass(g)) return -1;
  /* The grad pass made the outputs [loss, gradient of each trainable PARAM
   * in g->param order; frozen ones have none and are never updated]. */
  int n = g->noutput - 1;
  int *params = malloc((size_t)(n + 1) * sizeof *params);
  int *grads = malloc((size_t)(n + 1) * sizeof *grads);
  int k = 0;
  for (int i = 0; i < g->nparam && k < n; i++)
    if (g->node[g->param[i]].op == OP_PARAM && !g->node[g->param[i]].attr.frozen) params[k++] = g->param[i];
  memcpy(grads, g->output + 1, (size_t)n * sizeof *grads);
  int loss = g->output[0];
  char *loss_name = strdup(g->output_name[0]);
  const char *names[1] = {loss_name};
  ir_set_outputs(g, &loss, names, 1);
  int rc = k == n ? opt_adamw(g, params, grads, n, o) : -1;
  if (k != n) snprintf(g->error, sizeof g->error, "grad pass gave %d gradients for %d parameters", n, k);
  free(loss_name);
  free(params);
  free(grads);
  return rc;
}
