/* test_simplify.c — the cse, fold and algebra passes and pipeline stats.
 *
 * Every rewrite is checked twice: the node count after the pass (and dce)
 * is exactly what the rule promises, and the rewritten graph computes the
 * same values as the original on the reference executor, from the same
 * pseudo-random inputs (f32 values compare with ==, so the sign of a zero
 * may differ, and NaN matches NaN; i32 exactly). Also: a second run of each
 * pass changes nothing (same printed IR), outputs, input/param lists and
 * updates survive, a bigger pseudo-random graph gives the same values after
 * the whole pipeline, and the stats lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref.h"
#include "ir/ir.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "passes/simplify.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_simplify.c", __LINE__, 1})
#define SH(r, ...) ((IrShape){.rank = (r), .d = {__VA_ARGS__}})

/* ---- running graphs ---------------------------------------------------- */

/* A deterministic generator (64-bit LCG), so both graphs see equal inputs. */
static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005u + 1442695040888963407u;
  return *s >> 33;
}

/* A tensor for leaf node n: f32 in [-2, 2), i32 in [0, 3) (valid indices for
 * the onehots below), from 'seed'. */
static RtTensor *random_tensor(const IrNode *n, uint64_t seed) {
  RtTensor *t = rt_tensor_new((RtDType)n->dtype, n->shape.rank, n->shape.d, NULL);
  ck_assert_ptr_nonnull(t);
  uint64_t s = seed * 7919 + 17;
  for (int64_t i = 0; i < rt_tensor_numel(t); i++) {
    uint64_t r = lcg(&s);
    if (t->dtype == RT_F32) rt_f32(t)[i] = (float)((double)(r % 4096) / 1024.0 - 2.0);
    else rt_i32(t)[i] = (int32_t)(r % 3);
  }
  return t;
}

typedef struct {
  int n;
  RtTensor **out;
  RtTensor **persist; /* params and state after the run */
  int npersist;
} RunResult;

/* Runs g on inputs and params made by random_tensor (seeded by their
 * position in the lists, so equal signatures get equal tensors). */
static RunResult run(const IrGraph *g) {
  RtTensor **in = calloc((size_t)g->ninput + 1, sizeof *in);
  RunResult r = {.n = g->noutput, .npersist = g->nparam};
  r.out = calloc((size_t)g->noutput + 1, sizeof *r.out);
  r.persist = calloc((size_t)g->nparam + 1, sizeof *r.persist);
  for (int i = 0; i < g->ninput; i++) in[i] = random_tensor(&g->node[g->input[i]], (uint64_t)i);
  for (int i = 0; i < g->nparam; i++) r.persist[i] = random_tensor(&g->node[g->param[i]], (uint64_t)(1000 + i));
  RtErr e;
  RefOptions opt = {.seed = 42, .step = 3};
  ck_assert_msg(ref_run(g, in, r.persist, r.out, &opt, &e) == 0, "ref_run: %s", e.msg);
  for (int i = 0; i < g->ninput; i++) rt_tensor_free(in[i]);
  free(in);
  return r;
}

static void result_free(RunResult *r) {
  for (int i = 0; i < r->n; i++) rt_tensor_free(r->out[i]);
  for (int i = 0; i < r->npersist; i++) rt_tensor_free(r->persist[i]);
  free(r->out);
  free(r->persist);
}

static void expect_same_tensor(const RtTensor *a, const RtTensor *b, const char *what) {
  ck_assert_msg(a->dtype == b->dtype && a->rank == b->rank, "%s: dtype or rank differs", what);
  for (int d = 0; d < a->rank; d++) ck_assert_int_eq(a->dim[d], b->dim[d]);
  for (int64_t i = 0; i < rt_tensor_numel(a); i++) {
    if (a->dtype == RT_I32) {
      ck_assert_msg(rt_i32(a)[i] == rt_i32(b)[i], "%s[%lld]: %d vs %d", what, (long long)i, rt_i32(a)[i],
                    rt_i32(b)[i]);
    } else {
      float x = rt_f32(a)[i], y = rt_f32(b)[i];
      ck_assert_msg(x == y || (isnan(x) && isnan(y)), "%s[%lld]: %.9g vs %.9g", what, (long long)i, x, y);
    }
  }
}

/* a and b (the same entry, before and after passes) compute the same. */
static void expect_same_results(const IrGraph *a, const IrGraph *b) {
  ck_assert_int_eq(a->noutput, b->noutput);
  ck_assert_int_eq(a->ninput, b->ninput);
  ck_assert_int_eq(a->nparam, b->nparam);
  for (int i = 0; i < a->noutput; i++) ck_assert_str_eq(a->output_name[i], b->output_name[i]);
  RunResult ra = run(a), rb = run(b);
  for (int i = 0; i < a->noutput; i++) expect_same_tensor(ra.out[i], rb.out[i], a->output_name[i]);
  for (int i = 0; i < a->nparam; i++) expect_same_tensor(ra.persist[i], rb.persist[i], a->node[a->param[i]].name);
  result_free(&ra);
  result_free(&rb);
}

static void expect_valid(const IrGraph *g) {
  char why[512];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
}

static void run_passes(IrGraph *g, const char *names) {
  ck_assert_msg(pass_run_pipeline(g, names) == 0, "%s: %s", names, g->error);
  expect_valid(g);
}

/* The graph's IR text (malloc'd). */
static char *ir_text(const IrGraph *g) {
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  ir_print(g, f);
  fclose(f);
  return buf;
}

/* Running 'pass' again leaves g's printed IR exactly as it is. */
static void expect_idempotent(IrGraph *g, const char *pass) {
  char *before = ir_text(g);
  run_passes(g, pass);
  char *after = ir_text(g);
  ck_assert_msg(strcmp(before, after) == 0, "second %s changed the graph:\n%s\n---\n%s", pass, before, after);
  free(before);
  free(after);
}

static int count_op(const IrGraph *g, IrOp op) {
  int c = 0;
  for (int i = 0; i < g->n; i++) c += g->node[i].op == op;
  return c;
}

static void set_outputs(IrGraph *g, const int *ids, int n) {
  for (int i = 0; i < n; i++) ck_assert_msg(ids[i] >= 0, "output %d: %s", i, g->error);
  ir_set_outputs(g, ids, NULL, n);
  ck_assert_int_eq(g->noutput, n);
  expect_valid(g);
}

static int build1(IrGraph *g, IrOp op, int x, const IrAttr *a) {
  int id = ir_build(g, op, &x, 1, a, LOC);
  ck_assert_msg(id >= 0, "%s", g->error);
  return id;
}

static int scalar(IrGraph *g, double v) { return ir_scalar(g, IR_F32, v, LOC); }

/* ---- cse ---------------------------------------------------------------- */

static int gumbel(IrGraph *g, uint32_t salt) {
  IrAttr a = {.shape = SH(2, 2, 3), .salt = salt};
  return ir_build(g, OP_GUMBEL, NULL, 0, &a, LOC);
}

/* 20 nodes; cse merges m2, m3 (into m1, m3 by commutativity), s2, c2, g2, p2. */
static IrGraph *cse_graph(void) {
  IrGraph *g = ir_graph_new("cse");
  IrShape s = SH(2, 2, 3);
  int x = ir_input(g, "x", IR_F32, s, LOC), y = ir_input(g, "y", IR_F32, s, LOC);
  int m1 = ir_binary(g, OP_MUL, x, y, LOC), m2 = ir_binary(g, OP_MUL, x, y, LOC);
  int m3 = ir_binary(g, OP_MUL, y, x, LOC);
  int s1 = ir_binary(g, OP_ADD, m1, m2, LOC), s2 = ir_binary(g, OP_ADD, m2, m3, LOC);
  int d1 = ir_binary(g, OP_SUB, x, y, LOC), d2 = ir_binary(g, OP_SUB, y, x, LOC); /* not commutative */
  int c1 = ir_const(g, IR_F32, s, 2, LOC), c2 = ir_const(g, IR_F32, s, 2, LOC);
  int z1 = ir_const(g, IR_F32, s, 0.0, LOC), z2 = ir_const(g, IR_F32, s, -0.0, LOC); /* different bits */
  int g1 = gumbel(g, 1), g2 = gumbel(g, 1), g3 = gumbel(g, 2);
  int p1 = ir_binary(g, OP_MUL, c1, g1, LOC), p2 = ir_binary(g, OP_MUL, c2, g2, LOC);
  int q1 = ir_binary(g, OP_ADD, g3, z1, LOC), q2 = ir_binary(g, OP_ADD, g3, z2, LOC);
  set_outputs(g, (int[]){s1, s2, d1, d2, p1, p2, q1, q2}, 8);
  ck_assert_int_eq(g->n, 20);
  return g;
}

START_TEST(cse_merges_identical_nodes_only) {
  IrGraph *a = cse_graph(), *b = cse_graph();
  run_passes(b, "cse");
  ck_assert_int_eq(b->n, 14);
  ck_assert_int_eq(count_op(b, OP_INPUT), 2);  /* same shape, still two arguments */
  ck_assert_int_eq(count_op(b, OP_GUMBEL), 2); /* salts 1 and 2 */
  ck_assert_int_eq(count_op(b, OP_SUB), 2);
  ck_assert_int_eq(count_op(b, OP_MUL), 2); /* x*y (= y*x) and 2*g1 */
  ck_assert_int_eq(b->output[0], b->output[1]);
  ck_assert_int_eq(b->output[4], b->output[5]);
  ck_assert_int_ne(b->output[6], b->output[7]);
  expect_same_results(a, b);
  expect_idempotent(b, "cse");
  ir_graph_free(a);
  ir_graph_free(b);
}
END_TEST

/* Parameters and state are never merged, even when identical in all but name. */
START_TEST(cse_keeps_every_persistent_tensor) {
  IrGraph *g = ir_graph_new("p");
  IrShape s = SH(1, 4);
  int p = ir_param(g, "p", s, IR_INIT_ZEROS, 0, 0, LOC), q = ir_param(g, "q", s, IR_INIT_ZEROS, 0, 0, LOC);
  int t = ir_state(g, "t", s, LOC);
  int u = ir_state(g, "u", s, LOC);
  int sum = ir_binary(g, OP_ADD, ir_binary(g, OP_ADD, p, q, LOC), ir_binary(g, OP_ADD, t, u, LOC), LOC);
  set_outputs(g, &sum, 1);
  int n = g->n;
  run_passes(g, "cse");
  ck_assert_int_eq(g->n, n);
  ck_assert_int_eq(g->nparam, 4);
  ir_graph_free(g);
}
END_TEST

/* ---- fold --------------------------------------------------------------- */

/* out = x + sum(exp(broadcast(3.0)), axis 1): 7 nodes. */
static IrGraph *fold_chain_graph(void) {
  IrGraph *g = ir_graph_new("fold");
  int x = ir_input(g, "x", IR_F32, SH(1, 2), LOC);
  int b = ir_broadcast_to(g, scalar(g, 3.0), SH(2, 2, 3), LOC); /* reshape + broadcast */
  int s = ir_reduce(g, OP_SUM, ir_unary(g, OP_EXP, b, LOC), 2u, false, LOC);
  int out = ir_binary(g, OP_ADD, x, s, LOC);
  set_outputs(g, &out, 1);
  ck_assert_int_eq(g->n, 7);
  return g;
}

START_TEST(fold_turns_constant_chains_into_one_const) {
  IrGraph *a = fold_chain_graph(), *b = fold_chain_graph();
  run_passes(b, "fold");
  ck_assert_int_eq(b->n, 7); /* reshape, broadcast, exp, sum replaced by consts; dead ones left */
  run_passes(b, "dce");
  ck_assert_int_eq(b->n, 3); /* x, const, add */
  const IrNode *c = &b->node[b->node[b->output[0]].in[1]];
  ck_assert_int_eq(c->op, OP_CONST);
  ck_assert_int_eq(c->shape.rank, 1);
  ck_assert(c->attr.value == (double)(float)(3.0 * (double)(float)exp(3.0)));
  expect_same_results(a, b);
  expect_idempotent(b, "fold");
  ir_graph_free(a);
  ir_graph_free(b);
}
END_TEST

/* A 512x512 broadcast of constants stays one CONST node: nothing is materialised. */
START_TEST(fold_never_materialises_large_tensors) {
  IrGraph *g = ir_graph_new("big");
  IrShape s = SH(2, 512, 512);
  int a = ir_broadcast_to(g, scalar(g, 1.5), s, LOC);
  int out = ir_binary(g, OP_MUL, a, ir_binary(g, OP_ADD, a, scalar(g, 0.25), LOC), LOC);
  set_outputs(g, &out, 1);
  run_passes(g, "fold,dce");
  ck_assert_int_eq(g->n, 1);
  ck_assert_int_eq(g->node[0].op, OP_CONST);
  ck_assert(g->node[0].attr.value == 1.5 * 1.75);
  ck_assert(ir_shape_eq(&g->node[0].shape, &s));
  ir_graph_free(g);
}
END_TEST

/* Integer division by zero is not folded: the executor must still report it. */
START_TEST(fold_leaves_runtime_errors_to_run_time) {
  IrGraph *g = ir_graph_new("div0");
  int d = ir_binary(g, OP_DIV, ir_scalar(g, IR_I32, 7, LOC), ir_scalar(g, IR_I32, 0, LOC), LOC);
  set_outputs(g, &d, 1);
  run_passes(g, "fold");
  ck_assert_int_eq(g->n, 3);
  ck_assert_int_eq(g->node[g->output[0]].op, OP_DIV);
  RtTensor *out[1];
  RtErr e;
  ck_assert_int_eq(ref_run(g, NULL, NULL, out, NULL, &e), -1);
  ck_assert_ptr_nonnull(strstr(e.msg, "division by zero"));
  ir_graph_free(g);
}
END_TEST

static const IrOp unary_f32_ops[] = {OP_NEG, OP_ABS,  OP_EXP,     OP_LOG,  OP_SQRT,
                                     OP_RSQRT, OP_TANH, OP_SIGMOID, OP_RELU, OP_GELU, OP_STOP_GRADIENT};
static const IrOp binary_ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN,
                                  OP_LT,  OP_LE,  OP_GT,  OP_GE,  OP_EQ,  OP_NE};
#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

/* Every foldable op over constants, as outputs of one graph; i32 values
 * include the corners of floor division and wrapping. */
static IrGraph *fold_ops_graph(void) {
  IrGraph *g = ir_graph_new("ops");
  IrShape s = SH(2, 2, 3);
  int out[1100], n = 0;
  const double fv[] = {-1.75, -0.0, 0.3, 2.0, INFINITY, NAN};
  const double iv[] = {-7, -1, 0, 3, 2147483647, -2147483648.0};
  for (int i = 0; i < COUNT(fv); i++) {
    int c = ir_const(g, IR_F32, s, fv[i], LOC);
    for (int u = 0; u < COUNT(unary_f32_ops); u++) out[n++] = ir_unary(g, unary_f32_ops[u], c, LOC);
    out[n++] = build1(g, OP_CAST, c, &(IrAttr){.dtype = IR_I32});
    out[n++] = ir_reduce(g, OP_SUM, c, 3u, false, LOC);
    out[n++] = ir_reduce(g, OP_REDUCE_MAX, c, 1u, true, LOC);
    out[n++] = build1(g, OP_ARGMAX, c, &(IrAttr){.axis = 1});
    out[n++] = build1(g, OP_PERMUTE, c, &(IrAttr){.perm = {1, 0}});
    out[n++] = build1(g, OP_SLICE, c, &(IrAttr){.start = {1, 0}, .stop = {2, 2}});
    out[n++] = ir_binary(g, OP_POW, c, ir_const(g, IR_F32, s, fv[(i + 1) % COUNT(fv)], LOC), LOC);
    for (int j = 0; j < COUNT(fv); j++) {
      int d = ir_const(g, IR_F32, s, fv[j], LOC);
      for (int b = 0; b < COUNT(binary_ops); b++) out[n++] = ir_binary(g, binary_ops[b], c, d, LOC);
    }
    int cat = ir_const(g, IR_F32, SH(2, 2, 1), fv[i], LOC);
    int both[2] = {c, cat};
    out[n++] = ir_build(g, OP_CONCAT, both, 2, &(IrAttr){.axis = 1}, LOC);
  }
  for (int i = 0; i < COUNT(iv); i++) {
    int c = ir_const(g, IR_I32, s, iv[i], LOC);
    out[n++] = ir_unary(g, OP_NEG, c, LOC);
    out[n++] = ir_unary(g, OP_ABS, c, LOC);
    out[n++] = build1(g, OP_CAST, c, &(IrAttr){.dtype = IR_F32});
    out[n++] = ir_reduce(g, OP_SUM, c, 3u, true, LOC);
    for (int j = 0; j < COUNT(iv); j++) {
      int d = ir_const(g, IR_I32, s, iv[j], LOC);
      for (int b = 0; b < COUNT(binary_ops); b++)
        if (binary_ops[b] != OP_DIV || iv[j] != 0) out[n++] = ir_binary(g, binary_ops[b], c, d, LOC);
    }
    out[n++] = ir_where(g, c, ir_scalar(g, IR_F32, 1.5, LOC), ir_scalar(g, IR_F32, -2.5, LOC), LOC);
  }
  IrAttr io = {.shape = SH(3, 2, 1, 3), .axis = 1};
  out[n++] = ir_build(g, OP_IOTA, NULL, 0, &io, LOC);
  ck_assert_int_le(n, COUNT(out));
  set_outputs(g, out, n);
  return g;
}

START_TEST(fold_matches_the_executor_bit_for_bit) {
  IrGraph *a = fold_ops_graph(), *b = fold_ops_graph();
  run_passes(b, "fold,dce");
  ck_assert_int_eq(b->n, count_op(b, OP_CONST)); /* everything folded */
  expect_same_results(a, b);
  expect_idempotent(b, "fold");
  ir_graph_free(a);
  ir_graph_free(b);
}
END_TEST

/* ---- algebra -------------------------------------------------------------- */

typedef struct {
  const char *name;
  IrGraph *(*build)(void);
  int nodes; /* after algebra and dce */
} AlgebraCase;

static IrGraph *graph_x(IrGraph **gp, int *x, IrShape s) {
  *gp = ir_graph_new("alg");
  *x = ir_input(*gp, "x", IR_F32, s, LOC);
  return *gp;
}

static IrGraph *done(IrGraph *g, int out) {
  set_outputs(g, &out, 1);
  return g;
}

/* x op c, or c op x when 'left': the builder broadcasts the scalar c. */
static IrGraph *with_scalar(IrOp op, double c, bool left) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  int k = scalar(g, c);
  return done(g, left ? ir_binary(g, op, k, x, LOC) : ir_binary(g, op, x, k, LOC));
}

static IrGraph *mul_one(void) { return with_scalar(OP_MUL, 1, false); }
static IrGraph *one_mul(void) { return with_scalar(OP_MUL, 1, true); }
static IrGraph *add_zero(void) { return with_scalar(OP_ADD, 0, false); }
static IrGraph *zero_add(void) { return with_scalar(OP_ADD, -0.0, true); }
static IrGraph *sub_zero(void) { return with_scalar(OP_SUB, 0, false); }
static IrGraph *div_one(void) { return with_scalar(OP_DIV, 1, false); }
static IrGraph *pow_one(void) { return with_scalar(OP_POW, 1, false); }
static IrGraph *mul_two(void) { return with_scalar(OP_MUL, 2, false); }      /* no rule: 5 nodes stay */
static IrGraph *mul_zero_kept(void) { return with_scalar(OP_MUL, 0, false); } /* x may be inf or NaN */
static IrGraph *zero_sub(void) { return with_scalar(OP_SUB, 0, true); }      /* 0 - x is not x */

static IrGraph *i32_identities(void) {
  IrGraph *g = ir_graph_new("alg");
  int i = ir_input(g, "i", IR_I32, SH(1, 4), LOC);
  int a = ir_binary(g, OP_SUB, i, ir_scalar(g, IR_I32, 0, LOC), LOC);
  return done(g, ir_binary(g, OP_DIV, ir_binary(g, OP_MUL, a, ir_scalar(g, IR_I32, 1, LOC), LOC),
                           ir_scalar(g, IR_I32, 1, LOC), LOC));
}

/* onehot(i) * 0 -> zeros: a onehot is finite. */
static IrGraph *mul_zero_finite(void) {
  IrGraph *g = ir_graph_new("alg");
  int i = ir_input(g, "i", IR_I32, SH(1, 3), LOC);
  int oh = build1(g, OP_ONEHOT, i, &(IrAttr){.depth = 4, .axis = 1});
  return done(g, ir_binary(g, OP_MUL, scalar(g, 0), oh, LOC));
}

/* i32 * 0 -> zeros. */
static IrGraph *mul_zero_i32(void) {
  IrGraph *g = ir_graph_new("alg");
  int i = ir_input(g, "i", IR_I32, SH(1, 3), LOC);
  return done(g, ir_binary(g, OP_MUL, i, ir_scalar(g, IR_I32, 0, LOC), LOC));
}

static IrGraph *neg_neg(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(1, 3));
  return done(g, ir_unary(g, OP_NEG, ir_unary(g, OP_NEG, x, LOC), LOC));
}

static IrGraph *neg_neg_neg(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(1, 3));
  return done(g, ir_unary(g, OP_NEG, ir_unary(g, OP_NEG, ir_unary(g, OP_NEG, x, LOC), LOC), LOC));
}

static IrGraph *max_self(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(1, 3));
  return done(g, ir_binary(g, OP_MIN, ir_binary(g, OP_MAX, x, x, LOC), ir_binary(g, OP_MAX, x, x, LOC), LOC));
}

static IrGraph *permute_twice(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(3, 2, 3, 4));
  int a = ir_permute(g, x, (int[]){1, 0, 2}, LOC);
  return done(g, ir_permute(g, a, (int[]){0, 2, 1}, LOC)); /* = permute(x, (1, 2, 0)) */
}

static IrGraph *permute_inverse(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(3, 2, 3, 4));
  int a = ir_permute(g, x, (int[]){1, 2, 0}, LOC);
  return done(g, ir_permute(g, a, (int[]){2, 0, 1}, LOC));
}

static IrGraph *permute_three(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(3, 2, 3, 4));
  int a = ir_permute(g, x, (int[]){1, 2, 0}, LOC);
  int b = ir_permute(g, a, (int[]){1, 0, 2}, LOC);
  return done(g, ir_permute(g, b, (int[]){0, 2, 1}, LOC)); /* = permute(x, (2, 0, 1)) */
}

static IrGraph *permute_identity(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, build1(g, OP_PERMUTE, x, &(IrAttr){.perm = {0, 1}}));
}

static IrGraph *reshape_chain(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  int a = ir_reshape(g, ir_reshape(g, x, SH(2, 3, 2), LOC), SH(1, 6), LOC);
  return done(g, ir_reshape(g, a, SH(2, 1, 6), LOC));
}

static IrGraph *reshape_back(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, ir_reshape(g, ir_reshape(g, x, SH(1, 6), LOC), SH(2, 2, 3), LOC));
}

static IrGraph *reshape_same(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, build1(g, OP_RESHAPE, x, &(IrAttr){.shape = SH(2, 2, 3)}));
}

static IrGraph *broadcast_same(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, build1(g, OP_BROADCAST, x, &(IrAttr){.shape = SH(2, 2, 3)}));
}

static IrGraph *broadcast_twice(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(3, 1, 1, 3));
  int a = build1(g, OP_BROADCAST, x, &(IrAttr){.shape = SH(3, 1, 2, 3)});
  return done(g, build1(g, OP_BROADCAST, a, &(IrAttr){.shape = SH(3, 4, 2, 3)}));
}

/* reshape(broadcast(reshape(s))) of a scalar s -> broadcast(reshape(s)). */
static IrGraph *reshape_of_scalar_broadcast(void) {
  IrGraph *g;
  int s;
  graph_x(&g, &s, SH(0));
  int b = ir_broadcast_to(g, s, SH(2, 2, 3), LOC);
  return done(g, ir_reshape(g, b, SH(1, 6), LOC));
}

static IrGraph *sum_no_axes(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, ir_reduce(g, OP_SUM, ir_reduce(g, OP_REDUCE_MAX, x, 0, false, LOC), 0, true, LOC));
}

static IrGraph *sum_unit_axes(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(3, 1, 3, 1));
  int m = ir_reduce(g, OP_REDUCE_MAX, x, 1u, true, LOC);
  return done(g, ir_reduce(g, OP_SUM, m, 5u, false, LOC)); /* -> reshape(x, [3]) */
}

static IrGraph *sum_real_axis(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, ir_reduce(g, OP_SUM, x, 2u, false, LOC));
}

static IrGraph *slice_all(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, build1(g, OP_SLICE, x, &(IrAttr){.start = {0, 0}, .stop = {2, 3}}));
}

static IrGraph *cast_same(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, build1(g, OP_CAST, x, &(IrAttr){.dtype = IR_F32}));
}

/* x + stop_gradient(const) -> x + const */
static IrGraph *stop_gradient_const(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  int c = ir_const(g, IR_F32, SH(2, 2, 3), 2.5, LOC);
  return done(g, ir_binary(g, OP_ADD, x, ir_unary(g, OP_STOP_GRADIENT, c, LOC), LOC));
}

static IrGraph *stop_gradient_twice(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  return done(g, ir_unary(g, OP_STOP_GRADIENT, ir_unary(g, OP_STOP_GRADIENT, x, LOC), LOC));
}

static IrGraph *where_const_cond(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  int y = ir_input(g, "y", IR_F32, SH(2, 2, 3), LOC);
  return done(g, ir_where(g, ir_scalar(g, IR_I32, 0, LOC), x, y, LOC)); /* -> y */
}

static IrGraph *where_same_branches(void) {
  IrGraph *g;
  int x;
  graph_x(&g, &x, SH(2, 2, 3));
  int c = ir_input(g, "c", IR_I32, SH(2, 2, 3), LOC);
  return done(g, ir_where(g, c, x, x, LOC));
}

static const AlgebraCase algebra_cases[] = {
    {"x*1", mul_one, 1},
    {"1*x", one_mul, 1},
    {"x+0", add_zero, 1},
    {"-0+x", zero_add, 1},
    {"x-0", sub_zero, 1},
    {"x/1", div_one, 1},
    {"pow(x,1)", pow_one, 1},
    {"x*2 (no rule)", mul_two, 5},
    {"x*0 with x unknown (kept)", mul_zero_kept, 5},
    {"0-x (no rule)", zero_sub, 5},
    {"i32 (x-0)*1/1", i32_identities, 1},
    {"0*onehot", mul_zero_finite, 2},   /* the input, the zeros */
    {"i32 x*0", mul_zero_i32, 2},
    {"neg(neg x)", neg_neg, 1},
    {"neg(neg(neg x))", neg_neg_neg, 2},
    {"min(max(x,x),max(x,x))", max_self, 1},
    {"permute of permute", permute_twice, 2},
    {"permute of its inverse", permute_inverse, 1},
    {"three permutes", permute_three, 2},
    {"identity permute", permute_identity, 1},
    {"reshape chain", reshape_chain, 2},
    {"reshape chain back", reshape_back, 1},
    {"reshape to same shape", reshape_same, 1},
    {"broadcast to same shape", broadcast_same, 1},
    {"broadcast of broadcast", broadcast_twice, 2},
    {"reshape of scalar broadcast", reshape_of_scalar_broadcast, 3}, /* s, reshape, broadcast */
    {"sum/max over no axes", sum_no_axes, 1},
    {"sum/max over length-1 axes", sum_unit_axes, 2},
    {"sum over a real axis (no rule)", sum_real_axis, 2},
    {"slice of everything", slice_all, 1},
    {"cast to own dtype", cast_same, 1},
    {"stop_gradient(const)", stop_gradient_const, 3},
    {"stop_gradient(stop_gradient x)", stop_gradient_twice, 2},
    {"where(0, x, y)", where_const_cond, 2},
    {"where(c, x, x)", where_same_branches, 2},
};

START_TEST(algebra_rule) {
  const AlgebraCase *c = &algebra_cases[_i];
  IrGraph *a = c->build(), *b = c->build();
  run_passes(b, "algebra,dce");
  ck_assert_msg(b->n == c->nodes, "%s: %d nodes after algebra and dce, expected %d", c->name, b->n, c->nodes);
  expect_same_results(a, b);
  expect_idempotent(b, "algebra");
  ir_graph_free(a);
  ir_graph_free(b);
}
END_TEST

/* Why x*0 stays for unknown x: with x = inf it is NaN, which must show. */
START_TEST(algebra_keeps_nan_of_inf_times_zero) {
  IrGraph *g = mul_zero_kept();
  run_passes(g, "algebra,dce");
  RtTensor *x = rt_tensor_new(RT_F32, 2, (int64_t[]){2, 3}, NULL), *out[1];
  rt_f32(x)[4] = INFINITY;
  RtErr e;
  ck_assert_msg(ref_run(g, &x, NULL, out, NULL, &e) == 0, "%s", e.msg);
  ck_assert(isnan(rt_f32(out[0])[4]));
  ck_assert(rt_f32(out[0])[0] == 0);
  rt_tensor_free(x);
  rt_tensor_free(out[0]);
  ir_graph_free(g);
}
END_TEST

/* ---- together -------------------------------------------------------------- */

/* A pseudo-random graph over [2, 3] values: unary and binary ops, scalar
 * constants (0, 1, 2, broadcast by the builder), reshapes and permutes that
 * go and come back, keepdim sums broadcast back, stop_gradient, and
 * repeated subexpressions. Division, pow and rsqrt stay out, as they tell
 * -0 from +0 (see algebra.c). */
static IrGraph *random_graph(uint64_t seed) {
  IrGraph *g = ir_graph_new("rand");
  IrShape s = SH(2, 2, 3);
  int pool[256], n = 0;
  pool[n++] = ir_input(g, "x", IR_F32, s, LOC);
  pool[n++] = ir_input(g, "y", IR_F32, s, LOC);
  pool[n++] = ir_param(g, "w", s, IR_INIT_ZEROS, 0, 0, LOC);
  static const IrOp un[] = {OP_NEG, OP_TANH, OP_RELU, OP_ABS, OP_SIGMOID, OP_STOP_GRADIENT};
  static const IrOp bin[] = {OP_ADD, OP_SUB, OP_MUL, OP_MAX, OP_MIN};
  static const double consts[] = {0, 1, 2, -0.0};
  uint64_t st = seed;
  while (n < 120) {
    int a = pool[lcg(&st) % (uint64_t)n], b = pool[lcg(&st) % (uint64_t)n], id;
    switch (lcg(&st) % 7) {
    case 0: id = ir_unary(g, un[lcg(&st) % COUNT(un)], a, LOC); break;
    case 1: id = ir_binary(g, bin[lcg(&st) % COUNT(bin)], a, b, LOC); break;
    case 2: {
      int c = ir_scalar(g, IR_F32, consts[lcg(&st) % COUNT(consts)], LOC);
      id = lcg(&st) % 2 ? ir_binary(g, OP_MUL, a, c, LOC) : ir_binary(g, OP_ADD, c, a, LOC);
      break;
    }
    case 3: id = ir_reshape(g, ir_reshape(g, a, SH(1, 6), LOC), s, LOC); break;
    case 4: id = ir_permute(g, ir_permute(g, a, (int[]){1, 0}, LOC), (int[]){1, 0}, LOC); break;
    case 5: id = ir_binary(g, OP_ADD, a, ir_reduce(g, OP_SUM, b, 1u << (lcg(&st) % 2), true, LOC), LOC); break;
    default: id = ir_binary(g, OP_MUL, a, b, LOC); /* often a repeat of an earlier product */
    }
    ck_assert_msg(id >= 0, "%s", g->error);
    pool[n++] = id;
  }
  set_outputs(g, (int[]){pool[n - 1], pool[n - 2], pool[n / 2], pool[3]}, 4);
  return g;
}

START_TEST(pipeline_on_random_graphs_keeps_values) {
  for (uint64_t seed = 1; seed <= 4; seed++) {
    IrGraph *a = random_graph(seed), *b = random_graph(seed);
    run_passes(a, "dce");
    run_passes(b, "cse,fold,algebra,cse,dce");
    ck_assert_msg(b->n < a->n, "seed %d: %d nodes, %d live before", (int)seed, b->n, a->n);
    expect_same_results(a, b);
    int n = b->n;
    char *before = ir_text(b);
    run_passes(b, "cse,fold,algebra,cse,dce");
    char *after = ir_text(b);
    ck_assert_int_eq(b->n, n);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    ir_graph_free(a);
    ir_graph_free(b);
  }
}
END_TEST

/* A training step with AdamW: the passes keep the update list (and the
 * updated values) intact. Two parameters of one shape share work for cse. */
static IrGraph *step_graph(void) {
  IrGraph *g = ir_graph_new("step");
  IrShape s = SH(2, 3, 2);
  int p[2] = {ir_param(g, "a", s, IR_INIT_ZEROS, 0, 0, LOC), ir_param(g, "b", s, IR_INIT_ZEROS, 0, 0, LOC)};
  int gr[2] = {ir_input(g, "ga", IR_F32, s, LOC), ir_input(g, "gb", IR_F32, s, LOC)};
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.01, .clip_norm = 1};
  ck_assert_msg(opt_adamw(g, p, gr, 2, &o) == 0, "%s", g->error);
  return g;
}

START_TEST(passes_keep_updates) {
  IrGraph *a = step_graph(), *b = step_graph();
  run_passes(b, "cse,fold,algebra");
  ck_assert_int_lt(b->n, a->n);
  ck_assert_int_eq(b->nupdate, a->nupdate);
  for (int i = 0; i < a->nupdate; i++)
    ck_assert_str_eq(b->node[b->update_target[i]].name, a->node[a->update_target[i]].name);
  expect_same_results(a, b);
  ir_graph_free(a);
  ir_graph_free(b);
}
END_TEST

/* ---- registry and stats ------------------------------------------------------ */

START_TEST(passes_are_registered_with_help) {
  const char *names[] = {"cse", "fold", "algebra"};
  for (int i = 0; i < 3; i++) {
    const Pass *p = pass_find(names[i]);
    ck_assert_ptr_nonnull(p);
    ck_assert(p->help && p->help[0]);
  }
  ck_assert_ptr_eq(pass_find("cse")->run, pass_cse);
  ck_assert_ptr_eq(pass_find("fold")->run, pass_fold);
  ck_assert_ptr_eq(pass_find("algebra")->run, pass_algebra);
}
END_TEST

START_TEST(stats_print_counts_before_and_after_each_pass) {
  IrGraph *g = cse_graph();
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  ck_assert_int_eq(pass_run_pipeline_stats(g, "cse,dce", f), 0);
  fclose(f);
  char *lines[4] = {0};
  int n = 0;
  for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && n < 4; l = strtok_r(NULL, "\n", &save)) lines[n++] = l;
  ck_assert_int_eq(n, 3);
  ck_assert_msg(strncmp(lines[0], "input", 5) == 0 && strstr(lines[0], " 20 nodes  0 params  0 state  |"), "%s",
                lines[0]);
  ck_assert_msg(strstr(lines[0], "| input 2, const 4, gumbel 3, add 4, sub 2, mul 5"), "%s", lines[0]);
  ck_assert_msg(strncmp(lines[1], "after cse", 9) == 0 && strstr(lines[1], " 14 nodes (-6)"), "%s", lines[1]);
  ck_assert_msg(strstr(lines[1], "mul 2"), "%s", lines[1]);
  ck_assert_msg(strncmp(lines[2], "after dce", 9) == 0 && strstr(lines[2], "(+0)"), "%s", lines[2]);
  free(buf);
  /* A bad name fails as pass_run_pipeline does; NULL prints nothing. */
  ck_assert_int_eq(pass_run_pipeline_stats(g, "fold,nosuch", NULL), -1);
  ck_assert_ptr_nonnull(strstr(g->error, "unknown pass 'nosuch'"));
  ir_graph_free(g);
}
END_TEST

START_TEST(stats_count_params_and_state) {
  IrGraph *g = step_graph();
  char *buf = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  pass_print_stats(g, "step", -1, f);
  fclose(f);
  char want[64];
  snprintf(want, sizeof want, " %d nodes  2 params  7 state  |", g->n);
  ck_assert_msg(strstr(buf, want) && !strstr(buf, "("), "%s", buf);
  ck_assert_msg(strstr(buf, "state 7") && strstr(buf, "sqrt 4"), "%s", buf);
  free(buf);
  ir_graph_free(g);
}
END_TEST

int main(void) {
  Suite *s = suite_create("simplify");
  TCase *tc = tcase_create("passes");
  tcase_add_test(tc, cse_merges_identical_nodes_only);
  tcase_add_test(tc, cse_keeps_every_persistent_tensor);
  tcase_add_test(tc, fold_turns_constant_chains_into_one_const);
  tcase_add_test(tc, fold_never_materialises_large_tensors);
  tcase_add_test(tc, fold_leaves_runtime_errors_to_run_time);
  tcase_add_test(tc, fold_matches_the_executor_bit_for_bit);
  tcase_add_loop_test(tc, algebra_rule, 0, COUNT(algebra_cases));
  tcase_add_test(tc, algebra_keeps_nan_of_inf_times_zero);
  tcase_add_test(tc, pipeline_on_random_graphs_keeps_values);
  tcase_add_test(tc, passes_keep_updates);
  tcase_add_test(tc, passes_are_registered_with_help);
  tcase_add_test(tc, stats_print_counts_before_and_after_each_pass);
  tcase_add_test(tc, stats_count_params_and_state);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
