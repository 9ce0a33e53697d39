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
 * derivative; the analytic side is float32 (~1e-6). A bound of 2e-3 leaves
 * an order of magnitude to spare; cases with large curvature over the step
 * (norms over few elements, pow, rsqrt) state a looser bound, at most 1e-2.
 * Inputs are kept away from kinks (relu and abs at 0, max/min ties, tied
 * maxima) by more than h, so the differences see one smooth piece.
 *
 * Other tests: straight_through (gradient exactly as through soft, none to
 * hard, visible in the IR dump), `none` ops, the `missing` error with its
 * location, fan-out summation, no-path zero gradients, argument errors, max
 * ties, and the "grad" pass (outputs and names). A coverage test checks that
 * every op of ops.def is accounted for by one of them. */
#define _GNU_SOURCE /* open_memstream */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/ref/ref.h"
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
  double tol;      /* 0: the default 2e-3 */
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
    U("rsqrt", OP_RSQRT, .lo = 0.5, .hi = 3, .tol = 5e-3),
    U("tanh", OP_TANH),
    U("sigmoid", OP_SIGMOID, .lo = -4, .hi = 4),
    U("relu", OP_RELU, .kink = AWAY_0),
    U("gelu", OP_GELU, .lo = -3, .hi = 3),
    {.name = "cast_f32", .op = OP_CAST, .how = CUSTOM, .nin = 1, .dt = {F}, .sh = {SH(2, 3, 4)}, .fn = cast_f32},
    /* elementwise binary, same shapes */
    B("add", OP_ADD, SH(2, 3, 4), SH(2, 3, 4)),
    B("sub", OP_SUB, SH(2, 3, 4), SH(2, 3, 4)),
    B("mul", OP_MUL, SH(2, 3, 4), SH(2, 3, 4)),
    B("div", OP_DIV, SH(2, 3, 4), SH(2, 3, 4), .lo = 0.5, .hi = 2),
    B("max", OP_MAX, SH(2, 3, 4), SH(2, 3, 4), .kink = APART),
    B("min", OP_MIN, SH(2, 3, 4), SH(2, 3, 4), .kink = APART),
    B("pow", OP_POW, SH(2, 3, 4), SH(2, 3, 4), .lo = 0.5, .hi = 2, .tol = 5e-3),
    /* broadcasting in each direction (the gradient is summed back by BROADCAST's rule) */
    B("add_bcast_both", OP_ADD, SH(3, 3, 1, 4), SH(2, 5, 1)),
    B("mul_bcast_b_lower_rank", OP_MUL, SH(3, 2, 3, 4), SH(1, 4)),
    B("sub_bcast_a_lower_rank", OP_SUB, SH(1, 4), SH(3, 2, 3, 4)),
    B("div_bcast_ones", OP_DIV, SH(3, 2, 1, 4), SH(3, 1, 3, 1), .lo = 0.5, .hi = 2),
    B("mul_scalar", OP_MUL, SCALAR, SH(2, 2, 3)),
    B("pow_bcast_exponent", OP_POW, SH(2, 3, 4), SH(1, 4), .lo = 0.5, .hi = 2, .tol = 5e-3),
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
    NORM("group_norm_rank2", OP_GROUP_NORM, SH(2, 3, 8), 8, .attr = {.groups = 2, .eps = 1e-5f}, .tol = 5e-3),
    NORM("layer_norm", OP_LAYER_NORM, SH(3, 2, 3, 8), 8, .attr = {.eps = 1e-5f}),
    NORM("layer_norm_2d", OP_LAYER_NORM, SH(2, 5, 6), 6, .attr = {.eps = 1e-5f}, .tol = 5e-3),
    NORM("layer_norm_1d", OP_LAYER_NORM, SH(1, 7), 7, .attr = {.eps = 1e-5f}, .tol = 5e-3),
    /* cross-entropy, per-position weights as a following mul */
    {.name = "cross_entropy_weighted", .op = OP_CROSS_ENTROPY, .how = CUSTOM, .nin = 3, .dt = {F, I, F},
     .sh = {SH(3, 3, 4, 7), SH(2, 3, 4), SH(2, 3, 4)}, .ihi = 7, .lo = -3, .hi = 3, .fn = weighted_ce},
    {.name = "cross_entropy_2d", .op = OP_CROSS_ENTROPY, .how = BUILD, .nin = 2, .dt = {F, I}, .sh = {SH(2, 4, 5), SH(1, 4)},
     .ihi = 5},
    {.name = "cross_entropy_1d", .op = OP_CROSS_ENTROPY, .how = BUILD, .nin = 2, .dt = {F, I}, .sh = {SH(1, 6), SCALAR},
     .ihi = 6},
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
    char nm[8];
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
  double tol = c->tol > 0 ? c->tol : 2e-3;
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
    if (getenv("AD_VERBOSE")) fprintf(stderr, "%-28s x%d  rel %.2e  maxfd %.3g\n", c->name, k, maxdiff / (maxfd > 0 ? maxfd : 1), maxfd);
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

int main(void) {
  Suite *s = suite_create("autodiff");
  TCase *fd = tcase_create("finite_differences");
  tcase_set_timeout(fd, 60);
  tcase_add_loop_test(fd, test_gradient_case, 0, NCASES);
  suite_add_tcase(s, fd);
  return tu_run_suite(s);
}
