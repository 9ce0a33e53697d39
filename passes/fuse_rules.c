/* fuse_rules.c — which producer joins which kernel, and why not.
 *
 * Nodes are placed in decreasing id order (consumers first, as XLA's
 * instruction fusion walks), so when node p is placed every consumer of p
 * already has its group. p joins the group its consumers are in if every
 * rule below allows it; otherwise p founds a group of its own and each of
 * its consumer edges is recorded as refused, with the reason, for
 * --explain-fusion. Each rule is applied in fuse_try_join (or classify,
 * for the rules about one edge) under a comment naming it:
 *   no duplication   all of p's consumers in one group (fuse_place);
 *   siblings         ... unless p is a view or free and its consumers' loop
 *                    groups can merge (fuse_merge.c);
 *   opaque operands  an opaque op reads its operands from memory;
 *   no cycles        no path may leave a group and come back into it;
 *   recompute        what is read through an expanding edge (broadcast,
 *                    onehot, gather) is recomputed there, so only free
 *                    nodes, scalars and views may be (FUSE_AT_ANY);
 *   two-pass         ... except a reduction's row values in the group that
 *                    takes the reduction too (x - max(x) along rows): the
 *                    brief's "consumers at the reduction's input shape
 *                    start a new group" holds only with single_pass;
 *   outs             returned and updated values stored once per element;
 *   one reduction    per FUSE_LOOP group, with its prologue, its
 *                    reduced-shape epilogue, and row ops' epilogues;
 *   rows in order    no permute, slice or concat at ROW level;
 *   data-dependent   gather tables and indices are read from memory;
 *   opaque epilogue  an opaque op takes an elementwise epilogue at its
 *                    shape, and nothing else.
 * Each has a stable name (passes/fuse_rule_table.c, FuseRule in fuse.h)
 * that every refusal records (f->rule) for --explain-fusion: the
 * constraints no-duplication, opaque-operands, no-cycles, expansion (what
 * "recompute" above forbids), outs, one-reduction, rows-in-order,
 * data-dependent and epilogue-shape. What a join does is an optimisation
 * with a switch of its own (--fuse-rule=-NAME): join_rule names the one
 * switch that allows each join, so every switch off is -fno-fuse; the
 * two-pass and siblings switches also guard their own paths.
 *
 * Levels (FuseLevel in fuse.h) say where in its group's loop nest a member
 * is evaluated; a member's level follows from its consumers' levels and
 * the edges between them (classify). "ident" additionally says that a
 * member is evaluated at the loop's own flat index (reached from the root
 * through elementwise ops, reshapes and broadcasts that add no elements
 * only), which is what lets a kernel store it once per element.
 *
 * Two graph facts, fixed for every round (fuse_graph_facts):
 *   free    the node is computed from constants and loop indices only
 *           (CONST, IOTA, and elementwise or movement ops of them);
 *   rowred  the reduction R whose row value the node is: R itself (SUM,
 *           REDUCE_MAX, ARGMAX, CROSS_ENTROPY), or an elementwise op /
 *           reshape at R's output size computed from it (the latest such
 *           reduction if several feed it). A row value read back at R's
 *           input shape through a broadcast is what a two-pass kernel
 *           keeps per row instead of recomputing (x - max(x), e / sum(e),
 *           (x - mean) * rstd). */
#include <stdio.h>
#include <string.h>

#include "passes/fuse_internal.h"

static const IrNode *nd(const Fuser *f, int v) { return &f->g->node[v]; }
static int64_t numel(const Fuser *f, int v) { return ir_numel(&nd(f, v)->shape); }
static const char *opn(const Fuser *f, int v) { return ir_op_name(nd(f, v)->op); }

bool fuse_is_opaque(IrOp op) { return ir_op_pattern(op) == PAT_OPAQUE && !ir_op_is_bound(op); }


/* May v be recomputed wherever it is read (FUSE_AT_ANY)? Yes if it is free
 * (constants and indices cost nothing to recompute), or if it is a scalar
 * that is not a reduction: then it depends on no loop index, and LLVM's
 * loop-invariant code motion computes it once per kernel call. A view
 * (reshape, permute, slice, broadcast) is only index arithmetic on a load,
 * also free to repeat, as long as what it reads is in memory or free
 * itself (its producer is then held to the same test). */
static bool any_ok(const Fuser *f, int v) {
  IrOp op = nd(f, v)->op;
  if (f->freev[v] || ir_op_is_view(op)) return true;
  return numel(f, v) == 1 && !ir_op_is_reduction(op) && !fuse_is_opaque(op) && !ir_op_is_leaf(op);
}

/* any_ok without views: what a broadcast may expand before a two-pass
 * crossing is considered. */
static bool recompute_ok(const Fuser *f, int v) {
  IrOp op = nd(f, v)->op;
  if (f->freev[v]) return true;
  return numel(f, v) == 1 && !ir_op_is_reduction(op) && !fuse_is_opaque(op) && !ir_op_is_leaf(op);
}

void fuse_graph_facts(Fuser *f) {
  for (int v = 0; v < f->n; v++) {
    const IrNode *x = nd(f, v);
    IrOp op = x->op;
    if (op == OP_CONST || op == OP_IOTA) f->freev[v] = true;
    else if (ir_op_is_leaf(op) || ir_op_is_reduction(op) || fuse_is_opaque(op) || x->nin == 0) f->freev[v] = false;
    else {
      bool all = true;
      for (int k = 0; k < x->nin; k++) all = all && f->freev[x->in[k]];
      f->freev[v] = all;
    }

    f->rowred[v] = -1;
    if (ir_op_is_reduction(op) && !ir_op_is_rowwise(op)) f->rowred[v] = v;
    else if (ir_op_pattern(op) == PAT_ELEMWISE || op == OP_RESHAPE || op == OP_BROADCAST) {
      for (int k = 0; k < x->nin; k++) {
        int u = x->in[k];
        if (numel(f, u) == numel(f, v) && f->rowred[u] > f->rowred[v]) f->rowred[v] = f->rowred[u];
      }
    }
  }
}

/* The axes reduction t folds, as a bit mask over its input's axes. */
static uint32_t reduced_axes(const IrNode *t, const IrShape *in) {
  switch (t->op) {
  case OP_SUM:
  case OP_REDUCE_MAX: return t->attr.axes;
  case OP_ARGMAX: return 1u << t->attr.axis;
  case OP_CROSS_ENTROPY: return 1u << (in->rank - 1); /* the logits' last axis */
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_SOFTMAX: case OP_LOG_SOFTMAX:
  case OP_RESHAPE: case OP_PERMUTE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_GATHER:
  case OP_GATHER_BACKWARD: case OP_ONEHOT: case OP_MATMUL: case OP_CONV2D: case OP_CONV_TRANSPOSE2D:
  case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM: case OP_LAYER_NORM: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break;
  }
  return 0; /* not a reduction: folds no axis */
}

/* Does BROADCAST / ONEHOT node c read a row value of reduction t back at
 * t's input index? c must have t's input shape and expand exactly t's
 * reduced axes: a broadcast from t's keepdim shape, or a onehot whose new
 * axis is t's one reduced axis (onehot(argmax(x, a), axis=a)). */
static bool crosses_rows_of(const Fuser *f, int c, int t) {
  const IrNode *C = nd(f, c), *T = nd(f, t);
  const IrShape *s = &nd(f, T->in[0])->shape;
  const IrShape *in = &nd(f, C->in[0])->shape;
  if (!ir_shape_eq(&C->shape, s)) return false;
  uint32_t ax = reduced_axes(T, s);
  IrShape want = *s;
  if (C->op == OP_BROADCAST) {
    for (int i = 0; i < s->rank; i++)
      if (ax >> i & 1u) want.d[i] = 1;
    return ir_shape_eq(in, &want);
  }
  if (ax != 1u << C->attr.axis) return false;
  want.rank = 0;
  for (int i = 0; i < s->rank; i++)
    if (i != C->attr.axis) want.d[want.rank++] = s->d[i];
  return ir_shape_eq(in, &want);
}

typedef enum {
  EDGE_AT,      /* the producer is read at level 'lvl' ('ident' as given) */
  EDGE_ANY,     /* only as a FUSE_AT_ANY member (else refused, reason in why) */
  EDGE_CROSS,   /* a row value read back at the input index of reduction 'target' */
  EDGE_OPERAND, /* an opaque op's operand (left to the cycle rule) */
  EDGE_REFUSE   /* refused, reason in why */
} EdgeKind;

typedef struct {
  EdgeKind kind;
  FuseLevel lvl;
  bool ident;
  int target;
} Edge;

static Edge refuse_edge(void) { return (Edge){EDGE_REFUSE, FUSE_AT_ELEM, false, -1}; }

/* A broadcast or onehot c that expands p: how p may be read through it. */
static Edge classify_cross(Fuser *f, int p, int c, const FuseGrowing *G, char *why, size_t size) {
  FuseLevel lc = f->lvl[c];
  /* Rule (recompute): constants, indices and scalars are free to recompute. */
  if (recompute_ok(f, p)) return (Edge){EDGE_ANY, FUSE_AT_ANY, false, -1};
  /* what a refusal below returns: a view may still be re-read (ANY) */
  Edge fail = ir_op_is_view(nd(f, p)->op) ? (Edge){EDGE_ANY, FUSE_AT_ANY, false, -1} : refuse_edge();
  if (f->ban[c]) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size, "%s", f->ban[c]);
    return fail;
  }
  if (lc != FUSE_AT_ELEM || !f->ident[c]) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size, "%%%d (%s) expands it at another index than the kernel's loop: it would be recomputed for every element",
             c, opn(f, c));
    return fail;
  }
  /* Rule (two-pass): a reduction's result read back at the reduction's input
   * shape (e.g. x - max(x) along rows) joins only the group that also takes
   * the reduction, which then keeps it per row; a second reduction's row
   * values cannot (one reduction per kernel). Failing that, a view may
   * still be re-read (FUSE_AT_ANY), its producer then stored. */
  int t = G->red >= 0 ? G->red : G->pending >= 0 ? G->pending : f->rowred[p];
  if (t < 0) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size,
             "%%%d (%s) would recompute it for every element it expands to (realize before expand: only "
             "constants, scalars and a reduction's row values are read back)",
             c, opn(f, c));
    return fail;
  }
  /* Switch (two-pass). */
  if (!fuse_rule_on(&f->opt, FUSE_RULE_TWO_PASS)) {
    f->rule = FUSE_RULE_TWO_PASS;
    snprintf(why, size, "a row value of %%%d (%s) read back at its input shape needs a two-pass kernel, and those are off",
             t, opn(f, t));
    return fail;
  }
  if (f->rowred[p] >= 0 && f->rowred[p] != t) {
    f->rule = FUSE_RULE_ONE_REDUCTION;
    snprintf(why, size, "a row value of %%%d (%s), but this kernel's rows are those of %%%d (%s): one reduction per kernel",
             f->rowred[p], opn(f, f->rowred[p]), t, opn(f, t));
    return fail;
  }
  if (ir_op_is_rowwise(nd(f, t)->op)) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size, "the rows of %%%d (%s) stay inside it: %%%d (%s) would recompute this for every element", t,
             opn(f, t), c, opn(f, c));
    return fail;
  }
  if (!crosses_rows_of(f, c, t)) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size, "%%%d (%s) does not expand exactly the reduced axes of %%%d (%s)", c, opn(f, c), t, opn(f, t));
    return fail;
  }
  return (Edge){EDGE_CROSS, FUSE_AT_ROW, true, t};
}

/* How p is read by consumer u.node, a member of G. */
static Edge classify(Fuser *f, int p, FuseUse u, const FuseGrowing *G, char *why, size_t size) {
  int c = u.node;
  const IrNode *C = nd(f, c);
  Edge e = {EDGE_AT, f->lvl[c], f->ident[c], -1};
  if (e.lvl == FUSE_AT_ANY) {
    f->rule = FUSE_RULE_EXPANSION;
    snprintf(why, size, "%%%d (%s) is re-read wherever it is needed, so this must be in memory (it is not a constant, a scalar or a view)",
             c, opn(f, c));
    return (Edge){EDGE_ANY, FUSE_AT_ANY, false, -1};
  }
  if (fuse_is_opaque(C->op)) return (Edge){EDGE_OPERAND, FUSE_AT_ELEM, false, -1};
  switch (C->op) {
  case OP_RESHAPE: return e; /* the flat index is unchanged */
  case OP_BROADCAST:
    if (numel(f, p) == numel(f, c)) return e; /* adds size-1 axes only */
    return classify_cross(f, p, c, G, why, size);
  case OP_ONEHOT:
    if (C->attr.depth == 1) return e;
    return classify_cross(f, p, c, G, why, size);
  case OP_PERMUTE:
  case OP_SLICE:
  case OP_CONCAT:
    /* Rule (rows in order): a row value is indexed by its row, so nothing
     * at ROW may be permuted, sliced or concatenated. */
    if (e.lvl == FUSE_AT_ROW) {
      f->rule = FUSE_RULE_ROWS_IN_ORDER;
      snprintf(why, size, "%%%d (%s) would reorder the rows of %%%d (%s)", c, opn(f, c), G->red, opn(f, G->red));
      return refuse_edge();
    }
    e.ident = false;
    return e;
  case OP_GATHER:
    /* Rule (data-dependent reads): a gather reads table rows at positions
     * known only at run time, and each index once per element of its row. */
    if (u.arg == 0) {
      f->rule = FUSE_RULE_DATA_DEPENDENT;
      snprintf(why, size, "%%%d (gather) reads rows of its table at data-dependent positions: the table must be in memory", c);
      return (Edge){EDGE_ANY, FUSE_AT_ANY, false, -1};
    }
    if (numel(f, p) != numel(f, c)) {
      f->rule = FUSE_RULE_DATA_DEPENDENT;
      snprintf(why, size, "%%%d (gather) reads each index once per element of its row", c);
      return (Edge){EDGE_ANY, FUSE_AT_ANY, false, -1};
    }
    if (e.lvl == FUSE_AT_ROW) {
      f->rule = FUSE_RULE_ROWS_IN_ORDER;
      snprintf(why, size, "%%%d (gather) at the rows of %%%d would reorder them", c, G->red);
      return refuse_edge();
    }
    e.ident = false;
    return e;
  case OP_SUM:
  case OP_REDUCE_MAX:
  case OP_ARGMAX: return (Edge){EDGE_AT, FUSE_AT_ELEM, true, -1}; /* the prologue, at the input index */
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: e.lvl = FUSE_AT_ELEM; return e;
  case OP_CROSS_ENTROPY:
    /* logits at the input index, the target once per row */
    return (Edge){EDGE_AT, u.arg == 0 ? FUSE_AT_ELEM : FUSE_AT_ROW, true, -1};
  case OP_INPUT: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_IOTA: case OP_GUMBEL: case OP_NEG:
  case OP_ABS: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_TANH: case OP_SIGMOID:
  case OP_RELU: case OP_GELU: case OP_SILU: case OP_CAST: case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAX: case OP_MIN: case OP_POW: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_STRAIGHT_THROUGH: case OP_GATHER_BACKWARD: case OP_MATMUL:
  case OP_CONV2D: case OP_CONV_TRANSPOSE2D: case OP_CONV2D_BACKWARD_WEIGHT: case OP_GROUP_NORM:
  case OP_LAYER_NORM: case OP_ATTENTION: case OP_ATTENTION_BACKWARD: case OP_COUNT: break; /* elementwise (opaque ops returned above; leaves consume nothing) */
  }
  return e; /* the consumer's own index */
}

/* Rule (no cycles): a kernel reads its inputs from memory before it runs,
 * so no path may leave a group and come back into it. An opaque member
 * reads its operands from memory too (a library call), so the edge into it
 * counts as leaving. Searches forward from the seeds over (node, has-left)
 * states; nodes above the group's last member cannot lead back into it.
 * For a producer joining (seed p): under the no-duplication rule a path
 * can leave only through an out or into an opaque member's operand, so in
 * practice this catches a producer of an opaque op that also feeds its
 * epilogue (a diamond). For a sibling merge (seeds: all members) it
 * catches one of the merged kernels reading another's result through a
 * third kernel. */
int fuse_find_cycle(Fuser *f, const int *seed, int nseed, int gi, int extra, int *from) {
  int lim = f->gs[gi].last, top = 0;
  f->stamp++;
  for (int i = 0; i < nseed; i++) {
    f->seen[0][seed[i]] = f->stamp;
    f->stack[top++] = seed[i] * 2;
  }
  while (top > 0) {
    int s = f->stack[--top], v = s / 2;
    bool left = s & 1, vin = v == extra || f->grp[v] == gi;
    for (int k = f->use_off[v]; k < f->use_off[v + 1]; k++) {
      int c = f->use[k].node;
      if (c > lim) continue;
      bool cin = f->grp[c] == gi;
      bool l = left || !vin || !cin || fuse_is_opaque(nd(f, c)->op);
      if (l && cin) {
        *from = v;
        return c;
      }
      if (f->seen[l][c] == f->stamp) continue;
      f->seen[l][c] = f->stamp;
      f->stack[top++] = c * 2 + l;
    }
  }
  return -1;
}

/* The first member of G at ELEM that an opaque epilogue may not hold. */
static int first_non_epilogue(const Fuser *f, const FuseGrowing *G) {
  for (int i = 0; i < G->nmem; i++) {
    int m = G->mem[i];
    if (f->lvl[m] == FUSE_AT_ELEM && !ir_op_is_epilogue(nd(f, m)->op)) return m;
  }
  return G->last;
}

/* Which switch allows p to join G at level lv (target: the reduction
 * whose row values p is read back as, or -1). Exactly one per join, so
 * with every fusion switch off nothing joins (the -fno-fuse plan):
 *   siblings         p is the shared node of a sibling merge (fuse_merge.c);
 *   recompute        p is evaluated wherever it is read (FUSE_AT_ANY);
 *   two-pass         p is read back through a crossing broadcast, or is
 *                    the reduction a two-pass group was waiting for;
 *   epilogue         p is an opaque op taking its consumers' loop;
 *   reduce-epilogue  p is a reduction or row op taking its consumers' loop;
 *   reduce-prologue  p is evaluated inside G's reduction's row loop;
 *   elementwise      anything else: vertical loop fusion at one index. */
static FuseRule join_rule(const Fuser *f, int p, const FuseGrowing *G, FuseLevel lv, int target) {
  IrOp op = nd(f, p)->op;
  if (f->merging) return FUSE_RULE_SIBLINGS;
  if (lv == FUSE_AT_ANY) return FUSE_RULE_RECOMPUTE;
  if (target >= 0 || G->pending == p) return FUSE_RULE_TWO_PASS;
  if (fuse_is_opaque(op)) return FUSE_RULE_EPILOGUE;
  if (ir_op_is_reduction(op)) return FUSE_RULE_REDUCE_EPILOGUE;
  if (G->red >= 0 && lv == FUSE_AT_ELEM) return FUSE_RULE_REDUCE_PROLOGUE;
  return FUSE_RULE_ELEMENTWISE;
}

/* Is q read by a member of group gi (so counted in its nin already)? The
 * mark answers yes at once; else q's first consumers are looked at (a
 * node read by very many is then taken as new: nin stays an upper bound). */
static bool read_by(const Fuser *f, int q, int gi) {
  if (f->inmark[q] == gi + 1) return true;
  int b = f->use_off[q], e = f->use_off[q + 1];
  if (e - b > 4 * FUSE_MAX_INPUTS) e = b + 4 * FUSE_MAX_INPUTS;
  for (int k = b; k < e; k++)
    if (f->grp[f->use[k].node] == gi) return true;
  return false;
}

/* Tries to put p into group gi (every consumer of p is in it). On refusal
 * writes why and returns false. Also used on a merged group (fuse_merge.c). */
bool fuse_try_join(Fuser *f, int p, int gi, char *why, size_t size) {
  FuseGrowing *G = &f->gs[gi];
  IrOp op = nd(f, p)->op;
  FuseLevel lv = FUSE_AT_ELEM;
  bool id = true, mixed = false, need_any = false;
  int nlv = 0, target = -1;
  char anywhy[160] = "";
  FuseRule anyrule = FUSE_RULE_EXPANSION;

  /* The level every consumer edge implies. */
  for (int k = f->use_off[p]; k < f->use_off[p + 1]; k++) {
    Edge e = classify(f, p, f->use[k], G, why, size);
    if (e.kind == EDGE_REFUSE) return false;
    if (e.kind == EDGE_OPERAND) continue;
    if (e.kind == EDGE_ANY) {
      if (!need_any) snprintf(anywhy, sizeof anywhy, "%s", why), anyrule = f->rule;
      need_any = true;
      continue;
    }
    if (e.kind == EDGE_CROSS) target = e.target;
    if (nlv++ == 0) lv = e.lvl, id = e.ident;
    else {
      mixed = mixed || e.lvl != lv;
      id = id && e.ident;
    }
  }

  /* Rule (opaque operands): an opaque op reads its operands from memory. */
  if (nlv == 0 && !need_any) {
    int m = f->use[f->use_off[p]].node;
    f->rule = FUSE_RULE_OPAQUE_OPERANDS;
    snprintf(why, size, "%%%d (%s) reads its operands from memory (a library call or its own kernel)", m, opn(f, m));
    return false;
  }
  int from, at = fuse_find_cycle(f, &p, 1, gi, p, &from);
  if (at >= 0) {
    f->rule = FUSE_RULE_NO_CYCLES;
    if (fuse_is_opaque(nd(f, at)->op) && (from == p || f->grp[from] == gi))
      snprintf(why, size, "fusing would create a cycle: %%%d (%s) reads its operand %%%d from memory before this kernel could compute it",
               at, opn(f, at), from);
    else
      snprintf(why, size, "fusing would create a cycle: a path from %%%d leaves this kernel at %%%d and comes back at %%%d", p,
               from, at);
    return false;
  }

  /* Rule (recompute): read through an expanding edge, or at two levels. */
  if (need_any || mixed) {
    if (!any_ok(f, p)) {
      f->rule = need_any ? anyrule : FUSE_RULE_EXPANSION;
      if (need_any) snprintf(why, size, "%s", anywhy);
      else snprintf(why, size, "read both per element and per row of this kernel, it would be recomputed");
      return false;
    }
    lv = FUSE_AT_ANY, id = false;
  }

  /* Rule (outs): returned and updated values are stored, so they must be
   * computed exactly once per element of the loop. */
  if (f->must_out[p] && (lv == FUSE_AT_ANY || !id)) {
    f->rule = FUSE_RULE_OUTS;
    snprintf(why, size, "a returned or updated value must be stored once per element, but this kernel would %s",
             lv == FUSE_AT_ANY ? "recompute it at every use" : "compute it at another index than its loop's");
    return false;
  }

  /* Rule (opaque epilogue): after an opaque op only an elementwise epilogue. */
  if (G->kind == FUSE_OPAQUE) {
    if (ir_op_is_reduction(op) || fuse_is_opaque(op) || (lv == FUSE_AT_ELEM && !ir_op_is_epilogue(op))) {
      f->rule = FUSE_RULE_EPILOGUE_SHAPE;
      snprintf(why, size, "the epilogue of %%%d (%s) can only be elementwise", G->opq, opn(f, G->opq));
      return false;
    }
  }

  if (ir_op_is_reduction(op)) {
    /* Rule (one reduction): at most one reduction per FUSE_LOOP group. */
    if (G->red >= 0) {
      f->rule = FUSE_RULE_ONE_REDUCTION;
      snprintf(why, size, "one reduction per kernel: %%%d (%s) reduces here already", G->red, opn(f, G->red));
      return false;
    }
    if (G->pending >= 0 && G->pending != p) {
      f->rule = FUSE_RULE_ONE_REDUCTION;
      snprintf(why, size, "one reduction per kernel: this kernel's rows are those of %%%d (%s)", G->pending,
               opn(f, G->pending));
      return false;
    }
    if (lv == FUSE_AT_ANY) {
      f->rule = FUSE_RULE_EXPANSION;
      snprintf(why, size, "a reduction read through a broadcast would be recomputed for every element");
      return false;
    }
    if (!id) {
      f->rule = FUSE_RULE_ROWS_IN_ORDER;
      snprintf(why, size, "read through a permute, slice or concat, its rows would not be the kernel's");
      return false;
    }
    /* Rule (row ops): softmax and log_softmax absorb their prologue and an
     * epilogue at their own (the input's) shape. */
    if (ir_op_is_rowwise(op) && lv != FUSE_AT_ELEM) {
      f->rule = FUSE_RULE_ONE_REDUCTION;
      snprintf(why, size, "its rows are internal, it cannot be read per row of another reduction");
      return false;
    }
    /* Rule (reduced-shape epilogue): a reduction read elementwise becomes
     * the root and what was the loop becomes its per-row epilogue, which
     * must then be indexed by the rows. */
    if (!ir_op_is_rowwise(op) && lv == FUSE_AT_ELEM && G->nshuffle > 0) {
      f->rule = FUSE_RULE_ROWS_IN_ORDER;
      snprintf(why, size, "its epilogue here reads elements out of order (through a permute, slice or concat)");
      return false;
    }
    if (!ir_op_is_rowwise(op) && lv == FUSE_AT_ROW && (G->pending >= 0 ? G->pending : target) != p) {
      f->rule = FUSE_RULE_ONE_REDUCTION;
      snprintf(why, size, "read per row of a kernel whose rows are another reduction's");
      return false;
    }
  }

  /* Rule (opaque epilogue): an opaque op (matmul, conv, norms, gumbel, ...)
   * takes the kernel over as its epilogue if that is elementwise at its
   * output's shape and reads its result at its own index; its having no
   * other consumer follows from no duplication. */
  if (fuse_is_opaque(op)) {
    if (G->red >= 0 || G->pending >= 0) {
      int r = G->red >= 0 ? G->red : G->pending;
      f->rule = FUSE_RULE_EPILOGUE_SHAPE;
      snprintf(why, size, "%s takes only an elementwise epilogue, and this kernel reduces at %%%d (%s)", opn(f, p), r,
               opn(f, r));
      return false;
    }
    if (lv != FUSE_AT_ELEM || !id) {
      f->rule = FUSE_RULE_EPILOGUE_SHAPE;
      snprintf(why, size, "its epilogue here reads it at another index than its own");
      return false;
    }
    if (G->nnonepi > 0) {
      int m = first_non_epilogue(f, G);
      f->rule = FUSE_RULE_EPILOGUE_SHAPE;
      snprintf(why, size, "%s takes only an elementwise epilogue at its output shape, and this kernel has %%%d (%s)",
               opn(f, p), m, opn(f, m));
      return false;
    }
  }

  /* Rule (kernel inputs): joining, p stops being an input of the group and
   * its operands become ones; past FUSE_MAX_INPUTS the kernel would be
   * slow to compile. A group made by a sibling merge is not counted
   * (nin -1, fuse_merge.c). */
  const IrNode *pn = nd(f, p);
  int grown = G->nin - 1; /* every consumer of p is a member: p was an input */
  for (int k = 0; k < pn->nin; k++) {
    int q = pn->in[k];
    bool seen = read_by(f, q, gi);
    for (int j = 0; j < k && !seen; j++) seen = pn->in[j] == q;
    grown += !seen;
  }
  if (G->nin >= 0 && grown > FUSE_MAX_INPUTS && grown > G->nin) {
    f->rule = FUSE_RULE_KERNEL_INPUTS;
    snprintf(why, size, "the kernel would read %d buffers, more than %d", grown, FUSE_MAX_INPUTS);
    return false;
  }

  /* The switch that allows this join (FuseRule, fuse.h): off, it refuses. */
  FuseRule sw = join_rule(f, p, G, lv, target);
  if (!fuse_rule_on(&f->opt, sw)) {
    f->rule = sw;
    snprintf(why, size, "rule %s is switched off (--fuse-rule=-%s)", fuse_rule_info[sw].name, fuse_rule_info[sw].name);
    return false;
  }

  /* Join. */
  f->grp[p] = gi;
  f->joined_by[p] = (signed char)sw;
  f->lvl[p] = lv;
  f->ident[p] = id;
  fuse_add_member(f, gi, p);
  G = &f->gs[gi];
  if (G->nin >= 0) G->nin = grown;
  for (int k = 0; k < pn->nin; k++) f->inmark[pn->in[k]] = gi + 1;
  if (lv == FUSE_AT_ROW) G->nrow++;
  if (lv == FUSE_AT_ELEM && !id) G->nshuffle++;
  if (lv == FUSE_AT_ELEM && !ir_op_is_epilogue(op)) G->nnonepi++;
  if (target >= 0) {
    for (int k = f->use_off[p]; k < f->use_off[p + 1]; k++) {
      int c = f->use[k].node;
      IrOp cop = nd(f, c)->op;
      if ((cop == OP_BROADCAST || cop == OP_ONEHOT) && numel(f, c) != numel(f, p)) fuse_add_cross(f, gi, c);
    }
    G = &f->gs[gi];
    if (G->red < 0) G->pending = target;
  }
  if (ir_op_is_reduction(op)) {
    G->red = p;
    if (!ir_op_is_rowwise(op) && lv == FUSE_AT_ELEM) {
      /* re-base: the members so far were the reduced-shape epilogue */
      for (int i = 0; i < G->nmem; i++) {
        int m = G->mem[i];
        if (f->lvl[m] == FUSE_AT_ELEM) f->lvl[m] = FUSE_AT_ROW, G->nrow++;
      }
    }
    if (G->pending == p) G->pending = -1;
  }
  if (fuse_is_opaque(op)) {
    G->kind = FUSE_OPAQUE;
    G->opq = p;
  }
  return true;
}

int fuse_new_group(Fuser *f, int v) {
  IrOp op = nd(f, v)->op;
  int gi = fuse_add_group(f, v);
  if (gi < 0) return -1;
  FuseGrowing *G = &f->gs[gi];
  G->kind = ir_op_is_leaf(op) ? FUSE_LEAF : fuse_is_opaque(op) ? FUSE_OPAQUE : FUSE_LOOP;
  G->red = ir_op_is_reduction(op) ? v : -1;
  G->opq = G->kind == FUSE_OPAQUE ? v : -1;
  G->pending = -1;
  f->grp[v] = gi;
  f->ident[v] = true;
  /* a reduction's result is per row of its input; anything else defines
   * the loop at its own shape */
  f->lvl[v] = ir_op_is_reduction(op) && !ir_op_is_rowwise(op) ? FUSE_AT_ROW : FUSE_AT_ELEM;
  G->nrow = f->lvl[v] == FUSE_AT_ROW;
  G->nshuffle = 0;
  G->nnonepi = f->lvl[v] == FUSE_AT_ELEM && !ir_op_is_epilogue(op);
  const IrNode *vn = nd(f, v);
  for (int k = 0; k < vn->nin; k++)
    if (f->inmark[vn->in[k]] != gi + 1) f->inmark[vn->in[k]] = gi + 1, G->nin++;
  fuse_add_member(f, gi, v);
  return gi;
}

void fuse_place(Fuser *f, int p) {
  if (f->oom) return;
  IrOp op = nd(f, p)->op;
  int b = f->use_off[p], e = f->use_off[p + 1];
  /* Leaves: INPUT, PARAM and STATE are buffers (FUSE_LEAF), never members. */
  if (ir_op_is_bound(op) || b == e || !f->opt.enabled) {
    fuse_new_group(f, p);
    return;
  }
  char why[160];
  int gi = f->grp[f->use[b].node];
  /* Rule (no duplication): p joins a group only if all its consumers are in
   * it; a value needed by two kernels is computed once and stored. */
  int other = -1;
  for (int k = b + 1; k < e && other < 0; k++)
    if (f->grp[f->use[k].node] != gi) other = f->use[k].node;
  bool ok;
  bool cheap = ir_op_is_view(op) || (f->freev[p] && op != OP_CONST);
  if (other >= 0 && cheap && !fuse_rule_on(&f->opt, FUSE_RULE_SIBLINGS)) {
    f->rule = FUSE_RULE_SIBLINGS;
    snprintf(why, sizeof why, "its consumers are in different kernels, and rule siblings is switched off (--fuse-rule=-siblings)");
    ok = false;
  } else if (other >= 0 && cheap) {
    /* Rule (siblings): a view or free node read by several loop kernels
     * over one domain merges them (fuse_merge.c). A shared CONST instead
     * stays a leaf: a constant buffer costs no kernel. */
    ok = fuse_merge_siblings(f, p, why, sizeof why);
  } else if (other >= 0) {
    int c0 = f->use[b].node;
    f->rule = FUSE_RULE_NO_DUPLICATION;
    snprintf(why, sizeof why, "its consumers are in different kernels (%%%d with %%%d, %%%d with %%%d): fusing would duplicate it",
             c0, f->gs[f->grp[c0]].last, other, f->gs[f->grp[other]].last);
    ok = false;
  } else {
    /* A CONST (scalar or not) joins like any free node: inlined at its
     * readers' index. If its readers are in several kernels it stays a
     * leaf buffer. */
    ok = fuse_try_join(f, p, gi, why, sizeof why);
  }
  if (ok) return;
  for (int k = b; k < e; k++)
    if (k == b || f->use[k].node != f->use[k - 1].node) fuse_refuse(f, p, f->use[k].node, why, f->rule);
  fuse_new_group(f, p);
}
