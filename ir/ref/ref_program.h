/* ref_program.h — an RtProgram (runtime/sched/program.h) whose entries run IR
 * graphs on the reference executor.
 *
 * This is how `dalc run FILE.dal -- train ...` trains before there is native
 * code: the lowered graphs of a model's entries become one program whose
 * state is shared among them by name, so a training step updates the
 * parameters that the inference entries then read.
 * Module prefix: cg_.
 */
#ifndef DAL_IR_REF_PROGRAM_H
#define DAL_IR_REF_PROGRAM_H

#include <stdint.h>

#include "ir/ir.h"
#include "runtime/sched/plan_program.h"
#include "runtime/sched/program.h"

/* Builds a program with one entry per graph (graphs[i] is entry i, named
 * g->name; g->train marks a training step). Takes ownership of graphs[0..n)
 * (not of the array), on success and on failure alike. The state is the
 * union, by name, of the graphs' PARAM nodes (first, in order of first use
 * over graphs[0], graphs[1], ...) and STATE nodes (after them, in the same
 * order); a name used twice must have the same shape and kind in every
 * graph. Parameters start from their initialisers under 'seed', STATE nodes
 * at zero. model and config are copied. Returns NULL with e->msg set if a
 * graph is invalid (ir_verify) or the graphs disagree. */
RtProgram *cg_ref_program(IrGraph **graphs, int n, const char *model, const char *config, double lr,
                          uint64_t seed, RtErr *e);

/* The entries and state of a program of graphs[0..n) (program_spec.c), as
 * cg_ref_program makes them: entry i from graphs[i] (inputs by node name,
 * outputs by output name), the state the union by name of the PARAM nodes
 * (in order of first use over the graphs), then of the STATE nodes, with
 * the parameters' initialisers. Checks every graph (ir_verify), distinct
 * entry names, and that a state name means the same kind, dtype and shape
 * everywhere; 'model' names the program in messages. Fills d's state and
 * entries (names point into the graphs); the caller sets the rest (model,
 * config, lr, plans). An executable's tables are written from it, and the
 * JIT's program (codegen/llvm/jit_program.h) is built from it. Free with
 * cg_program_spec_free. */
int cg_program_spec(IrGraph *const *graphs, int n, const char *model, RtPlanProgramDesc *d, RtErr *e);
void cg_program_spec_free(RtPlanProgramDesc *d);

#endif
