/* grad_rules.h — what a backward rule sees, and the IR helpers rules build
 * with (internal to passes/: autodiff*.c and grad_*.c).
 *
 * A rule gets the forward node and the gradient of its output, and hands a
 * gradient of the same shape to each input that wants one (ad_give). It
 * builds that gradient as IR with the helpers below, which give every node
 * the forward node's source location. Shapes are static, so a rule knows
 * every shape while it builds.
 *
 * Every helper returns the new node id, or -1 with g->error set. A helper
 * given a -1 operand builds nothing and returns -1 without touching
 * g->error, so a rule can chain helpers and check once at the end: the
 * message is the first failure's.
 */
#ifndef DAL_GRAD_RULES_H
#define DAL_GRAD_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

typedef struct AdState AdState; /* the driver's bookkeeping (autodiff.c) */

typedef struct {
  IrGraph *g;
  int id;        /* the forward node being differentiated */
  IrNode node;   /* a copy of it: g->node moves as the rule builds */
  int gy;        /* d loss / d node: f32, the node's shape */
  SrcLoc loc;    /* the node's location, given to every node built */
  AdState *st;
} AdRule;

/* ---- the driver's side (autodiff.c) ---- */

/* True if input k of the node wants a gradient: it is f32 and depends on a
 * node the gradients are taken with respect to. */
bool ad_wants(const AdRule *r, int k);
/* Adds 'grad' (f32, input k's shape) to input k's gradient, summing with
 * what other consumers gave. Returns 0 (also when input k wants none), or
 * -1 if grad is -1 or the sum cannot be built. */
int ad_give(AdRule *r, int k, int grad);
/* Drops nodes mark.. of g, which must all be unnamed (backward nodes). */
void ad_rollback(IrGraph *g, int mark);

/* ---- IR helpers (autodiff_emit.c) ---- */

/* Input k's node id and shape; the node's own shape is r->node.shape. */
int ad_in(const AdRule *r, int k);
IrShape ad_shape(const AdRule *r, int id);
/* Fails the rule with a message that starts with the op's name. */
int ad_fail(AdRule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int ad_build(AdRule *r, IrOp op, const int *in, int nin, const IrAttr *attr);
int ad_unary(AdRule *r, IrOp op, int x);
/* Elementwise binary op with numpy broadcasting (ir_binary). */
int ad_binary(AdRule *r, IrOp op, int a, int b);
/* a op (f32 scalar v), broadcast. */
int ad_binary_k(AdRule *r, IrOp op, int a, double v);
int ad_where(AdRule *r, int cond, int a, int b);
int ad_cast(AdRule *r, int x, IrDType t);
int ad_scalar(AdRule *r, double v);
int ad_zeros(AdRule *r, IrShape s);
/* SUM over the axes in mask 'axes'; x itself when the mask is empty. */
int ad_sum(AdRule *r, int x, uint32_t axes, bool keepdim);
/* Same, divided by the number of elements summed. */
int ad_mean(AdRule *r, int x, uint32_t axes, bool keepdim);
/* These return x itself when nothing changes. */
int ad_reshape(AdRule *r, int x, IrShape s);
int ad_broadcast(AdRule *r, int x, IrShape s);
int ad_permute(AdRule *r, int x, const int *perm);
/* x with its last two axes swapped. */
int ad_swap_last(AdRule *r, int x);
/* x [..., M, K] (or [..., K, M] if ta) @ y [..., K, N] (or [..., N, K] if tb). */
int ad_matmul(AdRule *r, int x, int y, int ta, int tb);
/* x [s...] in zeros of shape 'full', x's element 0 at position start[]. */
int ad_pad(AdRule *r, int x, IrShape full, const int64_t *start);
/* x[start[i] : start[i] + len.d[i]] on every axis. */
int ad_slice(AdRule *r, int x, const int64_t *start, IrShape len);

/* ---- the rules: grad_<backward> for each backward name in ops.def ---- */

typedef int (*AdRuleFn)(AdRule *r);

#define OP(name, text, arity, pattern, flags, rule, backward) int grad_##backward(AdRule *r);
#include "ir/ops.def"
#undef OP

#endif
