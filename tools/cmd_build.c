/* cmd_build.c — `dalc FILE.dal [--config C] [--batch N] [-fno-fuse] -o EXE`:
 * the model as a standalone executable (codegen/aot.h). Its entries are
 * the graphs `dalc run FILE.dal -- ...` compiles (training entries as whole
 * training steps: forward, backward, AdamW), so `EXE COMMAND ...` behaves
 * as `dalc run FILE.dal -- COMMAND ...`. DAL_KEEP_TEMPS=1 keeps the
 * intermediate files (objects, main.c) and prints where they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/aot.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "tools/cli.h"

/* Entry i as the program runs it: traced, a training entry made a
 * training step, then the graph passes. */
static IrGraph *build_entry(FeProgram *p, int i, const AdamWOptions *adamw, const DalcArgs *a) {
  IrGraph *g = cli_lower_entry(p, i, a);
  if (!g) return NULL;
  double t0 = pass_now();
  int rc = g->train ? opt_train_step(g, adamw) : 0;
  if (a->times && g->train) pass_times_add(a->times, "training step: grad + adamw", pass_now() - t0);
  if (rc == 0) rc = cli_run_passes(g, a);
  if (rc) {
    cli_graph_error(g);
    ir_graph_free(g);
    return NULL;
  }
  return g;
}

int cmd_build(const DalcArgs *a) {
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  int n = fe_entry_count(p), status = 1;
  IrGraph **graphs = calloc((size_t)n + 1, sizeof *graphs);
  AdamWOptions adamw = cli_adamw_options(p);
  for (int i = 0; i < n; i++)
    if (!(graphs[i] = build_entry(p, i, &adamw, a))) {
      for (int k = 0; k < i; k++) ir_graph_free(graphs[k]);
      goto done;
    }
  double lr = 1e-3;
  fe_global_number(p, "lr", &lr);
  const char *keep = getenv("DAL_KEEP_TEMPS");
  CgAotOptions o = {.output = a->output, .no_fuse = a->no_fuse, .times = a->times,
                    .keep_temps = keep && *keep && strcmp(keep, "0") != 0};
  RtErr e;
  if (cg_aot_build(graphs, n, a->file, fe_config_selected(p), lr, &o, &e) == 0) status = 0; /* takes the graphs */
  else cli_error("%s", e.msg);
done:
  free(graphs);
  fe_free(p);
  return status;
}
