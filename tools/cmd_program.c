/* cmd_program.c — `dalc run FILE.dal [--config C] -- COMMAND ...`: every
 * entry of the model becomes an entry of one program (training entries as
 * whole training steps: forward, backward, AdamW), run on the reference
 * executor and driven by the executables' own command line (rt_main), so
 * `dalc run m.dal -- train ...` and a compiled `./m train ...` are the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/ref_program.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "tools/cli.h"

/* A model's optimizer settings come from its globals (MODELS.md section 1
 * and 2 give them per model), with PyTorch's AdamW defaults otherwise. */
static AdamWOptions adamw_options(const FeProgram *p) {
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .clip_norm = 0};
  fe_global_number(p, "adam_beta1", &o.beta1);
  fe_global_number(p, "adam_beta2", &o.beta2);
  fe_global_number(p, "adam_eps", &o.eps);
  fe_global_number(p, "weight_decay", &o.weight_decay);
  fe_global_number(p, "clip_norm", &o.clip_norm);
  return o;
}

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
  AdamWOptions o = adamw_options(p);
  for (int i = 0; i < n; i++)
    if (!(graphs[i] = lower_for_program(p, i, &o, a))) {
      for (int k = 0; k < i; k++) ir_graph_free(graphs[k]);
      goto done;
    }
  double lr = 1e-3;
  fe_global_number(p, "lr", &lr);
  RtErr e;
  RtProgram *prog = cg_ref_program(graphs, n, a->file, fe_config_selected(p), lr, a->seed, &e);
  if (!prog) {
    cli_error("%s", e.msg);
    goto done;
  }
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
