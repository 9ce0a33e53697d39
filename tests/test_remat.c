/* test_remat.c — the remat pass (passes/remat.h): it lowers the planned
 * peak of a training step built to need it, the rewritten step computes
 * the same numbers (bit for bit on the reference executor, and through the
 * JIT within 1e-5 of it), and it leaves alone graphs where recomputing
 * would not lower the peak; the rule switch turns it off. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/ref/ref.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "passes/remat.h"
#include "tests/jit_check.h"
#include "tests/util.h"

/* Residual blocks of relu(group_norm(x)) -> conv, as in the dVAE: every
 * norm's output is kept for the backward unless recomputed. */
static const char *resnet_src =
    "import \"nn.dal\"\n"
    "config t { batch = 2; C = 8; S = 8; G = 2; lr = 1e-3 }\n"
    "@train\n"
    "def loss(x: f32[B, C, S, S]) -> f32 {\n"
    "    h = x\n"
    "    for i in 0..3 { h = with blk[i] { resblock(h, G) } }\n"
    "    return mean(h * h)\n"
    "}\n";

/* Two matmuls: what the backward keeps are GEMM outputs, not cheap ones. */
static const char *mlp_src =
    "import \"nn.dal\"\n"
    "config t { batch = 8; D = 32; lr = 1e-3 }\n"
    "@train\n"
    "def loss(x: f32[B, D]) -> f32 {\n"
    "    h = with a { linear(x, D) }\n"
    "    h = with b { linear(h, D) }\n"
    "    return mean(h * h)\n"
    "}\n";

/* The training step of entry 'loss' of src (config t) after the default
 * pipeline, as dalc builds it before the remat pass. The program that made
 * it (which its node locations point into: lowering reads them) goes in
 * *prog, to be freed after the graph. */
static IrGraph *train_step(const char *src, FeProgram **prog) {
  FeOptions o = {.config = "t"};
  char *err = NULL;
  FeProgram *p = fe_load_string("models/remat_test.dal", src, &o, &err);
  ck_assert_msg(p != NULL, "%s", err);
  IrGraph *g = fe_lower_entry(p, fe_entry_find(p, "loss"), &err);
  ck_assert_msg(g != NULL, "%s", err);
  AdamWOptions ao = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  ck_assert_msg(opt_train_step(g, &ao) == 0, "%s", g->error);
  ck_assert_msg(pass_run_pipeline(g, "cse,fold,algebra,dce") == 0, "%s", g->error);
  *prog = p;
  return g;
}

/* Inputs and parameters for g, drawn from jit_check's fixed sequence. */
static void make_args(const IrGraph *g, RtTensor ***in, RtTensor ***params) {
  *in = calloc((size_t)g->ninput + 1, sizeof **in);
  *params = calloc((size_t)g->nparam + 1, sizeof **params);
  for (int i = 0; i < g->ninput; i++) {
    const IrNode *x = &g->node[g->input[i]];
    (*in)[i] = jc_make(x->dtype, &x->shape, JC_POS, 0);
  }
  for (int i = 0; i < g->nparam; i++) {
    const IrNode *x = &g->node[g->param[i]];
    (*params)[i] = jc_make(IR_F32, &x->shape, x->op == OP_STATE ? JC_POS : JC_NORMAL, 0);
  }
}

static void free_args(int nin, RtTensor **in, int np, RtTensor **params) {
  for (int i = 0; i < nin; i++) rt_tensor_free(in[i]);
  for (int i = 0; i < np; i++) rt_tensor_free(params[i]);
  free(in);
  free(params);
}

/* Runs a and b on the reference executor with the same arguments; their
 * outputs and updated state must be equal bit for bit. */
static void expect_same_ref(const IrGraph *a, const IrGraph *b, RtTensor **in, RtTensor **params) {
  ck_assert_int_eq(a->noutput, b->noutput);
  ck_assert_int_eq(a->nparam, b->nparam);
  int np = a->nparam;
  RtTensor **pa = calloc((size_t)np + 1, sizeof *pa), **pb = calloc((size_t)np + 1, sizeof *pb);
  RtTensor **oa = calloc((size_t)a->noutput + 1, sizeof *oa), **ob = calloc((size_t)a->noutput + 1, sizeof *ob);
  for (int i = 0; i < np; i++) pa[i] = jc_copy(params[i]), pb[i] = jc_copy(params[i]);
  RtErr e = {{0}};
  ck_assert_msg(ref_run(a, in, pa, oa, NULL, &e) == 0, "%s", e.msg);
  ck_assert_msg(ref_run(b, in, pb, ob, NULL, &e) == 0, "%s", e.msg);
  for (int k = 0; k < a->noutput; k++) jc_expect_agree(a->output_name[k], ob[k], oa[k], 0, true);
  for (int i = 0; i < np; i++) jc_expect_agree(a->node[a->param[i]].name, pb[i], pa[i], 0, true);
  for (int k = 0; k < a->noutput; k++) rt_tensor_free(oa[k]), rt_tensor_free(ob[k]);
  for (int i = 0; i < np; i++) rt_tensor_free(pa[i]), rt_tensor_free(pb[i]);
  free(pa);
  free(pb);
  free(oa);
  free(ob);
}

START_TEST(lowers_the_peak) {
  FeProgram *p1, *p2;
  IrGraph *plain = train_step(resnet_src, &p1), *g = train_step(resnet_src, &p2);
  PassRematStats st;
  ck_assert_msg(pass_remat_opts(g, NULL, &st) == 0, "%s", g->error);
  pass_remat_print(&st, stdout);
  ck_assert_int_lt(st.peak_after, st.peak_before);
  ck_assert_int_gt(st.nvalues, 0);
  ck_assert_int_gt(st.nrecomputed, 0);
  ck_assert_int_gt(st.flops, 0);
  ck_assert_int_eq(g->n, plain->n + st.nrecomputed);
  char why[400];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
  /* the same arithmetic: bit for bit on the executor; the JIT within 1e-5 */
  RtTensor **in, **params;
  make_args(g, &in, &params);
  expect_same_ref(plain, g, in, params);
  JcCheck c = {.tol = 1e-5, .seed = 1, .step = 1};
  jc_check_plan(g, NULL, in, params, &c);
  /* a second run finds nothing more to do */
  PassRematStats again;
  int n = g->n;
  ck_assert_int_eq(pass_remat_opts(g, NULL, &again), 0);
  ck_assert_int_eq(again.nvalues, 0);
  ck_assert_int_eq(g->n, n);
  ck_assert_int_eq(again.peak_before, st.peak_after);
  free_args(g->ninput, in, g->nparam, params);
  ir_graph_free(plain);
  ir_graph_free(g);
  fe_free(p1);
  fe_free(p2);
}
END_TEST

/* Where nothing cheap is kept across the peak the graph stays as it was. */
START_TEST(leaves_unhelpful_graphs) {
  FeProgram *p;
  IrGraph *g = train_step(mlp_src, &p);
  int n = g->n;
  PassRematStats st;
  ck_assert_int_eq(pass_remat_opts(g, NULL, &st), 0);
  ck_assert_int_eq(st.nvalues, 0);
  ck_assert_int_eq(st.nrecomputed, 0);
  ck_assert_int_eq(st.peak_after, st.peak_before);
  ck_assert_int_eq(g->n, n);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

/* -fno-fuse (and so --fuse-rule=-remat's caller, dalc) leaves it alone; the
 * rule is a switch, on by default. */
START_TEST(switches) {
  FeProgram *p;
  IrGraph *g = train_step(resnet_src, &p);
  int n = g->n;
  PassRematStats st;
  ck_assert_int_eq(pass_remat_opts(g, &(FuseOptions){.enabled = false}, &st), 0);
  ck_assert_int_eq(g->n, n);
  ck_assert_int_eq(st.nvalues, 0);
  FuseOptions o = {.enabled = true};
  ck_assert(fuse_rule_on(&o, FUSE_RULE_REMAT));
  char err[512];
  ck_assert_int_eq(fuse_rule_apply(&o, "-remat", err, sizeof err), 0);
  ck_assert(!fuse_rule_on(&o, FUSE_RULE_REMAT));
  FuseOptions off = {.enabled = false};
  ck_assert_int_eq(fuse_rule_apply(&off, "+remat", err, sizeof err), 0);
  ck_assert(!off.enabled); /* switching remat on does not switch fusion back on */
  ck_assert_ptr_nonnull(pass_find("remat"));
  ck_assert_int_eq(pass_run_pipeline(g, "remat"), 0);
  ck_assert_int_gt(g->n, n);
  ir_graph_free(g);
  fe_free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("remat");
  TCase *t = tcase_create("remat");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_set_timeout(t, 120);
  tcase_add_test(t, lowers_the_peak);
  tcase_add_test(t, leaves_unhelpful_graphs);
  tcase_add_test(t, switches);
  suite_add_tcase(s, t);
  return tu_run_suite(s);
}
