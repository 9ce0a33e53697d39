/* cmd_program.c — `dalc run FILE.dal [--config C] -- COMMAND ...`: every
 * entry of the model becomes an entry of one program (training entries as
 * whole training steps: forward, backward, AdamW), compiled to native code
 * (or, with --backend=ref, run on the reference executor) and driven by the executables' own command line (rt_main), so
 * `dalc run m.dal -- train ...` and a compiled `./m train ...` are the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/optimizer.h"
#include "passes/passes.h"
#include "tools/cli.h"

/* Lowers entry i; a training entry becomes a training step. */
static IrGraph *lower_for_program(FeProgram *p, int i, const AdamWOptions *o, const DalcArgs *a) {
  IrGraph *g = cli_lower_entry(p, i, a);
  if (!g) return NULL;
  double t0 = pass_now();
  int rc = g->train ? opt_train_step(g, o) : 0;
  if (a->times && g->train) pass_times_add(a->times, "training step: grad + adamw", pass_now() - t0);
  if (rc || cli_run_passes(g, a)) {
    cli_graph_error(g);
    ir_graph_free(g);
    return NULL;
  }
  return g;
}

int cmd_program(const DalcArgs *a) {
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  int n = fe_entry_count(p), status = 1;
  IrGraph **graphs = calloc((size_t)n + 1, sizeof *graphs);
  AdamWOptions o = cli_adamw_options(p);
  for (int i = 0; i < n; i++)
    if (!(graphs[i] = lower_for_program(p, i, &o, a))) {
      for (int k = 0; k < i; k++) ir_graph_free(graphs[k]);
      goto done;
    }
  RtProgram *prog = cli_program(graphs, n, p, a);
  if (!prog) goto done;
  /* argv[0] names the program in the runtime's messages. */
  char name[512];
  snprintf(name, sizeof name, "dalc run %s --", a->file);
  char **argv = malloc(((size_t)a->rest_argc + 2) * sizeof *argv);
  argv[0] = name;
  for (int i = 0; i < a->rest_argc; i++) argv[i + 1] = a->rest_argv[i];
  argv[a->rest_argc + 1] = NULL;
  status = rt_main(prog, a->rest_argc + 1, argv);
  free(argv);
  rt_program_free(prog); /* before the frontend: graphs point at its file names */
done:
  free(graphs);
  fe_free(p);
  return status;
}
