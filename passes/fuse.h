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

typedef struct {
  int ngroup;
  FuseGroup *group;  /* in a valid execution order (topological over groups) */
  int *group_of;     /* group index of every node of the graph */
  int nrefused;      /* refused producer->consumer edges, for --explain-fusion */
  struct {
    int producer, consumer;
    char why[160];
  } *refused;
} FusePlan;

typedef struct {
  bool enabled;      /* false (-fno-fuse): every node is its own group */
} FuseOptions;

/* Partitions g's nodes. Deterministic: ties are broken by node id. */
FusePlan *fuse_plan(const IrGraph *g, const FuseOptions *o);
void fuse_plan_free(FusePlan *p);
/* Number of groups that need a kernel or library call (not FUSE_LEAF). */
int fuse_kernel_count(const FusePlan *p);
/* One line per refused edge: "%12 -> %15 (softmax): why". */
void fuse_explain(const IrGraph *g, const FusePlan *p, FILE *out);
/* The graph in Graphviz with one cluster per group. */
void fuse_print_dot(const IrGraph *g, const FusePlan *p, FILE *out);

#endif
