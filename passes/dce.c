/* dce.c — dead-code elimination.
 * Marks what the outputs and the state updates reach (walking ids downward, which is reverse
 * topological order), then rebuilds the node array keeping marked nodes in
 * their original order and renumbering their inputs. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

int pass_dce(IrGraph *g) {
  char *live = calloc((size_t)g->n + 1, 1);
  int *newid = malloc(((size_t)g->n + 1) * sizeof *newid);
  for (int i = 0; i < g->noutput; i++) live[g->output[i]] = 1;
  for (int i = 0; i < g->ninput; i++) live[g->input[i]] = 1;
  for (int i = 0; i < g->nupdate; i++) live[g->update_target[i]] = live[g->update_value[i]] = 1;
  for (int id = g->n - 1; id >= 0; id--)
    if (live[id])
      for (int k = 0; k < g->node[id].nin; k++) live[g->node[id].in[k]] = 1;

  int n = 0, nparam = 0;
  for (int id = 0; id < g->n; id++) {
    if (!live[id]) {
      free(g->node[id].name);
      newid[id] = -1;
      continue;
    }
    IrNode node = g->node[id];
    for (int k = 0; k < node.nin; k++) node.in[k] = newid[node.in[k]];
    newid[id] = n;
    g->node[n++] = node;
  }
  g->n = n;
  for (int i = 0; i < g->ninput; i++) g->input[i] = newid[g->input[i]];
  for (int i = 0; i < g->nparam; i++)
    if (newid[g->param[i]] >= 0) g->param[nparam++] = newid[g->param[i]];
  g->nparam = nparam;
  for (int i = 0; i < g->noutput; i++) g->output[i] = newid[g->output[i]];
  for (int i = 0; i < g->nupdate; i++) {
    g->update_target[i] = newid[g->update_target[i]];
    g->update_value[i] = newid[g->update_value[i]];
  }
  free(live);
  free(newid);
  return 0;
}
