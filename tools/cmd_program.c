/* cmd_program.c — `dalc run FILE.dal [--config C] -- COMMAND ...`: every
 * entry of the model becomes an entry of one program (training entries as
 * whole training steps: forward, backward, AdamW), compiled to native code
 * (or, with --backend=ref, run on the reference executor) and driven by
 * the executables' own command line (rt_main), so `dalc run m.dal -- train
 * ...` and a compiled `./m train ...` are the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/sched/memfit.h"
#include "tools/cli.h"

int cmd_program(const DalcArgs *a) {
  RtErr e;
  if (a->rest_argc > 0 && rt_exe_check_outputs(a->rest_argc, a->rest_argv, &e)) { /* before compiling */
    cli_error("%s", e.msg);
    return 1;
  }
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  int n = fe_entry_count(p), status = 1;
  /* argv[0] names the program in the runtime's messages. */
  char name[512];
  snprintf(name, sizeof name, "dalc run %s --", a->file);
  char **argv = malloc(((size_t)a->rest_argc + 2) * sizeof *argv);
  IrGraph **graphs = NULL;
  RtProgram *prog = NULL;
  if (!argv) goto done;
  argv[0] = name;
  for (int i = 0; i < a->rest_argc; i++) argv[i + 1] = a->rest_argv[i];
  argv[a->rest_argc + 1] = NULL;
  /* the command's --force applies to the state the program allocates first */
  int argc = rt_mem_take_force(a->rest_argc + 1, argv);
  if (!(graphs = cli_program_graphs(p, a, true)) || !(prog = cli_program(graphs, n, p, a))) goto done;
  /* bench --compare compiles variants of the model through dalc */
  static CliCompareHost host;
  cli_compare_install(&host, a, p);
  status = rt_main(prog, argc, argv);
  rt_exe_set_compiler(NULL);
  rt_program_free(prog); /* before the frontend: graphs point at its file names */
done:
  free(argv);
  free(graphs);
  fe_free(p);
  return status;
}
