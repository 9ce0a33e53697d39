/* aot_impl.h — the parts of the AOT build (aot.h), internal to codegen/aot*.c:
 *   aot_source.c  the C file with the plan tables and main()
 *   aot_tools.c   the temporary directory, the runtime's location, running cc
 */
#ifndef DAL_CODEGEN_AOT_IMPL_H
#define DAL_CODEGEN_AOT_IMPL_H

#include <stdio.h>

#include "codegen/aot.h"
#include "ir/ir.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/plan_program.h"

/* ---- aot_source.c ---- */

/* The file's opening comment and #includes. */
void cg_aot_write_prologue(FILE *f, const char *model, const char *config, const char *cpu, const char *features);
/* The tables of entry i's plan, as statics named e<i>_... (e<i>_plan the
 * RtPlan), with a declaration of every kernel it calls; -1 with a message
 * if a kernel name is not a C identifier. */
int cg_aot_write_plan(FILE *f, int i, const RtPlan *pl, RtErr *e);
/* The entry and state specs of d (its plans: e<i>_plan for entry i) and
 * main(), which builds the program and calls rt_main. */
void cg_aot_write_main(FILE *f, const RtPlanProgramDesc *d);

/* ---- aot_tools.c ---- */

/* A new private directory under $TMPDIR (or /tmp): a malloc'd path. */
char *cg_aot_tempdir(RtErr *e);
/* Removes dir's files and then dir (it holds no subdirectories). */
void cg_aot_remove_dir(const char *dir);
/* The runtime library and header folder: o's, or found from the running
 * program (aot.h); checks that both exist. */
int cg_aot_locate(const CgAotOptions *o, char *lib, size_t libsize, char *inc, size_t incsize, RtErr *e);
/* Runs argv[0] with argv (searched in PATH) and waits; -1 with the command
 * line in the message unless it exits with status 0. */
int cg_aot_spawn(char *const *argv, RtErr *e);

#endif
