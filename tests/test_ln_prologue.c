/* test_ln_prologue.c — rule ln-prologue (passes/fuse_ln.c): a layer_norm
 * read only by a small-M GEMM is computed by the GEMM step (RtGemm.ln).
 * The folded GEMM is checked against the reference executor at 1e-5
 * relative for M in {1, 8, 32} (the small-M kernel and OpenBLAS, on a
 * pool of two threads), and the plan is checked: folded where it should
 * be, not where the layer_norm is read elsewhere, has too many rows, or
 * the rule is switched off. */
#include <check.h>
#include <stdlib.h>

#include "codegen/lower.h"
#include "passes/fuse.h"
#include "runtime/sched/gemm_small.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_ln_prologue.c", __LINE__, 1})

typedef struct {
  IrGraph *g;
  int ln, mm;
  RtTensor *in[5];
} LnCase;

/* y = layer_norm(x [rows... , C]) @ w (+ bias), w [N, C] (tb) or [C, N];
 * x of shape xs. 'also' returns the layer_norm too (a second reader). */
static LnCase make_case(const char *name, IrShape xs, int64_t N, bool tb, bool also) {
  LnCase c = {0};
  IrGraph *g = c.g = ir_graph_new(name);
  int64_t C = xs.d[xs.rank - 1];
  IrShape cs = ir_shape_make(1, (int64_t[]){C}), ws = ir_shape_make(2, tb ? (int64_t[]){N, C} : (int64_t[]){C, N});
  IrShape bs = ir_shape_make(1, (int64_t[]){N});
  int x = ir_input(g, "x", IR_F32, xs, LOC), ga = ir_input(g, "gamma", IR_F32, cs, LOC);
  int be = ir_input(g, "beta", IR_F32, cs, LOC), w = ir_input(g, "w", IR_F32, ws, LOC);
  int b = ir_input(g, "bias", IR_F32, bs, LOC);
  c.ln = ir_build(g, OP_LAYER_NORM, (int[]){x, ga, be}, 3, &(IrAttr){.eps = 1e-5f}, LOC);
  c.mm = ir_build(g, OP_MATMUL, (int[]){c.ln, w}, 2, &(IrAttr){.trans_b = tb}, LOC);
  int y = ir_binary(g, OP_ADD, c.mm, b, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, also ? (int[]){y, c.ln} : (int[]){y}, NULL, also ? 2 : 1);
  c.in[0] = jc_make(IR_F32, &xs, JC_NORMAL, 0);
  c.in[1] = jc_make(IR_F32, &cs, JC_NORMAL, 0);
  c.in[2] = jc_make(IR_F32, &cs, JC_NORMAL, 0);
  c.in[3] = jc_make(IR_F32, &ws, JC_NORMAL, 0);
  c.in[4] = jc_make(IR_F32, &bs, JC_NORMAL, 0);
  return c;
}

static void free_case(LnCase *c) {
  for (int i = 0; i < 5; i++) rt_tensor_free(c->in[i]);
  ir_graph_free(c->g);
}

/* GEMM steps with a layer-norm prologue in c's plan under o (lowered only:
 * jc_check_plan runs it, through rt_plan_check). */
static int ln_steps(const LnCase *c, const FuseOptions *o) {
  FusePlan *p = fuse_plan(c->g, o);
  ck_assert_ptr_nonnull(p);
  RtErr e = {{0}};
  CgLowered *l = cg_lower(c->g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  int n = 0;
  for (int s = 0; s < l->plan.nstep; s++) n += l->plan.step[s].kind == RT_STEP_GEMM && l->plan.step[s].gemm.ln;
  cg_lowered_free(l);
  fuse_plan_free(p);
  return n;
}

static const FuseOptions on = {.enabled = true};

static const struct {
  const char *name;
  int rank;
  int64_t d[3];
  int64_t N;
  bool tb;
} folds[] = {
    {"m1_tb", 2, {1, 256}, 1024, true},   {"m8_decode", 3, {8, 1, 256}, 768, false},
    {"m8_tb", 2, {8, 256}, 768, true},    {"m32_tb", 2, {32, 256}, 100, true},
    {"m32_odd", 3, {4, 8, 40}, 33, false}, {"m1_odd", 2, {1, 7}, 5, true},
};

/* Folded: one GEMM step with the prologue, one kernel fewer than with the
 * rule off, and the reference's results (small-M kernel, then OpenBLAS). */
START_TEST(test_fold_matches_reference) {
  LnCase c = make_case(folds[_i].name, ir_shape_make(folds[_i].rank, folds[_i].d), folds[_i].N, folds[_i].tb, false);
  FusePlan *p = fuse_plan(c.g, &on);
  ck_assert_int_eq(p->ln_into[c.ln], c.mm);
  ck_assert_int_eq(ln_steps(&c, &on), 1);
  FuseOptions off = on;
  char err[256];
  ck_assert_int_eq(fuse_rule_apply(&off, "-ln-prologue", err, sizeof err), 0);
  ck_assert_int_eq(ln_steps(&c, &off), 0);
  FusePlan *q = fuse_plan(c.g, &off);
  ck_assert_int_eq(fuse_kernel_count(q), fuse_kernel_count(p) + 1);
  fuse_plan_free(q);
  for (int small = 1; small >= 0; small--) {
    bool was = rt_gemm_small_enable(small);
    JcCheck chk = {.tol = 1e-5};
    jc_check_plan(c.g, p, c.in, NULL, &chk);
    jc_check_both(c.g, c.in, NULL, &chk);
    rt_gemm_small_enable(was);
  }
  fuse_plan_free(p);
  free_case(&c);
}
END_TEST

/* Not folded: the layer_norm is also an output; 33 rows; 32 rows of 257
 * (past the L1 block); the matmul reads it transposed (a weight gradient's
 * shape); fusion off. Still the reference's results. */
START_TEST(test_no_fold) {
  LnCase cases[] = {
      make_case("also_read", ir_shape_make(2, (int64_t[]){8, 64}), 48, true, true),
      make_case("m33", ir_shape_make(2, (int64_t[]){33, 64}), 48, true, false),
      make_case("m32_wide", ir_shape_make(2, (int64_t[]){32, 257}), 48, true, false),
      make_case("training_rows", ir_shape_make(3, (int64_t[]){8, 190, 64}), 48, false, false),
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    LnCase *c = &cases[i];
    FusePlan *p = fuse_plan(c->g, &on);
    ck_assert_msg(p->ln_into[c->ln] == -1, "%s folded", c->g->name);
    char why[160];
    ck_assert_ptr_nonnull(fuse_ln_refusal(c->g, p, c->ln, c->mm, why, sizeof why));
    fuse_plan_free(p);
    ck_assert_int_eq(ln_steps(c, &on), 0);
    JcCheck chk = {.tol = 1e-5};
    jc_check_both(c->g, c->in, NULL, &chk);
    free_case(c);
  }
  /* transposed A: layer_norm(x)^T @ w, the shape of dW = x^T dy */
  IrGraph *g = ir_graph_new("trans_a");
  IrShape xs = ir_shape_make(2, (int64_t[]){8, 16}), cs = ir_shape_make(1, (int64_t[]){16});
  IrShape ws = ir_shape_make(2, (int64_t[]){8, 12});
  int x = ir_input(g, "x", IR_F32, xs, LOC), ga = ir_input(g, "gamma", IR_F32, cs, LOC);
  int be = ir_input(g, "beta", IR_F32, cs, LOC), w = ir_input(g, "w", IR_F32, ws, LOC);
  int ln = ir_build(g, OP_LAYER_NORM, (int[]){x, ga, be}, 3, &(IrAttr){.eps = 1e-5f}, LOC);
  int mm = ir_build(g, OP_MATMUL, (int[]){ln, w}, 2, &(IrAttr){.trans_a = 1}, LOC);
  ck_assert_msg(mm >= 0, "%s", g->error);
  ir_set_outputs(g, &mm, NULL, 1);
  FusePlan *p = fuse_plan(g, &on);
  ck_assert_int_eq(p->ln_into[ln], -1);
  fuse_plan_free(p);
  RtTensor *in[4] = {jc_make(IR_F32, &xs, JC_NORMAL, 0), jc_make(IR_F32, &cs, JC_NORMAL, 0),
                     jc_make(IR_F32, &cs, JC_NORMAL, 0), jc_make(IR_F32, &ws, JC_NORMAL, 0)};
  JcCheck chk = {.tol = 1e-5};
  jc_check_both(g, in, NULL, &chk);
  for (int i = 0; i < 4; i++) rt_tensor_free(in[i]);
  ir_graph_free(g);
}
END_TEST

/* The rule by name: listed, switchable, on by default. */
START_TEST(test_rule_switch) {
  int r = fuse_rule_find("ln-prologue");
  ck_assert_int_eq(r, FUSE_RULE_LN_PROLOGUE);
  ck_assert(fuse_rule_info[r].is_switch && fuse_rule_info[r].default_on);
  FuseOptions o = on;
  char err[256];
  ck_assert(fuse_rule_on(&o, FUSE_RULE_LN_PROLOGUE));
  ck_assert_int_eq(fuse_rule_apply(&o, "-ln-prologue", err, sizeof err), 0);
  ck_assert(!fuse_rule_on(&o, FUSE_RULE_LN_PROLOGUE));
  ck_assert_int_eq(fuse_rule_apply(&o, "+ln-prologue", err, sizeof err), 0);
  ck_assert(fuse_rule_on(&o, FUSE_RULE_LN_PROLOGUE));
}
END_TEST

static Suite *ln_suite(void) {
  Suite *s = suite_create("ln_prologue");
  TCase *t = tcase_create("fold");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_set_timeout(t, 120);
  tcase_add_loop_test(t, test_fold_matches_reference, 0, (int)(sizeof folds / sizeof folds[0]));
  tcase_add_test(t, test_no_fold);
  tcase_add_test(t, test_rule_switch);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(ln_suite()); }
