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

/* The registered passes: the built-ins (dce, grad, cse, fold, algebra),
 * then those added by pass_register in the order they were added; *n gets
 * the count. The array is valid until the next pass_register. */
const Pass *pass_list(int *n);
const Pass *pass_find(const char *name);

/* The most passes the registry holds, built-ins included. */
#define PASS_MAX 64

/* Adds *p to the registry under p->name, so pipelines can name it
 * (--passes=...,name,...). The struct is copied; p->name, p->help and
 * p->run must stay valid for as long as the pass may run (a plugin's stay
 * loaded until the process exits). A name is 1 to 31 characters of
 * [a-z0-9_], starting with a letter, and not "all" (--print-after=all).
 * Returns 0, or -1 with the reason in why (an invalid name, a name already
 * registered, a NULL run, or a full registry). */
int pass_register(const Pass *p, char *why, size_t size);
/* Drops every pass pass_register added, leaving the built-ins. */
void pass_registry_reset(void);

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
