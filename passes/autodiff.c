/* autodiff.c — the reverse-mode driver: ad_gradients and the rule table.
 *
 * As ggml does, it first marks the nodes that need a gradient by
 * propagating forward from the wrt nodes (a node needs one if it is f32 and
 * an input of it does, unless its op's rule is `none`). Then it walks the
 * node ids downward from the loss (reverse topological order), seeding the
 * loss's gradient with 1 and, for each marked node that received a
 * gradient, calling its op's rule, which adds gradients to its inputs.
 * Gradients that meet at a fan-out are summed with ADD nodes. Only nodes
 * on a path from a wrt node to the loss are ever differentiated, so an op
 * whose rule is `missing` fails only if the gradient really flows through it.
 */
#include "passes/autodiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/grad_rules.h"

/* No gradient flows through the op: the driver never marks its result as
 * needing one, so it is never called with a gradient; passing none on is
 * still the right answer if it were. */
int grad_none(AdRule *r) {
  (void)r;
  return 0;
}

/* The gradient would have to flow through an op without a rule (the
 * backward ops themselves: no second-order gradients). */
int grad_missing(AdRule *r) {
  return ad_fail(r, "cannot differentiate through this op (node %%%d): it has no backward rule", r->id);
}

/* The rule of each op, generated from ops.def's backward column (one
 * entry per row by construction: a missing grad_<rule> fails to link). */
static const AdRuleFn rules[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) grad_##backward,
#include "ir/ops.def"
#undef OP
};

struct AdState {
  bool *need; /* (n0): the node's value depends on a wrt node through differentiable ops */
  int *acc;   /* (n0): the node's gradient so far, or -1 */
};

bool ad_wants(const AdRule *r, int k) { return r->st->need[r->node.in[k]]; }

int ad_give(AdRule *r, int k, int grad) {
  int in = r->node.in[k];
  if (grad < 0) return -1;
  if (!r->st->need[in]) return 0;
  IrShape want = r->g->node[in].shape, got = r->g->node[grad].shape;
  if (r->g->node[grad].dtype != IR_F32 || !ir_shape_eq(&want, &got)) {
    char a[160], b[160];
    /* A rule's bug, not the user's: say so plainly. */
    return ad_fail(r, "internal error: the backward rule gave input %d a gradient of shape %s, expected %s", k,
                   ir_shape_str(&got, a, sizeof a), ir_shape_str(&want, b, sizeof b));
  }
  int *acc = &r->st->acc[in];
  if (*acc < 0) {
    *acc = grad;
    return 0;
  }
  int sum = ad_build(r, OP_ADD, (int[]){*acc, grad}, 2, NULL);
  if (sum < 0) return -1;
  *acc = sum;
  return 0;
}

void ad_rollback(IrGraph *g, int mark) {
  for (int i = mark; i < g->n; i++) free(g->node[i].name);
  if (mark < g->n) g->n = mark;
}

static bool is_node(const IrGraph *g, int id) { return id >= 0 && id < g->n; }

/* Checks ad_gradients' arguments. */
static int check_args(IrGraph *g, int loss, const int *wrt, int nwrt, const int *grad) {
  if (!is_node(g, loss))
    return ir_graph_fail(g, (SrcLoc){0}, "gradients: the loss %%%d is not a node of this graph", loss);
  const IrNode *l = &g->node[loss];
  char s[160];
  if (l->dtype != IR_F32 || ir_numel(&l->shape) != 1)
    return ir_graph_fail(g, l->loc, "gradients: the loss (node %%%d) must be a single f32 value, got %s%s", loss,
                         ir_dtype_name(l->dtype), ir_shape_str(&l->shape, s, sizeof s));
  if (nwrt < 0 || (nwrt > 0 && (!wrt || !grad)))
    return ir_graph_fail(g, l->loc, "gradients: invalid list of %d nodes to differentiate with respect to", nwrt);
  for (int i = 0; i < nwrt; i++) {
    if (!is_node(g, wrt[i]))
      return ir_graph_fail(g, l->loc, "gradients: wrt[%d] = %%%d is not a node of this graph", i, wrt[i]);
    if (g->node[wrt[i]].dtype != IR_F32)
      return ir_graph_fail(g, g->node[wrt[i]].loc, "gradients: wrt[%d] = %%%d is %s; only f32 values have gradients", i,
                           wrt[i], ir_dtype_name(g->node[wrt[i]].dtype));
  }
  return 0;
}

/* Marks need[id] for ids 0..loss: wrt nodes, and f32 results of
 * differentiable ops with a marked input. */
static void mark_needs(const IrGraph *g, int loss, const int *wrt, int nwrt, bool *need) {
  for (int i = 0; i < nwrt; i++)
    if (wrt[i] <= loss) need[wrt[i]] = true;
  for (int id = 0; id <= loss; id++) {
    const IrNode *n = &g->node[id];
    if (need[id] || n->dtype != IR_F32 || rules[n->op] == grad_none) continue;
    for (int k = 0; k < n->nin; k++) need[id] = need[id] || need[n->in[k]];
  }
}

/* Walks the nodes from the loss down, running each rule; 0 or -1. */
static int backward(IrGraph *g, int loss, AdState *st) {
  st->acc[loss] = ir_const(g, IR_F32, g->node[loss].shape, 1.0, g->node[loss].loc);
  if (st->acc[loss] < 0) return -1;
  const IrCallSite *outer = g->calls;
  for (int id = loss; id >= 0; id--) {
    if (st->acc[id] < 0 || !st->need[id] || g->node[id].nin == 0) continue;
    AdRule r = {.g = g, .id = id, .node = g->node[id], .gy = st->acc[id], .loc = g->node[id].loc, .st = st};
    g->calls = r.node.calls; /* a gradient comes from where its op did */
    int rc = rules[r.node.op](&r);
    g->calls = outer;
    if (rc) return -1;
  }
  return 0;
}

int ad_gradients(IrGraph *g, int loss, const int *wrt, int nwrt, int *grad) {
  if (!g) return -1;
  if (check_args(g, loss, wrt, nwrt, grad)) return -1;
  int mark = g->n;
  AdState st = {calloc((size_t)mark, sizeof *st.need), malloc((size_t)mark * sizeof *st.acc)};
  int *out = malloc((size_t)(nwrt > 0 ? nwrt : 1) * sizeof *out);
  int rc = -1;
  if (!st.need || !st.acc || !out) {
    ir_graph_fail(g, g->node[loss].loc, "gradients: out of memory");
    goto done;
  }
  for (int i = 0; i < mark; i++) st.acc[i] = -1;
  mark_needs(g, loss, wrt, nwrt, st.need);
  if (st.need[loss] && backward(g, loss, &st)) goto done;
  for (int i = 0; i < nwrt; i++) {
    const IrNode *w = &g->node[wrt[i]];
    out[i] = wrt[i] <= loss && st.acc[wrt[i]] >= 0 ? st.acc[wrt[i]] : ir_const(g, IR_F32, w->shape, 0.0, w->loc);
    if (out[i] < 0) goto done;
  }
  if (nwrt > 0) memcpy(grad, out, (size_t)nwrt * sizeof *grad);
  rc = 0;
done:
  if (rc) ad_rollback(g, mark);
  free(st.need);
  free(st.acc);
  free(out);
  return rc;
}
