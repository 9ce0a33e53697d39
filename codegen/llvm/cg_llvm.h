/* cg_llvm.h — native code for a lowered graph through the LLVM C API
 * (LLVM 16, shared libLLVM): one LLVM function per kernel of the plan
 * (codegen/lower.h), optimised with the new pass manager for the host
 * CPU, then JIT-compiled with ORC LLJIT, or printed as LLVM IR or assembly,
 * or written as an object file.
 *
 * Compile time. The JIT compiles each kernel in a module of its own, on
 * several threads, and each distinct kernel once per session (kernels are
 * identified by their lowering signature, then by their LLVM IR). Compiled
 * objects go to a content-addressed cache on disk (codegen/llvm/
 * obj_cache.h; keyed by the IR text, pass pipeline, target triple, CPU
 * name and features, LLVM version and the cache format), so the next
 * process that needs a kernel loads its object instead of compiling it;
 * AOT object files are cached the same way, one per entry.
 *
 * This header does not include LLVM's: callers (dalc, tests) only need it
 * and -lLLVM-16. The runtime never includes it.
 *
 * Kernels. Each kernel is `void NAME(void *const *args, const RtRunCtx *ctx,
 * int64_t begin, int64_t end)` (RtKernelFn) running iterations [begin, end)
 * of its parallel range. Its buffers are its noalias arguments: a memory
 * planner may give an output the memory of an input only for loop kernels
 * that read that input at the index they write (elementwise kernels).
 * JIT'd code calls only helpers registered as absolute symbols: `pow`
 * (libm, for pow with an exponent other than the constants 1 and 2),
 * rt_gumbel_fill_range (runtime/core/rng.h), and memcpy / memmove / memset
 * (LLVM turns copy and fill loops into them); GEMMs are plan steps, never
 * calls from kernels. An object file references the same names, which the
 * runtime library and libc provide.
 *
 * Numerics. Elementwise add/sub/mul/div/sqrt/rsqrt, comparisons, casts,
 * movement and pow with exponent 2 give the reference executor's results
 * bit for bit. exp, log, tanh, sigmoid and gelu use float polynomials
 * (cephes-style, within a few ulp). Float sums (sum, the softmax and
 * cross-entropy denominators, norm statistics) accumulate in float and may
 * be reassociated by the vectoriser (8 lanes x interleave): the reference
 * sums in double, so they agree to about n * 2^-24 relative in the worst
 * case and ~sqrt(n) * 2^-24 typically, well inside the 1e-5 the tests use
 * for the sizes dal runs. Max, argmax and integer sums are exact.
 *
 * Module prefix: cg_.
 */
#ifndef DAL_CODEGEN_LLVM_H
#define DAL_CODEGEN_LLVM_H

#include <stdbool.h>
#include <stdio.h>

#include "codegen/lower.h"
#include "runtime/sched/plan.h"
#include "runtime/core/rt_error.h"

/* The native target, host target machines and one LLJIT. One per process
 * is enough; not thread-safe (compile from one thread). */
typedef struct CgSession CgSession;

CgSession *cg_session_new(RtErr *e);
void cg_session_free(CgSession *s);
/* The host CPU name and feature string the code is built for. */
const char *cg_session_cpu(const CgSession *s);
const char *cg_session_features(const CgSession *s);

/* The optimisation pipeline run on every module, in LLVMRunPasses' syntax
 * (e.g. "default<O3>"); NULL restores CG_DEFAULT_PIPELINE. Loop unrolling
 * and interleaving are off in any pipeline (see llvm_module.c).
 *
 * The default is the part of O3 that matters for these kernels: inline the
 * bodies (turning noalias arguments into scoped alias metadata), clean up,
 * hoist invariants, rotate loops, canonicalise induction variables,
 * vectorise, clean up. On the GPT bench training step it optimises about
 * 3x faster than default<O3> and the kernels run as fast (measured with
 * the same kernels: within noise). */
#define CG_DEFAULT_PIPELINE                                                                                   \
  "always-inline,function(sroa,early-cse,instcombine,simplifycfg,loop-mssa(licm),loop-rotate,loop(indvars),"  \
  "loop-vectorize,instcombine,simplifycfg)"
void cg_session_set_pipeline(CgSession *s, const char *passes);
const char *cg_session_pipeline(const CgSession *s);

/* The compiled-object cache (codegen/llvm/obj_cache.h): on by default, in
 * $DAL_CACHE_DIR, else $XDG_CACHE_HOME/dal, else ~/.cache/dal; off for
 * --no-cache. Kernels are also shared within the session whether or not
 * the disk cache is on. */
void cg_session_set_cache(CgSession *s, bool enabled);
/* How many kernels are compiled at once (threads, each with its own LLVM
 * context and target machine); 0: one per online core (at most 8). */
void cg_session_set_compile_threads(CgSession *s, int n);

/* What kernel compilation did, for --time-passes. */
typedef struct {
  int kernels;      /* kernels asked for (after in-graph dedupe, lower_dedupe.c) */
  int deduplicated; /* the same code as a kernel already in the session */
  int cache_hits;   /* loaded from the on-disk cache */
  int cache_misses; /* not in the cache (or a bad entry, also counted in cache_bad) */
  int cache_bad;    /* corrupt or stale entries found (and rebuilt) */
  int compiled;     /* compiled by LLVM */
} CgCompileCounts;
const CgCompileCounts *cg_session_counts(const CgSession *s);
/* Adds b's counts to a. */
void cg_compile_counts_add(CgCompileCounts *a, const CgCompileCounts *b);

/* Milliseconds spent in each phase of building one module: lowering; LLVM
 * IR emission and keying; optimisation and code generation; reading the
 * cache; loading objects into the JIT (or emitting an object file). */
typedef struct {
  double lower_ms, emit_ms, opt_ms, cache_ms, jit_ms;
} CgTimes;

/* One compiled graph: the lowered plan and an LLVM module (in its own
 * context) holding its kernels. */
typedef struct CgModule CgModule;

/* Lowers g with fusion plan p and emits and optimises its kernels. g and p
 * must outlive the module (p may be freed after this returns; g may not).
 * NULL with e->msg set on failure. */
CgModule *cg_module_new(CgSession *s, const IrGraph *g, const FusePlan *p, RtErr *e);
void cg_module_free(CgModule *m);
const CgLowered *cg_module_lowered(const CgModule *m);
const CgTimes *cg_module_times(const CgModule *m);

/* --emit=llvm / --emit=asm: the optimised module (every kernel) as text.
 * Only before cg_module_jit. */
int cg_module_print_llvm(CgModule *m, FILE *out, RtErr *e);
int cg_module_print_asm(CgModule *m, FILE *out, RtErr *e);
/* An object file with every kernel (for AOT executables), emitted from a
 * clone of the module, or copied from the cache (keyed by the module's
 * text before optimisation). Only before cg_module_jit. */
int cg_module_emit_object(CgModule *m, const char *path, RtErr *e);

/* JIT-compiles the kernels (codegen/llvm/jit_kernels.c: one module per
 * kernel, compiled in parallel, each distinct kernel once per session,
 * objects reused from the cache); afterwards cg_module_plan(m)->kernel[i]
 * are their addresses, valid until cg_session_free (kernels are shared
 * between the session's modules). */
int cg_module_jit(CgModule *m, RtErr *e);
const RtPlan *cg_module_plan(const CgModule *m);

#endif
