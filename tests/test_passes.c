/* test_passes.c — the pass registry (built-ins and passes added with
 * pass_register), the pipeline runner and DCE. */
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "tests/util.h"

static const SrcLoc here = {"test.dal", 1, 1};

/* out = relu(x) + w, with a dead exp(x) and an unused parameter. */
static IrGraph *graph_with_dead_code(void) {
  IrGraph *g = ir_graph_new("f");
  int64_t d[2] = {2, 3};
  IrShape s = ir_shape_make(2, d);
  int x = ir_input(g, "x", IR_F32, s, here);
  int unused = ir_input(g, "unused", IR_F32, s, here);
  int w = ir_param(g, "w", s, IR_INIT_ZEROS, 0, 0, here);
  ir_param(g, "dead_param", s, IR_INIT_ONES, 0, 0, here);
  ir_unary(g, OP_EXP, x, here);
  int r = ir_unary(g, OP_RELU, x, here);
  int y = ir_binary(g, OP_ADD, r, w, here);
  ck_assert_int_ge(y, 0);
  ck_assert_int_ge(unused, 0);
  const char *name = "out";
  ir_set_outputs(g, &y, &name, 1);
  return g;
}

START_TEST(dce_drops_dead_nodes_and_keeps_the_signature) {
  IrGraph *g = graph_with_dead_code();
  ck_assert_int_eq(g->n, 7);
  ck_assert_int_eq(pass_dce(g), 0);
  ck_assert_int_eq(g->n, 5); /* x, unused, w, relu, add */
  ck_assert_int_eq(g->ninput, 2);
  ck_assert_str_eq(g->node[g->input[1]].name, "unused");
  ck_assert_int_eq(g->nparam, 1);
  ck_assert_str_eq(g->node[g->param[0]].name, "w");
  ck_assert_int_eq(g->node[g->output[0]].op, OP_ADD);
  for (int i = 0; i < g->n; i++) ck_assert_int_ne(g->node[i].op, OP_EXP);
  char why[256];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
  ir_graph_free(g);
}
END_TEST

START_TEST(dce_keeps_what_updates_need) {
  IrGraph *g = graph_with_dead_code();
  int64_t d[2] = {2, 3};
  int count = ir_state(g, "count", ir_shape_make(0, NULL), here);
  int next = ir_binary(g, OP_ADD, count, ir_scalar(g, IR_F32, 1, here), here);
  int w = g->param[0];
  int decayed = ir_binary(g, OP_MUL, w, ir_const(g, IR_F32, ir_shape_make(2, d), 0.5, here), here);
  ck_assert_int_ge(ir_add_update(g, count, next, here), 0);
  ck_assert_int_ge(ir_add_update(g, w, decayed, here), 0);
  ck_assert_int_eq(pass_dce(g), 0);
  char why[256];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
  ck_assert_int_eq(g->nupdate, 2);
  ck_assert_str_eq(g->node[g->update_target[0]].name, "count");
  ck_assert_int_eq(g->node[g->update_value[0]].op, OP_ADD);
  ck_assert_str_eq(g->node[g->update_target[1]].name, "w");
  ck_assert_int_eq(g->node[g->update_value[1]].op, OP_MUL);
  ck_assert_int_eq(g->nparam, 2); /* w and count; dead_param went */
  ir_graph_free(g);
}
END_TEST

START_TEST(pipeline_runs_by_name_and_rejects_unknown_passes) {
  IrGraph *g = graph_with_dead_code();
  ck_assert_int_eq(pass_run_pipeline(g, "dce,dce"), 0);
  ck_assert_int_eq(g->n, 5);
  ck_assert_int_eq(pass_run_pipeline(g, "dce,nosuch"), -1);
  ck_assert_ptr_nonnull(strstr(g->error, "unknown pass 'nosuch'"));
  ck_assert_int_eq(pass_run_pipeline(g, ""), 0);
  ir_graph_free(g);
}
END_TEST

START_TEST(registry_lists_every_pass_once) {
  int n;
  const Pass *p = pass_list(&n);
  ck_assert_int_ge(n, 1);
  for (int i = 0; i < n; i++) {
    ck_assert_ptr_eq(pass_find(p[i].name), &p[i]);
    ck_assert_ptr_nonnull(p[i].help);
  }
  ck_assert_ptr_null(pass_find("nosuch"));
}
END_TEST

/* Passes added at run time: one counts its runs, one always fails. */
static int ran;
static int count_run(IrGraph *g) {
  (void)g;
  ran++;
  return 0;
}
static int failing_run(IrGraph *g) {
  snprintf(g->error, sizeof g->error, "refused on purpose");
  return -1;
}

START_TEST(registered_passes_run_by_name_and_bad_ones_are_refused) {
  char why[200];
  int n0;
  pass_list(&n0);
  ck_assert_int_eq(pass_register(&(Pass){"count_me", "counts its runs", count_run}, why, sizeof why), 0);
  ck_assert_int_eq(pass_register(&(Pass){"refuse", "always fails", failing_run}, why, sizeof why), 0);
  int n;
  const Pass *p = pass_list(&n);
  ck_assert_int_eq(n, n0 + 2);
  ck_assert_str_eq(p[n0].name, "count_me"); /* after the built-ins, in order */
  ck_assert_ptr_eq(pass_find("count_me"), &p[n0]);

  IrGraph *g = graph_with_dead_code();
  ran = 0;
  ck_assert_int_eq(pass_run_pipeline(g, "count_me,dce,count_me"), 0);
  ck_assert_int_eq(ran, 2);
  ck_assert_int_eq(g->n, 5); /* dce still ran between them */
  ck_assert_int_eq(pass_run_pipeline(g, "refuse"), -1);
  ck_assert_ptr_nonnull(strstr(g->error, "refused on purpose"));
  ir_graph_free(g);

  static const struct {
    Pass p;
    const char *why;
  } bad[] = {
      {{"count_me", "again", count_run}, "already"},
      {{"dce", "a built-in's name", count_run}, "already"},
      {{"all", "reserved", count_run}, "all"},
      {{"Upper", "not [a-z0-9_]", count_run}, "Upper"},
      {{"9lives", "starts with a digit", count_run}, "9lives"},
      {{"", "empty", count_run}, ""},
      {{"no_run", "NULL run", NULL}, "no_run"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = 0;
    ck_assert_msg(pass_register(&bad[i].p, why, sizeof why) == -1, "'%s' was accepted", bad[i].p.name);
    ck_assert_msg(why[0] && strstr(why, bad[i].why), "'%s': reason '%s'", bad[i].p.name, why);
  }
  pass_list(&n);
  ck_assert_int_eq(n, n0 + 2);

  /* a full registry says so */
  static char names[PASS_MAX][16];
  int added = 0;
  for (int i = 0; i < PASS_MAX; i++) {
    snprintf(names[i], sizeof names[i], "p%d", i);
    if (pass_register(&(Pass){names[i], "filler", count_run}, why, sizeof why)) break;
    added++;
  }
  ck_assert_int_eq(n0 + 2 + added, PASS_MAX);
  ck_assert_ptr_nonnull(strstr(why, "full"));

  pass_registry_reset();
  pass_list(&n);
  ck_assert_int_eq(n, n0);
  ck_assert_ptr_null(pass_find("count_me"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("passes");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, dce_drops_dead_nodes_and_keeps_the_signature);
  tcase_add_test(tc, dce_keeps_what_updates_need);
  tcase_add_test(tc, pipeline_runs_by_name_and_rejects_unknown_passes);
  tcase_add_test(tc, registry_lists_every_pass_once);
  tcase_add_test(tc, registered_passes_run_by_name_and_bad_ones_are_refused);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
