/* test_fuse.c — the fusion pass (passes/fuse.h).
 *
 * Every plan any test makes goes through check_plan, which recomputes what
 * fuse.h promises by brute force: each node in exactly one group, members
 * in increasing id, groups in topological order, `in` and `out` exactly
 * the sets the definitions give, group kinds (one reduction at most per
 * loop group, its root; one opaque op per opaque group, its root; leaves
 * alone), outs never FUSE_AT_ANY and of the loop's element count (the
 * domain's at ELEM, the reduction's output's at ROW), and every refused
 * edge a real edge between two groups.
 *
 * Then a test per rule, with the kernel counts the issue asks for (in
 * test_fuse_jit, the same file built with FUSE_TEST_RUN, each plan is also
 * compiled, run and compared with the reference executor through
 * tests/jit_check.h; test_fuse itself links no code generator): an
 * elementwise chain is one kernel; softmax and layer norm written by hand
 * drop to at most two (two-pass row groups); AdamW on one parameter is at
 * most two; matmul + bias + gelu is one opaque group; no duplication; the
 * diamond that would make a cycle is refused with the reason; a shared
 * broadcast merges sibling kernels unless that makes a cycle; 300 random
 * graphs keep the invariants. Last, the real models (models/gpt.dal and
 * models/dvae.dal, tiny) lowered through the frontend, forward and the
 * whole training step: the invariants hold, the kernel count is well below
 * the node count (both printed), planning twice gives the same plan, each
 * fusion switch off (--fuse-rule) keeps the invariants, and every switch
 * off is the -fno-fuse plan (tests/test_fuse_rules.c: each switch's own
 * effect). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/autodiff.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "tests/util.h"
#ifdef FUSE_TEST_RUN
#include "tests/jit_check.h"
#endif

#define LOC ((SrcLoc){"test_fuse.c", __LINE__, 1})
#define SH(r, ...) ((IrShape){.rank = (r), .d = {__VA_ARGS__}})
#define F IR_F32

static const FuseOptions fused = {.enabled = true};
static const FuseOptions unfused = {.enabled = false};
static const FuseOptions one_pass = {.enabled = true, .single_pass = true};

/* ---- the brute-force checker ---- */

static bool is_reduction(IrOp op) {
  return op == OP_SUM || op == OP_REDUCE_MAX || op == OP_ARGMAX || op == OP_SOFTMAX || op == OP_LOG_SOFTMAX ||
         op == OP_CROSS_ENTROPY;
}

static bool is_opaque(IrOp op) {
  return ir_op_pattern(op) == PAT_OPAQUE && op != OP_INPUT && op != OP_PARAM && op != OP_STATE;
}

static bool is_leaf(IrOp op) { return ir_op_is_leaf(op); }

static bool reads(const IrGraph *g, int v, int u) {
  for (int k = 0; k < g->node[v].nin; k++)
    if (g->node[v].in[k] == u) return true;
  return false;
}

static bool returned_or_updated(const IrGraph *g, int v) {
  for (int i = 0; i < g->noutput; i++)
    if (g->output[i] == v) return true;
  for (int i = 0; i < g->nupdate; i++)
    if (g->update_value[i] == v) return true;
  return false;
}

static void check_plan(const IrGraph *g, const FusePlan *p) {
  ck_assert_ptr_nonnull(p);
  int n = g->n;
  int *count = calloc((size_t)n + 1, sizeof *count);
  for (int k = 0; k < p->ngroup; k++) {
    const FuseGroup *gr = &p->group[k];
    ck_assert_int_ge(gr->n, 1);
    int nred = 0, nopq = 0, red = -1, opq = -1;
    bool root_member = false;
    for (int i = 0; i < gr->n; i++) {
      int v = gr->node[i];
      ck_assert(v >= 0 && v < n);
      if (i > 0) ck_assert_int_lt(gr->node[i - 1], v);
      ck_assert_int_eq(p->group_of[v], k);
      count[v]++;
      IrOp op = g->node[v].op;
      if (is_reduction(op)) nred++, red = v;
      if (is_opaque(op)) nopq++, opq = v;
      root_member = root_member || gr->root == v;
      ck_assert_msg(p->level[v] == FUSE_AT_ELEM || gr->kind != FUSE_LEAF, "leaf %%%d off ELEM", v);
    }
    ck_assert_msg(root_member, "group %d: root %%%d is not a member", k, gr->root);
    switch (gr->kind) {
    case FUSE_LEAF: ck_assert(gr->n == 1 && is_leaf(g->node[gr->node[0]].op)); break;
    case FUSE_LOOP:
      ck_assert_msg(nopq == 0, "group %d: opaque %%%d in a loop group", k, opq);
      ck_assert_msg(nred <= 1, "group %d: %d reductions", k, nred);
      ck_assert_int_eq(gr->root, nred ? red : gr->node[gr->n - 1]);
      for (int i = 0; i < gr->n && !nred; i++) ck_assert_int_ne(p->level[gr->node[i]], FUSE_AT_ROW);
      break;
    case FUSE_OPAQUE:
      ck_assert_int_eq(nopq, 1);
      ck_assert_int_eq(nred, 0);
      ck_assert_int_eq(gr->root, opq);
      for (int i = 0; i < gr->n; i++) ck_assert_int_ne(p->level[gr->node[i]], FUSE_AT_ROW);
      break;
    }
    /* out: exactly the members read outside the group, returned or updated */
    int no = 0;
    for (int i = 0; i < gr->n; i++) {
      int v = gr->node[i];
      bool esc = returned_or_updated(g, v);
      for (int w = v + 1; w < n && !esc; w++) esc = reads(g, w, v) && p->group_of[w] != k;
      if (!esc) continue;
      ck_assert_msg(no < gr->nout && gr->out[no] == v, "group %d: out[%d] should be %%%d", k, no, v);
      ck_assert_msg(p->level[v] != FUSE_AT_ANY, "group %d: out %%%d is FUSE_AT_ANY", k, v);
      no++;
    }
    ck_assert_int_eq(no, gr->nout);
    /* outs are indexed by the loop: the domain's element count at ELEM,
     * the reduction's output count at ROW */
    const IrNode *r = &g->node[gr->root];
    int64_t dom = ir_numel(&r->shape), rows = dom;
    if (gr->kind == FUSE_LOOP && nred && r->op != OP_SOFTMAX && r->op != OP_LOG_SOFTMAX)
      dom = ir_numel(&g->node[r->in[0]].shape);
    for (int i = 0; i < gr->nout && gr->kind != FUSE_LEAF; i++) {
      int v = gr->out[i];
      int64_t want = p->level[v] == FUSE_AT_ROW ? rows : dom;
      ck_assert_msg(ir_numel(&g->node[v].shape) == want, "group %d: out %%%d has %lld elements, the loop %lld", k, v,
                    (long long)ir_numel(&g->node[v].shape), (long long)want);
    }
    /* in: exactly the non-members the members read, increasing */
    int ni = 0;
    for (int u = 0; u < n; u++) {
      if (p->group_of[u] == k) continue;
      bool read = false;
      for (int i = 0; i < gr->n && !read; i++) read = reads(g, gr->node[i], u);
      if (!read) continue;
      ck_assert_msg(ni < gr->nin && gr->in[ni] == u, "group %d: in[%d] should be %%%d", k, ni, u);
      ni++;
    }
    ck_assert_int_eq(ni, gr->nin);
  }
  for (int v = 0; v < n; v++) ck_assert_msg(count[v] == 1, "%%%d is in %d groups", v, count[v]);
  /* topological order */
  for (int v = 0; v < n; v++)
    for (int k = 0; k < g->node[v].nin; k++) {
      int u = g->node[v].in[k], gu = p->group_of[u], gv = p->group_of[v];
      ck_assert_msg(gu <= gv, "%%%d (group %d) -> %%%d (group %d) goes backwards", u, gu, v, gv);
    }
  for (int i = 0; i < p->nrefused; i++) {
    int a = p->refused[i].producer, b = p->refused[i].consumer;
    ck_assert(a >= 0 && a < n && b >= 0 && b < n);
    ck_assert_msg(reads(g, b, a), "refused %%%d -> %%%d is not an edge", a, b);
    ck_assert_int_ne(p->group_of[a], p->group_of[b]);
    ck_assert(p->refused[i].why[0] != 0);
  }
  free(count);
}

static FusePlan *plan(const IrGraph *g, const FuseOptions *o) {
  FusePlan *p = fuse_plan(g, o);
  check_plan(g, p);
  return p;
}

static int kernels(const IrGraph *g, const FuseOptions *o) {
  FusePlan *p = plan(g, o);
  int k = fuse_kernel_count(p);
  fuse_plan_free(p);
  return k;
}

static bool same_group(const FusePlan *p, int a, int b) { return p->group_of[a] == p->group_of[b]; }

/* The refusal of edge a -> b, or NULL. */
static const char *refusal(const FusePlan *p, int a, int b) {
  for (int i = 0; i < p->nrefused; i++)
    if (p->refused[i].producer == a && p->refused[i].consumer == b) return p->refused[i].why;
  return NULL;
}

/* The plan (NULL: fuse_plan's, fusion on) compiled and run computes what
 * the reference executor computes, on random inputs and state (i32 inputs
 * are class indices below 8). */
#ifdef FUSE_TEST_RUN
static void agrees(IrGraph *g, const FusePlan *p) {
  JcCheck c = {.tol = 1e-5};
  jc_check_random(g, p, 8, &c);
}
#else
static void agrees(IrGraph *g, const FusePlan *p) { (void)g, (void)p; } /* test_fuse: plans only */
#endif

static int input(IrGraph *g, const char *name, IrShape s) { return ir_input(g, name, F, s, LOC); }
static int un(IrGraph *g, IrOp op, int x) { return ir_unary(g, op, x, LOC); }
static int bin(IrGraph *g, IrOp op, int a, int b) { return ir_binary(g, op, a, b, LOC); }
static int scalar(IrGraph *g, double v) { return ir_scalar(g, F, v, LOC); }
static int reduce(IrGraph *g, IrOp op, int x, uint32_t axes, bool keep) { return ir_reduce(g, op, x, axes, keep, LOC); }
static int softmax(IrGraph *g, IrOp op, int x, int axis) { return ir_build(g, op, &x, 1, &(IrAttr){.axis = axis}, LOC); }
static int matmul(IrGraph *g, int a, int b, bool tb) {
  return ir_build(g, OP_MATMUL, (int[]){a, b}, 2, &(IrAttr){.trans_b = tb}, LOC);
}
static void set_out(IrGraph *g, int v) { ir_set_outputs(g, &v, NULL, 1); }

static void built(const IrGraph *g, int v) { ck_assert_msg(v >= 0, "builder: %s", g->error); }

/* ---- elementwise ---- */

START_TEST(elementwise_chain_is_one_kernel) {
  IrGraph *g = ir_graph_new("chain");
  int x = input(g, "x", SH(2, 4, 8)), y = input(g, "y", SH(2, 4, 8));
  int a = un(g, OP_EXP, x);
  int b = bin(g, OP_MUL, a, y);
  int c = un(g, OP_TANH, b);
  int d = bin(g, OP_ADD, c, scalar(g, 1.0)); /* the builder broadcasts the constant */
  int e = un(g, OP_RELU, d);
  built(g, e);
  set_out(g, e);
  int before = kernels(g, &unfused);
  ck_assert_int_ge(before, 5);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 1);
  const FuseGroup *gr = &p->group[p->group_of[e]];
  ck_assert_int_eq(gr->kind, FUSE_LOOP);
  ck_assert_int_eq(gr->root, e);
  ck_assert(same_group(p, a, e) && same_group(p, b, e) && same_group(p, c, e) && same_group(p, d, e));
  ck_assert_int_eq(gr->nout, 1);
  ck_assert_int_eq(gr->out[0], e);
  /* the constant and its broadcast are inlined, so the kernel reads x and y only */
  ck_assert_int_eq(gr->nin, 2);
  ck_assert_int_eq(gr->in[0], x);
  ck_assert_int_eq(gr->in[1], y);
  ck_assert_int_eq(p->level[a], FUSE_AT_ELEM);
  ck_assert_int_eq(p->level[g->node[d].in[1]], FUSE_AT_ELEM); /* the broadcast itself: per element */
  printf("elementwise chain: %d kernels unfused, %d fused\n", before, fuse_kernel_count(p));
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* -fno-fuse: one group per node, no refusals. */
START_TEST(disabled_is_one_group_per_node) {
  IrGraph *g = ir_graph_new("off");
  int x = input(g, "x", SH(2, 4, 8));
  int e = un(g, OP_TANH, un(g, OP_EXP, bin(g, OP_MUL, x, scalar(g, 2.0))));
  built(g, e);
  set_out(g, e);
  FusePlan *p = plan(g, &unfused);
  ck_assert_int_eq(p->ngroup, g->n);
  ck_assert_int_eq(p->nrefused, 0);
  int nonleaf = 0;
  for (int v = 0; v < g->n; v++) nonleaf += !is_leaf(g->node[v].op);
  ck_assert_int_eq(fuse_kernel_count(p), nonleaf);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* A constant read by two kernels stays a leaf buffer; a scalar broadcast
 * into one kernel is inlined. */
START_TEST(constants_inline_or_stay_leaves) {
  IrGraph *g = ir_graph_new("consts");
  int x = input(g, "x", SH(2, 4, 8));
  int one = scalar(g, 1.0);
  int a = bin(g, OP_ADD, x, one);                        /* reshape + broadcast of 'one' */
  int s = reduce(g, OP_SUM, un(g, OP_EXP, a), 2, false); /* [4] */
  int b = bin(g, OP_SUB, un(g, OP_EXP, x), one);         /* 'one' read by a second kernel */
  int c = bin(g, OP_MUL, b, scalar(g, 3.0));             /* a constant only this kernel reads */
  built(g, c);
  ir_set_outputs(g, (int[]){s, c}, NULL, 2);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(p->group[p->group_of[one]].kind, FUSE_LEAF);
  bool refused = false;
  for (int i = 0; i < p->nrefused; i++) refused = refused || p->refused[i].producer == one;
  ck_assert(refused);
  int three = g->node[g->node[g->node[c].in[1]].in[0]].in[0]; /* broadcast <- reshape <- const */
  ck_assert_int_eq(g->node[three].op, OP_CONST);
  ck_assert(same_group(p, three, c));
  ck_assert_int_eq(p->level[three], FUSE_AT_ANY);
  ck_assert(same_group(p, a, s)); /* the prologue of the sum */
  const FuseGroup *gc = &p->group[p->group_of[c]];
  ck_assert_int_eq(gc->nin, 2); /* x and the shared constant, not the 3 */
  ck_assert_int_eq(gc->in[0], x);
  ck_assert_int_eq(gc->in[1], one);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* ---- reductions ---- */

/* A reduction absorbs its elementwise prologue and an epilogue of its
 * reduced shape: sum(exp(x) * 2, rows) / 8 is one kernel rooted at the sum. */
START_TEST(reduction_takes_prologue_and_epilogue) {
  IrGraph *g = ir_graph_new("red");
  int x = input(g, "x", SH(2, 6, 8));
  int e = bin(g, OP_MUL, un(g, OP_EXP, x), scalar(g, 2.0));
  int s = reduce(g, OP_SUM, e, 2, false);
  int m = un(g, OP_SQRT, bin(g, OP_DIV, s, scalar(g, 8.0)));
  built(g, m);
  set_out(g, m);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 1);
  const FuseGroup *gr = &p->group[p->group_of[m]];
  ck_assert_int_eq(gr->root, s);
  ck_assert_int_eq(p->level[e], FUSE_AT_ELEM);
  ck_assert_int_eq(p->level[s], FUSE_AT_ROW);
  ck_assert_int_eq(p->level[m], FUSE_AT_ROW);
  ck_assert_int_eq(gr->nout, 1);
  ck_assert_int_eq(gr->out[0], m);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* Two reductions never share a kernel. */
START_TEST(one_reduction_per_kernel) {
  IrGraph *g = ir_graph_new("two");
  int x = input(g, "x", SH(2, 6, 8));
  int s = reduce(g, OP_SUM, un(g, OP_EXP, x), 2, false); /* [6] */
  int m = reduce(g, OP_REDUCE_MAX, un(g, OP_NEG, s), 1, false);
  built(g, m);
  set_out(g, m);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 2);
  ck_assert(!same_group(p, s, m));
  const char *why = refusal(p, s, g->node[m].in[0]);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, "one reduction per kernel") != NULL, "%s", why);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* softmax by hand: max, sub, exp, sum, div along rows. Five kernels (plus
 * broadcasts) unfused, at most two fused: the max, then one two-pass kernel
 * (sum of exp(x - max) per row, then e / sum over the row). SOFTMAX itself
 * is one kernel, with its epilogue. */
START_TEST(softmax_by_hand_is_two_kernels) {
  IrGraph *g = ir_graph_new("softmax");
  int x = input(g, "x", SH(2, 6, 10));
  int mx = reduce(g, OP_REDUCE_MAX, x, 2, true);
  int e = un(g, OP_EXP, bin(g, OP_SUB, x, mx));
  int s = reduce(g, OP_SUM, e, 2, true);
  int y = bin(g, OP_DIV, e, s);
  built(g, y);
  set_out(g, y);
  int before = kernels(g, &unfused), single = kernels(g, &one_pass);
  ck_assert_int_ge(before, 5);
  FusePlan *p = plan(g, &fused);
  int after = fuse_kernel_count(p);
  printf("softmax by hand: %d kernels unfused, %d fused, %d without two-pass kernels\n", before, after, single);
  ck_assert_int_le(after, 2);
  ck_assert_int_gt(single, after);
  ck_assert(same_group(p, e, y) && same_group(p, s, y));
  ck_assert(!same_group(p, mx, y));
  ck_assert_int_eq(p->group[p->group_of[y]].root, s);
  ck_assert_int_eq(p->level[y], FUSE_AT_ELEM);
  ck_assert_int_eq(p->level[s], FUSE_AT_ROW);
  const char *why = refusal(p, mx, g->node[g->node[e].in[0]].in[1]);
  ck_assert_ptr_nonnull(why);
  agrees(g, p);
  fuse_plan_free(p);

  IrGraph *h = ir_graph_new("softmax_op");
  int xs = input(h, "x", SH(2, 6, 10));
  int z = bin(h, OP_ADD, bin(h, OP_MUL, softmax(h, OP_SOFTMAX, bin(h, OP_MUL, xs, scalar(h, 0.5)), -1), scalar(h, 2.0)),
              xs);
  built(h, z);
  set_out(h, z);
  ck_assert_int_eq(kernels(h, &fused), 1); /* prologue, softmax, epilogue at its shape */
  agrees(h, NULL);
  ir_graph_free(h);
  ir_graph_free(g);
}
END_TEST

/* layer norm from primitives: mean, x - mean, var, rsqrt, scale and shift. */
START_TEST(layer_norm_by_hand_is_two_kernels) {
  IrGraph *g = ir_graph_new("ln");
  int x = input(g, "x", SH(3, 2, 5, 16));
  int gamma = ir_param(g, "gamma", SH(1, 16), IR_INIT_ONES, 0, 0, LOC);
  int beta = ir_param(g, "beta", SH(1, 16), IR_INIT_ZEROS, 0, 0, LOC);
  int mean = bin(g, OP_DIV, reduce(g, OP_SUM, x, 4, true), scalar(g, 16));
  int xc = bin(g, OP_SUB, x, mean);
  int var = bin(g, OP_DIV, reduce(g, OP_SUM, bin(g, OP_MUL, xc, xc), 4, true), scalar(g, 16));
  int rstd = un(g, OP_RSQRT, bin(g, OP_ADD, var, scalar(g, 1e-5)));
  int y = bin(g, OP_ADD, bin(g, OP_MUL, bin(g, OP_MUL, xc, rstd), gamma), beta);
  built(g, y);
  set_out(g, y);
  int before = kernels(g, &unfused);
  FusePlan *p = plan(g, &fused);
  int after = fuse_kernel_count(p);
  printf("layer norm by hand: %d kernels unfused, %d fused\n", before, after);
  ck_assert_int_le(after, 2);
  ck_assert_int_ge(before, 8);
  ck_assert(same_group(p, xc, y) && same_group(p, rstd, y));
  ck_assert_int_eq(p->level[rstd], FUSE_AT_ROW);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* onehot(argmax(x, axis), axis) reads the row's argmax back: one kernel. */
START_TEST(onehot_of_argmax_is_one_kernel) {
  IrGraph *g = ir_graph_new("hard");
  int x = input(g, "x", SH(4, 2, 8, 3, 3));
  int am = ir_build(g, OP_ARGMAX, &x, 1, &(IrAttr){.axis = 1}, LOC);
  int oh = ir_build(g, OP_ONEHOT, &am, 1, &(IrAttr){.axis = 1, .depth = 8}, LOC);
  int y = bin(g, OP_MUL, oh, x);
  built(g, y);
  set_out(g, y);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 1);
  ck_assert_int_eq(p->group[p->group_of[y]].root, am);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* cross_entropy, then the mean: two kernels; the KL term of the dVAE
 * (sum over classes of p (log p + log K), p = exp(log_softmax)): two. */
START_TEST(cross_entropy_and_kl_are_two_kernels) {
  IrGraph *g = ir_graph_new("ce");
  int x = input(g, "logits", SH(2, 12, 10));
  int t = ir_input(g, "t", IR_I32, SH(1, 12), LOC);
  int ce = ir_build(g, OP_CROSS_ENTROPY, (int[]){x, t}, 2, NULL, LOC);
  int loss = bin(g, OP_DIV, reduce(g, OP_SUM, ce, 1, false), scalar(g, 12));
  built(g, loss);
  set_out(g, loss);
  ck_assert_int_eq(kernels(g, &fused), 2);
  agrees(g, NULL);
  ir_graph_free(g);

  g = ir_graph_new("kl");
  x = input(g, "logits", SH(4, 2, 16, 3, 3));
  int lp = softmax(g, OP_LOG_SOFTMAX, x, 1);
  int kl = reduce(g, OP_SUM, bin(g, OP_MUL, un(g, OP_EXP, lp), bin(g, OP_ADD, lp, scalar(g, 2.772588722))), 2, false);
  built(g, kl);
  set_out(g, kl);
  int before = kernels(g, &unfused);
  FusePlan *p = plan(g, &fused);
  printf("KL term: %d kernels unfused, %d fused\n", before, fuse_kernel_count(p));
  ck_assert_int_le(fuse_kernel_count(p), 2);
  ck_assert(!same_group(p, lp, kl));
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* Consumers at a reduction's input shape start a new group when two-pass
 * kernels are off; with them, only if they read the row values of another
 * reduction. */
START_TEST(single_pass_splits_at_the_broadcast) {
  IrGraph *g = ir_graph_new("center");
  int x = input(g, "x", SH(2, 4, 8));
  int m = bin(g, OP_DIV, reduce(g, OP_SUM, x, 2, true), scalar(g, 8));
  int y = bin(g, OP_SUB, x, m);
  built(g, y);
  set_out(g, y);
  FusePlan *p = plan(g, &one_pass);
  ck_assert_int_eq(fuse_kernel_count(p), 2);
  ck_assert(!same_group(p, m, y));
  const char *why = refusal(p, m, g->node[y].in[1]);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, "two-pass") != NULL, "%s", why);
  agrees(g, p);
  fuse_plan_free(p);
  ck_assert_int_eq(kernels(g, &fused), 1);
  ir_graph_free(g);
}
END_TEST

/* A group that took a reduction's row values (rsqrt of a sum, broadcast
 * back) but then cannot take the reduction itself (the sum is also read by
 * another kernel) would recompute them for every element: the next round
 * refuses that broadcast, with the reason, and the row values get a kernel
 * of their own. */
START_TEST(unfinished_two_pass_is_undone) {
  IrGraph *g = ir_graph_new("unfinished");
  int x = input(g, "x", SH(2, 6, 8));
  int s = reduce(g, OP_SUM, bin(g, OP_MUL, x, x), 2, true); /* [6, 1] */
  int r = un(g, OP_RSQRT, s);
  int y = bin(g, OP_MUL, x, r);
  int t = reduce(g, OP_REDUCE_MAX, s, 1, false); /* another kernel reads the sum */
  built(g, t);
  ir_set_outputs(g, (int[]){y, t}, NULL, 2);
  FusePlan *p = plan(g, &fused);
  int bc = g->node[y].in[1];
  ck_assert_int_eq(g->node[bc].op, OP_BROADCAST);
  ck_assert(!same_group(p, r, y) && !same_group(p, s, y));
  ck_assert_int_eq(p->level[r], FUSE_AT_ELEM); /* its own loop, not a row of y's */
  const char *why = refusal(p, r, bc);
  ck_assert_msg(why && strstr(why, "cannot join this kernel"), "%s", why ? why : "(none)");
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* ---- opaque ops ---- */

/* matmul + bias + gelu (+ residual): one opaque group, the GEMM its root. */
START_TEST(matmul_bias_gelu_is_one_group) {
  IrGraph *g = ir_graph_new("mlp");
  int x = input(g, "x", SH(2, 4, 8)), r = input(g, "r", SH(2, 4, 16));
  int w = ir_param(g, "w", SH(2, 16, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
  int b = ir_param(g, "b", SH(1, 16), IR_INIT_ZEROS, 0, 0, LOC);
  int mm = matmul(g, x, w, true);
  int h = un(g, OP_GELU, bin(g, OP_ADD, mm, b));
  int y = bin(g, OP_ADD, h, r);
  built(g, y);
  set_out(g, y);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 1);
  const FuseGroup *gr = &p->group[p->group_of[y]];
  ck_assert_int_eq(gr->kind, FUSE_OPAQUE);
  ck_assert_int_eq(gr->root, mm);
  ck_assert(same_group(p, h, mm));
  ck_assert_int_eq(gr->nout, 1);
  ck_assert_int_eq(gr->out[0], y);
  int want_in[] = {x, r, w, b};
  ck_assert_int_eq(gr->nin, 4);
  for (int i = 0; i < 4; i++) ck_assert_int_eq(gr->in[i], want_in[i]);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* The epilogue rule's refusals: a matmul read by a second kernel, and a
 * matmul whose consumer kernel reduces. */
START_TEST(opaque_epilogue_refusals) {
  IrGraph *g = ir_graph_new("mm2");
  int x = input(g, "x", SH(2, 4, 8));
  int w = ir_param(g, "w", SH(2, 8, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
  int mm = matmul(g, x, w, false);
  int a = un(g, OP_GELU, mm);
  int s = reduce(g, OP_SUM, un(g, OP_EXP, mm), 3, false);
  built(g, s);
  ir_set_outputs(g, (int[]){a, s}, NULL, 2);
  FusePlan *p = plan(g, &fused);
  ck_assert(!same_group(p, mm, a) && !same_group(p, mm, s));
  const char *why = refusal(p, mm, a);
  ck_assert_msg(why && strstr(why, "duplicate"), "%s", why ? why : "(none)");
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);

  g = ir_graph_new("mm_sum");
  x = input(g, "x", SH(2, 4, 8));
  w = ir_param(g, "w", SH(2, 8, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
  mm = matmul(g, x, w, false);
  int e = un(g, OP_EXP, mm);
  s = reduce(g, OP_SUM, e, 3, false);
  built(g, s);
  set_out(g, s);
  p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 2);
  why = refusal(p, mm, e);
  ck_assert_msg(why && strstr(why, "elementwise epilogue"), "%s", why ? why : "(none)");
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* No duplication: a producer with consumers in two kernels stays apart
 * and is stored once. */
START_TEST(no_duplication) {
  IrGraph *g = ir_graph_new("dup");
  int x = input(g, "x", SH(2, 4, 8));
  int a = un(g, OP_EXP, x);
  int b = un(g, OP_TANH, a);
  int c = reduce(g, OP_SUM, a, 2, false);
  built(g, c);
  ir_set_outputs(g, (int[]){b, c}, NULL, 2);
  FusePlan *p = plan(g, &fused);
  ck_assert(!same_group(p, a, b) && !same_group(p, a, c) && !same_group(p, b, c));
  const FuseGroup *ga = &p->group[p->group_of[a]];
  ck_assert_int_eq(ga->nout, 1);
  ck_assert_int_eq(ga->out[0], a);
  for (int i = 0; i < 2; i++) {
    const char *why = refusal(p, a, i ? c : b);
    ck_assert_msg(why && strstr(why, "duplicate"), "%s", why ? why : "(none)");
  }
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* The diamond a -> matmul -> add <- a: a is the matmul's operand (read from
 * memory before the kernel runs) and feeds its epilogue; putting a in that
 * kernel would make it depend on itself. Refused, with the reason. */
START_TEST(diamond_cycle_is_refused) {
  IrGraph *g = ir_graph_new("diamond");
  int x = input(g, "x", SH(2, 8, 8));
  int w = ir_param(g, "w", SH(2, 8, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
  int a = un(g, OP_EXP, x);
  int mm = matmul(g, a, w, false);
  int d = bin(g, OP_ADD, mm, a);
  built(g, d);
  set_out(g, d);
  FusePlan *p = plan(g, &fused);
  ck_assert(same_group(p, mm, d));
  ck_assert(!same_group(p, a, d));
  ck_assert_int_eq(fuse_kernel_count(p), 2);
  for (int i = 0; i < 2; i++) {
    const char *why = refusal(p, a, i ? d : mm);
    ck_assert_msg(why && strstr(why, "cycle"), "%s", why ? why : "(none)");
  }
  ck_assert_int_lt(p->group_of[a], p->group_of[d]);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* A broadcast shared by two loop kernels over one shape (what CSE makes of
 * the AdamW updates of same-shaped parameters) merges them into one kernel
 * with two outs, instead of writing the broadcast out in full; if a path
 * runs from one of them to the other through a third kernel, merging would
 * make a cycle and is refused. */
START_TEST(shared_broadcast_merges_siblings) {
  IrGraph *g = ir_graph_new("siblings");
  int x = input(g, "x", SH(2, 8, 8)), y = input(g, "y", SH(2, 8, 8)), s = input(g, "s", SH(0));
  int sb = ir_broadcast_to(g, s, SH(2, 8, 8), LOC);
  int a = un(g, OP_EXP, bin(g, OP_MUL, x, sb));
  int b = un(g, OP_TANH, bin(g, OP_ADD, y, sb));
  built(g, b);
  ir_set_outputs(g, (int[]){a, b}, NULL, 2);
  FusePlan *p = plan(g, &fused);
  ck_assert_int_eq(fuse_kernel_count(p), 1);
  ck_assert(same_group(p, sb, a) && same_group(p, a, b));
  const FuseGroup *gr = &p->group[p->group_of[a]];
  ck_assert_int_eq(gr->nout, 2);
  ck_assert_int_eq(gr->out[0], a);
  ck_assert_int_eq(gr->out[1], b);
  ck_assert_int_eq(gr->root, b);
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);

  g = ir_graph_new("siblings_cycle");
  x = input(g, "x", SH(2, 8, 8));
  s = input(g, "s", SH(0));
  int w = ir_param(g, "w", SH(2, 8, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
  sb = ir_broadcast_to(g, s, SH(2, 8, 8), LOC);
  a = un(g, OP_EXP, bin(g, OP_MUL, x, sb));
  int mm = matmul(g, a, w, false);
  b = bin(g, OP_ADD, ir_permute(g, mm, (int[]){1, 0}, LOC), sb); /* the permute keeps mm apart */
  built(g, b);
  ir_set_outputs(g, (int[]){a, b}, NULL, 2);
  p = plan(g, &fused);
  ck_assert(!same_group(p, a, b));
  ck_assert(!same_group(p, sb, a) && !same_group(p, sb, b));
  const char *why = refusal(p, sb, g->node[a].in[0]);
  ck_assert_msg(why && strstr(why, "cycle"), "%s", why ? why : "(none)");
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* ---- AdamW ---- */

static IrGraph *adamw_graph(double clip, int nparams) {
  IrGraph *g = ir_graph_new("adamw");
  int w[4], gw[4];
  for (int i = 0; i < nparams; i++) {
    char name[16];
    snprintf(name, sizeof name, i ? "w%d" : "w", i);
    w[i] = ir_param(g, name, SH(2, 16, 8), IR_INIT_NORMAL, 0, 0.02, LOC);
    snprintf(name, sizeof name, "gw%d", i);
    gw[i] = input(g, name, SH(2, 16, 8));
  }
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.01, .clip_norm = clip};
  ck_assert_msg(opt_adamw(g, w, gw, nparams, &o) == 0, "%s", g->error);
  return g;
}

/* The whole update of one parameter (both moments, bias corrections, decay,
 * the step) is one kernel; the scalars every parameter shares (the step
 * count, the two bias-correction sums and the step size) cost at most four
 * tiny kernels once per step, whatever the number of parameters; clipping
 * adds the norm's. */
START_TEST(adamw_one_param_is_two_kernels) {
  IrGraph *g = adamw_graph(0, 1);
  int before = kernels(g, &unfused);
  FusePlan *p = plan(g, &fused);
  int after = fuse_kernel_count(p);
  /* every update value is a group output */
  for (int i = 0; i < g->nupdate; i++) {
    const FuseGroup *gr = &p->group[p->group_of[g->update_value[i]]];
    bool found = false;
    for (int k = 0; k < gr->nout; k++) found = found || gr->out[k] == g->update_value[i];
    ck_assert(found);
  }
  /* ... and the parameter's own update (w, its m and v) is one kernel */
  int of[3], k = 0;
  for (int i = 0; i < g->nupdate; i++) {
    const char *t = g->node[g->update_target[i]].name;
    if (!strcmp(t, "w") || !strcmp(t, "opt.m.w") || !strcmp(t, "opt.v.w")) of[k++] = g->update_value[i];
  }
  ck_assert_int_eq(k, 3);
  ck_assert(same_group(p, of[0], of[1]));
  ck_assert(same_group(p, of[0], of[2]));
  agrees(g, p);
  fuse_plan_free(p);
  ir_graph_free(g);
  g = adamw_graph(0, 3);
  int three = kernels(g, &fused);
  ir_graph_free(g);
  g = adamw_graph(1.0, 1);
  int clipped = kernels(g, &fused);
  printf("AdamW: one parameter %d kernels unfused, %d fused (%d for three); with clipping %d\n", before, after,
         three, clipped);
  ck_assert_int_le(after, 1 + 3);
  /* one more kernel per parameter, plus one for the shared scalars (lr over
   * the bias correction, ...) once they have several readers */
  ck_assert_int_le(three - after, 2 + 1);
  ck_assert_int_ge(before, 15);
  ck_assert_int_le(clipped, after + 1);
  agrees(g, NULL);
  ir_graph_free(g);
}
END_TEST

/* ---- norms through autodiff ---- */

/* LAYER_NORM and GROUP_NORM are opaque forward; their gradients come out
 * of autodiff as reductions and elementwise ops and end up in a few
 * kernels. */
START_TEST(norm_backward_is_a_few_kernels) {
  for (int which = 0; which < 2; which++) {
    IrGraph *g = ir_graph_new(which ? "gn" : "ln");
    int x = which ? input(g, "x", SH(4, 2, 8, 4, 4)) : input(g, "x", SH(3, 2, 5, 16));
    int c = which ? 8 : 16;
    int gamma = ir_param(g, "gamma", SH(1, c), IR_INIT_ONES, 0, 0, LOC);
    int beta = ir_param(g, "beta", SH(1, c), IR_INIT_ZEROS, 0, 0, LOC);
    IrAttr at = {.eps = 1e-5f, .groups = 4};
    int y = ir_build(g, which ? OP_GROUP_NORM : OP_LAYER_NORM, (int[]){x, gamma, beta}, 3, &at, LOC);
    int loss = reduce(g, OP_SUM, bin(g, OP_MUL, y, y), which ? 15 : 7, false);
    built(g, loss);
    int wrt[3] = {x, gamma, beta}, grad[3];
    ck_assert_msg(ad_gradients(g, loss, wrt, 3, grad) == 0, "%s", g->error);
    ir_set_outputs(g, (int[]){loss, grad[0], grad[1], grad[2]}, NULL, 4);
    ck_assert_msg(pass_run_pipeline(g, "cse,dce") == 0, "%s", g->error);
    int before = kernels(g, &unfused);
    int after = kernels(g, &fused);
    printf("%s forward + backward: %d kernels unfused, %d fused\n", which ? "group_norm" : "layer_norm", before, after);
    ck_assert_int_le(after * 3, before);
    agrees(g, NULL);
    ir_graph_free(g);
  }
}
END_TEST

/* ---- printing ---- */

START_TEST(explain_and_dot) {
  IrGraph *g = ir_graph_new("softmax");
  int x = input(g, "x", SH(2, 6, 10));
  int mx = reduce(g, OP_REDUCE_MAX, x, 2, true);
  int e = un(g, OP_EXP, bin(g, OP_SUB, x, mx));
  int y = bin(g, OP_DIV, e, reduce(g, OP_SUM, e, 2, true));
  built(g, y);
  set_out(g, y);
  FusePlan *p = plan(g, &fused);
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  fuse_explain(g, p, f);
  fclose(f);
  int lines = 0;
  for (char *s = text; *s; s++) lines += *s == '\n';
  ck_assert_int_eq(lines, p->nrefused + 1); /* and the joins by rule */
  ck_assert_int_ge(lines, 2);
  char want[96];
  snprintf(want, sizeof want, "%%%d -> %%%d (reduce_max) [%s]: ", mx, p->refused[0].consumer,
           fuse_rule_info[p->refused[0].rule].name);
  ck_assert_msg(strstr(text, want) != NULL, "%s", text);
  free(text);

  char *path = tu_path("softmax.dot");
  f = fopen(path, "w");
  fuse_print_dot(g, p, f);
  fclose(f);
  char *dot = tu_read_file(path, NULL);
  int clusters = 0;
  for (char *s = dot; (s = strstr(s, "subgraph cluster_")); s++) clusters++;
  ck_assert_int_eq(clusters, fuse_kernel_count(p));
  ck_assert_ptr_nonnull(strstr(dot, "color=red"));
  free(dot);
  if (tu_sh("command -v dot >/dev/null 2>&1") == 0) {
    ck_assert_int_eq(tu_sh("dot -Tpng '%s' -o '%s.png'", path, path), 0);
  } else {
    printf("dot not installed: the Graphviz output was not rendered\n");
  }
  free(path);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* ---- random graphs ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static int pick(int n) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (int)((rng >> 33) % (uint64_t)n);
}

/* A random graph of 2-D f32 values from a few shapes: elementwise ops,
 * broadcasting, reductions with and without keepdim, softmax, matmul,
 * permute, slice, reshape and scalars. Builder refusals (shapes that do
 * not fit) are skipped. */
static IrGraph *random_graph(void) {
  IrGraph *g = ir_graph_new("random");
  static const int64_t dims[] = {4, 6};
  int pool[64], np = 0;
  pool[np++] = input(g, "a", SH(2, 4, 6));
  pool[np++] = input(g, "b", SH(2, 6, 6));
  pool[np++] = ir_param(g, "w", SH(2, 6, 4), IR_INIT_NORMAL, 0, 1, LOC);
  while (np < 40) {
    int x = pool[pick(np)], y = pool[pick(np)], v = -1;
    const IrShape *sx = &g->node[x].shape;
    switch (pick(11)) {
    case 0: v = un(g, pick(2) ? OP_EXP : OP_TANH, x); break;
    case 1:
    case 2: v = bin(g, (IrOp[]){OP_ADD, OP_MUL, OP_SUB, OP_MAX}[pick(4)], x, y); break;
    case 3:
      if (sx->rank == 2) v = reduce(g, pick(2) ? OP_SUM : OP_REDUCE_MAX, x, 1u + (uint32_t)pick(3), pick(2));
      break;
    case 4:
      if (sx->rank == 2) v = softmax(g, pick(2) ? OP_SOFTMAX : OP_LOG_SOFTMAX, x, pick(2));
      break;
    case 5: v = matmul(g, x, y, pick(2)); break;
    case 6:
      if (sx->rank == 2) v = ir_permute(g, x, (int[]){1, 0}, LOC);
      break;
    case 7:
      if (sx->rank == 2 && sx->d[0] == 6) {
        IrAttr at = {.start = {1, 0}, .stop = {5, sx->d[1]}};
        v = ir_build(g, OP_SLICE, &x, 1, &at, LOC);
      }
      break;
    case 8: v = bin(g, OP_MUL, x, scalar(g, 0.5 + pick(4))); break;
    case 9:
      if (sx->rank == 2) v = ir_broadcast_to(g, x, SH(2, dims[pick(2)], dims[pick(2)]), LOC);
      break;
    default:
      if (sx->rank == 2 && ir_numel(sx) % 2 == 0) v = ir_reshape(g, x, SH(2, 2, ir_numel(sx) / 2), LOC);
      break;
    }
    if (v >= 0 && g->node[v].dtype == F && g->node[v].shape.rank == 2 && v != x) pool[np++] = v;
  }
  int outs[3] = {pool[np - 1], pool[np - 2 - pick(10)], pool[3 + pick(np - 3)]};
  int no = 1 + (outs[1] != outs[0]) + (outs[2] != outs[0] && outs[2] != outs[1]);
  if (no == 2 && outs[1] == outs[0]) outs[1] = outs[2];
  ir_set_outputs(g, outs, NULL, no);
  ck_assert_msg(pass_run_pipeline(g, "dce") == 0, "%s", g->error);
  return g;
}

/* The invariants on many random graphs, with every option set. */
START_TEST(random_graphs_keep_the_invariants) {
  int total = 0, fusedk = 0;
  for (int i = 0; i < 300; i++) {
    IrGraph *g = random_graph();
    int k0 = kernels(g, &unfused), k1 = kernels(g, &fused), k2 = kernels(g, &one_pass);
    ck_assert_int_le(k1, k0);
    ck_assert_int_le(k2, k0);
    total += k0, fusedk += k1;
#ifdef FUSE_TEST_RUN
    if (i % 10 == 0) { /* every tenth also runs, under both fused plans */
      FusePlan *p = plan(g, &one_pass);
      JcCheck c = {.tol = 1e-4}; /* chains of exp and matmul amplify rounding */
      jc_check_random(g, p, 8, &c);
      jc_check_random(g, NULL, 8, &c);
      fuse_plan_free(p);
    }
#endif
    ir_graph_free(g);
  }
#ifdef FUSE_TEST_RUN
  printf("300 random graphs: %d kernels unfused, %d fused (30 of them run against the reference)\n", total, fusedk);
#else
  printf("300 random graphs: %d kernels unfused, %d fused\n", total, fusedk);
#endif
  ck_assert_int_lt(fusedk * 2, total);
}
END_TEST

/* ---- the real models ---- */

/* An entry of a model at its tiny config, as dalc builds it: a training
 * entry becomes the whole step (gradients and AdamW with the model's
 * settings, opt_train_step), then dalc's default pipeline. */
static IrGraph *lower_model(const char *file, const char *entry, bool train) {
  char *err = NULL;
  FeProgram *prog = fe_load_file(file, &(FeOptions){.config = "tiny"}, &err);
  ck_assert_msg(prog != NULL, "%s", err);
  int i = fe_entry_find(prog, entry);
  ck_assert_int_ge(i, 0);
  IrGraph *g = fe_lower_entry(prog, i, &err);
  ck_assert_msg(g != NULL, "%s", err);
  if (train) {
    AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    fe_global_number(prog, "adam_beta1", &o.beta1);
    fe_global_number(prog, "adam_beta2", &o.beta2);
    fe_global_number(prog, "adam_eps", &o.eps);
    fe_global_number(prog, "weight_decay", &o.weight_decay);
    fe_global_number(prog, "clip_norm", &o.clip_norm);
    ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
  }
  fe_free(prog); /* nothing below reads node locations */
  ck_assert_msg(pass_run_pipeline(g, "cse,fold,algebra,dce") == 0, "%s", g->error);
  return g;
}

static const struct {
  const char *file, *entry;
  bool train;
} models[] = {
    {"models/gpt.dal", "logits", false},
    {"models/gpt.dal", "loss", true},
    {"models/dvae.dal", "encode", false},
    {"models/dvae.dal", "loss", true},
};

START_TEST(real_models) {
  IrGraph *g = lower_model(models[_i].file, models[_i].entry, models[_i].train);
  FusePlan *p = plan(g, &fused);
  int nodes = 0;
  for (int v = 0; v < g->n; v++) nodes += !is_leaf(g->node[v].op);
  int k = fuse_kernel_count(p), opaque = 0;
  for (int i = 0; i < p->ngroup; i++) opaque += p->group[i].kind == FUSE_OPAQUE;
  printf("%s %s%s: %d nodes (%d non-leaf), %d kernels (%d opaque), %d refused edges\n", models[_i].file,
         models[_i].entry, models[_i].train ? " (training step)" : "", g->n, nodes, k, opaque, p->nrefused);
  /* forward graphs are mostly GEMMs and norms; training steps fuse more */
  ck_assert_int_le(k * (models[_i].train ? 5 : 2), nodes);
  /* determinism: the same plan again, field by field */
  FusePlan *q = plan(g, &fused);
  ck_assert_int_eq(q->ngroup, p->ngroup);
  ck_assert_int_eq(memcmp(q->group_of, p->group_of, (size_t)g->n * sizeof *p->group_of), 0);
  ck_assert_int_eq(memcmp(q->level, p->level, (size_t)g->n * sizeof *p->level), 0);
  ck_assert_int_eq(q->nrefused, p->nrefused);
  for (int i = 0; i < p->ngroup; i++) {
    ck_assert_int_eq(q->group[i].root, p->group[i].root);
    ck_assert_int_eq(q->group[i].kind, p->group[i].kind);
  }
  for (int i = 0; i < p->nrefused; i++) ck_assert_str_eq(q->refused[i].why, p->refused[i].why);
  fuse_plan_free(q);
  /* each fusion switch off (--fuse-rule=-NAME) keeps the invariants and
   * costs kernels; all of them off is the -fno-fuse plan */
  FuseOptions all = fused;
  FusePlan *none = plan(g, &unfused);
  for (int r = 0; r < FUSE_RULE_NSWITCH; r++) {
    FuseOptions one = fused;
    one.rules_off = 1u << r;
    all.rules_off |= 1u << r;
    q = plan(g, &one);
    ck_assert_int_ge(fuse_kernel_count(q), k);
    ck_assert_int_le(fuse_kernel_count(q), fuse_kernel_count(none));
    fuse_plan_free(q);
  }
  q = plan(g, &all);
  ck_assert_int_eq(q->ngroup, none->ngroup);
  ck_assert_int_eq(memcmp(q->group_of, none->group_of, (size_t)g->n * sizeof *q->group_of), 0);
  fuse_plan_free(q);
  fuse_plan_free(none);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuse");
  TCase *rules = tcase_create("rules");
  tcase_set_timeout(rules, 60); /* 300 random graphs, 30 of them compiled in test_fuse_jit */
#ifdef FUSE_TEST_RUN
  tcase_add_checked_fixture(rules, jc_setup, jc_teardown);
#endif
  tcase_add_test(rules, elementwise_chain_is_one_kernel);
  tcase_add_test(rules, disabled_is_one_group_per_node);
  tcase_add_test(rules, constants_inline_or_stay_leaves);
  tcase_add_test(rules, reduction_takes_prologue_and_epilogue);
  tcase_add_test(rules, one_reduction_per_kernel);
  tcase_add_test(rules, softmax_by_hand_is_two_kernels);
  tcase_add_test(rules, layer_norm_by_hand_is_two_kernels);
  tcase_add_test(rules, onehot_of_argmax_is_one_kernel);
  tcase_add_test(rules, cross_entropy_and_kl_are_two_kernels);
  tcase_add_test(rules, single_pass_splits_at_the_broadcast);
  tcase_add_test(rules, unfinished_two_pass_is_undone);
  tcase_add_test(rules, matmul_bias_gelu_is_one_group);
  tcase_add_test(rules, opaque_epilogue_refusals);
  tcase_add_test(rules, no_duplication);
  tcase_add_test(rules, diamond_cycle_is_refused);
  tcase_add_test(rules, shared_broadcast_merges_siblings);
  tcase_add_test(rules, adamw_one_param_is_two_kernels);
  tcase_add_test(rules, norm_backward_is_a_few_kernels);
  tcase_add_test(rules, explain_and_dot);
  tcase_add_test(rules, random_graphs_keep_the_invariants);
  suite_add_tcase(s, rules);
  TCase *real = tcase_create("models");
  tcase_set_timeout(real, 60);
  tcase_add_loop_test(real, real_models, 0, (int)(sizeof models / sizeof models[0]));
  suite_add_tcase(s, real);
  return tu_run_suite(s);
}
