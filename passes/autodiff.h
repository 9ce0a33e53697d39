/* autodiff.h — reverse-mode automatic differentiation on the graph IR.
 *
 * The backward graph is appended to the forward one as ordinary IR nodes,
 * built with the IR builder by one rule per op (ops.def's backward column,
 * grad_<rule> in passes/grad_*.c), so every later pass, dump and executor
 * sees the gradient computation like any other code. Each backward node
 * carries the source location of the forward node it differentiates.
 *
 * Module prefix: ad_.
 */
#ifndef DAL_AUTODIFF_H
#define DAL_AUTODIFF_H

#include "ir/ir.h"

/* Appends to g the nodes computing d loss / d wrt[i] for i in 0..nwrt and
 * sets grad[i] to the node holding it (f32, wrt[i]'s shape).
 *
 * 'loss' is an f32 node with one element (normally rank 0). Each wrt[i] is
 * an f32 node, normally a PARAM or INPUT; a node the loss does not depend on
 * (through differentiable ops) gets a zero CONST of its shape. Gradients are
 * those of the forward graph as built: nodes with ids above 'loss' are not
 * looked at; through straight_through(hard, soft) the gradient goes to soft
 * only; ops whose backward rule is `none` (integer results, comparisons,
 * argmax, onehot, iota, gumbel, stop_gradient) pass no gradient.
 *
 * Returns 0, or -1 with g->error and g->error_loc set (e.g. differentiating
 * through an op whose rule is `missing`: the message names the op, the
 * location is the node's), in which case g is left exactly as it was and
 * grad[] is untouched. */
int ad_gradients(IrGraph *g, int loss, const int *wrt, int nwrt, int *grad);

/* The "grad" pass: for a training graph (g->train, output 0 the scalar
 * loss) appends the gradient of every trainable PARAM (in g->param order;
 * frozen ones, attr.frozen, are skipped;
 * STATE nodes are not trainable) and sets the outputs to [loss, gradient of
 * each param], the loss keeping its output name and each gradient named
 * "grad:" + the parameter's name (e.g. "grad:enc.conv_in.weight").
 * Returns 0, or -1 with g->error set (g unchanged). */
int ad_grad_pass(IrGraph *g);

#endif
