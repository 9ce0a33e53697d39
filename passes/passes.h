/* passes.h — graph passes and the pipeline that runs them by name.
 *
 * A pass maps a graph to a graph (in place, or by building a new one and
 * swapping it in). The pipeline is a list of pass names, so dalc can show
 * and change it (--passes=dce,...). Module prefix: pass_.
 */
#ifndef DAL_PASSES_H
#define DAL_PASSES_H

#include "ir/ir.h"

typedef struct {
  const char *name;
  const char *help;
  /* Returns 0, or -1 with a message in g->error. */
  int (*run)(IrGraph *g);
} Pass;

/* The registered passes, in a stable order; *n gets the count. */
const Pass *pass_list(int *n);
const Pass *pass_find(const char *name);

/* Runs a comma-separated list of pass names over g, verifying the graph
 * after each. Returns 0, or -1 with the reason in g->error. */
int pass_run_pipeline(IrGraph *g, const char *names);

/* Dead-code elimination: drops every node that no output and no state
 * update depends on. INPUT nodes stay (they are the entry's signature);
 * unused PARAMs go; updated PARAM/STATE nodes stay. */
int pass_dce(IrGraph *g);

#endif
