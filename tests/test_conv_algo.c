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
  ck_assert(cg_conv_algo_parse("direct", &a) && a == CG_CONV_DIRECT);
  ck_assert(!cg_conv_algo_parse("fft", &a));
  ir_graph_free(g);
}
END_TEST

/* The tile per algorithm (cg_conv_wino_m), for a conv2d, its weight
 * gradient and a 4x4 stride-2 conv, in an entry that does not train (auto:
 * F(4x4,3x3)) and in a training step (auto: F(2x2,3x3)); -fconv=winograd4
 * parses; the choices are listed (cg_conv_print_choices). */
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
  static const int want[2][4] = {{4, 0, 2, 4}, {2, 0, 2, 4}}; /* [train] */
  for (int train = 0; train < 2; train++) {
    g->train = train;
    for (int i = 0; i < 4; i++) {
      ck_assert_int_eq(cg_conv_wino_m(g, y, algo[i], NULL), want[train][i]);
      ck_assert_int_eq(cg_conv_wino_m(g, dw, algo[i], NULL), want[train][i]);
      ck_assert_int_eq(cg_conv_wino_m(g, y4, algo[i], NULL), 0);
    }
  }
  g->train = false;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cg_conv_print_choices(g, CG_CONV_WINOGRAD4, f);
  fclose(f);
  ck_assert_msg(strstr(text, "conv2d_backward_weight") && strstr(text, "winograd F(4x4,3x3) (-fconv=winograd4)"), "%s",
                text);
  free(text);
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

/* The AdamW step's bound in test_dvae_tiny_direct: on its inputs the
 * all-im2col step itself reaches 9.6e-6 (the update g / (sqrt(v) + eps)
 * turns the gradients' float rounding into a larger relative error in the
 * small state values), so 1e-5 leaves no room for another summation
 * order: direct measured 1.05e-5, auto 6.1e-6. The gradients themselves
 * are held to MODEL_TOL. */
#define STEP_TOL 2e-5

/* The direct path's bound: the 1e-5 relative (its sums are
 * im2col's, in another order). */
#define DIRECT_REL_TOL 1e-5

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

/* ---- the direct path (codegen/lower_direct.c) ---- */

/* How many convolutions of g lowering sends through each algorithm. */
static void algo_counts(const IrGraph *g, int *direct, int *im2col, int *wino) {
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  *direct = l->conv_direct + l->wgrad_direct; /* convolutions and weight gradients alike */
  *im2col = l->conv_im2col + l->wgrad_im2col;
  *wino = l->conv_winograd + l->wgrad_winograd;
  cg_lowered_free(l);
  fuse_plan_free(p);
}

/* One convolution the direct path computes: kernel k, stride s, pad p;
 * transposed: a conv_transpose2d, x [N, C, H, W] -> [N, O, ...]. */
typedef struct {
  const char *config, *what;
  int64_t N, C, O, H, W;
  int k, s, p;
  bool transposed;
} DShape;

/* Which of the three ops of a convolution check_direct runs. */
typedef enum { D_FORWARD, D_INPUT_GRAD, D_WEIGHT_GRAD } DPart;

/* The output size of a conv2d (or conv_transpose2d) along a side of n. */
static int64_t out_side(const DShape *s, int64_t n, bool transposed) {
  return transposed ? (n - 1) * s->s - 2 * s->p + s->k : (n + 2 * s->p - s->k) / s->s + 1;
}

/* Part 'part' of the convolution of shape s, under -fconv=direct through
 * the direct path (counted), against the reference executor:
 *   D_FORWARD      y = conv(x, w) + b
 *   D_INPUT_GRAD   the forward's dx: the other conv op of dy with the same w
 *                  (what autodiff builds), + b
 *   D_WEIGHT_GRAD  conv2d_backward_weight of (x, dy) (forward conv2d) or
 *                  (dy, x) (forward conv_transpose2d).
 * Returns the relative error. */
static double check_direct(const DShape *s, DPart part) {
  int64_t OH = out_side(s, s->H, s->transposed), OW = out_side(s, s->W, s->transposed);
  IrShape sx = shp4(s->N, s->C, s->H, s->W), sy = shp4(s->N, s->O, OH, OW);
  IrShape sw = s->transposed ? shp4(s->C, s->O, s->k, s->k) : shp4(s->O, s->C, s->k, s->k);
  IrAttr a = {.stride = s->s, .pad = s->p};
  IrGraph *g = ir_graph_new("direct");
  int y, nin;
  IrShape in_shape[3];
  if (part == D_WEIGHT_GRAD) {
    int x = input(g, "x", sx), dy = input(g, "dy", sy);
    a.shape = sw;
    y = s->transposed ? ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){dy, x}, 2, &a, LOC)
                      : ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &a, LOC);
    in_shape[0] = sx, in_shape[1] = sy, nin = 2;
  } else {
    bool fwd = part == D_FORWARD;
    IrShape src = fwd ? sx : sy, sb = {.rank = 3, .d = {fwd ? s->O : s->C, 1, 1}};
    int x = input(g, "x", src), w = input(g, "w", sw), b = input(g, "b", sb);
    IrOp op = (s->transposed == fwd) ? OP_CONV_TRANSPOSE2D : OP_CONV2D;
    y = ir_build(g, op, (int[]){x, w}, 2, &a, LOC);
    ck_assert_msg(y >= 0, "%s", g->error);
    y = ir_binary(g, OP_ADD, y, b, LOC);
    in_shape[0] = src, in_shape[1] = sw, in_shape[2] = sb, nin = 3;
  }
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, NULL, 1);
  int nd, ni, nw;
  algo_counts(g, &nd, &ni, &nw);
  ck_assert_int_eq(nd, 1);
  RtTensor *in[3];
  for (int i = 0; i < nin; i++) in[i] = jc_make(IR_F32, &in_shape[i], JC_NORMAL, 0);
  JcCheck c = {.tol = DIRECT_REL_TOL};
  jc_check_plan(g, NULL, in, NULL, &c);
  for (int i = 0; i < nin; i++) rt_tensor_free(in[i]);
  ir_graph_free(g);
  return c.max_err;
}

/* The 1x1 and 4x4 stride-2 pad-1 convolutions of models/dvae.dal (MODELS.md):
 * the encoder's down convs (conv2d) and conv_out (1x1 to K), the decoder's
 * conv_in (1x1 from D) and up convs (conv_transpose2d). Bench at batch 2
 * (the per-sample shapes of batch 16; chunking is test_direct_odd's). */
static const DShape direct_shapes[] = {
    {"tiny", "down", 4, 16, 32, 16, 16, 4, 2, 1, false},     {"tiny", "down", 4, 32, 64, 8, 8, 4, 2, 1, false},
    {"tiny", "up", 4, 64, 32, 4, 4, 4, 2, 1, true},          {"tiny", "up", 4, 32, 16, 8, 8, 4, 2, 1, true},
    {"tiny", "conv_out", 4, 64, 64, 4, 4, 1, 1, 0, false},   {"tiny", "conv_in", 4, 32, 64, 4, 4, 1, 1, 0, false},
    {"bench", "down", 2, 64, 128, 64, 64, 4, 2, 1, false},   {"bench", "down", 2, 128, 256, 32, 32, 4, 2, 1, false},
    {"bench", "down", 2, 256, 256, 16, 16, 4, 2, 1, false},  {"bench", "up", 2, 256, 256, 8, 8, 4, 2, 1, true},
    {"bench", "up", 2, 256, 128, 16, 16, 4, 2, 1, true},     {"bench", "up", 2, 128, 64, 32, 32, 4, 2, 1, true},
    {"bench", "conv_out", 2, 256, 512, 8, 8, 1, 1, 0, false}, {"bench", "conv_in", 2, 256, 256, 8, 8, 1, 1, 0, false},
    {"paper", "down", 1, 128, 256, 256, 256, 4, 2, 1, false}, {"paper", "down", 1, 256, 512, 128, 128, 4, 2, 1, false},
    {"paper", "down", 1, 512, 512, 64, 64, 4, 2, 1, false},  {"paper", "up", 1, 512, 512, 32, 32, 4, 2, 1, true},
    {"paper", "up", 1, 512, 256, 64, 64, 4, 2, 1, true},     {"paper", "up", 1, 256, 128, 128, 128, 4, 2, 1, true},
    {"paper", "conv_out", 1, 512, 8192, 32, 32, 1, 1, 0, false}, {"paper", "conv_in", 1, 512, 512, 32, 32, 1, 1, 0, false},
};
#define NDIRECT ((int)(sizeof direct_shapes / sizeof direct_shapes[0]))

/* _i: one shape per test. Tiny and bench: forward, input and weight
 * gradients; paper: the forward at batch 1, its plane cropped to 32x32
 * (16x16 for an up conv's input) unless DAL_TEST_FULL=1, like
 * test_dvae_shapes. */
START_TEST(test_direct_shapes) {
  cg_set_conv_algo(CG_CONV_DIRECT);
  DShape s = direct_shapes[_i];
  const char *full = getenv("DAL_TEST_FULL");
  bool paper = !strcmp(s.config, "paper");
  if (paper && !(full && !strcmp(full, "1"))) {
    int64_t side = s.transposed ? 16 : 32;
    if (s.H > side) s.H = side;
    if (s.W > side) s.W = side;
  }
  printf("direct %-5s %-8s %s [%lld,%lld,%lld,%lld] -> %lld, k%d s%d p%d: forward rel err %.2e", s.config, s.what,
         s.transposed ? "conv_transpose2d" : "conv2d", (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.W,
         (long long)s.O, s.k, s.s, s.p, check_direct(&s, D_FORWARD));
  if (!paper) printf(", input grad %.2e, weight grad %.2e", check_direct(&s, D_INPUT_GRAD), check_direct(&s, D_WEIGHT_GRAD));
  printf(" (bound %.0e)\n", DIRECT_REL_TOL);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* Odd sides (a last output row and column from one phase only), pads 0
 * and 2, stride 3 with a 6x6 kernel, a 2x2 stride-2 kernel (no shifts),
 * each whole and in chunks of one sample, all three parts. */
START_TEST(test_direct_odd) {
  cg_set_conv_algo(CG_CONV_DIRECT);
  static const DShape odd[] = {
      {"odd", "", 3, 5, 4, 9, 7, 4, 2, 1, false}, {"odd", "", 3, 5, 4, 5, 7, 4, 2, 1, true},
      {"p0", "", 2, 3, 6, 8, 10, 4, 2, 0, false}, {"p2", "", 2, 3, 6, 7, 6, 4, 2, 2, true},
      {"s3", "", 2, 4, 5, 13, 11, 6, 3, 2, false}, {"s3", "", 2, 4, 5, 4, 5, 6, 3, 1, true},
      {"k2", "", 2, 3, 4, 8, 6, 2, 2, 0, false},  {"1x1", "", 3, 6, 5, 5, 3, 1, 1, 0, true},
  };
  for (int b = 0; b < 2; b++) {
    cg_set_col_budget(b == 0 ? 64ll << 20 : 0); /* everything at once; one sample per chunk */
    for (int i = 0; i < (int)(sizeof odd / sizeof odd[0]); i++)
      for (int part = 0; part < 3; part++) ck_assert_double_le(check_direct(&odd[i], (DPart)part), DIRECT_REL_TOL);
  }
  cg_set_col_budget(4ll << 20);
  cg_set_conv_algo(CG_CONV_AUTO);
}
END_TEST

/* cg_conv_pick under each -fconv: which convs can go direct, what AUTO
 * picks, and the per-plan setting (FuseOptions.conv_algo) over the
 * process-wide default. */
START_TEST(test_direct_choice) {
  IrGraph *g = ir_graph_new("direct_choice");
  /* x [2, 32, side, side]: 0: 1x1 s1 p0; 1: 4x4 s2 p1 at 16x16 (an 8x8 output: its grid adds 27%); 2: 3x3 s1 p1
   * (Winograd under auto); 3: 3x3 s2; 4: 1x1 s1 p1; 5: 4x4 s2 p1 transposed; 6: 4x4 s2 p1 at 256x256 (128x128
   * out: the grid adds 1.6%); 7: the weight gradient of a 1x1 s1 p0 conv2d */
  enum { NV = 8 };
  static const int kk[NV] = {1, 4, 3, 3, 1, 4, 4, 1}, ss[NV] = {1, 2, 1, 2, 1, 2, 2, 1}, pp[NV] = {0, 1, 1, 1, 1, 1, 1, 0};
  int v[NV];
  for (int i = 0; i < NV; i++) {
    char xn[16], wn[16];
    snprintf(xn, sizeof xn, "x%d", i);
    snprintf(wn, sizeof wn, "w%d", i);
    int64_t side = i == 6 ? 256 : 16;
    int x = input(g, xn, shp4(2, 32, side, side));
    int w = input(g, wn, i == 7 ? shp4(2, 32, side, side) : shp4(32, 32, kk[i], kk[i]));
    IrAttr a = {.stride = ss[i], .pad = pp[i]};
    if (i == 7) a.shape = shp4(32, 32, 1, 1); /* w is dy here */
    v[i] = ir_build(g, i == 5 ? OP_CONV_TRANSPOSE2D : i == 7 ? OP_CONV2D_BACKWARD_WEIGHT : OP_CONV2D, (int[]){x, w}, 2,
                    &a, LOC);
    ck_assert_msg(v[i] >= 0, "%s", g->error);
  }
  ir_set_outputs(g, v, NULL, NV);
  const CgConvAlgo D = CG_CONV_DIRECT, I = CG_CONV_IM2COL, W = CG_CONV_WINOGRAD, W4 = CG_CONV_WINOGRAD4;
  const CgConvAlgo want[4][NV] = {
      /* auto (not a training step: F(4x4,3x3)) */ {D, I, W4, I, I, I, D, I},
      /* im2col */ {I, I, I, I, I, I, I, I},
      /* winograd */ {I, I, W, I, I, I, I, I},
      /* direct */ {D, D, I, I, I, D, D, D},
  };
  for (int a = 0; a < 4; a++)
    for (int i = 0; i < NV; i++) {
      const char *why = NULL;
      ck_assert_int_eq(cg_conv_pick(g, v[i], (CgConvAlgo)a, &why), want[a][i]);
      ck_assert(why && *why);
    }
  const char *why = NULL;
  ck_assert_int_eq(cg_conv_pick(g, g->input[0], CG_CONV_DIRECT, &why), CG_CONV_IM2COL); /* not a conv */
  /* the plan's setting wins over the process-wide one */
  cg_set_conv_algo(CG_CONV_IM2COL);
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true, .conv_algo = CG_CONV_DIRECT + 1});
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  ck_assert_int_eq(l->conv_direct, 4);
  ck_assert_int_eq(l->wgrad_direct, 1);
  ck_assert_int_eq(l->conv_im2col, 3);
  ck_assert_int_eq(l->conv_winograd, 0);
  cg_lowered_free(l);
  fuse_plan_free(p);
  int nd, ni, nw;
  algo_counts(g, &nd, &ni, &nw); /* options without conv_algo: the process-wide default */
  ck_assert_int_eq(nd, 0);
  ck_assert_int_eq(ni, NV);
  cg_set_conv_algo(CG_CONV_AUTO);
  algo_counts(g, &nd, &ni, &nw);
  ck_assert_int_eq(nd, 2);
  ck_assert_int_eq(nw, 1);
  ck_assert_int_eq(ni, 5);
  ck_assert_int_eq(cg_conv_algo_of(&(FuseOptions){.conv_algo = CG_CONV_WINOGRAD + 1}), CG_CONV_WINOGRAD);
  ck_assert_int_eq(cg_conv_algo_of(NULL), CG_CONV_AUTO);
  ck_assert_str_eq(cg_conv_algo_name(CG_CONV_DIRECT), "direct");
  ir_graph_free(g);
}
END_TEST

/* The dVAE tiny's gradients (_i = 0) and AdamW step (_i = 1) under
 * -fconv=direct (every 4x4 and 1x1 conv, forward, dx and dw) and under
 * auto (direct, Winograd and im2col mixed). */
START_TEST(test_dvae_tiny_direct) {
  for (int algo = 0; algo < 2; algo++) {
    cg_set_conv_algo(algo == 0 ? CG_CONV_DIRECT : CG_CONV_AUTO);
    FeProgram *prog;
    IrGraph *g = dvae_tiny("loss_given_noise", &prog);
    if (_i == 0) {
      ck_assert_msg(ad_grad_pass(g) == 0, "%s", g->error);
    } else {
      AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-3, .weight_decay = 0.0};
      ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
    }
    int nd, ni, nw;
    algo_counts(g, &nd, &ni, &nw);
    /* direct: 2 down, 2 up, 2 1x1 convs: forward, dx (not the image's) and dw; auto: the 1x1s' forward and dx */
    ck_assert_int_ge(nd, algo == 0 ? 16 : 4);
    RtTensor **params = dvae_params(g);
    RtTensor **in = calloc((size_t)g->ninput + 1, sizeof *in);
    for (int k = 0; k < g->ninput; k++) {
      const IrNode *nd_ = &g->node[g->input[k]];
      in[k] = jc_make(IR_F32, &nd_->shape, nd_->shape.rank == 0 ? JC_POS : JC_NORMAL, 0);
      if (nd_->shape.rank == 0 && strstr(nd_->name, "lr")) rt_f32(in[k])[0] = 3e-4f;
    }
    double tol = _i ? STEP_TOL : MODEL_TOL;
    JcCheck c = {.tol = tol, .seed = 5, .step = 1};
    jc_check_plan(g, NULL, in, params, &c);
    printf("dvae tiny %s, -fconv=%s: %d direct, %d Winograd, %d im2col convs: rel err %.2e (bound %.0e)\n",
           _i ? "AdamW step" : "gradients", algo == 0 ? "direct" : "auto", nd, nw, ni, c.max_err, tol);
    for (int k = 0; k < g->ninput; k++) rt_tensor_free(in[k]);
    for (int k = 0; k < g->nparam; k++) rt_tensor_free(params[k]);
    free(in);
    free(params);
    ir_graph_free(g);
    fe_free(prog);
  }
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
  TCase *d = tcase_create("direct");
  tcase_add_checked_fixture(d, jc_setup, jc_teardown);
  tcase_set_timeout(d, 600);
  tcase_add_test(d, test_direct_choice);
  tcase_add_test(d, test_direct_odd);
  tcase_add_loop_test(d, test_dvae_tiny_direct, 0, 2);
  tcase_add_loop_test(d, test_direct_shapes, 0, NDIRECT);
  suite_add_tcase(s, d);
  return s;
}

int main(void) { return tu_run_suite(suite()); }
