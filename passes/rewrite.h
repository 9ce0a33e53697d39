/* rewrite.h — the rewrite-then-rebuild driver shared by the simplification
 * passes (cse.c, fold.c, algebra.c) and offered to pass plugins
 * (passes/plugin.h; examples/passes/exp_log_softmax.c uses it).
 *
 * pass_rewrite copies g node by node, in id order, into a new graph. For each
 * node it hands the pass a copy whose inputs already name nodes of the new
 * graph; the pass emits whatever replaces it (the node itself, a simpler
 * node, or an existing node of the new graph) and returns that id. Because
 * nodes are only ever built after their inputs, ids stay topological. A node
 * a rewrite stops using is still copied (it is dead, and left for `dce`).
 *
 * Leaves (INPUT, PARAM, STATE) must be copied one to one; the driver keeps
 * the input and param lists in their original order, maps the outputs (with
 * their names) and the update list, and swaps the new graph into g.
 */
#ifndef DAL_PASSES_REWRITE_H
#define DAL_PASSES_REWRITE_H

#include <stdbool.h>

#include "ir/ir.h"

typedef struct {
  const IrGraph *src; /* the graph being rewritten (read only during the walk) */
  IrGraph *dst;       /* the graph being built */
  int *map;           /* (src->n): the dst id standing for each src node done so far */
} PassRewrite;

/* Called once per src node in id order. 'n' is the node with its inputs
 * mapped to dst ids. Returns the dst id that stands for it, or -1 with
 * rw->dst->error set. */
typedef int (*PassRewriteFn)(PassRewrite *rw, const IrNode *n, void *ctx);

/* Rewrites g in place with fn. On failure returns -1 with g->error (prefixed
 * with 'pass') and leaves g exactly as it was. */
int pass_rewrite(IrGraph *g, const char *pass, PassRewriteFn fn, void *ctx);

/* As pass_rewrite, but g keeps its contents: returns the rewritten graph
 * (free with ir_graph_free), or NULL with g->error. For passes that weigh
 * a rewrite before taking it (remat.c). */
IrGraph *pass_rewritten(IrGraph *g, const char *pass, PassRewriteFn fn, void *ctx);

/* Emits a plain copy of n (name included) into rw->dst; returns its id. */
int pass_rw_copy(PassRewrite *rw, const IrNode *n);

/* The node 'id' of the new graph. */
static inline const IrNode *pass_rw_node(const PassRewrite *rw, int id) { return &rw->dst->node[id]; }

/* True if dst node 'id' holds the same value everywhere: a CONST, or a
 * RESHAPE / BROADCAST chain over one; *value gets the element value (as the
 * executor sees it: rounded to f32 for f32 nodes). */
bool pass_rw_splat(const PassRewrite *rw, int id, double *value);

#endif
