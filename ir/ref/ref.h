/* ref.h — the reference executor: runs any IR graph op by op with plain C
 * kernels.
 *
 * It is slow on purpose and obviously correct: the oracle that fusion, the
 * LLVM kernels and memory planning are tested against. It is a backend of
 * its own (the runtime never depends on it) and uses only the IR and the
 * runtime's tensors.
 *
 * Module prefix: ref_.
 */
#ifndef DAL_REF_H
#define DAL_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

/* What GUMBEL nodes draw from: noise element i of a node with salt s is
 * rt_gumbel_fill's element i for (seed, s, step). */
typedef struct {
  uint64_t seed;
  uint64_t step;
} RefOptions;

/* Runs g. inputs[i] binds g->input[i], params[i] binds g->param[i]; their
 * dtype and shape are checked against the nodes (errors name the input or
 * parameter and both shapes). On success outputs[i] is a new tensor for
 * g->output[i] (the caller frees it, even when two outputs are the same node
 * or an output is an input) and 0 is returned; on failure -1 with e->msg set,
 * every outputs[i] NULL, and nothing leaks.
 *
 * The graph is checked with ir_verify first. Only nodes that some output
 * depends on are run; an intermediate is freed as soon as its last consumer
 * has run. Runtime errors in the data (integer division by zero, an index
 * out of range in gather, onehot or cross_entropy) name the op and its
 * source location. opt may be NULL (seed 0, step 0). Inputs are only read;
 * persistent tensors (params[], bound to PARAM and STATE nodes) are written
 * only by the graph's updates (g->update_*), after everything has run and
 * only on success. */
int ref_run(const IrGraph *g, RtTensor *const *inputs, RtTensor *const *params, RtTensor **outputs,
            const RefOptions *opt, RtErr *e);

/* What one run did, for tests of liveness and memory (and a baseline for
 * the memory planner). */
typedef struct {
  int nodes_run;       /* nodes executed (dead nodes are not), bound leaves included */
  int64_t peak_bytes;  /* most bytes of tensors allocated by the run alive at once,
                          counting outputs until the run returns */
} RefStats;

/* ref_run, also filling *stats (if not NULL) on success. */
int ref_run_stats(const IrGraph *g, RtTensor *const *inputs, RtTensor *const *params, RtTensor **outputs,
                  const RefOptions *opt, RefStats *stats, RtErr *e);

/* True if the executor has a kernel for op: every op of ops.def does, which
 * is checked at build time; this lets tests say so too. */
bool ref_has_kernel(IrOp op);

#endif
