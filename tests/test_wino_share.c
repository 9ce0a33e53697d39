/* test_wino_share.c — rule wino-share-u (codegen/lower_wino_share.c): a
 * Winograd F(2x2,3x3) conv reads the weight transform U of an earlier conv
 * on the same weight instead of computing its own.
 *
 * With sharing forced (cg_set_wino_share_check(false)), a training step's
 * gradients and its AdamW update match the reference executor within
 * 1e-5 relative: the dVAE tiny's whole step, and a two-layer step at each
 * 3x3 shape of the dVAE bench (the second layer's input gradient reads
 * its forward's U transposed and plane-permuted). The plan is checked
 * too: the sharing conv has no weight kernel (CgLowered counters, the
 * plan's WINO_WEIGHT steps), and nothing is shared under F(4x4,3x3),
 * without a conv2d on the same weight, with the rule off, or (check on)
 * when the kept U would raise the planned peak. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"
#include "frontend/frontend.h"
#include "ir/ref/bind.h"
#include "passes/autodiff.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_wino_share.c", __LINE__, 1})

/* test_conv_algo's bound for the model under Winograd, and the issue's. */
#define MODEL_TOL 1e-5

static IrShape shp4(int64_t a, int64_t b, int64_t c, int64_t d) {
  return (IrShape){.rank = 4, .d = {a, b, c, d}};
}

static int conv(IrGraph *g, IrOp op, int x, int w, int pad) {
  int y = ir_build(g, op, (int[]){x, w}, 2, &(IrAttr){.stride = 1, .pad = pad}, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  return y;
}

/* What lowering g under the fusion options o gives. */
typedef struct {
  int winograd;       /* conv2d / conv_transpose2d through Winograd */
  int shared;         /* of them, reading another's U */
  int weight_steps;   /* WINO_WEIGHT kernel steps in the plan */
  int shared_gemms;   /* GEMM steps on a shared U */
  int trans_gemms;    /* ... of them reading it transposed */
  int plain_gemms;    /* GEMM steps on a U of the conv's own */
  int64_t arena, bound;
} Lowered;

static Lowered lower(const IrGraph *g, const FuseOptions *o) {
  FusePlan *p = fuse_plan(g, o);
  ck_assert_ptr_nonnull(p);
  RtErr e = {{0}};
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  Lowered r = {l->conv_winograd, l->wino_shared, 0, 0, 0, 0, l->plan.arena_bytes, l->arena_lower_bound};
  for (int s = 0; s < l->plan.nstep; s++) {
    const RtStep *st = &l->plan.step[s];
    if (st->kind == RT_STEP_KERNEL && l->kernel[st->kernel].kind == CG_KERNEL_WINO_WEIGHT) r.weight_steps++;
    if (st->kind == RT_STEP_GEMM && strstr(st->name, "(shared U)")) {
      r.shared_gemms++;
      r.trans_gemms += st->gemm.trans_a;
    }
    r.plain_gemms += st->kind == RT_STEP_GEMM && strcmp(st->name, "conv2d winograd") == 0;
  }
  ck_assert_int_eq(l->wino_weight_kernels, r.weight_steps);
  ck_assert_int_eq(l->wino_weight_kernels, r.winograd - r.shared);
  int from = 0;
  for (int v = 0; v < g->n; v++) from += l->wino_u_from[v] >= 0;
  ck_assert_int_eq(from, r.shared);
  cg_lowered_free(l);
  fuse_plan_free(p);
  return r;
}

/* the rule is off by default: on by name */
static const FuseOptions rule_on = {.enabled = true, .rules_on = 1u << FUSE_RULE_WINO_SHARE_U};

static FuseOptions rule_off(void) {
  FuseOptions o = {.enabled = true};
  char err[256];
  ck_assert_int_eq(fuse_rule_apply(&o, "-wino-share-u", err, sizeof err), 0);
  return o;
}

/* Convs of g F(2x2,3x3) would share with every check passed: each
 * conv_transpose2d (conv2d) whose weight an earlier conv2d
 * (conv_transpose2d) or one of the same op reads, both Winograd. Counted
 * here from the graph alone, independently of lower_wino_share.c (node
 * order stands for group order: autodiff appends the backward). */
static int expected_shares(const IrGraph *g, CgConvAlgo algo) {
  int n = 0;
  for (int v = 0; v < g->n; v++) {
    IrOp op = g->node[v].op;
    if ((op != OP_CONV2D && op != OP_CONV_TRANSPOSE2D) || cg_conv_wino_m(g, v, algo, NULL) != 2) continue;
    bool before = false;
    for (int u = 0; u < v && !before; u++) {
      IrOp uo = g->node[u].op;
      before = (uo == OP_CONV2D || uo == OP_CONV_TRANSPOSE2D) && g->node[u].in[1] == g->node[v].in[1] &&
               cg_conv_wino_m(g, u, algo, NULL) == 2;
    }
    n += before;
  }
  return n;
}

/* The inputs of a training graph: f32 from JC_NORMAL, scalars positive
 * (the learning rate 3e-4). */
static RtTensor **make_inputs(const IrGraph *g) {
  RtTensor **in = calloc((size_t)g->ninput + 1, sizeof *in);
  for (int k = 0; k < g->ninput; k++) {
    const IrNode *nd = &g->node[g->input[k]];
    in[k] = jc_make(IR_F32, &nd->shape, nd->shape.rank == 0 ? JC_POS : JC_NORMAL, 0);
    if (nd->shape.rank == 0 && nd->name && strstr(nd->name, "lr")) rt_f32(in[k])[0] = 3e-4f;
  }
  return in;
}

static void free_tensors(RtTensor **t, int n) {
  for (int k = 0; k < n; k++) rt_tensor_free(t[k]);
  free(t);
}

/* g (a training graph) as its gradients (step false) or its AdamW step. */
static void make_step(IrGraph *g, bool step) {
  if (!step) {
    ck_assert_msg(ad_grad_pass(g) == 0, "%s", g->error);
  } else {
    AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-3, .weight_decay = 0.0};
    ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
  }
}

/* Runs g under plan options o against the reference; returns the error. */
static double check_against_ref(IrGraph *g, const FuseOptions *o, RtTensor **params) {
  RtTensor **in = make_inputs(g);
  FusePlan *p = fuse_plan(g, o);
  JcCheck c = {.tol = MODEL_TOL, .seed = 5, .step = 1};
  jc_check_plan(g, p, in, params, &c);
  fuse_plan_free(p);
  free_tensors(in, g->ninput);
  return c.max_err;
}

/* ---- the dVAE tiny's training step ---- */

/* _i = 0: the loss and every gradient; _i = 1: one AdamW step. */
START_TEST(test_dvae_tiny) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  cg_set_wino_share_check(false);
  char *err = NULL;
  FeProgram *prog = fe_load_file("models/dvae.dal", &(FeOptions){.config = "tiny", .batch = 2}, &err);
  ck_assert_msg(prog != NULL, "%s", err);
  int i = fe_entry_find(prog, "loss_given_noise");
  ck_assert_int_ge(i, 0);
  IrGraph *g = fe_lower_entry(prog, i, &err);
  ck_assert_msg(g != NULL, "%s", err);
  make_step(g, _i == 1);
  int want = expected_shares(g, CG_CONV_WINOGRAD);
  ck_assert_int_ge(want, 8); /* each residual block's two 3x3 convs at least */
  Lowered on = lower(g, &rule_on);
  ck_assert_int_eq(on.shared, want);
  ck_assert_int_eq(on.trans_gemms, on.shared_gemms); /* all input gradients: transposed */
  FuseOptions offo = rule_off();
  Lowered off = lower(g, &offo);
  ck_assert_int_eq(off.shared, 0);
  ck_assert_int_eq(off.shared_gemms, 0);
  ck_assert_int_eq(off.winograd, on.winograd);
  ck_assert_int_eq(off.weight_steps, off.winograd);
  RtTensor **params = calloc((size_t)g->nparam + 1, sizeof *params);
  RtErr e;
  ck_assert_msg(cg_bind_params(g, NULL, NULL, 1234, params, &e) == 0, "%s", e.msg);
  double rel = check_against_ref(g, &rule_on, params);
  printf("dvae tiny %s, %d of %d Winograd convs on a shared U: rel err %.2e (bound %.0e)\n",
         _i ? "AdamW step" : "gradients", on.shared, on.winograd, rel, MODEL_TOL);
  free_tensors(params, g->nparam);
  ir_graph_free(g);
  fe_free(prog);
}
END_TEST

/* ---- two layers at the dVAE's 3x3 shapes ---- */

typedef struct {
  const char *config;
  int64_t N, C, H;
} Shape;

/* The residual blocks' C -> C convs of the tiny and bench configs (pad 1),
 * bench at batch 1: the same per-sample shapes, less reference time. */
static const Shape shapes[] = {
    {"tiny", 4, 16, 16}, {"tiny", 4, 32, 8}, {"bench", 1, 64, 64},
    {"bench", 1, 128, 32}, {"bench", 1, 256, 16}, {"bench", 1, 256, 8},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* loss = sum(conv2d(relu(conv2d(x, w1)), w2) * r), w1, w2 [C, C, 3, 3]:
 * its gradient has conv_transpose2d(dy2, w2), w2's forward conv's partner. */
static IrGraph *two_layers(const Shape *s) {
  IrGraph *g = ir_graph_new("two_layers");
  g->train = true;
  IrShape xs = shp4(s->N, s->C, s->H, s->H), ws = shp4(s->C, s->C, 3, 3);
  int x = ir_input(g, "x", IR_F32, xs, LOC), r = ir_input(g, "r", IR_F32, xs, LOC);
  int w1 = ir_param(g, "w1", ws, IR_INIT_NORMAL, 0, 0.05, LOC), w2 = ir_param(g, "w2", ws, IR_INIT_NORMAL, 0, 0.05, LOC);
  int h = ir_unary(g, OP_RELU, conv(g, OP_CONV2D, x, w1, 1), LOC);
  int y = ir_binary(g, OP_MUL, conv(g, OP_CONV2D, h, w2, 1), r, LOC);
  int loss = ir_reduce(g, OP_SUM, y, 0xF, false, LOC);
  ck_assert_msg(loss >= 0, "%s", g->error);
  ir_set_outputs(g, &loss, (const char *const[]){"loss"}, 1);
  return g;
}

static RtTensor **random_params(const IrGraph *g) {
  RtTensor **p = calloc((size_t)g->nparam + 1, sizeof *p);
  for (int k = 0; k < g->nparam; k++) {
    const IrNode *nd = &g->node[g->param[k]];
    p[k] = jc_make(IR_F32, &nd->shape, nd->op == OP_STATE ? JC_POS : JC_NORMAL, 0);
  }
  return p;
}

/* _i = 2 * shape + (0: gradients, 1: AdamW step). */
START_TEST(test_two_layers) {
  const Shape *s = &shapes[_i / 2];
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  cg_set_wino_share_check(false);
  IrGraph *g = two_layers(s);
  make_step(g, _i % 2);
  Lowered on = lower(g, &rule_on);
  ck_assert_int_eq(on.winograd, 3); /* two forward, one input gradient */
  ck_assert_int_eq(on.shared, 1);
  ck_assert_int_eq(on.weight_steps, 2);
  ck_assert_int_gt(on.shared_gemms, 0);
  ck_assert_int_eq(on.trans_gemms, on.shared_gemms);
  ck_assert_int_eq(on.shared_gemms, 10 * on.plain_gemms / 2); /* 10 runs of planes per chunk */
  RtTensor **params = random_params(g);
  double rel = check_against_ref(g, &rule_on, params);
  printf("%s %lldx%lldx%lld %s on a shared U: rel err %.2e (bound %.0e)\n", s->config, (long long)s->C,
         (long long)s->H, (long long)s->H, _i % 2 ? "AdamW step" : "gradients", rel, MODEL_TOL);
  free_tensors(params, g->nparam);
  ir_graph_free(g);
}
END_TEST

/* Two conv2d on one weight (a recomputed forward): the second reads the
 * first's U as it is, one GEMM step per chunk, not transposed. */
START_TEST(test_same_flip) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  IrGraph *g = ir_graph_new("same_flip");
  IrShape xs = shp4(2, 16, 10, 10);
  int x1 = ir_input(g, "x1", IR_F32, xs, LOC), x2 = ir_input(g, "x2", IR_F32, xs, LOC);
  int w = ir_input(g, "w", IR_F32, shp4(16, 16, 3, 3), LOC);
  int y1 = conv(g, OP_CONV2D, x1, w, 1);
  int y2 = conv(g, OP_CONV2D, ir_binary(g, OP_ADD, x2, ir_unary(g, OP_RELU, y1, LOC), LOC), w, 1);
  ir_set_outputs(g, (int[]){y1, y2}, NULL, 2);
  Lowered on = lower(g, &rule_on);
  ck_assert_int_eq(on.shared, 1);
  ck_assert_int_eq(on.weight_steps, 1);
  ck_assert_int_eq(on.trans_gemms, 0);
  ck_assert_int_eq(on.shared_gemms, on.plain_gemms); /* one step of 16 planes per chunk */
  FusePlan *p = fuse_plan(g, &rule_on);
  JcCheck c = {.tol = CG_WINOGRAD_REL_TOL};
  jc_check_random(g, p, 0, &c);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* ---- left alone ---- */

/* F(4x4,3x3) has no plane permutation for the flip: every conv computes
 * its own U. */
START_TEST(test_winograd4_alone) {
  cg_set_conv_algo(CG_CONV_WINOGRAD4);
  cg_set_wino_share_check(false);
  IrGraph *g = two_layers(&shapes[0]);
  make_step(g, false);
  Lowered on = lower(g, &rule_on);
  ck_assert_int_eq(on.winograd, 3);
  ck_assert_int_eq(on.shared, 0);
  ck_assert_int_eq(on.weight_steps, 3);
  ir_graph_free(g);
}
END_TEST

/* A conv_transpose2d whose weight no other conv reads, next to a conv2d on
 * another weight of the same shape: nothing shared. */
START_TEST(test_no_partner) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  cg_set_wino_share_check(false);
  IrGraph *g = ir_graph_new("no_partner");
  IrShape xs = shp4(2, 16, 8, 8), ws = shp4(16, 16, 3, 3);
  int x = ir_input(g, "x", IR_F32, xs, LOC), dy = ir_input(g, "dy", IR_F32, xs, LOC);
  int w = ir_input(g, "w", IR_F32, ws, LOC), w2 = ir_input(g, "w2", IR_F32, ws, LOC);
  int y = conv(g, OP_CONV2D, x, w, 1), dx = conv(g, OP_CONV_TRANSPOSE2D, dy, w2, 1);
  ir_set_outputs(g, (int[]){y, dx}, NULL, 2);
  Lowered on = lower(g, &rule_on);
  ck_assert_int_eq(on.winograd, 2);
  ck_assert_int_eq(on.shared, 0);
  ck_assert_int_eq(on.weight_steps, 2);
  ir_graph_free(g);
}
END_TEST

/* With the check on: a conv2d, then a large value (a 1x1 conv to 256
 * channels) live between it and its partner conv_transpose2d, so keeping
 * U would raise the peak: not shared, and the arena is the rule-off one.
 * Forced, it is shared and the arena grows. With nothing in between (the
 * partner right after the conv2d) sharing is free and the check lets it,
 * the arena no larger. */
START_TEST(test_check) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  IrGraph *g = ir_graph_new("check");
  IrShape xs = shp4(1, 16, 8, 8);
  int x = ir_input(g, "x", IR_F32, xs, LOC), w = ir_input(g, "w", IR_F32, shp4(16, 16, 3, 3), LOC);
  int up = ir_input(g, "up", IR_F32, shp4(256, 16, 1, 1), LOC), down = ir_input(g, "down", IR_F32, shp4(16, 256, 1, 1), LOC);
  int y = conv(g, OP_CONV2D, x, w, 1);
  int big = ir_unary(g, OP_RELU, conv(g, OP_CONV2D, y, up, 0), LOC);
  int q = conv(g, OP_CONV2D, big, down, 0);
  int dx = conv(g, OP_CONV_TRANSPOSE2D, q, w, 1);
  ir_set_outputs(g, &dx, NULL, 1);
  FuseOptions offo = rule_off();
  Lowered off = lower(g, &offo), checked = lower(g, &rule_on);
  ck_assert_int_eq(checked.shared, 0);
  ck_assert_int_eq(checked.arena, off.arena);
  cg_set_wino_share_check(false);
  Lowered forced = lower(g, &rule_on);
  ck_assert_int_eq(forced.shared, 1);
  ck_assert_int_gt(forced.arena, off.arena);
  ir_graph_free(g);

  /* conv2d and its partner with nothing in between: shared under the check */
  g = ir_graph_new("check_free");
  x = ir_input(g, "x", IR_F32, xs, LOC);
  int dy = ir_input(g, "dy", IR_F32, xs, LOC);
  w = ir_input(g, "w", IR_F32, shp4(16, 16, 3, 3), LOC);
  y = conv(g, OP_CONV2D, x, w, 1);
  dx = conv(g, OP_CONV_TRANSPOSE2D, dy, w, 1);
  ir_set_outputs(g, (int[]){y, dx}, NULL, 2);
  checked = lower(g, &rule_on);
  off = lower(g, &offo);
  ck_assert_int_eq(checked.shared, 1);
  ck_assert_int_le(checked.arena, off.arena);
  FusePlan *p = fuse_plan(g, &rule_on);
  JcCheck c = {.tol = CG_WINOGRAD_REL_TOL};
  jc_check_random(g, p, 0, &c);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* The switch: off by default, on and off again by name; a codegen rule, so
 * +wino-share-u after -fno-fuse does not turn fusion back on. */
START_TEST(test_rule_switch) {
  int r = fuse_rule_find("wino-share-u");
  ck_assert_int_eq(r, FUSE_RULE_WINO_SHARE_U);
  ck_assert(fuse_rule_info[r].is_switch && !fuse_rule_info[r].default_on);
  FuseOptions o = {.enabled = true};
  char err[256];
  ck_assert(!fuse_rule_on(&o, FUSE_RULE_WINO_SHARE_U));
  ck_assert_int_eq(fuse_rule_apply(&o, "+wino-share-u", err, sizeof err), 0);
  ck_assert(fuse_rule_on(&o, FUSE_RULE_WINO_SHARE_U));
  ck_assert(fuse_rule_on(&rule_on, FUSE_RULE_WINO_SHARE_U));
  ck_assert_int_eq(fuse_rule_apply(&o, "-wino-share-u", err, sizeof err), 0);
  ck_assert(!fuse_rule_on(&o, FUSE_RULE_WINO_SHARE_U));
  FuseOptions nf = {.enabled = false};
  ck_assert_int_eq(fuse_rule_apply(&nf, "+wino-share-u", err, sizeof err), 0);
  ck_assert(!nf.enabled);
}
END_TEST

/* Each test may force an algorithm or switch the check off: both are
 * process-wide, so they are put back after every test. */
static void restore_defaults(void) {
  cg_set_wino_share_check(true);
  cg_set_conv_algo(CG_CONV_AUTO);
}

static Suite *wino_share_suite(void) {
  Suite *s = suite_create("wino_share");
  TCase *t = tcase_create("wino_share");
  tcase_set_timeout(t, 1200);
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_add_checked_fixture(t, NULL, restore_defaults);
  tcase_add_test(t, test_rule_switch);
  tcase_add_test(t, test_same_flip);
  tcase_add_test(t, test_winograd4_alone);
  tcase_add_test(t, test_no_partner);
  tcase_add_test(t, test_check);
  tcase_add_loop_test(t, test_two_layers, 0, 2 * NSHAPES);
  tcase_add_loop_test(t, test_dvae_tiny, 0, 2);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(wino_share_suite()); }
