/* remat.h — rematerialisation: recompute cheap values next to their late
 * readers instead of keeping them alive across the memory peak.
 *
 * A training step keeps many forward activations alive until the backward
 * reads them; at the step where the most bytes are live (the planner's
 * lower bound) most of them are cheap to recompute from values that are
 * kept anyway: relu(group_norm(x)) whose x the norm's gradient reads, a
 * norm's output, gelu(x). The pass plans the graph (fusion plan, then the
 * memory plan's buffers and lower bound), picks the stored values that are
 * live across the peak, made of cheap ops (elementwise, views, constants,
 * group and layer norms) over inputs that are live at their late readers
 * anyway, and rewrites each reader after the peak to read a copy of that
 * recipe built just before it. A rewrite is kept only if the re-planned
 * peak is lower, and the pass repeats on the new peak until nothing
 * lowers it. The values are the same arithmetic on the same inputs, so the
 * results are bit for bit those of the un-rematerialised graph.
 *
 * Module prefix: pass_remat_.
 */
#ifndef DAL_PASSES_REMAT_H
#define DAL_PASSES_REMAT_H

#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "passes/fuse.h"

typedef struct {
  int64_t peak_before;  /* the planned arena's lower bound before the pass (bytes) */
  int64_t peak_after;   /* and after it: peak_before - peak_after is saved at the peak */
  int nvalues;          /* stored values whose late readers now read a recomputed copy */
  int nrecomputed;      /* nodes added to recompute them */
  int64_t flops;        /* floating-point operations the copies add per run (estimate:
                           one per element of an elementwise op, 8 per element of a norm) */
  int rounds;           /* rewrites kept */
} PassRematStats;

/* Rematerialises g as described above, planning under fusion options fo
 * (NULL: the defaults). Does nothing when fusion is off (fo->enabled
 * false), or when g has no value worth recomputing. st (may be NULL)
 * receives what it did. Returns 0, or -1 with the reason in g->error (g is
 * then a valid graph that keeps the rewrites made before the failure). */
int pass_remat_opts(IrGraph *g, const FuseOptions *fo, PassRematStats *st);

/* The pass "remat" of the registry: pass_remat_opts with the default fusion
 * options. */
int pass_remat(IrGraph *g);

/* One line for --stats: values and nodes recomputed, FLOPs added, the
 * planned peak before and after. */
void pass_remat_print(const PassRematStats *st, FILE *out);

#endif
