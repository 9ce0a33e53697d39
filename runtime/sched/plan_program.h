/* plan_program.h — an RtProgram (program.h) made of compiled plans
 * (plan.h) described by static tables: what an AOT-built executable runs.
 *
 * dalc writes the tables as C (codegen/aot.h): one RtPlan per entry with
 * its kernels as function pointers into the linked object code, the entry
 * specs, and the persistent state as RtStateSpec rows (name, shape, and for
 * parameters the initialiser). This file turns them into a program: it
 * allocates the state, initialises it as the reference program does
 * (runtime/core/init.h for parameters, zeros for the rest), and runs an entry
 * with rt_plan_run on a thread pool, with one arena sized for the largest
 * plan (entries run one at a time). Before the first training step after
 * an init it makes the optimizer moments resident (rt_state_make_resident),
 * so the step's kernels do not fault their pages in. It needs only the
 * runtime: no compiler header, no LLVM.
 *
 * Module prefix: rt_.
 */
#ifndef DAL_RT_PLAN_PROGRAM_H
#define DAL_RT_PLAN_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/init.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/program.h"
#include "runtime/sched/state.h"


/* Makes the plan of entry 'entry' when it first runs (dalc's JIT compiles
 * entries on demand): the plan stays owned by ctx and alive as long as the
 * program; NULL with e->msg set on failure. */
typedef const RtPlan *(*RtPlanMaker)(void *ctx, int entry, RtErr *e);

typedef struct {
  const char *model, *config; /* as RtProgram's */
  double lr;                  /* the default learning rate */
  const char *source_hash;    /* RtProgram's */
  int nstate;
  const RtStateSpec *state;   /* (nstate) every parameter before any other state */
  int nentry;
  const RtEntrySpec *entry;   /* (nentry) */
  const RtPlan *const *plan;  /* (nentry) plan[i] runs entry[i]: same inputs and outputs, in order;
                                 NULL (with make_plan set): made at the entry's first run */
  RtPlanMaker make_plan;      /* NULL: every plan is given */
  void *make_ctx;
  int threads;                /* the pool's threads; 0: rt_threads_default (DAL_THREADS or every core) */
} RtPlanProgramDesc;

/* A program running d's plans, its state initialised under 'seed'. d and
 * everything it points to are borrowed and must outlive the program
 * (static tables in an executable). Everything is checked here, so a
 * bad table is a message, not a crash later: each plan's structure
 * (rt_plan_check), its inputs and outputs against its entry's specs, every
 * state buffer it names against the state specs, state names unique and
 * parameters first and f32 (a plan made later is checked when it is
 * made, before it runs). NULL with e->msg set on failure. The thread
 * pool and the arena are made at the first run (a DAL_THREADS error shows
 * there); the arena grows when a later-made plan needs more. */
RtProgram *rt_plan_program_new(const RtPlanProgramDesc *d, uint64_t seed, RtErr *e);

#endif
