/* test_conv_algo.c — the convolution algorithms (codegen/lower_winograd.c)
 * against the reference executor.
 *
 * Winograd F(2x2,3x3) on every 3x3 stride-1 convolution shape of the dVAE's
 * tiny, bench and paper configurations (paper at batch 1, on a 32x32 crop
 * of the plane unless DAL_TEST_FULL=1), forward
 * (conv2d + bias, fused into one group as the model's are) and, for tiny
 * and bench, backward-data (the conv_transpose2d that autodiff makes of the
 * forward's dx): the relative error (max-abs difference over max-abs of the
 * reference, which computes in double) stays within CG_WINOGRAD_REL_TOL and
 * is printed. Then the odd cases (odd output sizes, pad 0 and 2, chunks of
 * samples and of tile rows), the AUTO rule, the -fconv parsing, and the
 * dVAE tiny's gradients and AdamW training step under -fconv=winograd. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/llvm/cg_llvm.h"
#include "codegen/lower.h"
#include "frontend/frontend.h"
#include "ir/ref/bind.h"
#include "passes/autodiff.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_conv_algo.c", __LINE__, 1})

static IrShape shp4(int64_t a, int64_t b, int64_t c, int64_t d) {
  return (IrShape){.rank = 4, .d = {a, b, c, d}};
}

static int input(IrGraph *g, const char *name, IrShape s) {
  int id = ir_input(g, name, IR_F32, s, LOC);
  ck_assert_msg(id >= 0, "%s", g->error);
  return id;
}

/* How many convolutions of g lowering sends through Winograd (fusion on). */
static int winograd_count(const IrGraph *g) {
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  int n = l->conv_winograd;
  cg_lowered_free(l);
  fuse_plan_free(p);
  return n;
}

/* One 3x3 convolution: x [N, C, H, W] -> [N, O, OH, OW], pad p. */
typedef struct {
  const char *config;
  int64_t N, C, O, H, W;
  int pad;
} Shape;

/* The bound of the algorithm in force. */
static double wino_tol(void) {
  return cg_conv_algo() == CG_CONV_WINOGRAD4 ? CG_WINOGRAD4_REL_TOL : CG_WINOGRAD_REL_TOL;
}

/* Forward: conv2d(x, w) + b, w [O, C, 3, 3]; backward-data (transposed):
 * conv_transpose2d(dy, w) with dy [N, O, OH, OW] -> [N, C, H, W], the
 * input gradient of that conv2d. Checked through Winograd; returns the
 * relative error. */
static double check_shape(const Shape *s, bool transposed) {
  int64_t OH = s->H + 2 * s->pad - 2, OW = s->W + 2 * s->pad - 2;
  IrGraph *g = ir_graph_new(transposed ? "winograd_dx" : "winograd");
  IrShape sx = transposed ? shp4(s->N, s->O, OH, OW) : shp4(s->N, s->C, s->H, s->W);
  IrShape sw = shp4(s->O, s->C, 3, 3), sb = {.rank = 3, .d = {transposed ? s->C : s->O, 1, 1}};
  int x = input(g, "x", sx), w = input(g, "w", sw), b = input(g, "b", sb);
  IrOp op = transposed ? OP_CONV_TRANSPOSE2D : OP_CONV2D;
  int y = ir_build(g, op, (int[]){x, w}, 2, &(IrAttr){.stride = 1, .pad = s->pad}, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  y = ir_binary(g, OP_ADD, y, b, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  ck_assert_int_eq(winograd_count(g), 1);
  RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0),
                     jc_make(IR_F32, &sb, JC_NORMAL, 0)};
  JcCheck c = {.tol = wino_tol()};
  jc_check_plan(g, NULL, in, NULL, &c);
  for (int i = 0; i < 3; i++) rt_tensor_free(in[i]);
  ir_graph_free(g);
  return c.max_err;
}

/* Weight gradient: conv2d_backward_weight(x, dy) + w0 (an epilogue, as
 * the gradient accumulation's), x [N, C, H, W], dy [N, O, OH, OW] ->
 * [O, C, 3, 3]. Checked through Winograd; returns the relative error. */
static double check_wgrad(const Shape *s) {
  int64_t OH = s->H + 2 * s->pad - 2, OW = s->W + 2 * s->pad - 2;
  IrGraph *g = ir_graph_new("winograd_dw");
  IrShape sx = shp4(s->N, s->C, s->H, s->W), sd = shp4(s->N, s->O, OH, OW), sw = shp4(s->O, s->C, 3, 3);
  int x = input(g, "x", sx), dy = input(g, "dy", sd), w0 = input(g, "w0", sw);
  int y = ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &(IrAttr){.stride = 1, .pad = s->pad, .shape = sw},
                   LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  y = ir_binary(g, OP_ADD, y, w0, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  ck_assert_int_eq(l->wgrad_winograd, 1);
  cg_lowered_free(l);
  fuse_plan_free(p);
  RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sd, JC_NORMAL, 0),
                     jc_make(IR_F32, &sw, JC_NORMAL, 0)};
  JcCheck c = {.tol = wino_tol()};
  jc_check_plan(g, NULL, in, NULL, &c);
  for (int i = 0; i < 3; i++) rt_tensor_free(in[i]);
  ir_graph_free(g);
  return c.max_err;
}

/* The 3x3 stride-1 pad-1 convolutions of models/dvae.dal (from
 * `dalc models/dvae.dal --config C --emit=ir --grad --explain-fusion`):
 * the stem (3 -> hid), the residual blocks' (c -> c at each stage), the
 * decoder's output (hid -> 3). Bench at batch 2 instead of 16: the same
 * per-sample shapes (the error does not depend on the batch; chunks are
 * test_odd_and_chunked's), 8x less reference time. */
static const Shape dvae_shapes[] = {
    {"tiny", 4, 3, 16, 16, 16, 1},       {"tiny", 4, 16, 16, 16, 16, 1},     {"tiny", 4, 16, 3, 16, 16, 1},
    {"tiny", 4, 32, 32, 8, 8, 1},        {"tiny", 4, 64, 64, 4, 4, 1},       {"bench", 2, 3, 64, 64, 64, 1},
    {"bench", 2, 64, 64, 64, 64, 1},     {"bench", 2, 64, 3, 64, 64, 1},     {"bench", 2, 128, 128, 32, 32, 1},
    {"bench", 2, 256, 256, 16, 16, 1},   {"bench", 2, 256, 256, 8, 8, 1},    {"paper", 1, 3, 128, 256, 256, 1},
    {"paper", 1, 128, 128, 256, 256, 1}, {"paper", 1, 128, 3, 256, 256, 1},  {"paper", 1, 256, 256, 128, 128, 1},
    {"paper", 1, 512, 512, 64, 64, 1},   {"paper", 1, 512, 512, 32, 32, 1},
};
#define NSHAPES ((int)(sizeof dvae_shapes / sizeof dvae_shapes[0]))

/* _i: one shape per test, each reported on its own line. */
/* The paper shapes' full planes (256x256 at 128 channels) take the
 * reference executor minutes, under the sanitizers far longer; by default
 * they run on a 32x32 crop of the plane with every channel count kept
 * (the error grows with C, the reduction length; the tiles, edges and
 * chunks of a larger plane are the bench shapes' and test_odd_and_chunked's).
 * DAL_TEST_FULL=1 runs the full planes. */
START_TEST(test_dvae_shapes) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  Shape crop = dvae_shapes[_i];
  const char *full = getenv("DAL_TEST_FULL");
  if (!strcmp(crop.config, "paper") && !(full && !strcmp(full, "1"))) {
    if (crop.H > 32) crop.H = 32;
    if (crop.W > 32) crop.W = 32;
  }
  const Shape *s = &crop;
  double fwd = check_shape(s, false);
  printf("winograd %-5s [%lld,%lld,%lld,%lld] -> %lld: forward rel err %.2e", s->config, (long long)s->N,
         (long long)s->C, (long long)s->H, (long long)s->W, (long long)s->O, fwd);
  if (s->N > 1) { /* tiny and bench: the training step's dx too */
    double bwd = check_shape(s, true);
    printf(", backward-data %.2e", bwd);
  }
  printf(" (bound %.0e)\n", CG_WINOGRAD_REL_TOL);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* The weight gradient (conv2d_backward_weight) of every 3x3 conv shape of
 * the tiny and bench configs (the training steps'), and of the paper's,
 * all on at most a 32x32 plane (the error grows with the reduction length
 * N * OH * OW; bench's 64x64 tiles and chunks are test_odd_and_chunked's). */
START_TEST(test_dvae_wgrad) {
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  Shape s = dvae_shapes[_i];
  if (s.H > 32) s.H = s.W = 32; /* the reduction runs over N * OH * OW; the tiles are bench's */
  double err = check_wgrad(&s);
  printf("winograd %-5s [%lld,%lld,%lld,%lld] -> %lld: weight gradient rel err %.2e (bound %.0e)\n", s.config,
         (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.W, (long long)s.O, err, CG_WINOGRAD_REL_TOL);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* F(4x4,3x3) (-fconv=winograd4) on the same shapes as test_dvae_shapes
 * (paper on the 32x32 crop), forward, backward-data and the weight
 * gradient, within CG_WINOGRAD4_REL_TOL; the errors are printed. */
START_TEST(test_dvae_shapes4) {
  cg_set_conv_algo(CG_CONV_WINOGRAD4);
  Shape s = dvae_shapes[_i];
  if (!strcmp(s.config, "paper") && s.H > 32) s.H = s.W = 32;
  double fwd = check_shape(&s, false), bwd = check_shape(&s, true), dw = check_wgrad(&s);
  printf("winograd4 %-5s [%lld,%lld,%lld,%lld] -> %lld: forward rel err %.2e, backward-data %.2e, weight gradient "
         "%.2e (bound %.0e)\n",
         s.config, (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.W, (long long)s.O, fwd, bwd, dw,
         CG_WINOGRAD4_REL_TOL);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* Odd output sizes (the last tile row and column partly outside), pad 0
 * and 2 (and the conv_transpose2d pads that map to them), whole and in
 * chunks of samples and of tile rows, forward, backward-data and weight
 * gradient, with a residual epilogue; _i = 0: F(2x2,3x3), 1: F(4x4,3x3). */
START_TEST(test_odd_and_chunked) {
  int m = _i ? 4 : 2, P = (m + 2) * (m + 2);
  cg_set_conv_algo(_i ? CG_CONV_WINOGRAD4 : CG_CONV_WINOGRAD);
  static const Shape odd[] = {
      {"odd", 3, 5, 4, 7, 9, 1}, {"p0", 3, 5, 4, 8, 7, 0}, {"p2", 2, 4, 6, 5, 6, 2}, {"one", 1, 2, 3, 1, 1, 1},
      {"odd4", 2, 3, 4, 11, 13, 1},
  };
  /* budgets: everything at once, one sample per chunk, two tile rows per chunk */
  static const int64_t budget[] = {64ll << 20, 0, 1};
  for (int b = 0; b < 3; b++)
    for (int i = 0; i < 5; i++) {
      const Shape *s = &odd[i];
      int64_t th = (s->H + 2 * s->pad - 2 + m - 1) / m, tw = (s->W + 2 * s->pad - 2 + m - 1) / m;
      int64_t per_tile = P * (s->C + s->O) * 4;
      cg_set_col_budget(b == 0 ? budget[0] : b == 1 ? per_tile * th * tw : per_tile * tw * 2);
      for (int t = 0; t < 2; t++) ck_assert_double_le(check_shape(s, t), wino_tol());
      ck_assert_double_le(check_wgrad(s), wino_tol());
    }
  cg_set_col_budget(4ll << 20);
  /* conv2d + bias + residual, in tile rows: the epilogue reads z at the output */
  IrGraph *g = ir_graph_new("winograd_residual");
  IrShape sx = shp4(2, 6, 10, 10), sw = shp4(6, 6, 3, 3), sb = {.rank = 3, .d = {6, 1, 1}};
  int x = input(g, "x", sx), w = input(g, "w", sw), bias = input(g, "b", sb);
  int y = ir_build(g, OP_CONV2D, (int[]){ir_unary(g, OP_RELU, x, LOC), w}, 2, &(IrAttr){.stride = 1, .pad = 1}, LOC);
  y = ir_binary(g, OP_ADD, ir_binary(g, OP_ADD, y, bias, LOC), x, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0),
                     jc_make(IR_F32, &sb, JC_NORMAL, 0)};
  /* F(2x2): two of five tile rows, F(4x4): one of three: 3 chunks per sample */
  cg_set_col_budget(m == 2 ? 16 * 12 * 4 * 5 * 2 : 36 * 12 * 4 * 3);
  JcCheck c = {.tol = wino_tol()};
  jc_check_both(g, in, NULL, &c);
  cg_set_col_budget(4ll << 20);
  for (int i = 0; i < 3; i++) rt_tensor_free(in[i]);
  ir_graph_free(g);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* AUTO: Winograd for the big 3x3 stride-1 convolutions only; IM2COL never. */
START_TEST(test_choice) {
  IrGraph *g = ir_graph_new("choice");
  int xs[4];
  static const int64_t dims[4][4] = {{2, 32, 16, 16}, {2, 3, 16, 16}, {2, 32, 4, 4}, {2, 32, 16, 16}};
  for (int i = 0; i < 4; i++) {
    char xn[16], wn[16];
    snprintf(xn, sizeof xn, "x%d", i);
    snprintf(wn, sizeof wn, "w%d", i);
    xs[i] = input(g, xn, shp4(dims[i][0], dims[i][1], dims[i][2], dims[i][3]));
    int w = input(g, wn, shp4(32, dims[i][1], i == 3 ? 4 : 3, i == 3 ? 4 : 3));
    IrAttr a = {.stride = i == 3 ? 2 : 1, .pad = 1};
    xs[i] = ir_build(g, OP_CONV2D, (int[]){xs[i], w}, 2, &a, LOC);
    ck_assert_msg(xs[i] >= 0, "%s", g->error);
  }
  ir_set_outputs(g, xs, NULL, 4);
  bool want[4] = {true, false, false, false}; /* big; 3 channels; 16 positions; 4x4 stride 2 */
  for (int i = 0; i < 4; i++) ck_assert_int_eq(cg_conv_choose(g, xs[i], NULL), want[i]);
  ck_assert_int_eq(winograd_count(g), 1);
  cg_set_conv_algo(CG_CONV_IM2COL);
  ck_assert_int_eq(winograd_count(g), 0);
  cg_set_conv_algo(CG_CONV_WINOGRAD);
  ck_assert_int_eq(winograd_count(g), 3); /* not the 4x4 stride-2 one */
  cg_set_conv_algo(CG_CONV_AUTO);
  CgConvAlgo a;
  ck_assert(cg_conv_algo_parse("winograd", &a) && a == CG_CONV_WINOGRAD);
  ck_assert(cg_conv_algo_parse("im2col", &a) && a == CG_CONV_IM2COL);
  ck_assert(!cg_conv_algo_parse("direct", &a));
  ir_graph_free(g);
}
END_TEST

/* The tile per algorithm (cg_conv_wino_m), for a conv2d, its weight
 * gradient and a 4x4 stride-2 conv; -fconv=winograd4 parses; the choices
 * are listed (cg_conv_print_choices). */
START_TEST(test_choice_tile) {
  IrGraph *g = ir_graph_new("choice_tile");
  IrShape sx = shp4(2, 32, 16, 16), sw = shp4(32, 32, 3, 3);
  int x = input(g, "x", sx), w = input(g, "w", sw), dy = input(g, "dy", sx), w4 = input(g, "w4", shp4(32, 32, 4, 4));
  int y = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &(IrAttr){.stride = 1, .pad = 1}, LOC);
  int dw = ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &(IrAttr){.stride = 1, .pad = 1, .shape = sw}, LOC);
  int y4 = ir_build(g, OP_CONV2D, (int[]){x, w4}, 2, &(IrAttr){.stride = 2, .pad = 1}, LOC);
  ck_assert(y >= 0 && dw >= 0 && y4 >= 0);
  ir_set_outputs(g, (int[]){y, dw, y4}, NULL, 3);
  static const CgConvAlgo algo[] = {CG_CONV_AUTO, CG_CONV_IM2COL, CG_CONV_WINOGRAD, CG_CONV_WINOGRAD4};
  static const int want[] = {2, 0, 2, 4};
  for (int i = 0; i < 4; i++) {
    cg_set_conv_algo(algo[i]);
    ck_assert_int_eq(cg_conv_wino_m(g, y, NULL), want[i]);
    ck_assert_int_eq(cg_conv_wino_m(g, dw, NULL), want[i]);
    ck_assert_int_eq(cg_conv_wino_m(g, y4, NULL), 0);
  }
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cg_conv_print_choices(g, f);
  fclose(f);
  ck_assert_msg(strstr(text, "conv2d_backward_weight") && strstr(text, "winograd F(4x4,3x3) (-fconv=winograd4)"), "%s",
                text);
  free(text);
  cg_set_conv_algo(CG_CONV_AUTO);
  CgConvAlgo a;
  ck_assert(cg_conv_algo_parse("winograd4", &a) && a == CG_CONV_WINOGRAD4);
  ck_assert(!cg_conv_algo_parse("winograd6", &a));
  ir_graph_free(g);
}
END_TEST

static IrGraph *dvae_tiny(const char *entry, FeProgram **prog) {
  char *err = NULL;
  *prog = fe_load_file("models/dvae.dal", &(FeOptions){.config = "tiny", .batch = 2}, &err);
  ck_assert_msg(*prog != NULL, "%s", err);
  int i = fe_entry_find(*prog, entry);
  ck_assert_int_ge(i, 0);
  IrGraph *g = fe_lower_entry(*prog, i, &err);
  ck_assert_msg(g != NULL, "%s", err);
  return g;
}

static RtTensor **dvae_params(const IrGraph *g) {
  RtErr e;
  RtTensor **p = calloc((size_t)g->nparam + 1, sizeof *p);
  ck_assert_msg(cg_bind_params(g, NULL, NULL, 1234, p, &e) == 0, "%s", e.msg);
  return p;
}

/* The model's relative tolerance under Winograd: test_jit's for the im2col
 * path (measured: gradients 1.9e-6, AdamW step 3.9e-6). */
#define MODEL_TOL 1e-5

/* The same under F(4x4,3x3): its bound (see lower.h). */
#define MODEL_TOL4 CG_WINOGRAD4_REL_TOL

/* _i = 0: the loss and every parameter's gradient (loss_given_noise);
 * _i = 1: one AdamW training step (loss and the updated state); _i = 2, 3:
 * the same under F(4x4,3x3). */
START_TEST(test_dvae_tiny_winograd) {
  bool four = _i >= 2;
  double tol = four ? MODEL_TOL4 : MODEL_TOL;
  cg_set_conv_algo(four ? CG_CONV_WINOGRAD4 : CG_CONV_WINOGRAD);
  FeProgram *prog;
  IrGraph *g = dvae_tiny("loss_given_noise", &prog);
  if (_i % 2 == 0) {
    ck_assert_msg(ad_grad_pass(g) == 0, "%s", g->error);
  } else {
    AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-3, .weight_decay = 0.0};
    ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
  }
  int nwino = winograd_count(g);
  ck_assert_int_ge(nwino, 20); /* forward and dx of each 3x3 conv (27 today) */
  RtTensor **params = dvae_params(g);
  RtTensor **in = calloc((size_t)g->ninput + 1, sizeof *in);
  for (int k = 0; k < g->ninput; k++) {
    const IrNode *nd = &g->node[g->input[k]];
    in[k] = jc_make(IR_F32, &nd->shape, nd->shape.rank == 0 ? JC_POS : JC_NORMAL, 0);
    if (nd->shape.rank == 0 && strstr(nd->name, "lr")) rt_f32(in[k])[0] = 3e-4f;
  }
  JcCheck c = {.tol = tol, .seed = 5, .step = 1};
  jc_check_plan(g, NULL, in, params, &c);
  printf("dvae tiny %s, %s, %d Winograd convs: rel err %.2e (bound %.0e)\n", _i % 2 ? "AdamW step" : "gradients",
         four ? "F(4x4,3x3)" : "F(2x2,3x3)", nwino, c.max_err, tol);
  for (int k = 0; k < g->ninput; k++) rt_tensor_free(in[k]);
  for (int k = 0; k < g->nparam; k++) rt_tensor_free(params[k]);
  free(in);
  free(params);
  ir_graph_free(g);
  fe_free(prog);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("conv_algo");
  TCase *t = tcase_create("winograd");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_set_timeout(t, 600);
  tcase_add_test(t, test_choice);
  tcase_add_test(t, test_choice_tile);
  tcase_add_loop_test(t, test_odd_and_chunked, 0, 2);
  tcase_add_loop_test(t, test_dvae_tiny_winograd, 0, 4);
  tcase_add_loop_test(t, test_dvae_shapes, 0, NSHAPES);
  tcase_add_loop_test(t, test_dvae_wgrad, 0, NSHAPES);
  tcase_add_loop_test(t, test_dvae_shapes4, 0, NSHAPES);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(suite()); }
