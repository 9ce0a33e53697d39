/* passes.h — graph passes and the pipeline that runs them by name.
 *
 * A pass maps a graph to a graph (in place, or by building a new one and
 * swapping it in). The pipeline is a list of pass names, so dalc can show
 * and change it (--passes=dce,...). Module prefix: pass_.
 */
#ifndef DAL_PASSES_H
#define DAL_PASSES_H

#include <stdio.h>

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

/* Wall-clock time per named phase, accumulated (for --time-passes). */
typedef struct {
  int n;
  struct {
    char name[48];
    double seconds;
  } item[64];
} PassTimes;

double pass_now(void); /* monotonic seconds */
/* Adds 'seconds' to the phase 'name' (a new row the first time). */
void pass_times_add(PassTimes *t, const char *name, double seconds);
/* A table: each phase's time and share of the total, then the total. */
void pass_times_print(const PassTimes *t, FILE *out);

typedef struct {
  FILE *stats;             /* non-NULL: node counts before and after each pass */
  PassTimes *times;        /* non-NULL: each pass's time is added here */
  const char *print_after; /* print the IR after this pass; "all": after every pass */
  FILE *print_out;         /* where (default stderr) */
} PassRunOptions;

/* pass_run_pipeline with instrumentation; o may be NULL. */
int pass_run_pipeline_opts(IrGraph *g, const char *names, const PassRunOptions *o);

/* Dead-code elimination: drops every node that no output and no state
 * update depends on. INPUT nodes stay (they are the entry's signature);
 * unused PARAMs go; updated PARAM/STATE nodes stay. */
int pass_dce(IrGraph *g);

#endif
