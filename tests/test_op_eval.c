/* test_op_eval.c — every elementwise op of ops.def (PAT_ELEMWISE), on
 * special values (NaN, ±inf, ±0, subnormals, the float limits, exp's
 * overflow edges, large and ordinary values), computed five ways:
 *   (a) ir/op_eval directly: the definition;
 *   (b) the reference executor (ref_run on a graph of the op alone);
 *   (c) constant folding (pass_fold on the op applied to CONSTs);
 *   (d) the frontend's compile-time arithmetic (`let v = exp(...)`), for
 *       the ops that are built-in functions on numbers;
 *   (e) the LLVM JIT kernel.
 * (b), (c), (d) must agree with (a) bit for bit (NaN matches any NaN); (e)
 * too, except for the ops op_eval_ulp_bound() names, which must be within
 * OP_EVAL_ULP_BOUND ulp or OP_EVAL_ABS_FLOOR absolutely (ir/op_eval.h).
 * The test walks the op table, so a new elementwise op is covered without
 * being named here, and an elementwise op without an op_eval kind fails.
 * The largest ulp distance seen per op is printed (that is how the bound
 * in op_eval.h was chosen). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/op_eval.h"
#include "ir/ref/ref.h"
#include "passes/simplify.h"
#include "tests/jit_check.h"
#include "tests/util.h"

static const SrcLoc here = {"test_op_eval.c", 1, 1};

/* ---- the values ---- */

static float f32_values[] = {
    NAN, INFINITY, -INFINITY, 0.0f, -0.0f,
    1.40129846e-45f /* smallest subnormal */, -1.40129846e-45f, 5.877472e-39f /* mid subnormal */,
    1.17549435e-38f /* FLT_MIN */, -1.17549435e-38f, 3.40282347e38f /* FLT_MAX */, -3.40282347e38f,
    1e20f, -1e20f, 88.72f, 88.73f, -87.3f, -103.9f, -104.0f, 100.0f, -100.0f,
    1.0f, -1.0f, 0.5f, -0.5f, 2.5f, -3.0f, 1e-3f, -1e-3f, 7.0f, -7.0f, 12.5f, -12.5f, 20.0f, -20.0f,
    0.625f, -0.625f, 0.62f, 3.14159274f, 1e-20f, -2.0f, -5.0f, -9.0f, -10.5f, -11.0f, -11.6f,
};
#define NF ((int)(sizeof f32_values / sizeof f32_values[0]))

static int32_t i32_values[] = {INT32_MIN, INT32_MIN + 1, -100000, -7, -2, -1, 0, 1, 2, 3, 7, 100000, INT32_MAX};
#define NI ((int)(sizeof i32_values / sizeof i32_values[0]))

/* ---- comparing ---- */

static uint32_t bits_f(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

/* Distance in representable floats (±0 are one apart, which is harmless). */
static int64_t ulp_distance(float a, float b) {
  int64_t ka = (int32_t)bits_f(a), kb = (int32_t)bits_f(b);
  if (ka < 0) ka = (int64_t)INT32_MIN - ka;
  if (kb < 0) kb = (int64_t)INT32_MIN - kb;
  return ka > kb ? ka - kb : kb - ka;
}

static bool same_f(float got, float want) {
  if (isnan(got) || isnan(want)) return isnan(got) && isnan(want);
  return bits_f(got) == bits_f(want);
}

/* Within 'ulps' (0: bit for bit); *seen grows to the distance found. */
static bool close_f(float got, float want, int ulps, int64_t *seen) {
  if (same_f(got, want)) return true;
  if (ulps == 0 || isnan(got) || isnan(want)) return false;
  if (isinf(got) || isinf(want)) return false;
  if (fabs((double)got - (double)want) <= OP_EVAL_ABS_FLOOR) return true;
  int64_t d = ulp_distance(got, want);
  if (d > *seen) *seen = d;
  return d <= ulps;
}

/* ---- one op's cases: flat operand arrays and the expected results ---- */

typedef struct {
  IrOp op;
  IrDType in_t[3], out_t;
  int nin, n;
  double *in[3];  /* operand values (f32 or i32, exactly) */
  double *want;   /* op_eval's result, exactly (f32 or i32) */
} Cases;

static void cases_alloc(Cases *c, int n) {
  c->n = n;
  for (int k = 0; k < 3; k++) c->in[k] = calloc((size_t)n + 1, sizeof(double));
  c->want = calloc((size_t)n + 1, sizeof(double));
}

static void cases_free(Cases *c) {
  for (int k = 0; k < 3; k++) free(c->in[k]);
  free(c->want);
}

/* (a): the definition, one element. */
static double eval_one(const Cases *c, int i) {
  double x = c->in[0][i], y = c->in[1][i], z = c->in[2][i];
  bool f = c->in_t[c->nin - 1] == IR_F32;
  switch (op_eval_kind(c->op)) {
  case OP_EVAL_UNARY:
    if (f) return op_eval_unary_f32(c->op, (float)x);
    return op_eval_unary_i32(c->op, (int32_t)x);
  case OP_EVAL_BINARY: {
    if (f) return op_eval_binary_f32(c->op, (float)x, (float)y);
    int32_t r = 0;
    ck_assert(op_eval_binary_i32(c->op, (int32_t)x, (int32_t)y, &r));
    return r;
  }
  case OP_EVAL_COMPARE: return op_eval_compare(c->op, x, y);
  case OP_EVAL_WHERE: return op_eval_where((int32_t)x, y, z);
  case OP_EVAL_CAST:
    if (c->out_t == IR_I32) return op_eval_cast_f32_i32((float)x);
    return op_eval_cast_i32_f32((int32_t)x);
  case OP_EVAL_IDENTITY: return x;
  case OP_EVAL_NONE: break;
  }
  ck_abort_msg("%s has no op_eval kind", ir_op_name(c->op));
  return 0;
}

static double value_of(IrDType t, int i) { return t == IR_F32 ? (double)f32_values[i % NF] : (double)i32_values[i % NI]; }
static int count_of(IrDType t) { return t == IR_F32 ? NF : NI; }

/* Every combination of values for op with operand dtype t (cond of where
 * is i32 0/1; i32 division skips zero divisors, which the executor reports
 * as an error rather than computing). */
static bool build_cases(Cases *c, IrOp op, IrDType t) {
  memset(c, 0, sizeof *c);
  c->op = op;
  c->nin = ir_op_arity(op);
  c->out_t = t;
  for (int k = 0; k < c->nin; k++) c->in_t[k] = t;
  OpEvalKind kind = op_eval_kind(op);
  if (kind == OP_EVAL_COMPARE) c->out_t = IR_I32;
  if (kind == OP_EVAL_WHERE) c->in_t[0] = IR_I32;
  if (kind == OP_EVAL_CAST) c->out_t = t == IR_F32 ? IR_I32 : IR_F32;
  int m = count_of(t), n = 1;
  for (int k = 0; k < c->nin; k++) n *= (kind == OP_EVAL_WHERE && k == 0) ? 2 : m;
  cases_alloc(c, n);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    int r = i;
    for (int k = c->nin - 1; k >= 0; k--) {
      int base = (kind == OP_EVAL_WHERE && k == 0) ? 2 : m;
      c->in[k][kept] = (kind == OP_EVAL_WHERE && k == 0) ? (double)(r % base) : value_of(t, r % base);
      r /= base;
    }
    if (t == IR_I32 && op == OP_DIV && c->in[1][kept] == 0) continue;
    kept++;
  }
  c->n = kept;
  for (int i = 0; i < c->n; i++) c->want[i] = eval_one(c, i);
  return true;
}

static RtTensor *tensor_of(IrDType t, const double *v, int n) {
  RtErr e;
  int64_t d[1] = {n};
  RtTensor *x = rt_tensor_new(t == IR_F32 ? RT_F32 : RT_I32, 1, d, &e);
  ck_assert_msg(x != NULL, "%s", e.msg);
  for (int i = 0; i < n; i++) {
    if (t == IR_F32) rt_f32(x)[i] = (float)v[i];
    else rt_i32(x)[i] = (int32_t)v[i];
  }
  return x;
}

static double element(const RtTensor *x, int i) {
  return x->dtype == RT_F32 ? (double)rt_f32(x)[i] : (double)rt_i32(x)[i];
}

/* Does got match want for element i, within the op's JIT bound if 'jit'? */
static void expect_match(const Cases *c, int i, double got, const char *how, int ulps, int64_t *seen) {
  bool ok = c->out_t == IR_I32 ? got == c->want[i] : close_f((float)got, (float)c->want[i], ulps, seen);
  if (ok) return;
  char args[160] = "";
  for (int k = 0, len = 0; k < c->nin; k++)
    len += snprintf(args + len, sizeof args - (size_t)len, "%s%.9g", k ? ", " : "", c->in[k][i]);
  ck_abort_msg("%s(%s) [%s]: %s gives %.9g (0x%08x), op_eval %.9g (0x%08x)", ir_op_name(c->op), args,
               ir_dtype_name(c->in_t[c->nin - 1]), how, got, (unsigned)bits_f((float)got), c->want[i],
               (unsigned)bits_f((float)c->want[i]));
}

/* The op alone on inputs x0.. of shape [n]. */
static IrGraph *op_graph(const Cases *c) {
  IrGraph *g = ir_graph_new("op");
  int in[3];
  for (int k = 0; k < c->nin; k++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", k);
    in[k] = ir_input(g, name, c->in_t[k], (IrShape){1, {c->n}}, here);
  }
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = c->out_t;
  int y = ir_build(g, c->op, in, c->nin, &a, here);
  ck_assert_msg(y >= 0, "%s: %s", ir_op_name(c->op), g->error);
  ir_set_outputs(g, &y, NULL, 1);
  return g;
}

/* (b) and (e): the op over all cases at once, by ref_run and by the JIT. */
static void check_ref_and_jit(const Cases *c, int64_t *seen) {
  IrGraph *g = op_graph(c);
  RtTensor *in[3] = {NULL, NULL, NULL}, *rout[1] = {NULL}, *jout[1] = {NULL};
  for (int k = 0; k < c->nin; k++) in[k] = tensor_of(c->in_t[k], c->in[k], c->n);
  RtErr e = {{0}};
  ck_assert_msg(ref_run(g, in, NULL, rout, NULL, &e) == 0, "ref_run: %s", e.msg);
  for (int i = 0; i < c->n; i++) expect_match(c, i, element(rout[0], i), "the reference executor", 0, seen);

  FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(jc_session(), g, fp, &e);
  ck_assert_msg(m != NULL, "cg_module_new: %s", e.msg);
  fuse_plan_free(fp);
  ck_assert_msg(cg_module_jit(m, &e) == 0, "jit: %s", e.msg);
  const RtPlan *plan = cg_module_plan(m);
  void *arena = rt_arena_new(plan->arena_bytes, &e);
  RtTensorList *state = rt_list_new();
  RtRunCtx ctx = {0, 0};
  ck_assert_msg(rt_plan_run(plan, jc_pool(), arena, in, jout, state, &ctx, &e) == 0, "run: %s", e.msg);
  for (int i = 0; i < c->n; i++)
    expect_match(c, i, element(jout[0], i), "the JIT", op_eval_ulp_bound(c->op), seen);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
  for (int k = 0; k < c->nin; k++) rt_tensor_free(in[k]);
  rt_tensor_free(rout[0]);
  rt_tensor_free(jout[0]);
  ir_graph_free(g);
}

/* (c): element i as CONST operands, folded to one CONST. */
static void check_fold(const Cases *c, int i) {
  IrGraph *g = ir_graph_new("fold");
  int in[3];
  for (int k = 0; k < c->nin; k++) in[k] = ir_scalar(g, c->in_t[k], c->in[k][i], here);
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.dtype = c->out_t;
  int y = ir_build(g, c->op, in, c->nin, &a, here);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  ck_assert_int_eq(pass_fold(g), 0);
  const IrNode *r = &g->node[g->output[0]];
  ck_assert_msg(r->op == OP_CONST, "fold left %s(...) unfolded", ir_op_name(c->op));
  expect_match(c, i, r->attr.value, "fold", 0, NULL);
  ir_graph_free(g);
}

/* A double as a .dal expression of exactly that value. */
static void dal_number(double x, char *buf, size_t size) {
  if (isnan(x)) snprintf(buf, size, "(1e300 * 1e300 - 1e300 * 1e300)");
  else if (isinf(x)) snprintf(buf, size, "(%s1e300 * 1e300)", x < 0 ? "-" : "");
  else if (x == 0 && signbit(x)) snprintf(buf, size, "(-0.0)");
  else snprintf(buf, size, "(%.17e)", x);
}

/* The frontend's builtin on numbers for op, or NULL: unary ops are called
 * by their own name (exp, relu, ...) when the frontend has such a
 * function; max and min are maximum and minimum. */
static const char *builtin_name(IrOp op) {
  if (op == OP_MAX) return "maximum";
  if (op == OP_MIN) return "minimum";
  if (op_eval_kind(op) != OP_EVAL_UNARY) return NULL;
  char src[64], *err = NULL;
  snprintf(src, sizeof src, "let v = %s(0.5)\n", ir_op_name(op));
  FeProgram *p = fe_load_string("probe.dal", src, &(FeOptions){0}, &err);
  free(err);
  if (!p) return NULL;
  fe_free(p);
  return ir_op_name(op);
}

/* (d): `let v = name(args)` evaluated by the frontend. It may refuse an
 * argument outside the function's domain (log(-1)), but only where
 * op_eval's value is not finite. */
static void check_frontend(const Cases *c, int i, const char *name) {
  char src[400], num[3][64];
  for (int k = 0; k < c->nin; k++) dal_number(c->in[k][i], num[k], sizeof num[k]);
  if (c->nin == 1) snprintf(src, sizeof src, "let v = %s(%s)\n", name, num[0]);
  else snprintf(src, sizeof src, "let v = %s(%s, %s)\n", name, num[0], num[1]);
  char *err = NULL;
  FeProgram *p = fe_load_string("t.dal", src, &(FeOptions){0}, &err);
  if (!p) {
    ck_assert_msg(!isfinite(c->want[i]), "the frontend refused %s: %s", src, err);
    free(err);
    return;
  }
  double v;
  ck_assert(fe_global_number(p, "v", &v));
  expect_match(c, i, v, "the frontend", 0, NULL);
  fe_free(p);
}

/* Every op: elementwise ones have an op_eval kind, others none. */
START_TEST(every_elementwise_op_has_a_meaning) {
  for (int op = 0; op < OP_COUNT; op++) {
    bool elem = ir_op_pattern((IrOp)op) == PAT_ELEMWISE;
    ck_assert_msg((op_eval_kind((IrOp)op) != OP_EVAL_NONE) == elem, "%s: %s", ir_op_name((IrOp)op),
                  elem ? "elementwise but no op_eval kind" : "an op_eval kind but not elementwise");
  }
}
END_TEST

/* _i: op * 2 + (0: f32 operands, 1: i32 operands). */
START_TEST(op_agrees_everywhere) {
  IrOp op = (IrOp)(_i / 2);
  IrDType t = _i % 2 ? IR_I32 : IR_F32;
  if (ir_op_pattern(op) != PAT_ELEMWISE) return;
  if (t == IR_I32 && !ir_op_takes_i32(op)) return;
  Cases c;
  build_cases(&c, op, t);
  int64_t seen = 0;
  check_ref_and_jit(&c, &seen);
  for (int i = 0; i < c.n; i++) check_fold(&c, i);
  const char *name = t == IR_F32 ? builtin_name(op) : NULL;
  if (name)
    for (int i = 0; i < c.n; i++) check_frontend(&c, i, name);
  if (op_eval_ulp_bound(op) > 0)
    printf("test_op_eval: %s: JIT within %lld ulp (bound %d) on %d values\n", ir_op_name(op), (long long)seen,
           op_eval_ulp_bound(op), c.n);
  cases_free(&c);
}
END_TEST

/* The ops with an ulp bound on a dense sweep of ordinary arguments:
 * ±(1e-6 .. 100), geometric, through the reference executor and the JIT. */
START_TEST(transcendental_sweep) {
  for (int i = 0; i < OP_COUNT; i++) {
    IrOp op = (IrOp)i;
    if (op_eval_kind(op) != OP_EVAL_UNARY || op_eval_ulp_bound(op) == 0) continue;
    Cases c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.nin = 1;
    c.in_t[0] = c.out_t = IR_F32;
    cases_alloc(&c, 4000);
    for (int k = 0; k < 2000; k++) {
      double x = 1e-6 * pow(1e8, k / 1999.0);
      c.in[0][2 * k] = (float)x;
      c.in[0][2 * k + 1] = -(float)x;
    }
    for (int k = 0; k < c.n; k++) c.want[k] = eval_one(&c, k);
    int64_t seen = 0;
    check_ref_and_jit(&c, &seen);
    printf("test_op_eval: %s: JIT within %lld ulp (bound %d) on a sweep of %d arguments\n", ir_op_name(op),
           (long long)seen, op_eval_ulp_bound(op), c.n);
    cases_free(&c);
  }
}
END_TEST

/* NaN semantics, stated once in op_eval.h, spelled out. */
START_TEST(nan_propagates) {
  ck_assert(isnan(op_eval_unary_f32(OP_RELU, NAN)));
  ck_assert(isnan(op_eval_binary_f32(OP_MAX, NAN, 1.0f)) && isnan(op_eval_binary_f32(OP_MAX, 1.0f, NAN)));
  ck_assert(isnan(op_eval_binary_f32(OP_MIN, NAN, 1.0f)) && isnan(op_eval_binary_f32(OP_MIN, 1.0f, NAN)));
  for (int op = 0; op < OP_COUNT; op++) {
    if (op_eval_kind((IrOp)op) == OP_EVAL_UNARY) ck_assert_msg(isnan(op_eval_unary_f32((IrOp)op, NAN)), "%s", ir_op_name((IrOp)op));
    if (op_eval_kind((IrOp)op) == OP_EVAL_BINARY && (IrOp)op != OP_POW) /* pow(NaN, 0) = 1, as in C and PyTorch */
      ck_assert_msg(isnan(op_eval_binary_f32((IrOp)op, 2.0f, NAN)), "%s", ir_op_name((IrOp)op));
  }
  ck_assert_int_eq(op_eval_compare(OP_NE, NAN, NAN), 1);
  ck_assert_int_eq(op_eval_compare(OP_EQ, NAN, NAN), 0);
  ck_assert_int_eq(op_eval_cast_f32_i32(NAN), 0);
  /* the frontend folds relu(NaN) to NaN too (it used to give 0) */
  FeProgram *p = fe_load_string("t.dal", "let v = relu(1e300 * 1e300 - 1e300 * 1e300)\n", &(FeOptions){0}, NULL);
  double v = 0;
  ck_assert(p != NULL && fe_global_number(p, "v", &v) && isnan(v));
  fe_free(p);
}
END_TEST

static Suite *op_eval_suite(void) {
  Suite *s = suite_create("op_eval");
  TCase *tc = tcase_create("ops");
  tcase_add_checked_fixture(tc, jc_setup, jc_teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, every_elementwise_op_has_a_meaning);
  tcase_add_test(tc, nan_propagates);
  tcase_add_test(tc, transcendental_sweep);
  tcase_add_loop_test(tc, op_agrees_everywhere, 0, 2 * OP_COUNT);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(op_eval_suite()); }
