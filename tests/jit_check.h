/* jit_check.h — runs a graph on the reference executor and through the
 * LLVM JIT and the runtime's scheduler, and compares (test_jit, test_fuse).
 *
 * Both runs get the same inputs and their own copy of the parameters and
 * state (updates write them); outputs and updated state must agree: i32
 * exactly, f32 bit for bit when 'exact', else to 'tol' relative (max-abs
 * difference over max-abs of the reference). The JIT side runs on a pool
 * of two threads, so every kernel is also split into [begin, end) pieces.
 * Inputs come from a fixed xorshift sequence: deterministic. Prefix: jc_. */
#ifndef DAL_TESTS_JIT_CHECK_H
#define DAL_TESTS_JIT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/llvm/cg_llvm.h"
#include "ir/ir.h"
#include "passes/fuse.h"
#include "runtime/sched/rt_sched.h"

/* A Check fixture's setup and teardown: the JIT session and the pool. */
void jc_setup(void);
void jc_teardown(void);
CgSession *jc_session(void);
RtPool *jc_pool(void);

typedef enum {
  JC_NORMAL,   /* f32 in [-2.5, 2.5] */
  JC_POS,      /* f32 in [0.05, 9] */
  JC_SMALL,    /* small integers -3..3 (as f32 or i32): ties for comparisons */
  JC_INDEX,    /* i32 in [0, hi) */
  JC_NONZERO,  /* i32 in [-20, 20] without 0 */
  JC_WIDE,     /* f32 up to +-3e9 and NaN (casts); i32 over the whole range */
  JC_BOOL      /* i32 0 or 1 */
} JcDom;

/* A tensor of dtype dt and shape s drawn from domain d. */
RtTensor *jc_make(IrDType dt, const IrShape *s, JcDom d, int hi);
RtTensor *jc_copy(const RtTensor *t);
/* The next number of the sequence, uniform in [lo, hi). */
double jc_uniform(double lo, double hi);

/* got matches want (see the top of this file); 'what' names it in failures.
 * Returns the relative error (0 for i32 and exact comparisons). */
double jc_expect_agree(const char *what, const RtTensor *got, const RtTensor *want, double tol, bool exact);

typedef struct {
  double tol;
  bool exact;
  uint64_t seed, step;
  int kernels;       /* out: the plan's kernel count */
  int steps;         /* out: its step count */
  double max_err;    /* out: the largest relative error seen so far (never reset here) */
} JcCheck;

/* Runs g on in[] (one per graph input) and params[] (one per g->param)
 * both ways, the JIT under fusion plan fp (NULL: fuse_plan with fusion
 * on), and compares. */
void jc_check_plan(IrGraph *g, const FusePlan *fp, RtTensor **in, RtTensor **params, JcCheck *c);
/* jc_check_plan with fusion off (one group per node), then on. */
void jc_check_both(IrGraph *g, RtTensor **in, RtTensor **params, JcCheck *c);
/* jc_check_plan under fp with inputs and state drawn here: f32 inputs and
 * parameters from JC_NORMAL, STATE tensors from JC_POS (optimizer moments,
 * step counts), i32 inputs from JC_INDEX below index_hi. */
void jc_check_random(IrGraph *g, const FusePlan *fp, int index_hi, JcCheck *c);

#endif
