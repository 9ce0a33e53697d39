/* test_jit.c — the LLVM backend against the reference executor.
 *
 * Every graph here runs twice: through ref_run (the oracle) and through
 * lowering + LLVM + ORC LLJIT + the runtime's scheduler (rt_plan_run, two
 * threads, so every kernel is also split into [begin, end) pieces). Outputs
 * and updated state must agree: i32 exactly, f32 to 1e-5 relative
 * (max-abs difference over max-abs of the reference), or bit for bit where
 * the arithmetic is the same (elementwise, movement, comparisons, casts,
 * maxima, scatter-add). Running and comparing is tests/jit_check.c's;
 * inputs come from its deterministic sequence.
 *
 * Covered: every op of ops.def (each alone, a coverage check like
 * test_ref's), fused chains under explicit groupings (elementwise,
 * broadcast, reduction with prologue and epilogue, softmax row kernel,
 * matmul + bias, conv + bias + relu, two-pass row groups) and under
 * passes/fuse.c's plans, convolutions split into chunks of samples,
 * in-place outputs over dying inputs, state updates, data-dependent indices out of range, the GPT tiny logits and the
 * dVAE tiny encoder from models/gpt.dal and dvae.dal, and the emitted assembly (AVX2 FMA
 * in an elementwise kernel), LLVM IR and object file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/bind.h"
#include "codegen/llvm/cg_llvm.h"
#include "codegen/llvm/jit_program.h"
#include "codegen/pool.h"
#include "ir/ref/ref_program.h"
#include "ir/ref/ref.h"
#include "frontend/frontend.h"
#include "passes/autodiff.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "runtime/sched/rt_sched.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_jit.c", __LINE__, 1})
#define SH(r, ...) {.rank = (r), .d = {__VA_ARGS__}}
#define NO_ATTR {.axis = 0}

static void free_all(RtTensor **t, int n) {
  for (int i = 0; i < n; i++) rt_tensor_free(t[i]);
}

/* ---- every op alone ---- */

typedef struct {
  IrDType dt;
  IrShape s;
  JcDom dom;
  int hi;
} In;

#define F(d, ...) {IR_F32, SH(__VA_ARGS__), d, 0}
#define I(d, hi, ...) {IR_I32, SH(__VA_ARGS__), d, hi}

typedef struct {
  const char *name;
  IrOp op;
  IrAttr attr;
  int nin;
  In in[4];
  bool exact;
} OpCase;

static const OpCase cases[] = {
    /* leaves */
    {"const_f32", OP_CONST, {.shape = SH(2, 2, 3), .dtype = IR_F32, .value = 1.5}, 0, {{0}}, true},
    {"const_i32", OP_CONST, {.shape = SH(1, 4), .dtype = IR_I32, .value = -7}, 0, {{0}}, true},
    {"const_scalar", OP_CONST, {.shape = {.rank = 0}, .dtype = IR_F32, .value = 0.25}, 0, {{0}}, true},
    {"iota_ax1", OP_IOTA, {.shape = SH(3, 2, 3, 4), .axis = 1}, 0, {{0}}, true},
    {"iota_ax0", OP_IOTA, {.shape = SH(1, 5), .axis = 0}, 0, {{0}}, true},
    {"gumbel", OP_GUMBEL, {.shape = SH(2, 3, 1500), .salt = 7}, 0, {{0}}, true},
    /* unary */
    {"neg_f32", OP_NEG, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, true},
    {"abs_f32", OP_ABS, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, true},
    {"exp", OP_EXP, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, false},
    {"log", OP_LOG, NO_ATTR, 1, {F(JC_POS, 2, 3, 37)}, false},
    {"sqrt", OP_SQRT, NO_ATTR, 1, {F(JC_POS, 2, 3, 37)}, true},
    {"rsqrt", OP_RSQRT, NO_ATTR, 1, {F(JC_POS, 2, 3, 37)}, true},
    {"tanh", OP_TANH, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, false},
    {"sigmoid", OP_SIGMOID, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, false},
    {"relu", OP_RELU, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, true},
    {"gelu", OP_GELU, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, false},
    {"silu", OP_SILU, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 37)}, false},
    {"neg_i32", OP_NEG, NO_ATTR, 1, {I(JC_WIDE, 0, 2, 3, 37)}, true},
    {"abs_i32", OP_ABS, NO_ATTR, 1, {I(JC_WIDE, 0, 2, 3, 37)}, true},
    {"cast_f32_i32", OP_CAST, {.dtype = IR_I32}, 1, {F(JC_WIDE, 2, 3, 37)}, true},
    {"cast_i32_f32", OP_CAST, {.dtype = IR_F32}, 1, {I(JC_WIDE, 0, 2, 3, 37)}, true},
    {"cast_same", OP_CAST, {.dtype = IR_F32}, 1, {F(JC_NORMAL, 2, 3, 5)}, true},
    {"stop_gradient", OP_STOP_GRADIENT, NO_ATTR, 1, {F(JC_NORMAL, 2, 3, 5)}, true},
    {"straight_through", OP_STRAIGHT_THROUGH, NO_ATTR, 2, {F(JC_NORMAL, 2, 3, 5), F(JC_NORMAL, 2, 3, 5)}, true},
    /* binary */
    {"add_f32", OP_ADD, NO_ATTR, 2, {F(JC_NORMAL, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"sub_f32", OP_SUB, NO_ATTR, 2, {F(JC_NORMAL, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"mul_f32", OP_MUL, NO_ATTR, 2, {F(JC_NORMAL, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"div_f32", OP_DIV, NO_ATTR, 2, {F(JC_NORMAL, 2, 4, 33), F(JC_POS, 2, 4, 33)}, true},
    {"max_f32", OP_MAX, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"min_f32", OP_MIN, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"pow", OP_POW, NO_ATTR, 2, {F(JC_POS, 2, 4, 33), F(JC_NORMAL, 2, 4, 33)}, true},
    {"add_i32", OP_ADD, NO_ATTR, 2, {I(JC_WIDE, 0, 2, 4, 33), I(JC_WIDE, 0, 2, 4, 33)}, true},
    {"sub_i32", OP_SUB, NO_ATTR, 2, {I(JC_WIDE, 0, 2, 4, 33), I(JC_WIDE, 0, 2, 4, 33)}, true},
    {"mul_i32", OP_MUL, NO_ATTR, 2, {I(JC_WIDE, 0, 2, 4, 33), I(JC_WIDE, 0, 2, 4, 33)}, true},
    {"div_i32", OP_DIV, NO_ATTR, 2, {I(JC_WIDE, 0, 2, 4, 33), I(JC_NONZERO, 0, 2, 4, 33)}, true},
    {"max_i32", OP_MAX, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 33), I(JC_SMALL, 0, 2, 4, 33)}, true},
    {"min_i32", OP_MIN, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 33), I(JC_SMALL, 0, 2, 4, 33)}, true},
    {"lt_f32", OP_LT, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"le_f32", OP_LE, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"gt_f32", OP_GT, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"ge_f32", OP_GE, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"eq_f32", OP_EQ, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"ne_f32", OP_NE, NO_ATTR, 2, {F(JC_SMALL, 2, 4, 9), F(JC_SMALL, 2, 4, 9)}, true},
    {"lt_i32", OP_LT, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"le_i32", OP_LE, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"gt_i32", OP_GT, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"ge_i32", OP_GE, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"eq_i32", OP_EQ, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"ne_i32", OP_NE, NO_ATTR, 2, {I(JC_SMALL, 0, 2, 4, 9), I(JC_SMALL, 0, 2, 4, 9)}, true},
    {"where_f32", OP_WHERE, NO_ATTR, 3, {I(JC_BOOL, 0, 2, 3, 7), F(JC_NORMAL, 2, 3, 7), F(JC_NORMAL, 2, 3, 7)}, true},
    {"where_i32", OP_WHERE, NO_ATTR, 3, {I(JC_SMALL, 0, 2, 3, 7), I(JC_WIDE, 0, 2, 3, 7), I(JC_WIDE, 0, 2, 3, 7)}, true},
    /* reductions */
    {"sum_ax1", OP_SUM, {.axes = 0x2}, 1, {F(JC_NORMAL, 3, 3, 40, 5)}, false},
    {"sum_ax02_keep", OP_SUM, {.axes = 0x5, .keepdim = 1}, 1, {F(JC_NORMAL, 3, 3, 4, 50)}, false},
    {"sum_ax12", OP_SUM, {.axes = 0x6}, 1, {F(JC_NORMAL, 3, 3, 6, 50)}, false},
    {"sum_all", OP_SUM, {.axes = 0x7}, 1, {F(JC_NORMAL, 3, 3, 4, 50)}, false},
    {"sum_i32", OP_SUM, {.axes = 0x1}, 1, {I(JC_WIDE, 0, 2, 5, 7)}, true},
    {"rmax_ax1", OP_REDUCE_MAX, {.axes = 0x2}, 1, {F(JC_NORMAL, 3, 3, 40, 5)}, true},
    {"rmax_last", OP_REDUCE_MAX, {.axes = 0x4}, 1, {F(JC_SMALL, 3, 3, 4, 50)}, true},
    {"rmax_ax02_keep", OP_REDUCE_MAX, {.axes = 0x5, .keepdim = 1}, 1, {F(JC_NORMAL, 3, 3, 4, 5)}, true},
    {"rmax_i32", OP_REDUCE_MAX, {.axes = 0x2}, 1, {I(JC_WIDE, 0, 3, 3, 4, 5)}, true},
    {"argmax_ax1", OP_ARGMAX, {.axis = 1}, 1, {F(JC_SMALL, 3, 3, 4, 5)}, true},
    {"argmax_ax2_keep", OP_ARGMAX, {.axis = 2, .keepdim = 1}, 1, {F(JC_NORMAL, 3, 3, 4, 50)}, true},
    {"argmax_i32", OP_ARGMAX, {.axis = 0}, 1, {I(JC_SMALL, 0, 3, 6, 4, 5)}, true},
    {"softmax_ax1", OP_SOFTMAX, {.axis = 1}, 1, {F(JC_NORMAL, 3, 3, 4, 5)}, false},
    {"softmax_last", OP_SOFTMAX, {.axis = 1}, 1, {F(JC_NORMAL, 2, 6, 100)}, false},
    {"log_softmax_ax1", OP_LOG_SOFTMAX, {.axis = 1}, 1, {F(JC_NORMAL, 3, 3, 4, 5)}, false},
    {"log_softmax_last", OP_LOG_SOFTMAX, {.axis = 1}, 1, {F(JC_NORMAL, 2, 6, 100)}, false},
    /* data movement */
    {"reshape", OP_RESHAPE, {.shape = SH(2, 4, 6)}, 1, {F(JC_NORMAL, 3, 3, 4, 2)}, true},
    {"reshape_i32", OP_RESHAPE, {.shape = SH(2, 6, 5)}, 1, {I(JC_WIDE, 0, 3, 3, 2, 5)}, true},
    {"permute_201", OP_PERMUTE, {.perm = {2, 0, 1}}, 1, {F(JC_NORMAL, 3, 2, 3, 40)}, true},
    {"permute_i32", OP_PERMUTE, {.perm = {3, 1, 0, 2}}, 1, {I(JC_WIDE, 0, 4, 2, 3, 4, 5)}, true},
    {"broadcast", OP_BROADCAST, {.shape = SH(3, 3, 5, 4)}, 1, {F(JC_NORMAL, 3, 3, 1, 4)}, true},
    {"broadcast_i32", OP_BROADCAST, {.shape = SH(3, 2, 3, 40)}, 1, {I(JC_WIDE, 0, 3, 1, 3, 1)}, true},
    {"slice", OP_SLICE, {.start = {1, 0, 2}, .stop = {3, 5, 5}}, 1, {F(JC_NORMAL, 3, 4, 5, 6)}, true},
    {"concat_ax1", OP_CONCAT, {.axis = 1}, 2, {F(JC_NORMAL, 3, 2, 3, 4), F(JC_NORMAL, 3, 2, 2, 4)}, true},
    {"concat_ax0_i32", OP_CONCAT, {.axis = 0}, 2, {I(JC_WIDE, 0, 2, 2, 3), I(JC_WIDE, 0, 2, 4, 3)}, true},
    {"concat_last", OP_CONCAT, {.axis = 1}, 2, {F(JC_NORMAL, 2, 3, 40), F(JC_NORMAL, 2, 3, 5)}, true},
    {"gather", OP_GATHER, NO_ATTR, 2, {F(JC_NORMAL, 2, 6, 40), I(JC_INDEX, 6, 2, 2, 3)}, true},
    {"gather_1d", OP_GATHER, NO_ATTR, 2, {F(JC_NORMAL, 1, 5), I(JC_INDEX, 5, 1, 4)}, true},
    {"gather_backward", OP_GATHER_BACKWARD, {.shape = SH(3, 6, 2, 70)}, 2,
     {I(JC_INDEX, 6, 2, 2, 5), F(JC_NORMAL, 4, 2, 5, 2, 70)}, true},
    {"gather_backward_1d", OP_GATHER_BACKWARD, {.shape = SH(1, 5)}, 2, {I(JC_INDEX, 5, 1, 9), F(JC_NORMAL, 1, 9)}, true},
    {"onehot_ax1", OP_ONEHOT, {.axis = 1, .depth = 5}, 1, {I(JC_INDEX, 5, 2, 3, 4)}, true},
    {"onehot_last", OP_ONEHOT, {.axis = 2, .depth = 5}, 1, {I(JC_INDEX, 5, 2, 3, 4)}, true},
    {"onehot_ax0", OP_ONEHOT, {.axis = 0, .depth = 5}, 1, {I(JC_INDEX, 5, 2, 3, 4)}, true},
    /* matmul */
    {"matmul", OP_MATMUL, NO_ATTR, 2, {F(JC_NORMAL, 3, 2, 3, 4), F(JC_NORMAL, 3, 2, 4, 5)}, false},
    {"matmul_ta", OP_MATMUL, {.trans_a = 1}, 2, {F(JC_NORMAL, 3, 2, 4, 3), F(JC_NORMAL, 3, 2, 4, 5)}, false},
    {"matmul_tb", OP_MATMUL, {.trans_b = 1}, 2, {F(JC_NORMAL, 3, 2, 3, 4), F(JC_NORMAL, 3, 2, 5, 4)}, false},
    {"matmul_tab", OP_MATMUL, {.trans_a = 1, .trans_b = 1}, 2, {F(JC_NORMAL, 3, 2, 4, 3), F(JC_NORMAL, 3, 2, 5, 4)}, false},
    {"matmul_shared", OP_MATMUL, NO_ATTR, 2, {F(JC_NORMAL, 4, 2, 2, 3, 4), F(JC_NORMAL, 2, 4, 5)}, false},
    {"matmul_shared_ta", OP_MATMUL, {.trans_a = 1}, 2, {F(JC_NORMAL, 3, 2, 4, 3), F(JC_NORMAL, 2, 4, 5)}, false},
    {"matmul_shared_tb", OP_MATMUL, {.trans_b = 1}, 2, {F(JC_NORMAL, 3, 2, 3, 4), F(JC_NORMAL, 2, 5, 4)}, false},
    {"matmul_2d", OP_MATMUL, NO_ATTR, 2, {F(JC_NORMAL, 2, 3, 4), F(JC_NORMAL, 2, 4, 5)}, false},
    /* convolutions (k4 s2 p1 is the dVAE's down- and upsampling) */
    {"conv2d_k3s1p1", OP_CONV2D, {.stride = 1, .pad = 1}, 2, {F(JC_NORMAL, 4, 2, 3, 7, 7), F(JC_NORMAL, 4, 4, 3, 3, 3)}, false},
    {"conv2d_k4s2p1", OP_CONV2D, {.stride = 2, .pad = 1}, 2, {F(JC_NORMAL, 4, 2, 3, 8, 8), F(JC_NORMAL, 4, 5, 3, 4, 4)}, false},
    {"conv2d_k1", OP_CONV2D, {.stride = 1, .pad = 0}, 2, {F(JC_NORMAL, 4, 2, 3, 5, 5), F(JC_NORMAL, 4, 4, 3, 1, 1)}, false},
    {"conv2d_k3s2p0", OP_CONV2D, {.stride = 2, .pad = 0}, 2, {F(JC_NORMAL, 4, 2, 2, 7, 6), F(JC_NORMAL, 4, 3, 2, 3, 3)}, false},
    {"conv2d_k3s3p2", OP_CONV2D, {.stride = 3, .pad = 2}, 2, {F(JC_NORMAL, 4, 1, 2, 8, 7), F(JC_NORMAL, 4, 3, 2, 3, 3)}, false},
    {"convt_k4s2p1", OP_CONV_TRANSPOSE2D, {.stride = 2, .pad = 1}, 2, {F(JC_NORMAL, 4, 2, 4, 5, 5), F(JC_NORMAL, 4, 4, 3, 4, 4)}, false},
    {"convt_k3s1p1", OP_CONV_TRANSPOSE2D, {.stride = 1, .pad = 1}, 2, {F(JC_NORMAL, 4, 2, 3, 4, 5), F(JC_NORMAL, 4, 3, 2, 3, 3)}, false},
    {"convt_k3s2p0", OP_CONV_TRANSPOSE2D, {.stride = 2, .pad = 0}, 2, {F(JC_NORMAL, 4, 1, 2, 4, 4), F(JC_NORMAL, 4, 2, 3, 3, 3)}, false},
    {"convt_k2s2p0", OP_CONV_TRANSPOSE2D, {.stride = 2, .pad = 0}, 2, {F(JC_NORMAL, 4, 2, 3, 3, 3), F(JC_NORMAL, 4, 3, 2, 2, 2)}, false},
    {"convt_k5s3p2", OP_CONV_TRANSPOSE2D, {.stride = 3, .pad = 2}, 2, {F(JC_NORMAL, 4, 2, 2, 4, 3), F(JC_NORMAL, 4, 2, 3, 5, 5)}, false},
    {"conv2d_bw_k3s1p1", OP_CONV2D_BACKWARD_WEIGHT, {.shape = SH(4, 4, 3, 3, 3), .stride = 1, .pad = 1}, 2,
     {F(JC_NORMAL, 4, 2, 3, 6, 6), F(JC_NORMAL, 4, 2, 4, 6, 6)}, false},
    {"conv2d_bw_k4s2p1", OP_CONV2D_BACKWARD_WEIGHT, {.shape = SH(4, 5, 3, 4, 4), .stride = 2, .pad = 1}, 2,
     {F(JC_NORMAL, 4, 2, 3, 8, 8), F(JC_NORMAL, 4, 2, 5, 4, 4)}, false},
    {"conv2d_bw_k3s2p0", OP_CONV2D_BACKWARD_WEIGHT, {.shape = SH(4, 3, 2, 3, 3), .stride = 2, .pad = 0}, 2,
     {F(JC_NORMAL, 4, 1, 2, 7, 7), F(JC_NORMAL, 4, 1, 3, 3, 3)}, false},
    {"conv2d_bw_k1", OP_CONV2D_BACKWARD_WEIGHT, {.shape = SH(4, 2, 4, 1, 1), .stride = 1, .pad = 0}, 2,
     {F(JC_NORMAL, 4, 3, 4, 5, 5), F(JC_NORMAL, 4, 3, 2, 5, 5)}, false},
    /* norms and loss */
    {"group_norm", OP_GROUP_NORM, {.groups = 3, .eps = 1e-5f}, 3,
     {F(JC_NORMAL, 4, 2, 6, 4, 4), F(JC_NORMAL, 1, 6), F(JC_NORMAL, 1, 6)}, false},
    {"group_norm_rank3", OP_GROUP_NORM, {.groups = 2, .eps = 1e-3f}, 3,
     {F(JC_NORMAL, 3, 2, 4, 5), F(JC_NORMAL, 1, 4), F(JC_NORMAL, 1, 4)}, false},
    {"group_norm_g1", OP_GROUP_NORM, {.groups = 1, .eps = 1e-5f}, 3,
     {F(JC_NORMAL, 4, 3, 2, 3, 3), F(JC_NORMAL, 1, 2), F(JC_NORMAL, 1, 2)}, false},
    {"layer_norm", OP_LAYER_NORM, {.eps = 1e-5f}, 3, {F(JC_NORMAL, 3, 3, 4, 40), F(JC_NORMAL, 1, 40), F(JC_NORMAL, 1, 40)}, false},
    {"layer_norm_2d", OP_LAYER_NORM, {.eps = 1e-6f}, 3, {F(JC_NORMAL, 2, 5, 6), F(JC_NORMAL, 1, 6), F(JC_NORMAL, 1, 6)}, false},
    {"cross_entropy", OP_CROSS_ENTROPY, NO_ATTR, 2, {F(JC_NORMAL, 3, 3, 4, 70), I(JC_INDEX, 70, 2, 3, 4)}, false},
    {"cross_entropy_1d", OP_CROSS_ENTROPY, NO_ATTR, 2, {F(JC_NORMAL, 2, 5, 7), I(JC_INDEX, 7, 1, 5)}, false},
    /* fused attention (q, k, v, mask): the GPT's tiny shape, and odd sizes under a random mask */
    {"attention_tiny", OP_ATTENTION, {.value = 0.25}, 4,
     {F(JC_NORMAL, 4, 4, 2, 23, 16), F(JC_NORMAL, 4, 4, 2, 23, 16), F(JC_NORMAL, 4, 4, 2, 23, 16), I(JC_BOOL, 0, 2, 23, 23)},
     false},
    {"attention_odd", OP_ATTENTION, {.value = 0.4}, 4,
     {F(JC_NORMAL, 3, 5, 9, 5), F(JC_NORMAL, 3, 5, 40, 5), F(JC_NORMAL, 3, 5, 40, 5), I(JC_BOOL, 0, 2, 9, 40)}, false},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_op_case) {
  const OpCase *c = &cases[_i];
  IrGraph *g = ir_graph_new(c->name);
  RtTensor *in[IR_MAX_IN] = {0};
  int ids[IR_MAX_IN];
  for (int i = 0; i < c->nin; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    in[i] = jc_make(c->in[i].dt, &c->in[i].s, c->in[i].dom, c->in[i].hi);
    ids[i] = ir_input(g, name, c->in[i].dt, c->in[i].s, LOC);
    ck_assert_msg(ids[i] >= 0, "%s: %s", c->name, g->error);
  }
  int id = ir_build(g, c->op, ids, c->nin, &c->attr, LOC);
  ck_assert_msg(id >= 0, "%s: %s", c->name, g->error);
  ir_set_outputs(g, &id, NULL, 1);
  JcCheck chk = {.tol = 1e-5, .exact = c->exact, .seed = 42, .step = 3};
  jc_check_plan(g, NULL, in, NULL, &chk); /* one op: the same plan with fusion on or off */
  free_all(in, c->nin);
  ir_graph_free(g);
}
END_TEST

static bool tested[OP_COUNT];

/* attention_backward: its inputs y = attention(q, k, v, mask) and a random
 * gradient of y, in one graph, against the reference executor (which
 * recomputes everything from q, k and v). */
START_TEST(test_attention_backward) {
  IrGraph *g = ir_graph_new("attention_backward");
  IrShape qs = SH(4, 2, 3, 11, 8), ks = SH(4, 2, 3, 19, 8), ms = SH(2, 11, 19), ys = SH(4, 2, 3, 11, 9);
  int q = ir_input(g, "q", IR_F32, qs, LOC), k = ir_input(g, "k", IR_F32, ks, LOC), v = ir_input(g, "v", IR_F32, ks, LOC);
  int mask = ir_input(g, "mask", IR_I32, ms, LOC), dy = ir_input(g, "dy", IR_F32, ys, LOC);
  IrAttr a = {.value = 0.35};
  int y = ir_build(g, OP_ATTENTION, (int[]){q, k, v, mask}, 4, &a, LOC);
  int gr = ir_build(g, OP_ATTENTION_BACKWARD, (int[]){q, k, v, mask, y, dy}, 6, &a, LOC);
  ck_assert_msg(gr >= 0, "%s", g->error);
  ir_set_outputs(g, &gr, NULL, 1);
  RtTensor *in[5] = {jc_make(IR_F32, &qs, JC_NORMAL, 0), jc_make(IR_F32, &ks, JC_NORMAL, 0),
                     jc_make(IR_F32, &ks, JC_NORMAL, 0), jc_make(IR_I32, &ms, JC_BOOL, 0), jc_make(IR_F32, &ys, JC_NORMAL, 0)};
  for (int i = 0; i < 11; i++) rt_i32(in[3])[i * 19 + i] = 1; /* every row sees a key */
  JcCheck chk = {.tol = 1e-5};
  jc_check_plan(g, NULL, in, NULL, &chk);
  free_all(in, 5);
  ir_graph_free(g);
}
END_TEST

START_TEST(test_all_ops_covered) {
  for (int i = 0; i < NCASES; i++) tested[cases[i].op] = true;
  tested[OP_INPUT] = true; /* every case */
  tested[OP_PARAM] = true; /* test_updates, the models */
  tested[OP_STATE] = true; /* test_updates */
  tested[OP_ATTENTION_BACKWARD] = true; /* test_attention_backward */
  for (int op = 0; op < OP_COUNT; op++) ck_assert_msg(tested[op], "no JIT test for %s", ir_op_name((IrOp)op));
}
END_TEST

/* ---- fused chains under explicit groupings ---- */

/* A plan with every non-leaf node of g in one group. */
static FusePlan *one_group(const IrGraph *g) {
  int *gid = calloc((size_t)g->n + 1, sizeof(int));
  char err[200];
  FusePlan *p = cg_fuse_from_groups(g, gid, err, sizeof err);
  ck_assert_msg(p != NULL, "%s", err);
  free(gid);
  return p;
}

static int input(IrGraph *g, const char *name, IrDType dt, IrShape s) {
  int id = ir_input(g, name, dt, s, LOC);
  ck_assert_msg(id >= 0, "%s", g->error);
  return id;
}

static IrShape shp(int rank, int64_t a, int64_t b, int64_t c, int64_t d) {
  int64_t dims[4] = {a, b, c, d};
  return ir_shape_make(rank, dims);
}

/* Runs g with one group (expecting 'kernels' kernels), then with
 * fuse_plan's plan and with fusion off. */
static void check_fused(IrGraph *g, RtTensor **in, RtTensor **params, int kernels, JcCheck c) {
  FusePlan *p = one_group(g);
  jc_check_plan(g, p, in, params, &c);
  fuse_plan_free(p);
  ck_assert_msg(c.kernels == kernels, "%s: %d kernels, expected %d", g->name, c.kernels, kernels);
  jc_check_both(g, in, params, &c);
}

/* relu(a * b + c) * 0.5: one flat loop, bit for bit. */
START_TEST(test_chain_elementwise) {
  IrGraph *g = ir_graph_new("elementwise");
  IrShape s = shp(2, 9, 1000, 0, 0);
  int a = input(g, "a", IR_F32, s), b = input(g, "b", IR_F32, s), c = input(g, "c", IR_F32, s);
  int y = ir_binary(g, OP_MUL, a, b, LOC);
  y = ir_unary(g, OP_RELU, ir_binary(g, OP_ADD, y, c, LOC), LOC);
  y = ir_binary(g, OP_MUL, y, ir_scalar(g, IR_F32, 0.5, LOC), LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[3] = {jc_make(IR_F32, &s, JC_NORMAL, 0), jc_make(IR_F32, &s, JC_NORMAL, 0), jc_make(IR_F32, &s, JC_NORMAL, 0)};
  check_fused(g, in, NULL, 1, (JcCheck){.exact = true});
  free_all(in, 3);
  ir_graph_free(g);
}
END_TEST

/* exp(a [4, 1, 8] + b [6, 1]) * c [8] -> [4, 6, 8]: broadcasts inside one loop. */
START_TEST(test_chain_broadcast) {
  IrGraph *g = ir_graph_new("broadcast");
  IrShape sa = shp(3, 4, 1, 8, 0), sb = shp(2, 6, 1, 0, 0), sc = shp(1, 8, 0, 0, 0);
  int a = input(g, "a", IR_F32, sa), b = input(g, "b", IR_F32, sb), c = input(g, "c", IR_F32, sc);
  int y = ir_binary(g, OP_MUL, ir_unary(g, OP_EXP, ir_binary(g, OP_ADD, a, b, LOC), LOC), c, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[3] = {jc_make(IR_F32, &sa, JC_NORMAL, 0), jc_make(IR_F32, &sb, JC_NORMAL, 0), jc_make(IR_F32, &sc, JC_NORMAL, 0)};
  check_fused(g, in, NULL, 1, (JcCheck){.tol = 1e-5});
  free_all(in, 3);
  ir_graph_free(g);
}
END_TEST

/* p = exp(x) * w, y = log(sum(p, axis 1)) + 1, both returned: the
 * prologue is stored inside the reduction, the epilogue after it. */
START_TEST(test_chain_reduce) {
  for (int axis = 0; axis < 2; axis++) {
    IrGraph *g = ir_graph_new(axis ? "reduce_rows" : "reduce_cols");
    IrShape sx = shp(2, 6, 300, 0, 0), sw = shp(1, 300, 0, 0, 0);
    int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, sw);
    int p = ir_binary(g, OP_MUL, ir_unary(g, OP_EXP, x, LOC), w, LOC);
    int sum = ir_reduce(g, OP_SUM, p, 1u << axis, false, LOC);
    int y = ir_binary(g, OP_ADD, ir_unary(g, OP_LOG, sum, LOC), ir_scalar(g, IR_F32, 1, LOC), LOC);
    ir_set_outputs(g, (int[]){y, p}, (const char *[]){"y", "p"}, 2);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_POS, 0)};
    check_fused(g, in, NULL, 1, (JcCheck){.tol = 1e-5});
    free_all(in, 2);
    ir_graph_free(g);
  }
}
END_TEST

/* softmax(x * 0.125 + mask) * 2 along either axis: one row kernel. */
START_TEST(test_chain_softmax) {
  for (int axis = 0; axis < 2; axis++) {
    IrGraph *g = ir_graph_new(axis ? "softmax_rows" : "softmax_cols");
    IrShape sx = shp(2, 7, 90, 0, 0), sm = shp(1, 90, 0, 0, 0);
    int x = input(g, "x", IR_F32, sx), mask = input(g, "mask", IR_F32, sm);
    int t = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, x, ir_scalar(g, IR_F32, 0.125, LOC), LOC), mask, LOC);
    int sm_ = ir_build(g, OP_SOFTMAX, &t, 1, &(IrAttr){.axis = axis}, LOC);
    int y = ir_binary(g, OP_MUL, sm_, ir_scalar(g, IR_F32, 2, LOC), LOC);
    ir_set_outputs(g, &y, NULL, 1);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sm, JC_NORMAL, 0)};
    check_fused(g, in, NULL, 1, (JcCheck){.tol = 1e-5});
    free_all(in, 2);
    ir_graph_free(g);
  }
}
END_TEST

/* e / sum(e) with e = exp(x): the reduction's result read back at the input
 * shape (what fuse_plan calls a two-pass group). */
START_TEST(test_chain_two_pass) {
  IrGraph *g = ir_graph_new("two_pass");
  IrShape sx = shp(2, 5, 64, 0, 0);
  int x = input(g, "x", IR_F32, sx);
  int e = ir_unary(g, OP_EXP, x, LOC);
  int s = ir_reduce(g, OP_SUM, e, 0x2, true, LOC);
  int y = ir_binary(g, OP_DIV, e, s, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[1] = {jc_make(IR_F32, &sx, JC_NORMAL, 0)};
  check_fused(g, in, NULL, 2, (JcCheck){.tol = 1e-5});
  free_all(in, 1);
  ir_graph_free(g);
}
END_TEST

/* relu(x @ W + b): the GEMM writes into the output, the epilogue runs in place. */
START_TEST(test_chain_matmul_bias) {
  IrGraph *g = ir_graph_new("matmul_bias");
  IrShape sx = shp(3, 2, 6, 16, 0), sw = shp(2, 16, 12, 0, 0), sb = shp(1, 12, 0, 0, 0);
  int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, sw), b = input(g, "b", IR_F32, sb);
  int mm = ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC);
  int y = ir_unary(g, OP_RELU, ir_binary(g, OP_ADD, mm, b, LOC), LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &sb, JC_NORMAL, 0)};
  JcCheck c = {.tol = 1e-5};
  FusePlan *p = one_group(g);
  jc_check_plan(g, p, in, NULL, &c);
  fuse_plan_free(p);
  ck_assert_int_eq(c.kernels, 1);
  ck_assert_int_eq(c.steps, 2); /* GEMM, epilogue */
  jc_check_both(g, in, NULL, &c);
  free_all(in, 3);
  ir_graph_free(g);
}
END_TEST

/* relu(conv2d(x, w) + b), whole and in chunks of samples. */
START_TEST(test_chain_conv_bias_relu) {
  for (int chunked = 0; chunked < 2; chunked++) {
    IrGraph *g = ir_graph_new(chunked ? "conv_chunked" : "conv");
    IrShape sx = shp(4, 4, 3, 9, 9), sw = shp(4, 5, 3, 3, 3), sb = shp(3, 5, 1, 1, 0);
    int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, sw), b = input(g, "b", IR_F32, sb);
    int cv = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &(IrAttr){.stride = 1, .pad = 1}, LOC);
    int y = ir_unary(g, OP_RELU, ir_binary(g, OP_ADD, cv, b, LOC), LOC);
    ir_set_outputs(g, &y, NULL, 1);
    RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &sb, JC_NORMAL, 0)};
    /* col for one sample: 27 x 81 floats; a budget of two samples makes chunks of 2 */
    cg_set_col_budget(chunked ? 2 * 27 * 81 * 4 : 64ll << 20);
    JcCheck c = {.tol = 1e-5};
    FusePlan *p = one_group(g);
    jc_check_plan(g, p, in, NULL, &c);
    fuse_plan_free(p);
    ck_assert_int_eq(c.kernels, 2);                /* im2col, epilogue */
    ck_assert_int_eq(c.steps, chunked ? 6 : 3); /* (im2col, GEMM, epilogue) per chunk */
    jc_check_both(g, in, NULL, &c);
    free_all(in, 3);
    ir_graph_free(g);
  }
}
END_TEST

/* The other convolutions in chunks too. */
START_TEST(test_conv_chunks) {
  cg_set_col_budget(64); /* one sample per chunk */
  static const int which[] = {OP_CONV_TRANSPOSE2D, OP_CONV2D_BACKWARD_WEIGHT};
  for (int k = 0; k < 2; k++) {
    IrGraph *g = ir_graph_new(ir_op_name((IrOp)which[k]));
    IrShape sx = shp(4, 3, 4, 5, 5), sw = k ? shp(4, 6, 4, 3, 3) : shp(4, 4, 2, 4, 4);
    IrShape sgrad = shp(4, 3, 6, 5, 5);
    int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, k ? sgrad : sw);
    IrAttr at = {.stride = k ? 1 : 2, .pad = 1, .shape = sw};
    int y = ir_build(g, (IrOp)which[k], (int[]){x, w}, 2, &at, LOC);
    ck_assert_msg(y >= 0, "%s", g->error);
    y = ir_binary(g, OP_MUL, y, ir_scalar(g, IR_F32, 3, LOC), LOC);
    ir_set_outputs(g, &y, NULL, 1);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, k ? &sgrad : &sw, JC_NORMAL, 0)};
    JcCheck c = {.tol = 1e-5};
    FusePlan *p = one_group(g);
    jc_check_plan(g, p, in, NULL, &c);
    fuse_plan_free(p);
    jc_check_both(g, in, NULL, &c);
    free_all(in, 2);
    ir_graph_free(g);
  }
}
END_TEST

/* Convolutions in tiles of output rows (one sample's col over the budget):
 * conv2d with an epilogue that reads another tensor at the output index
 * and with its output also returned, stride 2, and the weight gradient
 * accumulated over the tiles. */
START_TEST(test_conv_tiles) {
  for (int k = 0; k < 3; k++) {
    IrGraph *g = ir_graph_new("conv_tiles");
    int stride = k == 1 ? 2 : 1, KS = k == 1 ? 4 : 3;
    IrShape sx = shp(4, 3, 3, 9, 9), sw = shp(4, 5, 3, KS, KS), sb = shp(3, 5, 1, 1, 0);
    int64_t OH = (9 + 2 - KS) / stride + 1; /* 9 (3x3), 4 (4x4 stride 2) */
    IrShape so = shp(4, 3, 5, OH, OH);
    int x = input(g, "x", IR_F32, sx), y;
    if (k < 2) {
      int w = input(g, "w", IR_F32, sw), b = input(g, "b", IR_F32, sb), z = input(g, "z", IR_F32, so);
      int cv = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &(IrAttr){.stride = stride, .pad = 1}, LOC);
      int out[2] = {ir_binary(g, OP_ADD, ir_unary(g, OP_RELU, ir_binary(g, OP_ADD, cv, b, LOC), LOC), z, LOC), cv};
      ir_set_outputs(g, out, NULL, 2);
    } else {
      int dy = input(g, "dy", IR_F32, so);
      IrAttr at = {.stride = 1, .pad = 1, .shape = sw};
      y = ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &at, LOC);
      ck_assert_msg(y >= 0, "%s", g->error);
      y = ir_binary(g, OP_MUL, y, ir_scalar(g, IR_F32, 3, LOC), LOC);
      ir_set_outputs(g, &y, NULL, 1);
    }
    RtTensor *in[4] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), NULL, NULL, NULL};
    int nin = k < 2 ? 4 : 2;
    if (k < 2) {
      in[1] = jc_make(IR_F32, &sw, JC_NORMAL, 0);
      in[2] = jc_make(IR_F32, &sb, JC_NORMAL, 0);
      in[3] = jc_make(IR_F32, &so, JC_NORMAL, 0);
    } else {
      in[1] = jc_make(IR_F32, &so, JC_NORMAL, 0);
    }
    /* col per output position: 27 (3x3) or 48 (4x4) floats, plus 5 of dy for
     * the weight gradient; a budget of 3 rows (3x3) or 2 rows (4x4) */
    int64_t per_pos = (k == 1 ? 48 : 27) + (k == 2 ? 5 : 0);
    cg_set_col_budget(per_pos * 4 * OH * (k == 1 ? 2 : 3));
    JcCheck c = {.tol = 1e-5};
    FusePlan *p = one_group(g);
    jc_check_plan(g, p, in, NULL, &c);
    fuse_plan_free(p);
    /* per chunk: im2col, GEMM, epilogue (conv2d) or im2col, pack, GEMM */
    int tiles = 3 * (k == 1 ? 2 : 3); /* 3 samples */
    ck_assert_int_eq(c.steps, k < 2 ? 3 * tiles : 3 * tiles + 1);
    jc_check_both(g, in, NULL, &c);
    free_all(in, nin);
    ir_graph_free(g);
  }
  cg_set_col_budget(4ll << 20);
}
END_TEST

/* conv_transpose2d in tiles of input rows: the taps of each block land
 * in output rows shared with the next block (stride 1 and 2). */
START_TEST(test_conv_transpose_tiles) {
  for (int stride = 1; stride <= 2; stride++) {
    IrGraph *g = ir_graph_new("convt_tiles");
    int KS = stride == 1 ? 3 : 4;
    int64_t OH = (8 - 1) * stride - 2 + KS; /* 8 (3x3, stride 1) or 16 (4x4, stride 2) */
    IrShape sx = shp(4, 2, 4, 8, 8), sw = shp(4, 4, 3, KS, KS), so = shp(4, 2, 3, OH, OH);
    int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, sw);
    IrAttr at = {.stride = stride, .pad = 1, .shape = so};
    int y = ir_build(g, OP_CONV_TRANSPOSE2D, (int[]){x, w}, 2, &at, LOC);
    ck_assert_msg(y >= 0, "%s", g->error);
    y = ir_unary(g, OP_TANH, y, LOC);
    ir_set_outputs(g, &y, NULL, 1);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0)};
    /* scratch per input position: col (3 * KS * KS) and the packed x (4);
     * a budget of 2 input rows of 8: 4 tiles per sample */
    cg_set_col_budget((3 * KS * KS + 4) * 4 * 8 * 2);
    JcCheck c = {.tol = 1e-5};
    FusePlan *p = one_group(g);
    jc_check_plan(g, p, in, NULL, &c);
    fuse_plan_free(p);
    ck_assert_int_eq(c.steps, 2 * 4 * 3 + 1); /* (pack, GEMM, col2im) per tile, epilogue */
    free_all(in, 2);
    ir_graph_free(g);
  }
  cg_set_col_budget(4ll << 20);
}
END_TEST

/* Stride-2 convolutions with rows wide enough for im2col's 8-at-a-time
 * even-input reads (and their remainders and padding at both ends): the
 * output, and the weight gradient. */
START_TEST(test_conv_stride2_wide) {
  for (int k = 0; k < 2; k++) {
    IrGraph *g = ir_graph_new("conv_s2");
    IrShape sx = shp(4, 2, 3, 38, 41), sw = shp(4, 4, 3, 4, 4), so = shp(4, 2, 4, 19, 20);
    int x = input(g, "x", IR_F32, sx), y;
    if (k == 0) {
      int w = input(g, "w", IR_F32, sw);
      y = ir_build(g, OP_CONV2D, (int[]){x, w}, 2, &(IrAttr){.stride = 2, .pad = 1}, LOC);
    } else {
      int dy = input(g, "dy", IR_F32, so);
      y = ir_build(g, OP_CONV2D_BACKWARD_WEIGHT, (int[]){x, dy}, 2, &(IrAttr){.stride = 2, .pad = 1, .shape = sw}, LOC);
    }
    ck_assert_msg(y >= 0, "%s", g->error);
    ck_assert_int_eq(g->node[y].shape.d[k == 0 ? 3 : 1], k == 0 ? 20 : 3);
    ir_set_outputs(g, &y, NULL, 1);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, k == 0 ? &sw : &so, JC_NORMAL, 0)};
    JcCheck c = {.tol = 1e-5};
    jc_check_plan(g, NULL, in, NULL, &c);
    free_all(in, 2);
    ir_graph_free(g);
  }
}
END_TEST

/* The same chain on two inputs (a model's repeated layers): one function,
 * two steps. */
START_TEST(test_shared_kernels) {
  IrGraph *g = ir_graph_new("shared");
  IrShape s = shp(2, 4, 50, 0, 0);
  int x[2] = {input(g, "x0", IR_F32, s), input(g, "x1", IR_F32, s)}, y[2];
  for (int i = 0; i < 2; i++) {
    int t = ir_unary(g, OP_TANH, ir_binary(g, OP_MUL, x[i], ir_scalar(g, IR_F32, 3, LOC), LOC), LOC);
    y[i] = ir_build(g, OP_SOFTMAX, &t, 1, &(IrAttr){.axis = 1}, LOC);
  }
  ir_set_outputs(g, y, NULL, 2);
  RtTensor *in[2] = {jc_make(IR_F32, &s, JC_NORMAL, 0), jc_make(IR_F32, &s, JC_NORMAL, 0)};
  JcCheck c = {.tol = 1e-5};
  jc_check_plan(g, NULL, in, NULL, &c);
  ck_assert_int_eq(c.kernels, 1);
  ck_assert_int_eq(c.steps, 2);
  free_all(in, 2);
  ir_graph_free(g);
}
END_TEST

/* ---- in-place reuse (codegen/lower_inplace.c) ---- */

/* How many of the plan lowered from g under fp are steps of 'kind' (or,
 * for kind < 0, arena buffers). */
static int count_in_plan(const IrGraph *g, const FusePlan *fp, int kind) {
  RtErr e;
  CgLowered *l = cg_lower(g, fp, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  int n = 0;
  if (kind < 0)
    for (int b = 0; b < l->plan.nbuf; b++) n += l->plan.buf[b].kind == RT_BUF_ARENA;
  else
    for (int i = 0; i < l->plan.nstep; i++) n += (int)l->plan.step[i].kind == kind;
  cg_lowered_free(l);
  return n;
}

/* Groups by hand, so each loop kernel below is its own step:
 *   mm = x @ w                       GEMM into an arena buffer
 *   a1 = mm * 0.5 + 1, a2 = mm * mm  one kernel: a1 may take mm's storage,
 *                                    and a2 must still read mm's old value
 *   t  = a1 + transpose(a1) + a2     may take a2's storage, never a1's (read
 *                                    transposed: element (i, j) reads (j, i),
 *                                    which an earlier iteration overwrote)
 *   r  = relu(t) * 3                 in place of t
 *   y  = sum(r, axis 1)              a row kernel
 * Expected: three kernels write over a dying input, and the results agree
 * with the reference executor (writing t over a1 would not). */
START_TEST(test_in_place) {
  IrGraph *g = ir_graph_new("in_place");
  IrShape s = shp(2, 48, 48, 0, 0);
  int x = input(g, "x", IR_F32, s), w = input(g, "w", IR_F32, s);
  int mm = ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC);
  int first_b = g->n;
  int half = ir_binary(g, OP_MUL, mm, ir_scalar(g, IR_F32, 0.5, LOC), LOC);
  int a1 = ir_binary(g, OP_ADD, half, ir_scalar(g, IR_F32, 1, LOC), LOC);
  int a2 = ir_binary(g, OP_MUL, mm, mm, LOC);
  int first_c = g->n;
  int t = ir_binary(g, OP_ADD, ir_binary(g, OP_ADD, a1, ir_permute(g, a1, (int[]){1, 0}, LOC), LOC), a2, LOC);
  int first_d = g->n;
  int r = ir_binary(g, OP_MUL, ir_unary(g, OP_RELU, t, LOC), ir_scalar(g, IR_F32, 3, LOC), LOC);
  int first_e = g->n;
  int y = ir_reduce(g, OP_SUM, r, 0x2, false, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  int *gid = calloc((size_t)g->n + 1, sizeof(int));
  for (int v = 0; v < g->n; v++)
    gid[v] = v >= first_e ? 4 : v >= first_d ? 3 : v >= first_c ? 2 : v >= first_b ? 1 : 0;
  char err[200];
  FusePlan *p = cg_fuse_from_groups(g, gid, err, sizeof err);
  ck_assert_msg(p != NULL, "%s", err);
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  ck_assert_int_eq(l->in_place, 3);
  cg_lowered_free(l);
  /* two arena buffers are left: mm (holding a1 too) and a2 (t, r) */
  ck_assert_int_eq(count_in_plan(g, p, -1), 2);
  RtTensor *in[2] = {jc_make(IR_F32, &s, JC_NORMAL, 0), jc_make(IR_F32, &s, JC_NORMAL, 0)};
  JcCheck c = {.tol = 1e-5};
  jc_check_plan(g, p, in, NULL, &c);
  fuse_plan_free(p);
  jc_check_both(g, in, NULL, &c);
  free_all(in, 2);
  free(gid);
  ir_graph_free(g);
}
END_TEST

/* A group whose members are not all at its root's index (a chain of
 * another shape put in a GEMM's group by hand, as sibling merging does):
 * the chain's needed values p, q, r = ((y * 2) + 1)^2 are stored by one
 * loop over r, not one loop each. Steps: GEMM, its epilogue, that loop. */
START_TEST(test_leftover_members_share_a_loop) {
  IrGraph *g = ir_graph_new("leftovers");
  IrShape sx = shp(2, 8, 16, 0, 0), sw = shp(2, 16, 12, 0, 0), sy = shp(2, 5, 40, 0, 0);
  int x = input(g, "x", IR_F32, sx), w = input(g, "w", IR_F32, sw), y = input(g, "y", IR_F32, sy);
  int a = ir_unary(g, OP_EXP, ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC), LOC);
  int p = ir_binary(g, OP_MUL, y, ir_scalar(g, IR_F32, 2, LOC), LOC);
  int q = ir_binary(g, OP_ADD, p, ir_scalar(g, IR_F32, 1, LOC), LOC);
  int r = ir_binary(g, OP_MUL, q, q, LOC);
  ir_set_outputs(g, (int[]){a, p, q, r}, (const char *[]){"a", "p", "q", "r"}, 4);
  RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0),
                     jc_make(IR_F32, &sy, JC_NORMAL, 0)};
  FusePlan *fp = one_group(g);
  JcCheck c = {.tol = 1e-5};
  jc_check_plan(g, fp, in, NULL, &c);
  fuse_plan_free(fp);
  ck_assert_int_eq(c.steps, 3);
  free_all(in, 3);
  ir_graph_free(g);
}
END_TEST

/* ---- state updates ---- */

/* count += 1 and w -= 0.5 w in place (nothing reads the old values after
 * the update's kernel), a <- b (a copy at the end); the output reads the
 * old a and w. */
START_TEST(test_updates) {
  IrGraph *g = ir_graph_new("step");
  IrShape sw = shp(2, 3, 40, 0, 0);
  int w = ir_param(g, "w", sw, IR_INIT_ZEROS, 0, 0, LOC);
  int count = ir_state(g, "count", ir_shape_make(0, NULL), LOC);
  int a = ir_state(g, "a", sw, LOC), b = ir_state(g, "b", sw, LOC);
  int out = ir_binary(g, OP_ADD, w, a, LOC);
  int nw = ir_binary(g, OP_SUB, w, ir_binary(g, OP_MUL, w, ir_scalar(g, IR_F32, 0.5, LOC), LOC), LOC);
  int nc = ir_binary(g, OP_ADD, count, ir_scalar(g, IR_F32, 1, LOC), LOC);
  ck_assert_int_ge(ir_add_update(g, w, nw, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, count, nc, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, a, b, LOC), 0);
  ir_set_outputs(g, &out, NULL, 1);
  IrShape s0 = ir_shape_make(0, NULL);
  RtTensor *params[4] = {jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &s0, JC_NORMAL, 0), jc_make(IR_F32, &sw, JC_NORMAL, 0),
                         jc_make(IR_F32, &sw, JC_NORMAL, 0)};
  jc_check_both(g, NULL, params, &(JcCheck){.exact = true});
  free_all(params, 4);
  ir_graph_free(g);
}
END_TEST

/* A weight's gradient from a GEMM with the update fused into its epilogue
 * (AdamW's shape): w -= 0.1 (x^T dy) alone (the GEMM must not write its
 * product into w, which the epilogue still reads), then with momentum
 * m = 0.9 m + x^T dy as well; and a bias's from a sum over rows: b -= 0.1
 * sum(dy, rows), with momentum mb = 0.9 mb + that sum. All update in
 * place: no copy step; and the output x @ w + b still sees the old w and b. */
START_TEST(test_update_in_gemm_epilogue) {
  for (int momentum = 0; momentum < 2; momentum++) {
    IrGraph *g = ir_graph_new(momentum ? "sgd_momentum" : "sgd");
    IrShape sx = shp(2, 8, 16, 0, 0), sd = shp(2, 8, 12, 0, 0), sw = shp(2, 16, 12, 0, 0);
    IrShape sb = shp(1, 12, 0, 0, 0);
    int w = ir_param(g, "w", sw, IR_INIT_ZEROS, 0, 0, LOC), b = ir_param(g, "b", sb, IR_INIT_ZEROS, 0, 0, LOC);
    int m = momentum ? ir_state(g, "m", sw, LOC) : -1, mb = momentum ? ir_state(g, "mb", sb, LOC) : -1;
    int x = input(g, "x", IR_F32, sx), dy = input(g, "dy", IR_F32, sd);
    int out = ir_binary(g, OP_ADD, ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC), b, LOC);
    int gw = ir_build(g, OP_MATMUL, (int[]){x, dy}, 2, &(IrAttr){.trans_a = 1}, LOC);
    int gb = ir_reduce(g, OP_SUM, dy, 0x1, false, LOC);
    int step = gw, bstep = gb;
    if (momentum) {
      int nm = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, m, ir_scalar(g, IR_F32, 0.9, LOC), LOC), gw, LOC);
      int nmb = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, mb, ir_scalar(g, IR_F32, 0.9, LOC), LOC), gb, LOC);
      ck_assert_int_ge(ir_add_update(g, m, nm, LOC), 0);
      ck_assert_int_ge(ir_add_update(g, mb, nmb, LOC), 0);
      step = nm;
      bstep = nmb;
    }
    int nw = ir_binary(g, OP_SUB, w, ir_binary(g, OP_MUL, step, ir_scalar(g, IR_F32, 0.1, LOC), LOC), LOC);
    int nb = ir_binary(g, OP_SUB, b, ir_binary(g, OP_MUL, bstep, ir_scalar(g, IR_F32, 0.1, LOC), LOC), LOC);
    ck_assert_int_ge(ir_add_update(g, w, nw, LOC), 0);
    ck_assert_int_ge(ir_add_update(g, b, nb, LOC), 0);
    ir_set_outputs(g, &out, NULL, 1);
    RtTensor *in[2] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sd, JC_NORMAL, 0)};
    RtTensor *params[4] = {jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &sb, JC_NORMAL, 0),
                           jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &sb, JC_NORMAL, 0)};
    FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = true});
    ck_assert_int_eq(fp->group[fp->group_of[nw]].root, gw); /* the update is the GEMM's epilogue */
    ck_assert_int_eq(fp->group[fp->group_of[nb]].root, gb); /* ... and the sum's */
    ck_assert_int_eq(count_in_plan(g, fp, RT_STEP_COPY), 0);
    fuse_plan_free(fp);
    jc_check_both(g, in, params, &(JcCheck){.tol = 1e-5});
    free_all(in, 2);
    free_all(params, 4);
    ir_graph_free(g);
  }
}
END_TEST

/* An update whose chain sits in another value's group (as sibling merging
 * puts AdamW updates of same-shaped parameters together) gets a loop of
 * its own there, which writes the state in place (lower_inplace.c) --
 * unless a later kernel still reads the old value: u' = u - 0.1 gu beside
 * w' = w - 0.1 x^T dy in the GEMM's group; then also o2 = u * 3 after it. */
START_TEST(test_update_in_a_leftover_loop) {
  for (int later_read = 0; later_read < 2; later_read++) {
    IrGraph *g = ir_graph_new(later_read ? "leftover_update_read_later" : "leftover_update");
    IrShape sx = shp(2, 8, 16, 0, 0), sd = shp(2, 8, 12, 0, 0), sw = shp(2, 16, 12, 0, 0), su = shp(1, 40, 0, 0, 0);
    int w = ir_param(g, "w", sw, IR_INIT_ZEROS, 0, 0, LOC), u = ir_param(g, "u", su, IR_INIT_ZEROS, 0, 0, LOC);
    int x = input(g, "x", IR_F32, sx), dy = input(g, "dy", IR_F32, sd), gu = input(g, "gu", IR_F32, su);
    int first = g->n;
    int gw = ir_build(g, OP_MATMUL, (int[]){x, dy}, 2, &(IrAttr){.trans_a = 1}, LOC);
    int nw = ir_binary(g, OP_SUB, w, ir_binary(g, OP_MUL, gw, ir_scalar(g, IR_F32, 0.1, LOC), LOC), LOC);
    int nu = ir_binary(g, OP_SUB, u, ir_binary(g, OP_MUL, gu, ir_scalar(g, IR_F32, 0.1, LOC), LOC), LOC);
    int second = g->n;
    int o2 = ir_binary(g, OP_MUL, u, ir_scalar(g, IR_F32, 3, LOC), LOC);
    ck_assert_int_ge(ir_add_update(g, w, nw, LOC), 0);
    ck_assert_int_ge(ir_add_update(g, u, nu, LOC), 0);
    int outs[2] = {later_read ? o2 : gw, gw};
    ir_set_outputs(g, outs, (const char *[]){"o", "gw"}, later_read ? 2 : 1);
    int *gid = calloc((size_t)g->n + 1, sizeof(int));
    for (int v = 0; v < g->n; v++) gid[v] = v >= second ? 2 : v >= first ? 1 : 0;
    char err[200];
    FusePlan *fp = cg_fuse_from_groups(g, gid, err, sizeof err);
    ck_assert_msg(fp != NULL, "%s", err);
    ck_assert_int_eq(count_in_plan(g, fp, RT_STEP_COPY), later_read); /* the output still reads the old u */
    RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sd, JC_NORMAL, 0),
                       jc_make(IR_F32, &su, JC_NORMAL, 0)};
    RtTensor *params[2] = {jc_make(IR_F32, &sw, JC_NORMAL, 0), jc_make(IR_F32, &su, JC_NORMAL, 0)};
    JcCheck c = {.tol = 1e-5};
    jc_check_plan(g, fp, in, params, &c);
    fuse_plan_free(fp);
    free(gid);
    free_all(in, 3);
    free_all(params, 2);
    ir_graph_free(g);
  }
}
END_TEST

/* a <- b and b <- a: every update takes a value from before the updates,
 * so the two swap (ir.h's rule; the values go through staging buffers). */
START_TEST(test_update_swap) {
  IrGraph *g = ir_graph_new("swap");
  IrShape s = shp(1, 50, 0, 0, 0);
  int a = ir_state(g, "a", s, LOC), b = ir_state(g, "b", s, LOC);
  ck_assert_int_ge(ir_add_update(g, a, b, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, b, a, LOC), 0);
  int out = ir_binary(g, OP_ADD, a, b, LOC);
  ir_set_outputs(g, &out, NULL, 1);
  RtErr e;
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(jc_session(), g, p, &e);
  fuse_plan_free(p);
  ck_assert_msg(m && cg_module_jit(m, &e) == 0, "%s", e.msg);
  RtTensor *ta = jc_make(IR_F32, &s, JC_NORMAL, 0), *tb = jc_make(IR_F32, &s, JC_NORMAL, 0);
  RtTensor *a0 = jc_copy(ta), *b0 = jc_copy(tb);
  RtTensorList *state = rt_list_new();
  rt_list_put(state, "a", ta);
  rt_list_put(state, "b", tb);
  const RtPlan *plan = cg_module_plan(m);
  void *arena = rt_arena_new(plan->arena_bytes, &e);
  RtTensor *o[1] = {0};
  ck_assert_msg(rt_plan_run(plan, jc_pool(), arena, NULL, o, state, NULL, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(ta->data, b0->data, 200) == 0 && memcmp(tb->data, a0->data, 200) == 0);
  for (int i = 0; i < 50; i++) ck_assert(rt_f32(o[0])[i] == rt_f32(a0)[i] + rt_f32(b0)[i]);
  rt_tensor_free(o[0]);
  rt_tensor_free(a0);
  rt_tensor_free(b0);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
  ir_graph_free(g);
}
END_TEST

/* A KV cache row written in place, as the GPT's decode step does:
 * cache <- where(iota(axis 2) == pos, x, cache), and the new cache read
 * after by a GEMM. The kernel skips the rows whose condition is false (they would
 * store the cache over itself), so every other row must keep its old
 * value: checked at two positions, the last one included. */
START_TEST(test_update_cache_row) {
  for (int pos = 0; pos < 10; pos += 9) {
    IrGraph *g = ir_graph_new("cache_row");
    IrShape sc = shp(4, 2, 3, 10, 32), sx = shp(4, 2, 3, 1, 32), sr = shp(4, 1, 1, 10, 1);
    int cache = ir_state(g, "cache", sc, LOC);
    int x = input(g, "x", IR_F32, sx), p = input(g, "pos", IR_I32, ir_shape_make(0, NULL));
    IrAttr ia;
    memset(&ia, 0, sizeof ia);
    ia.shape = sr;
    ia.axis = 2;
    int at = ir_binary(g, OP_EQ, ir_build(g, OP_IOTA, NULL, 0, &ia, LOC), p, LOC);
    int rows = ir_where(g, at, x, cache, LOC);
    ck_assert_int_ge(ir_add_update(g, cache, rows, LOC), 0);
    int w = input(g, "w", IR_F32, shp(2, 32, 4, 0, 0));
    int out = ir_build(g, OP_MATMUL, (int[]){rows, w}, 2, NULL, LOC); /* as attention reads the keys */
    ir_set_outputs(g, &out, NULL, 1);
    FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = true});
    ck_assert_int_eq(count_in_plan(g, fp, RT_STEP_COPY), 0); /* written in place */
    fuse_plan_free(fp);
    IrShape s0 = ir_shape_make(0, NULL);
    IrShape sw = shp(2, 32, 4, 0, 0);
    RtTensor *in[3] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_I32, &s0, JC_INDEX, 1),
                       jc_make(IR_F32, &sw, JC_NORMAL, 0)};
    rt_i32(in[1])[0] = pos;
    RtTensor *state[1] = {jc_make(IR_F32, &sc, JC_NORMAL, 0)};
    jc_check_both(g, in, state, &(JcCheck){.tol = 1e-5});
    free_all(in, 3);
    free_all(state, 1);
    ir_graph_free(g);
  }
}
END_TEST

/* ---- data-dependent indices out of range: no crash, defined values ---- */

START_TEST(test_bad_indices) {
  IrGraph *g = ir_graph_new("bad_indices");
  IrShape st = shp(2, 4, 3, 0, 0), si = shp(1, 3, 0, 0, 0), sl = shp(2, 3, 5, 0, 0);
  int table = input(g, "table", IR_F32, st), raw = input(g, "idx", IR_I32, si), logits = input(g, "logits", IR_F32, sl);
  /* computed indices: inputs read directly as indices are checked before the run (below) */
  int idx = ir_binary(g, OP_ADD, raw, ir_scalar(g, IR_I32, 0, LOC), LOC);
  int ga = ir_build(g, OP_GATHER, (int[]){table, idx}, 2, NULL, LOC);
  int oh = ir_build(g, OP_ONEHOT, &idx, 1, &(IrAttr){.axis = 1, .depth = 4}, LOC);
  int ce = ir_build(g, OP_CROSS_ENTROPY, (int[]){logits, idx}, 2, NULL, LOC);
  int gb = ir_build(g, OP_GATHER_BACKWARD, (int[]){idx, ga}, 2, &(IrAttr){.shape = st}, LOC);
  int dv = ir_binary(g, OP_DIV, idx, ir_binary(g, OP_SUB, idx, idx, LOC), LOC);
  ir_set_outputs(g, (int[]){ga, oh, ce, gb, dv}, NULL, 5);
  RtTensor *in[3] = {jc_make(IR_F32, &st, JC_NORMAL, 0), jc_make(IR_I32, &si, JC_INDEX, 4), jc_make(IR_F32, &sl, JC_NORMAL, 0)};
  rt_i32(in[1])[0] = 2;
  rt_i32(in[1])[1] = 7; /* out of range for 4 rows and 5 classes */
  rt_i32(in[1])[2] = -1;
  RtErr e;
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(jc_session(), g, p, &e);
  fuse_plan_free(p);
  ck_assert_msg(m && cg_module_jit(m, &e) == 0, "%s", e.msg);
  const RtPlan *plan = cg_module_plan(m);
  void *arena = rt_arena_new(plan->arena_bytes, &e);
  RtTensor *out[5] = {0};
  ck_assert_msg(rt_plan_run(plan, jc_pool(), arena, in, out, NULL, NULL, &e) == 0, "%s", e.msg);
  const float *T = rt_f32(in[0]);
  for (int j = 0; j < 3; j++) {
    ck_assert(rt_f32(out[0])[j] == T[2 * 3 + j]); /* row 0: table row 2 */
    ck_assert(rt_f32(out[0])[3 + j] == 0 && rt_f32(out[0])[6 + j] == 0); /* bad rows read zeros */
  }
  for (int d = 0; d < 4; d++) {
    ck_assert(rt_f32(out[1])[d] == (d == 2)); /* onehot [3, 4]: row 0 has its 1 */
    ck_assert(rt_f32(out[1])[4 + d] == 0 && rt_f32(out[1])[8 + d] == 0);
  }
  ck_assert(!isnan(rt_f32(out[2])[0]) && isnan(rt_f32(out[2])[1]) && isnan(rt_f32(out[2])[2]));
  for (int r = 0; r < 4; r++) /* only row 2 received anything */
    for (int j = 0; j < 3; j++) ck_assert(rt_f32(out[3])[r * 3 + j] == (r == 2 ? T[2 * 3 + j] : 0.0f));
  for (int i = 0; i < 3; i++) ck_assert_int_eq(rt_i32(out[4])[i], 0); /* x // 0 */
  free_all(out, 5);
  free_all(in, 3);
  rt_arena_free(arena);
  cg_module_free(m);
  ir_graph_free(g);
}
END_TEST

/* Indices read straight from an input are checked before the first step:
 * a gather's rows (named after the table), a onehot's depth and
 * cross-entropy classes (through a reshape); the error names the input,
 * the element, its value and the range, and no output is left behind. */
START_TEST(test_input_index_checks) {
  IrGraph *g = ir_graph_new("index_checks");
  IrShape st = shp(2, 6, 3, 0, 0), si = shp(2, 2, 3, 0, 0), sl = shp(2, 6, 5, 0, 0);
  int table = ir_param(g, "emb.weight", st, IR_INIT_NORMAL, 0, 1, LOC);
  int ids = input(g, "ids", IR_I32, si), cls = input(g, "cls", IR_I32, si), logits = input(g, "logits", IR_F32, sl);
  int ga = ir_build(g, OP_GATHER, (int[]){table, ids}, 2, NULL, LOC);
  int oh = ir_build(g, OP_ONEHOT, &cls, 1, &(IrAttr){.axis = 2, .depth = 4}, LOC);
  int flat = ir_reshape(g, cls, shp(1, 6, 0, 0, 0), LOC);
  int ce = ir_build(g, OP_CROSS_ENTROPY, (int[]){logits, flat}, 2, NULL, LOC);
  ir_set_outputs(g, (int[]){ga, oh, ce}, NULL, 3);
  RtErr e;
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(jc_session(), g, p, &e);
  fuse_plan_free(p);
  ck_assert_msg(m && cg_module_jit(m, &e) == 0, "%s", e.msg);
  const RtPlan *plan = cg_module_plan(m);
  ck_assert_int_eq(plan->ncheck, 3); /* ids < 6; cls < 4 and < 5 */
  void *arena = rt_arena_new(plan->arena_bytes, &e);
  RtTensorList *state = rt_list_new();
  rt_list_put(state, "emb.weight", jc_make(IR_F32, &st, JC_NORMAL, 0));
  RtTensor *in[3] = {jc_make(IR_I32, &si, JC_INDEX, 4), jc_make(IR_I32, &si, JC_INDEX, 4), jc_make(IR_F32, &sl, JC_NORMAL, 0)};
  RtTensor *out[3] = {0};
  ck_assert_msg(rt_plan_run(plan, jc_pool(), arena, in, out, state, NULL, &e) == 0, "%s", e.msg);
  free_all(out, 3);
  static const struct {
    int input, at, value;
    const char *msg;
  } bad[] = {
      {0, 4, 6, "input 'ids': element [1, 1] is 6, outside [0, 6) (the rows of emb.weight)"},
      {0, 0, -1, "input 'ids': element [0, 0] is -1, outside [0, 6)"},
      {1, 5, 4, "input 'cls': element [1, 2] is 4, outside [0, 4) (the depth of a onehot)"},
  };
  for (int b = 0; b < 3; b++) {
    int32_t *v = rt_i32(in[bad[b].input]), keep = v[bad[b].at];
    v[bad[b].at] = bad[b].value;
    RtTensor *o[3] = {0};
    ck_assert_int_eq(rt_plan_run(plan, jc_pool(), arena, in, o, state, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, bad[b].msg), "got: %s", e.msg);
    ck_assert(!o[0] && !o[1] && !o[2]);
    v[bad[b].at] = keep;
  }
  free_all(in, 3);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
  ir_graph_free(g);
}
END_TEST

/* Plans that break fuse.h's contract are refused with a message, not
 * miscompiled: two reductions in one group, groups that form a cycle. */
START_TEST(test_bad_plans) {
  IrGraph *g = ir_graph_new("bad_plan");
  IrShape s = shp(2, 4, 6, 0, 0);
  int x = input(g, "x", IR_F32, s);
  int a = ir_reduce(g, OP_SUM, x, 0x2, true, LOC);
  int b = ir_binary(g, OP_SUB, x, a, LOC);
  int c = ir_reduce(g, OP_REDUCE_MAX, b, 0x2, false, LOC);
  ir_set_outputs(g, &c, NULL, 1);
  FusePlan *p = one_group(g);
  RtErr e = {{0}};
  CgModule *m = cg_module_new(jc_session(), g, p, &e);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(e.msg, "two reductions") && strstr(e.msg, "bad_plan"), "%s", e.msg);
  fuse_plan_free(p);
  /* {a, c} and {b}: a -> b -> c makes the two groups depend on each other */
  int *gid = calloc((size_t)g->n, sizeof(int));
  gid[b] = 1;
  char err[200] = "";
  ck_assert_ptr_null(cg_fuse_from_groups(g, gid, err, sizeof err));
  ck_assert_msg(strstr(err, "cycle"), "%s", err);
  free(gid);
  ir_graph_free(g);
}
END_TEST

/* ---- the models ---- */

static IrGraph *load_entry(const char *file, const char *entry, int64_t batch, FeProgram **prog) {
  char *err = NULL;
  *prog = fe_load_file(file, &(FeOptions){.config = "tiny", .batch = batch}, &err);
  ck_assert_msg(*prog != NULL, "%s", err);
  int i = fe_entry_find(*prog, entry);
  ck_assert_int_ge(i, 0);
  IrGraph *g = fe_lower_entry(*prog, i, &err);
  ck_assert_msg(g != NULL, "%s", err);
  return g;
}

static RtTensor **model_params(const IrGraph *g) {
  RtErr e;
  RtTensor **p = calloc((size_t)g->nparam + 1, sizeof *p);
  ck_assert_msg(cg_bind_params(g, NULL, NULL, 1234, p, &e) == 0, "%s", e.msg);
  return p;
}

/* GPT tiny logits: embeddings, layer norms, attention (matmuls, causal
 * softmax), gelu MLP, head. */
START_TEST(test_gpt_logits) {
  FeProgram *prog;
  IrGraph *g = load_entry("models/gpt.dal", "logits", 0, &prog);
  RtTensor **params = model_params(g);
  /* text ids in [0, Vt + Lt), image ids in [0, K) (tiny: Vt 64, Lt 8, K 64) */
  RtTensor *in[2] = {jc_make(IR_I32, &g->node[g->input[0]].shape, JC_INDEX, 72),
                     jc_make(IR_I32, &g->node[g->input[1]].shape, JC_INDEX, 64)};
  jc_check_plan(g, NULL, in, params, &(JcCheck){.tol = 1e-5});
  free_all(in, 2);
  free_all(params, g->nparam);
  free(params);
  ir_graph_free(g);
  fe_free(prog);
}
END_TEST

/* dVAE tiny encoder: convolutions, group norms, residual blocks. */
START_TEST(test_dvae_encode) {
  FeProgram *prog;
  IrGraph *g = load_entry("models/dvae.dal", "encode", 0, &prog);
  RtTensor **params = model_params(g);
  RtTensor *in[1] = {jc_make(IR_F32, &g->node[g->input[0]].shape, JC_NORMAL, 0)};
  jc_check_plan(g, NULL, in, params, &(JcCheck){.tol = 1e-5});
  free_all(in, 1);
  free_all(params, g->nparam);
  free(params);
  ir_graph_free(g);
  fe_free(prog);
}
END_TEST

/* The loss and the gradient of every parameter (the autodiff pass's
 * graph: backward through every op the model uses). */
static void check_grads(const char *file, const char *entry, RtTensor **in) {
  FeProgram *prog;
  IrGraph *g = load_entry(file, entry, 2, &prog);
  ck_assert_msg(ad_grad_pass(g) == 0, "%s", g->error);
  RtTensor **params = model_params(g);
  jc_check_plan(g, NULL, in, params, &(JcCheck){.tol = 1e-5, .seed = 5, .step = 1});
  free_all(params, g->nparam);
  free(params);
  ir_graph_free(g);
  fe_free(prog);
}

START_TEST(test_gpt_grads) {
  IrShape st = shp(2, 2, 8, 0, 0), si = shp(2, 2, 16, 0, 0);
  RtTensor *in[2] = {jc_make(IR_I32, &st, JC_INDEX, 72), jc_make(IR_I32, &si, JC_INDEX, 64)};
  check_grads("models/gpt.dal", "loss", in);
  free_all(in, 2);
}
END_TEST

/* The dVAE with its noise given: convolutions, transposed convolutions,
 * group norms, the straight-through Gumbel tokenizer, the KL term. */
START_TEST(test_dvae_grads) {
  IrShape sx = shp(4, 2, 3, 16, 16), sn = shp(4, 2, 64, 4, 4), s0 = ir_shape_make(0, NULL);
  RtTensor *in[4] = {jc_make(IR_F32, &sx, JC_NORMAL, 0), jc_make(IR_F32, &sn, JC_NORMAL, 0), jc_make(IR_F32, &s0, JC_POS, 0),
                     jc_make(IR_F32, &s0, JC_POS, 0)};
  check_grads("models/dvae.dal", "loss_given_noise", in);
  free_all(in, 4);
}
END_TEST

/* One AdamW step of the GPT tiny (gradients, clipping, moments, updates of
 * every parameter and moment, the step count): loss and new state agree.
 * eps is large so that the update is a smooth function of the gradient
 * (with eps = 1e-8, a gradient that is zero up to rounding, like the key
 * bias's, would move its parameter by +-lr depending on the rounding). */
START_TEST(test_gpt_train_step) {
  FeProgram *prog;
  IrGraph *g = load_entry("models/gpt.dal", "loss", 2, &prog);
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.01, .clip_norm = 1.0};
  ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
  RtTensor **params = model_params(g);
  IrShape s0 = ir_shape_make(0, NULL);
  RtTensor *in[3] = {jc_make(IR_I32, &g->node[g->input[0]].shape, JC_INDEX, 72),
                     jc_make(IR_I32, &g->node[g->input[1]].shape, JC_INDEX, 64), jc_make(IR_F32, &s0, JC_POS, 0)};
  rt_f32(in[2])[0] = 3e-4f; /* opt.lr */
  jc_check_plan(g, NULL, in, params, &(JcCheck){.tol = 1e-5});
  free_all(in, 3);
  free_all(params, g->nparam);
  free(params);
  ir_graph_free(g);
  fe_free(prog);
}
END_TEST

/* The GPT tiny as a program (every entry; the training entry as an AdamW
 * step): two training steps and the logits afterwards, JIT against the
 * reference program. */
static double phase_seconds(const PassTimes *t, const char *name) {
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->item[i].name, name) == 0) return t->item[i].seconds;
  return -1;
}

static RtProgram *gpt_program(bool jit, bool lazy, PassTimes *times, FeProgram **prog) {
  char *err = NULL;
  *prog = fe_load_file("models/gpt.dal", &(FeOptions){.config = "tiny", .batch = 2}, &err);
  ck_assert_msg(*prog != NULL, "%s", err);
  int n = fe_entry_count(*prog);
  IrGraph **gs = calloc((size_t)n, sizeof *gs);
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.01, .clip_norm = 1.0};
  for (int i = 0; i < n; i++) {
    gs[i] = fe_lower_entry(*prog, i, &err);
    ck_assert_msg(gs[i] != NULL, "%s", err);
    if (gs[i]->train) ck_assert_msg(opt_train_step(gs[i], &o) == 0, "%s", gs[i]->error);
  }
  RtErr e;
  CgJitOptions jo = {.threads = 2, .lazy = lazy, .times = times};
  RtProgram *p = jit ? cg_jit_program(gs, n, "gpt", "tiny", 3e-4, 7, &jo, &e)
                     : cg_ref_program(gs, n, "gpt", "tiny", 3e-4, 7, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  free(gs);
  return p;
}

/* The GPT tiny program JIT-compiled, eagerly (_i = 0) or each entry at
 * its first run (_i = 1: nothing compiled before; the training step
 * compiled by prepare, the logits entry by its first run), against the
 * reference program. */
START_TEST(test_jit_program) {
  FeProgram *fr, *fj;
  bool lazy = _i == 1;
  PassTimes times = {0};
  RtProgram *ref = gpt_program(false, false, NULL, &fr), *jit = gpt_program(true, lazy, &times, &fj);
  ck_assert(lazy ? phase_seconds(&times, "codegen: lowering") < 0 : phase_seconds(&times, "codegen: lowering") > 0);
  ck_assert(lazy == (jit->prepare != NULL));
  ck_assert_int_eq(jit->nentry, ref->nentry);
  ck_assert_int_eq(jit->state->n, ref->state->n);
  int train = rt_program_entry(jit, "loss"), logits = rt_program_entry(jit, "logits");
  ck_assert(train >= 0 && logits >= 0 && jit->entry[train].train);
  const RtEntrySpec *en = &jit->entry[train];
  RtTensor *in[3];
  IrShape s;
  for (int k = 0; k < en->ninput; k++) {
    s = ir_shape_make(en->input[k].rank, en->input[k].dim);
    in[k] = jc_make((IrDType)en->input[k].dtype, &s, JC_INDEX, 64);
  }
  rt_f32(in[2])[0] = 3e-4f;
  RtErr e;
  ck_assert_msg(rt_program_prepare(jit, train, &e) == 0, "%s", e.msg);
  ck_assert(phase_seconds(&times, "codegen: lowering") > 0);
  for (int step = 1; step <= 2; step++) {
    RtTensor *lr[4] = {0}, *lj[4] = {0};
    ck_assert_msg(ref->run(ref, train, in, lr, 7, step, &e) == 0, "%s", e.msg);
    ck_assert_msg(jit->run(jit, train, in, lj, 7, step, &e) == 0, "%s", e.msg);
    for (int k = 0; k < en->noutput; k++) {
      jc_expect_agree("program loss", lj[k], lr[k], 1e-5, false);
      rt_tensor_free(lr[k]);
      rt_tensor_free(lj[k]);
    }
  }
  for (int i = 0; i < ref->state->n; i++)
    jc_expect_agree(ref->state->name[i], rt_list_get(jit->state, ref->state->name[i]), ref->state->tensor[i], 1e-5, false);
  RtTensor *o_r[1] = {0}, *o_j[1] = {0};
  ck_assert_msg(ref->run(ref, logits, in, o_r, 7, 3, &e) == 0, "%s", e.msg);
  ck_assert_msg(jit->run(jit, logits, in, o_j, 7, 3, &e) == 0, "%s", e.msg);
  jc_expect_agree("program logits", o_j[0], o_r[0], 1e-5, false);
  /* a wrong input is refused before anything runs */
  RtTensor *bad[3] = {in[1], in[0], in[2]};
  RtTensor *o_bad[1] = {0};
  ck_assert_int_eq(jit->run(jit, logits, bad, o_bad, 7, 3, &e), -1);
  ck_assert_ptr_null(o_bad[0]);
  rt_tensor_free(o_r[0]);
  rt_tensor_free(o_j[0]);
  free_all(in, en->ninput);
  rt_program_free(jit);
  rt_program_free(ref);
  fe_free(fj);
  fe_free(fr);
}
END_TEST

/* ---- emitted code ---- */

static char *capture(CgModule *m, int (*print)(CgModule *, FILE *, RtErr *)) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  RtErr e;
  ck_assert_msg(print(m, f, &e) == 0, "%s", e.msg);
  fclose(f);
  return buf;
}

/* gelu over [64, 256]: the optimised IR works on <8 x float>, the assembly
 * on ymm registers with FMA; an object file is written; after the JIT has
 * the module, printing it is refused. */
START_TEST(test_emit) {
  IrGraph *g = ir_graph_new("gelu");
  IrShape s = shp(2, 64, 256, 0, 0);
  int x = input(g, "x", IR_F32, s);
  int y = ir_unary(g, OP_GELU, x, LOC);
  ir_set_outputs(g, &y, NULL, 1);
  RtErr e;
  FusePlan *p = fuse_plan(g, &(FuseOptions){.enabled = true});
  CgModule *m = cg_module_new(jc_session(), g, p, &e);
  fuse_plan_free(p);
  ck_assert_msg(m != NULL, "%s", e.msg);
  char *ir = capture(m, cg_module_print_llvm);
  ck_assert_msg(strstr(ir, "<8 x float>") != NULL, "no 8-wide vectors in:\n%s", ir);
  ck_assert(strstr(ir, "define void @dal") != NULL);
  char *as = capture(m, cg_module_print_asm);
  ck_assert_msg(strstr(as, "vfmadd") != NULL && strstr(as, "ymm") != NULL, "no AVX2 FMA in:\n%.3000s", as);
  char *obj = tu_path("gelu.o");
  ck_assert_msg(cg_module_emit_object(m, obj, &e) == 0, "%s", e.msg);
  size_t n = 0;
  char *bytes = tu_read_file(obj, &n);
  ck_assert(bytes && n > 64 && memcmp(bytes, "\x7f" "ELF", 4) == 0);
  ck_assert_msg(cg_module_jit(m, &e) == 0, "%s", e.msg);
  FILE *devnull = fopen("/dev/null", "w");
  ck_assert_int_eq(cg_module_print_llvm(m, devnull, &e), -1);
  ck_assert_ptr_nonnull(strstr(e.msg, "handed to the JIT"));
  fclose(devnull);
  free(bytes);
  free(obj);
  free(as);
  free(ir);
  cg_module_free(m);
  ir_graph_free(g);
}
END_TEST

/* ---- the lowering's allocation pool (codegen/pool.c) ---- */

/* Allocations of every size (none, small ones carved from a chunk, ones
 * larger than a chunk's quarter) come back 64-byte aligned, zeroed and
 * disjoint; strdup copies; an adopted malloc block is freed with the pool
 * (the sanitizer build would report it leaked otherwise). */
START_TEST(pool_allocations_aligned_zeroed_disjoint) {
  enum { N = 600 };
  CgPool *p = cg_pool_new();
  unsigned char *mem[N];
  size_t size[N];
  for (int i = 0; i < N; i++) {
    size[i] = i % 50 == 0 ? 0 : i % 97 == 0 ? 40000 + (size_t)i : (size_t)(i * 37 % 300);
    mem[i] = cg_pool_alloc(p, size[i]);
    ck_assert_ptr_nonnull(mem[i]);
    ck_assert_int_eq((uintptr_t)mem[i] % 64, 0);
    for (size_t k = 0; k < size[i]; k++)
      if (mem[i][k]) ck_abort_msg("allocation %d (%zu bytes) not zeroed at %zu", i, size[i], k);
    memset(mem[i], i % 251 + 1, size[i]);
  }
  for (int i = 0; i < N; i++) /* no later allocation wrote over an earlier one */
    for (size_t k = 0; k < size[i]; k++)
      if (mem[i][k] != i % 251 + 1) ck_abort_msg("allocation %d overwritten at %zu", i, k);
  char *s = cg_pool_strdup(p, "n0");
  ck_assert_str_eq(s, "n0");
  ck_assert_int_eq((uintptr_t)s % 64, 0);
  int *grown = malloc(100 * sizeof *grown);
  grown[99] = 7;
  cg_pool_adopt(p, grown);
  cg_pool_adopt(p, NULL); /* nothing to adopt */
  ck_assert_int_eq(grown[99], 7);
  cg_pool_free(p);
}
END_TEST

Suite *jit_suite(void) {
  Suite *s = suite_create("jit");
  TCase *t = tcase_create("ops");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_add_loop_test(t, test_op_case, 0, NCASES);
  tcase_add_test(t, test_attention_backward);
  tcase_add_test(t, test_all_ops_covered);
  suite_add_tcase(s, t);
  t = tcase_create("fused");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_add_test(t, test_chain_elementwise);
  tcase_add_test(t, test_chain_broadcast);
  tcase_add_test(t, test_chain_reduce);
  tcase_add_test(t, test_chain_softmax);
  tcase_add_test(t, test_chain_two_pass);
  tcase_add_test(t, test_chain_matmul_bias);
  tcase_add_test(t, test_chain_conv_bias_relu);
  tcase_add_test(t, test_conv_chunks);
  tcase_add_test(t, test_conv_tiles);
  tcase_add_test(t, test_conv_transpose_tiles);
  tcase_add_test(t, test_conv_stride2_wide);
  tcase_add_test(t, test_shared_kernels);
  tcase_add_test(t, test_in_place);
  tcase_add_test(t, test_leftover_members_share_a_loop);
  tcase_add_test(t, test_updates);
  tcase_add_test(t, test_update_in_gemm_epilogue);
  tcase_add_test(t, test_update_in_a_leftover_loop);
  tcase_add_test(t, test_update_swap);
  tcase_add_test(t, test_update_cache_row);
  tcase_add_test(t, test_bad_indices);
  tcase_add_test(t, test_input_index_checks);
  tcase_add_test(t, test_bad_plans);
  suite_add_tcase(s, t);
  t = tcase_create("pool");
  tcase_add_test(t, pool_allocations_aligned_zeroed_disjoint);
  suite_add_tcase(s, t);
  t = tcase_create("models");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_set_timeout(t, 120);
  tcase_add_test(t, test_gpt_logits);
  tcase_add_test(t, test_dvae_encode);
  tcase_add_test(t, test_gpt_grads);
  tcase_add_test(t, test_dvae_grads);
  tcase_add_test(t, test_gpt_train_step);
  tcase_add_loop_test(t, test_jit_program, 0, 2);
  tcase_add_test(t, test_emit);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(jit_suite()); }
