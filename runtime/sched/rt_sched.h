/* rt_sched.h — runs a compiled plan (plan.h) on a thread pool
 * (threadpool.h).
 *
 * rt_plan_run binds every buffer to an address once per run (the arena at
 * its offset, inputs and outputs by index, state by name, constants), then
 * runs the steps in order, each finished on every thread before the next
 * begins:
 *
 *   RT_STEP_KERNEL  [0, range) is cut into n contiguous chunks (rt_chunk),
 *                   n = 4 per thread (at most range; rt_sched_calls), which
 *                   the pool's threads claim one at a time; a range of 1
 *                   runs on the calling thread alone.
 *   RT_STEP_GEMM    cblas_sgemm for each batch item (see RtGemmMode), with
 *                   the items' effects in batch order: C blocks may overlap
 *                   (stride_c 0 and beta 1 accumulate over the batch).
 *                   GEMMs under 65536 multiply-adds run on the caller;
 *                   others are cut into 2 pieces per thread. In
 *                   RT_GEMM_SPLIT, a GEMM of few rows (up to 32, not
 *                   trans_a: a KV-cached decode step's) runs the AVX2
 *                   small-M kernel of gemm_small.h instead, 4 pieces per
 *                   thread, with bit-identical results for every thread
 *                   count (DAL_GEMM_SMALL=0 turns it off).
 *   RT_STEP_COPY    arg[0]'s bytes into arg[1]: memmove on the caller when
 *                   they overlap or are under 512 KiB, else pieces of at
 *                   least 256 KiB on the pool.
 *
 * More pieces than threads: on a shared machine a thread the OS preempts
 * in the middle of a step no longer holds up the step for the whole of its
 * share, only for the piece it is in (the others take the rest). Piece i's
 * work depends only on (i, n) and the plan, and n only on the thread count
 * and the step, never on which thread ran it, so a run's results are the
 * same for every run with the same thread count.
 *
 * OpenBLAS and the pool never compete for the cores: in the default mode
 * (RT_GEMM_SPLIT) OpenBLAS is set to one thread and the pool splits each
 * GEMM itself, so OpenBLAS's own threads stay asleep; in RT_GEMM_BLAS the
 * caller runs each GEMM with OpenBLAS set to the pool's thread count while
 * the pool's workers sleep (parked), and kernels run with OpenBLAS idle.
 * tests/test_sched.c measures both (its benchmark output). The split mode
 * is the default because OpenBLAS's threads keep spinning after each
 * threaded call (measured: in the 30 ms after a run in RT_GEMM_BLAS mode
 * the process still burns 15-30 ms of CPU, against ~0.1 ms in
 * RT_GEMM_SPLIT), taking a core from the kernels that follow; on the
 * shared development machine the two modes' step times were within noise
 * of each other.
 *
 * Profiling: with DAL_PROFILE set (to anything but "" or "0") every
 * rt_plan_run times each step, and at exit the process prints on stderr
 * where the time went: a summary by category (kernel names without their
 * "kN_" head, e.g. "im2col", "group_norm"; GEMMs by step name; copies),
 * then one row per kernel function, GEMM shape or copy, each table sorted by
 * total wall time, with calls, ms per call, the share of all step time and
 * GFLOP/s for GEMMs (runtime/sched/sched_profile.c). Timing costs two clock reads
 * per step; without DAL_PROFILE nothing is timed. rt_sched_set_profile
 * switches it from code, rt_prof_report prints (and clears) it at any time,
 * rt_prof_clear clears it (bench: after the warm-up steps).
 *
 * Module prefix: rt_.
 */
#ifndef DAL_RT_SCHED_H
#define DAL_RT_SCHED_H

#include <stdint.h>
#include <stdio.h>

#include "runtime/sched/plan.h"
#include "runtime/core/tensor.h"
#include "runtime/core/threadpool.h"

typedef enum {
  RT_GEMM_SPLIT, /* default: OpenBLAS single-threaded, each GEMM split among the
                    pool's threads (by batch item, else by rows or columns of C) */
  RT_GEMM_BLAS   /* OpenBLAS with the pool's thread count, on the calling thread,
                    the pool's workers asleep */
} RtGemmMode;

/* Process-wide, like OpenBLAS's own thread count which it controls. */
void rt_sched_set_gemm_mode(RtGemmMode m);
RtGemmMode rt_sched_gemm_mode(void);

/* Thread ith's chunk [*begin, *end) of [0, range) split nth ways: contiguous,
 * in thread order, sizes differing by at most one (the first range % nth
 * chunks are the longer ones); empty when range < nth and ith >= range. */
void rt_chunk(int64_t range, int ith, int nth, int64_t *begin, int64_t *end);

/* Checks a plan's structure: buffer kinds, shapes and byte sizes (bytes ==
 * elements * dtype size), arena buffers 64-aligned inside arena_bytes,
 * input/output indices, step arguments, kernels, GEMM leading dimensions and
 * extents inside their buffers, copy sizes. Returns 0, or -1 with a message naming the plan, the step or
 * buffer and what is wrong. */
int rt_plan_check(const RtPlan *p, RtErr *e);

/* Profiling on or off for the whole process, overriding DAL_PROFILE (an
 * exit report is registered when it is first switched on). */
void rt_sched_set_profile(int on);
/* Prints the profile gathered so far to 'out' (nothing timed: a header
 * saying so) and starts a new one. */
void rt_prof_report(FILE *out);
/* Drops the profile gathered so far unprinted and starts a new one: a
 * benchmark's warm-up steps (the first step's page faults, caches filling)
 * would otherwise be averaged into the rows of the steps it times. */
void rt_prof_clear(void);

/* Runs plan p once.
 *
 *   pool     the threads (NULL: the calling thread only)
 *   arena    p->arena_bytes of 64-byte aligned memory for the intermediates
 *            (rt_arena_new); may be NULL if arena_bytes is 0
 *   inputs   [p->ninput] tensors of the plan's dtypes and shapes (read only)
 *   outputs  [p->noutput] tensors the results are written to; a NULL entry
 *            gets a new tensor of the right shape, owned by the caller
 *   state    the persistent tensors the plan names (parameters, optimizer
 *            state), read and updated in place; may be NULL if it names none
 *   ctx      seed and step for the kernels (NULL: both 0)
 *
 * Every check (rt_plan_check, the arena, each tensor's dtype and shape, a
 * state name missing from 'state', the plan's index checks on the inputs:
 * an index out of range is reported with its position and value) happens
 * before the first step, so on
 * failure nothing has been written: -1 with a message, and the outputs it
 * allocated are freed and set back to NULL. State names are looked up once
 * per run, not per step. Returns 0 on success.
 *
 * With --check-numerics on (runtime/core/numerics.h) every step's written
 * f32 buffers are checked after it, and the first non-finite value stops
 * the run: -1 with a message naming the step, its .dal source, the buffer
 * and the element; the outputs it allocated are freed, but the state may
 * have been partly updated. Off, it costs one branch per step. */
int rt_plan_run(const RtPlan *p, RtPool *pool, void *arena, RtTensor *const *inputs, RtTensor **outputs,
                RtTensorList *state, const RtRunCtx *ctx, RtErr *e);

/* bytes of 64-byte aligned memory (at least one alignment unit, so never
 * NULL for 0), or NULL with a message. Free with rt_arena_free. */
void *rt_arena_new(int64_t bytes, RtErr *e);
void rt_arena_free(void *arena);

/* ---- internal to the scheduler's files (runtime/sched*.c) ---- */
/* One GEMM step on the pool, in the current mode. */
void rt_sched_gemm(const RtGemm *g, const float *a, const float *b, float *c, RtPool *pool);
/* One GEMM step with a layer-norm prologue (RtGemm.ln): x's rows
 * normalised with gamma, beta and g->ln_eps, then as rt_sched_gemm. */
void rt_sched_gemm_ln(const RtGemm *g, const float *x, const float *gamma, const float *beta, const float *b, float *c,
                      RtPool *pool);
/* Sets OpenBLAS's thread count for the current mode and the pool. */
void rt_sched_blas_threads(RtPool *pool);
/* How many calls a step of 'units' independent pieces of work is split
 * into on the pool: per_thread per thread, at most one per unit; 1 without
 * a pool (or with one thread). */
int rt_sched_calls(RtPool *pool, int64_t units, int per_thread);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t rt_now_ns(void);
/* --check-numerics (sched_numerics.c): before the first step, the arena
 * and the outputs zeroed (a buffer written in pieces holds only finite
 * values until each piece is written); after step s, its written buffers
 * (RtStep.write) checked: -1 with rt_numerics_fail's message at the first
 * non-finite value. */
void rt_sched_numerics_begin(const RtPlan *p, void *arena, void *const *addr);
int rt_sched_numerics_step(const RtPlan *p, int s, void *const *addr, RtErr *e);
/* DAL_PROFILE (sched_profile.c): whether it is on (read once, and the exit
 * report registered then); step s of p took ns; one whole run took ns. */
int rt_prof_enabled(void);
void rt_prof_step(const RtPlan *p, int s, double ns);
void rt_prof_run(double ns);

#endif
