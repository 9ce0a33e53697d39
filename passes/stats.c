/* stats.c — node counts of a graph, and a pipeline runner that prints them
 * before and after each pass (what `dalc --stats` shows). */
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/simplify.h"

void pass_print_stats(const IrGraph *g, const char *label, int before, FILE *out) {
  int count[OP_COUNT] = {0};
  for (int i = 0; i < g->n; i++)
    if ((unsigned)g->node[i].op < (unsigned)OP_COUNT) count[g->node[i].op]++;
  fprintf(out, "%-16s %6d nodes", label, g->n);
  if (before >= 0) fprintf(out, " (%+d)", g->n - before);
  fprintf(out, "  %d params  %d state  |", count[OP_PARAM], count[OP_STATE]);
  const char *sep = " ";
  for (int op = 0; op < OP_COUNT; op++) {
    if (!count[op]) continue;
    fprintf(out, "%s%s %d", sep, ir_op_name((IrOp)op), count[op]);
    sep = ", ";
  }
  fputc('\n', out);
}

int pass_run_pipeline_stats(IrGraph *g, const char *names, FILE *out) {
  PassRunOptions o = {.stats = out};
  return pass_run_pipeline_opts(g, names, &o);
}
