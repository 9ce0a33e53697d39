/* test_fuse_rules.c — the fusion rules by name (passes/fuse.h FuseRule,
 * --fuse-rule): for each switch a small graph whose plan changes in the
 * expected way when that switch alone is off (kernel counts, and the
 * refusal naming the switch), and whose compiled result still agrees with
 * the reference executor (tests/jit_check.h); in-place, a codegen switch,
 * leaves the plan alone and removes the lowering's in-place stores. Then
 * the --fuse-rule parser: lists, order, -fno-fuse followed by +NAME, and
 * the errors for unknown names and constraints. (test_fuse checks on the
 * real models that every switch off is the -fno-fuse plan.) */
#include <stdio.h>
#include <string.h>

#include "codegen/lower.h"
#include "ir/ir.h"
#include "passes/fuse.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_fuse_rules.c", __LINE__, 1})
#define SH(r, ...) ((IrShape){.rank = (r), .d = {__VA_ARGS__}})
#define F IR_F32

static int input(IrGraph *g, const char *name, IrShape s) { return ir_input(g, name, F, s, LOC); }
static int un(IrGraph *g, IrOp op, int x) { return ir_unary(g, op, x, LOC); }
static int bin(IrGraph *g, IrOp op, int a, int b) { return ir_binary(g, op, a, b, LOC); }
static int reduce(IrGraph *g, IrOp op, int x, uint32_t axes, bool keep) { return ir_reduce(g, op, x, axes, keep, LOC); }
static int matmul(IrGraph *g, int a, int b) { return ir_build(g, OP_MATMUL, (int[]){a, b}, 2, &(IrAttr){0}, LOC); }
static void set_out(IrGraph *g, int v) { ir_set_outputs(g, &v, NULL, 1); }
static void built(const IrGraph *g, int v) { ck_assert_msg(v >= 0, "builder: %s", g->error); }

/* Options with switch r off (r < 0: the defaults). */
static FuseOptions without(int r) {
  FuseOptions o = {.enabled = true};
  if (r >= 0) {
    char spec[64], err[512];
    snprintf(spec, sizeof spec, "-%s", fuse_rule_info[r].name);
    ck_assert_msg(fuse_rule_apply(&o, spec, err, sizeof err) == 0, "%s", err);
  }
  return o;
}

/* Does some refused edge of p name rule r? */
static bool refused_by(const FusePlan *p, FuseRule r) {
  for (int i = 0; i < p->nrefused; i++)
    if (p->refused[i].rule == (int)r) return true;
  return false;
}

/* The plan of g under 'o': checked against the reference executor. */
static FusePlan *plan_and_run(IrGraph *g, const FuseOptions *o) {
  FusePlan *p = fuse_plan(g, o);
  ck_assert_ptr_nonnull(p);
  JcCheck c = {.tol = 1e-5};
  jc_check_random(g, p, 8, &c);
  return p;
}

/* One graph per switch: its kernel count with everything on and with that
 * switch alone off. */
typedef struct {
  FuseRule rule;
  IrGraph *(*build)(void);
  int on, off;
} RuleCase;

/* relu(exp(x) * y + 1): one loop; without elementwise fusion, one per op. */
static IrGraph *g_elementwise(void) {
  IrGraph *g = ir_graph_new("elementwise");
  int x = input(g, "x", SH(2, 4, 8)), y = input(g, "y", SH(2, 4, 8));
  int e = un(g, OP_RELU, bin(g, OP_ADD, bin(g, OP_MUL, un(g, OP_EXP, x), y), ir_scalar(g, F, 1.0, LOC)));
  built(g, e);
  set_out(g, e);
  return g;
}

/* x + broadcast(s * t): the scalar product is recomputed in the loop, or
 * without recompute a kernel of its own. */
static IrGraph *g_recompute(void) {
  IrGraph *g = ir_graph_new("recompute");
  int x = input(g, "x", SH(2, 4, 8)), s = input(g, "s", SH(0)), t = input(g, "t", SH(0));
  int y = bin(g, OP_ADD, x, ir_broadcast_to(g, bin(g, OP_MUL, s, t), SH(2, 4, 8), LOC));
  built(g, y);
  set_out(g, y);
  return g;
}

/* exp(x * s) and tanh(y + s) through one shared broadcast of s: one
 * two-output kernel; without siblings the broadcast is stored and each
 * loop is its own kernel. */
static IrGraph *g_siblings(void) {
  IrGraph *g = ir_graph_new("siblings");
  int x = input(g, "x", SH(2, 8, 8)), y = input(g, "y", SH(2, 8, 8)), s = input(g, "s", SH(0));
  int sb = ir_broadcast_to(g, s, SH(2, 8, 8), LOC);
  int a = un(g, OP_EXP, bin(g, OP_MUL, x, sb));
  int b = un(g, OP_TANH, bin(g, OP_ADD, y, sb));
  built(g, b);
  ir_set_outputs(g, (int[]){a, b}, NULL, 2);
  return g;
}

/* sum(exp(x) * x) over the last axis: the product is the reduction's
 * prologue, or without it a loop of its own (exp and mul still fuse). */
static IrGraph *g_prologue(void) {
  IrGraph *g = ir_graph_new("prologue");
  int x = input(g, "x", SH(2, 6, 10));
  int s = reduce(g, OP_SUM, bin(g, OP_MUL, un(g, OP_EXP, x), x), 1u << 1, false);
  built(g, s);
  set_out(g, s);
  return g;
}

/* sqrt(sum(x) + 1): the reduced-shape epilogue joins the reduction, or
 * without reduce-epilogue is a loop of its own. */
static IrGraph *g_reduce_epilogue(void) {
  IrGraph *g = ir_graph_new("reduce_epilogue");
  int x = input(g, "x", SH(2, 6, 10));
  int y = un(g, OP_SQRT, bin(g, OP_ADD, reduce(g, OP_SUM, x, 1u << 1, false), ir_scalar(g, F, 1.0, LOC)));
  built(g, y);
  set_out(g, y);
  return g;
}

/* x - max(x) along rows, then exp: one two-pass kernel, or without
 * two-pass the max and the sweep after it apart. */
static IrGraph *g_two_pass(void) {
  IrGraph *g = ir_graph_new("two_pass");
  int x = input(g, "x", SH(2, 6, 10));
  int y = un(g, OP_EXP, bin(g, OP_SUB, x, reduce(g, OP_REDUCE_MAX, x, 1u << 1, true)));
  built(g, y);
  set_out(g, y);
  return g;
}

/* relu(a @ b + c): the GEMM with its epilogue, or without epilogue fusion
 * the GEMM and one loop after it. */
static IrGraph *g_epilogue(void) {
  IrGraph *g = ir_graph_new("epilogue");
  int a = input(g, "a", SH(2, 8, 16)), b = input(g, "b", SH(2, 16, 12)), c = input(g, "c", SH(2, 8, 12));
  int y = un(g, OP_RELU, bin(g, OP_ADD, matmul(g, a, b), c));
  built(g, y);
  set_out(g, y);
  return g;
}

static const RuleCase cases[] = {
    {FUSE_RULE_ELEMENTWISE, g_elementwise, 1, 5}, /* exp, mul, the constant's broadcast, add, relu */
    {FUSE_RULE_RECOMPUTE, g_recompute, 1, 2},
    {FUSE_RULE_SIBLINGS, g_siblings, 1, 3},
    {FUSE_RULE_REDUCE_PROLOGUE, g_prologue, 1, 2},
    {FUSE_RULE_REDUCE_EPILOGUE, g_reduce_epilogue, 1, 2},
    {FUSE_RULE_TWO_PASS, g_two_pass, 1, 2},
    {FUSE_RULE_EPILOGUE, g_epilogue, 1, 2},
};

START_TEST(each_switch_off_changes_its_plan) {
  const RuleCase *rc = &cases[_i];
  const char *name = fuse_rule_info[rc->rule].name;
  IrGraph *g = rc->build();
  FuseOptions on = without(-1), off = without(rc->rule);
  FusePlan *p = plan_and_run(g, &on), *q = plan_and_run(g, &off);
  printf("rule %-16s %d kernel(s) on, %d off\n", name, fuse_kernel_count(p), fuse_kernel_count(q));
  ck_assert_int_eq(fuse_kernel_count(p), rc->on);
  ck_assert_int_eq(fuse_kernel_count(q), rc->off);
  ck_assert_msg(refused_by(q, rc->rule), "no refusal names rule %s", name);
  ck_assert(!refused_by(p, rc->rule));
  /* the switch let some node join with it on, and none with it off */
  int joined_on = 0, joined_off = 0;
  for (int v = 0; v < g->n; v++) joined_on += p->joined_by[v] == (int)rc->rule, joined_off += q->joined_by[v] == (int)rc->rule;
  ck_assert_int_gt(joined_on, 0);
  ck_assert_int_eq(joined_off, 0);
  fuse_plan_free(p);
  fuse_plan_free(q);
  ir_graph_free(g);
}
END_TEST

/* Every fusion switch off is the -fno-fuse plan, on every graph above;
 * and "-fno-fuse --fuse-rule=+NAME" fuses by NAME alone. */
START_TEST(all_switches_off_is_no_fusion) {
  const RuleCase *rc = &cases[_i];
  IrGraph *g = rc->build();
  FuseOptions all = {.enabled = true}, none = {.enabled = false}, only = {.enabled = false};
  char err[512], spec[64];
  ck_assert(fuse_rule_apply(&all, "-elementwise,-recompute,-siblings,-reduce-prologue", err, sizeof err) == 0);
  ck_assert(fuse_rule_apply(&all, "-reduce-epilogue,-two-pass,-epilogue", err, sizeof err) == 0);
  FusePlan *p = fuse_plan(g, &all), *q = fuse_plan(g, &none);
  ck_assert_int_eq(p->ngroup, q->ngroup);
  ck_assert_int_eq(memcmp(p->group_of, q->group_of, sizeof *p->group_of * (size_t)g->n), 0);
  snprintf(spec, sizeof spec, "+%s", fuse_rule_info[rc->rule].name);
  ck_assert(fuse_rule_apply(&only, spec, err, sizeof err) == 0);
  ck_assert(only.enabled);
  FusePlan *r = fuse_plan(g, &only);
  ck_assert_int_lt(fuse_kernel_count(r), fuse_kernel_count(q));
  for (int v = 0; v < g->n; v++) ck_assert(r->joined_by[v] < 0 || r->joined_by[v] == (int)rc->rule);
  fuse_plan_free(p);
  fuse_plan_free(q);
  fuse_plan_free(r);
  ir_graph_free(g);
}
END_TEST

/* exp(a @ b) @ c without epilogue fusion: the exp loop may store its
 * result over the first GEMM's (which dies there); with in-place off it
 * does not. The plan is the same either way, the results agree. */
START_TEST(in_place_switch) {
  IrGraph *g = ir_graph_new("in_place");
  int a = input(g, "a", SH(2, 8, 16)), b = input(g, "b", SH(2, 16, 12)), c = input(g, "c", SH(2, 12, 4));
  int y = matmul(g, un(g, OP_EXP, matmul(g, a, b)), c);
  built(g, y);
  set_out(g, y);
  FuseOptions on = without(FUSE_RULE_EPILOGUE), off = on;
  char err[512];
  ck_assert(fuse_rule_apply(&off, "-in-place", err, sizeof err) == 0);
  ck_assert(!fuse_rule_on(&off, FUSE_RULE_IN_PLACE) && fuse_rule_on(&on, FUSE_RULE_IN_PLACE));
  FusePlan *p = plan_and_run(g, &on), *q = plan_and_run(g, &off);
  ck_assert_int_eq(fuse_kernel_count(p), fuse_kernel_count(q));
  RtErr e;
  CgLowered *lp = cg_lower(g, p, NULL, &e), *lq = cg_lower(g, q, NULL, &e);
  ck_assert_ptr_nonnull(lp);
  ck_assert_ptr_nonnull(lq);
  ck_assert_int_eq(lp->in_place, 1);
  ck_assert_int_eq(lq->in_place, 0);
  ck_assert_int_gt(lq->plan.nbuf, lp->plan.nbuf); /* the exp's output is a buffer of its own */
  cg_lowered_free(lp);
  cg_lowered_free(lq);
  fuse_plan_free(p);
  fuse_plan_free(q);
  ir_graph_free(g);
}
END_TEST

START_TEST(parser) {
  FuseOptions o = {.enabled = true};
  char err[512];
  ck_assert(fuse_rule_apply(&o, "-epilogue,-two-pass", err, sizeof err) == 0);
  ck_assert(!fuse_rule_on(&o, FUSE_RULE_EPILOGUE) && !fuse_rule_on(&o, FUSE_RULE_TWO_PASS));
  ck_assert(fuse_rule_on(&o, FUSE_RULE_SIBLINGS));
  /* left to right: a later + undoes an earlier - */
  ck_assert(fuse_rule_apply(&o, "+epilogue", err, sizeof err) == 0);
  ck_assert(fuse_rule_on(&o, FUSE_RULE_EPILOGUE) && !fuse_rule_on(&o, FUSE_RULE_TWO_PASS));
  ck_assert(fuse_rule_on(NULL, FUSE_RULE_TWO_PASS));
  ck_assert(fuse_rule_on(&(FuseOptions){.enabled = true, .single_pass = true}, FUSE_RULE_EPILOGUE));
  ck_assert(!fuse_rule_on(&(FuseOptions){.enabled = true, .single_pass = true}, FUSE_RULE_TWO_PASS));
  /* constraints are always on and cannot be switched */
  ck_assert(fuse_rule_on(&o, FUSE_RULE_NO_CYCLES));
  FuseOptions before = o;
  ck_assert(fuse_rule_apply(&o, "-no-cycles", err, sizeof err) < 0);
  ck_assert_msg(strstr(err, "constraint") && strstr(err, "epilogue"), "%s", err);
  ck_assert(fuse_rule_apply(&o, "-epilogue,-bogus", err, sizeof err) < 0); /* o unchanged on error */
  ck_assert_msg(strstr(err, "unknown fusion rule 'bogus'") && strstr(err, "two-pass"), "%s", err);
  ck_assert(fuse_rule_apply(&o, "epilogue", err, sizeof err) < 0);
  ck_assert_msg(strstr(err, "needs a sign"), "%s", err);
  ck_assert(fuse_rule_apply(&o, "-epilogue,", err, sizeof err) < 0);
  ck_assert(fuse_rule_apply(&o, "", err, sizeof err) < 0);
  ck_assert_int_eq(memcmp(&o, &before, sizeof o), 0);
  /* every name is found, and the names are distinct */
  for (int r = 0; r < FUSE_RULE_COUNT; r++) {
    ck_assert_int_eq(fuse_rule_find(fuse_rule_info[r].name), r);
    ck_assert(fuse_rule_info[r].help && *fuse_rule_info[r].help);
    ck_assert(fuse_rule_info[r].is_switch == (r < FUSE_RULE_NSWITCH));
  }
  ck_assert_int_eq(fuse_rule_find("bogus"), -1);
  /* -fno-fuse then +in-place: still no fusion */
  FuseOptions off = {.enabled = false};
  ck_assert(fuse_rule_apply(&off, "+in-place", err, sizeof err) == 0);
  ck_assert(!off.enabled);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fuse_rules");
  TCase *t = tcase_create("rules");
  tcase_set_timeout(t, 60);
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  int n = (int)(sizeof cases / sizeof cases[0]);
  tcase_add_loop_test(t, each_switch_off_changes_its_plan, 0, n);
  tcase_add_loop_test(t, all_switches_off_is_no_fusion, 0, n);
  tcase_add_test(t, in_place_switch);
  tcase_add_test(t, parser);
  suite_add_tcase(s, t);
  return tu_run_suite(s);
}
