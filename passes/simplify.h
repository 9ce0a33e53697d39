/* simplify.h — passes that keep graphs (above all gradient graphs) lean, and
 * node-count statistics around a pipeline.
 *
 * Every pass here rewrites g in place by rebuilding it node by node (ids stay
 * topological), keeps the input and param lists in their order, the outputs
 * with their names and the update list, and leaves any node it stops using
 * in place for `dce` to drop. Each returns 0, or -1 with g->error set and g
 * unchanged. Each is idempotent: a second run changes nothing. They are
 * registered in pipeline.c as "cse", "fold" and "algebra".
 */
#ifndef DAL_PASSES_SIMPLIFY_H
#define DAL_PASSES_SIMPLIFY_H

#include <stdio.h>

#include "ir/ir.h"

/* cse.c: merges nodes with the same op, attributes and inputs (never
 * INPUT/PARAM/STATE; GUMBEL only with the same salt). */
int pass_cse(IrGraph *g);

/* fold.c: evaluates at compile time every op whose inputs are all CONST and
 * whose result is the same value everywhere, replacing it with a CONST of
 * the result's shape (elementwise ops, reshape, broadcast, permute, slice,
 * concat of equal values, sum, reduce_max, argmax, iota along a length-1
 * axis). Results match the reference executor bit for bit. Nothing
 * non-uniform is ever materialised, and an op that would fail at run time
 * (integer division by zero) is left to fail there. */
int pass_fold(IrGraph *g);

/* algebra.c: algebraic identities (x*1, x+0, x-0, x/1, neg(neg x), permute
 * of permute, reshape chains, identity reshape/broadcast/permute/slice/cast,
 * broadcast of broadcast, sum/max over no axes, stop_gradient of constants,
 * where with a constant condition, x*0 for x known to be finite...). The
 * file's header lists every rule and its exact conditions. */
int pass_algebra(IrGraph *g);

/* stats.c: prints one line describing g to 'out':
 *   "<label>  N nodes (+-D)  P params  S state  | op count, op count, ..."
 * with ops in ops.def order and only those present; the (+-D) part, the
 * change from 'before' nodes, is shown when before >= 0. */
void pass_print_stats(const IrGraph *g, const char *label, int before, FILE *out);

/* pass_run_pipeline, printing a stats line for the graph as given and
 * after each pass ("after <pass>"). A NULL 'out' prints nothing. Returns
 * what pass_run_pipeline would. */
int pass_run_pipeline_stats(IrGraph *g, const char *names, FILE *out);

#endif
