/* jit_program.h — IR graphs JIT-compiled into an RtProgram (runtime/
 * program.h): what `dalc run FILE.dal -- COMMAND ...` runs by default.
 *
 * Each graph (entry) is fused (passes/fuse.h), lowered, compiled with
 * LLVM and JIT'd once: at construction, or (lazy) when the entry first
 * runs, so a command that uses one entry compiles only that one; the
 * plans then run in the
 * runtime's plan program (runtime/sched/plan_program.h), as in an AOT-built
 * executable: one rt_plan_run per entry on a thread pool (runtime/
 * rt_sched.h), made with the arena at the first run. The persistent state,
 * entry specs and initialisation are those of the reference program
 * (ir/ref/ref_program.h, cg_program_spec), whose executor
 * stays available (dalc --backend=ref). Module prefix: cg_.
 */
#ifndef DAL_CODEGEN_JIT_PROGRAM_H
#define DAL_CODEGEN_JIT_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/llvm/cg_llvm.h"
#include "ir/ir.h"
#include "passes/fuse.h"
#include "passes/passes.h"
#include "runtime/sched/program.h"

typedef struct {
  bool no_fuse;         /* -fno-fuse: one kernel per node */
  int threads;          /* the pool's threads, and how many kernels compile at once; 0: rt_threads_default
                           (DAL_THREADS or all cores) for the pool, the online cores (at most 8) for compiling */
  const char *pipeline; /* LLVM pass pipeline; NULL: CG_DEFAULT_PIPELINE */
  PassTimes *times;     /* not NULL: fusion, lowering, LLVM emit / optimise / JIT times added */
  bool lazy;            /* compile each entry at its first run (errors then) instead of here */
  const FuseOptions *fuse; /* -fno-fuse and --fuse-rule (passes/fuse.h); NULL: from no_fuse */
  bool no_cache;        /* --no-cache: neither read nor write the compiled-object cache */
  CgCompileCounts *counts; /* not NULL: kernel and cache counts added (cg_llvm.h) */
} CgJitOptions;

/* Like cg_ref_program (same arguments, same ownership of graphs[0..n), same
 * state and entries), with every entry compiled; o may be NULL (defaults).
 * NULL with e->msg set if a graph is invalid, the graphs disagree, or
 * compilation fails. */
RtProgram *cg_jit_program(IrGraph **graphs, int n, const char *model, const char *config, double lr, uint64_t seed,
                          const CgJitOptions *o, RtErr *e);

#endif
