/* fuse.h — the fusion plan: a partition of a graph's nodes into kernels.
 *
 * The fusion pass (passes/fuse.c) decides which nodes share a kernel;
 * codegen emits one kernel (or library call) per group; the memory planner
 * allocates one buffer per group output. The plan is an analysis: it does
 * not change the graph. Module prefix: fuse_.
 */
#ifndef DAL_PASSES_FUSE_H
#define DAL_PASSES_FUSE_H

#include <stdbool.h>
#include <stdio.h>

#include "ir/ir.h"

typedef enum {
  FUSE_LEAF,    /* one INPUT, PARAM, STATE or CONST node: a buffer, no kernel */
  FUSE_LOOP,    /* elementwise / broadcast / injective members, at most one
                   reduction (softmax-like row ops count as one): one loop nest */
  FUSE_OPAQUE   /* one PAT_OPAQUE op (matmul, conv, norms, gumbel, ...) plus
                   the elementwise epilogue fused into it, if any */
} FuseKind;

typedef struct {
  FuseKind kind;
  int root;   /* the member that defines the group's iteration space: its
                 last reduction or opaque op, else its last member */
  int n;
  int *node;  /* members, in increasing id (topological) order */
  int nout;
  int *out;   /* members whose values are read outside the group, are
                 graph outputs or update values: each gets a buffer */
  int nin;
  int *in;    /* non-member nodes that members read: the kernel's inputs */
} FuseGroup;

/* Where a member is evaluated inside its group's loop nest (FusePlan.level).
 * The domain of a group is the root's shape for a FUSE_OPAQUE group and for
 * a FUSE_LOOP group without a reduction; for a FUSE_LOOP group whose root is
 * a reduction R it is R's input shape (for cross_entropy, the logits'), cut
 * into rows: one row per element of R's output (SUM, REDUCE_MAX, ARGMAX,
 * CROSS_ENTROPY) or per vector along attr.axis (SOFTMAX, LOG_SOFTMAX). */
typedef enum {
  FUSE_AT_ELEM, /* once per element of the domain (leaf groups: always this) */
  FUSE_AT_ROW,  /* once per row: R, the members computed from R's result at
                   its shape (the reduced-shape epilogue) and other values of
                   that shape the epilogue reads (e.g. cross_entropy's target) */
  FUSE_AT_ANY   /* cheap to repeat: depends on no loop index (a scalar chain),
                   only on constants and indices (a broadcast constant, an iota
                   mask), or is a view (reshape, permute, slice, broadcast) of
                   a value in memory: evaluated wherever it is read; never an out */
} FuseLevel;

typedef struct {
  int ngroup;
  FuseGroup *group;  /* in a valid execution order (topological over groups) */
  int *group_of;     /* group index of every node of the graph */
  int nrefused;      /* refused producer->consumer edges, for --explain-fusion */
  struct {
    int producer, consumer;
    char why[160];
  } *refused;
  /* Added after the first version of this header (fields above unchanged): */
  FuseLevel *level;  /* (g->n) each node's level in its group; NULL in plans
                        not made by fuse_plan */
} FusePlan;

typedef struct {
  bool enabled;      /* false (-fno-fuse): every node is its own group */
  bool single_pass;  /* true: no two-pass groups (a reduction's result read
                        back at its input's shape always starts a new group) */
} FuseOptions;

/* Partitions g's nodes. Deterministic: ties are broken by node id.
 *
 * Besides fuse.h's struct invariants, a plan from fuse_plan guarantees
 * (the rules, each with its refusal reason, are in passes/fuse_rules.c):
 *  - no duplication: every node is computed by one group only; other
 *    groups read it from its buffer (it is an out). Loop groups over the
 *    same shape that share a view or a constant-like input may be merged
 *    into one multi-output group;
 *  - a FUSE_LOOP group has no opaque op and at most one reduction (SUM,
 *    REDUCE_MAX, ARGMAX, SOFTMAX, LOG_SOFTMAX, CROSS_ENTROPY), its root.
 *    The ELEM members R depends on are its prologue (evaluated inside R's
 *    loop over a row); the ROW members come after R, once per row. Any
 *    other ELEM member makes a two-pass group: a second sweep over the row
 *    after R, reading R's row values through a BROADCAST (or ONEHOT) that
 *    expands exactly R's reduced axes (e.g. x - max(x) or e / sum(e) along
 *    rows). Only SUM, REDUCE_MAX, ARGMAX and CROSS_ENTROPY roots have ROW
 *    members or two passes; a SOFTMAX / LOG_SOFTMAX group is all ELEM;
 *  - a FUSE_OPAQUE group is one opaque op (the root) plus, possibly, an
 *    elementwise epilogue at the root's shape (ELEM members: elementwise
 *    ops, RESHAPE, BROADCAST; ANY members), evaluated after the op, reading
 *    its result at the same index. The root's operands are never members.
 *    The root is an out only if it is read outside the group or returned;
 *  - every out is at ELEM or ROW and is indexed by the loop: an ELEM out
 *    has the domain's element count and the domain's flat index, a ROW out
 *    the row count and the row's flat index (its shape may differ by a
 *    reshape). So one loop nest stores every out exactly once.
 * Returns NULL only if out of memory. */
FusePlan *fuse_plan(const IrGraph *g, const FuseOptions *o);
void fuse_plan_free(FusePlan *p);
/* Number of groups that need a kernel or library call (not FUSE_LEAF). */
int fuse_kernel_count(const FusePlan *p);
/* One line per refused edge: "%12 -> %15 (softmax): why", the op being
 * the producer's. */
void fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out);
/* Kahn's algorithm over items 0..n-1 with successors succ[first[i] ..
 * first[i+1]) and in-degrees indeg[] (consumed): writes the items to
 * order[] (leaving out those with skip[i], which must have no edges; skip
 * may be NULL), ready items taken smallest key[] first. Returns how many
 * were ordered (fewer than the items not skipped means a cycle), -1 if out
 * of memory. */
int fuse_topo_order(int n, const int *first, const int *succ, int *indeg, const int *key, const bool *skip,
                    int *order);
/* The graph in Graphviz with one cluster per group. */
void fuse_print_dot(const IrGraph *g, const FusePlan *p, FILE *out);

#endif
