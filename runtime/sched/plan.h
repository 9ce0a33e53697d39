/* plan.h — a compiled entry function as the runtime runs it: buffers and
 * steps.
 *
 * Codegen produces a plan (in memory with JIT'd kernel addresses, or as
 * static data inside an AOT executable together with the kernels' object
 * code); the memory planner fills in the arena offsets; the scheduler
 * (runtime/sched/rt_sched.h) runs the steps in order on a thread pool. A plan never
 * refers to the compiler's IR, so compiled executables need only the
 * runtime and OpenBLAS. Module prefix: rt_.
 */
#ifndef DAL_RT_PLAN_H
#define DAL_RT_PLAN_H

#include <stdint.h>

#include "runtime/core/tensor.h"

/* What a kernel may need beyond its buffers: the seed and the step count
 * drive the counter-based Gumbel noise. */
typedef struct {
  uint64_t seed;
  uint64_t step;
} RtRunCtx;

/* A generated kernel computes iterations [begin, end) of its parallel
 * range (its outermost loop). args[i] is the address of the buffer named by
 * the step's arg[i]. Kernels are reentrant: the scheduler may call one on
 * disjoint ranges from several threads at once. */
typedef void (*RtKernelFn)(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end);

typedef enum {
  RT_BUF_ARENA,  /* an intermediate at 'offset' in the planned arena */
  RT_BUF_INPUT,  /* the entry's input number 'index' */
  RT_BUF_OUTPUT, /* the entry's output number 'index' (the caller's tensor) */
  RT_BUF_STATE,  /* a persistent tensor (parameter, optimizer state), by 'name' */
  RT_BUF_CONST   /* read-only data embedded in the plan ('data') */
} RtBufKind;

typedef struct {
  RtBufKind kind;
  RtDType dtype;
  int rank;
  int64_t dim[RT_MAX_RANK];
  int64_t bytes;
  int64_t offset;    /* RT_BUF_ARENA: byte offset, 64-byte aligned */
  int index;         /* RT_BUF_INPUT, RT_BUF_OUTPUT */
  const char *name;  /* RT_BUF_STATE (and any buffer, for dumps) */
  const void *data;  /* RT_BUF_CONST */
} RtBuffer;

typedef enum {
  RT_STEP_KERNEL, /* call kernel[kernel] over [0, range), split among threads */
  RT_STEP_GEMM,   /* cblas_sgemm, 'batch' times with strides: args a, b, c */
  RT_STEP_COPY    /* bytes of buffer arg[0] into buffer arg[1] (e.g. a state update) */
} RtStepKind;

/* C[i] = alpha * op(A[i]) @ op(B[i]) + beta * C[i] for i < batch, row-major,
 * A[i] at a + off_a + i * stride_a elements (stride 0: shared), likewise B
 * and C (the offsets let a GEMM read a shifted view of a buffer: the direct
 * convolutions of codegen/lower_direct.c). */
typedef struct {
  int batch;
  int trans_a, trans_b;
  int m, n, k;
  int lda, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  float alpha, beta;
  int64_t off_a, off_b, off_c; /* elements from the buffers' starts (0: none) */
  /* Optional layer-norm prologue (pass ln-prologue, passes/fuse_ln.c): ln
   * != 0 means A holds the raw rows a layer_norm would normalise; the
   * step's args 3 and 4 are its gamma and beta [k], and the step first
   * normalises A's m rows of k (mean, biased variance, + ln_eps, gamma,
   * beta) into a scratch block it then multiplies. Only with batch 1, not
   * trans_a, lda == k. */
  int ln;
  float ln_eps;
} RtGemm;

typedef struct {
  RtStepKind kind;
  const char *name;  /* for profiles and dumps: the fused group or op */
  int kernel;        /* RT_STEP_KERNEL: index into RtPlan.kernel */
  int64_t range;     /* RT_STEP_KERNEL: parallel iterations, >= 1 */
  int narg;
  const int *arg;    /* buffer ids */
  RtGemm gemm;       /* RT_STEP_GEMM */
  /* For --check-numerics (runtime/core/numerics.h): where the step's fused
   * group comes from ("models/dvae.dal:42:9", its root node's location;
   * NULL: unknown), whether the group is part of the backward pass (made
   * by autodiff from the op at src), and the f32 buffers the step writes
   * (a kernel's stores, a GEMM's C, a copy's destination; inputs and
   * constants never), which rt_plan_run checks after the step. */
  const char *src;
  const char *calls; /* the user-function calls src was reached through, innermost
                        first ("models/dvae.dal:33:13, models/dvae.dal:60:9"); NULL: none */
  int backward;
  int nwrite;
  const int *write;  /* buffer ids */
} RtStep;

/* An i32 input used directly as indices (a gather's rows, a one-hot
 * depth, cross-entropy classes): every element must lie in [0, limit).
 * Compiled kernels treat an index out of range as a zero row (they never
 * read or write out of bounds); rt_plan_run rejects such an input before
 * the first step instead, naming the element and what it indexes. */
typedef struct {
  int input;         /* the entry's input number */
  int64_t limit;
  const char *what;  /* e.g. "rows of text_emb.weight" */
} RtIndexCheck;

typedef struct {
  const char *name;        /* the entry function */
  int nbuf;
  const RtBuffer *buf;
  int nstep;
  const RtStep *step;
  int nkernel;
  const RtKernelFn *kernel;
  const char *const *kernel_name;
  int64_t arena_bytes;     /* size of the intermediate arena */
  int ninput, noutput;
  int ncheck;
  const RtIndexCheck *check;
} RtPlan;

#endif
