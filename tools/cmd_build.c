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
#include "tools/cli.h"

int cmd_build(const DalcArgs *a) {
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  int n = fe_entry_count(p), status = 1;
  IrGraph **graphs = cli_program_graphs(p, a, false);
  if (!graphs) goto done;
  double lr = 1e-3;
  fe_global_number(p, "lr", &lr);
  const char *keep = getenv("DAL_KEEP_TEMPS");
  CgAotOptions o = {.output = a->output, .no_fuse = a->no_fuse, .fuse = &a->fuse, .times = a->times,
                    .no_cache = a->no_cache, .counts = a->counts,
                    .keep_temps = keep && *keep && strcmp(keep, "0") != 0, .source_hash = fe_source_hash(p)};
  RtErr e;
  if (cg_aot_build(graphs, n, a->file, fe_config_selected(p), lr, &o, &e) == 0) status = 0; /* takes the graphs */
  else cli_error("%s", e.msg);
done:
  free(graphs);
  fe_free(p);
  return status;
}
