/* aot.h — a model's entries compiled ahead of time into a standalone
 * executable: `dalc FILE.dal -o EXE`.
 *
 * cg_aot_build takes the program's graphs as dalc builds them for
 * `dalc run FILE.dal -- ...` (tools/cmd_build.c: every entry, training
 * entries as whole training steps) and
 *   1. fuses, lowers and compiles each entry with LLVM (one module per
 *      entry in one session, so kernel names are unique: dal<entry>_k<i>_...),
 *      writing each module as an object file for the host CPU (the JIT's
 *      target machine: the executable is not portable to older CPUs);
 *   2. writes a C file with the plan tables (buffers, steps, argument
 *      arrays, constant data, kernel declarations and tables, entry and
 *      state specs) and a main() that builds them into an RtProgram
 *      (runtime/sched/plan_program.h) and calls rt_main, so the executable has
 *      the same command line as `dalc run FILE.dal -- ...`;
 *   3. compiles that file with the C compiler ($CC split at blanks, default cc) against the
 *      runtime's headers, and links it with the objects, the runtime
 *      library (libruntime.a), OpenBLAS, cJSON, zlib, -lm and -lpthread: never
 *      LLVM.
 * Intermediate files live in a temporary directory ($TMPDIR or /tmp),
 * removed at the end unless o->keep_temps (dalc: DAL_KEEP_TEMPS=1), in
 * which case its path is printed on stderr.
 *
 * Where the runtime is. By default, relative to the running program
 * (/proc/self/exe): dalc in BUILD/ (build/dalc) links BUILD/libruntime.a
 * and compiles against the headers in BUILD/../runtime (the repository it
 * was built from). A dalc built with AddressSanitizer (make SAN=1) has an
 * instrumented runtime library beside it, so it links executables with
 * -fsanitize=address,undefined too.
 *
 * Same code as the JIT. The kernels come from the same lowering, pass
 * pipeline and target machine as `dalc run`'s, and the executable runs
 * them on the same scheduler, so for the same thread count its results are
 * bit-identical to the JIT's.
 *
 * Module prefix: cg_.
 */
#ifndef DAL_CODEGEN_AOT_H
#define DAL_CODEGEN_AOT_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/llvm/cg_llvm.h"
#include "ir/ir.h"
#include "passes/fuse.h"
#include "passes/passes.h"
#include "runtime/sched/plan_program.h"
#include "runtime/core/rt_error.h"

typedef struct {
  const char *output;      /* the executable to write (required) */
  bool no_fuse;            /* -fno-fuse: one kernel per node */
  const char *pipeline;    /* LLVM pass pipeline; NULL: CG_DEFAULT_PIPELINE */
  bool keep_temps;         /* keep the temporary directory (its path is printed on stderr) */
  PassTimes *times;        /* not NULL: fusion, lowering, LLVM, object emission, C source, C compile, link */
  const char *runtime_lib; /* NULL: libruntime.a beside the running program */
  const char *include_dir; /* the folder holding runtime/ (its headers); NULL: the running program's folder's parent */
  const char *cc;          /* NULL: $CC, else "cc"; split at blanks ("ccache gcc") */
  const char *source_hash; /* the program's (RtProgram.source_hash), or NULL */
  const FuseOptions *fuse; /* -fno-fuse and --fuse-rule (passes/fuse.h); NULL: from no_fuse */
  bool no_cache;           /* --no-cache: neither read nor write the compiled-object cache */
  CgCompileCounts *counts; /* not NULL: kernel and cache counts added (cg_llvm.h) */
} CgAotOptions;

/* Builds the executable o->output from graphs[0..n) (entry i = graphs[i];
 * g->train marks a training step). model, config and lr are what the
 * executable reports and writes into checkpoints (dalc passes the .dal
 * path, the config and the model's `lr`, as for the JIT). The state is
 * that of cg_ref_program over the same graphs: parameters in order of
 * first use over the graphs, then the other state, each name once with
 * the same shape everywhere. Takes ownership of graphs[0..n) (freed before
 * returning, on success and on failure). Returns 0, or -1 with e->msg set
 * (an invalid graph, graphs that disagree on a state tensor, a compile or
 * link failure with the command that failed, an output that cannot be
 * written: checked first). The executable is linked under a temporary name
 * beside o->output and renamed when complete, so on failure o->output is
 * as it was. */
int cg_aot_build(IrGraph **graphs, int n, const char *model, const char *config, double lr, const CgAotOptions *o,
                 RtErr *e);

#endif
