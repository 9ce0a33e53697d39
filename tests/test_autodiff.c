/* test_autodiff.c — reverse-mode autodiff (passes/autodiff.h) against
 * central finite differences, for every differentiable op of ops.def.
 *
 * Method. A case builds y = op(x...) with the IR builder on f32 (and i32)
 * inputs; the test appends loss = sum(y * R) for a fixed random R of y's
 * shape, takes ad_gradients of the loss with respect to every f32 input and
 * runs the graph on the reference executor. Each analytic gradient element
 * is then compared with (L(x + h) - L(x - h)) / (2h), L computed on the host
 * in double from the executor's y, h = 1e-2 (the divisor is the difference
 * of the two perturbed float32 inputs, so input rounding does not bias it).
 *
 * Tolerance. The error measure is max|analytic - fd| / max|fd| over each
 * input. With float32 y (relative rounding 6e-8) over at most a few hundred
 * elements of size ~1, L's rounding error is ~1e-6, i.e. ~5e-5 after
 * dividing by 2h; the truncation error h^2/6 * f''' is ~2e-5 times the third
 * derivative; the analytic side is float32 (~1e-6 relative). Measured
 * errors (AD_VERBOSE=1 prints them) are below 1.1e-4 except for a divisor
 * (3.5e-4: 1/b^3 curvature at b = 0.5); the bound is 1e-3, ten times
 * tighter than the usual 1e-2 for float32 and a factor 3 or more above
 * every case.
 *
 * Inputs are kept away from kinks (relu and abs at 0, max/min ties, tied
 * maxima) by more than h, so the differences see one smooth piece.
 *
 * Other tests: straight_through (gradient exactly as through soft, none to
 * hard, visible in the IR dump), `none` ops, the `missing` error with its
 * location, fan-out summation, no-path zero gradients, argument errors, max
 * ties, and the "grad" pass (outputs and names). A coverage test checks that
 * every op of ops.def is accounted for by one of them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref.h"
#include "ir/ir.h"
#include "passes/autodiff.h"
#include "passes/passes.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_autodiff.c", __LINE__, 1})
#define SH(r, ...) {.rank = (r), .d = {__VA_ARGS__}}
#define SCALAR {.rank = 0}
#define F IR_F32
#define I IR_I32

/* ---- deterministic random numbers (splitmix64) ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t next_u64(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double uniform(double lo, double hi) { return lo + (hi - lo) * (double)(next_u64() >> 11) * 0x1p-53; }

/* ---- the case table ---- */

/* How inputs are kept away from kinks. */
typedef enum {
  SMOOTH,    /* nothing to avoid */
  AWAY_0,    /* |x| >= 0.1 (relu, abs) */
  APART,     /* inputs 0 and 1 (same shape) differ by >= 0.1 everywhere (max, min) */
  DISTINCT,  /* input 0's values pairwise >= 0.1 apart (reduce_max) */
} Kink;

/* How y is built from the inputs x[0..nin). */
typedef enum {
  BUILD,   /* ir_build(op, x, nin, &attr) */
  BINARY,  /* ir_binary(op, x0, x1): numpy broadcasting */
  WHERE,   /* ir_where(x0, x1, x2) */
  CUSTOM,  /* fn(g, x) */
} How;

#define NIN_MAX 4 /* inputs of a case (a composite may have more than one op's) */

typedef struct {
  const char *name;
  IrOp op;
  How how;
  int nin;
  IrDType dt[NIN_MAX];
  IrShape sh[NIN_MAX];
  IrAttr attr;
  double lo, hi;   /* f32 inputs are uniform in [lo, hi) (default [-2, 2)) */
  int ihi;         /* i32 inputs are i % ihi over their elements, shuffled: every value repeats */
  Kink kink;
  int (*fn)(IrGraph *g, const int *x);
} GradCase;

/* ---- custom builders ---- */

/* Fan-out: x feeds three consumers, y = x * x + exp(x) * x. */
static int fan_out(IrGraph *g, const int *x) {
  int sq = ir_binary(g, OP_MUL, x[0], x[0], LOC);
  return ir_binary(g, OP_ADD, sq, ir_binary(g, OP_MUL, ir_unary(g, OP_EXP, x[0], LOC), x[0], LOC), LOC);
}

/* Cross-entropy weighted per position (the dVAE/GPT loss shape): ce(logits, t) * w. */
static int weighted_ce(IrGraph *g, const int *x) {
  int ce = ir_build(g, OP_CROSS_ENTROPY, x, 2, NULL, LOC);
  return ir_binary(g, OP_MUL, ce, x[2], LOC);
}

/* A chain through several ops: softmax(layer_norm(x) @ w) with a shared w. */
static int small_mlp(IrGraph *g, const int *x) {
  int h = ir_build(g, OP_LAYER_NORM, x, 3, &(IrAttr){.eps = 1e-5f}, LOC);
  int z = ir_build(g, OP_MATMUL, (int[]){ir_unary(g, OP_GELU, h, LOC), x[3]}, 2, NULL, LOC);
  return ir_build(g, OP_SOFTMAX, &z, 1, &(IrAttr){.axis = -1}, LOC);
}

/* Fused attention (q, k, v) under a mask where query i sees keys j <= i + 1,
 * its whole output: the attended values and each row's log-sum-exp. */
static int attention_masked(IrGraph *g, const int *x) {
  IrShape ms = {.rank = 2, .d = {g->node[x[0]].shape.d[2], g->node[x[1]].shape.d[2]}};
  int row = ir_build(g, OP_IOTA, NULL, 0, &(IrAttr){.shape = ms, .axis = 0}, LOC);
  int col = ir_build(g, OP_IOTA, NULL, 0, &(IrAttr){.shape = ms, .axis = 1}, LOC);
  int mask = ir_binary(g, OP_GE, ir_binary(g, OP_ADD, row, ir_scalar(g, I, 1, LOC), LOC), col, LOC);
  return ir_build(g, OP_ATTENTION, (int[]){x[0], x[1], x[2], mask}, 4, &(IrAttr){.value = 0.6}, LOC);
}

static int cast_f32(IrGraph *g, const int *x) { return ir_build(g, OP_CAST, x, 1, &(IrAttr){.dtype = F}, LOC); }

#define U(nm, OPX, ...) {.name = nm, .op = OPX, .how = BUILD, .nin = 1, .dt = {F}, .sh = {SH(2, 3, 4)}, __VA_ARGS__}
#define B(nm, OPX, s0, s1, ...) {.name = nm, .op = OPX, .how = BINARY, .nin = 2, .dt = {F, F}, .sh = {s0, s1}, __VA_ARGS__}
#define R(nm, OPX, ...) {.name = nm, .op = OPX, .how = BUILD, .nin = 1, .dt = {F}, .sh = {SH(3, 2, 3, 4)}, __VA_ARGS__}
#define MM(nm, s0, s1, ta, tb) \
  {.name = nm, .op = OP_MATMUL, .how = BUILD, .nin = 2, .dt = {F, F}, .sh = {s0, s1}, .attr = {.trans_a = ta, .trans_b = tb}}
#define CONV(nm, OPX, s0, s1, st, pd) \
  {.name = nm, .op = OPX, .how = BUILD, .nin = 2, .dt = {F, F}, .sh = {s0, s1}, .attr = {.stride = st, .pad = pd}}
#define NORM(nm, OPX, s0, c, ...) \
  {.name = nm, .op = OPX, .how = BUILD, .nin = 3, .dt = {F, F, F}, .sh = {s0, SH(1, c), SH(1, c)}, __VA_ARGS__}

static const GradCase cases[] = {
    /* elementwise unary */
    U("neg", OP_NEG),
    U("abs", OP_ABS, .kink = AWAY_0),
    U("exp", OP_EXP),
    U("log", OP_LOG, .lo = 0.5, .hi = 3),
    U("sqrt", OP_SQRT, .lo = 0.5, .hi = 3),
    U("rsqrt", OP_RSQRT, .lo = 0.5, .hi = 3),
    U("tanh", OP_TANH),
    U("sigmoid", OP_SIGMOID, .lo = -4, .hi = 4),
    U("relu", OP_RELU, .kink = AWAY_0),
    U("gelu", OP_GELU, .lo = -3, .hi = 3),
    U("silu", OP_SILU, .lo = -4, .hi = 4),
    {.name = "cast_f32", .op = OP_CAST, .how = CUSTOM, .nin = 1, .dt = {F}, .sh = {SH(2, 3, 4)}, .fn = cast_f32},
    /* elementwise binary, same shapes */
    B("add", OP_ADD, SH(2, 3, 4), SH(2, 3, 4)),
    B("sub", OP_SUB, SH(2, 3, 4), SH(2, 3, 4)),
    B("mul", OP_MUL, SH(2, 3, 4), SH(2, 3, 4)),
    B("div", OP_DIV, SH(2, 3, 4), SH(2, 3, 4), .lo = 0.5, .hi = 2),
    B("max", OP_MAX, SH(2, 3, 4), SH(2, 3, 4), .kink = APART),
    B("min", OP_MIN, SH(2, 3, 4), SH(2, 3, 4), .kink = APART),
    B("pow", OP_POW, SH(2, 3, 4), SH(2, 3, 4), .lo = 0.5, .hi = 2),
    /* broadcasting in each direction (the gradient is summed back by BROADCAST's rule) */
    B("add_bcast_both", OP_ADD, SH(3, 3, 1, 4), SH(2, 5, 1)),
    B("mul_bcast_b_lower_rank", OP_MUL, SH(3, 2, 3, 4), SH(1, 4)),
    B("sub_bcast_a_lower_rank", OP_SUB, SH(1, 4), SH(3, 2, 3, 4)),
    B("div_bcast_ones", OP_DIV, SH(3, 2, 1, 4), SH(3, 1, 3, 1), .lo = 0.5, .hi = 2),
    B("mul_scalar", OP_MUL, SCALAR, SH(2, 2, 3)),
    B("pow_bcast_exponent", OP_POW, SH(2, 3, 4), SH(1, 4), .lo = 0.5, .hi = 2),
    {.name = "where", .op = OP_WHERE, .how = WHERE, .nin = 3, .dt = {I, F, F}, .sh = {SH(2, 3, 4), SH(2, 3, 4), SH(2, 3, 4)},
     .ihi = 2},
    {.name = "where_bcast", .op = OP_WHERE, .how = WHERE, .nin = 3, .dt = {I, F, F}, .sh = {SH(2, 3, 1), SH(1, 4), SH(2, 3, 4)},
     .ihi = 2},
    /* reductions over each axis, several axes, with and without keepdim */
    R("sum_ax0", OP_SUM, .attr = {.axes = 0x1}),
    R("sum_ax1", OP_SUM, .attr = {.axes = 0x2}),
    R("sum_ax2_keep", OP_SUM, .attr = {.axes = 0x4, .keepdim = 1}),
    R("sum_ax02_keep", OP_SUM, .attr = {.axes = 0x5, .keepdim = 1}),
    R("sum_ax12", OP_SUM, .attr = {.axes = 0x6}),
    R("sum_all", OP_SUM, .attr = {.axes = 0x7}),
    R("sum_all_keep", OP_SUM, .attr = {.axes = 0x7, .keepdim = 1}),
    R("rmax_ax0", OP_REDUCE_MAX, .attr = {.axes = 0x1}, .kink = DISTINCT),
    R("rmax_ax1_keep", OP_REDUCE_MAX, .attr = {.axes = 0x2, .keepdim = 1}, .kink = DISTINCT),
    R("rmax_ax2", OP_REDUCE_MAX, .attr = {.axes = 0x4}, .kink = DISTINCT),
    R("rmax_ax02", OP_REDUCE_MAX, .attr = {.axes = 0x5}, .kink = DISTINCT),
    R("rmax_all_keep", OP_REDUCE_MAX, .attr = {.axes = 0x7, .keepdim = 1}, .kink = DISTINCT),
    R("softmax_ax0", OP_SOFTMAX, .attr = {.axis = 0}),
    R("softmax_ax1", OP_SOFTMAX, .attr = {.axis = 1}),
    R("softmax_ax2", OP_SOFTMAX, .attr = {.axis = 2}),
    R("log_softmax_ax0", OP_LOG_SOFTMAX, .attr = {.axis = 0}),
    R("log_softmax_ax1", OP_LOG_SOFTMAX, .attr = {.axis = 1}),
    R("log_softmax_ax2", OP_LOG_SOFTMAX, .attr = {.axis = 2}),
    /* data movement */
    R("reshape", OP_RESHAPE, .attr = {.shape = SH(2, 4, 6)}),
    R("permute_201", OP_PERMUTE, .attr = {.perm = {2, 0, 1}}),
    R("permute_102", OP_PERMUTE, .attr = {.perm = {1, 0, 2}}),
    {.name = "broadcast", .op = OP_BROADCAST, .how = BUILD, .nin = 1, .dt = {F}, .sh = {SH(3, 3, 1, 1)},
     .attr = {.shape = SH(3, 3, 5, 2)}},
    {.name = "slice", .op = OP_SLICE, .how = BUILD, .nin = 1, .dt = {F}, .sh = {SH(3, 4, 5, 6)},
     .attr = {.start = {1, 0, 2}, .stop = {3, 5, 5}}},
    {.name = "slice_edges", .op = OP_SLICE, .how = BUILD, .nin = 1, .dt = {F}, .sh = {SH(2, 4, 5)},
     .attr = {.start = {0, 3}, .stop = {2, 5}}},
    {.name = "concat_ax0", .op = OP_CONCAT, .how = BUILD, .nin = 2, .dt = {F, F}, .sh = {SH(2, 1, 3), SH(2, 2, 3)},
     .attr = {.axis = 0}},
    {.name = "concat_ax1", .op = OP_CONCAT, .how = BUILD, .nin = 2, .dt = {F, F}, .sh = {SH(3, 2, 3, 4), SH(3, 2, 2, 4)},
     .attr = {.axis = 1}},
    {.name = "concat_last", .op = OP_CONCAT, .how = BUILD, .nin = 2, .dt = {F, F}, .sh = {SH(2, 3, 2), SH(2, 3, 5)},
     .attr = {.axis = 1}},
    {.name = "gather_repeated", .op = OP_GATHER, .how = BUILD, .nin = 2, .dt = {F, I}, .sh = {SH(2, 5, 3), SH(2, 3, 4)},
     .ihi = 4},
    {.name = "gather_rank3_table", .op = OP_GATHER, .how = BUILD, .nin = 2, .dt = {F, I},
     .sh = {SH(3, 4, 2, 3), SH(1, 7)}, .ihi = 3},
    /* matmul: each transpose flag, batched and shared rank-2 b */
    MM("matmul", SH(3, 2, 3, 4), SH(3, 2, 4, 5), 0, 0),
    MM("matmul_ta", SH(3, 2, 4, 3), SH(3, 2, 4, 5), 1, 0),
    MM("matmul_tb", SH(3, 2, 3, 4), SH(3, 2, 5, 4), 0, 1),
    MM("matmul_tab", SH(3, 2, 4, 3), SH(3, 2, 5, 4), 1, 1),
    MM("matmul_shared", SH(3, 2, 3, 4), SH(2, 4, 5), 0, 0),
    MM("matmul_shared_tb", SH(4, 2, 2, 3, 4), SH(2, 5, 4), 0, 1),
    MM("matmul_shared_ta", SH(3, 2, 4, 3), SH(2, 4, 5), 1, 0),
    MM("matmul_shared_tab", SH(3, 2, 4, 3), SH(2, 5, 4), 1, 1),
    MM("matmul_2d", SH(2, 3, 4), SH(2, 4, 5), 0, 0),
    MM("matmul_2d_tab", SH(2, 4, 3), SH(2, 5, 4), 1, 1),
    /* convolutions: the dVAE's k4 s2 p1 and k3 s1 p1, k1, strides that drop
     * a remainder (with and without padding), padding wider than the kernel */
    CONV("conv2d_k3s1p1", OP_CONV2D, SH(4, 2, 3, 5, 5), SH(4, 4, 3, 3, 3), 1, 1),
    CONV("conv2d_k4s2p1", OP_CONV2D, SH(4, 1, 2, 8, 8), SH(4, 3, 2, 4, 4), 2, 1),
    CONV("conv2d_k1", OP_CONV2D, SH(4, 2, 3, 4, 4), SH(4, 2, 3, 1, 1), 1, 0),
    CONV("conv2d_k3s2p0_remainder", OP_CONV2D, SH(4, 1, 2, 7, 6), SH(4, 3, 2, 3, 3), 2, 0),
    CONV("conv2d_k3s2p1_remainder", OP_CONV2D, SH(4, 1, 2, 6, 7), SH(4, 2, 2, 3, 3), 2, 1),
    CONV("conv2d_k3s3p2", OP_CONV2D, SH(4, 1, 2, 7, 8), SH(4, 2, 2, 3, 3), 3, 2),
    CONV("conv2d_k1s3p1_some_taps_padding", OP_CONV2D, SH(4, 1, 2, 4, 5), SH(4, 2, 2, 1, 1), 3, 1),
    CONV("conv2d_k1s3p1_all_taps_padding", OP_CONV2D, SH(4, 1, 2, 1, 5), SH(4, 2, 2, 1, 1), 3, 1),
    CONV("convt_k4s2p1", OP_CONV_TRANSPOSE2D, SH(4, 1, 2, 3, 3), SH(4, 2, 3, 4, 4), 2, 1),
    CONV("convt_k3s1p1", OP_CONV_TRANSPOSE2D, SH(4, 2, 2, 4, 3), SH(4, 2, 3, 3, 3), 1, 1),
    CONV("convt_k1", OP_CONV_TRANSPOSE2D, SH(4, 1, 3, 3, 3), SH(4, 3, 2, 1, 1), 1, 0),
    CONV("convt_k3s2p0", OP_CONV_TRANSPOSE2D, SH(4, 1, 2, 3, 2), SH(4, 2, 2, 3, 3), 2, 0),
    CONV("convt_k5s3p2", OP_CONV_TRANSPOSE2D, SH(4, 1, 2, 2, 3), SH(4, 2, 2, 5, 5), 3, 2),
    /* norms (eps small against the variance of inputs in [-2, 2)) */
    NORM("group_norm", OP_GROUP_NORM, SH(4, 2, 6, 3, 2), 6, .attr = {.groups = 3, .eps = 1e-5f}),
    NORM("group_norm_rank3", OP_GROUP_NORM, SH(3, 2, 4, 5), 4, .attr = {.groups = 2, .eps = 1e-3f}),
    NORM("group_norm_g1", OP_GROUP_NORM, SH(4, 1, 3, 2, 2), 3, .attr = {.groups = 1, .eps = 1e-5f}),
    NORM("group_norm_rank2", OP_GROUP_NORM, SH(2, 3, 8), 8, .attr = {.groups = 2, .eps = 1e-5f}),
    NORM("layer_norm", OP_LAYER_NORM, SH(3, 2, 3, 8), 8, .attr = {.eps = 1e-5f}),
    NORM("layer_norm_2d", OP_LAYER_NORM, SH(2, 5, 6), 6, .attr = {.eps = 1e-5f}),
    NORM("layer_norm_1d", OP_LAYER_NORM, SH(1, 7), 7, .attr = {.eps = 1e-5f}),
    /* cross-entropy, per-position weights as a following mul */
    {.name = "cross_entropy_weighted", .op = OP_CROSS_ENTROPY, .how = CUSTOM, .nin = 3, .dt = {F, I, F},
     .sh = {SH(3, 3, 4, 7), SH(2, 3, 4), SH(2, 3, 4)}, .ihi = 7, .lo = -3, .hi = 3, .fn = weighted_ce},
    {.name = "cross_entropy_2d", .op = OP_CROSS_ENTROPY, .how = BUILD, .nin = 2, .dt = {F, I}, .sh = {SH(2, 4, 5), SH(1, 4)},
     .ihi = 5},
    {.name = "cross_entropy_1d", .op = OP_CROSS_ENTROPY, .how = BUILD, .nin = 2, .dt = {F, I}, .sh = {SH(1, 6), SCALAR},
     .ihi = 6},
    /* fused attention: q [2, 2, 4, 3], k, v [2, 2, 5, 3] */
    {.name = "attention", .op = OP_ATTENTION, .how = CUSTOM, .nin = 3, .dt = {F, F, F},
     .sh = {SH(4, 2, 2, 4, 3), SH(4, 2, 2, 5, 3), SH(4, 2, 2, 5, 3)}, .fn = attention_masked},
    /* graphs: fan-out summation, a chain through several rules */
    {.name = "fan_out", .op = OP_MUL, .how = CUSTOM, .nin = 1, .dt = {F}, .sh = {SH(2, 3, 4)}, .fn = fan_out},
    {.name = "small_mlp", .op = OP_LAYER_NORM, .how = CUSTOM, .nin = 4, .dt = {F, F, F, F},
     .sh = {SH(3, 2, 3, 6), SH(1, 6), SH(1, 6), SH(2, 6, 5)}, .fn = small_mlp},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- helpers ---- */

static RtTensor *tensor_of(IrDType t, IrShape s) {
  RtErr e;
  RtTensor *x = rt_tensor_new((RtDType)t, s.rank, s.d, &e);
  ck_assert_msg(x != NULL, "%s", e.msg);
  return x;
}

/* Fills f32 input k of case c, then applies the case's kink rule. */
static void fill_inputs(const GradCase *c, RtTensor **in) {
  double lo = c->lo || c->hi ? c->lo : -2, hi = c->lo || c->hi ? c->hi : 2;
  for (int k = 0; k < c->nin; k++) {
    int64_t n = rt_tensor_numel(in[k]);
    if (c->dt[k] == I) {
      /* i % ihi, then shuffled: every index value occurs, most repeat */
      int32_t *v = rt_i32(in[k]);
      for (int64_t i = 0; i < n; i++) v[i] = (int32_t)(i % c->ihi);
      for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_u64() % (uint64_t)(i + 1));
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
      }
      continue;
    }
    float *v = rt_f32(in[k]);
    for (int64_t i = 0; i < n; i++) v[i] = (float)uniform(lo, hi);
  }
  float *a = rt_f32(in[0]);
  int64_t n = rt_tensor_numel(in[0]);
  switch (c->kink) {
  case SMOOTH: break;
  case AWAY_0:
    for (int64_t i = 0; i < n; i++)
      if (fabsf(a[i]) < 0.1f) a[i] += a[i] < 0 ? -0.2f : 0.2f;
    break;
  case APART:
    for (int64_t i = 0; i < n; i++) {
      float *b = rt_f32(in[1]);
      if (fabsf(a[i] - b[i]) < 0.1f) b[i] = a[i] + (b[i] < a[i] ? -0.2f : 0.2f);
    }
    break;
  case DISTINCT:
    /* a shuffled ramp: every two values 0.1 apart */
    for (int64_t i = 0; i < n; i++) a[i] = (float)(0.1 * (double)i - 0.05 * (double)n);
    for (int64_t i = n - 1; i > 0; i--) {
      int64_t j = (int64_t)(next_u64() % (uint64_t)(i + 1));
      float t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    break;
  }
}

/* Builds case c's y in g over its inputs x[]. */
static int build_y(IrGraph *g, const GradCase *c, const int *x) {
  switch (c->how) {
  case BUILD: return ir_build(g, c->op, x, c->nin, &c->attr, LOC);
  case BINARY: return ir_binary(g, c->op, x[0], x[1], LOC);
  case WHERE: return ir_where(g, x[0], x[1], x[2], LOC);
  case CUSTOM: return c->fn(g, x);
  }
  return -1;
}

/* A graph with inputs x0.. (case c), "r" (y's shape) and y; *y_out gets y. */
static IrGraph *case_graph(const GradCase *c, int *x, int *y_out, int *r_out) {
  IrGraph *g = ir_graph_new(c->name);
  for (int k = 0; k < c->nin; k++) {
    char nm[16];
    snprintf(nm, sizeof nm, "x%d", k);
    x[k] = ir_input(g, nm, c->dt[k], c->sh[k], LOC);
    ck_assert_msg(x[k] >= 0, "%s: %s", c->name, g->error);
  }
  int y = build_y(g, c, x);
  ck_assert_msg(y >= 0, "%s: %s", c->name, g->error);
  ck_assert_msg(g->node[y].dtype == F, "%s: y is not f32", c->name);
  *r_out = ir_input(g, "r", F, g->node[y].shape, LOC);
  *y_out = y;
  return g;
}

/* sum(y * r) in double. */
static double loss_of(const RtTensor *y, const RtTensor *r) {
  double s = 0;
  for (int64_t i = 0; i < rt_tensor_numel(y); i++) s += (double)rt_f32(y)[i] * (double)rt_f32(r)[i];
  return s;
}

static void run(const IrGraph *g, RtTensor **in, RtTensor **out) {
  RtErr e = {{0}};
  ck_assert_msg(ref_run(g, in, NULL, out, NULL, &e) == 0, "ref_run(%s): %s", g->name, e.msg);
}

/* ---- finite differences ---- */

START_TEST(test_gradient_case) {
  const GradCase *c = &cases[_i];
  rng_state = 0x1234567u + (uint64_t)_i * 7919u;
  int x[NIN_MAX], y, r;
  IrGraph *g = case_graph(c, x, &y, &r);
  RtTensor *in[NIN_MAX + 1];
  for (int k = 0; k < c->nin; k++) in[k] = tensor_of(c->dt[k], c->sh[k]);
  in[c->nin] = tensor_of(F, g->node[y].shape);
  fill_inputs(c, in);
  for (int64_t i = 0; i < rt_tensor_numel(in[c->nin]); i++) rt_f32(in[c->nin])[i] = (float)uniform(-1, 1);

  /* analytic: loss = sum(y * r) over all axes, gradients w.r.t. the f32 x's */
  int yr = ir_binary(g, OP_MUL, y, r, LOC);
  int loss = ir_reduce(g, OP_SUM, yr, (1u << g->node[y].shape.rank) - 1, false, LOC);
  ck_assert_msg(loss >= 0, "%s: %s", c->name, g->error);
  int wrt[NIN_MAX], grad[NIN_MAX], nw = 0;
  for (int k = 0; k < c->nin; k++)
    if (c->dt[k] == F) wrt[nw++] = x[k];
  ck_assert_msg(ad_gradients(g, loss, wrt, nw, grad) == 0, "%s: %s", c->name, g->error);
  char why[512];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s: %s", c->name, why);
  int outs[NIN_MAX + 1] = {y};
  memcpy(outs + 1, grad, (size_t)nw * sizeof *grad);
  ir_set_outputs(g, outs, NULL, nw + 1);
  RtTensor *an[NIN_MAX + 1];
  run(g, in, an);

  /* numeric: perturb each element of each f32 input, y only */
  ir_set_outputs(g, &y, NULL, 1);
  const double tol = 1e-3; /* see the top of the file */
  for (int w = 0, k = 0; k < c->nin; k++) {
    if (c->dt[k] != F) continue;
    float *v = rt_f32(in[k]);
    int64_t n = rt_tensor_numel(in[k]);
    double maxdiff = 0, maxfd = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
      float keep = v[i], up = keep + 0.01f, down = keep - 0.01f;
      RtTensor *out[1];
      v[i] = up;
      run(g, in, out);
      double lu = loss_of(out[0], in[c->nin]);
      rt_tensor_free(out[0]);
      v[i] = down;
      run(g, in, out);
      double ld = loss_of(out[0], in[c->nin]);
      rt_tensor_free(out[0]);
      v[i] = keep;
      double fd = (lu - ld) / ((double)up - (double)down), a = rt_f32(an[w + 1])[i];
      if (fabs(fd) > maxfd) maxfd = fabs(fd);
      if (fabs(a - fd) > maxdiff) {
        maxdiff = fabs(a - fd);
        worst = i;
      }
    }
    if (getenv("AD_VERBOSE")) /* prints every measured error */
      fprintf(stderr, "%-32s d/dx%d  rel %.2e  max|fd| %.3g\n", c->name, k, maxdiff / (maxfd > 0 ? maxfd : 1), maxfd);
    if (maxfd == 0) {
      ck_assert_msg(maxdiff <= 1e-6, "%s: d/dx%d is 0 by differences, analytic differs by %g", c->name, k, maxdiff);
    } else {
      ck_assert_msg(maxdiff / maxfd <= tol, "%s: d/dx%d: relative error %.3g > %g (worst element %lld: analytic %g)",
                    c->name, k, maxdiff / maxfd, tol, (long long)worst, (double)rt_f32(an[w + 1])[worst]);
    }
    w++;
  }
  for (int i = 0; i <= nw; i++) rt_tensor_free(an[i]);
  for (int k = 0; k <= c->nin; k++) rt_tensor_free(in[k]);
  ir_graph_free(g);
}
END_TEST

/* ---- helpers for the exact tests ---- */

/* A tensor of shape s with values v (f32) or iv (i32); NULL: zeros. */
static RtTensor *tensor_f32(IrShape s, const float *v) {
  RtTensor *t = tensor_of(F, s);
  if (v) memcpy(t->data, v, rt_tensor_bytes(t));
  return t;
}

/* sum of x over every axis (rank 0). */
static int sum_all(IrGraph *g, int x) { return ir_reduce(g, OP_SUM, x, (1u << g->node[x].shape.rank) - 1, false, LOC); }

/* Gradients of 'loss' w.r.t. wrt[0..n), run on 'in' (no params): out[0] is
 * the loss's value, out[1..n] the gradients. */
static void grads_of(IrGraph *g, int loss, const int *wrt, int n, RtTensor **in, RtTensor **out) {
  int ids[8] = {loss};
  ck_assert_msg(ad_gradients(g, loss, wrt, n, ids + 1) == 0, "%s", g->error);
  ir_set_outputs(g, ids, NULL, n + 1);
  run(g, in, out);
}

static void expect_same(const RtTensor *a, const RtTensor *b, const char *what) {
  ck_assert_int_eq(rt_tensor_numel(a), rt_tensor_numel(b));
  ck_assert_msg(memcmp(a->data, b->data, rt_tensor_bytes(a)) == 0, "%s: not bit-identical", what);
}

static void free_tensors(RtTensor **t, int n) {
  for (int i = 0; i < n; i++) rt_tensor_free(t[i]);
}

/* ---- straight-through ---- */

/* The Gumbel-softmax straight-through of MODELS.md section 1:
 * y = straight_through(onehot(argmax(soft)), soft), soft = softmax(x / tau).
 * With 'st' false y = soft instead. Returns loss = sum(y * r); *st_node
 * gets the straight_through node (or -1). */
static int gumbel_st_graph(IrGraph *g, bool st, int *x, int *st_node) {
  IrShape s = SH(3, 2, 5, 3);
  *x = ir_input(g, "x", F, s, LOC);
  int tau = ir_input(g, "tau", F, (IrShape)SCALAR, LOC);
  int r = ir_input(g, "r", F, s, LOC);
  int soft = ir_build(g, OP_SOFTMAX, (int[]){ir_binary(g, OP_DIV, *x, tau, LOC)}, 1, &(IrAttr){.axis = 1}, LOC);
  int y = soft;
  *st_node = -1;
  if (st) {
    int idx = ir_build(g, OP_ARGMAX, &soft, 1, &(IrAttr){.axis = 1}, LOC);
    int hard = ir_build(g, OP_ONEHOT, &idx, 1, &(IrAttr){.axis = 1, .depth = 5}, LOC);
    y = *st_node = ir_build(g, OP_STRAIGHT_THROUGH, (int[]){hard, soft}, 2, NULL, LOC);
  }
  int loss = sum_all(g, ir_binary(g, OP_MUL, y, r, LOC));
  ck_assert_msg(loss >= 0, "%s", g->error);
  return loss;
}

START_TEST(test_straight_through_gumbel) {
  rng_state = 42;
  RtTensor *in[3] = {tensor_of(F, (IrShape)SH(3, 2, 5, 3)), tensor_f32((IrShape)SCALAR, (float[]){0.7f}),
                     tensor_of(F, (IrShape)SH(3, 2, 5, 3))};
  for (int i = 0; i < 30; i++) {
    rt_f32(in[0])[i] = (float)uniform(-2, 2);
    rt_f32(in[2])[i] = (float)uniform(-1, 1);
  }
  RtTensor *with[2], *without[2];
  int x, st, xs, unused;
  IrGraph *g = ir_graph_new("st"), *h = ir_graph_new("soft");
  int loss = gumbel_st_graph(g, true, &x, &st);
  grads_of(g, loss, &x, 1, in, with);
  int hloss = gumbel_st_graph(h, false, &xs, &unused);
  grads_of(h, hloss, &xs, 1, in, without);
  /* The gradient is exactly the soft path's, and it is not zero. */
  expect_same(with[1], without[1], "d/dx through straight_through vs through soft");
  double mx = 0;
  for (int i = 0; i < 30; i++) mx = fmax(mx, fabs(rt_f32(with[1])[i]));
  ck_assert(mx > 1e-3);

  /* Visible in the dump: the estimator's own node sits at its line, fed by
   * the gradient of y and feeding the softmax's rule; nothing built after
   * the loss reads the hard side (argmax, onehot). */
  int hard = g->node[st].in[0], idx = g->node[hard].in[0], marker = -1;
  for (int id = loss + 1; id < g->n; id++) {
    const IrNode *n = &g->node[id];
    for (int k = 0; k < n->nin; k++) ck_assert_msg(n->in[k] != hard && n->in[k] != idx, "%%%d reads the hard side", id);
    if (n->loc.line == g->node[st].loc.line) {
      ck_assert_msg(marker < 0, "more than one backward node at the straight_through's line");
      marker = id;
    }
  }
  ck_assert_int_ge(marker, 0);
  ck_assert_int_eq(g->node[marker].op, OP_RESHAPE);
  char *dump = NULL, want[160];
  size_t size = 0;
  FILE *f = open_memstream(&dump, &size);
  ir_print(g, f);
  fclose(f);
  snprintf(want, sizeof want, "%%%d = reshape %%%d : f32[2, 5, 3]   # test_autodiff.c:%d:1\n", marker,
           g->node[marker].in[0], g->node[st].loc.line);
  ck_assert_msg(strstr(dump, want), "dump lacks \"%s\":\n%s", want, dump);
  free(dump);
  free_tensors(with, 2);
  free_tensors(without, 2);
  free_tensors(in, 3);
  ir_graph_free(g);
  ir_graph_free(h);
}
END_TEST

/* straight_through(hard, soft) with a differentiable hard side: the
 * gradient goes to soft only, even when both read the same x. */
START_TEST(test_straight_through_hard_gets_none) {
  IrShape s = SH(1, 4);
  float xv[4] = {-1.5f, -0.2f, 0.3f, 1.1f}, zv[4] = {2, 3, 4, 5};
  RtTensor *in[2] = {tensor_f32(s, xv), tensor_f32(s, zv)};
  IrGraph *g = ir_graph_new("st");
  int x = ir_input(g, "x", F, s, LOC), z = ir_input(g, "z", F, s, LOC);
  int hard = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, x, x, LOC), z, LOC); /* x^2 + z */
  int soft = ir_unary(g, OP_TANH, x, LOC);
  int y = ir_build(g, OP_STRAIGHT_THROUGH, (int[]){hard, soft}, 2, NULL, LOC);
  int loss = sum_all(g, y);
  RtTensor *out[3];
  grads_of(g, loss, (int[]){x, z}, 2, in, out);
  /* the forward value is hard's: sum(x^2 + z) */
  double want = 0;
  for (int i = 0; i < 4; i++) want += (double)xv[i] * xv[i] + zv[i];
  ck_assert_double_eq_tol(rt_f32(out[0])[0], want, 1e-5);
  for (int i = 0; i < 4; i++) {
    float t = tanhf(xv[i]);
    ck_assert_float_eq_tol(rt_f32(out[1])[i], 1 - t * t, 1e-6f); /* tanh' only, no 2x */
    ck_assert_float_eq(rt_f32(out[2])[i], 0.0f);                 /* z feeds hard only */
  }
  /* z's gradient is the zero constant: no path reaches it */
  ck_assert_int_eq(g->node[g->output[2]].op, OP_CONST);
  free_tensors(out, 3);
  free_tensors(in, 2);
  ir_graph_free(g);
}
END_TEST

/* ---- `none` and `missing` ---- */

/* A value computed from x through a `none` op (or a leaf): no gradient may
 * reach x through it. */
typedef struct {
  IrOp op;
  int (*fn)(IrGraph *g, int x); /* x is f32 [2, 3] in [-2, 2) */
} NoneCase;

static int via_stop(IrGraph *g, int x) { return ir_unary(g, OP_STOP_GRADIENT, ir_binary(g, OP_MUL, x, x, LOC), LOC); }
static int cmp(IrGraph *g, int x, IrOp op) { return ir_binary(g, op, x, ir_scalar(g, F, 0.25, LOC), LOC); }
static int via_lt(IrGraph *g, int x) { return cmp(g, x, OP_LT); }
static int via_le(IrGraph *g, int x) { return cmp(g, x, OP_LE); }
static int via_gt(IrGraph *g, int x) { return cmp(g, x, OP_GT); }
static int via_ge(IrGraph *g, int x) { return cmp(g, x, OP_GE); }
static int via_eq(IrGraph *g, int x) { return cmp(g, x, OP_EQ); }
static int via_ne(IrGraph *g, int x) { return cmp(g, x, OP_NE); }
static int via_argmax(IrGraph *g, int x) { return ir_build(g, OP_ARGMAX, &x, 1, &(IrAttr){.axis = 1}, LOC); }
static int via_onehot(IrGraph *g, int x) {
  int k = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, x, ir_scalar(g, F, 2, LOC), LOC), ir_scalar(g, F, 5, LOC), LOC);
  int idx = ir_build(g, OP_CAST, &k, 1, &(IrAttr){.dtype = I}, LOC);
  return ir_build(g, OP_ONEHOT, &idx, 1, &(IrAttr){.axis = -1, .depth = 10}, LOC);
}
static int via_const(IrGraph *g, int x) { return ir_const(g, F, g->node[x].shape, 1.5, LOC); }
static int via_iota(IrGraph *g, int x) {
  return ir_build(g, OP_IOTA, NULL, 0, &(IrAttr){.shape = g->node[x].shape, .axis = 1}, LOC);
}
static int via_gumbel(IrGraph *g, int x) {
  return ir_build(g, OP_GUMBEL, NULL, 0, &(IrAttr){.shape = g->node[x].shape, .salt = 3}, LOC);
}

static const NoneCase none_cases[] = {
    {OP_STOP_GRADIENT, via_stop}, {OP_LT, via_lt},         {OP_LE, via_le},       {OP_GT, via_gt},
    {OP_GE, via_ge},              {OP_EQ, via_eq},         {OP_NE, via_ne},       {OP_ARGMAX, via_argmax},
    {OP_ONEHOT, via_onehot},      {OP_CONST, via_const},   {OP_IOTA, via_iota},   {OP_GUMBEL, via_gumbel},
};
#define NNONE ((int)(sizeof none_cases / sizeof none_cases[0]))

/* loss = sum(x) * sum(f), f = fn(x) (as f32): if no gradient flows through
 * f, d loss / dx is sum(f) in every element, exactly. */
START_TEST(test_none_ops) {
  const NoneCase *c = &none_cases[_i];
  IrShape s = SH(2, 2, 3);
  float xv[6] = {-1.5f, 0.75f, 1.25f, -0.5f, 0.4f, 1.9f};
  RtTensor *in[1] = {tensor_f32(s, xv)};
  IrGraph *g = ir_graph_new(ir_op_name(c->op));
  int x = ir_input(g, "x", F, s, LOC);
  int f = c->fn(g, x);
  ck_assert_msg(f >= 0, "%s", g->error);
  ck_assert_int_eq(g->node[f].op, c->op);
  if (g->node[f].dtype == I) f = ir_build(g, OP_CAST, &f, 1, &(IrAttr){.dtype = F}, LOC);
  int sf = sum_all(g, f);
  int loss = ir_binary(g, OP_MUL, sum_all(g, x), sf, LOC);
  int grad;
  ck_assert_msg(ad_gradients(g, loss, &x, 1, &grad) == 0, "%s: %s", ir_op_name(c->op), g->error);
  ir_set_outputs(g, (int[]){grad, sf}, NULL, 2);
  RtTensor *out[2];
  run(g, in, out);
  for (int i = 0; i < 6; i++)
    ck_assert_msg(rt_f32(out[0])[i] == rt_f32(out[1])[0], "%s: d/dx[%d] = %g, expected sum(f) = %g",
                  ir_op_name(c->op), i, (double)rt_f32(out[0])[i], (double)rt_f32(out[1])[0]);
  free_tensors(out, 2);
  rt_tensor_free(in[0]);
  ir_graph_free(g);
}
END_TEST

/* The backward ops have no rule of their own: differentiating through one
 * fails with the op's name and its location, and leaves the graph as it
 * was; a gradient that does not flow through it is fine. */
START_TEST(test_missing_rule) {
  IrGraph *g = ir_graph_new("second_order");
  int x = ir_input(g, "x", F, (IrShape)SH(4, 1, 2, 4, 4), LOC);
  int dy = ir_input(g, "dy", F, (IrShape)SH(4, 1, 3, 4, 4), LOC);
  int idx = ir_input(g, "idx", I, (IrShape)SH(1, 5), LOC);
  int rows = ir_input(g, "rows", F, (IrShape)SH(2, 5, 2), LOC);
  int line = __LINE__ + 1;
  int dw = ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &(IrAttr){.shape = SH(4, 3, 2, 1, 1), .stride = 1}, LOC);
  int gline = __LINE__ + 1;
  int dt = ir_build(g, OP_GATHER_BACKWARD, (int[]){idx, rows}, 2, &(IrAttr){.shape = SH(2, 7, 2)}, LOC);
  int loss = ir_binary(g, OP_ADD, sum_all(g, dw), sum_all(g, dt), LOC);
  int other = ir_input(g, "unrelated", F, (IrShape)SCALAR, LOC);
  loss = ir_binary(g, OP_ADD, loss, other, LOC);
  ck_assert_msg(loss >= 0, "%s", g->error);
  int n = g->n, grad = -7;

  ck_assert_int_eq(ad_gradients(g, loss, &dy, 1, &grad), -1);
  ck_assert_msg(strstr(g->error, "conv2d_backward_weight:") == g->error, "%s", g->error);
  ck_assert_msg(strstr(g->error, "no backward rule"), "%s", g->error);
  ck_assert_str_eq(g->error_loc.file, "test_autodiff.c");
  ck_assert_int_eq(g->error_loc.line, line);
  ck_assert_int_eq(g->n, n);
  ck_assert_int_eq(grad, -7);

  ck_assert_int_eq(ad_gradients(g, loss, &rows, 1, &grad), -1);
  ck_assert_msg(strstr(g->error, "gather_backward:") == g->error, "%s", g->error);
  ck_assert_int_eq(g->error_loc.line, gline);
  ck_assert_int_eq(g->n, n);

  /* d loss / d unrelated = 1 does not pass through either */
  ck_assert_msg(ad_gradients(g, loss, &other, 1, &grad) == 0, "%s", g->error);
  char why[256];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
  ir_graph_free(g);
}
END_TEST

/* ---- driver behaviour ---- */

/* Fan-out sums: add(x, x) and x feeding three consumers. */
START_TEST(test_fan_out_sums) {
  IrShape s = SH(1, 3);
  float xv[3] = {0.5f, -1.0f, 2.0f};
  RtTensor *in[1] = {tensor_f32(s, xv)};
  IrGraph *g = ir_graph_new("fan");
  int x = ir_input(g, "x", F, s, LOC);
  int twice = ir_binary(g, OP_ADD, x, x, LOC);                               /* 2x */
  int cube = ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, x, x, LOC), x, LOC); /* x^3 */
  int loss = sum_all(g, ir_binary(g, OP_ADD, twice, cube, LOC));
  RtTensor *out[2];
  grads_of(g, loss, &x, 1, in, out);
  for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(rt_f32(out[1])[i], 2 + 3 * xv[i] * xv[i], 1e-6f);
  free_tensors(out, 2);
  rt_tensor_free(in[0]);
  ir_graph_free(g);
}
END_TEST

/* Inputs the loss does not depend on get a zero CONST of their shape: an
 * unused input, one used only after the loss, one reaching it only through
 * an i32 value; a loss depending on no wrt at all gives all zeros. */
START_TEST(test_no_path_gives_zeros) {
  IrGraph *g = ir_graph_new("nopath");
  int x = ir_input(g, "x", F, (IrShape)SH(1, 3), LOC);
  int unused = ir_input(g, "unused", F, (IrShape)SH(2, 2, 2), LOC);
  int viaint = ir_input(g, "via_int", F, (IrShape)SH(1, 3), LOC);
  int k = ir_build(g, OP_CAST, &viaint, 1, &(IrAttr){.dtype = I}, LOC);
  int kf = ir_build(g, OP_CAST, &k, 1, &(IrAttr){.dtype = F}, LOC);
  int loss = sum_all(g, ir_binary(g, OP_MUL, x, kf, LOC));
  int after = ir_input(g, "after", F, (IrShape)SCALAR, LOC);
  ir_binary(g, OP_ADD, loss, after, LOC);
  int wrt[4] = {unused, viaint, after, x}, grad[4];
  ck_assert_msg(ad_gradients(g, loss, wrt, 4, grad) == 0, "%s", g->error);
  for (int i = 0; i < 3; i++) {
    const IrNode *n = &g->node[grad[i]];
    ck_assert_int_eq(n->op, OP_CONST);
    ck_assert(n->attr.value == 0.0 && n->dtype == F);
    ck_assert(ir_shape_eq(&n->shape, &g->node[wrt[i]].shape));
  }
  ck_assert_int_ne(g->node[grad[3]].op, OP_CONST);

  /* a loss that depends on no wrt node: zeros, and no backward nodes */
  int c = sum_all(g, ir_const(g, F, (IrShape)SH(1, 2), 3.0, LOC));
  int n = g->n;
  ck_assert_msg(ad_gradients(g, c, &x, 1, grad) == 0, "%s", g->error);
  ck_assert_int_eq(g->n, n + 1);
  ck_assert_int_eq(g->node[grad[0]].op, OP_CONST);
  ir_graph_free(g);
}
END_TEST

/* max/min ties split the gradient in halves; tied maxima of reduce_max
 * share it evenly (as PyTorch). */
START_TEST(test_ties) {
  IrShape s = SH(1, 4);
  float av[4] = {1, 2, 3, 4}, bv[4] = {1, 5, 3, 0};
  RtTensor *in[2] = {tensor_f32(s, av), tensor_f32(s, bv)};
  IrGraph *g = ir_graph_new("ties");
  int a = ir_input(g, "a", F, s, LOC), b = ir_input(g, "b", F, s, LOC);
  int loss = sum_all(g, ir_binary(g, OP_MAX, a, b, LOC));
  RtTensor *out[3];
  grads_of(g, loss, (int[]){a, b}, 2, in, out);
  float da[4] = {0.5f, 0, 0.5f, 1}, db[4] = {0.5f, 1, 0.5f, 0};
  for (int i = 0; i < 4; i++) {
    ck_assert_float_eq(rt_f32(out[1])[i], da[i]);
    ck_assert_float_eq(rt_f32(out[2])[i], db[i]);
  }
  free_tensors(out, 3);
  ir_graph_free(g);

  g = ir_graph_new("min_ties");
  a = ir_input(g, "a", F, s, LOC), b = ir_input(g, "b", F, s, LOC);
  loss = sum_all(g, ir_binary(g, OP_MIN, a, b, LOC));
  grads_of(g, loss, (int[]){a, b}, 2, in, out);
  float ma[4] = {0.5f, 1, 0.5f, 0}, mb[4] = {0.5f, 0, 0.5f, 1};
  for (int i = 0; i < 4; i++) {
    ck_assert_float_eq(rt_f32(out[1])[i], ma[i]);
    ck_assert_float_eq(rt_f32(out[2])[i], mb[i]);
  }
  free_tensors(out, 3);
  ir_graph_free(g);

  float xv[6] = {3, 1, 3, 2, 2, 0};
  RtTensor *xin[1] = {tensor_f32((IrShape)SH(2, 2, 3), xv)};
  g = ir_graph_new("reduce_max_ties");
  int x = ir_input(g, "x", F, (IrShape)SH(2, 2, 3), LOC);
  loss = sum_all(g, ir_reduce(g, OP_REDUCE_MAX, x, 0x2, false, LOC));
  grads_of(g, loss, &x, 1, xin, out);
  float dx[6] = {0.5f, 0, 0.5f, 0.5f, 0.5f, 0};
  for (int i = 0; i < 6; i++) ck_assert_float_eq(rt_f32(out[1])[i], dx[i]);
  free_tensors(out, 2);
  rt_tensor_free(xin[0]);
  free_tensors(in, 2);
  ir_graph_free(g);
}
END_TEST

/* Misuse is an error with a message, never a crash, and changes nothing. */
START_TEST(test_argument_errors) {
  IrGraph *g = ir_graph_new("args");
  int x = ir_input(g, "x", F, (IrShape)SH(1, 3), LOC);
  int k = ir_input(g, "k", I, (IrShape)SH(1, 3), LOC);
  int loss = sum_all(g, x);
  int n = g->n, grad[2] = {-5, -5};
  struct {
    int loss, nwrt;
    int wrt[2];
    const char *msg;
  } bad[] = {
      {x, 1, {x}, "the loss (node %0) must be a single f32 value, got f32[3]"},
      {k, 1, {x}, "must be a single f32 value, got i32[3]"},
      {99, 1, {x}, "the loss %99 is not a node"},
      {-1, 1, {x}, "the loss %-1 is not a node"},
      {loss, 1, {k}, "wrt[0] = %1 is i32; only f32 values have gradients"},
      {loss, 2, {x, 1000}, "wrt[1] = %1000 is not a node"},
      {loss, -1, {x}, "invalid list of -1 nodes"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(ad_gradients(g, bad[i].loss, bad[i].wrt, bad[i].nwrt, grad), -1);
    ck_assert_msg(strstr(g->error, bad[i].msg), "case %zu: \"%s\" lacks \"%s\"", i, g->error, bad[i].msg);
    ck_assert_msg(strncmp(g->error, "gradients: ", 11) == 0, "%s", g->error);
    ck_assert_int_eq(g->n, n);
    ck_assert_int_eq(grad[0], -5);
  }
  ck_assert_int_eq(ad_gradients(NULL, 0, NULL, 0, NULL), -1);
  ck_assert_int_eq(ad_gradients(g, loss, NULL, 0, NULL), 0); /* nothing asked, nothing built but the seed */
  ir_graph_free(g);
}
END_TEST

/* ---- the "grad" pass ---- */

/* A training entry: loss = sum((x @ w + b + s)^2) with parameters w, b and
 * a STATE s (not trainable); a second output that the pass replaces. */
static IrGraph *train_graph(void) {
  IrGraph *g = ir_graph_new("loss");
  g->train = true;
  int x = ir_input(g, "x", F, (IrShape)SH(2, 2, 3), LOC);
  int w = ir_param(g, "enc.conv_in.weight", (IrShape)SH(2, 3, 4), IR_INIT_ZEROS, 0, 0, LOC);
  int st = ir_state(g, "opt.step", (IrShape)SH(1, 4), LOC);
  int b = ir_param(g, "enc.conv_in.bias", (IrShape)SH(1, 4), IR_INIT_ZEROS, 0, 0, LOC);
  int z = ir_binary(g, OP_ADD, ir_binary(g, OP_ADD, ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC), b, LOC), st, LOC);
  int loss = sum_all(g, ir_binary(g, OP_MUL, z, z, LOC));
  ir_set_outputs(g, (int[]){loss, z}, (const char *const[]){"total", "z"}, 2);
  ck_assert_msg(loss >= 0 && g->noutput == 2, "%s", g->error);
  return g;
}

START_TEST(test_grad_pass) {
  IrGraph *g = train_graph();
  ck_assert_msg(pass_run_pipeline(g, "grad") == 0, "%s", g->error);
  ck_assert_int_eq(g->noutput, 3);
  ck_assert_str_eq(g->output_name[0], "total");
  ck_assert_str_eq(g->output_name[1], "grad:enc.conv_in.weight");
  ck_assert_str_eq(g->output_name[2], "grad:enc.conv_in.bias");
  ck_assert_int_eq(g->node[g->output[0]].op, OP_SUM);
  IrShape ws = SH(2, 3, 4), bs = SH(1, 4);
  ck_assert(ir_shape_eq(&g->node[g->output[1]].shape, &ws));
  ck_assert(ir_shape_eq(&g->node[g->output[2]].shape, &bs));

  /* values: dz = 2z, dw = x^T dz, db = column sums of dz */
  float xv[6] = {1, 2, -1, 0.5f, -2, 3}, wv[12], bv[4] = {0.1f, -0.2f, 0.3f, 0}, sv[4] = {1, 1, 0, -1};
  for (int i = 0; i < 12; i++) wv[i] = 0.25f * (float)(i % 5) - 0.5f;
  RtTensor *in[1] = {tensor_f32((IrShape)SH(2, 2, 3), xv)};
  RtTensor *params[3] = {tensor_f32(ws, wv), tensor_f32(bs, sv), tensor_f32(bs, bv)}; /* w, s, b: g->param order */
  ck_assert_str_eq(g->node[g->param[1]].name, "opt.step");
  RtTensor *out[3];
  RtErr e = {{0}};
  ck_assert_msg(ref_run(g, in, params, out, NULL, &e) == 0, "%s", e.msg);
  double dz[2][4], dw[3][4] = {{0}}, db[4] = {0};
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 4; c++) {
      double z = bv[c] + sv[c];
      for (int k = 0; k < 3; k++) z += (double)xv[r * 3 + k] * wv[k * 4 + c];
      dz[r][c] = 2 * z;
      db[c] += dz[r][c];
    }
  for (int k = 0; k < 3; k++)
    for (int c = 0; c < 4; c++)
      for (int r = 0; r < 2; r++) dw[k][c] += (double)xv[r * 3 + k] * dz[r][c];
  for (int i = 0; i < 12; i++) ck_assert_double_eq_tol(rt_f32(out[1])[i], dw[i / 4][i % 4], 1e-5);
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(rt_f32(out[2])[i], db[i], 1e-5);
  free_tensors(out, 3);
  free_tensors(params, 3);
  rt_tensor_free(in[0]);
  ir_graph_free(g);
}
END_TEST

START_TEST(test_grad_pass_errors) {
  IrGraph *g = train_graph();
  g->train = false;
  int n = g->n;
  ck_assert_int_eq(pass_run_pipeline(g, "grad"), -1);
  ck_assert_msg(strstr(g->error, "grad: entry 'loss' is not a training entry"), "%s", g->error);
  ck_assert_int_eq(g->n, n);
  ck_assert_int_eq(g->noutput, 2);

  /* output 0 must be a scalar loss */
  g->train = true;
  int z = g->output[1];
  ir_set_outputs(g, &z, NULL, 1);
  ck_assert_int_eq(ad_grad_pass(g), -1);
  ck_assert_msg(strstr(g->error, "must be a single f32 value"), "%s", g->error);
  ck_assert_int_eq(g->n, n);

  /* a loss output named like a gradient output */
  int loss = g->n - 1;
  ir_set_outputs(g, &loss, (const char *const[]){"grad:enc.conv_in.bias"}, 1);
  ck_assert_int_eq(ad_grad_pass(g), -1);
  ck_assert_msg(strstr(g->error, "is the name of a gradient output"), "%s", g->error);
  ck_assert_int_eq(g->n, n);

  ir_set_outputs(g, NULL, NULL, 0);
  ck_assert_int_eq(ad_grad_pass(g), -1);
  ck_assert_msg(strstr(g->error, "returns nothing"), "%s", g->error);
  ir_graph_free(g);
}
END_TEST

/* attention_backward has no rule of its own (no second derivatives). */
START_TEST(test_missing_rule_attention) {
  IrGraph *g = ir_graph_new("second_order_attention");
  IrShape qs = SH(3, 2, 3, 4), ms = SH(2, 3, 3), ys = SH(3, 2, 3, 5);
  int q = ir_input(g, "q", F, qs, LOC), mask = ir_input(g, "mask", I, ms, LOC);
  int dy = ir_input(g, "dy", F, ys, LOC);
  int y = ir_build(g, OP_ATTENTION, (int[]){q, q, q, mask}, 4, &(IrAttr){.value = 1}, LOC);
  int line = __LINE__ + 1;
  int gr = ir_build(g, OP_ATTENTION_BACKWARD, (int[]){q, q, q, mask, y, dy}, 6, &(IrAttr){.value = 1}, LOC);
  int loss = sum_all(g, gr), grad = -7;
  ck_assert_msg(loss >= 0, "%s", g->error);
  ck_assert_int_eq(ad_gradients(g, loss, &q, 1, &grad), -1);
  ck_assert_msg(strstr(g->error, "attention_backward:") == g->error, "%s", g->error);
  ck_assert_int_eq(g->error_loc.line, line);
  ck_assert_int_eq(grad, -7);
  ir_graph_free(g);
}
END_TEST

/* ---- coverage ---- */

static const char *const backward_rule[] = {
#define OP(name, text, arity, pattern, flags, rule, backward) #backward,
#include "ir/ops.def"
#undef OP
};

/* Every op of ops.def is accounted for: a differentiable one appears in a
 * finite-difference case (or a dedicated test), a `none` one in
 * test_none_ops, a `missing` one in test_missing_rule. */
START_TEST(test_every_op_covered) {
  bool fd[OP_COUNT] = {false}, none[OP_COUNT] = {false};
  for (int i = 0; i < NCASES; i++) {
    int x[NIN_MAX], y, r;
    IrGraph *g = case_graph(&cases[i], x, &y, &r);
    for (int id = 0; id <= y; id++) fd[g->node[id].op] = true;
    ir_graph_free(g);
  }
  for (int i = 0; i < NNONE; i++) none[none_cases[i].op] = true;
  fd[OP_STRAIGHT_THROUGH] = true; /* test_straight_through_*: differences cannot see it */
  none[OP_INPUT] = true;          /* the wrt nodes of every test */
  none[OP_PARAM] = none[OP_STATE] = true; /* test_grad_pass */
  bool missing[OP_COUNT] = {false};
  missing[OP_CONV2D_BACKWARD_WEIGHT] = missing[OP_GATHER_BACKWARD] = true; /* test_missing_rule */
  missing[OP_ATTENTION_BACKWARD] = true; /* test_missing_rule_attention */
  for (int op = 0; op < OP_COUNT; op++) {
    const char *rule = backward_rule[op], *name = ir_op_name((IrOp)op);
    if (!strcmp(rule, "none")) ck_assert_msg(none[op], "no test that %s passes no gradient", name);
    else if (!strcmp(rule, "missing")) ck_assert_msg(missing[op], "no test that %s's missing rule fails", name);
    else ck_assert_msg(fd[op], "no finite-difference case for %s (rule grad_%s)", name, rule);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("autodiff");
  TCase *fd = tcase_create("finite_differences");
  tcase_set_timeout(fd, 60);
  tcase_add_loop_test(fd, test_gradient_case, 0, NCASES);
  suite_add_tcase(s, fd);
  TCase *rules = tcase_create("rules");
  tcase_add_test(rules, test_straight_through_gumbel);
  tcase_add_test(rules, test_straight_through_hard_gets_none);
  tcase_add_loop_test(rules, test_none_ops, 0, NNONE);
  tcase_add_test(rules, test_missing_rule);
  tcase_add_test(rules, test_missing_rule_attention);
  tcase_add_test(rules, test_ties);
  suite_add_tcase(s, rules);
  TCase *driver = tcase_create("driver");
  tcase_add_test(driver, test_fan_out_sums);
  tcase_add_test(driver, test_no_path_gives_zeros);
  tcase_add_test(driver, test_argument_errors);
  tcase_add_test(driver, test_grad_pass);
  tcase_add_test(driver, test_grad_pass_errors);
  tcase_add_test(driver, test_every_op_covered);
  suite_add_tcase(s, driver);
  return tu_run_suite(s);
}
